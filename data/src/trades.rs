//! Public trades from files, oldest first.
//!
//! One entry point, [`open`]; the format comes from the first non-blank bytes (`{` or `[`:
//! JSON, else CSV):
//! - CSV with the header `ts_ms,price,size,side[,trade_id]` (`side` is the taker's, `buy` or
//!   `sell`; columns after these are ignored);
//! - OKX's JSON body of `market/trades` or `market/history-trades`
//!   (`{"code":"0","msg":"","data":[{"instId","tradeId","px","sz","side","ts"},...]}`), or a bare
//!   JSON array of such items: newest first, as OKX sends them, and read oldest first. A body
//!   whose `code` is not `"0"` is an error quoting OKX.
//!
//! Every trade is checked: a finite price and size above zero, a side of `buy` or `sell`, and
//! time never going back (trades at the same millisecond are common; the same trade id twice
//! in a row is an error, as pages joined with an overlap would give).

use crate::DataError;
use crate::input::{Input, unreadable};
use crate::okx_json::{Rows, scalar};
use std::io::Read;
use std::path::{Path, PathBuf};
use tradebox_core::Side;

/// One public trade.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// When it happened, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Price.
    pub price: f64,
    /// Size (OKX's `sz`: contracts for derivatives, base currency for spot).
    pub size: f64,
    /// The taker's side: who crossed the spread.
    pub taker_side: Side,
    /// The venue's trade id (empty when the file has none).
    pub trade_id: String,
}

/// What a trade file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV, `ts_ms,price,size,side[,trade_id]`.
    Csv,
    /// OKX's JSON body (or a bare array of its items), newest first in the file.
    OkxJson,
}

enum Source {
    /// Rows, and whether the header names a `trade_id` column.
    Csv(csv::StringRecordsIntoIter<Box<dyn Read + Send>>, bool),
    /// The body's items and how many are still to be read (from the last, the oldest, back).
    Json(Rows, usize),
}

/// A stream of trades from one file, oldest first, checked as they are read.
pub struct Trades {
    path: PathBuf,
    format: Format,
    source: Source,
    last: Option<(i64, String)>,
    done: bool,
}

impl std::fmt::Debug for Trades {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trades").field("path", &self.path).field("format", &self.format).finish()
    }
}

/// Opens a trade file (CSV or OKX JSON, told by its contents).
pub fn open(path: &Path) -> Result<Trades, DataError> {
    from_input(path, Input::open(path)?)
}

/// Reads trades from `reader`; `path` names it in errors.
pub fn from_reader(path: &Path, reader: Box<dyn Read + Send>) -> Result<Trades, DataError> {
    from_input(path, Input::from_reader(path, reader)?)
}

fn from_input(path: &Path, input: Input) -> Result<Trades, DataError> {
    let (format, source) = match input {
        Input::Text(reader) => {
            let mut csv = crate::input::csv_reader(reader);
            let header = csv.headers().map_err(|e| unreadable(path, 1, "header", &e))?.clone();
            let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
            let want = ["ts_ms", "price", "size", "side"];
            if names.len() < want.len() || names.iter().zip(want).any(|(n, w)| n != w) {
                return Err(DataError::at(
                    path,
                    1,
                    format!(
                        "the header {} is not a trade header: expected `ts_ms,price,size,side[,trade_id]` \
                         (or an OKX JSON body)",
                        crate::quoted(&header.iter().collect::<Vec<_>>().join(","))
                    ),
                ));
            }
            let ids = names.get(4).is_some_and(|n| n == "trade_id");
            (Format::Csv, Source::Csv(csv.into_records(), ids))
        }
        Input::Json(text) => {
            let rows = Rows::parse(path, text)?;
            let n = rows.len();
            (Format::OkxJson, Source::Json(rows, n))
        }
        Input::Parquet(_) => {
            return Err(DataError::file(path, "Parquet trade files are not read: write trades as CSV or OKX JSON"));
        }
    };
    Ok(Trades { path: path.to_path_buf(), format, source, last: None, done: false })
}

