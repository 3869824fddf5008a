//! Venues: where orders go and where market data and fills come from.
//!
//! The [`Venue`] trait is what the engine talks to. Requests return an acknowledgement only;
//! every change of state (order status, fills, balances, positions, market data) arrives on the
//! venue's event stream, as it does on OKX (REST ack, then WebSocket pushes). Implementations:
//! the in-process simulated venue ([`sim`]) and, later, OKX.

pub mod okx;
pub mod sim;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Host-wide numeric handle of an instrument (the WIT `instrument-id`).
pub type InstrumentId = u32;

/// Which market data stream an event belongs to (OKX's channel names in config and manifests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Channel {
    /// Best bid/ask.
    #[serde(rename = "tickers")]
    Ticker,
    /// Top five levels.
    #[serde(rename = "books5")]
    Book5,
    /// Public trades.
    #[serde(rename = "trades")]
    Trades,
    /// One-minute candles.
    #[serde(rename = "candle1m")]
    Candle1m,
}

/// What kind of instrument: decides how sizes and positions are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstrumentKind {
    /// Sizes in base currency; fills move balances.
    Spot,
    /// Perpetual swap: sizes in contracts; fills move a position.
    Swap,
}

/// An instrument's trading rules, exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstrumentSpec {
    /// Host handle.
    pub id: InstrumentId,
    /// Exchange symbol, e.g. `BTC-USDT`.
    pub symbol: String,
    /// Spot or swap.
    pub kind: InstrumentKind,
    /// Base currency.
    pub base: String,
    /// Quote (and, for swaps, settlement) currency.
    pub quote: String,
    /// Price increment.
    pub tick_size: Decimal,
    /// Size increment (base for spot, contracts for swaps).
    pub lot_size: Decimal,
    /// Smallest order size.
    pub min_size: Decimal,
    /// Base currency per contract (1 for spot).
    pub contract_value: Decimal,
}

/// Whether the account holds one position per derivative or one per direction. It decides
/// which position an order trades ([`PositionSide::of_order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PositionMode {
    /// One signed position per instrument (OKX `net_mode`; the simulated venue).
    #[default]
    Net,
    /// A long and a short position per derivative, held side by side (OKX `long_short_mode`).
    LongShort,
}

/// Which position an order trades, or a report describes: the one position of an instrument
/// (spot, and derivatives in net mode), or one of the two of a derivative in long/short mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PositionSide {
    /// The instrument's single, signed position.
    #[default]
    Net,
    /// The long position of long/short mode.
    Long,
    /// The short position of long/short mode.
    Short,
}

impl PositionSide {
    /// The position an order trades. In long/short mode, on a derivative, an order without
    /// reduce-only opens or adds to the position of its own side (a buy the long one, a sell the
    /// short one) and a reduce-only order closes the opposite one (a reduce-only sell closes the
    /// long position, a reduce-only buy the short one); a strategy written for a net position
    /// therefore closes with reduce-only. Everywhere else there is one position.
    pub fn of_order(mode: PositionMode, kind: InstrumentKind, side: Side, reduce_only: bool) -> Self {
        match (mode, kind, side, reduce_only) {
            (PositionMode::Net, ..) | (_, InstrumentKind::Spot, ..) => PositionSide::Net,
            (PositionMode::LongShort, _, Side::Buy, false) | (PositionMode::LongShort, _, Side::Sell, true) => {
                PositionSide::Long
            }
            (PositionMode::LongShort, _, Side::Sell, false) | (PositionMode::LongShort, _, Side::Buy, true) => {
                PositionSide::Short
            }
        }
    }
}

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    /// +1 for buys, -1 for sells.
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }
}

/// Order type, as OKX names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Rests until filled or cancelled.
    Limit,
    /// Takes liquidity at any price; the rest is cancelled.
    Market,
    /// Cancelled instead of taking liquidity.
    PostOnly,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
}

/// Who asked for an order: the plugin's slot, name and component hash. Venues pass it on to the
/// audit log, the exchange's order tag and the per-plugin share of the rate limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Plugin slot.
    pub plugin: u32,
    /// Plugin name.
    pub name: String,
    /// sha256 of the plugin's component (empty for host-made orders).
    pub hash: String,
}

/// A normalised order ready for the venue: exact, on tick and lot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOrder {
    /// Host-minted client order id (1-32 ASCII alphanumerics).
    pub client_id: String,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderKind,
    /// Limit price; `None` for market orders.
    pub price: Option<Decimal>,
    /// Total size.
    pub size: Decimal,
    /// Only reduce a position (swaps).
    pub reduce_only: bool,
    /// The position it trades ([`PositionSide::of_order`]; `Net` but in long/short mode).
    pub leg: PositionSide,
    /// Who asked for it (`None`: the host itself).
    pub origin: Option<Origin>,
}

/// Order status, as OKX reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Resting, nothing filled.
    Live,
    /// Resting, partly filled.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled (by request, by IOC/FOK/post-only rules, or by the venue).
    Canceled,
    /// Refused by the venue.
    Rejected,
}

