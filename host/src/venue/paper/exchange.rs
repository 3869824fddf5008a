//! An exchange that fills orders against a market it does not make: a file's bars or ticks in a
//! backtest (virtual time), the live public feed on the paper venue ([`super::PaperVenue`]).
//! One exchange for both, so that a strategy's paper fills and its backtest fills on a
//! recording of the same feed are the same fills (the `book` model; a test holds this).
//!
//! It is a [`Venue`] like OKX's and the simulator's, so the engine's sender hands it orders the
//! way it hands them to a live venue, and its reports, fills and balances reach the hub through
//! the same router. Its driver tells it what the market does: the backtest when a bar opens
//! ([`PaperExchange::open_bar`]) and what the last close was ([`PaperExchange::mark`]), both
//! of them each book, ticker and trade ([`PaperExchange::on_market`]); nothing in it is random.
//!
//! # Fill models
//!
//! On candles an order *arrives* at one price, then *rests*:
//!
//! - `next-open`: an order sent while the plugin handles bar t arrives at bar t+1's open.
//! - `close`: it arrives at once, at bar t's close (the price the plugin just saw).
//!
//! On arrival a market order fills its whole size at the arrival price (taker). A limit, IOC or
//! FOK order that is marketable there (a buy at or above it, a sell at or below) fills at the
//! arrival price (taker); a post-only order that would take is cancelled, as OKX cancels it; an
//! IOC or FOK order that is not marketable is cancelled. A limit or post-only order that did not
//! fill rests, and fills at its limit (maker) in the first later bar that trades *through* it:
//! a low strictly below a buy's price, a high strictly above a sell's (a touch is not a fill).
//! Under `next-open` a limit order that arrives at a bar's open and rests may fill in that
//! same bar. An order is acknowledged (reported `live`) when it arrives, as OKX reports it once
//! it is on the book: under `next-open` at the next bar's open, with its fill if it fills there
//! (the plugin hears both with that bar); until then it is pending, and a cancel of it still
//! reaches it. Bar fills are whole (the bar's volume does not cap them), stamped with the time the
//! bar opened (`next-open`) or closed (`close`).
//!
//! - `book` (tick data): an order meets the recorded book as it stands when it is placed
//!   ([`PaperExchange::on_market`] keeps it): a taking order walks the other side's levels, a fill
//!   per level of up to its size in whole lots (a limit order only the levels at or better than
//!   its price; a market order fills what the levels shown do not hold at the last level's
//!   price). What a limit order does not fill rests (a partial fill); an IOC's rest is
//!   cancelled; a FOK the levels cannot fill whole, and a post-only order that would take, are
//!   cancelled untouched. A resting order fills what is left of it at its limit (maker) when a
//!   trade prints beyond it or the other side's best price reaches it. Queue position is not
//!   modelled. Without a recorded book (a trades file) the last trade's price stands in, as one
//!   level deep enough for any order.
//!
//! # Money
//!
//! Spot: a buy needs its quote (price × size plus the taker fee, at the limit price or the last
//! close for a market order) available when it is placed, and it is held (frozen) until the
//! order ends; a sell needs its base. A market buy whose cost at its fill price exceeds what
//! is available then is cancelled with OKX's 51008 rather than drawing the balance negative.
//! Linear derivatives (swaps, futures settled in the quote currency): no position is held in
//! the balance; the quote pays fees and receives realised PnL; an order that opens or grows a
//! position needs its notional divided by the leverage available (no margin is held and there
//! are no liquidations; funding is charged by [`PaperExchange::fund`] from a rates file). Fees
//! are charged in the quote currency at the maker or taker rate of the fill (OKX charges a spot
//! buy's fee in the base currency: the value is the same, the balance it comes from differs).
//! Every plugin of a run trades this one account, as on a live host: one plugin's open orders
//! hold balance another cannot use. Sums that would not fit a decimal cancel the order, and the
//! account holds at most [`MAX_OPEN`] open orders, as on OKX.

use parking_lot::Mutex;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tradebox_core::{
    BalanceReport, Clock, FillReport, InstrumentId, InstrumentKind, InstrumentSpec, Liquidity, MarketEvent, NewOrder,
    OrderKind, OrderReport, OrderStatus, Origin, PlaceAck, PositionReport, PositionSide, Side, Venue, VenueError,
    VenueEvent,
};

/// When and at what price an order meets the market (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FillModel {
    /// At the next bar's open.
    NextOpen,
    /// At the close of the bar the plugin is handling.
    Close,
    /// Tick data: against the recorded book (see the module's documentation).
    Book,
}

impl std::fmt::Display for FillModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FillModel::NextOpen => "next-open",
            FillModel::Close => "close",
            FillModel::Book => "book",
        })
    }
}

impl std::str::FromStr for FillModel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "next-open" => Ok(FillModel::NextOpen),
            "close" => Ok(FillModel::Close),
            "book" => Ok(FillModel::Book),
            other => Err(format!("unknown fill model {other:?}: next-open, close or book")),
        }
    }
}

/// Maker and taker fee rates, as fractions of the notional (0.001 is 0.1%; negative is a
/// rebate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeeRates {
    /// Resting orders that fill.
    pub maker: Decimal,
    /// Orders that take.
    pub taker: Decimal,
}

/// The fee rates of a run: per instrument kind, and the tier they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Fees {
    /// Spot.
    pub spot: FeeRates,
    /// Swaps and futures.
    pub derivatives: FeeRates,
    /// Whether `derivatives` holds rates for derivatives (false: a tier whose derivatives rates
    /// this build does not know; a plan trading derivatives refuses it).
    pub derivatives_known: bool,
    /// The OKX tier named, if any.
    pub tier: Option<String>,
}

impl Fees {
    /// No fees.
    pub fn none() -> Self {
        let zero = FeeRates { maker: Decimal::ZERO, taker: Decimal::ZERO };
        Self { spot: zero, derivatives: zero, derivatives_known: true, tier: None }
    }

    /// One explicit rate for makers and takers of every kind.
    pub fn flat(rate: Decimal) -> Self {
        let rates = FeeRates { maker: rate, taker: rate };
        Self { spot: rates, derivatives: rates, derivatives_known: true, tier: None }
    }