/// A trade's fields as text, checked.
fn trade(path: &Path, line: u64, [ts, px, sz, side, id]: [Option<String>; 5]) -> Result<Trade, DataError> {
    let at = |why: String| DataError::at(path, line, why);
    let need = |v: Option<String>, name: &str| v.filter(|s| !s.is_empty()).ok_or_else(|| at(format!("no {name}")));
    let ts = need(ts, "timestamp")?;
    let ts_ms =
        ts.parse::<i64>().map_err(|_| at(format!("timestamp {} is not whole milliseconds", crate::quoted(&ts))))?;
    let positive = |v: Option<String>, name: &str| -> Result<f64, DataError> {
        let text = need(v, name)?;
        match text.parse::<f64>() {
            Ok(x) if x > 0.0 && crate::is_price(x) && crate::is_size(x) => Ok(x),
            Ok(_) => Err(at(format!("{name} {text} must be finite, above zero and at most {:e}", crate::MAX_PRICE))),
            Err(_) => Err(at(format!("{name} {} is not a number", crate::quoted(&text)))),
        }
    };
    let price = positive(px, "price")?;
    let size = positive(sz, "size")?;
    let side = need(side, "side")?;
    let taker_side = match side.to_ascii_lowercase().as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(at(format!("side {} is neither buy nor sell", crate::quoted(&side)))),
    };
    Ok(Trade { ts_ms, price, size, taker_side, trade_id: id.unwrap_or_default() })
}

impl Trades {
    /// What the file is.
    pub fn format(&self) -> Format {
        self.format
    }

    fn raw(&mut self) -> Option<Result<(u64, Trade), DataError>> {
        let path = &self.path;
        match &mut self.source {
            Source::Csv(rows, ids) => Some(match rows.next()? {
                Ok(r) => {
                    let line = r.position().map_or(0, |p| p.line());
                    let f = |i: usize| r.get(i).map(str::to_string);
                    let id = if *ids { f(4) } else { None };
                    trade(path, line, [f(0), f(1), f(2), f(3), id]).map(|t| (line, t))
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    Err(unreadable(path, line, "row", &e))
                }
            }),
            Source::Json(rows, left) => {
                *left = left.checked_sub(1)?;
                let (value, line) = rows.row(*left)?;
                if !value.is_object() {
                    return Some(Err(DataError::at(
                        path,
                        line,
                        format!("a trade is an object (instId, tradeId, px, sz, side, ts), not {value}"),
                    )));
                }
                let f = |k: &str| value.get(k).and_then(scalar);
                Some(trade(path, line, [f("ts"), f("px"), f("sz"), f("side"), f("tradeId")]).map(|t| (line, t)))
            }
        }
    }

    fn check(&mut self, line: u64, t: Trade) -> Result<Trade, DataError> {
        if let Some((last_ts, last_id)) = &self.last {
            if t.ts_ms < *last_ts {
                let why = match self.format {
                    Format::OkxJson => format!(
                        "trade at {} is newer than the item below it ({last_ts}): OKX's items are newest first",
                        t.ts_ms
                    ),
                    Format::Csv => {
                        format!(
                            "trade at {} is before the one above it ({last_ts}): rows must be oldest first",
                            t.ts_ms
                        )
                    }
                };
                return Err(DataError::at(&self.path, line, why));
            }
            if !t.trade_id.is_empty() && t.trade_id == *last_id {
                return Err(DataError::at(
                    &self.path,
                    line,
                    format!("trade {} appears twice in a row", crate::quoted(&t.trade_id)),
                ));
            }
        }
        self.last = Some((t.ts_ms, t.trade_id.clone()));
        Ok(t)
    }
}

