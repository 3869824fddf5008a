//! The backtest end to end: the real plugin files, the live engine, virtual time.

use rust_decimal::Decimal;
use std::path::Path;
use std::sync::Arc;
use tradebox::backtest::command::open_limits;
use tradebox::backtest::results::RunReport;
use tradebox::backtest::run::{DataFile, Loaded, Plan, PluginPlan, run};
use tradebox::backtest::{Fees, FillModel};
use tradebox::engine::Grants;
use tradebox::plugin::{Limits, Mode, Runtime};
use tradebox_data::Bar;
use tradebox_e2e::plugin;

const START: i64 = 1_704_067_200_000;

fn bars(n: usize, seed: u64) -> Vec<Bar> {
    tradebox_data::synthetic::random_walk(seed, n, START, 60_000, 60_000.0, 0.0008, 0.1)
}

fn btc() -> Vec<tradebox_core::InstrumentSpec> {
    let venue = tradebox_sim::venue::SimVenue::new(tradebox_sim::venue::SimConfig::demo()).expect("demo venue");
    let specs = tradebox_core::Venue::instruments(venue.as_ref());
    let spec = specs.into_iter().find(|s| s.symbol == "BTC-USDT").expect("BTC-USDT");
    vec![tradebox_core::InstrumentSpec { id: 1, ..spec }]
}

fn plan(bars: &[Bar], fill: FillModel, dir: Option<&Path>) -> Plan {
    Plan {
        instruments: btc(),
        data: vec![DataFile {
            path: "synthetic.csv".into(),
            symbol: "BTC-USDT".into(),
            loaded: Some(Loaded { bars: Arc::from(bars.to_vec()), sha256: "synthetic".into() }),
        }],
        from_ms: None,
        to_ms: None,
        fill,
        fees: Fees::none(),
        leverage: Decimal::ONE,
        balances: vec![("USDT".into(), Decimal::from(100_000_000))],
        account: open_limits().1,
        equity_dir: dir.map(Path::to_path_buf),
        funding: Vec::new(),
    }
}

fn runtime() -> Arc<Runtime> {
    Runtime::new(Mode::Deterministic, None).expect("runtime")
}

fn sma(runtime: &Runtime, config: &str) -> PluginPlan {
    PluginPlan {
        name: "sma".into(),
        path: "sma-cross.wasm".into(),
        compiled: runtime.compile(&plugin("sma-cross")).expect("compiles"),
        config: config.into(),
        grants: Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() },
        risk: open_limits().0,
        limits: Limits::default(),
    }
}

const CANDLES: &str = r#"{"symbol":"BTC-USDT","source":"candle","fast":10,"slow":30,"size":1}"#;

/// A closed trade as the independent calculation sees it: entry and exit time and price.
type Trade = (i64, f64, i64, f64);

/// SMA crossover, long/flat, 1 unit, written from the issue's words and nothing of the
/// plugin's, in exact decimals: the closes as written, fast above slow when the mean of the
/// last `fast` closes exceeds the mean of the last `slow` (compared as sum_fast × slow against
/// sum_slow × fast, no rounding anywhere); a crossover is a change of that sign from the last
/// non-zero one; an up-cross when flat buys, a down-cross when long sells; the order fills at
/// the next bar's open (`next-open`) or this bar's close (`close`). Returns the trades and the
/// position left open (entry time and price).
fn independent(bars: &[Bar], fast: usize, slow: usize, at_close: bool) -> (Vec<Trade>, Option<(i64, f64)>) {
    let closes: Vec<Decimal> = bars.iter().map(|b| dec(b.close)).collect();
    let sum = |i: usize, n: usize| closes[i + 1 - n..=i].iter().copied().sum::<Decimal>();
    let mut last_sign = 0;
    let mut held: Option<(i64, f64)> = None;
    let mut trades = Vec::new();
    for i in slow - 1..bars.len() {
        let d = sum(i, fast) * Decimal::from(slow) - sum(i, slow) * Decimal::from(fast);
        if d.is_zero() {
            continue;
        }
        let sign = if d.is_sign_positive() { 1 } else { -1 };
        let cross = last_sign != 0 && sign != last_sign;
        last_sign = sign;
        if !cross {
            continue;
        }
        // Where the order fills: this close, or the next open (none after the last bar).
        let fill = if at_close {
            Some((bars[i].ts_ms + 60_000, bars[i].close))
        } else {
            bars.get(i + 1).map(|b| (b.ts_ms, b.open))
        };
        let Some(fill) = fill else { continue };
        match (sign > 0, held) {
            (true, None) => held = Some(fill),
            (false, Some((t, p))) => {
                trades.push((t, p, fill.0, fill.1));
                held = None;
            }
            _ => {}
        }
    }
    (trades, held)
}

