//! The authentication-failure watch (OKX's security advice: a sudden spike of authentication
//! failures can mean a brute-force attempt or a misconfigured script). The host sees only its
//! own requests' answers, so what it watches is its key being refused: revoked, changed,
//! restricted to other IPs, or a copy of this host misconfigured. It counts, for the one
//! key a host uses, the REST answers that refuse authentication (50100-50120) and the WebSocket
//! login refusals (60004-60009, 60024) over a sliding window; an expired timestamp (50102,
//! 60006) is the clock, corrected by the host itself, and is not counted. A spike (`warn_at` in the window)
//! is a warning in the log, the metrics and the board; `halt_at` halts the account as
//! `tradebox halt` does, until an operator resumes it.

use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tradebox_core::{VenueAlarm, VenueEvent};

/// `[venue.okx.auth_watch]`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthWatchConfig {
    /// The sliding window, seconds.
    pub window_s: u64,
    /// Failures in the window that make a warning (0: never).
    pub warn_at: u32,
    /// Failures in the window that halt the account (0: never).
    pub halt_at: u32,
}

impl Default for AuthWatchConfig {
    fn default() -> Self {
        // A healthy host fails authentication only when its clock jumps (50102, re-synced at
        // once): three in five minutes is already unusual, ten is not the host's own doing.
        Self { window_s: 300, warn_at: 3, halt_at: 10 }
    }
}

/// Where a failure was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A REST answer.
    Rest,
    /// A WebSocket login.
    WsLogin,
}

/// Whether an OKX code refuses authentication: REST 50100-50120, WebSocket login 60004-60009
/// and 60024; but not an expired timestamp (50102, 60006): that is the clock, which the host
/// corrects by itself (a jump of the machine's clock with requests in flight would otherwise
/// look like an attack and halt the account).
pub fn is_auth_failure(code: &str) -> bool {
    match code.parse::<u32>() {
        Ok(50102 | 60006) => false,
        Ok(c) => (50100..=50120).contains(&c) || (60004..=60009).contains(&c) || c == 60024,
        Err(_) => false,
    }
}

/// The watch: one per venue (one key per host).
#[derive(Debug)]
pub struct AuthWatch {
    config: AuthWatchConfig,
    seen: Mutex<Seen>,
    /// Every failure since start (a metric).
    pub total: AtomicU64,
    events: mpsc::UnboundedSender<VenueEvent>,
}

#[derive(Debug, Default)]
struct Seen {
    times: VecDeque<Instant>,
    /// The window already produced its warning / its halt: one each until it empties.
    warned: bool,
    halted: bool,
}

impl AuthWatch {
    /// A watch that raises its alarms on the venue's event stream.
    pub fn new(config: AuthWatchConfig, events: mpsc::UnboundedSender<VenueEvent>) -> Arc<Self> {
        Arc::new(Self { config, seen: Mutex::default(), total: AtomicU64::new(0), events })
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.config.window_s.max(1))
    }

    /// Records one failure (`code` as OKX sent it) seen at `now`.
    pub fn record(&self, source: Source, code: &str, now: Instant) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let (count, alarm) = {
            let mut seen = self.seen.lock();
            self.expire(&mut seen, now);
            seen.times.push_back(now);
            let count = seen.times.len() as u32;
            let halt = self.config.halt_at > 0 && count >= self.config.halt_at && !seen.halted;
            let warn = self.config.warn_at > 0 && count >= self.config.warn_at && !seen.warned;
            seen.halted |= halt;
            seen.warned |= warn || halt;
            (count, (halt || warn).then_some(halt))
        };
        let Some(halt) = alarm else { return };
        let window_s = self.config.window_s;
        if halt {
            tracing::error!(count, window_s, %code, ?source, "authentication failures: halting the account until an operator resumes it");
        } else {
            tracing::warn!(count, window_s, %code, ?source, "the host's requests keep failing authentication (key revoked, changed or IP-restricted?)");
        }
        let _ = self.events.send(VenueEvent::Alarm(VenueAlarm::AuthFailures { count, window_s, halt }));
    }

    /// Failures in the window now.
    pub fn recent(&self, now: Instant) -> u32 {
        let mut seen = self.seen.lock();
        self.expire(&mut seen, now);
        seen.times.len() as u32
    }

    fn expire(&self, seen: &mut Seen, now: Instant) {
        while seen.times.front().is_some_and(|t| now.saturating_duration_since(*t) > self.window()) {
            seen.times.pop_front();
        }
        if seen.times.is_empty() {
            seen.warned = false;
            seen.halted = false;
        }
    }
}

/// The REST client's observer: the audit log's (when there is one) plus the watch, which reads
/// the code of answers that can carry an authentication refusal (HTTP 401, or an OKX body
/// with a 501xx code) and nothing else.
pub struct Watching {
    /// The audit log, or another observer.
    pub inner: Option<Arc<dyn tradebox_okx::Observer>>,
    /// The watch.
    pub watch: Arc<AuthWatch>,
}

impl tradebox_okx::Observer for Watching {
    fn request(&self, request: &tradebox_okx::rest::SentRequest<'_>) {
        if let Some(inner) = &self.inner {
            inner.request(request);
        }
    }

    fn response(&self, response: &tradebox_okx::rest::ReceivedResponse<'_>) {
        if let Some(inner) = &self.inner {
            inner.response(response);
        }
        let maybe = response.status == 401 || response.body.windows(4).any(|w| w == b"\"501");
        if !maybe {
            return;
        }
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(default)]
            code: String,
        }
        if let Ok(e) = serde_json::from_slice::<Envelope>(response.body)
            && is_auth_failure(&e.code)
        {
            self.watch.record(Source::Rest, &e.code, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_refused_authentication() {
        for code in ["50100", "50101", "50111", "50113", "50119", "50120", "60004", "60009", "60024"] {
            assert!(is_auth_failure(code), "{code}");
        }
        for code in ["0", "50011", "50102", "60006", "50121", "51000", "60010", "60011", "", "x"] {
            assert!(!is_auth_failure(code), "{code}");
        }
    }

    #[test]
    fn a_spike_warns_once_a_flood_halts_once_and_a_quiet_window_starts_over() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let watch = AuthWatch::new(AuthWatchConfig { window_s: 60, warn_at: 2, halt_at: 4 }, tx);
        let t0 = Instant::now();
        let alarms = |rx: &mut mpsc::UnboundedReceiver<VenueEvent>| {
            std::iter::from_fn(|| rx.try_recv().ok())
                .map(|e| match e {
                    VenueEvent::Alarm(VenueAlarm::AuthFailures { count, halt, .. }) => (count, halt),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        for i in 0..6 {
            watch.record(Source::Rest, "50113", t0 + Duration::from_secs(i));
        }
        assert_eq!(alarms(&mut rx), vec![(2, false), (4, true)]);
        assert_eq!(watch.total.load(Ordering::Relaxed), 6);
        assert_eq!(watch.recent(t0 + Duration::from_secs(30)), 6);
        // Spread out, failures never make a spike: each leaves the window before the next.
        let later = t0 + Duration::from_secs(1_000);
        assert_eq!(watch.recent(later), 0);
        for i in 0..5 {
            watch.record(Source::WsLogin, "60009", later + Duration::from_secs(61 * i));
        }
        assert_eq!(alarms(&mut rx), vec![]);
    }
}
