//! Staging: a new plugin, or a new version of a running one, trades on a venue of its own inside
//! the same process before it trades here.
//!
//! The staging host is a second [`Host`] with this host's signature policy, on the paper venue
//! fed by this host's live market (its instruments and public feed, its own paper balances) when
//! this host has one, else on the in-process simulated venue (a seeded synthetic market). A plugin is staged with
//! the grant, limits and config it would run with here, and passes the same checks (signature,
//! manifest, grant, `init`). While it trades there, the version running here keeps trading.
//! Promotion moves it: a new plugin is loaded here; a running one is hot-reloaded with the
//! staged component and config, so its state and open orders carry over from the version that
//! ran here (the staged instance's simulated positions do not). Each step is audited here; the
//! promotion's record holds the staged version's results beside the running version's
//! ([`Results`]), so the decision can be read back.

use super::Host;
use super::lifecycle::{LifecycleError, LoadOptions, ReloadRequest};
use crate::audit::Entry;
use crate::engine::activity::Activity;
use crate::plugin::PluginSpec;
use serde_json::json;

/// A version's results as a promotion records them: the staged one's on the staging venue,
/// the running one's here, each since it was loaded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Results {
    /// The venue it traded on (`paper`, `sim`, `okx-live`...).
    pub venue: String,
    /// sha256 of its component.
    pub hash: String,
    /// Orders sent.
    pub orders: u64,
    /// Fills.
    pub fills: u64,
    /// Order intents and subscriptions the host denied.
    pub denied: u64,
    /// Orders the venue rejected.
    pub rejected: u64,
    /// Realised PnL, quote currency.
    pub realized: f64,
    /// Unrealised PnL at the mid, quote currency.
    pub unrealized: f64,
    /// Fees paid.
    pub fees: f64,
    /// Instance failures.
    pub failures: u32,
}

impl Results {
    fn of(host: &Host, name: &str) -> Option<Self> {
        let r = host.report().into_iter().find(|r| r.name == name)?;
        Some(Self {
            venue: host.venue().name().to_string(),
            hash: r.hash,
            orders: r.orders_sent,
            fills: r.fills,
            denied: r.denied,
            rejected: r.rejected,
            realized: r.realized,
            unrealized: r.unrealized,
            fees: r.fees,
            failures: r.failures,
        })
    }
}

/// What a promotion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promoted {
    /// The plugin was new here: it was loaded.
    Loaded,
    /// A version was running here: it was reloaded with the staged one.
    Reloaded {
        /// The component that served before.
        from: String,
        /// The component serving now.
        to: String,
    },
}

impl Host {
    /// Gives this host a staging host (a [`Host`] on the simulated venue). Once per host.
    pub fn set_staging(&self, staging: Host) -> Result<(), LifecycleError> {
        staging.set_trust(self.trust.read().clone());
        self.staging.set(Box::new(staging)).map_err(|_| LifecycleError::StagingAlreadySet)
    }

    /// The staging host, when there is one.
    pub fn staging(&self) -> Option<&Host> {
        self.staging.get().map(|h| &**h)
    }

    /// Loads `spec` on the staging venue, replacing a staged version of the same name. It trades
    /// there until [`Host::promote`]d or unloaded from the staging host.
    pub fn stage(&self, spec: PluginSpec, options: LoadOptions) -> Result<(), LifecycleError> {
        let _one_at_a_time = self.changing.lock();
        self.stage_locked(spec, options)
    }

