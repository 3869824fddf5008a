//! OKX's request limits as a rate limiter, so a client waits instead of collecting 50011s
//! (okx-v5.md §7). They are facts of the protocol, so they live with it: the host's OKX venue
//! takes its permits here before sending, and the simulator (`tradebox-sim`) enforces the same
//! windows on what it serves, so the two cannot disagree about a limit.
//!
//! Every limit is "N per window" (2 s for almost everything) and is enforced as a *sliding*
//! window: a bucket remembers the send times of its last N permits in a ring, and a new permit
//! is granted only when the oldest of those is a full window old. No window of that length can
//! ever hold more than N permits, whatever the exchange's own window alignment is.
//!
//! A request takes permits from up to three buckets at once, all or nothing:
//! - its endpoint's bucket, keyed per instrument for trading endpoints (place, cancel and amend
//!   each have their own; the batch forms count orders and have their own buckets too);
//! - the sub-account cap on new + amended orders (1,000 per 2 s, derivatives only; spot is
//!   exempt);
//! - the requesting plugin's share of each of those, so one plugin cannot use up the account's
//!   budget and starve the others.
//!
//! A permit counts from the moment it is granted until the request's answer arrives: when the
//! caller reports the request done ([`Limiter::complete`]), the permit's time moves to that
//! moment. OKX counts a request when it arrives, which is somewhere between the two, so a slot
//! is reused only after OKX's own window for that request has closed, however long the request
//! queued in connection pools or on a busy machine on its way (as long as it is answered
//! within one window; requests time out well before OKX's 2 s windows could be overrun by more
//! than the headroom).
//!
//! Cancels have their own buckets and never count against the new-order cap, so a flood of new
//! orders can never starve a cancel. After the exchange answers 50011 / HTTP 429 / 50013 anyway
//! (another client on the same account, a limit we do not know), [`Limiter::penalize`] closes
//! the bucket for a jittered, growing back-off.

use parking_lot::Mutex;
use rand::Rng;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
// tokio's clock (the OS monotonic clock unless a test pauses it), so waits and windows agree.
use tokio::time::Instant;

/// What a request does, as far as OKX's limits are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /trade/order` (and a one-order batch).
    Place,
    /// `POST /trade/batch-orders`, counted per order.
    BatchPlace,
    /// `POST /trade/cancel-order`.
    Cancel,
    /// `POST /trade/cancel-batch-orders`, counted per order.
    BatchCancel,
    /// `POST /trade/amend-order`.
    Amend,
    /// `POST /trade/amend-batch-orders`, counted per order.
    BatchAmend,
    /// `GET /trade/order`.
    OrderDetails,
    /// `GET /trade/orders-pending`.
    PendingOrders,
    /// `GET /trade/orders-history`.
    OrdersHistory,
    /// `GET /trade/fills`.
    Fills,
    /// `GET /account/balance`.
    Balance,
    /// `GET /account/positions`.
    Positions,
    /// `GET /account/config`.
    AccountConfig,
    /// `POST /trade/cancel-all-after`.
    CancelAllAfter,
    /// `POST /trade/mass-cancel`.
    MassCancel,
    /// `GET /public/time` (per IP).
    PublicTime,
    /// `GET /public/instruments` (per IP and instrument type).
    Instruments,
    /// `GET /market/ticker` (per IP).
    Ticker,
    /// `GET /market/books` (per IP).
    Books,
    /// `GET /market/tickers` (per IP).
    Tickers,
    /// `GET /market/candles` (per IP).
    Candles,
    /// `GET /market/history-candles` (per IP).
    HistoryCandles,
    /// `GET /market/trades` (per IP).
    Trades,
    /// `GET /trade/orders-history-archive`.
    OrdersHistoryArchive,
    /// `GET /trade/fills-history`.
    FillsHistory,
    /// `GET /account/trade-fee`.
    TradeFee,
    /// `GET /account/bills` (per second, not per 2 s).
    Bills,
    /// `GET /asset/currencies` (per second).
    AssetCurrencies,
    /// `GET /asset/balances` (per second).
    AssetBalances,
    /// `GET /trade/account-rate-limit` (per second).
    AccountRateLimit,
}

