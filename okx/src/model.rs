//! Typed OKX v5 REST messages (okx-v5.md §2-4).
//!
//! Every price, size and amount is an exact [`Decimal`] carried as a JSON string, as OKX sends
//! them. OKX sends `""` for numbers that do not apply (no fill yet, a field of another account
//! mode), so optional numbers map `""` to `None` instead of failing the whole message. Unknown
//! fields are ignored; unknown enum values parse to an `Unknown` case. Request types serialise
//! their fields in OKX's documented order and leave out what is not set, so a typed request
//! reproduces the documented bodies byte for byte.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tradebox_core::{OrderKind, PositionSide};

/// `""` ↔ `None` for optional decimals; anything else must be a decimal (string or number).
pub mod opt_dec {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::str::FromStr;

    /// Serialises `Some(d)` as `"d"` and `None` as `""`.
    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.collect_str(d),
            None => s.serialize_str(""),
        }
    }

    /// Reads `""`, a missing field or `null` as `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(serde_json::Number),
        }
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Text(t)) if t.trim().is_empty() => Ok(None),
            Some(Raw::Text(t)) => Decimal::from_str(t.trim())
                .or_else(|_| Decimal::from_scientific(t.trim()))
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("not a decimal: {t:?} ({e})"))),
            Some(Raw::Number(n)) => Decimal::from_str(&n.to_string())
                .or_else(|_| Decimal::from_scientific(&n.to_string()))
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Millisecond timestamps sent as strings (`"1597026383085"`); `""` reads as 0.
pub mod ms {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as a string.
    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Accepts a string or a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(n),
            Raw::Text(t) if t.is_empty() => Ok(0),
            Raw::Text(t) => t.parse().map_err(|_| serde::de::Error::custom(format!("not a ms timestamp: {t:?}"))),
        }
    }
}

/// The envelope of every REST answer. `code` is a string; `"0"` is success.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// `"0"` ok, `"1"` all failed, `"2"` partly failed, else an error code.
    pub code: String,
    /// Message (empty on success).
    #[serde(default)]
    pub msg: String,
    /// Always an array on success; absent or empty on some errors.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Gateway receive time, µs (trade endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_time: Option<String>,
    /// Gateway send time, µs (trade endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_time: Option<String>,
}

/// `GET /api/v5/public/time`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServerTime {
    /// Server time, ms.
    #[serde(with = "ms")]
    pub ts: i64,
}

/// `GET /api/v5/public/instruments` item.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Instrument {
    /// `SPOT`, `SWAP`, ...
    pub inst_type: String,
    /// e.g. `BTC-USDT`.
    pub inst_id: String,
    /// Numeric id used by WS order operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inst_id_code: Option<u64>,
    /// Base currency (spot).
    #[serde(default)]
    pub base_ccy: String,
    /// Quote currency (spot).
    #[serde(default)]
    pub quote_ccy: String,
    /// Settlement currency (contracts).
    #[serde(default)]
    pub settle_ccy: String,
    /// Contract value (contracts).
    #[serde(default, with = "opt_dec")]
    pub ct_val: Option<Decimal>,
    /// Contract multiplier (contracts).
    #[serde(default, with = "opt_dec")]
    pub ct_mult: Option<Decimal>,
    /// Currency of the contract value.
    #[serde(default)]
    pub ct_val_ccy: String,
    /// `linear` or `inverse`.
    #[serde(default)]
    pub ct_type: String,
    /// Underlying (contracts).
    #[serde(default)]
    pub uly: String,
    /// Instrument family (contracts).
    #[serde(default)]
    pub inst_family: String,
    /// Price increment.
    pub tick_sz: Decimal,
    /// Size increment (base currency for spot, contracts for derivatives).
    pub lot_sz: Decimal,
    /// Minimum order size.
    pub min_sz: Decimal,
    /// Largest limit order.
    #[serde(default, with = "opt_dec")]
    pub max_lmt_sz: Option<Decimal>,
    /// Largest market order.
    #[serde(default, with = "opt_dec")]
    pub max_mkt_sz: Option<Decimal>,
    /// Maximum leverage.
    #[serde(default, with = "opt_dec")]
    pub lever: Option<Decimal>,
    /// `live`, `suspend`, `preopen`, ... Orders only when `live`.
    pub state: String,
    /// Listing time, ms.
    #[serde(default, with = "ms")]
    pub list_time: i64,
}

