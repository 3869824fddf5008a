//! The risk engine: every order-creating path goes through one check here (the gateway in
//! [`crate::engine`] calls it), and plugins can neither skip nor change it.
//!
//! - [`limits`]: what is enforced, per plugin and for the account, with validation;
//! - [`check`]: the per-order and aggregate rules (state, size, notional, price band, open
//!   orders, position, gross exposure, free balance), a pure function of what the host knows;
//! - [`windows`]: orders per second, duplicates, the fill throttle;
//! - [`breaker`]: the loss-based circuit breaker (daily loss, drawdown) that halts a scope;
//! - [`state`]: the state all of these keep, per plugin and for the account, which the engine
//!   holds and asks, and the only way to an [`Approved`] request.
//!
//! Anchors: SEC Rule 15c3-5 (credit and capital thresholds, erroneous price and size checks,
//! duplicate orders, immediate halt) and FIA's recommended automated trading controls
//! (fat-finger size, price tolerance, message throttles, position limits, kill switch).

pub mod breaker;
pub mod check;
pub mod limits;
pub mod state;
pub mod windows;

pub use breaker::{PnlWatch, Trip};
pub use limits::{AccountLimits, LimitError, PriceReference, RiskLimits};
pub use state::{AccountRisk, PluginRisk};

/// What passed the pre-trade check: an order, an amend. Only this module makes one (by
/// `AccountRisk::approve` or `AccountRisk::approve_in_windows`), and the engine's order commands take nothing else,
/// so no path can queue an order that skipped the rules or the windows. Barter's
/// `RiskApproved<T>` is the model. Not `Clone`: one approval sends one request.
#[derive(Debug, PartialEq)]
pub struct Approved<T>(T);

impl<T> Approved<T> {
    /// The approved request, to send.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Approved<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
