//! Moving-average crossover, on tickers' mids or on closed candles' closes.
//!
//! Config (JSON, every field optional):
//! `{"symbol": "BTC-USDT", "fast": 10, "slow": 30, "size": 0.001, "source": "ticker"}`.
//! `source` is `ticker` (each ticker's mid) or `candle` (each closed one-minute bar's close).
//! A crossover is a change in the sign of (fast SMA - slow SMA) from the last sign that was not
//! zero (an exact tie is no signal, and the first sign is no crossover). Goes long `size` with a
//! market order on an up-cross when flat, and sells the whole position on a down-cross when
//! long. Sends at most one order at a time. The averages are compared exactly (see [`Signal`]),
//! so an independent calculation in exact decimals agrees bar for bar (the backtest's tests
//! check it).

use serde::{Deserialize, Serialize};

/// The direction of a crossover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cross {
    /// Fast moved above slow.
    Up,
    /// Fast moved below slow.
    Down,
}

/// Whether the fast mean is above the slow one (`None`: an exact tie): `fast_sum × slow`
/// against `slow_sum × fast`. In floats first (native instructions in wasm too): the two
/// products are each within a relative 2^-52 of the true ones, so a difference larger than
/// 2^-50 of their size has the true sign; only nearer a tie is it decided in 128-bit integers.
#[inline(always)]
fn above(fast_sum: i64, slow_sum: i64, fast: usize, slow: usize) -> Option<bool> {
    let (a, b) = (fast_sum as f64 * slow as f64, slow_sum as f64 * fast as f64);
    let d = a - b;
    if d.abs() > (a.abs() + b.abs()) * (1.0 / (1u64 << 50) as f64) {
        return Some(d > 0.0);
    }
    let (a, b) = (i128::from(fast_sum) * slow as i128, i128::from(slow_sum) * fast as i128);
    match a.cmp(&b) {
        std::cmp::Ordering::Equal => None,
        other => Some(other == std::cmp::Ordering::Greater),
    }
}

/// Prices are counted in units of 10^-8 (no exchange quotes finer): integers, so both sums
/// and their comparison are exact.
const UNITS: f64 = 1e8;

/// The pure signal: two simple moving averages over one window of prices and which one was
/// last on top. Kept free of host calls so the benchmark can run the identical logic natively.
///
/// The averages are compared exactly: prices become integers of 10^-8, each window keeps an
/// integer running sum (no drift, whatever the length of the run), and fast is above slow when
/// `fast_sum × slow_len > slow_sum × fast_len`. So an exact tie is a tie (a flat market gives
/// no signal) and any exact calculation of the same averages, in decimals or rationals, agrees
/// with it bar for bar.
#[derive(Debug, Clone)]
pub struct Signal {
    /// The last `slow` prices, a ring: the first `len` slots hold prices, and once it is full
    /// `next` is the oldest.
    window: Vec<i64>,
    len: usize,
    next: usize,
    /// Where the price that leaves the fast window is: `fast` places behind `next`.
    fast_tail: usize,
    fast: usize,
    /// Sums of up to `slow` prices, each at most `i64::MAX / slow` units so that no sum can
    /// overflow.
    fast_sum: i64,
    slow_sum: i64,
    /// The most units one price may count for in this window.
    most: i64,
    /// Whether fast was above slow at the last update where they differed.
    fast_above: Option<bool>,
}

impl Signal {
    /// A signal over `fast` and `slow` periods (fast at least 1, slow above fast).
    pub fn new(fast: usize, slow: usize) -> Self {
        let fast = fast.max(1);
        let slow = slow.max(fast + 1);
        Self {
            window: vec![0; slow],
            len: 0,
            next: 0,
            fast_tail: slow - fast,
            fast,
            fast_sum: 0,
            slow_sum: 0,
            most: i64::MAX / slow as i64,
            fast_above: None,
        }
    }

    /// The periods, fast and slow.
    pub fn periods(&self) -> (usize, usize) {
        (self.fast, self.window.len())
    }

