//! The simulated exchange's account as OKX shows it: the in-process [`SimVenue`] does the
//! matching and the money; this layer keeps what OKX's REST API reports about it (orders by
//! `ordId` with their `clOrdId` and `tag`, fills with bill ids, balances, positions), validates
//! requests the way OKX does, and runs the `cancel-all-after` timers.
//!
//! The venue pushes every change on its event stream before a request returns, so draining the
//! stream right after each request ([`Exchange::pump`]) keeps the records exact; a background
//! task drains it too, for fills made by the synthetic market between requests.

mod history;
mod ledger;

pub use history::{CandlePage, bar_index};
pub use ledger::{HistoryQuery, currency_json};

use super::feed::{BOOK_DEPTH, Feed};
use super::ticker::{Stats24h, ticker_value};
use crate::venue::SimVenue;
use tradebox_core::{
    BalanceReport, Clock, InstrumentId, InstrumentKind, InstrumentSpec, Liquidity, NewOrder, OrderKind, OrderReport,
    OrderStatus, PositionReport, PositionSide, Side, Venue, VenueError, VenueEvent,
};
// `Venue` for take_events/instruments/balances.
use parking_lot::Mutex;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;
use tradebox_okx::model::{self as okx, AccountLevel, OrderDetails, OrderState, PositionMode};
use tradebox_okx::model::{pos_side, position_side};

/// Pending orders OKX allows per instrument and per account (okx-v5.md §4).
pub const MAX_PENDING_PER_INSTRUMENT: usize = 500;
/// See [`MAX_PENDING_PER_INSTRUMENT`].
pub const MAX_PENDING_PER_ACCOUNT: usize = 4_000;
/// Fills kept for `/trade/fills` (OKX keeps three days).
const FILLS_KEPT: usize = 100_000;
/// Terminal orders kept for `/trade/order` queries.
const FINISHED_KEPT: usize = 100_000;

/// Numeric instrument code (`instIdCode`) of host instrument 1; the rest follow.
const INST_ID_CODE_BASE: u64 = 1_000_000_000;

/// A refused item: OKX's `sCode` and `sMsg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `sCode`.
    pub code: String,
    /// `sMsg`.
    pub msg: String,
}

fn refuse(code: &str, msg: impl Into<String>) -> Refusal {
    Refusal { code: code.into(), msg: msg.into() }
}

impl From<VenueError> for Refusal {
    fn from(e: VenueError) -> Self {
        match e {
            VenueError::Rejected { code, message } => Refusal { code, msg: message },
            VenueError::Unavailable(why) => refuse("50001", format!("Service temporarily unavailable: {why}")),
            VenueError::Withdrawn => refuse("50001", "Service temporarily unavailable: withdrawn".to_string()),
        }
    }
}

/// An accepted order request: the ids OKX answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Exchange order id.
    pub ord_id: String,
    /// Client order id as given (`""` when none).
    pub cl_ord_id: String,
    /// Tag as given.
    pub tag: String,
}

/// A new order as parsed from a request.
#[derive(Debug, Clone)]
pub struct PlaceRequest {
    /// Instrument symbol.
    pub inst_id: String,
    /// Trade mode.
    pub td_mode: String,
    /// Client order id, when given.
    pub cl_ord_id: String,
    /// Tag, when given.
    pub tag: String,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderKind,
    /// Limit price.
    pub px: Option<Decimal>,
    /// Size.
    pub sz: Decimal,
    /// Reduce-only.
    pub reduce_only: bool,
    /// `base_ccy` / `quote_ccy` for spot market orders.
    pub tgt_ccy: String,
    /// `posSide`: `""`/`net`, or `long`/`short` in long/short mode.
    pub pos_side: String,
}

/// How the account behind a key trades: OKX's account mode and position mode, which decide
/// the `tdMode` and `posSide` each order must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountModes {
    /// `acctLv`.
    pub level: AccountLevel,
    /// `posMode`.
    pub positions: PositionMode,
}

impl Default for AccountModes {
    /// What the simulator was before modes: futures mode, net positions.
    fn default() -> Self {
        Self { level: AccountLevel::Futures, positions: PositionMode::Net }
    }
}

struct OrderRecord {
    details: OrderDetails,
    internal_id: String,
    instrument: InstrumentId,
    /// Value filled so far (for the average price between reports).
    filled_value: Decimal,
    /// What the last `orders` push showed, so each change is pushed once.
    pushed: Option<Pushed>,
}

/// (state, cumulative fill, price, size) of an `orders` push.
type Pushed = (OrderState, Decimal, Option<Decimal>, Option<Decimal>);

fn pushed(d: &OrderDetails) -> Pushed {
    (d.state, d.acc_fill_sz.unwrap_or_default(), d.px, d.sz)
}

/// One fill as the `orders` push reports it.
struct FillFields {
    px: Decimal,
    sz: Decimal,
    trade_id: String,
    fee: Decimal,
    maker: bool,
    ts: i64,
}

#[derive(Default)]
struct Records {
    orders: HashMap<String, OrderRecord>,
    /// Internal (venue) client id → ordId.
    by_internal: HashMap<String, String>,
    /// The user's clOrdId → the newest ordId that carried it.
    by_client: HashMap<String, String>,
    finished: VecDeque<String>,
    /// Orders not finished: ordId → instrument.
    open: HashMap<String, InstrumentId>,
    open_per_instrument: HashMap<InstrumentId, usize>,
    fills: VecDeque<okx::Fill>,
    next_bill: u64,
    next_internal: u64,
    balances: BTreeMap<String, BalanceReport>,
    /// Swap positions by instrument and side (net mode: `Net`; long/short mode: `Long` and
    /// `Short`), kept from fills, with when each opened.
    positions: BTreeMap<(InstrumentId, PositionSide), (PositionReport, i64)>,
    stats: HashMap<InstrumentId, Stats24h>,
    /// `cancel-all-after` deadlines (ms) by tag (`""`: every order).
    dead_man: BTreeMap<String, i64>,
    /// Bills and what `fills-history` adds to fills.
    ledger: ledger::Ledger,
}

