//! `tradebox_data`'s readers on arbitrary bytes, as files: `candles::from_reader` (plain and
//! OKX CSV, OKX's JSON body; not Parquet, see below), `trades::from_reader` and
//! `frames::from_reader` (a recorded feed), each told its format by the bytes themselves.
//!
//! Invariants: nothing panics; every bar yielded passes `Bar::check` and opens strictly after
//! the one before; every trade has a finite price and size above zero and never goes back in
//! time; a book event has at most the asked depth, bids never rising and asks never falling; each error
//! names the file, and after an error a stream yields nothing more.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use std::path::Path;
use tradebox_data::{DataError, RecordedEvent, candles, frames, trades};

const NAME: &str = "fuzz.dat";

fn reader(data: &[u8]) -> Box<dyn std::io::Read + Send> {
    Box::new(Cursor::new(data.to_vec()))
}

/// Drains a stream: its items up to the first error, then checks that nothing follows it.
fn drain<T>(mut items: impl Iterator<Item = Result<T, DataError>>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items.by_ref() {
        match item {
            Ok(v) => out.push(v),
            Err(e) => {
                assert_eq!(e.path, Path::new(NAME));
                assert!(!e.to_string().contains('\n'), "an error is one line: {e}");
                assert!(items.next().is_none(), "a stream went on after an error");
                break;
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new(NAME);
    // Parquet is the parquet crate's to fuzz: it still asserts on some damaged pages (the reader
    // contains those panics, but libFuzzer's panic hook aborts on any, caught or not). Two such
    // files found here are regression tests in data/tests/parquet.rs.
    if data.starts_with(b"PAR1") {
        return;
    }
    if let Ok(bars) = candles::from_reader(path, reader(data)) {
        let bars = drain(bars);
        for pair in bars.windows(2) {
            assert!(pair[0].ts_ms < pair[1].ts_ms, "bars out of order: {pair:?}");
        }
        for bar in &bars {
            assert_eq!(bar.check(), Ok(()), "{bar:?}");
        }
    }
    if let Ok(ts) = trades::from_reader(path, reader(data)) {
        let ts = drain(ts);
        for pair in ts.windows(2) {
            assert!(pair[0].ts_ms <= pair[1].ts_ms, "trades out of order: {pair:?}");
        }
        for t in &ts {
            assert!(t.price.is_finite() && t.price > 0.0 && t.size.is_finite() && t.size > 0.0, "{t:?}");
        }
    }
    for recorded in drain(frames::from_reader(path, reader(data)).with_depth(3).skip_stale_books())
        .into_iter()
        .chain(drain(frames::from_reader(path, reader(data))))
    {
        if let RecordedEvent::Book { bids, asks } = &recorded.event {
            assert!(bids.len() <= 5 && asks.len() <= 5);
            // Distinct decimals may meet as floats: never rising (bids) or falling (asks).
            assert!(bids.windows(2).all(|w| w[0].0 >= w[1].0), "bids rising: {bids:?}");
            assert!(asks.windows(2).all(|w| w[0].0 <= w[1].0), "asks falling: {asks:?}");
        }
    }
});
