//! The REST side of the OKX-compatible server: one handler that routes `/api/v5/...`, checks
//! authentication, the simulator's faults and OKX's rate limits, parses the request the way OKX
//! does and answers with OKX's envelopes (string numbers, `code`/`msg`/`data`, per-item
//! `sCode`/`sMsg`, `inTime`/`outTime` in µs on trade endpoints).

mod more;

use super::auth::{self, AuthHeaders, SimKey};
use super::exchange::{Accepted, Exchange, OrderFilter, PlaceRequest, Refusal};
use super::faults::{AfterPlace, FaultState, Faults, Strike};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tradebox_core::{InstrumentKind, OrderKind, Side};
use tradebox_okx::limits::{Endpoint, Limiter, Request};
use tradebox_okx::model::PositionMode;

/// Everything a request handler needs.
pub struct Server {
    /// The simulated exchange.
    pub exchange: Arc<Exchange>,
    /// Accepted API keys.
    pub keys: Vec<SimKey>,
    /// Fault injection and counters.
    pub faults: Arc<FaultState>,
    /// OKX's limits, applied to incoming requests.
    pub limiter: Limiter,
    /// The account's `uid`.
    pub uid: String,
    /// A WebSocket connection silent this long is closed (OKX: 30 s).
    pub ws_idle: std::time::Duration,
    /// Whether OKX's rate limits are enforced.
    pub rate_limits: bool,
    /// The shortest `cancel-all-after` timeout accepted (OKX: 10 s).
    pub dead_man_min_s: u32,
    /// The funding account's balances (`asset/balances`).
    pub funding: std::collections::BTreeMap<String, Decimal>,
}

/// OKX's `inTime`/`outTime`: microseconds on the machine's clock. They tell how long the
/// gateway held a request (a measurement, like the pacing timers), at a resolution the
/// simulator's [`Clock`](tradebox_core::Clock) (milliseconds) does not have, so they do not
/// read it.
pub(super) fn micros() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_micros().to_string()
}

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A bare OKX error (`{"msg","code","data":[]}`).
fn error(status: u16, code: &str, msg: &str) -> Response {
    json_response(status, &json!({"msg": msg, "code": code, "data": []}))
}

fn ok(data: Vec<Value>) -> Response {
    json_response(200, &json!({"code": "0", "msg": "", "data": data}))
}

/// The query string as pairs, percent-decoded.
fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> &'a str {
    q.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// What a route is: its rate-limit endpoint, whether it is private, and whether it trades.
#[derive(Clone, Copy)]
struct Route {
    endpoint: Endpoint,
    private: bool,
    trade: bool,
}

