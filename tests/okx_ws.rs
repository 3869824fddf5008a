//! OKX's WebSocket feeds into plugins, through trouble: the host on the OKX venue with the REST
//! loop slowed right down, so market data, orders and fills reach plugins over the simulator's
//! WebSocket endpoints; then dropped connections, book gaps and garbled frames, after which the
//! plugin's orders and positions must match the exchange's exactly.

use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tradebox::running::Host;
use tradebox_core::OrderStatus;
use tradebox_e2e::okx::{Rig, rig_with, wait_for};
use tradebox_e2e::spec;
use tradebox_okx::limits::{Endpoint, Request};
use tradebox_sim::server::Faults;

/// REST only reconciles once a minute: what plugins see must come over WebSocket.
async fn ws_rig() -> Rig {
    rig_with(Faults::default(), |c| {
        c.poll_ms = 60_000;
        c.reconcile_ms = 60_000;
        c.account_poll_ms = 60_000;
    })
    .await
}

fn report(host: &Host, name: &str) -> tradebox::running::PluginReport {
    host.report().into_iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no plugin {name}"))
}

async fn admin(r: &Rig, faults: serde_json::Value) {
    let url = format!("{}/sim/faults", r.sim.base_url());
    reqwest_post(&url, faults.to_string()).await;
}

async fn reqwest_post(url: &str, body: String) {
    // The admin endpoint is plain HTTP on loopback; the okx client's reqwest does the job.
    let client = reqwest::Client::new();
    client.post(url).body(body).send().await.expect("admin request");
}

