//! The venue contract: what the engine asks of a venue and what a venue reports back. Requests
//! return an acknowledgement only; every change of state (order status, fills, balances,
//! positions, market data) arrives on the venue's event stream, as it does on OKX (REST ack,
//! then WebSocket pushes). Implementations: the OKX venue in the host and the in-process
//! simulated exchange in `tradebox-sim`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::instrument::{Channel, InstrumentId, InstrumentSpec};
use crate::market::MarketEvent;
use crate::order::{BalanceReport, FillReport, NewOrder, OrderReport, Origin, PositionMode, PositionReport};

/// One number a venue reports for `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct VenueMetric {
    /// Metric name, `tradebox_` first (a counter's `_total` is added when exported).
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// A counter (only goes up) rather than a gauge.
    pub counter: bool,
    /// The value now.
    pub value: f64,
}

/// Everything a venue reports, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum VenueEvent {
    /// Public market data.
    Market(MarketEvent),
    /// One of our orders changed.
    Order(OrderReport),
    /// One of our orders executed.
    Fill(FillReport),
    /// A balance changed.
    Balance(BalanceReport),
    /// A position changed.
    Position(PositionReport),
    /// Something about the account an operator must hear of now.
    Alarm(VenueAlarm),
    /// A link went down or came back.
    Connectivity {
        /// Which link.
        link: String,
        /// Up or down.
        connected: bool,
        /// What happened.
        detail: String,
    },
}

/// A venue's health, for the board, the admin API's status and tests. Each part is there when
/// the venue has it (the in-process simulator has none); `Display` writes the lines the board
/// shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VenueStatus {
    /// The exchange's rate limits as the host spends them.
    pub rate_limits: Option<RateLimitStatus>,
    /// Authentication refusals, shown only while there are recent ones.
    pub auth_failures: Option<AuthFailureStatus>,
    /// The WebSocket feeds.
    pub feeds: Option<FeedStatus>,
}

/// How requests fared against the exchange's rate limits since start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimitStatus {
    /// Requests that had a permit at once.
    pub immediate: u64,
    /// Requests that waited for one.
    pub waited: u64,
    /// Their average wait, ms.
    pub avg_wait_ms: f64,
    /// Requests refused a permit.
    pub refused: u64,
    /// Back-offs after the exchange said "too many requests".
    pub backoffs: u64,
    /// The fullest buckets now, fullest first: the headroom where it is smallest.
    pub fullest: Vec<RateBucket>,
}

/// How full one rate-limit bucket is now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateBucket {
    /// What it limits: an endpoint (`Place`, `Cancel`, ...) or `OrderCap` (the sub-account's
    /// cap on new and amended orders).
    pub scope: String,
    /// The instrument of a per-instrument bucket.
    pub instrument: Option<String>,
    /// The slot of the plugin whose share it is (`None`: the account's bucket).
    pub plugin: Option<u32>,
    /// Permits taken within the last window.
    pub used: u32,
    /// Permits allowed per window.
    pub capacity: u32,
    /// The window, ms.
    pub window_ms: u64,
    /// Closed after "too many requests" for this many ms more (0: open).
    pub blocked_ms: u64,
}

/// The host's requests or logins the exchange refused authentication.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthFailureStatus {
    /// Within the watch's window.
    pub recent: u64,
    /// The window, seconds.
    pub window_s: u64,
    /// Since start.
    pub total: u64,
}

/// The WebSocket feeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedStatus {
    /// The public feed is connected.
    pub public_up: bool,
    /// The private feed is connected, logged in and subscribed; `None` for a venue that has
    /// none (paper: its orders and fills are its own, never late).
    pub private_up: Option<bool>,
    /// Frames read.
    pub frames: u64,
    /// Frames that could not be read.
    pub unreadable: u64,
    /// Order book sequence gaps (each resynchronised).
    pub book_gaps: u64,
    /// Order book checksum mismatches (each resynchronised).
    pub checksum_mismatches: u64,
    /// Reconnects.
    pub reconnects: u64,
}

