//! Candles (OHLCV bars) from files, oldest first.
//!
//! CSV with a header, in either of two column orders:
//! - `ts_ms,open,high,low,close,volume` (tradebox's own; extra columns after these are ignored);
//! - OKX's REST candle order, `ts,o,h,l,c,vol[,volCcy,volCcyQuote,confirm]` (rows as OKX's
//!   `market/candles` returns them, one per line).
//!
//! Every bar is checked: finite prices above zero, `low <= open, close <= high`, volume not
//! negative, open times strictly increasing (a repeated or earlier bar is an error, never
//! silently reordered), and a row with `confirm` = 0 (a bar still forming when it was saved) is
//! refused, since a backtest must see only closed bars.

use crate::DataError;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// One closed bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Opening time of the bar, ms since the Unix epoch (OKX's `ts`).
    pub ts_ms: i64,
    /// First price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price.
    pub close: f64,
    /// Traded volume (OKX's `vol`: contracts for derivatives, base currency for spot).
    pub volume: f64,
}

impl Bar {
    /// Checks the bar on its own (prices, ordering within the bar).
    pub fn check(&self) -> Result<(), String> {
        let prices = [self.open, self.high, self.low, self.close];
        if prices.iter().any(|p| !p.is_finite() || *p <= 0.0) {
            return Err(format!(
                "prices must be finite and above zero (open {} high {} low {} close {})",
                self.open, self.high, self.low, self.close
            ));
        }
        if self.low > self.open.min(self.close) || self.high < self.open.max(self.close) {
            return Err(format!(
                "low {} and high {} must bracket open {} and close {}",
                self.low, self.high, self.open, self.close
            ));
        }
        if !self.volume.is_finite() || self.volume < 0.0 {
            return Err(format!("volume {} must be a number at or above zero", self.volume));
        }
        Ok(())
    }
}

/// The column layout of a candle file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `ts_ms,open,high,low,close,volume`.
    Plain,
    /// OKX's `ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm` (the last three optional).
    Okx,
}

/// A stream of bars from one file, oldest first, checked as they are read.
pub struct Candles {
    path: PathBuf,
    layout: Layout,
    rows: csv::StringRecordsIntoIter<Box<dyn Read + Send>>,
    last_ts: Option<i64>,
    done: bool,
}

impl std::fmt::Debug for Candles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candles").field("path", &self.path).field("layout", &self.layout).finish()
    }
}