impl Iterator for Trades {
    type Item = Result<Trade, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = match self.raw()? {
            Ok((line, t)) => self.check(line, t),
            Err(e) => Err(e),
        };
        // The first error ends the stream, as for candles.
        self.done = result.is_err();
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Trade>, DataError> {
        let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        from_reader(Path::new("t.csv"), reader)?.collect()
    }

    #[test]
    fn an_endless_line_is_refused_at_the_cap() {
        let head = b"ts_ms,price,size,side\n1000,10,1,buy\n\n";
        let endless: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head).chain(std::io::repeat(b',')));
        let all: Vec<_> = from_reader(Path::new("t.csv"), endless).expect("opens").collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all[0].is_ok());
        let e = all[1].as_ref().expect_err("the endless line");
        assert_eq!(e.to_string(), format!("t.csv:4: line longer than {} bytes", crate::MAX_CSV_LINE));
    }

    #[test]
    fn okx_trades_read_oldest_first() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nautilus_rest_market_trades_btc_usdt.json");
        let trades = open(&path).expect("opens");
        assert_eq!(trades.format(), Format::OkxJson);
        let all: Vec<Trade> = trades.collect::<Result<_, _>>().expect("reads");
        assert_eq!(
            all,
            [
                Trade {
                    ts_ms: 1_747_087_161_666,
                    price: 102537.9,
                    size: 0.0000125,
                    taker_side: Side::Buy,
                    trade_id: "734864332".into()
                },
                Trade {
                    ts_ms: 1_747_087_163_557,
                    price: 102537.9,
                    size: 0.00013669,
                    taker_side: Side::Sell,
                    trade_id: "734864333".into()
                },
            ]
        );
    }

    #[test]
    fn csv_trades_with_and_without_ids() {
        let t = read("ts_ms,price,size,side,trade_id\n1000,10,1,buy,7\n1000,10.5,2,SELL,8\n").expect("reads");
        assert_eq!((t.len(), t[1].taker_side, t[1].trade_id.as_str()), (2, Side::Sell, "8"));
        let t = read("ts_ms,price,size,side\n1000,10,1,sell\n").expect("reads");
        assert_eq!(t[0].trade_id, "");
    }

    #[test]
    fn bad_trades_name_the_line() {
        let e = read("ts,px\n").unwrap_err();
        assert!(e.reason.contains("not a trade header"), "{e}");
        let e = read("ts_ms,price,size,side\n2000,10,1,buy\n1000,10,1,buy\n").unwrap_err();
        assert_eq!((e.line, e.reason.contains("oldest first")), (Some(3), true), "{e}");
        let e = read("ts_ms,price,size,side\n1000,0,1,buy\n").unwrap_err();
        assert!(e.reason.contains("price 0 must be finite, above zero and at most"), "{e}");
        let e = read("ts_ms,price,size,side\n1000,1,inf,buy\n").unwrap_err();
        assert!(e.reason.contains("size inf"), "{e}");
        let e = read("ts_ms,price,size,side\n1000,1,1,hold\n").unwrap_err();
        assert!(e.reason.contains("neither buy nor sell"), "{e}");
        let e = read("ts_ms,price,size,side,trade_id\n1000,1,1,buy,5\n1000,1,1,buy,5\n").unwrap_err();
        assert!(e.reason.contains("twice"), "{e}");
        let body = "{\"code\":\"0\",\"data\":[\n{\"ts\":\"1000\",\"px\":\"1\",\"sz\":\"1\",\"side\":\"buy\"},\n\
                    {\"ts\":\"2000\",\"px\":\"1\",\"sz\":\"1\",\"side\":\"buy\"}]}";
        let e = read(body).unwrap_err();
        assert_eq!((e.line, e.reason.contains("newest first")), (Some(2), true), "{e}");
        let e = read(r#"{"code":"50011","msg":"Too Many Requests","data":[]}"#).unwrap_err();
        assert!(e.reason.contains("50011"), "{e}");
    }
}
