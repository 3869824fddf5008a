//! Candles (OHLCV bars) from files, oldest first.
//!
//! One entry point, [`open`], for every format; which one a file is comes from its first
//! non-blank bytes (`{` or `[`: JSON; Parquet's magic `PAR1`: Parquet; anything else: CSV):
//! - CSV with a header, in either of two column orders:
//!   - `ts_ms,open,high,low,close,volume` (tradebox's own, what `tradebox data download`
//!     writes; extra columns after these are ignored);
//!   - OKX's REST candle order, `ts,o,h,l,c,vol[,volCcy,volCcyQuote,confirm]` (rows as OKX's
//!     `market/candles` returns them, one per line, oldest first);
//! - OKX's JSON body of `market/candles` or `market/history-candles`
//!   (`{"code":"0","msg":"","data":[["ts","o","h","l","c","vol","volCcy","volCcyQuote","confirm"],...]}`),
//!   or a bare JSON array of such rows: newest first, as OKX sends them, and read oldest first.
//!   A body whose `code` is not `"0"` is an error quoting OKX's code and message. One body per
//!   file: pages are joined by `tradebox data download`, which writes CSV;
//! - Parquet, columns found by name, without regard to case: `ts_ms` or `ts` (INT64 ms, a
//!   TIMESTAMP, or INT96), `open high low close volume` or `o h l c vol` (floating-point,
//!   integer, DECIMAL, or decimal text), optional `confirm`; read row group by row group,
//!   Snappy or uncompressed (data/README.md has the details).
//!
//! Every bar is checked: finite prices above zero, `low <= open, close <= high`, volume not
//! negative, open times strictly increasing (a repeated or earlier bar is an error, never
//! silently reordered), and a row with `confirm` = 0 (a bar still forming when it was saved) is
//! refused, since a backtest must see only closed bars.

use crate::DataError;
use crate::input::{Input, unreadable};
use crate::okx_json::{Rows, scalar};
use crate::parquet_file::CandleRows;
use std::io::Read;
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
        if prices.iter().any(|p| !crate::is_price(*p)) {
            return Err(format!(
                "prices must be finite, above zero and at most {:e} (open {} high {} low {} close {})",
                crate::MAX_PRICE,
                self.open,
                self.high,
                self.low,
                self.close
            ));
        }
        if self.low > self.open.min(self.close) || self.high < self.open.max(self.close) {
            return Err(format!(
                "low {} and high {} must bracket open {} and close {}",
                self.low, self.high, self.open, self.close
            ));
        }
        if !crate::is_size(self.volume) {
            return Err(format!("volume {} must be a number from zero to {:e}", self.volume, crate::MAX_SIZE));
        }
        Ok(())
    }
}

/// What a candle file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV, `ts_ms,open,high,low,close,volume`.
    PlainCsv,
    /// CSV, OKX's `ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm` (the last three optional).
    OkxCsv,
    /// OKX's JSON body (or a bare array of its rows), newest first in the file.
    OkxJson,
    /// Parquet, columns by name.
    Parquet,
}

/// A row as a source read it, before the checks every format shares.
pub(crate) struct RawBar {
    /// Line (text) or row (Parquet), 1-based.
    pub(crate) line: u64,
    pub(crate) bar: Bar,
    /// False only when the row says so (`confirm` = 0); formats without the column are closed
    /// bars by definition.
    pub(crate) closed: bool,
}

/// The fields of one text row, by position.
trait Fields {
    fn field(&self, i: usize) -> Option<&str>;
}

impl Fields for csv::ByteRecord {
    fn field(&self, i: usize) -> Option<&str> {
        // A field that is not UTF-8 reads as a replacement character: the row is then refused
        // for what that field should have been ("open \"\u{fffd}\" is not a number").
        self.get(i).map(|bytes| std::str::from_utf8(bytes).unwrap_or("\u{fffd}"))
    }
}

impl Fields for Vec<String> {
    fn field(&self, i: usize) -> Option<&str> {
        self.get(i).map(String::as_str)
    }
}

