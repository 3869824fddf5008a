//! The pre-trade check: one order against the plugin's and the account's limits, given what the
//! host knows at that moment. A pure function of its input, so the gateway gathers the input
//! once (under its locks) and every rule can be tested on its own.
//!
//! Order of the rules, cheapest first: trading state, reduce-only, size, notional, price band,
//! open orders, position, gross exposure, free balance. The windows (order rate, duplicates,
//! fill throttle) come last, in [`super::windows`], so a refused order uses up no rate; only a
//! plugin whose own window is already full is refused before all of it
//! ([`super::windows::PluginWindows::refuse_early`]), so that it takes no lock its neighbours
//! share.

use super::limits::{AccountLimits, PriceReference, RiskLimits};
use rust_decimal::Decimal;
use tradebox_core::{Denial, DenialCode, Quote, TradingState};
use tradebox_core::{InstrumentKind, InstrumentSpec, OrderKind, PositionSide, Side};

/// What one scope (a plugin, or the account) already has.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Exposure {
    /// Open orders.
    pub open_orders: usize,
    /// Signed position in the order's instrument (the side it trades, in long/short mode).
    pub position: Decimal,
    /// Size still open on the order's instrument and side (orders not yet filled).
    pub same_side_open: Decimal,
    /// In long/short mode, the size held on the instrument's other side (absolute): a
    /// position limit holds for the long and the short together.
    pub other_side: Decimal,
    /// Gross exposure: positions marked to market plus open orders, absolute, quote currency.
    pub gross: f64,
}

/// An order to check.
#[derive(Debug, Clone, Copy)]
pub struct Order<'a> {
    /// The instrument.
    pub spec: &'a InstrumentSpec,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderKind,
    /// Price on the grid (`None` for market orders).
    pub price: Option<Decimal>,
    /// Size on the grid.
    pub size: Decimal,
    /// Reduce-only flag.
    pub reduce_only: bool,
    /// The position it trades: what "reduces" and the position limits are measured against.
    pub leg: PositionSide,
}

/// Everything the check reads.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The plugin's limits.
    pub limits: &'a RiskLimits,
    /// The account's limits.
    pub account: &'a AccountLimits,
    /// The stricter of the plugin's and the account's trading states.
    pub state: TradingState,
    /// Best bid/ask and last, when known.
    pub quote: Option<Quote>,
    /// How old that quote is, when known.
    pub quote_age: Option<std::time::Duration>,
    /// The plugin's exposure.
    pub plugin: Exposure,
    /// The account's exposure (all plugins).
    pub all: Exposure,
    /// Free balance in the currency the order spends (spot), after what pending orders need;
    /// `None` when unknown or not checked.
    pub available: Option<f64>,
}

/// The price the band is measured around.
pub fn reference(quote: Option<Quote>, by: PriceReference) -> Option<f64> {
    let q = quote?;
    match by {
        PriceReference::Mid | PriceReference::Mark => q.mid(),
        PriceReference::Last => (q.last > 0.0).then_some(q.last).or_else(|| q.mid()),
    }
}

/// The price an order is valued at: its limit price, or for a market order the worst price
/// the band allows on its side.
pub fn valuation_price(order: &Order<'_>, reference: f64, band_pct: f64) -> f64 {
    match order.price {
        Some(p) => tradebox_core::num::measure(p),
        None => match order.side {
            Side::Buy => reference * (1.0 + band_pct / 100.0),
            Side::Sell => reference * (1.0 - band_pct / 100.0),
        },
    }
}

