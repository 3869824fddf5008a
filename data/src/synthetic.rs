//! Synthetic candles: a seeded random walk, for tests and benchmarks that need many bars
//! without a download (the same seed gives the same bars on every machine).

use crate::Bar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `count` one-minute-style bars `bar_ms` apart from `start_ms`, starting at `price`, each
/// close a log-normal step (volatility `vol` per bar) from the open, rounded to `tick`; highs
/// and lows a little beyond them. Prices stay at or above one tick.
pub fn random_walk(seed: u64, count: usize, start_ms: i64, bar_ms: i64, price: f64, vol: f64, tick: f64) -> Vec<Bar> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // On the tick and written as an exchange writes it (60613.4, not 60613.40000000001, the
    // float that `n × 0.1` gives): the decimals a tick of this size has.
    let decimals =
        (0..12).find(|d| ((tick * 10f64.powi(*d)).round() - tick * 10f64.powi(*d)).abs() < 1e-9).unwrap_or(12);
    let round = |p: f64| {
        let on_tick = ((p / tick).round() * tick).max(tick);
        format!("{on_tick:.*}", decimals as usize).parse().unwrap_or(on_tick)
    };
    // Box-Muller: one standard normal from two uniforms.
    let normal = |rng: &mut ChaCha8Rng| {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let mut open = round(price);
    let mut bars = Vec::with_capacity(count);
    for i in 0..count {
        let close = round(open * (vol * normal(&mut rng)).exp());
        let high = round(open.max(close) * (1.0 + (vol * 0.4 * normal(&mut rng)).abs()));
        let low = round(open.min(close) * (1.0 - (vol * 0.4 * normal(&mut rng)).abs()));
        let volume = (rng.random::<f64>() * 20.0 * 10_000.0).round() / 10_000.0;
        bars.push(Bar {
            ts_ms: start_ms + i as i64 * bar_ms,
            open,
            high,
            low: low.min(open.min(close)),
            close,
            volume,
        });
        open = close;
    }
    bars
}

/// Writes bars as tradebox's candle CSV (`ts_ms,open,high,low,close,volume`).
pub fn write_csv(bars: &[Bar], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(out, "ts_ms,open,high,low,close,volume")?;
    for b in bars {
        writeln!(out, "{},{},{},{},{},{}", b.ts_ms, b.open, b.high, b.low, b.close, b.volume)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_is_seeded_checked_and_reads_back() {
        let bars = random_walk(7, 1_000, 0, 60_000, 60_000.0, 0.001, 0.1);
        assert_eq!(bars, random_walk(7, 1_000, 0, 60_000, 60_000.0, 0.001, 0.1));
        assert!(bars.iter().all(|b| b.check().is_ok()));
        // Every price as few decimals as the tick: 0.1 gives one.
        assert!(bars.iter().all(|b| b.close.to_string().split('.').nth(1).is_none_or(|d| d.len() <= 1)), "{bars:?}");
        let mut text = Vec::new();
        write_csv(&bars, &mut text).unwrap();
        let back: Vec<Bar> =
            crate::candles::from_reader(std::path::Path::new("w.csv"), Box::new(std::io::Cursor::new(text)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(back, bars);
    }
}
