//! Real strategies trade on the simulated venue through the whole host path: plugin intent →
//! gateway → venue → fills → plugin events and views.

use std::time::Duration;
use tradebox::plugin::{Mode, RunState, Runtime};
use tradebox_e2e::{TestHost, plugin, spec};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sma_cross_trades_and_tracks_its_position() {
    let t = TestHost::new(Mode::Live).await;
    let config = r#"{"symbol":"BTC-USDT","fast":3,"slow":8,"size":0.01}"#;
    t.load(spec("sma", "sma-cross", config, &["BTC-USDT"])).await.expect("sma-cross loads");
    t.drive_until("sma-cross to get a fill", WAIT, |t| t.report("sma").fills >= 1).await;
    let r = t.report("sma");
    assert_eq!(r.state, RunState::Running);
    assert_eq!(r.denied, 0, "{r:?}");
    // It buys 0.01 on an up-cross and sells it all on a down-cross: long 0.01 or flat.
    let size = r.positions.iter().find(|(s, _)| s == "BTC-USDT").map_or(0.0, |(_, q)| *q);
    assert!((size - 0.01).abs() < 1e-12 || size.abs() < 1e-12, "position {size}");
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_maker_quotes_both_sides_and_respects_its_inventory_limit() {
    let t = TestHost::new(Mode::Live).await;
    let config = r#"{"symbol":"ETH-USDT","spread_bps":4,"size":0.5,"max_inventory":1}"#;
    t.load(spec("mm", "market-maker", config, &["ETH-USDT"])).await.expect("market maker loads");
    t.drive_until("two quotes", WAIT, |t| t.report("mm").open_orders == 2).await;
    t.drive_until("quotes to fill", WAIT, |t| t.report("mm").fills >= 4).await;
    for _ in 0..200 {
        t.venue.step();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let inventory = t.report("mm").positions.first().map_or(0.0, |(_, q)| *q);
        assert!(inventory.abs() <= 1.0 + 1e-9, "inventory {inventory} beyond the limit of 1");
    }
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_instruments_are_invisible() {
    let t = TestHost::new(Mode::Live).await;
    let config = r#"{"symbol":"ETH-USDT"}"#;
    // Its manifest asks for the instrument its config names: more than the grant.
    let err = t.load(spec("sneaky", "sma-cross", config, &["BTC-USDT"])).await.expect_err("must be refused");
    assert!(err.to_string().contains("instrument ETH-USDT (granted: BTC-USDT)"), "{err}");
    // Run with only what is granted, it cannot even see ETH-USDT.
    let mut partial = spec("sneaky", "sma-cross", config, &["BTC-USDT"]);
    partial.grants.partial = true;
    let err = t.load(partial).await.expect_err("must be refused");
    assert!(err.to_string().contains("ETH-USDT is unknown or not granted"), "{err}");
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unload_cancels_open_orders() {
    let t = TestHost::new(Mode::Live).await;
    let config = r#"{"symbol":"ETH-USDT","spread_bps":40,"size":0.5,"max_inventory":1}"#;
    t.load(spec("mm", "market-maker", config, &["ETH-USDT"])).await.expect("market maker loads");
    t.drive_until("two quotes", WAIT, |t| t.report("mm").open_orders == 2).await;
    assert!(t.host.unload("mm", true));
    t.host.hub().flush().await;
    use tradebox_core::Venue;
    let open = t.venue.open_orders().await.expect("open orders");
    assert!(open.is_empty(), "orders left on the venue: {open:?}");
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_timers_fire_in_host_time() {
    let t = TestHost::new(Mode::Live).await;
    t.load(spec("ticking", "noop", r#"{"timer_ms": 10}"#, &[])).await.expect("noop loads");
    let fired =
        |t: &TestHost| t.host.activity().recent(50).iter().any(|a| a.what.to_string().contains("timer fired 20 times"));
    t.drive_until("twenty timer firings", WAIT, fired).await;
    t.host.shutdown().await;
}

#[test]
fn compiled_components_are_cached_by_content_and_engine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = plugin("sma-cross");
    let first = Runtime::new(Mode::Live, Some(dir.path().to_path_buf())).expect("runtime");
    assert!(!first.compile(&bytes).expect("compiles").from_cache);
    let second = Runtime::new(Mode::Live, Some(dir.path().to_path_buf())).expect("runtime");
    assert!(second.compile(&bytes).expect("loads").from_cache, "second engine should hit the cache");
    // Fuel changes the generated code: a deterministic engine must not reuse live code.
    let fuel = Runtime::new(Mode::Deterministic, Some(dir.path().to_path_buf())).expect("runtime");
    assert!(!fuel.compile(&bytes).expect("compiles").from_cache);
    // A damaged entry is recompiled, not trusted.
    for entry in std::fs::read_dir(dir.path()).expect("cache dir").flatten() {
        std::fs::write(entry.path(), b"garbage").expect("overwrite");
    }
    let third = Runtime::new(Mode::Live, Some(dir.path().to_path_buf())).expect("runtime");
    assert!(!third.compile(&bytes).expect("recompiles").from_cache);
}

#[test]
fn core_modules_and_junk_are_refused_with_a_reason() {
    let runtime = Runtime::new(Mode::Live, None).expect("runtime");
    let core_module = b"\0asm\x01\0\0\0";
    let err = runtime.compile(core_module).err().expect("core module refused").to_string();
    assert!(err.contains("core wasm module"), "{err}");
    let err = runtime.compile(b"not wasm at all").err().expect("junk refused").to_string();
    assert!(err.contains("not a valid wasm component"), "{err}");
}
