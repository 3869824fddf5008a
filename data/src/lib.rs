//! Market history files: what a backtest reads (and, later, what `tradebox record` writes).
//!
//! Every reader streams: memory stays flat in the length of a file, and a bad row ends the read
//! with a [`DataError`] naming the file, the line and the reason, so nothing runs half a file
//! silently. Formats are told apart by their contents, not trusted from the file name alone.

pub mod candles;
pub mod synthetic;

pub use candles::{Bar, Candles};

use std::path::{Path, PathBuf};

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
