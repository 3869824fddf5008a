//! The host's TOML configuration: one file, validated at load with errors that name the line
//! or the plugin at fault. Secrets never live here.
//!
//! ```toml
//! [venue]
//! kind = "sim"            # or "okx" (OKX v5 REST, or `tradebox sim` at another address), or
//!                         # "paper" (OKX's live public feed, fills simulated in-process, no keys)
//! [venue.sim]             # optional: the simulated market (defaults: the demo market)
//! seed = 7
//! [venue.paper]           # kind = "paper" only (see venue::paper::PaperConfig)
//! instruments = ["BTC-USDT"]
//! balances = { USDT = 10000 }
//! fee_tier = "Lv1"        # or fee_rate = 0.001
//! record = "feed"         # optional: record the feed traded on, as `tradebox record` does
//! [venue.okx]             # kind = "okx" only
//! region = "global"       # or "eea" (eea.okx.com) or "us" (us.okx.com): names the hosts
//! # rest_url = "https://www.okx.com"   # only to override the region's (a simulator, openapi.okx.com)
//! demo = true             # x-simulated-trading: 1 (a demo-trading key)
//! instruments = ["BTC-USDT", "BTC-USDT-SWAP"]
//! margin_mode = "cross"  # or "isolated": swaps (spot follows the account mode)
//! credentials_file = "/home/me/.config/tradebox/okx.env"   # or credentials_command = ["pass",
//! #   "show", "okx"]; else $CREDENTIALS_DIRECTORY/okx (systemd), else OKX_API_* from the environment
//! [venue.okx.pins]        # optional SPKI SHA-256 pins (base64) of the REST and WebSocket hosts
//! rest = ["sha256/..."]
//! [venue.okx.auth_watch]  # authentication failures in window_s: warn_at warns, halt_at halts
//! window_s = 300
//!
//! [admin]                 # the control API: loopback only, bearer token in an owner-only file
//! listen = "127.0.0.1:7878"
//! token_file = "/run/user/1000/tradebox/admin.token"
//! token_from = "admin.secret"   # optional: an owner-only file with the token to use
//!
//! [audit]                 # on for okx and paper (default: tradebox-audit.jsonl, for paper
//!                         # tradebox-paper-audit.jsonl, beside this file)
//! path = "audit.jsonl"
//! sync_ms = 200
//!
//! [runtime]
//! mode = "live"           # or "deterministic" (fuel instead of CPU deadlines)
//! cache_dir = "/var/cache/tradebox"
//!
//! [risk]                  # the account: every plugin together
//! max_orders_per_sec = 50
//! max_daily_loss = 2000
//!
//! [defaults.risk]         # each plugin unless it overrides (see risk::RiskLimits)
//! max_order_notional = 10000
//! price_band_pct = 2
//!
//! [defaults.limits]       # for every plugin unless it overrides
//! memory_mib = 64
//! deadline_ms = 100
//!
//! [signing]               # who plugin files must come from
//! require = "live"        # live (default: a live OKX account), always, never
//! trusted = ["keys/alice.pub", "ed25519:3q2+7w..."]
//!
//! [staging]               # plugins may trade on a staging venue first: paper on the host's
//! enabled = true          # live feed (okx, paper), else the simulated market; market = "sim"
//!                         # forces the latter; balances = { USDT = 10000 } for paper
//!
//! [[plugin]]
//! name = "sma-btc"
//! path = "plugins/sma-cross.wasm"          # relative to this file
//! instruments = ["BTC-USDT"]                # the grant: nothing else is visible
//! channels = ["tickers"]                    # all when absent; so are order_kinds
//! partial_grant = false                     # true: run with the grant if the manifest asks more
//! config = { symbol = "BTC-USDT", fast = 10, slow = 30 }
//! start_reduce_only = false                 # true: new versions start REDUCE_ONLY
//! staged = false                            # true: starts on the staging venue until promoted
//! limits = { memory_mib = 32 }
//! failure = { max_failures = 3 }
//! risk = { max_order_notional = 5000 }
//! ```

