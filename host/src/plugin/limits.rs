//! Per-plugin resource limits and failure policy, with safe defaults.

use serde::Deserialize;
use std::time::Duration;

/// How much a plugin may use per instance and per call.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory cap per instance, MiB.
    pub memory_mib: u64,
    /// Wall-clock budget of one call (live mode), ms. Enforced by epoch interruption.
    pub deadline_ms: u64,
    /// Fuel per call in deterministic mode (about one unit per wasm instruction).
    pub fuel: u64,
    /// Most events handed to the plugin in one call.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { memory_mib: 64, deadline_ms: 100, fuel: 2_000_000_000, max_batch: 512 }
    }
}

impl Limits {
    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
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

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = FailurePolicy { backoff_ms: 100, backoff_max_ms: 350, ..Default::default() };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
        assert_eq!(p.backoff(60), Duration::from_millis(350));
    }
}
