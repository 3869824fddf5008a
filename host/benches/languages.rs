#![allow(missing_docs)]
//! Per-language figures (issue 17): `sma-cross` written in Rust, Python (componentize-py) and
//! JavaScript (componentize-js), each the same strategy with the same orders (tests/python.rs,
//! tests/js.rs), measured in one process so the ratios share the machine's state:
//!
//! - the component's size; its first compile (no cache); a load from the compiled cache to a
//!   serving instance (hash, deserialize, import check, pre-link, instantiate, `init`): median
//!   of `--loads`;
//! - a call: one ticker in `on-events`, and a batch of 100 tickers in columns (`on-tickers`),
//!   medians of 200-call rounds, as the supervisor calls (limits armed, output drained);
//! - the memory one instance holds after `init` (linear memory and tables, what its cap counts);
//! - a backtest of 20,000 one-minute bars in candle mode (SMA 10/30), bars/s: median of `--runs`
//!   after one run not counted, deterministic mode (fuel), as `tradebox backtest` runs.
//!
//! Run: `cargo xtask plugins && cargo bench -p tradebox --bench languages [-- --runs 5 --loads 20
//! --bars 20000]` (`TRADEBOX_PLUGIN_DIR` to use plugins from elsewhere).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tradebox::backtest::run::{DataFile, Loaded, Plan, PluginPlan};
use tradebox::backtest::{Fees, FillModel, command};
use tradebox::engine::{Grants, Hub, PluginEvent, RiskLimits};
use tradebox::plugin::bindings::{self, wit};
use tradebox::plugin::host_api::{Counters, PluginState};
use tradebox::plugin::instance::Instance;
use tradebox::plugin::{Limits, Mode, Runtime};
use tradebox_core::{MarketEvent, Venue};
use tradebox_sim::venue::{SimConfig, SimVenue};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn tickers(n: usize, from: usize) -> Vec<wit::Event> {
    (from..from + n)
        .map(|i| {
            let price = 60_000.0 + (i as f64 * 0.7).sin() * 50.0;
            bindings::event(PluginEvent::Market(MarketEvent::Ticker {
                instrument: 1,
                ts_ms: i as i64,
                bid: price - 0.05,
                bid_size: 1.0,
                ask: price + 0.05,
                ask_size: 1.0,
                last: price,
            }))
        })
        .collect()
}

const CONFIG: &str = r#"{"symbol":"BTC-USDT","fast":10,"slow":30,"size":0.01}"#;