impl Endpoint {
    /// OKX's limit: permits per window, the window, and whether it is keyed per instrument.
    pub fn limit(self) -> Limit {
        use Endpoint::*;
        let two = Duration::from_secs(2);
        let one = Duration::from_secs(1);
        let (permits, window, per_instrument) = match self {
            Place | Cancel | Amend | OrderDetails => (60, two, true),
            BatchPlace | BatchCancel | BatchAmend => (300, two, true),
            PendingOrders | Fills => (60, two, false),
            OrdersHistory | Books | Candles => (40, two, false),
            Balance | Positions | PublicTime | FillsHistory => (10, two, false),
            AccountConfig | MassCancel | TradeFee => (5, two, false),
            Instruments => (20, two, true),
            Ticker | Tickers | HistoryCandles | OrdersHistoryArchive => (20, two, false),
            Trades => (100, two, false),
            Bills => (5, one, false),
            AssetCurrencies | AssetBalances => (6, one, false),
            CancelAllAfter => (1, one, true),
            AccountRateLimit => (1, one, false),
        };
        Limit { permits, window, per_instrument }
    }

    /// Whether the orders it carries count against the sub-account cap on new and amended
    /// orders (for instruments that are not exempt from it).
    pub fn counts_toward_order_cap(self) -> bool {
        matches!(self, Endpoint::Place | Endpoint::BatchPlace | Endpoint::Amend | Endpoint::BatchAmend)
    }
}

/// The bucket key of a `cancel-all-after` tag (OKX limits that endpoint per tag): a stable
/// FNV-1a hash, so the host and the simulator agree without sharing state.
pub fn tag_key(tag: &str) -> u32 {
    tag.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// A limit as OKX states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Permits per window.
    pub permits: u32,
    /// The window.
    pub window: Duration,
    /// Keyed per instrument (trading endpoints) rather than per account or IP.
    pub per_instrument: bool,
}

/// OKX's sub-account cap: new + amended orders across all instruments, per 2 s (the lowest
/// fill-ratio tier; spot and margin are exempt).
pub const ORDER_CAP: Limit = Limit { permits: 1_000, window: Duration::from_secs(2), per_instrument: false };

/// Tuning; the defaults keep a margin below OKX's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterConfig {
    /// Fraction of each OKX limit the host lets itself use (0 < headroom <= 1). Our window is
    /// measured at send time and the exchange's at receipt, so network jitter can bunch
    /// requests together; the margin absorbs that.
    pub headroom: f64,
    /// Fraction of each (headroomed) limit one plugin may use (0 < share <= 1).
    pub plugin_share: f64,
    /// The longest a request waits for permits before it is refused.
    pub max_wait: Duration,
    /// First back-off after the exchange says 50011 / 429 / 50013; doubles per repeat.
    pub backoff: Duration,
    /// Ceiling of the back-off.
    pub backoff_max: Duration,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            headroom: 0.9,
            plugin_share: 0.5,
            max_wait: Duration::from_secs(2),
            backoff: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// One request's claim on the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// What it calls.
    pub endpoint: Endpoint,
    /// The instrument (a host handle, or for `Instruments` the instrument type) when the
    /// endpoint is keyed per instrument.
    pub instrument: u32,
    /// Orders carried (1 for a single request; the batch size for batch endpoints).
    pub count: u32,
    /// Whether the instrument is exempt from the sub-account order cap (spot, margin).
    pub cap_exempt: bool,
    /// The plugin it is for; `None` for the host's own requests, which only the account-wide
    /// buckets bound.
    pub plugin: Option<u32>,
}

impl Request {
    /// A single request for `endpoint` on `instrument`.
    pub fn new(endpoint: Endpoint, instrument: u32) -> Self {
        Self { endpoint, instrument, count: 1, cap_exempt: false, plugin: None }
    }

