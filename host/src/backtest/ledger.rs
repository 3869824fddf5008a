//! The backtest's own ledger per plugin: equity bar by bar, closed trades, drawdown and the
//! Sharpe ratio, kept in floats as the run goes (memory flat in its length).
//!
//! The host's tracker keeps each plugin's positions and PnL exactly as live (decimals), and the
//! final figures come from it; this ledger exists for what the tracker has no reason to keep:
//! the curve, the trades as round trips, and the statistics of the curve. Equity here is the
//! identity `cash + Σ position × mark`, where cash is what the plugin's fills paid and received
//! (fees included), so it needs no decision about which fills closed what.

use super::results::{CURVE_POINTS, Direction, Point, RoundTrip};
use crate::venue::paper::exchange::Fill;
use rustc_hash::FxHashMap;
use tradebox_core::{InstrumentId, Side};

/// A curve thinned evenly to at most about [`CURVE_POINTS`] points, whatever its length: every
/// `stride`-th point is kept, and the stride doubles (dropping every other point kept) when the
/// points would pass twice that.
#[derive(Debug, Clone, Default)]
pub struct Thinned {
    points: Vec<Point>,
    stride: u64,
    seen: u64,
    /// The next `seen` that is a multiple of `stride` (kept so that a push, three a bar, does
    /// not divide).
    next_kept: u64,
    last: Option<Point>,
}

impl Thinned {
    /// Offers the next point.
    pub fn push(&mut self, point: Point) {
        if self.stride == 0 {
            self.stride = 1;
        }
        if self.seen == self.next_kept {
            self.points.push(point);
            self.next_kept += self.stride;
            if self.points.len() >= 2 * CURVE_POINTS {
                let mut i = 0;
                self.points.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
                self.next_kept = (self.seen / self.stride + 1) * self.stride;
            }
        }
        self.seen += 1;
        self.last = Some(point);
    }

    /// The points kept, ending with the last one offered.
    pub fn finish(mut self) -> Vec<Point> {
        if let Some(last) = self.last
            && self.points.last() != Some(&last)
        {
            self.points.push(last);
        }
        self.points
    }
}

/// The spread of per-bar returns, online (Welford), and the largest fall from a peak.
#[derive(Debug, Clone, Default)]
pub struct CurveStats {
    n: u64,
    mean: f64,
    m2: f64,
    peak: f64,
    /// Largest peak-to-trough fall, money.
    pub max_drawdown: f64,
    /// The same as a fraction of its peak.
    pub max_drawdown_pct: f64,
    previous: Option<f64>,
}

impl CurveStats {
    /// Adds the curve's next value; `base` scales changes into returns (the starting equity).
    pub fn push(&mut self, value: f64, base: f64) {
        if let Some(previous) = self.previous
            && base > 0.0
        {
            let r = (value - previous) / base;
            self.n += 1;
            let delta = r - self.mean;
            self.mean += delta / self.n as f64;
            self.m2 += delta * (r - self.mean);
        } else if self.previous.is_none() {
            self.peak = value;
        }
        self.previous = Some(value);
        if value > self.peak {
            self.peak = value;
        }
        let fall = self.peak - value;
        if fall > self.max_drawdown {
            self.max_drawdown = fall;
            self.max_drawdown_pct = if self.peak > 0.0 { fall / self.peak } else { 0.0 };
        }
    }

    /// Annualised Sharpe ratio for bars `bar_ms` apart (risk-free rate 0); `None` without a
    /// spread of returns.
    pub fn sharpe(&self, bar_ms: i64) -> Option<f64> {
        if self.n < 2 || bar_ms <= 0 {
            return None;
        }
        let std = (self.m2 / (self.n - 1) as f64).sqrt();
        if std <= 0.0 || !std.is_finite() {
            return None;
        }
        let per_year = 365.0 * 86_400_000.0 / bar_ms as f64;
        Some(self.mean / std * per_year.sqrt())
    }
}

/// A position and the trade it belongs to.
#[derive(Debug, Clone, Default)]
struct Position {
    /// Signed size (contracts for derivatives).
    size: f64,
    /// Average entry price of what is held.
    avg: f64,
    /// The open trade, while `size != 0`.
    trip: Option<Trip>,
}

