//! Market history files: what a backtest reads (and what `tradebox record` writes).
//!
//! Every reader streams: memory stays flat in the length of a file, and a bad row ends the read
//! with a [`DataError`] naming the file, the line and the reason, so nothing runs half a file
//! silently. Formats are told apart by their contents, not trusted from the file name alone.
//! The one exception to flat memory is OKX's JSON body: OKX sends its rows newest first, so a
//! body is held whole to be read oldest first (one answer is at most 300 rows; the file at most
//! 16 MiB). Lines are capped too ([`MAX_CSV_LINE`], [`frames::MAX_FRAME_LINE`]): a file of one
//! endless line is refused at the cap, not buffered whole.
//!
//! - [`candles`]: OHLCV bars from CSV (two column orders), OKX's JSON body, or Parquet;
//! - [`trades`]: public trades from CSV or OKX's JSON body;
//! - [`frames`]: a recorded OKX WebSocket feed (what `tradebox feed check` reads), as market
//!   events, through the same parser and book builder the host runs.
//!
//! The formats, column by column, are in `data/README.md`.

pub mod candles;

pub mod frames;
mod input;
mod okx_json;
mod parquet_file;
pub mod synthetic;
pub mod trades;

pub use candles::{Bar, Candles};
pub use frames::{Frames, Recorded, RecordedEvent};
pub use trades::{Trade, Trades};

use std::path::{Path, PathBuf};

/// The largest price a reader accepts: far above any traded price, and low enough that a price
/// times any size an order can have stays within the decimals a backtest fills in.
pub const MAX_PRICE: f64 = 1e12;
/// The largest size (volume, level size, trade size) a reader accepts.
pub const MAX_SIZE: f64 = 1e15;

/// The longest line of a CSV file (candles, trades), in bytes, its newline not counted: a row is
/// a few dozen bytes, so a line near this is not a row, and reading on would buffer it whole.
/// Such a line is an error, `FILE:LINE: line longer than 1048576 bytes`.
pub const MAX_CSV_LINE: u64 = 1 << 20;

/// The most characters of a file's own text (a field, a header) an error quotes.
const MAX_QUOTED: usize = 80;

/// A file's text as an error quotes it: debug-quoted (control characters escaped) and cut at
/// [`MAX_QUOTED`] characters, so that a binary file or a 500 KB field still makes one readable
/// line.
pub(crate) fn quoted(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((i, _)) => format!("{:?}… (cut)", &text[..i]),
        None => format!("{text:?}"),
    }
}

/// Whether `price` is one a market could quote: finite, above zero, at most [`MAX_PRICE`].
pub fn is_price(price: f64) -> bool {
    price.is_finite() && price > 0.0 && price <= MAX_PRICE
}

/// Whether `size` is one a market could show: finite, zero or more, at most [`MAX_SIZE`].
pub fn is_size(size: f64) -> bool {
    size.is_finite() && (0.0..=MAX_SIZE).contains(&size)
}

/// Why a data file could not be read. Displays as `FILE:LINE: reason` (or `FILE: reason`
/// when the problem is the file as a whole), one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct DataError {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line (for text formats) or row (Parquet) at fault, when one is.
    pub line: Option<u64>,
    /// What is wrong, in words.
    pub reason: String,
}

impl DataError {
    /// A problem with the file as a whole.
    pub fn file(path: &Path, reason: impl Into<String>) -> Self {
        Self { path: path.to_path_buf(), line: None, reason: reason.into() }
    }

    /// A problem at one line (or row).
    pub fn at(path: &Path, line: u64, reason: impl Into<String>) -> Self {
        Self { path: path.to_path_buf(), line: Some(line), reason: reason.into() }
    }
}
