//! The limits the risk engine enforces: per plugin (with config overrides) and for the whole
//! account. Every limit has a safe default; `0` switches a limit off where that makes sense
//! (and says so in its doc). Validation refuses settings that would make a check meaningless.

use serde::{Deserialize, Serialize};

/// Which price a band is measured around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PriceReference {
    /// The mid of the best bid and ask (the last trade when one side is empty).
    #[default]
    Mid,
    /// The last trade.
    Last,
    /// The mark price (the host uses the mid where the venue gives no mark price).
    Mark,
}

/// A plugin's limits (`[defaults.risk]`, overridden by a plugin's `risk = {...}`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskLimits {
    /// Largest order value, in the quote currency (price × size × contract value).
    pub max_order_notional: f64,
    /// Largest order size in the instrument's size unit (base or contracts); 0: no limit.
    pub max_order_size: f64,
    /// Orders (and amends that move the price) must be within this many percent of the
    /// reference price; market orders are checked at the band's worst price they could fill.
    pub price_band_pct: f64,
    /// The price the band is measured around.
    pub price_reference: PriceReference,
    /// An order is refused (`STALE_QUOTE`) when the quote it is checked against is older than
    /// this, ms: a frozen feed must not price orders; 0: off.
    pub max_quote_age_ms: u64,
    /// New orders and amends per second.
    pub max_orders_per_sec: u32,
    /// Cancels per second the plugin may ask for (each order can be cancelled once at a time;
    /// the host's own cancels, kill switch and breaker among them, never count).
    pub max_cancels_per_sec: u32,
    /// An order with the same instrument, side, price and size as one placed this recently is
    /// refused as a duplicate, ms; 0: off.
    pub duplicate_window_ms: u64,
    /// Fills per minute before new orders pause until the minute has passed (a strategy caught
    /// in a fill loop); 0: off.
    pub max_fills_per_min: u32,
    /// Open orders at once.
    pub max_open_orders: u32,
    /// Largest position per instrument (absolute, in size units) an order may lead to if it
    /// fills completely, counting the plugin's open orders on the same side; 0: no limit.
    pub max_position: f64,
    /// Largest gross exposure (positions marked to market plus open orders, absolute, in the
    /// quote currency); 0: no limit.
    pub max_gross_exposure: f64,
    /// Loss since the UTC day began (realised + unrealised marked to market, after fees) that
    /// halts the plugin, in the quote currency; 0: off.
    pub max_daily_loss: f64,
    /// Fall from the peak of the same PnL that halts the plugin; 0: off.
    pub max_drawdown: f64,
}

impl Default for RiskLimits {
    fn default() -> Self {
        Self {
            max_order_notional: 250_000.0,
            max_order_size: 0.0,
            price_band_pct: 5.0,
            price_reference: PriceReference::Mid,
            max_quote_age_ms: 10_000,
            max_orders_per_sec: 20,
            max_cancels_per_sec: 50,
            duplicate_window_ms: 0,
            max_fills_per_min: 600,
            max_open_orders: 50,
            max_position: 0.0,
            max_gross_exposure: 0.0,
            max_daily_loss: 0.0,
            max_drawdown: 0.0,
        }
    }
}

/// The account's limits (`[risk]`), across every plugin.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountLimits {
    /// New orders and amends per second, all plugins together.
    pub max_orders_per_sec: u32,
    /// Open orders at once, all plugins together.
    pub max_open_orders: u32,
    /// Largest position per instrument, all plugins together (absolute, size units); 0: none.
    pub max_position: f64,
    /// Largest gross exposure, all plugins together (quote currency); 0: no limit.
    pub max_gross_exposure: f64,
    /// Daily loss of all plugins together that halts the account; 0: off.
    pub max_daily_loss: f64,
    /// Drawdown of all plugins together that halts the account; 0: off.
    pub max_drawdown: f64,
    /// Refuse orders the account's free balance (after what this host's pending orders already
    /// need) cannot pay for. Spot only: swap margin depends on leverage the host does not set.
    pub check_balance: bool,
}

impl Default for AccountLimits {
    fn default() -> Self {
        Self {
            max_orders_per_sec: 50,
            max_open_orders: 500,
            max_position: 0.0,
            max_gross_exposure: 0.0,
            max_daily_loss: 0.0,
            max_drawdown: 0.0,
            check_balance: true,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("risk limit {field}: {problem}")]
pub struct LimitError {
    /// Which setting.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn check(field: &'static str, value: f64, zero_ok: bool) -> Result<(), LimitError> {
    if !value.is_finite() || value < 0.0 || (!zero_ok && value == 0.0) {
        let problem = if zero_ok { "must be 0 (off) or a positive number" } else { "must be a positive number" };
        return Err(LimitError { field, problem: format!("{problem}, got {value}") });
    }
    Ok(())
}

impl RiskLimits {
    /// Refuses settings that would make a check meaningless.
    pub fn validate(&self) -> Result<(), LimitError> {
        check("max_order_notional", self.max_order_notional, false)?;
        check("max_order_size", self.max_order_size, true)?;
        check("price_band_pct", self.price_band_pct, false)?;
        if self.price_band_pct >= 100.0 {
            return Err(LimitError { field: "price_band_pct", problem: "must be below 100".into() });
        }
        check("max_position", self.max_position, true)?;
        check("max_gross_exposure", self.max_gross_exposure, true)?;
        check("max_daily_loss", self.max_daily_loss, true)?;
        check("max_drawdown", self.max_drawdown, true)?;
        if self.max_orders_per_sec == 0 || self.max_open_orders == 0 {
            return Err(LimitError {
                field: "max_orders_per_sec / max_open_orders",
                problem: "must be at least 1 (halt the plugin to stop it trading)".into(),
            });
        }
        if self.max_cancels_per_sec == 0 {
            return Err(LimitError {
                field: "max_cancels_per_sec",
                problem: "must be at least 1 (a plugin must be able to cancel its orders)".into(),
            });
        }
        Ok(())
    }
}

impl AccountLimits {
    /// Refuses settings that would make a check meaningless.
    pub fn validate(&self) -> Result<(), LimitError> {
        check("max_position", self.max_position, true)?;
        check("max_gross_exposure", self.max_gross_exposure, true)?;
        check("max_daily_loss", self.max_daily_loss, true)?;
        check("max_drawdown", self.max_drawdown, true)?;
        if self.max_orders_per_sec == 0 || self.max_open_orders == 0 {
            return Err(LimitError {
                field: "max_orders_per_sec / max_open_orders",
                problem: "must be at least 1 (halt the account to stop trading)".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_named() {
        RiskLimits::default().validate().expect("defaults");
        AccountLimits::default().validate().expect("defaults");
        let bad = RiskLimits { price_band_pct: 0.0, ..RiskLimits::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("price_band_pct"));
        let bad = RiskLimits { max_daily_loss: -5.0, ..RiskLimits::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("max_daily_loss"));
        let bad = AccountLimits { max_orders_per_sec: 0, ..AccountLimits::default() };
        assert!(bad.validate().is_err());
    }
}
