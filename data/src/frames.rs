//! A recorded OKX WebSocket feed as market events, in the order received.
//!
//! The file is what `tradebox feed check` reads and `tradebox record` writes: one raw OKX
//! WebSocket frame per line, exactly as received, optionally after its receive time in
//! milliseconds and a space (`1765108800123 {"arg":...}`); `#gap` lines where the recorder lost
//! its connection (every book starts afresh after one: its `seqId` chain is broken there, and
//! the reconnection brings new snapshots); blank lines are skipped (the line format:
//! `tradebox_okx::ws::recorded`). The file may be zstd-compressed (told by zstd's magic bytes,
//! not the name); a compressed file cut short (a recorder killed before closing it) reads up
//! to where it was cut and then ends with one error saying so. Each frame goes through the host's own
//! parser (`tradebox_okx::ws::message`), and books through its book builder
//! (`tradebox_okx::ws::book`, with its `seqId` chain and checksum checks), so a replay sees what
//! the live host saw, numbers converted the same way (`tradebox_core::num::shown`, OKX's `""`
//! as 0).
//!
//! Yielded: tickers, public trades (`trades`, `trades-all`), the top of a book after each push
//! (`books`, `books5`, `bbo-tbt`, `books-l2-tbt`, `books50-l2-tbt`) and candles (`candle*`).
//! Skipped: events (subscribe acknowledgements, errors, notices), `pong`, order-operation
//! replies, private pushes (orders, account, positions: not market data) and channels the host
//! does not read (as `feed check` counts them, not as errors). A line that is not a frame OKX
//! sends is an error naming the line, as is a book push that does not continue its book (an
//! update before a snapshot, a `seqId` gap, a checksum mismatch) unless
//! [`Frames::skip_stale_books`] asks for the host's behaviour instead.
//!
//! Times are not checked for order: channels interleave, and a forming candle is pushed again
//! and again with the same time.
//!
//! A caller that wants a few of a feed's instruments says so ([`Frames::only`]): the others'
//! books, the costly part of a feed, are then never built.

use crate::DataError;
use crate::candles::Bar;
use crate::input::{LineCap, LineTooLong};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use tradebox_core::Side;
use tradebox_core::num::shown;
use tradebox_okx::ws::book::{Action, BookError, OrderBook};
use tradebox_okx::ws::message::{Data, Frame, Push, parse};
use tradebox_okx::ws::recorded::{Line, split};

/// The first four bytes of every zstd frame (RFC 8878).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Book levels per side a [`RecordedEvent::Book`] carries by default (what the host hands its
/// plugins).
pub const BOOK_DEPTH: usize = 5;

/// The longest line (one frame) of a recorded feed, in bytes, its newline not counted. OKX's
/// largest frames are book snapshots (`books`: 400 levels a side, `books-l2-tbt`: 400, `books50`:
/// 50), tens of kilobytes; a line far above that is not a frame, and reading on would buffer it
/// whole. Such a line is an error, `FILE:LINE: line longer than 16777216 bytes`.
pub const MAX_FRAME_LINE: u64 = 16 << 20;

/// One market event from a recorded feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The frame's own time (OKX's `ts`; a candle's opening time), ms since the Unix epoch.
    pub ts_ms: i64,
    /// When the recorder received the frame (ms since the Unix epoch, its machine's clock), for
    /// lines that carry it (`tradebox record` writes it; raw captures have none).
    pub received_ms: Option<i64>,
    /// The instrument (OKX's `instId`).
    pub symbol: String,
    /// The channel it came on (`tickers`, `books5`, `candle1m`, ...).
    pub channel: String,
    /// What happened.
    pub event: RecordedEvent,
}

/// What a recorded frame says.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordedEvent {
    /// Best bid and ask and the last trade (0 where OKX sent `""`).
    Ticker {
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
    /// A public trade.
    Trade {
        /// Price.
        price: f64,
        /// Size.
        size: f64,
        /// The taker's side.
        taker_side: Side,
    },
    /// The top of the book after the push: (price, size), best first.
    Book {
        /// Bids, highest first.
        bids: Vec<(f64, f64)>,
        /// Asks, lowest first.
        asks: Vec<(f64, f64)>,
    },
    /// A candle and whether it is closed (`confirm`; feeds from before OKX sent it: not closed,
    /// as the host reads them).
    Candle(Bar, bool),
}

