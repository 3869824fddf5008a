//! The `tradebox` binary as a user runs it.

use std::path::PathBuf;
use std::process::Command;

fn plugin_dir() -> PathBuf {
    std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

fn tradebox(args: &[&str]) -> (bool, String, String) {
    tradebox_in_env(args, &[("RUST_BACKTRACE", "0")])
}

/// `tradebox ARGS` with these variables set, and the tests' own cache directory.
fn tradebox_in_env(args: &[&str], vars: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(args)
        .envs(vars.iter().copied())
        .env("XDG_CACHE_HOME", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-xdg-cache"))
        .output()
        .expect("tradebox runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_runs_for_a_duration_and_shows_every_plugin() {
    let dir = plugin_dir();
    let (ok, stdout, stderr) =
        tradebox(&["demo", "--duration", "5s", "--seed", "7", "--plugin-dir", dir.to_str().expect("utf-8 path")]);
    assert!(ok, "demo failed:\n{stderr}");
    assert!(stdout.contains("tradebox demo: final"), "{stdout}");
    for plugin in ["sma-btc", "sma-swap", "mm-eth"] {
        assert!(stdout.contains(plugin), "{plugin} missing from:\n{stdout}");
    }
    assert!(stdout.contains("BTC-USDT") && stdout.contains("ETH-USDT"), "{stdout}");
    // Through OKX's protocol on loopback, with an audit log.
    assert!(stdout.contains("venue: okx-demo"), "{stdout}");
    let audit = stdout.lines().find_map(|l| l.strip_prefix("audit log of this run: ")).expect("audit path printed");
    let records = std::fs::read_to_string(audit).expect("audit log");
    assert!(records.contains("/api/v5/account/config"), "the start-up checks are audited");
    let _ = std::fs::remove_file(audit);
}

#[test]
fn sim_without_config_prints_urls_and_a_demo_key_that_works() {
    use std::io::{BufRead, BufReader};
    let mut sim = Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["sim", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sim starts");
    let mut lines = BufReader::new(sim.stdout.take().expect("stdout")).lines();
    let mut next = || lines.next().expect("a line").expect("utf-8");
    let url = next().split_whitespace().find(|w| w.starts_with("http://")).expect("REST URL").to_string();
    assert!(next().contains("/ws/v5/private"), "WebSocket URLs printed");
    assert!(next().starts_with("demo key"));
    let mut value = |name: &str| next().trim().strip_prefix(&format!("{name}=")).expect(name).to_string();
    let (key, secret, pass) = (value("OKX_API_KEY"), value("OKX_API_SECRET"), value("OKX_API_PASSPHRASE"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let config = rt.block_on(async {
        let signer = tradebox_okx::Signer::new(tradebox_okx::Credentials::new(&key, &secret, &pass));
        let rest = tradebox_okx::RestClient::new(
            tradebox_okx::RestConfig {
                base_url: url,
                demo: true,
                timeout: std::time::Duration::from_secs(5),
                tls: Default::default(),
            },
            Some(signer),
            std::sync::Arc::new(tradebox_okx::ClockSync::new()),
        )
        .expect("client");
        rest.account_config().await
    });
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(config.expect("the printed key is accepted").can_trade());
}

/// A host run from a config, driven from the CLI: status, the kill switch, resume, a plugin
/// halt; then the audit log holds every state change.
#[test]
fn run_loads_a_config_and_the_cli_halts_and_resumes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = plugin_dir().join("market-maker.wasm");
    let token = dir.path().join("admin.token");
    let config = format!(
        r#"
        [venue]
        kind = "sim"
        [venue.sim]
        seed = 3
        [admin]
        listen = "127.0.0.1:0"
        token_file = "{}"
        [audit]
        path = "audit.jsonl"
        [[plugin]]
        name = "mm"
        path = "{}"
        instruments = ["ETH-USDT"]
        config = {{ symbol = "ETH-USDT", spread_bps = 4 }}
        "#,
        token.display(),
        wasm.display()
    );
    let path = dir.path().join("tradebox.toml");
    std::fs::write(&path, config).expect("write config");
    let (mut host, url) = running_host(&path, &[]);
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--admin", &url, "--token-file", token.to_str().expect("utf-8")]);
        tradebox(&all)
    };
    let (ok, status, stderr) = cli(&["status"]);
    assert!(ok, "{stderr}");
    assert!(status.contains("\"account_state\": \"active\"") && status.contains("\"mm\""), "{status}");
    let (ok, out, stderr) = cli(&["halt", "--reason", "test kill switch"]);
    assert!(ok && out.contains("halted"), "{out}{stderr}");
    let (_, status, _) = cli(&["status"]);
    assert!(status.contains("\"account_state\": \"halted\""), "{status}");
    let (ok, out, _) = cli(&["resume"]);
    assert!(ok && out.contains("active"), "{out}");
    // The kill switch on a signal.
    let killed = Command::new("kill").args(["-USR1", &host.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let mut halted = false;
    for _ in 0..50 {
        if cli(&["status"]).1.contains("\"account_state\": \"halted\"") {
            halted = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(halted, "SIGUSR1 halts the account");
    let (ok, _, _) = cli(&["resume"]);
    assert!(ok);
    let (ok, out, _) = cli(&["halt", "--plugin", "mm"]);
    assert!(ok && out.contains("\"plugin\":\"mm\""), "{out}");
    let (ok, _, stderr) = cli(&["halt", "--plugin", "nope"]);
    assert!(!ok && stderr.contains("no plugin named"), "{stderr}");
    // A wrong token, and no host at all, are told apart.
    let wrong = dir.path().join("wrong.token");
    std::fs::write(&wrong, "0000").expect("write");
    let (ok, _, stderr) = tradebox(&["status", "--admin", &url, "--token-file", wrong.to_str().expect("utf-8")]);
    assert!(!ok && stderr.contains("refused the admin token"), "{stderr}");
    let (ok, _, stderr) =
        tradebox(&["status", "--admin", "http://127.0.0.1:9", "--token-file", token.to_str().expect("utf-8")]);
    assert!(!ok && stderr.contains("no tradebox host answers"), "{stderr}");
    let _ = host.kill();
    let _ = host.wait();
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("audit log");
    for event in ["account_halted", "account_active", "plugin_halted"] {
        assert!(audit.contains(event), "{event} not audited");
    }
    assert!(audit.contains("test kill switch") && audit.contains("SIGUSR1"));
}

#[test]
fn a_bad_config_line_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[venue]\nkind = \"sim\"\n\n[[plugin]]\nname = \"x\"\npath = \"x.wasm\"\nmemory = 5\n")
        .expect("write");
    let (ok, _, stderr) = tradebox(&["run", "--config", path.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(stderr.contains("memory") && stderr.contains("line 7"), "{stderr}");
}

#[test]
fn plugin_check_names_forbidden_imports() {
    let wasm = plugin_dir().join("wasi-http.wasm");
    let (ok, _, stderr) = tradebox(&["plugin", "check", wasm.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(stderr.contains("wasi:http/types") && stderr.contains("no ambient authority"), "{stderr}");
    assert!(!stderr.contains("wasi:cli/environment"), "served WASI named as refused: {stderr}");
    let wasm = plugin_dir().join("wasi-import.wasm");
    let (ok, stdout, stderr) = tradebox(&["plugin", "check", wasm.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("WASI, which this host serves locked down"), "{stdout}");
    // In a backtest its clock is the data's and its random numbers repeat run after run.
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates/data/sample.csv");
    let backtest = || {
        let args = ["backtest", wasm.to_str().expect("utf-8"), "--instrument", "BTC-USDT", "--data"];
        let (ok, _, stderr) = tradebox(&[&args[..], &[data.to_str().expect("utf-8")]].concat());
        assert!(ok, "{stderr}");
        let line = stderr.lines().find(|l| l.contains("reach: ")).unwrap_or_else(|| panic!("{stderr}")).to_string();
        assert!(line.contains("now 1767225600000 ") && line.contains("env 0 "), "{line}");
        line.split(" seeded ").nth(1).and_then(|r| r.split(' ').next()).unwrap_or_default().to_string()
    };
    let first = backtest();
    assert!(!first.is_empty());
    assert_eq!(first, backtest(), "a backtest's random numbers repeat");
    let wasm = plugin_dir().join("sma-cross.wasm");
    let (ok, stdout, stderr) = tradebox(&["plugin", "check", wasm.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("imports only the tradebox:strategy contract"), "{stdout}");
}

/// `tradebox ARGS` as a user whose shell sets `RUST_BACKTRACE=1` runs it.
fn tradebox_with_backtraces(args: &[&str]) -> (bool, String, String) {
    tradebox_in_env(args, &[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")])
}

/// A failed command says what is wrong in a line or two: no backtrace, no bytes of the file.
fn assert_readable_failure(what: &str, (ok, stdout, stderr): &(bool, String, String), expected: &str) {
    assert!(!ok, "{what} should fail:\n{stdout}{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains(expected), "{what}: {stderr}");
    assert!(!stderr.to_lowercase().contains("stack backtrace"), "{what}: a backtrace:\n{stderr}");
    assert!(stderr.lines().count() < 5, "{what}: {} lines:\n{stderr}", stderr.lines().count());
    assert_no_byte_dump(what, stderr);
    assert_no_byte_dump(what, stdout);
}

fn assert_no_byte_dump(what: &str, text: &str) {
    for dump in ["[0, 97, 115, 109", "0x61,", "0x73,", "expected=["] {
        assert!(!text.contains(dump), "{what}: bytes dumped ({dump}):\n{text}");
    }
}

#[test]
fn a_wrong_file_is_one_readable_line_even_with_backtraces_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "hello, these are notes\n").expect("write");
    let odd = dir.path().join("odd.wasm");
    std::fs::write(&odd, b"\0asm not really").expect("write");
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();

    let checked = tradebox_with_backtraces(&["plugin", "check", &path(&text)]);
    assert_readable_failure("plugin check of a text file", &checked, "not a WebAssembly file");
    let checked = tradebox_with_backtraces(&["plugin", "check", &path(&odd)]);
    assert_readable_failure("plugin check of an unknown wasm", &checked, "unknown kind");
    let checked = tradebox_with_backtraces(&["plugin", "check", &path(&core)]);
    assert_readable_failure("plugin check of a core module", &checked, "core wasm module, not a component");
    let missing = tradebox_with_backtraces(&["plugin", "inspect", &path(&dir.path().join("absent.wasm"))]);
    assert_readable_failure("plugin inspect of no file", &missing, "absent.wasm");
    // Inspect reports on anything it can read; the report says what the file is, in words.
    let (_, report, stderr) = tradebox_with_backtraces(&["plugin", "inspect", &path(&text)]);
    assert!(report.contains("not a WebAssembly file"), "{report}");
    assert!(!stderr.to_lowercase().contains("stack backtrace"), "{stderr}");
    assert_no_byte_dump("plugin inspect of a text file", &report);

    // A running host refuses a reload of each, and the CLI says why in one line.
    let token = dir.path().join("admin.token");
    let config = format!(
        "[venue]\nkind = \"sim\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n\
         [[plugin]]\nname = \"counter\"\npath = \"{}\"\ninstruments = [\"BTC-USDT\"]\n\
         config = {{ symbol = \"BTC-USDT\" }}\n",
        token.display(),
        plugin_dir().join("noop.wasm").display()
    );
    let config_path = dir.path().join("tradebox.toml");
    std::fs::write(&config_path, config).expect("write config");
    let (_host, url) = running_host(&config_path, &[]);
    for (file, expected) in [(&text, "not a WebAssembly file"), (&odd, "unknown kind"), (&core, "core wasm module")] {
        let args = ["plugin", "reload", "counter", &path(file), "--admin", &url, "--token-file", &path(&token)];
        let reloaded = tradebox_with_backtraces(&args);
        assert_readable_failure(&format!("reload of {}", file.display()), &reloaded, expected);
        assert!(reloaded.2.contains("keeps trading"), "{}", reloaded.2);
    }
}

/// The flow the README gives a strategy author: a crate of their own, outside this repository,
/// built with `tradebox plugin build`, and a file a host loads.
#[test]
fn a_strategy_crate_outside_the_repository_builds_into_a_plugin_a_host_loads() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository");
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(!dir.path().starts_with(&repo), "the crate must live outside the repository");
    let krate = dir.path().join("my-strategy");
    std::fs::create_dir_all(krate.join("src")).expect("mkdir");
    let noop = repo.join("plugins/noop");
    for file in ["src/lib.rs", "build.rs", "tradebox.toml"] {
        std::fs::copy(noop.join(file), krate.join(file)).expect("copy noop");
    }
    // The repository's plugin lock: the same dependency versions, nothing to resolve.
    std::fs::copy(repo.join("plugins/Cargo.lock"), krate.join("Cargo.lock")).expect("copy lock");
    let cargo_toml = format!(
        r#"[package]
name = "outside-strategy"
version = "0.3.1"
edition = "2024"
description = "noop, built outside the repository"
license = "Apache-2.0"
authors = ["a strategy author"]

[lib]
crate-type = ["cdylib"]

[dependencies]
tradebox-sdk = {{ path = "{sdk}" }}

[build-dependencies]
tradebox-manifest = {{ path = "{manifest}" }}

# The plugins' release profile: with it, the dependencies `cargo xtask plugins` compiled into the
# same target directory are reused.
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"

# Its own workspace: not absorbed by one above it.
[workspace]
"#,
        sdk = repo.join("sdk").display(),
        manifest = repo.join("manifest").display(),
    );
    std::fs::write(krate.join("Cargo.toml"), cargo_toml).expect("write Cargo.toml");

    // This test's own target directory (the parent of CARGO_TARGET_TMPDIR), where the plugins
    // were built: the wasm dependencies compile once, not once more for this test.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").to_path_buf();
    let out = Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["plugin", "build"])
        .arg(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env("RUST_BACKTRACE", "0")
        .env("XDG_CACHE_HOME", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-xdg-cache"))
        .output()
        .expect("tradebox runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "plugin build failed:\n{stdout}\n{stderr}");
    // Cargo's own progress reaches the terminal.
    assert!(stderr.contains("Finished") && stderr.contains("release"), "{stderr}");
    let wasm = krate.join("outside-strategy.wasm");
    assert!(stdout.contains(&format!("wrote {}", wasm.canonicalize().expect("written").display())), "{stdout}");
    for line in
        ["name       outside-strategy 0.3.1", "tradebox:strategy@0.1.0: served by this host", "this host can load it"]
    {
        assert!(stdout.contains(line), "{line} in:\n{stdout}");
    }

    let file = wasm.to_str().expect("utf-8");
    let (ok, report, stderr) = tradebox(&["plugin", "inspect", file]);
    assert!(
        ok && report.contains("outside-strategy 0.3.1") && report.contains("this host can load it"),
        "{report}{stderr}"
    );
    let (ok, checked, stderr) = tradebox(&["plugin", "check", file]);
    assert!(ok && checked.contains("imports only the tradebox:strategy contract"), "{checked}{stderr}");

    // A directory that holds no strategy is refused in a line, before any build.
    let (ok, _, stderr) = tradebox(&["plugin", "build", dir.path().to_str().expect("utf-8")]);
    assert!(!ok && stderr.starts_with("error: ") && stderr.contains("Cargo.toml"), "{stderr}");
}

#[test]
fn okx_sign_prints_prehash_and_signature_never_the_secret() {
    let secret = "22582BD0CFF14C41EDBF1AB98506286D";
    let out = Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["okx", "sign", "--timestamp", "2020-12-08T09:08:57.715Z", "--method", "get"])
        .args(["--path", "/api/v5/account/balance?ccy=BTC"])
        .env("OKX_API_SECRET", secret)
        .env("OKX_API_KEY", "abcd-efgh")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("tradebox runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("prehash:   2020-12-08T09:08:57.715ZGET/api/v5/account/balance?ccy=BTC"), "{stdout}");
    assert!(stdout.contains("signature: HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="), "{stdout}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
    assert!(!stdout.contains("abcd-efgh"), "the key is shown only by its first characters");

    let out = Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["okx", "sign", "--timestamp", "x", "--method", "GET", "--path", "/"])
        .env_remove("OKX_API_SECRET")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("tradebox runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OKX_API_SECRET"));
}

/// The user's path to OKX without an account: `tradebox sim` in one terminal, `tradebox run`
/// with `kind = "okx"` pointed at it in another.
#[test]
fn run_trades_through_the_okx_path_against_tradebox_sim() {
    let dir = tempfile::tempdir().expect("tmp");
    let (sim, url) = standalone_sim(dir.path(), 5, "cli-key", "cli-secret-4e8d2b", "cli-pass-77");
    let mm = plugin_dir().join("market-maker.wasm");
    let host_toml = dir.path().join("host.toml");
    std::fs::write(
        &host_toml,
        format!(
            r#"
            [venue]
            kind = "okx"
            [venue.okx]
            rest_url = "{url}"
            ws_url = "{ws}"
            instruments = ["ETH-USDT"]
            credentials_file = "okx.env"
            poll_ms = 100
            [audit]
            path = "audit.jsonl"
            [admin]
            listen = "127.0.0.1:0"
            token_file = "admin.token"
            [[plugin]]
            name = "mm"
            path = "{}"
            instruments = ["ETH-USDT"]
            config = {{ symbol = "ETH-USDT", spread_bps = 2, size = 0.05, max_inventory = 1 }}
            "#,
            mm.display(),
            ws = url.replacen("http://", "ws://", 1),
        ),
    )
    .expect("host config");
    let host = Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["run", "--config", host_toml.to_str().expect("utf-8"), "--duration", "6s"])
        .env("RUST_BACKTRACE", "0")
        .env("XDG_CACHE_HOME", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-xdg-cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tradebox runs");
    // Once the admin token is written the keys are loaded: the host must have turned off core
    // dumps (and made itself non-dumpable) before that.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dir.path().join("admin.token").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", host.id())).unwrap_or_default();
    let out = host.wait_with_output().expect("tradebox ends");
    let (ok, stdout, stderr) = (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    drop(sim);
    assert!(ok, "run failed:\n{stderr}");
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap_or_default();
    assert_eq!(core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(), ["0", "0"], "{limits}");
    assert!(stdout.contains("mm"), "{stdout}");
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("the audit log was written");
    assert!(audit.contains("\"kind\":\"request\"") && audit.contains("/api/v5/trade/order"), "no order request");
    assert!(audit.contains("\"kind\":\"intent\"") && audit.contains("\"decision\":\"approved\""));
    for secret in ["cli-secret-4e8d2b", "cli-pass-77"] {
        assert!(!audit.contains(secret) && !stdout.contains(secret) && !stderr.contains(secret), "{secret} leaked");
    }
}

#[test]
fn feed_check_summarises_a_recording() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../okx/tests/data/tardis_okx_v5_msgs.jsonl");
    let (ok, stdout, stderr) = tradebox(&["feed", "check", fixture.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(
        last, "messages 39, parse errors 0, books checked 4, checksum mismatches 2, sequence gaps 4",
        "{stdout}"
    );
    assert!(stdout.contains("not read by the host: channel \"mark-price\""), "{stdout}");
    let (ok, _, stderr) = tradebox(&["feed", "check", "/no/such/recording.jsonl"]);
    assert!(!ok && stderr.contains("/no/such/recording.jsonl"), "{stderr}");
}

/// `bytes` with a custom section appended: the same plugin, another hash (a rebuild).
fn rebuilt(mut bytes: Vec<u8>, note: &str) -> Vec<u8> {
    let name = b"tradebox-test";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(note.as_bytes());
    assert!(payload.len() < 128, "one LEB128 byte");
    bytes.push(0);
    bytes.push(payload.len() as u8);
    bytes.extend(payload);
    bytes
}

/// A `tradebox run` child process, killed when the test ends however it ends.
struct Running(std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tradebox sim` on a free loopback port with one key, and the owner-only credentials file
/// `okx.env` for it in `dir`; returns the process (killed when dropped) and its URL.
fn standalone_sim(dir: &std::path::Path, seed: u32, key: &str, secret: &str, passphrase: &str) -> (Running, String) {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    let sim_toml = dir.join("sim.toml");
    let config = format!(
        "[market]\nseed = {seed}\nstep_ms = 20\n[[key]]\napi_key = {key:?}\nsecret = {secret:?}\npassphrase = {passphrase:?}\n"
    );
    std::fs::write(&sim_toml, config).expect("sim config");
    let mut sim = Running(
        Command::new(env!("CARGO_BIN_EXE_tradebox"))
            .args(["sim", "--config"])
            .arg(&sim_toml)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sim starts"),
    );
    let mut first = String::new();
    BufReader::new(sim.0.stdout.take().expect("stdout")).read_line(&mut first).expect("sim prints its address");
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).expect("a URL").to_string();
    let creds = dir.join("okx.env");
    let env = format!("OKX_API_KEY={key}\nOKX_API_SECRET={secret}\nOKX_API_PASSPHRASE={passphrase}\n");
    std::fs::write(&creds, env).expect("creds");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (sim, url)
}

/// `tradebox run --config CONFIG ARGS` for a minute, and the URL of its admin API.
fn running_host(config: &std::path::Path, args: &[&str]) -> (Running, String) {
    use std::io::{BufRead, BufReader};
    let mut host = Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["run", "--config", config.to_str().expect("utf-8"), "--duration", "60s"])
        .args(args)
        .env("XDG_CACHE_HOME", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-xdg-cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tradebox run starts");
    let mut lines = BufReader::new(host.stdout.take().expect("stdout")).lines();
    let url = loop {
        let line = lines.next().expect("the host prints its admin address").expect("utf-8");
        if let Some(rest) = line.strip_prefix("admin API at ") {
            break rest.split_whitespace().next().expect("url").to_string();
        }
    };
    // Keep reading, so the host never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Running(host), url)
}

#[test]
fn plugins_are_loaded_reloaded_and_unloaded_in_a_running_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("mkdir");
    let mm = plugins.join("mm.wasm");
    let counter = plugins.join("counter.wasm");
    std::fs::copy(plugin_dir().join("market-maker.wasm"), &mm).expect("copy");
    std::fs::copy(plugin_dir().join("noop.wasm"), &counter).expect("copy");
    let token = dir.path().join("admin.token");
    let config = format!(
        r#"
        [venue]
        kind = "sim"
        [admin]
        listen = "127.0.0.1:0"
        token_file = "{}"
        [audit]
        path = "audit.jsonl"
        [[plugin]]
        name = "mm"
        path = "plugins/mm.wasm"
        instruments = ["ETH-USDT"]
        config = {{ symbol = "ETH-USDT", spread_bps = 4 }}
        "#,
        token.display(),
    );
    let path = dir.path().join("tradebox.toml");
    std::fs::write(&path, config).expect("write config");
    let watch = plugins.to_str().expect("utf-8");
    let (mut host, url) = running_host(&path, &["--watch", watch]);
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--admin", &url, "--token-file", token.to_str().expect("utf-8")]);
        tradebox(&all)
    };
    let listed = |name: &str| -> Option<serde_json::Value> {
        let (ok, out, stderr) = cli(&["plugin", "list", "--json"]);
        assert!(ok, "{stderr}");
        let all: serde_json::Value = serde_json::from_str(&out).expect("json");
        all["plugins"].as_array().expect("plugins").iter().find(|p| p["name"] == name).cloned()
    };
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        for _ in 0..150 {
            if done() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}");
    };
    let (ok, table, stderr) = cli(&["plugin", "list"]);
    assert!(ok && table.contains("mm") && table.contains("Running"), "{table}{stderr}");

    // Load a second plugin by path.
    let config = r#"{"symbol":"BTC-USDT","timer_ms":100}"#;
    let args = ["plugin", "load", counter.to_str().expect("utf-8"), "--instrument", "BTC-USDT", "--config", config];
    let (ok, out, stderr) = cli(&args);
    assert!(ok && out.contains("\"plugin\":\"counter\""), "{out}{stderr}");
    let (ok, _, stderr) = cli(&args);
    assert!(!ok && stderr.contains("already loaded"), "{stderr}");

    // Reload mm from its file: its state (the fill count) goes across.
    wait_for("mm to quote", &|| {
        listed("mm").is_some_and(|p| p["open_orders"].as_array().is_some_and(|o| !o.is_empty()))
    });
    let (ok, out, stderr) = cli(&["plugin", "reload", "mm"]);
    assert!(ok && out.contains("\"state_bytes\":8"), "{out}{stderr}");
    // A broken build is refused; mm keeps trading.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm not really").expect("write");
    let (ok, _, stderr) = cli(&["plugin", "reload", "mm", junk.to_str().expect("utf-8")]);
    assert!(!ok && stderr.contains("not a valid wasm component") && stderr.contains("keeps trading"), "{stderr}");
    let (ok, _, stderr) = cli(&["plugin", "reload", "nobody"]);
    assert!(!ok && stderr.contains("no plugin named"), "{stderr}");
    let mm_now = listed("mm").expect("mm");
    assert_eq!((mm_now["reloads"].as_u64(), mm_now["run_state"].as_str()), (Some(1), Some("Running")));

    // Watch mode: a new build of mm saved over its file is swapped in.
    let new_mm = rebuilt(std::fs::read(&mm).expect("read"), "v2");
    std::fs::write(&mm, &new_mm).expect("save");
    wait_for("the watcher to reload mm", &|| listed("mm").is_some_and(|p| p["reloads"] == 2));
    // A build written in two halves, the second before the file settles, is read once, whole.
    let new_counter = rebuilt(std::fs::read(&counter).expect("read"), "v2");
    let (first, second) = new_counter.split_at(new_counter.len() / 2);
    std::fs::write(&counter, first).expect("half");
    std::thread::sleep(std::time::Duration::from_millis(150));
    let mut file = std::fs::OpenOptions::new().append(true).open(&counter).expect("open");
    std::io::Write::write_all(&mut file, second).expect("rest");
    drop(file);
    wait_for("the watcher to reload counter", &|| listed("counter").is_some_and(|p| p["reloads"] == 1));

    // Metrics, behind the token.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let metrics =
        rt.block_on(tradebox::admin::client::request(&url, &token, "GET", "/metrics", None)).expect("metrics");
    let text = metrics.as_str().expect("text");
    for line in ["tradebox_plugin_reloads_total{plugin=\"mm\"} 2", "tradebox_plugins_loaded 2"] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    assert!(text.contains("tradebox_plugin_call_seconds_bucket{"), "{text}");

    let (ok, out, stderr) = cli(&["plugin", "unload", "counter", "--leave-orders"]);
    assert!(ok && out.contains("left working"), "{out}{stderr}");
    assert!(listed("counter").is_none());
    let (ok, _, stderr) = cli(&["plugin", "unload", "counter"]);
    assert!(!ok && stderr.contains("no plugin named"), "{stderr}");
    let _ = host.kill();
    let _ = host.wait();

    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("audit log");
    let events: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .filter(|r| {
            r["event"].as_str().is_some_and(|e| {
                ["plugin_loaded", "plugin_reloaded", "plugin_reload_refused", "plugin_unloaded"].contains(&e)
            })
        })
        .collect();
    let seen: Vec<String> = events
        .iter()
        .map(|r| {
            let detail: serde_json::Value =
                serde_json::from_str(r["detail"].as_str().unwrap_or("{}")).unwrap_or_default();
            let by = detail["by"].as_str().unwrap_or("").split(' ').next().unwrap_or("").to_string();
            format!("{} {} {}", r["plugin"].as_str().unwrap_or(""), r["event"].as_str().unwrap_or(""), by)
        })
        .collect();
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let expected = [
        "mm plugin_loaded config".to_string(),
        format!("counter plugin_loaded {user}"),
        format!("mm plugin_reloaded {user}"),
        format!("mm plugin_reload_refused {user}"),
        "mm plugin_reloaded watch".into(),
        "counter plugin_reloaded watch".into(),
        format!("counter plugin_unloaded {user}"),
    ];
    assert_eq!(seen, expected);
}

#[test]
fn a_second_user_signs_a_strategy_and_the_operator_inspects_grants_and_runs_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    // The author: a key pair, a build, a signature, in place.
    let (ok, out, stderr) = tradebox(&["plugin", "keygen", "--out", &path("alice")]);
    assert!(ok && out.contains("public key: ed25519:"), "{out}{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path("alice")).expect("secret key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the secret key is owner-only");
    }
    let (ok, _, stderr) = tradebox(&["plugin", "keygen", "--out", &path("alice")]);
    assert!(!ok && !stderr.is_empty(), "an existing key is never overwritten");
    std::fs::copy(plugin_dir().join("sma-cross.wasm"), path("sma.wasm")).expect("copy");
    let (ok, out, stderr) = tradebox(&["plugin", "sign", "--key", &path("alice"), &path("sma.wasm")]);
    assert!(ok && out.contains("signed"), "{out}{stderr}");

    // The operator: trusts alice's public key, inspects the one file, grants it, runs it.
    let config = |plugin_file: &str, instruments: &str| {
        format!(
            r#"
            [venue]
            kind = "sim"
            [admin]
            enabled = false
            [signing]
            require = "always"
            trusted = ["alice.pub"]
            [audit]
            path = "audit.jsonl"
            [[plugin]]
            name = "sma"
            path = "{plugin_file}"
            instruments = {instruments}
            config = {{ symbol = "BTC-USDT", fast = 3, slow = 8 }}
            "#
        )
    };
    std::fs::write(path("operator.toml"), config("sma.wasm", r#"["BTC-USDT"]"#)).expect("config");
    let (ok, out, stderr) = tradebox(&["plugin", "inspect", &path("sma.wasm"), "--config", &path("operator.toml")]);
    assert!(ok, "{stderr}");
    for line in
        ["sma-cross 0.1.0", "tradebox:strategy@0.1.0: served", "tradebox:strategy/orders@0.1.0: place", "(trusted)"]
    {
        assert!(out.contains(line), "{line} missing from:\n{out}");
    }
    assert!(out.contains("no network, files, environment or clocks"), "{out}");
    let (ok, out, _) = tradebox(&["plugin", "inspect", &path("sma.wasm"), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(ok && report["signature"]["status"] == "valid" && report["manifest"]["name"] == "sma-cross", "{out}");
    assert_eq!(report["sha256"].as_str().map(str::len), Some(64));
    let run = |config: &str| tradebox(&["run", "--config", &path(config), "--duration", "2s"]);
    let (ok, out, stderr) = run("operator.toml");
    assert!(ok && out.contains("sma"), "{out}{stderr}");
    let audit = std::fs::read_to_string(path("audit.jsonl")).expect("audit");
    assert!(audit.contains("plugin_loaded") && audit.contains("(trusted)"), "{audit}");

    // Tampered, unsigned and over-asking files are refused, each with its reason.
    let mut tampered = std::fs::read(path("sma.wasm")).expect("read");
    let at = tampered.windows(14).position(|w| w == b"Moving-average").expect("the manifest's description");
    tampered[at] = b'm';
    std::fs::write(path("tampered.wasm"), tampered).expect("write");
    std::fs::write(path("tampered.toml"), config("tampered.wasm", r#"["BTC-USDT"]"#)).expect("config");
    let (ok, _, stderr) = run("tampered.toml");
    assert!(!ok && stderr.contains("signature is invalid"), "{stderr}");
    let (_, out, _) = tradebox(&["plugin", "inspect", &path("tampered.wasm")]);
    assert!(out.contains("INVALID") && out.contains("refused"), "{out}");
    std::fs::copy(plugin_dir().join("sma-cross.wasm"), path("unsigned.wasm")).expect("copy");
    std::fs::write(path("unsigned.toml"), config("unsigned.wasm", r#"["BTC-USDT"]"#)).expect("config");
    let (ok, _, stderr) = run("unsigned.toml");
    assert!(!ok && stderr.contains("not signed"), "{stderr}");
    std::fs::write(path("narrow.toml"), config("sma.wasm", r#"["ETH-USDT"]"#)).expect("config");
    let (ok, _, stderr) = run("narrow.toml");
    assert!(!ok && stderr.contains("instrument BTC-USDT (granted: ETH-USDT)"), "{stderr}");

    // Into a running host, with the grant given on the command line: the config is untouched.
    let running = format!(
        r#"
        [venue]
        kind = "sim"
        [signing]
        require = "always"
        trusted = ["alice.pub"]
        [admin]
        listen = "127.0.0.1:0"
        token_file = "{}"
        "#,
        path("admin.token")
    );
    std::fs::write(path("running.toml"), running).expect("config");
    let (mut host, url) = running_host(&dir.path().join("running.toml"), &[]);
    let token = path("admin.token");
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--admin", &url, "--token-file", &token]);
        tradebox(&all)
    };
    let sma_config = r#"{"symbol":"BTC-USDT","fast":3,"slow":8}"#;
    let (ok, _, stderr) =
        cli(&["plugin", "load", &path("unsigned.wasm"), "--instrument", "BTC-USDT", "--config", sma_config]);
    assert!(!ok && stderr.contains("not signed"), "{stderr}");
    let (ok, out, stderr) =
        cli(&["plugin", "load", &path("sma.wasm"), "--instrument", "BTC-USDT", "--config", sma_config]);
    assert!(ok, "{out}{stderr}");
    let mut traded = false;
    for _ in 0..300 {
        let (_, out, _) = cli(&["plugin", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&out).expect("json");
        let sma = list["plugins"].as_array().and_then(|p| p.iter().find(|p| p["name"] == "sma").cloned());
        let sma = sma.expect("sma is listed");
        assert_eq!(sma["version"], "0.1.0");
        assert!(sma["signer"].as_str().is_some_and(|s| s.ends_with("(trusted)")), "{sma}");
        assert_eq!(sma["requested"]["instruments"], serde_json::json!(["BTC-USDT"]));
        if sma["fills"].as_u64().unwrap_or(0) > 0 {
            traded = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = host.kill();
    let _ = host.wait();
    assert!(traded, "the shared strategy traded in the running host");
}

#[test]
fn a_component_built_without_the_sdk_gets_a_manifest_from_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    // A component with no manifest (as another language's toolchain would build it): noop's
    // section renamed, same length.
    let mut bare = std::fs::read(plugin_dir().join("noop.wasm")).expect("noop");
    let at = bare.windows(17).position(|w| w == b"tradebox-manifest").expect("noop's manifest");
    bare[at + 16] = b'X';
    std::fs::write(path("counter.wasm"), &bare).expect("write");
    let (_, out, _) = tradebox(&["plugin", "inspect", &path("counter.wasm")]);
    assert!(out.contains("manifest   none"), "{out}");

    std::fs::write(
        path("tradebox.toml"),
        "[permissions]\ninstruments = [\"{symbol}\"]\nchannels = [\"tickers\", \"trades\"]\n\
         [config.symbol]\ntype = \"string\"\ndefault = \"\"\n[config.timer_ms]\ntype = \"integer\"\ndefault = 0\n",
    )
    .expect("write");
    std::fs::write(path("bad.toml"), "[permissions]\norder_types = [\"stop\"]\n").expect("write");
    let manifest = |toml: &str| {
        tradebox(&[
            "plugin",
            "manifest",
            &path("counter.wasm"),
            "--from",
            &path(toml),
            "--name",
            "counter",
            "--version",
            "2.0.0",
            "--author",
            "Bob <bob@example.com>",
            "--license",
            "MIT",
        ])
    };
    let (ok, _, stderr) = manifest("bad.toml");
    assert!(!ok && stderr.contains("stop"), "a bad tradebox.toml is refused: {stderr}");
    // Signed first, then given a manifest: the stale signature goes, and says so.
    tradebox(&["plugin", "keygen", "--out", &path("bob")]);
    tradebox(&["plugin", "sign", "--key", &path("bob"), &path("counter.wasm")]);
    let (ok, out, stderr) = manifest("tradebox.toml");
    assert!(ok && out.contains("counter 2.0.0") && out.contains("sign it again"), "{out}{stderr}");
    let (_, out, _) = tradebox(&["plugin", "inspect", &path("counter.wasm"), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["manifest"]["version"], "2.0.0");
    assert_eq!(report["manifest"]["authors"], serde_json::json!(["Bob <bob@example.com>"]));
    assert_eq!(report["signature"]["status"], "unsigned");

    // With the manifest, the grant means something: it subscribes to what it was granted.
    let config = r#"
        [venue]
        kind = "sim"
        [admin]
        enabled = false
        [[plugin]]
        name = "counter"
        path = "counter.wasm"
        instruments = ["BTC-USDT"]
        config = { symbol = "BTC-USDT" }
        "#;
    std::fs::write(path("host.toml"), config).expect("config");
    let (ok, out, stderr) = tradebox(&["run", "--config", &path("host.toml"), "--duration", "1s"]);
    assert!(ok && out.contains("counter"), "{out}{stderr}");
}

#[test]
fn a_new_version_is_staged_on_the_simulated_venue_then_promoted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    std::fs::copy(plugin_dir().join("market-maker.wasm"), path("mm.wasm")).expect("copy");
    let v2 = rebuilt(std::fs::read(path("mm.wasm")).expect("read"), "v2");
    std::fs::write(path("mm2.wasm"), v2).expect("write");
    let config = format!(
        r#"
        [venue]
        kind = "sim"
        [staging]
        enabled = true
        [admin]
        listen = "127.0.0.1:0"
        token_file = "{}"
        token_from = "given.token"
        [audit]
        path = "audit.jsonl"
        [[plugin]]
        name = "mm"
        path = "mm.wasm"
        instruments = ["ETH-USDT"]
        config = {{ symbol = "ETH-USDT", spread_bps = 4 }}
        "#,
        path("admin.token")
    );
    std::fs::write(path("host.toml"), config).expect("config");
    // A token the operator keeps across restarts (owner-only), rather than a new one each start.
    let given = "0123456789abcdef0123456789abcdef";
    std::fs::write(path("given.token"), given).expect("token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path("given.token"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let (mut host, url) = running_host(&dir.path().join("host.toml"), &[]);
    let token = path("given.token");
    assert_eq!(std::fs::read_to_string(path("admin.token")).expect("written for the CLI"), given);
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--admin", &url, "--token-file", &token]);
        tradebox(&all)
    };
    let list = || -> serde_json::Value {
        let (ok, out, stderr) = cli(&["plugin", "list", "--json"]);
        assert!(ok, "{stderr}");
        serde_json::from_str(&out).expect("json")
    };
    let running = list()["plugins"][0]["hash"].as_str().expect("hash").to_string();

    let (ok, out, stderr) = cli(&["plugin", "reload", "mm", &path("mm2.wasm"), "--staged"]);
    assert!(ok && out.contains("\"staged\":true"), "{out}{stderr}");
    let staged = list()["staged"][0]["hash"].as_str().expect("a staged mm").to_string();
    assert_ne!(staged, running);
    assert_eq!(list()["plugins"][0]["hash"], running.as_str(), "the running version keeps trading");
    let (_, table, _) = cli(&["plugin", "list"]);
    assert!(table.contains("staged on the staging venue"), "{table}");

    let (ok, out, stderr) = cli(&["plugin", "promote", "mm"]);
    assert!(ok && out.contains("\"promoted\":\"reloaded\""), "{out}{stderr}");
    let now = list();
    assert_eq!(now["plugins"][0]["hash"], staged.as_str());
    let source = now["plugins"][0]["source"].as_str().unwrap_or_default().to_string();
    assert!(source.ends_with("mm2.wasm"), "the promoted version's file is the plugin's source now: {source}");
    assert_eq!(now["staged"].as_array().map(Vec::len), Some(0));
    let (ok, _, stderr) = cli(&["plugin", "promote", "mm"]);
    assert!(!ok && stderr.contains("is staged"), "{stderr}");
    let _ = host.kill();
    let _ = host.wait();
    let audit = std::fs::read_to_string(path("audit.jsonl")).expect("audit");
    assert!(audit.contains("plugin_staged") && audit.contains("plugin_promoted"), "{audit}");
}

/// `kill -9` of a host trading on a standalone `tradebox sim`, then a restart with the same
/// config: the orders the dead run left are cancelled before any plugin starts, no client
/// order id of the first run is sent again (a restart within the same second is the unit test
/// `a_restart_within_the_same_second_mints_new_ids`), and the audit log survives a torn last
/// line.
#[test]
fn a_host_killed_mid_trade_restarts_clean() {
    let dir = tempfile::tempdir().expect("tmp");
    let rig = CrashRig::new(dir.path(), 11, "cancel");
    let left = rig.first_run_dies();
    // The crash tore the audit log's last line.
    let audit_path = dir.path().join("audit.jsonl");
    {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&audit_path)
            .and_then(|mut f| f.write_all(br#"{"ts":"2026-12-06T00:00:00.000Z","seq":99"#))
            .expect("tear");
    }

    // The restart: same config, a few seconds of trading.
    let out = rig.run(Some("4s")).output().expect("restart runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "restart failed:\n{stderr}");
    let still: Vec<String> = rig.ours().into_iter().filter(|id| left.contains(id)).collect();
    assert!(still.is_empty(), "orders of the dead run are still open: {still:?}");
    for id in &left {
        assert!(rig.state(id).is_terminal(), "{id} is {:?}", rig.state(id));
    }
    // Every complete line parses; the torn one was cut and the cut recorded; each left order
    // is accounted for; no client order id of the first run was sent again.
    let records = rig.audit();
    assert!(records.iter().any(|r| r["event"] == "audit_repaired"), "the torn line was reported");
    // (An order left open may fill between the kill and the restart: at most one record each.)
    let settled = records.iter().filter(|r| r["event"] == "order_at_start").count();
    assert!((1..=left.len()).contains(&settled), "{settled} records for {} orders left by the dead run", left.len());
    let restart = records.iter().rposition(|r| r["event"] == "audit_repaired").expect("repair");
    let resent: Vec<&serde_json::Value> = records[restart..]
        .iter()
        .filter(|r| r["kind"] == "intent" && left.contains(r["client_id"].as_str().unwrap_or_default()))
        .collect();
    assert!(resent.is_empty(), "ids of the first run minted again: {resent:?}");
    assert!(records[restart..].iter().any(|r| r["kind"] == "intent"), "the restarted host traded");
}

/// `orders_at_start = "adopt"`: the restarted host keeps the dead run's orders open, tracks
/// them as its own, and the account kill switch (SIGUSR1 here) cancels them at the exchange.
#[test]
fn a_restarted_host_adopts_the_orders_left_open_and_the_kill_switch_reaches_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let rig = CrashRig::new(dir.path(), 12, "adopt");
    let left = rig.first_run_dies();
    let mut host = Running(
        rig.run(None).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("restart"),
    );
    // Wait for the restart to have adopted what was still open.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let adopted: Vec<String> = loop {
        assert!(std::time::Instant::now() < deadline, "the restart never adopted the orders left open");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let records = rig.audit_lenient();
        let started = records.iter().filter(|r| r["event"] == "host_start").count() == 2;
        let adopted: Vec<String> = records
            .iter()
            .filter(|r| r["event"] == "order_at_start")
            .filter_map(|r| r["detail"].as_str()?.strip_prefix("adopted: ")?.split(' ').next().map(String::from))
            .collect();
        if started && !adopted.is_empty() {
            break adopted;
        }
    };
    assert!(adopted.iter().all(|id| left.contains(id)), "adopted {adopted:?}, left {left:?}");
    // Adopted, not cancelled: still open (or filled by the market meanwhile).
    for id in &adopted {
        let state = rig.state(id);
        assert!(state != tradebox_okx::model::OrderState::Canceled, "{id} was cancelled at start: {state:?}");
    }
    // The account kill switch reaches them.
    let killed = Command::new("kill").args(["-USR1", &host.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while rig.ours().iter().any(|id| adopted.contains(id)) {
        assert!(std::time::Instant::now() < deadline, "the kill switch left adopted orders open");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Their end reaches the audit trail as the host's own orders (by push or the next poll).
    let ended = |records: &[serde_json::Value], id: &String| {
        records.iter().any(|r| {
            r["kind"] == "order"
                && r["client_id"] == id.as_str()
                && matches!(r["state"].as_str(), Some("canceled" | "filled"))
        })
    };
    while !adopted.iter().all(|id| ended(&rig.audit_lenient(), id)) {
        assert!(std::time::Instant::now() < deadline, "an adopted order's end is missing from the audit trail");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = host.0.kill();
    let _ = host.0.wait();
}

/// A standalone `tradebox sim` and a host config trading the market maker on it, for crash
/// and restart tests.
struct CrashRig {
    _sim: Running,
    dir: PathBuf,
    host_toml: PathBuf,
    rt: tokio::runtime::Runtime,
    exchange: tradebox_okx::RestClient,
}

impl CrashRig {
    fn new(dir: &std::path::Path, seed: u32, orders_at_start: &str) -> Self {
        use tradebox_okx::{ClockSync, Credentials, RestClient, RestConfig, Signer};
        let (sim, url) = standalone_sim(dir, seed, "crash-key", "crash-secret-91f2", "crash-pass-3");
        let host_toml = dir.join("host.toml");
        std::fs::write(
            &host_toml,
            format!(
                r#"
                [venue]
                kind = "okx"
                [venue.okx]
                rest_url = "{url}"
                ws_url = "{ws}"
                instruments = ["ETH-USDT"]
                credentials_file = "okx.env"
                poll_ms = 100
                dead_man_s = 0
                orders_at_start = "{orders_at_start}"
                [audit]
                path = "audit.jsonl"
                [admin]
                enabled = false
                [[plugin]]
                name = "mm"
                path = "{mm}"
                instruments = ["ETH-USDT"]
                config = {{ symbol = "ETH-USDT", spread_bps = 20, size = 0.05, max_inventory = 1 }}
                "#,
                ws = url.replacen("http://", "ws://", 1),
                mm = plugin_dir().join("market-maker.wasm").display(),
            ),
        )
        .expect("host config");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let signer = Signer::new(Credentials::new("crash-key", "crash-secret-91f2", "crash-pass-3"));
        let config = RestConfig {
            base_url: url,
            demo: true,
            timeout: std::time::Duration::from_secs(5),
            tls: Default::default(),
        };
        let exchange = RestClient::new(config, Some(signer), std::sync::Arc::new(ClockSync::new())).expect("client");
        Self { _sim: sim, dir: dir.to_path_buf(), host_toml, rt, exchange }
    }

    /// Client ids of this host's open orders at the exchange.
    fn ours(&self) -> Vec<String> {
        let pending = self.rt.block_on(self.exchange.pending_orders(None, None)).expect("pending orders");
        pending.into_iter().filter(|d| d.cl_ord_id.starts_with("tb")).map(|d| d.cl_ord_id).collect()
    }

    fn state(&self, id: &str) -> tradebox_okx::model::OrderState {
        let by = tradebox_okx::OrderRef::ClOrdId(id);
        self.rt.block_on(self.exchange.order_details("ETH-USDT", by)).expect("the order is known").state
    }

    fn run(&self, duration: Option<&str>) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tradebox"));
        cmd.args(["run", "--config", self.host_toml.to_str().expect("utf-8")]);
        if let Some(d) = duration {
            cmd.args(["--duration", d]);
        }
        cmd.env("RUST_BACKTRACE", "0")
            .env("XDG_CACHE_HOME", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-xdg-cache"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }

    /// A first run rests quotes on the exchange, then dies without a word (`kill -9`);
    /// returns the ids it left open.
    fn first_run_dies(&self) -> std::collections::HashSet<String> {
        let mut host = Running(
            self.run(None)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("host starts"),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while self.ours().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the first run never rested an order");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        host.0.kill().expect("kill -9");
        let _ = host.0.wait();
        let left: std::collections::HashSet<String> = self.ours().into_iter().collect();
        assert!(!left.is_empty(), "the dead run's orders are still on the exchange");
        left
    }

    /// Every audit record; each line must parse.
    fn audit(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join("audit.jsonl")).expect("audit");
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
    }

    /// The audit records of a log still being written (a line being written is left out).
    fn audit_lenient(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join("audit.jsonl")).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

/// `tradebox keys reload` and SIGHUP rotate the key of a host on the OKX path: the file now
/// names a key the simulator does not know, so the new key is refused and the old one stays;
/// audited both times.
#[test]
fn keys_reload_through_the_cli_and_sighup_checks_the_new_key_first() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let (sim, url) = standalone_sim(dir.path(), 9, "cli-rot-key", "cli-rot-secret-5a1", "cli-rot-pass");
    let token = dir.path().join("admin.token");
    let config = format!(
        r#"
        [venue]
        kind = "okx"
        [venue.okx]
        rest_url = "{url}"
        ws_url = "{ws}"
        instruments = ["BTC-USDT"]
        credentials_file = "okx.env"
        [audit]
        path = "audit.jsonl"
        [admin]
        listen = "127.0.0.1:0"
        token_file = "{token}"
        "#,
        ws = url.replacen("http://", "ws://", 1),
        token = token.display(),
    );
    let path = dir.path().join("host.toml");
    std::fs::write(&path, config).expect("config");
    let (host, admin) = running_host(&path, &[]);
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--admin", &admin, "--token-file", token.to_str().expect("utf-8")]);
        tradebox(&all)
    };
    // The same key again: nothing to switch.
    let (ok, out, stderr) = cli(&["keys", "reload"]);
    assert!(ok && out.contains("unchanged"), "{out}{stderr}");
    // A key OKX does not know: refused, in words; the old one stays.
    let creds = dir.path().join("okx.env");
    std::fs::write(&creds, "OKX_API_KEY=unknown\nOKX_API_SECRET=x\nOKX_API_PASSPHRASE=y\n").expect("creds");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (ok, out, stderr) = cli(&["keys", "reload"]);
    assert!(!ok && stderr.contains("stays") && stderr.contains("50111"), "{out}{stderr}");
    // SIGHUP does the same.
    let pid = host.0.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    let audit = dir.path().join("audit.jsonl");
    let refused =
        |n: usize| std::fs::read_to_string(&audit).unwrap_or_default().matches("\"key_refused\"").count() >= n;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !refused(2) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(refused(2), "SIGHUP tried the new key too");
    let (ok, status, _) = cli(&["status"]);
    assert!(ok && status.contains("active"), "still trading with the old key: {status}");
    let text = std::fs::read_to_string(&audit).expect("audit");
    assert!(text.contains("\"key_unchanged\"") && !text.contains("cli-rot-secret-5a1"));
    drop(host);
    drop(sim);
}

/// Candles for the backtest tests, written as CSV into `dir`.
fn candle_file(dir: &std::path::Path, name: &str, count: usize, seed: u64) -> PathBuf {
    let bars = tradebox_data::synthetic::random_walk(seed, count, 1_704_067_200_000, 60_000, 60_000.0, 0.0008, 0.1);
    let mut text = Vec::new();
    tradebox_data::synthetic::write_csv(&bars, &mut text).expect("csv");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn last_json(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().last().expect("a last line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("the last line is not JSON ({e}): {stdout}"))
}

#[test]
fn backtest_quick_form_prints_a_table_json_and_writes_the_report() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = candle_file(dir.path(), "btc.csv", 3_000, 4);
    let sma = plugin_dir().join("sma-cross.wasm");
    let report = dir.path().join("report");
    let (ok, stdout, stderr) = tradebox(&[
        "backtest",
        sma.to_str().expect("path"),
        "--instrument",
        "BTC-USDT",
        "--data",
        data.to_str().expect("path"),
        "--config",
        r#"{"source":"candle","fast":10,"slow":30,"size":0.01}"#,
        "--fee-tier",
        "Lv1",
        "--balance",
        "USDT=100000",
        "--report",
        report.to_str().expect("path"),
        "--json",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let summary = last_json(&stdout);
    for key in ["bars", "round_trips", "pnl", "fees", "max_drawdown", "sharpe", "elapsed_s", "events_per_s"] {
        assert!(summary.get(key).is_some(), "{key} missing: {summary}");
        assert!(summary["plugins"][0].get(key).is_some(), "plugins[0].{key} missing: {summary}");
    }
    assert_eq!(summary["bars"], 3_000);
    assert!(summary["round_trips"].as_u64().unwrap_or(0) > 10, "{summary}");
    assert!(summary["fees"].as_f64().unwrap_or(0.0) > 0.0, "Lv1 charges fees: {summary}");
    assert!(stdout.contains("sma-cross") && stdout.contains("total"), "the table: {stdout}");
    for file in ["report.html", "report.json", "trades.csv", "summary.csv", "equity.csv"] {
        assert!(report.join(file).is_file(), "{file} written");
    }
    let page = std::fs::read_to_string(report.join("report.html")).expect("page");
    assert!(page.contains("<svg") && !page.contains("<script"), "a self-contained page");
    let trades = std::fs::read_to_string(report.join("trades.csv")).expect("trades");
    assert_eq!(trades.lines().count() as u64 - 1, summary["round_trips"].as_u64().unwrap_or(0));

    // Bad input: one readable line each, nothing run.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "ts_ms,open,high,low,close,volume\n60000,10,12,9,11,5\n120000,10,9,9,11,5\n").expect("write");
    let cases: [(&[&str], &str); 4] = [
        (&["--data", bad.to_str().expect("path")], "bad.csv:3: low 9 and high 9 must bracket"),
        (
            &["--data", data.to_str().expect("path"), "--fill", "book"],
            "candles replay with the next-open or close fill model, not book",
        ),
        (&["--data", data.to_str().expect("path"), "--fee-tier", "gold"], "unknown fee tier"),
        (&["--data", data.to_str().expect("path"), "--config", "{nope"], "is not JSON"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["backtest", sma.to_str().expect("path"), "--instrument", "BTC-USDT"];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = tradebox(&args);
        assert!(!ok, "{extra:?}: {stdout}");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
        assert_eq!(stderr.trim().lines().filter(|l| l.starts_with("error")).count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    }
}

/// Funding paid on a swap shows in the table, `--json` and `summary.csv` as the same figure,
/// under a header that says the first count is bars.
#[test]
fn backtest_funding_and_bars_read_the_same_in_every_rendering() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = candle_file(dir.path(), "swap.csv", 3_000, 4);
    // 0.01% every eight hours over the file's 50 hours.
    let funding = dir.path().join("funding.csv");
    let rows: String = (0..7).map(|i| format!("{},0.0001\n", 1_704_067_200_000_i64 + i * 8 * 3_600_000)).collect();
    std::fs::write(&funding, format!("ts_ms,rate\n{rows}")).expect("write");
    let report = dir.path().join("report");
    let sma = plugin_dir().join("sma-cross.wasm");
    let (ok, stdout, stderr) = tradebox(&[
        "backtest",
        sma.to_str().expect("path"),
        "--instrument",
        "BTC-USDT-SWAP",
        "--data",
        data.to_str().expect("path"),
        "--config",
        r#"{"source":"candle","fast":10,"slow":30,"size":1}"#,
        "--balance",
        "USDT=100000",
        "--funding",
        funding.to_str().expect("path"),
        "--report",
        report.to_str().expect("path"),
        "--json",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let summary = last_json(&stdout);
    let paid = summary["funding"].as_f64().expect("funding");
    assert!(paid.abs() >= 0.01, "positions held over funding times pay or earn: {summary}");
    assert_eq!(summary["plugins"][0]["funding"], summary["funding"]);

    let cells =
        |line: &str| -> Vec<String> { line.trim().trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect() };
    let header = cells(stdout.lines().nth(1).expect("a header"));
    assert_eq!(header[1], "bars", "{stdout}");
    let column = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name}: {stdout}"));
    for name in ["sma-cross", "total"] {
        let row = stdout.lines().find(|l| l.starts_with(&format!("| {name} "))).expect("a row");
        let row = cells(row);
        assert_eq!(row[column("funding")], format!("{paid:.2}"), "{stdout}");
        assert_eq!(row[column("bars")], "3000", "{stdout}");
    }
    assert!(stdout.contains("3000 bars in "), "{stdout}");

    let mut csv = csv::Reader::from_path(report.join("summary.csv")).expect("summary");
    let funding_at = csv.headers().expect("header").iter().position(|h| h == "funding").expect("a funding column");
    for row in csv.records() {
        assert_eq!(row.expect("row")[funding_at].parse::<f64>().expect("a number"), paid);
    }
    let page = std::fs::read_to_string(report.join("report.html")).expect("page");
    assert!(page.contains(">funding</th>") && page.contains(&format!(">{paid:.2}</td>")), "the page's table");
}

#[test]
fn backtest_full_form_runs_several_plugins_and_sweeps_shard_and_rank() {
    let dir = tempfile::tempdir().expect("tmp");
    candle_file(dir.path(), "btc.csv", 2_000, 8);
    let sma = plugin_dir().join("sma-cross.wasm");
    let config = dir.path().join("host.toml");
    std::fs::write(
        &config,
        format!(
            r#"[venue]
kind = "sim"
[backtest]
data = [{{ file = "btc.csv", instrument = "BTC-USDT" }}]
fill = "close"
balances = {{ USDT = 1000000 }}
[defaults.risk]
max_order_notional = 1000000
[[plugin]]
name = "fast"
path = {sma:?}
instruments = ["BTC-USDT"]
config = {{ source = "candle", fast = 5, slow = 20, size = 1 }}
[[plugin]]
name = "tight"
path = {sma:?}
instruments = ["BTC-USDT"]
config = {{ source = "candle", fast = 10, slow = 30, size = 1 }}
risk = {{ max_order_notional = 100 }}
"#
        ),
    )
    .expect("config");
    let (ok, stdout, stderr) = tradebox(&["backtest", "--config", config.to_str().expect("path"), "--json"]);
    assert!(ok, "{stdout}\n{stderr}");
    let summary = last_json(&stdout);
    let plugins = summary["plugins"].as_array().expect("plugins");
    assert_eq!(plugins.len(), 2);
    assert_eq!(plugins[0]["name"], "fast");
    assert!(plugins[0]["round_trips"].as_u64().unwrap_or(0) > 5, "{summary}");
    assert_eq!(plugins[1]["fills"], 0, "{summary}");
    assert!(plugins[1]["denied"].as_u64().unwrap_or(0) > 0, "the live limit refuses it here too: {summary}");

    // A sweep in two shards, ranked as one.
    let grid = "fast=4..10:2,slow=20..40:10";
    let shards: Vec<PathBuf> = (0..2).map(|k| dir.path().join(format!("shard-{k}.csv"))).collect();
    for (k, out) in shards.iter().enumerate() {
        let (ok, stdout, stderr) = tradebox_in_env(
            &[
                "backtest",
                sma.to_str().expect("path"),
                "--instrument",
                "BTC-USDT",
                "--data",
                dir.path().join("btc.csv").to_str().expect("path"),
                "--config",
                r#"{"source":"candle","size":1}"#,
                "--balance",
                "USDT=1000000",
                "--sweep",
                grid,
                "--shard",
                "2",
                "--out",
                out.to_str().expect("path"),
                "--json",
            ],
            &[("JOB_COMPLETION_INDEX", &k.to_string())],
        );
        assert!(ok, "{stdout}\n{stderr}");
        assert!(stdout.contains(&format!("(shard {k}/2 of 12)")), "{stdout}");
        // Six runs of the file's 2,000 bars: the rate's bars are the data's, not the events
        // the plugin was handed.
        let summary = last_json(&stdout);
        assert_eq!((summary["runs"].as_u64(), summary["bars"].as_u64()), (Some(6), Some(12_000)), "{summary}");
    }
    let ranked = dir.path().join("ranked.csv");
    let (ok, stdout, stderr) = tradebox(&[
        "backtest",
        "--rank",
        shards[0].to_str().expect("path"),
        shards[1].to_str().expect("path"),
        "--out",
        ranked.to_str().expect("path"),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let mut reader = csv::Reader::from_path(&ranked).expect("ranked csv");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 12, "every run of the grid once");
    let pnl: Vec<f64> = rows.iter().map(|r| r[9].parse().expect("pnl")).collect();
    assert!(pnl.windows(2).all(|w| w[0] >= w[1]), "best first: {pnl:?}");
    assert!(stdout.lines().nth(1).is_some_and(|l| l.trim_start().starts_with('1')), "a ranked table: {stdout}");
}
