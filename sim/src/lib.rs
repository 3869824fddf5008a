//! tradebox-sim: the simulated exchange, in two layers named for what each one is.
//!
//! - [`venue`]: an exchange in process, an implementation of [`tradebox_core::Venue`]
//!   ([`SimVenue`]): the matching book, the account, the seeded synthetic or replayed market.
//!   The host trades on it directly (`kind = "sim"`, staging, the demo) and it is the ground
//!   truth under the server.
//! - [`server`]: the same exchange behind OKX's REST and WebSocket APIs on loopback
//!   ([`SimServer`], `tradebox sim`), so that the host's real OKX path (signing, clock, rate
//!   limits, order handling) runs with no internet and no account.
//!
//! Why a crate of its own: the simulator stands in for an exchange (tests, the demo, staging,
//! `tradebox sim`); it is not part of what trades on one. Kept apart, the host library carries
//! no simulator code and the simulator cannot reach into the host. It speaks the shared
//! vocabulary (`tradebox-core`) and OKX's wire protocol (`tradebox-okx`, whose rate limits it
//! enforces on what it serves) and nothing else of tradebox, so it sits beside the venues in the
//! crate map, never above the host.
//!
//! It reads time only through the [`tradebox_core::Clock`] it is given ([`SimVenue::with_clock`],
//! [`SimServer::start_with_clock`]; the system clock otherwise) and hands that clock to the host
//! on it (`Venue::clock`), so a backtest can run it in virtual time. Its pacing (the market's
//! step timer, housekeeping, WebSocket idle and heartbeats) stays on tokio's timers: that is how
//! often things happen, not what time it is.

pub mod server;
pub mod venue;

pub use server::{SimServer, SimServerConfig};
pub use venue::{SimConfig, SimVenue};