use crate::engine::{Grants, RiskLimits};
use crate::plugin::trust::{SigningConfig, Trust};
use crate::plugin::{FailurePolicy, Limits, Mode, PluginSpec};
use crate::venue::okx::OkxConfig;
use crate::venue::paper::PaperConfig;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tradebox_core::{Channel, OrderKind};
use tradebox_sim::venue::SimConfig;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where orders go.
    pub venue: VenueConfig,
    /// The wasm runtime.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Defaults for every plugin.
    #[serde(default)]
    pub defaults: Defaults,
    /// The audit log.
    pub audit: Option<AuditConfig>,
    /// The admin API (`tradebox status|halt|resume` talk to it).
    #[serde(default)]
    pub admin: AdminConfig,
    /// The account's risk limits (every plugin together); plugins' own are `[defaults.risk]`
    /// and each plugin's `risk`.
    #[serde(default)]
    pub risk: crate::risk::AccountLimits,
    /// Which plugin files are trusted.
    #[serde(default)]
    pub signing: SigningConfig,
    /// A simulated venue where plugins trade before they are promoted to this one.
    #[serde(default)]
    pub staging: StagingConfig,
    /// The plugins to load at start.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginConfig>,
    #[serde(skip)]
    base_dir: PathBuf,
}

/// Venue kinds.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VenueKind {
    /// The in-process simulated venue.
    Sim,
    /// OKX v5 over REST (live, demo, or a `tradebox sim` server).
    Okx,
    /// Paper trading: OKX's (or a `tradebox sim` server's) live public feed, orders filled
    /// in-process against its book; no keys.
    Paper,
}

/// `[venue]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueConfig {
    /// Which venue.
    pub kind: VenueKind,
    /// Simulator settings (`sim` only); the demo market when absent.
    pub sim: Option<toml::Table>,
    /// OKX settings (`okx` only).
    pub okx: Option<toml::Table>,
    /// Paper settings (`paper` only).
    pub paper: Option<toml::Table>,
}

/// `[staging]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagingConfig {
    /// Run a staging host.
    #[serde(default)]
    pub enabled: bool,
    /// Which market it trades: by default the paper venue on the host's own live feed where
    /// the host has one (`okx`, `paper`), the simulated market otherwise.
    pub market: Option<StagingMarket>,
    /// The simulated market's settings (`market = "sim"`; the demo market when absent).
    pub sim: Option<toml::Table>,
    /// The staging paper account's starting balances (`market = "paper"`); when absent, the
    /// host's own paper balances on a paper host, the paper venue's default (10,000 USDT) on
    /// OKX.
    pub balances: Option<std::collections::BTreeMap<String, rust_decimal::Decimal>>,
}

/// `[staging] market`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StagingMarket {
    /// The in-process simulated venue's synthetic market.
    Sim,
    /// The paper venue on the host's live public feed.
    Paper,
}

/// Where a staging host trades.
#[derive(Debug, Clone)]
pub enum StagingVenue {
    /// The simulated venue with these settings.
    Sim(SimConfig),
    /// The paper venue with these settings (the host's instruments and feed).
    Paper(PaperConfig),
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The log file, relative to the config file.
    pub path: Option<PathBuf>,
    /// How often written records are `fsync`ed, ms: what a machine crash can lose at most.
    #[serde(default = "default_sync_ms")]
    pub sync_ms: u64,
}

fn default_sync_ms() -> u64 {
    200
}

/// `[runtime]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Live (deadlines) or deterministic (fuel).
    #[serde(default)]
    pub mode: Mode,
    /// Where compiled components are cached; the user cache dir when absent.
    pub cache_dir: Option<PathBuf>,
}

/// `[defaults]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Resource limits.
    #[serde(default)]
    pub limits: toml::Table,
    /// Failure policy.
    #[serde(default)]
    pub failure: toml::Table,
    /// Pre-trade limits.
    #[serde(default)]
    pub risk: toml::Table,
}

/// One `[[plugin]]`; also the body of the admin API's load request (as JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Unique name.
    pub name: String,
    /// The component file, relative to the config file.
    pub path: PathBuf,
    /// Granted instruments (exact, `*`, or `PREFIX-*`).
    #[serde(default)]
    pub instruments: Vec<String>,
    /// Granted order kinds (all when empty).
    #[serde(default)]
    pub order_kinds: Vec<OrderKind>,
    /// Granted market data channels (all when empty).
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Run the plugin with only what is granted when its manifest asks for more (else the
    /// load is refused, naming the difference).
    #[serde(default)]
    pub partial_grant: bool,
    /// Given to the plugin's `init` as JSON.
    #[serde(default)]
    pub config: toml::Table,
    /// Overrides of `[defaults.limits]`.
    #[serde(default)]
    pub limits: toml::Table,
    /// Overrides of `[defaults.failure]`.
    #[serde(default)]
    pub failure: toml::Table,
    /// Overrides of `[defaults.risk]`.
    #[serde(default)]
    pub risk: toml::Table,
    /// Start REDUCE_ONLY, at load and after every reload, until the operator resumes it.
    #[serde(default)]
    pub start_reduce_only: bool,
    /// Load it on the staging venue (`[staging]`), to trade there until promoted.
    #[serde(default)]
    pub staged: bool,
}

