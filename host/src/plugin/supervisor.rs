//! Runs each plugin as an actor: one thread owns the instance, drains the plugin's inbox in
//! batches, fires its timers, and applies the failure policy when the instance dies. A dead
//! instance never takes anything else down: its store is dropped and, policy permitting, a
//! fresh one is started with backoff.

use super::bindings::{self as b, wit};
use super::host_api::{Counters, PluginState};
use super::instance::{Fault, Instance};
use super::limits::{FailurePolicy, Limits};
use super::runtime::{Compiled, LoadError, Runtime};
use crate::engine::{Grants, Hub, PluginSlot, RiskLimits, TradingState};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Everything needed to run a plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Operator-given name, unique per host.
    pub name: String,
    /// The component bytes.
    pub wasm: Vec<u8>,
    /// Passed to `init` (JSON text).
    pub config: String,
    /// What it may touch.
    pub grants: Grants,
    /// Pre-trade limits.
    pub risk: RiskLimits,
    /// CPU and memory limits.
    pub limits: Limits,
    /// What to do when it dies.
    pub failure: FailurePolicy,
}

/// Life cycle of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Serving events.
    Running,
    /// Its instance died; a new one starts after the backoff.
    Restarting,
    /// Failed too often; no longer runs.
    Disabled,
    /// Unloaded.
    Stopped,
}

/// A snapshot of a plugin's health.
#[derive(Debug, Clone)]
pub struct Status {
    /// Life cycle state.
    pub state: RunState,
    /// Instance failures so far.
    pub failures: u32,
    /// The last failure, in words.
    pub last_error: Option<String>,
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The component was refused.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The first instance failed to start.
    #[error("plugin {name} {fault}")]
    Start {
        /// Plugin name.
        name: String,
        /// What went wrong.
        fault: Fault,
    },
    /// Another plugin already has this name.
    #[error("a plugin named {0} is already loaded")]
    Duplicate(String),
    /// The actor thread could not be spawned.
    #[error("could not start the plugin thread: {0}")]
    Thread(String),
}

/// A running plugin, owned by whoever loaded it.
pub struct PluginHandle {
    /// Its engine slot.
    pub slot: Arc<PluginSlot>,
    /// sha256 of its component.
    pub hash: String,
    /// Whether the compiled code came from the cache.
    pub from_cache: bool,
    status: Arc<Mutex<Status>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    hub: Arc<Hub>,
}

impl PluginHandle {
    /// Current health.
    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    /// Counters (events, calls, logs).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Stops the plugin; with `cancel_orders` its open orders are cancelled too.
    pub fn stop(mut self, cancel_orders: bool) {
        self.shutdown(cancel_orders);
    }

    fn shutdown(&mut self, cancel_orders: bool) {
        self.stop.store(true, Ordering::Release);
        self.slot.mailbox.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if cancel_orders {
            self.hub.cancel_all_of(self.slot.id, None);
        }
        self.hub.unregister(self.slot.id);
        self.status.lock().state = RunState::Stopped;
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown(true);
        }
    }
}

struct Actor {
    runtime: Arc<Runtime>,
    hub: Arc<Hub>,
    slot: Arc<PluginSlot>,
    compiled: Compiled,
    spec: PluginSpec,
    status: Arc<Mutex<Status>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

/// Compiles, checks and starts a plugin; returns once its first instance has run `init`.
pub fn start(runtime: Arc<Runtime>, hub: Arc<Hub>, spec: PluginSpec) -> Result<PluginHandle, StartError> {
    let compiled = runtime.compile(&spec.wasm)?;
    let slot = hub.register_component(&spec.name, &compiled.hash, spec.grants.clone(), spec.risk.clone());
    let status = Arc::new(Mutex::new(Status { state: RunState::Running, failures: 0, last_error: None }));
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let actor = Actor {
        runtime,
        hub: hub.clone(),
        slot: slot.clone(),
        compiled: compiled.clone(),
        spec,
        status: status.clone(),
        counters: counters.clone(),
        stop: stop.clone(),
    };
    let name = actor.spec.name.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(format!("plugin-{name}"))
        // wasm runs on this thread's stack: leave room above the engine's wasm stack limit.
        .stack_size(8 << 20)
        .spawn(move || actor.run(ready_tx))
        .map_err(|e| StartError::Thread(e.to_string()))?;
    let handle = PluginHandle {
        slot,
        hash: compiled.hash.clone(),
        from_cache: compiled.from_cache,
        status,
        counters,
        stop,
        thread: Some(thread),
        hub,
    };
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(fault)) => {
            handle.stop(false);
            Err(StartError::Start { name, fault })
        }
        Err(_) => {
            handle.stop(false);
            Err(StartError::Thread("the plugin thread ended before starting".into()))
        }
    }
}

