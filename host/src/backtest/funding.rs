//! Funding of perpetual swaps in a backtest, from a file of funding rates.
//!
//! At each funding time, every open swap position pays (long, positive rate) or receives
//! `size × contract value × mark × rate`, the mark being the instrument's last price in the
//! replay. The file is OKX's `public/funding-rate-history` body (`fundingTime`, `instId`, and
//! `realizedRate`, else `fundingRate`) or a CSV with the header `ts_ms,rate` (one instrument:
//! the run's first swap) or `ts_ms,instrument,rate`.

use std::path::Path;
use tradebox_core::{InstrumentId, InstrumentKind, InstrumentSpec};
use tradebox_data::DataError;

/// One funding: when, which instrument, at what rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Funding {
    /// Funding time, ms.
    pub ts_ms: i64,
    /// The swap.
    pub instrument: InstrumentId,
    /// The rate (0.0001 is 0.01%).
    pub rate: f64,
}

/// Reads a funding file for `instruments`, oldest first. Rows of instruments not in the run
/// are passed over; a row that does not read is an error naming its line.
pub fn read(path: &Path, instruments: &[InstrumentSpec]) -> Result<Vec<Funding>, DataError> {
    let text = read_small(path)?;
    let by_symbol = |symbol: &str| instruments.iter().find(|s| s.symbol == symbol).map(|s| s.id);
    let mut out = Vec::new();
    if text.trim_start().starts_with('{') {
        let body: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| DataError::file(path, format!("not JSON: {e}")))?;
        if let Some(code) = body.get("code").and_then(|c| c.as_str()).filter(|c| *c != "0") {
            let msg = body.get("msg").and_then(|m| m.as_str()).unwrap_or_default();
            return Err(DataError::file(path, format!("OKX answered code {code}: {msg}")));
        }
        let rows = body
            .get("data")
            .and_then(|d| d.as_array())
            .ok_or_else(|| DataError::file(path, "not OKX's funding-rate-history body (no data array)"))?;
        for (i, row) in rows.iter().enumerate() {
            let field = |name: &str| row.get(name).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
            let bad = |why: &str| DataError::file(path, format!("row {} of data: {why}", i + 1));
            let ts_ms =
                field("fundingTime").and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| bad("no fundingTime"))?;
            let rate = field("realizedRate")
                .or_else(|| field("fundingRate"))
                .and_then(|r| r.parse::<f64>().ok())
                .filter(|r| r.is_finite())
                .ok_or_else(|| bad("no readable realizedRate or fundingRate"))?;
            let Some(instrument) = field("instId").and_then(by_symbol) else { continue };
            out.push(Funding { ts_ms, instrument, rate });
        }
    } else {
        let first_swap = instruments.iter().find(|s| s.kind != InstrumentKind::Spot).map(|s| s.id);
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| DataError::at(path, 1, format!("unreadable header: {e}")))?
            .iter()
            .map(str::to_ascii_lowercase)
            .collect();
        let with_instrument = match header.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["ts_ms", "rate", ..] => false,
            ["ts_ms", "instrument", "rate", ..] => true,
            _ => {
                return Err(DataError::at(
                    path,
                    1,
                    "a funding CSV starts with `ts_ms,rate` or `ts_ms,instrument,rate`",
                ));
            }
        };
        for record in reader.records() {
            let record = record.map_err(|e| {
                DataError::at(path, e.position().map_or(0, |p| p.line()), format!("unreadable row: {e}"))
            })?;
            let line = record.position().map_or(0, |p| p.line());
            let bad = |why: String| DataError::at(path, line, why);
            let ts_ms = record.get(0).and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| bad("no ts_ms".into()))?;
            let (instrument, rate) = if with_instrument {
                (record.get(1).and_then(by_symbol), record.get(2))
            } else {
                (first_swap, record.get(1))
            };
            let rate = rate
                .and_then(|r| r.parse::<f64>().ok())
                .filter(|r| r.is_finite())
                .ok_or_else(|| bad(format!("rate {:?} is not a number", rate.unwrap_or_default())))?;
            let Some(instrument) = instrument else { continue };
            out.push(Funding { ts_ms, instrument, rate });
        }
    }
    out.sort_by_key(|f| (f.ts_ms, f.instrument));
    out.dedup_by_key(|f| (f.ts_ms, f.instrument));
    Ok(out)
}

/// The most bytes a file read whole may have (a funding history of every instrument for years
/// is a few megabytes).
pub const MAX_WHOLE_FILE: u64 = 16 << 20;

/// Reads a regular file of at most [`MAX_WHOLE_FILE`] bytes as text.
pub fn read_small(path: &Path) -> Result<String, DataError> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    if !meta.is_file() {
        return Err(DataError::file(path, "not a file (a data file is a regular file)"));
    }
    if meta.len() > MAX_WHOLE_FILE {
        return Err(DataError::file(path, format!("{} bytes: at most {MAX_WHOLE_FILE} are read whole", meta.len())));
    }
    std::fs::read_to_string(path).map_err(|e| DataError::file(path, format!("cannot read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn swap() -> InstrumentSpec {
        InstrumentSpec {
            id: 1,
            symbol: "BTC-USDT-SWAP".into(),
            kind: InstrumentKind::Swap,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: Decimal::ONE,
            lot_size: Decimal::ONE,
            min_size: Decimal::ONE,
            contract_value: "0.01".parse().expect("cv"),
        }
    }

    #[test]
    fn okx_bodies_and_csv_read_oldest_first() {
        let dir = tempfile::tempdir().expect("tmp");
        let json = dir.path().join("f.json");
        std::fs::write(
            &json,
            r#"{"code":"0","msg":"","data":[
              {"instId":"BTC-USDT-SWAP","fundingRate":"0.0002","realizedRate":"0.00015","fundingTime":"200"},
              {"instId":"ETH-USDT-SWAP","fundingRate":"0.0003","fundingTime":"150"},
              {"instId":"BTC-USDT-SWAP","fundingRate":"-0.0001","realizedRate":"","fundingTime":"100"}]}"#,
        )
        .expect("write");
        let got = read(&json, &[swap()]).expect("reads");
        assert_eq!(
            got,
            vec![
                Funding { ts_ms: 100, instrument: 1, rate: -0.0001 },
                Funding { ts_ms: 200, instrument: 1, rate: 0.00015 }
            ]
        );
        let csv = dir.path().join("f.csv");
        std::fs::write(&csv, "ts_ms,rate\n100,0.0001\n200,x\n").expect("write");
        let e = read(&csv, &[swap()]).expect_err("bad rate");
        assert_eq!(e.line, Some(3), "{e}");
        std::fs::write(&csv, "time,rate\n").expect("write");
        assert!(read(&csv, &[swap()]).is_err());
    }
}
