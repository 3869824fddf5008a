//! What the simulator pushes over WebSocket: market data built once per change and shared by
//! every subscriber (a frame is serialised once and handed out as an `Arc<str>`), books with a
//! `seqId`/`prevSeqId` chain, trades (aggregated and `trades-all`), candles of every bar OKX
//! offers built from trades, and the account's private pushes.
//!
//! Candles of every bar are kept up to date from the first trade, so a subscription made in the
//! middle of a bar sees the whole bar; frames are only built for bars someone subscribes to
//! ([`Feed::watch`]), since one trade touches all 27 of them.
//!
//! Volume units follow OKX's docs: a candle's `vol` is base currency on spot and contracts on
//! swaps, `volCcy` quote currency on spot and base currency on swaps, `volCcyQuote` always quote.
//!
//! Everything goes through one broadcast channel, in the order it happened; each connection
//! keeps what its subscriptions ask for. Control messages (drop every connection, a service
//! notice) travel the same way, so a fault reaches every connection at once.

use super::channel::{BAR_COUNT, Bar, Channel};
use super::ticker::{Stats24h, ticker_value};
use crate::venue::BookSnapshot;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::broadcast;
use tradebox_core::{Clock, InstrumentId, InstrumentKind, InstrumentSpec, Side};

/// Depth of the `books` channel.
pub const BOOK_DEPTH: usize = 400;
/// Pushes a connection may fall behind before it is closed (OKX: 4005 buffer full).
pub const BACKLOG: usize = 8_192;

/// One thing to push.
#[derive(Debug, Clone)]
pub enum Push {
    /// A frame identical for every subscriber of `(channel, inst_id)`.
    Public {
        /// Channel.
        channel: Channel,
        /// Instrument.
        inst_id: Arc<str>,
        /// The whole frame.
        frame: Arc<str>,
    },
    /// A `books5` or `bbo-tbt` snapshot; only for subscribers that have not seen this `seqId`
    /// (the snapshot sent on subscribing may be newer than pushes already queued).
    Top {
        /// `books5` or `bbo-tbt`.
        channel: Channel,
        /// Instrument.
        inst_id: Arc<str>,
        /// The book's `seqId`.
        seq: i64,
        /// The whole frame.
        frame: Arc<str>,
    },
    /// A `books` increment; only for subscribers whose chain it continues.
    BookUpdate {
        /// Instrument.
        inst_id: Arc<str>,
        /// The previous message's `seqId`.
        prev_seq: i64,
        /// This message's `seqId`.
        seq: i64,
        /// The whole frame.
        frame: Arc<str>,
    },
    /// A private push (`orders`, `account`, `positions`): the data items; each subscriber's
    /// frame carries its own subscription arg.
    Private {
        /// Channel name.
        channel: &'static str,
        /// `SPOT` / `SWAP` (orders, positions) or the currency (account).
        inst_type: &'static str,
        /// Instrument (orders, positions) or currency (account).
        key: Arc<str>,
        /// The `data` array's items, serialised.
        data: Arc<str>,
    },
    /// Close every connection now (fault injection: a dropped network).
    DropAll,
    /// Send OKX's service-upgrade notice (64008) to every connection.
    Notice,
    /// Every connection goes silent (sends nothing, not even `pong`) for this long, ms.
    Stall(u64),
}

#[derive(Default)]
struct BookState {
    bids: BTreeMap<Decimal, (Decimal, u32)>,
    asks: BTreeMap<Decimal, (Decimal, u32)>,
    seq: i64,
    published: bool,
    /// Sequence numbers the next update skips (fault injection).
    gap: u32,
}

/// One bar of one instrument, being built.
#[derive(Debug, Clone, Copy)]
struct Candle {
    /// When it opened, ms.
    open: i64,
    /// Open, high, low, close.
    ohlc: [Decimal; 4],
    /// Traded size as the trades count it: base on spot, contracts on swaps.
    vol: Decimal,
    /// Base currency.
    base: Decimal,
    /// Quote currency (Σ price × base).
    quote: Decimal,
    /// When it was last pushed, ms.
    pushed: i64,
}