    fn stage_locked(&self, spec: PluginSpec, options: LoadOptions) -> Result<(), LifecycleError> {
        let staging = self.staging().ok_or(LifecycleError::NoStaging)?;
        let name = spec.name.clone();
        let by = options.by.clone();
        // A version that would be refused must not cost the one staged now: check it first.
        if let Err(e) = staging.precheck(&spec) {
            let detail = json!({"by": by, "plugin": name, "error": e.to_string()});
            self.hub.audit_entry(
                None,
                Entry::State { event: crate::audit::StateChange::PluginStageRefused, detail: detail.to_string() },
            );
            return Err(e);
        }
        let replaced = staging.unload_by(&name, true, &by);
        if let Err(e) = staging.load_with(spec, options) {
            let detail = json!({"by": by, "plugin": name, "error": e.to_string(), "replaced_staged": replaced});
            self.hub.audit_entry(
                None,
                Entry::State { event: crate::audit::StateChange::PluginStageRefused, detail: detail.to_string() },
            );
            return Err(e.into());
        }
        let status = staging.plugin_status(&name);
        let detail = json!({
            "by": by, "replaced_staged": replaced,
            "hash": status.as_ref().map(|s| s.hash.clone()),
            "version": status.and_then(|s| s.manifest.map(|m| m.version.clone())),
        });
        self.hub.audit_entry(
            None,
            Entry::State { event: crate::audit::StateChange::PluginStaged, detail: detail.to_string() },
        );
        self.hub.record(&name, Activity::Staged { by: by.to_string() });
        Ok(())
    }

    /// Stages a new version of plugin `name` running here: the request's component (or its
    /// file again) and config, with the running plugin's grant and limits. The running version
    /// keeps trading here meanwhile.
    pub fn stage_reload(&self, name: &str, request: ReloadRequest) -> Result<(), LifecycleError> {
        let _one_at_a_time = self.changing.lock();
        let (mut spec, source, start_reduce_only) = {
            let plugins = self.plugins.lock();
            let loaded = plugins.get(name).ok_or_else(|| LifecycleError::Unknown(name.to_string()))?;
            let mut spec = loaded.spec.clone();
            // The limits in force now (the admin API may have changed them), not the config's.
            spec.risk = loaded.handle.slot.risk.limits();
            (spec, loaded.source.clone(), loaded.start_reduce_only)
        };
        let ReloadRequest { wasm, path, config, by, .. } = request;
        let source = path.or(source);
        spec.wasm = match (wasm, &source) {
            (Some(bytes), _) => bytes,
            (None, Some(file)) => {
                std::fs::read(file).map_err(|e| LifecycleError::Read { path: file.clone(), source: e })?
            }
            (None, None) => return Err(LifecycleError::NoSource(name.to_string())),
        };
        if let Some(config) = config {
            spec.config = config;
        }
        self.stage_locked(spec, LoadOptions { source, start_reduce_only, by })
    }

    /// Moves staged plugin `name` here: loaded if it is new, else the running version is
    /// hot-reloaded with the staged component and config. The staged instance is then unloaded
    /// (its simulated orders cancelled). On any refusal the staged one keeps running.
    pub fn promote(&self, name: &str, by: &str) -> Result<Promoted, LifecycleError> {
        let _one_at_a_time = self.changing.lock();
        let staging = self.staging().ok_or(LifecycleError::NoStaging)?;
        let (spec, source, start_reduce_only) = {
            let staged = staging.plugins.lock();
            let loaded = staged.get(name).ok_or_else(|| LifecycleError::NotStaged(name.to_string()))?;
            (loaded.spec.clone(), loaded.source.clone(), loaded.start_reduce_only)
        };
        let running = self.plugins.lock().contains_key(name);
        // Read before the swap: after it the running version's numbers are the new one's.
        let (staged_results, live_results) = (Results::of(staging, name), Results::of(self, name));
        let promoted = if running {
            let request = ReloadRequest {
                wasm: Some(spec.wasm),
                path: source,
                config: Some(spec.config),
                by: by.to_string(),
                ..ReloadRequest::default()
            };
            let done = self.reload_locked(name, request)?;
            Promoted::Reloaded { from: done.swap.old_hash, to: done.swap.new_hash }
        } else {
            self.load_with(spec, LoadOptions { source, start_reduce_only, by: by.to_string() })?;
            Promoted::Loaded
        };
        staging.unload_by(name, true, by);
        let detail = json!({
            "by": by,
            "reloaded": matches!(promoted, Promoted::Reloaded { .. }),
            "staged": staged_results,
            "live": live_results,
        });
        let origin = self.slot(name).map(|s| s.origin());
        self.hub.audit_entry(
            origin.as_deref(),
            Entry::State { event: crate::audit::StateChange::PluginPromoted, detail: detail.to_string() },
        );
        self.hub.record(name, Activity::Promoted { by: by.to_string() });
        Ok(promoted)
    }
}