    /// For `plugin`.
    pub fn for_plugin(mut self, plugin: u32) -> Self {
        self.plugin = Some(plugin);
        self
    }

    /// Carrying `count` orders.
    pub fn orders(mut self, count: u32) -> Self {
        self.count = count.max(1);
        self
    }

    /// On an instrument exempt from the sub-account cap.
    pub fn cap_exempt(mut self, exempt: bool) -> Self {
        self.cap_exempt = exempt;
        self
    }
}

/// Why a request got no permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RateLimited {
    /// The permits would come later than the caller may wait.
    #[error("rate limit: next permit in {}ms, longer than the {}ms a request may wait", .retry_after.as_millis(), .max_wait.as_millis())]
    TooLong {
        /// When permits would be available.
        retry_after: Duration,
        /// The configured bound.
        max_wait: Duration,
    },
    /// The request carries more orders than the bucket ever allows at once.
    #[error("rate limit: {count} orders in one request exceed the limit of {permits} per window")]
    TooLarge {
        /// Orders in the request.
        count: u32,
        /// The smallest bucket's capacity.
        permits: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    Endpoint(Endpoint, u32),
    OrderCap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    scope: Scope,
    plugin: Option<u32>,
}

/// Up to four buckets of one request.
#[derive(Default)]
struct Keys {
    items: [Option<(Key, u32, Duration)>; 4],
    len: usize,
}

impl Keys {
    fn push(&mut self, k: (Key, u32, Duration)) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(k);
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(Key, u32, Duration)> {
        self.items[..self.len].iter().flatten()
    }
}

/// The sliding window: send times (ns since the limiter's epoch) of the last `capacity`
/// permits, oldest at `head`.
#[derive(Debug)]
struct Window {
    window_ns: u64,
    ring: Vec<u64>,
    head: usize,
    blocked_until: u64,
    strikes: u32,
}

impl Window {
    fn new(capacity: u32, window: Duration) -> Self {
        // Slots start "a full window ago" so a new bucket is full of permits.
        Self { window_ns: nanos(window), ring: vec![0; capacity as usize], head: 0, blocked_until: 0, strikes: 0 }
    }

    /// Permits in use at `now`: slots taken less than a window ago.
    fn used(&self, now: u64) -> u32 {
        let used = self.ring.iter().filter(|&&t| t != 0 && t + self.window_ns > now).count();
        u32::try_from(used).unwrap_or(u32::MAX)
    }

    /// When `count` permits are available (ns), or `None` when they never fit.
    fn ready_at(&self, count: u32) -> Option<u64> {
        let cap = self.ring.len();
        let count = count as usize;
        if count == 0 || count > cap {
            return (count == 0).then_some(0);
        }
        // The next `count` slots in grant order must each be a full window past their time.
        // (Completion times can make later slots older than earlier ones, so look at each.)
        let free_at = (0..count)
            .map(|k| self.ring[(self.head + k) % cap])
            .map(|t| if t == 0 { 0 } else { t + self.window_ns })
            .max()
            .unwrap_or(0);
        Some(free_at.max(self.blocked_until))
    }

    fn take(&mut self, count: u32, now: u64) {
        let cap = self.ring.len();
        for _ in 0..count {
            // `now` is never 0 (see `Limiter::now`), so 0 keeps meaning "never used".
            self.ring[self.head] = now;
            self.head = (self.head + 1) % cap;
        }
    }

