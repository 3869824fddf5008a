//! The simulator over real HTTP, driven by the host's own OKX client: what a client sees is
//! what OKX documents (okx-v5.md §1-§7).

use super::*;
use rust_decimal::Decimal;
use std::str::FromStr;
use tradebox_okx::model::{OrdType, OrderState, PlaceOrder, Side};
use tradebox_okx::{CallOpts, Clock, Credentials, OkxError, OrderRef, RestClient, RestConfig, Signer};

const SECRET: &str = "sim-test-secret-7f3a";

fn key(perm: &str, demo: bool) -> SimKey {
    SimKey {
        api_key: format!("key-{}", perm.replace(',', "-")),
        secret: SECRET.into(),
        passphrase: "sim-pass".into(),
        perm: perm.into(),
        demo,
        ip: String::new(),
        label: "test".into(),
    }
}

async fn server(faults: Faults) -> SimServer {
    let config = SimServerConfig {
        keys: vec![key("read_only,trade", true), key("read_only", true), key("read_only,trade,withdraw", false)],
        faults,
        run_market: false,
        ..SimServerConfig::default()
    };
    SimServer::start(config).await.expect("sim starts")
}

fn client(sim: &SimServer, api_key: &str, passphrase: &str, demo: bool, timeout_ms: u64) -> RestClient {
    let config = RestConfig { base_url: sim.base_url(), demo, timeout: std::time::Duration::from_millis(timeout_ms) };
    let signer = Signer::new(Credentials::new(api_key, SECRET, passphrase));
    RestClient::new(config, Some(signer), Arc::new(Clock::new())).expect("client")
}