fn route(method: &Method, path: &str) -> Option<Route> {
    let r = |endpoint, private, trade| Some(Route { endpoint, private, trade });
    match (method.as_str(), path) {
        ("GET", "/api/v5/public/time") => r(Endpoint::PublicTime, false, false),
        ("GET", "/api/v5/public/instruments") => r(Endpoint::Instruments, false, false),
        ("GET", "/api/v5/market/ticker") => r(Endpoint::Ticker, false, false),
        ("GET", "/api/v5/market/books") => r(Endpoint::Books, false, false),
        ("GET", "/api/v5/market/tickers") => r(Endpoint::Tickers, false, false),
        ("GET", "/api/v5/market/candles") => r(Endpoint::Candles, false, false),
        ("GET", "/api/v5/market/history-candles") => r(Endpoint::HistoryCandles, false, false),
        ("GET", "/api/v5/market/trades") => r(Endpoint::Trades, false, false),
        ("GET", "/api/v5/trade/orders-history") => r(Endpoint::OrdersHistory, true, false),
        ("GET", "/api/v5/trade/orders-history-archive") => r(Endpoint::OrdersHistoryArchive, true, false),
        ("GET", "/api/v5/trade/fills-history") => r(Endpoint::FillsHistory, true, false),
        ("GET", "/api/v5/account/trade-fee") => r(Endpoint::TradeFee, true, false),
        ("GET", "/api/v5/account/bills") => r(Endpoint::Bills, true, false),
        ("GET", "/api/v5/asset/currencies") => r(Endpoint::AssetCurrencies, true, false),
        ("GET", "/api/v5/asset/balances") => r(Endpoint::AssetBalances, true, false),
        ("POST", "/api/v5/trade/mass-cancel") => r(Endpoint::MassCancel, true, true),
        ("GET", "/api/v5/trade/order") => r(Endpoint::OrderDetails, true, false),
        ("GET", "/api/v5/trade/orders-pending") => r(Endpoint::PendingOrders, true, false),
        ("GET", "/api/v5/trade/fills") => r(Endpoint::Fills, true, false),
        ("GET", "/api/v5/account/balance") => r(Endpoint::Balance, true, false),
        ("GET", "/api/v5/account/positions") => r(Endpoint::Positions, true, false),
        ("GET", "/api/v5/account/config") => r(Endpoint::AccountConfig, true, false),
        ("POST", "/api/v5/trade/order") => r(Endpoint::Place, true, true),
        ("POST", "/api/v5/trade/batch-orders") => r(Endpoint::BatchPlace, true, true),
        ("POST", "/api/v5/trade/cancel-order") => r(Endpoint::Cancel, true, true),
        ("POST", "/api/v5/trade/cancel-batch-orders") => r(Endpoint::BatchCancel, true, true),
        ("POST", "/api/v5/trade/amend-order") => r(Endpoint::Amend, true, true),
        ("POST", "/api/v5/trade/amend-batch-orders") => r(Endpoint::BatchAmend, true, true),
        ("POST", "/api/v5/trade/cancel-all-after") => r(Endpoint::CancelAllAfter, true, true),
        ("GET", "/api/v5/trade/account-rate-limit") => r(Endpoint::AccountRateLimit, true, false),
        _ => None,
    }
}

fn known_path(path: &str) -> bool {
    [Method::GET, Method::POST].iter().any(|m| route(m, path).is_some())
}

/// The single entry point of the REST API.
pub async fn handle(server: Arc<Server>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    FaultState::count(&server.faults.requests);
    let delay = server.faults.delay_ms();
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let response = dispatch(&server, &method, &uri, &headers, &body).await;
    if server.faults.garble() {
        return (StatusCode::OK, "<html>502 Bad Gateway</html>").into_response();
    }
    response
}