/// `GET /api/v5/market/ticker` item (also the WS `tickers` push).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ticker {
    /// Instrument type.
    #[serde(default)]
    pub inst_type: String,
    /// Instrument.
    pub inst_id: String,
    /// Last trade price.
    #[serde(default, with = "opt_dec")]
    pub last: Option<Decimal>,
    /// Last trade size.
    #[serde(default, with = "opt_dec")]
    pub last_sz: Option<Decimal>,
    /// Best ask.
    #[serde(default, with = "opt_dec")]
    pub ask_px: Option<Decimal>,
    /// Size at the best ask.
    #[serde(default, with = "opt_dec")]
    pub ask_sz: Option<Decimal>,
    /// Best bid.
    #[serde(default, with = "opt_dec")]
    pub bid_px: Option<Decimal>,
    /// Size at the best bid.
    #[serde(default, with = "opt_dec")]
    pub bid_sz: Option<Decimal>,
    /// 24 h open.
    #[serde(default, with = "opt_dec")]
    pub open24h: Option<Decimal>,
    /// 24 h high.
    #[serde(default, with = "opt_dec")]
    pub high24h: Option<Decimal>,
    /// 24 h low.
    #[serde(default, with = "opt_dec")]
    pub low24h: Option<Decimal>,
    /// 24 h volume (base or contracts).
    #[serde(default, with = "opt_dec")]
    pub vol24h: Option<Decimal>,
    /// Time, ms.
    #[serde(with = "ms")]
    pub ts: i64,
}

/// One book level: `[px, sz, "0", numOrders]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Level(pub Decimal, pub Decimal, pub String, pub String);

impl Level {
    /// A level with `orders` resting orders.
    pub fn new(px: Decimal, sz: Decimal, orders: u32) -> Self {
        Level(px, sz, "0".into(), orders.to_string())
    }
}

/// `GET /api/v5/market/books` item.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Book {
    /// Asks, best first.
    pub asks: Vec<Level>,
    /// Bids, best first.
    pub bids: Vec<Level>,
    /// Time, ms.
    #[serde(with = "ms")]
    pub ts: i64,
    /// Sequence id (WS chains them; REST gives the current one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_id: Option<i64>,
}

/// Order side: the shared vocabulary's, whose serde names are OKX's (`buy`, `sell`).
pub use tradebox_core::Side;

/// Order type.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrdType {
    /// Market.
    Market,
    /// Limit.
    Limit,
    /// Post-only limit.
    PostOnly,
    /// Fill-or-kill.
    Fok,
    /// Immediate-or-cancel.
    Ioc,
    /// Any other type (not sent by the host).
    #[serde(other)]
    Unknown,
}

impl From<OrderKind> for OrdType {
    fn from(kind: OrderKind) -> Self {
        match kind {
            OrderKind::Limit => OrdType::Limit,
            OrderKind::Market => OrdType::Market,
            OrderKind::PostOnly => OrdType::PostOnly,
            OrderKind::Ioc => OrdType::Ioc,
            OrderKind::Fok => OrdType::Fok,
        }
    }
}

impl OrdType {
    /// The order kind the host tracks it as: a type the host never sends (an order placed
    /// on the account by something else) is tracked as a limit order.
    pub fn kind(self) -> OrderKind {
        match self {
            OrdType::Market => OrderKind::Market,
            OrdType::PostOnly => OrderKind::PostOnly,
            OrdType::Ioc => OrderKind::Ioc,
            OrdType::Fok => OrderKind::Fok,
            OrdType::Limit | OrdType::Unknown => OrderKind::Limit,
        }
    }
}

/// OKX's `posSide` for a position side (`net`, `long`, `short`).
pub fn pos_side(side: PositionSide) -> &'static str {
    match side {
        PositionSide::Net => "net",
        PositionSide::Long => "long",
        PositionSide::Short => "short",
    }
}

