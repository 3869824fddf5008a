//! How figures and times read, shared by the terminal table, the HTML page and the CSV files so
//! that one figure never reads two ways.

use std::time::{Duration, UNIX_EPOCH};

use crate::backtest::results::{Direction, RoundTrip, RunReport, Stats};

/// The first instant humantime cannot write (year 10000): it refuses rather than guessing.
const RFC3339_END_MS: i64 = 253_402_300_800_000;

/// A time in ms as RFC 3339 UTC with milliseconds, or `None` when it cannot be written that
/// way (before 1970: humantime panics there; after 9999: it fails). Callers fall back to the
/// raw ms, which every rendering keeps beside it anyway.
pub(super) fn rfc3339(ms: i64) -> Option<humantime::Rfc3339Timestamp> {
    if !(0..RFC3339_END_MS).contains(&ms) {
        return None;
    }
    let since = Duration::from_millis(u64::try_from(ms).ok()?);
    UNIX_EPOCH.checked_add(since).map(humantime::format_rfc3339_millis)
}

/// [`rfc3339`] as text, the ms themselves when the time cannot be written.
pub(super) fn time_text(ms: i64) -> String {
    match rfc3339(ms) {
        Some(t) => t.to_string(),
        None => format!("{ms} ms"),
    }
}

/// Money in a quote currency: cents for ordinary amounts, four significant digits for amounts
/// under a cent (fees on small trades, prices of cheap coins) so they do not all read 0.00.
pub(super) fn money(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let abs = x.abs();
    if abs == 0.0 {
        // Not `{:.2}`: a -0.0 (a loss rounded to nothing) would read "-0.00".
        return "0.00".to_owned();
    }
    if abs >= 0.01 {
        return format!("{x:.2}");
    }
    if abs < 1e-12 {
        return format!("{x:.3e}");
    }
    // Digits after the point for four significant digits: 0.001234 → 6.
    let decimals = (3 - abs.log10().floor() as i32).clamp(2, 15) as usize;
    format!("{x:.decimals$}")
}

/// A price: eight significant digits (a price of 2250.007 keeps its last digit, which cents
/// would round away), at least two decimals, no trailing zeros beyond them.
pub(super) fn price(x: f64) -> String {
    let abs = x.abs();
    if !x.is_finite() || abs < 0.01 {
        return money(x);
    }
    let before = abs.log10().floor() as i32 + 1;
    let decimals = (8 - before).clamp(2, 15) as usize;
    let s = format!("{x:.decimals$}");
    match s.find('.') {
        Some(point) => {
            let keep = s.trim_end_matches('0').len().max(point + 3);
            s[..keep].to_owned()
        }
        None => s,
    }
}

/// A fraction as a percentage with two decimals.
pub(super) fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return fraction.to_string();
    }
    format!("{:.2}%", fraction * 100.0)
}

/// Shown where a figure has no value (a Sharpe ratio of flat returns, a win rate of no trades).
pub(super) const NONE: &str = "—";

/// Share of round trips that won, `None` without round trips.
pub(super) fn win_rate(stats: &Stats) -> Option<f64> {
    (stats.round_trips > 0).then(|| stats.wins as f64 / stats.round_trips as f64)
}

/// A trade's result after fees.
pub(super) fn net(trade: &RoundTrip) -> f64 {
    trade.pnl - trade.fees
}

/// The word the CSV files and the page use for a direction (the serde name).
pub(super) fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Long => "long",
        Direction::Short => "short",
    }
}

/// Columns of the stats table after the name, terminal and HTML alike.
pub(super) const STATS_COLUMNS: usize = 14;

/// Column titles of the stats table, terminal and HTML alike; `unit` is the run's
/// [`RunReport::replayed_unit`]. What a plugin was handed and what the run replayed are two
/// columns: one column of both read as bars on one row and as order reports on the next.
pub(super) fn stats_header(unit: &'static str) -> [&'static str; STATS_COLUMNS + 1] {
    [
        "plugin",
        unit,
        "delivered",
        "orders",
        "denied",
        "fills",
        "round trips",
        "win rate",
        "PnL",
        "fees",
        "funding",
        "max DD",
        "max DD %",
        "Sharpe",
        "end equity",
    ]
}

/// One row of the stats table: a plugin's figures, with its `delivered` events, or the total's
/// with every plugin's summed. The run's `replayed` count stands on every row so that no row
/// has a blank where a figure reads as missing.
pub(super) struct StatsRow<'a> {
    /// The run's bars or ticks.
    pub replayed: u64,
    /// Events handed to the plugin (the total: to all of them).
    pub delivered: u64,
    /// The rest of the figures.
    pub stats: &'a Stats,
}

impl<'a> StatsRow<'a> {
    /// A plugin's row.
    pub fn plugin(report: &RunReport, stats: &'a Stats) -> Self {
        Self { replayed: report.events, delivered: stats.events, stats }
    }

    /// The total's row: [`Stats::events`] of the total is the run's count, not a sum, so the
    /// plugins' are summed here.
    pub fn total(report: &'a RunReport) -> Self {
        let delivered = report.plugins.iter().map(|p| p.stats.events).sum();
        Self { replayed: report.events, delivered, stats: &report.total }
    }

    /// Its cells (all but the name), under [`stats_header`]'s titles.
    pub fn cells(&self) -> [String; STATS_COLUMNS] {
        let stats = self.stats;
        [
            self.replayed.to_string(),
            self.delivered.to_string(),
            stats.orders.to_string(),
            stats.denied.to_string(),
            stats.fills.to_string(),
            stats.round_trips.to_string(),
            win_rate(stats).map_or_else(|| NONE.to_owned(), percent),
            money(stats.pnl),
            money(stats.fees),
            money(stats.funding),
            money(stats.max_drawdown),
            percent(stats.max_drawdown_pct),
            stats.sharpe.map_or_else(|| NONE.to_owned(), |s| format!("{s:.2}")),
            money(stats.end_equity),
        ]
    }
}

/// The line under the table: how much was replayed and how fast, in the run's unit.
pub(super) fn throughput(report: &RunReport) -> String {
    let unit = report.replayed_unit();
    format!("{} {unit} in {:.3} s ({:.0} {unit}/s)", report.events, report.elapsed_s, report.events_per_s)
}

/// Text with its control characters (escape sequences, line breaks) written as escapes, so a
/// name or a fault cannot move a terminal's cursor, recolour it or split a line, and shows on a
/// page what it held rather than nothing.
pub(super) fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
