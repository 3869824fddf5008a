//! The two delivery shapes of the contract (`on-events` records, `on-tickers` columns) reach a
//! real plugin as the same events in the same order.

use std::sync::Arc;
use tradebox::engine::{Grants, Hub, RiskLimits};
use tradebox::plugin::bindings::{self, COLUMN_RUN_MIN, Delivery, wit};
use tradebox::plugin::host_api::{Counters, PluginState};
use tradebox::plugin::instance::Instance;
use tradebox::plugin::{Limits, Mode, Runtime};
use tradebox_core::Venue;
use tradebox_e2e::{cache_dir, plugin};
use tradebox_sim::venue::{SimConfig, SimVenue};

struct Fixture {
    hub: Arc<Hub>,
    runtime: Arc<Runtime>,
    _commands: tradebox::engine::Lanes,
}

fn fixture() -> Fixture {
    let venue = SimVenue::new(SimConfig::demo()).expect("demo sim");
    let (hub, commands) = Hub::new(venue.instruments());
    let runtime = Runtime::new(Mode::Live, Some(cache_dir())).expect("runtime");
    Fixture { hub, runtime, _commands: commands }
}

fn instance(f: &Fixture, name: &str, config: &str) -> Instance {
    let compiled = f.runtime.compile(&plugin(name)).expect("compiles");
    let grants = Grants { instruments: vec!["*".into()], ..Grants::default() };
    let slot = f.hub.register(name, grants, RiskLimits::default());
    let state = PluginState::new(f.hub.clone(), slot, Arc::new(Counters::default()), tradebox::plugin::Mode::Live);
    let mut inst = Instance::new(&compiled, state, Limits::default(), Mode::Live).expect("instantiates");
    inst.init(config).expect("init");
    inst
}

fn ticker(i: u32, instrument: u32) -> wit::Event {
    let mid = 60_000.0 + f64::from(i % 17) * 3.0 - f64::from(i % 5) * 7.0;
    wit::Event::Ticker(wit::Ticker {
        instrument,
        ts: i64::from(i),
        bid: mid - 0.5,
        bid_size: 1.0,
        ask: mid + 0.5,
        ask_size: 1.0,
        last: mid,
    })
}

fn deliver_all(inst: &mut Instance, ds: &[Delivery]) {
    for d in ds {
        inst.deliver(d).expect("delivered");
    }
}

#[test]
fn noop_counts_every_ticker_whatever_the_shape() {
    let f = fixture();
    let mut noop = instance(&f, "noop", "{}");
    let mut batch: Vec<wit::Event> = (0..25).map(|i| ticker(i, 1)).collect();
    batch.push(wit::Event::Timer(wit::TimerFired { id: 9, ts: 0 }));
    batch.extend((25..28).map(|i| ticker(i, 2)));
    let ds = bindings::deliveries(batch);
    assert!(ds.iter().any(|d| matches!(d, Delivery::Tickers(_))), "a long run goes as columns");
    assert!(ds.iter().any(|d| matches!(d, Delivery::Events(_))), "the rest as events");
    deliver_all(&mut noop, &ds);
    let state = noop.snapshot().expect("snapshot");
    let count = u64::from_le_bytes(state[..8].try_into().expect("8 bytes"));
    assert_eq!(count, 28);
}

#[test]
fn sma_cross_reaches_the_same_state_from_columns_and_from_records() {
    let f = fixture();
    let config = r#"{"symbol":"BTC-USDT","fast":3,"slow":7}"#;
    let btc = f.hub.instrument_by_symbol("BTC-USDT").expect("BTC-USDT in the demo").id;
    let events: Vec<wit::Event> = (0..(4 * COLUMN_RUN_MIN as u32)).map(|i| ticker(i, btc)).collect();

    let mut by_columns = instance(&f, "sma-cross", config);
    let ds = bindings::deliveries(events.clone());
    assert!(matches!(ds.as_slice(), [Delivery::Tickers(_)]), "{ds:?}");
    deliver_all(&mut by_columns, &ds);

    let mut by_records = instance(&f, "sma-cross", config);
    by_records.on_events(&events).expect("delivered");

    let a = by_columns.snapshot().expect("snapshot");
    let b = by_records.snapshot().expect("snapshot");
    assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    // And it is the right state: the slow window holds the last seven mids.
    let mids: Vec<f64> = events
        .iter()
        .map(|e| match e {
            wit::Event::Ticker(t) => (t.bid + t.ask) / 2.0,
            _ => unreachable!(),
        })
        .collect();
    let saved: serde_json::Value = serde_json::from_slice(&a).expect("sma-cross saves JSON");
    assert_eq!(saved["prices"], serde_json::json!(mids[mids.len() - 7..]));
}
