//! Orders and what a venue reports about them: the words the gateway, risk, the tracker, every
//! venue and the simulator share. Serde names are OKX's where the two meet (`buy`, `post_only`,
//! `partially_filled`, `long`).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::instrument::{InstrumentId, InstrumentKind};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