/// The position side OKX's `posSide` names (`""` and `net`: the net position).
pub fn position_side(pos_side: &str) -> PositionSide {
    match pos_side {
        "long" => PositionSide::Long,
        "short" => PositionSide::Short,
        _ => PositionSide::Net,
    }
}

/// `POST /api/v5/trade/order` body (and batch item). Field order follows OKX's documentation.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrder {
    /// Instrument.
    pub inst_id: String,
    /// `cash` for spot, `cross`/`isolated` for margin and contracts.
    pub td_mode: String,
    /// Host-minted client order id (1-32 alphanumerics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cl_ord_id: Option<String>,
    /// Side.
    pub side: Side,
    /// Type.
    pub ord_type: OrdType,
    /// Limit price (absent for market orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub px: Option<Decimal>,
    /// Size.
    pub sz: Decimal,
    /// Order tag (≤16 alphanumerics); the host tags orders per plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Reduce-only (margin and net-mode contracts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce_only: Option<bool>,
    /// Unit of `sz` for spot market orders: `base_ccy` or `quote_ccy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tgt_ccy: Option<String>,
    /// Position side in long/short mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_side: Option<String>,
}

/// The per-order answer of place, cancel and amend (and their batch forms).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderAck {
    /// Exchange order id (`""` on failure).
    #[serde(default)]
    pub ord_id: String,
    /// Client order id, echoed.
    #[serde(default)]
    pub cl_ord_id: String,
    /// Tag, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Request id of an amend, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_id: Option<String>,
    /// Time, ms.
    #[serde(default, with = "ms")]
    pub ts: i64,
    /// `"0"` ok, else the reason code.
    pub s_code: String,
    /// Reason text.
    #[serde(default)]
    pub s_msg: String,
    /// Finer reason (newer docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_code: Option<String>,
}

/// `POST /api/v5/trade/cancel-order` body.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CancelOrder {
    /// Instrument.
    pub inst_id: String,
    /// Exchange id (wins when both are given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ord_id: Option<String>,
    /// Client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cl_ord_id: Option<String>,
}

/// `POST /api/v5/trade/amend-order` body.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AmendOrder {
    /// Instrument.
    pub inst_id: String,
    /// Exchange id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ord_id: Option<String>,
    /// Client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cl_ord_id: Option<String>,
    /// Cancel the order when the amend fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cxl_on_fail: Option<bool>,
    /// Amend request id (≤32 alphanumerics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_id: Option<String>,
    /// New total size (not the remainder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_sz: Option<Decimal>,
    /// New price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_px: Option<Decimal>,
}

/// An order's state.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Resting, nothing filled.
    Live,
    /// Resting, partly filled.
    PartiallyFilled,
    /// Done: filled.
    Filled,
    /// Done: cancelled (by the user, the system, IOC/FOK/post-only rules).
    Canceled,
    /// Done: cancelled by market-maker protection.
    MmpCanceled,
    /// A state this client does not know.
    #[serde(other)]
    Unknown,
}

impl OrderState {
    /// Whether the order can change no more.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderState::Filled | OrderState::Canceled | OrderState::MmpCanceled)
    }
}

