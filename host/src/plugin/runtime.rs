//! The wasmtime side: one engine per host, an epoch ticker, the compiled-component cache, and
//! the check that a component imports nothing beyond the contract.

use super::bindings::StrategyPre;
use super::host_api::PluginState;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tradebox_manifest::Manifest;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

/// The WIT package every plugin must be built against.
pub const WIT_PACKAGE: &str = "tradebox:strategy";
/// The contract version this host serves (semver: any 0.1.x plugin).
pub const WIT_VERSION: &str = "0.1.0";
/// Interfaces of the package a plugin may import.
const INTERFACES: &[&str] = &["types", "orders", "views", "feeds", "timers", "host"];

/// How CPU is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Wall-clock deadline per call (epoch interruption).
    #[default]
    Live,
    /// Fuel per call: the same input stops at the same instruction every run (backtests).
    Deterministic,
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a valid component (or a core module).
    #[error("not a valid wasm component: {0}")]
    Invalid(String),
    /// Imports something outside the contract.
    #[error(
        "plugin imports {0}, which the tradebox:strategy contract does not provide; plugins get no \
         ambient authority (no files, network, environment or clocks). Build it for \
         wasm32-unknown-unknown with tradebox-sdk"
    )]
    ForbiddenImports(String),
    /// Built for a contract version this host does not serve.
    #[error("plugin was built for {found}; this host serves {WIT_PACKAGE}@0.1.x ({WIT_VERSION})")]
    Version {
        /// What the plugin imports.
        found: String,
    },
    /// Exports do not match the contract.
    #[error("plugin does not match the tradebox:strategy world: {0}")]
    Link(String),
    /// The manifest section is there but unreadable.
    #[error("{0}")]
    Manifest(String),
}

/// The shared wasmtime engine and everything compiled with it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    mode: Mode,
    cache_dir: Option<PathBuf>,
    engine_key: String,
    ticking: Arc<AtomicBool>,
}

/// A compiled, checked plugin, ready to instantiate many times.
#[derive(Clone)]
pub struct Compiled {
    /// Pre-linked instance template.
    pub pre: StrategyPre<PluginState>,
    /// sha256 of the component bytes, hex.
    pub hash: String,
    /// True when it came from the on-disk cache.
    pub from_cache: bool,
    /// The contract version it was built against, e.g. `tradebox:strategy@0.1.0`.
    pub contract: String,
    /// What it says about itself; `None` when it carries no manifest.
    pub manifest: Option<Arc<Manifest>>,
}