/// The simulated exchange behind the OKX-compatible server.
pub struct Exchange {
    venue: Arc<SimVenue>,
    specs: Vec<InstrumentSpec>,
    by_symbol: HashMap<String, InstrumentId>,
    records: Mutex<Records>,
    events: Mutex<mpsc::UnboundedReceiver<VenueEvent>>,
    feed: Feed,
    /// Candles and public trades, for the market history endpoints.
    history: Mutex<history::MarketHistory>,
    /// (maker, taker) fee rates the venue charges.
    fees: (Decimal, Decimal),
    /// The venue's clock (`Venue::clock`), read for every timestamp the server writes.
    clock: Clock,
}

/// OKX's checks of `tdMode` and `posSide` for an account's modes; the position a swap order
/// trades (`None` for spot, which has no position).
fn trade_mode_check(
    spec: &InstrumentSpec,
    req: &PlaceRequest,
    modes: AccountModes,
) -> Result<Option<PositionSide>, Refusal> {
    let td = req.td_mode.as_str();
    match spec.kind {
        InstrumentKind::Spot => {
            let ok = match modes.level {
                AccountLevel::Spot => td == "cash",
                // Futures mode trades spot for cash, or on margin.
                AccountLevel::Futures => matches!(td, "cash" | "cross" | "isolated"),
                // The margin modes margin spot too: `cash` is refused.
                AccountLevel::MultiCurrency | AccountLevel::PortfolioMargin => matches!(td, "cross" | "isolated"),
            };
            if !ok {
                return Err(refuse("51000", "Parameter tdMode error"));
            }
            Ok(None)
        }
        InstrumentKind::Swap => {
            if !modes.level.trades_derivatives() {
                return Err(refuse("51010", "You can't complete this request under your current account mode."));
            }
            if !matches!(td, "cross" | "isolated") {
                return Err(refuse("51000", "Parameter tdMode error"));
            }
            let named = (req.pos_side.is_empty() || ["net", "long", "short"].contains(&req.pos_side.as_str()))
                .then(|| position_side(&req.pos_side));
            match (modes.positions, named) {
                (PositionMode::Net, Some(PositionSide::Net)) => Ok(Some(PositionSide::Net)),
                (PositionMode::LongShort, Some(leg @ (PositionSide::Long | PositionSide::Short))) => Ok(Some(leg)),
                _ => Err(refuse("51000", "Parameter posSide error")),
            }
        }
    }
}

/// Whether an order on `leg` closes it (long/short mode: a sell of the long, a buy of the short).
fn closes(leg: PositionSide, side: Side) -> bool {
    matches!((leg, side), (PositionSide::Long, Side::Sell) | (PositionSide::Short, Side::Buy))
}

pub use tradebox_okx::model::TAG_TIMERS;

fn inst_type(kind: InstrumentKind) -> &'static str {
    match kind {
        InstrumentKind::Spot => "SPOT",
        InstrumentKind::Swap => "SWAP",
    }
}

fn state(status: OrderStatus) -> OrderState {
    match status {
        OrderStatus::Live => OrderState::Live,
        OrderStatus::PartiallyFilled => OrderState::PartiallyFilled,
        OrderStatus::Filled => OrderState::Filled,
        OrderStatus::Canceled | OrderStatus::Rejected => OrderState::Canceled,
    }
}

