//! `tradebox backtest`: the command line and the config file, made into a [`Plan`].
//!
//! Quick form: `tradebox backtest PLUGIN.wasm --instrument SYM --data FILE ...`; in it, only
//! the balance and the exchange's instrument rules limit orders (and the plugin's own manifest
//! ceilings, as live), unless `--risk FILE` names a TOML with `[risk]` and `[defaults.risk]`.
//! Full form: `tradebox backtest --config host.toml`, a file with a `[backtest]` section and the
//! same `[[plugin]]`, `[risk]` and `[defaults]` sections as a live config (other live sections
//! are allowed and ignored, so one file can serve both).

use super::run::{DataFile, Plan, PluginPlan};
use crate::config::{Defaults, PluginConfig};
use crate::engine::Grants;
use crate::plugin::{Limits, Runtime};
use crate::risk::{AccountLimits, RiskLimits};
use crate::venue::paper::exchange::{Fees, FillModel};
use anyhow::{Context, Result, bail};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tradebox_core::InstrumentSpec;

/// `tradebox backtest` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Plugin files to run (the quick form); absent with `--config FILE.toml` (the full form).
    #[arg(value_name = "PLUGIN.wasm")]
    pub plugins: Vec<PathBuf>,
    /// Quick form: the instrument the data is for (e.g. BTC-USDT).
    #[arg(long)]
    pub instrument: Option<String>,
    /// Market history: candles (CSV `ts_ms,open,high,low,close,volume` or OKX's column order,
    /// OKX's history-candles JSON, Parquet), trades (CSV `ts_ms,price,size,side` or OKX's JSON)
    /// or a recorded WebSocket feed (one raw frame per line); told apart by their contents.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub data: Vec<PathBuf>,
    /// Quick form: the plugin's config as JSON. Full form (no plugin file given): the TOML file.
    #[arg(long, value_name = "JSON|FILE")]
    pub config: Option<String>,
    /// Replay from this time (2024-01-31, RFC 3339, or ms since the epoch).
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Replay up to this time (exclusive).
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Starting balances, e.g. `USDT=10000` (repeat for more; default USDT=10000).
    #[arg(long, value_name = "CCY=AMOUNT")]
    pub balance: Vec<String>,
    /// How orders fill: next-open or close on candles (next-open by default), book on tick data
    /// (trades, a recorded feed; the default there).
    #[arg(long, value_name = "MODEL")]
    pub fill: Option<String>,
    /// One fee rate for makers and takers, a fraction (0.001 is 0.1%). With neither this nor
    /// `--fee-tier`, no fees are charged.
    #[arg(long, value_name = "R", conflicts_with = "fee_tier")]
    pub fee_rate: Option<Decimal>,
    /// OKX's rates for a tier: Lv1..Lv5, VIP1..VIP8.
    #[arg(long, value_name = "NAME")]
    pub fee_tier: Option<String>,
    /// A TOML with `[risk]` and `[defaults.risk]` to check orders against, as live.
    #[arg(long, value_name = "FILE")]
    pub risk: Option<PathBuf>,
    /// Instrument rules from an OKX `public/instruments` body (else the simulator's demo
    /// instruments: BTC-USDT, ETH-USDT, BTC-USDT-SWAP).
    #[arg(long, value_name = "FILE")]
    pub instruments: Option<PathBuf>,
    /// Swap funding rates: OKX's funding-rate-history body, or CSV `ts_ms,rate` (or
    /// `ts_ms,instrument,rate`).
    #[arg(long, value_name = "FILE")]
    pub funding: Option<PathBuf>,
    /// Write report.html, report.json, trades.csv, summary.csv and equity.csv here.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Print one JSON object last on stdout.
    #[arg(long)]
    pub json: bool,
    /// Run a grid of configs, e.g. `fast=5..15:5,slow=20..60:10` (inclusive ranges with a step,
    /// or `a|b|c` lists), in parallel on every core.
    #[arg(long, value_name = "GRID")]
    pub sweep: Option<String>,
    /// Run only shard K of N of the sweep's grid: the runs whose index modulo N is K, with K
    /// 0-based (0 to N-1; shards 0/N to (N-1)/N run the grid once). `--shard N` (or `$/N`) takes
    /// K from JOB_COMPLETION_INDEX unchanged: a Kubernetes Indexed Job with `completions: N`
    /// numbers its pods 0 to N-1, so pod i runs shard i/N. A K written out wins over the
    /// variable.
    #[arg(long, value_name = "K/N|N")]
    pub shard: Option<String>,
    /// Write the sweep's results here as CSV (default: sweep.csv in --report, else stdout's
    /// table only).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Rank sweep CSVs (shards' outputs, concatenated) instead of running anything.
    #[arg(long, value_name = "CSV", num_args = 1.., conflicts_with_all = ["plugins", "data", "sweep"])]
    pub rank: Vec<PathBuf>,
    /// What sweeps are ranked by: pnl, sharpe, max_drawdown (smallest first) or round_trips.
    #[arg(long, default_value = "pnl")]
    pub by: String,
    /// Worker threads for a sweep (default: every core).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// `[backtest]` of the full form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestSection {
    /// Market history files (as `--data`) and their instruments.
    pub data: Vec<DataEntry>,
    /// From (same forms as `--from`).
    pub from: Option<String>,
    /// To (exclusive).
    pub to: Option<String>,
    /// As `--fill`: `next-open` (the default) or `close` on candles, `book` on tick data (the
    /// default there).
    #[serde(default)]
    pub fill: Option<String>,
    /// One fee rate.
    pub fee_rate: Option<Decimal>,
    /// An OKX fee tier.
    pub fee_tier: Option<String>,
    /// Starting balances.
    #[serde(default)]
    pub balances: std::collections::BTreeMap<String, Decimal>,
    /// An OKX `public/instruments` body with the instruments' rules.
    pub instruments_file: Option<PathBuf>,
    /// Leverage of derivative positions (default 1).
    pub leverage: Option<Decimal>,
    /// Swap funding rates (see `--funding`), relative to the config.
    pub funding: Option<PathBuf>,
}

