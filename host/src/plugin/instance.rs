//! One live instance of a plugin: a wasmtime `Store` and the component's exports, with CPU
//! and memory limits armed on every call and traps turned into a typed [`Fault`].

use super::bindings::{Delivery, Strategy, wit};
use super::host_api::PluginState;
use super::limits::{CapExceeded, Limiter, Limits};
use super::runtime::{Compiled, Mode};
use crate::logging::plugin_text;
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap, UpdateDeadline};

/// Why an instance stopped serving. After any of these the instance is dead (wasmtime refuses
/// to enter a store that trapped) and must be dropped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    /// A call used more CPU than its deadline.
    #[error("exceeded its CPU deadline of {0} ms")]
    Deadline(u64),
    /// A call ran past its wall bound ([`wall_bound`]) within its CPU deadline: the machine
    /// gave its thread no core (all busy, and it in the background class).
    #[error("starved of CPU: a call ran {wall_ms} ms without using its {deadline_ms} ms CPU deadline")]
    Starved {
        /// The wall bound, ms.
        wall_ms: u64,
        /// The CPU deadline, ms.
        deadline_ms: u64,
    },
    /// A call used up its fuel (deterministic mode).
    #[error("ran out of fuel ({0} units per call)")]
    OutOfFuel(u64),
    /// The instance asked for more memory than its cap.
    #[error("exceeded its memory cap of {0} MiB")]
    OutOfMemory(u64),
    /// Unbounded recursion.
    #[error("overflowed its stack")]
    StackOverflow,
    /// The guest panicked or aborted.
    #[error("panicked: {0}")]
    Panic(String),
    /// Any other trap.
    #[error("trapped: {0}")]
    Trap(String),
    /// Used more than its share of a core for longer than its limit.
    #[error("used more than its CPU share of {share_pct}% of a core for {seconds} s")]
    CpuShare {
        /// The share, percent of one core.
        share_pct: u32,
        /// How long it stayed over.
        seconds: u64,
    },
    /// `init` or `restore` returned an error.
    #[error("refused to start: {0}")]
    Refused(String),
    /// The component could not be instantiated.
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
}

/// A running instance.
pub struct Instance {
    store: Store<PluginState>,
    bindings: Strategy,
    limits: Limits,
    mode: Mode,
    /// The call hook that moves guest code to the background class is installed (the first
    /// time the plugin went over its CPU share): until then no crossing pays for it.
    hooked: bool,
}

impl Instance {
    /// Instantiates `compiled` with fresh state (does not call `init`).
    pub fn new(compiled: &Compiled, mut state: PluginState, limits: Limits, mode: Mode) -> Result<Self, Fault> {
        let limits = limits.fitted(compiled.language());
        state.limiter = Limiter::new(&limits);
        let mut store = Store::new(compiled.pre.engine(), state);
        // Handles a guest may hold at once (resources: WASI's pollables and streams): the host's
        // own bound, not wasmtime's default of the day. Python and JavaScript hold tens.
        store.set_max_component_handles(super::wasi::MAX_HANDLES);
        store.limiter(|s| &mut s.limiter);
        match mode {
            // The epoch ticks in wall time; a call is judged by the CPU its thread used.
            Mode::Live => store.epoch_deadline_callback(|mut ctx| {
                let call = &mut ctx.data_mut().call;
                Ok(match verdict(call.cpu_used(), call.wall.elapsed(), call.deadline) {
                    Verdict::Wait(ticks) => UpdateDeadline::Continue(ticks),
                    Verdict::OverCpu => UpdateDeadline::Interrupt,
                    Verdict::Starved => {
                        call.starved = true;
                        UpdateDeadline::Interrupt
                    }
                })
            }),
            Mode::Deterministic => store.epoch_deadline_trap(),
        }
        // Instantiation can run guest code too (start functions): arm the limits first.
        arm(&mut store, &limits, mode);
        let bindings = compiled.pre.instantiate(&mut store).map_err(|e| classify(e, &store, &limits, mode));
        store.data_mut().drain_output(true);
        let bindings = bindings?;
        Ok(Self { store, bindings, limits, mode, hooked: false })
    }

