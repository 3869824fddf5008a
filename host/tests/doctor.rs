//! `tradebox doctor` as an operator runs it: the binary against `tradebox sim` (a healthy key,
//! a key in spot mode with a swap configured, a withdraw key) and against a config whose hosts
//! nobody listens on.

use std::path::{Path, PathBuf};
use std::process::Command;
use tradebox_sim::server::{SimKey, SimServer, SimServerConfig};

const SECRET: &str = "doctor-secret-7c1e2a";
const PASSPHRASE: &str = "doctor-pass-41b9";

fn key(api_key: &str, perm: &str, acct_lv: u8, ip: &str) -> SimKey {
    serde_json::from_value(serde_json::json!({
        "api_key": api_key, "secret": SECRET, "passphrase": PASSPHRASE, "perm": perm, "demo": true,
        "acct_lv": acct_lv, "ip": ip,
    }))
    .expect("key")
}

async fn sim() -> SimServer {
    let config = SimServerConfig {
        keys: vec![
            key("doctor-trader", "read_only,trade", 2, "127.0.0.1"),
            key("doctor-spot", "read_only,trade", 1, "127.0.0.1"),
            key("doctor-withdraw", "read_only,trade,withdraw", 2, "127.0.0.1"),
        ],
        run_market: false,
        ..SimServerConfig::default()
    };
    SimServer::start(config).await.expect("simulator starts")
}

/// A host config for `rest`/`ws` with the key's owner-only credentials file beside it.
fn config(dir: &Path, rest: &str, ws: &str, api_key: &str, instruments: &[&str]) -> PathBuf {
    let credentials = dir.join("okx.env");
    std::fs::write(
        &credentials,
        format!("OKX_API_KEY={api_key}\nOKX_API_SECRET={SECRET}\nOKX_API_PASSPHRASE={PASSPHRASE}\n"),
    )
    .expect("credentials");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let instruments: Vec<String> = instruments.iter().map(|i| format!("{i:?}")).collect();
    let text = format!(
        "[venue]\nkind = \"okx\"\n[venue.okx]\nrest_url = \"{rest}\"\nws_url = \"{ws}\"\ndemo = true\n\
         instruments = [{}]\ncredentials_file = \"okx.env\"\ntimeout_ms = 2000\n",
        instruments.join(", ")
    );
    let path = dir.join("tradebox.toml");
    std::fs::write(&path, text).expect("config");
    path
}

struct Run {
    success: bool,
    stdout: String,
}

impl Run {
    /// The status word of the line of check `name`.
    fn status(&self, name: &str) -> &str {
        self.line(name).split_whitespace().next().unwrap_or_default()
    }

    fn line(&self, name: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{}", self.stdout))
    }

    /// The fix printed under the line of `name`.
    fn fix(&self, name: &str) -> &str {
        let mut lines = self.stdout.lines().skip_while(|l| l.split_whitespace().nth(1) != Some(name));
        lines.next();
        lines.next().and_then(|l| l.trim().strip_prefix("fix: ")).unwrap_or_else(|| panic!("no fix for {name}"))
    }
}

