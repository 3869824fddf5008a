//! `tradebox_okx::ws::OrderBook`: a sequence of snapshots and updates, checked against a plain
//! model of what the module documents.
//!
//! Two input forms. Text starting with `{` is a recorded feed: each line goes through the frame
//! parser and every book push is applied as `feed check` and the venue do. Anything else is
//! decoded with `arbitrary` into pushes whose levels, `seqId` chains and checksums are chosen by
//! the fuzzer (levels still go through the real level reader, from JSON); the checksum is either
//! absent, the right one for the model book (computed here independently from okx-v5.md §5.5, and
//! also written unsigned), or any other number.
//!
//! Invariants: nothing panics; a refused update (no snapshot, gap) leaves the book unchanged and
//! stale; a stale book never answers `top`; an accepted push leaves exactly the model's levels;
//! a push with the right checksum is accepted and one with any other number is refused (found:
//! the book compared only the low 32 bits); and after any push it takes, the book's own checksum
//! equals the model's.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use tradebox_okx::ws::book::TopLevels;
use tradebox_okx::ws::message::{BookData, BookLevel, Data, Frame, parse};
use tradebox_okx::ws::{Action, BookError, OrderBook};

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        feed(data);
    } else {
        structured(data);
    }
});

/// Recorded frames, one per line.
fn feed(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut books: BTreeMap<(String, String), OrderBook> = BTreeMap::new();
    for line in text.lines() {
        let Ok(Frame::Push(push)) = parse(line.trim()) else { continue };
        let Data::Books(items) = &push.data else { continue };
        let action = if push.action.as_deref() == Some("update") { Action::Update } else { Action::Snapshot };
        let book = books.entry((push.arg.channel.clone(), push.arg.inst_id.clone())).or_default();
        for d in items {
            let before = (book.checksum(), book.depth(), book.seq());
            match book.apply(action, d) {
                Ok(()) => assert!(book.is_valid() && book.top(400).is_some()),
                Err(BookError::NoSnapshot | BookError::Gap { .. }) => {
                    assert_eq!(
                        (book.checksum(), book.depth(), book.seq()),
                        before,
                        "a refused update changed the book"
                    );
                    assert!(!book.is_valid() && book.top(1).is_none());
                }
                Err(BookError::Checksum { expected, computed }) => {
                    assert_eq!(computed, book.checksum());
                    assert_ne!(expected, i64::from(computed));
                    assert!(!book.is_valid() && book.top(1).is_none());
                }
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Snapshot { bids: Vec<Lv>, asks: Vec<Lv>, seq: Option<i64>, checksum: Sum },
    Update { bids: Vec<Lv>, asks: Vec<Lv>, prev: Prev, seq: Option<i64>, checksum: Sum },
    Invalidate,
}

/// A level: price and size drawn from a small set so updates hit existing levels, written in
/// the different ways OKX and JSON allow.
#[derive(Arbitrary, Debug)]
struct Lv {
    px: u16,
    px_scale: u8,
    px_form: Form,
    sz: u8,
    sz_form: Form,
    orders: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Form {
    /// `"12.5"`.
    Plain,
    /// `"12.50"`.
    TrailingZero,
    /// `"1.25e1"`.
    Scientific,
    /// `12.5` (a JSON number).
    Number,
}

#[derive(Arbitrary, Debug)]
enum Prev {
    /// The book's last `seqId` (continues the chain).
    Chain,
    /// Absent (old feeds).
    Absent,
    /// Anything.
    Any(i64),
}

#[derive(Arbitrary, Debug)]
enum Sum {
    /// Not sent (`0`).
    None,
    /// The right checksum of the book after the push.
    Right,
    /// The same, its 32 bits written unsigned.
    RightUnsigned,
    /// Some value, right only by chance.
    Any(i64),
}

fn text(mantissa: i64, scale: u32, form: Form) -> serde_json::Value {
    let d = Decimal::new(mantissa, scale);
    match form {
        Form::Plain => d.normalize().to_string().into(),
        Form::TrailingZero => {
            let mut z = d;
            z.rescale(scale + 1);
            z.to_string().into()
        }
        Form::Scientific => format!("{:e}", d.normalize()).into(),
        Form::Number => serde_json::from_str(&d.normalize().to_string()).unwrap_or(serde_json::Value::Null),
    }
}

fn level(l: &Lv) -> Option<BookLevel> {
    let px = text(i64::from(l.px) + 1, u32::from(l.px_scale % 4), l.px_form);
    let sz = text(i64::from(l.sz % 8), 1, l.sz_form);
    let json = serde_json::json!([px, sz, "0", l.orders.to_string()]);
    serde_json::from_value(json).ok()
}

/// The model: levels by price, each with its texts.
#[derive(Clone, Default, PartialEq, Debug)]
struct Model {
    bids: BTreeMap<Reverse<Decimal>, (String, String, Decimal, u32)>,
    asks: BTreeMap<Decimal, (String, String, Decimal, u32)>,
}

impl Model {
    fn set(&mut self, bids: &[BookLevel], asks: &[BookLevel]) {
        for l in bids {
            if l.sz.is_zero() {
                self.bids.remove(&Reverse(l.px));
            } else {
                self.bids.insert(Reverse(l.px), (l.px_text.clone(), l.sz_text.clone(), l.sz, l.orders));
            }
        }
        for l in asks {
            if l.sz.is_zero() {
                self.asks.remove(&l.px);
            } else {
                self.asks.insert(l.px, (l.px_text.clone(), l.sz_text.clone(), l.sz, l.orders));
            }
        }
    }

    /// okx-v5.md §5.5: the best 25 of each side, alternating bid, ask, `px:sz` as received,
    /// joined with `:`, CRC32 read as a signed 32-bit number.
    fn checksum(&self) -> i32 {
        let bids: Vec<_> = self.bids.values().take(25).collect();
        let asks: Vec<_> = self.asks.values().take(25).collect();
        let mut parts = Vec::new();
        for i in 0..25 {
            for side in [&bids, &asks] {
                if let Some((px, sz, _, _)) = side.get(i) {
                    parts.push(format!("{px}:{sz}"));
                }
            }
        }
        crc32fast::hash(parts.join(":").as_bytes()) as i32
    }

    fn top(&self, n: usize) -> TopLevels {
        (
            self.bids.iter().take(n).map(|(p, l)| (p.0, l.2, l.3)).collect(),
            self.asks.iter().take(n).map(|(p, l)| (*p, l.2, l.3)).collect(),
        )
    }
}

fn structured(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut book = OrderBook::new();
    let mut model = Model::default();
    let mut valid = false;
    let mut seq: Option<i64> = None;
    let mut ts = 0;
    // An exhausted `Unstructured` keeps producing default values: stop at the end of the input.
    while !u.is_empty() {
        let Ok(op) = u.arbitrary::<Op>() else { break };
        ts += 1;
        let (action, bids, asks, prev, seq_id, sum) = match &op {
            Op::Invalidate => {
                book.invalidate();
                valid = false;
                assert!(book.top(1).is_none());
                continue;
            }
            Op::Snapshot { bids, asks, seq, checksum } => (Action::Snapshot, bids, asks, Some(-1), *seq, checksum),
            Op::Update { bids, asks, prev, seq: s, checksum } => {
                let prev = match prev {
                    Prev::Chain => seq,
                    Prev::Absent => None,
                    Prev::Any(p) => Some(*p),
                };
                (Action::Update, bids, asks, prev, *s, checksum)
            }
        };
        let bids: Vec<BookLevel> = bids.iter().filter_map(level).collect();
        let asks: Vec<BookLevel> = asks.iter().filter_map(level).collect();

        // What the book should hold after the push, if it takes it.
        let mut after = model.clone();
        if action == Action::Snapshot {
            // A snapshot lists levels, so a zero size there is no level (not a deletion).
            after = Model::default();
            let keep = |v: &Vec<BookLevel>| v.iter().filter(|l| !l.sz.is_zero()).cloned().collect::<Vec<_>>();
            after.set(&keep(&bids), &keep(&asks));
        } else {
            after.set(&bids, &asks);
        }
        let right = after.checksum();
        let checksum = match sum {
            Sum::None => 0,
            Sum::Right => i64::from(right),
            Sum::RightUnsigned => i64::from(right.cast_unsigned()),
            Sum::Any(c) => *c,
        };
        // The CRC's 32 bits, signed (as OKX documents) or unsigned.
        let matches = |c: i64| c == i64::from(right) || c == i64::from(right.cast_unsigned());
        let d = BookData { bids, asks, ts, checksum, prev_seq_id: prev, seq_id };

        let before = (book.checksum(), book.depth(), book.seq(), book.ts());
        let result = book.apply(action, &d);

        // What the module documents.
        let refused = if action == Action::Update && !valid {
            Some(BookError::NoSnapshot)
        } else if let (Action::Update, Some(expected), Some(got)) = (action, seq, prev)
            && got != expected
        {
            Some(BookError::Gap { expected, got })
        } else {
            None
        };
        if let Some(why) = refused {
            assert_eq!(result, Err(why));
            assert_eq!(
                (book.checksum(), book.depth(), book.seq(), book.ts()),
                before,
                "a refused update changed the book"
            );
            assert!(!book.is_valid() && book.top(1).is_none(), "a refused update left the book readable");
            assert_eq!(book.checksum(), model.checksum());
            valid = false;
            continue;
        }
        // Taken: the levels are the model's, whatever the checksum says.
        model = after;
        seq = seq_id;
        assert_eq!(book.seq(), seq_id);
        assert_eq!(book.ts(), ts);
        assert_eq!(book.depth(), (model.bids.len(), model.asks.len()));
        assert_eq!(book.checksum(), right, "the book's checksum disagrees with okx-v5.md's");
        match result {
            Ok(()) => {
                assert!(checksum == 0 || matches(checksum), "checksum {checksum} accepted, the book's is {right}");
                assert_eq!(book.top(usize::MAX), Some(model.top(usize::MAX)));
                valid = true;
            }
            Err(BookError::Checksum { expected, computed }) => {
                assert!(checksum != 0 && !matches(checksum), "the right checksum {checksum} was refused");
                assert_eq!((expected, computed), (checksum, right));
                assert!(!book.is_valid() && book.top(1).is_none(), "a book with a wrong checksum is readable");
                valid = false;
            }
            Err(other) => panic!("{other:?} for a push that continues the chain"),
        }
    }
}
