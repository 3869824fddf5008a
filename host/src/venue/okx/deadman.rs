//! The dead man's switch: OKX's `cancel-all-after`, re-armed while the host is alive, so that
//! the exchange cancels the orders itself when the host dies or stops hearing from it.

use super::OkxVenue;
use super::limited::{Failed, How};
use std::sync::Arc;
use std::time::Duration;
use tradebox_okx::limits::{Endpoint, Request};

pub use tradebox_okx::model::TAG_TIMERS;

/// The dead man's switch: re-arms OKX's `cancel-all-after` for the account, and for the tag of
/// every plugin with orders, every third of the timeout. If the host dies, or stops hearing
/// from OKX, the exchange cancels the orders itself. A plugin's timer is disarmed once it has
/// no orders (unloaded, or done), so timers never pile up; OKX keeps at most [`TAG_TIMERS`],
/// and plugins beyond that (or after a 51071) are covered by the account's timer alone.
pub(super) fn dead_man(venue: &Arc<OkxVenue>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(venue);
    let timeout = venue.config.dead_man_s;
    let every = Duration::from_millis(u64::from(timeout) * 1_000 / 3).max(Duration::from_millis(300));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let mut warned = false;
        let mut armed = std::collections::BTreeSet::<String>::new();
        // Each said once: more plugins than timers; OKX out of timers (51071).
        let (mut over_said, mut full_said) = (false, false);
        loop {
            tick.tick().await;
            let Some(v) = weak.upgrade() else { return };
            let with_orders: std::collections::BTreeSet<String> =
                v.sent.lock().values().filter_map(|s| s.tag.clone()).collect();
            // Those already armed first, so that a full set does not rotate.
            let mut wanted: Vec<String> = with_orders.iter().filter(|t| armed.contains(*t)).cloned().collect();
            wanted.extend(with_orders.iter().filter(|t| !armed.contains(*t)).cloned());
            if wanted.len() > TAG_TIMERS && !over_said {
                over_said = true;
                tracing::warn!(
                    plugins = wanted.len(),
                    "more plugins have orders than OKX keeps tag timers ({TAG_TIMERS}): the others' orders are covered by the account's dead man's switch alone"
                );
            }
            wanted.truncate(TAG_TIMERS);
            for tag in std::iter::once(None).chain(wanted.iter().map(Some)) {
                let key = tradebox_okx::limits::tag_key(tag.map_or("", |t| t.as_str()));
                let arm = || v.rest.cancel_all_after(timeout, tag.map(|t| t.as_str()));
                match v.limited(Request::new(Endpoint::CancelAllAfter, key), How::ONCE, arm).await {
                    Ok(_) => {
                        warned = false;
                        if let Some(t) = tag {
                            armed.insert(t.clone());
                        }
                    }
                    Err(Failed::Okx(e))
                        if e.code() == Some(tradebox_okx::error::codes::TAG_TIMERS_FULL) && !full_said =>
                    {
                        full_said = true;
                        tracing::warn!(error = %e, tag = ?tag, "OKX has no tag timer left (51071; other clients of the sub-account use some): this plugin's orders are covered by the account's dead man's switch alone");
                    }
                    Err(Failed::Okx(e)) if e.code() == Some(tradebox_okx::error::codes::TAG_TIMERS_FULL) => {}
                    Err(Failed::Okx(e)) if !warned => {
                        warned = true;
                        tracing::warn!(error = %e, tag = ?tag, "could not arm OKX cancel-all-after (dead man's switch)");
                    }
                    _ => {}
                }
            }
            // Plugins without orders any more: their timer is disarmed, freeing its place.
            let idle: Vec<String> = armed.iter().filter(|t| !wanted.contains(*t)).cloned().collect();
            for tag in idle {
                let key = tradebox_okx::limits::tag_key(&tag);
                let disarm = || v.rest.cancel_all_after(0, Some(&tag));
                if v.limited(Request::new(Endpoint::CancelAllAfter, key), How::ONCE, disarm).await.is_ok() {
                    armed.remove(&tag);
                }
            }
        }
    })
}
