//! The one clock everything reads: the system clock, the exchange-corrected clock (live on
//! OKX), or a virtual clock (backtests and replays, moved by the driver).
//!
//! Host code never calls `SystemTime::now()` for a timestamp it acts on: it asks the [`Clock`]
//! it was given. That is what lets a backtest run the same gateway, risk windows and plugins
//! in virtual time and give byte-identical results, and what lets `host.now` be the exchange's
//! time in live mode, as the WIT promises.

use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch on the machine's clock: the only reading of the system
/// clock in the project (a clock before 1970 reads 0, one beyond i64 saturates).
pub fn system_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The most a corrected clock holds still rather than step back (see [`Clock::corrected`]).
const HOLD_MS: i64 = 1_000;

/// Where a [`Clock`] reads its time. Cloning a clock shares its source.
#[derive(Clone)]
enum Source {
    /// The machine's clock.
    System,
    /// The machine's clock plus an offset to the exchange's, kept up to date by whoever
    /// measures it (`tradebox_okx::ClockSync`), and the latest reading: a new offset up to
    /// [`HOLD_MS`] smaller (a resync's jitter) holds time still until it catches up instead of
    /// turning it back; a larger step back is taken (holding for longer would freeze stamps).
    Corrected(Arc<AtomicI64>, Arc<AtomicI64>),
    /// Time that moves only when its [`VirtualTime`] handle moves it.
    Virtual(Arc<AtomicI64>),
}

/// A clock, cheap to clone and to read (one atomic load at most beside the system call).
#[derive(Clone)]
pub struct Clock {
    source: Source,
}

impl Clock {
    /// The machine's clock.
    pub fn system() -> Self {
        Self { source: Source::System }
    }

    /// The machine's clock corrected by `offset_ms` (exchange − local), read on every call so
    /// that a new measurement takes effect at once.
    pub fn corrected(offset_ms: Arc<AtomicI64>) -> Self {
        Self { source: Source::Corrected(offset_ms, Arc::new(AtomicI64::new(i64::MIN))) }
    }

    /// A virtual clock standing at `start_ms`, and the handle that moves it.
    pub fn virtual_at(start_ms: i64) -> (Self, VirtualTime) {
        let now = Arc::new(AtomicI64::new(start_ms));
        (Self { source: Source::Virtual(now.clone()) }, VirtualTime(now))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.source {
            Source::System => system_ms(),
            Source::Corrected(offset, latest) => {
                let now = system_ms().saturating_add(offset.load(Ordering::Acquire));
                let held = |last: i64| if now < last && last - now <= HOLD_MS { last } else { now };
                let last = latest.fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| Some(held(last)));
                held(last.unwrap_or_else(|l| l))
            }
            Source::Virtual(now) => now.load(Ordering::Acquire),
        }
    }

    /// A reading of the clock's steady timeline, for intervals (rate windows, budgets, timers,
    /// the age of a quote): the machine's monotonic clock live (a wall-clock step moves no
    /// window), virtual time in a backtest.
    pub fn moment(&self) -> Moment {
        match &self.source {
            Source::System | Source::Corrected(..) => Moment::steady(),
            Source::Virtual(now) => Moment(now.load(Ordering::Acquire).saturating_mul(1_000_000)),
        }
    }

    /// Whether time moves only when a driver moves it (a backtest): wall-clock deadlines and
    /// sleeps mean nothing then.
    pub fn is_virtual(&self) -> bool {
        matches!(self.source, Source::Virtual(_))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::System => f.write_str("Clock::System"),
            Source::Corrected(offset, _) => write!(f, "Clock::Corrected({:+} ms)", offset.load(Ordering::Relaxed)),
            Source::Virtual(now) => write!(f, "Clock::Virtual({} ms)", now.load(Ordering::Relaxed)),
        }
    }
}

/// A point on a clock's steady timeline, in nanoseconds from an origin that only its clock
/// knows (process start live, the Unix epoch in virtual time); compare and subtract moments of
/// one clock only. Signed, so "a minute before the first reading" is a moment too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Moment(i64);

