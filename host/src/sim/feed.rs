//! What the simulator pushes over WebSocket: market data built once per change and shared by
//! every subscriber (a frame is serialised once and handed out as an `Arc<str>`), books with a
//! `seqId`/`prevSeqId` chain, candles built from trades, and the account's private pushes.
//!
//! Everything goes through one broadcast channel, in the order it happened; each connection
//! keeps what its subscriptions ask for. Control messages (drop every connection, a service
//! notice) travel the same way, so a fault reaches every connection at once.

use super::exchange::{Stats24h, ticker_value};
use crate::venue::sim::BookSnapshot;
use crate::venue::{InstrumentId, InstrumentKind, InstrumentSpec, Side};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Depth of the `books` channel.
pub const BOOK_DEPTH: usize = 400;
/// Pushes a connection may fall behind before it is closed (OKX: 4005 buffer full).
pub const BACKLOG: usize = 8_192;

/// One thing to push.
#[derive(Debug, Clone)]
pub enum Push {
    /// A frame identical for every subscriber of `(channel, inst_id)`.
    Public {
        /// Channel name.
        channel: &'static str,
        /// Instrument.
        inst_id: Arc<str>,
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

#[derive(Default)]
struct State {
    books: HashMap<InstrumentId, BookState>,
    /// (minute open ms, [o, h, l, c], volume, last push ms)
    candles: HashMap<InstrumentId, (i64, [Decimal; 4], Decimal, i64)>,
    next_trade: u64,
}

/// The publisher.
pub struct Feed {
    tx: broadcast::Sender<Push>,
    state: Mutex<State>,
}

fn level(p: &Decimal, s: &Decimal, n: u32) -> Value {
    json!([p.normalize().to_string(), s.normalize().to_string(), "0", n.to_string()])
}

fn levels<'a>(it: impl Iterator<Item = (&'a Decimal, &'a (Decimal, u32))>, n: usize) -> Vec<Value> {
    it.take(n).map(|(p, (s, c))| level(p, s, *c)).collect()
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    /// A publisher with no subscribers yet.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(BACKLOG);
        Self { tx, state: Mutex::new(State { next_trade: 500_000_000, ..State::default() }) }
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
        let book = s.books.entry(spec.id).or_insert_with(|| BookState { seq: 1_000, ..BookState::default() });
        if !book.published
            && let Some(snap) = fresh()
        {
            book.bids = snap.bids.iter().map(|(p, sz, n)| (*p, (*sz, *n))).collect();
            book.asks = snap.asks.iter().map(|(p, sz, n)| (*p, (*sz, *n))).collect();
            book.published = true;
        }
        let frame = json!({
            "arg": {"channel": "books", "instId": spec.symbol}, "action": "snapshot",
            "data": [{"asks": levels(book.asks.iter(), BOOK_DEPTH), "bids": levels(book.bids.iter().rev(), BOOK_DEPTH),
                      "ts": now().to_string(), "checksum": 0, "prevSeqId": -1, "seqId": book.seq}],
        });
        (Arc::from(frame.to_string()), book.seq)
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
        let top5 = json!({
            "arg": {"channel": "books5", "instId": spec.symbol},
            "data": [{"asks": levels(book.asks.iter(), 5), "bids": levels(book.bids.iter().rev(), 5),
                      "instId": spec.symbol, "ts": ts, "seqId": seq}],
        });
        let bbo = json!({
            "arg": {"channel": "bbo-tbt", "instId": spec.symbol},
            "data": [{"asks": levels(book.asks.iter(), 1), "bids": levels(book.bids.iter().rev(), 1), "ts": ts, "seqId": seq}],
        });
        drop(s);
        self.send(Push::Public { channel: "books5", inst_id: inst.clone(), frame: Arc::from(top5.to_string()) });
        self.send(Push::Public { channel: "bbo-tbt", inst_id: inst.clone(), frame: Arc::from(bbo.to_string()) });
        let ticker =
            json!({"arg": {"channel": "tickers", "instId": spec.symbol}, "data": [ticker_value(spec, snap, stats)]});
        self.send(Push::Public { channel: "tickers", inst_id: inst, frame: Arc::from(ticker.to_string()) });
    }

    /// A public trade: pushes `trades` and, at most once a second (or when the minute
    /// closes), `candle1m`.
    pub(crate) fn on_trade(&self, spec: &InstrumentSpec, price: Decimal, size: Decimal, taker: Side, ts_ms: i64) {
        let inst: Arc<str> = Arc::from(spec.symbol.as_str());
        let mut s = self.state.lock();
        s.next_trade += 1;
        let trade_id = s.next_trade;
        let side = if taker == Side::Buy { "buy" } else { "sell" };
        let trade = json!({
            "arg": {"channel": "trades", "instId": spec.symbol},
            "data": [{"instId": spec.symbol, "tradeId": trade_id.to_string(), "px": price.normalize().to_string(),
                      "sz": size.normalize().to_string(), "side": side, "ts": ts_ms.to_string(), "count": "1",
                      "source": "0", "seqId": trade_id}],
        });
        let minute = ts_ms - ts_ms.rem_euclid(60_000);
        let mut closed = None;
        let candle = s.candles.entry(spec.id).or_insert((minute, [price; 4], Decimal::ZERO, 0));
        if candle.0 != minute {
            closed = Some(*candle);
            *candle = (minute, [price; 4], Decimal::ZERO, 0);
        }
        candle.1[1] = candle.1[1].max(price);
        candle.1[2] = candle.1[2].min(price);
        candle.1[3] = price;
        candle.2 += size;
        let due = ts_ms - candle.3 >= 1_000;
        if due {
            candle.3 = ts_ms;
        }
        let current = *candle;
        drop(s);
        self.send(Push::Public { channel: "trades", inst_id: inst.clone(), frame: Arc::from(trade.to_string()) });
        let cv = if spec.kind == InstrumentKind::Swap { spec.contract_value } else { Decimal::ONE };
        let row = |(open, [o, h, l, c], vol, _): (i64, [Decimal; 4], Decimal, i64), confirm: &str| {
            let base = vol * cv;
            json!([
                open.to_string(),
                o.normalize().to_string(),
                h.normalize().to_string(),
                l.normalize().to_string(),
                c.normalize().to_string(),
                vol.normalize().to_string(),
                base.normalize().to_string(),
                (base * c).round_dp(8).normalize().to_string(),
                confirm
            ])
        };
        for (candle, confirm) in closed.map(|c| (c, "1")).into_iter().chain(due.then_some((current, "0"))) {
            let frame = json!({"arg": {"channel": "candle1m", "instId": spec.symbol}, "data": [row(candle, confirm)]});
            self.send(Push::Public { channel: "candle1m", inst_id: inst.clone(), frame: Arc::from(frame.to_string()) });
        }
    }

    /// A private push.
    pub fn private(&self, channel: &'static str, inst_type: &'static str, key: &str, data: Value) {
        self.send(Push::Private { channel, inst_type, key: Arc::from(key), data: Arc::from(data.to_string()) });
    }
}

fn now() -> i64 {
    crate::engine::now_ms()
}