    /// OKX's published rates for a tier: `Lv1`..`Lv5` (regular users, by OKB held) and
    /// `VIP1`..`VIP8`, spot (USDT pairs) as okx.com/fees lists them. Derivatives (USDT-margined
    /// perpetual and expiry futures) only for `Lv1`, 0.02% maker and 0.05% taker: the other
    /// tiers' derivatives rates are not in this table, and a run of derivatives at those tiers
    /// is refused rather than charged made-up rates (give `--fee-rate`).
    pub fn tier(name: &str) -> Result<Self, String> {
        // (tier, spot maker, spot taker), percent.
        const SPOT: &[(&str, &str, &str)] = &[
            ("Lv1", "0.080", "0.100"),
            ("Lv2", "0.075", "0.095"),
            ("Lv3", "0.070", "0.090"),
            ("Lv4", "0.065", "0.085"),
            ("Lv5", "0.060", "0.080"),
            ("VIP1", "0.060", "0.080"),
            ("VIP2", "0.050", "0.070"),
            ("VIP3", "0.030", "0.060"),
            ("VIP4", "0.020", "0.050"),
            ("VIP5", "0.000", "0.040"),
            ("VIP6", "-0.002", "0.030"),
            ("VIP7", "-0.005", "0.025"),
            ("VIP8", "-0.005", "0.020"),
        ];
        let wanted = name.replace(' ', "");
        let (tier, maker, taker) = SPOT.iter().find(|t| t.0.eq_ignore_ascii_case(&wanted)).ok_or_else(|| {
            let names: Vec<&str> = SPOT.iter().map(|t| t.0).collect();
            format!("unknown fee tier {name:?}: one of {}", names.join(", "))
        })?;
        let pct = |s: &str| s.parse::<Decimal>().unwrap_or_default() / Decimal::ONE_HUNDRED;
        let derivatives = (*tier == "Lv1").then(|| FeeRates { maker: pct("0.020"), taker: pct("0.050") });
        Ok(Self {
            spot: FeeRates { maker: pct(maker), taker: pct(taker) },
            derivatives: derivatives.unwrap_or(FeeRates { maker: pct(maker), taker: pct(taker) }),
            derivatives_known: derivatives.is_some(),
            tier: Some((*tier).to_string()),
        })
    }

    fn rates(&self, kind: InstrumentKind) -> FeeRates {
        if kind == InstrumentKind::Spot { self.spot } else { self.derivatives }
    }
}

/// One bar as the exchange needs it: where it opened and how far it traded. Floats as the data
/// gave them: a price becomes a decimal only when an order fills at it (see [`decimal`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The bar's open time, ms (fills are stamped with it).
    pub ts_ms: i64,
    /// First price.
    pub open: f64,
    /// Highest.
    pub high: f64,
    /// Lowest.
    pub low: f64,
}

/// A decimal as the nearest float, correctly rounded (the ledger's prices must be the data's,
/// to the bit): see [`tradebox_core::num::nearest`].
pub fn float(d: Decimal) -> f64 {
    tradebox_core::num::nearest(d).unwrap_or(0.0)
}

/// A price from the data as the decimal it was written as: the shortest decimal that reads back
/// as the same float (what Rust's `Display` prints), so `64123.5` is 64123.5 and not the
/// binary fraction nearest it.
pub fn decimal(price: f64) -> Option<Decimal> {
    if !price.is_finite() {
        return None;
    }
    // ryu prints the same shortest digits as `Display`, faster; it writes an exponent for very
    // large or small numbers, which the decimal parser does not read: those go through Display.
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(price);
    // It also writes whole numbers with `.0`, which `normalize` takes off again.
    if text.contains('e') { price.to_string().parse().ok() } else { text.parse().ok().map(|d: Decimal| d.normalize()) }
}

/// A fill as the backtest's books need it: whose, and its money in floats.
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    /// The plugin whose order it was (`None`: the host's).
    pub plugin: Option<u32>,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Price.
    pub price: f64,
    /// Size (contracts for derivatives).
    pub size: f64,
    /// Fee in the quote currency (positive: paid).
    pub fee: f64,
    /// When, ms.
    pub ts_ms: i64,
}

/// An order at the exchange.
struct Resting {
    order: NewOrder,
    venue_id: String,
    /// Quote (spot buy) or base (spot sell) still held for what is left of it.
    held: Decimal,
    /// It has met the market once (arrival done): from now on it fills only by trade-through.
    arrived: bool,
    /// Filled so far, and the sum of price × size of those fills (for the average).
    filled: Decimal,
    value: Decimal,
}

impl Resting {
    fn left(&self) -> Decimal {
        self.order.size - self.filled
    }

    fn average(&self) -> Option<Decimal> {
        (!self.filled.is_zero()).then(|| self.value / self.filled)
    }
}

/// The top of an instrument's recorded book: (price, size), best first.
#[derive(Debug, Clone, Default)]
struct Top {
    bids: Vec<(f64, f64)>,
    asks: Vec<(f64, f64)>,
    /// Set by a book push: tickers no longer stand in for the book.
    from_books: bool,
}

#[derive(Default)]
struct Balance {
    total: Decimal,
    frozen: Decimal,
}

#[derive(Default)]
struct State {
    /// In the order they were placed: fills happen in that order, deterministically.
    open: Vec<Resting>,
    balances: BTreeMap<String, Balance>,
    /// Net position per derivative instrument, contracts, and its average entry price.
    positions: FxHashMap<InstrumentId, (Decimal, Decimal)>,
    /// The last close per instrument: a market order's reference before it fills, and the
    /// arrival price under `close`.
    last: FxHashMap<InstrumentId, f64>,
    /// The recorded book per instrument (`book` model).
    tops: FxHashMap<InstrumentId, Top>,
    next_id: u64,
    fills: Vec<Fill>,
    /// Market events met so far ([`PaperExchange::on_market`] calls).
    seen: u64,
    /// Currencies whose balance fills changed, not reported yet ([`PaperExchange::report_balances`]).
    changed: Vec<String>,
    /// Each placement and how many market events it came after, when asked for
    /// ([`PaperExchange::journal`]).
    journal: Option<Vec<Placement>>,
}

/// A request as it reached the exchange, and where in the market's stream: what replaying a
/// paper session needs to meet the same books with the same requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// How many market events the exchange had met when the request reached it.
    pub after: u64,
    /// The request.
    pub request: Request,
}

/// A request to the exchange ([`PaperExchange::apply`] makes it again).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A new order.
    Place(NewOrder),
    /// A cancel, by client id.
    Cancel {
        /// The order's instrument.
        instrument: InstrumentId,
        /// Its client id.
        client_id: String,
    },
    /// An amend, by client id.
    Amend {
        /// The order's instrument.
        instrument: InstrumentId,
        /// Its client id.
        client_id: String,
        /// The new price, if it changes.
        price: Option<Decimal>,
        /// The new total size, if it changes.
        size: Option<Decimal>,
    },
}

/// The exchange (see the module's documentation).
pub struct PaperExchange {
    name: &'static str,
    /// Whether fills are kept for [`PaperExchange::take_fills`] (a backtest's ledger takes them
    /// after every step; nothing takes them on the paper venue, where they would pile up).
    keep_fills: bool,
    specs: FxHashMap<InstrumentId, InstrumentSpec>,
    clock: Clock,
    model: FillModel,
    fees: Fees,
    leverage: Decimal,
    state: Mutex<State>,
    tx: mpsc::UnboundedSender<VenueEvent>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<VenueEvent>>>,
}