/// `ts,open,high,low,close,volume` at positions 0 to 5 (both CSV orders and OKX's rows), and
/// OKX's `confirm` at `confirm_at` when the format has it.
fn parse_row(path: &Path, line: u64, row: &impl Fields, confirm_at: Option<usize>) -> Result<RawBar, DataError> {
    let field = |i: usize, name: &str| -> Result<&str, DataError> {
        row.field(i).filter(|s| !s.is_empty()).ok_or_else(|| DataError::at(path, line, format!("no {name}")))
    };
    let number = |i: usize, name: &str| -> Result<f64, DataError> {
        let text = field(i, name)?;
        text.parse::<f64>()
            .map_err(|_| DataError::at(path, line, format!("{name} {} is not a number", crate::quoted(text))))
    };
    let ts_text = field(0, "timestamp")?;
    let ts_ms = ts_text.parse::<i64>().map_err(|_| {
        DataError::at(path, line, format!("timestamp {} is not whole milliseconds", crate::quoted(ts_text)))
    })?;
    let bar = Bar {
        ts_ms,
        open: number(1, "open")?,
        high: number(2, "high")?,
        low: number(3, "low")?,
        close: number(4, "close")?,
        volume: number(5, "volume")?,
    };
    let closed = confirm_at.and_then(|i| row.field(i)).is_none_or(|c| c != "0");
    Ok(RawBar { line, bar, closed })
}

enum Source {
    /// The reader and the one record every row is read into (no allocation per row: a CSV
    /// row costs its parsing and nothing else, measured in BENCHMARKS.md).
    Csv(Box<csv::Reader<Box<dyn Read + Send>>>, csv::ByteRecord),
    /// The body's rows and how many are still to be read (from the last, the oldest, back).
    Json(Rows, usize),
    Parquet(Box<CandleRows>),
}

/// A stream of bars from one file, oldest first, checked as they are read.
pub struct Candles {
    path: PathBuf,
    format: Format,
    source: Source,
    last_ts: Option<i64>,
    done: bool,
}

impl std::fmt::Debug for Candles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candles").field("path", &self.path).field("format", &self.format).finish()
    }
}

/// Opens a candle file of any of the formats, told by its contents.
pub fn open(path: &Path) -> Result<Candles, DataError> {
    from_input(path, Input::open(path)?)
}

/// Reads candles from `reader`; `path` names it in errors. A Parquet stream is read into
/// memory whole first (Parquet is read from its end); [`open`] reads a Parquet file in place.
pub fn from_reader(path: &Path, reader: Box<dyn Read + Send>) -> Result<Candles, DataError> {
    from_input(path, Input::from_reader(path, reader)?)
}

fn from_input(path: &Path, input: Input) -> Result<Candles, DataError> {
    let (format, source) = match input {
        Input::Text(reader) => csv_source(path, reader)?,
        Input::Json(text) => {
            let rows = Rows::parse(path, text)?;
            let n = rows.len();
            (Format::OkxJson, Source::Json(rows, n))
        }
        Input::Parquet(source) => (Format::Parquet, Source::Parquet(Box::new(CandleRows::open(path, source)?))),
    };
    Ok(Candles { path: path.to_path_buf(), format, source, last_ts: None, done: false })
}

fn csv_source(path: &Path, reader: Box<dyn Read + Send>) -> Result<(Format, Source), DataError> {
    let mut csv = crate::input::csv_reader(reader);
    let header = csv.headers().map_err(|e| unreadable(path, 1, "header", &e))?.clone();
    let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    let starts = |want: &[&str]| names.len() >= want.len() && names.iter().zip(want).all(|(n, w)| n == w);
    let format = if starts(&["ts_ms", "open", "high", "low", "close", "volume"]) {
        Format::PlainCsv
    } else if starts(&["ts", "o", "h", "l", "c", "vol"]) {
        Format::OkxCsv
    } else {
        return Err(DataError::at(
            path,
            1,
            format!(
                "the header {} is not a candle header: expected `ts_ms,open,high,low,close,volume` or OKX's \
                 `ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm` (or an OKX JSON body, or Parquet)",
                crate::quoted(&header.iter().collect::<Vec<_>>().join(","))
            ),
        ));
    };
    Ok((format, Source::Csv(Box::new(csv), csv::ByteRecord::new())))
}