    /// Moves `count` permits granted at `granted` to `done` (they were taken most recently
    /// before `head`, unless newer grants came since; search backwards).
    fn complete(&mut self, count: u32, granted: u64, done: u64) {
        let cap = self.ring.len();
        let mut left = count;
        for back in 1..=cap {
            if left == 0 {
                return;
            }
            let i = (self.head + cap - back) % cap;
            if self.ring[i] == granted {
                self.ring[i] = done.max(granted);
                left -= 1;
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How full one bucket is now: the console's rate-limit headroom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUse {
    /// The endpoint it limits, or `None` for the sub-account's cap on new and amended orders.
    pub endpoint: Option<Endpoint>,
    /// The key of a per-instrument endpoint (0 otherwise): the instrument's id for orders, an
    /// instrument type or a `cancel-all-after` tag's hash for the endpoints keyed by those.
    pub key: u32,
    /// The plugin key of a plugin's share (`None`: the account's bucket).
    pub plugin: Option<u32>,
    /// Permits taken within the last window.
    pub used: u32,
    /// Permits the bucket allows per window (OKX's limit times the headroom kept).
    pub capacity: u32,
    /// The window, ms.
    pub window_ms: u64,
    /// Closed after the exchange said "too many requests", for this many ms more.
    pub blocked_ms: u64,
}

/// Permits granted to one request: hand it back to [`Limiter::complete`] when the answer
/// arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "report the request done with Limiter::complete"]
pub struct Permit {
    request: Request,
    granted: u64,
    /// How long the request waited for it.
    pub waited: Duration,
}

/// Counters for metrics: how often and how long requests waited, and how many were refused.
#[derive(Debug, Default)]
pub struct LimiterStats {
    /// Requests granted at once.
    pub immediate: AtomicU64,
    /// Requests that had to wait.
    pub waited: AtomicU64,
    /// Total time waited, in microseconds.
    pub wait_us: AtomicU64,
    /// Requests refused (wait too long, request too large).
    pub refused: AtomicU64,
    /// Back-offs after the exchange said "too many".
    pub penalties: AtomicU64,
}

/// The limiter. Cheap to share (`Arc`); one per OKX account (sub-account).
#[derive(Debug)]
pub struct Limiter {
    config: LimiterConfig,
    epoch: Instant,
    windows: Mutex<FxHashMap<Key, Window>>,
    /// Metrics.
    pub stats: LimiterStats,
}

impl Limiter {
    /// A limiter with `config`.
    pub fn new(config: LimiterConfig) -> Self {
        Self {
            config,
            epoch: Instant::now(),
            windows: Mutex::new(FxHashMap::default()),
            stats: LimiterStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LimiterConfig {
        &self.config
    }

    /// Nanoseconds since the limiter was made; never 0.
    pub fn now(&self) -> u64 {
        nanos(self.epoch.elapsed()).max(1)
    }

    fn capacity(&self, limit: Limit, plugin: bool) -> u32 {
        let mut permits = (f64::from(limit.permits) * self.config.headroom.clamp(0.0, 1.0)).floor();
        if plugin {
            permits = (permits * self.config.plugin_share.clamp(0.0, 1.0)).floor();
        }
        (permits as u32).max(1)
    }

    /// The buckets a request draws on, with their capacities and windows: at most four (its
    /// endpoint and the sub-account cap, each for the account and for the plugin). A fixed
    /// array, so taking a permit allocates nothing.
    fn keys(&self, r: &Request) -> Keys {
        let limit = r.endpoint.limit();
        let instrument = if limit.per_instrument { r.instrument } else { 0 };
        let mut keys = Keys::default();
        let mut add = |scope: Scope, limit: Limit| {
            keys.push((Key { scope, plugin: None }, self.capacity(limit, false), limit.window));
            if let Some(p) = r.plugin {
                keys.push((Key { scope, plugin: Some(p) }, self.capacity(limit, true), limit.window));
            }
        };
        add(Scope::Endpoint(r.endpoint, instrument), limit);
        if r.endpoint.counts_toward_order_cap() && !r.cap_exempt {
            add(Scope::OrderCap, ORDER_CAP);
        }
        keys
    }

    /// The `n` fullest buckets now (by share of capacity used, then by use), fullest first:
    /// how much headroom is left where it is smallest. Buckets unused for a whole window are
    /// left out.
    pub fn fullest(&self, n: usize) -> Vec<BucketUse> {
        let now = self.now();
        let windows = self.windows.lock();
        let mut buckets: Vec<BucketUse> = windows
            .iter()
            .map(|(key, w)| {
                let (endpoint, k) = match key.scope {
                    Scope::Endpoint(e, i) => (Some(e), i),
                    Scope::OrderCap => (None, 0),
                };
                BucketUse {
                    endpoint,
                    key: k,
                    plugin: key.plugin,
                    used: w.used(now),
                    capacity: u32::try_from(w.ring.len()).unwrap_or(u32::MAX),
                    window_ms: w.window_ns / 1_000_000,
                    blocked_ms: w.blocked_until.saturating_sub(now) / 1_000_000,
                }
            })
            .filter(|b| b.used > 0 || b.blocked_ms > 0)
            .collect();
        drop(windows);
        let share = |b: &BucketUse| f64::from(b.used) / f64::from(b.capacity.max(1));
        buckets.sort_by(|a, b| {
            (b.blocked_ms > 0).cmp(&(a.blocked_ms > 0)).then(share(b).total_cmp(&share(a))).then(b.used.cmp(&a.used))
        });
        buckets.truncate(n);
        buckets
    }

    /// Takes the request's permits at `now` (from [`Limiter::now`]) if all are available;
    /// otherwise returns when they will be (ns), taking nothing.
    pub fn try_acquire_at(&self, r: &Request, now: u64) -> Result<Permit, Result<u64, RateLimited>> {
        let keys = self.keys(r);
        let mut windows = self.windows.lock();
        let mut ready = 0u64;
        for (key, capacity, window) in keys.iter() {
            let w = windows.entry(*key).or_insert_with(|| Window::new(*capacity, *window));
            match w.ready_at(r.count) {
                Some(at) => ready = ready.max(at),
                None => return Err(Err(RateLimited::TooLarge { count: r.count, permits: *capacity })),
            }
        }
        if ready > now {
            return Err(Ok(ready));
        }
        for (key, _, _) in keys.iter() {
            if let Some(w) = windows.get_mut(key) {
                w.take(r.count, now);
            }
        }
        Ok(Permit { request: *r, granted: now, waited: Duration::ZERO })
    }

    /// The request holding `permit` has its answer (or failed): its permits count from now.
    pub fn complete(&self, permit: Permit) {
        self.complete_at(permit, self.now());
    }

    /// [`Limiter::complete`] at a given time (ns from [`Limiter::now`]).
    pub fn complete_at(&self, permit: Permit, now: u64) {
        let mut windows = self.windows.lock();
        for (key, _, _) in self.keys(&permit.request).iter() {
            if let Some(w) = windows.get_mut(key) {
                w.complete(permit.request.count, permit.granted, now);
            }
        }
    }

    /// Takes the request's permits now if available; otherwise says how long until they are.
    pub fn try_acquire(&self, r: &Request) -> Result<Permit, Result<Duration, RateLimited>> {
        let now = self.now();
        self.try_acquire_at(r, now).map_err(|e| e.map(|at| Duration::from_nanos(at.saturating_sub(now))))
    }

    /// Waits (at most `max_wait`) for the request's permits.
    pub async fn acquire(&self, r: &Request) -> Result<Permit, RateLimited> {
        let start = Instant::now();
        let mut slept = false;
        loop {
            match self.try_acquire(r) {
                Ok(mut permit) => {
                    let waited = if slept { start.elapsed() } else { Duration::ZERO };
                    if !slept {
                        self.stats.immediate.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.stats.waited.fetch_add(1, Ordering::Relaxed);
                        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
                        self.stats.wait_us.fetch_add(us, Ordering::Relaxed);
                    }
                    permit.waited = waited;
                    return Ok(permit);
                }
                Err(Ok(wait)) => {
                    let total = start.elapsed() + wait;
                    if total > self.config.max_wait {
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
                        return Err(RateLimited::TooLong { retry_after: wait, max_wait: self.config.max_wait });
                    }
                    // Another request may take the permits first; then we wait again.
                    tokio::time::sleep(wait).await;
                    slept = true;
                }
                Err(Err(e)) => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }

    /// The exchange said "too many" for this request: close its endpoint bucket for a
    /// jittered back-off that doubles on every repeat until [`Limiter::succeeded`].
    pub fn penalize(&self, r: &Request) {
        self.stats.penalties.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        let Some(&(key, capacity, window)) = self.keys(r).iter().next() else { return };
        let mut windows = self.windows.lock();
        let w = windows.entry(key).or_insert_with(|| Window::new(capacity, window));
        let base = nanos(self.config.backoff).saturating_mul(1 << w.strikes.min(16));
        let base = base.min(nanos(self.config.backoff_max));
        // Full jitter in [base/2, base]: clients that were throttled together do not retry
        // together.
        let jittered = rand::rng().random_range(base / 2..=base.max(1));
        w.blocked_until = w.blocked_until.max(now + jittered);
        w.strikes = w.strikes.saturating_add(1);
    }

    /// The exchange accepted a request for this endpoint: the back-off starts over.
    pub fn succeeded(&self, r: &Request) {
        let Some(&(key, _, _)) = self.keys(r).iter().next() else { return };
        if let Some(w) = self.windows.lock().get_mut(&key) {
            w.strikes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const MS: u64 = 1_000_000;

    fn exact() -> Limiter {
        Limiter::new(LimiterConfig { headroom: 1.0, plugin_share: 1.0, ..LimiterConfig::default() })
    }

    #[test]
    fn sixty_places_per_two_seconds_per_instrument_then_wait() {
        let l = exact();
        let place = Request::new(Endpoint::Place, 7);
        let t0 = 10 * MS;
        for i in 0..60 {
            assert!(l.try_acquire_at(&place, t0 + i).is_ok(), "permit {i}");
        }
        // The 61st must wait until the first is 2 s old.
        assert_eq!(l.try_acquire_at(&place, t0 + 100), Err(Ok(t0 + 2_000 * MS)));
        // Another instrument and another endpoint are separate buckets.
        assert!(l.try_acquire_at(&Request::new(Endpoint::Place, 8), t0 + 100).is_ok());
        assert!(l.try_acquire_at(&Request::new(Endpoint::Cancel, 7), t0 + 100).is_ok());
        assert!(l.try_acquire_at(&place, t0 + 2_000 * MS).is_ok());
    }

    #[test]
    fn a_permit_counts_until_its_answer_arrives() {
        let l = exact();
        let place = Request::new(Endpoint::Place, 1);
        let t0 = 10 * MS;
        let permits: Vec<Permit> = (0..60).map(|_| l.try_acquire_at(&place, t0).expect("granted")).collect();
        // The answers come 0.5 s later: OKX may have counted them as late as that.
        for p in permits {
            l.complete_at(p, t0 + 500 * MS);
        }
        assert_eq!(l.try_acquire_at(&place, t0 + 2_000 * MS), Err(Ok(t0 + 2_500 * MS)));
        assert!(l.try_acquire_at(&place, t0 + 2_500 * MS).is_ok());
    }

    #[test]
    fn the_fullest_buckets_come_first_with_their_use() {
        let l = Limiter::new(LimiterConfig { headroom: 1.0, plugin_share: 0.5, ..LimiterConfig::default() });
        let now = l.now();
        for _ in 0..30 {
            let _ = l.try_acquire_at(&Request::new(Endpoint::Place, 7).for_plugin(2), now).expect("granted");
        }
        let _ = l.try_acquire_at(&Request::new(Endpoint::Cancel, 7), now).expect("granted");
        let full = l.fullest(10);
        // The plugin's share of Place (30 of 30 at plugin_share 0.5) is fuller than the account's
        // Place (30 of 60), the order cap (30 of 1,000) and Cancel (1 of 60).
        let first = &full[0];
        assert_eq!((first.endpoint, first.key, first.plugin, first.used), (Some(Endpoint::Place), 7, Some(2), 30));
        assert_eq!(first.capacity, 30);
        assert!(full.iter().any(|b| b.endpoint.is_none() && b.used == 30), "the order cap: {full:?}");
        assert_eq!(full.last().map(|b| (b.endpoint, b.used)), Some((Some(Endpoint::Cancel), 1)));
        assert!(l.fullest(1).len() == 1);
    }

    #[test]
    fn cancels_are_never_starved_by_new_orders() {
        let l = exact();
        let t = 5 * MS;
        // Exhaust the sub-account cap with batches on many instruments.
        let mut i = 0;
        while l.try_acquire_at(&Request::new(Endpoint::BatchPlace, i).orders(20), t).is_ok() {
            i += 1;
        }
        assert_eq!(i, 50, "1,000 orders in batches of 20");
        assert!(l.try_acquire_at(&Request::new(Endpoint::Place, 999), t).is_err());
        assert!(l.try_acquire_at(&Request::new(Endpoint::Cancel, 3), t).is_ok());
        assert!(l.try_acquire_at(&Request::new(Endpoint::BatchCancel, 3).orders(20), t).is_ok());
        // Spot is exempt from the sub-account cap.
        assert!(l.try_acquire_at(&Request::new(Endpoint::Place, 999).cap_exempt(true), t).is_ok());
    }

    #[test]
    fn one_plugin_cannot_use_up_the_account() {
        let l = Limiter::new(LimiterConfig { headroom: 1.0, plugin_share: 0.5, ..LimiterConfig::default() });
        let t = 3 * MS;
        let a = Request::new(Endpoint::Place, 1).for_plugin(1);
        let granted = (0..60).filter(|_| l.try_acquire_at(&a, t).is_ok()).count();
        assert_eq!(granted, 30);
        let b = Request::new(Endpoint::Place, 1).for_plugin(2);
        let granted = (0..60).filter(|_| l.try_acquire_at(&b, t).is_ok()).count();
        assert_eq!(granted, 30);
        // The account bucket is now full too.
        assert!(l.try_acquire_at(&Request::new(Endpoint::Place, 1).for_plugin(3), t).is_err());
    }

    #[test]
    fn a_batch_larger_than_any_window_is_refused_not_queued() {
        let l = exact();
        let too_big = Request::new(Endpoint::BatchPlace, 1).orders(301);
        assert!(matches!(l.try_acquire_at(&too_big, MS), Err(Err(RateLimited::TooLarge { count: 301, .. }))));
    }

    #[test]
    fn all_or_nothing_across_buckets() {
        let l = Limiter::new(LimiterConfig { headroom: 1.0, plugin_share: 0.5, ..LimiterConfig::default() });
        let t = MS;
        let a = Request::new(Endpoint::Place, 1).for_plugin(1);
        for _ in 0..30 {
            assert!(l.try_acquire_at(&a, t).is_ok());
        }
        // Refused by the plugin's share: the account bucket must not have been charged.
        assert!(l.try_acquire_at(&a, t).is_err());
        let b = Request::new(Endpoint::Place, 1).for_plugin(2);
        assert_eq!((0..30).filter(|_| l.try_acquire_at(&b, t).is_ok()).count(), 30);
    }

    #[test]
    fn penalty_closes_the_bucket_with_growing_jittered_backoff() {
        let l = Limiter::new(LimiterConfig {
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1_000),
            ..LimiterConfig::default()
        });
        let r = Request::new(Endpoint::Balance, 0);
        l.penalize(&r);
        let Err(Ok(wait)) = l.try_acquire(&r) else { panic!("blocked after a 429") };
        assert!(wait <= Duration::from_millis(100) && wait >= Duration::from_millis(40), "{wait:?}");
        l.penalize(&r);
        l.penalize(&r);
        let Err(Ok(wait)) = l.try_acquire(&r) else { panic!("still blocked") };
        assert!(wait >= Duration::from_millis(190), "third strike backs off longer: {wait:?}");
        l.succeeded(&r);
        assert_eq!(l.stats.penalties.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_within_bound_and_refuses_beyond_it() {
        let l = Limiter::new(LimiterConfig {
            headroom: 1.0,
            plugin_share: 1.0,
            max_wait: Duration::from_millis(1_500),
            ..LimiterConfig::default()
        });
        let r = Request::new(Endpoint::AccountConfig, 0);
        for _ in 0..5 {
            assert_eq!(l.acquire(&r).await.map(|p| p.waited), Ok(Duration::ZERO));
        }
        // The sixth would need ~2 s: more than allowed.
        assert!(matches!(l.acquire(&r).await, Err(RateLimited::TooLong { .. })));
        assert_eq!(l.stats.refused.load(Ordering::Relaxed), 1);
    }

    #[derive(Debug, Clone)]
    struct Step {
        gap_us: u64,
        endpoint: Endpoint,
        instrument: u32,
        count: u32,
        plugin: Option<u32>,
        exempt: bool,
        /// Grant to answer.
        latency_us: u64,
        /// Where between grant and answer the exchange counts it, percent.
        arrival_pct: u64,
    }

    fn step() -> impl Strategy<Value = Step> {
        let endpoints = prop::sample::select(vec![
            Endpoint::Place,
            Endpoint::BatchPlace,
            Endpoint::Cancel,
            Endpoint::Amend,
            Endpoint::BatchAmend,
            Endpoint::Balance,
        ]);
        let latency = (0u64..400_000, 0u64..=100);
        (0u64..40_000, endpoints, 0u32..3, 1u32..25, prop::option::of(0u32..3), any::<bool>(), latency).prop_map(
            |(gap_us, endpoint, instrument, count, plugin, exempt, (latency_us, arrival_pct))| {
                let count = if matches!(endpoint, Endpoint::BatchPlace | Endpoint::BatchAmend) { count } else { 1 };
                Step { gap_us, endpoint, instrument, count, plugin, exempt, latency_us, arrival_pct }
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Under any flood, no sliding window of any bucket ever holds more requests than its
        /// limit *as the exchange counts them*: each request arrives somewhere between its
        /// grant and its answer (up to 0.4 s later), and whatever the arrival, no window of
        /// any bucket (per endpoint and instrument, the sub-account cap, each plugin's share)
        /// overflows.
        #[test]
        fn no_window_ever_exceeds_its_limit(steps in prop::collection::vec(step(), 1..1500)) {
            let config = LimiterConfig::default();
            let l = Limiter::new(config);
            let mut now = MS;
            let mut granted: HashMap<Key, Vec<(u64, u32)>> = HashMap::new();
            // Answers still to come: (time, permit).
            let mut answers: Vec<(u64, Permit)> = Vec::new();
            for s in &steps {
                now += s.gap_us * 1_000;
                answers.sort_by_key(|(t, _)| *t);
                while answers.first().is_some_and(|(t, _)| *t <= now) {
                    let (t, p) = answers.remove(0);
                    l.complete_at(p, t);
                }
                let r = Request {
                    endpoint: s.endpoint,
                    instrument: s.instrument,
                    count: s.count,
                    cap_exempt: s.exempt,
                    plugin: s.plugin,
                };
                if let Ok(permit) = l.try_acquire_at(&r, now) {
                    let answered = now + s.latency_us * 1_000;
                    let arrival = now + s.latency_us * 1_000 * s.arrival_pct / 100;
                    answers.push((answered, permit));
                    for (key, _, _) in l.keys(&r).iter() {
                        granted.entry(*key).or_default().push((arrival, s.count));
                    }
                }
            }
            for (key, mut sends) in granted {
                sends.sort_by_key(|(t, _)| *t);
                let (limit, share) = match key.scope {
                    Scope::Endpoint(e, _) => (e.limit(), key.plugin.is_some()),
                    Scope::OrderCap => (ORDER_CAP, key.plugin.is_some()),
                };
                let capacity = u64::from(l.capacity(limit, share));
                let window = nanos(limit.window);
                // Every window that starts at a send holds at most `capacity` permits.
                for (i, (start, _)) in sends.iter().enumerate() {
                    let in_window: u64 = sends[i..]
                        .iter()
                        .take_while(|(t, _)| *t < start + window)
                        .map(|(_, c)| u64::from(*c))
                        .sum();
                    prop_assert!(in_window <= capacity, "{key:?}: {in_window} > {capacity}");
                }
            }
        }
    }
}
