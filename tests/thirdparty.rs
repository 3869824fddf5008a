//! A third-party OKX client against `tradebox sim`: the official python SDK (python-okx,
//! pinned in `tests/thirdparty/requirements.txt`, installed by `cargo xtask test` into
//! `target/pydeps`) reads time, instruments and balance, places, queries and cancels an order,
//! receives the private pushes, downloads market history (tickers, candles, trades), reads the
//! paper trail (orders and fills history, bills, fee rates) and the funding account, and
//! amends and cancels in batches, all with the simulator's URL, key, secret and passphrase.

use std::path::PathBuf;
use std::process::Command;
use tradebox_sim::server::{SimKey, SimServer, SimServerConfig};

fn pydeps() -> PathBuf {
    std::env::var_os("TRADEBOX_PYDEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pydeps"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_okx_talks_to_the_simulator() {
    let deps = pydeps();
    assert!(
        deps.join("okx").is_dir(),
        "{} has no python-okx: run the tests with `cargo xtask test`, or `python3 -m pip install --target {} -r tests/thirdparty/requirements.txt`",
        deps.display(),
        deps.display()
    );
    let key = SimKey::generate();
    // The funding account holds 500 USDT, which `asset/balances` must report.
    let funding = [("USDT".to_string(), rust_decimal::Decimal::from(500))].into_iter().collect();
    let config = SimServerConfig { keys: vec![key.clone()], funding, ..SimServerConfig::default() };
    let sim = SimServer::start(config).await.expect("simulator");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("thirdparty/python_okx_client.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("PYTHONPATH", deps)
            .env("SIM_REST", sim.base_url())
            .env("SIM_WS_PRIVATE", sim.ws_url("private"))
            .env("OKX_API_KEY", &key.api_key)
            .env("OKX_API_SECRET", &key.secret)
            .env("OKX_API_PASSPHRASE", &key.passphrase)
            .output()
            .map(|o| (o, sim))
    })
    .await
    .expect("joined")
    .expect("python3 runs");
    let (out, _sim) = out;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains("all checks passed"), "stdout:\n{stdout}\nstderr:\n{stderr}");
}
