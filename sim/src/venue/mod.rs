//! The in-process simulated venue: a price-time matching engine per instrument, a simulated
//! account, and a seeded synthetic market whose liquidity and taker flow trade against our
//! resting orders. It lets the host run with no network and no keys, and backs the
//! OKX-compatible server ([`crate::server`]). Rejections use OKX's codes and messages.
//!
//! Named `venue` because that is what it is to the host: one more implementation of
//! [`tradebox_core::Venue`], held like the OKX venue; its parts sit under it because nothing
//! else holds them: they are its insides.
//!
//! - [`book`]: the order book and matching;
//! - [`account`]: balances, reservations, swap positions;
//! - [`replay`]: the mid from recorded OKX candles or trades instead of the random walk;
//! - this file: configuration, order handling, the market step, events.
//!
//! Every change is pushed on the event stream before the request that caused it returns.
//! Every timestamp it writes reads the [`Clock`] it was given ([`SimVenue::with_clock`]).

pub mod account;
pub mod book;
pub mod replay;

use account::{Account, LEVERAGE};
use book::{Book, Match, Owner};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;
use tradebox_core::{
    BalanceReport, Clock, FillReport, InstrumentId, InstrumentKind, InstrumentSpec, Liquidity, MarketEvent, NewOrder,
    OrderKind, OrderReport, OrderStatus, Origin, PlaceAck, PositionReport, PositionSide, Side, Venue, VenueError,
    VenueEvent,
};

/// Levels per side in book events.
const BOOK_LEVELS: usize = 5;

/// One simulated instrument.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimInstrument {
    /// Symbol, e.g. `BTC-USDT`.
    pub symbol: String,
    /// Spot or swap.
    pub kind: InstrumentKind,
    /// Base currency.
    pub base: String,
    /// Quote (settlement) currency.
    pub quote: String,
    /// Price increment.
    pub tick_size: Decimal,
    /// Size increment.
    pub lot_size: Decimal,
    /// Minimum order size.
    pub min_size: Decimal,
    /// Base per contract (1 for spot).
    #[serde(default = "one")]
    pub contract_value: Decimal,
    /// Opening mid price.
    pub start_price: f64,
    /// Standard deviation of the mid's move per step, basis points.
    #[serde(default = "default_volatility")]
    pub volatility_bps: f64,
    /// Synthetic spread in ticks.
    #[serde(default = "default_spread")]
    pub spread_ticks: i64,
    /// Typical synthetic size per level (in order-size units).
    pub level_size: Decimal,
    /// Chance per step of a synthetic market order.
    #[serde(default = "default_taker")]
    pub taker_probability: f64,
    /// Replay the mid from this file of OKX `market/candles` or `market/trades` answers instead
    /// of the random walk (see [`replay`]).
    #[serde(default)]
    pub replay: Option<std::path::PathBuf>,
}

fn one() -> Decimal {
    Decimal::ONE
}
fn default_volatility() -> f64 {
    2.0
}
fn default_spread() -> i64 {
    2
}
fn default_taker() -> f64 {
    0.6
}

/// The simulated venue's settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Seed of the market's random walk and flow.
    pub seed: u64,
    /// Market step interval when driven by [`SimVenue::spawn`], ms.
    pub step_ms: u64,
    /// Fee rate of resting orders.
    pub maker_fee: Decimal,
    /// Fee rate of aggressive orders.
    pub taker_fee: Decimal,
    /// Synthetic levels per side.
    pub depth: usize,
    /// Instruments; ids are 1..=n in this order.
    pub instruments: Vec<SimInstrument>,
    /// Opening balances.
    pub balances: BTreeMap<String, Decimal>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::demo()
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