impl std::fmt::Display for VenueStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut lines = Vec::new();
        if let Some(l) = &self.rate_limits {
            lines.push(format!(
                "rate limits: {} requests at once, {} waited (avg {:.1} ms), {} refused, {} back-offs",
                l.immediate, l.waited, l.avg_wait_ms, l.refused, l.backoffs
            ));
        }
        if let Some(a) = &self.auth_failures {
            lines.push(format!(
                "authentication failures: {} in the last {} s ({} since start)",
                a.recent, a.window_s, a.total
            ));
        }
        if let Some(s) = &self.feeds {
            let up = |u: bool| if u { "up" } else { "down" };
            let private = s.private_up.map_or(String::new(), |u| format!(", private {}", up(u)));
            lines.push(format!(
                "feeds: public {}{private}; {} frames, {} unreadable, {} book gaps, {} checksum mismatches, {} \
                 reconnects",
                up(s.public_up),
                s.frames,
                s.unreadable,
                s.book_gaps,
                s.checksum_mismatches,
                s.reconnects
            ));
        }
        f.write_str(&lines.join("\n"))
    }
}

/// A key rotation that took place: the keys by their first characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySwitch {
    /// The key that was in use.
    pub from: String,
    /// The key in use now.
    pub to: String,
    /// Whether it is another key (reading the same one again changes nothing).
    pub changed: bool,
}

/// Why a key rotation did not happen (the key in use stays).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyReloadError {
    /// The venue holds no API key (the in-process simulator).
    #[error("this venue uses no API key")]
    NoKey,
    /// The new key was refused; the reason says why.
    #[error("{0}")]
    Refused(String),
}

/// An alarm a venue raises about the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VenueAlarm {
    /// Requests or logins with the account's key were refused authentication, `count` times
    /// within `window_s` seconds; `halt`: enough to halt the account until an operator resumes.
    AuthFailures {
        /// Failures in the window.
        count: u32,
        /// The window, seconds.
        window_s: u64,
        /// Halt the account.
        halt: bool,
    },
}

impl std::fmt::Display for VenueAlarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VenueAlarm::AuthFailures { count, window_s, halt } => write!(
                f,
                "{count} of the host's requests refused authentication in {window_s} s (the key revoked, changed or \
                 restricted to other IPs, the account's security settings changed?){}",
                if *halt { ": the account is halted until an operator resumes it" } else { "" }
            ),
        }
    }
}

/// Why a venue refused a request. Codes are OKX's, so the same handling works everywhere.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VenueError {
    /// The venue refused the request (OKX `sCode`/`sMsg`).
    #[error("venue refused ({code}): {message}")]
    Rejected {
        /// OKX error code, e.g. `51008`.
        code: String,
        /// OKX message.
        message: String,
    },
    /// The venue could not be reached or did not answer; the outcome is unknown.
    #[error("venue unavailable: {0}")]
    Unavailable(String),
    /// The host cancelled the order before its placement was sent (see [`Venue::withdraw`]):
    /// nothing reached the exchange.
    #[error("withdrawn by the host before it was sent")]
    Withdrawn,
}

/// An acknowledgement of an accepted order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceAck {
    /// Venue order id.
    pub venue_id: String,
}