/// OKX ids and client ids: 1-32 ASCII letters and digits.
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Exchange {
    /// Wraps `venue`, taking its event stream.
    pub fn new(venue: Arc<SimVenue>) -> Option<Arc<Self>> {
        let events = venue.take_events()?;
        let specs = venue.instruments();
        let by_symbol = specs.iter().map(|s| (s.symbol.clone(), s.id)).collect();
        let fees = venue.fee_rates();
        let clock = venue.clock();
        let feed = Feed::new(clock.clone());
        let exchange = Arc::new(Self {
            venue,
            clock,
            specs,
            by_symbol,
            records: Mutex::new(Records { next_bill: 1_000_000, ..Records::default() }),
            events: Mutex::new(events),
            feed,
            history: Mutex::new(history::MarketHistory::default()),
            fees,
        });
        Some(exchange)
    }

    /// Seeds the balances shown before the first change.
    pub async fn seed(&self) {
        if let Ok(balances) = self.venue.balances().await {
            let mut r = self.records.lock();
            for b in balances {
                r.balances.insert(b.currency.clone(), b);
            }
        }
    }

    /// The clock the simulator reads: its venue's, so the server's timestamps and the venue's
    /// agree.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// What the WebSocket side pushes.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// The venue underneath (for stepping the market).
    pub fn venue(&self) -> &Arc<SimVenue> {
        &self.venue
    }

    /// Every instrument.
    pub fn specs(&self) -> &[InstrumentSpec] {
        &self.specs
    }

    /// An instrument by symbol.
    pub fn spec(&self, symbol: &str) -> Option<&InstrumentSpec> {
        self.by_symbol.get(symbol).and_then(|id| self.specs.get(*id as usize - 1))
    }

    /// `instIdCode` of an instrument.
    pub fn inst_id_code(spec: &InstrumentSpec) -> u64 {
        INST_ID_CODE_BASE + u64::from(spec.id)
    }

    /// An instrument by `instIdCode`.
    pub fn spec_by_code(&self, code: u64) -> Option<&InstrumentSpec> {
        let id = code.checked_sub(INST_ID_CODE_BASE)?;
        self.specs.iter().find(|s| u64::from(s.id) == id)
    }

    /// Applies every event the venue has pushed so far.
    pub fn pump(&self) {
        let mut events = self.events.lock();
        self.drain(&mut events);
    }

    fn drain(&self, events: &mut mpsc::UnboundedReceiver<VenueEvent>) {
        let mut r = self.records.lock();
        while let Ok(event) = events.try_recv() {
            r.apply(self, event);
        }
    }

    // ----- public data -----

    /// `/public/instruments` items of one type, with every field OKX documents.
    pub fn instruments_json(&self, kind: &str) -> Vec<Value> {
        self.specs
            .iter()
            .filter(|s| inst_type(s.kind) == kind)
            .map(|s| {
                let swap = s.kind == InstrumentKind::Swap;
                let (base, quote, settle) =
                    if swap { ("", "", s.quote.as_str()) } else { (s.base.as_str(), s.quote.as_str(), "") };
                let ct = |v: String| if swap { v } else { String::new() };
                json!({
                    "instType": inst_type(s.kind), "instId": s.symbol, "instIdCode": Self::inst_id_code(s),
                    "uly": ct(format!("{}-{}", s.base, s.quote)), "instFamily": ct(format!("{}-{}", s.base, s.quote)),
                    "baseCcy": base, "quoteCcy": quote, "settleCcy": settle,
                    "ctVal": ct(s.contract_value.normalize().to_string()), "ctMult": ct("1".into()),
                    "ctValCcy": ct(s.base.clone()), "ctType": ct("linear".into()),
                    "tickSz": s.tick_size.normalize().to_string(), "lotSz": s.lot_size.normalize().to_string(),
                    "minSz": s.min_size.normalize().to_string(),
                    "maxLmtSz": "9999999999", "maxMktSz": if swap { "10000" } else { "1000000" },
                    "maxLmtAmt": "20000000", "maxMktAmt": "1000000", "maxTwapSz": "", "maxIcebergSz": "",
                    "maxTriggerSz": "", "maxStopSz": "",
                    "lever": if swap { "100" } else { "10" }, "state": "live", "ruleType": "normal",
                    "listTime": "1606468572000", "expTime": "", "alias": "", "optType": "", "stk": "",
                    "category": "1", "tradeQuoteCcyList": if swap { json!([]) } else { json!([s.quote]) },
                    "upcChg": [],
                })
            })
            .collect()
    }

    /// `/market/ticker` item.
    pub fn ticker_json(&self, spec: &InstrumentSpec) -> Option<Value> {
        self.pump();
        let snap = self.venue.snapshot(spec.id, 1)?;
        let r = self.records.lock();
        Some(ticker_value(spec, &snap, r.stats.get(&spec.id)))
    }

    /// `/market/books` item with `depth` levels per side.
    pub fn books_json(&self, spec: &InstrumentSpec, depth: usize) -> Option<Value> {
        let snap = self.venue.snapshot(spec.id, depth)?;
        let level = |(p, s, n): &(Decimal, Decimal, u32)| {
            json!([p.normalize().to_string(), s.normalize().to_string(), "0", n.to_string()])
        };
        Some(json!({
            "asks": snap.asks.iter().map(level).collect::<Vec<_>>(),
            "bids": snap.bids.iter().map(level).collect::<Vec<_>>(),
            "ts": snap.ts_ms.to_string(),
        }))
    }

    // ----- trading -----

    /// Places one order, after OKX's own checks, for an account in `modes`.
    pub fn place(&self, req: PlaceRequest, modes: AccountModes) -> Result<Accepted, Refusal> {
        let spec = self.spec(&req.inst_id).ok_or_else(|| refuse("51001", "Instrument ID does not exist."))?.clone();
        let leg = trade_mode_check(&spec, &req, modes)?;
        if let Some(leg) = leg.filter(|l| closes(*l, req.side)) {
            // Long/short mode: a close needs that much of the position (51169 is OKX's code
            // for closing a side with no position; for a close larger than the position it is
            // the simulator's choice).
            let held = self.records.lock().positions.get(&(spec.id, leg)).map_or(Decimal::ZERO, |(p, _)| p.size.abs());
            if held < req.sz {
                return Err(refuse(
                    "51169",
                    "Order failed because you don't have any positions in this direction for this contract to reduce or close.",
                ));
            }
        }
        if !req.cl_ord_id.is_empty() && !valid_client_id(&req.cl_ord_id) {
            return Err(refuse("51000", "Parameter clOrdId error"));
        }
        if !req.tag.is_empty() && (req.tag.len() > 16 || !req.tag.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return Err(refuse("51000", "Parameter tag error"));
        }
        if req.kind != OrderKind::Market && req.px.is_none_or(|p| p <= Decimal::ZERO) {
            return Err(refuse("51000", "Parameter px error"));
        }
        if let Some(px) = req.px
            && req.kind != OrderKind::Market
            && !(px / spec.tick_size).fract().is_zero()
        {
            // okx-v5.md §4: the code for an off-tick price is unconfirmed; 51000 is what was seen.
            return Err(refuse("51000", "Parameter px error"));
        }
        let size = self.market_size(&spec, &req)?;
        // Held until the order is recorded, so its events are applied after the record exists.
        let mut events = self.events.lock();
        self.drain(&mut events);
        let internal = {
            let mut r = self.records.lock();
            if !req.cl_ord_id.is_empty()
                && r.by_client
                    .get(&req.cl_ord_id)
                    .and_then(|o| r.orders.get(o))
                    .is_some_and(|o| !o.details.state.is_terminal())
            {
                return Err(refuse("51016", "Client order ID already exists."));
            }
            let here = r.open_per_instrument.get(&spec.id).copied().unwrap_or(0);
            if here >= MAX_PENDING_PER_INSTRUMENT || r.open.len() >= MAX_PENDING_PER_ACCOUNT {
                // okx-v5.md §10: the code for the pending-order cap is unconfirmed.
                return Err(refuse("51025", "Order count exceeds the limit."));
            }
            r.next_internal += 1;
            format!("sim{}", r.next_internal)
        };
        let order = NewOrder {
            client_id: internal.clone(),
            instrument: spec.id,
            side: req.side,
            kind: req.kind,
            price: req.px.filter(|_| req.kind != OrderKind::Market),
            size,
            // Long/short mode has no reduce-only: a close is what its posSide says (checked
            // above); the venue below keeps one net position.
            reduce_only: req.reduce_only && leg == Some(PositionSide::Net),
            leg: PositionSide::Net,
            origin: None,
        };
        let ts = self.clock().now_ms();
        let ack = self.venue.place_now(order)?;
        {
            let mut r = self.records.lock();
            let details = OrderDetails {
                inst_type: inst_type(spec.kind).into(),
                inst_id: spec.symbol.clone(),
                ord_id: ack.venue_id.clone(),
                cl_ord_id: req.cl_ord_id.clone(),
                tag: req.tag.clone(),
                px: req.px.filter(|_| req.kind != OrderKind::Market),
                sz: Some(size),
                ord_type: req.kind.into(),
                side: req.side,
                pos_side: leg.map_or("", pos_side).into(),
                td_mode: req.td_mode.clone(),
                acc_fill_sz: Some(Decimal::ZERO),
                fill_px: None,
                fill_sz: None,
                trade_id: String::new(),
                avg_px: None,
                state: OrderState::Live,
                fee: Some(Decimal::ZERO),
                fee_ccy: spec.quote.clone(),
                reduce_only: req.reduce_only.to_string(),
                cancel_source: String::new(),
                c_time: ts,
                u_time: ts,
            };
            r.by_internal.insert(internal.clone(), ack.venue_id.clone());
            if !req.cl_ord_id.is_empty() {
                r.by_client.insert(req.cl_ord_id.clone(), ack.venue_id.clone());
            }
            r.opened(&ack.venue_id, spec.id);
            r.orders.insert(
                ack.venue_id.clone(),
                OrderRecord {
                    details,
                    internal_id: internal,
                    instrument: spec.id,
                    filled_value: Decimal::ZERO,
                    pushed: None,
                },
            );
        }
        self.drain(&mut events);
        Ok(Accepted { ord_id: ack.venue_id, cl_ord_id: req.cl_ord_id, tag: req.tag })
    }

    /// Spot market buys count `sz` in the quote currency unless `tgtCcy` says base: turn it into
    /// base lots at the best ask (the simulator's approximation of OKX's conversion).
    fn market_size(&self, spec: &InstrumentSpec, req: &PlaceRequest) -> Result<Decimal, Refusal> {
        let quote_sized = spec.kind == InstrumentKind::Spot
            && req.kind == OrderKind::Market
            && (req.tgt_ccy == "quote_ccy" || (req.tgt_ccy.is_empty() && req.side == Side::Buy));
        if !quote_sized {
            return Ok(req.sz);
        }
        let px = match req.side {
            Side::Buy => self.venue.snapshot(spec.id, 1).and_then(|s| s.asks.first().map(|l| l.0)),
            Side::Sell => self.venue.snapshot(spec.id, 1).and_then(|s| s.bids.first().map(|l| l.0)),
        };
        let px = px.filter(|p| *p > Decimal::ZERO).ok_or_else(|| refuse("51000", "Parameter sz error"))?;
        Ok(((req.sz / px) / spec.lot_size).floor() * spec.lot_size)
    }

    fn find(&self, inst_id: &str, ord_id: &str, cl_ord_id: &str) -> Option<(String, String, InstrumentId)> {
        let r = self.records.lock();
        let key = if ord_id.is_empty() { r.by_client.get(cl_ord_id)?.clone() } else { ord_id.to_string() };
        let o = r.orders.get(&key).filter(|o| o.details.inst_id == inst_id)?;
        Some((key, o.internal_id.clone(), o.instrument))
    }

    /// Cancels one order (by `ordId`, which wins, or `clOrdId`).
    pub fn cancel(&self, inst_id: &str, ord_id: &str, cl_ord_id: &str) -> Result<Accepted, Refusal> {
        self.spec(inst_id).ok_or_else(|| refuse("51001", "Instrument ID does not exist."))?;
        self.pump();
        let gone =
            || refuse("51400", "Order cancellation failed as the order has been filled, canceled or does not exist.");
        let (key, internal, _) = self.find(inst_id, ord_id, cl_ord_id).ok_or_else(gone)?;
        self.venue.cancel_now(&internal).map_err(|_| gone())?;
        self.pump();
        let r = self.records.lock();
        let o = r.orders.get(&key).ok_or_else(gone)?;
        Ok(Accepted { ord_id: key, cl_ord_id: o.details.cl_ord_id.clone(), tag: o.details.tag.clone() })
    }

    /// Amends an order's price and/or total size; with `cancel_on_fail` a failed amend cancels it.
    pub fn amend(
        &self,
        inst_id: &str,
        ord_id: &str,
        cl_ord_id: &str,
        new_px: Option<Decimal>,
        new_sz: Option<Decimal>,
        cancel_on_fail: bool,
    ) -> Result<Accepted, Refusal> {
        let spec = self.spec(inst_id).ok_or_else(|| refuse("51001", "Instrument ID does not exist."))?.clone();
        if new_px.is_none() && new_sz.is_none() {
            return Err(refuse("51500", "You must modify the price or size of this order."));
        }
        self.pump();
        let gone =
            || refuse("51503", "Order modification failed as the order has been filled, canceled or does not exist.");
        let (key, internal, _) = self.find(inst_id, ord_id, cl_ord_id).ok_or_else(gone)?;
        let on_grid = new_px.is_none_or(|p| p > Decimal::ZERO && (p / spec.tick_size).fract().is_zero())
            && new_sz.is_none_or(|s| s > Decimal::ZERO && (s / spec.lot_size).fract().is_zero());
        let result = if on_grid {
            self.venue.amend_now(&internal, new_px, new_sz).map_err(Refusal::from)
        } else {
            Err(refuse("51000", if new_px.is_some() { "Parameter newPx error" } else { "Parameter newSz error" }))
        };
        if let Err(refusal) = result {
            if cancel_on_fail {
                let _ = self.venue.cancel_now(&internal);
                self.pump();
            }
            return Err(refusal);
        }
        self.pump();
        let r = self.records.lock();
        let o = r.orders.get(&key).ok_or_else(gone)?;
        Ok(Accepted { ord_id: key, cl_ord_id: o.details.cl_ord_id.clone(), tag: o.details.tag.clone() })
    }

    /// `/trade/order`: by `ordId` or the newest order with `clOrdId`.
    pub fn order(&self, inst_id: &str, ord_id: &str, cl_ord_id: &str) -> Option<OrderDetails> {
        self.pump();
        let (key, _, _) = self.find(inst_id, ord_id, cl_ord_id)?;
        self.records.lock().orders.get(&key).map(|o| o.details.clone())
    }

    /// `/trade/orders-pending`: newest first, filtered, paged by `ordId`.
    pub fn pending(&self, filter: &OrderFilter) -> Vec<OrderDetails> {
        self.pump();
        let r = self.records.lock();
        let mut v: Vec<&OrderDetails> = r
            .open
            .keys()
            .filter_map(|id| r.orders.get(id))
            .map(|o| &o.details)
            .filter(|d| !d.state.is_terminal())
            .filter(|d| filter.inst_type.is_empty() || d.inst_type == filter.inst_type)
            .filter(|d| filter.inst_id.is_empty() || d.inst_id == filter.inst_id)
            .filter(|d| {
                filter.state.is_empty() || serde_json::to_value(d.state).is_ok_and(|s| s == filter.state.as_str())
            })
            .collect();
        v.sort_by_key(|d| std::cmp::Reverse(d.ord_id.parse::<u128>().unwrap_or(0)));
        page(v, filter, |d| d.ord_id.parse::<u128>().unwrap_or(0)).into_iter().cloned().collect()
    }

    /// `/trade/fills`: newest first, filtered, paged by `billId`.
    pub fn fills(&self, filter: &OrderFilter) -> Vec<okx::Fill> {
        self.pump();
        let r = self.records.lock();
        let v: Vec<&okx::Fill> = r
            .fills
            .iter()
            .rev()
            .filter(|f| filter.inst_type.is_empty() || f.inst_type == filter.inst_type)
            .filter(|f| filter.inst_id.is_empty() || f.inst_id == filter.inst_id)
            .filter(|f| filter.ord_id.is_empty() || f.ord_id == filter.ord_id)
            .collect();
        page(v, filter, |f| f.bill_id.parse::<u128>().unwrap_or(0)).into_iter().cloned().collect()
    }

    /// `/account/balance` item (all currencies, or those named).
    pub fn balance_json(&self, ccys: &[&str]) -> Value {
        self.pump();
        let r = self.records.lock();
        let ts = self.clock().now_ms().to_string();
        let details: Vec<Value> = r
            .balances
            .values()
            .filter(|b| ccys.is_empty() || ccys.contains(&b.currency.as_str()))
            .map(|b| balance_detail(b, &ts))
            .collect();
        json!({"totalEq": "", "adjEq": "", "isoEq": "0", "imr": "0", "mmr": "0", "mgnRatio": "",
               "notionalUsd": "0", "ordFroz": "", "upl": "0", "uTime": ts, "details": details})
    }

    /// `/account/positions` items (non-zero swap positions, one row per side in long/short
    /// mode).
    pub fn positions_json(&self, inst_id: &str) -> Vec<Value> {
        self.pump();
        let r = self.records.lock();
        r.positions
            .values()
            .filter(|(p, _)| !p.size.is_zero())
            .filter_map(|(p, c_time)| {
                let spec = self.specs.get(p.instrument as usize - 1)?;
                (inst_id.is_empty() || spec.symbol == inst_id).then(|| position_value(self, spec, p, *c_time))
            })
            .collect()
    }

    /// Arms (or with 0 disarms) the dead man's switch for `tag`; returns the trigger time.
    /// OKX keeps at most [`TAG_TIMERS`] tag timers per sub-account: one more is refused
    /// (51071; the message is the simulator's).
    pub fn cancel_all_after(&self, timeout_s: u32, tag: &str) -> Result<i64, Refusal> {
        let mut r = self.records.lock();
        if timeout_s == 0 {
            r.dead_man.remove(tag);
            return Ok(0);
        }
        let tags = r.dead_man.keys().filter(|t| !t.is_empty()).count();
        if !tag.is_empty() && !r.dead_man.contains_key(tag) && tags >= TAG_TIMERS {
            return Err(refuse(
                tradebox_okx::error::codes::TAG_TIMERS_FULL,
                format!("The number of tag-level cancel all after timers has reached the upper limit of {TAG_TIMERS}."),
            ));
        }
        let at = self.clock().now_ms() + i64::from(timeout_s) * 1_000;
        r.dead_man.insert(tag.to_string(), at);
        Ok(at)
    }

    /// The tags whose `cancel-all-after` timer is armed (`""`: the account's own).
    pub fn dead_man_tags(&self) -> Vec<String> {
        self.records.lock().dead_man.keys().cloned().collect()
    }

    /// Makes the `cancel-all-after` timer of `tag` due now (tests cannot wait OKX's 10 s
    /// minimum).
    #[cfg(test)]
    pub fn expire_dead_man_for_test(&self, tag: &str) {
        if let Some(at) = self.records.lock().dead_man.get_mut(tag) {
            *at = self.clock().now_ms() - 1;
        }
    }

    /// Fires expired `cancel-all-after` timers: cancels every pending order with the tag (or
    /// every pending order for the untagged timer). Returns how many orders it cancelled.
    pub fn fire_dead_man(&self) -> usize {
        let now = self.clock().now_ms();
        let expired: Vec<String> = {
            let mut r = self.records.lock();
            let tags: Vec<String> = r.dead_man.iter().filter(|(_, at)| **at <= now).map(|(t, _)| t.clone()).collect();
            tags.iter().for_each(|t| {
                r.dead_man.remove(t);
            });
            tags
        };
        if expired.is_empty() {
            return 0;
        }
        self.pump();
        let targets: Vec<String> = {
            let r = self.records.lock();
            r.open
                .keys()
                .filter_map(|id| r.orders.get(id))
                .filter(|o| expired.iter().any(|t| t.is_empty() || *t == o.details.tag))
                .map(|o| o.internal_id.clone())
                .collect()
        };
        for internal in &targets {
            let _ = self.venue.cancel_now(internal);
        }
        self.pump();
        tracing::info!(orders = targets.len(), tags = ?expired, "sim: cancel-all-after fired");
        targets.len()
    }
}