    /// Feeds a price; returns a crossover when one happens. A price that is not positive, or
    /// too large for the window's sums to hold (above 9.2·10^10 / slow: 3·10^9 for a slow
    /// window of 30), is passed over.
    #[inline(always)]
    pub fn update(&mut self, price: f64) -> Option<Cross> {
        let units = price * UNITS;
        if units.is_nan() || !(1.0..=self.most as f64).contains(&units) {
            return None;
        }
        // Rounded to the nearest unit: `+ 0.5` and truncation (one instruction in wasm and
        // natively; `f64::round` is a library call in both). `units` is at least 1 here.
        let units = (units + 0.5) as i64;
        let slow = self.window.len();
        let leaving_fast =
            if self.len >= self.fast { self.window.get(self.fast_tail).copied().unwrap_or(0) } else { 0 };
        let leaving_slow = if self.len == slow { self.window.get(self.next).copied().unwrap_or(0) } else { 0 };
        if let Some(slot) = self.window.get_mut(self.next) {
            *slot = units;
        }
        self.next = if self.next + 1 == slow { 0 } else { self.next + 1 };
        self.fast_tail = if self.fast_tail + 1 == slow { 0 } else { self.fast_tail + 1 };
        self.len = (self.len + 1).min(slow);
        self.fast_sum += units - leaving_fast;
        self.slow_sum += units - leaving_slow;
        if self.len < slow {
            return None;
        }
        let above = above(self.fast_sum, self.slow_sum, self.fast, slow)?;
        let previous = self.fast_above.replace(above)?;
        match (previous, above) {
            (false, true) => Some(Cross::Up),
            (true, false) => Some(Cross::Down),
            _ => None,
        }
    }

    /// The prices in the window, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = f64> + '_ {
        let (newer, older) = self.window[..self.len].split_at(self.next.min(self.len));
        older.iter().chain(newer).map(|u| *u as f64 / UNITS)
    }
}

/// Everything `sma-cross` does with a ticker before it may decide to trade: filter by
/// instrument, take the mid, update the signal. Kept free of host calls so the benchmark runs
/// the identical per-ticker work natively.
#[derive(Debug, Clone)]
pub struct Core {
    instrument: u32,
    signal: Signal,
}

impl Core {
    /// A core for `instrument` with `fast` and `slow` periods.
    pub fn new(instrument: u32, fast: usize, slow: usize) -> Self {
        Self { instrument, signal: Signal::new(fast, slow) }
    }

    /// Feeds one ticker's fields; returns a crossover when one happens.
    #[inline]
    pub fn on_ticker(&mut self, instrument: u32, bid: f64, ask: f64) -> Option<Cross> {
        if instrument != self.instrument || bid <= 0.0 || ask <= 0.0 {
            return None;
        }
        self.signal.update((bid + ask) / 2.0)
    }

    /// Feeds one candle; only a closed bar of the instrument counts, by its close.
    #[inline]
    pub fn on_candle(&mut self, instrument: u32, close: f64, confirmed: bool) -> Option<Cross> {
        if instrument != self.instrument || !confirmed || close <= 0.0 {
            return None;
        }
        self.signal.update(close)
    }

    /// The prices in the slow window, oldest first: enough to rebuild both averages.
    pub fn recent(&self) -> impl Iterator<Item = f64> + '_ {
        self.signal.recent()
    }

    /// Rebuilds the signal from saved prices (the newest `slow` of them count).
    pub fn replay(&mut self, prices: &[f64]) {
        let (fast, slow) = self.signal.periods();
        self.signal = Signal::new(fast, slow);
        for price in prices {
            self.signal.update(*price);
        }
    }
}

/// Which prices feed the averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Each ticker's mid.
    Ticker,
    /// Each closed one-minute candle's close.
    Candle,
}