async fn dispatch(server: &Server, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    let in_time = micros();
    let path = uri.path();
    if path == "/sim/faults" {
        return faults_admin(server, method, body);
    }
    if path == "/sim/stats" {
        return stats(server);
    }
    let Some(route) = route(method, path) else {
        return if known_path(path) {
            error(405, "50115", "Invalid request method.")
        } else {
            error(404, "404", "Not Found")
        };
    };
    let server_ms = server.exchange.clock().now_ms() + server.faults.clock_offset_ms();
    let key = if route.private {
        let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let auth = AuthHeaders {
            key: h("OK-ACCESS-KEY"),
            sign: h("OK-ACCESS-SIGN"),
            timestamp: h("OK-ACCESS-TIMESTAMP"),
            passphrase: h("OK-ACCESS-PASSPHRASE"),
            demo: h("x-simulated-trading") == Some("1"),
        };
        let raw = uri.path_and_query().map_or(path, |pq| pq.as_str());
        match auth::authenticate(&server.keys, &auth, method.as_str(), raw, body, server_ms) {
            Ok(k) => {
                server.faults.count_key(&k.api_key);
                Some(k.clone())
            }
            Err(e) => {
                FaultState::count(&server.faults.auth_failures);
                let mut v = json!({"msg": e.msg, "code": e.code});
                if e.code == "50102" {
                    v["data"] = json!([]);
                }
                return json_response(e.status, &v);
            }
        }
    } else {
        None
    };
    if route.trade && !key.as_ref().is_some_and(|k| k.has("trade")) {
        return error(200, "50120", "This API key doesn't have permission to use this function");
    }
    if route.private {
        match server.faults.strike() {
            Some(Strike::Unavailable) => {
                return error(503, "50001", "Service temporarily unavailable. Please try again later.");
            }
            Some(Strike::RateLimit) => {
                return json_response(429, &json!({"msg": "Too Many Requests", "code": "50011"}));
            }
            Some(Strike::Busy) => {
                return json_response(
                    429,
                    &json!({"msg": "Systems are busy. Please try again later.", "code": "50013"}),
                );
            }
            Some(Strike::AuthFailure) => {
                FaultState::count(&server.faults.auth_failures);
                return json_response(401, &json!({"msg": "Invalid Sign", "code": "50113"}));
            }
            None => {}
        }
    }
    let q = query_pairs(uri);
    let parsed = if method == Method::POST {
        if !headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"))
        {
            return error(400, "50006", "Invalid Content-Type, please use \"application/json\" format");
        }
        if body.is_empty() {
            return error(400, "50000", "Body for POST request cannot be empty.");
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => v,
            Err(_) => return error(400, "50002", "Json data format error"),
        }
    } else {
        Value::Null
    };
    if let Some(limited) = rate_limit(server, route.endpoint, &q, &parsed) {
        return limited;
    }
    let ex = &server.exchange;
    match (method.as_str(), path) {
        ("GET", "/api/v5/public/time") => ok(vec![json!({"ts": server_ms.to_string()})]),
        ("GET", "/api/v5/public/instruments") => match param(&q, "instType") {
            "" => error(400, "50014", "Parameter instType can not be empty."),
            t @ ("SPOT" | "SWAP" | "MARGIN" | "FUTURES" | "OPTION") => {
                let items = ex.instruments_json(t);
                let inst_id = param(&q, "instId");
                ok(items.into_iter().filter(|i| inst_id.is_empty() || i["instId"] == inst_id).collect())
            }
            _ => error(400, "51000", "Parameter instType error"),
        },
        ("GET", "/api/v5/market/ticker") => match ex.spec(param(&q, "instId")) {
            Some(spec) => ok(ex.ticker_json(spec).into_iter().collect()),
            None if param(&q, "instId").is_empty() => error(400, "50014", "Parameter instId can not be empty."),
            None => error(400, "51001", "Instrument ID does not exist."),
        },
        ("GET", "/api/v5/market/books") => {
            let depth = param(&q, "sz").parse::<usize>().unwrap_or(1).clamp(1, 400);
            match ex.spec(param(&q, "instId")) {
                Some(spec) => ok(ex.books_json(spec, depth).into_iter().collect()),
                None if param(&q, "instId").is_empty() => error(400, "50014", "Parameter instId can not be empty."),
                None => error(400, "51001", "Instrument ID does not exist."),
            }
        }
        ("GET", "/api/v5/trade/order") => {
            let (inst, ord, cl) = (param(&q, "instId"), param(&q, "ordId"), param(&q, "clOrdId"));
            if inst.is_empty() {
                return error(400, "50014", "Parameter instId can not be empty.");
            }
            if ord.is_empty() && cl.is_empty() {
                return error(400, "51003", "Either client order ID or order ID is required.");
            }
            match ex.order(inst, ord, cl) {
                Some(d) => ok(vec![serde_json::to_value(d).unwrap_or_default()]),
                None => error(200, "51603", "Order does not exist."),
            }
        }
        ("GET", "/api/v5/trade/orders-pending") => {
            let orders = ex.pending(&filter(&q));
            ok(orders.into_iter().map(|d| serde_json::to_value(d).unwrap_or_default()).collect())
        }
        ("GET", "/api/v5/trade/fills") => {
            let fills = ex.fills(&filter(&q));
            ok(fills.into_iter().map(|f| serde_json::to_value(f).unwrap_or_default()).collect())
        }
        ("GET", "/api/v5/account/balance") => {
            let ccys: Vec<&str> = param(&q, "ccy").split(',').filter(|c| !c.is_empty()).collect();
            ok(vec![ex.balance_json(&ccys)])
        }
        ("GET", "/api/v5/account/positions") => ok(ex.positions_json(param(&q, "instId"))),
        ("GET", "/api/v5/account/config") => {
            let k = key.as_ref();
            ok(vec![json!({
                "uid": server.uid, "mainUid": server.uid,
                "acctLv": k.map_or(2, |k| k.acct_lv).to_string(),
                "posMode": k.map_or(PositionMode::Net, |k| k.pos_mode).code(),
                "autoLoan": false, "acctStpMode": "cancel_maker", "greeksType": "PA", "level": "Lv1",
                "levelTmp": "", "ctIsoMode": "automatic", "mgnIsoMode": "automatic",
                "label": k.map_or("", |k| k.label.as_str()), "ip": k.map_or("", |k| k.ip.as_str()),
                "perm": k.map_or("", |k| k.perm.as_str()), "kycLv": "2", "type": "0", "roleType": "0", "opAuth": "0",
            })])
        }
        ("GET", "/api/v5/trade/account-rate-limit") => {
            // The cap the simulator enforces (the lowest fill-ratio tier), with no fill ratio
            // assessed yet and no change announced.
            let cap = tradebox_okx::limits::ORDER_CAP.permits.to_string();
            ok(vec![json!({
                "accRateLimit": cap, "fillRatio": "", "mainFillRatio": "", "nextAccRateLimit": "",
                "ts": server_ms.to_string(),
            })])
        }
        ("GET", "/api/v5/market/tickers") => more::tickers(server, &q),
        ("GET", "/api/v5/market/candles") => more::candles(server, &q, true),
        ("GET", "/api/v5/market/history-candles") => more::candles(server, &q, false),
        ("GET", "/api/v5/market/trades") => more::trades(server, &q),
        ("GET", "/api/v5/trade/orders-history" | "/api/v5/trade/orders-history-archive") => {
            more::orders_history(server, &q)
        }
        ("GET", "/api/v5/trade/fills-history") => more::fills_history(server, &q),
        ("GET", "/api/v5/account/trade-fee") => more::trade_fee(server, &q),
        ("GET", "/api/v5/account/bills") => more::bills(server, &q),
        ("GET", "/api/v5/asset/currencies") => more::currencies(server, &q),
        ("GET", "/api/v5/asset/balances") => more::funding_balances(server, &q),
        ("POST", "/api/v5/trade/mass-cancel") => more::mass_cancel(&parsed),
        ("POST", "/api/v5/trade/order") => place(server, headers, key.as_ref(), &parsed, &in_time, false).await,
        ("POST", "/api/v5/trade/batch-orders") => place(server, headers, key.as_ref(), &parsed, &in_time, true).await,
        ("POST", "/api/v5/trade/cancel-order") => single_or_batch(ex, &parsed, false, &in_time, cancel),
        ("POST", "/api/v5/trade/cancel-batch-orders") => single_or_batch(ex, &parsed, true, &in_time, cancel),
        ("POST", "/api/v5/trade/amend-order" | "/api/v5/trade/amend-batch-orders")
            if exp_time(headers).is_some_and(|exp| server_ms > exp) =>
        {
            error(200, "50037", "Order expired.")
        }
        ("POST", "/api/v5/trade/amend-order") => single_or_batch(ex, &parsed, false, &in_time, amend),
        ("POST", "/api/v5/trade/amend-batch-orders") => single_or_batch(ex, &parsed, true, &in_time, amend),
        ("POST", "/api/v5/trade/cancel-all-after") => {
            let secs = text(&parsed, "timeOut");
            let tag = text(&parsed, "tag");
            match secs.parse::<u32>() {
                Ok(s) if s == 0 || (server.dead_man_min_s..=120).contains(&s) => match ex.cancel_all_after(s, &tag) {
                    Ok(at) => ok(vec![json!({"triggerTime": at.to_string(), "tag": tag, "ts": server_ms.to_string()})]),
                    Err(refusal) => error(200, &refusal.code, &refusal.msg),
                },
                _ => error(400, "51000", "Parameter timeOut error"),
            }
        }
        _ => error(404, "404", "Not Found"),
    }
}

