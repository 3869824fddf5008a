//! What can go wrong talking to OKX, typed so the caller can act on it: keep OKX's code and
//! message, know whether a request may have been executed (a timeout or a 5xx on an order
//! placement is "outcome unknown": settle it by querying, never by resending), and recognise
//! throttling and clock skew.
//!
//! No variant ever carries a header value, so no secret can reach a message.

/// Well-known OKX codes (okx-v5.md §6).
pub mod codes {
    /// Rate limit reached.
    pub const RATE_LIMIT: &str = "50011";
    /// Systems busy (HTTP 429 too).
    pub const BUSY: &str = "50013";
    /// System error (OKX failed inside; the request may have been acted on).
    pub const SYSTEM_ERROR: &str = "50026";
    /// Endpoint timed out: outcome unknown.
    pub const ENDPOINT_TIMEOUT: &str = "50004";
    /// Sub-account order rate limit.
    pub const SUB_ACCOUNT_RATE_LIMIT: &str = "50061";
    /// Demo key used live or the reverse.
    pub const WRONG_ENVIRONMENT: &str = "50101";
    /// Timestamp outside the accepted window.
    pub const TIMESTAMP_EXPIRED: &str = "50102";
    /// Wrong passphrase.
    pub const BAD_PASSPHRASE: &str = "50105";
    /// Unknown API key.
    pub const BAD_KEY: &str = "50111";
    /// Malformed timestamp.
    pub const BAD_TIMESTAMP: &str = "50112";
    /// Bad signature.
    pub const BAD_SIGN: &str = "50113";
    /// Parameter error.
    pub const PARAM: &str = "51000";
    /// Instrument does not exist.
    pub const NO_INSTRUMENT: &str = "51001";
    /// Insufficient balance or margin.
    pub const INSUFFICIENT: &str = "51008";
    /// Duplicate client order id.
    pub const DUPLICATE_CL_ORD_ID: &str = "51016";
    /// Below the minimum size.
    pub const BELOW_MIN: &str = "51020";
    /// Size not a multiple of the lot size.
    pub const LOT: &str = "51121";
    /// Cancel failed: already filled, cancelled or unknown.
    pub const CANCEL_FAILED: &str = "51400";
    /// `cancel-all-after`: the sub-account already has its 20 tag-level timers.
    pub const TAG_TIMERS_FULL: &str = "51071";
    /// Cancel failed: the order is already being cancelled.
    pub const CANCEL_PENDING: &str = "51410";
    /// Requests too frequent (throttling, like 50011).
    pub const TOO_FREQUENT: &str = "50040";
    /// Amend failed: already filled or cancelled.
    pub const AMEND_FAILED: &str = "51503";
    /// Order does not exist.
    pub const NO_ORDER: &str = "51603";
}

/// A failed OKX request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OkxError {
    /// The envelope's `code` was not `"0"` (auth failures, parameter errors, ...).
    #[error("OKX {code}: {msg} (HTTP {http_status})")]
    Api {
        /// HTTP status.
        http_status: u16,
        /// OKX code.
        code: String,
        /// OKX message.
        msg: String,
    },
    /// One item of an order request failed (`sCode`/`sMsg`).
    #[error("OKX {code}: {msg}")]
    Item {
        /// `sCode`.
        code: String,
        /// `sMsg`.
        msg: String,
    },
    /// Throttled: 50011, 50013, 50040, 50061 or HTTP 429.
    #[error("OKX rate limit {code}: {msg}")]
    RateLimited {
        /// OKX code (`50011` for a bare 429).
        code: String,
        /// OKX message.
        msg: String,
    },
    /// No answer in time: the request may or may not have been executed.
    #[error("no answer from OKX within {timeout_ms} ms: outcome unknown")]
    Timeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The server failed (5xx, or 50004): the request may or may not have been executed.
    #[error("OKX server error HTTP {http_status}: {excerpt}")]
    Server {
        /// HTTP status.
        http_status: u16,
        /// Start of the body.
        excerpt: String,
    },
    /// The request never reached the server (connection refused, DNS, TLS): nothing executed.
    #[error("could not reach OKX: {0}")]
    NotSent(String),
    /// The connection broke after sending: outcome unknown.
    #[error("connection to OKX failed after sending: {0}")]
    Transport(String),
    /// The answer was not what OKX sends.
    #[error("unexpected answer from OKX (HTTP {http_status}): {reason}; body starts {excerpt:?}")]
    Decode {
        /// HTTP status.
        http_status: u16,
        /// What did not parse.
        reason: String,
        /// Start of the body.
        excerpt: String,
    },
    /// The server answered with a redirect. Never followed: it would carry the signed headers
    /// (the passphrase among them) to another host. OKX's API does not redirect, so `rest_url`
    /// points somewhere else.
    #[error(
        "the server answered HTTP {http_status} redirecting to {location:?}; not followed (signed headers go to no other host); check rest_url"
    )]
    Redirected {
        /// HTTP status.
        http_status: u16,
        /// Where it pointed (the start of it).
        location: String,
    },
    /// The server's certificate chain was valid but none of its keys is pinned: the request
    /// was never sent. Not a transient failure: the same host will present the same keys, and
    /// it may be someone else's. The caller alerts and stops; retrying only repeats it.
    #[error("{0}")]
    PinMismatch(crate::tls::PinMismatch),
    /// The client was asked for something it cannot do (no credentials for a private call).
    #[error("{0}")]
    Usage(String),
}