fn main() {
    let dir = std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let runs = arg("--runs", 5).max(1);
    let loads = arg("--loads", 20).max(1);
    let count = arg("--bars", 20_000);
    let bars = tradebox_data::synthetic::random_walk(7, count, 1_704_067_200_000, 60_000, 60_000.0, 0.0008, 0.1);
    println!(
        "{:<8} {:>10} {:>10} {:>12} {:>10} {:>12} {:>10} {:>12}",
        "language", "size MB", "compile s", "cached load", "1 ticker", "100 tickers", "memory MB", "bars/s"
    );
    for (language, file) in [("rust", "sma-cross"), ("python", "sma-cross-py"), ("js", "sma-cross-js")] {
        let path = dir.join(format!("{file}.wasm"));
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask plugins`)", path.display()));

        // First compile: a fresh engine, no cache.
        let cold = Runtime::new(Mode::Live, None).expect("runtime");
        let started = Instant::now();
        cold.compile(&bytes).expect("compiles");
        let compile = started.elapsed();
        drop(cold);

        // From the cache to serving.
        let cache = tempfile::tempdir().expect("temp dir");
        let runtime = Runtime::new(Mode::Live, Some(cache.path().to_path_buf())).expect("runtime");
        runtime.compile(&bytes).expect("fills the cache");
        let venue = SimVenue::new(SimConfig::demo()).expect("demo sim");
        let (hub, _commands) = Hub::new(venue.instruments());
        let grants = Grants { instruments: vec!["*".into()], ..Grants::default() };
        let limits = Limits { deadline_ms: 10_000, ..Limits::default() };
        let serve = |n: usize| {
            let slot = hub.register(&format!("{file}-{n}"), grants.clone(), RiskLimits::default());
            let state = PluginState::new(hub.clone(), slot, Arc::new(Counters::default()), Mode::Live);
            let compiled = runtime.compile(&bytes).expect("from cache");
            assert!(compiled.from_cache);
            let mut inst = Instance::new(&compiled, state, limits, Mode::Live).expect("instantiates");
            inst.init(CONFIG).expect("init");
            inst
        };
        let mut load_times = Vec::new();
        for n in 0..loads {
            let started = Instant::now();
            let inst = serve(n);
            load_times.push(started.elapsed().as_secs_f64());
            drop(inst);
        }
        // sma-cross keeps one working order and acts on a crossover only without one: a price
        // to place its first order against (accepted, never filled: the command lane is not
        // read), so that after it a crossover costs no host call in any language (as in the
        // `plugin` bench's wasm-vs-native figure).
        let price = MarketEvent::Ticker {
            instrument: 1,
            ts_ms: 0,
            bid: 59_999.95,
            bid_size: 1.0,
            ask: 60_000.05,
            ask_size: 1.0,
            last: 60_000.0,
        };
        tradebox::engine::router::Router::new(false).route(&hub, tradebox_core::VenueEvent::Market(price));
        let mut inst = serve(loads);
        let memory = inst.memory_held();
        // What bounds a cached load of a large component: hashing its bytes (the cache key).
        let started = Instant::now();
        let _ = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes));
        let hash_ms = started.elapsed().as_secs_f64() * 1e3;

        // Calls, as the supervisor makes them.
        let one: Vec<_> = (0..200).map(|i| bindings::deliveries(tickers(1, i))).collect();
        let hundred: Vec<_> = (0..20).map(|i| bindings::deliveries(tickers(100, i * 100))).collect();
        let per_call = |inst: &mut Instance, calls: &[Vec<bindings::Delivery>]| -> Vec<f64> {
            let mut rounds = Vec::new();
            for _ in 0..10 {
                let started = Instant::now();
                for deliveries in calls {
                    for d in deliveries {
                        inst.deliver(d).expect("call");
                    }
                }
                rounds.push(started.elapsed().as_secs_f64() / calls.len() as f64);
            }
            rounds
        };
        per_call(&mut inst, &one);
        let open: usize = hub.plugins().iter().map(|s| hub.open_orders(s.id).len()).sum();
        assert!(open >= 1, "{file} holds its working order");
        let single = median(per_call(&mut inst, &one));
        let batch = median(per_call(&mut inst, &hundred));

        // A backtest in deterministic mode.
        let det = Runtime::new(Mode::Deterministic, None).expect("runtime");
        let compiled = det.compile(&bytes).expect("compiles");
        let (risk, account) = command::open_limits();
        let btc = venue
            .instruments()
            .into_iter()
            .find(|s| s.symbol == "BTC-USDT")
            .map(|s| tradebox_core::InstrumentSpec { id: 1, ..s })
            .expect("BTC-USDT");
        let plan = Plan {
            instruments: vec![btc],
            data: vec![DataFile {
                path: "synthetic".into(),
                symbol: "BTC-USDT".into(),
                loaded: Some(Loaded { bars: Arc::from(bars.clone()), sha256: "synthetic".into() }),
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
        let plugin = PluginPlan {
            name: file.into(),
            path: "bench".into(),
            compiled,
            config: r#"{"symbol":"BTC-USDT","source":"candle","fast":10,"slow":30,"size":1}"#.into(),
            grants: Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() },
            risk,
            limits: Limits::default(),
        };
        let mut rates = Vec::new();
        let mut trips = 0;
        for run in 0..=runs {
            let report = tradebox::backtest::run::run(&plan, std::slice::from_ref(&plugin), &mut |_| {}).expect("run");
            if let Some(p) = report.plugins.first()
                && let Some(fault) = &p.fault
            {
                panic!("{file} failed in the backtest: {fault}");
            }
            if run > 0 {
                rates.push(report.events_per_s);
            }
            trips = report.total.round_trips;
        }
        let us = |s: f64| format!("{:.2} µs", s * 1e6);
        println!(
            "{language:<8} {:>10.2} {:>10.2} {:>12} {:>10} {:>12} {:>10.1} {:>12.0}   ({trips} round trips; sha256 of the file {hash_ms:.1} ms)",
            bytes.len() as f64 / 1e6,
            compile.as_secs_f64(),
            format!("{:.2} ms", median(load_times) * 1e3),
            us(single),
            us(batch),
            memory as f64 / (1 << 20) as f64,
            median(rates),
        );
    }
}
