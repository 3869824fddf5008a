//! Trading states: what a plugin, or the whole account, may still do.

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