/// The market events of a recorded feed, in the file's order.
pub struct Frames {
    path: PathBuf,
    lines: Box<dyn BufRead + Send>,
    line_no: u64,
    text: String,
    ready: VecDeque<Recorded>,
    books: HashMap<(String, String), OrderBook>,
    depth: usize,
    skip_stale: bool,
    book_problems: u64,
    /// The instruments asked for with [`Frames::only`]; `None`: every one.
    only: Option<HashSet<String>>,
    passed_over: u64,
    gaps: u64,
    /// The file goes on from another (`#continues`): a book's updates before its first
    /// snapshot here belong to a chain that began there, and are skipped.
    continued: bool,
    /// The receive time of the line being read.
    received_ms: Option<i64>,
    done: bool,
}

impl std::fmt::Debug for Frames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames").field("path", &self.path).field("line", &self.line_no).finish()
    }
}

/// Opens a recorded feed.
pub fn open(path: &Path) -> Result<Frames, DataError> {
    let file = File::open(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    Ok(from_reader(path, Box::new(file)))
}

/// The text of a recorded feed, decompressed when its first bytes are zstd's, lines capped at
/// [`MAX_FRAME_LINE`] (what `feed check` reads line by line; a read error is best told with
/// [`read_error`]).
pub fn text(path: &Path) -> Result<Box<dyn BufRead + Send>, DataError> {
    let file = File::open(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    Ok(text_of(Box::new(file)))
}

/// Whatever `reader` holds as text: zstd's magic first means compressed (any name), anything
/// else is read as it is.
fn text_of(mut reader: Box<dyn Read + Send>) -> Box<dyn BufRead + Send> {
    let mut head = Vec::with_capacity(ZSTD_MAGIC.len());
    // A read error here shows again, in line terms, when the lines are read.
    let _ = reader.by_ref().take(ZSTD_MAGIC.len() as u64).read_to_end(&mut head);
    let whole: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head.clone()).chain(reader));
    let inner: Box<dyn Read + Send> = if head == ZSTD_MAGIC {
        match zstd::stream::read::Decoder::new(whole) {
            Ok(decoder) => Box::new(decoder),
            Err(e) => Box::new(Failing(Some(e))),
        }
    } else {
        whole
    };
    Box::new(BufReader::with_capacity(1 << 16, LineCap::new(inner, MAX_FRAME_LINE)))
}

/// A reader that only fails (a decoder that could not be set up), so the error reaches the
/// reader's caller in the usual place.
struct Failing(Option<std::io::Error>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self.0.take().unwrap_or_else(|| std::io::Error::other("unreadable")))
    }
}

/// A read error at `line` as one line: a line over the cap, a compressed file cut short (the
/// lines before it were read), damaged compressed data, or text that is not UTF-8.
pub fn read_error(path: &Path, line: u64, e: &std::io::Error) -> DataError {
    if let Some(long) = LineTooLong::of(e) {
        return long.error(path);
    }
    let why = match e.kind() {
        // zstd's decoder at the end of the input inside a frame.
        std::io::ErrorKind::UnexpectedEof => {
            "the compressed file is cut short here (a recording stopped without closing its file); the lines \
             before were read"
                .to_string()
        }
        std::io::ErrorKind::InvalidData if e.to_string().contains("UTF-8") => {
            format!("unreadable (not UTF-8 text?): {e}")
        }
        _ => format!("unreadable (damaged zstd data?): {e}"),
    };
    DataError::at(path, line, why)
}

/// A feed decoded line by line as it arrives ([`Frames::push_line`]), not read from a file;
/// `name` stands for the file in errors. Iterating it yields nothing.
pub fn live(name: &str) -> Frames {
    from_reader(Path::new(name), Box::new(std::io::empty()))
}

/// Reads a recorded feed from `reader`; `path` names it in errors.
pub fn from_reader(path: &Path, reader: Box<dyn Read + Send>) -> Frames {
    Frames {
        path: path.to_path_buf(),
        lines: text_of(reader),
        line_no: 0,
        text: String::new(),
        ready: VecDeque::new(),
        books: HashMap::new(),
        depth: BOOK_DEPTH,
        skip_stale: false,
        book_problems: 0,
        only: None,
        passed_over: 0,
        gaps: 0,
        continued: false,
        received_ms: None,
        done: false,
    }
}

/// Whether events of `symbol` are wanted.
fn wanted(only: &Option<HashSet<String>>, symbol: &str) -> bool {
    only.as_ref().is_none_or(|set| set.contains(symbol))
}

fn side(s: tradebox_okx::model::Side) -> Side {
    match s {
        tradebox_okx::model::Side::Buy => Side::Buy,
        tradebox_okx::model::Side::Sell => Side::Sell,
    }
}

impl Frames {
    /// Book events carry this many levels per side (default [`BOOK_DEPTH`]).
    pub fn with_depth(mut self, depth: usize) -> Self {
        self.depth = depth.max(1);
        self
    }

