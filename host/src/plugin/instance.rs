//! One live instance of a plugin: a wasmtime `Store` and the component's exports, with CPU
//! and memory limits armed on every call and traps turned into a typed [`Fault`].

use super::bindings::{Delivery, Strategy, wit};
use super::host_api::PluginState;
use super::limits::{CapExceeded, Limiter, Limits};
use super::runtime::{Compiled, Mode};
use crate::logging::plugin_text;
use wasmtime::{Store, Trap};

/// Why an instance stopped serving. After any of these the instance is dead (wasmtime refuses
/// to enter a store that trapped) and must be dropped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    /// A call ran past its wall-clock deadline.
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
        store.epoch_deadline_trap();
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

fn arm(store: &mut Store<PluginState>, limits: &Limits, mode: Mode) {
    match mode {
        Mode::Live => store.set_epoch_deadline(limits.deadline_ms.max(1)),
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
