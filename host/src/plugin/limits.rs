//! Per-plugin resource limits and failure policy, with safe defaults.

use serde::Deserialize;
use std::time::Duration;
use wasmtime::ResourceLimiter;

/// How much a plugin may use per instance and per call.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Memory cap per instance, MiB: linear memory and table elements together (see [`Limiter`]).
    /// 0 (the default): the plugin's language's ([`Limits::fitted`]).
    pub memory_mib: u64,
    /// CPU budget of one call (live mode), ms: the CPU time of the plugin's thread, checked at
    /// epoch interruptions; a call also ends at [`super::instance::WALL_FACTOR`] times this in
    /// wall time.
    pub deadline_ms: u64,
    /// Fuel per call in deterministic mode (about one unit per wasm instruction).
    pub fuel: u64,
    /// Most events handed to the plugin in one call.
    pub max_batch: usize,
    /// The share of one core the plugin may use over time (its calls, and the host's work of
    /// preparing them), e.g. 0.25 for a quarter; 0: no share (only the per-call deadline).
    /// Past it the plugin waits: its market data is conflated and its timers fire late.
    pub cpu_share: f64,
    /// Seconds a plugin may stay over its share (throttled at least every 1.5 s) before the
    /// failure policy applies to it.
    pub cpu_throttle_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 0,
            deadline_ms: 100,
            fuel: 2_000_000_000,
            max_batch: 512,
            cpu_share: 0.25,
            cpu_throttle_s: 30,
        }
    }
}

/// A plugin's CPU share as a balance of CPU time: it fills at `share` seconds a second up to
/// one second's worth, and every batch the plugin's thread works on is charged the CPU time the
/// thread used on it (wall time where there is no per-thread clock).
/// Below zero the plugin waits until the balance is back.
#[derive(Debug)]
pub struct CpuShare {
    share: f64,
    balance: f64,
    at: std::time::Instant,
    streak: Option<(std::time::Instant, std::time::Instant)>,
    limit: Duration,
}

/// Throttles further apart than this end a streak of throttling.
const STREAK_GAP: Duration = Duration::from_millis(1_500);

impl CpuShare {
    /// The share of `limits`, starting full.
    pub fn new(limits: &Limits) -> Self {
        let share = limits.cpu_share.max(0.0);
        Self {
            share,
            balance: share,
            at: std::time::Instant::now(),
            streak: None,
            limit: Duration::from_secs(limits.cpu_throttle_s),
        }
    }

    fn refill(&mut self, now: std::time::Instant) {
        self.balance =
            (self.balance + now.saturating_duration_since(self.at).as_secs_f64() * self.share).min(self.share);
        self.at = now;
    }

    /// Charges `spent` of the plugin's thread.
    pub fn charge(&mut self, spent: Duration, now: std::time::Instant) {
        if self.share > 0.0 {
            self.refill(now);
            self.balance -= spent.as_secs_f64();
        }
    }

    /// How long the plugin must wait before its next batch (`None`: it may go now).
    pub fn wait(&mut self, now: std::time::Instant) -> Option<Duration> {
        if self.share <= 0.0 {
            return None;
        }
        self.refill(now);
        if self.balance >= 0.0 {
            return None;
        }
        self.streak = match self.streak {
            Some((start, last)) if now.saturating_duration_since(last) <= STREAK_GAP => Some((start, now)),
            _ => Some((now, now)),
        };
        Some(Duration::from_secs_f64(-self.balance / self.share))
    }

    /// True when the plugin has been throttled without a break for longer than its limit.
    pub fn over_limit(&self, now: std::time::Instant) -> bool {
        self.streak.is_some_and(|(start, last)| {
            now.saturating_duration_since(last) <= STREAK_GAP && last.saturating_duration_since(start) >= self.limit
        })
    }
}

