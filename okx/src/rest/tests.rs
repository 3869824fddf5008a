//! The client against an in-test HTTP server that checks signatures the way OKX does.

use super::*;
use crate::credentials::Credentials;
use crate::sign::{parse_timestamp, verify};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use std::str::FromStr;

const SECRET: &str = "test-secret-0123456789";
const PASS: &str = "test-pass-phrase";

#[derive(Default)]
struct Server {
    /// Server clock minus local clock.
    skew_ms: i64,
    /// (method, path?query, body) of every signed request that verified.
    verified: Vec<(String, String, String)>,
    rate_limit_balance: bool,
    time_calls: u32,
}

type Shared = Arc<Mutex<Server>>;

fn reply(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

async fn handle(State(s): State<Shared>, method: HttpMethod, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let pq = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let skew = s.lock().skew_ms;
    let now = tradebox_core::system_ms() + skew;
    if uri.path() == "/api/v5/public/time" {
        s.lock().time_calls += 1;
        return reply(StatusCode::OK, format!(r#"{{"code":"0","msg":"","data":[{{"ts":"{now}"}}]}}"#));
    }
    if uri.path() == "/slow" {
        tokio::time::sleep(Duration::from_secs(5)).await;
        return reply(StatusCode::OK, r#"{"code":"0","msg":"","data":[]}"#.into());
    }
    // Private: OKX's checks, in OKX's order.
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (key, sign, ts, pass) =
        (h("OK-ACCESS-KEY"), h("OK-ACCESS-SIGN"), h("OK-ACCESS-TIMESTAMP"), h("OK-ACCESS-PASSPHRASE"));
    if key.is_empty() {
        return reply(
            StatusCode::UNAUTHORIZED,
            r#"{"msg":"Request header \"OK-ACCESS-KEY\" cannot be empty.","code":"50103"}"#.into(),
        );
    }
    let Some(ts_ms) = parse_timestamp(&ts) else {
        return reply(StatusCode::UNAUTHORIZED, r#"{"msg":"Invalid OK-ACCESS-TIMESTAMP","code":"50112"}"#.into());
    };
    if (ts_ms - now).abs() > 30_000 {
        return reply(
            StatusCode::UNAUTHORIZED,
            r#"{"code":"50102","data":[],"msg":"Timestamp request expired"}"#.into(),
        );
    }
    if pass != PASS {
        return reply(
            StatusCode::UNAUTHORIZED,
            r#"{"msg":"Request header \"OK-ACCESS-PASSPHRASE\" incorrect.","code":"50105"}"#.into(),
        );
    }
    if h("x-simulated-trading") != "1" {
        return reply(
            StatusCode::UNAUTHORIZED,
            r#"{"msg":"APIKey does not match current environment.","code":"50101"}"#.into(),
        );
    }
    if !verify(SECRET.as_bytes(), &ts, method.as_str(), &pq, &body, &sign) {
        return reply(StatusCode::UNAUTHORIZED, r#"{"msg":"Invalid Sign","code":"50113"}"#.into());
    }
    let text = String::from_utf8_lossy(&body).to_string();
    s.lock().verified.push((method.to_string(), pq.clone(), text.clone()));
    match uri.path() {
        "/api/v5/account/balance" if s.lock().rate_limit_balance => {
            reply(StatusCode::TOO_MANY_REQUESTS, r#"{"msg":"Too Many Requests","code":"50011"}"#.into())
        }
        "/api/v5/account/balance" => reply(
            StatusCode::OK,
            r#"{"code":"0","msg":"","data":[{"totalEq":"100","uTime":"1","details":[{"ccy":"USDT","eq":"100","availBal":"90","availEq":""}]}]}"#.into(),
        ),
        "/api/v5/trade/order" if method == HttpMethod::POST => {
            let order: PlaceOrder = match serde_json::from_slice(&body) {
                Ok(o) => o,
                Err(_) => return reply(StatusCode::BAD_REQUEST, r#"{"code":"50002","msg":"Json data format error","data":[]}"#.into()),
            };
            let cl = order.cl_ord_id.unwrap_or_default();
            if order.px == Some(Decimal::ZERO) {
                reply(StatusCode::OK, format!(r#"{{"code":"1","data":[{{"clOrdId":"{cl}","ordId":"","sCode":"51000","sMsg":"Parameter px error ","tag":"","ts":"1"}}],"inTime":"1000","msg":"All operations failed","outTime":"1001"}}"#))
            } else {
                reply(StatusCode::OK, format!(r#"{{"code":"0","data":[{{"clOrdId":"{cl}","ordId":"42","sCode":"0","sMsg":"Order placed","tag":""}}],"inTime":"1000","msg":"","outTime":"1001"}}"#))
            }
        }
        "/api/v5/trade/orders-pending" => {
            // Two pages: 100 orders, then 1.
            let after = pq.split("after=").nth(1).unwrap_or("");
            let ids: Vec<u32> = if after.is_empty() { (1..=100).collect() } else { vec![101] };
            let items: Vec<String> = ids
                .iter()
                .map(|i| format!(r#"{{"instId":"BTC-USDT","ordId":"{i}","sz":"1","ordType":"limit","side":"buy","state":"live","px":"1"}}"#))
                .collect();
            reply(StatusCode::OK, format!(r#"{{"code":"0","msg":"","data":[{}]}}"#, items.join(",")))
        }
        "/api/v5/server-error" => reply(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>".into()),
        _ => reply(StatusCode::NOT_FOUND, r#"{"code":"404","msg":"no route"}"#.into()),
    }
}

async fn server() -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new(Server::default()));
    let app = Router::new().fallback(handle).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

fn client(base: &str, timeout: Duration) -> RestClient {
    let signer = Signer::new(Credentials::new("key-1", SECRET, PASS));
    let config = RestConfig { base_url: base.to_string(), demo: true, timeout, tls: Default::default() };
    RestClient::new(config, Some(signer), Arc::new(ClockSync::new())).expect("client")
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Observer for Recorder {
    fn request(&self, r: &SentRequest<'_>) {
        let who = r.caller.map(|c| format!(" for {}@{}", c.name, c.hash)).unwrap_or_default();
        self.0.lock().push(format!("> {} {} {}{who}", r.method, r.path, String::from_utf8_lossy(r.body)));
    }
    fn response(&self, r: &ReceivedResponse<'_>) {
        self.0.lock().push(format!("< {} {}", r.status, String::from_utf8_lossy(r.body)));
    }
}

#[tokio::test]
async fn signed_get_with_query_and_post_with_body_verify_on_the_server() {
    let (base, state) = server().await;
    let recorder = Arc::new(Recorder::default());
    let c = client(&base, Duration::from_secs(2)).with_observer(recorder.clone());
    let b = c.balance(&["USDT", "BTC"]).await.expect("balance");
    assert_eq!(b.details[0].available(), Some(Decimal::from(90)));
    let order = PlaceOrder {
        inst_id: "BTC-USDT".into(),
        td_mode: "cash".into(),
        cl_ord_id: Some("tb1a2".into()),
        side: Side::Buy,
        ord_type: OrdType::Limit,
        px: Some(Decimal::from_str("2.15").expect("px")),
        sz: Decimal::from(2),
        tag: None,
        reduce_only: None,
        tgt_ccy: None,
        pos_side: None,
    };
    let ack = c
        .place_order(
            &order,
            &CallOpts { caller: Some(Caller { name: "sma".into(), hash: "ab12".into() }), ..Default::default() },
        )
        .await
        .expect("placed");
    assert_eq!((ack.ord_id.as_str(), ack.cl_ord_id.as_str()), ("42", "tb1a2"));
    let seen = state.lock().verified.clone();
    assert_eq!(seen[0].1, "/api/v5/account/balance?ccy=USDT,BTC");
    assert_eq!(seen[1].2, serde_json::to_string(&order).expect("json"), "the bytes signed are the bytes sent");
    let log = recorder.0.lock().join("\n");
    assert!(log.contains("> POST /api/v5/trade/order {\"instId\":\"BTC-USDT\""), "{log}");
    assert!(log.contains(" for sma@ab12"), "the caller reaches the observer: {log}");
    assert!(!log.contains(SECRET) && !log.contains(PASS));
}

#[tokio::test]
async fn a_skewed_clock_gets_50102_resyncs_and_retries_once() {
    let (base, state) = server().await;
    state.lock().skew_ms = 90_000;
    let c = client(&base, Duration::from_secs(2));
    let b = c.balance(&[]).await.expect("retried after re-sync");
    assert!(b.total_eq.is_some());
    assert!((c.clock().offset_ms() - 90_000).abs() < 1_000, "{}", c.clock().offset_ms());
    assert_eq!(state.lock().time_calls, 1);
    assert_eq!(state.lock().verified.len(), 1);
}

#[tokio::test]
async fn item_failures_rate_limits_timeouts_and_server_errors_are_typed() {
    let (base, state) = server().await;
    let c = client(&base, Duration::from_millis(300));
    let bad = PlaceOrder {
        inst_id: "BTC-USDT".into(),
        td_mode: "cash".into(),
        cl_ord_id: Some("x1".into()),
        side: Side::Sell,
        ord_type: OrdType::Limit,
        px: Some(Decimal::ZERO),
        sz: Decimal::ONE,
        tag: None,
        reduce_only: None,
        tgt_ccy: None,
        pos_side: None,
    };
    let err = c.place_order(&bad, &CallOpts::default()).await.expect_err("px 0");
    assert_eq!(err, OkxError::Item { code: "51000".into(), msg: "Parameter px error ".into() });
    assert!(!err.outcome_unknown());

    state.lock().rate_limit_balance = true;
    let err = c.balance(&[]).await.expect_err("429");
    assert!(err.is_rate_limit() && err.code() == Some("50011"), "{err:?}");

    let err = c.get::<Value>("/slow", &[], false).await.expect_err("times out");
    assert!(matches!(err, OkxError::Timeout { timeout_ms: 300 }) && err.outcome_unknown(), "{err:?}");

    let err = c.get::<Value>("/api/v5/server-error", &[], true).await.expect_err("502");
    assert!(matches!(err, OkxError::Server { http_status: 502, .. }) && err.outcome_unknown(), "{err:?}");

    let nobody = client("http://127.0.0.1:1", Duration::from_millis(300));
    let err = nobody.server_time().await.expect_err("refused");
    assert!(matches!(err, OkxError::NotSent(_)) && !err.outcome_unknown(), "{err:?}");
}

#[tokio::test]
async fn pending_orders_follow_every_page() {
    let (base, _state) = server().await;
    let c = client(&base, Duration::from_secs(2));
    let orders = c.pending_orders(Some("SPOT"), None).await.expect("pages");
    assert_eq!(orders.len(), 101);
    assert_eq!(orders[100].ord_id, "101");
}

#[tokio::test]
async fn wrong_passphrase_and_missing_credentials() {
    let (base, _state) = server().await;
    let signer = Signer::new(Credentials::new("key-1", SECRET, "wrong"));
    let config =
        RestConfig { base_url: base.clone(), demo: true, timeout: Duration::from_secs(2), tls: Default::default() };
    let c = RestClient::new(config.clone(), Some(signer), Arc::new(ClockSync::new())).expect("client");
    let err = c.account_config().await.expect_err("50105");
    assert_eq!(err.code(), Some("50105"));
    assert!(!err.to_string().contains("wrong"));
    let anonymous = RestClient::new(config, None, Arc::new(ClockSync::new())).expect("client");
    assert!(matches!(anonymous.account_config().await, Err(OkxError::Usage(_))));
    assert!(anonymous.server_time().await.is_ok());
}

#[test]
fn query_strings_keep_order_drop_empty_values_and_encode_the_rest() {
    assert_eq!(
        path_and_query("/api/v5/trade/orders-pending", &[("instType", "SPOT"), ("instId", "BTC-USDT"), ("after", "")]),
        "/api/v5/trade/orders-pending?instType=SPOT&instId=BTC-USDT"
    );
    assert_eq!(path_and_query("/x", &[("a", "b c&d")]), "/x?a=b%20c%26d");
    assert_eq!(path_and_query("/x", &[]), "/x");
}

#[test]
fn non_json_bodies_are_decode_errors_with_an_excerpt() {
    let err = parse::<Value>(200, b"<html>oops</html>").expect_err("not json");
    assert!(matches!(&err, OkxError::Decode { excerpt, .. } if excerpt.contains("oops")), "{err:?}");
}

#[tokio::test]
async fn a_redirect_is_refused_and_the_signed_headers_go_nowhere_else() {
    // Whoever sits at rest_url answers every request with a redirect to another host (here a
    // second server counting what reaches it).
    let reached = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = reached.clone();
    let thief = Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let pass = headers.get("OK-ACCESS-PASSPHRASE").map(|v| v.to_str().unwrap_or("").to_string());
            seen.lock().push(pass.unwrap_or_default());
            reply(StatusCode::OK, r#"{"code":"0","msg":"","data":[]}"#.into())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let thief_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, thief).await });
    let to = thief_url.clone();
    let redirector = Router::new().fallback(move |uri: Uri| {
        let to = format!("{to}{uri}");
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", to)], "").into_response() }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, redirector).await });

    let c = client(&base, Duration::from_secs(5));
    let err = c.balance(&[]).await.expect_err("a redirect is an error");
    assert!(
        matches!(&err, OkxError::Redirected { http_status: 307, location } if location.starts_with(&thief_url)),
        "{err}"
    );
    assert!(!err.outcome_unknown());
    assert!(!err.to_string().contains(PASS));
    assert!(reached.lock().is_empty(), "the redirect was followed: {:?}", reached.lock());
}

fn fill_with_bill(bill: u64) -> Fill {
    serde_json::from_value(serde_json::json!({
        "instId": "BTC-USDT", "tradeId": bill.to_string(), "ordId": "1", "billId": bill.to_string(),
        "fillPx": "1", "fillSz": "1", "side": "buy", "execType": "T", "ts": "1"
    }))
    .expect("fill")
}

/// Newest first, `FILLS_PAGE` a page, like OKX: bills `newest..=1`, `after` exclusive.
fn page_of(newest: u64, after: Option<u64>) -> Vec<Fill> {
    let top = after.map_or(newest, |a| a.saturating_sub(1));
    (1..=top).rev().take(usize::from(FILLS_PAGE)).map(fill_with_bill).collect()
}

#[test]
fn a_fill_walk_reads_back_to_its_cursor_one_page_at_a_time() {
    // 250 fills, cursor at 120: pages 250..151, 150..51 (which reaches the cursor), then done.
    let mut walk = FillWalk::new(Some(120));
    let mut pages = Vec::new();
    while let Some(after) = walk.next_page() {
        pages.push(after);
        walk.take(page_of(250, after));
    }
    assert_eq!(pages, vec![None, Some(151)]);
    let bills: Vec<String> = walk.finish().into_iter().map(|f| f.bill_id).collect();
    assert_eq!(bills.len(), 130);
    assert_eq!((bills[0].as_str(), bills[129].as_str()), ("121", "250"), "oldest first, cursor excluded");

    // A server that ignores `after` and answers the same page again ends the walk.
    let mut walk = FillWalk::new(None);
    walk.take(page_of(250, None));
    walk.take(page_of(250, None));
    assert_eq!(walk.next_page(), None, "the same page twice: no further back, done");

    // Without a cursor every fill is new; a short page ends the walk.
    let mut walk = FillWalk::new(None);
    walk.take(page_of(30, None));
    assert_eq!(walk.next_page(), None);
    assert_eq!(walk.finish().len(), 30);
}