fn trader(sim: &SimServer) -> RestClient {
    client(sim, "key-read_only-trade", "sim-pass", true, 5_000)
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn limit(cl: &str, side: Side, px: &str, sz: &str) -> PlaceOrder {
    PlaceOrder {
        inst_id: "BTC-USDT".into(),
        td_mode: "cash".into(),
        cl_ord_id: Some(cl.into()),
        side,
        ord_type: OrdType::Limit,
        px: Some(d(px)),
        sz: d(sz),
        tag: Some("tb1".into()),
        reduce_only: None,
        tgt_ccy: None,
        pos_side: None,
    }
}

fn code(r: Result<impl std::fmt::Debug, OkxError>) -> String {
    r.expect_err("refused").code().unwrap_or("none").to_string()
}

#[tokio::test]
async fn authentication_failures_carry_okx_codes() {
    let sim = server(Faults::default()).await;
    let wrong_pass = client(&sim, "key-read_only-trade", "nope", true, 5_000);
    let err = wrong_pass.balance(&[]).await.expect_err("refused");
    assert_eq!(
        err,
        OkxError::Api {
            http_status: 401,
            code: "50105".into(),
            msg: "Request header \"OK-ACCESS-PASSPHRASE\" incorrect.".into()
        }
    );
    assert_eq!(code(client(&sim, "unknown", "sim-pass", true, 5_000).balance(&[]).await), "50111");
    // A live key on the demo header, and a demo key without it.
    assert_eq!(code(client(&sim, "key-read_only-trade-withdraw", "sim-pass", true, 5_000).balance(&[]).await), "50101");
    assert_eq!(code(client(&sim, "key-read_only-trade", "sim-pass", false, 5_000).balance(&[]).await), "50101");
    // A read-only key cannot trade.
    let reader = client(&sim, "key-read_only", "sim-pass", true, 5_000);
    assert!(reader.balance(&[]).await.is_ok());
    assert_eq!(code(reader.place_order(&limit("r1", Side::Buy, "100", "0.001"), &CallOpts::default()).await), "50120");
    assert!(sim.faults().auth_failures.load(std::sync::atomic::Ordering::Relaxed) >= 4);
}

#[tokio::test]
async fn clock_skew_is_corrected_by_the_client() {
    // The server's clock runs 45 s ahead: a naive client gets 50102; ours re-syncs and retries.
    let sim = server(Faults { clock_offset_ms: 45_000, ..Faults::default() }).await;
    let c = trader(&sim);
    let balance = c.balance(&["USDT"]).await.expect("re-synced and retried");
    assert_eq!(balance.details[0].ccy, "USDT");
    assert!((c.clock().offset_ms() - 45_000).abs() < 2_000, "offset {}", c.clock().offset_ms());
}

#[tokio::test]
async fn an_order_lives_amends_and_cancels_as_on_okx() {
    let sim = server(Faults::default()).await;
    let c = trader(&sim);
    let config = c.account_config().await.expect("config");
    assert!(config.can_trade() && !config.can_withdraw());
    let spot = c.instruments("SPOT").await.expect("instruments");
    let btc = spot.iter().find(|i| i.inst_id == "BTC-USDT").expect("BTC-USDT listed");
    assert_eq!((btc.tick_sz, btc.lot_sz, btc.min_sz), (d("0.1"), d("0.00000001"), d("0.00001")));
    assert!(c.instruments("SWAP").await.expect("swaps").iter().any(|i| i.inst_id == "BTC-USDT-SWAP"));
    let ticker = c.ticker("BTC-USDT").await.expect("ticker");
    let bid = ticker.bid_px.expect("bid");
    let book = c.books("BTC-USDT", 5).await.expect("books");
    assert_eq!(book.bids.len(), 5);
    assert_eq!(book.bids[0].0, bid);

    let below = (bid * d("0.9")).round_dp(1).to_string();
    let ack = c.place_order(&limit("tb1a", Side::Buy, &below, "0.01"), &CallOpts::default()).await.expect("placed");
    assert_eq!((ack.cl_ord_id.as_str(), ack.s_code.as_str()), ("tb1a", "0"));
    let live = c.order_details("BTC-USDT", OrderRef::ClOrdId("tb1a")).await.expect("found");
    assert_eq!((live.state, live.ord_id.clone(), live.tag.as_str()), (OrderState::Live, ack.ord_id.clone(), "tb1"));
    assert_eq!(c.pending_orders(Some("SPOT"), None).await.expect("pending").len(), 1);
    let usdt = c.balance(&["USDT"]).await.expect("balance").details.remove(0);
    assert_eq!(usdt.frozen_bal, Some(d(&below) * d("0.01")), "the order reserves its value");

    // A second live order with the same clOrdId is refused; other bad orders get OKX's codes.
    let place = |o: PlaceOrder| {
        let c = c.clone();
        async move { c.place_order(&o, &CallOpts::default()).await }
    };
    assert_eq!(code(place(limit("tb1a", Side::Buy, &below, "0.01")).await), "51016");
    assert_eq!(code(place(limit("tb1b", Side::Buy, "100.05", "0.01")).await), "51000");
    assert_eq!(code(place(limit("tb1c", Side::Buy, &below, "0.000000001")).await), "51121");
    assert_eq!(code(place(limit("tb1d", Side::Buy, &below, "0.000001")).await), "51020");
    assert_eq!(code(place(limit("tb-1e", Side::Buy, &below, "0.01")).await), "51000");
    assert_eq!(code(place(limit("tb1f", Side::Buy, &below, "1000")).await), "51008");
    assert_eq!(
        code(place(PlaceOrder { inst_id: "DOGE-XYZ".into(), ..limit("tb1g", Side::Buy, "1", "1") }).await),
        "51001"
    );

    let amend = tradebox_okx::model::AmendOrder {
        inst_id: "BTC-USDT".into(),
        ord_id: None,
        cl_ord_id: Some("tb1a".into()),
        cxl_on_fail: None,
        req_id: Some("r1".into()),
        new_sz: None,
        new_px: Some(d(&below) - d("1")),
    };
    c.amend_order(&amend, &CallOpts::default()).await.expect("amended");
    let amended = c.order_details("BTC-USDT", OrderRef::OrdId(&ack.ord_id)).await.expect("found");
    assert_eq!(amended.px, Some(d(&below) - d("1")));
    let cancel =
        tradebox_okx::model::CancelOrder { inst_id: "BTC-USDT".into(), ord_id: None, cl_ord_id: Some("tb1a".into()) };
    c.cancel_order(&cancel, &CallOpts::default()).await.expect("cancelled");
    let done = c.order_details("BTC-USDT", OrderRef::ClOrdId("tb1a")).await.expect("found");
    assert_eq!((done.state, done.cancel_source.as_str()), (OrderState::Canceled, "1"));
    assert_eq!(code(c.cancel_order(&cancel, &CallOpts::default()).await), "51400");
    assert_eq!(code(c.order_details("BTC-USDT", OrderRef::ClOrdId("never")).await), "51603");
    // Once terminal, the clOrdId may be used again.
    c.place_order(&limit("tb1a", Side::Buy, &below, "0.01"), &CallOpts::default()).await.expect("reused");
}

#[tokio::test]
async fn fills_are_listed_with_bill_ids_and_fees() {
    let sim = server(Faults::default()).await;
    let c = trader(&sim);
    let ask = c.ticker("BTC-USDT").await.expect("ticker").ask_px.expect("ask");
    let above = (ask * d("1.01")).round_dp(1).to_string();
    let ioc = PlaceOrder { ord_type: OrdType::Ioc, ..limit("tb2a", Side::Buy, &above, "0.02") };
    c.place_order(&ioc, &CallOpts::default()).await.expect("placed");
    let order = c.order_details("BTC-USDT", OrderRef::ClOrdId("tb2a")).await.expect("found");
    assert_eq!(order.state, OrderState::Filled);
    let fills = c.fills_since(Some("SPOT"), None).await.expect("fills");
    assert!(!fills.is_empty());
    let total: Decimal = fills.iter().map(|f| f.fill_sz).sum();
    assert_eq!(total, d("0.02"));
    assert!(
        fills.iter().all(|f| f.cl_ord_id == "tb2a" && f.exec_type == "T" && f.fee.is_some_and(|x| x < Decimal::ZERO))
    );
    let last_bill = fills.last().and_then(|f| f.bill_id.parse::<u64>().ok());
    assert!(c.fills_since(Some("SPOT"), last_bill).await.expect("none newer").is_empty());
}

#[tokio::test]
async fn the_simulator_enforces_okx_rate_limits() {
    let sim = server(Faults::default()).await;
    let c = trader(&sim);
    // Place is 60 per 2 s per instrument: the 61st in a burst is answered 50011 / HTTP 429.
    let mut limited = 0;
    for i in 0..65 {
        let o = limit(&format!("rl{i}"), Side::Buy, "1000", "0.001");
        match c.place_order(&o, &CallOpts::default()).await {
            Ok(_) => {}
            Err(e) if e.is_rate_limit() => limited += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(limited, 5);
    // Other instruments have their own bucket.
    let eth = PlaceOrder { inst_id: "ETH-USDT".into(), ..limit("rleth", Side::Buy, "100", "0.01") };
    c.place_order(&eth, &CallOpts::default()).await.expect("ETH has its own bucket");
}

#[tokio::test]
async fn scripted_faults_leave_orders_executed_but_unanswered() {
    let sim = server(Faults { hang_after_place: 1, hang_ms: 2_000, error_after_place: 1, ..Faults::default() }).await;
    let fast = client(&sim, "key-read_only-trade", "sim-pass", true, 300);
    let err =
        fast.place_order(&limit("hang1", Side::Buy, "1000", "0.001"), &CallOpts::default()).await.expect_err("timeout");
    assert!(err.outcome_unknown(), "{err}");
    let err =
        fast.place_order(&limit("err1", Side::Buy, "1000", "0.001"), &CallOpts::default()).await.expect_err("500");
    assert!(err.outcome_unknown(), "{err}");
    // Both were executed: the exchange knows them.
    for id in ["hang1", "err1"] {
        assert_eq!(
            fast.order_details("BTC-USDT", OrderRef::ClOrdId(id)).await.expect("exists").state,
            OrderState::Live
        );
    }
    sim.faults().set(Faults { rate_limit: 1, ..Faults::default() });
    assert!(fast.balance(&[]).await.expect_err("429").is_rate_limit());
    assert!(fast.balance(&[]).await.is_ok());
}

#[tokio::test]
async fn cancel_all_after_cancels_tagged_orders_when_it_fires() {
    let sim = server(Faults::default()).await;
    let c = trader(&sim);
    c.place_order(&limit("dm1", Side::Buy, "1000", "0.001"), &CallOpts::default()).await.expect("placed");
    let other = PlaceOrder { tag: Some("tb2".into()), ..limit("dm2", Side::Buy, "1000", "0.001") };
    c.place_order(&other, &CallOpts::default()).await.expect("placed");
    let ack = c.cancel_all_after(10, Some("tb1")).await.expect("armed");
    assert!(ack.trigger_time > 0);
    assert_eq!(sim.exchange().fire_dead_man(), 0, "not yet due");
    sim.exchange().expire_dead_man_for_test("tb1");
    assert_eq!(sim.exchange().fire_dead_man(), 1);
    let state = |id: &'static str| {
        let c = c.clone();
        async move { c.order_details("BTC-USDT", OrderRef::ClOrdId(id)).await.expect("found").state }
    };
    assert_eq!(state("dm1").await, OrderState::Canceled);
    assert_eq!(state("dm2").await, OrderState::Live, "another tag's orders stay");
    assert!(c.cancel_all_after(0, Some("tb2")).await.is_ok(), "0 disarms");
}
