//! Decimals as floats. Money stays exact on its way to a venue; floats are for measures (risk
//! exposure, notional) and for information (plugin events, displays). The two differ in what
//! a value that does not convert becomes (never, within rust_decimal's range; the rules say
//! which way a use fails if that ever changes), so each use says which it is.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// A decimal as a risk measure: one that does not convert counts as unbounded, so a limit
/// refuses rather than lets it through.
pub fn measure(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::MAX)
}

/// A decimal that lowers a risk measure (an amount freed, a free balance): one that does not
/// convert counts as nothing, so a limit refuses rather than lets it through.
pub fn relief(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// A signed change of a risk measure: growth by [`measure`], shrinking by [`relief`].
pub fn change(d: Decimal) -> f64 {
    if d.is_sign_negative() { -relief(-d) } else { measure(d) }
}

/// A decimal as information for a plugin or a display: one that does not convert shows as 0.
pub fn shown(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_convert_exactly_representable_values_alike() {
        let d: Decimal = "1234.5".parse().expect("decimal");
        assert_eq!(measure(d), 1234.5);
        assert_eq!(shown(d), 1234.5);
        assert_eq!(measure(Decimal::MAX), shown(Decimal::MAX), "rust_decimal's whole range fits an f64");
    }
}