    /// Reads on past a book push that does not continue its book, as the live host does: the
    /// book gives no events until its next snapshot, and [`Frames::book_problems`] counts it.
    /// Without this the first such push ends the read with an error.
    pub fn skip_stale_books(mut self) -> Self {
        self.skip_stale = true;
        self
    }

    /// Book pushes refused so far (only with [`Frames::skip_stale_books`]).
    pub fn book_problems(&self) -> u64 {
        self.book_problems
    }

    /// Reads only these instruments (OKX's `instId`s): the others' pushes are parsed (a line
    /// must still be a frame) but give no events, and their books are never built, which is
    /// most of a recorded book feed's cost, and its memory, when a run wants few of many.
    /// Their pushes are not checked either: a broken book of an instrument not asked for is
    /// not an error. [`Frames::passed_over`] counts what they would have given.
    pub fn only<S: Into<String>>(mut self, symbols: impl IntoIterator<Item = S>) -> Self {
        self.only = Some(symbols.into_iter().map(Into::into).collect());
        self
    }

    /// `#gap` lines read so far: places where the recorder lost its connection (frames may be
    /// missing there; every book started afresh after each).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Items (tickers, trades, candles, book pushes) of instruments left out by
    /// [`Frames::only`], so far.
    pub fn passed_over(&self) -> u64 {
        self.passed_over
    }

