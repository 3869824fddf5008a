#![allow(missing_docs)] // criterion_group! generates undocumented items.
//! Plugin runtime figures (issue "Foundation"): event dispatch, wasm vs native, load from cache,
//! first compile. Run with `cargo xtask bench` (builds the plugins first).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use tradebox::engine::{Grants, Hub, PluginEvent, RiskLimits};
use tradebox::plugin::bindings::{self, Delivery, wit};
use tradebox::plugin::host_api::{Counters, PluginState};
use tradebox::plugin::instance::Instance;
use tradebox::plugin::{Limits, Mode, Runtime};
use tradebox_core::{MarketEvent, Venue};
use tradebox_sim::venue::{SimConfig, SimVenue};

fn plugin(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask bench`", path.display()))
}

struct Fixture {
    hub: Arc<Hub>,
    runtime: Arc<Runtime>,
    // Keeps the command channel open so intents are accepted.
    _commands: tradebox::engine::Lanes,
}

fn fixture(cache: PathBuf) -> Fixture {
    let venue = SimVenue::new(SimConfig::demo()).expect("demo sim");
    let (hub, commands) = Hub::new(venue.instruments());
    let runtime = Runtime::new(Mode::Live, Some(cache)).expect("runtime");
    Fixture { hub, runtime, _commands: commands }
}

fn instance(f: &Fixture, name: &str, config: &str) -> Instance {
    let compiled = f.runtime.compile(&plugin(name)).expect("compiles");
    let grants = Grants { instruments: vec!["*".into()], ..Grants::default() };
    let slot = f.hub.register(name, grants, RiskLimits::default());
    let state = PluginState::new(f.hub.clone(), slot, Arc::new(Counters::default()), tradebox::plugin::Mode::Live);
    let mut inst = Instance::new(&compiled, state, Limits { deadline_ms: 10_000, ..Limits::default() }, Mode::Live)
        .expect("instantiates");
    inst.init(config).expect("init");
    inst
}

/// A seeded random walk of BTC-USDT tickers (the same series for wasm and native).
fn tickers(n: usize) -> Vec<MarketEvent> {
    let mut price = 60_000.0f64;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            price += ((state % 2001) as f64 - 1000.0) / 100.0;
            MarketEvent::Ticker {
                instrument: 1,
                ts_ms: i as i64,
                bid: price - 0.05,
                bid_size: 1.0,
                ask: price + 0.05,
                ask_size: 1.0,
                last: price,
            }
        })
        .collect()
}

fn wit_events(ticks: &[MarketEvent]) -> Vec<wit::Event> {
    ticks.iter().cloned().map(|t| bindings::event(PluginEvent::Market(t))).collect()
}

/// Delivers pre-built deliveries the way the supervisor does.
fn deliver(inst: &mut Instance, ds: &[Delivery]) {
    for d in ds {
        inst.deliver(d).expect("call");
    }
}

fn dispatch(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = fixture(dir.path().to_path_buf());
    let mut noop = instance(&f, "noop", "{}");
    let one = bindings::deliveries(wit_events(&tickers(1)));
    let hundred_events = wit_events(&tickers(100));
    let hundred = bindings::deliveries(hundred_events.clone());
    let mut g = c.benchmark_group("dispatch");
    g.throughput(Throughput::Elements(1));
    g.bench_function("noop/batch_of_1_ticker", |b| b.iter(|| deliver(&mut noop, black_box(&one))));
    g.throughput(Throughput::Elements(100));
    g.bench_function("noop/batch_of_100_tickers", |b| b.iter(|| deliver(&mut noop, black_box(&hundred))));
    // The same 100 tickers forced through `on-events` as records: what columns save.
    g.bench_function("noop/batch_of_100_tickers_as_records", |b| {
        b.iter(|| noop.on_events(black_box(&hundred_events)).expect("call"))
    });
    g.finish();
}

/// How a strategy linked natively into the host would be called: once per event, dynamically.
trait NativeStrategy {
    fn on_event(&mut self, event: &MarketEvent);
}

impl NativeStrategy for sma_cross::Core {
    fn on_event(&mut self, event: &MarketEvent) {
        if let MarketEvent::Ticker { instrument, bid, ask, .. } = event {
            black_box(self.on_ticker(*instrument, *bid, *ask));
        }
    }
}

fn sma_wasm_vs_native(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = fixture(dir.path().to_path_buf());
    let mut sma = instance(&f, "sma-cross", r#"{"symbol":"BTC-USDT","fast":10,"slow":30,"size":0.01}"#);
    let ticks = tickers(100);
    let deliveries = bindings::deliveries(wit_events(&ticks));
    // The same work on both sides: the signal. `sma-cross` keeps one working order and acts
    // on a crossover only without one, so it gets a price to place its first order against
    // (accepted, and never filled here: the command lane is not read); after that a crossover
    // costs it no host call, as the native side makes none. Without it every crossover went
    // through the gateway to a refusal and a log line, and the ratio measured those.
    let price = tickers(1).into_iter().next().expect("a ticker");
    tradebox::engine::router::Router::new(false).route(&f.hub, tradebox_core::VenueEvent::Market(price));
    deliver(&mut sma, &deliveries);
    let open: usize = f.hub.plugins().iter().map(|s| f.hub.open_orders(s.id).len()).sum();
    assert_eq!(open, 1, "sma-cross holds its one working order");
    let mut g = c.benchmark_group("sma_cross_per_batch_of_100");
    g.throughput(Throughput::Elements(100));
    g.bench_function("wasm", |b| b.iter(|| deliver(&mut sma, black_box(&deliveries))));
    // The identical per-ticker work (`sma_cross::Core`) compiled natively, fed the host's own
    // events. Two native baselines: as a native plugin would run (a boxed strategy called through
    // a trait object, once per event), and fully inlined into the benchmark loop (the compiler
    // may keep the strategy's state in registers across ticks, which no plugin could get).
    let mut boxed: Box<dyn NativeStrategy> = Box::new(sma_cross::Core::new(1, 10, 30));
    g.bench_function("native_boxed", |b| {
        b.iter(|| {
            for t in black_box(&ticks) {
                boxed.on_event(t);
            }
        })
    });
    let mut core = sma_cross::Core::new(1, 10, 30);
    g.bench_function("native_inlined", |b| {
        b.iter(|| {
            for t in black_box(&ticks) {
                if let MarketEvent::Ticker { instrument, bid, ask, .. } = t {
                    black_box(core.on_ticker(*instrument, *bid, *ask));
                }
            }
        })
    });
    g.finish();
}

fn load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = fixture(dir.path().to_path_buf());
    let bytes = plugin("sma-cross");
    f.runtime.compile(&bytes).expect("warm the cache");
    let config = r#"{"symbol":"BTC-USDT","fast":10,"slow":30}"#;
    let grants = Grants { instruments: vec!["*".into()], ..Grants::default() };
    let slot = f.hub.register("load", grants, RiskLimits::default());
    let mut g = c.benchmark_group("load");
    g.bench_function("sma-cross/from_cache_to_serving", |b| {
        b.iter(|| {
            let compiled = f.runtime.compile(&bytes).expect("cached");
            assert!(compiled.from_cache);
            let state = PluginState::new(
                f.hub.clone(),
                slot.clone(),
                Arc::new(Counters::default()),
                tradebox::plugin::Mode::Live,
            );
            let mut inst = Instance::new(&compiled, state, Limits::default(), Mode::Live).expect("instantiates");
            inst.init(config).expect("init");
            black_box(inst)
        })
    });
    g.sample_size(10);
    for name in ["noop", "sma-cross", "market-maker"] {
        let bytes = plugin(name);
        g.bench_function(format!("{name}/first_compile"), |b| {
            b.iter_batched(
                || Runtime::new(Mode::Live, None).expect("runtime"),
                |rt| black_box(rt.compile(&bytes).expect("compiles")),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, dispatch, sma_wasm_vs_native, load);
criterion_main!(benches);