/// `GET /api/v5/trade/order` item (also `orders-pending`, and the WS `orders` push).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetails {
    /// Instrument type.
    #[serde(default)]
    pub inst_type: String,
    /// Instrument.
    pub inst_id: String,
    /// Exchange id.
    pub ord_id: String,
    /// Client id (`""` when none).
    #[serde(default)]
    pub cl_ord_id: String,
    /// Tag.
    #[serde(default)]
    pub tag: String,
    /// Limit price (`""` for market).
    #[serde(default, with = "opt_dec")]
    pub px: Option<Decimal>,
    /// Size.
    #[serde(with = "opt_dec")]
    pub sz: Option<Decimal>,
    /// Type.
    pub ord_type: OrdType,
    /// Side.
    pub side: Side,
    /// Position side.
    #[serde(default)]
    pub pos_side: String,
    /// Trade mode.
    #[serde(default)]
    pub td_mode: String,
    /// Cumulative filled size.
    #[serde(default, with = "opt_dec")]
    pub acc_fill_sz: Option<Decimal>,
    /// Last fill price.
    #[serde(default, with = "opt_dec")]
    pub fill_px: Option<Decimal>,
    /// Last fill size.
    #[serde(default, with = "opt_dec")]
    pub fill_sz: Option<Decimal>,
    /// Last fill trade id.
    #[serde(default)]
    pub trade_id: String,
    /// Average fill price.
    #[serde(default, with = "opt_dec")]
    pub avg_px: Option<Decimal>,
    /// State.
    pub state: OrderState,
    /// Cumulative fee (negative when charged).
    #[serde(default, with = "opt_dec")]
    pub fee: Option<Decimal>,
    /// Fee currency.
    #[serde(default)]
    pub fee_ccy: String,
    /// `"true"` / `"false"`.
    #[serde(default)]
    pub reduce_only: String,
    /// Why it was cancelled, when it was.
    #[serde(default)]
    pub cancel_source: String,
    /// Created, ms.
    #[serde(default, with = "ms")]
    pub c_time: i64,
    /// Updated, ms.
    #[serde(default, with = "ms")]
    pub u_time: i64,
}

/// `GET /api/v5/trade/fills` item: one execution of one of our orders. `billId` orders them
/// and is the paging cursor.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Fill {
    /// Instrument type.
    #[serde(default)]
    pub inst_type: String,
    /// Instrument.
    pub inst_id: String,
    /// Exchange trade id.
    pub trade_id: String,
    /// Exchange order id.
    pub ord_id: String,
    /// Client order id (`""` when none).
    #[serde(default)]
    pub cl_ord_id: String,
    /// Bill id: increases with every fill; the cursor for `after`/`before`.
    pub bill_id: String,
    /// Order tag.
    #[serde(default)]
    pub tag: String,
    /// Execution price.
    pub fill_px: Decimal,
    /// Executed size.
    pub fill_sz: Decimal,
    /// Our side.
    pub side: Side,
    /// Position side.
    #[serde(default)]
    pub pos_side: String,
    /// `T` taker, `M` maker.
    #[serde(default)]
    pub exec_type: String,
    /// Fee currency.
    #[serde(default)]
    pub fee_ccy: String,
    /// Fee (negative when charged).
    #[serde(default, with = "opt_dec")]
    pub fee: Option<Decimal>,
    /// Time of the fill, ms.
    #[serde(default, with = "ms")]
    pub fill_time: i64,
    /// Time the record was made, ms.
    #[serde(default, with = "ms")]
    pub ts: i64,
}

/// One currency in `GET /api/v5/account/balance`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BalanceDetail {
    /// Currency.
    pub ccy: String,
    /// Equity.
    #[serde(default, with = "opt_dec")]
    pub eq: Option<Decimal>,
    /// Cash balance.
    #[serde(default, with = "opt_dec")]
    pub cash_bal: Option<Decimal>,
    /// Available balance.
    #[serde(default, with = "opt_dec")]
    pub avail_bal: Option<Decimal>,
    /// Available equity (margin modes).
    #[serde(default, with = "opt_dec")]
    pub avail_eq: Option<Decimal>,
    /// Frozen balance.
    #[serde(default, with = "opt_dec")]
    pub frozen_bal: Option<Decimal>,
    /// Frozen by open orders.
    #[serde(default, with = "opt_dec")]
    pub ord_frozen: Option<Decimal>,
    /// Unrealised PnL.
    #[serde(default, with = "opt_dec")]
    pub upl: Option<Decimal>,
    /// Updated, ms.
    #[serde(default, with = "ms")]
    pub u_time: i64,
}

impl BalanceDetail {
    /// What can be used for new orders: `availEq`, else `availBal` (hummingbot's rule).
    pub fn available(&self) -> Option<Decimal> {
        self.avail_eq.or(self.avail_bal)
    }
}