impl PluginConfig {
    /// Checks what can be checked without the component: the name and the layered settings.
    pub fn validate(&self, defaults: &Defaults) -> Result<()> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("name {:?} must be non-empty ASCII letters, digits, - or _", self.name);
        }
        if self.instruments.is_empty() {
            tracing::warn!(plugin = %self.name, "no instruments granted: the plugin will see no market");
        }
        let (_, _, risk) = defaults.settings(self).with_context(|| format!("plugin {}", self.name))?;
        risk.validate().with_context(|| format!("plugin {}", self.name))?;
        Ok(())
    }

    /// The spec to start, reading the component from `path` (relative to `base_dir`) unless
    /// `wasm` is given.
    pub fn spec(&self, defaults: &Defaults, base_dir: &Path, wasm: Option<Vec<u8>>) -> Result<PluginSpec> {
        let wasm = match wasm {
            Some(bytes) => bytes,
            None => {
                let path = base_dir.join(&self.path);
                std::fs::read(&path).with_context(|| format!("plugin {}: reading {}", self.name, path.display()))?
            }
        };
        let (limits, failure, risk) = defaults.settings(self)?;
        let config = serde_json::to_string(&self.config)?;
        let grants = Grants {
            instruments: self.instruments.clone(),
            order_kinds: self.order_kinds.clone(),
            channels: self.channels.clone(),
            partial: self.partial_grant,
        };
        Ok(PluginSpec { name: self.name.clone(), wasm, config, grants, risk, limits, failure })
    }
}

impl Defaults {
    fn settings(&self, p: &PluginConfig) -> Result<(Limits, FailurePolicy, RiskLimits)> {
        let limits: Limits = layered(&self.limits, &p.limits, "limits")?;
        limits.validate().map_err(anyhow::Error::msg).context("invalid `limits`")?;
        Ok((limits, layered(&self.failure, &p.failure, "failure")?, layered(&self.risk, &p.risk, "risk")?))
    }
}