/// One data file of `[backtest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataEntry {
    /// The file, relative to the config.
    pub file: PathBuf,
    /// Its instrument.
    pub instrument: String,
}

/// The full form's file: what a backtest reads of it.
#[derive(Debug, Deserialize)]
struct BacktestFile {
    backtest: BacktestSection,
    #[serde(default)]
    risk: AccountLimits,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default, rename = "plugin")]
    plugins: Vec<PluginConfig>,
    /// A live config's other sections, accepted so that one file serves both; anything else is
    /// a typo and refused.
    #[serde(flatten)]
    rest: toml::Table,
}

/// Live sections a backtest ignores.
const LIVE_SECTIONS: &[&str] = &["venue", "runtime", "audit", "admin", "signing", "staging"];

/// `--risk FILE`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RiskFile {
    #[serde(default)]
    risk: Option<AccountLimits>,
    #[serde(default)]
    defaults: Option<RiskDefaults>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RiskDefaults {
    #[serde(default)]
    risk: Option<RiskLimits>,
}

/// Limits that let everything through but the balance and the manifest's own ceilings: the
/// quick form's, so that a first run is not refused by live defaults its author never set.
pub fn open_limits() -> (RiskLimits, AccountLimits) {
    let risk = RiskLimits {
        max_order_notional: f64::MAX,
        max_order_size: 0.0,
        price_band_pct: 99.0,
        max_quote_age_ms: u64::MAX,
        max_orders_per_sec: u32::MAX,
        max_cancels_per_sec: u32::MAX,
        duplicate_window_ms: 0,
        max_fills_per_min: u32::MAX,
        max_open_orders: u32::MAX,
        max_position: 0.0,
        max_gross_exposure: 0.0,
        max_daily_loss: 0.0,
        max_drawdown: 0.0,
        ..RiskLimits::default()
    };
    let account = AccountLimits {
        max_orders_per_sec: u32::MAX,
        max_open_orders: u32::MAX,
        check_balance: true,
        ..AccountLimits::default()
    };
    (risk, account)
}

