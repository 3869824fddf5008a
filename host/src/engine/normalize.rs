//! Turning a plugin's float price and size into exact exchange values.
//!
//! The rule, documented in the WIT: sizes round down to the lot; limit prices round to the tick
//! in the passive direction (buys down, sells up), except that a value within 1e-6 of a tick
//! snaps to it, so `0.30000000000000004` becomes `0.3` rather than `0.2` or `0.4`. Rounding can
//! therefore never make an order more aggressive or larger than asked, and what reaches the
//! venue is always an exact multiple of tick and lot.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tradebox_core::{Denial, DenialCode};
use tradebox_core::{InstrumentSpec, OrderKind, Side};

/// How close (in units of one tick or lot) a value must be to snap to the grid.
const SNAP: f64 = 1e-6;

/// Puts `value` on the grid of `step`, snapping when within [`SNAP`], otherwise rounding
/// towards zero (`down = true`) or away from it.
fn on_grid(value: f64, step: Decimal, down: bool) -> Option<Decimal> {
    let step_f = step.to_f64()?;
    let units = value / step_f;
    if !units.is_finite() || units > 1e15 {
        return None;
    }
    let nearest = units.round();
    let whole = if (units - nearest).abs() <= SNAP {
        nearest
    } else if down {
        units.floor()
    } else {
        units.ceil()
    };
    // `whole` is an integer below 1e15: exact as an i64, and much cheaper to convert than a float.
    Some(Decimal::from(whole as i64) * step)
}

/// Normalises a price for `side`; `None` for market orders.
pub fn price(
    spec: &InstrumentSpec,
    side: Side,
    kind: OrderKind,
    price: Option<f64>,
) -> Result<Option<Decimal>, Denial> {
    if kind == OrderKind::Market {
        return Ok(None);
    }
    let Some(px) = price else {
        return Err(Denial::new(DenialCode::InvalidPrice, format!("a {kind:?} order needs a price")));
    };
    if !px.is_finite() || px <= 0.0 {
        return Err(Denial::new(DenialCode::InvalidPrice, format!("price {px} is not a positive number")));
    }
    let normalised = on_grid(px, spec.tick_size, side == Side::Buy).ok_or_else(|| {
        Denial::new(DenialCode::InvalidPrice, format!("price {px} cannot be put on tick {}", spec.tick_size))
    })?;
    if normalised <= Decimal::ZERO {
        return Err(Denial::new(
            DenialCode::InvalidPrice,
            format!("price {px} rounds to zero on tick {}", spec.tick_size),
        ));
    }
    Ok(Some(normalised.normalize()))
}

/// Normalises a size: down to the lot, and at least the minimum.
pub fn size(spec: &InstrumentSpec, size: f64) -> Result<Decimal, Denial> {
    if !size.is_finite() || size <= 0.0 {
        return Err(Denial::new(DenialCode::InvalidSize, format!("size {size} is not a positive number")));
    }
    let normalised = on_grid(size, spec.lot_size, true).ok_or_else(|| {
        Denial::new(DenialCode::InvalidSize, format!("size {size} cannot be put on lot {}", spec.lot_size))
    })?;
    if normalised < spec.min_size {
        let min = spec.min_size.to_f64().unwrap_or(0.0);
        return Err(Denial::limit(
            DenialCode::SizeBelowMinimum,
            format!("size {size} is below the minimum {} of {}", spec.min_size, spec.symbol),
            min,
            size,
        ));
    }
    Ok(normalised.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tradebox_core::InstrumentKind;

    fn spec(tick: &str, lot: &str, min: &str) -> InstrumentSpec {
        InstrumentSpec {
            id: 1,
            symbol: "BTC-USDT".into(),
            kind: InstrumentKind::Spot,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: Decimal::from_str(tick).unwrap(),
            lot_size: Decimal::from_str(lot).unwrap(),
            min_size: Decimal::from_str(min).unwrap(),
            contract_value: Decimal::ONE,
        }
    }

    #[test]
    fn float_artefacts_snap_to_the_tick() {
        let s = spec("0.1", "0.00000001", "0.00001");
        let px = price(&s, Side::Buy, OrderKind::Limit, Some(0.1 + 0.2)).unwrap().unwrap();
        assert_eq!(px.to_string(), "0.3");
        let px = price(&s, Side::Sell, OrderKind::Limit, Some(0.1 + 0.2)).unwrap().unwrap();
        assert_eq!(px.to_string(), "0.3");
    }

    #[test]
    fn off_tick_prices_round_passively() {
        let s = spec("0.5", "1", "1");
        assert_eq!(price(&s, Side::Buy, OrderKind::Limit, Some(100.7)).unwrap().unwrap().to_string(), "100.5");
        assert_eq!(price(&s, Side::Sell, OrderKind::Limit, Some(100.7)).unwrap().unwrap().to_string(), "101");
    }

    #[test]
    fn sizes_round_down_and_respect_the_minimum() {
        let s = spec("0.1", "0.001", "0.01");
        assert_eq!(size(&s, 0.0129).unwrap().to_string(), "0.012");
        let denial = size(&s, 0.0099).unwrap_err();
        assert_eq!(denial.code, DenialCode::SizeBelowMinimum);
        assert_eq!(denial.limit, Some(0.01));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let s = spec("0.1", "0.001", "0.01");
        assert_eq!(price(&s, Side::Buy, OrderKind::Limit, Some(f64::NAN)).unwrap_err().code, DenialCode::InvalidPrice);
        assert_eq!(price(&s, Side::Buy, OrderKind::Limit, None).unwrap_err().code, DenialCode::InvalidPrice);
        assert_eq!(price(&s, Side::Buy, OrderKind::Limit, Some(0.04)).unwrap_err().code, DenialCode::InvalidPrice);
        assert_eq!(size(&s, -1.0).unwrap_err().code, DenialCode::InvalidSize);
        assert_eq!(size(&s, f64::INFINITY).unwrap_err().code, DenialCode::InvalidSize);
        assert_eq!(price(&s, Side::Buy, OrderKind::Market, None).unwrap(), None);
    }
}