/// An `orders` push item: the order as `/trade/order` shows it plus this update's fill fields
/// (`fillSz` "0" when the update is not a fill). Returns its instType too.
fn order_push(o: &OrderRecord, fill: Option<&FillFields>) -> (&'static str, Value) {
    let mut push = serde_json::to_value(&o.details).unwrap_or_default();
    let s = |d: Decimal| d.normalize().to_string();
    if let Some(obj) = push.as_object_mut() {
        let text = |v: &str| Value::String(v.to_string());
        let (px, sz, trade, fee, exec, ts) = match fill {
            Some(f) => {
                (s(f.px), s(f.sz), f.trade_id.clone(), s(f.fee), if f.maker { "M" } else { "T" }, f.ts.to_string())
            }
            None => (String::new(), "0".into(), String::new(), "0".into(), "", String::new()),
        };
        obj.insert("fillPx".into(), text(&px));
        obj.insert("fillSz".into(), text(&sz));
        obj.insert("tradeId".into(), text(&trade));
        obj.insert("fillFee".into(), text(&fee));
        obj.insert("fillFeeCcy".into(), text(if fill.is_some() { &o.details.fee_ccy } else { "" }));
        obj.insert("execType".into(), text(exec));
        obj.insert("fillTime".into(), text(&ts));
        if o.details.avg_px.is_none() {
            // The WS push sends "0" where REST sends "" (okx-v5.md §3).
            obj.insert("avgPx".into(), text("0"));
        }
        for (k, v) in [
            ("amendResult", ""),
            ("reqId", ""),
            ("amendSource", ""),
            ("code", "0"),
            ("msg", ""),
            ("category", "normal"),
        ] {
            obj.insert(k.into(), text(v));
        }
    }
    (if o.details.inst_type == "SWAP" { "SWAP" } else { "SPOT" }, push)
}

