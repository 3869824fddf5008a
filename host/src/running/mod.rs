//! A running host: a venue, the engine tasks around it, the wasm runtime, and the plugins.
//!
//! - [`lifecycle`]: load, reload and unload while it runs, each audited with who asked;
//! - [`watch`]: reload plugins whose files change (`tradebox run --watch DIR`);
//! - [`staging`]: a second host on the simulated venue: stage a plugin or version, promote it.

pub mod lifecycle;
pub mod staging;
pub mod watch;

use crate::engine::{Hub, router};
use crate::plugin::trust::Trust;
use crate::plugin::{self, RunState, Runtime};
use lifecycle::Loaded;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::task::JoinHandle;
use tradebox_core::Venue;

/// How often the circuit breaker looks at every plugin's and the account's PnL, ms.
pub const BREAKER_MS: u64 = 200;

/// A plugin's line on the status board.
#[derive(Debug, Clone)]
pub struct PluginReport {
    /// Name.
    pub name: String,
    /// Life cycle state.
    pub state: RunState,
    /// Instance failures.
    pub failures: u32,
    /// Last failure.
    pub last_error: Option<String>,
    /// Orders sent.
    pub orders_sent: u64,
    /// Requests denied by the host: order intents and market data subscriptions.
    pub denied: u64,
    /// Orders rejected by the venue.
    pub rejected: u64,
    /// Fills.
    pub fills: u64,
    /// Open orders now.
    pub open_orders: usize,
    /// (instrument symbol, signed size) per position.
    pub positions: Vec<(String, f64)>,
    /// Realised PnL (quote currency).
    pub realized: f64,
    /// Unrealised PnL marked to mid.
    pub unrealized: f64,
    /// Fees paid.
    pub fees: f64,
    /// Events delivered.
    pub events: u64,
    /// Log lines dropped by the rate limit.
    pub logs_suppressed: u64,
    /// Market events conflated for this plugin.
    pub conflated: u64,
    /// sha256 of the component serving it.
    pub hash: String,
    /// Successful hot reloads.
    pub reloads: u32,
    /// Time it waited for its CPU share, ms.
    pub throttled_ms: u64,
    /// Its thread runs in the background scheduling class (it went over its CPU share).
    pub cpu_background: bool,
    /// CPU time spent on its batches, µs.
    pub cpu_us: u64,
    /// Memory its instance holds, bytes.
    pub memory_bytes: u64,
    /// Its instance's memory cap, bytes.
    pub memory_cap_bytes: u64,
    /// Its CPU budget per call, ms.
    pub deadline_ms: u64,
    /// Its share of one core (0: none).
    pub cpu_share: f64,
}

/// The host.
pub struct Host {
    hub: Arc<Hub>,
    /// What the engine reported lately, for displays.
    activity: Arc<crate::engine::activity::RecentActivity>,
    runtime: Arc<Runtime>,
    venue: Arc<dyn Venue>,
    plugins: Mutex<BTreeMap<String, Loaded>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Which plugin files may load (signatures); signatures optional until told otherwise.
    trust: parking_lot::RwLock<Trust>,
    /// Where plugins trade on a simulated venue before they trade here (see `staging`).
    staging: std::sync::OnceLock<Box<Host>>,
    /// Held by a reload, a staging and a promotion for their whole length, so two of them
    /// (watch mode and an operator, say) never interleave their checks and swaps.
    changing: Mutex<()>,
}

impl Host {
    /// Sets which plugin files may load from now on (the config's `[signing]`); plugins
    /// already running are not re-checked.
    pub fn set_trust(&self, trust: Trust) {
        if let Some(staging) = self.staging.get() {
            staging.set_trust(trust.clone());
        }
        *self.trust.write() = trust;
    }

    /// Which plugin files may load now (what `plugin inspect` judges a signature by).
    pub fn trust(&self) -> Trust {
        self.trust.read().clone()
    }

    /// Starts the engine tasks on the current tokio runtime and seeds balances from the venue.
    pub async fn start(venue: Arc<dyn Venue>, runtime: Arc<Runtime>) -> anyhow::Result<Self> {
        Self::start_audited(venue, runtime, None).await
    }

