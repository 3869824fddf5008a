//! An order book kept from OKX pushes: a snapshot, then updates chained by `seqId`/`prevSeqId`,
//! checked with the legacy CRC32 checksum when OKX sends one (okx-v5.md §5.5).
//!
//! An update is checked before anything changes: a broken chain (a gap, or an update before any
//! snapshot) refuses it and leaves the book as it was, marked stale until the next snapshot. A
//! checksum mismatch after an update also marks it stale. A stale book never answers
//! [`OrderBook::top`], so nobody reads a corrupt book; the caller resubscribes for a snapshot.

use super::message::{BookData, BookLevel};
use rust_decimal::Decimal;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// Why a push was not applied, or made the book stale.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// An update came before any snapshot (or after the book went stale).
    #[error("an update without a snapshot")]
    NoSnapshot,
    /// The update does not continue the chain.
    #[error("sequence gap: expected prevSeqId {expected}, got {got}")]
    Gap {
        /// The last `seqId` applied.
        expected: i64,
        /// The update's `prevSeqId`.
        got: i64,
    },
    /// The book after the push does not match OKX's checksum.
    #[error("checksum mismatch: OKX says {expected}, the book gives {computed}")]
    Checksum {
        /// OKX's checksum, as sent.
        expected: i64,
        /// Ours.
        computed: i32,
    },
}

#[derive(Debug, Clone)]
struct Level {
    sz: Decimal,
    px_text: String,
    sz_text: String,
    orders: u32,
}

/// One instrument's book.
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    bids: BTreeMap<Reverse<Decimal>, Level>,
    asks: BTreeMap<Decimal, Level>,
    seq: Option<i64>,
    valid: bool,
    ts: i64,
}

/// What a push is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The whole book (`books` snapshot, every `books5` / `bbo-tbt` push).
    Snapshot,
    /// Changes to apply.
    Update,
}

fn level(l: &BookLevel) -> Level {
    Level { sz: l.sz, px_text: l.px_text.clone(), sz_text: l.sz_text.clone(), orders: l.orders }
}

impl OrderBook {
    /// An empty, stale book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a push. On `Err` the book is stale (and was not half-changed by a refused update).
    pub fn apply(&mut self, action: Action, d: &BookData) -> Result<(), BookError> {
        match action {
            Action::Snapshot => {
                self.bids = d.bids.iter().filter(|l| !l.sz.is_zero()).map(|l| (Reverse(l.px), level(l))).collect();
                self.asks = d.asks.iter().filter(|l| !l.sz.is_zero()).map(|l| (l.px, level(l))).collect();
            }
            Action::Update => {
                if !self.valid {
                    return Err(BookError::NoSnapshot);
                }
                if let (Some(expected), Some(got)) = (self.seq, d.prev_seq_id)
                    && got != expected
                {
                    self.valid = false;
                    return Err(BookError::Gap { expected, got });
                }
                for l in &d.bids {
                    if l.sz.is_zero() {
                        self.bids.remove(&Reverse(l.px));
                    } else {
                        self.bids.insert(Reverse(l.px), level(l));
                    }
                }
                for l in &d.asks {
                    if l.sz.is_zero() {
                        self.asks.remove(&l.px);
                    } else {
                        self.asks.insert(l.px, level(l));
                    }
                }
            }
        }
        self.seq = d.seq_id;
        self.ts = d.ts;
        self.valid = true;
        if d.checksum != 0 {
            // OKX sends the CRC as a signed 32-bit number; the same bits written unsigned match
            // too, and nothing else does (cutting the value to 32 bits first matched any number
            // with the right low bits, e.g. -2^48 for an empty book, whose CRC is 0).
            let computed = self.checksum();
            if d.checksum != i64::from(computed) && d.checksum != i64::from(computed.cast_unsigned()) {
                self.valid = false;
                return Err(BookError::Checksum { expected: d.checksum, computed });
            }
        }
        Ok(())
    }

    /// OKX's legacy checksum: CRC32 (read as a signed i32) of `bid:size:ask:size:...` over the
    /// best 25 of each side, alternating, with prices and sizes written as received.
    pub fn checksum(&self) -> i32 {
        let mut s = String::with_capacity(1_200);
        let mut bids = self.bids.values().take(25);
        let mut asks = self.asks.values().take(25);
        loop {
            let (b, a) = (bids.next(), asks.next());
            if b.is_none() && a.is_none() {
                break;
            }
            for l in [b, a].into_iter().flatten() {
                if !s.is_empty() {
                    s.push(':');
                }
                s.push_str(&l.px_text);
                s.push(':');
                s.push_str(&l.sz_text);
            }
        }
        crc32fast::hash(s.as_bytes()) as i32
    }

    /// Whether the book can be read.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Marks the book stale (the caller resubscribes).
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// The last `seqId` applied.
    pub fn seq(&self) -> Option<i64> {
        self.seq
    }

    /// Time of the last push, ms.
    pub fn ts(&self) -> i64 {
        self.ts
    }

    /// The best `n` levels per side as (price, size, orders), best first; `None` while stale.
    pub fn top(&self, n: usize) -> Option<TopLevels> {
        self.valid.then(|| {
            let bids = self.bids.iter().take(n).map(|(p, l)| (p.0, l.sz, l.orders)).collect();
            let asks = self.asks.iter().take(n).map(|(p, l)| (*p, l.sz, l.orders)).collect();
            (bids, asks)
        })
    }

    /// Levels per side.
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }
}