/// One currency of `/account/balance` (and the WS `account` push).
fn balance_detail(b: &BalanceReport, ts: &str) -> Value {
    let s = |d: Decimal| d.normalize().to_string();
    json!({
        "ccy": b.currency, "eq": s(b.total), "cashBal": s(b.total), "availBal": s(b.available),
        "availEq": s(b.available), "frozenBal": s(b.frozen), "ordFrozen": s(b.frozen),
        "disEq": "", "eqUsd": "", "upl": "0", "liab": "0", "isoEq": "0", "uTime": ts,
    })
}

/// A position as `/account/positions` (and the WS `positions` push) shows it.
fn position_value(ex: &Exchange, spec: &InstrumentSpec, p: &PositionReport, c_time: i64) -> Value {
    let mark = ex.venue.snapshot(spec.id, 1).and_then(|s| match (s.bids.first(), s.asks.first()) {
        (Some(b), Some(a)) => Some((b.0 + a.0) / Decimal::TWO),
        _ => s.last,
    });
    let upl = mark.map(|m| ((m - p.avg_price) * p.size * spec.contract_value).round_dp(8));
    let s = |d: Option<Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_default();
    json!({
        "instType": "SWAP", "instId": spec.symbol, "mgnMode": "cross", "posId": format!("{}", 7_000_000 + spec.id),
        "posSide": pos_side(p.side),
        // Long/short mode reports each side's size as a positive number.
        "pos": s(Some(if p.side == PositionSide::Net { p.size } else { p.size.abs() })),
        "availPos": s(Some(p.size.abs())),
        "avgPx": s(Some(p.avg_price)), "markPx": s(mark), "upl": s(upl), "uplRatio": "",
        "lever": crate::venue::account::LEVERAGE.to_string(), "liqPx": "", "margin": "",
        "imr": "", "mmr": "", "mgnRatio": "", "notionalUsd": "", "ccy": spec.quote,
        "realizedPnl": "", "fee": "", "fundingFee": "", "cTime": c_time.to_string(),
        "uTime": ex.clock().now_ms().to_string(),
    })
}