/// Plugin configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Instrument symbol.
    pub symbol: String,
    /// Fast SMA period.
    pub fast: usize,
    /// Slow SMA period.
    pub slow: usize,
    /// Order size; 0 means ten times the instrument's minimum.
    pub size: f64,
    /// Tickers or candles.
    pub source: Source,
}

impl Default for Config {
    fn default() -> Self {
        Self { symbol: "BTC-USDT".into(), fast: 10, slow: 30, size: 0.0, source: Source::Ticker }
    }
}

#[cfg(target_arch = "wasm32")]
mod plugin {
    use super::*;
    use tradebox_sdk::prelude::*;

    /// What survives a hot reload: the recent prices that fill both windows.
    #[derive(Serialize, Deserialize)]
    struct Saved {
        prices: Vec<f64>,
    }

    struct SmaCross {
        instrument: InstrumentId,
        size: f64,
        core: Core,
        working: Option<String>,
    }

    impl SmaCross {
        /// Acts on a crossover: at most one working order, long on `Up`, flat on `Down`.
        #[inline(never)]
        fn on_cross(&mut self, cross: Cross) {
            if self.working.is_some() {
                return;
            }
            let held = position_size(self.instrument);
            let request = match cross {
                Cross::Up if held <= 0.0 => OrderRequest::market(self.instrument, Side::Buy, self.size),
                Cross::Down if held > 0.0 => OrderRequest::market(self.instrument, Side::Sell, held).reduce_only(),
                _ => return,
            };
            match orders::place(request) {
                Ok(id) => self.working = Some(id),
                Err(denial) => warn!("order denied: {} {}", denial.code, denial.message),
            }
        }
    }

    impl Strategy for SmaCross {
        fn init(config: &str) -> Result<Self, String> {
            let config: Config = serde_json::from_str(config).map_err(|e| format!("config: {e}"))?;
            if config.fast == 0 || config.fast >= config.slow {
                return Err(format!("config: need 0 < fast < slow, got {} and {}", config.fast, config.slow));
            }
            let instrument = views::find_instrument(&config.symbol)
                .ok_or_else(|| format!("instrument {} is unknown or not granted", config.symbol))?;
            let channel = match config.source {
                Source::Ticker => Channel::Ticker,
                Source::Candle => Channel::Candle1m,
            };
            feeds::subscribe(instrument.id, channel).map_err(|d| d.message)?;
            let size = if config.size > 0.0 { config.size } else { instrument.min_size * 10.0 };
            info!(
                "sma-cross on {} fast {} slow {} size {} from {:?}",
                config.symbol, config.fast, config.slow, size, config.source
            );
            Ok(SmaCross {
                instrument: instrument.id,
                size,
                core: Core::new(instrument.id, config.fast, config.slow),
                working: None,
            })
        }

        // Small and inlined into the SDK's ticker loop; the rare order path is out of line.
        #[inline(always)]
        fn on_ticker(&mut self, ticker: &Ticker) {
            if let Some(cross) = self.core.on_ticker(ticker.instrument, ticker.bid, ticker.ask) {
                self.on_cross(cross);
            }
        }

        fn on_candle(&mut self, candle: &Candle) {
            if let Some(cross) = self.core.on_candle(candle.instrument, candle.close, candle.confirmed) {
                self.on_cross(cross);
            }
        }

        fn on_order(&mut self, order: &OrderUpdate) {
            let done = matches!(order.state, OrderState::Filled | OrderState::Canceled | OrderState::Rejected);
            if done && self.working.as_deref() == Some(order.client_order_id.as_str()) {
                self.working = None;
            }
        }

        fn on_risk_denied(&mut self, denial: &RiskDenial) {
            if denial.client_order_id.is_some() && denial.client_order_id == self.working {
                self.working = None;
            }
        }

        fn snapshot(&self) -> Vec<u8> {
            serde_json::to_vec(&Saved { prices: self.core.recent().collect() }).unwrap_or_default()
        }