/// `GET /api/v5/account/balance` item.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    /// Total equity in USD.
    #[serde(default, with = "opt_dec")]
    pub total_eq: Option<Decimal>,
    /// Updated, ms.
    #[serde(default, with = "ms")]
    pub u_time: i64,
    /// Per currency.
    #[serde(default)]
    pub details: Vec<BalanceDetail>,
}

/// `GET /api/v5/account/positions` item.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// Instrument type.
    #[serde(default)]
    pub inst_type: String,
    /// Instrument.
    pub inst_id: String,
    /// `cross` / `isolated`.
    #[serde(default)]
    pub mgn_mode: String,
    /// Position id.
    #[serde(default)]
    pub pos_id: String,
    /// `net`, `long`, `short`.
    #[serde(default)]
    pub pos_side: String,
    /// Quantity (net mode: negative is short).
    #[serde(default, with = "opt_dec")]
    pub pos: Option<Decimal>,
    /// Closable quantity.
    #[serde(default, with = "opt_dec")]
    pub avail_pos: Option<Decimal>,
    /// Average open price.
    #[serde(default, with = "opt_dec")]
    pub avg_px: Option<Decimal>,
    /// Mark price.
    #[serde(default, with = "opt_dec")]
    pub mark_px: Option<Decimal>,
    /// Unrealised PnL.
    #[serde(default, with = "opt_dec")]
    pub upl: Option<Decimal>,
    /// Leverage.
    #[serde(default, with = "opt_dec")]
    pub lever: Option<Decimal>,
    /// Estimated liquidation price.
    #[serde(default, with = "opt_dec")]
    pub liq_px: Option<Decimal>,
    /// Realised PnL.
    #[serde(default, with = "opt_dec")]
    pub realized_pnl: Option<Decimal>,
    /// Margin currency.
    #[serde(default)]
    pub ccy: String,
    /// Created, ms.
    #[serde(default, with = "ms")]
    pub c_time: i64,
    /// Updated, ms.
    #[serde(default, with = "ms")]
    pub u_time: i64,
}

/// `GET /api/v5/account/config` item.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccountConfig {
    /// Account id.
    #[serde(default)]
    pub uid: String,
    /// Main account id (≠ `uid` for a sub-account).
    #[serde(default)]
    pub main_uid: String,
    /// 1 spot, 2 futures, 3 multi-currency margin, 4 portfolio margin.
    #[serde(default)]
    pub acct_lv: String,
    /// `long_short_mode` or `net_mode`.
    #[serde(default)]
    pub pos_mode: String,
    /// Comma-separated: `read_only`, `trade`, `withdraw`.
    #[serde(default)]
    pub perm: String,
    /// IPs the key is bound to (`""`: not IP-bound).
    #[serde(default)]
    pub ip: String,
    /// The key's label.
    #[serde(default)]
    pub label: String,
}

impl AccountConfig {
    fn has(&self, p: &str) -> bool {
        self.perm.split(',').any(|x| x.trim() == p)
    }

    /// The key may trade.
    pub fn can_trade(&self) -> bool {
        self.has("trade")
    }

    /// The key may withdraw funds (the host refuses such keys unless told otherwise).
    pub fn can_withdraw(&self) -> bool {
        self.has("withdraw")
    }

    /// The key is bound to IP addresses.
    pub fn ip_bound(&self) -> bool {
        !self.ip.trim().is_empty()
    }

    /// This is a sub-account.
    pub fn is_sub_account(&self) -> bool {
        !self.main_uid.is_empty() && self.uid != self.main_uid
    }

    /// The account mode (`None` for a value OKX did not document when this was written).
    pub fn account_level(&self) -> Option<AccountLevel> {
        AccountLevel::from_code(&self.acct_lv)
    }

    /// The position mode (`None` for a value OKX did not document).
    pub fn position_mode(&self) -> Option<PositionMode> {
        match self.pos_mode.trim() {
            "net_mode" => Some(PositionMode::Net),
            "long_short_mode" => Some(PositionMode::LongShort),
            _ => None,
        }
    }
}