fn filter(q: &[(String, String)]) -> OrderFilter {
    OrderFilter {
        inst_type: param(q, "instType").into(),
        inst_id: param(q, "instId").into(),
        ord_id: param(q, "ordId").into(),
        state: param(q, "state").into(),
        after: param(q, "after").parse().ok(),
        before: param(q, "before").parse().ok(),
        limit: param(q, "limit").parse().unwrap_or(100),
    }
}

/// Applies OKX's limits to the request; `Some` is the 429 answer.
fn rate_limit(server: &Server, endpoint: Endpoint, q: &[(String, String)], body: &Value) -> Option<Response> {
    (!within_limits(server, endpoint, q, body))
        .then(|| json_response(429, &json!({"msg": "Too Many Requests", "code": "50011"})))
}

/// Takes the request's permits from OKX's limits (shared by REST and WebSocket order
/// operations, as on OKX); false when over a limit.
pub(super) fn within_limits(server: &Server, endpoint: Endpoint, q: &[(String, String)], body: &Value) -> bool {
    if !server.rate_limits {
        return true;
    }
    let ex = &server.exchange;
    let instrument = |symbol: &str| ex.spec(symbol).map_or((0, false), |s| (s.id, s.kind == InstrumentKind::Spot));
    let mut requests: Vec<Request> = Vec::new();
    match body {
        Value::Array(items) => {
            // Batches count orders per instrument; a batch of one counts as a single request.
            let single = match endpoint {
                Endpoint::BatchPlace if items.len() == 1 => Endpoint::Place,
                Endpoint::BatchCancel if items.len() == 1 => Endpoint::Cancel,
                Endpoint::BatchAmend if items.len() == 1 => Endpoint::Amend,
                e => e,
            };
            let mut per: Vec<(u32, bool, u32)> = Vec::new();
            for item in items {
                let (id, spot) = instrument(&text(item, "instId"));
                match per.iter_mut().find(|(i, _, _)| *i == id) {
                    Some(p) => p.2 += 1,
                    None => per.push((id, spot, 1)),
                }
            }
            requests.extend(per.into_iter().map(|(id, spot, n)| Request::new(single, id).orders(n).cap_exempt(spot)));
        }
        Value::Object(_) if endpoint == Endpoint::CancelAllAfter => {
            requests.push(Request::new(endpoint, tradebox_okx::limits::tag_key(&text(body, "tag"))));
        }
        Value::Object(_) => {
            let (id, spot) = instrument(&text(body, "instId"));
            requests.push(Request::new(endpoint, id).cap_exempt(spot));
        }
        _ => {
            let keyed = match endpoint {
                Endpoint::Instruments => match param(q, "instType") {
                    "SPOT" => 1,
                    "SWAP" => 2,
                    _ => 0,
                },
                _ => instrument(param(q, "instId")).0,
            };
            requests.push(Request::new(endpoint, keyed));
        }
    }
    for r in &requests {
        if server.limiter.try_acquire(r).is_err() {
            FaultState::count(&server.faults.rate_limited);
            return false;
        }
    }
    true
}

