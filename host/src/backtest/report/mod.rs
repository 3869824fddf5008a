//! Renderings of a backtest's [`RunReport`](crate::backtest::results::RunReport): the terminal
//! table, CSV files, and a single HTML page with its charts, plus the JSON it was drawn from.
//!
//! Everything here reads the result types and nothing else, so the engine that fills them and
//! the renderings change independently. Every file is written under a directory the caller
//! chooses (created if missing); nothing here fetches or links to anything outside it, so a
//! report can be archived or mailed and still opens offline. Names, paths, configs and fault
//! texts are data, never markup: the page escapes them, the CSV files quote them, the terminal
//! table writes their control characters as escapes.
//!
//! The per-bar equity file is the one rendering written while the run goes on
//! ([`EquityWriter`]): the report's curves are thinned, the file keeps every bar.

mod charts;
mod csv_files;
mod equity;
mod html;
mod table;
mod text;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use csv_files::write_csv;
pub use equity::EquityWriter;
pub use html::{write_html, write_json};
pub use table::table;

/// Why a report could not be written. Each case names the file, since a report is several.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Creating, writing or flushing a file or the directory.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The CSV writer failed (in practice, the file under it).
    #[error("writing {}: {source}", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// What the CSV writer said.
        #[source]
        source: csv::Error,
    },
    /// Serialising the report as JSON failed.
    #[error("writing {}: {source}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A chart could not be drawn.
    #[error("drawing the chart {chart:?}: {message}")]
    Chart {
        /// The chart's title.
        chart: String,
        /// What plotters said.
        message: String,
    },
    /// An equity row had a different number of plugin values than the header has plugins: the
    /// columns would no longer line up with their names.
    #[error("{}: an equity row has {got} plugin values, the header names {expected} plugins", path.display())]
    Columns {
        /// The equity file.
        path: PathBuf,
        /// Plugins named in the header.
        expected: usize,
        /// Values in the row.
        got: usize,
    },
}

impl ReportError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_owned(), source }
    }

    fn csv(path: &Path) -> impl FnOnce(csv::Error) -> Self + '_ {
        move |source| Self::Csv { path: path.to_owned(), source }
    }
}

/// The directory a report goes in, created if missing: a report is usually written into a
/// fresh directory per run.
fn ensure_dir(dir: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(ReportError::io(dir))
}
