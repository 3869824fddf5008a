//! What a backtest found, in types: per plugin and in total, with the run's inputs. The
//! terminal table, `--json`, the HTML report and the CSV files are all renderings of these.

use serde::Serialize;

/// The whole outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// What went in (files and their hashes, settings): enough to run it again.
    pub inputs: Inputs,
    /// One per plugin, in the order they were given.
    pub plugins: Vec<PluginReport>,
    /// The account as a whole: the sum of the plugins' figures, its own equity curve.
    pub total: Stats,
    /// Bars (or, on tick data, market events) replayed: what `--json` calls `bars`.
    pub events: u64,
    /// Wall time of the replay itself (loading and compiling excluded), seconds.
    pub elapsed_s: f64,
    /// `events / elapsed_s`.
    pub events_per_s: f64,
    /// The instruments' prices over the run, thinned to at most [`CURVE_POINTS`] points.
    pub prices: Vec<PriceSeries>,
    /// The account's equity over the run (same thinning).
    pub equity: Vec<Point>,
}

impl RunReport {
    /// The word for what [`RunReport::events`] counts, for headers and rates: see
    /// [`replayed_unit`].
    pub fn replayed_unit(&self) -> &'static str {
        replayed_unit(&self.inputs.fill)
    }
}

/// The word for what a run with the fill model `fill` replays: `ticks` under `book` (the one
/// model tick data takes, and tick data only), else `bars`. A count read without its unit was
/// taken for bars on tick data, where it is trades, tickers and book updates.
pub fn replayed_unit(fill: &str) -> &'static str {
    if fill == "book" { "ticks" } else { "bars" }
}

/// The most points a curve keeps: longer runs are thinned evenly (memory stays flat in the
/// length of the data; the CSV files keep every bar).
pub const CURVE_POINTS: usize = 4_000;

/// What went into a run.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    /// Data files, in the order given.
    pub data: Vec<FileInput>,
    /// Plugin files with their config.
    pub plugins: Vec<PluginInput>,
    /// Instrument symbols traded.
    pub instruments: Vec<String>,
    /// Replay only from this time (ms, inclusive).
    pub from_ms: Option<i64>,
    /// Replay only up to this time (ms, exclusive).
    pub to_ms: Option<i64>,
    /// The fill model's name (`next-open`, `close`, `book`).
    pub fill: String,
    /// Fee rates as fractions, of the first instrument's kind: maker, taker (negative is a
    /// rebate).
    pub maker_fee: f64,
    /// Taker fee rate.
    pub taker_fee: f64,
    /// The fee tier named, if the rates came from one.
    pub fee_tier: Option<String>,
    /// Starting balances, currency and amount.
    pub balances: Vec<(String, f64)>,
    /// The tradebox version that ran it.
    pub version: String,
}

/// One input file.
#[derive(Debug, Clone, Serialize)]
pub struct FileInput {
    /// As given on the command line or in the config.
    pub path: String,
    /// sha256 of its bytes, hex.
    pub sha256: String,
}

/// One plugin as run.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInput {
    /// Its name in the run.
    pub name: String,
    /// The file.
    pub path: String,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// The config `init` received (JSON, defaults filled in).
    pub config: String,
}

/// One plugin's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PluginReport {
    /// Its name in the run.
    pub name: String,
    /// Its figures.
    pub stats: Stats,
    /// Closed trades, oldest first.
    pub trades: Vec<RoundTrip>,
    /// Its equity (starting value plus PnL) over the run, thinned.
    pub equity: Vec<Point>,
    /// Why it stopped early (a trap, a refused start), if it did: the run carried on without it.
    pub fault: Option<String>,
}

/// Figures of a plugin or the account. Money is in the instruments' quote currency.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// A plugin's: the events its instance was handed (market data, its orders' reports and
    /// fills, timers). The total's: the bars or ticks replayed, as [`RunReport::events`] (so
    /// `--json` keeps the meaning it always had; renderings that sum the plugins say so).
    pub events: u64,
    /// The events handed to the plugin (the total's: summed over the plugins): one meaning on
    /// every row, where `events` has two.
    pub delivered: u64,
    /// Orders the host accepted and sent to the simulated venue.
    pub orders: u64,
    /// Intents the host refused (risk, permissions), by the same checks as live.
    pub denied: u64,
    /// Fills.
    pub fills: u64,
    /// Closed trades (a position opened and brought back to flat, or flipped).
    pub round_trips: u64,
    /// Closed trades with a positive result after fees.
    pub wins: u64,
    /// Realised PnL plus open positions marked at the last price, fees and funding deducted.
    pub pnl: f64,
    /// Of which realised (before fees).
    pub realized: f64,
    /// Of which open positions at the last price.
    pub unrealized: f64,
    /// Fees paid (positive) or rebates earned (negative).
    pub fees: f64,
    /// Swap funding paid (positive) or received (negative); 0 without a funding file.
    pub funding: f64,
    /// The largest fall of equity from a peak, in money.
    pub max_drawdown: f64,
    /// The same as a fraction of that peak.
    pub max_drawdown_pct: f64,
    /// Annualised Sharpe ratio of per-bar equity returns (risk-free rate 0), `None` when the
    /// returns have no spread (no trades, or too few bars).
    pub sharpe: Option<f64>,
    /// Equity at the start.
    pub start_equity: f64,
    /// Equity at the end.
    pub end_equity: f64,
    /// Position per instrument at the end (signed), symbol and size.
    pub open_positions: Vec<(String, f64)>,
}

/// A closed trade.
#[derive(Debug, Clone, Serialize)]
pub struct RoundTrip {
    /// Instrument symbol.
    pub symbol: String,
    /// `long` or `short`.
    pub direction: Direction,
    /// When the position opened (the first fill), ms.
    pub entry_ms: i64,
    /// Average entry price.
    pub entry_price: f64,
    /// When it closed (the fill that brought it to flat), ms.
    pub exit_ms: i64,
    /// Average exit price.
    pub exit_price: f64,
    /// Largest size held.
    pub size: f64,
    /// Result before fees.
    pub pnl: f64,
    /// Fees of its fills.
    pub fees: f64,
}

/// Which way a trade was held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Bought first.
    Long,
    /// Sold first.
    Short,
}

/// One point of a curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// ms since the Unix epoch.
    pub ts_ms: i64,
    /// The value.
    pub value: f64,
}

/// An instrument's price over the run, for the chart the trades are drawn on.
#[derive(Debug, Clone, Serialize)]
pub struct PriceSeries {
    /// Symbol.
    pub symbol: String,
    /// Closes, thinned.
    pub points: Vec<Point>,
}