/// Built-in defaults ← `[defaults.x]` ← plugin's `x`, then typed.
fn layered<T: DeserializeOwned>(defaults: &toml::Table, overrides: &toml::Table, what: &str) -> Result<T> {
    let mut merged = defaults.clone();
    merged.extend(overrides.clone());
    toml::Value::Table(merged).try_into().with_context(|| format!("invalid `{what}`"))
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        let mut config = Self::parse(&text).with_context(|| format!("config {}", path.display()))?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(token) = &config.admin.token_from {
            config.admin.token_from = Some(config.base_dir.join(token));
        }
        if let Some(token) = &config.admin.token_file {
            config.admin.token_file = Some(config.base_dir.join(token));
        }
        Ok(config)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Config = toml::from_str(text)?;
        let mut names = std::collections::HashSet::new();
        for (i, p) in config.plugins.iter().enumerate() {
            p.validate(&config.defaults).with_context(|| format!("plugin #{}", i + 1))?;
            if !names.insert(p.name.as_str()) {
                bail!("plugin #{}: the name {:?} is used twice", i + 1, p.name);
            }
        }
        config.sim()?;
        config.risk.validate().context("[risk]")?;
        match config.venue.kind {
            VenueKind::Okx => {
                let okx = config.okx()?;
                if okx.instruments.is_empty() {
                    bail!("[venue.okx] instruments is empty: name the instruments to trade");
                }
                okx.check().map_err(|e| anyhow::anyhow!("[venue.okx] {e}"))?;
            }
            VenueKind::Sim if config.venue.okx.is_some() => bail!("[venue.okx] is set but kind = \"sim\""),
            VenueKind::Sim => {}
            VenueKind::Paper => {
                if config.venue.okx.is_some() {
                    bail!("[venue.okx] is set but kind = \"paper\": a paper venue's settings are [venue.paper]");
                }
                config.paper()?.check().map_err(|e| anyhow::anyhow!("[venue.paper] {e}"))?;
            }
        }
        if config.venue.kind != VenueKind::Paper && config.venue.paper.is_some() {
            bail!("[venue.paper] is set but kind is not \"paper\"");
        }
        Ok(config)
    }

    /// The OKX venue's settings.
    pub fn okx(&self) -> Result<OkxConfig> {
        match &self.venue.okx {
            None => bail!("kind = \"okx\" needs a [venue.okx] section with at least `instruments`"),
            Some(table) => {
                let mut okx: OkxConfig = layered(&toml::Table::new(), table, "venue.okx")?;
                if let Some(file) = &okx.credentials_file {
                    okx.credentials_file = Some(self.base_dir.join(file));
                }
                Ok(okx)
            }
        }
    }

    /// The paper venue's settings (`record` relative to this file).
    pub fn paper(&self) -> Result<PaperConfig> {
        let Some(table) = &self.venue.paper else {
            bail!("kind = \"paper\" needs a [venue.paper] section with at least `instruments`");
        };
        let mut paper: PaperConfig = layered(&toml::Table::new(), table, "venue.paper")?;
        if let Some(dir) = &paper.record {
            paper.record = Some(self.base_dir.join(dir));
        }
        Ok(paper)
    }

    /// The signature policy: a live OKX account requires trusted signatures unless `[signing]`
    /// says otherwise.
    pub fn trust(&self) -> Result<Trust> {
        let live = self.venue.kind == VenueKind::Okx && !self.okx()?.demo;
        Trust::from_config(&self.signing, live, &self.base_dir)
    }

    /// Where the audit log goes and how often it syncs: `[audit]`, or for the OKX venue (where
    /// it is not optional) `tradebox-audit.jsonl` beside the config file.
    pub fn audit(&self) -> Option<(PathBuf, std::time::Duration)> {
        let sync = |ms: u64| std::time::Duration::from_millis(ms.max(1));
        // A paper host's log has a name of its own: a paper session beside a real one in the
        // same directory must not share a file (or a sequence) with it.
        let default = match self.venue.kind {
            VenueKind::Paper => "tradebox-paper-audit.jsonl",
            VenueKind::Okx | VenueKind::Sim => "tradebox-audit.jsonl",
        };
        match (&self.audit, self.venue.kind) {
            (Some(AuditConfig { path: Some(p), sync_ms }), _) => Some((self.base_dir.join(p), sync(*sync_ms))),
            (Some(AuditConfig { path: None, sync_ms }), _) => Some((self.base_dir.join(default), sync(*sync_ms))),
            (None, VenueKind::Okx | VenueKind::Paper) => Some((self.base_dir.join(default), sync(default_sync_ms()))),
            (None, VenueKind::Sim) => None,
        }
    }

    /// The simulator's settings.
    pub fn sim(&self) -> Result<SimConfig> {
        match &self.venue.sim {
            None => Ok(SimConfig::demo()),
            Some(table) => layered(&toml::Table::new(), table, "venue.sim"),
        }
    }

    /// The staging venue, when `[staging]` is enabled (or a plugin is `staged`): the paper
    /// venue on the host's own public feed (its instruments, region or URLs) when the host has
    /// a live one, so a new version is judged on the real market; the simulated market when
    /// the host has none (`kind = "sim"`) or `market = "sim"` asks for it.
    pub fn staging_venue(&self) -> Result<Option<StagingVenue>> {
        if !self.staging.enabled && !self.plugins.iter().any(|p| p.staged) {
            return Ok(None);
        }
        // A `[staging.sim]` table without `market` is a config written before paper staging
        // existed: it keeps the simulated market it describes.
        let live_feed = self.venue.kind != VenueKind::Sim && self.staging.sim.is_none();
        let market = self.staging.market.unwrap_or(if live_feed { StagingMarket::Paper } else { StagingMarket::Sim });
        let balances = |mut paper: PaperConfig| {
            if let Some(b) = &self.staging.balances {
                paper.balances = b.clone();
            }
            paper.record = None;
            paper
        };
        if market == StagingMarket::Sim && self.staging.balances.is_some() {
            bail!("[staging] balances are a paper account's; the simulated market's are in [staging.sim]");
        }
        match market {
            StagingMarket::Sim => match &self.staging.sim {
                None => Ok(Some(StagingVenue::Sim(SimConfig::demo()))),
                Some(table) => layered(&toml::Table::new(), table, "staging.sim").map(|c| Some(StagingVenue::Sim(c))),
            },
            StagingMarket::Paper if self.venue.kind == VenueKind::Paper => {
                Ok(Some(StagingVenue::Paper(balances(self.paper()?))))
            }
            StagingMarket::Paper if self.venue.kind == VenueKind::Okx => {
                let okx = self.okx()?;
                let paper = PaperConfig {
                    instruments: okx.instruments.clone(),
                    region: okx.region,
                    rest_url: okx.rest_base(),
                    // The account's own market: the demo feed for a demo account.
                    ws_url: okx.ws_base(),
                    ..PaperConfig::default()
                };
                Ok(Some(StagingVenue::Paper(balances(paper))))
            }
            StagingMarket::Paper => {
                bail!("[staging] market = \"paper\" needs a live feed: kind = \"okx\" or \"paper\"")
            }
        }
    }

    /// The cache directory to use.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        self.runtime.cache_dir.clone().or_else(crate::plugin::runtime::default_cache_dir)
    }

    /// Reads each plugin's file and builds its spec; with where it came from.
    pub fn plugin_specs(&self) -> Result<Vec<(PluginSpec, &PluginConfig, PathBuf)>> {
        self.plugins
            .iter()
            .map(|p| Ok((p.spec(&self.defaults, &self.base_dir, None)?, p, self.base_dir.join(&p.path))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    const GOOD: &str = r#"
        [venue]
        kind = "sim"

        [defaults.limits]
        memory_mib = 48

        [[plugin]]
        name = "sma"
        path = "sma-cross.wasm"
        instruments = ["BTC-USDT"]
        config = { symbol = "BTC-USDT", fast = 5 }
        limits = { deadline_ms = 20 }
    "#;

    #[test]
    fn paper_settings_and_where_staging_trades() {
        let paper = |extra: &str| {
            Config::parse(&format!(
                "[venue]\nkind = \"paper\"\n[venue.paper]\ninstruments = [\"BTC-USDT\"]\n{extra}\n[staging]\nenabled = true\n"
            ))
        };
        let c = paper("balances = { USDT = 5000, BTC = 1 }\nfee_rate = 0.0005").expect("a paper config");
        let p = c.paper().expect("its settings");
        assert_eq!(p.balances.get("BTC"), Some(&Decimal::ONE));
        assert_eq!(p.fees().expect("fees"), crate::venue::paper::Fees::flat(Decimal::new(5, 4)));
        assert_eq!(p.ws_base(), "wss://ws.okx.com:8443", "the live market, not the demo one");
        assert!(c.audit().is_some_and(|(path, _)| path.ends_with("tradebox-paper-audit.jsonl")));
        // The audit log is on, as for OKX.
        assert!(c.audit().is_some());
        // Staging trades on paper on the same feed, with its own balances.
        match c.staging_venue().expect("staging") {
            Some(StagingVenue::Paper(s)) => {
                assert_eq!(s.instruments, p.instruments);
                assert_eq!(s.balances, p.balances, "the paper account's own balances by default");
            }
            other => panic!("{other:?}"),
        }
        for (extra, why) in [
            ("fee_tier = \"Lv1\"\nfee_rate = 0.001", "not both"),
            ("fee_rate = 1", "fraction"),
            ("depth = 6", "unknown field"),
            ("fee_rate = -0.01", "rebate"),
            ("balances = { usdt = 1 }", "as OKX names them"),
            ("ws_url = \"ws://example.com\"", "changed on the way"),
            ("leverage = 500", "leverage"),
            ("balances = { USDT = -1 }", "balance"),
            ("keys = 1", "unknown field"),
        ] {
            let e = format!("{:#}", paper(extra).expect_err(extra));
            assert!(e.contains(why), "{extra}: {e}");
        }
        let e = Config::parse("[venue]\nkind = \"paper\"\n").expect_err("no section");
        assert!(e.to_string().contains("[venue.paper]"), "{e}");
        let e =
            Config::parse("[venue]\nkind = \"sim\"\n[venue.paper]\ninstruments = [\"X\"]\n").expect_err("wrong kind");
        assert!(e.to_string().contains("kind is not"), "{e}");

        // OKX: paper on the account's own feed (a demo account: the demo feed).
        let okx = Config::parse(
            "[venue]\nkind = \"okx\"\n[venue.okx]\ninstruments = [\"BTC-USDT\"]\n[staging]\nenabled = true\nbalances = { USDT = 1 }\n",
        )
        .expect("okx");
        match okx.staging_venue().expect("staging") {
            Some(StagingVenue::Paper(s)) => {
                assert_eq!(s.ws_url, "wss://wspap.okx.com:8443");
                assert_eq!(s.balances.get("USDT"), Some(&Decimal::ONE));
            }
            other => panic!("{other:?}"),
        }
        // The simulator: its own market, as before; paper asked for without a feed is refused.
        let sim = Config::parse("[venue]\nkind = \"sim\"\n[staging]\nenabled = true\n").expect("sim");
        assert!(matches!(sim.staging_venue(), Ok(Some(StagingVenue::Sim(_)))));
        let sim =
            Config::parse("[venue]\nkind = \"sim\"\n[staging]\nenabled = true\nmarket = \"paper\"\n").expect("sim");
        assert!(sim.staging_venue().is_err());
    }

    #[test]
    fn layers_defaults_and_overrides() {
        let c = Config::parse(GOOD).unwrap();
        let (limits, failure, _) = c.defaults.settings(&c.plugins[0]).unwrap();
        assert_eq!(limits.memory_mib, 48);
        assert_eq!(limits.deadline_ms, 20);
        assert_eq!(failure, FailurePolicy::default());
        assert_eq!(serde_json::to_string(&c.plugins[0].config).unwrap(), r#"{"fast":5,"symbol":"BTC-USDT"}"#);
    }

    #[test]
    fn credentials_never_cross_the_network_in_clear_text() {
        let okx = |rest: &str, ws: &str| {
            Config::parse(&format!(
                "[venue]\nkind = \"okx\"\n[venue.okx]\ninstruments = [\"BTC-USDT\"]\nrest_url = {rest:?}\nws_url = {ws:?}\n"
            ))
        };
        for (rest, ws) in [
            ("https://www.okx.com", ""),
            ("https://www.okx.com", "wss://ws.okx.com:8443"),
            ("http://127.0.0.1:8080", "ws://127.0.0.1:8080"),
            ("http://localhost:8080", "ws://[::1]:8080"),
        ] {
            assert!(okx(rest, ws).is_ok(), "{rest} {ws}: {:?}", okx(rest, ws).err());
        }
        for (rest, ws, named) in [
            ("http://www.okx.com", "", "rest_url"),
            ("http://10.0.0.5:8080", "", "rest_url"),
            ("https://www.okx.com", "ws://ws.okx.com:8443", "ws_url"),
            ("ftp://www.okx.com", "", "rest_url"),
        ] {
            let e = format!("{:#}", okx(rest, ws).expect_err(rest));
            assert!(e.contains(named) && (e.contains("clear text") || e.contains("expected")), "{e}");
        }
    }

    #[test]
    fn the_region_names_the_hosts_demo_included() {
        let okx = |extra: &str| {
            Config::parse(&format!("[venue]\nkind = \"okx\"\n[venue.okx]\ninstruments = [\"BTC-USDT\"]\n{extra}"))
                .expect("parses")
                .okx()
                .expect("okx")
        };
        let hosts = |c: crate::venue::okx::OkxConfig| (c.rest_base(), c.ws_base());
        let want = |rest: &str, ws: &str| (rest.to_string(), ws.to_string());
        assert_eq!(hosts(okx("")), want("https://www.okx.com", "wss://wspap.okx.com:8443"));
        assert_eq!(hosts(okx("demo = false")), want("https://www.okx.com", "wss://ws.okx.com:8443"));
        assert_eq!(
            hosts(okx("region = \"eea\"\ndemo = false")),
            want("https://eea.okx.com", "wss://wseea.okx.com:8443")
        );
        assert_eq!(hosts(okx("region = \"eea\"")), want("https://eea.okx.com", "wss://wseeapap.okx.com:8443"));
        assert_eq!(hosts(okx("region = \"us\"\ndemo = false")), want("https://us.okx.com", "wss://wsus.okx.com:8443"));
        assert_eq!(hosts(okx("region = \"us\"")), want("https://us.okx.com", "wss://wsuspap.okx.com:8443"));
        // An explicit URL wins over the region (a simulator, or OKX's newer openapi.okx.com).
        let c = okx("region = \"us\"\nrest_url = \"https://openapi.okx.com\"");
        assert_eq!(c.rest_base(), "https://openapi.okx.com");
        let e = Config::parse("[venue]\nkind = \"okx\"\n[venue.okx]\nregion = \"mars\"\n").expect_err("unknown region");
        assert!(format!("{e:#}").contains("region"), "{e:#}");
    }

    #[test]
    fn certificate_pins_are_read_at_load_and_refused_where_they_would_pin_nothing() {
        let okx = |extra: &str| {
            Config::parse(&format!("[venue]\nkind = \"okx\"\n[venue.okx]\ninstruments = [\"BTC-USDT\"]\n{extra}"))
        };
        let pin = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let pinned = okx(&format!("[venue.okx.pins]\nrest = [{pin:?}]\nws = [{pin:?}]")).expect("pins read");
        let (rest, ws) = pinned.okx().expect("okx").pins.settings().expect("settings");
        assert!(!rest.is_default() && !ws.is_default());
        let e = format!("{:#}", okx("[venue.okx.pins]\nrest = [\"sha256/not-base64!\"]").expect_err("malformed"));
        assert!(e.contains("pins.rest"), "{e}");
        // A pin on a plain-text URL (a simulator) would pin nothing: refused, not ignored.
        let e = format!(
            "{:#}",
            okx(&format!("rest_url = \"http://127.0.0.1:8080\"\n[venue.okx.pins]\nrest = [{pin:?}]"))
                .expect_err("http")
        );
        assert!(e.contains("pins.rest"), "{e}");
    }

    #[test]
    fn bad_lines_get_clear_errors() {
        let greedy = GOOD.replace("memory_mib = 48", "cpu_share = -1.0");
        let e = format!("{:#}", Config::parse(&greedy).expect_err("a negative share"));
        assert!(e.contains("cpu_share"), "{e}");
        let typo = GOOD.replace("memory_mib = 48", "memory_mb = 48");
        let err = format!("{:#}", Config::parse(&typo).unwrap_err());
        assert!(err.contains("memory_mb"), "{err}");

        let venue = GOOD.replace("kind = \"sim\"", "kind = \"ftx\"");
        let err = format!("{:#}", Config::parse(&venue).unwrap_err());
        assert!(err.contains("ftx") && err.contains("line"), "{err}");

        let okx = GOOD.replace("kind = \"sim\"", "kind = \"okx\"");
        let err = format!("{:#}", Config::parse(&okx).unwrap_err());
        assert!(err.contains("[venue.okx]"), "{err}");
        let okx =
            GOOD.replace("kind = \"sim\"", "kind = \"okx\"\n[venue.okx]\ninstruments = [\"BTC-USDT\"]\ntimeout = 5");
        let err = format!("{:#}", Config::parse(&okx).unwrap_err());
        assert!(err.contains("timeout"), "{err}");
        let okx =
            GOOD.replace("kind = \"sim\"", "kind = \"okx\"\n[venue.okx]\ninstruments = [\"BTC-USDT\"]\ndemo = false");
        let c = Config::parse(&okx).unwrap();
        assert!(!c.okx().unwrap().demo);
        assert!(c.audit().is_some(), "the OKX venue always keeps an audit log");

        let band = GOOD
            .replace("limits = { deadline_ms = 20 }", "limits = { deadline_ms = 20 }\nrisk = { price_band_pct = 0 }");
        let err = format!("{:#}", Config::parse(&band).unwrap_err());
        assert!(err.contains("price_band_pct") && err.contains("sma"), "{err}");
        let account = format!("[risk]\nmax_daily_loss = -1\n{GOOD}");
        let err = format!("{:#}", Config::parse(&account).unwrap_err());
        assert!(err.contains("max_daily_loss"), "{err}");

        let twice = format!("{GOOD}\n[[plugin]]\nname = \"sma\"\npath = \"x.wasm\"\n");
        let err = format!("{:#}", Config::parse(&twice).unwrap_err());
        assert!(err.contains("used twice"), "{err}");
    }
}

/// `[admin]` in the host config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Serve the admin API at all.
    pub enabled: bool,
    /// Where to listen; must be a loopback address.
    pub listen: SocketAddr,
    /// Where the token is written (owner-only); default [`crate::admin::default_token_file`].
    pub token_file: Option<PathBuf>,
    /// An owner-only file holding the token to use, instead of a new one each start (so
    /// scripts keep one token across restarts). The token itself never goes in the config.
    pub token_from: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            token_file: None,
            token_from: None,
        }
    }
}

/// The admin API's default port.
pub const DEFAULT_PORT: u16 = 7878;