/// Filters and paging of the list endpoints.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// `instType`.
    pub inst_type: String,
    /// `instId`.
    pub inst_id: String,
    /// `ordId` (fills).
    pub ord_id: String,
    /// `state` (pending orders).
    pub state: String,
    /// Records older than this id.
    pub after: Option<u128>,
    /// Records newer than this id.
    pub before: Option<u128>,
    /// At most this many (≤ 100).
    pub limit: usize,
}

/// Newest-first paging: `after` keeps older records, `before` newer ones, then `limit`.
fn page<T>(newest_first: Vec<T>, f: &OrderFilter, id: impl Fn(&T) -> u128) -> Vec<T> {
    let mut v: Vec<T> = newest_first
        .into_iter()
        .filter(|x| f.after.is_none_or(|a| id(x) < a))
        .filter(|x| f.before.is_none_or(|b| id(x) > b))
        .collect();
    let limit = if f.limit == 0 { 100 } else { f.limit.min(100) };
    if f.before.is_some() && f.after.is_none() {
        // Newer than a cursor: the ones closest to it.
        let skip = v.len().saturating_sub(limit);
        v.drain(..skip);
    } else {
        v.truncate(limit);
    }
    v
}

impl Records {
    fn apply(&mut self, ex: &Exchange, event: VenueEvent) {
        match event {
            VenueEvent::Order(report) => {
                if let Some(push) = self.on_order(&report) {
                    ex.feed.private("orders", push.0, &push.1, push.2);
                }
            }
            VenueEvent::Fill(fill) => {
                let Some(ord_id) = self.by_internal.get(&fill.client_id).cloned() else { return };
                let Some(spec) = ex.specs.get(fill.instrument as usize - 1) else { return };
                let Some(o) = self.orders.get_mut(&ord_id) else { return };
                let charged = -fill.fee;
                // The order as it stands after this fill, pushed now: one push per fill.
                let acc = o.details.acc_fill_sz.unwrap_or_default() + fill.size;
                o.filled_value += fill.price * fill.size;
                o.details.acc_fill_sz = Some(acc);
                o.details.avg_px = (!acc.is_zero()).then(|| (o.filled_value / acc).round_dp(12).normalize());
                o.details.state = if o.details.sz.is_some_and(|sz| acc >= sz) {
                    OrderState::Filled
                } else {
                    OrderState::PartiallyFilled
                };
                o.details.u_time = fill.ts_ms;
                o.details.fill_px = Some(fill.price);
                o.details.fill_sz = Some(fill.size);
                o.details.trade_id = fill.trade_id.clone();
                o.details.fee = Some(o.details.fee.unwrap_or_default() + charged);
                o.details.fee_ccy = fill.fee_currency.clone();
                let fields = FillFields {
                    px: fill.price,
                    sz: fill.size,
                    trade_id: fill.trade_id.clone(),
                    fee: charged,
                    maker: fill.liquidity == Liquidity::Maker,
                    ts: fill.ts_ms,
                };
                let (kind, item) = order_push(o, Some(&fields));
                o.pushed = Some(pushed(&o.details));
                ex.feed.private("orders", kind, &spec.symbol, item);
                let (cl_ord_id, tag, pos_side) =
                    (o.details.cl_ord_id.clone(), o.details.tag.clone(), o.details.pos_side.clone());
                let td_mode = o.details.td_mode.clone();
                self.settle(&ord_id);
                if spec.kind == InstrumentKind::Swap {
                    self.move_position(ex, spec, position_side(&pos_side), fill.side.sign() * fill.size, fill.price);
                }
                self.next_bill += 1;
                let record = okx::Fill {
                    inst_type: inst_type(spec.kind).into(),
                    inst_id: spec.symbol.clone(),
                    trade_id: fill.trade_id.clone(),
                    ord_id,
                    cl_ord_id,
                    bill_id: self.next_bill.to_string(),
                    tag,
                    fill_px: fill.price,
                    fill_sz: fill.size,
                    side: fill.side,
                    pos_side,
                    exec_type: if fill.liquidity == Liquidity::Maker { "M" } else { "T" }.into(),
                    fee_ccy: fill.fee_currency.clone(),
                    fee: Some(charged),
                    fill_time: fill.ts_ms,
                    ts: fill.ts_ms,
                };
                self.write_bills(spec, &fill, &record, &td_mode, ex.fees);
                if self.fills.len() >= FILLS_KEPT {
                    self.fills.pop_front();
                }
                self.fills.push_back(record);
                let st = self.stats.entry(fill.instrument).or_default();
                st.open.get_or_insert(fill.price);
                st.high = Some(st.high.map_or(fill.price, |h| h.max(fill.price)));
                st.low = Some(st.low.map_or(fill.price, |l| l.min(fill.price)));
                st.last_size = Some(fill.size);
            }
            VenueEvent::Balance(b) => {
                let ts = ex.clock().now_ms().to_string();
                let detail = balance_detail(&b, &ts);
                let data = json!({"uTime": ts, "totalEq": "", "isoEq": "0", "adjEq": "", "ordFroz": "",
                                  "imr": "0", "mmr": "0", "notionalUsd": "", "mgnRatio": "", "details": [detail]});
                ex.feed.private("account", "", &b.currency, data);
                self.balances.insert(b.currency.clone(), b);
            }
            // Positions are kept from fills, per side (the venue below knows only one net
            // position per instrument).
            VenueEvent::Position(_) => {}
            VenueEvent::Market(tradebox_core::MarketEvent::Book { instrument, .. }) => {
                if let (Some(spec), Some(snap)) =
                    (ex.specs.get(instrument as usize - 1), ex.venue.snapshot(instrument, BOOK_DEPTH))
                {
                    ex.feed.on_book(spec, &snap, self.stats.get(&instrument));
                }
            }
            VenueEvent::Market(tradebox_core::MarketEvent::Trade { instrument, price, size, taker_side, ts_ms }) => {
                let (Ok(price), Ok(size)) = (Decimal::try_from(price), Decimal::try_from(size)) else { return };
                let Some(spec) = ex.specs.get(instrument as usize - 1) else { return };
                let price = price.round_dp(spec.tick_size.scale());
                let st = self.stats.entry(instrument).or_default();
                st.open.get_or_insert(price);
                st.high = Some(st.high.map_or(price, |h| h.max(price)));
                st.low = Some(st.low.map_or(price, |l| l.min(price)));
                st.volume += size.round_dp(spec.lot_size.scale());
                st.last_size = Some(size.round_dp(spec.lot_size.scale()));
                ex.history.lock().on_trade(spec, price, size.round_dp(spec.lot_size.scale()), taker_side, ts_ms);
                ex.feed.on_trade(spec, price, size.round_dp(spec.lot_size.scale()), taker_side, ex.clock().now_ms());
            }
            VenueEvent::Market(_) | VenueEvent::Connectivity { .. } | VenueEvent::Alarm(_) => {}
        }
    }

