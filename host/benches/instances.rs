//! Resident memory of many plugin instances: loads N (default 100) `sma-cross` instances at
//! once, feeds each a batch of tickers, and reports the growth of the process's resident set
//! per instance. Run with `cargo xtask bench --bench instances` (Linux: reads /proc).

use std::path::PathBuf;
use std::sync::Arc;
use tradebox::engine::{Grants, Hub, PluginEvent, RiskLimits};
use tradebox::plugin::bindings;
use tradebox::plugin::host_api::{Counters, PluginState};
use tradebox::plugin::instance::Instance;
use tradebox::plugin::{Limits, Mode, Runtime};
use tradebox_core::{MarketEvent, Venue};
use tradebox_sim::venue::{SimConfig, SimVenue};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("resident pages");
    pages * 4096
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100);
    let dir = std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let bytes = std::fs::read(dir.join("sma-cross.wasm")).expect("sma-cross.wasm; run `cargo xtask plugins`");
    let venue = SimVenue::new(SimConfig::demo()).expect("demo sim");
    let (hub, _commands) = Hub::new(venue.instruments());
    let runtime = Runtime::new(Mode::Live, None).expect("runtime");
    let compiled = runtime.compile(&bytes).expect("compiles");
    let events: Vec<_> = (0..100)
        .map(|i| {
            let px = 60_000.0 + (i as f64).sin() * 50.0;
            bindings::event(PluginEvent::Market(MarketEvent::Ticker {
                instrument: 1,
                ts_ms: i,
                bid: px - 0.05,
                bid_size: 1.0,
                ask: px + 0.05,
                ask_size: 1.0,
                last: px,
            }))
        })
        .collect();
    let before = rss_bytes();
    let mut instances = Vec::with_capacity(n);
    for i in 0..n {
        let grants = Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() };
        let slot = hub.register(&format!("sma-{i}"), grants, RiskLimits::default());
        let state = PluginState::new(hub.clone(), slot, Arc::new(Counters::default()), tradebox::plugin::Mode::Live);
        let mut inst = Instance::new(&compiled, state, Limits::default(), Mode::Live).expect("instantiates");
        inst.init(r#"{"symbol":"BTC-USDT","fast":10,"slow":30}"#).expect("init");
        inst.on_events(&events).expect("events");
        instances.push(inst);
    }
    let after = rss_bytes();
    let per = (after.saturating_sub(before)) as f64 / n as f64 / (1024.0 * 1024.0);
    println!("instances: {n}");
    println!("resident before: {:.1} MiB, after: {:.1} MiB", before as f64 / 1048576.0, after as f64 / 1048576.0);
    println!("resident per instance: {per:.3} MiB");
    drop(instances);
}