impl Actor {
    fn instantiate(&self) -> Result<Instance, Fault> {
        let state = PluginState::new(
            self.hub.clone(),
            self.slot.clone(),
            wasmtime::StoreLimits::default(),
            self.counters.clone(),
        );
        let mut instance = Instance::new(&self.compiled, state, self.spec.limits, self.runtime.mode())?;
        instance.init(&self.spec.config)?;
        Ok(instance)
    }

    fn run(self, ready: std::sync::mpsc::SyncSender<Result<(), Fault>>) {
        let first = self.instantiate();
        let mut instance = match first {
            Ok(instance) => {
                let _ = ready.send(Ok(()));
                instance
            }
            Err(fault) => {
                let _ = ready.send(Err(fault));
                return;
            }
        };
        tracing::info!(plugin = %self.spec.name, hash = %&self.compiled.hash[..12], "plugin started");
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let next_timer = instance.state_mut().timers.next_due();
            let Some(batch) = self.slot.mailbox.take(self.spec.limits.max_batch, next_timer) else { return };
            let mut events: Vec<wit::Event> = batch.into_iter().map(b::event).collect();
            let now = Instant::now();
            for id in instance.state_mut().timers.take_due(now) {
                events.push(wit::Event::Timer(wit::TimerFired { id, ts: crate::engine::now_ms() }));
            }
            if events.is_empty() {
                continue;
            }
            self.counters.events.fetch_add(events.len() as u64, Ordering::Relaxed);
            for delivery in b::deliveries(events) {
                self.counters.calls.fetch_add(1, Ordering::Relaxed);
                if let Err(fault) = instance.deliver(&delivery) {
                    match self.recover(fault) {
                        Some(fresh) => instance = fresh,
                        None => return,
                    }
                    // The rest of this batch goes to the fresh instance.
                }
            }
        }
    }

    /// Applies the failure policy; returns a fresh instance, or `None` when the plugin is
    /// disabled or stopped.
    fn recover(&self, mut fault: Fault) -> Option<Instance> {
        let policy = self.spec.failure;
        loop {
            let failures = {
                let mut s = self.status.lock();
                s.failures += 1;
                s.last_error = Some(fault.to_string());
                s.state = RunState::Restarting;
                s.failures
            };
            tracing::error!(plugin = %self.spec.name, failures, "plugin instance {fault}; instance dropped");
            self.hub.record(&self.spec.name, format!("instance {fault} (failure {failures})"));
            if policy.cancel_orders {
                self.hub.cancel_all_of(self.slot.id, None);
            }
            if failures >= policy.max_failures {
                self.status.lock().state = RunState::Disabled;
                let reason = format!("disabled after {failures} failures; last: {fault}");
                tracing::error!(plugin = %self.spec.name, "{reason}");
                self.hub.set_plugin_state(&self.slot, TradingState::Halted, &reason);
                self.hub.unregister(self.slot.id);
                return None;
            }
            if !self.sleep(policy.backoff(failures)) {
                return None;
            }
            match self.instantiate() {
                Ok(instance) => {
                    self.status.lock().state = RunState::Running;
                    tracing::info!(plugin = %self.spec.name, "plugin restarted");
                    return Some(instance);
                }
                Err(next) => fault = next,
            }
        }
    }

    /// Sleeps unless stopped; false when stopped.
    fn sleep(&self, total: Duration) -> bool {
        let until = Instant::now() + total;
        while Instant::now() < until {
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10).min(until.saturating_duration_since(Instant::now())));
        }
        !self.stop.load(Ordering::Acquire)
    }
}
