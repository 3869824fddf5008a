//! Builds the strategy with `tradebox plugin build` and backtests it on `data/sample.csv`
//! (720 one-minute BTC-USDT bars): it must trade, and never fail. `tradebox` is `$TRADEBOX`,
//! else the one on your PATH.

use std::process::Command;

fn tradebox() -> Command {
    Command::new(std::env::var_os("TRADEBOX").unwrap_or_else(|| "tradebox".into()))
}

#[test]
fn it_trades_the_sample_and_never_fails() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let built = tradebox().args(["plugin", "build", dir]).status().expect("run tradebox (set TRADEBOX or PATH)");
    assert!(built.success(), "tradebox plugin build failed");
    let out = tradebox()
        .current_dir(dir)
        .args(["backtest", "{{name}}.wasm", "--instrument", "BTC-USDT", "--data", "data/sample.csv", "--json"])
        .output()
        .expect("run tradebox backtest");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(last).expect("the backtest's JSON line");
    let plugin = &report["plugins"][0];
    assert!(plugin["fault"].is_null(), "the strategy failed: {}", plugin["fault"]);
    assert!(plugin["orders"].as_u64().unwrap_or(0) > 0, "no orders on 720 bars: {last}");
    assert_eq!(plugin["orders"], plugin["fills"], "every market order fills in a backtest");
}
