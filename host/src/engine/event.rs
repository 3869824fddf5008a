//! Events on their way to a plugin, in host types (converted to WIT types at the last moment,
//! on the plugin's own thread).

use super::tracker::PluginPosition;
use tradebox_core::{BalanceReport, FillReport, InstrumentId, MarketEvent, OrderReport};
use tradebox_core::{Denial, TradingState};

/// Scope of a trading-state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One plugin.
    Plugin,
    /// The whole account.
    Account,
}

/// One event for one plugin. The private events are boxed: market data, most of what a plugin
/// hears, is moved through the inbox and into the WIT form, and a move copies the largest
/// variant's size (160 bytes with an order report inline; 88 now, and a test keeps it there).
#[derive(Debug, Clone, PartialEq)]
pub enum PluginEvent {
    /// Market data.
    Market(MarketEvent),
    /// A one-minute candle: the venue's own (OKX's `candle1m`) or built by the host from
    /// public trades where the venue has none (`Venue::candles_from_trades`).
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
    Order(Box<OrderReport>),
    /// One of the plugin's orders filled.
    Fill(Box<FillReport>),
    /// The plugin's position changed.
    Position {
        /// Instrument.
        instrument: InstrumentId,
        /// New position.
        position: Box<PluginPosition>,
        /// Mid price used for unrealised PnL, if known.
        mark: Option<f64>,
    },
    /// An account balance changed.
    Balance(Box<BalanceReport>),
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

#[cfg(test)]
mod tests {
    /// What every market event costs to move through the inbox (see [`super::PluginEvent`]).
    #[test]
    fn an_event_stays_small() {
        assert!(std::mem::size_of::<super::PluginEvent>() <= 88, "{}", std::mem::size_of::<super::PluginEvent>());
    }
}