impl SimConfig {
    /// The demo market: BTC-USDT and ETH-USDT spot, BTC-USDT-SWAP, with OKX's rules.
    pub fn demo() -> Self {
        let spot =
            |symbol: &str, base: &str, tick: &str, lot: &str, min: &str, start: f64, level: &str| SimInstrument {
                symbol: symbol.into(),
                kind: InstrumentKind::Spot,
                base: base.into(),
                quote: "USDT".into(),
                tick_size: dec(tick),
                lot_size: dec(lot),
                min_size: dec(min),
                contract_value: Decimal::ONE,
                start_price: start,
                volatility_bps: default_volatility(),
                spread_ticks: default_spread(),
                level_size: dec(level),
                taker_probability: default_taker(),
                replay: None,
            };
        let swap = SimInstrument {
            symbol: "BTC-USDT-SWAP".into(),
            kind: InstrumentKind::Swap,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: dec("0.1"),
            lot_size: dec("1"),
            min_size: dec("1"),
            contract_value: dec("0.01"),
            start_price: 60_000.0,
            volatility_bps: default_volatility(),
            spread_ticks: default_spread(),
            level_size: dec("50"),
            taker_probability: default_taker(),
            replay: None,
        };
        Self {
            seed: 1,
            step_ms: 100,
            maker_fee: dec("0.0008"),
            taker_fee: dec("0.001"),
            depth: 10,
            instruments: vec![
                spot("BTC-USDT", "BTC", "0.1", "0.00000001", "0.00001", 60_000.0, "0.5"),
                spot("ETH-USDT", "ETH", "0.01", "0.000001", "0.001", 3_000.0, "5"),
                swap,
            ],
            balances: [("USDT", "100000"), ("BTC", "1"), ("ETH", "10")]
                .into_iter()
                .map(|(c, a)| (c.to_string(), dec(a)))
                .collect(),
        }
    }
}

/// Exact top levels of a simulated book: (price, size, resting orders), best first.
#[derive(Debug, Clone, PartialEq)]
pub struct BookSnapshot {
    /// Bids, highest first.
    pub bids: Vec<(Decimal, Decimal, u32)>,
    /// Asks, lowest first.
    pub asks: Vec<(Decimal, Decimal, u32)>,
    /// Last trade price.
    pub last: Option<Decimal>,
    /// When, ms.
    pub ts_ms: i64,
}

/// A bad simulator configuration.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A replay file is unusable.
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
    /// An instrument's settings are invalid.
    #[error("simulated instrument {symbol}: {problem}")]
    Instrument {
        /// Which.
        symbol: String,
        /// What is wrong.
        problem: String,
    },
}

fn validate(config: &SimConfig) -> Result<(), SimError> {
    let mut seen = BTreeSet::new();
    for i in &config.instruments {
        let bad = |problem: &str| Err(SimError::Instrument { symbol: i.symbol.clone(), problem: problem.into() });
        if !seen.insert(i.symbol.clone()) {
            return bad("symbol used twice");
        }
        if i.tick_size <= Decimal::ZERO || i.lot_size <= Decimal::ZERO {
            return bad("tick_size and lot_size must be positive");
        }
        if i.min_size <= Decimal::ZERO || !(i.min_size / i.lot_size).fract().is_zero() {
            return bad("min_size must be a positive multiple of lot_size");
        }
        if !i.start_price.is_finite() || i.start_price <= 0.0 {
            return bad("start_price must be positive");
        }
        if i.spread_ticks < 1 || i.level_size <= Decimal::ZERO || i.contract_value <= Decimal::ZERO {
            return bad("spread_ticks, level_size and contract_value must be positive");
        }
    }
    Ok(())
}

struct Instrument {
    spec: InstrumentSpec,
    sim: SimInstrument,
    book: Book,
    mid: f64,
    last: Option<i64>,
    /// Replayed mids and the next one's index.
    replay: Option<(Vec<f64>, usize)>,
}

impl Instrument {
    fn ticks(&self, price: Decimal) -> Option<i64> {
        let q = price / self.spec.tick_size;
        if q.fract().is_zero() { q.to_i64() } else { None }
    }
    fn lots(&self, size: Decimal) -> Option<i64> {
        let q = size / self.spec.lot_size;
        if q.fract().is_zero() { q.to_i64() } else { None }
    }
    fn price(&self, ticks: i64) -> Decimal {
        Decimal::from(ticks) * self.spec.tick_size
    }
    fn size(&self, lots: i64) -> Decimal {
        Decimal::from(lots) * self.spec.lot_size
    }
}

struct Order {
    report: OrderReport,
    price: Option<i64>,
    lots: i64,
    filled: i64,
    value: Decimal,
    /// Still reserved for the unfilled part, and in which currency.
    reserved: Decimal,
    reserve_ccy: String,
}

struct State {
    rng: ChaCha8Rng,
    instruments: Vec<Instrument>,
    orders: HashMap<String, Order>,
    account: Account,
    next_order: u64,
    next_trade: u64,
    events: mpsc::UnboundedSender<VenueEvent>,
    maker_fee: Decimal,
    taker_fee: Decimal,
    depth: usize,
    touched: BTreeSet<String>,
    touched_positions: BTreeSet<InstrumentId>,
    /// What every timestamp the venue writes reads (a clone of the venue's: one source).
    clock: Clock,
}