impl Candle {
    fn new(open: i64, price: Decimal) -> Self {
        let zero = Decimal::ZERO;
        Self { open, ohlc: [price; 4], vol: zero, base: zero, quote: zero, pushed: 0 }
    }

    /// `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`.
    fn row(&self, kind: InstrumentKind, confirm: &str) -> Value {
        let s = |d: Decimal| d.normalize().to_string();
        let quote = self.quote.round_dp(8);
        let vol_ccy = if kind == InstrumentKind::Swap { self.base } else { quote };
        let [o, h, l, c] = self.ohlc;
        json!([self.open.to_string(), s(o), s(h), s(l), s(c), s(self.vol), s(vol_ccy), s(quote), confirm])
    }
}

#[derive(Default)]
struct State {
    books: HashMap<InstrumentId, BookState>,
    candles: HashMap<(InstrumentId, Bar), Candle>,
    next_trade: u64,
}

/// The publisher.
pub struct Feed {
    tx: broadcast::Sender<Push>,
    state: Mutex<State>,
    /// Subscriptions per bar (any instrument): bars nobody watches are not serialised.
    watchers: Arc<[AtomicUsize]>,
    /// What the snapshots' `ts` reads.
    clock: Clock,
}

/// One subscription's interest in a bar; dropping it (unsubscribe, connection gone) ends it.
#[derive(Debug)]
pub struct Watch {
    watchers: Arc<[AtomicUsize]>,
    bar: usize,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.watchers[self.bar].fetch_sub(1, Ordering::Relaxed);
    }
}

fn level(p: &Decimal, s: &Decimal, n: u32) -> Value {
    json!([p.normalize().to_string(), s.normalize().to_string(), "0", n.to_string()])
}

fn levels<'a>(it: impl Iterator<Item = (&'a Decimal, &'a (Decimal, u32))>, n: usize) -> Vec<Value> {
    it.take(n).map(|(p, (s, c))| level(p, s, *c)).collect()
}

impl Default for Feed {
    fn default() -> Self {
        Self::new(Clock::system())
    }
}

impl Feed {
    /// A publisher with no subscribers yet, stamping its snapshots with `clock`'s time.
    pub fn new(clock: Clock) -> Self {
        let (tx, _) = broadcast::channel(BACKLOG);
        Self {
            tx,
            state: Mutex::new(State { next_trade: 500_000_000, ..State::default() }),
            watchers: (0..BAR_COUNT).map(|_| AtomicUsize::new(0)).collect(),
            clock,
        }
    }

    /// Marks `bar` as watched until the returned guard is dropped.
    pub fn watch(&self, bar: Bar) -> Watch {
        self.watchers[bar.index()].fetch_add(1, Ordering::Relaxed);
        Watch { watchers: self.watchers.clone(), bar: bar.index() }
    }