/// A time given as a date, RFC 3339 (with an offset or Z), or ms since the epoch: the same
/// forms `tradebox data download` reads.
pub fn parse_time(text: &str) -> Result<i64> {
    crate::download::parse_time(text).map_err(|e| anyhow::anyhow!("{text:?} is not a time: {e}"))
}

fn parse_balance(text: &str) -> Result<(String, Decimal)> {
    let (currency, amount) = text.split_once('=').with_context(|| format!("--balance {text:?}: give CCY=AMOUNT"))?;
    let amount: Decimal =
        amount.trim().parse().with_context(|| format!("--balance {text:?}: {amount:?} is not an amount"))?;
    check_balance(&currency.trim().to_ascii_uppercase(), amount)?;
    Ok((currency.trim().to_ascii_uppercase(), amount))
}

/// The balances a run starts with when none are given.
fn default_balances() -> Vec<(String, Decimal)> {
    vec![("USDT".to_string(), Decimal::from(10_000))]
}

/// A starting balance a backtest can count with: not negative, at most 10^15.
fn check_balance(currency: &str, amount: Decimal) -> Result<()> {
    if amount.is_sign_negative() || amount > Decimal::from(1_000_000_000_000_000_i64) {
        bail!("balance {currency} = {amount}: a starting balance is from 0 to 10^15");
    }
    Ok(())
}

/// The instruments' rules: from an OKX instruments body, else the simulator's demo market.
fn instruments(symbols: &[String], file: Option<&Path>) -> Result<Vec<InstrumentSpec>> {
    let known: Vec<InstrumentSpec> = match file {
        Some(path) => {
            let text = super::funding::read_small(path).map_err(|e| anyhow::anyhow!("{e}"))?;
            let body: tradebox_okx::model::Envelope<tradebox_okx::model::Instrument> = serde_json::from_str(&text)
                .with_context(|| format!("{}: not an OKX public/instruments body", path.display()))?;
            body.data
                .iter()
                .enumerate()
                .filter_map(|(i, inst)| crate::venue::okx::convert::spec(i as u32 + 1, inst).ok())
                .collect()
        }
        None => tradebox_sim::venue::SimVenue::new(tradebox_sim::venue::SimConfig::demo())
            .map(|v| tradebox_core::Venue::instruments(v.as_ref()))
            .map_err(|e| anyhow::anyhow!("the demo instruments: {e}"))?,
    };
    let mut specs = Vec::with_capacity(symbols.len());
    for (i, symbol) in symbols.iter().enumerate() {
        let Some(spec) = known.iter().find(|s| &s.symbol == symbol) else {
            bail!(
                "unknown instrument {symbol}: its rules (tick, lot, minimum size) come from --instruments FILE (an OKX \
                 public/instruments body); without one, only {} are known",
                known.iter().map(|s| s.symbol.as_str()).collect::<Vec<_>>().join(", ")
            );
        };
        if !specs.iter().any(|s: &InstrumentSpec| &s.symbol == symbol) {
            specs.push(InstrumentSpec { id: i as u32 + 1, ..spec.clone() });
        }
    }
    for (i, spec) in specs.iter_mut().enumerate() {
        spec.id = i as u32 + 1;
    }
    Ok(specs)
}

fn fees(rate: Option<Decimal>, tier: Option<&str>) -> Result<Fees> {
    match (rate, tier) {
        (Some(_), Some(_)) => bail!("give a fee rate or a fee tier, not both"),
        (Some(rate), None) => {
            if rate.abs() >= Decimal::ONE {
                bail!("fee rate {rate} is a fraction of the notional (0.001 is 0.1%): it must be between -1 and 1");
            }
            Ok(Fees::flat(rate))
        }
        (None, Some(tier)) => Fees::tier(tier).map_err(anyhow::Error::msg),
        (None, None) => Ok(Fees::none()),
    }
}

