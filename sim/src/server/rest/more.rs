//! The REST routes clients call beside trading itself: market history (`tickers`, `candles`,
//! `history-candles`, `trades`), the account's paper trail (`orders-history(-archive)`,
//! `fills-history`, `bills`, `trade-fee`), the funding account (`asset/currencies`,
//! `asset/balances`) and `mass-cancel`, each checking OKX's required parameters with OKX's codes
//! before answering with OKX's shapes.

use super::{Server, error, ok, param};
use crate::server::exchange::{CandlePage, HistoryQuery, OrderFilter, bar_index, currency_json};
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Instrument types OKX's endpoints name.
const INST_TYPES: &[&str] = &["SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION", "EVENTS"];

fn empty(name: &str) -> Response {
    error(400, "50014", &format!("Parameter {name} can not be empty."))
}

fn bad(name: &str) -> Response {
    error(400, "51000", &format!("Parameter {name} error"))
}

/// An optional number parameter: absent is `None`, unparsable is OKX's 51000.
fn number<T: std::str::FromStr>(q: &[(String, String)], name: &str) -> Result<Option<T>, Box<Response>> {
    match param(q, name) {
        "" => Ok(None),
        v => v.parse().map(Some).map_err(|_| Box::new(bad(name))),
    }
}

/// `instType` where OKX requires it.
fn required_inst_type<'a>(q: &'a [(String, String)], allowed: &[&str]) -> Result<&'a str, Box<Response>> {
    match param(q, "instType") {
        "" => Err(Box::new(empty("instType"))),
        t if allowed.contains(&t) => Ok(t),
        _ => Err(Box::new(bad("instType"))),
    }
}

fn page(q: &[(String, String)]) -> Result<OrderFilter, Box<Response>> {
    Ok(OrderFilter {
        after: number(q, "after")?,
        before: number(q, "before")?,
        limit: number(q, "limit")?.unwrap_or(100),
        ..OrderFilter::default()
    })
}

fn history_query(q: &[(String, String)], inst_type: &str) -> Result<HistoryQuery, Box<Response>> {
    Ok(HistoryQuery {
        inst_type: inst_type.to_string(),
        inst_family: param(q, "instFamily").into(),
        inst_id: param(q, "instId").into(),
        ord_id: param(q, "ordId").into(),
        ord_types: param(q, "ordType").split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
        state: param(q, "state").into(),
        category: param(q, "category").into(),
        sub_type: param(q, "subType").into(),
        bill_type: param(q, "type").into(),
        ccy: param(q, "ccy").into(),
        mgn_mode: param(q, "mgnMode").into(),
        ct_type: param(q, "ctType").into(),
        begin: number(q, "begin")?,
        end: number(q, "end")?,
        page: page(q)?,
    })
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return *response,
        }
    };
}

/// `GET /market/tickers`.
pub(super) fn tickers(server: &Server, q: &[(String, String)]) -> Response {
    let inst_type = tri!(required_inst_type(q, &["SPOT", "SWAP", "FUTURES", "OPTION", "EVENTS"]));
    ok(server.exchange.tickers_json(inst_type, param(q, "instFamily")))
}

/// `GET /market/candles` (`recent`) and `GET /market/history-candles`.
pub(super) fn candles(server: &Server, q: &[(String, String)], recent: bool) -> Response {
    let ex = &server.exchange;
    let spec = match (param(q, "instId"), ex.spec(param(q, "instId"))) {
        ("", _) => return empty("instId"),
        (_, None) => return error(200, "51001", "Instrument ID does not exist."),
        (_, Some(spec)) => spec,
    };
    let bar = match param(q, "bar") {
        "" => bar_index("1m"),
        b => bar_index(b),
    };
    let Some(bar) = bar else { return bad("bar") };
    let page = CandlePage {
        after: tri!(number(q, "after")),
        before: tri!(number(q, "before")),
        limit: tri!(number(q, "limit")).unwrap_or(100),
    };
    ok(ex.candles_json(spec, bar, page, recent))
}

