//! The simulator over real HTTP, driven by the host's own OKX client: what a client sees is
//! what OKX documents (okx-v5.md §1-§7).

use super::*;
use rust_decimal::Decimal;
use std::str::FromStr;
use tradebox_okx::model::{OrdType, OrderState, PlaceOrder, Side};
use tradebox_okx::{CallOpts, ClockSync, Credentials, OkxError, OrderRef, RestClient, RestConfig, Signer};

const SECRET: &str = "sim-test-secret-7f3a";

pub(super) fn key(perm: &str, demo: bool) -> SimKey {
    SimKey {
        api_key: format!("key-{}", perm.replace(',', "-")),
        secret: SECRET.into(),
        passphrase: "sim-pass".into(),
        perm: perm.into(),
        demo,
        ip: String::new(),
        label: "test".into(),
        acct_lv: 2,
        pos_mode: Default::default(),
    }
}

pub(super) async fn server_with(faults: Faults) -> SimServer {
    server(faults).await
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
    let config = RestConfig {
        base_url: sim.base_url(),
        demo,
        timeout: std::time::Duration::from_millis(timeout_ms),
        tls: Default::default(),
    };
    let signer = Signer::new(Credentials::new(api_key, SECRET, passphrase));
    RestClient::new(config, Some(signer), Arc::new(ClockSync::new())).expect("client")
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
    sim.faults().set(Faults { rate_limit: 1, busy: 1, unavailable: 1, ..Faults::default() });
    let unavailable = fast.balance(&[]).await.expect_err("503");
    assert_eq!(unavailable.code(), Some("50001"), "{unavailable}");
    assert!(fast.balance(&[]).await.expect_err("429").is_rate_limit());
    let busy = fast.balance(&[]).await.expect_err("busy");
    assert!(busy.is_rate_limit() && busy.code() == Some("50013"), "{busy}");
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
    // OKX keeps 20 tag timers per sub-account: a 21st tag is refused, re-arming one is not.
    for i in 0..exchange::TAG_TIMERS {
        c.cancel_all_after(10, Some(&format!("cap{i}"))).await.expect("within the cap");
    }
    let busy = c.cancel_all_after(10, Some("onemore")).await.expect_err("over the cap");
    assert_eq!(busy.code(), Some("51071"));
    sim.exchange().cancel_all_after(10, "cap0").expect("re-arming is not a new timer");
    c.cancel_all_after(10, None).await.expect("the account's own timer is not a tag timer");
}