/// Opens a candle file.
pub fn open(path: &Path) -> Result<Candles, DataError> {
    let file = File::open(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    from_reader(path, Box::new(BufReader::with_capacity(1 << 16, file)))
}

/// Reads candles from `reader`; `path` names it in errors.
pub fn from_reader(path: &Path, reader: Box<dyn Read + Send>) -> Result<Candles, DataError> {
    let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(csv::Trim::All).from_reader(reader);
    let header = csv.headers().map_err(|e| DataError::at(path, 1, format!("unreadable header: {e}")))?.clone();
    let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    let starts = |want: &[&str]| names.len() >= want.len() && names.iter().zip(want).all(|(n, w)| n == w);
    let layout = if starts(&["ts_ms", "open", "high", "low", "close", "volume"]) {
        Layout::Plain
    } else if starts(&["ts", "o", "h", "l", "c", "vol"]) {
        Layout::Okx
    } else {
        return Err(DataError::at(
            path,
            1,
            format!(
                "the header {:?} is not a candle header: expected `ts_ms,open,high,low,close,volume` or OKX's \
                 `ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm`",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    };
    Ok(Candles { path: path.to_path_buf(), layout, rows: csv.into_records(), last_ts: None, done: false })
}

impl Candles {
    /// The file's column layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn parse(&mut self, record: &csv::StringRecord, line: u64) -> Result<Bar, DataError> {
        let path = &self.path;
        let field = |i: usize, name: &str| -> Result<&str, DataError> {
            record.get(i).filter(|s| !s.is_empty()).ok_or_else(|| DataError::at(path, line, format!("no {name}")))
        };
        let number = |i: usize, name: &str| -> Result<f64, DataError> {
            let text = field(i, name)?;
            text.parse::<f64>().map_err(|_| DataError::at(path, line, format!("{name} {text:?} is not a number")))
        };
        let ts_text = field(0, "timestamp")?;
        let ts_ms = ts_text
            .parse::<i64>()
            .map_err(|_| DataError::at(path, line, format!("timestamp {ts_text:?} is not whole milliseconds")))?;
        let bar = Bar {
            ts_ms,
            open: number(1, "open")?,
            high: number(2, "high")?,
            low: number(3, "low")?,
            close: number(4, "close")?,
            volume: number(5, "volume")?,
        };
        if self.layout == Layout::Okx && record.get(8).is_some_and(|c| c == "0") {
            return Err(DataError::at(
                path,
                line,
                "the bar is not closed (confirm = 0): a backtest reads closed bars only",
            ));
        }
        bar.check().map_err(|why| DataError::at(path, line, why))?;
        if let Some(last) = self.last_ts
            && ts_ms <= last
        {
            return Err(DataError::at(
                path,
                line,
                format!("bar at {ts_ms} is not after the one before it ({last}): rows must be oldest first, once each"),
            ));
        }
        self.last_ts = Some(ts_ms);
        Ok(bar)
    }
}

impl Iterator for Candles {
    type Item = Result<Bar, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = match self.rows.next()? {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                self.parse(&record, line)
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                Err(DataError::at(&self.path, line, format!("unreadable row: {e}")))
            }
        };
        // The first error ends the stream: nothing after a bad row is read as if it were fine.
        self.done = result.is_err();
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Bar>, DataError> {
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        from_reader(Path::new("bars.csv"), reader)?.collect()
    }

    #[test]
    fn reads_both_layouts_oldest_first() {
        let plain = read("ts_ms,open,high,low,close,volume\n60000,10,12,9,11,5\n120000,11,11.5,10.5,11,0\n").unwrap();
        assert_eq!(plain.len(), 2);
        assert_eq!(plain[0], Bar { ts_ms: 60_000, open: 10.0, high: 12.0, low: 9.0, close: 11.0, volume: 5.0 });
        let okx = read("ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm\n60000,10,12,9,11,5,50,50,1\n").unwrap();
        assert_eq!(okx[0].close, 11.0);
    }

    #[test]
    fn a_bad_file_names_the_line_and_the_reason() {
        let e = read("time,price\n1,2\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.reason.contains("not a candle header"), "{e}");
        let e = read("ts_ms,open,high,low,close,volume\n60000,10,12,9,11,5\n60000,10,12,9,11,5\n").unwrap_err();
        assert_eq!((e.line, e.to_string().starts_with("bars.csv:3: ")), (Some(3), true), "{e}");
        let e = read("ts_ms,open,high,low,close,volume\n60000,10,9,9,11,5\n").unwrap_err();
        assert!(e.reason.contains("bracket"), "{e}");
        let e = read("ts_ms,open,high,low,close,volume\n60000,ten,12,9,11,5\n").unwrap_err();
        assert!(e.reason.contains("open \"ten\" is not a number"), "{e}");
        let e = read("ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm\n60000,10,12,9,11,5,50,50,0\n").unwrap_err();
        assert!(e.reason.contains("not closed"), "{e}");
        let e = read("ts_ms,open,high,low,close,volume\n60000,10,12,9,NaN,5\n").unwrap_err();
        assert!(e.reason.contains("finite"), "{e}");
    }

    #[test]
    fn the_first_error_ends_the_stream() {
        let text = "ts_ms,open,high,low,close,volume\n60000,x,12,9,11,5\n120000,10,12,9,11,5\n";
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        let all: Vec<_> = from_reader(Path::new("b.csv"), reader).unwrap().collect();
        assert_eq!(all.len(), 1);
        assert!(all[0].is_err());
    }
}