/// `GET /market/trades`.
pub(super) fn trades(server: &Server, q: &[(String, String)]) -> Response {
    let ex = &server.exchange;
    let spec = match (param(q, "instId"), ex.spec(param(q, "instId"))) {
        ("", _) => return empty("instId"),
        (_, None) => return error(200, "51001", "Instrument ID does not exist."),
        (_, Some(spec)) => spec,
    };
    ok(ex.trades_json(spec, tri!(number(q, "limit")).unwrap_or(100)))
}

/// `GET /trade/orders-history` and `GET /trade/orders-history-archive`: the simulator keeps
/// one record of finished orders, so both serve it (OKX's 7-day and 3-month windows).
pub(super) fn orders_history(server: &Server, q: &[(String, String)]) -> Response {
    let inst_type = tri!(required_inst_type(q, INST_TYPES));
    if !matches!(param(q, "state"), "" | "canceled" | "filled" | "mmp_canceled") {
        return bad("state");
    }
    ok(server.exchange.orders_history(&tri!(history_query(q, inst_type))))
}

/// `GET /trade/fills-history`.
pub(super) fn fills_history(server: &Server, q: &[(String, String)]) -> Response {
    let inst_type = tri!(required_inst_type(q, INST_TYPES));
    ok(server.exchange.fills_history(&tri!(history_query(q, inst_type))))
}

/// `GET /account/bills`.
pub(super) fn bills(server: &Server, q: &[(String, String)]) -> Response {
    let inst_type = match param(q, "instType") {
        t if t.is_empty() || INST_TYPES.contains(&t) => t,
        _ => return bad("instType"),
    };
    ok(server.exchange.bills_json(&tri!(history_query(q, inst_type))))
}

/// `GET /account/trade-fee`.
pub(super) fn trade_fee(server: &Server, q: &[(String, String)]) -> Response {
    let inst_type = tri!(required_inst_type(q, INST_TYPES));
    let inst_id = param(q, "instId");
    if !inst_id.is_empty() && server.exchange.spec(inst_id).is_none() {
        return error(200, "51001", "Instrument ID does not exist.");
    }
    let scoped = !inst_id.is_empty() || !param(q, "instFamily").is_empty();
    if !param(q, "groupId").is_empty() && scoped {
        return error(200, "50024", "Parameter groupId and instId can not exist at the same time.");
    }
    ok(vec![server.exchange.trade_fee_json(inst_type)])
}

fn ccys(q: &[(String, String)]) -> Vec<&str> {
    param(q, "ccy").split(',').filter(|c| !c.is_empty()).collect()
}

/// `GET /asset/currencies`.
pub(super) fn currencies(server: &Server, q: &[(String, String)]) -> Response {
    let wanted = ccys(q);
    let mut all = server.exchange.currencies();
    all.extend(server.funding.keys().cloned());
    ok(all.iter().filter(|c| wanted.is_empty() || wanted.contains(&c.as_str())).map(|c| currency_json(c)).collect())
}

/// `GET /asset/balances`: the funding account holds what the configuration gives it and never
/// changes (the simulator has no transfers); OKX lists only currencies with a balance.
pub(super) fn funding_balances(server: &Server, q: &[(String, String)]) -> Response {
    let wanted = ccys(q);
    if wanted.len() > 20 {
        return bad("ccy");
    }
    ok(server
        .funding
        .iter()
        .filter(|(c, amount)| **amount > Decimal::ZERO && (wanted.is_empty() || wanted.contains(&c.as_str())))
        .map(|(c, amount)| {
            let bal = amount.normalize().to_string();
            json!({"ccy": c, "bal": bal, "frozenBal": "0", "availBal": bal})
        })
        .collect())
}

/// `POST /trade/mass-cancel`: OKX serves it only for OPTION (MMP orders of an instrument
/// family in portfolio margin); the simulator lists no options, so a valid request has
/// nothing to cancel and succeeds, and any other instType is refused as OKX refuses it.
pub(super) fn mass_cancel(body: &Value) -> Response {
    let field = |name: &str| super::text(body, name);
    match field("instType").as_str() {
        "" => return empty("instType"),
        "OPTION" => {}
        _ => return bad("instType"),
    }
    if field("instFamily").is_empty() {
        return empty("instFamily");
    }
    let lock = field("lockInterval");
    if !lock.is_empty() && !lock.parse::<u32>().is_ok_and(|ms| ms <= 10_000) {
        return bad("lockInterval");
    }
    ok(vec![json!({"result": true})])
}
