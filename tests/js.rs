//! End to end: strategies written in JavaScript, built by `tradebox plugin build` (`cargo xtask
//! plugins` writes `target/plugins/sma-cross-js.wasm` and `market-maker-js.wasm`), on the host.
//!
//! The JavaScript examples are twins of the Rust ones: on the same market they must send the same
//! orders at the same times, so each run's whole report (every round trip's times, prices and
//! size, the order, fill and denial counts, PnL to the bit, the equity curve) is compared.
//!
//! A JavaScript instance needs more memory than a Rust one (its engine's heap): these tests leave
//! the cap at 0, the language's default (`Limits::fitted`), which the host reads from the manifest.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tradebox::backtest::FillModel;
use tradebox::backtest::command::open_limits;
use tradebox::backtest::results::RunReport;
use tradebox::backtest::run::{DataFile, Plan, PluginPlan, run};
use tradebox::engine::Grants;
use tradebox::plugin::runtime::Compiled;
use tradebox::plugin::{Limits, Mode, ReloadError, RunState, Runtime};
use tradebox::running::lifecycle::{LifecycleError, ReloadRequest};
use tradebox_e2e::history::{START, bars, plan};
use tradebox_e2e::{TestHost, cache_dir, plugin, spec};
use tradebox_manifest::Language;

const WAIT: Duration = Duration::from_secs(120);

/// A recorded feed of tickers and trades around a random walk (as tests/backtest.rs writes one).
fn feed(path: &Path, count: usize) {
    let bars = bars(count, 21);
    let mut lines = vec![r#"{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}}"#.to_string()];
    for (i, b) in bars.iter().enumerate() {
        let ts = START + i as i64 * 1_000;
        let (bid, ask) = (((b.close - 0.1) * 10.0).round() / 10.0, ((b.close + 0.1) * 10.0).round() / 10.0);
        lines.push(format!(
            r#"{{"arg":{{"channel":"tickers","instId":"BTC-USDT"}},"data":[{{"instType":"SPOT","instId":"BTC-USDT","last":"{}","lastSz":"0.1","askPx":"{ask}","askSz":"2","bidPx":"{bid}","bidSz":"3","ts":"{ts}"}}]}}"#,
            b.close
        ));
        if i % 3 == 0 {
            let side = if i % 2 == 0 { "buy" } else { "sell" };
            let px = if side == "buy" { ask } else { bid };
            lines.push(format!(
                r#"{{"arg":{{"channel":"trades","instId":"BTC-USDT"}},"data":[{{"instId":"BTC-USDT","tradeId":"{i}","px":"{px}","sz":"0.5","side":"{side}","ts":"{ts}"}}]}}"#
            ));
        }
    }
    std::fs::write(path, lines.join("\n")).expect("feed");
}

fn runtime() -> Arc<Runtime> {
    // The compiled-component cache: a JavaScript component takes seconds to compile.
    Runtime::new(Mode::Deterministic, Some(cache_dir())).expect("runtime")
}

fn compile(runtime: &Runtime, file: &str) -> Compiled {
    runtime.compile(&plugin(file)).unwrap_or_else(|e| panic!("{file} compiles: {e}"))
}

fn plugin_plan(compiled: &Compiled, file: &str, config: &str) -> PluginPlan {
    PluginPlan {
        name: "strategy".into(),
        path: format!("{file}.wasm"),
        compiled: compiled.clone(),
        config: config.into(),
        grants: Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() },
        risk: open_limits().0,
        // The memory cap left to the language's default.
        limits: Limits::default(),
    }
}

/// The plugin's part of a run as JSON, without the wall-clock figures.
fn outcome(report: &RunReport) -> serde_json::Value {
    let mut p = serde_json::to_value(&report.plugins[0]).expect("json");
    for key in ["elapsed_s", "events_per_s"] {
        p["stats"][key] = serde_json::Value::Null;
    }
    p
}

/// Runs the Rust strategy and its JavaScript twin on `plan` with `config`; each must run clean,
/// and their outcomes must be the same. Returns the Rust run's report.
fn twins(runtime: &Runtime, rust: &str, plan: &Plan, config: &str) -> RunReport {
    let js = format!("{rust}-js");
    let (r, j) = (compile(runtime, rust), compile(runtime, &js));
    let a = run(plan, &[plugin_plan(&r, rust, config)], &mut |_| {}).expect("rust runs");
    let b = run(plan, &[plugin_plan(&j, &js, config)], &mut |_| {}).expect("js runs");
    assert_eq!(a.plugins[0].fault, None, "{rust}");
    assert_eq!(b.plugins[0].fault, None, "{js}");
    let (a_out, b_out) = (outcome(&a), outcome(&b));
    if a_out != b_out {
        // The first round trip that differs says more than two pages of JSON.
        let first = a.plugins[0].trades.iter().zip(&b.plugins[0].trades).position(|(x, y)| {
            (x.entry_ms, x.entry_price, x.exit_ms, x.exit_price, x.size)
                != (y.entry_ms, y.entry_price, y.exit_ms, y.exit_price, y.size)
        });
        panic!(
            "{rust} and {js} differ (first differing round trip: {first:?})\nrust: {:?}\njs:   {:?}",
            a.plugins[0].stats, b.plugins[0].stats
        );
    }
    a
}

