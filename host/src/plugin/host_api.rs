//! What a plugin can call: the import side of the WIT world. One `PluginState` lives in each
//! plugin's `Store`; every call is checked against the plugin's grants (in the hub's gateway)
//! and returns at once.

use super::bindings::tradebox::strategy::{feeds, host, orders, timers, types, views};
use super::bindings::{self as b};
use crate::engine::{Hub, OrderIntent, PluginSlot};
use crate::logging::{sanitize, truncate};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tradebox_core::Moment;
use tradebox_core::{Channel, InstrumentId};

/// Log lines a plugin may burst.
const LOG_BURST: f64 = 200.0;
/// Log lines per second a plugin may sustain.
const LOG_RATE: f64 = 50.0;
/// Shortest interval timer.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Shortest one-shot timer: a timer of 0 that sets itself again would keep the plugin's
/// thread busy between calls.
const MIN_TIMER: Duration = Duration::from_millis(1);
/// Most timers a plugin may hold.
const MAX_TIMERS: usize = 1024;

/// Counters that survive instance restarts and reloads, for status, metrics and tests.
#[derive(Debug)]
pub struct Counters {
    /// Log lines written.
    pub logs: AtomicU64,
    /// Log lines dropped by the rate limit.
    pub logs_suppressed: AtomicU64,
    /// Events delivered.
    pub events: AtomicU64,
    /// Calls into the plugin.
    pub calls: AtomicU64,
    /// Time it waited for its CPU share, ms.
    pub throttled_ms: AtomicU64,
    /// Its guest code runs in the background scheduling class (over its CPU share lately).
    pub background: std::sync::atomic::AtomicBool,
    /// How long each call into the plugin took, seconds (`/metrics`).
    pub call_seconds: prometheus_client::metrics::histogram::Histogram,
    /// CPU time its thread spent on its batches, µs (the console turns it into a share of a
    /// core, against `limits.cpu_share`).
    pub cpu_us: AtomicU64,
    /// Bytes its instance holds (linear memory and tables), as of its last batch.
    pub memory_bytes: AtomicU64,
    /// Its instance's memory cap, bytes (the language's default when the config says 0).
    pub memory_cap_bytes: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            logs: AtomicU64::new(0),
            logs_suppressed: AtomicU64::new(0),
            events: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            throttled_ms: AtomicU64::new(0),
            background: std::sync::atomic::AtomicBool::new(false),
            // 1 µs to ~4 s, ×4 per bucket: a batch of tickers is microseconds, a deadline is 100 ms.
            call_seconds: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(1e-6, 4.0, 12),
            ),
            cpu_us: AtomicU64::new(0),
            memory_bytes: AtomicU64::new(0),
            memory_cap_bytes: AtomicU64::new(0),
        }
    }
}

struct Timer {
    due: Moment,
    every: Option<Duration>,
}

/// The plugin's timers, fired by its actor between calls.
#[derive(Default)]
pub struct Timers {
    next_id: u64,
    timers: BTreeMap<u64, Timer>,
}

impl Timers {
    fn add(&mut self, now: Moment, after: Duration, every: Option<Duration>) -> u64 {
        if self.timers.len() >= MAX_TIMERS {
            return 0;
        }
        self.next_id += 1;
        self.timers.insert(self.next_id, Timer { due: now + after, every });
        self.next_id
    }

    /// The earliest due time, on the hub clock's steady timeline.
    pub fn next_due(&self) -> Option<Moment> {
        self.timers.values().map(|t| t.due).min()
    }

    /// Timers due at `now`, rescheduling intervals.
    pub fn take_due(&mut self, now: Moment) -> Vec<u64> {
        let due: Vec<u64> = self.timers.iter().filter(|(_, t)| t.due <= now).map(|(id, _)| *id).collect();
        for id in &due {
            let keep = match self.timers.get_mut(id) {
                Some(t) => match t.every {
                    Some(every) => {
                        t.due = now + every;
                        true
                    }
                    None => false,
                },
                None => false,
            };
            if !keep {
                self.timers.remove(id);
            }
        }
        due
    }
}

struct LogLimiter {
    tokens: f64,
    at: Instant,
    suppressed: u64,
}