/// The simulated venue.
pub struct SimVenue {
    state: Mutex<State>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<VenueEvent>>>,
    specs: Vec<InstrumentSpec>,
    step_ms: u64,
    clock: Clock,
}

fn rejected(code: &str, message: &str) -> VenueError {
    VenueError::Rejected { code: code.into(), message: message.into() }
}

impl SimVenue {
    /// A venue for `config`, with its market at the starting prices, on the system clock.
    pub fn new(config: SimConfig) -> Result<Arc<Self>, SimError> {
        Self::with_clock(config, Clock::system())
    }

    /// A venue for `config` whose timestamps (orders, fills, trades, books) read `clock`.
    pub fn with_clock(config: SimConfig, clock: Clock) -> Result<Arc<Self>, SimError> {
        validate(&config)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut replays = Vec::with_capacity(config.instruments.len());
        for sim in &config.instruments {
            replays.push(sim.replay.as_deref().map(replay::load).transpose()?);
        }
        let instruments: Vec<Instrument> = config
            .instruments
            .iter()
            .zip(replays)
            .enumerate()
            .map(|(i, (sim, replay))| Instrument {
                spec: InstrumentSpec {
                    id: i as InstrumentId + 1,
                    symbol: sim.symbol.clone(),
                    kind: sim.kind,
                    base: sim.base.clone(),
                    quote: sim.quote.clone(),
                    tick_size: sim.tick_size,
                    lot_size: sim.lot_size,
                    min_size: sim.min_size,
                    contract_value: if sim.kind == InstrumentKind::Spot { Decimal::ONE } else { sim.contract_value },
                },
                sim: sim.clone(),
                book: Book::default(),
                mid: replay.as_ref().and_then(|r| r.first().copied()).unwrap_or(sim.start_price),
                last: None,
                replay: replay.map(|r| (r, 0)),
            })
            .collect();
        let specs = instruments.iter().map(|i| i.spec.clone()).collect();
        let mut state = State {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            instruments,
            orders: HashMap::new(),
            account: Account::new(config.balances.clone()),
            next_order: 600_000_000_000_000_000,
            next_trade: 900_000_000,
            events: tx,
            maker_fee: config.maker_fee,
            taker_fee: config.taker_fee,
            depth: config.depth.max(1),
            touched: BTreeSet::new(),
            touched_positions: BTreeSet::new(),
            clock: clock.clone(),
        };
        for i in 0..state.instruments.len() {
            state.quote_synthetic(i);
        }
        Ok(Arc::new(Self {
            state: Mutex::new(state),
            receiver: Mutex::new(Some(rx)),
            specs,
            step_ms: config.step_ms,
            clock,
        }))
    }

    /// Advances the synthetic market by one step: moves every mid, refreshes the synthetic
    /// liquidity (which may fill our resting orders), adds random taker flow, publishes data.
    pub fn step(&self) {
        let mut s = self.state.lock();
        for i in 0..s.instruments.len() {
            s.step_instrument(i);
        }
    }

    /// The current top of an instrument's book, exact: `depth` levels per side as (price,
    /// size, resting orders), best first, and the last trade price. What the OKX-compatible
    /// server answers `/market/books` and `/market/ticker` with.
    pub fn snapshot(&self, instrument: InstrumentId, depth: usize) -> Option<BookSnapshot> {
        let s = self.state.lock();
        let inst = &s.instruments[s.index(instrument)?];
        let (bids, asks) = inst.book.top_with_counts(depth);
        let level = |(p, l, n): (i64, i64, u32)| (inst.price(p), inst.size(l), n);
        Some(BookSnapshot {
            bids: bids.into_iter().map(level).collect(),
            asks: asks.into_iter().map(level).collect(),
            last: inst.last.map(|p| inst.price(p)),
            ts_ms: s.clock.now_ms(),
        })
    }

    /// (maker, taker) fee rates, charged on a fill's value (what `account/trade-fee` reports).
    pub fn fee_rates(&self) -> (Decimal, Decimal) {
        let s = self.state.lock();
        (s.maker_fee, s.taker_fee)
    }

    /// [`Venue::place`] without the future: the simulator runs synchronously, and the
    /// OKX-compatible server needs the order's events in its stream before it records more.
    pub fn place_now(&self, order: NewOrder) -> Result<PlaceAck, VenueError> {
        self.state.lock().place(order)
    }

