//! The simulated account: balances with reservations for open orders, and net swap positions.
//!
//! Simplifications, documented for users of the simulator: fees are charged in the quote
//! currency for spot and swaps alike; a swap order reserves initial margin at 10x leverage
//! while open, and an open swap position holds no margin (no liquidation).

use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};

/// Leverage used for swap margin reservations.
pub const LEVERAGE: u32 = 10;

/// A currency balance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Balance {
    /// Equity.
    pub total: Decimal,
    /// Reserved for open orders.
    pub frozen: Decimal,
}

impl Balance {
    /// Free to use.
    pub fn available(&self) -> Decimal {
        self.total - self.frozen
    }
}

/// A net swap position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwapPosition {
    /// Signed contracts.
    pub size: Decimal,
    /// Average entry price.
    pub avg_price: Decimal,
}

/// Balances and positions.
#[derive(Debug, Default)]
pub struct Account {
    /// By currency.
    pub balances: BTreeMap<String, Balance>,
    /// By instrument id.
    pub positions: HashMap<u32, SwapPosition>,
}

impl Account {
    /// An account holding these amounts.
    pub fn new(balances: impl IntoIterator<Item = (String, Decimal)>) -> Self {
        let balances = balances.into_iter().map(|(c, total)| (c, Balance { total, frozen: Decimal::ZERO })).collect();
        Self { balances, positions: HashMap::new() }
    }

    /// A currency's balance (created empty on first use).
    pub fn balance(&mut self, currency: &str) -> &mut Balance {
        self.balances.entry(currency.to_string()).or_default()
    }

    /// Free amount of a currency.
    pub fn available(&self, currency: &str) -> Decimal {
        self.balances.get(currency).map_or(Decimal::ZERO, Balance::available)
    }

    /// Reserves `amount` if available.
    pub fn reserve(&mut self, currency: &str, amount: Decimal) -> bool {
        if amount > self.available(currency) {
            return false;
        }
        self.balance(currency).frozen += amount;
        true
    }

    /// Releases a reservation (never below zero).
    pub fn release(&mut self, currency: &str, amount: Decimal) {
        let b = self.balance(currency);
        b.frozen = (b.frozen - amount).max(Decimal::ZERO);
    }

    /// Applies a swap fill of `contracts` (signed) at `price`; returns realised PnL in the
    /// settlement currency for `contract_value` base per contract.
    pub fn swap_fill(
        &mut self,
        instrument: u32,
        contracts: Decimal,
        price: Decimal,
        contract_value: Decimal,
    ) -> Decimal {
        let p = self.positions.entry(instrument).or_default();
        tradebox_core::apply_net_fill(&mut p.size, &mut p.avg_price, contracts, price) * contract_value
    }

    /// Signed position in a swap.
    pub fn position(&self, instrument: u32) -> Decimal {
        self.positions.get(&instrument).map_or(Decimal::ZERO, |p| p.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn reservations_limit_what_is_available() {
        let mut a = Account::new([("USDT".to_string(), d("100"))]);
        assert!(a.reserve("USDT", d("60")));
        assert!(!a.reserve("USDT", d("41")));
        a.release("USDT", d("60"));
        assert_eq!(a.available("USDT"), d("100"));
        assert!(!a.reserve("BTC", d("0.1")));
    }

    #[test]
    fn swap_realises_pnl_when_reducing() {
        let mut a = Account::default();
        assert_eq!(a.swap_fill(1, d("10"), d("100"), d("0.01")), Decimal::ZERO);
        assert_eq!(a.swap_fill(1, d("-4"), d("110"), d("0.01")), d("0.4"));
        assert_eq!(a.position(1), d("6"));
        assert_eq!(a.swap_fill(1, d("-10"), d("90"), d("0.01")), d("-0.6"));
        assert_eq!(a.positions[&1], SwapPosition { size: d("-4"), avg_price: d("90") });
    }
}