impl Candles {
    /// What the file is.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The next row as its format reads it, unchecked.
    fn raw(&mut self) -> Option<Result<RawBar, DataError>> {
        let path = &self.path;
        match &mut self.source {
            Source::Csv(reader, record) => Some(match reader.read_byte_record(record) {
                Ok(false) => return None,
                Ok(true) => {
                    let line = record.position().map_or(0, |p| p.line());
                    let confirm = (self.format == Format::OkxCsv).then_some(8);
                    parse_row(path, line, &*record, confirm)
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    Err(unreadable(path, line, "row", &e))
                }
            }),
            Source::Json(rows, left) => {
                *left = left.checked_sub(1)?;
                let (value, line) = rows.row(*left)?;
                let fields: Option<Vec<String>> = value.as_array().map(|a| a.iter().filter_map(scalar).collect());
                Some(match fields {
                    Some(fields) if value.as_array().is_some_and(|a| a.len() == fields.len()) => {
                        parse_row(path, line, &fields, Some(8))
                    }
                    _ => Err(DataError::at(
                        path,
                        line,
                        format!("a candle row is an array of strings (ts, o, h, l, c, vol, ...), not {value}"),
                    )),
                })
            }
            Source::Parquet(rows) => rows.next(path),
        }
    }

    /// A problem with the row at `line`: Parquet has rows, not lines, and says so.
    fn error(&self, line: u64, why: impl std::fmt::Display) -> DataError {
        match self.format {
            Format::Parquet => DataError::at(&self.path, line, format!("row {line}: {why}")),
            _ => DataError::at(&self.path, line, why.to_string()),
        }
    }

    fn check(&mut self, raw: RawBar) -> Result<Bar, DataError> {
        let RawBar { line, bar, closed } = raw;
        if !closed {
            return Err(self.error(line, "the bar is not closed (confirm = 0): a backtest reads closed bars only"));
        }
        bar.check().map_err(|why| self.error(line, why))?;
        if let Some(last) = self.last_ts
            && bar.ts_ms <= last
        {
            let ts = bar.ts_ms;
            let why = match self.format {
                Format::OkxJson => format!(
                    "bar at {ts} is not newer than the row below it ({last}): OKX's rows are newest first, once each"
                ),
                _ => {
                    format!("bar at {ts} is not after the one before it ({last}): rows must be oldest first, once each")
                }
            };
            return Err(self.error(line, why));
        }
        self.last_ts = Some(bar.ts_ms);
        Ok(bar)
    }
}

impl Iterator for Candles {
    type Item = Result<Bar, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = match self.raw()? {
            Ok(raw) => self.check(raw),
            Err(e) => Err(e),
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

    /// The real OKX captures (data/tests/data/README.md says where they come from).
    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
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
        // A huge field or header is quoted cut, escaped: one readable line.
        let e = read(&format!("ts_ms,open,high,low,close,volume\n60000,{},12,9,11,5\n", "\u{1b}x".repeat(50_000)))
            .unwrap_err();
        assert!(e.to_string().len() < 600 && e.reason.contains("\\u{1b}x") && e.reason.contains("(cut)"), "{e}");
        let e = read(&format!("{}\n1,2\n", "h".repeat(500_000))).unwrap_err();
        assert!(e.to_string().len() < 400 && e.reason.contains("(cut)"), "{e}");
    }

    #[test]
    fn the_first_error_ends_the_stream() {
        let text = "ts_ms,open,high,low,close,volume\n60000,x,12,9,11,5\n120000,10,12,9,11,5\n";
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        let all: Vec<_> = from_reader(Path::new("b.csv"), reader).unwrap().collect();
        assert_eq!(all.len(), 1);
        assert!(all[0].is_err());
    }