    /// Applies an order report; returns the `orders` push it makes (instType, instId, item),
    /// unless a fill already pushed this state.
    fn on_order(&mut self, report: &OrderReport) -> Option<(&'static str, String, Value)> {
        let ord_id = self.by_internal.get(&report.client_id).cloned()?;
        let o = self.orders.get_mut(&ord_id)?;
        o.details.state = state(report.status);
        o.details.acc_fill_sz = Some(report.filled);
        o.details.avg_px = report.avg_price;
        o.details.sz = Some(report.size);
        if report.kind != OrderKind::Market {
            o.details.px = report.price;
        }
        o.details.u_time = report.ts_ms;
        if report.status == OrderStatus::Canceled {
            // "1": cancelled by the user; "0"-class: by the system (IOC/FOK/post-only rules).
            o.details.cancel_source = if report.reason.is_some() { "0".into() } else { "1".into() };
        }
        let now = pushed(&o.details);
        let item = (o.pushed != Some(now)).then(|| {
            o.pushed = Some(now);
            let (kind, item) = order_push(o, None);
            (kind, o.details.inst_id.clone(), item)
        });
        self.settle(&ord_id);
        item
    }

    /// Applies a fill of `qty` (signed) at `price` to one position and pushes it.
    fn move_position(&mut self, ex: &Exchange, spec: &InstrumentSpec, leg: PositionSide, qty: Decimal, price: Decimal) {
        let key = (spec.id, leg);
        let (mut p, c_time) = self.positions.remove(&key).unwrap_or_else(|| {
            let flat = PositionReport { instrument: spec.id, side: leg, size: Decimal::ZERO, avg_price: Decimal::ZERO };
            (flat, ex.clock().now_ms())
        });
        let c_time = if p.size.is_zero() { ex.clock().now_ms() } else { c_time };
        tradebox_core::apply_net_fill(&mut p.size, &mut p.avg_price, qty, price);
        ex.feed.private("positions", inst_type(spec.kind), &spec.symbol, position_value(ex, spec, &p, c_time));
        self.positions.insert(key, (p, c_time));
    }

    /// Records a new order as open.
    fn opened(&mut self, ord_id: &str, instrument: InstrumentId) {
        self.open.insert(ord_id.to_string(), instrument);
        *self.open_per_instrument.entry(instrument).or_default() += 1;
    }

    /// Moves an order that just finished out of the open set; keeps the newest finished
    /// orders for queries and forgets older ones.
    fn settle(&mut self, ord_id: &str) {
        let done = self.orders.get(ord_id).is_some_and(|o| o.details.state.is_terminal());
        if !done {
            return;
        }
        let Some(instrument) = self.open.remove(ord_id) else { return };
        if let Some(n) = self.open_per_instrument.get_mut(&instrument) {
            *n = n.saturating_sub(1);
        }
        self.finished.push_back(ord_id.to_string());
        while self.finished.len() > FINISHED_KEPT {
            if let Some(old) = self.finished.pop_front()
                && let Some(rec) = self.orders.remove(&old)
            {
                self.by_internal.remove(&rec.internal_id);
                if self.by_client.get(&rec.details.cl_ord_id) == Some(&old) {
                    self.by_client.remove(&rec.details.cl_ord_id);
                }
            }
        }
    }
}

/// Decimal to f64 for approximate figures.
pub fn approx(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}