/// A string field (strings, numbers and booleans all read as text).
pub(super) fn text(v: &Value, name: &str) -> String {
    match v.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn required(v: &Value, name: &str) -> Result<String, Refusal> {
    let t = text(v, name);
    if t.is_empty() {
        return Err(Refusal { code: "50014".into(), msg: format!("Parameter {name} can not be empty.") });
    }
    Ok(t)
}

fn decimal(v: &Value, name: &str) -> Result<Option<Decimal>, Refusal> {
    let t = text(v, name);
    if t.is_empty() {
        return Ok(None);
    }
    Decimal::from_str(&t)
        .ok()
        .filter(|d| *d >= Decimal::ZERO)
        .map(Some)
        .ok_or_else(|| Refusal { code: "51000".into(), msg: format!("Parameter {name} error") })
}

pub(super) fn parse_place(v: &Value) -> Result<PlaceRequest, Refusal> {
    let inst_id = required(v, "instId")?;
    let td_mode = required(v, "tdMode")?;
    let side = match required(v, "side")?.as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(Refusal { code: "51000".into(), msg: "Parameter side error".into() }),
    };
    let kind = match required(v, "ordType")?.as_str() {
        "limit" => OrderKind::Limit,
        "market" => OrderKind::Market,
        "post_only" => OrderKind::PostOnly,
        "ioc" => OrderKind::Ioc,
        "fok" => OrderKind::Fok,
        _ => return Err(Refusal { code: "51000".into(), msg: "Parameter ordType error".into() }),
    };
    let sz = decimal(v, "sz")?
        .ok_or_else(|| Refusal { code: "50014".into(), msg: "Parameter sz can not be empty.".into() })?;
    if sz.is_zero() {
        return Err(Refusal { code: "51000".into(), msg: "Parameter sz error".into() });
    }
    Ok(PlaceRequest {
        inst_id,
        td_mode,
        cl_ord_id: text(v, "clOrdId"),
        tag: text(v, "tag"),
        side,
        kind,
        px: decimal(v, "px")?,
        sz,
        reduce_only: text(v, "reduceOnly") == "true",
        tgt_ccy: text(v, "tgtCcy"),
        pos_side: text(v, "posSide"),
    })
}

