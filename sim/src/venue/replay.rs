//! Replaying recorded prices instead of the random walk: the simulated market's mid follows a
//! file of OKX `market/candles` or `market/trades` answers (the REST body as OKX sends it,
//! newest first), one price per market step, from the oldest, starting over at the end.
//! Synthetic liquidity and taker flow still trade around that mid, so resting orders fill.

use serde_json::Value;
use std::path::Path;

/// Why a replay file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// It could not be read.
    #[error("replay file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not an OKX candles or trades body.
    #[error("replay file {path}: {problem}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite() && *x > 0.0)
}

/// The prices a file replays, oldest first. Each candle contributes open, its two extremes in
/// the order its direction suggests (down candles touch the high first), and close; each trade
/// its price.
pub fn load(path: &Path) -> Result<Vec<f64>, ReplayError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Io { path: name.clone(), source })?;
    let bad = |problem: &str| ReplayError::Format { path: name.clone(), problem: problem.to_string() };
    let body: Value = serde_json::from_str(&text).map_err(|e| bad(&format!("not JSON ({e})")))?;
    let data = body.get("data").and_then(Value::as_array).ok_or_else(|| bad("no `data` array"))?;
    let mut rows: Vec<(i64, Vec<f64>)> = Vec::with_capacity(data.len());
    for (i, item) in data.iter().enumerate() {
        let row = match item {
            Value::Array(c) => {
                let field = |k: usize| c.get(k).and_then(num);
                let ts = c.first().and_then(num).ok_or_else(|| bad(&format!("candle {i}: no timestamp")))? as i64;
                let (o, h, l, cl) = match (field(1), field(2), field(3), field(4)) {
                    (Some(o), Some(h), Some(l), Some(c)) => (o, h, l, c),
                    _ => return Err(bad(&format!("candle {i}: open, high, low and close must be positive numbers"))),
                };
                let path = if cl >= o { vec![o, l, h, cl] } else { vec![o, h, l, cl] };
                (ts, path)
            }
            Value::Object(_) => {
                let px = item.get("px").and_then(num).ok_or_else(|| bad(&format!("trade {i}: no px")))?;
                let ts = item.get("ts").and_then(num).unwrap_or(i as f64) as i64;
                (ts, vec![px])
            }
            _ => return Err(bad(&format!("item {i} is neither a candle row nor a trade"))),
        };
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(bad("no prices"));
    }
    rows.sort_by_key(|(ts, _)| *ts);
    Ok(rows.into_iter().flat_map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(file: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../okx/tests/data").join(file)
    }

    #[test]
    fn real_candles_and_trades_replay_oldest_first() {
        let candles = load(&shared("hummingbot_rest_market_candles_btc_usdt_1h.json")).expect("candles");
        assert_eq!(candles.len(), 16, "4 candles, 4 prices each");
        // The file is newest first; the oldest candle's open comes first.
        assert!(candles.iter().all(|p| (40_000.0..50_000.0).contains(p)));
        let trades = load(&shared("nautilus_rest_market_trades_btc_usdt.json")).expect("trades");
        assert!(!trades.is_empty() && trades.iter().all(|p| *p > 100_000.0));
        let dir = tempfile::tempdir().expect("tmp");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"code":"0","data":[["1","x","1","1","1"]]}"#).expect("write");
        assert!(load(&bad).unwrap_err().to_string().contains("candle 0"));
        assert!(load(&dir.path().join("missing.json")).unwrap_err().to_string().contains("missing.json"));
    }
}
