//! End to end: strategies written in Python, built by `tradebox plugin build` (`cargo xtask
//! plugins`), on the host. The Python examples are twins of the Rust ones: run on the same
//! market they must send the same orders and get the same fills, to the bit; and a Python
//! plugin hot-reloads like a Rust one, its state crossing through its own snapshot and restore.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tradebox::backtest::FillModel;
use tradebox::backtest::command::open_limits;
use tradebox::backtest::results::{PluginReport, RunReport};
use tradebox::backtest::run::{DataFile, Plan, PluginPlan, run};
use tradebox::engine::Grants;
use tradebox::plugin::{Limits, Mode, ReloadError, Runtime};
use tradebox::running::lifecycle::{LifecycleError, ReloadRequest};
use tradebox_e2e::history::{START, bars, plan};
use tradebox_e2e::{TestHost, cache_dir, plugin, spec};

/// A plan replaying a recorded feed file tick by tick against its book.
fn tick_plan(path: &Path) -> Plan {
    let mut tick = plan(&[], FillModel::Book);
    tick.data = vec![DataFile { path: path.to_path_buf(), symbol: "BTC-USDT".into(), loaded: None }];
    tick
}

fn runtime() -> Arc<Runtime> {
    // The cache: a Python component takes seconds to compile, and every test compiles both.
    Runtime::new(Mode::Deterministic, Some(cache_dir())).expect("runtime")
}

fn plugin_plan(runtime: &Runtime, file: &str, config: &str) -> PluginPlan {
    PluginPlan {
        name: "strategy".into(),
        path: format!("{file}.wasm"),
        compiled: runtime.compile(&plugin(file)).expect("compiles"),
        config: config.into(),
        grants: Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() },
        risk: open_limits().0,
        // No memory cap given: each plugin gets its language's (a CPython instance needs more
        // than a Rust one).
        limits: Limits::default(),
    }
}

/// Runs the Rust plugin `rust` and its Python twin `python` alone on the same plan and config.
fn both(plan: &Plan, rust: &str, python: &str, config: &str) -> (PluginReport, PluginReport) {
    let runtime = runtime();
    let one = |file: &str| -> PluginReport {
        let report: RunReport = run(plan, &[plugin_plan(&runtime, file, config)], &mut |_| {}).expect("runs");
        let p = report.plugins.into_iter().next().expect("one plugin");
        assert_eq!(p.fault, None, "{file} ran to the end");
        p
    };
    (one(rust), one(python))
}

/// The two runs sent the same orders and got the same fills: the same count of orders,
/// denials and fills, every round trip (side, size, entry and exit time and price) and the
/// equity curve, to the bit.
fn assert_same(rust: &PluginReport, python: &PluginReport) {
    let json = |p: &PluginReport| serde_json::to_value(p).expect("json");
    let (r, p) = (json(rust), json(python));
    assert_eq!(rust.stats.orders, python.stats.orders, "orders");
    assert_eq!(rust.trades.len(), python.trades.len(), "round trips");
    for (a, b) in rust.trades.iter().zip(&python.trades) {
        let key = |t: &tradebox::backtest::results::RoundTrip| {
            (format!("{:?}", t.direction), t.entry_ms, t.entry_price, t.exit_ms, t.exit_price, t.size)
        };
        assert_eq!(key(a), key(b));
    }
    assert_eq!(r, p, "the whole report");
}

/// A recorded feed of `count` tickers `step_ms` apart, and trades, around a random walk (as
/// `tradebox record` writes one frame per line), quotes one tick apart.
fn feed(path: &Path, count: usize, step_ms: i64) {
    let bars = bars(count, 21);
    let mut lines = vec![r#"{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}}"#.to_string()];
    for (i, b) in bars.iter().enumerate() {
        let ts = START + i as i64 * step_ms;
        let (bid, ask) = (((b.close - 0.1) * 10.0).round() / 10.0, ((b.close + 0.1) * 10.0).round() / 10.0);
        lines.push(format!(
            r#"{{"arg":{{"channel":"tickers","instId":"BTC-USDT"}},"data":[{{"instType":"SPOT","instId":"BTC-USDT","last":"{}","lastSz":"0.1","askPx":"{ask}","askSz":"2","bidPx":"{bid}","bidSz":"3","ts":"{ts}"}}]}}"#,
            b.close
        ));
        // Trades on both sides, some through the touch, so resting quotes fill.
        if i % 2 == 0 {
            let side = if i % 4 == 0 { "buy" } else { "sell" };
            let px = if side == "buy" { ask + 5.0 } else { bid - 5.0 };
            lines.push(format!(
                r#"{{"arg":{{"channel":"trades","instId":"BTC-USDT"}},"data":[{{"instId":"BTC-USDT","tradeId":"{i}","px":"{px}","sz":"0.5","side":"{side}","ts":"{ts}"}}]}}"#
            ));
        }
    }
    std::fs::write(path, lines.join("\n")).expect("feed");
}

#[test]
fn sma_cross_in_python_trades_like_rust_on_candles() {
    let config = r#"{"symbol":"BTC-USDT","source":"candle","fast":10,"slow":30,"size":1}"#;
    let (rust, python) = both(&plan(&bars(4_000, 11), FillModel::NextOpen), "sma-cross", "sma-cross-py", config);
    assert!(rust.trades.len() > 50, "the data should cross often: {}", rust.trades.len());
    assert_same(&rust, &python);
}

#[test]
fn sma_cross_in_python_trades_like_rust_on_tickers() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("feed.jsonl");
    feed(&path, 6_000, 1_000);
    let config = r#"{"symbol":"BTC-USDT","fast":10,"slow":30,"size":0.01}"#;
    let (rust, python) = both(&tick_plan(&path), "sma-cross", "sma-cross-py", config);
    assert!(rust.trades.len() > 20, "{:?}", rust.stats);
    assert_same(&rust, &python);
}