impl Runtime {
    /// An engine for `mode`, caching compiled components in `cache_dir` (none: no cache).
    pub fn new(mode: Mode, cache_dir: Option<PathBuf>) -> anyhow::Result<Arc<Self>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(mode == Mode::Deterministic);
        // Room for deep but legitimate recursion; beyond it a plugin traps with a stack overflow.
        config.max_wasm_stack(1 << 20);
        // `perf` can name plugin functions when asked (profiling a strategy; see BENCHMARKS.md).
        if std::env::var_os("TRADEBOX_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        super::bindings::Strategy::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let engine_key = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            format!("{:016x}", h.finish())
        };
        let ticking = Arc::new(AtomicBool::new(true));
        {
            // One ticker for all plugins: a call's deadline is a number of 1 ms ticks.
            let engine = engine.clone();
            let ticking = ticking.clone();
            std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
                while ticking.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    engine.increment_epoch();
                }
            })?;
        }
        Ok(Arc::new(Self { engine, linker, mode, cache_dir, engine_key, ticking }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// CPU mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Compiles (or loads from cache), checks imports, and pre-links a component.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, LoadError> {
        let hash = hex::encode(Sha256::digest(bytes));
        let manifest = read_manifest(bytes)?.map(Arc::new);
        let (component, from_cache) = self.component(bytes, &hash)?;
        let contract = check_imports(&self.engine, &component)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = StrategyPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        Ok(Compiled { pre, hash, from_cache, contract, manifest })
    }

    fn cache_path(&self, hash: &str) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|d| d.join(format!("{hash}-{}.cwasm", self.engine_key)))
    }

    fn component(&self, bytes: &[u8], hash: &str) -> Result<(Component, bool), LoadError> {
        if let Some(path) = self.cache_path(hash)
            && path.exists()
        {
            match deserialize(&self.engine, &path) {
                Ok(c) => return Ok((c, true)),
                // A stale or damaged entry: compile again and overwrite it.
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cache entry"),
            }
        }
        if wasmparser_is_core_module(bytes) {
            return Err(LoadError::Invalid(
                "this is a core wasm module, not a component; turn it into a component (cargo xtask plugins does)"
                    .into(),
            ));
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        if let Some(path) = self.cache_path(hash)
            && let Err(e) = write_cache(&path, &component)
        {
            // The cache only saves time: a failure to write it must not fail the load.
            tracing::warn!(path = %path.display(), error = %e, "could not cache the compiled component");
        }
        Ok((component, false))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

/// The component's manifest, refused when it is malformed or written for another contract
/// series than the one this host serves.
pub fn read_manifest(bytes: &[u8]) -> Result<Option<Manifest>, LoadError> {
    let section = tradebox_package::sections::find_section(bytes, tradebox_manifest::SECTION)
        .map_err(|e| LoadError::Invalid(e.to_string()))?;
    let Some(section) = section else { return Ok(None) };
    let manifest = Manifest::from_json(section).map_err(|e| LoadError::Manifest(e.to_string()))?;
    if manifest.contract_series() != tradebox_manifest::contract_series(WIT_VERSION) {
        return Err(LoadError::Version { found: manifest.contract });
    }
    Ok(Some(manifest))
}

/// Core modules start with version 1 after the magic; components use a different layer byte.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the file was written by `write_cache` from `Component::serialize` of an engine
    // with the same compatibility hash (it is part of the file name), into a directory the
    // host owns. wasmtime still checks the header and version before using it.
    Ok(unsafe { Component::deserialize_file(engine, path) }?)
}

fn write_cache(path: &Path, component: &Component) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = component.serialize()?;
    // Write then rename, so a concurrent reader never sees half a file; the temporary name is
    // unique per process and call, so concurrent writers of the same entry do not collide.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Refuses any import outside `tradebox:strategy@0.1.x`, naming each one; returns the
/// contract version the component imports (`tradebox:strategy@0.1.0`).
pub fn check_imports(engine: &Engine, component: &Component) -> Result<String, LoadError> {
    let mut foreign = Vec::new();
    let mut contract = format!("{WIT_PACKAGE}@{WIT_VERSION}");
    for (name, _) in component.component_type().imports(engine) {
        let (path, version) = name.split_once('@').unwrap_or((name, ""));
        let Some(interface) = path.strip_prefix(WIT_PACKAGE).and_then(|r| r.strip_prefix('/')) else {
            foreign.push(format!("`{name}`"));
            continue;
        };
        if !version.starts_with("0.1.") {
            return Err(LoadError::Version { found: format!("{WIT_PACKAGE}@{version}") });
        }
        if !INTERFACES.contains(&interface) {
            foreign.push(format!("`{name}`"));
        }
        contract = format!("{WIT_PACKAGE}@{version}");
    }
    if foreign.is_empty() { Ok(contract) } else { Err(LoadError::ForbiddenImports(foreign.join(", "))) }
}

/// Checks that only this user can change the compiled-component cache in `dir`. Compiled code
/// is loaded from it without being verified again, so where plugin signatures are required a
/// cache others can write to would let them swap signed code for their own.
pub fn check_cache_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "the compiled-plugin cache {} can be written by others (mode {mode:o}); chmod go-w it, or set \
                 [runtime] cache_dir to a directory only you can write",
                dir.display()
            ));
        }
        // Who "this user" is, without unsafe code: the owner of a file created here now.
        let probe = tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let me = probe.as_file().metadata().map_err(|e| format!("{}: {e}", dir.display()))?.uid();
        if meta.uid() != me {
            return Err(format!(
                "the compiled-plugin cache {} belongs to another user; set [runtime] cache_dir to a directory of yours",
                dir.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The default cache directory: `$XDG_CACHE_HOME/tradebox` or `~/.cache/tradebox`.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("tradebox").join("components"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_cache_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(check_cache_dir(dir.path()), Ok(()));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(check_cache_dir(dir.path()).expect_err("world-writable").contains("chmod go-w"));
    }

    #[test]
    fn the_manifest_crate_builds_for_the_contract_this_host_serves() {
        assert_eq!(tradebox_manifest::CONTRACT, format!("{WIT_PACKAGE}@{WIT_VERSION}"));
        let wit = include_str!("../../../wit/strategy.wit");
        assert!(wit.contains(&format!("package {WIT_PACKAGE}@{WIT_VERSION};")), "wit/strategy.wit declares it");
    }
}