        fn restore(&mut self, state: &[u8]) -> Result<(), String> {
            let saved: Saved = serde_json::from_slice(state).map_err(|e| format!("restore: {e}"))?;
            self.core.replay(&saved.prices);
            Ok(())
        }
    }

    export_strategy!(SmaCross);
    tradebox_sdk::embed_manifest!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_reports_each_crossing_once() {
        let mut s = Signal::new(2, 4);
        let falling = [10.0, 9.0, 8.0, 7.0, 6.0];
        assert!(falling.iter().all(|p| s.update(*p).is_none()));
        let crosses: Vec<_> = [8.0, 10.0, 12.0, 14.0].iter().filter_map(|p| s.update(*p)).collect();
        assert_eq!(crosses, vec![Cross::Up]);
        let crosses: Vec<_> = [6.0, 4.0, 2.0].iter().filter_map(|p| s.update(*p)).collect();
        assert_eq!(crosses, vec![Cross::Down]);
    }

    #[test]
    fn an_exact_tie_is_no_signal_and_the_sign_before_it_counts() {
        let mut s = Signal::new(1, 2);
        // fast - slow: 10 vs 10 (tie), then 12 vs 11 (up: the first sign, no cross), 11 vs 11.5
        // (down), 11 vs 11 (tie), 12 vs 11.5 (up again: a cross from the last non-zero sign).
        let got: Vec<_> = [10.0, 10.0, 12.0, 11.0, 11.0, 12.0].iter().map(|p| s.update(*p)).collect();
        assert_eq!(got, vec![None, None, None, Some(Cross::Down), None, Some(Cross::Up)]);
    }

    #[test]
    fn sums_never_overflow_and_near_ties_are_exact() {
        // The largest prices a window of 5,000 can count, then ones too large (passed over).
        let mut s = Signal::new(2, 5_000);
        let top = (i64::MAX / 5_000) as f64 / UNITS;
        let mut crossed = 0;
        for i in 0..20_000 {
            let step = (i % 6_000) as f64 * 1e-8;
            let price = if (i / 6_000) % 2 == 0 { top - 0.1 + step } else { top - step };
            crossed += usize::from(s.update(price).is_some());
            assert_eq!(s.update(top * 2.0), None);
        }
        assert!(crossed > 0);
        // Means that differ by one unit of 10^-8 over a window: decided exactly.
        let mut s = Signal::new(1, 2);
        assert_eq!(s.update(60_000.00000001), None);
        assert_eq!(s.update(60_000.00000002), None);
        assert_eq!(s.update(60_000.00000001), Some(Cross::Down));
        assert_eq!(s.update(60_000.00000002), Some(Cross::Up));
    }

    #[test]
    fn candles_count_only_when_closed_and_for_the_instrument() {
        let mut c = Core::new(7, 1, 2);
        assert_eq!(c.on_candle(7, 10.0, false), None);
        assert_eq!(c.on_candle(8, 10.0, true), None);
        assert_eq!(c.recent().count(), 0);
        c.on_candle(7, 10.0, true);
        assert_eq!(c.recent().count(), 1);
    }

    #[test]
    fn core_ignores_other_instruments_and_empty_sides_and_replays_its_window() {
        let mut c = Core::new(7, 2, 4);
        assert_eq!(c.on_ticker(8, 1.0, 2.0), None);
        assert_eq!(c.on_ticker(7, 0.0, 2.0), None);
        assert_eq!(c.recent().count(), 0);
        for p in [10.0, 9.0, 8.0, 7.0, 6.0, 5.0] {
            c.on_ticker(7, p, p);
        }
        assert_eq!(c.recent().collect::<Vec<_>>(), vec![8.0, 7.0, 6.0, 5.0]);
        let mut d = Core::new(7, 2, 4);
        d.replay(&c.recent().collect::<Vec<_>>());
        let up: Vec<_> = [8.0, 10.0, 12.0, 14.0].iter().filter_map(|p| d.on_ticker(7, *p, *p)).collect();
        assert_eq!(up, vec![Cross::Up]);
    }
}