/// Checks one order. `Ok` means every rule passed.
pub fn check(input: &Input<'_>, order: &Order<'_>) -> Result<(), Denial> {
    let (l, a) = (input.limits, input.account);
    if input.state == TradingState::Halted {
        return Err(Denial::new(DenialCode::TradingHalted, "trading is halted; only cancels are accepted"));
    }
    let signed = order.side.sign() * order.size;
    let held = input.plugin.position;
    // Reducing counts the orders already open on the same side: each may close the same
    // position, and together they must not be able to close more than there is.
    let reduces = !held.is_zero()
        && held.is_sign_positive() != signed.is_sign_positive()
        && order.size + input.plugin.same_side_open <= held.abs();
    if (order.reduce_only || input.state == TradingState::ReduceOnly) && !reduces {
        let why = if order.reduce_only { "the order is reduce-only" } else { "trading is REDUCE_ONLY" };
        return Err(Denial::new(DenialCode::ReduceOnly, format!("{why} but would not reduce the position of {held}")));
    }
    let size = tradebox_core::num::measure(order.size);
    if l.max_order_size > 0.0 && size > l.max_order_size {
        return Err(Denial::limit(DenialCode::MaxOrderSize, "order size above the limit", l.max_order_size, size));
    }
    let reference = reference(input.quote, l.price_reference).ok_or_else(|| {
        Denial::new(
            DenialCode::NoReferencePrice,
            format!("no market price for {} yet to check the order against", order.spec.symbol),
        )
    })?;
    if let Some(age) = input.quote_age
        && l.max_quote_age_ms > 0
        && age.as_millis() > u128::from(l.max_quote_age_ms)
    {
        return Err(Denial::limit(
            DenialCode::StaleQuote,
            format!(
                "the last quote of {} is {} ms old; market data may have stopped",
                order.spec.symbol,
                age.as_millis()
            ),
            l.max_quote_age_ms as f64,
            age.as_millis() as f64,
        ));
    }
    let band = reference * l.price_band_pct / 100.0;
    let px = valuation_price(order, reference, l.price_band_pct);
    let cv = tradebox_core::num::measure(order.spec.contract_value);
    let notional = px * size * cv;
    if notional > l.max_order_notional {
        return Err(Denial::limit(
            DenialCode::MaxNotionalExceeded,
            format!("order value {notional:.2} {} above the limit", order.spec.quote),
            l.max_order_notional,
            notional,
        ));
    }
    match order.price {
        Some(_) if (px - reference).abs() > band => {
            return Err(Denial::limit(
                DenialCode::PriceOutsideBand,
                format!("price {px} is more than {}% from the reference {reference:.8}", l.price_band_pct),
                l.price_band_pct,
                (px - reference).abs() / reference * 100.0,
            ));
        }
        None => {
            // A market order fills at the book: refuse it when the book is already beyond the band.
            let far = input.quote.map(|q| if order.side == Side::Buy { q.ask } else { q.bid });
            if let Some(p) = far.filter(|p| *p > 0.0 && (p - reference).abs() > band) {
                return Err(Denial::limit(
                    DenialCode::PriceOutsideBand,
                    format!("the book ({p}) is more than {}% from the reference {reference:.8}", l.price_band_pct),
                    l.price_band_pct,
                    (p - reference).abs() / reference * 100.0,
                ));
            }
        }
        _ => {}
    }
    if input.plugin.open_orders >= l.max_open_orders as usize {
        return Err(Denial::limit(
            DenialCode::MaxOpenOrders,
            "too many open orders",
            f64::from(l.max_open_orders),
            input.plugin.open_orders as f64 + 1.0,
        ));
    }
    if input.all.open_orders >= a.max_open_orders as usize {
        return Err(Denial::limit(
            DenialCode::AccountMaxOpenOrders,
            "too many open orders across the account",
            f64::from(a.max_open_orders),
            input.all.open_orders as f64 + 1.0,
        ));
    }
    if !reduces {
        // The position if this order and the open ones on its side all filled.
        let worst = |e: &Exposure| {
            tradebox_core::num::measure(e.position + order.side.sign() * e.same_side_open + signed).abs()
                + tradebox_core::num::measure(e.other_side)
        };
        if l.max_position > 0.0 {
            let reach = worst(&input.plugin);
            if reach > l.max_position {
                return Err(Denial::limit(
                    DenialCode::MaxPosition,
                    format!("the position in {} could reach {reach}", order.spec.symbol),
                    l.max_position,
                    reach,
                ));
            }
        }
        if a.max_position > 0.0 {
            let reach = worst(&input.all);
            if reach > a.max_position {
                return Err(Denial::limit(
                    DenialCode::AccountMaxPosition,
                    format!("the account's position in {} could reach {reach}", order.spec.symbol),
                    a.max_position,
                    reach,
                ));
            }
        }
        if l.max_gross_exposure > 0.0 && input.plugin.gross + notional > l.max_gross_exposure {
            return Err(Denial::limit(
                DenialCode::MaxGrossExposure,
                "gross exposure above the limit",
                l.max_gross_exposure,
                input.plugin.gross + notional,
            ));
        }
        if a.max_gross_exposure > 0.0 && input.all.gross + notional > a.max_gross_exposure {
            return Err(Denial::limit(
                DenialCode::AccountMaxGrossExposure,
                "the account's gross exposure above the limit",
                a.max_gross_exposure,
                input.all.gross + notional,
            ));
        }
    }
    if a.check_balance
        && order.spec.kind == InstrumentKind::Spot
        && let Some(free) = input.available
    {
        let (need, ccy) = match order.side {
            Side::Buy => (notional, &order.spec.quote),
            Side::Sell => (size, &order.spec.base),
        };
        if need > free {
            return Err(Denial::limit(
                DenialCode::InsufficientBalance,
                format!("needs {need:.8} {ccy}, {free:.8} free after pending orders"),
                free,
                need,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InstrumentSpec {
        InstrumentSpec {
            id: 1,
            symbol: "BTC-USDT".into(),
            kind: InstrumentKind::Spot,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: Decimal::new(1, 1),
            lot_size: Decimal::new(1, 4),
            min_size: Decimal::new(1, 3),
            contract_value: Decimal::ONE,
        }
    }

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    struct Case {
        limits: RiskLimits,
        account: AccountLimits,
        state: TradingState,
        plugin: Exposure,
        all: Exposure,
        available: Option<f64>,
        quote_age: Option<std::time::Duration>,
    }

    impl Case {
        fn new() -> Self {
            Self {
                limits: RiskLimits::default(),
                account: AccountLimits::default(),
                state: TradingState::Active,
                plugin: Exposure::default(),
                all: Exposure::default(),
                available: Some(1_000_000.0),
                quote_age: Some(std::time::Duration::from_millis(200)),
            }
        }

        fn run(&self, side: Side, kind: OrderKind, price: Option<&str>, size: &str) -> Result<(), DenialCode> {
            self.run_with(side, kind, price, size, false)
        }

        fn run_with(
            &self,
            side: Side,
            kind: OrderKind,
            price: Option<&str>,
            size: &str,
            reduce_only: bool,
        ) -> Result<(), DenialCode> {
            let spec = spec();
            let quote = Quote { bid: 100.0, bid_size: 1.0, ask: 100.2, ask_size: 1.0, last: 100.1, received: None };
            let input = Input {
                limits: &self.limits,
                account: &self.account,
                state: self.state,
                quote: Some(quote),
                quote_age: self.quote_age,
                plugin: self.plugin,
                all: self.all,
                available: self.available,
            };
            let order = Order {
                spec: &spec,
                side,
                kind,
                price: price.map(d),
                size: d(size),
                reduce_only,
                leg: PositionSide::Net,
            };
            check(&input, &order).map_err(|e| e.code)
        }
    }

    #[test]
    fn each_rule_refuses_with_its_code() {
        let limit = |c: &Case, px: &str, sz: &str| c.run(Side::Buy, OrderKind::Limit, Some(px), sz);
        let mut c = Case::new();
        assert_eq!(limit(&c, "100", "1"), Ok(()));
        c.limits.max_order_size = 0.5;
        assert_eq!(limit(&c, "100", "1"), Err(DenialCode::MaxOrderSize));
        c = Case::new();
        c.limits.max_order_notional = 50.0;
        assert_eq!(limit(&c, "100", "1"), Err(DenialCode::MaxNotionalExceeded));
        c = Case::new();
        assert_eq!(limit(&c, "106", "1"), Err(DenialCode::PriceOutsideBand), "5% band around the mid 100.1");
        assert_eq!(limit(&c, "94", "1"), Err(DenialCode::PriceOutsideBand), "the band is both ways");
        c.plugin.open_orders = 50;
        assert_eq!(limit(&c, "100", "1"), Err(DenialCode::MaxOpenOrders));
        c = Case::new();
        c.all.open_orders = 500;
        assert_eq!(limit(&c, "100", "1"), Err(DenialCode::AccountMaxOpenOrders));
        c = Case::new();
        c.limits.max_position = 2.0;
        c.plugin.position = d("1");
        c.plugin.same_side_open = d("0.5");
        assert_eq!(limit(&c, "100", "0.5"), Ok(()), "1 + 0.5 open + 0.5 = 2");
        assert_eq!(limit(&c, "100", "0.6"), Err(DenialCode::MaxPosition));
        assert_eq!(c.run(Side::Sell, OrderKind::Limit, Some("100"), "0.6"), Ok(()), "reducing is fine");
        // Long/short mode: the other side counts against the same limit.
        c.plugin.other_side = d("0.5");
        assert_eq!(limit(&c, "100", "0.5"), Err(DenialCode::MaxPosition), "1 + 0.5 + 0.5 long, 0.5 short");
        // Reduce-only: what is already open on the same side may close the position too.
        c = Case::new();
        c.plugin.position = d("1");
        c.plugin.same_side_open = d("0.7");
        let reduce = |c: &Case, sz: &str| c.run_with(Side::Sell, OrderKind::Limit, Some("100"), sz, true);
        assert_eq!(reduce(&c, "0.3"), Ok(()), "0.7 open + 0.3 closes the 1 exactly");
        assert_eq!(reduce(&c, "0.4"), Err(DenialCode::ReduceOnly), "could close 1.1 of a 1 position");
        c = Case::new();
        c.limits.max_gross_exposure = 1_000.0;
        c.plugin.gross = 950.0;
        assert_eq!(limit(&c, "100", "1"), Err(DenialCode::MaxGrossExposure));
        c = Case::new();
        c.available = Some(50.0);
        assert_eq!(limit(&c, "100", "1"), Err(DenialCode::InsufficientBalance));
        c.state = TradingState::Halted;
        assert_eq!(limit(&c, "100", "1"), Err(DenialCode::TradingHalted));
        c = Case::new();
        c.state = TradingState::ReduceOnly;
        assert_eq!(limit(&c, "100", "1"), Err(DenialCode::ReduceOnly));
        c = Case::new();
        c.quote_age = Some(std::time::Duration::from_millis(10_001));
        assert_eq!(limit(&c, "100", "1"), Err(DenialCode::StaleQuote), "a feed frozen for 10 s");
        c.limits.max_quote_age_ms = 0;
        assert_eq!(limit(&c, "100", "1"), Ok(()), "0 turns it off");
    }

    #[test]
    fn market_orders_are_valued_at_the_bands_worst_price() {
        let mut c = Case::new();
        c.limits.max_order_notional = 104.0;
        // 1 unit at the band's worst buy price (mid 100.1 × 1.05 = 105.1) is over 104.
        assert_eq!(c.run(Side::Buy, OrderKind::Market, None, "1"), Err(DenialCode::MaxNotionalExceeded));
        c.limits.max_order_notional = 106.0;
        assert_eq!(c.run(Side::Buy, OrderKind::Market, None, "1"), Ok(()));
        // A book beyond the band refuses market orders.
        c.limits.price_band_pct = 0.05;
        assert_eq!(c.run(Side::Buy, OrderKind::Market, None, "1"), Err(DenialCode::PriceOutsideBand));
    }
}