/// OKX's account modes (`acctLv`): what the account may trade and how spot orders are margined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountLevel {
    /// 1: spot only, `tdMode = cash`; no swaps or futures (51010).
    Spot,
    /// 2: spot (`cash`) and derivatives (`cross`/`isolated`).
    Futures,
    /// 3: multi-currency margin; spot orders need `cross` (`cash` is refused with 51000).
    MultiCurrency,
    /// 4: portfolio margin; spot orders need `cross` as in mode 3.
    PortfolioMargin,
}

impl AccountLevel {
    /// The mode of an `acctLv` value.
    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim() {
            "1" => Some(AccountLevel::Spot),
            "2" => Some(AccountLevel::Futures),
            "3" => Some(AccountLevel::MultiCurrency),
            "4" => Some(AccountLevel::PortfolioMargin),
            _ => None,
        }
    }

    /// OKX's `acctLv` value.
    pub fn code(self) -> &'static str {
        match self {
            AccountLevel::Spot => "1",
            AccountLevel::Futures => "2",
            AccountLevel::MultiCurrency => "3",
            AccountLevel::PortfolioMargin => "4",
        }
    }

    /// The name OKX's web site gives the mode.
    pub fn name(self) -> &'static str {
        match self {
            AccountLevel::Spot => "Spot mode",
            AccountLevel::Futures => "Futures mode",
            AccountLevel::MultiCurrency => "Multi-currency margin mode",
            AccountLevel::PortfolioMargin => "Portfolio margin mode",
        }
    }

    /// Whether swaps and futures can be traded at all.
    pub fn trades_derivatives(self) -> bool {
        self != AccountLevel::Spot
    }

    /// Spot orders are margined (`tdMode = cross`) rather than cash.
    pub fn margined_spot(self) -> bool {
        matches!(self, AccountLevel::MultiCurrency | AccountLevel::PortfolioMargin)
    }
}

/// OKX's position modes (`posMode`), which apply to swaps and futures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum PositionMode {
    /// `net_mode`: one signed position per instrument; orders send no `posSide`.
    #[default]
    #[serde(rename = "net_mode")]
    Net,
    /// `long_short_mode`: a long and a short position per instrument; every order names the
    /// one it trades (`posSide = long|short`, required: 51000 without it).
    #[serde(rename = "long_short_mode")]
    LongShort,
}

impl PositionMode {
    /// OKX's `posMode` value.
    pub fn code(self) -> &'static str {
        match self {
            PositionMode::Net => "net_mode",
            PositionMode::LongShort => "long_short_mode",
        }
    }
}

/// `GET /api/v5/trade/account-rate-limit` item: the sub-account's cap on new and amended
/// derivative orders, which OKX sets from its fill ratio (spot is exempt).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccountRateLimit {
    /// New + amended orders allowed per 2 s now (`None` when OKX sends `""`).
    #[serde(default, with = "opt_dec")]
    pub acc_rate_limit: Option<Decimal>,
    /// The sub-account's fill ratio over the last 7 days (`None`: not assessed yet).
    #[serde(default, with = "opt_dec")]
    pub fill_ratio: Option<Decimal>,
    /// The main account's fill ratio.
    #[serde(default, with = "opt_dec")]
    pub main_fill_ratio: Option<Decimal>,
    /// The cap expected from the next assessment on (`None`: unchanged or not known).
    #[serde(default, with = "opt_dec")]
    pub next_acc_rate_limit: Option<Decimal>,
    /// When this was computed, ms.
    #[serde(default, with = "ms")]
    pub ts: i64,
}

/// Tag-level `cancel-all-after` timers OKX keeps per sub-account (one more: 51071).
pub const TAG_TIMERS: usize = 20;

