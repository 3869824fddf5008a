//! The exchange clock: the offset between the local clock and OKX's, so every request carries a
//! timestamp OKX accepts (it refuses anything more than 30 s off with 50102).
//!
//! Each sample is one `GET /public/time`: `offset = server − (sent + received) / 2`, which
//! assumes the answer was stamped halfway through the round trip. The offset used is the median
//! of the last few samples, so one slow round trip cannot drag it.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// How many samples the median is taken over.
pub const SAMPLES: usize = 5;
/// Beyond this an answer of `/public/time` is not taken as the exchange's clock at all (30 days).
const MAX_OFFSET_MS: i64 = 30 * 86_400_000;

/// Beyond this offset the host warns that the machine's clock is wrong.
pub const WARN_OFFSET_MS: i64 = 5_000;

/// Keeps the offset to OKX's clock from `/public/time` samples; signs by it ([`ClockSync::now_ms`])
/// and hands the host a [`tradebox_core::Clock`] that reads it ([`ClockSync::clock`]). Reading it
/// is two atomic loads and a system-time call.
#[derive(Debug, Default)]
pub struct ClockSync {
    /// Shared with every [`tradebox_core::Clock`] handed out by [`ClockSync::clock`].
    offset_ms: Arc<AtomicI64>,
    samples: Mutex<VecDeque<Sample>>,
    warned: AtomicBool,
}

/// One synchronisation sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Server time minus the round trip's midpoint, ms.
    pub offset_ms: i64,
    /// Round trip, ms.
    pub rtt_ms: i64,
}

impl ClockSync {
    /// A clock with no correction yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one `/public/time` round trip: local ms before sending, the server's ms, local
    /// ms after receiving. Returns the new offset.
    pub fn record(&self, sent_ms: i64, server_ms: i64, received_ms: i64) -> i64 {
        // Saturating: the server's figure comes from outside the process.
        let rtt_ms = received_ms.saturating_sub(sent_ms).max(0);
        let sample = Sample { offset_ms: server_ms.saturating_sub(sent_ms.saturating_add(rtt_ms / 2)), rtt_ms };
        if sample.offset_ms.abs() > MAX_OFFSET_MS {
            // Not a clock to follow: a server answering in µs, a broken proxy, a hostile peer.
            // Every stamp, the audit log and the loss breaker's day read this offset.
            tracing::error!(
                offset_ms = sample.offset_ms,
                "ignored a server time {} days off the local clock; keeping the offset of {} ms",
                sample.offset_ms / 86_400_000,
                self.offset_ms()
            );
            return self.offset_ms();
        }
        let offset = {
            let mut samples = self.samples.lock();
            samples.push_back(sample);
            while samples.len() > SAMPLES {
                samples.pop_front();
            }
            let mut offsets: Vec<i64> = samples.iter().map(|s| s.offset_ms).collect();
            offsets.sort_unstable();
            offsets[offsets.len() / 2]
        };
        self.offset_ms.store(offset, Ordering::Release);
        let off = offset.abs() > WARN_OFFSET_MS;
        if off && !self.warned.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                offset_ms = offset,
                "the local clock is {} s off OKX's; requests are stamped with corrected time, but fix the machine's clock (NTP)",
                offset / 1000
            );
        } else if !off && self.warned.swap(false, Ordering::AcqRel) {
            tracing::info!(offset_ms = offset, "local clock back within 5 s of OKX's");
        }
        offset
    }

    /// Forgets the samples (after 50102: the old ones were wrong).
    pub fn reset(&self) {
        self.samples.lock().clear();
    }

    /// The current offset, ms (server − local).
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Acquire)
    }

    /// Samples taken so far (at most [`SAMPLES`]).
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().iter().copied().collect()
    }

    /// Whether the local clock is more than [`WARN_OFFSET_MS`] off.
    pub fn skewed(&self) -> bool {
        self.offset_ms().abs() > WARN_OFFSET_MS
    }

    /// Exchange time now, ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        tradebox_core::system_ms().saturating_add(self.offset_ms())
    }

    /// The host's clock reading exchange time: it follows every later measurement, so the
    /// gateway, the plugins' `host.now` and the audit log see what the signer sees.
    pub fn clock(&self) -> tradebox_core::Clock {
        tradebox_core::Clock::corrected(self.offset_ms.clone())
    }

    /// Exchange time now as an `OK-ACCESS-TIMESTAMP`.
    pub fn timestamp(&self) -> String {
        crate::sign::timestamp(self.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_corrected_to_its_midpoint() {
        let c = ClockSync::new();
        // Sent at 1000, answered 1100, server said 1550: server stamped at local 1050.
        assert_eq!(c.record(1_000, 1_550, 1_100), 500);
        assert_eq!(c.samples()[0], Sample { offset_ms: 500, rtt_ms: 100 });
    }

    #[test]
    fn the_median_ignores_one_outlier_and_only_recent_samples_count() {
        let c = ClockSync::new();
        for (i, offset) in [200, 210, 9_000, 190, 205].into_iter().enumerate() {
            let t = i as i64 * 1_000;
            c.record(t, t + 10 + offset, t + 20);
        }
        assert_eq!(c.offset_ms(), 205);
        assert!(!c.skewed());
        for i in 0..SAMPLES as i64 {
            c.record(i, i + 6_000, i);
        }
        assert_eq!(c.offset_ms(), 6_000);
        assert!(c.skewed());
        assert_eq!(c.samples().len(), SAMPLES);
    }

    #[test]
    fn a_server_time_far_off_is_not_followed() {
        let c = ClockSync::new();
        c.record(1_000, 1_500, 1_010);
        let before = c.offset_ms();
        // An answer in microseconds (year ~57,000 read as ms), and one in seconds (1970).
        assert_eq!(c.record(1_000, 1_764_000_000_000_000, 1_010), before);
        assert_eq!(c.record(1_764_000_000_000, 1_764_000_000, 1_764_000_000_010), before);
        assert_eq!(c.samples().len(), 1, "neither was kept");
        assert_eq!(crate::sign::timestamp(i64::MAX), "9999-12-31T23:59:59.999Z", "formatting never panics");
    }

    #[test]
    fn now_is_local_plus_offset() {
        let c = ClockSync::new();
        let local = tradebox_core::system_ms();
        c.record(local, local - 60_000, local);
        let now = c.now_ms();
        assert!((now - (local - 60_000)).abs() < 1_000, "{now}");
        assert_eq!(c.timestamp().len(), 24);
    }
}