#[test]
fn sma_cross_in_js_trades_exactly_as_in_rust_on_candles_and_on_tickers() {
    let runtime = runtime();
    let bars = bars(5_000, 11);
    let candles = r#"{"symbol":"BTC-USDT","source":"candle","fast":10,"slow":30,"size":1}"#;
    let a = twins(&runtime, "sma-cross", &plan(&bars, FillModel::NextOpen), candles);
    assert!(a.plugins[0].stats.round_trips > 20, "the data should cross often: {:?}", a.plugins[0].stats);

    // Prices of 4·10^7: sums of 30 of them in units of 10^-8 pass 2^53, where a Number stops
    // being exact; the JavaScript version counts them in BigInts there and still agrees.
    let dear = tradebox_data::synthetic::random_walk(5, 3_000, START, 60_000, 40_000_000.0, 0.0008, 0.1);
    let small = r#"{"symbol":"BTC-USDT","source":"candle","fast":7,"slow":30,"size":0.00001}"#;
    let a = twins(&runtime, "sma-cross", &plan(&dear, FillModel::NextOpen), small);
    assert!(a.plugins[0].stats.round_trips > 10, "{:?}", a.plugins[0].stats);

    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("feed.jsonl");
    feed(&path, 6_000);
    let mut tick = plan(&[], FillModel::Book);
    tick.data = vec![DataFile { path, symbol: "BTC-USDT".into(), loaded: None }];
    let tickers = r#"{"symbol":"BTC-USDT","fast":10,"slow":30,"size":0.01}"#;
    let a = twins(&runtime, "sma-cross", &tick, tickers);
    assert!(a.plugins[0].stats.round_trips > 20, "{:?}", a.plugins[0].stats);
}

#[test]
fn market_maker_in_js_quotes_exactly_as_in_rust_on_tick_data() {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("feed.jsonl");
    feed(&path, 6_000);
    let mut tick = plan(&[], FillModel::Book);
    tick.data = vec![DataFile { path, symbol: "BTC-USDT".into(), loaded: None }];
    let config = r#"{"symbol":"BTC-USDT","spread_bps":2,"size":0.01,"max_inventory":0.03,"requote_bps":1}"#;
    let a = twins(&runtime, "market-maker", &tick, config);
    let stats = &a.plugins[0].stats;
    assert!(stats.orders > 50 && stats.fills > 10, "it quoted and got filled: {stats:?}");
}

fn request(wasm: Vec<u8>, config: Option<&str>) -> ReloadRequest {
    ReloadRequest {
        wasm: Some(wasm),
        config: config.map(str::to_string),
        by: "test".into(),
        ..ReloadRequest::default()
    }
}

fn reload(
    t: &TestHost,
    name: &str,
    req: ReloadRequest,
) -> Result<tradebox::running::lifecycle::Reloaded, LifecycleError> {
    tokio::task::block_in_place(|| t.host.reload(name, req))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_plugin_hot_reloads_with_its_state_and_says_what_it_is() {
    let t = TestHost::new(Mode::Live).await;
    let config = r#"{"symbol":"BTC-USDT","fast":3,"slow":8,"size":0.01}"#;
    let mut sma = spec("sma", "sma-cross-js", config, &["BTC-USDT"]);
    // The test default (32 MiB) fits a Rust instance; 0 is the language's default.
    sma.limits.memory_mib = 0;
    sma.limits.deadline_ms = 1_000;
    t.load(sma).await.expect("loads");
    let status = t.host.plugin_status("sma").expect("loaded");
    let manifest = status.manifest.expect("a manifest");
    assert_eq!((manifest.name.as_str(), manifest.language), ("sma-cross-js", Language::JavaScript));
    t.drive_until("sma-cross-js to fill its windows", WAIT, |t| t.report("sma").events > 20).await;

    // The same component again: the prices in its windows go across (JSON, several bytes each).
    let done = reload(&t, "sma", request(plugin("sma-cross-js"), None)).expect("reloads");
    assert!(done.swap.state_bytes > 8 * 6, "eight prices went across: {} bytes", done.swap.state_bytes);
    assert!(done.from_cache, "the component was compiled before");
    // The Rust version reads the JavaScript one's state and the other way round: one format.
    let done = reload(&t, "sma", request(plugin("sma-cross"), None)).expect("rust takes over");
    assert!(done.swap.state_bytes > 8 * 6, "{} bytes", done.swap.state_bytes);
    let done = reload(&t, "sma", request(plugin("sma-cross-js"), None)).expect("js takes over again");
    assert!(done.swap.state_bytes > 8 * 6, "{} bytes", done.swap.state_bytes);

    // Errors thrown in the constructor and in restore are the plugin's reasons, word for word.
    let err = reload(&t, "sma", request(plugin("sma-cross-js"), Some(r#"{"symbol":"BTC-USDT","fast":9,"slow":3}"#)))
        .expect_err("init fails");
    assert!(matches!(err, LifecycleError::Reload(ReloadError::Init(_))), "{err}");
    assert!(err.to_string().contains("need 0 < fast < slow, got 9 and 3"), "{err}");
    let err = reload(&t, "sma", request(plugin("market-maker-js"), Some(r#"{"symbol":"BTC-USDT"}"#)))
        .expect_err("market-maker-js cannot read sma-cross's state");
    assert!(matches!(err, LifecycleError::Reload(ReloadError::Restore(_))), "{err}");
    assert!(err.to_string().contains("expected 8 bytes"), "{err}");

    let r = t.report("sma");
    assert_eq!((r.reloads, r.state), (3, RunState::Running));
    let events = r.events;
    t.drive_until("the reloaded version to keep serving", WAIT, |t| t.report("sma").events > events + 20).await;
    t.drive_until("and trading", WAIT, |t| t.report("sma").fills >= 1).await;
    assert_eq!(t.report("sma").failures, 0);
    t.host.shutdown().await;
}