#[derive(Debug, Clone)]
struct Trip {
    direction: Direction,
    entry_ms: i64,
    entry_value: f64,
    entry_size: f64,
    exit_value: f64,
    exit_size: f64,
    largest: f64,
    pnl: f64,
    fees: f64,
    /// The price of each side's first fill and whether there were more (one fill's price is
    /// its average exactly, where value / size is off in the last bit).
    entry_first: Option<(f64, bool)>,
    exit_first: Option<(f64, bool)>,
}

fn note(first: &mut Option<(f64, bool)>, price: f64) {
    match first {
        None => *first = Some((price, false)),
        Some((p, more)) => *more |= *p != price,
    }
}

fn average(first: Option<(f64, bool)>, value: f64, size: f64) -> f64 {
    match first {
        Some((price, false)) => price,
        _ => value / size.max(f64::MIN_POSITIVE),
    }
}

/// One plugin's ledger.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    cash: f64,
    positions: FxHashMap<InstrumentId, Position>,
    /// Closed trades, oldest first.
    pub trades: Vec<RoundTrip>,
    /// Fills booked.
    pub fills: u64,
    /// Funding paid (positive) or received (negative), in the quote currency.
    pub funding: f64,
    /// Curve statistics of `start + pnl`.
    pub curve: CurveStats,
    /// The curve itself, thinned.
    pub equity: Thinned,
}

impl Ledger {
    /// Books a fill; `multiplier` is the instrument's contract value (1 for spot).
    pub fn fill(&mut self, fill: &Fill, symbol: &str, multiplier: f64) {
        self.fills += 1;
        let signed = if fill.side == Side::Buy { fill.size } else { -fill.size };
        self.cash -= signed * fill.price * multiplier + fill.fee;
        let position = self.positions.entry(fill.instrument).or_default();
        let mut left = signed;
        let mut fee_left = fill.fee;
        while left != 0.0 {
            if position.size == 0.0 {
                position.trip = Some(Trip {
                    direction: if left > 0.0 { Direction::Long } else { Direction::Short },
                    entry_ms: fill.ts_ms,
                    entry_value: 0.0,
                    entry_size: 0.0,
                    exit_value: 0.0,
                    exit_size: 0.0,
                    largest: 0.0,
                    pnl: 0.0,
                    fees: 0.0,
                    entry_first: None,
                    exit_first: None,
                });
            }
            let Some(trip) = position.trip.as_mut() else { break };
            let same_way = position.size == 0.0 || position.size.signum() == left.signum();
            // The part of this fill that belongs to the open trade: all of it when it adds,
            // at most the position when it reduces (the rest opens the next trade).
            let part = if same_way { left } else { left.signum() * left.abs().min(position.size.abs()) };
            let share = part.abs() / fill.size.max(f64::MIN_POSITIVE);
            let fee = if left == part { fee_left } else { fill.fee * share };
            fee_left -= fee;
            trip.fees += fee;
            if same_way {
                let held = position.size.abs();
                position.avg = (position.avg * held + fill.price * part.abs()) / (held + part.abs());
                trip.entry_value += fill.price * part.abs();
                trip.entry_size += part.abs();
                note(&mut trip.entry_first, fill.price);
            } else {
                let sign = position.size.signum();
                trip.pnl += sign * (fill.price - position.avg) * part.abs() * multiplier;
                trip.exit_value += fill.price * part.abs();
                trip.exit_size += part.abs();
                note(&mut trip.exit_first, fill.price);
            }
            position.size += part;
            if position.size.abs() < 1e-12 {
                position.size = 0.0;
            }
            trip.largest = trip.largest.max(position.size.abs());
            left -= part;
            if left.abs() < 1e-12 {
                left = 0.0;
            }
            if position.size == 0.0
                && let Some(trip) = position.trip.take()
            {
                position.avg = 0.0;
                self.trades.push(RoundTrip {
                    symbol: symbol.to_string(),
                    direction: trip.direction,
                    entry_ms: trip.entry_ms,
                    entry_price: average(trip.entry_first, trip.entry_value, trip.entry_size),
                    exit_ms: fill.ts_ms,
                    exit_price: average(trip.exit_first, trip.exit_value, trip.exit_size),
                    size: trip.largest,
                    pnl: trip.pnl,
                    fees: trip.fees,
                });
            }
        }
    }