    /// Runs the guest code of the next calls in the background class at `nice` (`None`: the
    /// normal class). The call hook that does it is installed the first time it is needed: a
    /// hook costs every crossing between guest and host code, and most plugins never go over
    /// their share (a backtest never does).
    pub fn set_background(&mut self, nice: Option<i32>) {
        if nice.is_some() && !self.hooked {
            // Guest code only in the background class: host code (imports, and everything
            // outside a call) runs in the normal class, so that no lock is held by a thread the
            // machine may not run for a long time. Errors are ignored: the class is a
            // preference, and leaving it was checked to be allowed before it was used.
            self.store.call_hook(|ctx, hook| {
                if let Some(nice) = ctx.data().background {
                    crossing(nice, hook.entering_host());
                }
                Ok(())
            });
            self.hooked = true;
        }
        self.store.data_mut().background = nice;
    }

    fn arm(&mut self) {
        arm(&mut self.store, &self.limits, self.mode);
    }

    fn fault(&self, e: wasmtime::Error) -> Fault {
        classify(e, &self.store, &self.limits, self.mode)
    }

    /// After every call: what the guest printed goes to its log. A failed call flushes an
    /// unfinished last line too (a traceback's last words).
    fn done<T>(&mut self, result: Result<T, Fault>) -> Result<T, Fault> {
        self.store.data_mut().drain_output(result.is_err());
        result
    }

    /// Calls `init(config)`.
    pub fn init(&mut self, config: &str) -> Result<(), Fault> {
        self.control_call();
        self.arm();
        let result = match self.bindings.call_init(&mut self.store, config) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Fault::Refused(plugin_text(message))),
            Err(e) => Err(self.fault(e)),
        };
        self.done(result)
    }

    /// `init`, `snapshot` and `restore` (loads, reloads, restarts: rare) run in the normal
    /// class and are judged by the CPU they use from their own start.
    fn control_call(&mut self) {
        let state = self.store.data_mut();
        state.background = None;
        state.next_cpu_base = super::priority::Stopwatch::start().cpu_base();
    }

    /// Judges the next call's CPU deadline by the thread's CPU used since `watch` started (the
    /// supervisor's clock: its batch's for the first call, a fresh one for each after it); a
    /// delivery without it is judged by wall time.
    pub fn judge_cpu_from(&mut self, watch: &super::priority::Stopwatch) {
        self.store.data_mut().next_cpu_base = watch.cpu_base();
    }

    /// Delivers a batch of events.
    pub fn on_events(&mut self, events: &[wit::Event]) -> Result<(), Fault> {
        self.arm();
        let result = self.bindings.call_on_events(&mut self.store, events).map_err(|e| self.fault(e));
        self.done(result)
    }

    /// Delivers a run of tickers in column form.
    pub fn on_tickers(&mut self, tickers: &wit::TickerColumns) -> Result<(), Fault> {
        self.arm();
        let result = self.bindings.call_on_tickers(&mut self.store, tickers).map_err(|e| self.fault(e));
        self.done(result)
    }

    /// Delivers one call's worth of events in whichever shape it has.
    pub fn deliver(&mut self, delivery: &Delivery) -> Result<(), Fault> {
        match delivery {
            Delivery::Events(events) => self.on_events(events),
            Delivery::Tickers(columns) => self.on_tickers(columns),
        }
    }

    /// Asks for the state to hand over.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, Fault> {
        self.control_call();
        self.arm();
        let result = self.bindings.call_snapshot(&mut self.store).map_err(|e| self.fault(e));
        self.done(result)
    }

    /// Hands over the previous instance's state.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), Fault> {
        self.control_call();
        self.arm();
        let result = match self.bindings.call_restore(&mut self.store, state) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Fault::Refused(plugin_text(message))),
            Err(e) => Err(self.fault(e)),
        };
        self.done(result)
    }

    /// Bytes of linear memory and table elements the instance holds against its cap.
    pub fn memory_held(&self) -> usize {
        self.store.data().limiter.held()
    }

    /// The cap [`Instance::memory_held`] is held against, bytes.
    pub fn memory_cap(&self) -> usize {
        self.limits.memory_bytes()
    }

    /// The plugin's state in the store (timers, subscriptions).
    pub fn state(&self) -> &PluginState {
        self.store.data()
    }

    /// The plugin's state in the store (timers, counters).
    pub fn state_mut(&mut self) -> &mut PluginState {
        self.store.data_mut()
    }
}

