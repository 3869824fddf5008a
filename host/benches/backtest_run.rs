#![allow(missing_docs)] // criterion_group! generates undocumented items.
//! Backtest figure (issue 15) under criterion: one whole run of `sma-cross` in candle mode
//! (SMA 10/30, 1 unit, next-open, no fees) over 20,000 one-minute bars held in memory, with
//! the gateway, risk checks and fills on; criterion reports bars per second. The bench binary
//! `--bench backtest` gives the same figure on 220,780 bars, with the rows that say what bounds
//! it. Run with `cargo xtask plugins && TRADEBOX_PLUGIN_DIR=$PWD/target/plugins cargo bench -p
//! tradebox --bench backtest_run`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::PathBuf;
use std::sync::Arc;
use tradebox::backtest::run::{DataFile, Loaded, Plan, PluginPlan};
use tradebox::backtest::{Fees, FillModel, command};
use tradebox::engine::Grants;
use tradebox::plugin::{Limits, Mode, Runtime};

const BARS: usize = 20_000;

fn runs(c: &mut Criterion) {
    let dir = std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let read = |name: &str| std::fs::read(dir.join(format!("{name}.wasm"))).expect("run `cargo xtask plugins` first");
    let runtime = Runtime::new(Mode::Deterministic, None).expect("runtime");
    let (risk, account) = command::open_limits();
    let btc = tradebox_sim::venue::SimVenue::new(tradebox_sim::venue::SimConfig::demo())
        .map(|v| tradebox_core::Venue::instruments(v.as_ref()))
        .expect("instruments")
        .into_iter()
        .find(|s| s.symbol == "BTC-USDT")
        .map(|s| tradebox_core::InstrumentSpec { id: 1, ..s })
        .expect("BTC-USDT");
    let bars = tradebox_data::synthetic::random_walk(7, BARS, 1_704_067_200_000, 60_000, 60_000.0, 0.0008, 0.1);
    let plan = Plan {
        instruments: vec![btc],
        data: vec![DataFile {
            path: "synthetic".into(),
            symbol: "BTC-USDT".into(),
            loaded: Some(Loaded { bars: Arc::from(bars), sha256: "synthetic".into() }),
        }],
        from_ms: None,
        to_ms: None,
        fill: FillModel::NextOpen,
        fees: Fees::none(),
        leverage: rust_decimal::Decimal::ONE,
        balances: vec![("USDT".into(), rust_decimal::Decimal::from(100_000_000))],
        account,
        equity_dir: None,
        funding: Vec::new(),
    };
    let plugin = |name: &str, config: &str| PluginPlan {
        name: name.into(),
        path: "bench".into(),
        compiled: runtime.compile(&read(name)).expect("compiles"),
        config: config.into(),
        grants: Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() },
        risk: risk.clone(),
        limits: Limits::default(),
    };
    let sma = plugin("sma-cross", r#"{"symbol":"BTC-USDT","source":"candle","fast":10,"slow":30,"size":1}"#);
    let noop = plugin("noop", "{}");
    let mut group = c.benchmark_group("backtest");
    group.throughput(Throughput::Elements(BARS as u64));
    group.sample_size(20);
    group.bench_function("sma_cross_candles_20k_bars", |b| {
        b.iter(|| tradebox::backtest::run::run(&plan, std::slice::from_ref(&sma), &mut |_| {}).expect("run"))
    });
    group.bench_function("engine_alone_20k_bars", |b| {
        b.iter(|| tradebox::backtest::run::run(&plan, std::slice::from_ref(&noop), &mut |_| {}).expect("run"))
    });
    group.finish();
}

criterion_group!(benches, runs);
criterion_main!(benches);