impl OrderStatus {
    /// True when no further change can happen.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Filled | OrderStatus::Canceled | OrderStatus::Rejected)
    }
}

/// The whole current state of an order, pushed on every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderReport {
    /// Client order id.
    pub client_id: String,
    /// Venue order id.
    pub venue_id: String,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderKind,
    /// Limit price (`None` for market orders).
    pub price: Option<Decimal>,
    /// Total size (after amends).
    pub size: Decimal,
    /// Cumulative filled size.
    pub filled: Decimal,
    /// Average fill price, when anything filled.
    pub avg_price: Option<Decimal>,
    /// Status.
    pub status: OrderStatus,
    /// Why it was rejected or cancelled by the venue (`"51008: ..."`), if it was.
    pub reason: Option<String>,
    /// Venue time of the change, ms.
    pub ts_ms: i64,
}

/// Maker or taker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Liquidity {
    /// The order was resting.
    Maker,
    /// The order took liquidity.
    Taker,
}

/// One execution of one of our orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillReport {
    /// Client order id of our order.
    pub client_id: String,
    /// Venue trade id.
    pub trade_id: String,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Our side.
    pub side: Side,
    /// Execution price.
    pub price: Decimal,
    /// Executed size.
    pub size: Decimal,
    /// Fee charged (positive) or rebate (negative).
    pub fee: Decimal,
    /// Fee currency.
    pub fee_currency: String,
    /// Maker or taker.
    pub liquidity: Liquidity,
    /// Venue time, ms.
    pub ts_ms: i64,
}

/// An account balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceReport {
    /// Currency.
    pub currency: String,
    /// Total equity in the currency.
    pub total: Decimal,
    /// Free to use.
    pub available: Decimal,
    /// Reserved by open orders (and margin).
    pub frozen: Decimal,
}

/// The account's position in a derivative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionReport {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Which of the instrument's positions (two in long/short mode).
    pub side: PositionSide,
    /// Signed size in contracts (a short position's is negative in every mode).
    pub size: Decimal,
    /// Average entry price (0 when flat).
    pub avg_price: Decimal,
}

/// Net-position accounting shared by the simulated exchange and the host's per-plugin books:
/// applies a signed fill of `qty` at `price` to `size` and `avg_price` and returns the PnL it
/// realises per unit of contract value. Growing a position moves its average; reducing it
/// realises PnL on the closed part; flipping opens the remainder at the fill's price.
pub fn apply_net_fill(size: &mut Decimal, avg_price: &mut Decimal, qty: Decimal, price: Decimal) -> Decimal {
    if size.is_zero() || size.is_sign_positive() == qty.is_sign_positive() {
        let total = *size + qty;
        *avg_price = (*avg_price * size.abs() + price * qty.abs()) / total.abs();
        *size = total;
        return Decimal::ZERO;
    }
    let closing = qty.abs().min(size.abs());
    let direction = if size.is_sign_positive() { Decimal::ONE } else { Decimal::NEGATIVE_ONE };
    let pnl = (price - *avg_price) * closing * direction;
    *size += qty;
    if size.is_zero() {
        *avg_price = Decimal::ZERO;
    } else if size.is_sign_positive() != direction.is_sign_positive() {
        *avg_price = price;
    }
    pnl
}

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
    /// One line on the venue's health for status displays (rate-limit waits, feeds), if it has
    /// anything to say.
    fn status_line(&self) -> Option<String> {
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
    /// Cancels an order by client id.
    async fn cancel(&self, instrument: InstrumentId, client_id: &str) -> Result<(), VenueError>;
    /// The host is cancelling this order (kill switch, breaker, unload, failure policy): if its
    /// placement is still waiting to be sent (for a rate-limit permit, or to retry a refusal
    /// that left nothing at the exchange), it is not sent, and `place` answers
    /// [`VenueError::Withdrawn`]. Called as soon as the host's cancel is queued, not when it is
    /// sent: the cancel itself waits for the placement. Venues that send at once need nothing.
    fn withdraw(&self, client_id: &str) {
        let _ = client_id;
    }
    /// Cancels an order for the host itself (kill switch, breaker, unload, failure policy):
    /// never charged to the owning plugin's share of the exchange's rate limits.
    async fn cancel_for_host(&self, instrument: InstrumentId, client_id: &str) -> Result<(), VenueError> {
        self.cancel(instrument, client_id).await
    }
    /// Amends price and/or total size.
    async fn amend(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        new_price: Option<Decimal>,
        new_size: Option<Decimal>,
    ) -> Result<(), VenueError>;
    /// Every open order of the account.
    async fn open_orders(&self) -> Result<Vec<OrderReport>, VenueError>;
    /// Every balance of the account.
    async fn balances(&self) -> Result<Vec<BalanceReport>, VenueError>;
    /// Every non-zero position of the account.
    async fn positions(&self) -> Result<Vec<PositionReport>, VenueError>;
}
