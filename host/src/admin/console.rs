//! The operator's console: the page the admin API serves at `/`, and its one live stream.
//!
//! - `GET /` and `GET /console/{file}`: the page (HTML, its script modules, the stylesheets and
//!   uPlot, the charting library), compiled into the binary (see [`assets`]). No token: the page
//!   holds nothing; everything it shows comes through the stream, which needs the token.
//! - `GET /console/stream?interval_ms=N` (token): server-sent events, one `snapshot` every N ms
//!   (50 to 5,000; default 500): the account, every plugin (the staged ones too), prices of the
//!   instruments in use, the feeds, the rate limits' fullest buckets, and the audit records
//!   written since the last snapshot. The browser cannot put a header on an `EventSource`, so
//!   the page reads this with `fetch`, which can: the token never goes into a URL.
//!
//! Each snapshot is built from the host's counters and locks at the moment it is sent; a slow
//! reader gets fewer of them (each waits for the previous to be taken by the connection),
//! never a queue that grows. The PnL curves are kept here, sampled once a second by
//! [`Curves::sample`]: the first snapshot of a stream carries them whole, later ones nothing,
//! and the page appends the PnL each snapshot carries.

pub mod assets;
mod snapshot;

use super::{Ctx, authorized, unauthorized};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use snapshot::Snapshot;

/// Points a curve keeps; past it every other point is dropped and sampling slows by half, so a
/// curve always spans the whole time since the plugin was loaded.
pub const CURVE_POINTS: usize = 600;

/// Audit records the first snapshot of a stream carries.
pub const FIRST_AUDIT: usize = 200;

/// Audit records one later snapshot carries at most (the rest are in the file).
pub const AUDIT_PER_SNAPSHOT: usize = 500;

/// One plugin's PnL since it was loaded: `[ms, pnl]`.
#[derive(Debug, Default, Clone)]
pub struct Curve {
    points: Vec<(i64, f64)>,
    /// Sampling interval now, ms (doubles at each thinning).
    step_ms: i64,
}

impl Curve {
    fn push(&mut self, ts: i64, pnl: f64) {
        if self.step_ms == 0 {
            self.step_ms = 1_000;
        }
        if self.points.last().is_some_and(|(last, _)| ts - last < self.step_ms) {
            return;
        }
        self.points.push((ts, pnl));
        if self.points.len() > CURVE_POINTS {
            // Keep the first point (the start) and every other one after it.
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.step_ms *= 2;
        }
    }

    /// The points, oldest first.
    pub fn points(&self) -> &[(i64, f64)] {
        &self.points
    }
}

/// The PnL curves of the loaded plugins (live and staged), by (staged, name).
#[derive(Debug, Default)]
pub struct Curves {
    curves: Mutex<HashMap<(bool, String), Curve>>,
}

impl Curves {
    /// Adds each plugin's PnL now; forgets the curves of plugins no longer loaded.
    pub fn sample(&self, host: &crate::running::Host) {
        let now = host.hub().clock().now_ms();
        let mut seen = Vec::new();
        let mut take = |staged: bool, h: &crate::running::Host| {
            for p in h.report() {
                seen.push((staged, p.name.clone()));
                let pnl = p.realized + p.unrealized - p.fees;
                if pnl.is_finite() {
                    self.curves.lock().entry((staged, p.name)).or_default().push(now, pnl);
                }
            }
        };
        take(false, host);
        if let Some(staging) = host.staging() {
            take(true, staging);
        }
        self.curves.lock().retain(|k, _| seen.contains(k));
    }

    /// A copy of one plugin's curve.
    pub fn get(&self, staged: bool, name: &str) -> Vec<(i64, f64)> {
        self.curves.lock().get(&(staged, name.to_string())).map(|c| c.points.clone()).unwrap_or_default()
    }
}

/// Samples the curves once a second for as long as the admin API runs.
pub(super) fn spawn_sampler(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            ctx.curves.sample(&ctx.host);
            let names = ctx.host.plugin_names();
            ctx.host.activity().retain_fills(&names);
        }
    })
}

/// A stream's snapshots without the HTTP around them: each call builds and serialises the
/// next one, as `GET /console/stream` does, and returns its size in bytes. What one update
/// costs the host is measured with it (`benches/console.rs`).
pub fn snapshots(host: Arc<crate::running::Host>) -> impl FnMut() -> usize {
    let curves = Curves::default();
    let mut cursor = snapshot::Cursor::default();
    move || serde_json::to_vec(&snapshot::build(&host, &curves, &mut cursor)).map_or(0, |v| v.len())
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct StreamQuery {
    interval_ms: Option<u64>,
}

/// The snapshot interval a stream asked for, within bounds.
fn interval(q: &StreamQuery) -> Duration {
    Duration::from_millis(q.interval_ms.unwrap_or(500).clamp(50, 5_000))
}

/// `GET /console/stream`.
pub(super) async fn stream(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, Query(q): Query<StreamQuery>) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let every = interval(&q);
    let start = snapshot::Cursor::default();
    let events = futures_util::stream::unfold(
        (ctx, start, None::<tokio::time::Interval>),
        move |(ctx, cursor, tick)| async move {
            let mut tick = match tick {
                Some(t) => t,
                None => {
                    let mut t = tokio::time::interval(every);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    t
                }
            };
            tick.tick().await;
            let mut cursor = cursor;
            let snapshot = snapshot::build(&ctx.host, &ctx.curves, &mut cursor);
            let event = Event::default().event("snapshot").json_data(&snapshot).unwrap_or_else(|e| {
                Event::default().event("error").data(format!("the snapshot did not serialise: {e}"))
            });
            Some((Ok::<_, std::convert::Infallible>(event), (ctx, cursor, Some(tick))))
        },
    );
    let mut response = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    // No proxy or browser may keep or transform it.
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curve_thins_itself_and_keeps_its_start() {
        let mut c = Curve::default();
        for s in 0..10_000i64 {
            c.push(s * 1_000, s as f64);
        }
        assert!(c.points().len() <= CURVE_POINTS && c.points().len() > CURVE_POINTS / 4, "{}", c.points().len());
        assert_eq!(c.points()[0], (0, 0.0), "the start stays");
        let last = c.points().last().expect("points").0;
        assert!(last > 9_000_000, "it reaches the end: {last}");
        // Evenly spaced after thinning.
        let gaps: Vec<i64> = c.points().windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(gaps.iter().all(|g| *g == gaps[0]), "{gaps:?}");
    }

    #[test]
    fn the_interval_is_bounded() {
        let q = |ms| StreamQuery { interval_ms: Some(ms) };
        assert_eq!(interval(&q(1)), Duration::from_millis(50));
        assert_eq!(interval(&q(60_000)), Duration::from_millis(5_000));
        assert_eq!(interval(&StreamQuery::default()), Duration::from_millis(500));
    }
}