/// `POST /api/v5/trade/cancel-all-after` body.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CancelAllAfter {
    /// Seconds until the exchange cancels everything (0 disarms; else 10-120).
    pub time_out: String,
    /// Only orders with this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `POST /api/v5/trade/cancel-all-after` item.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CancelAllAfterAck {
    /// When the exchange will cancel, ms (0 when disarmed).
    #[serde(default, with = "ms")]
    pub trigger_time: i64,
    /// Tag, echoed.
    #[serde(default)]
    pub tag: String,
    /// Time of the request, ms.
    #[serde(default, with = "ms")]
    pub ts: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::str::FromStr;

    fn data(file: &str) -> String {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    /// The ccxt fixture's bodies for one method, as envelopes of `T`.
    fn ccxt<T: serde::de::DeserializeOwned>(method: &str) -> Vec<Envelope<T>> {
        let all: Vec<Value> = serde_json::from_str(&data("ccxt_okx_rest_http_responses.json")).expect("fixture");
        all.into_iter()
            .filter(|c| c["method"] == method)
            .map(|c| serde_json::from_value(c["httpResponse"].clone()).unwrap_or_else(|e| panic!("{method}: {e}")))
            .collect()
    }

    #[test]
    fn account_and_position_modes_are_read_as_okx_sends_them() {
        let config = |lv: &str, mode: &str| AccountConfig {
            uid: String::new(),
            main_uid: String::new(),
            acct_lv: lv.into(),
            pos_mode: mode.into(),
            perm: String::new(),
            ip: String::new(),
            label: String::new(),
        };
        assert_eq!(config("1", "net_mode").account_level(), Some(AccountLevel::Spot));
        assert_eq!(config("4", "").account_level(), Some(AccountLevel::PortfolioMargin));
        assert_eq!(config("5", "").account_level(), None);
        assert_eq!(config("2", "long_short_mode").position_mode(), Some(PositionMode::LongShort));
        assert_eq!(config("2", "hedge").position_mode(), None);
        assert!(AccountLevel::MultiCurrency.margined_spot() && !AccountLevel::Futures.margined_spot());
        assert!(!AccountLevel::Spot.trades_derivatives());
    }

    #[test]
    fn place_request_serialises_to_the_signed_vector_body() {
        let order = PlaceOrder {
            inst_id: "BTC-USDT".into(),
            td_mode: "cash".into(),
            cl_ord_id: Some("b15".into()),
            side: Side::Buy,
            ord_type: OrdType::Limit,
            px: Some(d("2.15")),
            sz: d("2"),
            tag: None,
            reduce_only: None,
            tgt_ccy: None,
            pos_side: None,
        };
        assert_eq!(
            serde_json::to_string(&order).expect("json"),
            r#"{"instId":"BTC-USDT","tdMode":"cash","clOrdId":"b15","side":"buy","ordType":"limit","px":"2.15","sz":"2"}"#
        );
        let batch = vec![PlaceOrder { cl_ord_id: None, ..order }];
        assert_eq!(
            serde_json::to_string(&batch).expect("json"),
            r#"[{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","px":"2.15","sz":"2"}]"#
        );
    }

    #[test]
    fn real_place_ack_and_failure_envelopes() {
        let ok = ccxt::<OrderAck>("createOrder");
        let first = &ok[0];
        assert_eq!(first.code, "0");
        assert_eq!(first.data[0].s_code, "0");
        assert!(!first.data[0].ord_id.is_empty());
        let failed: Envelope<OrderAck> = serde_json::from_str(
            r#"{"code":"1","data":[{"clOrdId":"273942d26e05444389cdd4e66809edcf","ordId":"","sCode":"51000",
               "sMsg":"Parameter px error ","tag":"","ts":"1744331107771"}],
               "inTime":"1744331107770195","msg":"All operations failed","outTime":"1744331107773498"}"#,
        )
        .expect("real failure");
        assert_eq!(failed.data[0].s_code, "51000");
        assert_eq!(failed.in_time.as_deref(), Some("1744331107770195"));
        // Auth failures carry no data at all.
        let auth: Envelope<OrderAck> = serde_json::from_str(r#"{"msg":"Invalid Sign","code":"50113"}"#).expect("auth");
        assert!(auth.data.is_empty());
    }

    #[test]
    fn real_orders_parse_with_empty_numbers_as_none() {
        for env in ccxt::<OrderDetails>("fetchOrder").into_iter().chain(ccxt::<OrderDetails>("fetchClosedOrders")) {
            let o = &env.data[0];
            assert!(o.state.is_terminal() || o.state == OrderState::Live, "{o:?}");
            assert!(o.acc_fill_sz.is_some());
        }
        let open = ccxt::<OrderDetails>("fetchOpenOrders");
        let limit =
            open.iter().flat_map(|e| &e.data).find(|o| o.ord_type == OrdType::PostOnly).expect("a post-only order");
        assert_eq!(limit.avg_px, None, "nothing filled: avgPx is \"\"");
        assert_eq!(limit.state, OrderState::Live);
    }

    #[test]
    fn real_ticker_book_positions_balance() {
        let t = &ccxt::<Ticker>("fetchTicker")[0].data[0];
        assert_eq!(t.inst_id, "BTC-USDT");
        assert_eq!(t.last, Some(d("73384.8")));
        let books = ccxt::<Book>("fetchOrderBook");
        let spot = books.iter().flat_map(|e| &e.data).find(|b| b.asks[0].1.scale() > 0).expect("spot book");
        assert_eq!(spot.asks[0], Level(d("67973.4"), d("1.40848059"), "0".into(), "7".into()));
        let p = &ccxt::<Position>("fetchPositions")[0].data[0];
        assert_eq!(p.inst_id, "LTC-USDT-SWAP");
        assert!(p.pos.is_some() && p.avg_px == Some(d("68.24")));
        let env: Envelope<Balance> =
            serde_json::from_str(&data("nautilus_rest_account_balance.json")).expect("balance");
        let usdt = env.data[0].details.iter().find(|x| x.ccy == "USDT").expect("USDT");
        assert!(usdt.available().is_some());
    }

    #[test]
    fn real_instrument_tables() {
        for file in [
            "nautilus_rest_public_instruments_spot.json",
            "nautilus_rest_public_instruments_swap.json",
            "cryptofeed_rest_public_instruments_spot_20220513.json",
            "cryptofeed_rest_public_instruments_swap_20220513.json",
        ] {
            let env: Envelope<Instrument> = serde_json::from_str(&data(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(!env.data.is_empty(), "{file}");
            for i in &env.data {
                assert!(i.tick_sz > Decimal::ZERO && i.lot_sz > Decimal::ZERO, "{file}: {i:?}");
            }
        }
        let swap: Envelope<Instrument> =
            serde_json::from_str(&data("cryptofeed_rest_public_instruments_swap_20220513.json")).expect("swap");
        let btc = swap.data.iter().find(|i| i.inst_id == "BTC-USDT-SWAP").expect("BTC-USDT-SWAP");
        assert_eq!((btc.ct_val, btc.ct_type.as_str()), (Some(d("0.01")), "linear"));
    }

    #[test]
    fn account_config_permissions_and_time() {
        let text = data("docsexample_jkorf_rest_account_config.txt");
        let json: String = text.lines().skip(3).collect::<Vec<_>>().join("\n");
        let env: Envelope<AccountConfig> = serde_json::from_str(&json).expect("config");
        let c = &env.data[0];
        assert!(c.can_trade() && c.can_withdraw());
        let mut c = c.clone();
        c.perm = "read_only,trade".into();
        assert!(c.can_trade() && !c.can_withdraw());
        let text = data("docsexample_jkorf_rest_public_time.txt");
        let json: String = text.lines().skip(3).collect::<Vec<_>>().join("\n");
        let env: Envelope<ServerTime> = serde_json::from_str(&json).expect("time");
        assert!(env.data[0].ts > 1_500_000_000_000);
    }

    #[test]
    fn unknown_states_and_bad_numbers() {
        let v: OrderState = serde_json::from_str(r#""some_new_state""#).expect("unknown state tolerated");
        assert_eq!(v, OrderState::Unknown);
        let bad = serde_json::from_str::<BalanceDetail>(r#"{"ccy":"USDT","eq":"12abc"}"#);
        assert!(bad.expect_err("not a number").to_string().contains("12abc"));
        let empty: BalanceDetail = serde_json::from_str(r#"{"ccy":"USDT","eq":"","availBal":"1.5"}"#).expect("ok");
        assert_eq!((empty.eq, empty.available()), (None, Some(d("1.5"))));
    }
}
