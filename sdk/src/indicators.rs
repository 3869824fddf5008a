//! Small streaming indicators, allocation-free after construction.

use std::collections::VecDeque;

/// Simple moving average over the last `period` values.
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    window: VecDeque<f64>,
    sum: f64,
}

impl Sma {
    /// An average over `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self { period, window: VecDeque::with_capacity(period), sum: 0.0 }
    }

    /// Adds a value; returns the average once `period` values have been seen.
    pub fn update(&mut self, value: f64) -> Option<f64> {
        self.window.push_back(value);
        self.sum += value;
        if self.window.len() > self.period {
            self.sum -= self.window.pop_front().unwrap_or(0.0);
        }
        self.value()
    }

    /// The current average, once the window is full.
    pub fn value(&self) -> Option<f64> {
        (self.window.len() == self.period).then(|| self.sum / self.period as f64)
    }

    /// The window length.
    pub fn period(&self) -> usize {
        self.period
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
    pub fn update(&mut self, value: f64) -> f64 {
        let next = match self.value {
            None => value,
            Some(prev) => prev + self.alpha * (value - prev),
        };
        self.value = Some(next);
        next
    }

    /// The current average, if any value has been seen.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sma_waits_for_a_full_window_then_slides() {
        let mut sma = Sma::new(3);
        assert_eq!(sma.update(1.0), None);
        assert_eq!(sma.update(2.0), None);
        assert_eq!(sma.update(3.0), Some(2.0));
        assert_eq!(sma.update(7.0), Some(4.0));
    }

    #[test]
    fn ema_starts_at_first_value_and_moves_toward_new_ones() {
        let mut ema = Ema::new(3);
        assert_eq!(ema.update(10.0), 10.0);
        assert_eq!(ema.update(20.0), 15.0);
        assert!(ema.value().is_some_and(|v| v > 15.0 - 1e-9));
    }
}