/// The class change at a crossing between guest and host code of a plugin in the background:
/// host code (`entering_host`) in the normal class at `nice`, guest code in the background.
fn crossing(nice: i32, entering_host: bool) {
    let _ = if entering_host { super::priority::to_normal(nice) } else { super::priority::to_background() };
}

/// How many times its CPU deadline a call may last in wall time, up to [`MAX_WALL`]. The
/// deadline counts the CPU the plugin's thread used, so that a plugin waiting for a core (a
/// busy machine, or its thread in the background class for going over its share) is not failed
/// for the wait; this bound still hands the thread back, for a reload or an unload, from a call
/// the machine starves.
pub const WALL_FACTOR: u32 = 20;
/// The most wall time the bound above gives a call (a longer CPU deadline is its own bound).
pub const MAX_WALL: Duration = Duration::from_secs(10);

/// The wall time a call with `deadline` of CPU may take.
pub fn wall_bound(deadline: Duration) -> Duration {
    deadline.max((deadline * WALL_FACTOR).min(MAX_WALL))
}

/// Where the running call started, read by the epoch callback on the plugin's own thread.
#[derive(Debug, Clone, Copy)]
pub struct CallClock {
    /// The thread's CPU time at the start of the supervisor's batch (see
    /// [`Instance::judge_cpu_from`]); `None`: wall time is the CPU time.
    cpu_base: Option<Duration>,
    wall: Instant,
    deadline: Duration,
    /// The callback ended the call at its wall bound, not its CPU deadline.
    starved: bool,
}

impl Default for CallClock {
    fn default() -> Self {
        Self { cpu_base: None, wall: Instant::now(), deadline: Duration::ZERO, starved: false }
    }
}

impl CallClock {
    fn cpu_used(&self) -> Duration {
        match self.cpu_base.zip(super::priority::thread_cpu()) {
            Some((base, now)) => now.saturating_sub(base),
            None => self.wall.elapsed(),
        }
    }
}

/// What the epoch callback decides about a call that has run `wall` (at least its deadline,
/// counted in 1 ms ticks) and used `cpu` of its thread.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Not over yet: check again in this many ticks (as soon as the CPU left could be used).
    Wait(u64),
    /// Used its CPU deadline.
    OverCpu,
    /// Within its CPU deadline but past its wall bound: the machine gave it no core.
    Starved,
}

fn verdict(cpu: Duration, wall: Duration, deadline: Duration) -> Verdict {
    if cpu >= deadline {
        return Verdict::OverCpu;
    }
    if wall >= wall_bound(deadline) {
        return Verdict::Starved;
    }
    Verdict::Wait(u64::try_from((deadline - cpu).as_millis().max(1)).unwrap_or(u64::MAX))
}

fn arm(store: &mut Store<PluginState>, limits: &Limits, mode: Mode) {
    match mode {
        Mode::Live => {
            let deadline = Duration::from_millis(limits.deadline_ms.max(1));
            // The thread's CPU clock is a system call (about half a microsecond here): read
            // once a batch by the supervisor, not once a call.
            let cpu_base = store.data_mut().next_cpu_base.take();
            store.data_mut().call = CallClock { cpu_base, wall: Instant::now(), deadline, starved: false };
            store.set_epoch_deadline(limits.deadline_ms.max(1));
        }
        Mode::Deterministic => {
            // Fuel makes it deterministic; the epoch deadline stays as a generous backstop.
            store.set_epoch_deadline(limits.deadline_ms.max(1).saturating_mul(100));
            if let Err(e) = store.set_fuel(limits.fuel) {
                tracing::error!(error = %e, "fuel is not enabled on this engine");
            }
        }
    }
}