    /// Reads one line into `ready`; `None` at the end of the file.
    fn read_line(&mut self) -> Option<Result<(), DataError>> {
        self.text.clear();
        self.line_no += 1;
        let line = self.line_no;
        if self.text.capacity() > 1 << 20 {
            // One large snapshot must not keep its buffer for the rest of the file.
            self.text.shrink_to(1 << 16);
        }
        match self.lines.read_line(&mut self.text) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(read_error(&self.path, line, &e))),
        }
        let text = std::mem::take(&mut self.text);
        let decoded = self.decode(line, &text);
        self.text = text;
        Some(decoded)
    }

    /// Decodes one line as it arrives, for a feed that is live rather than a file (the paper
    /// venue): the same lines, parser and books as a recording of it read later, so the two
    /// give the same events. Its events are then in [`Frames::take_ready`]. An error names
    /// the line and leaves the reader usable: the next line is read as if this one were not
    /// there (a book it broke gives nothing until its next snapshot, with
    /// [`Frames::skip_stale_books`]); events the line gave before its error are kept.
    pub fn push_line(&mut self, line: &str) -> Result<(), DataError> {
        self.line_no += 1;
        self.decode(self.line_no, line)
    }

    /// The events decoded and not yet taken, in order.
    pub fn take_ready(&mut self) -> std::collections::vec_deque::Drain<'_, Recorded> {
        self.ready.drain(..)
    }

    /// One line's events into `ready`.
    fn decode(&mut self, line: u64, text: &str) -> Result<(), DataError> {
        let text = match split(text) {
            Line::Blank => return Ok(()),
            Line::Gap { .. } => {
                // The chain of every book is broken here: the next snapshot starts each again,
                // and an update before it is what a gap is (the host's skip or an error).
                self.gaps += 1;
                self.books.clear();
                self.continued = false;
                return Ok(());
            }
            Line::Continues { .. } => {
                self.continued = true;
                return Ok(());
            }
            Line::Frame { received_ms, text } => {
                self.received_ms = received_ms;
                text
            }
        };
        let frame = match parse(text) {
            Ok(frame) => frame,
            // A channel the host does not read: `feed check` counts these, and so does nothing here.
            Err(e) if e.kind == "unknown-channel" => return Ok(()),
            Err(e) => return Err(DataError::at(&self.path, line, format!("not an OKX frame: {e}"))),
        };
        match frame {
            Frame::Push(push) => self.push(line, push),
            Frame::Pong | Frame::Event(_) | Frame::OpReply(_) => Ok(()),
        }
    }

    fn push(&mut self, line: u64, push: Push) -> Result<(), DataError> {
        let channel = push.arg.channel.clone();
        let at = |why: String| DataError::at(&self.path, line, why);
        let received_ms = self.received_ms;
        let event = |ts_ms: i64, symbol: &str, event: RecordedEvent| Recorded {
            ts_ms,
            received_ms,
            symbol: symbol.to_string(),
            channel: channel.clone(),
            event,
        };
        let f = |d: Option<_>| d.map_or(0.0, shown);
        let whole_push = matches!(push.data, Data::Candles(_) | Data::Books(_));
        if whole_push && !wanted(&self.only, &push.arg.inst_id) {
            // One instrument a push (its `arg`): nothing of it is built, not even its book.
            self.passed_over += match &push.data {
                Data::Candles(items) => items.len() as u64,
                Data::Books(items) => items.len() as u64,
                _ => 0,
            };
            return Ok(());
        }
        match &push.data {
            Data::Tickers(items) => {
                for t in items {
                    if !wanted(&self.only, &t.inst_id) {
                        self.passed_over += 1;
                        continue;
                    }
                    let (bid, ask, last) = (f(t.bid_px), f(t.ask_px), f(t.last));
                    let (bid_size, ask_size) = (f(t.bid_sz), f(t.ask_sz));
                    // OKX's "" reads as 0 (no price on that side); anything else must be a price.
                    let priced = |p: f64| p == 0.0 || crate::is_price(p);
                    if !(priced(bid)
                        && priced(ask)
                        && priced(last)
                        && crate::is_size(bid_size)
                        && crate::is_size(ask_size))
                        || (bid > 0.0 && ask > 0.0 && bid > ask)
                    {
                        return Err(at(format!(
                            "ticker of {}: bid {bid} x {bid_size}, ask {ask} x {ask_size}, last {last} is not a market",
                            t.inst_id
                        )));
                    }
                    let e = RecordedEvent::Ticker { bid, bid_size, ask, ask_size, last };
                    self.ready.push_back(event(t.ts, &t.inst_id, e));
                }
            }
            Data::Trades(items) => {
                for t in items {
                    if !wanted(&self.only, &t.inst_id) {
                        self.passed_over += 1;
                        continue;
                    }
                    let (price, size) = (shown(t.px), shown(t.sz));
                    if !(crate::is_price(price) && crate::is_size(size) && size > 0.0) {
                        return Err(at(format!(
                            "trade {}: price {price} and size {size} must be above zero",
                            t.trade_id
                        )));
                    }
                    let e = RecordedEvent::Trade { price, size, taker_side: side(t.side) };
                    self.ready.push_back(event(t.ts, &t.inst_id, e));
                }
            }
            Data::Candles(items) => {
                for c in items {
                    let [open, high, low, close] = c.ohlc.map(shown);
                    let bar = Bar { ts_ms: c.ts, open, high, low, close, volume: shown(c.vol) };
                    bar.check().map_err(|why| at(format!("{channel} candle at {}: {why}", c.ts)))?;
                    let e = RecordedEvent::Candle(bar, c.confirmed.unwrap_or(false));
                    self.ready.push_back(event(c.ts, &push.arg.inst_id, e));
                }
            }
            Data::Books(items) => {
                // `books` and the tbt books send a snapshot then updates; the others are whole
                // each time (as `feed check` and the host read them).
                let action = if push.action.as_deref() == Some("update") { Action::Update } else { Action::Snapshot };
                let key = (channel.clone(), push.arg.inst_id.clone());
                for d in items {
                    let fresh = !self.books.contains_key(&key);
                    let book = self.books.entry(key.clone()).or_default();
                    match book.apply(action, d) {
                        // The tail of a chain the earlier file held; the fresh snapshot follows.
                        Err(BookError::NoSnapshot) if fresh && self.continued => {
                            self.books.remove(&key);
                        }
                        Ok(()) => {
                            if let Some((bids, asks)) = book.top(self.depth) {
                                let levels = |ls: Vec<(_, _, u32)>| {
                                    ls.into_iter().map(|(p, s, _)| (shown(p), shown(s))).collect()
                                };
                                let bids: Vec<(f64, f64)> = levels(bids);
                                let asks: Vec<(f64, f64)> = levels(asks);
                                let sane = |ls: &[(f64, f64)]| {
                                    ls.iter().all(|(p, s)| crate::is_price(*p) && crate::is_size(*s))
                                };
                                let crossed = bids.first().zip(asks.first()).is_some_and(|(b, a)| b.0 >= a.0);
                                if !sane(&bids) || !sane(&asks) || crossed {
                                    return Err(at(format!(
                                        "{channel} {}: the book is not a market (a level out of range, or bid {:?} at or \
                                         above ask {:?})",
                                        push.arg.inst_id,
                                        bids.first(),
                                        asks.first()
                                    )));
                                }
                                let e = RecordedEvent::Book { bids, asks };
                                self.ready.push_back(event(d.ts, &push.arg.inst_id, e));
                            }
                        }
                        Err(_) if self.skip_stale => self.book_problems += 1,
                        Err(e) => {
                            return Err(at(format!(
                                "{channel} {}: {e} (read on with Frames::skip_stale_books to replay as the host would)",
                                push.arg.inst_id
                            )));
                        }
                    }
                }
            }
            Data::Orders(_) | Data::Account(_) | Data::Positions(_) => {}
        }
        Ok(())
    }
}