/// Top levels: (bids, asks), each (price, size, orders), best first.
pub type TopLevels = (Vec<(Decimal, Decimal, u32)>, Vec<(Decimal, Decimal, u32)>);

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(px: &str, sz: &str) -> BookLevel {
        BookLevel {
            px: px.parse().expect("px"),
            sz: sz.parse().expect("sz"),
            px_text: px.into(),
            sz_text: sz.into(),
            orders: 1,
        }
    }

    fn data(bids: &[(&str, &str)], asks: &[(&str, &str)], prev: i64, seq: i64, checksum: i64) -> BookData {
        BookData {
            bids: bids.iter().map(|(p, s)| lv(p, s)).collect(),
            asks: asks.iter().map(|(p, s)| lv(p, s)).collect(),
            ts: 1,
            checksum,
            prev_seq_id: Some(prev),
            seq_id: Some(seq),
        }
    }

    #[test]
    fn documented_checksums() {
        // okx-v5.md §5.5: "3366.1:7:3366.8:9:3366:6:3368:8" → -1881014294.
        let mut b = OrderBook::new();
        b.apply(
            Action::Snapshot,
            &data(&[("3366.1", "7"), ("3366", "6")], &[("3366.8", "9"), ("3368", "8")], -1, 1, 0),
        )
        .expect("snapshot");
        assert_eq!(b.checksum(), -1_881_014_294);
        // "3366.1:7:3366.8:9:3368:8:3372:8" → 831078360: one bid, three asks.
        let mut b = OrderBook::new();
        b.apply(
            Action::Snapshot,
            &data(&[("3366.1", "7")], &[("3366.8", "9"), ("3368", "8"), ("3372", "8")], -1, 1, 0),
        )
        .expect("snapshot");
        assert_eq!(b.checksum(), 831_078_360);
        // A matching checksum is accepted, a wrong one makes the book stale.
        let mut b = OrderBook::new();
        let good = data(&[("3366.1", "7")], &[("3366.8", "9"), ("3368", "8"), ("3372", "8")], -1, 1, 831_078_360);
        assert!(b.apply(Action::Snapshot, &good).is_ok());
        let bad = data(&[("3366.1", "7")], &[("3366.8", "9")], -1, 1, 831_078_360);
        assert!(matches!(b.apply(Action::Snapshot, &bad), Err(BookError::Checksum { .. })));
        assert!(b.top(5).is_none(), "a stale book is never read");
    }

    /// Found by `fuzz/` (target `book`): a checksum was cut to its low 32 bits before the
    /// comparison, so -2^48 (low bits 0) matched an empty book, whose CRC is 0, and the right
    /// checksum plus 2^32 matched any book. Only the CRC's 32 bits, signed or unsigned, match.
    #[test]
    fn only_the_crc_signed_or_unsigned_matches() {
        let mut b = OrderBook::new();
        let empty = data(&[], &[], -1, 1, -281_474_976_710_656);
        assert_eq!(
            b.apply(Action::Snapshot, &empty),
            Err(BookError::Checksum { expected: -281_474_976_710_656, computed: 0 })
        );
        assert!(b.top(1).is_none());
        let right = 831_078_360_i64;
        let levels = (&[("3366.1", "7")][..], &[("3366.8", "9"), ("3368", "8"), ("3372", "8")][..]);
        let mut b = OrderBook::new();
        let off = data(levels.0, levels.1, -1, 1, right + (1 << 32));
        assert!(matches!(b.apply(Action::Snapshot, &off), Err(BookError::Checksum { computed: 831_078_360, .. })));
        assert!(b.top(1).is_none());
        b.apply(Action::Snapshot, &data(levels.0, levels.1, -1, 1, right)).expect("the checksum as sent");
        let mut b = OrderBook::new();
        b.apply(
            Action::Snapshot,
            &data(&[("3366.1", "7"), ("3366", "6")], &[("3366.8", "9"), ("3368", "8")], -1, 1, 0),
        )
        .expect("snapshot");
        let unsigned = i64::from((-1_881_014_294_i32).cast_unsigned());
        b.apply(Action::Update, &data(&[], &[], 1, 2, unsigned)).expect("the same CRC written unsigned");
    }

    #[test]
    fn updates_follow_the_chain_and_a_gap_changes_nothing() {
        let mut b = OrderBook::new();
        assert_eq!(b.apply(Action::Update, &data(&[], &[], 1, 2, 0)), Err(BookError::NoSnapshot));
        b.apply(Action::Snapshot, &data(&[("100", "1"), ("99", "2")], &[("101", "1")], -1, 10, 0)).expect("snapshot");
        b.apply(Action::Update, &data(&[("100", "0"), ("99.5", "3")], &[("101", "4")], 10, 11, 0)).expect("update");
        let (bids, asks) = b.top(5).expect("valid");
        assert_eq!(bids.iter().map(|l| l.0.to_string()).collect::<Vec<_>>(), ["99.5", "99"]);
        assert_eq!(asks[0].1.to_string(), "4");
        // A heartbeat (prevSeqId == seqId, no levels) keeps the chain.
        b.apply(Action::Update, &data(&[], &[], 11, 11, 0)).expect("heartbeat");
        // seqId may go down; the link is what counts.
        b.apply(Action::Update, &data(&[("98", "1")], &[], 11, 3, 0)).expect("reset");
        let before = b.top(5);
        assert_eq!(
            b.apply(Action::Update, &data(&[("97", "1")], &[], 5, 6, 0)),
            Err(BookError::Gap { expected: 3, got: 5 })
        );
        assert!(b.top(5).is_none());
        b.invalidate();
        b.apply(Action::Snapshot, &data(&[("98", "1")], &[], -1, 20, 0)).expect("fresh snapshot");
        assert!(before.is_some() && b.top(1).is_some());
    }
}
