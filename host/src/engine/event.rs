//! Events on their way to a plugin, in host types (converted to WIT types at the last moment,
//! on the plugin's own thread).

use super::denial::Denial;
use super::tracker::PluginPosition;
use crate::venue::{BalanceReport, FillReport, InstrumentId, MarketEvent, OrderReport};

/// Scope of a trading-state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One plugin.
    Plugin,
    /// The whole account.
    Account,
}

/// ACTIVE / REDUCE_ONLY / HALTED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TradingState {
    /// Orders accepted.
    Active = 0,
    /// Only position-reducing orders.
    ReduceOnly = 1,
    /// No new orders; cancels pass.
    Halted = 2,
}

impl TradingState {
    /// From the stored byte.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => TradingState::Active,
            1 => TradingState::ReduceOnly,
            _ => TradingState::Halted,
        }
    }

    /// The wire and audit form: `active`, `reduce_only`, `halted`.
    pub fn as_str(self) -> &'static str {
        match self {
            TradingState::Active => "active",
            TradingState::ReduceOnly => "reduce_only",
            TradingState::Halted => "halted",
        }
    }

    /// The stricter of two states (HALTED > REDUCE_ONLY > ACTIVE).
    pub fn stricter(self, other: Self) -> Self {
        if (other as u8) > (self as u8) { other } else { self }
    }
}

/// One event for one plugin.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginEvent {
    /// Market data.
    Market(MarketEvent),
    /// A one-minute candle (built by the host from trades).
    Candle {
        /// Instrument.
        instrument: InstrumentId,
        /// Bar open time, ms.
        ts_ms: i64,
        /// OHLCV.
        ohlcv: [f64; 5],
        /// The bar is closed.
        confirmed: bool,
    },
    /// One of the plugin's orders changed.
    Order(OrderReport),
    /// One of the plugin's orders filled.
    Fill(FillReport),
    /// The plugin's position changed.
    Position {
        /// Instrument.
        instrument: InstrumentId,
        /// New position.
        position: PluginPosition,
        /// Mid price used for unrealised PnL, if known.
        mark: Option<f64>,
    },
    /// An account balance changed.
    Balance(BalanceReport),
    /// An accepted intent was refused later.
    RiskDenied {
        /// The order, if the intent had one.
        client_id: Option<String>,
        /// Why.
        denial: Denial,
    },
    /// A venue link changed.
    Connectivity {
        /// Which link.
        link: String,
        /// Up or down.
        connected: bool,
        /// What happened.
        detail: String,
    },
    /// The trading state changed.
    TradingState {
        /// Whose.
        scope: Scope,
        /// New state.
        state: TradingState,
        /// Why.
        reason: String,
    },
}