/// The data of one plugin instance's `Store`.
pub struct PluginState {
    hub: Arc<Hub>,
    slot: Arc<PluginSlot>,
    /// The instance's memory cap (memories and tables as one budget).
    pub(crate) limiter: super::limits::Limiter,
    pub(crate) timers: Timers,
    log: LogLimiter,
    counters: Arc<Counters>,
    /// The last error-level line the plugin logged (its panic message, usually).
    pub(crate) last_error: Option<String>,
    /// What this instance subscribed to: after a reload the streams only the old instance
    /// wanted are released (or, when the reload fails, those only the new one wanted).
    pub(crate) subscriptions: HashSet<(InstrumentId, Channel)>,
    /// Where the running call started, for its CPU deadline.
    pub(crate) call: super::instance::CallClock,
    /// The CPU base of the next call (see `Instance::judge_cpu_from`).
    pub(crate) next_cpu_base: Option<std::time::Duration>,
    /// `Some(nice)` while the plugin's guest code runs in the background class (it went over
    /// its CPU share lately): the call hook moves the thread there on entering guest code and
    /// back to the normal class at `nice` on leaving it (see [`super::priority`]).
    pub(crate) background: Option<i32>,
    /// The locked-down WASI context (its stdout and stderr drained into the log after calls).
    wasi: super::wasi::Wasi,
}

impl wasmtime_wasi::WasiView for PluginState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        self.wasi.view()
    }
}

impl PluginState {
    /// State for a new instance.
    pub fn new(hub: Arc<Hub>, slot: Arc<PluginSlot>, counters: Arc<Counters>, mode: super::Mode) -> Self {
        let wasi = super::wasi::Wasi::new(&slot.name, hub.clock(), mode);
        Self {
            hub,
            slot,
            // Nothing fits until the instance arms its cap (`Instance::new`).
            limiter: super::limits::Limiter::new(&super::limits::Limits { memory_mib: 0, ..Default::default() }),
            timers: Timers::default(),
            log: LogLimiter { tokens: LOG_BURST, at: Instant::now(), suppressed: 0 },
            counters,
            last_error: None,
            subscriptions: HashSet::new(),
            call: super::instance::CallClock::default(),
            next_cpu_base: None,
            background: None,
            wasi,
        }
    }

    /// Writes what the guest printed since the last drain into its log: stdout at info,
    /// stderr at error (a Python traceback, a JavaScript exception: the last such line
    /// explains a trap as a Rust panic message does). `flush` takes a last unfinished line too.
    pub(crate) fn drain_output(&mut self, flush: bool) {
        for (pipe, level) in [(0, host::LogLevel::Info), (1, host::LogLevel::Error)] {
            let pipe = if pipe == 0 { &self.wasi.stdout } else { &self.wasi.stderr };
            let (lines, dropped) = pipe.drain(flush);
            for line in lines {
                self.write_log(level, line);
            }
            if dropped > 0 {
                self.write_log(
                    host::LogLevel::Warn,
                    format!("{dropped} bytes of output dropped (more than 64 KiB in one call)"),
                );
            }
        }
    }

    /// One line into the plugin's rate-limited, escaped log.
    fn write_log(&mut self, level: host::LogLevel, message: String) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.log.at).as_secs_f64();
        self.log.at = now;
        self.log.tokens = (self.log.tokens + elapsed * LOG_RATE).min(LOG_BURST);
        // Truncating is cheap and needed for every error line (the last one names a panic);
        // escaping is paid only by lines that are written (or read as a panic's message).
        let message = truncate(message);
        if level == host::LogLevel::Error {
            self.last_error = Some(message.clone());
        }
        if self.log.tokens < 1.0 {
            self.log.suppressed += 1;
            self.counters.logs_suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.log.tokens -= 1.0;
        self.counters.logs.fetch_add(1, Ordering::Relaxed);
        let message = sanitize(message);
        if self.log.suppressed > 0 {
            tracing::warn!(plugin = %self.slot.name, "{} log lines suppressed by the rate limit", self.log.suppressed);
            self.log.suppressed = 0;
        }
        let name = &self.slot.name;
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin = %name, "{message}"),
            host::LogLevel::Debug => tracing::debug!(plugin = %name, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin = %name, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin = %name, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin = %name, "{message}"),
        }
        if matches!(level, host::LogLevel::Info | host::LogLevel::Warn | host::LogLevel::Error) {
            self.hub.record(name, crate::engine::activity::Activity::Log(message));
        }
    }
}