async fn doctor(config: &Path, json: bool) -> Run {
    let mut args = vec!["doctor".to_string(), "--config".into(), config.display().to_string()];
    if json {
        args.push("--json".into());
    }
    // The simulator runs on this test's runtime: the binary is waited for on another thread.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tradebox")).args(&args).env("RUST_BACKTRACE", "0").output()
    })
    .await
    .expect("joined")
    .expect("tradebox runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(SECRET) && !stdout.contains(PASSPHRASE), "a secret was printed:\n{stdout}");
    assert!(!stderr.contains(SECRET) && !stderr.contains(PASSPHRASE), "a secret was logged:\n{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    Run { success: out.status.success(), stdout }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_key_on_the_simulator_passes_every_remote_check() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("tmp");
    let ws = sim.base_url().replacen("http://", "ws://", 1);
    let path = config(dir.path(), &sim.base_url(), &ws, "doctor-trader", &["BTC-USDT", "BTC-USDT-SWAP"]);
    let run = doctor(&path, false).await;
    for name in [
        "config",
        "region",
        "rest",
        "clock",
        "credentials",
        "key",
        "permissions",
        "ip-binding",
        "instruments",
        "modes",
        "rate-limit",
        "ws-public",
        "ws-business",
        "ws-private",
        "pins",
    ] {
        assert_eq!(run.status(name), "ok", "{name}:\n{}", run.stdout);
    }
    assert!(run.success, "nothing failed, so exit 0:\n{}", run.stdout);
    assert!(run.line("ws-private").contains("logged in"), "{}", run.stdout);
    assert!(run.line("modes").contains("BTC-USDT-SWAP tdMode cross"), "{}", run.stdout);
    assert!(run.line("pins").contains("pinning does not apply"), "{}", run.stdout);
    assert!(run.line("rate-limit").contains("1000"), "the simulator's cap: {}", run.stdout);
    assert!(["ok", "warn", "skip"].contains(&run.status("scheduling")), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_on_a_spot_mode_account_fail_the_modes_line_with_the_fix() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("tmp");
    let ws = sim.base_url().replacen("http://", "ws://", 1);
    let path = config(dir.path(), &sim.base_url(), &ws, "doctor-spot", &["BTC-USDT", "BTC-USDT-SWAP"]);
    let run = doctor(&path, false).await;
    assert!(!run.success, "{}", run.stdout);
    assert_eq!(run.status("modes"), "fail", "{}", run.stdout);
    assert!(run.line("modes").contains("Spot mode"), "{}", run.stdout);
    assert!(run.fix("modes").contains("Account mode"), "{}", run.stdout);
    assert_eq!(run.status("key"), "ok", "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdraw_key_fails_the_permissions_line() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("tmp");
    let ws = sim.base_url().replacen("http://", "ws://", 1);
    let path = config(dir.path(), &sim.base_url(), &ws, "doctor-withdraw", &["BTC-USDT"]);
    let run = doctor(&path, false).await;
    assert!(!run.success, "{}", run.stdout);
    assert_eq!(run.status("permissions"), "fail", "{}", run.stdout);
    assert!(run.line("permissions").contains("withdraw"), "{}", run.stdout);
    assert!(run.fix("permissions").contains("allow_withdraw_key"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_fails_reachability_and_skips_what_depends_on_it() {
    // A port that was free a moment ago and that nobody listens on now.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tmp");
    let path = config(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &format!("ws://127.0.0.1:{port}"),
        "doctor-trader",
        &["BTC-USDT"],
    );
    let run = doctor(&path, false).await;
    assert!(!run.success, "{}", run.stdout);
    for name in ["rest", "ws-public", "ws-business", "ws-private"] {
        assert_eq!(run.status(name), "fail", "{name}:\n{}", run.stdout);
    }
    assert!(run.fix("rest").contains("reachable"), "{}", run.stdout);
    for name in ["clock", "key", "permissions", "ip-binding", "instruments", "modes", "rate-limit"] {
        assert_eq!(run.status(name), "skip", "{name}:\n{}", run.stdout);
    }
    assert_eq!(run.status("credentials"), "ok", "read locally: {}", run.stdout);

    let json = doctor(&path, true).await;
    assert!(!json.success);
    let report: serde_json::Value = serde_json::from_str(json.stdout.trim()).expect("one JSON object");
    assert_eq!(report["status"], "fail");
    let checks = report["checks"].as_array().expect("checks");
    assert!(!checks.is_empty());
    for c in checks {
        let name = c["name"].as_str().expect("name");
        assert_eq!(c["status"].as_str(), Some(run.status(name)), "{name}: JSON and text agree");
        assert_eq!(c["fix"].is_string(), c["status"] == "fail" || c["status"] == "warn", "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paper_config_is_checked_without_keys() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("tmp");
    let ws = sim.base_url().replacen("http://", "ws://", 1);
    let write = |name: &str, instruments: &str| {
        let path = dir.path().join(name);
        let text = format!(
            "[venue]\nkind = \"paper\"\n[venue.paper]\nrest_url = \"{}\"\nws_url = \"{ws}\"\ninstruments = [{instruments}]\n",
            sim.base_url()
        );
        std::fs::write(&path, text).expect("config");
        path
    };
    let run = doctor(&write("good.toml", "\"BTC-USDT\", \"BTC-USDT-SWAP\""), false).await;
    assert_eq!(run.status("venue"), "ok", "{}", run.stdout);
    assert!(
        run.line("venue").contains("2 instruments listed") && run.line("venue").contains("no keys"),
        "{}",
        run.stdout
    );
    assert_eq!(run.status("ws-public"), "ok", "{}", run.stdout);
    assert!(run.success, "{}", run.stdout);
    // The feed's address wrong: the public endpoint fails, with the fix.
    let path = write("dead.toml", "\"BTC-USDT\"");
    let text = std::fs::read_to_string(&path).expect("config").replace(&ws, "ws://127.0.0.1:9");
    std::fs::write(&path, text).expect("config");
    let run = doctor(&path, false).await;
    assert_eq!(run.status("ws-public"), "fail", "{}", run.stdout);
    assert!(run.fix("ws-public").contains("ws_url"), "{}", run.stdout);
    let run = doctor(&write("unknown.toml", "\"NOPE-USDT\""), false).await;
    assert_eq!(run.status("venue"), "fail", "{}", run.stdout);
    assert!(run.line("venue").contains("NOPE-USDT") && run.fix("venue").contains("[venue.paper]"), "{}", run.stdout);
    assert!(!run.success);
    // A recording directory this user cannot create: one failing line naming it.
    let path = write("record.toml", "\"BTC-USDT\"");
    let text = std::fs::read_to_string(&path).expect("config") + "record = \"/proc/tradebox-nope/feed\"\n";
    std::fs::write(&path, text).expect("config");
    let run = doctor(&path, false).await;
    let failing: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("fail ")).collect();
    assert!(
        failing.len() == 1 && failing[0].contains("record = \"/proc/tradebox-nope/feed\": cannot write there"),
        "{}",
        run.stdout
    );
}