/// The fill model asked for; without one, `book` for tick data (trades, a recorded feed) and
/// `next-open` for candles, by the first data file.
fn fill(text: Option<&str>, first: Option<&Path>) -> Result<FillModel> {
    if let Some(text) = text {
        return text.parse().map_err(anyhow::Error::msg);
    }
    let kind = first.map(super::run::DataKind::detect).transpose()?;
    Ok(match kind {
        Some(super::run::DataKind::Trades | super::run::DataKind::Feed) => FillModel::Book,
        _ => FillModel::NextOpen,
    })
}

/// Refuses fee rates this build does not know for what the plan trades.
fn check_fees(plan: &Plan) -> Result<()> {
    let derivative = plan.instruments.iter().find(|s| s.kind != tradebox_core::InstrumentKind::Spot);
    if let Some(spec) = derivative.filter(|_| !plan.fees.derivatives_known) {
        bail!(
            "fee tier {} has no derivatives rates in this build (only Lv1's are known): give --fee-rate for {}",
            plan.fees.tier.as_deref().unwrap_or("?"),
            spec.symbol
        );
    }
    Ok(())
}

/// The plan and plugins the arguments describe, compiled with `runtime`.
pub fn plan(args: &Args, runtime: &Runtime) -> Result<(Plan, Vec<PluginPlan>)> {
    if args.plugins.is_empty() {
        let Some(path) = args.config.as_deref() else {
            bail!("give a plugin file (quick form) or --config FILE.toml (full form)");
        };
        return full_form(Path::new(path), args, runtime);
    }
    let Some(symbol) = args.instrument.clone() else {
        bail!("--instrument SYM: which instrument the data is for");
    };
    if args.data.is_empty() {
        bail!("--data FILE: candles to replay");
    }
    let specs = instruments(std::slice::from_ref(&symbol), args.instruments.as_deref())?;
    let (mut risk, mut account) = open_limits();
    if let Some(path) = &args.risk {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: RiskFile = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        if let Some(limits) = file.risk {
            account = limits;
        }
        if let Some(limits) = file.defaults.and_then(|d| d.risk) {
            risk = limits;
        }
        risk.validate().with_context(|| format!("{}: [defaults.risk]", path.display()))?;
        account.validate().with_context(|| format!("{}: [risk]", path.display()))?;
    }
    let config = args.config.clone().unwrap_or_else(|| "{}".into());
    let config = with_symbol(&config, &symbol)?;
    let mut plugins = Vec::with_capacity(args.plugins.len());
    for path in &args.plugins {
        let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let compiled = runtime.compile(&wasm).with_context(|| format!("{}", path.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin").to_string();
        let mut name = stem.clone();
        let mut n = 1;
        while plugins.iter().any(|p: &PluginPlan| p.name == name) {
            n += 1;
            name = format!("{stem}-{n}");
        }
        plugins.push(PluginPlan {
            name,
            path: path.display().to_string(),
            compiled,
            config: config.clone(),
            grants: Grants { instruments: vec![symbol.clone()], ..Grants::default() },
            risk: risk.clone(),
            limits: Limits::default(),
        });
    }
    let balances = if args.balance.is_empty() {
        default_balances()
    } else {
        args.balance.iter().map(|b| parse_balance(b)).collect::<Result<_>>()?
    };
    let plan = Plan {
        instruments: specs,
        data: args.data.iter().map(|p| DataFile { path: p.clone(), symbol: symbol.clone(), loaded: None }).collect(),
        from_ms: args.from.as_deref().map(parse_time).transpose()?,
        to_ms: args.to.as_deref().map(parse_time).transpose()?,
        fill: fill(args.fill.as_deref(), args.data.first().map(PathBuf::as_path))?,
        fees: fees(args.fee_rate, args.fee_tier.as_deref())?,
        leverage: Decimal::ONE,
        balances,
        account,
        equity_dir: args.report.clone(),
        funding: Vec::new(),
    };
    let plan = with_funding(plan, args.funding.as_deref())?;
    check_fees(&plan)?;
    Ok((plan, plugins))
}

fn with_funding(mut plan: Plan, file: Option<&Path>) -> Result<Plan> {
    if let Some(path) = file {
        plan.funding = super::funding::read(path, &plan.instruments)?;
        if plan.funding.is_empty() {
            tracing::warn!(file = %path.display(), "the funding file has no rate for an instrument of the run");
        }
    }
    Ok(plan)
}

/// The quick form's config with `symbol` set to the instrument when the plugin's config does
/// not name one (the shipped strategies read it; a plugin without the setting is told by
/// its manifest's schema, which drops nothing it declares).
fn with_symbol(config: &str, symbol: &str) -> Result<String> {
    let mut value: serde_json::Value =
        serde_json::from_str(config).with_context(|| format!("--config {config:?} is not JSON"))?;
    let Some(map) = value.as_object_mut() else { bail!("--config must be a JSON object, like {{\"fast\": 10}}") };
    map.entry("symbol").or_insert_with(|| serde_json::Value::String(symbol.to_string()));
    Ok(value.to_string())
}

fn full_form(path: &Path, args: &Args, runtime: &Runtime) -> Result<(Plan, Vec<PluginPlan>)> {
    let quick_only = [
        ("--instrument", args.instrument.is_some()),
        ("--data", !args.data.is_empty()),
        ("--balance", !args.balance.is_empty()),
        ("--risk", args.risk.is_some()),
        ("--instruments", args.instruments.is_some()),
    ];
    if let Some((flag, _)) = quick_only.iter().find(|(_, given)| *given) {
        bail!("{flag} belongs to the quick form; with --config FILE.toml set it in the file's [backtest] section");
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
    let file: BacktestFile = toml::from_str(&text).with_context(|| format!("config {}", path.display()))?;
    if let Some(unknown) = file.rest.keys().find(|k| !LIVE_SECTIONS.contains(&k.as_str())) {
        bail!("config {}: unknown section [{unknown}]", path.display());
    }
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let section = &file.backtest;
    if section.data.is_empty() {
        bail!("config {}: [backtest] data is empty: name the candle files and their instruments", path.display());
    }
    if file.plugins.is_empty() {
        bail!("config {}: no [[plugin]] to run", path.display());
    }
    let mut symbols: Vec<String> = Vec::new();
    for entry in &section.data {
        if !symbols.contains(&entry.instrument) {
            symbols.push(entry.instrument.clone());
        }
    }
    let specs = instruments(&symbols, section.instruments_file.as_ref().map(|f| base.join(f)).as_deref())?;
    file.risk.validate().with_context(|| format!("config {}: [risk]", path.display()))?;
    let mut plugins = Vec::with_capacity(file.plugins.len());
    for (i, p) in file.plugins.iter().enumerate() {
        p.validate(&file.defaults).with_context(|| format!("config {}: plugin #{}", path.display(), i + 1))?;
        if plugins.iter().any(|q: &PluginPlan| q.name == p.name) {
            bail!("config {}: two plugins are named {}", path.display(), p.name);
        }
        let spec = p.spec(&file.defaults, &base, None)?;
        let compiled = runtime.compile(&spec.wasm).with_context(|| format!("plugin {}", p.name))?;
        plugins.push(PluginPlan {
            name: spec.name,
            path: base.join(&p.path).display().to_string(),
            compiled,
            config: spec.config,
            grants: spec.grants,
            risk: spec.risk,
            limits: spec.limits,
        });
    }
    let balances = if section.balances.is_empty() {
        default_balances()
    } else {
        section.balances.iter().map(|(c, a)| (c.to_ascii_uppercase(), *a)).collect()
    };
    for (currency, amount) in &balances {
        check_balance(currency, *amount).with_context(|| format!("config {}", path.display()))?;
    }
    let leverage = section.leverage.unwrap_or(Decimal::ONE);
    if leverage <= Decimal::ZERO || leverage > Decimal::from(125) {
        bail!("config {}: leverage = {leverage}: from above 0 to 125 (OKX's most)", path.display());
    }
    let plan = Plan {
        instruments: specs,
        data: section
            .data
            .iter()
            .map(|d| DataFile { path: base.join(&d.file), symbol: d.instrument.clone(), loaded: None })
            .collect(),
        from_ms: args.from.as_deref().or(section.from.as_deref()).map(parse_time).transpose()?,
        to_ms: args.to.as_deref().or(section.to.as_deref()).map(parse_time).transpose()?,
        fill: fill(
            args.fill.as_deref().or(section.fill.as_deref()),
            section.data.first().map(|d| base.join(&d.file)).as_deref(),
        )?,
        fees: fees(args.fee_rate.or(section.fee_rate), args.fee_tier.as_deref().or(section.fee_tier.as_deref()))?,
        leverage,
        balances,
        account: file.risk,
        equity_dir: args.report.clone(),
        funding: Vec::new(),
    };
    let funding = args.funding.clone().or_else(|| section.funding.as_ref().map(|f| base.join(f)));
    let plan = with_funding(plan, funding.as_deref())?;
    check_fees(&plan)?;
    Ok((plan, plugins))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_balances_and_fees_read_as_documented() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("2024-01-01").unwrap(), 1_704_067_200_000);
        assert_eq!(parse_time("2024-01-01T00:01:00Z").unwrap(), 1_704_067_260_000);
        assert!(parse_time("yesterday").unwrap_err().to_string().contains("not a time"));
        assert_eq!(parse_time("2024-01-01T08:00:00+08:00").unwrap(), 1_704_067_200_000);
        assert!(parse_time("2024-01-01T00:00:00€abcd").is_err());
        assert_eq!(parse_balance("usdt=100.5").unwrap(), ("USDT".into(), "100.5".parse().unwrap()));
        assert!(parse_balance("USDT").is_err());
        assert!(parse_balance("USDT=-1").is_err());
        assert_eq!(fees(None, Some("vip1")).unwrap().spot.taker, "0.0008".parse().unwrap());
        assert!(fees(Some(Decimal::ONE), None).is_err());
        assert!(fees(None, Some("gold")).unwrap_err().to_string().contains("Lv1"));
        assert_eq!(fees(None, Some("Lv2")).unwrap().spot.taker, "0.00095".parse().unwrap());
        assert!(fees(None, Some("Lv1")).unwrap().derivatives_known);
        assert!(!fees(None, Some("VIP3")).unwrap().derivatives_known);
    }

    #[test]
    fn the_quick_form_names_the_symbol_unless_told() {
        assert_eq!(with_symbol("{}", "ETH-USDT").unwrap(), r#"{"symbol":"ETH-USDT"}"#);
        assert_eq!(with_symbol(r#"{"symbol":"X"}"#, "ETH-USDT").unwrap(), r#"{"symbol":"X"}"#);
        assert!(with_symbol("[1]", "X").is_err());
    }

    #[test]
    fn unknown_instruments_say_where_rules_come_from() {
        let e = instruments(&["DOGE-USDT".into()], None).unwrap_err().to_string();
        assert!(e.contains("--instruments FILE") && e.contains("BTC-USDT"), "{e}");
        let specs = instruments(&["ETH-USDT".into(), "BTC-USDT".into()], None).unwrap();
        assert_eq!(
            specs.iter().map(|s| (s.id, s.symbol.as_str())).collect::<Vec<_>>(),
            vec![(1, "ETH-USDT"), (2, "BTC-USDT")]
        );
    }
}
