//! Runs each plugin as an actor: one thread owns the instance, drains the plugin's inbox in
//! batches, fires its timers, and applies the failure policy when the instance dies. A dead
//! instance never takes anything else down: its store is dropped and, policy permitting, a
//! fresh one is started with backoff.

use super::admission::{AdmissionError, admit};
use super::bindings::{self as b, wit};
use super::host_api::{Counters, PluginState};
use super::instance::{Fault, Instance};
use super::limits::{CpuShare, FailurePolicy, Limits};
use super::runtime::{Compiled, LoadError, Runtime};
use super::trust::TrustError;
use crate::engine::activity::Activity;
use crate::engine::{Grants, Hub, Permissions, PluginSlot, RiskLimits};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tradebox_core::TradingState;
use tradebox_manifest::Manifest;

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
    /// sha256 of the component serving it now (a reload changes it).
    pub hash: String,
    /// Successful reloads since it was loaded.
    pub reloads: u32,
    /// The contract version its component was built against.
    pub contract: String,
    /// The manifest of the component serving it now.
    pub manifest: Option<Arc<Manifest>>,
    /// What its manifest asked beyond the grant and it runs without (`partial_grant`).
    pub withheld: Vec<String>,
    /// Who signed the component serving now (see `trust::Signer`).
    pub signer: String,
}

/// What a successful reload did.
#[derive(Debug, Clone)]
pub struct Swap {
    /// The component that served before.
    pub old_hash: String,
    /// The component serving now.
    pub new_hash: String,
    /// Bytes of state handed from `snapshot()` to `restore()`.
    pub state_bytes: usize,
    /// Events that waited in the inbox while the instances were swapped (all go to the new one).
    pub queued: usize,
    /// From the request reaching the plugin's thread to the new instance serving.
    pub swap_time: Duration,
}