    #[test]
    fn an_endless_line_is_refused_at_the_cap() {
        let cap = crate::MAX_CSV_LINE;
        let read_from = |r: Box<dyn Read + Send>| -> Vec<Result<Bar, DataError>> {
            match from_reader(Path::new("bars.csv"), r) {
                Ok(c) => c.collect(),
                Err(e) => vec![Err(e)],
            }
        };
        // A good row, then a line that never ends: were it read whole, this would never return.
        let head = b"ts_ms,open,high,low,close,volume\n60000,10,12,9,11,5\n";
        let all = read_from(Box::new(std::io::Cursor::new(head).chain(std::io::repeat(b'7'))));
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all[0].is_ok());
        let e = all[1].as_ref().unwrap_err();
        assert_eq!(e.to_string(), format!("bars.csv:3: line longer than {cap} bytes"));
        // A header that never ends.
        let all = read_from(Box::new(std::io::repeat(b'a')));
        assert_eq!(
            all[0].as_ref().map_err(ToString::to_string),
            Err(format!("bars.csv:1: line longer than {cap} bytes"))
        );
        // A row of exactly the cap is read (its extra columns ignored); one byte more is not.
        let row = "60000,10,12,9,11,5,";
        let padded =
            |n: u64| format!("ts_ms,open,high,low,close,volume\n{row}{}\n", "x".repeat(n as usize - row.len()));
        let all = read_from(Box::new(std::io::Cursor::new(padded(cap))));
        assert!(matches!(all.as_slice(), [Ok(Bar { ts_ms: 60_000, .. })]), "{:?}", all.len());
        let all = read_from(Box::new(std::io::Cursor::new(padded(cap + 1))));
        assert_eq!(all[0].as_ref().map_err(|e| e.line), Err(Some(2)));
    }

    #[test]
    fn okx_bodies_read_oldest_first() {
        let candles = open(&fixture("hummingbot_rest_market_candles_btc_usdt_1h.json")).unwrap();
        assert_eq!(candles.format(), Format::OkxJson);
        let bars: Vec<Bar> = candles.collect::<Result<_, _>>().unwrap();
        let ts: Vec<i64> = bars.iter().map(|b| b.ts_ms).collect();
        assert_eq!(ts, [1_705_420_800_000, 1_705_424_400_000, 1_705_428_000_000, 1_705_431_600_000]);
        assert_eq!(
            bars[0],
            Bar {
                ts_ms: 1_705_420_800_000,
                open: 43253.6,
                high: 43440.2,
                low: 43000.0,
                close: 43250.9,
                volume: 942.87870026
            }
        );
        let swap = open(&fixture("hummingbot_rest_market_candles_btc_usdt_swap_1H.json")).unwrap();
        assert_eq!(swap.map(|b| b.map(|b| b.ts_ms)).last(), Some(Ok(1_718_658_000_000)));
        let minutes: Vec<Bar> = open(&fixture("nautilus_rest_market_candles_btc_usdt_swap_1m.json"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(minutes.iter().map(|b| b.ts_ms).collect::<Vec<_>>(), [1_747_093_980_000, 1_747_094_040_000]);
        assert_eq!(minutes[1].close, 102820.4);
    }

    #[test]
    fn a_bad_body_names_its_line() {
        let read_json = |text: &str| -> Result<Vec<Bar>, DataError> {
            let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
            from_reader(Path::new("c.json"), reader)?.collect()
        };
        // A bare array, newest first.
        let bars =
            read_json(r#"[["120000","2","2","2","2","1","2","2","1"],["60000","1","1","1","1","1","1","1","1"]]"#);
        assert_eq!(bars.map(|b| b.len()), Ok(2));
        // Oldest first is not OKX's order: the error says which way they go.
        let e =
            read_json("[\n[\"60000\",\"1\",\"1\",\"1\",\"1\",\"1\"],\n[\"120000\",\"2\",\"2\",\"2\",\"2\",\"1\"]\n]")
                .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.reason.contains("newest first"), "{e}");
        let e = read_json(r#"{"code":"50011","msg":"Too Many Requests","data":[]}"#).unwrap_err();
        assert!(e.reason.contains("50011") && e.reason.contains("Too Many Requests"), "{e}");
        let e = read_json("{\"code\":\"0\",\"data\":[\n[\"60000\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"0\"]]}")
            .unwrap_err();
        assert_eq!((e.line, e.reason.contains("not closed")), (Some(2), true), "{e}");
        let e = read_json("{\"code\":\"0\",\"data\":[\n{\"ts\":\"1\"}]}").unwrap_err();
        assert!(e.reason.contains("array of strings"), "{e}");
        let e = read_json("{\"code\":\"0\",\"data\":[\n[\"60000\",\"1\",\"1\",\"2\",\"1\",\"1\"]]}").unwrap_err();
        assert!(e.reason.contains("bracket"), "{e}");
    }
}
