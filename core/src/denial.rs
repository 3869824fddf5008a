//! Typed refusals: every intent the host turns down gets a stable code, a readable message and,
//! where there is one, the limit and the value that broke it.

use std::fmt;

/// Stable denial codes (SCREAMING_SNAKE_CASE on the wire). New codes may be added; never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialCode {
    /// The plugin was not granted this instrument, channel or order type.
    NotPermitted,
    /// No such instrument.
    UnknownInstrument,
    /// Price missing, not finite, not positive, or cannot be put on the tick grid.
    InvalidPrice,
    /// Size not finite, not positive, or below one lot after rounding.
    InvalidSize,
    /// Size below the instrument's minimum.
    SizeBelowMinimum,
    /// Order notional above the plugin's limit.
    MaxNotionalExceeded,
    /// Too many orders per second.
    RateLimited,
    /// Too many open orders.
    MaxOpenOrders,
    /// New orders are stopped for this plugin or the account.
    TradingHalted,
    /// Only position-reducing orders are accepted.
    ReduceOnly,
    /// No such open order of this plugin.
    UnknownOrder,
    /// The venue refused the order.
    VenueRejected,
    /// The host is shutting down or the order path is unavailable.
    Unavailable,
    /// Order size above the plugin's limit.
    MaxOrderSize,
    /// Price too far from the reference price (or, for a market order, the book is).
    PriceOutsideBand,
    /// No reference price to check the order against yet (no market data).
    NoReferencePrice,
    /// Too many orders per second from all plugins together.
    AccountRateLimited,
    /// The same order (instrument, side, price, size) was just placed.
    DuplicateOrder,
    /// Too many fills in the last minute: new orders pause.
    FillThrottle,
    /// Too many open orders across the account.
    AccountMaxOpenOrders,
    /// The order could take the plugin's position beyond its limit.
    MaxPosition,
    /// The order could take the account's position beyond its limit.
    AccountMaxPosition,
    /// The order would take the plugin's gross exposure beyond its limit.
    MaxGrossExposure,
    /// The order would take the account's gross exposure beyond its limit.
    AccountMaxGrossExposure,
    /// The account's free balance cannot pay for the order.
    InsufficientBalance,
    /// The audit log cannot be written (disk full, I/O error): no new order goes out
    /// unrecorded. Cancels still go.
    AuditUnavailable,
    /// A cancel of this order is already on its way.
    CancelPending,
    /// Too many cancels in the last second.
    CancelRateLimited,
    /// The plugin's queue of requests to the venue is full: nothing more is taken until the
    /// venue has been sent what is queued.
    QueueFull,
    /// The quote the order is checked against is older than the limit: the market data may
    /// have stopped.
    StaleQuote,
}

impl DenialCode {
    /// Every code, in declaration order ([`DenialCode::index`] is the position here): counters
    /// kept per code are arrays of this length.
    pub const ALL: [DenialCode; 30] = [
        DenialCode::NotPermitted,
        DenialCode::UnknownInstrument,
        DenialCode::InvalidPrice,
        DenialCode::InvalidSize,
        DenialCode::SizeBelowMinimum,
        DenialCode::MaxNotionalExceeded,
        DenialCode::RateLimited,
        DenialCode::MaxOpenOrders,
        DenialCode::TradingHalted,
        DenialCode::ReduceOnly,
        DenialCode::UnknownOrder,
        DenialCode::VenueRejected,
        DenialCode::Unavailable,
        DenialCode::MaxOrderSize,
        DenialCode::PriceOutsideBand,
        DenialCode::NoReferencePrice,
        DenialCode::AccountRateLimited,
        DenialCode::DuplicateOrder,
        DenialCode::FillThrottle,
        DenialCode::AccountMaxOpenOrders,
        DenialCode::MaxPosition,
        DenialCode::AccountMaxPosition,
        DenialCode::MaxGrossExposure,
        DenialCode::AccountMaxGrossExposure,
        DenialCode::InsufficientBalance,
        DenialCode::AuditUnavailable,
        DenialCode::CancelPending,
        DenialCode::CancelRateLimited,
        DenialCode::QueueFull,
        DenialCode::StaleQuote,
    ];

    /// The code's position in [`DenialCode::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialCode::NotPermitted => "NOT_PERMITTED",
            DenialCode::UnknownInstrument => "UNKNOWN_INSTRUMENT",
            DenialCode::InvalidPrice => "INVALID_PRICE",
            DenialCode::InvalidSize => "INVALID_SIZE",
            DenialCode::SizeBelowMinimum => "SIZE_BELOW_MINIMUM",
            DenialCode::MaxNotionalExceeded => "MAX_NOTIONAL_EXCEEDED",
            DenialCode::RateLimited => "RATE_LIMITED",
            DenialCode::MaxOpenOrders => "MAX_OPEN_ORDERS",
            DenialCode::TradingHalted => "TRADING_HALTED",
            DenialCode::ReduceOnly => "REDUCE_ONLY",
            DenialCode::UnknownOrder => "UNKNOWN_ORDER",
            DenialCode::VenueRejected => "VENUE_REJECTED",
            DenialCode::Unavailable => "UNAVAILABLE",
            DenialCode::MaxOrderSize => "MAX_ORDER_SIZE",
            DenialCode::PriceOutsideBand => "PRICE_OUTSIDE_BAND",
            DenialCode::NoReferencePrice => "NO_REFERENCE_PRICE",
            DenialCode::AccountRateLimited => "ACCOUNT_RATE_LIMITED",
            DenialCode::DuplicateOrder => "DUPLICATE_ORDER",
            DenialCode::FillThrottle => "FILL_THROTTLE",
            DenialCode::AccountMaxOpenOrders => "ACCOUNT_MAX_OPEN_ORDERS",
            DenialCode::MaxPosition => "MAX_POSITION",
            DenialCode::AccountMaxPosition => "ACCOUNT_MAX_POSITION",
            DenialCode::MaxGrossExposure => "MAX_GROSS_EXPOSURE",
            DenialCode::AccountMaxGrossExposure => "ACCOUNT_MAX_GROSS_EXPOSURE",
            DenialCode::InsufficientBalance => "INSUFFICIENT_BALANCE",
            DenialCode::AuditUnavailable => "AUDIT_UNAVAILABLE",
            DenialCode::CancelPending => "CANCEL_PENDING",
            DenialCode::CancelRateLimited => "CANCEL_RATE_LIMITED",
            DenialCode::QueueFull => "QUEUE_FULL",
            DenialCode::StaleQuote => "STALE_QUOTE",
        }
    }
}

/// A refusal, as the plugin and the audit trail see it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Denial {
    /// Stable code.
    pub code: DenialCode,
    /// Human-readable reason; never contains secrets.
    pub message: String,
    /// The limit that was hit.
    pub limit: Option<f64>,
    /// The value that broke it.
    pub value: Option<f64>,
}

impl Denial {
    /// A denial without a limit.
    pub fn new(code: DenialCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), limit: None, value: None }
    }

    /// A denial that names the limit and the offending value.
    pub fn limit(code: DenialCode, message: impl Into<String>, limit: f64, value: f64) -> Self {
        Self { code, message: message.into(), limit: Some(limit), value: Some(value) }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

#[cfg(test)]
mod all_tests {
    use super::DenialCode;

    #[test]
    fn all_lists_every_code_at_its_index() {
        for (i, code) in DenialCode::ALL.iter().enumerate() {
            assert_eq!(code.index(), i, "{code:?}");
        }
    }
}