    /// A receiver of everything pushed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Push> {
        self.tx.subscribe()
    }

    /// Sends a control message to every connection.
    pub fn control(&self, push: Push) {
        let _ = self.tx.send(push);
    }

    /// Makes the next book update of every instrument skip sequence numbers (a gap).
    pub fn inject_gap(&self) {
        for book in self.state.lock().books.values_mut() {
            book.gap = 1;
        }
    }

    fn send(&self, push: Push) {
        // No subscriber is fine: nobody listens.
        let _ = self.tx.send(push);
    }

    /// The current `books` snapshot frame and its `seqId`. Updates with a `seqId` above it
    /// follow it without a gap. Before the first update the book is taken from `fresh`.
    pub fn books_snapshot(
        &self,
        spec: &InstrumentSpec,
        fresh: impl FnOnce() -> Option<BookSnapshot>,
    ) -> (Arc<str>, i64) {
        let mut s = self.state.lock();
        let book = published(&mut s, spec, fresh);
        let frame = json!({
            "arg": {"channel": "books", "instId": spec.symbol}, "action": "snapshot",
            "data": [{"asks": levels(book.asks.iter(), BOOK_DEPTH), "bids": levels(book.bids.iter().rev(), BOOK_DEPTH),
                      "ts": self.clock.now_ms().to_string(), "checksum": 0, "prevSeqId": -1, "seqId": book.seq}],
        });
        (Arc::from(frame.to_string()), book.seq)
    }

    /// The current `books5` or `bbo-tbt` snapshot frame and its `seqId`: what a subscription
    /// starts with, and what OKX sends again when the book has been still for a while.
    pub fn top_snapshot(
        &self,
        spec: &InstrumentSpec,
        channel: Channel,
        fresh: impl FnOnce() -> Option<BookSnapshot>,
    ) -> (Arc<str>, i64) {
        let mut s = self.state.lock();
        let book = published(&mut s, spec, fresh);
        (Arc::from(top_frame(spec, book, channel, &self.clock.now_ms().to_string()).to_string()), book.seq)
    }

    /// A new state of an instrument's book (exact, up to [`BOOK_DEPTH`] levels per side):
    /// pushes the `books` increment, `books5` and `bbo-tbt`, and the ticker.
    pub(crate) fn on_book(&self, spec: &InstrumentSpec, snap: &BookSnapshot, stats: Option<&Stats24h>) {
        let inst: Arc<str> = Arc::from(spec.symbol.as_str());
        let ts = snap.ts_ms.to_string();
        let mut s = self.state.lock();
        let book = s.books.entry(spec.id).or_insert_with(|| BookState { seq: 1_000, ..BookState::default() });
        let new_bids: BTreeMap<Decimal, (Decimal, u32)> = snap.bids.iter().map(|(p, sz, n)| (*p, (*sz, *n))).collect();
        let new_asks: BTreeMap<Decimal, (Decimal, u32)> = snap.asks.iter().map(|(p, sz, n)| (*p, (*sz, *n))).collect();
        let diff = |old: &BTreeMap<Decimal, (Decimal, u32)>, new: &BTreeMap<Decimal, (Decimal, u32)>| {
            let mut out = Vec::new();
            for (p, v) in new {
                if old.get(p) != Some(v) {
                    out.push(level(p, &v.0, v.1));
                }
            }
            for p in old.keys().filter(|p| !new.contains_key(*p)) {
                out.push(level(p, &Decimal::ZERO, 0));
            }
            out
        };
        let (bid_changes, ask_changes) = (diff(&book.bids, &new_bids), diff(&book.asks, &new_asks));
        let changed = !bid_changes.is_empty() || !ask_changes.is_empty() || !book.published;
        book.bids = new_bids;
        book.asks = new_asks;
        if changed {
            let gap = std::mem::take(&mut book.gap);
            let prev = book.seq;
            book.seq += 1 + i64::from(gap);
            book.published = true;
            let frame = json!({
                "arg": {"channel": "books", "instId": spec.symbol}, "action": "update",
                "data": [{"asks": ask_changes, "bids": bid_changes, "ts": ts, "checksum": 0,
                          "prevSeqId": prev + i64::from(gap), "seqId": book.seq}],
            });
            self.send(Push::BookUpdate {
                inst_id: inst.clone(),
                prev_seq: prev + i64::from(gap),
                seq: book.seq,
                frame: Arc::from(frame.to_string()),
            });
        }
        let seq = book.seq;
        let top5 = top_frame(spec, book, Channel::Books5, &ts);
        let bbo = top_frame(spec, book, Channel::BboTbt, &ts);
        drop(s);
        for (channel, frame) in [(Channel::Books5, top5), (Channel::BboTbt, bbo)] {
            self.send(Push::Top { channel, inst_id: inst.clone(), seq, frame: Arc::from(frame.to_string()) });
        }
        let ticker =
            json!({"arg": {"channel": "tickers", "instId": spec.symbol}, "data": [ticker_value(spec, snap, stats)]});
        self.send(Push::Public { channel: Channel::Tickers, inst_id: inst, frame: Arc::from(ticker.to_string()) });
    }

    /// A public trade: pushes `trades` and `trades-all` (one push per trade, as the simulated
    /// market makes no multi-fill takers) and updates the candles of every bar, pushing a
    /// watched bar at most once a second and when it closes.
    pub(crate) fn on_trade(&self, spec: &InstrumentSpec, price: Decimal, size: Decimal, taker: Side, ts_ms: i64) {
        let inst: Arc<str> = Arc::from(spec.symbol.as_str());
        let mut s = self.state.lock();
        s.next_trade += 1;
        let trade_id = s.next_trade;
        let side = if taker == Side::Buy { "buy" } else { "sell" };
        let (px, sz, ts) = (price.normalize().to_string(), size.normalize().to_string(), ts_ms.to_string());
        let trade = json!({
            "arg": {"channel": "trades", "instId": spec.symbol},
            "data": [{"instId": spec.symbol, "tradeId": trade_id.to_string(), "px": px, "sz": sz, "side": side,
                      "ts": ts, "count": "1", "source": "0", "seqId": trade_id}],
        });
        let trade_all = json!({
            "arg": {"channel": "trades-all", "instId": spec.symbol},
            "data": [{"instId": spec.symbol, "tradeId": trade_id.to_string(), "px": px, "sz": sz, "side": side,
                      "source": "0", "ts": ts}],
        });
        let base = if spec.kind == InstrumentKind::Swap { size * spec.contract_value } else { size };
        let mut frames = Vec::new();
        for bar in Bar::all() {
            let open = bar.open(ts_ms);
            let candle = s.candles.entry((spec.id, bar)).or_insert_with(|| Candle::new(open, price));
            let mut closed = None;
            if candle.open != open {
                closed = Some(*candle);
                *candle = Candle::new(open, price);
            }
            candle.ohlc[1] = candle.ohlc[1].max(price);
            candle.ohlc[2] = candle.ohlc[2].min(price);
            candle.ohlc[3] = price;
            candle.vol += size;
            candle.base += base;
            candle.quote += base * price;
            let due = ts_ms - candle.pushed >= 1_000;
            if due {
                candle.pushed = ts_ms;
            }
            if self.watchers[bar.index()].load(Ordering::Relaxed) == 0 {
                continue;
            }
            let current = due.then_some((*candle, "0"));
            for (c, confirm) in closed.map(|c| (c, "1")).into_iter().chain(current) {
                let frame = json!({"arg": {"channel": bar.channel(), "instId": spec.symbol}, "data": [c.row(spec.kind, confirm)]});
                frames.push((Channel::Candle(bar), frame));
            }
        }
        drop(s);
        for (channel, frame) in [(Channel::Trades, trade), (Channel::TradesAll, trade_all)].into_iter().chain(frames) {
            self.send(Push::Public { channel, inst_id: inst.clone(), frame: Arc::from(frame.to_string()) });
        }
    }

    /// A private push.
    pub fn private(&self, channel: &'static str, inst_type: &'static str, key: &str, data: Value) {
        self.send(Push::Private { channel, inst_type, key: Arc::from(key), data: Arc::from(data.to_string()) });
    }
}