fn dec(x: f64) -> Decimal {
    x.to_string().parse().expect("decimal")
}

fn check_agreement(report: &RunReport, bars: &[Bar], at_close: bool) {
    let (expected, open) = independent(bars, 10, 30, at_close);
    let p = &report.plugins[0];
    assert_eq!(p.fault, None);
    assert!(expected.len() > 50, "the data should cross often: {}", expected.len());
    let got: Vec<Trade> = p.trades.iter().map(|t| (t.entry_ms, t.entry_price, t.exit_ms, t.exit_price)).collect();
    assert_eq!(got, expected, "every trade, to the bit");
    assert_eq!(p.stats.round_trips, expected.len() as u64);
    // PnL in exact decimals from the prices as written, then as the report adds them.
    let realized: Decimal = expected.iter().map(|(_, a, _, b)| dec(*b) - dec(*a)).sum();
    let last = bars[bars.len() - 1].close;
    let unrealized = open.map_or(Decimal::ZERO, |(_, entry)| dec(last) - dec(entry));
    use rust_decimal::prelude::ToPrimitive;
    let (realized, unrealized) = (realized.to_f64().expect("f64"), unrealized.to_f64().expect("f64"));
    assert_eq!((p.stats.realized, p.stats.unrealized, p.stats.fees), (realized, unrealized, 0.0));
    assert_eq!(p.stats.pnl, realized + unrealized);
    assert_eq!(report.total.pnl, p.stats.pnl);
    assert_eq!(p.stats.open_positions.len(), usize::from(open.is_some()));
}

#[test]
fn sma_cross_in_candle_mode_agrees_exactly_with_an_independent_calculation() {
    let runtime = runtime();
    // As many bars as the benchmark's: a long run is what once lost fills (the tracker forgot
    // orders whose fill came after their last report) and last bits (decimals to floats).
    let bars = bars(220_780, 11);
    let report = run(&plan(&bars, FillModel::NextOpen, None), &[sma(&runtime, CANDLES)], &mut |_| {}).expect("runs");
    assert_eq!(report.events, bars.len() as u64);
    check_agreement(&report, &bars, false);
    // The same under `close`: the fill is the signal bar's close, stamped at its end.
    let report = run(&plan(&bars, FillModel::Close, None), &[sma(&runtime, CANDLES)], &mut |_| {}).expect("runs");
    check_agreement(&report, &bars, true);
}