/// A trading venue. Requests answer with an acknowledgement; state arrives on the event stream
/// handed out by [`Venue::take_events`].
#[async_trait::async_trait]
pub trait Venue: Send + Sync + 'static {
    /// Name for logs (`sim`, `okx-demo`, `okx-live`).
    fn name(&self) -> &str;
    /// Every instrument the venue trades, with host handles.
    fn instruments(&self) -> Vec<InstrumentSpec>;
    /// Open orders an earlier run left that this venue tracks as the host's own (OKX's
    /// `orders_at_start = "adopt"`); the host takes them once, before any plugin starts.
    fn adopted_orders(&self) -> Vec<OrderReport> {
        Vec::new()
    }
    /// Whether requests may be in flight at once. A network venue wants this (each request
    /// waits a round trip); the in-process simulator answers at once and stays deterministic
    /// when fed one request at a time. Either way, requests about one order keep their order.
    fn concurrent(&self) -> bool {
        false
    }
    /// The venue's health for status displays (rate-limit waits, authentication failures,
    /// feeds), if it has anything to say.
    fn status(&self) -> Option<VenueStatus> {
        None
    }
    /// The venue's own numbers for `/metrics` (rate-limit waits, feed reconnects...).
    fn metrics(&self) -> Vec<VenueMetric> {
        Vec::new()
    }
    /// Whether the router should build one-minute candles from public trades (venues that
    /// publish their own, like OKX, say no).
    fn candles_from_trades(&self) -> bool {
        true
    }
    /// The clock the venue keeps: the host stamps, checks and shows time by it (the exchange's
    /// corrected time on OKX; the simulator's clock, virtual in a backtest).
    fn clock(&self) -> Clock {
        Clock::system()
    }
    /// The account's position mode: which position each order trades, and how positions are
    /// kept per plugin.
    fn position_mode(&self) -> PositionMode {
        PositionMode::Net
    }
    /// Reads the venue's credentials again and, once the new key checks out, uses it from now
    /// on (`tradebox keys reload`, SIGHUP).
    async fn reload_keys(&self) -> Result<KeySwitch, KeyReloadError> {
        Err(KeyReloadError::NoKey)
    }
    /// Starts the venue's stream of `channel` for `instrument`: called when the first plugin
    /// subscribes (the host counts subscribers; a venue sees one subscription per stream).
    /// Venues that publish everything anyway need not do anything.
    async fn subscribe(&self, _instrument: InstrumentId, _channel: Channel) -> Result<(), VenueError> {
        Ok(())
    }
    /// Stops it: called when the last subscriber leaves.
    async fn unsubscribe(&self, _instrument: InstrumentId, _channel: Channel) -> Result<(), VenueError> {
        Ok(())
    }
    /// The event stream. Returns `None` after the first call: there is one consumer.
    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<VenueEvent>>;
    /// Places an order.
    async fn place(&self, order: NewOrder) -> Result<PlaceAck, VenueError>;
    /// Cancels an order by client id. `origin` is the plugin the order belongs to (`None` for
    /// the host's own orders): a venue that tags requests with their plugin or keeps a share of
    /// its rate limits per plugin takes it from here, so it keeps no record of owners itself.
    async fn cancel(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        origin: Option<&Origin>,
    ) -> Result<(), VenueError>;
    /// The host is cancelling this order (kill switch, breaker, unload, failure policy): if its
    /// placement is still waiting to be sent (for a rate-limit permit, or to retry a refusal
    /// that left nothing at the exchange), it is not sent, and `place` answers
    /// [`VenueError::Withdrawn`]. Called as soon as the host's cancel is queued, not when it is
    /// sent: the cancel itself waits for the placement. Venues that send at once need nothing.
    fn withdraw(&self, client_id: &str) {
        let _ = client_id;
    }
    /// Cancels an order for the host itself (kill switch, breaker, unload, failure policy):
    /// never charged to the owning plugin's share of the exchange's rate limits; `origin` (the
    /// owner's, as for [`Venue::cancel`]) still names it where the venue records requests.
    async fn cancel_for_host(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        self.cancel(instrument, client_id, origin).await
    }
    /// Amends price and/or total size; `origin` as for [`Venue::cancel`].
    async fn amend(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        new_price: Option<Decimal>,
        new_size: Option<Decimal>,
        origin: Option<&Origin>,
    ) -> Result<(), VenueError>;
    /// Every open order of the account.
    async fn open_orders(&self) -> Result<Vec<OrderReport>, VenueError>;
    /// Every balance of the account.
    async fn balances(&self) -> Result<Vec<BalanceReport>, VenueError>;
    /// Every non-zero position of the account.
    async fn positions(&self) -> Result<Vec<PositionReport>, VenueError>;
}