#[test]
fn market_maker_in_python_quotes_like_rust_on_tick_data() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("feed.jsonl");
    // Ten tickers a second: more quote moves than the plugin's declared rate allows, so its
    // throttle and its wake-up timer decide too.
    feed(&path, 6_000, 100);
    let config = r#"{"symbol":"BTC-USDT","spread_bps":2,"size":0.01,"max_inventory":0.03,"requote_bps":1}"#;
    let (rust, python) = both(&tick_plan(&path), "market-maker", "market-maker-py", config);
    assert!(rust.stats.orders > 50 && rust.stats.fills > 10, "it quoted and filled: {:?}", rust.stats);
    assert_same(&rust, &python);
}

const WAIT: Duration = Duration::from_secs(120);

fn reload(
    t: &TestHost,
    name: &str,
    wasm: Vec<u8>,
    config: Option<&str>,
) -> Result<tradebox::running::lifecycle::Reloaded, LifecycleError> {
    let request =
        ReloadRequest { wasm: Some(wasm), config: config.map(str::to_string), by: "test".into(), ..Default::default() };
    tokio::task::block_in_place(|| t.host.reload(name, request))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_plugin_hot_reloads_keeping_its_state() {
    let wasm = plugin("sma-cross-py");
    // The manifest `tradebox plugin build` wrote from pyproject.toml and tradebox.toml.
    let manifest = tradebox::plugin::runtime::read_manifest(&wasm).expect("readable").expect("a manifest");
    assert_eq!(manifest.name, "sma-cross-py");
    assert_eq!(manifest.language, tradebox_manifest::Language::Python);
    assert!(manifest.config.contains_key("fast") && manifest.config.contains_key("source"));

    let t = TestHost::audited().await;
    let config = r#"{"symbol":"BTC-USDT","fast":3,"slow":8,"size":0.01}"#;
    let mut sma = spec("sma", "sma-cross-py", config, &["BTC-USDT"]);
    // The language's memory cap (the helper's 32 MiB fits Rust plugins), and a deadline
    // generous for a debug host starting CPython on a busy machine.
    sma.limits.memory_mib = 0;
    sma.limits.deadline_ms = 2_000;
    t.load(sma).await.expect("the Python plugin loads");
    // The host read what the manifest asks for: market orders only.
    let slot = t.host.slot("sma").expect("loaded");
    let kinds = slot.permissions().requested.as_ref().map(|r| r.order_kinds.clone());
    assert_eq!(kinds, Some(vec![tradebox_core::OrderKind::Market]));
    t.drive_until("a full window and a trade", WAIT, |t| {
        let r = t.report("sma");
        r.events > 30 && r.fills >= 1
    })
    .await;

    // The same component again: the window's prices cross as the plugin's own JSON.
    let done = reload(&t, "sma", wasm.clone(), None).expect("reloads");
    assert!(done.swap.state_bytes > 20, "the price window went across: {} bytes", done.swap.state_bytes);
    assert!(done.from_cache, "compiled once");
    let r = t.report("sma");
    assert_eq!(r.reloads, 1);

    // A Python exception is the refusal's text: in init (the config) and in restore (a state
    // the market maker cannot read: it expects its 8-byte fill count).
    let err = reload(&t, "sma", wasm.clone(), Some(r#"{"symbol":"BTC-USDT","fast":9,"slow":3}"#)).expect_err("init");
    assert!(matches!(err, LifecycleError::Reload(ReloadError::Init(_))), "{err}");
    assert!(err.to_string().contains("fast < slow"), "the plugin's own reason: {err}");
    let mm = r#"{"symbol":"BTC-USDT","spread_bps":4,"size":0.01}"#;
    let err = reload(&t, "sma", plugin("market-maker-py"), Some(mm)).expect_err("restore refuses");
    assert!(matches!(err, LifecycleError::Reload(ReloadError::Restore(_))), "{err}");
    assert!(err.to_string().contains("expected 8 bytes"), "{err}");

    // The reloaded version keeps trading.
    let (events, fills) = (t.report("sma").events, t.report("sma").fills);
    t.drive_until("the new instance to trade on", WAIT, |t| {
        let r = t.report("sma");
        r.events > events + 20 && r.fills > fills
    })
    .await;
    assert_eq!(t.report("sma").reloads, 1, "the refused versions did not replace it");
    t.host.shutdown().await;
}