    /// [`Venue::cancel`], synchronously (see [`SimVenue::place_now`]).
    pub fn cancel_now(&self, client_id: &str) -> Result<(), VenueError> {
        self.state.lock().cancel(client_id)
    }

    /// [`Venue::amend`], synchronously (see [`SimVenue::place_now`]).
    pub fn amend_now(
        &self,
        client_id: &str,
        new_price: Option<Decimal>,
        new_size: Option<Decimal>,
    ) -> Result<(), VenueError> {
        self.state.lock().amend(client_id, new_price, new_size)
    }

    /// Steps the market every `step_ms` on the tokio runtime until the venue is dropped or
    /// the handle aborted.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let venue: Weak<Self> = Arc::downgrade(self);
        let period = std::time::Duration::from_millis(self.step_ms.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                match venue.upgrade() {
                    Some(v) => v.step(),
                    None => return,
                }
            }
        })
    }
}

impl State {
    fn emit(&self, event: VenueEvent) {
        // A dropped receiver means nobody listens any more; the venue still works.
        let _ = self.events.send(event);
    }

    fn gaussian(&mut self) -> f64 {
        // Irwin-Hall: the sum of 12 uniforms minus 6 is close to a standard normal.
        (0..12).map(|_| self.rng.random::<f64>()).sum::<f64>() - 6.0
    }

    fn step_instrument(&mut self, i: usize) {
        let z = self.gaussian();
        let inst = &mut self.instruments[i];
        match &mut inst.replay {
            Some((prices, next)) => {
                inst.mid = prices[*next % prices.len()];
                *next = (*next + 1) % prices.len();
            }
            None => inst.mid *= 1.0 + z * inst.sim.volatility_bps / 10_000.0,
        }
        let mut trades = Vec::new();
        self.instruments[i].book.clear_synthetic();
        trades.extend(self.quote_synthetic(i));
        let taker_probability = self.instruments[i].sim.taker_probability;
        if self.rng.random::<f64>() < taker_probability {
            let side = if self.rng.random::<bool>() { Side::Buy } else { Side::Sell };
            let level = self.level_lots(i);
            let lots = (level as f64 * self.rng.random_range(0.2..3.0)) as i64;
            let (matches, _) = self.instruments[i].book.take(side, None, lots.max(1), false, |_, l| l);
            trades.extend(self.settle_makers(side, &matches));
        }
        self.publish(i, trades);
    }

    fn level_lots(&self, i: usize) -> i64 {
        let inst = &self.instruments[i];
        inst.lots(inst.sim.level_size).unwrap_or(1).max(1)
    }

    /// Places fresh synthetic levels around the mid; they trade against our crossing orders.
    fn quote_synthetic(&mut self, i: usize) -> Vec<(Side, Match)> {
        let inst = &self.instruments[i];
        let tick = inst.spec.tick_size.to_f64().unwrap_or(1.0);
        let spread = inst.sim.spread_ticks;
        let bid0 = (inst.mid / tick - spread as f64 / 2.0).floor() as i64;
        let ask0 = bid0 + spread;
        let level = self.level_lots(i);
        let mut trades = Vec::new();
        for k in 0..self.depth as i64 {
            for (side, price) in [(Side::Sell, ask0 + k), (Side::Buy, bid0 - k)] {
                if price <= 0 {
                    continue;
                }
                let lots = ((level as f64) * self.rng.random_range(0.5..1.5)) as i64;
                let (matches, _) = self.instruments[i].book.take(side, Some(price), lots.max(1), false, |_, l| l);
                let traded: i64 = matches.iter().map(|m| m.lots).sum();
                trades.extend(self.settle_makers(side, &matches));
                self.instruments[i].book.rest(side, price, Owner::Synthetic, lots.max(1) - traded);
            }
        }
        trades
    }

    /// Applies fills to our resting orders that a synthetic taker on `taker_side` hit.
    fn settle_makers(&mut self, taker_side: Side, matches: &[Match]) -> Vec<(Side, Match)> {
        for m in matches {
            if let Owner::Ours(id) = &m.maker {
                self.fill(id, m.price, m.lots, Liquidity::Maker);
                self.report(id);
            }
        }
        self.flush_account();
        matches.iter().map(|m| (taker_side, m.clone())).collect()
    }

