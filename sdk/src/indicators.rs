//! Small streaming indicators, allocation-free after construction.

/// Simple moving average over the last `period` values.
///
/// The mean is the window's values summed oldest first and divided by `period`, computed
/// afresh on every update: any two implementations of that formula agree to the bit (a
/// backtest's result can be checked against an independent calculation), a flat market gives
/// two averages that tie exactly, and nothing drifts over millions of updates, as a running
/// sum (adding the new value, subtracting the old) does. It costs `period` additions a value.
#[derive(Debug, Clone)]
pub struct Sma {
    /// A ring of `period` slots, allocated once: the first `len` hold values, and once it is
    /// full `next` is the oldest. (A `Vec` rather than a boxed slice: the compiler knows its
    /// length fits in an `isize`, which makes `len as f64` a single conversion.)
    window: Vec<f64>,
    /// Values seen, up to `period`.
    len: usize,
    next: usize,
    mean: Option<f64>,
}

impl Sma {
    /// An average over `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self { window: vec![0.0; period], len: 0, next: 0, mean: None }
    }

    /// Adds a value; returns the average once `period` values have been seen.
    #[inline]
    pub fn update(&mut self, value: f64) -> Option<f64> {
        let period = self.window.len();
        // Always a slot: `next < period`. No growth and no call on this path.
        if let Some(slot) = self.window.get_mut(self.next) {
            *slot = value;
            self.len = (self.len + 1).min(period);
            self.next = if self.next + 1 == period { 0 } else { self.next + 1 };
        }
        if self.len == period {
            // Oldest first: from `next` to the end, then from the start to `next`.
            let (newer, older) = self.window.split_at(self.next);
            let sum = older.iter().chain(newer).fold(0.0, |sum, v| sum + v);
            self.mean = Some(sum / period as f64);
        }
        self.mean
    }

    /// The current average, once the window is full.
    #[inline]
    pub fn value(&self) -> Option<f64> {
        self.mean
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
    fn sma_is_the_window_summed_oldest_first_and_does_not_drift() {
        let mut sma = Sma::new(4);
        let prices: Vec<f64> = (0..100_000).map(|i| 60_000.0 + ((i * 7919) % 1000) as f64 * 0.1).collect();
        for (i, p) in prices.iter().enumerate() {
            let got = sma.update(*p);
            if i >= 3 {
                let w = &prices[i - 3..=i];
                assert_eq!(got, Some((((w[0] + w[1]) + w[2]) + w[3]) / 4.0), "at {i}");
            }
        }
        // A flat window ties exactly with any other flat window of the same price.
        let (mut fast, mut slow) = (Sma::new(2), Sma::new(5));
        for _ in 0..5 {
            fast.update(0.1 + 0.2);
            slow.update(0.1 + 0.2);
        }
        assert_eq!(fast.value(), slow.value());
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