pub(super) fn item(result: &Result<Accepted, Refusal>, v: &Value, ts: &str) -> Value {
    match result {
        Ok(a) => json!({"ordId": a.ord_id, "clOrdId": a.cl_ord_id, "tag": a.tag, "ts": ts, "sCode": "0",
                        "sMsg": "Order placed", "subCode": "", "reqId": text(v, "reqId")}),
        Err(r) => json!({"ordId": text(v, "ordId"), "clOrdId": text(v, "clOrdId"), "tag": text(v, "tag"), "ts": ts,
                         "sCode": r.code, "sMsg": r.msg, "subCode": "", "reqId": text(v, "reqId")}),
    }
}

/// The envelope of order operations: code 0 / 1 / 2 by how many items failed.
fn order_envelope(items: Vec<Value>, in_time: &str) -> Response {
    let failed = items.iter().filter(|i| i["sCode"] != "0").count();
    let (code, msg) = match failed {
        0 => ("0", ""),
        n if n == items.len() => ("1", "All operations failed"),
        _ => ("2", "Bulk operation partially succeeded."),
    };
    json_response(200, &json!({"code": code, "msg": msg, "data": items, "inTime": in_time, "outTime": micros()}))
}

/// Unwraps a single object or a batch array (at most 20) into items.
fn items_of(body: &Value, batch: bool) -> Result<Vec<&Value>, Box<Response>> {
    match (body, batch) {
        (Value::Object(_), false) => Ok(vec![body]),
        (Value::Array(a), true) if a.is_empty() => {
            Err(Box::new(error(400, "50014", "Parameter data can not be empty.")))
        }
        (Value::Array(a), true) if a.len() > 20 => {
            Err(Box::new(error(200, "51111", "Maximum 20 orders can be placed in bulk.")))
        }
        (Value::Array(a), true) => Ok(a.iter().collect()),
        _ => Err(Box::new(error(400, "50002", "Json data format error"))),
    }
}

fn single_or_batch(
    ex: &Exchange,
    body: &Value,
    batch: bool,
    in_time: &str,
    op: impl Fn(&Exchange, &Value) -> Result<Accepted, Refusal>,
) -> Response {
    let items = match items_of(body, batch) {
        Ok(items) => items,
        Err(response) => return *response,
    };
    let ts = ex.clock().now_ms().to_string();
    let results: Vec<Value> = items
        .iter()
        .map(|v| {
            let mut out = item(&op(ex, v), v, &ts);
            if out["sCode"] == "0" {
                out["sMsg"] = json!("");
            }
            out
        })
        .collect();
    order_envelope(results, in_time)
}

