//! Instruments and the market data channels a plugin can ask for, named as OKX names them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Host-wide numeric handle of an instrument (the WIT `instrument-id`).
pub type InstrumentId = u32;

/// Which market data stream an event belongs to (OKX's channel names in config and manifests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Channel {
    /// Best bid/ask.
    #[serde(rename = "tickers")]
    Tickers,
    /// Top five levels.
    #[serde(rename = "books5")]
    Books5,
    /// Public trades.
    #[serde(rename = "trades")]
    Trades,
    /// One-minute candles.
    #[serde(rename = "candle1m")]
    Candle1m,
}

/// What kind of instrument: decides how sizes and positions are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstrumentKind {
    /// Sizes in base currency; fills move balances.
    Spot,
    /// Perpetual swap: sizes in contracts; fills move a position.
    Swap,
}

/// An instrument's trading rules, exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstrumentSpec {
    /// Host handle.
    pub id: InstrumentId,
    /// Exchange symbol, e.g. `BTC-USDT`.
    pub symbol: String,
    /// Spot or swap.
    pub kind: InstrumentKind,
    /// Base currency.
    pub base: String,
    /// Quote (and, for swaps, settlement) currency.
    pub quote: String,
    /// Price increment.
    pub tick_size: Decimal,
    /// Size increment (base for spot, contracts for swaps).
    pub lot_size: Decimal,
    /// Smallest order size.
    pub min_size: Decimal,
    /// Base currency per contract (1 for spot).
    pub contract_value: Decimal,
}