#[test]
fn the_same_inputs_give_byte_identical_results() {
    let runtime = runtime();
    let bars = bars(5_000, 3);
    let dirs = [tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp")];
    let outputs: Vec<(String, Vec<u8>)> = dirs
        .iter()
        .map(|dir| {
            let mut report =
                run(&plan(&bars, FillModel::NextOpen, Some(dir.path())), &[sma(&runtime, CANDLES)], &mut |_| {})
                    .expect("runs");
            // Only the wall-clock figures may differ.
            report.elapsed_s = 0.0;
            report.events_per_s = 0.0;
            let json = serde_json::to_string(&report).expect("json");
            (json, std::fs::read(dir.path().join("equity.csv")).expect("equity.csv"))
        })
        .collect();
    assert_eq!(outputs[0].0, outputs[1].0);
    assert_eq!(outputs[0].1, outputs[1].1);
    assert!(outputs[0].1.len() > 5_000 * 10, "a row per bar");
}

#[test]
fn what_risk_refuses_live_it_refuses_in_the_backtest() {
    let runtime = runtime();
    let bars = bars(3_000, 5);
    let mut tight = sma(&runtime, CANDLES);
    // One unit of BTC is ~60,000 USDT: over a 1,000 notional limit, as a live host would say.
    tight.risk.max_order_notional = 1_000.0;
    let report = run(&plan(&bars, FillModel::NextOpen, None), &[tight], &mut |_| {}).expect("runs");
    let stats = &report.plugins[0].stats;
    assert!(stats.denied > 0, "{stats:?}");
    assert_eq!((stats.orders, stats.fills, stats.round_trips), (0, 0, 0));
    // And the balance: 1,000 USDT buys no BTC at 60,000 (the exchange refuses with OKX's 51008
    // or the account's balance check does; either way no fill).
    let mut poor = plan(&bars, FillModel::NextOpen, None);
    poor.balances = vec![("USDT".into(), Decimal::from(1_000))];
    let report = run(&poor, &[sma(&runtime, CANDLES)], &mut |_| {}).expect("runs");
    let stats = &report.plugins[0].stats;
    assert_eq!(stats.fills, 0, "{stats:?}");
    assert!(stats.denied + stats.orders > 0, "it tried: {stats:?}");
}

#[test]
fn a_hostile_plugin_stops_alone_and_the_run_goes_on() {
    let runtime = runtime();
    let bars = bars(4_000, 9);
    let spin = PluginPlan {
        name: "spin".into(),
        path: "misbehave.wasm".into(),
        compiled: runtime.compile(&plugin("misbehave")).expect("compiles"),
        config: "\"spin\"".into(),
        grants: Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() },
        risk: open_limits().0,
        limits: Limits { fuel: 50_000_000, ..Limits::default() },
    };
    let report =
        run(&plan(&bars, FillModel::NextOpen, None), &[spin, sma(&runtime, CANDLES)], &mut |_| {}).expect("runs");
    let fault = report.plugins[0].fault.as_deref().expect("the spinner stopped");
    assert!(fault.contains("fuel"), "{fault}");
    assert_eq!(report.plugins[1].fault, None);
    check_agreement(
        &RunReport {
            plugins: vec![report.plugins[1].clone()],
            total: report.plugins[1].stats.clone(),
            ..report.clone()
        },
        &bars,
        false,
    );
}

#[test]
fn candles_stream_from_a_file_and_a_bad_row_is_named() {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let bars = bars(1_000, 2);
    let path = dir.path().join("bars.csv");
    let mut text = Vec::new();
    tradebox_data::synthetic::write_csv(&bars, &mut text).expect("csv");
    std::fs::write(&path, &text).expect("write");
    let mut from_file = plan(&bars, FillModel::NextOpen, None);
    from_file.data[0] = DataFile { path: path.clone(), symbol: "BTC-USDT".into(), loaded: None };
    let report = run(&from_file, &[sma(&runtime, CANDLES)], &mut |_| {}).expect("runs");
    let in_memory = run(&plan(&bars, FillModel::NextOpen, None), &[sma(&runtime, CANDLES)], &mut |_| {}).expect("runs");
    assert_eq!(report.plugins[0].trades.len(), in_memory.plugins[0].trades.len());
    assert_eq!(report.inputs.data[0].sha256.len(), 64);
    // A broken row 500 lines in: the run refuses, naming it, rather than half-running.
    let mut lines: Vec<&str> = std::str::from_utf8(&text).expect("utf8").lines().collect();
    lines[500] = "1704097140000,60000,59000,60100,60050,1";
    std::fs::write(&path, lines.join("\n")).expect("write");
    let e = run(&from_file, &[sma(&runtime, CANDLES)], &mut |_| {}).expect_err("refused").to_string();
    assert!(e.contains("bars.csv:501:") && e.contains("bracket"), "{e}");
}