/// `expTime` (ms, exchange time) of a request, from the header (REST) when present.
fn exp_time(headers: &HeaderMap) -> Option<i64> {
    headers.get("expTime").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

async fn place(
    server: &Server,
    headers: &HeaderMap,
    key: Option<&SimKey>,
    body: &Value,
    in_time: &str,
    batch: bool,
) -> Response {
    let modes = key.and_then(SimKey::modes).unwrap_or_default();
    let items = match items_of(body, batch) {
        Ok(items) => items,
        Err(response) => return *response,
    };
    let hold = server.faults.before_place();
    if hold > 0 {
        tracing::info!("sim: holding a placement {hold} ms before executing it (fault)");
        tokio::time::sleep(Duration::from_millis(hold)).await;
    }
    let now = server.exchange.clock().now_ms() + server.faults.clock_offset_ms();
    if exp_time(headers).is_some_and(|exp| now > exp) {
        // okx-v5.md §10: which of 50036/50037 OKX sends here is unconfirmed.
        return error(200, "50037", "Order expired.");
    }
    let ts = server.exchange.clock().now_ms().to_string();
    let mut results = Vec::with_capacity(items.len());
    for v in items {
        let result = parse_place(v).and_then(|req| server.exchange.place(req, modes));
        if !batch
            && let Err(r) = &result
            && r.code == "50014"
        {
            return error(400, "50014", &r.msg);
        }
        if result.is_ok() {
            FaultState::count(&server.faults.orders_placed);
        }
        results.push(item(&result, v, &ts));
    }
    match server.faults.after_place() {
        AfterPlace::Answer => order_envelope(results, in_time),
        AfterPlace::Hang(ms) => {
            tracing::info!("sim: holding a placement's answer for {ms} ms (fault)");
            tokio::time::sleep(Duration::from_millis(ms)).await;
            error(504, "50004", "API endpoint request timeout")
        }
        AfterPlace::Error => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
        AfterPlace::SystemError => error(500, "50026", "System error"),
    }
}

pub(super) fn cancel(ex: &Exchange, v: &Value) -> Result<Accepted, Refusal> {
    let inst_id = required(v, "instId")?;
    let (ord, cl) = (text(v, "ordId"), text(v, "clOrdId"));
    if ord.is_empty() && cl.is_empty() {
        return Err(Refusal { code: "51003".into(), msg: "Either client order ID or order ID is required.".into() });
    }
    ex.cancel(&inst_id, &ord, &cl)
}

pub(super) fn amend(ex: &Exchange, v: &Value) -> Result<Accepted, Refusal> {
    let inst_id = required(v, "instId")?;
    let (ord, cl) = (text(v, "ordId"), text(v, "clOrdId"));
    if ord.is_empty() && cl.is_empty() {
        return Err(Refusal { code: "51003".into(), msg: "Either client order ID or order ID is required.".into() });
    }
    let req_id = text(v, "reqId");
    if !req_id.is_empty() && !super::exchange::valid_client_id(&req_id) {
        return Err(Refusal { code: "51000".into(), msg: "Parameter reqId error".into() });
    }
    ex.amend(&inst_id, &ord, &cl, decimal(v, "newPx")?, decimal(v, "newSz")?, text(v, "cxlOnFail") == "true")
}

fn faults_admin(server: &Server, method: &Method, body: &Bytes) -> Response {
    if method == Method::POST {
        match serde_json::from_slice::<Faults>(body) {
            Ok(mut f) => {
                // One-off WebSocket actions happen now and are not kept.
                let feed = server.exchange.feed();
                if std::mem::take(&mut f.ws_drop) {
                    feed.control(super::feed::Push::DropAll);
                }
                if std::mem::take(&mut f.ws_notice) {
                    feed.control(super::feed::Push::Notice);
                }
                if std::mem::take(&mut f.books_gap) {
                    feed.inject_gap();
                }
                let stall = std::mem::take(&mut f.ws_stall_ms);
                if stall > 0 {
                    feed.control(super::feed::Push::Stall(stall));
                }
                server.faults.set(f);
            }
            Err(e) => return error(400, "50002", &format!("faults: {e}")),
        }
    }
    json_response(200, &serde_json::to_value(server.faults.get()).unwrap_or_default())
}

fn stats(server: &Server) -> Response {
    let f = &server.faults;
    json_response(
        200,
        &json!({
            "requests": f.requests.load(Ordering::Relaxed),
            "auth_failures": f.auth_failures.load(Ordering::Relaxed),
            "rate_limited": f.rate_limited.load(Ordering::Relaxed),
            "orders_placed": f.orders_placed.load(Ordering::Relaxed),
            "ws_subscribes": f.ws_subscribes.load(Ordering::Relaxed),
            "ws_connections": f.ws_connections.load(Ordering::Relaxed),
        }),
    )
}