/// Why a reload was refused. In every case the running instance keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new component was refused.
    #[error("{0}; the running version keeps trading")]
    Load(#[from] LoadError),
    /// The new file's signature was not accepted.
    #[error("{0}; the running version keeps trading")]
    Trust(TrustError),
    /// The new version asks for more than the plugin is granted, or its config does not fit.
    #[error("{0}; the running version keeps trading")]
    Admission(#[from] AdmissionError),
    /// The new instance failed to start or its `init` failed.
    #[error("the new version did not start ({0}); the running version keeps trading")]
    Init(Fault),
    /// The running instance could not hand over its state.
    #[error("the running version could not snapshot its state ({0}); it is restarted by its failure policy")]
    Snapshot(Fault),
    /// The new instance refused the state.
    #[error("the new version refused the running version's state ({0}); the running version keeps trading")]
    Restore(Fault),
    /// The plugin is not running (disabled, stopping, or unloaded during the reload).
    #[error("plugin {0} is not running; load it again instead")]
    NotRunning(String),
    /// The plugin's thread did not answer in time (stuck in a long call).
    #[error("plugin {0} did not take the new version within {1:?}; the running version keeps trading")]
    Timeout(String, Duration),
}

/// Requests to a plugin's actor thread.
enum Control {
    Reload {
        compiled: Box<Compiled>,
        config: Option<String>,
        permissions: Option<Box<Permissions>>,
        reply: std::sync::mpsc::SyncSender<Result<Swap, ReloadError>>,
    },
    Snapshot {
        reply: std::sync::mpsc::SyncSender<Result<Vec<u8>, Fault>>,
    },
}

/// Sends reload requests to a plugin's thread; cheap to clone, so the caller holds no lock
/// while the swap happens.
#[derive(Clone)]
pub struct Reloader {
    slot: Arc<PluginSlot>,
    control: std::sync::mpsc::Sender<Control>,
}

impl Reloader {
    /// Swaps in `compiled` (compile it off the event loop first): the plugin's thread starts
    /// it, runs `init` (with `config`, or the running one's), hands over `snapshot()` →
    /// `restore()`, and only then drops the old instance. Events arriving meanwhile wait in the
    /// plugin's inbox and go to the new instance; open orders stay the plugin's. On any failure
    /// the old instance keeps serving.
    ///
    /// `permissions`, when given, are what the new version is admitted with: they come into
    /// force on the plugin's thread as the new instance starts (the old one never runs under
    /// them), and the old ones are put back if the swap fails.
    pub fn reload(
        &self,
        compiled: Compiled,
        config: Option<String>,
        permissions: Option<Permissions>,
        timeout: Duration,
    ) -> Result<Swap, ReloadError> {
        let name = self.slot.name.clone();
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.control
            .send(Control::Reload {
                compiled: Box::new(compiled),
                config,
                permissions: permissions.map(Box::new),
                reply,
            })
            .map_err(|_| ReloadError::NotRunning(name.clone()))?;
        self.slot.mailbox.interrupt();
        match answer.recv_timeout(timeout) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(ReloadError::Timeout(name, timeout)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(ReloadError::NotRunning(name)),
        }
    }

    /// The running instance's `snapshot()`, taken between batches on the plugin's thread: the
    /// state a reload would hand over (for backups, and for tests that read what a plugin
    /// kept).
    pub fn snapshot(&self, timeout: Duration) -> Result<Vec<u8>, ReloadError> {
        let name = self.slot.name.clone();
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.control.send(Control::Snapshot { reply }).map_err(|_| ReloadError::NotRunning(name.clone()))?;
        self.slot.mailbox.interrupt();
        match answer.recv_timeout(timeout) {
            Ok(result) => result.map_err(ReloadError::Snapshot),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(ReloadError::Timeout(name, timeout)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(ReloadError::NotRunning(name)),
        }
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The component was refused.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Its manifest asks for more than it is granted, or its config does not fit.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// Its signature was not accepted.
    #[error(transparent)]
    Trust(TrustError),
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
    /// Whether the compiled code came from the cache.
    pub from_cache: bool,
    status: Arc<Mutex<Status>>,
    control: std::sync::mpsc::Sender<Control>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    hub: Arc<Hub>,
    limits: super::Limits,
}

impl PluginHandle {
    /// The limits it runs under (as configured: a `memory_mib` of 0 is the language's, see
    /// [`Counters::memory_cap_bytes`]).
    pub fn limits(&self) -> &super::Limits {
        &self.limits
    }

    /// Who signed the component now serving, and what its admission withheld.
    pub(crate) fn set_admitted(&self, signer: String, withheld: Vec<String>) {
        let mut status = self.status.lock();
        status.signer = signer;
        status.withheld = withheld;
    }

    /// Current health.
    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    /// Counters (events, calls, logs).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// sha256 of the component serving now.
    pub fn hash(&self) -> String {
        self.status.lock().hash.clone()
    }

    /// A sender of reload requests to this plugin's thread.
    pub fn reloader(&self) -> Reloader {
        Reloader { slot: self.slot.clone(), control: self.control.clone() }
    }

    /// Stops the plugin; with `cancel_orders` its open orders are cancelled too.
    pub fn stop(mut self, cancel_orders: bool) {
        self.shutdown(cancel_orders);
    }

    fn shutdown(&mut self, cancel_orders: bool) {
        self.stop.store(true, Ordering::Release);
        self.slot.mailbox.close();
        if cancel_orders {
            // At once, not after the call in progress ends (up to its wall bound when the
            // machine starves it); whatever that call still places is refused from here on
            // (halted), and a second pass after the join catches an order it slipped in.
            // (Halting cancels its open orders.)
            self.hub.set_plugin_state(&self.slot, tradebox_core::TradingState::Halted, "unloading");
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if cancel_orders {
            self.hub.cancel_all_for_host(self.slot.id, None);
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
    control: std::sync::mpsc::Receiver<Control>,
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
    start_in(runtime, hub, spec, None)
}

/// [`start`], with the plugin in `state` (and told so) before its `init` runs, so that a
/// version started REDUCE_ONLY cannot open a position even from `init`.
pub fn start_in(
    runtime: Arc<Runtime>,
    hub: Arc<Hub>,
    mut spec: PluginSpec,
    state: Option<(TradingState, String)>,
) -> Result<PluginHandle, StartError> {
    let compiled = runtime.compile(&spec.wasm)?;
    let admission = admit(&spec.name, compiled.manifest.as_deref(), &spec.grants, &spec.risk, &spec.config)?;
    spec.config = admission.config;
    let permissions = Permissions::new(spec.grants.clone(), admission.requested);
    let slot = hub.register_component(&spec.name, &compiled.hash, permissions, spec.risk.clone());
    if let Some((state, reason)) = state {
        hub.set_plugin_state(&slot, state, &reason);
    }
    let status = Arc::new(Mutex::new(Status {
        state: RunState::Running,
        failures: 0,
        last_error: None,
        hash: compiled.hash.clone(),
        reloads: 0,
        contract: compiled.contract.clone(),
        manifest: compiled.manifest.clone(),
        withheld: admission.withheld,
        signer: "unchecked".into(),
    }));
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (control, control_rx) = std::sync::mpsc::channel();
    let actor = Actor {
        control: control_rx,
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
    let limits = actor.spec.limits;
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(format!("plugin-{name}"))
        // wasm runs on this thread's stack: leave room above the engine's wasm stack limit.
        .stack_size(8 << 20)
        .spawn(move || actor.run(ready_tx))
        .map_err(|e| StartError::Thread(e.to_string()))?;
    let handle = PluginHandle {
        slot,
        from_cache: compiled.from_cache,
        status,
        control,
        counters,
        stop,
        thread: Some(thread),
        hub,
        limits,
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
        self.instantiate_from(&self.compiled, &self.spec.config, None)
    }

    /// A new instance past its `init`. If `init` fails, the streams it subscribed to are
    /// released, except those `running` (the instance that carries on) holds.
    fn instantiate_from(
        &self,
        compiled: &Compiled,
        config: &str,
        running: Option<&Instance>,
    ) -> Result<Instance, Fault> {
        let state = PluginState::new(self.hub.clone(), self.slot.clone(), self.counters.clone(), self.runtime.mode());
        let mut instance = Instance::new(compiled, state, self.spec.limits, self.runtime.mode())?;
        if let Err(fault) = instance.init(config) {
            self.release(&instance, running);
            return Err(fault);
        }
        Ok(instance)
    }

    /// Ends the subscriptions `gone` holds that `kept` (if any) does not.
    fn release(&self, gone: &Instance, kept: Option<&Instance>) {
        for &(instrument, channel) in &gone.state().subscriptions {
            if !kept.is_some_and(|k| k.state().subscriptions.contains(&(instrument, channel))) {
                self.hub.unsubscribe(&self.slot, instrument, channel);
            }
        }
    }

    /// The reload protocol, on the plugin's own thread (so no event is taken meanwhile).
    fn reload(
        &mut self,
        instance: &mut Instance,
        compiled: Compiled,
        config: Option<String>,
    ) -> Result<Swap, ReloadError> {
        let started = Instant::now();
        let config = config.unwrap_or_else(|| self.spec.config.clone());
        let fresh = self.instantiate_from(&compiled, &config, Some(instance)).map_err(ReloadError::Init)?;
        let state = match instance.snapshot() {
            Ok(state) => state,
            Err(fault) => {
                self.release(&fresh, Some(instance));
                return Err(ReloadError::Snapshot(fault));
            }
        };
        let mut fresh = fresh;
        if let Err(fault) = fresh.restore(&state) {
            self.release(&fresh, Some(instance));
            return Err(ReloadError::Restore(fault));
        }
        let old = std::mem::replace(instance, fresh);
        self.release(&old, Some(instance));
        drop(old);
        let old_hash = std::mem::replace(&mut self.compiled, compiled).hash;
        self.spec.config = config;
        self.slot.set_hash(&self.compiled.hash);
        {
            let mut status = self.status.lock();
            status.hash = self.compiled.hash.clone();
            status.contract = self.compiled.contract.clone();
            status.manifest = self.compiled.manifest.clone();
            status.reloads += 1;
        }
        Ok(Swap {
            old_hash,
            new_hash: self.compiled.hash.clone(),
            state_bytes: state.len(),
            queued: self.slot.mailbox.stats().queued,
            swap_time: started.elapsed(),
        })
    }

    /// Answers the control requests waiting; returns a fault when the running instance died
    /// answering one (its snapshot trapped).
    fn serve_control(&mut self, instance: &mut Instance) -> Option<Fault> {
        while let Ok(control) = self.control.try_recv() {
            let (compiled, config, permissions, reply) = match control {
                Control::Reload { compiled, config, permissions, reply } => (compiled, config, permissions, reply),
                Control::Snapshot { reply } => {
                    let result = instance.snapshot();
                    let died = result.as_ref().err().cloned();
                    let _ = reply.send(result);
                    if died.is_some() {
                        return died;
                    }
                    continue;
                }
            };
            let previous = permissions.map(|p| self.slot.set_permissions(*p));
            let result = self.reload(instance, *compiled, config);
            if result.is_err()
                && let Some(previous) = previous
            {
                self.slot.set_permissions((*previous).clone());
            }
            let died = match &result {
                Err(ReloadError::Snapshot(fault)) => Some(fault.clone()),
                _ => None,
            };
            match &result {
                Ok(swap) => tracing::info!(
                    plugin = %self.spec.name, from = %&swap.old_hash[..12], to = %&swap.new_hash[..12],
                    state_bytes = swap.state_bytes, "plugin reloaded"
                ),
                Err(e) => tracing::warn!(plugin = %self.spec.name, "reload refused: {e}"),
            }
            let _ = reply.send(result);
            if died.is_some() {
                return died;
            }
        }
        None
    }

    fn run(mut self, ready: std::sync::mpsc::SyncSender<Result<(), Fault>>) {
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
        let mut cpu = CpuShare::new(&self.spec.limits);
        let mut class = Class::default();
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if let Some(fault) = self.serve_control(&mut instance) {
                match self.recover(fault) {
                    Some(fresh) => instance = fresh,
                    None => return,
                }
            }
            // What the instance holds, for the console (after a batch, a reload or a restart).
            self.counters.memory_bytes.store(instance.memory_held() as u64, Ordering::Relaxed);
            self.counters.memory_cap_bytes.store(instance.memory_cap() as u64, Ordering::Relaxed);
            // Over its CPU share the plugin waits: events pile up in its mailbox (market data
            // conflated, order events kept) and its timers fire late. Kept up, it is a fault.
            let now = Instant::now();
            if let Some(wait) = cpu.wait(now) {
                if cpu.over_limit(now) {
                    let share_pct = (self.spec.limits.cpu_share * 100.0).round() as u32;
                    let fault = Fault::CpuShare { share_pct, seconds: self.spec.limits.cpu_throttle_s };
                    cpu = CpuShare::new(&self.spec.limits);
                    match self.recover(fault) {
                        Some(fresh) => instance = fresh,
                        None => return,
                    }
                    continue;
                }
                // Naps of at most 50 ms, so that control messages are served; each counts once.
                let nap = wait.min(Duration::from_millis(50));
                self.counters.throttled_ms.fetch_add(nap.as_millis() as u64, Ordering::Relaxed);
                class.demote(now, &self.spec.name, &self.counters);
                if !self.sleep(nap) {
                    return;
                }
                continue;
            }
            class.maybe_restore(now, &self.spec.name, &self.counters);
            // The mailbox waits in real time for the next timer, however far the hub's clock says
            // it is (on a virtual clock it is due as soon as the clock has moved past it).
            let clock = self.hub.clock();
            let next_timer = instance
                .state_mut()
                .timers
                .next_due()
                .map(|due| Instant::now() + due.saturating_duration_since(clock.moment()));
            let Some(batch) = self.slot.mailbox.take(self.spec.limits.max_batch, next_timer) else { return };
            let busy = super::priority::Stopwatch::start();
            let mut events: Vec<wit::Event> = batch.into_iter().map(b::event).collect();
            for id in instance.state_mut().timers.take_due(clock.moment()) {
                events.push(wit::Event::Timer(wit::TimerFired { id, ts: clock.now_ms() }));
            }
            if events.is_empty() {
                continue;
            }
            self.counters.events.fetch_add(events.len() as u64, Ordering::Relaxed);
            let deliveries = b::deliveries(events);
            let last = deliveries.len().saturating_sub(1);
            // Each call is judged by the CPU it used: the batch's clock for the first, a fresh
            // one for each after it (the thread's CPU clock is a system call: not read twice
            // before the first call, the one a tick's intent comes from).
            let mut base = busy;
            for (i, delivery) in deliveries.into_iter().enumerate() {
                self.counters.calls.fetch_add(1, Ordering::Relaxed);
                let call = Instant::now();
                instance.set_background(class.hook());
                instance.judge_cpu_from(&base);
                let result = instance.deliver(&delivery);
                class.settle();
                self.counters.call_seconds.observe(call.elapsed().as_secs_f64());
                if let Err(fault) = result {
                    match self.recover(fault) {
                        Some(fresh) => instance = fresh,
                        None => return,
                    }
                    // The rest of this batch goes to the fresh instance.
                }
                if i < last {
                    base = super::priority::Stopwatch::start();
                }
            }
            // The CPU the thread used, not the time it took: waiting for a core is not spending.
            let used = busy.cpu();
            self.counters.cpu_us.fetch_add(used.as_micros() as u64, Ordering::Relaxed);
            cpu.charge(used, Instant::now());
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
            self.hub.record(&self.spec.name, Activity::Fault { fault: fault.to_string(), failures });
            if policy.cancel_orders {
                self.hub.cancel_all_for_host(self.slot.id, None);
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

/// How long a plugin in the background class must stay within its CPU share before it leaves.
const BACKGROUND_FOR: Duration = Duration::from_secs(10);

/// The scheduling class of a plugin's guest code (see [`super::priority`]): a plugin over its
/// CPU share runs it in the background class, and leaves after [`BACKGROUND_FOR`] within its
/// share. Only where the process may move a thread back to the normal class.
struct Class {
    /// When it was last throttled, while in the background.
    background_since: Option<Instant>,
    /// The thread's nice value in the normal class.
    nice: i32,
}

impl Default for Class {
    fn default() -> Self {
        Self { background_since: None, nice: super::priority::nice() }
    }
}

impl Class {
    /// Called at each throttle: the first moves the plugin's guest code to the background,
    /// the next keep it there.
    fn demote(&mut self, now: Instant, plugin: &str, counters: &Counters) {
        if let Some(since) = self.background_since.as_mut() {
            *since = now;
            return;
        }
        if !super::priority::can_leave() {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::info!(
                    "a plugin over its CPU share only waits: the background scheduling class, which keeps it from delaying its neighbours, needs CAP_SYS_NICE or RLIMIT_NICE >= 20 (systemd LimitNICE=20) to be used safely"
                )
            });
            return;
        }
        self.background_since = Some(now);
        counters.background.store(true, Ordering::Relaxed);
        tracing::info!(%plugin, "over its CPU share: its code runs in the background scheduling class");
    }

    /// Called before each batch: after [`BACKGROUND_FOR`] without a throttle, back to normal.
    fn maybe_restore(&mut self, now: Instant, plugin: &str, counters: &Counters) {
        let Some(since) = self.background_since else { return };
        if now.saturating_duration_since(since) >= BACKGROUND_FOR {
            self.background_since = None;
            counters.background.store(false, Ordering::Relaxed);
            tracing::info!(%plugin, "back within its CPU share: its code runs in the normal class again");
        }
    }

    /// What the instance's call hook needs: `Some(nice)` while in the background.
    fn hook(&self) -> Option<i32> {
        self.background_since.map(|_| self.nice)
    }

    /// Makes sure the thread is in the normal class (a trap may leave a call without the hook
    /// seeing it return).
    fn settle(&self) {
        if self.background_since.is_some() && super::priority::in_background() {
            let _ = super::priority::to_normal(self.nice);
        }
    }
}
