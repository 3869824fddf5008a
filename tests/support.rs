//! Shared helpers for the end-to-end tests: plugin files, a host on the simulated venue, and
//! driving the simulated market step by step until a condition holds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradebox::engine::{Grants, RiskLimits};
use tradebox::host::{Host, PluginReport};
use tradebox::plugin::{FailurePolicy, Limits, Mode, PluginSpec, Runtime};
use tradebox::venue::sim::{SimConfig, SimVenue};

/// The directory holding the built plugin components.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

/// The bytes of a built plugin. Panics with the fix when the plugins were not built: a missing
/// plugin must fail the test, never skip it.
pub fn plugin(name: &str) -> Vec<u8> {
    let path = plugin_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Build the plugins first: `cargo xtask plugins` (or run the tests with `cargo xtask test`)",
            path.display()
        )
    })
}

/// A plugin spec with test-friendly defaults: quick restarts, a modest memory cap.
pub fn spec(name: &str, file: &str, config: &str, instruments: &[&str]) -> PluginSpec {
    PluginSpec {
        name: name.to_string(),
        wasm: plugin(file),
        config: config.to_string(),
        grants: Grants { instruments: instruments.iter().map(|s| s.to_string()).collect(), order_kinds: vec![] },
        risk: RiskLimits::default(),
        limits: Limits { memory_mib: 32, deadline_ms: 50, ..Limits::default() },
        failure: FailurePolicy { max_failures: 2, backoff_ms: 5, backoff_max_ms: 20, cancel_orders: true },
    }
}

/// The compiled-component cache shared by the tests (safe for concurrent use).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-component-cache")
}

/// A host on a seeded simulated venue whose market moves only when the test steps it.
pub struct TestHost {
    /// The host.
    pub host: Host,
    /// The venue.
    pub venue: Arc<SimVenue>,
}

impl TestHost {
    /// A host in `mode` on the demo market with a fixed seed.
    pub async fn new(mode: Mode) -> Self {
        Self::with_cache(mode, Some(cache_dir())).await
    }

    /// Same, with a chosen cache directory.
    pub async fn with_cache(mode: Mode, cache: Option<PathBuf>) -> Self {
        let mut sim = SimConfig::demo();
        sim.seed = 42;
        let venue = SimVenue::new(sim).expect("demo sim config is valid");
        let runtime = Runtime::new(mode, cache).expect("wasm runtime");
        let host = Host::start(venue.clone(), runtime).await.expect("host starts");
        Self { host, venue }
    }

    /// A plugin's line on the status board.
    pub fn report(&self, name: &str) -> PluginReport {
        self.host.report().into_iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no plugin {name}"))
    }

    /// Steps the market until `done` holds, yielding between steps so the router and the
    /// plugins can work. Panics after `timeout` with `what`.
    pub async fn drive_until(&self, what: &str, timeout: Duration, mut done: impl FnMut(&Self) -> bool) {
        let start = Instant::now();
        loop {
            if done(self) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for: {what}\nboard:\n{}",
                tradebox::demo::board(&self.host, false)
            );
            self.venue.step();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Loads a plugin off the async executor (compiling blocks).
    pub async fn load(&self, spec: PluginSpec) -> Result<(), tradebox::plugin::StartError> {
        tokio::task::block_in_place(|| self.host.load(spec))
    }
}