/// The instrument's book, taken from `fresh` if nothing has been published yet.
fn published<'a>(
    s: &'a mut State,
    spec: &InstrumentSpec,
    fresh: impl FnOnce() -> Option<BookSnapshot>,
) -> &'a mut BookState {
    let book = s.books.entry(spec.id).or_insert_with(|| BookState { seq: 1_000, ..BookState::default() });
    if !book.published
        && let Some(snap) = fresh()
    {
        book.bids = snap.bids.iter().map(|(p, sz, n)| (*p, (*sz, *n))).collect();
        book.asks = snap.asks.iter().map(|(p, sz, n)| (*p, (*sz, *n))).collect();
        book.published = true;
    }
    book
}

/// A `books5` (5 levels, with `instId` in the item) or `bbo-tbt` (1 level) snapshot frame.
fn top_frame(spec: &InstrumentSpec, book: &BookState, channel: Channel, ts: &str) -> Value {
    let depth = if channel == Channel::Books5 { 5 } else { 1 };
    let mut item = json!({"asks": levels(book.asks.iter(), depth), "bids": levels(book.bids.iter().rev(), depth),
                          "ts": ts, "seqId": book.seq});
    if channel == Channel::Books5 {
        item["instId"] = json!(spec.symbol);
    }
    json!({"arg": {"channel": channel.name(), "instId": spec.symbol}, "data": [item]})
}