    /// [`Host::start`], recording every intent, risk decision, order change and fill in `audit`
    /// from the first event on.
    pub async fn start_audited(
        venue: Arc<dyn Venue>,
        runtime: Arc<Runtime>,
        audit: Option<Arc<crate::audit::AuditLog>>,
    ) -> anyhow::Result<Self> {
        let events = venue.take_events().ok_or_else(|| anyhow::anyhow!("the venue's event stream is already taken"))?;
        let (hub, commands) = Hub::with_clock(venue.instruments(), venue.clock());
        hub.set_position_mode(venue.position_mode());
        let activity = Arc::new(crate::engine::activity::RecentActivity::default());
        hub.attach_activity(activity.clone());
        if let Some(log) = audit {
            log.use_clock(venue.clock());
            log.append(
                None,
                None,
                &crate::audit::Entry::State {
                    event: crate::audit::StateChange::HostStart,
                    detail: format!("venue {}", venue.name()),
                },
            );
            hub.attach_audit(log);
        }
        for balance in venue.balances().await? {
            hub.seed_balance(balance);
        }
        hub.adopt_orders(venue.adopted_orders());
        let breaker = hub.clone();
        let tasks = vec![
            tokio::spawn(router::run_router(hub.clone(), events, venue.candles_from_trades())),
            tokio::spawn(router::run_sender(hub.clone(), venue.clone(), commands)),
            // The loss-based circuit breaker runs on its own clock, whatever the plugins do.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(BREAKER_MS));
                loop {
                    tick.tick().await;
                    breaker.watch_losses(breaker.clock().now_ms());
                    breaker.flush_refusals(false);
                    if let Some(log) = breaker.audit() {
                        log.probe();
                    }
                }
            }),
        ];
        Ok(Self {
            hub,
            activity,
            runtime,
            venue,
            plugins: Mutex::default(),
            tasks: Mutex::new(tasks),
            trust: parking_lot::RwLock::new(Trust::default()),
            staging: std::sync::OnceLock::new(),
            changing: Mutex::new(()),
        })
    }

    /// Shared engine state.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The recent activity (orders, fills, states, plugin lifecycle) for displays.
    pub fn activity(&self) -> &Arc<crate::engine::activity::RecentActivity> {
        &self.activity
    }

    /// The venue.
    pub fn venue(&self) -> &Arc<dyn Venue> {
        &self.venue
    }

    /// The wasm runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The names of the loaded plugins.
    pub fn plugin_names(&self) -> Vec<String> {
        self.plugins.lock().keys().cloned().collect()
    }

    /// A loaded plugin's engine slot.
    pub fn slot(&self, name: &str) -> Option<Arc<crate::engine::PluginSlot>> {
        self.plugins.lock().get(name).map(|l| l.handle.slot.clone())
    }

    /// A plugin's status.
    pub fn plugin_status(&self, name: &str) -> Option<plugin::Status> {
        self.plugins.lock().get(name).map(|l| l.handle.status())
    }

    /// Each plugin's call-duration histogram (shared with its actor), for `/metrics`.
    pub fn call_histograms(&self) -> Vec<(String, prometheus_client::metrics::histogram::Histogram)> {
        self.plugins.lock().iter().map(|(name, l)| (name.clone(), l.handle.counters().call_seconds.clone())).collect()
    }

    /// Every plugin's line on the status board.
    pub fn report(&self) -> Vec<PluginReport> {
        let plugins = self.plugins.lock();
        plugins
            .iter()
            .map(|(name, loaded)| {
                let h = &loaded.handle;
                let status = h.status();
                let slot = &h.slot;
                let (realized, unrealized, fees) = self.hub.pnl(slot.id);
                let positions = self
                    .hub
                    .positions(slot.id)
                    .into_iter()
                    .map(|(i, p)| {
                        let symbol = self.hub.instrument(i).map_or_else(|| i.to_string(), |s| s.symbol.clone());
                        (symbol, tradebox_core::num::shown(p.size))
                    })
                    .collect();
                PluginReport {
                    name: name.clone(),
                    state: status.state,
                    failures: status.failures,
                    last_error: status.last_error,
                    orders_sent: slot.stats.orders_sent.load(Ordering::Relaxed),
                    denied: slot.stats.denied.load(Ordering::Relaxed),
                    rejected: slot.stats.rejected.load(Ordering::Relaxed),
                    fills: slot.stats.fills.load(Ordering::Relaxed),
                    open_orders: self.hub.open_orders(slot.id).len(),
                    positions,
                    realized,
                    unrealized,
                    fees,
                    events: h.counters().events.load(Ordering::Relaxed),
                    logs_suppressed: h.counters().logs_suppressed.load(Ordering::Relaxed),
                    conflated: slot.mailbox.stats().conflated,
                    hash: status.hash,
                    reloads: status.reloads,
                    throttled_ms: h.counters().throttled_ms.load(Ordering::Relaxed),
                    cpu_background: h.counters().background.load(Ordering::Relaxed),
                    cpu_us: h.counters().cpu_us.load(Ordering::Relaxed),
                    memory_bytes: h.counters().memory_bytes.load(Ordering::Relaxed),
                    memory_cap_bytes: h.counters().memory_cap_bytes.load(Ordering::Relaxed),
                    deadline_ms: h.limits().deadline_ms,
                    cpu_share: h.limits().cpu_share,
                }
            })
            .collect()
    }

    /// Unloads every plugin (cancelling their orders) and stops the engine tasks.
    pub async fn shutdown(&self) {
        if let Some(staging) = self.staging.get() {
            Box::pin(staging.shutdown()).await;
        }
        let names: Vec<String> = self.plugins.lock().keys().cloned().collect();
        for name in names {
            let loaded = self.plugins.lock().remove(&name);
            if let Some(l) = loaded {
                let _ = tokio::task::spawn_blocking(move || l.handle.stop(true)).await;
            }
        }
        // Deliver the final cancels before the tasks stop.
        self.hub.flush().await;
        self.hub.flush_refusals(true);
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}
