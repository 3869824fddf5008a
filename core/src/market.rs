//! Public market data as the host passes it on, and the best bid/ask it keeps per instrument.

use crate::instrument::InstrumentId;
use crate::order::Side;

/// Public market data. Prices are floats here: they are information for strategies, never
/// sent back to a venue without normalisation.
#[derive(Debug, Clone, PartialEq)]
pub enum MarketEvent {
    /// Best bid/ask and last trade.
    Ticker {
        /// Instrument.
        instrument: InstrumentId,
        /// Venue time, ms.
        ts_ms: i64,
        /// Best bid.
        bid: f64,
        /// Size at the best bid.
        bid_size: f64,
        /// Best ask.
        ask: f64,
        /// Size at the best ask.
        ask_size: f64,
        /// Last trade price.
        last: f64,
    },
    /// Top levels of the book, best first.
    Book {
        /// Instrument.
        instrument: InstrumentId,
        /// Venue time, ms.
        ts_ms: i64,
        /// (price, size), best first.
        bids: Vec<(f64, f64)>,
        /// (price, size), best first.
        asks: Vec<(f64, f64)>,
    },
    /// A one-minute candle from the venue (venues without them get candles built from trades).
    Candle {
        /// Instrument.
        instrument: InstrumentId,
        /// Open time, ms.
        ts_ms: i64,
        /// Open, high, low, close, volume.
        ohlcv: [f64; 5],
        /// Closed (no more changes).
        confirmed: bool,
    },
    /// A public trade.
    Trade {
        /// Instrument.
        instrument: InstrumentId,
        /// Venue time, ms.
        ts_ms: i64,
        /// Price.
        price: f64,
        /// Size.
        size: f64,
        /// Aggressor side.
        taker_side: Side,
    },
}

impl MarketEvent {
    /// The instrument the event is about.
    pub fn instrument(&self) -> InstrumentId {
        match self {
            MarketEvent::Ticker { instrument, .. }
            | MarketEvent::Book { instrument, .. }
            | MarketEvent::Candle { instrument, .. }
            | MarketEvent::Trade { instrument, .. } => *instrument,
        }
    }
}

/// Best bid/ask and last of an instrument.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quote {
    /// Best bid.
    pub bid: f64,
    /// Size at the bid.
    pub bid_size: f64,
    /// Best ask.
    pub ask: f64,
    /// Size at the ask.
    pub ask_size: f64,
    /// Last trade.
    pub last: f64,
    /// When the host received it, on its clock's steady timeline (`None`: unknown, e.g. set by
    /// hand in a test).
    pub received: Option<crate::clock::Moment>,
}

impl Quote {
    /// Mid when two-sided, else last.
    pub fn mid(&self) -> Option<f64> {
        if self.bid > 0.0 && self.ask > 0.0 {
            Some((self.bid + self.ask) / 2.0)
        } else {
            (self.last > 0.0).then_some(self.last)
        }
    }
}