/// The fault a call's error stands for. Every text in it is the plugin's own (its panic
/// message, its function names in a trap's backtrace): made one escaped, capped line here,
/// before anything can log or show it.
fn classify(e: wasmtime::Error, store: &Store<PluginState>, limits: &Limits, mode: Mode) -> Fault {
    let text = format!("{e:#}");
    // The trap may sit under context (a memory fault, a backtrace): look through the chain.
    let trap = e.downcast_ref::<Trap>().copied().or_else(|| e.chain().find_map(|c| c.downcast_ref::<Trap>().copied()));
    let trap = trap.or_else(|| text.contains("out of bounds memory access").then_some(Trap::MemoryOutOfBounds));
    if e.chain().any(|c| c.downcast_ref::<CapExceeded>().is_some()) {
        return Fault::OutOfMemory(limits.memory_mib);
    }
    match trap.as_ref() {
        Some(Trap::Interrupt) if store.data().call.starved => Fault::Starved {
            wall_ms: u64::try_from(wall_bound(store.data().call.deadline).as_millis()).unwrap_or(u64::MAX),
            deadline_ms: limits.deadline_ms,
        },
        Some(Trap::Interrupt) => {
            Fault::Deadline(if mode == Mode::Live { limits.deadline_ms } else { limits.deadline_ms * 100 })
        }
        Some(Trap::OutOfFuel) => Fault::OutOfFuel(limits.fuel),
        Some(Trap::StackOverflow) => Fault::StackOverflow,
        Some(Trap::UnreachableCodeReached) => Fault::Panic(
            store.data().last_error.clone().map(plugin_text).unwrap_or_else(|| "wasm `unreachable` (abort)".into()),
        ),
        _ if text.contains("growing memory") || text.contains("memory minimum size") => {
            Fault::OutOfMemory(limits.memory_mib)
        }
        Some(Trap::MemoryOutOfBounds) => {
            tracing::debug!(trap = %plugin_text(text), "plugin trap detail");
            Fault::Trap("out-of-bounds memory access (often a stack overflow in linear memory)".into())
        }
        Some(trap) => {
            tracing::debug!(trap = %plugin_text(text), "plugin trap detail");
            Fault::Trap(trap.to_string())
        }
        None if text.contains("instantiat") => Fault::Instantiate(plugin_text(text)),
        None => Fault::Trap(plugin_text(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_call_is_judged_by_the_cpu_it_used_not_the_time_it_waited() {
        // Ran its deadline of wall time but used a tenth of it: it waits for the rest.
        assert_eq!(verdict(ms(10), ms(100), ms(100)), Verdict::Wait(90));
        // Used its deadline of CPU: it traps, however little wall time that looked like.
        assert_eq!(verdict(ms(100), ms(100), ms(100)), Verdict::OverCpu);
        // Starved past the wall bound: it ends, with CPU left, and says why.
        assert_eq!(verdict(ms(1), ms(100) * WALL_FACTOR, ms(100)), Verdict::Starved);
        assert_eq!(verdict(ms(1), ms(100) * WALL_FACTOR - ms(1), ms(100)), Verdict::Wait(99));
        // The wall bound is capped, but never below the deadline itself.
        assert_eq!(wall_bound(ms(5_000)), MAX_WALL);
        assert_eq!(wall_bound(ms(30_000)), ms(30_000));
        // Never a wait of zero ticks (which would call back at once, forever).
        assert_eq!(verdict(ms(99) + Duration::from_micros(900), ms(100), ms(100)), Verdict::Wait(1));
    }

    #[test]
    fn the_thread_clock_counts_work_and_not_sleep() {
        use super::super::priority::{Stopwatch, thread_cpu};
        if thread_cpu().is_none() {
            return;
        }
        let watch = Stopwatch::start();
        std::thread::sleep(ms(30));
        // Sleeping costs (almost) no CPU: far below the 30 ms it took.
        assert!(watch.cpu() < ms(15), "{:?} of CPU for a 30 ms sleep", watch.cpu());
        // Work counts: spin until the clock shows 5 ms of it (a clock that never moves would
        // spin on to the wall limit and fail).
        let watch = Stopwatch::start();
        let mut x = 0u64;
        while watch.cpu() < ms(5) && watch.wall() < Duration::from_secs(60) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(watch.cpu() >= ms(5), "the thread clock did not move in {:?}", watch.wall());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn host_code_runs_in_the_normal_class_and_guest_code_in_the_background() {
        use super::super::priority::{can_leave, in_background, nice};
        if !can_leave() {
            return;
        }
        std::thread::spawn(|| {
            let normal = nice();
            crossing(normal, false);
            assert!(in_background(), "guest code runs in the background class");
            crossing(normal, true);
            assert!(!in_background(), "host code runs in the normal class");
            assert_eq!(nice(), normal);
        })
        .join()
        .expect("thread");
    }
}
