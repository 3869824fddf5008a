//! The trades and the figures as CSV, for spreadsheets and scripts: every value at full
//! precision (the table and the page round, these do not).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::text::{direction, net, rfc3339, win_rate};
use super::{ReportError, ensure_dir};
use crate::backtest::results::{RunReport, Stats};

/// Columns of `trades.csv`.
pub(super) const TRADES_HEADER: [&str; 13] = [
    "plugin",
    "symbol",
    "direction",
    "entry_ms",
    "entry_time",
    "entry_price",
    "exit_ms",
    "exit_time",
    "exit_price",
    "size",
    "pnl",
    "fees",
    "net",
];

/// Columns of `summary.csv`: which row it is, the run's `bars` (or ticks: the name is
/// `--json`'s, whatever the data), then the [`Stats`] fields by their names and in their order
/// (and the win rate they imply), then the plugin's fault. `scope` is `plugin` or `total`, so a
/// plugin named "total" stays a plugin. `events` is [`Stats::events`] as `--json` gives it: on a
/// plugin's row the events it was handed, on the total's the bars or ticks replayed.
pub(super) const SUMMARY_HEADER: [&str; 22] = [
    "scope",
    "plugin",
    "bars",
    "events",
    "orders",
    "denied",
    "fills",
    "round_trips",
    "wins",
    "win_rate",
    "pnl",
    "realized",
    "unrealized",
    "fees",
    "funding",
    "max_drawdown",
    "max_drawdown_pct",
    "sharpe",
    "start_equity",
    "end_equity",
    "open_positions",
    "fault",
];

/// Writes `trades.csv` (every plugin's round trips, oldest first per plugin, in the plugins'
/// order) and `summary.csv` (one row per plugin, then the total) into `dir`, and returns their
/// paths in that order.
///
/// Times are given twice, as ms (exact, for scripts) and as RFC 3339 UTC (for people); the
/// latter is empty for a time RFC 3339 cannot hold (before 1970). A Sharpe ratio or a win rate
/// without a value is an empty field, not zero: zero is a value.
pub fn write_csv(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    ensure_dir(dir)?;
    let trades = dir.join("trades.csv");
    write_trades(report, &trades)?;
    let summary = dir.join("summary.csv");
    write_summary(report, &summary)?;
    Ok(vec![trades, summary])
}

fn create(path: &Path) -> Result<csv::Writer<File>, ReportError> {
    let file = File::create(path).map_err(ReportError::io(path))?;
    Ok(csv::Writer::from_writer(file))
}

fn time_field(ms: i64) -> String {
    rfc3339(ms).map(|t| t.to_string()).unwrap_or_default()
}

/// A text cell from the run's inputs (a plugin's name, a symbol, a fault): one that a
/// spreadsheet would take for a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage
/// return) gets a leading `'`, the spreadsheets' own mark for "this is text".
fn text(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell.to_owned() }
}

fn write_trades(report: &RunReport, path: &Path) -> Result<(), ReportError> {
    let mut w = create(path)?;
    w.write_record(TRADES_HEADER).map_err(ReportError::csv(path))?;
    for plugin in &report.plugins {
        for t in &plugin.trades {
            let record = [
                text(&plugin.name),
                text(&t.symbol),
                direction(t.direction).to_owned(),
                t.entry_ms.to_string(),
                time_field(t.entry_ms),
                t.entry_price.to_string(),
                t.exit_ms.to_string(),
                time_field(t.exit_ms),
                t.exit_price.to_string(),
                t.size.to_string(),
                t.pnl.to_string(),
                t.fees.to_string(),
                net(t).to_string(),
            ];
            w.write_record(&record).map_err(ReportError::csv(path))?;
        }
    }
    w.flush().map_err(ReportError::io(path))
}

fn summary_record(scope: &str, name: &str, bars: u64, s: &Stats, fault: Option<&str>) -> [String; 22] {
    let positions: Vec<String> = s.open_positions.iter().map(|(sym, size)| format!("{sym}:{size}")).collect();
    [
        scope.to_owned(),
        text(name),
        bars.to_string(),
        s.events.to_string(),
        s.orders.to_string(),
        s.denied.to_string(),
        s.fills.to_string(),
        s.round_trips.to_string(),
        s.wins.to_string(),
        win_rate(s).map(|x| x.to_string()).unwrap_or_default(),
        s.pnl.to_string(),
        s.realized.to_string(),
        s.unrealized.to_string(),
        s.fees.to_string(),
        s.funding.to_string(),
        s.max_drawdown.to_string(),
        s.max_drawdown_pct.to_string(),
        s.sharpe.map(|x| x.to_string()).unwrap_or_default(),
        s.start_equity.to_string(),
        s.end_equity.to_string(),
        // `SYMBOL:size` pairs joined by `;` keep the file one row per plugin.
        text(&positions.join(";")),
        text(fault.unwrap_or_default()),
    ]
}

fn write_summary(report: &RunReport, path: &Path) -> Result<(), ReportError> {
    let mut w = create(path)?;
    w.write_record(SUMMARY_HEADER).map_err(ReportError::csv(path))?;
    for p in &report.plugins {
        w.write_record(summary_record("plugin", &p.name, report.events, &p.stats, p.fault.as_deref()))
            .map_err(ReportError::csv(path))?;
    }
    w.write_record(summary_record("total", "", report.events, &report.total, None)).map_err(ReportError::csv(path))?;
    w.flush().map_err(ReportError::io(path))
}