    fn publish(&mut self, i: usize, trades: Vec<(Side, Match)>) {
        let ts_ms = self.clock.now_ms();
        let inst = &mut self.instruments[i];
        let id = inst.spec.id;
        if let Some((_, m)) = trades.last() {
            inst.last = Some(m.price);
        }
        let f = |d: Decimal| d.to_f64().unwrap_or(0.0);
        let mut out = Vec::with_capacity(trades.len() + 2);
        for (taker_side, m) in &trades {
            out.push(MarketEvent::Trade {
                instrument: id,
                ts_ms,
                price: f(inst.price(m.price)),
                size: f(inst.size(m.lots)),
                taker_side: *taker_side,
            });
        }
        let (bids, asks) = inst.book.top(BOOK_LEVELS);
        let level = |&(p, l): &(i64, i64)| (f(inst.price(p)), f(inst.size(l)));
        let (bid, ask) = (bids.first().map(level).unwrap_or_default(), asks.first().map(level).unwrap_or_default());
        let last = inst.last.map_or(inst.mid, |p| f(inst.price(p)));
        out.push(MarketEvent::Ticker {
            instrument: id,
            ts_ms,
            bid: bid.0,
            bid_size: bid.1,
            ask: ask.0,
            ask_size: ask.1,
            last,
        });
        out.push(MarketEvent::Book {
            instrument: id,
            ts_ms,
            bids: bids.iter().map(level).collect(),
            asks: asks.iter().map(level).collect(),
        });
        for event in out {
            self.emit(VenueEvent::Market(event));
        }
    }

    /// What an order must reserve for `lots` at `price` (none for market buys and swaps, which
    /// are checked per match), and in which currency.
    fn requirement(&self, i: usize, side: Side, kind: OrderKind, price: Option<i64>, lots: i64) -> (Decimal, String) {
        let inst = &self.instruments[i];
        let size = inst.size(lots);
        match (inst.spec.kind, side, price) {
            (InstrumentKind::Spot, Side::Sell, _) => (size, inst.spec.base.clone()),
            (InstrumentKind::Spot, Side::Buy, Some(p)) if kind != OrderKind::Market => {
                (inst.price(p) * size, inst.spec.quote.clone())
            }
            (InstrumentKind::Swap, _, Some(p)) if kind != OrderKind::Market => {
                (inst.price(p) * size * inst.spec.contract_value / Decimal::from(LEVERAGE), inst.spec.quote.clone())
            }
            _ => (Decimal::ZERO, inst.spec.quote.clone()),
        }
    }

    fn index(&self, instrument: InstrumentId) -> Option<usize> {
        let i = (instrument as usize).checked_sub(1)?;
        (i < self.instruments.len()).then_some(i)
    }

