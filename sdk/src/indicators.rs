//! Small streaming indicators, allocation-free after construction.

/// Simple moving average over the last `period` values.
///
/// A running sum (add the new value, subtract the one leaving) makes an update O(1), but its
/// rounding errors add up over millions of updates; so every `period` updates the sum is
/// computed afresh from the window (amortised O(1), and the error never outgrows one window's
/// worth). For comparisons that must be exact, count prices as integers (see `sma-cross`).
#[derive(Debug, Clone)]
pub struct Sma {
    /// A ring of `period` slots, allocated once: the first `len` hold values, and once it is
    /// full `next` is the oldest. (A `Vec` rather than a boxed slice: the compiler knows its
    /// length fits in an `isize`, which makes `len as f64` a single conversion.)
    window: Vec<f64>,
    /// Values seen, up to `period`.
    len: usize,
    next: usize,
    sum: f64,
    /// Updates since the sum was last computed afresh.
    since_fresh: usize,
}

impl Sma {
    /// An average over `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self { window: vec![0.0; period], len: 0, next: 0, sum: 0.0, since_fresh: 0 }
    }

    /// Adds a value; returns the average once `period` values have been seen.
    #[inline]
    pub fn update(&mut self, value: f64) -> Option<f64> {
        let period = self.window.len();
        // Always a slot: `next < period`. No growth and no call on this path.
        if let Some(slot) = self.window.get_mut(self.next) {
            if self.len < period {
                self.len += 1;
                self.sum += value;
            } else {
                self.sum += value - *slot;
            }
            *slot = value;
            self.next = if self.next + 1 == period { 0 } else { self.next + 1 };
        }
        self.since_fresh += 1;
        if self.since_fresh >= period {
            self.since_fresh = 0;
            self.sum = self.window[..self.len].iter().sum();
        }
        self.value()
    }

    /// The current average, once the window is full.
    #[inline]
    pub fn value(&self) -> Option<f64> {
        (self.len == self.window.len()).then(|| self.sum / self.window.len() as f64)
    }

    /// The window length.
    pub fn period(&self) -> usize {
        self.window.len()
    }

    /// The values in the window, oldest first (at most `period`): what a strategy saves on
    /// hot reload to refill the average without waiting for new data.
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        // Until the window is full `next == len`, so `older` is empty.
        let (newer, older) = self.window[..self.len].split_at(self.next.min(self.len));
        older.iter().chain(newer).copied()
    }
}

/// Exponential moving average with smoothing `2 / (period + 1)`.
#[derive(Debug, Clone)]
pub struct Ema {
    alpha: f64,
    value: Option<f64>,
}

impl Ema {
    /// An EMA comparable to an SMA of `period` values.
    pub fn new(period: usize) -> Self {
        Self { alpha: 2.0 / (period.max(1) as f64 + 1.0), value: None }
    }

    /// Adds a value and returns the new average.
    #[inline]
    pub fn update(&mut self, value: f64) -> f64 {
        let next = match self.value {
            None => value,
            Some(prev) => prev + self.alpha * (value - prev),
        };
        self.value = Some(next);
        next
    }

    /// The current average, if any value has been seen.
    #[inline]
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sma_values_are_the_window_oldest_first() {
        let mut sma = Sma::new(3);
        sma.update(1.0);
        sma.update(2.0);
        assert_eq!(sma.values().collect::<Vec<_>>(), vec![1.0, 2.0]);
        for v in [3.0, 4.0, 5.0, 6.0, 7.0] {
            sma.update(v);
            let expected = vec![v - 2.0, v - 1.0, v];
            assert_eq!(sma.values().collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn sma_waits_for_a_full_window_then_slides() {
        let mut sma = Sma::new(3);
        assert_eq!(sma.update(1.0), None);
        assert_eq!(sma.update(2.0), None);
        assert_eq!(sma.update(3.0), Some(2.0));
        assert_eq!(sma.update(7.0), Some(4.0));
    }

    #[test]
    fn sma_does_not_drift_over_a_long_run() {
        let mut sma = Sma::new(4);
        let prices: Vec<f64> = (0..1_000_000_i64).map(|i| 60_000.0 + ((i * 7919) % 1000) as f64 * 0.1).collect();
        let mut worst = 0.0_f64;
        for (i, p) in prices.iter().enumerate() {
            let got = sma.update(*p);
            if i >= 3 {
                let exact = prices[i - 3..=i].iter().sum::<f64>() / 4.0;
                worst = worst.max((got.unwrap_or(0.0) - exact).abs());
            }
        }
        assert!(worst < 1e-9, "drifted by {worst}");
    }

    #[test]
    fn sma_of_period_one_is_the_last_value() {
        let mut sma = Sma::new(0);
        assert_eq!(sma.period(), 1);
        assert_eq!(sma.update(3.0), Some(3.0));
        assert_eq!(sma.update(5.0), Some(5.0));
        assert_eq!(sma.values().collect::<Vec<_>>(), vec![5.0]);
    }

    #[test]
    fn ema_starts_at_first_value_and_moves_toward_new_ones() {
        let mut ema = Ema::new(3);
        assert_eq!(ema.update(10.0), 10.0);
        assert_eq!(ema.update(20.0), 15.0);
        assert!(ema.value().is_some_and(|v| v > 15.0 - 1e-9));
    }
}
