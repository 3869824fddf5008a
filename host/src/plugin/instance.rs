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
    /// A call used more CPU than its deadline (or ran [`WALL_FACTOR`] times as long).
    #[error("exceeded its CPU deadline of {0} ms")]
    Deadline(u64),
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
}

impl Instance {
    /// Instantiates `compiled` with fresh state (does not call `init`).
    pub fn new(compiled: &Compiled, mut state: PluginState, limits: Limits, mode: Mode) -> Result<Self, Fault> {
        state.limiter = Limiter::new(&limits);
        let mut store = Store::new(compiled.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        match mode {
            // The epoch ticks in wall time; a call is judged by the CPU its thread used.
            Mode::Live => store.epoch_deadline_callback(|ctx| {
                let call = ctx.data().call;
                let cpu = call.cpu.zip(super::priority::thread_cpu()).map(|(at, now)| now.saturating_sub(at));
                Ok(verdict(cpu, call.wall.elapsed(), call.deadline))
            }),
            Mode::Deterministic => store.epoch_deadline_trap(),
        }
        // Instantiation can run guest code too (start functions): arm the limits first.
        arm(&mut store, &limits, mode);
        let bindings = compiled.pre.instantiate(&mut store).map_err(|e| classify(e, &store, &limits, mode))?;
        Ok(Self { store, bindings, limits, mode })
    }

    fn arm(&mut self) {
        arm(&mut self.store, &self.limits, self.mode);
    }

    fn fault(&self, e: wasmtime::Error) -> Fault {
        classify(e, &self.store, &self.limits, self.mode)
    }

    /// Calls `init(config)`.
    pub fn init(&mut self, config: &str) -> Result<(), Fault> {
        self.arm();
        match self.bindings.call_init(&mut self.store, config) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Fault::Refused(plugin_text(message))),
            Err(e) => Err(self.fault(e)),
        }
    }

    /// Delivers a batch of events.
    pub fn on_events(&mut self, events: &[wit::Event]) -> Result<(), Fault> {
        self.arm();
        self.bindings.call_on_events(&mut self.store, events).map_err(|e| self.fault(e))
    }

    /// Delivers a run of tickers in column form.
    pub fn on_tickers(&mut self, tickers: &wit::TickerColumns) -> Result<(), Fault> {
        self.arm();
        self.bindings.call_on_tickers(&mut self.store, tickers).map_err(|e| self.fault(e))
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
        self.arm();
        self.bindings.call_snapshot(&mut self.store).map_err(|e| self.fault(e))
    }

    /// Hands over the previous instance's state.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), Fault> {
        self.arm();
        match self.bindings.call_restore(&mut self.store, state) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Fault::Refused(plugin_text(message))),
            Err(e) => Err(self.fault(e)),
        }
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

/// How many times its CPU deadline a call may last in wall time. The deadline counts the CPU
/// the plugin's thread used, so that a plugin waiting for a core (a busy machine, or its thread
/// in the background class for going over its share) is not failed for the wait; this bound
/// still hands the thread back, for a reload or an unload, from a call the machine starves.
pub const WALL_FACTOR: u32 = 20;

/// Where a call started, read by the epoch callback on the plugin's own thread.
#[derive(Debug, Clone, Copy)]
pub struct CallClock {
    /// The thread's CPU time at the start (`None`: no per-thread clock here; wall time rules).
    cpu: Option<Duration>,
    wall: Instant,
    deadline: Duration,
}

impl Default for CallClock {
    fn default() -> Self {
        Self { cpu: None, wall: Instant::now(), deadline: Duration::ZERO }
    }
}

/// What the epoch callback decides once a call has run `wall` (at least its deadline, in 1 ms
/// ticks) and used `cpu` of its thread: trap, or wait as many ticks as the CPU left could last
/// at the earliest.
fn verdict(cpu: Option<Duration>, wall: Duration, deadline: Duration) -> UpdateDeadline {
    let used = cpu.unwrap_or(wall);
    if used >= deadline || wall >= deadline * WALL_FACTOR {
        return UpdateDeadline::Interrupt;
    }
    let left = (deadline - used).as_millis().max(1);
    UpdateDeadline::Continue(u64::try_from(left).unwrap_or(u64::MAX))
}

fn arm(store: &mut Store<PluginState>, limits: &Limits, mode: Mode) {
    match mode {
        Mode::Live => {
            let deadline = Duration::from_millis(limits.deadline_ms.max(1));
            store.data_mut().call = CallClock { cpu: super::priority::thread_cpu(), wall: Instant::now(), deadline };
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

    fn traps(v: UpdateDeadline) -> bool {
        matches!(v, UpdateDeadline::Interrupt)
    }

    #[test]
    fn a_call_is_judged_by_the_cpu_it_used_not_the_time_it_waited() {
        // Ran its deadline of wall time but used a tenth of it: it waits for the rest.
        assert!(matches!(verdict(Some(ms(10)), ms(100), ms(100)), UpdateDeadline::Continue(90)));
        // Used its deadline of CPU: it traps, however little wall time that looked like.
        assert!(traps(verdict(Some(ms(100)), ms(100), ms(100))));
        // Starved past the wall bound: it traps even with CPU left.
        assert!(traps(verdict(Some(ms(1)), ms(100) * WALL_FACTOR, ms(100))));
        assert!(!traps(verdict(Some(ms(1)), ms(100) * WALL_FACTOR - ms(1), ms(100))));
        // Without a thread clock, wall time is the CPU time.
        assert!(traps(verdict(None, ms(100), ms(100))));
        // Never a wait of zero ticks (which would call back at once, forever).
        assert!(matches!(
            verdict(Some(ms(99) + Duration::from_micros(900)), ms(100), ms(100)),
            UpdateDeadline::Continue(1)
        ));
    }

    #[test]
    fn the_thread_clock_counts_work_and_not_sleep() {
        let Some(start) = super::super::priority::thread_cpu() else { return };
        std::thread::sleep(ms(30));
        let slept = super::super::priority::thread_cpu().map(|t| t.saturating_sub(start));
        // Sleeping costs (almost) no CPU: far below the 30 ms it took.
        assert!(slept.is_some_and(|d| d < ms(15)), "{slept:?}");
    }
}
