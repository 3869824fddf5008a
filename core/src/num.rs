//! Decimals as floats. Money stays exact on its way to a venue; floats are for measures (risk
//! exposure, notional) and for information (plugin events, displays). The two differ in what
//! a value that does not convert becomes (never, within rust_decimal's range; the rules say
//! which way a use fails if that ever changes), so each use says which it is.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// A decimal as the nearest float, correctly rounded, as its text would read: a price of
/// 64123.5 or 0.1 is the float a parser makes of it (`Decimal::to_f64` can be a bit off with
/// 16 or more digits; a backtest's books must hold the data's prices to the bit). Decimals of at
/// most 15 digits (prices, sizes, fees) take Clinger's fast path: their digits and the power of
/// ten are both exact floats, and one division of exact operands rounds correctly; the rest are
/// read from their text. `None` only for a text a float cannot read (none within
/// rust_decimal's range, whose largest value is about 7.9e28). Not for the hot paths of risk
/// and plugin events: a decimal of many digits (a division's result) takes the text path,
/// several times slower than `to_f64`, whose last bit does not matter there.
pub fn nearest(d: Decimal) -> Option<f64> {
    /// 10^0 ..= 10^22: every one an exact float (10^23 is not).
    const POWERS_OF_TEN: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    let digits = d.mantissa().unsigned_abs();
    let scale = d.scale() as usize;
    if digits < 1 << 53 && scale < POWERS_OF_TEN.len() {
        let magnitude = digits as f64 / POWERS_OF_TEN[scale];
        return Some(if d.is_sign_negative() { -magnitude } else { magnitude });
    }
    d.to_string().parse().ok()
}

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
        assert_eq!(shown(Decimal::MIN), -shown(Decimal::MAX));
    }

    #[test]
    fn nearest_is_the_text_read_correctly_rounded() {
        // Mantissas on both sides of the fast path's 2^53, at every scale; a fixed walk (no
        // randomness in tests) through numbers with many digits.
        let mut m: i128 = 1;
        for step in 0..4000_i128 {
            m = (m.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407)).rem_euclid(1 << 70);
            for scale in [0, 1, 2, 8, 15, 16, 22, 23, 28] {
                let mantissa = if step % 2 == 0 { m >> (step % 40) } else { -(m >> (step % 40)) };
                let d = Decimal::from_i128_with_scale(mantissa, scale);
                let text: f64 = d.to_string().parse().expect("a decimal's text is a float");
                assert_eq!(nearest(d).map(f64::to_bits), Some(text.to_bits()), "{d}");
            }
        }
    }
}
