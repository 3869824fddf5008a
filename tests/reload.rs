//! Hot reload in a running host: the state and the open orders carry over, a broken version is
//! refused while the running one keeps trading, and no event is lost or repeated across swaps.

use std::time::Duration;
use tradebox::plugin::{ReloadError, RunState};
use tradebox::running::lifecycle::{LifecycleError, LoadOptions, ReloadRequest};
use tradebox_core::Channel;
use tradebox_core::TradingState;
use tradebox_e2e::{TestHost, plugin, soak, spec};

const WAIT: Duration = Duration::from_secs(60);

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

fn open_ids(t: &TestHost, name: &str) -> Vec<String> {
    let slot = t.host.slot(name).expect("loaded");
    let mut ids: Vec<String> = t.host.hub().open_orders(slot.id).into_iter().map(|o| o.client_id).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_state_and_the_open_orders() {
    let t = TestHost::audited().await;
    let config = r#"{"symbol":"ETH-USDT","spread_bps":40,"size":0.05,"max_inventory":1,"requote_bps":50}"#;
    t.load(spec("mm", "market-maker", config, &["ETH-USDT"])).await.expect("loads");
    t.drive_until("two quotes and a fill", WAIT, |t| t.report("mm").open_orders == 2 && t.report("mm").fills >= 1)
        .await;
    let before = t.report("mm");
    let quotes = open_ids(&t, "mm");
    // A new config (wider spread) with the same component: a restart that keeps everything.
    let wider = r#"{"symbol":"ETH-USDT","spread_bps":60,"size":0.05,"max_inventory":1,"requote_bps":50}"#;
    let done = reload(&t, "mm", request(plugin("market-maker"), Some(wider))).expect("reloads");
    assert_eq!(done.swap.state_bytes, 8, "the fill count went across");
    assert!(done.from_cache, "the component was compiled before");
    assert_eq!(done.trading_state, TradingState::Active);
    // The new instance adopted the old one's quotes instead of placing new ones.
    assert_eq!(open_ids(&t, "mm"), quotes, "the same orders, still the plugin's");
    let after = t.report("mm");
    assert_eq!(after.reloads, 1);
    assert_eq!(after.state, RunState::Running);
    assert_eq!(after.positions, before.positions);
    // And it trades on: its order updates and fills reach the new instance.
    let events = after.events;
    t.drive_until("the new instance to get events and fill", WAIT, |t| {
        let r = t.report("mm");
        r.events > events && r.fills > before.fills
    })
    .await;
    let records = t.audit_records();
    let lifecycle: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "state" && r["plugin"] == "mm")
        .filter_map(|r| r["event"].as_str())
        .filter(|e| e.starts_with("plugin_l") || e.starts_with("plugin_r"))
        .collect();
    assert_eq!(lifecycle, ["plugin_loaded", "plugin_reloaded"]);
    let reloaded = records.iter().find(|r| r["event"] == "plugin_reloaded").expect("reload audited");
    let detail: serde_json::Value = serde_json::from_str(reloaded["detail"].as_str().expect("detail")).expect("json");
    assert_eq!(detail["by"], "test");
    assert!(detail["contract"].as_str().is_some_and(|c| c.starts_with("tradebox:strategy@0.1.")), "{detail}");
    assert_eq!(detail["to"].as_str(), Some(after.hash.as_str()));
    assert_eq!(reloaded["plugin_hash"].as_str(), Some(after.hash.as_str()));
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_version_is_refused_and_the_running_one_keeps_trading() {
    let t = TestHost::audited().await;
    let config = r#"{"symbol":"BTC-USDT","fast":3,"slow":8,"size":0.01}"#;
    t.load(spec("sma", "sma-cross", config, &["BTC-USDT"])).await.expect("loads");
    t.drive_until("sma-cross to get events", WAIT, |t| t.report("sma").events > 20).await;
    let hash = t.report("sma").hash;

    let err = reload(&t, "sma", request(b"not a component".to_vec(), None)).expect_err("junk");
    assert!(matches!(err, LifecycleError::Reload(ReloadError::Load(_))), "{err}");
    let err = reload(&t, "sma", request(plugin("sma-cross"), Some(r#"{"symbol":"BTC-USDT","fast":9,"slow":3}"#)))
        .expect_err("init fails");
    assert!(matches!(err, LifecycleError::Reload(ReloadError::Init(_))), "{err}");
    assert!(err.to_string().contains("fast < slow"), "the plugin's own reason: {err}");
    // A version that subscribes to what the running one reads, then fails: the running one
    // must keep its stream.
    let err = reload(&t, "sma", request(plugin("misbehave"), Some("\"fail-init\""))).expect_err("init fails");
    assert!(err.to_string().contains("init fails after subscribing"), "{err}");
    let btc = t.host.hub().instrument_by_symbol("BTC-USDT").expect("BTC").id;
    let slot = t.host.slot("sma").expect("sma");
    assert_eq!(t.host.hub().subscriptions(&slot), [(btc, Channel::Tickers)], "the running version's stream stays");
    // misbehave asks for every order type; refused, it leaves sma-cross's permissions as they were.
    let kinds = slot.permissions().requested.as_ref().map(|r| r.order_kinds.clone());
    assert_eq!(kinds, Some(vec![tradebox_core::OrderKind::Market]), "sma-cross's own request is back");
    // noop cannot read sma-cross's state (it subscribes to the tickers and trades first).
    let err = reload(&t, "sma", request(plugin("noop"), Some(r#"{"symbol":"BTC-USDT"}"#))).expect_err("restore fails");
    assert!(matches!(err, LifecycleError::Reload(ReloadError::Restore(_))), "{err}");
    let err = reload(&t, "nobody", request(plugin("noop"), None)).expect_err("unknown");
    assert!(matches!(err, LifecycleError::Unknown(_)), "{err}");
    let err = reload(&t, "sma", ReloadRequest { by: "test".into(), ..ReloadRequest::default() }).expect_err("no file");
    assert!(matches!(err, LifecycleError::NoSource(_)), "{err}");

    let r = t.report("sma");
    assert_eq!((r.reloads, r.hash.as_str(), r.state), (0, hash.as_str(), RunState::Running));
    // The refused versions' subscriptions are gone; the running one's stream is not.
    assert_eq!(t.host.hub().subscriptions(&slot), [(btc, Channel::Tickers)]);
    let events = r.events;
    t.drive_until("the running version to keep serving", WAIT, |t| t.report("sma").events > events + 20).await;
    t.drive_until("the running version to keep trading", WAIT, |t| t.report("sma").fills >= 1).await;
    let refused = t.audit_records().iter().filter(|r| r["event"] == "plugin_reload_refused").count();
    assert_eq!(refused, 5, "every refusal with a plugin is audited");
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_started_reduce_only_cannot_open_a_position_until_resumed() {
    let t = TestHost::new(tradebox::plugin::Mode::Live).await;
    let config = r#"{"symbol":"BTC-USDT","fast":2,"slow":4,"size":0.01}"#;
    let options = LoadOptions { start_reduce_only: true, by: "test".into(), ..LoadOptions::default() };
    tokio::task::block_in_place(|| t.host.load_with(spec("sma", "sma-cross", config, &["BTC-USDT"]), options))
        .expect("loads");
    let slot = t.host.slot("sma").expect("loaded");
    assert_eq!(slot.state(), TradingState::ReduceOnly);
    t.drive_until("a buy signal refused", WAIT, |t| t.report("sma").denied >= 1).await;
    assert_eq!(t.report("sma").fills, 0, "flat and reduce-only: nothing to trade");
    t.host.hub().set_plugin_state(&slot, TradingState::Active, "test resumes it");
    t.drive_until("a fill once resumed", WAIT, |t| t.report("sma").fills >= 1).await;
    // A reload of a plugin loaded reduce-only starts the new version reduce-only too.
    let done = reload(&t, "sma", request(plugin("sma-cross"), None)).expect("reloads");
    assert_eq!(done.trading_state, TradingState::ReduceOnly);
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_or_repeated_across_reloads_under_a_feed() {
    let t = TestHost::new(tradebox::plugin::Mode::Live).await;
    // 1,000 reloads is the soak (`TRADEBOX_SOAK=1`, and the reload bench); the default run does 100.
    let reloads = if std::env::var_os("TRADEBOX_SOAK").is_some() { 1_000 } else { 100 };
    let out = soak::reloads_under_feed(&t, "counter", reloads, 10_000).await;
    assert!(out.sent > 1_000, "the feed ran: {}", out.sent);
    assert_eq!(t.report("counter").reloads, reloads as u32);
    assert_eq!((out.counted, out.out_of_order), (out.sent, 0), "every trade exactly once, in order");
    t.host.shutdown().await;
}

/// Waits (the staging venue's market runs on its own clock) until `done`.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_trades_on_the_simulated_venue_first_then_is_promoted() {
    use tradebox::running::Host;
    use tradebox::running::staging::Promoted;
    use tradebox_sim::venue::{SimConfig, SimVenue};
    let t = TestHost::audited().await;
    let err = tokio::task::block_in_place(|| t.host.promote("sma", "test")).expect_err("no staging yet");
    assert!(matches!(err, LifecycleError::NoStaging), "{err}");
    let mut sim = SimConfig::demo();
    sim.seed = 7;
    let staging_venue = SimVenue::new(sim).expect("sim");
    let staging = Host::start(staging_venue.clone(), t.host.runtime().clone()).await.expect("staging host");
    let _market = staging_venue.spawn();
    t.host.set_staging(staging).expect("staging set once");

    let config = r#"{"symbol":"BTC-USDT","fast":3,"slow":8,"size":0.01}"#;
    t.load(spec("sma", "sma-cross", config, &["BTC-USDT"])).await.expect("loads");
    t.drive_until("sma-cross to get events", WAIT, |t| t.report("sma").events > 20).await;
    let running = t.report("sma").hash;

    // A new build goes to the simulated venue; the running version keeps trading here.
    let v2 = tradebox_package::sections::set_section(&plugin("sma-cross"), "build", b"v2").expect("v2");
    let v2_config = r#"{"symbol":"BTC-USDT","fast":4,"slow":9,"size":0.01}"#;
    let v2_request = request(v2, Some(v2_config));
    tokio::task::block_in_place(|| t.host.stage_reload("sma", v2_request)).expect("staged");
    let staging = t.host.staging().expect("staging");
    let staged = staging.plugin_status("sma").expect("staged sma").hash;
    assert_ne!(staged, running);
    assert_eq!(t.report("sma").hash, running, "the running version is untouched");
    let staged_events = || staging.report().iter().find(|r| r.name == "sma").map_or(0, |r| r.events);
    wait_until("the staged version to trade on the simulated venue", || staged_events() > 20).await;
    let events = t.report("sma").events;
    t.drive_until("the running version to keep going", WAIT, |t| t.report("sma").events > events + 10).await;

    // A version that would be refused does not cost the one staged now.
    let bad = request(plugin("sma-cross"), Some(r#"{"symbol":"BTC-USDT","fats":3}"#));
    let err = tokio::task::block_in_place(|| t.host.stage_reload("sma", bad)).expect_err("a typo");
    assert!(err.to_string().contains("config.fats"), "{err}");
    assert_eq!(staging.plugin_status("sma").map(|s| s.hash), Some(staged.clone()), "the staged version stays");

    // Promotion hot-reloads the running plugin with the staged version.
    let promoted = tokio::task::block_in_place(|| t.host.promote("sma", "test")).expect("promoted");
    assert_eq!(promoted, Promoted::Reloaded { from: running.clone(), to: staged.clone() });
    assert_eq!(t.report("sma").hash, staged);
    assert!(staging.plugin_status("sma").is_none(), "the staged instance is gone");
    let err = tokio::task::block_in_place(|| t.host.promote("sma", "test")).expect_err("nothing staged");
    assert!(matches!(err, LifecycleError::NotStaged(_)), "{err}");

    // A plugin new to this host is loaded on promotion.
    let mm = spec("mm", "market-maker", r#"{"symbol":"ETH-USDT","spread_bps":4}"#, &["ETH-USDT"]);
    let options = LoadOptions { by: "test".into(), ..LoadOptions::default() };
    tokio::task::block_in_place(|| t.host.stage(mm, options)).expect("staged");
    assert!(t.host.slot("mm").is_none());
    let promoted = tokio::task::block_in_place(|| t.host.promote("mm", "test")).expect("promoted");
    assert_eq!(promoted, Promoted::Loaded);
    t.drive_until("the promoted market maker to quote here", WAIT, |t| t.report("mm").orders_sent > 0).await;

    let events: Vec<String> = t
        .audit_records()
        .into_iter()
        .filter_map(|r| r["event"].as_str().map(str::to_string))
        .filter(|e| e.starts_with("plugin_"))
        .collect();
    for expected in ["plugin_staged", "plugin_promoted", "plugin_reloaded"] {
        assert!(events.iter().any(|e| e == expected), "{expected} in {events:?}");
    }
    t.host.shutdown().await;
}