/// A request of the test's own, under the account's rate limits like the host's.
async fn polite<T>(r: &Rig, endpoint: Endpoint, instrument: u32, call: impl std::future::Future<Output = T>) -> T {
    let permit = r.venue.limiter().acquire(&Request::new(endpoint, instrument)).await.expect("a permit");
    let out = call.await;
    r.venue.limiter().complete(permit);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_data_and_private_pushes_reach_plugins_over_websocket() {
    let r = ws_rig().await;
    // Two strategies on one instrument: one exchange subscription.
    for name in ["sma1", "sma2"] {
        let s = spec(name, "sma-cross", r#"{"symbol":"BTC-USDT","fast":2,"slow":4,"size":0.001}"#, &["BTC-USDT"]);
        tokio::task::block_in_place(|| r.host.load(s)).expect("sma-cross loads");
    }
    let mm = spec(
        "mm",
        "market-maker",
        r#"{"symbol":"ETH-USDT","spread_bps":2,"size":0.05,"max_inventory":1}"#,
        &["ETH-USDT"],
    );
    tokio::task::block_in_place(|| r.host.load(mm)).expect("market maker loads");
    wait_for("tickers over WebSocket", || report(&r.host, "sma1").events > 20 && report(&r.host, "sma2").events > 20)
        .await;
    wait_for("the market maker's fills over WebSocket", || report(&r.host, "mm").fills >= 3).await;
    let stats = r.venue.stream_stats().expect("feeds on");
    assert!(stats.frames.load(Ordering::Relaxed) > 20);
    assert_eq!(stats.bad_frames.load(Ordering::Relaxed), 0);
    // Private orders/account/positions, tickers BTC-USDT (once for both sma plugins), and the
    // market maker's tickers (and whatever else it asked for) on ETH-USDT.
    let subscribes = r.sim.faults().ws_subscribes.load(Ordering::Relaxed);
    assert!((4..=7).contains(&subscribes), "{subscribes} exchange subscriptions");
    // Unloading both BTC plugins unsubscribes; loading one again subscribes once more.
    assert!(r.host.unload("sma1", true) && r.host.unload("sma2", true));
    let s = spec("sma3", "sma-cross", r#"{"symbol":"BTC-USDT","fast":2,"slow":4,"size":0.001}"#, &["BTC-USDT"]);
    tokio::task::block_in_place(|| r.host.load(s)).expect("loads");
    wait_for("tickers again", || report(&r.host, "sma3").events > 5).await;
    // One subscription more, or none: an unsubscribe and a subscribe of the same channel that
    // meet before the connection sends either cancel out (the budget of 480 an hour is spent
    // on changes that stick).
    let now = r.sim.faults().ws_subscribes.load(Ordering::Relaxed);
    assert!((subscribes..=subscribes + 1).contains(&now), "{subscribes} then {now} exchange subscriptions");
    r.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_drops_gaps_and_garbage_orders_and_positions_match_the_exchange() {
    let r = ws_rig().await;
    let mm = spec(
        "mm",
        "market-maker",
        r#"{"symbol":"ETH-USDT","spread_bps":2,"size":0.05,"max_inventory":1}"#,
        &["ETH-USDT"],
    );
    tokio::task::block_in_place(|| r.host.load(mm)).expect("market maker loads");
    wait_for("first fills", || report(&r.host, "mm").fills >= 2).await;
    let stats = r.venue.stream_stats().expect("feeds on");
    // Trouble while it trades: dropped connections (fills keep happening on the exchange while
    // the host is away), a book gap, garbled, duplicated and reordered frames.
    for round in 0..3 {
        let before = report(&r.host, "mm").fills;
        admin(&r, serde_json::json!({"ws_drop": true})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        admin(&r, serde_json::json!({"books_gap": true, "ws_malformed": 2, "ws_duplicate": 3, "ws_reorder": 1})).await;
        wait_for(&format!("fills after trouble round {round}"), || report(&r.host, "mm").fills > before).await;
    }
    assert!(stats.reconnects.load(Ordering::Relaxed) >= 3, "reconnected after each drop");
    assert!(stats.bad_frames.load(Ordering::Relaxed) >= 1, "garbled frames were counted and skipped");
    // Stop trading: every order cancelled, then compare with the exchange.
    let slot = r.host.hub().plugins().into_iter().find(|p| p.name == "mm").expect("slot");
    assert!(r.host.unload("mm", true));
    r.host.hub().flush().await;
    // (The test's own queries take permits from the host's limiter: it shares the account.)
    let mut settled = false;
    for _ in 0..100 {
        if polite(&r, Endpoint::PendingOrders, 0, r.venue.rest().pending_orders(None, None))
            .await
            .is_ok_and(|p| p.is_empty())
        {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(settled, "no open order left on the exchange");
    let fills = polite(&r, Endpoint::Fills, 0, r.venue.rest().fills_since(None, None)).await.expect("fills");
    let tag = format!("tb{}", slot.id);
    let mut exchange_pos = Decimal::ZERO;
    let mut filled_by_order: HashMap<String, Decimal> = HashMap::new();
    for f in fills.iter().filter(|f| f.tag == tag) {
        let signed = if f.side == tradebox_okx::model::Side::Buy { f.fill_sz } else { -f.fill_sz };
        exchange_pos += signed;
        *filled_by_order.entry(f.cl_ord_id.clone()).or_default() += f.fill_sz;
    }
    // Let the last pushes and the reconciliation land.
    r.venue.rest().clock();
    wait_for("the host's position to settle", || {
        let host_pos = r.host.hub().positions(slot.id).into_iter().map(|(_, p)| p.size).sum::<Decimal>();
        host_pos == exchange_pos
    })
    .await;
    // Every order's fills and final state as the exchange has them.
    for (id, filled) in &filled_by_order {
        // Fills and order reports come by separate pushes (and the REST reconciliation, every
        // few seconds, after a dropped one): the order's own report may trail its fill.
        let host_filled = || r.host.hub().order(id).is_none_or(|t| &t.report.filled == filled);
        wait_for(&format!("{id}'s report to show its fills"), host_filled).await;
        let tracked = r.host.hub().order(id);
        if let Some(t) = tracked {
            assert_eq!(&t.report.filled, filled, "{id}: filled");
            let d = polite(
                &r,
                Endpoint::OrderDetails,
                2,
                r.venue.rest().order_details("ETH-USDT", tradebox_okx::OrderRef::ClOrdId(id)),
            )
            .await
            .expect("order");
            let exchange_done = d.state.is_terminal();
            assert_eq!(t.report.status.is_terminal(), exchange_done, "{id}: {:?} vs {:?}", t.report.status, d.state);
            if d.state == tradebox_okx::model::OrderState::Filled {
                assert_eq!(t.report.status, OrderStatus::Filled, "{id}");
            }
        }
    }
    assert!(filled_by_order.len() >= 4, "enough orders traded to mean something: {}", filled_by_order.len());
    r.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_stay_correct_through_gaps_and_reconnects() {
    use tradebox::engine::{Grants, PluginEvent, RiskLimits};
    use tradebox_core::Channel;
    use tradebox_core::MarketEvent;
    let r = ws_rig().await;
    // A subscriber of the host's own (the gateway's API, as a plugin's feeds::subscribe does).
    let grants = Grants { instruments: vec!["ETH-USDT".into()], ..Grants::default() };
    let slot = r.host.hub().register("books", grants, RiskLimits::default());
    let eth = r.host.hub().instrument_by_symbol("ETH-USDT").expect("ETH").id;
    r.host.hub().subscribe(&slot, eth, Channel::Books5).expect("granted");
    let stats = r.venue.stream_stats().expect("feeds on");
    let mut books = 0;
    let check = |events: Vec<PluginEvent>, books: &mut u32| {
        for e in events {
            if let PluginEvent::Market(MarketEvent::Book { bids, asks, .. }) = e {
                assert!(!bids.is_empty() && !asks.is_empty() && bids.len() <= 5 && asks.len() <= 5);
                assert!(bids.windows(2).all(|w| w[0].0 > w[1].0), "bids best first: {bids:?}");
                assert!(asks.windows(2).all(|w| w[0].0 < w[1].0), "asks best first: {asks:?}");
                assert!(bids[0].0 < asks[0].0, "a crossed book: {bids:?} / {asks:?}");
                *books += 1;
            }
        }
    };
    for round in 0..3 {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let start = books;
        while books < start + 20 {
            assert!(std::time::Instant::now() < deadline, "books stopped in round {round}");
            let batch = tokio::task::block_in_place(|| {
                slot.mailbox.take(64, Some(std::time::Instant::now() + Duration::from_millis(50)))
            });
            check(batch.unwrap_or_default(), &mut books);
        }
        let fault =
            if round == 1 { serde_json::json!({"ws_drop": true}) } else { serde_json::json!({"books_gap": true}) };
        admin(&r, fault).await;
    }
    let (deadline, start) = (std::time::Instant::now() + Duration::from_secs(30), books);
    while books < start + 20 {
        assert!(std::time::Instant::now() < deadline, "books stopped after the last gap");
        let batch = tokio::task::block_in_place(|| {
            slot.mailbox.take(64, Some(std::time::Instant::now() + Duration::from_millis(50)))
        });
        check(batch.unwrap_or_default(), &mut books);
    }
    assert!(stats.book_gaps.load(Ordering::Relaxed) >= 2, "each gap was seen and answered with a fresh snapshot");
    assert!(stats.reconnects.load(Ordering::Relaxed) >= 1);
    r.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_is_replaced_when_pong_is_late_and_a_notice_reconnects_early() {
    let r = rig_with(Faults::default(), |c| {
        c.poll_ms = 60_000;
        c.reconcile_ms = 60_000;
        c.ws_ping_ms = 300;
        c.ws_pong_ms = 300;
    })
    .await;
    let s = spec("sma", "sma-cross", r#"{"symbol":"BTC-USDT","fast":2,"slow":4,"size":0.001}"#, &["BTC-USDT"]);
    tokio::task::block_in_place(|| r.host.load(s)).expect("loads");
    wait_for("tickers", || report(&r.host, "sma").events > 10).await;
    let stats = r.venue.stream_stats().expect("feeds on");
    // The network stalls for 20 s: nothing arrives, not even pong. The host must not wait it out.
    admin(&r, serde_json::json!({"ws_stall_ms": 20_000})).await;
    let stalled_at = std::time::Instant::now();
    wait_for("a reconnection", || stats.reconnects.load(Ordering::Relaxed) >= 1).await;
    let before = report(&r.host, "sma").events;
    wait_for("tickers on the new connection", || report(&r.host, "sma").events > before + 10).await;
    assert!(stalled_at.elapsed() < Duration::from_secs(10), "recovered long before the stall ended");
    // OKX's service notice (64008): the host reconnects at once instead of waiting to be cut off.
    let reconnects = stats.reconnects.load(Ordering::Relaxed);
    admin(&r, serde_json::json!({"ws_notice": true})).await;
    wait_for("a reconnection after the notice", || stats.reconnects.load(Ordering::Relaxed) > reconnects).await;
    let before = report(&r.host, "sma").events;
    wait_for("tickers after the notice", || report(&r.host, "sma").events > before + 10).await;
    r.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_private_subscription_is_the_feed_down_and_fills_come_through_rest() {
    // REST reconciles fast only while the private feed is down (every 10 minutes while it is
    // up: longer than any wait of this test).
    let r = rig_with(Faults::default(), |c| {
        c.poll_ms = 100;
        c.reconcile_ms = 600_000;
        c.account_poll_ms = 600_000;
    })
    .await;
    let private_up = || r.venue.ws_up(tradebox::venue::okx::stream::Endpoint::Private);
    wait_for("the private subscriptions acknowledged", private_up).await;
    let grants = tradebox::engine::Grants { instruments: vec!["*".into()], ..Default::default() };
    let risk = tradebox::engine::RiskLimits { price_band_pct: 50.0, ..Default::default() };
    let slot = r.host.hub().register("manual", grants, risk);
    let btc = r.host.hub().instrument_by_symbol("BTC-USDT").expect("BTC").id;
    r.host.hub().subscribe(&slot, btc, tradebox_core::Channel::Tickers).expect("granted");
    wait_for("a price", || r.host.hub().quote(btc).is_some()).await;
    // The connection comes back, but OKX refuses its private subscriptions (its 30 connections
    // per channel are taken, say), again and again.
    admin(&r, serde_json::json!({"ws_drop": true, "ws_refuse_subscribe": 1000})).await;
    let refused = || {
        r.host
            .activity()
            .recent(100)
            .iter()
            .any(|a| a.what.to_string().contains("okx-private down") && a.what.to_string().contains("refused"))
    };
    wait_for("the refusal announced as the private link down", refused).await;
    assert!(!private_up(), "connected, but not up: its subscriptions were refused");
    // A fill now reaches the host through REST, at the fast pace, not after the 10 min beat.
    let ask = r.host.hub().quote(btc).map(|q| q.ask).expect("ask");
    let intent = tradebox::engine::OrderIntent {
        instrument: btc,
        side: tradebox_core::Side::Buy,
        kind: tradebox_core::OrderKind::Ioc,
        price: Some(ask * 1.01),
        size: 0.001,
        reduce_only: false,
    };
    let id = r.host.hub().place(&slot, intent).expect("accepted");
    wait_for("the fill through REST", || {
        r.host.hub().order(&id).is_some_and(|t| t.report.status == OrderStatus::Filled)
    })
    .await;
    assert!(!private_up());
    // The refusals stop: the feed is up again once its subscriptions are acknowledged.
    admin(&r, serde_json::json!({"ws_drop": true, "ws_refuse_subscribe": 0})).await;
    wait_for("the private feed back", private_up).await;
    let back = || r.host.activity().recent(100).iter().any(|a| a.what.to_string().contains("okx-private up"));
    wait_for("the feed announced back up", back).await;
    r.host.shutdown().await;
}
