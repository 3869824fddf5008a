//! OKX's wire types to the host's venue types and back. Exact decimals pass through untouched;
//! `""` numbers (OKX's "not applicable") become `None` or zero as the host type needs.

use super::OkxVenue;
use crate::venue::{
    BalanceReport, FillReport, InstrumentId, InstrumentKind, InstrumentSpec, Liquidity, MarketEvent, NewOrder,
    OrderKind, OrderReport, OrderStatus, PositionReport, Side,
};
use rust_decimal::Decimal;
use tradebox_okx::model::{self as okx, OrdType, OrderDetails, OrderState, PlaceOrder};

/// The host's view of a listed instrument. Spot and linear swaps are supported.
pub fn spec(id: InstrumentId, i: &okx::Instrument) -> Result<InstrumentSpec, String> {
    if i.state != "live" {
        return Err(format!("state is {:?}; the host trades only live instruments", i.state));
    }
    let (kind, base, quote, contract_value) = match i.inst_type.as_str() {
        "SPOT" => (InstrumentKind::Spot, i.base_ccy.clone(), i.quote_ccy.clone(), Decimal::ONE),
        "SWAP" if i.ct_type == "linear" => {
            let cv = i.ct_val.filter(|v| *v > Decimal::ZERO).ok_or("a swap without a contract value")?;
            (InstrumentKind::Swap, i.ct_val_ccy.clone(), i.settle_ccy.clone(), cv * i.ct_mult.unwrap_or(Decimal::ONE))
        }
        "SWAP" => return Err(format!("{} swaps are not supported (linear only)", i.ct_type)),
        other => return Err(format!("{other} instruments are not supported (SPOT and SWAP only)")),
    };
    if i.tick_sz <= Decimal::ZERO || i.lot_sz <= Decimal::ZERO || i.min_sz <= Decimal::ZERO {
        return Err("tick, lot and minimum sizes must be positive".into());
    }
    Ok(InstrumentSpec {
        id,
        symbol: i.inst_id.clone(),
        kind,
        base,
        quote,
        tick_size: i.tick_sz,
        lot_size: i.lot_sz,
        min_size: i.min_sz,
        contract_value,
    })
}

/// OKX's name for an order kind (also what `tradebox sim` reports back).
pub fn ord_type(kind: OrderKind) -> OrdType {
    match kind {
        OrderKind::Limit => OrdType::Limit,
        OrderKind::Market => OrdType::Market,
        OrderKind::PostOnly => OrdType::PostOnly,
        OrderKind::Ioc => OrdType::Ioc,
        OrderKind::Fok => OrdType::Fok,
    }
}

fn kind(t: OrdType) -> OrderKind {
    match t {
        OrdType::Market => OrderKind::Market,
        OrdType::PostOnly => OrderKind::PostOnly,
        OrdType::Ioc => OrderKind::Ioc,
        OrdType::Fok => OrderKind::Fok,
        OrdType::Limit | OrdType::Unknown => OrderKind::Limit,
    }
}

/// OKX's side of an order.
pub fn okx_side(side: Side) -> okx::Side {
    match side {
        Side::Buy => okx::Side::Buy,
        Side::Sell => okx::Side::Sell,
    }
}

/// A ticker, from a WebSocket push or a REST answer (the same OKX record), as a market event.
pub fn ticker(instrument: InstrumentId, t: &okx::Ticker) -> MarketEvent {
    use rust_decimal::prelude::ToPrimitive;
    let f = |d: Option<Decimal>| d.and_then(|d| d.to_f64()).unwrap_or(0.0);
    MarketEvent::Ticker {
        instrument,
        ts_ms: t.ts,
        bid: f(t.bid_px),
        bid_size: f(t.bid_sz),
        ask: f(t.ask_px),
        ask_size: f(t.ask_sz),
        last: f(t.last),
    }
}

fn side(s: okx::Side) -> Side {
    match s {
        okx::Side::Buy => Side::Buy,
        okx::Side::Sell => Side::Sell,
    }
}

/// The order tag of a plugin's orders (≤ 16 alphanumerics): `tb` and its slot, so the
/// exchange's `cancel-all-after` can be armed per plugin.
pub fn tag(plugin: u32) -> String {
    format!("tb{plugin}")
}

/// The request body for a normalised order. Spot market orders are sized in the base currency
/// (`tgtCcy=base_ccy`; OKX's default for a market buy is the quote currency).
pub fn place_order(spec: &InstrumentSpec, order: &NewOrder) -> PlaceOrder {
    let spot = spec.kind == InstrumentKind::Spot;
    PlaceOrder {
        inst_id: spec.symbol.clone(),
        td_mode: if spot { "cash" } else { "cross" }.into(),
        cl_ord_id: Some(order.client_id.clone()),
        side: okx_side(order.side),
        ord_type: ord_type(order.kind),
        px: order.price.filter(|_| order.kind != OrderKind::Market),
        sz: order.size,
        tag: order.origin.as_ref().map(|o| tag(o.plugin)),
        reduce_only: (!spot && order.reduce_only).then_some(true),
        tgt_ccy: (spot && order.kind == OrderKind::Market).then(|| "base_ccy".to_string()),
        pos_side: None,
    }
}

