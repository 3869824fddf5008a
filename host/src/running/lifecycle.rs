//! Plugins come and go while the host trades: load, hot reload with state handoff, unload.
//!
//! A reload compiles on the caller's thread (the compiled cache makes a known component cheap),
//! then hands the result to the plugin's own thread, which starts the new instance, runs
//! `init`, moves the state across (`snapshot()` → `restore()`) and only then drops the old
//! instance (see `plugin::supervisor`). The plugin's slot, and with it its inbox, its open
//! orders, positions and limits, never changes: events that arrive during the swap wait in the
//! inbox and go to the new instance. Every load, reload (done or refused) and unload is in the
//! audit log with the component hash and who asked.

use super::Host;
use crate::audit::Entry;
use crate::engine::Permissions;
use crate::engine::activity::Activity;
use crate::plugin::admission::admit;
use crate::plugin::{self, PluginHandle, PluginSpec, ReloadError, StartError, Status, Swap};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tradebox_core::TradingState;

/// How long a reload waits for the plugin's thread to take the new version. A call in
/// progress ends within its CPU deadline or its wall bound (at most
/// [`crate::plugin::instance::MAX_WALL`] unless the deadline itself is longer), so this is
/// only hit by a wedged host or a plugin given a deadline of 30 s or more.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A plugin as the host holds it.
pub(super) struct Loaded {
    pub(super) handle: PluginHandle,
    pub(super) source: Option<PathBuf>,
    pub(super) start_reduce_only: bool,
    /// What the operator asked for: the component serving now, its config before the
    /// manifest's defaults (a new version applies its own), grant and limits. A staged version
    /// is promoted from it.
    pub(super) spec: PluginSpec,
}

/// How a plugin is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The file the component came from: a reload without new bytes reads it again, and
    /// `run --watch` watches it.
    pub source: Option<PathBuf>,
    /// Start REDUCE_ONLY (and go back to it after every reload) until the operator resumes
    /// it: a new version can close positions but must be trusted before it opens any.
    pub start_reduce_only: bool,
    /// Who asked, for the audit log.
    pub by: String,
}

/// A reload request.
#[derive(Debug, Clone, Default)]
pub struct ReloadRequest {
    /// The new component; `None` reads `path`, or else the plugin's source file, again.
    pub wasm: Option<Vec<u8>>,
    /// Read the component from this file, which becomes the plugin's source.
    pub path: Option<PathBuf>,
    /// A new `init` config (JSON text); `None` keeps the running one.
    pub config: Option<String>,
    /// Go REDUCE_ONLY after the swap; `None` follows the plugin's `start_reduce_only`.
    pub reduce_only: Option<bool>,
    /// Who asked, for the audit log.
    pub by: String,
}

/// What a reload did.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// The swap itself, as the plugin's thread saw it.
    pub swap: Swap,
    /// Whether the compiled component came from the cache.
    pub from_cache: bool,
    /// Compiling (or loading from the cache) and checking the component.
    pub compile_time: Duration,
    /// From the request to the new instance serving.
    pub total: Duration,
    /// The plugin's trading state after the reload.
    pub trading_state: TradingState,
}

