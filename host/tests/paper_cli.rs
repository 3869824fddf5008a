//! The README's "Paper trading and recording" flow with the real binary, against the simulator's
//! WebSocket server started in this process: `tradebox run` on a paper config (a plugin trading
//! on the live feed with no keys, the feed recorded), then `tradebox backtest` of that recording
//! with the same plugin file.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tradebox_sim::server::{SimServer, SimServerConfig};

fn plugin(name: &str) -> PathBuf {
    let dir = std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{}: build the plugins first (`cargo xtask plugins`)", path.display());
    path
}

fn tradebox() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tradebox"));
    command
        .env("RUST_BACKTRACE", "0")
        .env("XDG_CACHE_HOME", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-xdg-cache"))
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_paper_with_no_keys_then_backtest_what_it_recorded() {
    let sim = SimServer::start(SimServerConfig::default()).await.expect("the simulator starts");
    let dir = tempfile::tempdir().expect("dir");
    let mm = plugin("market-maker");
    let config = format!(
        r#"
[venue]
kind = "paper"
[venue.paper]
instruments = ["BTC-USDT"]
rest_url = "http://{addr}"
ws_url = "ws://{addr}"
balances = {{ USDT = 100000, BTC = 1 }}
record = "feed"
[admin]
enabled = false
[[plugin]]
name = "mm"
path = {mm:?}
instruments = ["BTC-USDT"]
config = {{ symbol = "BTC-USDT", spread_bps = 2, requote_bps = 1 }}
"#,
        addr = sim.addr(),
    );
    let path = dir.path().join("paper.toml");
    std::fs::write(&path, config).expect("config");
    // No OKX_API_* anywhere: the paper venue must not need them.
    let mut run = tradebox();
    run.args(["run", "--config"]).arg(&path).args(["--duration", "5s"]);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("OKX_")) {
        run.env_remove(key);
    }
    let out = tokio::task::spawn_blocking(move || run.stdout(Stdio::piped()).stderr(Stdio::piped()).output())
        .await
        .expect("joins")
        .expect("runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("paper trading"), "{stdout}");

    // The audit log beside the config: every record paper, the plugin's orders among them.
    let audit = std::fs::read_to_string(dir.path().join("tradebox-paper-audit.jsonl")).expect("the audit log");
    let records: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert!(records.iter().all(|r| r["paper"] == true), "{audit}");
    assert!(records.iter().any(|r| r["kind"] == "order" && r["plugin"] == "mm"), "{audit}");

    // The recording it made, finished (zstd, whole), replayed with the same plugin file.
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("feed"))
        .expect("the recording directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty() && files.iter().all(|f| f.to_string_lossy().ends_with(".jsonl.zst")), "{files:?}");
    let mut backtest = tradebox();
    backtest
        .arg("backtest")
        .arg(&mm)
        .args(["--instrument", "BTC-USDT", "--fill", "book", "--fee-tier", "Lv1", "--json"])
        .args(["--balance", "USDT=100000", "--balance", "BTC=1"])
        .args(["--config", r#"{"symbol":"BTC-USDT","spread_bps":2,"requote_bps":1}"#])
        .arg("--data")
        .args(&files);
    let out = tokio::time::timeout(Duration::from_secs(120), tokio::task::spawn_blocking(move || backtest.output()))
        .await
        .expect("in time")
        .expect("joins")
        .expect("runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("the --json line");
    let text = json.to_string();
    let plugin = &json["plugins"][0];
    assert!(plugin["bars"].as_u64().is_some_and(|n| n > 10), "the recorded ticks were replayed: {text}");
    assert!(plugin["delivered"].as_u64().is_some_and(|n| n > 10), "and handed to the plugin: {text}");
    assert!(plugin["fills"].as_u64().is_some_and(|n| n > 0), "the plugin traded on them: {text}");
}