impl Iterator for Frames {
    type Item = Result<Recorded, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            match self.read_line() {
                None => self.done = true,
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    // The first error ends the stream; events of the lines before it were read.
                    self.done = true;
                    self.ready.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
    }

    fn read(text: &str) -> Frames {
        from_reader(Path::new("feed.jsonl"), Box::new(std::io::Cursor::new(text.as_bytes().to_vec())))
    }

    /// The WebSocket frames of a capture whose lines each wrap one as {"test","line","msg"}
    /// (REST bodies share the file).
    fn unwrapped_capture() -> Vec<String> {
        let text = std::fs::read_to_string(fixture("cryptomsgparser_okx_v5_msgs.jsonl")).expect("fixture");
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| v["msg"].clone())
            .filter(|m| m.get("arg").is_some() || m.get("event").is_some())
            .map(|m| m.to_string())
            .collect()
    }

    #[test]
    fn lines_pushed_one_by_one_give_what_the_file_gives() {
        // The paper venue decodes its live feed this way and a backtest reads the recording of
        // it as a file: the two must agree event for event, books included.
        let unwrapped = unwrapped_capture();
        let snapshot = r#"{"arg":{"channel":"books","instId":"X"},"action":"snapshot","data":[{"asks":[["101","1","0","1"],["102","2","0","1"]],"bids":[["100","1","0","1"],["99","3","0","2"]],"ts":"10","checksum":0,"prevSeqId":-1,"seqId":10}]}"#;
        let update = r#"{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[["101","0","0","0"]],"bids":[["100.5","4","0","1"]],"ts":"11","checksum":0,"prevSeqId":10,"seqId":11}]}"#;
        let chained =
            format!("15 {snapshot}\n16 {update}\n17 #gap public dropped\n18 {update}\n19 {snapshot}\n20 {update}\n");
        let texts = [
            std::fs::read_to_string(fixture("tardis_okx_v5_msgs.jsonl")).expect("fixture"),
            unwrapped.join("\n"),
            chained,
        ];
        for text in texts {
            let from_file: Vec<Recorded> = read(&text).skip_stale_books().map(|r| r.expect("reads")).collect();
            let mut live = live("live").skip_stale_books();
            let mut pushed = Vec::new();
            for line in text.lines() {
                live.push_line(line).expect("decodes");
                pushed.extend(live.take_ready());
            }
            assert!(!from_file.is_empty());
            assert_eq!(pushed, from_file);
        }
        // A bad line is an error for that line only: the next one decodes.
        let mut live = live("live");
        assert!(live.push_line("{not json").is_err());
        let trade = r#"{"arg":{"channel":"trades","instId":"X"},"data":[{"instId":"X","tradeId":"1","px":"2","sz":"1","side":"sell","ts":"5"}]}"#;
        live.push_line(trade).expect("the next line decodes");
        assert_eq!(live.take_ready().count(), 1);
    }

    #[test]
    fn a_captured_feed_as_the_host_reads_it() {
        // Strict: the fixture's first book is a snapshot cut short by its authors (its checksum
        // no longer matches), on line 3; the trade on line 2 came before it.
        let all: Vec<_> = open(&fixture("tardis_okx_v5_msgs.jsonl")).expect("opens").collect();
        assert_eq!(all.len(), 2, "{all:?}");
        let Ok(Recorded { ts_ms, symbol, channel, event: RecordedEvent::Trade { price, size, taker_side }, .. }) =
            &all[0]
        else {
            panic!("{:?}", all[0])
        };
        assert_eq!(
            (*ts_ms, symbol.as_str(), channel.as_str(), *price, *size, *taker_side),
            (1_639_999_319_938, "CRV-USDT", "trades", 3.973, 13.491146, Side::Buy)
        );
        let e = all[1].as_ref().expect_err("the cut book");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.reason.contains("books-l2-tbt BTC-DAI: checksum mismatch"), "{e}");

        // As the host: stale books give nothing until their next snapshot, and are counted
        // (the 2 checksum mismatches and 4 gaps `feed check` reports for this file).
        let mut frames = open(&fixture("tardis_okx_v5_msgs.jsonl")).expect("opens").skip_stale_books();
        let events: Vec<Recorded> = frames.by_ref().collect::<Result<_, _>>().expect("reads on");
        assert_eq!(frames.book_problems(), 6);
        let count = |f: fn(&RecordedEvent) -> bool| events.iter().filter(|r| f(&r.event)).count();
        assert_eq!(count(|e| matches!(e, RecordedEvent::Book { .. })), 2);
        assert!(count(|e| matches!(e, RecordedEvent::Trade { .. })) >= 4);
        let ticker = events.iter().find(|r| r.symbol == "ACT-USDT").expect("the ACT-USDT ticker");
        assert_eq!(
            ticker.event,
            RecordedEvent::Ticker {
                bid: 0.00713,
                bid_size: 4092.326,
                ask: 0.0072,
                ask_size: 54969.407534,
                last: 0.00718
            }
        );
        assert_eq!(ticker.ts_ms, 1_639_999_318_686);
    }

    #[test]
    fn wrapped_frames_unwrapped() {
        let frames = unwrapped_capture();
        let mut feed = read(&frames.join("\n")).skip_stale_books();
        let events: Vec<Recorded> = feed.by_ref().collect::<Result<_, _>>().expect("every frame reads");
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for r in &events {
            let kind = match r.event {
                RecordedEvent::Book { .. } => "book",
                RecordedEvent::Trade { .. } => "trade",
                RecordedEvent::Ticker { .. } => "ticker",
                RecordedEvent::Candle(..) => "candle",
            };
            *seen.entry(format!("{} {kind}", r.channel)).or_default() += 1;
        }
        let want = [
            ("bbo-tbt book", 6),
            ("books-l2-tbt book", 1),
            ("books5 book", 6),
            ("candle1m candle", 6),
            ("tickers ticker", 6),
            ("trades trade", 6),
        ];
        assert_eq!(seen, want.iter().map(|(k, n)| (k.to_string(), *n)).collect());
        // Books shortened by the capture's authors: their checksums no longer match.
        assert_eq!(feed.book_problems(), 4);
        let candles: Vec<&Recorded> = events.iter().filter(|r| r.channel == "candle1m").collect();
        assert!(!candles.is_empty());
        // Legacy 7-field candles carry no `confirm`: not closed, as the host reads them.
        assert!(candles.iter().all(|r| matches!(r.event, RecordedEvent::Candle(b, false) if b.ts_ms == r.ts_ms)));
        let sells = events.iter().filter(|r| matches!(r.event, RecordedEvent::Trade { taker_side: Side::Sell, .. }));
        assert!(sells.count() >= 2);
        assert!(events.iter().any(|r| matches!(r.event, RecordedEvent::Ticker { .. })));
    }

    #[test]
    fn books_follow_their_chain() {
        let snapshot = r#"{"arg":{"channel":"books","instId":"X"},"action":"snapshot","data":[{"asks":[["101","1","0","1"],["102","2","0","1"]],"bids":[["100","1","0","1"],["99","3","0","2"]],"ts":"10","checksum":0,"prevSeqId":-1,"seqId":10}]}"#;
        let update = r#"{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[["101","0","0","0"]],"bids":[["100.5","4","0","1"]],"ts":"11","checksum":0,"prevSeqId":10,"seqId":11}]}"#;
        let gap = r#"{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[],"ts":"12","checksum":0,"prevSeqId":12,"seqId":13}]}"#;
        let text = format!(
            "{{\"event\":\"subscribe\",\"arg\":{{\"channel\":\"books\",\"instId\":\"X\"}}}}\npong\n\n{snapshot}\n{update}\n{gap}\n"
        );
        let all: Vec<_> = read(&text).collect();
        assert_eq!(all.len(), 3);
        let Ok(Recorded { ts_ms: 11, event: RecordedEvent::Book { bids, asks }, .. }) = &all[1] else {
            panic!("{:?}", all[1])
        };
        assert_eq!(
            (bids.as_slice(), asks.as_slice()),
            (&[(100.5, 4.0), (100.0, 1.0), (99.0, 3.0)][..], &[(102.0, 2.0)][..])
        );
        let e = all[2].as_ref().expect_err("the gap");
        assert_eq!(e.line, Some(6));
        assert!(e.reason.contains("sequence gap"), "{e}");
        let top1: Vec<_> = read(&format!("{snapshot}\n")).with_depth(1).collect();
        assert!(matches!(&top1[0], Ok(Recorded { event: RecordedEvent::Book { bids, .. }, .. }) if bids.len() == 1));
    }

    #[test]
    fn an_endless_line_is_refused_at_the_cap() {
        let trade = r#"{"arg":{"channel":"trades","instId":"X"},"data":[{"instId":"X","tradeId":"1","px":"2","sz":"1","side":"sell","ts":"5"}]}"#;
        let head = format!("{trade}\n\n{{\"arg\":");
        let endless = std::io::Cursor::new(head.into_bytes()).chain(std::io::repeat(b' '));
        let all: Vec<_> = from_reader(Path::new("feed.jsonl"), Box::new(endless)).collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all[0].is_ok());
        let e = all[1].as_ref().expect_err("the endless line");
        assert_eq!(e.to_string(), format!("feed.jsonl:3: line longer than {MAX_FRAME_LINE} bytes"));
    }

    #[test]
    fn only_the_instruments_asked_for() {
        let book = |inst: &str, action: &str, prev: i64, seq: i64| {
            format!(
                r#"{{"arg":{{"channel":"books","instId":"{inst}"}},"action":"{action}","data":[{{"asks":[["101","1","0","1"]],"bids":[["100","1","0","1"]],"ts":"10","checksum":0,"prevSeqId":{prev},"seqId":{seq}}}]}}"#
            )
        };
        let trade = |inst: &str| {
            format!(
                r#"{{"arg":{{"channel":"trades","instId":"{inst}"}},"data":[{{"instId":"{inst}","tradeId":"1","px":"2","sz":"1","side":"sell","ts":"5"}}]}}"#
            )
        };
        // X's book goes wrong (an update before its snapshot); Y's is sound.
        let text = [book("X", "update", 3, 4), book("Y", "snapshot", -1, 10), trade("X"), trade("Y")].join("\n");
        let all: Vec<_> = read(&text).collect();
        assert!(all[0].is_err(), "every instrument's book is checked: {all:?}");
        let mut frames = read(&text).only(["Y"]);
        let events: Vec<Recorded> = frames.by_ref().collect::<Result<_, _>>().expect("X is not read");
        assert_eq!(
            events.iter().map(|r| (r.symbol.as_str(), r.channel.as_str())).collect::<Vec<_>>(),
            [("Y", "books"), ("Y", "trades")]
        );
        assert_eq!(frames.passed_over(), 2);
        assert!(frames.books.keys().all(|(_, inst)| inst == "Y"), "no book built for X");
        // A line that is no frame is still an error, whoever it would be about.
        let e = read(&format!("{}\n{{\"arg\":", trade("Y"))).only(["Y"]).nth(1).expect("two items");
        assert_eq!(e.map_err(|e| e.line), Err(Some(2)));
    }

    #[test]
    fn a_line_that_is_no_frame_is_an_error() {
        let trade = r#"{"arg":{"channel":"trades","instId":"X"},"data":[{"instId":"X","tradeId":"1","px":"2","sz":"1","side":"sell","ts":"5"}]}"#;
        let mark = r#"{"arg":{"channel":"mark-price","instId":"X"},"data":[{"instId":"X","markPx":"1","ts":"1"}]}"#;
        let all: Vec<_> = read(&format!("{mark}\n{trade}\n{{\"arg\":\n{trade}\n")).collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all[0].is_ok());
        let e = all[1].as_ref().expect_err("cut frame");
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().starts_with("feed.jsonl:3: not an OKX frame: json:"), "{e}");
        let zero = r#"{"arg":{"channel":"trades","instId":"X"},"data":[{"instId":"X","tradeId":"1","px":"0","sz":"1","side":"sell","ts":"5"}]}"#;
        let e = read(zero).next().expect("one").expect_err("zero price");
        assert!(e.reason.contains("above zero"), "{e}");
    }
    fn zstd(text: &str) -> Vec<u8> {
        zstd::stream::encode_all(text.as_bytes(), 3).expect("compresses")
    }

    #[test]
    fn timestamped_compressed_lines_and_a_gap_that_restarts_the_books() {
        let book = |action: &str, prev: i64, seq: i64, bid: &str| {
            format!(
                r#"{{"arg":{{"channel":"books","instId":"X"}},"action":"{action}","data":[{{"asks":[["101","1","0","1"]],"bids":[["{bid}","1","0","1"]],"ts":"10","checksum":0,"prevSeqId":{prev},"seqId":{seq}}}]}}"#
            )
        };
        let lines = [
            format!("1000 {}", book("snapshot", -1, 10, "100")),
            format!("1001 {}", book("update", 10, 11, "100.5")),
            "1002 #gap public connection closed".to_string(),
            format!("1003 {}", book("snapshot", -1, 40, "99")),
            format!("1004 {}", book("update", 40, 41, "99.5")),
            "pong".to_string(),
        ];
        let text = lines.join("\n");
        let events: Vec<Recorded> = from_reader(Path::new("f.zst"), Box::new(std::io::Cursor::new(zstd(&text))))
            .collect::<Result<_, _>>()
            .expect("reads");
        assert_eq!(events.iter().map(|r| r.received_ms).collect::<Vec<_>>(), [1000, 1001, 1003, 1004].map(Some));
        let Recorded { event: RecordedEvent::Book { bids, .. }, .. } = &events[2] else { panic!("{:?}", events[2]) };
        // The snapshot after the gap replaced the book (no 100 or 100.5 left over).
        assert_eq!(bids, &[(99.0, 1.0)]);
        let mut plain = read(&text);
        assert_eq!(plain.by_ref().count(), 4);
        assert_eq!(plain.gaps(), 1);

        // Across the gap the old chain does not go on: an update that continues it is an error
        // (the host's skip counts it), though it follows its predecessor's seqId.
        let continued =
            [lines[0].clone(), lines[1].clone(), lines[2].clone(), book("update", 11, 12, "100")].join("\n");
        let all: Vec<_> = read(&continued).collect();
        let e = all[2].as_ref().expect_err("no book after the gap");
        assert_eq!(e.line, Some(4), "{e}");
        let mut host = read(&continued).skip_stale_books();
        assert_eq!(host.by_ref().count(), 2);
        assert_eq!((host.book_problems(), host.gaps()), (1, 1));
    }

    #[test]
    fn a_compressed_file_cut_short_reads_up_to_the_cut() {
        let trade = |i: u32| {
            format!(
                r#"{} {{"arg":{{"channel":"trades","instId":"X"}},"data":[{{"instId":"X","tradeId":"{i}","px":"2","sz":"1","side":"sell","ts":"{i}"}}]}}"#,
                1_000 + i
            )
        };
        // As the recorder writes: flushed after the first 100 lines, then 100 more not flushed.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("encoder");
        for i in 0..100 {
            writeln!(encoder, "{}", trade(i)).expect("write");
        }
        std::io::Write::flush(&mut encoder).expect("flush");
        let flushed = encoder.get_ref().len();
        for i in 100..200 {
            writeln!(encoder, "{}", trade(i)).expect("write");
        }
        let whole = encoder.finish().expect("finish");
        let all: Vec<_> = from_reader(Path::new("w.zst"), Box::new(std::io::Cursor::new(whole.clone()))).collect();
        assert!(all.iter().all(Result::is_ok) && all.len() == 200);
        for cut in [flushed, flushed + 3, whole.len() - 1] {
            let all: Vec<_> =
                from_reader(Path::new("cut.zst"), Box::new(std::io::Cursor::new(whole[..cut].to_vec()))).collect();
            let (last, before) = all.split_last().expect("items");
            assert!(before.len() >= 100 && before.iter().all(Result::is_ok), "cut at {cut}: {}", before.len());
            let e = last.as_ref().expect_err("the cut");
            assert_eq!(e.line, Some(before.len() as u64 + 1), "{e}");
            assert!(e.reason.starts_with("the compressed file is cut short here"), "{e}");
        }
        // Not zstd after its magic: one line too.
        let mut bad = ZSTD_MAGIC.to_vec();
        bad.extend_from_slice(b"garbage that is no frame header");
        let e = from_reader(Path::new("bad.zst"), Box::new(std::io::Cursor::new(bad))).next().expect("one");
        assert!(e.expect_err("damaged").reason.starts_with("unreadable (damaged zstd data?)"));
    }
    #[test]
    fn a_file_that_continues_another_waits_for_its_snapshots() {
        let book = |action: &str, prev: i64, seq: i64| {
            format!(
                r#"{{"arg":{{"channel":"books","instId":"X"}},"action":"{action}","data":[{{"asks":[["101","1","0","1"]],"bids":[["100","1","0","1"]],"ts":"10","checksum":0,"prevSeqId":{prev},"seqId":{seq}}}]}}"#
            )
        };
        let body = [
            format!("2 {}", book("update", 11, 12)),
            format!("3 {}", book("snapshot", -1, 40)),
            format!("4 {}", book("update", 40, 41)),
        ];
        let continued = format!("1 #continues okx-public-2026-12-07T11.jsonl.zst\n{}", body.join("\n"));
        let events: Vec<Recorded> =
            read(&continued).collect::<Result<_, _>>().expect("the old chain's tail is skipped");
        assert_eq!(events.iter().map(|r| r.received_ms).collect::<Vec<_>>(), [Some(3), Some(4)]);
        // Without the header the same update is a broken capture.
        assert!(read(&body.join("\n")).next().expect("one").is_err());
        // Once its book started, a break in its chain is an error again.
        let broken = format!("{continued}\n5 {}", book("update", 45, 46));
        assert!(read(&broken).nth(2).expect("three").is_err());
    }
}