/// A raw HTTP request with hand-made headers: what no well-behaved client would send.
pub(super) async fn raw(
    sim: &SimServer,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let url = format!("{}{}", sim.base_url(), path);
    let mut req = match method {
        "POST" => client.post(&url).body(body.to_string()),
        _ => client.get(&url),
    };
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("sent");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Signed headers for `key`, with a chosen timestamp.
pub(super) fn signed(api_key: &str, ts: &str, method: &str, path: &str, body: &str) -> Vec<(&'static str, String)> {
    let signer = Signer::new(Credentials::new(api_key, SECRET, "sim-pass"));
    vec![
        ("OK-ACCESS-KEY", api_key.to_string()),
        ("OK-ACCESS-SIGN", signer.sign(ts, method, path, body.as_bytes())),
        ("OK-ACCESS-TIMESTAMP", ts.to_string()),
        ("OK-ACCESS-PASSPHRASE", "sim-pass".to_string()),
        ("x-simulated-trading", "1".to_string()),
        ("Content-Type", "application/json".to_string()),
    ]
}

#[tokio::test]
async fn the_server_reads_the_clock_it_was_given() {
    // An hour behind the machine's clock: the server's time, its checks and its stamps follow it.
    let start = tradebox_core::system_ms() - 3_600_000;
    let (clock, time) = tradebox_core::Clock::virtual_at(start);
    let config =
        SimServerConfig { keys: vec![key("read_only,trade", true)], run_market: false, ..SimServerConfig::default() };
    let sim = SimServer::start_with_clock(config, clock).await.expect("sim starts");
    let (_, answer) = raw(&sim, "GET", "/api/v5/public/time", "", &[]).await;
    assert_eq!(answer["data"][0]["ts"], start.to_string());
    let (key, path) = ("key-read_only-trade", "/api/v5/account/balance");
    let machine = tradebox_okx::sign::timestamp(tradebox_core::system_ms());
    assert_eq!(raw(&sim, "GET", path, "", &signed(key, &machine, "GET", path, "")).await.1["code"], "50102");
    let at = time.advance_by(1_000);
    let stamp = tradebox_okx::sign::timestamp(at);
    let (status, answer) = raw(&sim, "GET", path, "", &signed(key, &stamp, "GET", path, "")).await;
    assert_eq!((status, answer["code"].as_str()), (200, Some("0")), "{answer}");
    assert_eq!(answer["data"][0]["uTime"], at.to_string(), "{answer}");
}

#[tokio::test]
async fn raw_requests_get_okx_exact_codes() {
    let sim = server(Faults::default()).await;
    let key = "key-read_only-trade";
    let now = || tradebox_okx::sign::timestamp(tradebox_core::system_ms());
    let path = "/api/v5/account/balance?ccy=BTC";
    let without =
        |name: &str| signed(key, &now(), "GET", path, "").into_iter().filter(|(k, _)| *k != name).collect::<Vec<_>>();
    let expect = |(status, body): (u16, serde_json::Value), want_status: u16, code: &str, msg: &str| {
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["msg"], msg, "{body}");
    };
    expect(
        raw(&sim, "GET", path, "", &without("OK-ACCESS-KEY")).await,
        401,
        "50103",
        "Request header \"OK-ACCESS-KEY\" cannot be empty.",
    );
    expect(
        raw(&sim, "GET", path, "", &without("OK-ACCESS-PASSPHRASE")).await,
        401,
        "50104",
        "Request header \"OK-ACCESS-PASSPHRASE\" cannot be empty.",
    );
    expect(
        raw(&sim, "GET", path, "", &without("OK-ACCESS-SIGN")).await,
        401,
        "50106",
        "Request header \"OK-ACCESS-SIGN\" cannot be empty.",
    );
    expect(
        raw(&sim, "GET", path, "", &without("OK-ACCESS-TIMESTAMP")).await,
        401,
        "50107",
        "Request header \"OK-ACCESS-TIMESTAMP\" cannot be empty.",
    );
    expect(
        raw(&sim, "GET", path, "", &signed("nobody", &now(), "GET", path, "")).await,
        401,
        "50111",
        "Invalid OK-ACCESS-KEY",
    );
    let live = without("x-simulated-trading");
    expect(raw(&sim, "GET", path, "", &live).await, 401, "50101", "APIKey does not match current environment.");
    expect(
        raw(&sim, "GET", path, "", &signed(key, "1607418537", "GET", path, "")).await,
        401,
        "50112",
        "Invalid OK-ACCESS-TIMESTAMP",
    );
    let old = tradebox_okx::sign::timestamp(tradebox_core::system_ms() - 31_000);
    let (status, body) = raw(&sim, "GET", path, "", &signed(key, &old, "GET", path, "")).await;
    expect((status, body.clone()), 401, "50102", "Timestamp request expired");
    assert_eq!(body["data"], serde_json::json!([]), "50102 carries an empty data array");
    let mut wrong_pass = signed(key, &now(), "GET", path, "");
    wrong_pass[3].1 = "nope".into();
    expect(
        raw(&sim, "GET", path, "", &wrong_pass).await,
        401,
        "50105",
        "Request header \"OK-ACCESS-PASSPHRASE\" incorrect.",
    );
    // Signed over one query, sent with another.
    let h = signed(key, &now(), "GET", path, "");
    expect(raw(&sim, "GET", "/api/v5/account/balance?ccy=ETH", "", &h).await, 401, "50113", "Invalid Sign");
    // Signed over one body, sent with another (a single space more).
    let order = "/api/v5/trade/order";
    let body = r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","px":"100","sz":"0.001"}"#;
    let h = signed(key, &now(), "POST", order, body);
    expect(raw(&sim, "POST", order, &format!("{body} "), &h).await, 401, "50113", "Invalid Sign");
    // Signed as the body was sent, including python's `", "` separators: accepted.
    let spaced = body.replace(",", ", ").replace(":", ": ");
    let (status, answer) = raw(&sim, "POST", order, &spaced, &signed(key, &now(), "POST", order, &spaced)).await;
    assert_eq!((status, answer["code"].as_str()), (200, Some("0")), "{answer}");
    // Body-level errors.
    let mut h = signed(key, &now(), "POST", order, "");
    expect(raw(&sim, "POST", order, "", &h).await, 400, "50000", "Body for POST request cannot be empty.");
    let junk = "{not json";
    h = signed(key, &now(), "POST", order, junk);
    expect(raw(&sim, "POST", order, junk, &h).await, 400, "50002", "Json data format error");
    h = signed(key, &now(), "POST", order, body);
    h.retain(|(k, _)| *k != "Content-Type");
    h.push(("Content-Type", "text/plain".into()));
    expect(
        raw(&sim, "POST", order, body, &h).await,
        400,
        "50006",
        "Invalid Content-Type, please use \"application/json\" format",
    );
    let missing = r#"{"tdMode":"cash","side":"buy","ordType":"limit","px":"100","sz":"0.001"}"#;
    expect(
        raw(&sim, "POST", order, missing, &signed(key, &now(), "POST", order, missing)).await,
        400,
        "50014",
        "Parameter instId can not be empty.",
    );
    // Per-order refusals: HTTP 200, code 1, the item's sCode and sMsg.
    let item = |json: String| {
        let sim = &sim;
        async move {
            let (status, answer) = raw(sim, "POST", order, &json, &signed(key, &now(), "POST", order, &json)).await;
            assert_eq!(
                (status, answer["code"].as_str(), answer["msg"].as_str()),
                (200, Some("1"), Some("All operations failed"))
            );
            assert!(answer["inTime"].is_string() && answer["outTime"].is_string(), "{answer}");
            (
                answer["data"][0]["sCode"].as_str().unwrap_or("").to_string(),
                answer["data"][0]["sMsg"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    let o =
        |fields: &str| format!(r#"{{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit",{fields}}}"#);
    assert_eq!(item(o(r#""px":"100.05","sz":"0.001""#)).await, ("51000".into(), "Parameter px error".into()));
    assert_eq!(
        item(o(r#""px":"100","sz":"0.000000001""#)).await,
        ("51121".into(), "Order quantity must be a multiple of the lot size.".into())
    );
    assert_eq!(
        item(o(r#""px":"100","sz":"0.000001""#)).await,
        ("51020".into(), "Your order should meet or exceed the minimum order amount.".into())
    );
    assert_eq!(item(o(r#""px":"100","sz":"5000""#)).await.0, "51008");
    assert_eq!(
        item(o(r#""px":"100","sz":"0.001","clOrdId":"bad_id""#)).await,
        ("51000".into(), "Parameter clOrdId error".into())
    );
    assert_eq!(item(o(r#""px":"100","sz":"0.001","clOrdId":"x234567890123456789012345678901234""#)).await.0, "51000");
    let unknown = r#"{"instId":"NOPE-USDT","tdMode":"cash","side":"buy","ordType":"limit","px":"1","sz":"1"}"#;
    assert_eq!(item(unknown.to_string()).await, ("51001".into(), "Instrument ID does not exist.".into()));
    // A duplicate clOrdId among pending orders.
    let first = o(r#""px":"100","sz":"0.001","clOrdId":"dup2""#);
    let (_, answer) = raw(&sim, "POST", order, &first, &signed(key, &now(), "POST", order, &first)).await;
    assert_eq!(answer["data"][0]["sCode"], "0");
    assert_eq!(item(first).await, ("51016".into(), "Client order ID already exists.".into()));
    // A batch with one good and one bad order: code 2.
    let batch = format!("[{},{}]", o(r#""px":"100","sz":"0.001""#), o(r#""px":"100.05","sz":"0.001""#));
    let path = "/api/v5/trade/batch-orders";
    let (status, answer) = raw(&sim, "POST", path, &batch, &signed(key, &now(), "POST", path, &batch)).await;
    assert_eq!(
        (status, answer["code"].as_str(), answer["msg"].as_str()),
        (200, Some("2"), Some("Bulk operation partially succeeded."))
    );
    // Public endpoints need no signature; unknown ones are 404.
    let (status, answer) = raw(&sim, "GET", "/api/v5/public/time", "", &[]).await;
    assert_eq!((status, answer["code"].as_str()), (200, Some("0")));
    assert!(answer["data"][0]["ts"].as_str().is_some_and(|t| t.parse::<i64>().is_ok()));
    assert_eq!(raw(&sim, "GET", "/api/v5/nothing/here", "", &[]).await.0, 404);
}

#[tokio::test]
async fn the_pending_order_cap_answers_51025_over_http() {
    // OKX's per-instrument cap is 500 pending orders; the rate limits are off so a test can
    // reach it quickly.
    let config = SimServerConfig {
        keys: vec![key("read_only,trade", true)],
        run_market: false,
        rate_limits: false,
        ..SimServerConfig::default()
    };
    let sim = SimServer::start(config).await.expect("sim");
    let path = "/api/v5/trade/order";
    let now = || tradebox_okx::sign::timestamp(tradebox_core::system_ms());
    let mut last = serde_json::Value::Null;
    for i in 0..=exchange::MAX_PENDING_PER_INSTRUMENT {
        let body = format!(
            r#"{{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","px":"1000","sz":"0.001","clOrdId":"c{i}"}}"#
        );
        last = raw(&sim, "POST", path, &body, &signed("key-read_only-trade", &now(), "POST", path, &body)).await.1;
        if i < exchange::MAX_PENDING_PER_INSTRUMENT {
            assert_eq!(last["code"], "0", "order {i}: {last}");
        }
    }
    assert_eq!((last["code"].as_str(), last["data"][0]["sCode"].as_str()), (Some("1"), Some("51025")), "{last}");
}

#[tokio::test]
async fn pending_order_caps_and_open_accounting() {
    let sim = server(Faults::default()).await;
    let ex = sim.exchange();
    let req = |i: usize, inst: &str, px: &str| exchange::PlaceRequest {
        inst_id: inst.into(),
        td_mode: "cash".into(),
        cl_ord_id: format!("cap{i}"),
        tag: String::new(),
        side: tradebox_core::Side::Buy,
        kind: tradebox_core::OrderKind::Limit,
        px: Some(d(px)),
        sz: d("0.001"),
        reduce_only: false,
        tgt_ccy: String::new(),
        pos_side: String::new(),
    };
    for i in 0..exchange::MAX_PENDING_PER_INSTRUMENT {
        ex.place(req(i, "BTC-USDT", "1000"), Default::default()).expect("under the cap");
    }
    let refused = ex.place(req(9_999, "BTC-USDT", "1000"), Default::default()).expect_err("over the cap");
    assert_eq!(refused.code, "51025");
    // Another instrument has its own count; cancelling frees a place.
    ex.place(req(10_000, "ETH-USDT", "100"), Default::default()).expect("ETH is not full");
    ex.cancel("BTC-USDT", "", "cap0").expect("cancelled");
    ex.place(req(10_001, "BTC-USDT", "1000"), Default::default()).expect("room again");
    let filter = exchange::OrderFilter { inst_id: "BTC-USDT".into(), limit: 100, ..Default::default() };
    assert_eq!(ex.pending(&filter).len(), 100, "a page of 100");
}

#[tokio::test]
async fn account_and_position_modes_are_enforced_with_okx_codes() {
    use tradebox_okx::model::{AccountLevel, PositionMode};
    let sim = server(Faults::default()).await;
    let ex = sim.exchange();
    let modes = |level, positions| exchange::AccountModes { level, positions };
    let req = |inst: &str, td: &str, side, pos_side: &str, sz: &str| exchange::PlaceRequest {
        inst_id: inst.into(),
        td_mode: td.into(),
        cl_ord_id: String::new(),
        tag: String::new(),
        side,
        kind: tradebox_core::OrderKind::Market,
        px: None,
        sz: d(sz),
        reduce_only: false,
        tgt_ccy: "base_ccy".into(),
        pos_side: pos_side.into(),
    };
    let code = |r: Result<exchange::Accepted, exchange::Refusal>| r.err().map(|e| format!("{} {}", e.code, e.msg));
    let (buy, sell) = (tradebox_core::Side::Buy, tradebox_core::Side::Sell);
    let spot_mode = modes(AccountLevel::Spot, PositionMode::Net);
    let margin = modes(AccountLevel::MultiCurrency, PositionMode::Net);
    let hedge = modes(AccountLevel::Futures, PositionMode::LongShort);
    let net = modes(AccountLevel::Futures, PositionMode::Net);
    // Spot: cash in spot and futures mode; the margin modes want cross.
    assert_eq!(code(ex.place(req("BTC-USDT", "cash", buy, "", "0.001"), spot_mode)), None);
    assert_eq!(
        code(ex.place(req("BTC-USDT", "cross", buy, "", "0.001"), spot_mode)).as_deref(),
        Some("51000 Parameter tdMode error")
    );
    assert_eq!(
        code(ex.place(req("BTC-USDT", "cash", buy, "", "0.001"), margin)).as_deref(),
        Some("51000 Parameter tdMode error")
    );
    assert_eq!(code(ex.place(req("BTC-USDT", "cross", buy, "", "0.001"), margin)), None);
    // Swaps: not in spot mode; posSide by position mode.
    let swap = |td, side, pos_side, sz, m| code(ex.place(req("BTC-USDT-SWAP", td, side, pos_side, sz), m));
    assert!(swap("cross", buy, "", "1", spot_mode).is_some_and(|c| c.starts_with("51010 ")));
    assert_eq!(swap("cash", buy, "", "1", net).as_deref(), Some("51000 Parameter tdMode error"));
    assert_eq!(swap("cross", buy, "long", "1", net).as_deref(), Some("51000 Parameter posSide error"));
    assert_eq!(swap("cross", buy, "", "1", hedge).as_deref(), Some("51000 Parameter posSide error"));
    assert_eq!(swap("isolated", buy, "net", "1", net), None);
    // Long/short: a close needs the position it closes.
    assert!(swap("cross", sell, "long", "1", hedge).is_some_and(|c| c.starts_with("51169 ")), "no long to close yet");
    assert_eq!(swap("cross", buy, "long", "2", hedge), None, "opens a long of 2");
    assert_eq!(swap("cross", sell, "short", "1", hedge), None, "opens a short beside it");
    assert!(swap("cross", sell, "long", "3", hedge).is_some_and(|c| c.starts_with("51169 ")), "more than the long");
    assert_eq!(swap("cross", sell, "long", "1", hedge), None, "closes half the long");
    let rows = ex.positions_json("BTC-USDT-SWAP");
    let mut seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["posSide"].as_str().unwrap_or("").into(), r["pos"].as_str().unwrap_or("").into()))
        .collect();
    seen.sort();
    // The net-mode order above (isolated, 1 long) has its own row; long/short rows count up.
    assert_eq!(seen, vec![("long".into(), "1".into()), ("net".into(), "1".into()), ("short".into(), "1".into())]);
}