/// An order's state as a venue report (`None` for instruments the host does not trade).
pub fn report(venue: &OkxVenue, d: &OrderDetails) -> Option<OrderReport> {
    let instrument = venue.instrument_id(&d.inst_id)?;
    let status = match d.state {
        OrderState::Live => OrderStatus::Live,
        OrderState::PartiallyFilled => OrderStatus::PartiallyFilled,
        OrderState::Filled => OrderStatus::Filled,
        OrderState::Canceled | OrderState::MmpCanceled => OrderStatus::Canceled,
        OrderState::Unknown => return None,
    };
    let reason = match (d.state, d.cancel_source.as_str()) {
        (OrderState::MmpCanceled, _) => Some("cancelled by market maker protection".to_string()),
        (OrderState::Canceled, "" | "1") => None,
        (OrderState::Canceled, source) => Some(format!("cancelled by OKX (cancelSource {source})")),
        _ => None,
    };
    Some(OrderReport {
        client_id: d.cl_ord_id.clone(),
        venue_id: d.ord_id.clone(),
        instrument,
        side: side(d.side),
        kind: kind(d.ord_type),
        price: d.px,
        size: d.sz.unwrap_or_default(),
        filled: d.acc_fill_sz.unwrap_or_default(),
        avg_price: d.avg_px.filter(|p| !p.is_zero()),
        status,
        reason,
        ts_ms: d.u_time,
    })
}

/// A fill as a venue report. OKX's fee is negative when charged; the host's is positive.
pub fn fill(venue: &OkxVenue, f: &okx::Fill) -> Option<FillReport> {
    let instrument = venue.instrument_id(&f.inst_id)?;
    Some(FillReport {
        client_id: f.cl_ord_id.clone(),
        trade_id: f.trade_id.clone(),
        instrument,
        side: side(f.side),
        price: f.fill_px,
        size: f.fill_sz,
        fee: -f.fee.unwrap_or_default(),
        fee_currency: f.fee_ccy.clone(),
        liquidity: if f.exec_type == "M" { Liquidity::Maker } else { Liquidity::Taker },
        ts_ms: if f.fill_time > 0 { f.fill_time } else { f.ts },
    })
}

/// One currency of `/account/balance`.
pub fn balance(d: &okx::BalanceDetail) -> BalanceReport {
    let total = d.eq.or(d.cash_bal).unwrap_or_default();
    let frozen = d.frozen_bal.or(d.ord_frozen).unwrap_or_default();
    BalanceReport { currency: d.ccy.clone(), total, available: d.available().unwrap_or(total - frozen), frozen }
}

/// A net position (`None` for instruments the host does not trade).
pub fn position(venue: &OkxVenue, p: &okx::Position) -> Option<PositionReport> {
    let instrument = venue.instrument_id(&p.inst_id)?;
    let size = p.pos.unwrap_or_default();
    // Long/short mode reports two rows; the host runs in net mode, where `pos` is signed.
    let size = if p.pos_side == "short" { -size.abs() } else { size };
    Some(PositionReport { instrument, size, avg_price: p.avg_px.unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instrument(json: &str) -> okx::Instrument {
        serde_json::from_str(json).expect("instrument")
    }

    #[test]
    fn real_instruments_become_specs() {
        let spot = instrument(
            r#"{"instType":"SPOT","instId":"BTC-USDT","baseCcy":"BTC","quoteCcy":"USDT","settleCcy":"","ctVal":"",
               "ctMult":"","ctValCcy":"","ctType":"","tickSz":"0.1","lotSz":"0.00000001","minSz":"0.00001",
               "state":"live","listTime":"1606468572000"}"#,
        );
        let s = spec(1, &spot).expect("spot");
        assert_eq!((s.kind, s.base.as_str(), s.quote.as_str()), (InstrumentKind::Spot, "BTC", "USDT"));
        assert_eq!(s.contract_value, Decimal::ONE);
        let swap = instrument(
            r#"{"instType":"SWAP","instId":"BTC-USDT-SWAP","settleCcy":"USDT","ctVal":"0.01","ctMult":"1",
               "ctValCcy":"BTC","ctType":"linear","tickSz":"0.1","lotSz":"0.01","minSz":"0.01","state":"live"}"#,
        );
        let s = spec(2, &swap).expect("swap");
        assert_eq!((s.kind, s.base.as_str(), s.quote.as_str()), (InstrumentKind::Swap, "BTC", "USDT"));
        assert_eq!(s.contract_value.to_string(), "0.01");
        let inverse = instrument(
            r#"{"instType":"SWAP","instId":"BTC-USD-SWAP","settleCcy":"BTC","ctVal":"100","ctValCcy":"USD",
               "ctType":"inverse","tickSz":"0.1","lotSz":"1","minSz":"1","state":"live"}"#,
        );
        assert!(spec(3, &inverse).unwrap_err().contains("linear only"));
        let suspended = okx::Instrument { state: "suspend".into(), ..spot };
        assert!(spec(4, &suspended).unwrap_err().contains("suspend"));
    }

    #[test]
    fn the_plugin_tag_is_okx_shaped() {
        for p in [1, 99, u32::MAX] {
            let t = tag(p);
            assert!(t.len() <= 16 && t.bytes().all(|b| b.is_ascii_alphanumeric()), "{t}");
        }
    }
}