impl OkxError {
    /// The OKX code, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            OkxError::Api { code, .. } | OkxError::Item { code, .. } | OkxError::RateLimited { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the request may have been executed although no success came back. For an order
    /// placement this means: query by client order id, do not resend.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            OkxError::Timeout { .. } | OkxError::Server { .. } | OkxError::Transport(_) => true,
            // Any 5xx, and the codes OKX documents as "try again" (okx-v5.md §errors): OKX may
            // have acted before it failed.
            OkxError::Api { http_status, code, .. } => {
                *http_status >= 500 || [codes::ENDPOINT_TIMEOUT, codes::SYSTEM_ERROR].contains(&code.as_str())
            }
            _ => false,
        }
    }

    /// The local clock is too far from OKX's (50102): re-sync and retry.
    pub fn is_clock_skew(&self) -> bool {
        self.code() == Some(codes::TIMESTAMP_EXPIRED)
    }

    /// A cancel that changed nothing because the order is already finished (51400) or already
    /// being cancelled (51410): either way it is, or is about to be, gone, which is all a
    /// cancel asks for.
    pub fn cancel_moot(&self) -> bool {
        matches!(self.code(), Some(codes::CANCEL_FAILED | codes::CANCEL_PENDING))
    }

    /// The server presented no pinned key (nothing was sent): not the network, so the caller
    /// says so (the host: an error line and the link down) and never retries as if it were.
    pub fn is_pin_mismatch(&self) -> bool {
        matches!(self, OkxError::PinMismatch(_))
    }

    /// Throttled: back off.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, OkxError::RateLimited { .. })
    }

    /// Builds the error for a non-zero envelope code.
    pub fn from_code(http_status: u16, code: String, msg: String) -> Self {
        if http_status == 429
            || [codes::RATE_LIMIT, codes::BUSY, codes::SUB_ACCOUNT_RATE_LIMIT, codes::TOO_FREQUENT]
                .contains(&code.as_str())
        {
            return OkxError::RateLimited { code, msg };
        }
        OkxError::Api { http_status, code, msg }
    }
}

/// The first `n` characters of a body, for error messages.
pub fn excerpt(body: &[u8], n: usize) -> String {
    String::from_utf8_lossy(body).chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(OkxError::from_code(429, "50011".into(), "Too Many Requests".into()).is_rate_limit());
        assert!(OkxError::from_code(200, "50061".into(), String::new()).is_rate_limit());
        assert!(OkxError::from_code(200, "50040".into(), "Too frequent operations".into()).is_rate_limit());
        for moot in ["51400", "51410"] {
            assert!(OkxError::Item { code: moot.into(), msg: String::new() }.cancel_moot(), "{moot}");
        }
        assert!(!OkxError::Item { code: "51401".into(), msg: String::new() }.cancel_moot());
        let skew = OkxError::from_code(401, "50102".into(), "Timestamp request expired".into());
        assert!(skew.is_clock_skew() && !skew.outcome_unknown());
        assert!(OkxError::Timeout { timeout_ms: 5 }.outcome_unknown());
        assert!(OkxError::from_code(400, "50004".into(), String::new()).outcome_unknown());
        // A 5xx with OKX's own body is still a 5xx: the outcome is unknown.
        assert!(OkxError::from_code(500, "50026".into(), "System error".into()).outcome_unknown());
        assert!(OkxError::from_code(200, "50026".into(), "System error".into()).outcome_unknown());
        assert!(OkxError::from_code(502, "51000".into(), String::new()).outcome_unknown());
        assert!(!OkxError::from_code(400, "51000".into(), String::new()).outcome_unknown());
        assert!(!OkxError::NotSent("refused".into()).outcome_unknown());
        let pin = OkxError::PinMismatch(crate::tls::PinMismatch { host: "www.okx.com".into(), seen: Vec::new() });
        assert!(pin.is_pin_mismatch() && !pin.outcome_unknown() && !pin.is_rate_limit() && pin.code().is_none());
        assert!(pin.to_string().starts_with("certificate pin mismatch for www.okx.com"), "{pin}");
        assert!(!OkxError::NotSent("refused".into()).is_pin_mismatch());
        let item = OkxError::Item { code: "51008".into(), msg: "Insufficient USDT balance".into() };
        assert_eq!(item.code(), Some("51008"));
        assert_eq!(item.to_string(), "OKX 51008: Insufficient USDT balance");
    }
}