/// Why a lifecycle request failed. The running plugins are untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// No plugin has that name.
    #[error("no plugin named {0:?} is loaded")]
    Unknown(String),
    /// A reload without bytes for a plugin that was not loaded from a file.
    #[error("plugin {0} was not loaded from a file: send the new component")]
    NoSource(String),
    /// The source file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The reload was refused.
    #[error(transparent)]
    Reload(#[from] ReloadError),
    /// The load was refused.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Staging asked of a host without a simulated venue to stage on.
    #[error("this host has no staging venue: start it with [staging] enabled = true")]
    NoStaging,
    /// Promotion of a plugin that is not staged.
    #[error("no plugin named {0:?} is staged")]
    NotStaged(String),
    /// A second staging host.
    #[error("this host already has a staging venue")]
    StagingAlreadySet,
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

impl Host {
    /// Loads and starts a plugin (on behalf of the host itself). Blocks while compiling: call
    /// it off the async executor (`spawn_blocking`) when the host is busy.
    pub fn load(&self, spec: PluginSpec) -> Result<(), StartError> {
        self.load_with(spec, LoadOptions { by: "host".into(), ..LoadOptions::default() })
    }

    /// Loads and starts a plugin, recording where it came from and who asked.
    pub fn load_with(&self, spec: PluginSpec, options: LoadOptions) -> Result<(), StartError> {
        if self.plugins.lock().contains_key(&spec.name) {
            return Err(StartError::Duplicate(spec.name));
        }
        let LoadOptions { source, start_reduce_only, by } = options;
        let name = spec.name.clone();
        let signer = match self.trust.read().check(&spec.wasm) {
            Ok(signer) => signer,
            Err(e) => {
                let detail = json!({"by": by, "source": source, "error": e.to_string()});
                self.hub.audit_entry(
                    None,
                    Entry::State { event: crate::audit::StateChange::PluginLoadRefused, detail: detail.to_string() },
                );
                return Err(e.into());
            }
        };
        let instruments = spec.grants.instruments.clone();
        let kept = spec.clone();
        let initial = start_reduce_only.then(|| (TradingState::ReduceOnly, reduce_only_reason(&name)));
        let handle = plugin::start_in(self.runtime.clone(), self.hub.clone(), spec, initial)?;
        let slot = handle.slot.clone();
        let Status { hash, contract, manifest, withheld, .. } = handle.status();
        {
            let mut plugins = self.plugins.lock();
            if plugins.contains_key(&name) {
                // Another load of the same name finished first.
                drop(plugins);
                handle.stop(true);
                return Err(StartError::Duplicate(name));
            }
            let detail = json!({
                "by": by, "hash": hash, "contract": contract, "source": source, "from_cache": handle.from_cache,
                "instruments": instruments, "start_reduce_only": start_reduce_only,
                "version": manifest.as_ref().map(|m| &m.version), "signer": signer.to_string(), "withheld": &withheld,
                "requested": slot.permissions().requested,
            });
            self.hub.audit_entry(
                Some(&slot.origin()),
                Entry::State { event: crate::audit::StateChange::PluginLoaded, detail: detail.to_string() },
            );
            self.hub.record(&name, Activity::Loaded { hash: short(&hash).to_string(), by: by.to_string() });
            tracing::info!(plugin = %name, hash = %hash, cached = handle.from_cache, %by, "plugin loaded");
            handle.set_admitted(signer.to_string(), withheld);
            plugins.insert(name.clone(), Loaded { handle, source, start_reduce_only, spec: kept });
        }
        Ok(())
    }

    /// Swaps a running plugin's component (and optionally its config) keeping its state,
    /// orders and inbox. Blocks while compiling and swapping: call it off the async executor.
    pub fn reload(&self, name: &str, request: ReloadRequest) -> Result<Reloaded, LifecycleError> {
        let _one_at_a_time = self.changing.lock();
        self.reload_locked(name, request)
    }

    /// [`Host::reload`], the caller holding `changing`.
    pub(super) fn reload_locked(&self, name: &str, request: ReloadRequest) -> Result<Reloaded, LifecycleError> {
        let started = Instant::now();
        let (reloader, slot, source, start_reduce_only, running_config) = {
            let plugins = self.plugins.lock();
            let loaded = plugins.get(name).ok_or_else(|| LifecycleError::Unknown(name.to_string()))?;
            let handle = &loaded.handle;
            (
                handle.reloader(),
                handle.slot.clone(),
                loaded.source.clone(),
                loaded.start_reduce_only,
                loaded.spec.config.clone(),
            )
        };
        let ReloadRequest { wasm, path, config, reduce_only, by } = request;
        let refused = |error: &dyn std::fmt::Display, hash: Option<&str>| {
            let detail = json!({"by": by, "hash": hash, "error": error.to_string()});
            self.hub.audit_entry(
                Some(&slot.origin()),
                Entry::State { event: crate::audit::StateChange::PluginReloadRefused, detail: detail.to_string() },
            );
            self.hub.record(name, Activity::ReloadRefused(error.to_string()));
        };
        // Bytes with a path: those bytes, recorded as that file's (a promotion from staging).
        let new_source = path.clone();
        let wasm = match (wasm, path.or(source)) {
            (Some(bytes), _) => bytes,
            (None, Some(path)) => std::fs::read(&path).map_err(|source| {
                let e = LifecycleError::Read { path, source };
                refused(&e, None);
                e
            })?,
            (None, None) => {
                let e = LifecycleError::NoSource(name.to_string());
                refused(&e, None);
                return Err(e);
            }
        };
        let signer = self.trust.read().check(&wasm).map_err(|e| {
            refused(&e, None);
            LifecycleError::Reload(e.into())
        })?;
        let compiling = Instant::now();
        let compiled = self.runtime.compile(&wasm).map_err(|e| {
            refused(&e, None);
            LifecycleError::Reload(e.into())
        })?;
        let compile_time = compiling.elapsed();
        let (hash, from_cache, contract) = (compiled.hash.clone(), compiled.from_cache, compiled.contract.clone());
        let version = compiled.manifest.as_ref().map(|m| m.version.clone());
        // The new version is admitted on its own manifest against the plugin's grant and
        // limits, and runs under what it is admitted with from its `init` on.
        let given = config.unwrap_or(running_config);
        let granted = slot.permissions().granted.clone();
        let risk = slot.risk.limits();
        let admission = admit(name, compiled.manifest.as_deref(), &granted, &risk, &given).map_err(|e| {
            refused(&e, Some(&hash));
            LifecycleError::Reload(e.into())
        })?;
        let withheld = admission.withheld.clone();
        let permissions = Permissions::new(granted, admission.requested);
        // A new version that must start reduce-only is so from its `init` on; if it is
        // refused, the running version gets its state back.
        let before = slot.state();
        let restrict = reduce_only.unwrap_or(start_reduce_only) && before == TradingState::Active;
        if restrict {
            self.hub.set_plugin_state(&slot, TradingState::ReduceOnly, &reduce_only_reason(name));
        }
        let swap =
            reloader.reload(compiled, Some(admission.config), Some(permissions), RELOAD_TIMEOUT).map_err(|e| {
                refused(&e, Some(&hash));
                if restrict {
                    self.hub.set_plugin_state(&slot, before, "the new version was refused; the running one carries on");
                }
                LifecycleError::Reload(e)
            })?;
        if let Some(loaded) = self.plugins.lock().get_mut(name) {
            if let Some(path) = new_source {
                loaded.source = Some(path);
            }
            loaded.spec.config = given;
            loaded.spec.wasm = wasm;
            loaded.handle.set_admitted(signer.to_string(), withheld.clone());
        }
        let total = started.elapsed();
        let detail = json!({
            "by": by, "from": swap.old_hash, "to": swap.new_hash, "contract": contract, "from_cache": from_cache,
            "version": version, "signer": signer.to_string(), "withheld": withheld,
            "requested": slot.permissions().requested,
            "state_bytes": swap.state_bytes, "queued_events": swap.queued,
            "compile_us": compile_time.as_micros() as u64, "swap_us": swap.swap_time.as_micros() as u64,
        });
        // The record is written after the swap, so it carries the new component's hash.
        self.hub.audit_entry(
            Some(&slot.origin()),
            Entry::State { event: crate::audit::StateChange::PluginReloaded, detail: detail.to_string() },
        );
        let (from, to) = (short(&swap.old_hash).to_string(), short(&swap.new_hash).to_string());
        self.hub.record(name, Activity::Reloaded { from, to, by: by.to_string() });
        Ok(Reloaded { swap, from_cache, compile_time, total, trading_state: slot.state() })
    }

    /// Runs the checks of a load without starting anything: signature, component, manifest
    /// against grant and limits. (A staged version is checked before it replaces another.)
    pub(super) fn precheck(&self, spec: &PluginSpec) -> Result<(), LifecycleError> {
        self.trust.read().check(&spec.wasm).map_err(StartError::from)?;
        let compiled = self.runtime.compile(&spec.wasm).map_err(StartError::from)?;
        admit(&spec.name, compiled.manifest.as_deref(), &spec.grants, &spec.risk, &spec.config)
            .map_err(StartError::from)?;
        Ok(())
    }

    /// A running plugin's `snapshot()`: the state a reload would hand over.
    pub fn snapshot(&self, name: &str) -> Result<Vec<u8>, LifecycleError> {
        let reloader = {
            let plugins = self.plugins.lock();
            plugins.get(name).ok_or_else(|| LifecycleError::Unknown(name.to_string()))?.handle.reloader()
        };
        Ok(reloader.snapshot(RELOAD_TIMEOUT)?)
    }

    /// Stops a plugin (on behalf of the host itself); by default its open orders are cancelled.
    pub fn unload(&self, name: &str, cancel_orders: bool) -> bool {
        self.unload_by(name, cancel_orders, "host")
    }

    /// Stops a plugin and releases its subscriptions; its open orders are cancelled, or left
    /// working when `cancel_orders` is false (they stay tracked: fills still update the
    /// account). Returns false when no plugin has that name.
    pub fn unload_by(&self, name: &str, cancel_orders: bool, by: &str) -> bool {
        let Some(loaded) = self.plugins.lock().remove(name) else { return false };
        let slot = loaded.handle.slot.clone();
        let open = self.hub.open_orders(slot.id).len();
        loaded.handle.stop(cancel_orders);
        let detail = json!({"by": by, "cancel_orders": cancel_orders, "open_orders": open});
        self.hub.audit_entry(
            Some(&slot.origin()),
            Entry::State { event: crate::audit::StateChange::PluginUnloaded, detail: detail.to_string() },
        );
        self.hub.record(name, Activity::Unloaded { by: by.to_string(), open_orders: open, cancelled: cancel_orders });
        tracing::info!(plugin = %name, %by, cancel_orders, "plugin unloaded");
        true
    }

    /// Every plugin loaded from a file, with the file.
    pub fn sources(&self) -> Vec<(String, PathBuf)> {
        self.plugins.lock().iter().filter_map(|(name, l)| l.source.clone().map(|s| (name.clone(), s))).collect()
    }
}

fn reduce_only_reason(name: &str) -> String {
    format!("a new version starts reduce-only; `tradebox resume --plugin {name}` lets it open positions")
}
