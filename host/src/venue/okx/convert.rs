//! OKX's wire types to the host's venue types and back. Exact decimals pass through untouched;
//! `""` numbers (OKX's "not applicable") become `None` or zero as the host type needs.

use super::OkxVenue;
use rust_decimal::Decimal;
use tradebox_core::{
    BalanceReport, FillReport, InstrumentId, InstrumentKind, InstrumentSpec, Liquidity, MarketEvent, NewOrder,
    OrderKind, OrderReport, OrderStatus, PositionReport, PositionSide, Side,
};
use tradebox_okx::model::{self as okx, OrderDetails, OrderState, PlaceOrder};

/// The host's view of a listed instrument. Spot and linear swaps are supported.
pub fn spec(id: InstrumentId, i: &okx::Instrument) -> Result<InstrumentSpec, String> {
    if i.state != "live" {
        return Err(format!("state is {:?}; the host trades only live instruments", i.state));
    }
    let (kind, base, quote, contract_value) = match i.inst_type.as_str() {
        "SPOT" => (InstrumentKind::Spot, i.base_ccy.clone(), i.quote_ccy.clone(), Decimal::ONE),
        "SWAP" if i.ct_type == "linear" => {
            let cv = i.ct_val.filter(|v| *v > Decimal::ZERO).ok_or("a swap without a contract value")?;
            let cv = cv
                .checked_mul(i.ct_mult.unwrap_or(Decimal::ONE))
                .filter(|v| *v > Decimal::ZERO && *v <= Decimal::from(1_000_000))
                .ok_or("a contract value out of range (ctVal x ctMult above zero, at most 1,000,000)")?;
            (InstrumentKind::Swap, i.ct_val_ccy.clone(), i.settle_ccy.clone(), cv)
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

/// A ticker, from a WebSocket push or a REST answer (the same OKX record), as a market event.
pub fn ticker(instrument: InstrumentId, t: &okx::Ticker) -> MarketEvent {
    let f = |d: Option<Decimal>| d.map_or(0.0, tradebox_core::num::shown);
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

/// How the account trades, read from OKX at start-up (`/account/config`) plus the configured
/// margin mode: what every order's `tdMode` and `posSide` follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeModes {
    /// OKX's account mode.
    pub level: okx::AccountLevel,
    /// OKX's position mode.
    pub positions: okx::PositionMode,
    /// Margin for derivatives (and nothing else: spot is `cash`, or `cross` where the account
    /// mode margins spot).
    pub margin: super::MarginMode,
}

impl TradeModes {
    /// OKX's `tdMode` for an instrument: spot `cash` (`cross` in multi-currency and portfolio
    /// margin mode, where OKX refuses `cash` with 51000), derivatives the configured margin.
    pub fn td_mode(&self, kind: InstrumentKind) -> &'static str {
        match kind {
            InstrumentKind::Spot if self.level.margined_spot() => "cross",
            InstrumentKind::Spot => "cash",
            InstrumentKind::Swap => self.margin.td_mode(),
        }
    }

    /// The host's view of the position mode.
    pub fn position_mode(&self) -> tradebox_core::PositionMode {
        match self.positions {
            okx::PositionMode::Net => tradebox_core::PositionMode::Net,
            okx::PositionMode::LongShort => tradebox_core::PositionMode::LongShort,
        }
    }
}

/// The request body for a normalised order. Spot market orders are sized in the base currency
/// (`tgtCcy=base_ccy`; OKX's default for a market buy is the quote currency). In long/short
/// mode the order names its position (`posSide`) and sends no `reduceOnly` (OKX takes it in net
/// mode only): closing is what the position side says.
pub fn place_order(spec: &InstrumentSpec, order: &NewOrder, modes: &TradeModes) -> PlaceOrder {
    let spot = spec.kind == InstrumentKind::Spot;
    let pos_side = (order.leg != PositionSide::Net).then(|| okx::pos_side(order.leg).to_string());
    PlaceOrder {
        inst_id: spec.symbol.clone(),
        td_mode: modes.td_mode(spec.kind).into(),
        cl_ord_id: Some(order.client_id.clone()),
        side: order.side,
        ord_type: order.kind.into(),
        px: order.price.filter(|_| order.kind != OrderKind::Market),
        sz: order.size,
        tag: order.origin.as_ref().map(|o| tag(o.plugin)),
        reduce_only: (!spot && order.reduce_only && pos_side.is_none()).then_some(true),
        tgt_ccy: (spot && order.kind == OrderKind::Market).then(|| "base_ccy".to_string()),
        pos_side,
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
        kind: d.ord_type.kind(),
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

/// A position (`None` for instruments the host does not trade). Long/short mode reports a row
/// per side; the host's size is signed in every mode (a short position's is negative).
pub fn position(venue: &OkxVenue, p: &okx::Position) -> Option<PositionReport> {
    let instrument = venue.instrument_id(&p.inst_id)?;
    let size = p.pos.unwrap_or_default();
    let side = okx::position_side(&p.pos_side);
    let size = match side {
        PositionSide::Long => size.abs(),
        PositionSide::Short => -size.abs(),
        PositionSide::Net => size,
    };
    Some(PositionReport { instrument, side, size, avg_price: p.avg_px.unwrap_or_default() })
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
    fn td_mode_and_pos_side_follow_the_account() {
        let spec = |kind| InstrumentSpec {
            id: 1,
            symbol: if kind == InstrumentKind::Spot { "BTC-USDT" } else { "BTC-USDT-SWAP" }.into(),
            kind,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: Decimal::ONE,
            lot_size: Decimal::ONE,
            min_size: Decimal::ONE,
            contract_value: Decimal::ONE,
        };
        let modes = |level, positions, margin| TradeModes { level, positions, margin };
        let body = |kind, side, reduce_only, m: TradeModes| {
            let leg = PositionSide::of_order(m.position_mode(), kind, side, reduce_only);
            let order = NewOrder {
                client_id: "tb1".into(),
                instrument: 1,
                side,
                kind: OrderKind::Limit,
                price: Some(Decimal::ONE),
                size: Decimal::ONE,
                reduce_only,
                leg,
                origin: None,
            };
            let b = place_order(&spec(kind), &order, &m);
            (b.td_mode, b.pos_side, b.reduce_only)
        };
        use crate::venue::okx::MarginMode::{Cross, Isolated};
        use okx::AccountLevel::*;
        use okx::PositionMode::{LongShort, Net};
        let (spot, swap) = (InstrumentKind::Spot, InstrumentKind::Swap);
        let none = |td: &str| (td.to_string(), None, None);
        // Spot: cash, or cross where the account mode margins spot; never a posSide.
        assert_eq!(body(spot, Side::Buy, false, modes(Spot, Net, Cross)), none("cash"));
        assert_eq!(body(spot, Side::Buy, false, modes(Futures, LongShort, Isolated)), none("cash"));
        assert_eq!(body(spot, Side::Sell, false, modes(MultiCurrency, Net, Cross)), none("cross"));
        assert_eq!(body(spot, Side::Sell, true, modes(PortfolioMargin, LongShort, Isolated)), none("cross"));
        // Swaps in net mode: the configured margin, reduce-only as asked.
        assert_eq!(body(swap, Side::Buy, false, modes(Futures, Net, Cross)), none("cross"));
        assert_eq!(
            body(swap, Side::Sell, true, modes(MultiCurrency, Net, Isolated)),
            ("isolated".into(), None, Some(true))
        );
        // Long/short mode: the position named, no reduceOnly.
        let leg = |side, reduce_only| body(swap, side, reduce_only, modes(Futures, LongShort, Cross)).1;
        assert_eq!(leg(Side::Buy, false).as_deref(), Some("long"), "a buy opens the long");
        assert_eq!(leg(Side::Sell, false).as_deref(), Some("short"), "a sell opens the short");
        assert_eq!(leg(Side::Sell, true).as_deref(), Some("long"), "a reduce-only sell closes the long");
        assert_eq!(leg(Side::Buy, true).as_deref(), Some("short"), "a reduce-only buy closes the short");
        assert_eq!(body(swap, Side::Buy, true, modes(Futures, LongShort, Cross)).2, None);
    }

    #[test]
    fn the_plugin_tag_is_okx_shaped() {
        for p in [1, 99, u32::MAX] {
            let t = tag(p);
            assert!(t.len() <= 16 && t.bytes().all(|b| b.is_ascii_alphanumeric()), "{t}");
        }
    }
}