    fn place(&mut self, o: NewOrder) -> Result<PlaceAck, VenueError> {
        let i = self.index(o.instrument).ok_or_else(|| rejected("51001", "Instrument ID does not exist."))?;
        if o.client_id.is_empty() || o.client_id.len() > 32 || !o.client_id.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(rejected("51000", "Parameter clOrdId error"));
        }
        if self.orders.get(&o.client_id).is_some_and(|x| !x.report.status.is_terminal()) {
            return Err(rejected("51016", "Client order ID already exists."));
        }
        let inst = &self.instruments[i];
        if o.size <= Decimal::ZERO {
            return Err(rejected("51000", "Parameter sz error"));
        }
        let lots = inst
            .lots(o.size)
            .filter(|l| *l > 0)
            .ok_or_else(|| rejected("51121", "Order quantity must be a multiple of the lot size."))?;
        if o.size < inst.spec.min_size {
            return Err(rejected("51020", "Your order should meet or exceed the minimum order amount."));
        }
        let price = match (o.kind, o.price) {
            (OrderKind::Market, _) => None,
            (_, Some(p)) => {
                Some(inst.ticks(p).filter(|t| *t > 0).ok_or_else(|| rejected("51000", "Parameter px error"))?)
            }
            (_, None) => return Err(rejected("51000", "Parameter px error")),
        };
        let is_swap = inst.spec.kind == InstrumentKind::Swap;
        if o.reduce_only && is_swap {
            let held = self.account.position(o.instrument);
            let reduces = !held.is_zero() && held.is_sign_positive() != (o.side == Side::Buy) && o.size <= held.abs();
            if !reduces {
                return Err(rejected(
                    "51169",
                    "Order failed because you don't have any positions in this direction for this contract to reduce or close.",
                ));
            }
        }
        let (required, ccy) = self.requirement(i, o.side, o.kind, price, lots);
        if !self.account.reserve(&ccy, required) {
            return Err(rejected("51008", "Order failed. Insufficient balance."));
        }
        self.touched.insert(ccy.clone());
        self.next_order += 1;
        let venue_id = self.next_order.to_string();
        let report = OrderReport {
            client_id: o.client_id.clone(),
            venue_id: venue_id.clone(),
            instrument: o.instrument,
            side: o.side,
            kind: o.kind,
            price: o.price.filter(|_| o.kind != OrderKind::Market),
            size: o.size,
            filled: Decimal::ZERO,
            avg_price: None,
            status: OrderStatus::Live,
            reason: None,
            ts_ms: self.clock.now_ms(),
        };
        let id = o.client_id.clone();
        self.orders.insert(
            id.clone(),
            Order { report, price, lots, filled: 0, value: Decimal::ZERO, reserved: required, reserve_ccy: ccy },
        );
        let book = &self.instruments[i].book;
        let (best_bid, best_ask) = book.best();
        let crossing = match (o.side, price) {
            (_, None) => true,
            (Side::Buy, Some(p)) => best_ask.is_some_and(|a| a <= p),
            (Side::Sell, Some(p)) => best_bid.is_some_and(|b| b >= p),
        };
        if o.kind == OrderKind::PostOnly && crossing {
            self.finish(&id, OrderStatus::Canceled, Some("post_only order would have taken liquidity".into()));
            self.flush_account();
            return Ok(PlaceAck { venue_id });
        }
        if o.kind == OrderKind::Fok && book.fillable(o.side, price, true) < lots {
            self.finish(&id, OrderStatus::Canceled, Some("fok order could not be filled in full".into()));
            self.flush_account();
            return Ok(PlaceAck { venue_id });
        }
        self.execute(i, &id);
        Ok(PlaceAck { venue_id })
    }

    /// Matches one of our orders as a taker, then rests or cancels what is left by its kind.
    fn execute(&mut self, i: usize, id: &str) {
        let Some(order) = self.orders.get(id) else { return };
        let (side, kind, price, left) = (order.report.side, order.report.kind, order.price, order.lots - order.filled);
        let budget = self.taker_budget(i, side, kind);
        let (matches, self_cancelled) = self.instruments[i].book.take(side, price, left, true, budget);
        for (maker, _) in &self_cancelled {
            self.finish(maker, OrderStatus::Canceled, Some("self-trade prevention: cancel maker".into()));
        }
        for m in &matches {
            self.fill(id, m.price, m.lots, Liquidity::Taker);
            if let Owner::Ours(maker) = &m.maker {
                self.fill(maker, m.price, m.lots, Liquidity::Maker);
                self.report(maker);
            }
        }
        let remaining = self.orders.get(id).map_or(0, |o| o.lots - o.filled);
        if remaining == 0 {
            self.report(id);
        } else if matches!(kind, OrderKind::Limit | OrderKind::PostOnly) && price.is_some() {
            if let Some(p) = price {
                self.instruments[i].book.rest(side, p, Owner::Ours(id.to_string()), remaining);
            }
            self.report(id);
        } else {
            self.finish(id, OrderStatus::Canceled, None);
        }
        self.flush_account();
        let trades = matches.into_iter().map(|m| (side, m)).collect::<Vec<_>>();
        if !trades.is_empty() {
            self.publish(i, trades);
        }
    }

    /// For market buys (spot) and market swap orders nothing was reserved: how many lots the
    /// account can pay for at each price.
    fn taker_budget(&self, i: usize, side: Side, kind: OrderKind) -> impl FnMut(i64, i64) -> i64 + use<> {
        let inst = &self.instruments[i];
        let (tick, lot, cv, spot) =
            (inst.spec.tick_size, inst.spec.lot_size, inst.spec.contract_value, inst.spec.kind == InstrumentKind::Spot);
        let checked = kind == OrderKind::Market && (!spot || side == Side::Buy);
        let mut available = self.account.available(&inst.spec.quote);
        let fee = self.taker_fee;
        move |price, lots| {
            if !checked {
                return lots;
            }
            let per_lot = Decimal::from(price)
                * tick
                * lot
                * if spot { Decimal::ONE + fee } else { cv / Decimal::from(LEVERAGE) };
            if per_lot <= Decimal::ZERO {
                return lots;
            }
            let can = (available / per_lot).floor().to_i64().unwrap_or(0).min(lots);
            available -= per_lot * Decimal::from(can);
            can
        }
    }

    /// Applies one execution to one of our orders and the account; pushes the fill.
    fn fill(&mut self, id: &str, price_ticks: i64, lots: i64, liquidity: Liquidity) {
        let Some(order) = self.orders.get(id) else { return };
        let i = order.report.instrument as usize - 1;
        let inst = &self.instruments[i];
        let (price, size) = (inst.price(price_ticks), inst.size(lots));
        let spec = inst.spec.clone();
        let side = order.report.side;
        let value = price * size * spec.contract_value;
        let rate = if liquidity == Liquidity::Maker { self.maker_fee } else { self.taker_fee };
        let fee = (value * rate).round_dp(8);
        let release = {
            let (per, _) = self.requirement(i, side, order.report.kind, order.price, lots);
            per.min(order.reserved)
        };
        let ccy = order.reserve_ccy.clone();
        self.account.release(&ccy, release);
        match (spec.kind, side) {
            (InstrumentKind::Spot, Side::Buy) => {
                self.account.balance(&spec.quote).total -= value + fee;
                self.account.balance(&spec.base).total += size;
            }
            (InstrumentKind::Spot, Side::Sell) => {
                self.account.balance(&spec.base).total -= size;
                self.account.balance(&spec.quote).total += value - fee;
            }
            (InstrumentKind::Swap, _) => {
                let pnl = self.account.swap_fill(spec.id, side.sign() * size, price, spec.contract_value);
                self.account.balance(&spec.quote).total += pnl - fee;
                self.touched_positions.insert(spec.id);
            }
        }
        self.touched.extend([spec.quote.clone(), spec.base.clone(), ccy]);
        let Some(order) = self.orders.get_mut(id) else { return };
        order.reserved -= release;
        order.filled += lots;
        order.value += price * size;
        let filled = spec.lot_size * Decimal::from(order.filled);
        order.report.filled = filled;
        order.report.avg_price = Some((order.value / filled).round_dp(12).normalize());
        order.report.status =
            if order.filled >= order.lots { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
        order.report.ts_ms = self.clock.now_ms();
        self.next_trade += 1;
        let fill = FillReport {
            client_id: id.to_string(),
            trade_id: self.next_trade.to_string(),
            instrument: spec.id,
            side,
            price,
            size,
            fee,
            fee_currency: spec.quote.clone(),
            liquidity,
            ts_ms: self.clock.now_ms(),
        };
        self.emit(VenueEvent::Fill(fill));
    }

    /// Pushes an order's current state.
    fn report(&mut self, id: &str) {
        if let Some(o) = self.orders.get(id) {
            self.emit(VenueEvent::Order(o.report.clone()));
        }
    }

    /// Ends an order (cancel or reject): out of the book, reservation released, state pushed.
    fn finish(&mut self, id: &str, status: OrderStatus, reason: Option<String>) {
        let Some(order) = self.orders.get_mut(id) else { return };
        let (side, price, i) = (order.report.side, order.price, order.report.instrument as usize - 1);
        let (reserved, ccy) = (std::mem::take(&mut order.reserved), order.reserve_ccy.clone());
        order.report.status = status;
        order.report.reason = reason;
        order.report.ts_ms = self.clock.now_ms();
        if let Some(p) = price {
            self.instruments[i].book.remove(side, p, id);
        }
        self.account.release(&ccy, reserved);
        self.touched.insert(ccy);
        self.report(id);
    }

    /// Pushes balances and positions changed since the last flush.
    fn flush_account(&mut self) {
        for ccy in std::mem::take(&mut self.touched) {
            let b = self.account.balance(&ccy).clone();
            self.emit(VenueEvent::Balance(BalanceReport {
                currency: ccy,
                total: b.total,
                available: b.available(),
                frozen: b.frozen,
            }));
        }
        for id in std::mem::take(&mut self.touched_positions) {
            let p = self.account.positions.get(&id).cloned().unwrap_or_default();
            self.emit(VenueEvent::Position(PositionReport {
                instrument: id,
                side: PositionSide::Net,
                size: p.size,
                avg_price: p.avg_price,
            }));
        }
    }

    fn open(&self, id: &str) -> Result<&Order, VenueError> {
        self.orders.get(id).filter(|o| !o.report.status.is_terminal()).ok_or_else(|| {
            rejected("51400", "Order cancellation failed as the order has been filled, canceled or does not exist")
        })
    }

    fn cancel(&mut self, id: &str) -> Result<(), VenueError> {
        self.open(id)?;
        self.finish(id, OrderStatus::Canceled, None);
        self.flush_account();
        Ok(())
    }

    fn amend(&mut self, id: &str, new_price: Option<Decimal>, new_size: Option<Decimal>) -> Result<(), VenueError> {
        let order = self.open(id).map_err(|_| {
            rejected("51503", "Order modification failed as the order has been filled, canceled or does not exist")
        })?;
        let i = order.report.instrument as usize - 1;
        let inst = &self.instruments[i];
        let (side, kind, old_price, filled) = (order.report.side, order.report.kind, order.price, order.filled);
        let price = match new_price {
            Some(p) => {
                Some(inst.ticks(p).filter(|t| *t > 0).ok_or_else(|| rejected("51000", "Parameter newPx error"))?)
            }
            None => old_price,
        };
        let lots = match new_size {
            Some(s) => inst.lots(s).filter(|l| *l > 0).ok_or_else(|| rejected("51000", "Parameter newSz error"))?,
            None => order.lots,
        };
        if lots <= filled {
            // OKX: a new size at or below the filled size completes the order.
            if let Some(o) = self.orders.get_mut(id) {
                o.lots = o.filled;
                o.report.size = new_size.unwrap_or(o.report.size);
            }
            self.finish(id, OrderStatus::Filled, None);
            self.flush_account();
            return Ok(());
        }
        let (required, ccy) = self.requirement(i, side, kind, price, lots - filled);
        let held = self.orders.get(id).map_or(Decimal::ZERO, |o| o.reserved);
        if required > held && !self.account.reserve(&ccy, required - held) {
            return Err(rejected("51008", "Order failed. Insufficient balance."));
        }
        if required < held {
            self.account.release(&ccy, held - required);
        }
        self.touched.insert(ccy);
        if kind == OrderKind::PostOnly && price != old_price {
            let (best_bid, best_ask) = self.instruments[i].book.best();
            let crosses = match (side, price) {
                (Side::Buy, Some(p)) => best_ask.is_some_and(|a| a <= p),
                (Side::Sell, Some(p)) => best_bid.is_some_and(|b| b >= p),
                _ => false,
            };
            if crosses {
                // As on OKX: a post-only order amended to a crossing price is cancelled.
                self.finish(id, OrderStatus::Canceled, Some("post_only order would have taken liquidity".into()));
                self.flush_account();
                return Ok(());
            }
        }
        if let Some(p) = old_price {
            self.instruments[i].book.remove(side, p, id);
        }
        if let Some(o) = self.orders.get_mut(id) {
            o.reserved = required;
            o.lots = lots;
            o.price = price;
            o.report.size = self.instruments[i].size(lots);
            o.report.price = price.map(|p| self.instruments[i].price(p));
        }
        // Re-enters the book at the back of its level; crossing trades as a taker.
        self.execute(i, id);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Venue for SimVenue {
    fn name(&self) -> &str {
        "sim"
    }

    fn instruments(&self) -> Vec<InstrumentSpec> {
        self.specs.clone()
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<VenueEvent>> {
        self.receiver.lock().take()
    }

    /// The clock it was given: the host on this venue, and the OKX-compatible server built on
    /// it, read the same time as its timestamps.
    fn clock(&self) -> Clock {
        self.clock.clone()
    }

    async fn place(&self, order: NewOrder) -> Result<PlaceAck, VenueError> {
        self.place_now(order)
    }

    async fn cancel(
        &self,
        _instrument: InstrumentId,
        client_id: &str,
        _origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        self.cancel_now(client_id)
    }

    async fn amend(
        &self,
        _instrument: InstrumentId,
        client_id: &str,
        new_price: Option<Decimal>,
        new_size: Option<Decimal>,
        _origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        self.amend_now(client_id, new_price, new_size)
    }

    async fn open_orders(&self) -> Result<Vec<OrderReport>, VenueError> {
        let s = self.state.lock();
        Ok(s.orders.values().filter(|o| !o.report.status.is_terminal()).map(|o| o.report.clone()).collect())
    }

    async fn balances(&self) -> Result<Vec<BalanceReport>, VenueError> {
        let s = self.state.lock();
        Ok(s.account
            .balances
            .iter()
            .map(|(c, b)| BalanceReport {
                currency: c.clone(),
                total: b.total,
                available: b.available(),
                frozen: b.frozen,
            })
            .collect())
    }

    async fn positions(&self) -> Result<Vec<PositionReport>, VenueError> {
        let s = self.state.lock();
        Ok(s.account
            .positions
            .iter()
            .filter(|(_, p)| !p.size.is_zero())
            .map(|(id, p)| PositionReport {
                instrument: *id,
                side: PositionSide::Net,
                size: p.size,
                avg_price: p.avg_price,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
