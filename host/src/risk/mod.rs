//! The risk engine: every order-creating path goes through one check here (the gateway in
//! [`crate::engine`] calls it), and plugins can neither skip nor change it.
//!
//! - [`limits`]: what is enforced, per plugin and for the account, with validation;
//! - [`check`]: the per-order and aggregate rules (state, size, notional, price band, open
//!   orders, position, gross exposure, free balance), a pure function of what the host knows;
//! - [`windows`]: orders per second, duplicates, the fill throttle;
//! - [`breaker`]: the loss-based circuit breaker (daily loss, drawdown) that halts a scope.
//!
//! Anchors: SEC Rule 15c3-5 (credit and capital thresholds, erroneous price and size checks,
//! duplicate orders, immediate halt) and FIA's recommended automated trading controls
//! (fat-finger size, price tolerance, message throttles, position limits, kill switch).

pub mod breaker;
pub mod check;
pub mod limits;
pub mod windows;

pub use breaker::{PnlWatch, Trip};
pub use limits::{AccountLimits, LimitError, PriceReference, RiskLimits};