    /// Profit and loss now: cash plus every position at `mark` (price per instrument) times its
    /// multiplier.
    pub fn pnl(&self, mark: impl Fn(InstrumentId) -> (f64, f64)) -> f64 {
        let mut value = self.cash;
        for (instrument, position) in &self.positions {
            if position.size != 0.0 {
                let (price, multiplier) = mark(*instrument);
                value += position.size * price * multiplier;
            }
        }
        value
    }

    /// Pays funding on its position in `instrument`: `size × multiplier × mark × rate` (a long
    /// pays a positive rate, a short receives it).
    pub fn fund(&mut self, instrument: InstrumentId, multiplier: f64, mark: f64, rate: f64) {
        let size = self.positions.get(&instrument).map_or(0.0, |p| p.size);
        let pay = size * multiplier * mark * rate;
        self.cash -= pay;
        self.funding += pay;
    }

    /// Whether it holds anything (its equity moves with prices).
    pub fn holds(&self) -> bool {
        self.positions.values().any(|p| p.size != 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(side: Side, price: f64, size: f64, fee: f64, ts_ms: i64) -> Fill {
        Fill { plugin: Some(1), instrument: 1, side, price, size, fee, ts_ms }
    }

    #[test]
    fn a_long_and_a_flip_make_two_trades_and_cash_adds_up() {
        let mut book = Ledger::default();
        book.fill(&fill(Side::Buy, 100.0, 1.0, 0.1, 1), "X", 1.0);
        book.fill(&fill(Side::Buy, 110.0, 1.0, 0.1, 2), "X", 1.0);
        assert!((book.pnl(|_| (120.0, 1.0)) - (240.0 - 210.0 - 0.2)).abs() < 1e-9);
        // Sells 3: closes the 2 long at 120 (avg 105: +30) and opens 1 short.
        book.fill(&fill(Side::Sell, 120.0, 3.0, 0.3, 3), "X", 1.0);
        assert_eq!(book.trades.len(), 1);
        let t = &book.trades[0];
        assert_eq!(
            (t.direction, t.entry_price, t.exit_price, t.size, t.pnl),
            (Direction::Long, 105.0, 120.0, 2.0, 30.0)
        );
        assert!((t.fees - 0.4).abs() < 1e-12, "{}", t.fees);
        book.fill(&fill(Side::Buy, 100.0, 1.0, 0.1, 4), "X", 1.0);
        assert_eq!(book.trades.len(), 2);
        assert_eq!((book.trades[1].direction, book.trades[1].pnl), (Direction::Short, 20.0));
        assert!(!book.holds());
        assert!((book.pnl(|_| (1.0, 1.0)) - (30.0 + 20.0 - 0.6)).abs() < 1e-9);
    }

    #[test]
    fn thinning_keeps_the_ends_and_stays_bounded() {
        let mut curve = Thinned::default();
        for i in 0..100_000 {
            curve.push(Point { ts_ms: i, value: i as f64 });
        }
        let points = curve.finish();
        assert!(points.len() <= 2 * CURVE_POINTS, "{}", points.len());
        assert_eq!((points[0].ts_ms, points[points.len() - 1].ts_ms), (0, 99_999));
        // Evenly: every point kept but the last is a multiple of one stride, and none between.
        let kept = &points[..points.len() - 1];
        let stride = kept[1].ts_ms - kept[0].ts_ms;
        assert!(kept.windows(2).all(|w| w[1].ts_ms - w[0].ts_ms == stride), "stride {stride}");
        assert!(kept.iter().all(|p| p.ts_ms % stride == 0));
        assert!(99_999 - kept[kept.len() - 1].ts_ms < stride);
    }

    #[test]
    fn drawdown_and_sharpe() {
        let mut stats = CurveStats::default();
        for v in [100.0, 110.0, 99.0, 120.0] {
            stats.push(v, 100.0);
        }
        assert!((stats.max_drawdown - 11.0).abs() < 1e-12);
        assert!((stats.max_drawdown_pct - 0.1).abs() < 1e-12);
        assert!(stats.sharpe(60_000).is_some_and(|s| s > 0.0));
        let mut flat = CurveStats::default();
        for _ in 0..10 {
            flat.push(100.0, 100.0);
        }
        assert_eq!(flat.sharpe(60_000), None);
    }
}