impl types::Host for PluginState {}

impl orders::Host for PluginState {
    fn place(&mut self, r: orders::OrderRequest) -> Result<String, types::Denial> {
        let intent = OrderIntent {
            instrument: r.instrument,
            side: r.side.into(),
            kind: r.kind.into(),
            price: r.price,
            size: r.size,
            reduce_only: r.reduce_only,
        };
        self.hub.place(&self.slot, intent).map_err(Into::into)
    }

    fn cancel(&mut self, id: String) -> Result<(), types::Denial> {
        self.hub.cancel(&self.slot, &id).map_err(Into::into)
    }

    fn amend(&mut self, id: String, new_price: Option<f64>, new_size: Option<f64>) -> Result<(), types::Denial> {
        self.hub.amend(&self.slot, &id, new_price, new_size).map_err(Into::into)
    }

    fn cancel_all(&mut self, instrument: Option<u32>) -> Result<u32, types::Denial> {
        self.hub.cancel_all(&self.slot, instrument).map_err(Into::into)
    }
}

impl views::Host for PluginState {
    fn find_instrument(&mut self, symbol: String) -> Option<types::Instrument> {
        let spec = self.hub.instrument_by_symbol(&symbol)?;
        self.slot.permissions().allows_instrument(&spec.symbol).then(|| b::instrument(spec))
    }

    fn get_instrument(&mut self, id: u32) -> Option<types::Instrument> {
        let spec = self.hub.instrument(id)?;
        self.slot.permissions().allows_instrument(&spec.symbol).then(|| b::instrument(spec))
    }

    fn best_bid_ask(&mut self, id: u32) -> Option<views::Quote> {
        let spec = self.hub.instrument(id)?;
        if !self.slot.permissions().allows_instrument(&spec.symbol) {
            return None;
        }
        let q = self.hub.quote(id)?;
        Some(views::Quote { bid: q.bid, bid_size: q.bid_size, ask: q.ask, ask_size: q.ask_size })
    }

    fn positions(&mut self) -> Vec<types::Position> {
        self.hub
            .positions(self.slot.id)
            .into_iter()
            .map(|(i, p)| b::position(i, &p, self.hub.quote(i).and_then(|q| q.mid())))
            .collect()
    }

    fn balances(&mut self) -> Vec<types::Balance> {
        let visible = self.hub.balances().into_iter().filter(|x| self.hub.balance_visible(&self.slot, &x.currency));
        visible.map(|x| b::balance(&x)).collect()
    }

    fn open_orders(&mut self) -> Vec<types::OrderUpdate> {
        self.hub.open_orders(self.slot.id).iter().map(|r| b::order(r, r.venue_id.is_empty())).collect()
    }
}

impl feeds::Host for PluginState {
    fn subscribe(&mut self, instrument: u32, channel: types::Channel) -> Result<(), types::Denial> {
        let channel = channel.into();
        if let Err(denial) = self.hub.subscribe(&self.slot, instrument, channel) {
            self.slot.stats.count_denial(denial.code);
            return Err(denial.into());
        }
        self.subscriptions.insert((instrument, channel));
        Ok(())
    }

    fn unsubscribe(&mut self, instrument: u32, channel: types::Channel) {
        let channel = channel.into();
        self.subscriptions.remove(&(instrument, channel));
        self.hub.unsubscribe(&self.slot, instrument, channel);
    }
}

impl timers::Host for PluginState {
    fn set_timer(&mut self, after_ms: u64) -> u64 {
        self.timers.add(self.hub.clock().moment(), Duration::from_millis(after_ms).max(MIN_TIMER), None)
    }

    fn set_interval(&mut self, every_ms: u64) -> u64 {
        let every = Duration::from_millis(every_ms).max(MIN_INTERVAL);
        self.timers.add(self.hub.clock().moment(), every, Some(every))
    }

    fn cancel_timer(&mut self, id: u64) {
        self.timers.timers.remove(&id);
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        self.write_log(level, message);
    }

    /// The hub's clock: the exchange's corrected time live on OKX (as the WIT promises),
    /// virtual in a backtest.
    fn now(&mut self) -> i64 {
        self.hub.clock().now_ms()
    }
}