impl Limits {
    /// Refuses settings that would make a limit meaningless.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.cpu_share.is_finite() && (0.0..=64.0).contains(&self.cpu_share)) {
            return Err(format!("cpu_share = {} must be a share of one core between 0 and 64", self.cpu_share));
        }
        if self.cpu_share > 0.0 && self.cpu_throttle_s == 0 {
            return Err("cpu_throttle_s must be at least 1 while a cpu_share is set".into());
        }
        Ok(())
    }

    /// These limits for a plugin written in `language`: a memory cap left at 0 becomes the
    /// language's. An interpreter carries its heap and its standard library into the
    /// instance: a Python `sma-cross` holds 12.6 MB after `init`, a JavaScript one 9.2 MB, a
    /// Rust one 1.1 MB (BENCHMARKS.md); the caps leave an interpreter's heap about ten times
    /// that to grow in before it collects. Per-call deadlines and fuel fit every
    /// language as they are (an event costs microseconds in each; see BENCHMARKS.md).
    pub fn fitted(mut self, language: tradebox_manifest::Language) -> Self {
        if self.memory_mib == 0 {
            self.memory_mib = match language {
                tradebox_manifest::Language::Rust => 64,
                tradebox_manifest::Language::Python => 128,
                tradebox_manifest::Language::JavaScript => 256,
            };
        }
        self
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

/// Bytes one table element is charged: wasmtime keeps a pointer-sized slot (plus lazy-init
/// state) per funcref; charging 16 keeps the count honest for every element type it has.
pub const TABLE_ELEMENT_BYTES: usize = 16;
/// Linear memories one instance may have. Every toolchain this host serves (Rust through
/// wit-component, componentize-py, componentize-js) links its guest into one memory; a second
/// one only multiplies what the cap has to cover.
pub const MAX_MEMORIES: usize = 1;
/// Tables one instance may have: the guest's own and the few that wit-component's shims add.
pub const MAX_TABLES: usize = 16;
/// Core instances one component may create (the guest, its shims and adapters).
pub const MAX_INSTANCES: usize = 32;

/// The memory cap of one instance as a whole: linear memory and table elements count against
/// one budget, checked by wasmtime before it allocates anything for the guest (on creation and
/// on every `memory.grow`/`table.grow`, which run in host code outside any CPU deadline). A
/// refusal is a trap carrying [`CapExceeded`], so the instance dies with "exceeded its memory
/// cap" and the host keeps its memory.
#[derive(Debug)]
pub struct Limiter {
    cap: usize,
    memory: usize,
    table_elements: usize,
    /// What the last permitted growth added, taken back if wasmtime then fails it (past the
    /// memory's or table's own maximum).
    pending: (usize, usize),
}

/// What the limiter refused: the instance asked for more than its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the instance would hold {wanted} bytes of memory and tables, above its cap of {cap} bytes")]
pub struct CapExceeded {
    /// The cap, bytes.
    pub cap: usize,
    /// What it would have held, bytes.
    pub wanted: usize,
}

impl Limiter {
    /// A limiter for an instance capped at `limits.memory_bytes()`.
    pub fn new(limits: &Limits) -> Self {
        Self { cap: limits.memory_bytes(), memory: 0, table_elements: 0, pending: (0, 0) }
    }

    /// Bytes held now: linear memory plus table elements.
    pub fn held(&self) -> usize {
        self.memory.saturating_add(self.table_elements.saturating_mul(TABLE_ELEMENT_BYTES))
    }

    fn admit(&self, wanted: usize) -> wasmtime::Result<bool> {
        if wanted > self.cap {
            return Err(CapExceeded { cap: self.cap, wanted }.into());
        }
        Ok(true)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Memories are never freed while the store lives, so a running total is exact.
        let grown = self.memory.saturating_add(desired.saturating_sub(current));
        self.admit(grown.saturating_add(self.table_elements.saturating_mul(TABLE_ELEMENT_BYTES)))?;
        self.pending.0 = grown - self.memory;
        self.memory = grown;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory -= std::mem::take(&mut self.pending.0);
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let elements = self.table_elements.saturating_add(desired.saturating_sub(current));
        self.admit(self.memory.saturating_add(elements.saturating_mul(TABLE_ELEMENT_BYTES)))?;
        self.pending.1 = elements - self.table_elements;
        self.table_elements = elements;
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.table_elements -= std::mem::take(&mut self.pending.1);
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// What the host does when a plugin instance dies (trap, deadline, out of memory...).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FailurePolicy {
    /// Failures tolerated before the plugin is disabled (restarts = failures until then).
    pub max_failures: u32,
    /// First restart delay, ms; doubles per failure.
    pub backoff_ms: u64,
    /// Longest restart delay, ms.
    pub backoff_max_ms: u64,
    /// Cancel the plugin's open orders when an instance dies.
    pub cancel_orders: bool,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        Self { max_failures: 5, backoff_ms: 250, backoff_max_ms: 30_000, cancel_orders: true }
    }
}

impl FailurePolicy {
    /// Delay before restart number `failures` (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u64 << failures.saturating_sub(1).min(20);
        Duration::from_millis(self.backoff_ms.saturating_mul(factor).min(self.backoff_max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::{Component, Linker};
    use wasmtime::{Config, Engine, Store};

    /// A component whose guest grows its memory and its table by `n` per call, as a hostile
    /// plugin would (a little per call, so no CPU deadline fires).
    const GROWER: &str = r#"(component
        (core module $m
            (memory 1)
            (table $t 1 funcref)
            (func (export "grow-mem") (param i32) (result i32) (memory.grow (local.get 0)))
            (func (export "grow-table") (param i32) (result i32) (table.grow $t (ref.null func) (local.get 0))))
        (core instance $i (instantiate $m))
        (func (export "grow-mem") (param "n" u32) (result s32) (canon lift (core func $i "grow-mem")))
        (func (export "grow-table") (param "n" u32) (result s32) (canon lift (core func $i "grow-table"))))"#;

    fn store(mib: u64) -> (Engine, Store<Limiter>) {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).expect("engine");
        let mut store = Store::new(&engine, Limiter::new(&Limits { memory_mib: mib, ..Limits::default() }));
        store.limiter(|l| l);
        (engine, store)
    }

    fn instantiate(
        engine: &Engine,
        store: &mut Store<Limiter>,
        wat: &str,
    ) -> wasmtime::Result<wasmtime::component::Instance> {
        let component = Component::new(engine, wat::parse_str(wat)?)?;
        Linker::new(engine).instantiate(store, &component)
    }

    /// Grows by `step` per call until the guest is refused; returns the error.
    fn grow_until_refused(
        store: &mut Store<Limiter>,
        instance: &wasmtime::component::Instance,
        export: &str,
        step: u32,
    ) -> wasmtime::Error {
        let grow = instance.get_typed_func::<(u32,), (i32,)>(&mut *store, export).expect("export");
        for _ in 0..1_000_000 {
            match grow.call(&mut *store, (step,)) {
                Ok(_) => {}
                Err(e) => return e,
            }
        }
        panic!("{export} was never refused");
    }

    #[test]
    fn tables_count_against_the_memory_cap() {
        let (engine, mut store) = store(1);
        let instance = instantiate(&engine, &mut store, GROWER).expect("instantiates");
        // 1,000 funcrefs per call: small steps, as the attack that held 764 MiB took.
        let e = grow_until_refused(&mut store, &instance, "grow-table", 1_000);
        let refused = e.chain().find_map(|c| c.downcast_ref::<CapExceeded>()).expect("refused by the cap");
        assert_eq!(refused.cap, 1 << 20);
        assert!(store.data().held() <= 1 << 20, "held {}", store.data().held());
        assert!(store.data().table_elements > 60_000 / TABLE_ELEMENT_BYTES, "the table could grow up to the cap first");
    }

    #[test]
    fn memory_and_tables_share_one_budget() {
        let (engine, mut store) = store(2);
        let instance = instantiate(&engine, &mut store, GROWER).expect("instantiates");
        // Half the cap in table elements, then memory page by page: memory stops at the rest.
        let tables = instance.get_typed_func::<(u32,), (i32,)>(&mut store, "grow-table").expect("export");
        tables.call(&mut store, ((1 << 20) / TABLE_ELEMENT_BYTES as u32,)).expect("half the cap");
        let e = grow_until_refused(&mut store, &instance, "grow-mem", 1);
        assert!(e.chain().any(|c| c.downcast_ref::<CapExceeded>().is_some()), "{e:#}");
        let held = store.data().held();
        assert!(held <= 2 << 20 && store.data().memory <= 1 << 20, "held {held}, memory {}", store.data().memory);
    }

    #[test]
    fn one_memory_per_instance() {
        let (engine, mut store) = store(64);
        // Two core instances of a module with its own memory: 2 x the cap if each were capped alone.
        let two = r#"(component
            (core module $m (memory 1))
            (core instance $a (instantiate $m))
            (core instance $b (instantiate $m)))"#;
        let e = instantiate(&engine, &mut store, two).expect_err("a second memory is refused");
        assert!(format!("{e:#}").contains("memory"), "{e:#}");
    }

    #[test]
    fn a_cpu_share_throttles_then_reports_a_sustained_overrun() {
        let limits = Limits { cpu_share: 0.25, cpu_throttle_s: 2, ..Limits::default() };
        let mut cpu = CpuShare::new(&limits);
        let t = cpu.at;
        assert_eq!(cpu.wait(t), None, "starts with a quarter second in hand");
        cpu.charge(Duration::from_millis(350), t);
        // 100 ms over at a quarter of a core: 400 ms to wait.
        assert_eq!(cpu.wait(t), Some(Duration::from_millis(400)));
        // A plugin that takes 200 ms of work as soon as it may (800 ms later each time).
        let mut now = t + Duration::from_millis(400);
        assert_eq!(cpu.wait(now), None);
        cpu.charge(Duration::from_millis(200), now);
        for _ in 0..4 {
            now += Duration::from_millis(800);
            assert_eq!(cpu.wait(now), None);
            cpu.charge(Duration::from_millis(200), now);
            assert!(cpu.wait(now).is_some());
        }
        assert!(cpu.over_limit(now), "throttled for 3.2 s without a break");
        // A burst now and then is throttled but never reported.
        let mut calm = CpuShare::new(&limits);
        let t = calm.at;
        calm.charge(Duration::from_millis(300), t);
        assert!(calm.wait(t).is_some());
        let later = t + Duration::from_secs(5);
        calm.charge(Duration::from_millis(300), later);
        assert!(calm.wait(later).is_some() && !calm.over_limit(later));
        // Off.
        let mut off = CpuShare::new(&Limits { cpu_share: 0.0, ..Limits::default() });
        off.charge(Duration::from_secs(10), t);
        assert_eq!(off.wait(t), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = FailurePolicy { backoff_ms: 100, backoff_max_ms: 350, ..Default::default() };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
        assert_eq!(p.backoff(60), Duration::from_millis(350));
    }
}