/// A recorded feed of tickers and trades around a random walk, as `tradebox feed check` reads
/// them: one raw frame per line (subscription acknowledgements included).
fn feed(path: &Path, count: usize) -> Vec<(f64, f64)> {
    let bars = bars(count, 21);
    let mut lines = vec![r#"{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}}"#.to_string()];
    let mut quotes = Vec::new();
    for (i, b) in bars.iter().enumerate() {
        let ts = START + i as i64 * 1_000;
        let (bid, ask) = (((b.close - 0.1) * 10.0).round() / 10.0, ((b.close + 0.1) * 10.0).round() / 10.0);
        quotes.push((bid, ask));
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
    quotes
}

#[test]
fn a_recorded_feed_replays_tick_by_tick_against_the_book() {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("feed.jsonl");
    let quotes = feed(&path, 6_000);
    let mut tick = plan(&[], FillModel::Book, None);
    tick.data = vec![DataFile { path: path.clone(), symbol: "BTC-USDT".into(), loaded: None }];
    let tickers = r#"{"symbol":"BTC-USDT","fast":10,"slow":30,"size":0.01}"#;
    let report = run(&tick, &[sma(&runtime, tickers)], &mut |_| {}).expect("runs");
    let p = &report.plugins[0];
    assert_eq!(p.fault, None);
    assert!(p.stats.round_trips > 20, "{:?}", p.stats);
    // Every market order took the recorded best price of the moment: buys the ask, sells the
    // bid (one ticker a second, so the entry time says which one).
    for t in &p.trades {
        let at = |ms: i64| quotes[usize::try_from((ms - START) / 1_000).expect("index")];
        assert_eq!(t.entry_price, at(t.entry_ms).1, "{t:?}");
        assert_eq!(t.exit_price, at(t.exit_ms).0, "{t:?}");
    }
    // The same file twice gives the same run; candles need a candle model and ticks `book`.
    let again = run(&tick, &[sma(&runtime, tickers)], &mut |_| {}).expect("runs");
    assert_eq!(serde_json::to_string(&again.plugins).ok(), serde_json::to_string(&report.plugins).ok());
    tick.fill = FillModel::NextOpen;
    let e = run(&tick, &[sma(&runtime, tickers)], &mut |_| {}).expect_err("refused").to_string();
    assert!(e.contains("book fill model"), "{e}");
}

#[test]
fn swaps_pay_funding_from_a_rates_file() {
    use tradebox::backtest::funding::Funding;
    let runtime = runtime();
    let bars = bars(3_000, 13);
    let venue = tradebox_sim::venue::SimVenue::new(tradebox_sim::venue::SimConfig::demo()).expect("demo venue");
    let swap = tradebox_core::Venue::instruments(venue.as_ref())
        .into_iter()
        .find(|s| s.symbol == "BTC-USDT-SWAP")
        .expect("swap");
    let mut base = plan(&bars, FillModel::NextOpen, None);
    base.instruments = vec![tradebox_core::InstrumentSpec { id: 1, ..swap }];
    base.data[0].symbol = "BTC-USDT-SWAP".into();
    let config = r#"{"symbol":"BTC-USDT-SWAP","source":"candle","fast":10,"slow":30,"size":1}"#;
    let mut plugin = sma(&runtime, config);
    plugin.grants.instruments = vec!["BTC-USDT-SWAP".into()];
    let without = run(&base, std::slice::from_ref(&plugin), &mut |_| {}).expect("runs");
    // Funding at three bar times inside trades the plugin held (funding changes none of its
    // decisions), at 0.01%: the long of 1 contract (0.01 BTC) pays 0.01 × mark × 0.0001 each
    // time, the mark being the last close before that bar.
    let held: Vec<i64> = without.plugins[0]
        .trades
        .iter()
        .filter(|t| t.exit_ms - t.entry_ms > 120_000)
        .take(3)
        .map(|t| t.entry_ms + 60_000)
        .collect();
    assert_eq!(held.len(), 3);
    let mut funded = base.clone();
    funded.funding = held.iter().map(|t| Funding { ts_ms: *t, instrument: 1, rate: 0.0001 }).collect();
    let with = run(&funded, &[plugin], &mut |_| {}).expect("runs");
    let (a, b) = (&without.plugins[0].stats, &with.plugins[0].stats);
    assert_eq!(a.round_trips, b.round_trips);
    assert_eq!(a.funding, 0.0);
    let close_before = |t: i64| bars.iter().rev().find(|bar| bar.ts_ms < t).map_or(0.0, |bar| bar.close);
    let expected: f64 = held.iter().map(|t| 0.01 * close_before(*t) * 0.0001).sum();
    assert!((b.funding - expected).abs() < 1e-9, "{} vs {expected}", b.funding);
    assert!((b.pnl - (a.pnl - b.funding)).abs() < 1e-9, "{a:?}\n{b:?}");
}
