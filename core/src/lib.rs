//! The trading vocabulary every part of tradebox shares: instruments and channels, sides and
//! order kinds, orders and what venues report about them, market data and quotes, trading
//! states, typed denials with their stable codes, the clock, and (feature `venue`) the venue
//! contract.
//!
//! It sits at the bottom of the crate map: it depends on no other tradebox crate, so the
//! manifest, the OKX wire crate, the simulated exchange and the host all speak one language
//! and convert only at the edges they own (OKX wire names in `tradebox-okx`, WIT records in the
//! host's plugin bindings). Serde names are OKX's wherever the two meet.

pub mod clock;
pub mod denial;
pub mod instrument;
pub mod market;
pub mod num;
pub mod order;
pub mod state;
#[cfg(feature = "venue")]
pub mod venue;

pub use clock::{Clock, Moment, VirtualTime, system_ms};
pub use denial::{Denial, DenialCode};
pub use instrument::{Channel, InstrumentId, InstrumentKind, InstrumentSpec};
pub use market::{MarketEvent, Quote};
pub use order::{
    BalanceReport, FillReport, Liquidity, NewOrder, OrderKind, OrderReport, OrderStatus, Origin, PositionMode,
    PositionReport, PositionSide, Side, apply_net_fill,
};
pub use state::TradingState;
#[cfg(feature = "venue")]
pub use venue::{
    AuthFailureStatus, FeedStatus, KeyReloadError, KeySwitch, PlaceAck, RateBucket, RateLimitStatus, Venue, VenueAlarm,
    VenueError, VenueEvent, VenueMetric, VenueStatus,
};