impl Moment {
    fn steady() -> Self {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        Moment(i64::try_from(origin.elapsed().as_nanos()).unwrap_or(i64::MAX))
    }

    /// The time from `earlier` to this moment, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Moment) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// This moment moved back by `by`.
    pub fn saturating_sub(self, by: Duration) -> Moment {
        Moment(self.0.saturating_sub(i64::try_from(by.as_nanos()).unwrap_or(i64::MAX)))
    }
}

impl std::ops::Add<Duration> for Moment {
    type Output = Moment;
    fn add(self, by: Duration) -> Moment {
        Moment(self.0.saturating_add(i64::try_from(by.as_nanos()).unwrap_or(i64::MAX)))
    }
}

impl std::ops::AddAssign<Duration> for Moment {
    fn add_assign(&mut self, by: Duration) {
        *self = *self + by;
    }
}

/// The handle that moves a virtual clock. Time never goes backwards: a driver replaying events
/// out of order cannot make the host see it run back.
#[derive(Debug, Clone)]
pub struct VirtualTime(Arc<AtomicI64>);

impl VirtualTime {
    /// Moves the clock to `ms`, if that is later than where it stands. Returns the time now.
    pub fn advance_to(&self, ms: i64) -> i64 {
        self.0.fetch_max(ms, Ordering::AcqRel).max(ms)
    }

    /// Moves the clock on by `by_ms` (at most to the end of time). Returns the time now.
    pub fn advance_by(&self, by_ms: i64) -> i64 {
        let by = by_ms.max(0);
        let before = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(t.saturating_add(by)));
        before.unwrap_or_else(|t| t).saturating_add(by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_reads_the_machine_clock() {
        let before = system_ms();
        let now = Clock::system().now_ms();
        assert!(now >= before && now - before < 60_000, "{before} {now}");
    }

    #[test]
    fn corrected_follows_its_offset_as_it_changes() {
        let offset = Arc::new(AtomicI64::new(0));
        let clock = Clock::corrected(offset.clone());
        offset.store(3_600_000, Ordering::Release);
        let ahead = clock.now_ms() - system_ms();
        assert!((3_599_000..=3_601_000).contains(&ahead), "{ahead}");
        // A resync 300 ms back holds time still rather than turning it back...
        let before = clock.now_ms();
        offset.store(3_600_000 - 300, Ordering::Release);
        assert_eq!(clock.now_ms(), before, "held");
        // ... a step of an hour is taken as it is.
        offset.store(-3_600_000, Ordering::Release);
        let behind = clock.now_ms() - system_ms();
        assert!((-3_601_000..=-3_599_000).contains(&behind), "{behind}");
    }

    #[test]
    fn virtual_time_moves_only_forwards_and_only_when_moved() {
        let (clock, time) = Clock::virtual_at(1_000);
        assert!(clock.is_virtual() && !Clock::system().is_virtual());
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(time.advance_to(5_000), 5_000);
        assert_eq!(time.advance_to(2_000), 5_000, "never backwards");
        assert_eq!(time.advance_by(250), 5_250);
        assert_eq!(time.advance_by(-10), 5_250, "never backwards");
        let copy = clock.clone();
        assert_eq!(copy.now_ms(), 5_250, "clones share the source");
        assert_eq!(time.advance_by(i64::MAX), i64::MAX, "saturates, never wraps");
    }

    #[test]
    fn moments_measure_intervals_on_either_timeline() {
        let (clock, time) = Clock::virtual_at(1_000);
        let start = clock.moment();
        time.advance_by(1_500);
        assert_eq!(clock.moment().saturating_duration_since(start), Duration::from_millis(1_500));
        assert_eq!(start.saturating_duration_since(clock.moment()), Duration::ZERO);
        assert_eq!(start + Duration::from_millis(1_500), clock.moment());
        let live = Clock::system();
        let a = live.moment();
        let b = live.moment();
        assert!(b >= a, "steady");
        assert!(a.saturating_sub(Duration::from_secs(3_600)) < a, "an hour before the first reading exists");
    }
}