/// OKX's code for an order the account cannot pay for.
const INSUFFICIENT: &str = "51008";

/// The size of the one level a trades file's last price stands for (see `meet_book`).
const DEEP: f64 = tradebox_data::MAX_SIZE;

/// The most open orders the account may have, as on OKX (beyond it OKX refuses new ones).
pub const MAX_OPEN: usize = 4_000;

impl PaperExchange {
    /// An exchange for `specs` with these starting balances, reading time from `clock` (the
    /// backtest's virtual one).
    pub fn new(
        specs: Vec<InstrumentSpec>,
        balances: &[(String, Decimal)],
        clock: Clock,
        model: FillModel,
        fees: Fees,
        leverage: Decimal,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = State::default();
        for (currency, amount) in balances {
            state.balances.entry(currency.clone()).or_default().total += *amount;
        }
        Self {
            name: "backtest",
            keep_fills: true,
            specs: specs.into_iter().map(|s| (s.id, s)).collect(),
            clock,
            model,
            fees,
            leverage: if leverage > Decimal::ZERO { leverage } else { Decimal::ONE },
            state: Mutex::new(state),
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// The paper venue's exchange: named `paper`, keeping no fills for a ledger.
    pub fn for_paper(mut self) -> Self {
        self.name = "paper";
        self.keep_fills = false;
        self
    }

    /// Keeps every placement and where in the market's stream it came ([`Placement`]), from
    /// now on, for [`PaperExchange::journal`]. Unbounded: for sessions that are replayed
    /// (tests, short diagnostic runs), not for a paper venue left running for days.
    pub fn keep_journal(&self) {
        self.state.lock().journal.get_or_insert_with(Vec::new);
    }

    /// The requests kept since [`PaperExchange::keep_journal`], in the order they came.
    pub fn journal(&self) -> Vec<Placement> {
        self.state.lock().journal.clone().unwrap_or_default()
    }

    /// Makes a journaled request again (a replay).
    pub async fn apply(&self, request: Request) -> Result<(), VenueError> {
        match request {
            Request::Place(order) => self.place(order).await.map(|_| ()),
            Request::Cancel { instrument, client_id } => self.cancel(instrument, &client_id, None).await,
            Request::Amend { instrument, client_id, price, size } => {
                self.amend(instrument, &client_id, price, size, None).await
            }
        }
    }

    /// Journals a request, if asked to ([`PaperExchange::keep_journal`]).
    fn note(state: &mut State, request: impl FnOnce() -> Request) {
        let after = state.seen;
        if let Some(journal) = state.journal.as_mut() {
            journal.push(Placement { after, request: request() });
        }
    }

    /// A market event from the driver that also hands it to the host (the paper venue): the
    /// exchange meets it first ([`PaperExchange::on_market`]), then it goes out on the venue's
    /// event stream after the fills it caused, as a backtest routes them.
    pub fn publish(&self, event: MarketEvent) {
        let mut state = self.state.lock();
        self.meet(&mut state, &event);
        // Under the same lock: an order placed between the two meets this book only after
        // the host has heard of it, never before.
        self.emit(VenueEvent::Market(event));
    }

    /// Every balance now, as the venue reports them.
    pub fn balance_reports(&self) -> Vec<BalanceReport> {
        self.state.lock().balances.iter().map(|(c, b)| report_balance(c, b)).collect()
    }

    /// Records the close of the bar the plugins are about to handle: the reference price of
    /// market orders, and their fill price under `close`.
    pub fn mark(&self, instrument: InstrumentId, close: f64) {
        self.state.lock().last.insert(instrument, close);
    }

    /// A bar of `instrument` opens: orders waiting for it arrive, resting ones fill if it trades
    /// through them. Cheap when nothing is open.
    pub fn open_bar(&self, instrument: InstrumentId, bar: Range) {
        let mut state = self.state.lock();
        if state.open.is_empty() {
            return;
        }
        let Some(spec) = self.specs.get(&instrument) else { return };
        let mut i = 0;
        while i < state.open.len() {
            if state.open[i].order.instrument != instrument {
                i += 1;
                continue;
            }
            let outcome = if state.open[i].arrived {
                through(&state.open[i].order, &bar).map(|price| (price, Liquidity::Maker))
            } else {
                let arrival = self.arrive(&mut state.open[i], bar.open);
                // On the book from now (next-open: the order reaches the exchange at this open,
                // not when it was sent): acknowledged now, before any fill.
                if !matches!(arrival, Arrival::Cancel(_)) {
                    self.emit(VenueEvent::Order(self.report(&state.open[i], OrderStatus::Live)));
                }
                match arrival {
                    Arrival::Fill(price) => Some((price, Liquidity::Taker)),
                    Arrival::Cancel(why) => {
                        let resting = state.open.remove(i);
                        self.end(&mut state, resting, OrderStatus::Canceled, Some(why), bar.ts_ms);
                        continue;
                    }
                    Arrival::Rest => through(&state.open[i].order, &bar).map(|price| (price, Liquidity::Maker)),
                }
            };
            match outcome {
                Some((price, liquidity)) => {
                    let mut resting = state.open.remove(i);
                    let size = resting.left();
                    if self.fill(&mut state, spec, &mut resting, price, size, liquidity, bar.ts_ms) == Left::Open {
                        state.open.insert(i, resting);
                        i += 1;
                    }
                }
                None => i += 1,
            }
        }
        self.report_balances(&mut state);
    }

    /// A recorded market event (`book` model): the instrument's book is now what it shows, and
    /// resting orders the market went through fill at their limit (maker): a trade printed
    /// beyond it, or the other side's best price reached it.
    pub fn on_market(&self, event: &MarketEvent) {
        let mut state = self.state.lock();
        self.meet(&mut state, event);
    }

    fn meet(&self, state: &mut State, event: &MarketEvent) {
        state.seen += 1;
        let instrument = event.instrument();
        let (through_buy, through_sell) = match event {
            MarketEvent::Book { bids, asks, .. } => {
                let top = state.tops.entry(instrument).or_default();
                top.bids.clone_from(bids);
                top.asks.clone_from(asks);
                top.from_books = true;
                // A resting buy fills when the best ask reaches it, a sell when the best bid does.
                (asks.first().map(|l| (l.0, true)), bids.first().map(|l| (l.0, true)))
            }
            MarketEvent::Ticker { bid, bid_size, ask, ask_size, last, .. } => {
                let top = state.tops.entry(instrument).or_default();
                if !top.from_books {
                    top.bids = if *bid > 0.0 { vec![(*bid, *bid_size)] } else { Vec::new() };
                    top.asks = if *ask > 0.0 { vec![(*ask, *ask_size)] } else { Vec::new() };
                }
                if *last > 0.0 {
                    state.last.insert(instrument, *last);
                }
                ((*ask > 0.0).then_some((*ask, true)), (*bid > 0.0).then_some((*bid, true)))
            }
            MarketEvent::Trade { price, .. } => {
                state.last.insert(instrument, *price);
                // A print strictly beyond the limit: someone traded through it.
                (Some((*price, false)), Some((*price, false)))
            }
            MarketEvent::Candle { .. } => (None, None),
        };
        if state.open.is_empty() {
            return;
        }
        let Some(spec) = self.specs.get(&instrument) else { return };
        let ts = self.clock.now_ms();
        let mut i = 0;
        while i < state.open.len() {
            let order = &state.open[i].order;
            let limit = order.price.and_then(|p| p.to_f64());
            let crossed = match (order.instrument == instrument, order.side, limit) {
                (true, Side::Buy, Some(limit)) => {
                    through_buy.is_some_and(|(at, touch)| if touch { at <= limit } else { at < limit })
                }
                (true, Side::Sell, Some(limit)) => {
                    through_sell.is_some_and(|(at, touch)| if touch { at >= limit } else { at > limit })
                }
                _ => false,
            };
            let Some(price) = crossed.then_some(order.price).flatten() else {
                i += 1;
                continue;
            };
            let mut resting = state.open.remove(i);
            let size = resting.left();
            if self.fill(state, spec, &mut resting, price, size, Liquidity::Maker, ts) == Left::Open {
                state.open.insert(i, resting);
                i += 1;
            }
        }
        self.report_balances(state);
    }

    /// Funding time for `instrument`: the account's net position pays (long, positive rate) or
    /// receives `size × contract value × mark × rate` in the quote currency.
    pub fn fund(&self, instrument: InstrumentId, mark: f64, rate: f64) {
        let Some(spec) = self.specs.get(&instrument) else { return };
        let mut state = self.state.lock();
        let size = state.positions.get(&instrument).map_or(Decimal::ZERO, |p| p.0);
        let (Some(mark), Some(rate)) = (decimal(mark), decimal(rate)) else { return };
        if size.is_zero() {
            return;
        }
        let Some(pay) =
            size.checked_mul(spec.contract_value).and_then(|n| n.checked_mul(mark)).and_then(|n| n.checked_mul(rate))
        else {
            tracing::warn!(instrument, "a funding payment too large to count was not made");
            return;
        };
        let balance = state.balances.entry(spec.quote.clone()).or_default();
        balance.total -= pay;
        let report = report_balance(&spec.quote, balance);
        self.emit(VenueEvent::Balance(report));
    }

    /// Takes the fills since the last call, in the order they happened.
    pub fn take_fills(&self) -> Vec<Fill> {
        std::mem::take(&mut self.state.lock().fills)
    }

    fn arrive(&self, resting: &mut Resting, price: f64) -> Arrival {
        resting.arrived = true;
        let order = &resting.order;
        let Some(price) = decimal(price) else {
            return Arrival::Cancel(format!("no usable price to fill at ({price})"));
        };
        let Some(limit) = order.price.filter(|_| order.kind != OrderKind::Market) else {
            return Arrival::Fill(price);
        };
        let marketable = match order.side {
            Side::Buy => price <= limit,
            Side::Sell => price >= limit,
        };
        match (order.kind, marketable) {
            (OrderKind::PostOnly, true) => Arrival::Cancel("post-only order would have taken liquidity".into()),
            (_, true) => Arrival::Fill(price),
            (OrderKind::Ioc | OrderKind::Fok, false) => Arrival::Cancel("not marketable on arrival".into()),
            _ => Arrival::Rest,
        }
    }

    /// A new order meets the recorded book (`book` model): a taking order walks the levels on
    /// the other side (a limit order only those at or better than its price), each level a
    /// fill of up to its size; past the last level shown a market order fills what is left at
    /// that level's price. What a limit order does not fill rests; an IOC's rest is
    /// cancelled; a FOK that the levels cannot fill whole, and a post-only order that would
    /// take, are cancelled untouched.
    fn meet_book(&self, state: &mut State, spec: &InstrumentSpec, mut resting: Resting, ts: i64) {
        resting.arrived = true;
        let order = &resting.order;
        let levels = state.tops.get(&order.instrument).map(|t| match order.side {
            Side::Buy => t.asks.clone(),
            Side::Sell => t.bids.clone(),
        });
        // No book recorded (a trades file): the last trade's price stands in, as one level deep
        // enough for the whole order.
        let levels = levels.filter(|l| !l.is_empty()).or_else(|| {
            let last = *state.last.get(&order.instrument)?;
            Some(vec![(last, DEEP)])
        });
        let Some(levels) = levels.filter(|l| !l.is_empty()) else {
            let why = "no recorded book on that side yet".to_string();
            match order.kind {
                OrderKind::Limit | OrderKind::PostOnly => state.open.push(resting),
                _ => self.end(state, resting, OrderStatus::Canceled, Some(why), ts),
            }
            return;
        };
        let limit = order.price.filter(|_| order.kind != OrderKind::Market).and_then(|p| p.to_f64());
        let (side, kind) = (order.side, order.kind);
        let within = |price: f64| match (side, limit) {
            (_, None) => true,
            (Side::Buy, Some(l)) => price <= l,
            (Side::Sell, Some(l)) => price >= l,
        };
        let lot = spec.lot_size;
        if lot <= Decimal::ZERO {
            let why = "the instrument's lot size is not above zero".to_string();
            return self.end(state, resting, OrderStatus::Canceled, Some(why), ts);
        }
        // Sizes as they can be filled: whole lots of what each level shows.
        let whole = |size: f64| {
            decimal(size).and_then(|s| s.checked_div(lot)).map_or(Decimal::ZERO, |n| (n.floor() * lot).normalize())
        };
        // What the levels within its price hold (a FOK's question alone: the conversions cost).
        let reachable = || -> Decimal { levels.iter().filter(|l| within(l.0)).map(|l| whole(l.1)).sum() };
        let size = resting.left();
        match kind {
            OrderKind::PostOnly if within(levels[0].0) => {
                let why = "post-only order would have taken liquidity".to_string();
                return self.end(state, resting, OrderStatus::Canceled, Some(why), ts);
            }
            OrderKind::Fok if reachable() < size => {
                let why = "the book could not fill it whole".to_string();
                return self.end(state, resting, OrderStatus::Canceled, Some(why), ts);
            }
            _ => {}
        }
        if kind != OrderKind::PostOnly {
            let last = levels.len() - 1;
            for (n, (price, size)) in levels.iter().enumerate() {
                if resting.left().is_zero() || !within(*price) {
                    break;
                }
                let Some(price) = decimal(*price) else { break };
                // The visible size, in whole lots; all that is left at the last level of a
                // market order (the book goes deeper than the recording shows).
                let shown = whole(*size);
                let take =
                    if n == last && order_is_market(&resting) { resting.left() } else { shown.min(resting.left()) };
                if take.is_zero() {
                    continue;
                }
                if self.fill(state, spec, &mut resting, price, take, Liquidity::Taker, ts) == Left::Done {
                    return;
                }
            }
        }
        match resting.order.kind {
            OrderKind::Limit | OrderKind::PostOnly => state.open.push(resting),
            _ => {
                self.end(state, resting, OrderStatus::Canceled, Some("not filled on arrival".into()), ts);
            }
        }
    }

    fn emit(&self, event: VenueEvent) {
        // The receiver lives as long as the backtest: a send can only fail after it ended.
        let _ = self.tx.send(event);
    }

    fn report(&self, resting: &Resting, status: OrderStatus) -> OrderReport {
        self.report_at(resting, status, self.clock.now_ms())
    }

    fn report_at(&self, resting: &Resting, status: OrderStatus, ts_ms: i64) -> OrderReport {
        let o = &resting.order;
        OrderReport {
            client_id: o.client_id.clone(),
            venue_id: resting.venue_id.clone(),
            instrument: o.instrument,
            side: o.side,
            kind: o.kind,
            price: o.price,
            size: o.size,
            filled: resting.filled,
            avg_price: resting.average(),
            status,
            reason: None,
            ts_ms,
        }
    }

    /// Reports the balances fills changed since the last call: once per currency per request
    /// or market event, after its fills (an order walking three levels changes the same two
    /// balances three times; the host needs where they ended).
    fn report_balances(&self, state: &mut State) {
        for currency in std::mem::take(&mut state.changed) {
            if let Some(balance) = state.balances.get(&currency) {
                self.emit(VenueEvent::Balance(report_balance(&currency, balance)));
            }
        }
    }

    /// Ends what is left of an order without a fill, giving back what it held.
    fn end(&self, state: &mut State, resting: Resting, status: OrderStatus, reason: Option<String>, ts_ms: i64) {
        let currency = self.held_currency(&resting);
        let mut report = self.report_at(&resting, status, ts_ms);
        report.reason = reason;
        self.emit(VenueEvent::Order(report));
        if let Some(currency) = currency
            && !resting.held.is_zero()
        {
            let balance = state.balances.entry(currency.clone()).or_default();
            balance.frozen -= resting.held;
            let balance = report_balance(&currency, balance);
            self.emit(VenueEvent::Balance(balance));
        }
    }

    /// The currency a spot order holds: quote for a buy, base for a sell.
    fn held_currency(&self, resting: &Resting) -> Option<String> {
        let spec = self.specs.get(&resting.order.instrument)?;
        (spec.kind == InstrumentKind::Spot).then(|| match resting.order.side {
            Side::Buy => spec.quote.clone(),
            Side::Sell => spec.base.clone(),
        })
    }

    /// Fills `size` of `resting` at `price`: the balances, the position, the reports. Says
    /// whether the order is still open; an order it ends (filled, or cancelled because the
    /// account cannot pay at this price) is finished here and must not be kept.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        state: &mut State,
        spec: &InstrumentSpec,
        resting: &mut Resting,
        price: Decimal,
        size: Decimal,
        liquidity: Liquidity,
        ts_ms: i64,
    ) -> Left {
        let side = resting.order.side;
        let instrument = resting.order.instrument;
        let multiplier = if spec.kind == InstrumentKind::Spot { Decimal::ONE } else { spec.contract_value };
        let rates = self.fees.rates(spec.kind);
        let rate = if liquidity == Liquidity::Maker { rates.maker } else { rates.taker };
        let money = price
            .checked_mul(size)
            .and_then(|n| n.checked_mul(multiplier))
            .and_then(|n| Some((n, n.checked_mul(rate)?)));
        let Some((notional, fee)) = money else {
            let why = format!("{size} at {price} is more money than the backtest can count");
            let taken = std::mem::replace(resting, placeholder());
            self.end(state, taken, OrderStatus::Canceled, Some(why), ts_ms);
            return Left::Done;
        };
        // What this part releases of what the order holds.
        // A part's share of what the order holds (all of it when the product would not fit).
        let release = match resting.left() {
            left if left.is_zero() => resting.held,
            left => resting.held.checked_mul(size).and_then(|n| n.checked_div(left)).unwrap_or(resting.held),
        };
        let mut touched: [&String; 2] = [&spec.quote, &spec.quote];
        if spec.kind == InstrumentKind::Spot {
            match side {
                Side::Buy => {
                    let quote = state.balances.entry(spec.quote.clone()).or_default();
                    let free = quote.total - quote.frozen + release;
                    if notional + fee > free {
                        let why = format!(
                            "{INSUFFICIENT}: insufficient {} balance at the fill: {} needed, {} available",
                            spec.quote,
                            (notional + fee).normalize(),
                            free.normalize()
                        );
                        let taken = std::mem::replace(resting, placeholder());
                        self.end(state, taken, OrderStatus::Canceled, Some(why), ts_ms);
                        return Left::Done;
                    }
                    quote.frozen -= release;
                    quote.total -= notional + fee;
                    state.balances.entry(spec.base.clone()).or_default().total += size;
                }
                Side::Sell => {
                    let base = state.balances.entry(spec.base.clone()).or_default();
                    base.frozen -= release;
                    base.total -= size;
                    state.balances.entry(spec.quote.clone()).or_default().total += notional - fee;
                }
            }
            touched[1] = &spec.base;
        } else {
            let signed = if side == Side::Buy { size } else { -size };
            let (held, avg) = state.positions.get(&instrument).copied().unwrap_or_default();
            let closing = if held.is_sign_positive() != signed.is_sign_positive() && !held.is_zero() {
                held.abs().min(size)
            } else {
                Decimal::ZERO
            };
            let realized = if held > Decimal::ZERO { (price - avg) * closing } else { (avg - price) * closing };
            let next = held + signed;
            let next_avg = if next.is_zero() {
                Decimal::ZERO
            } else if closing.is_zero() {
                (avg * held.abs() + price * size) / next.abs()
            } else if closing < size {
                price
            } else {
                avg
            };
            state.positions.insert(instrument, (next, next_avg));
            state.balances.entry(spec.quote.clone()).or_default().total += realized * multiplier - fee;
            let position = PositionReport { instrument, side: PositionSide::Net, size: next, avg_price: next_avg };
            self.emit(VenueEvent::Position(position));
        }
        resting.held -= release;
        resting.filled += size;
        resting.value += price * size;
        let done = resting.left().is_zero();
        state.next_id += 1;
        let trade_id = state.next_id.to_string();
        let status = if done { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
        self.emit(VenueEvent::Order(self.report_at(resting, status, ts_ms)));
        self.emit(VenueEvent::Fill(FillReport {
            client_id: resting.order.client_id.clone(),
            trade_id,
            instrument,
            side,
            price,
            size,
            fee,
            fee_currency: spec.quote.clone(),
            liquidity,
            ts_ms,
        }));
        for currency in touched {
            if !state.changed.contains(currency) {
                state.changed.push(currency.clone());
            }
        }
        if !self.keep_fills {
            return if done { Left::Done } else { Left::Open };
        }
        state.fills.push(Fill {
            plugin: resting.order.origin.as_ref().map(|o| o.plugin),
            instrument,
            side,
            price: float(price),
            size: float(size),
            fee: float(fee),
            ts_ms,
        });
        if done { Left::Done } else { Left::Open }
    }

    /// Checks an order against the account and holds what a spot order needs.
    fn admit(&self, state: &mut State, spec: &InstrumentSpec, order: &NewOrder) -> Result<Decimal, VenueError> {
        let reference = order
            .price
            .filter(|_| order.kind != OrderKind::Market)
            .or_else(|| state.last.get(&order.instrument).copied().and_then(decimal))
            .or_else(|| {
                let top = state.tops.get(&order.instrument)?;
                let (bid, ask) = (top.bids.first()?.0, top.asks.first()?.0);
                decimal((bid + ask) / 2.0)
            })
            .ok_or_else(|| VenueError::Rejected {
                code: "51000".into(),
                message: "no price yet to value a market order".into(),
            })?;
        let rates = self.fees.rates(spec.kind);
        let refuse = |currency: &str, needed: Decimal, free: Decimal| VenueError::Rejected {
            code: INSUFFICIENT.into(),
            message: format!(
                "insufficient {currency} balance: {} needed, {} available",
                needed.normalize(),
                free.normalize()
            ),
        };
        let too_big = || VenueError::Rejected {
            code: "51000".into(),
            message: format!("{} at {reference} is more money than the backtest can count", order.size),
        };
        if state.open.len() >= MAX_OPEN {
            return Err(VenueError::Rejected {
                code: "51024".into(),
                message: format!("the account has {MAX_OPEN} open orders, OKX's most"),
            });
        }
        if spec.kind == InstrumentKind::Spot {
            let (currency, needed) = match order.side {
                Side::Buy => {
                    let cost = reference
                        .checked_mul(order.size)
                        .and_then(|n| n.checked_mul(Decimal::ONE + rates.taker.max(Decimal::ZERO)))
                        .ok_or_else(too_big)?;
                    (&spec.quote, cost)
                }
                Side::Sell => (&spec.base, order.size),
            };
            let balance = state.balances.entry(currency.clone()).or_default();
            let free = balance.total - balance.frozen;
            if needed > free {
                return Err(refuse(currency, needed, free));
            }
            balance.frozen += needed;
            return Ok(needed);
        }
        let held = state.positions.get(&order.instrument).map_or(Decimal::ZERO, |p| p.0);
        let signed = if order.side == Side::Buy { order.size } else { -order.size };
        let opening = ((held + signed).abs() - held.abs()).max(Decimal::ZERO);
        if !opening.is_zero() && !order.reduce_only {
            let needed = reference
                .checked_mul(opening)
                .and_then(|n| n.checked_mul(spec.contract_value))
                .and_then(|n| n.checked_div(self.leverage))
                .ok_or_else(too_big)?;
            let balance = state.balances.entry(spec.quote.clone()).or_default();
            let free = balance.total - balance.frozen;
            if needed > free {
                return Err(refuse(&spec.quote, needed, free));
            }
        }
        Ok(Decimal::ZERO)
    }
}

enum Arrival {
    Fill(Decimal),
    Rest,
    Cancel(String),
}

/// Whether an order is still open after a fill.
#[derive(Debug, PartialEq, Eq)]
enum Left {
    Open,
    Done,
}

fn order_is_market(resting: &Resting) -> bool {
    resting.order.kind == OrderKind::Market
}

/// What takes an order's place while it is being ended (it is never looked at).
fn placeholder() -> Resting {
    Resting {
        order: NewOrder {
            client_id: String::new(),
            instrument: 0,
            side: Side::Buy,
            kind: OrderKind::Market,
            price: None,
            size: Decimal::ZERO,
            reduce_only: false,
            leg: PositionSide::Net,
            origin: None,
        },
        venue_id: String::new(),
        held: Decimal::ZERO,
        arrived: true,
        filled: Decimal::ZERO,
        value: Decimal::ZERO,
    }
}

/// The price a resting order fills at in `bar`, if the bar trades through it.
fn through(order: &NewOrder, bar: &Range) -> Option<Decimal> {
    let limit = order.price?;
    let at = limit.to_f64()?;
    let crossed = match order.side {
        Side::Buy => bar.low < at,
        Side::Sell => bar.high > at,
    };
    crossed.then_some(limit)
}

fn report_balance(currency: &str, b: &Balance) -> BalanceReport {
    BalanceReport { currency: currency.to_string(), total: b.total, available: b.total - b.frozen, frozen: b.frozen }
}

#[async_trait::async_trait]
impl Venue for PaperExchange {
    fn name(&self) -> &str {
        self.name
    }

    fn instruments(&self) -> Vec<InstrumentSpec> {
        let mut specs: Vec<_> = self.specs.values().cloned().collect();
        specs.sort_by_key(|s| s.id);
        specs
    }

    fn candles_from_trades(&self) -> bool {
        false
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<VenueEvent>> {
        self.rx.lock().take()
    }

    async fn place(&self, order: NewOrder) -> Result<PlaceAck, VenueError> {
        let spec = self.specs.get(&order.instrument).ok_or_else(|| VenueError::Rejected {
            code: "51001".into(),
            message: format!("instrument {} does not exist", order.instrument),
        })?;
        let mut state = self.state.lock();
        // Refused ones too: a replay against the same account refuses them the same way.
        Self::note(&mut state, || Request::Place(order.clone()));
        let held = self.admit(&mut state, spec, &order)?;
        state.next_id += 1;
        let venue_id = state.next_id.to_string();
        let resting = Resting {
            order,
            venue_id: venue_id.clone(),
            held,
            arrived: false,
            filled: Decimal::ZERO,
            value: Decimal::ZERO,
        };
        let ts = self.clock.now_ms();
        // Acknowledged when it reaches the exchange: at once where it meets the market at once
        // (close, book); under next-open at the next bar's open (see `open_bar`). Live, OKX
        // pushes `live` when the order is on the book, a few milliseconds after it was sent:
        // a plugin that acts on the acknowledgement acts after the order arrived, as here.
        if self.model != FillModel::NextOpen {
            self.emit(VenueEvent::Order(self.report(&resting, OrderStatus::Live)));
        }
        match self.model {
            FillModel::NextOpen => state.open.push(resting),
            FillModel::Book => self.meet_book(&mut state, spec, resting, ts),
            FillModel::Close => {
                let close = state.last.get(&resting.order.instrument).copied();
                let mut resting = resting;
                match close.map(|c| self.arrive(&mut resting, c)) {
                    Some(Arrival::Fill(price)) => {
                        let size = resting.left();
                        if self.fill(&mut state, spec, &mut resting, price, size, Liquidity::Taker, ts) == Left::Open {
                            state.open.push(resting);
                        }
                    }
                    Some(Arrival::Cancel(why)) => self.end(&mut state, resting, OrderStatus::Canceled, Some(why), ts),
                    Some(Arrival::Rest) | None => state.open.push(resting),
                }
            }
        }
        self.report_balances(&mut state);
        Ok(PlaceAck { venue_id })
    }

    async fn cancel(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        _origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        let mut state = self.state.lock();
        Self::note(&mut state, || Request::Cancel { instrument, client_id: client_id.to_string() });
        let Some(i) = state.open.iter().position(|r| r.order.client_id == client_id) else {
            return Err(VenueError::Rejected {
                code: "51400".into(),
                message: "order cancellation failed as the order has been filled, canceled or does not exist".into(),
            });
        };
        let resting = state.open.remove(i);
        let now = self.clock.now_ms();
        self.end(&mut state, resting, OrderStatus::Canceled, None, now);
        Ok(())
    }

    async fn amend(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        new_price: Option<Decimal>,
        new_size: Option<Decimal>,
        _origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        let mut state = self.state.lock();
        Self::note(&mut state, || Request::Amend {
            instrument,
            client_id: client_id.to_string(),
            price: new_price,
            size: new_size,
        });
        let Some(i) = state.open.iter().position(|r| r.order.client_id == client_id) else {
            return Err(VenueError::Rejected {
                code: "51503".into(),
                message: "order modification failed as the order has been filled, canceled or does not exist".into(),
            });
        };
        let resting = state.open.remove(i);
        let spec = self.specs.get(&resting.order.instrument).cloned();
        // Give back what it held, and take what the amended order needs (refused: it stays).
        if let Some(currency) = self.held_currency(&resting) {
            state.balances.entry(currency).or_default().frozen -= resting.held;
        }
        let mut amended = resting.order.clone();
        if let Some(price) = new_price {
            amended.price = Some(price);
        }
        if let Some(size) = new_size {
            amended.size = size;
        }
        let admitted = spec.as_ref().map(|spec| self.admit(&mut state, spec, &amended));
        match admitted {
            Some(Ok(held)) => {
                let updated = Resting { order: amended, held, ..resting };
                // An order still on its way (next-open, before its bar opens) is acknowledged,
                // amended, when it arrives; one on the book reports the amendment now.
                if updated.arrived {
                    self.emit(VenueEvent::Order(self.report(
                        &updated,
                        if updated.filled.is_zero() { OrderStatus::Live } else { OrderStatus::PartiallyFilled },
                    )));
                }
                state.open.insert(i, updated);
                Ok(())
            }
            Some(Err(e)) => {
                if let Some(currency) = self.held_currency(&resting) {
                    state.balances.entry(currency).or_default().frozen += resting.held;
                }
                state.open.insert(i, resting);
                Err(e)
            }
            None => {
                state.open.insert(i, resting);
                Err(VenueError::Rejected { code: "51001".into(), message: "instrument does not exist".into() })
            }
        }
    }

    async fn open_orders(&self) -> Result<Vec<OrderReport>, VenueError> {
        let state = self.state.lock();
        Ok(state
            .open
            .iter()
            .map(|r| self.report(r, if r.filled.is_zero() { OrderStatus::Live } else { OrderStatus::PartiallyFilled }))
            .collect())
    }

    async fn balances(&self) -> Result<Vec<BalanceReport>, VenueError> {
        Ok(self.balance_reports())
    }

    async fn positions(&self) -> Result<Vec<PositionReport>, VenueError> {
        let state = self.state.lock();
        let mut positions: Vec<PositionReport> = state
            .positions
            .iter()
            .filter(|(_, (size, _))| !size.is_zero())
            .map(|(instrument, (size, avg))| PositionReport {
                instrument: *instrument,
                side: PositionSide::Net,
                size: *size,
                avg_price: *avg,
            })
            .collect();
        positions.sort_by_key(|p| p.instrument);
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradebox_core::Venue;

    #[test]
    fn float_reads_typical_prices_exactly() {
        for (text, want) in [("64123.5", 64123.5), ("0.1", 0.1), ("-2.75", -2.75), ("0.00000001", 1e-8), ("0", 0.0)] {
            let d: Decimal = text.parse().expect("decimal");
            assert_eq!(float(d), want, "{text}");
        }
    }

    fn spot() -> InstrumentSpec {
        InstrumentSpec {
            id: 1,
            symbol: "BTC-USDT".into(),
            kind: InstrumentKind::Spot,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: "0.1".parse().expect("tick"),
            lot_size: "0.001".parse().expect("lot"),
            min_size: "0.001".parse().expect("min"),
            contract_value: Decimal::ONE,
        }
    }

    fn exchange(model: FillModel) -> (PaperExchange, mpsc::UnboundedReceiver<VenueEvent>) {
        let (clock, _) = Clock::virtual_at(1_000);
        let balances = [("USDT".to_string(), Decimal::from(1_000_000)), ("BTC".to_string(), Decimal::from(10))];
        let x = PaperExchange::new(
            vec![spot()],
            &balances,
            clock,
            model,
            Fees::flat("0.001".parse().expect("fee")),
            Decimal::ONE,
        );
        let rx = x.take_events().expect("events");
        (x, rx)
    }

    fn order(id: &str, side: Side, kind: OrderKind, price: Option<&str>, size: &str) -> NewOrder {
        NewOrder {
            client_id: id.into(),
            instrument: 1,
            side,
            kind,
            price: price.map(|p| p.parse().expect("price")),
            size: size.parse().expect("size"),
            reduce_only: false,
            leg: PositionSide::Net,
            origin: None,
        }
    }

    /// The venue answers at once: poll its future once.
    fn now<T>(f: impl std::future::Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the backtest's exchange must answer at once"),
        }
    }

    fn fills(rx: &mut mpsc::UnboundedReceiver<VenueEvent>) -> Vec<(String, String, String, Liquidity)> {
        let mut out = Vec::new();
        while let Ok(event) = rx.try_recv() {
            if let VenueEvent::Fill(f) = event {
                out.push((f.client_id, f.price.to_string(), f.size.to_string(), f.liquidity));
            }
        }
        out
    }

    fn book(bids: &[(f64, f64)], asks: &[(f64, f64)]) -> MarketEvent {
        MarketEvent::Book { instrument: 1, ts_ms: 1_000, bids: bids.to_vec(), asks: asks.to_vec() }
    }

    #[test]
    fn the_book_model_walks_levels_rests_and_fills_on_trades_through() {
        let (x, mut rx) = exchange(FillModel::Book);
        x.on_market(&book(&[(100.0, 1.0), (99.0, 5.0)], &[(101.0, 1.0), (102.0, 2.0)]));
        // A market buy of 4 takes 1 at 101, and the rest at 102, the last level shown (the book
        // goes deeper than the recording shows).
        now(x.place(order("m", Side::Buy, OrderKind::Market, None, "4"))).expect("placed");
        let got = fills(&mut rx);
        assert_eq!(
            got.iter().map(|f| (f.1.as_str(), f.2.as_str())).collect::<Vec<_>>(),
            vec![("101", "1"), ("102", "3")]
        );
        assert!(got.iter().all(|f| f.3 == Liquidity::Taker));
        // A limit buy at 101.5 for 3 takes the 101 level and rests for 2; a trade at 101.5 is
        // a touch, not a fill; one at 101.4 goes through it: the rest fills at the limit.
        x.on_market(&book(&[(100.0, 1.0)], &[(101.0, 1.0), (102.0, 2.0)]));
        now(x.place(order("l", Side::Buy, OrderKind::Limit, Some("101.5"), "3"))).expect("placed");
        assert_eq!(fills(&mut rx).iter().map(|f| f.2.as_str()).collect::<Vec<_>>(), vec!["1"]);
        let trade =
            |price| MarketEvent::Trade { instrument: 1, ts_ms: 1_000, price, size: 1.0, taker_side: Side::Sell };
        x.on_market(&trade(101.5));
        assert!(fills(&mut rx).is_empty());
        x.on_market(&trade(101.4));
        let rest = fills(&mut rx);
        assert_eq!((rest[0].1.as_str(), rest[0].2.as_str(), rest[0].3), ("101.5", "2", Liquidity::Maker));
        // Post-only that would take, and a FOK the book cannot fill: cancelled untouched.
        now(x.place(order("p", Side::Buy, OrderKind::PostOnly, Some("105"), "1"))).expect("placed");
        now(x.place(order("f", Side::Buy, OrderKind::Fok, Some("101"), "5"))).expect("placed");
        assert!(fills(&mut rx).is_empty());
        // A resting sell fills when the best bid reaches it.
        now(x.place(order("s", Side::Sell, OrderKind::Limit, Some("103"), "1"))).expect("placed");
        x.on_market(&book(&[(103.0, 1.0)], &[(104.0, 1.0)]));
        assert_eq!(fills(&mut rx).iter().map(|f| (f.0.as_str(), f.1.as_str())).collect::<Vec<_>>(), vec![("s", "103")]);
    }

    #[test]
    fn prices_become_the_decimals_they_were_written_as() {
        for (x, text) in [
            (60_000.1, "60000.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-7, "0.0000001"),
            (2e17, "200000000000000000"),
        ] {
            assert_eq!(decimal(x).map(|d| d.to_string()), Some(text.to_string()), "{x}");
        }
        assert_eq!(decimal(f64::NAN), None);
    }

    #[test]
    fn next_open_and_close_fill_as_documented() {
        let (x, mut rx) = exchange(FillModel::NextOpen);
        x.mark(1, 100.0);
        now(x.place(order("m", Side::Buy, OrderKind::Market, None, "1"))).expect("placed");
        now(x.place(order("l", Side::Buy, OrderKind::Limit, Some("98"), "1"))).expect("placed");
        assert!(fills(&mut rx).is_empty(), "nothing before the next bar opens");
        x.open_bar(1, Range { ts_ms: 60_000, open: 99.5, high: 101.0, low: 98.0 });
        // The market order at the open; the limit only touched (low 98): not through.
        assert_eq!(
            fills(&mut rx).iter().map(|f| (f.0.as_str(), f.1.as_str())).collect::<Vec<_>>(),
            vec![("m", "99.5")]
        );
        x.open_bar(1, Range { ts_ms: 120_000, open: 99.0, high: 99.0, low: 97.9 });
        assert_eq!(
            fills(&mut rx).iter().map(|f| (f.0.as_str(), f.1.as_str(), f.3)).collect::<Vec<_>>(),
            vec![("l", "98", Liquidity::Maker)]
        );
        let (x, mut rx) = exchange(FillModel::Close);
        x.mark(1, 100.0);
        now(x.place(order("c", Side::Sell, OrderKind::Market, None, "1"))).expect("placed");
        assert_eq!(fills(&mut rx).iter().map(|f| f.1.as_str()).collect::<Vec<_>>(), vec!["100"]);
        // A buy the account cannot pay for is refused with OKX's code.
        let e = now(x.place(order("big", Side::Buy, OrderKind::Market, None, "100000"))).expect_err("refused");
        assert!(e.to_string().contains("51008"), "{e}");
    }

    /// The order reports of a next-open order: none until it arrives, then `live` and what
    /// happened to it there.
    #[test]
    fn next_open_orders_are_acknowledged_when_they_arrive() {
        let statuses = |rx: &mut mpsc::UnboundedReceiver<VenueEvent>| {
            let mut out = Vec::new();
            while let Ok(event) = rx.try_recv() {
                if let VenueEvent::Order(r) = event {
                    out.push((r.client_id, r.status, r.price.map(|p| p.to_string())));
                }
            }
            out
        };
        let (x, mut rx) = exchange(FillModel::NextOpen);
        x.mark(1, 100.0);
        now(x.place(order("m", Side::Buy, OrderKind::Market, None, "1"))).expect("placed");
        now(x.place(order("l", Side::Buy, OrderKind::Limit, Some("90"), "1"))).expect("placed");
        now(x.place(order("p", Side::Buy, OrderKind::PostOnly, Some("100"), "1"))).expect("placed");
        // Amended on its way: no report now; it arrives amended.
        now(x.amend(1, "l", Some("91".parse().expect("price")), None, None)).expect("amended");
        assert!(statuses(&mut rx).is_empty(), "nothing acknowledged before the next open");
        x.open_bar(1, Range { ts_ms: 60_000, open: 99.5, high: 101.0, low: 95.0 });
        let live = Some(OrderStatus::Live);
        let got = statuses(&mut rx);
        let of = |id: &str| got.iter().filter(|r| r.0 == id).map(|r| (r.1, r.2.clone())).collect::<Vec<_>>();
        assert_eq!(of("m"), [(OrderStatus::Live, None), (OrderStatus::Filled, None)]);
        assert_eq!(of("l"), [(OrderStatus::Live, Some("91".to_string()))]);
        // A post-only that would take is cancelled on arrival, never live.
        assert_eq!(of("p").iter().map(|r| Some(r.0)).collect::<Vec<_>>(), [Some(OrderStatus::Canceled)]);
        assert!(of("p").iter().all(|r| Some(r.0) != live));
    }
}
