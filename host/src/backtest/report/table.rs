//! The summary a terminal shows at the end of a run.

use std::fmt::Write as _;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::text::{StatsRow, stats_header, throughput, visible};
use crate::backtest::results::RunReport;

/// The run as plain text: one row per plugin and a total row, a line with the replay's
/// throughput, then each fault on its own line.
///
/// Plain ASCII and never colours (comfy-table is built without its terminal feature), so the
/// same text reads in a terminal, a log file or a CI page; columns keep their full width (no
/// wrapping to the terminal) so figures are never split across lines.
pub fn table(report: &RunReport) -> String {
    let mut t = Table::new();
    t.load_style(presets::ASCII_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(stats_header(report.replayed_unit()));
    for plugin in &report.plugins {
        let mut row = vec![visible(&plugin.name)];
        row.extend(StatsRow::plugin(report, &plugin.stats).cells());
        t.add_row(row);
    }
    let mut total = vec!["total".to_owned()];
    total.extend(StatsRow::total(report).cells());
    t.add_row(total);
    for column in t.column_iter_mut().skip(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }

    let mut out = t.to_string();
    out.push('\n');
    out.push_str(&throughput(report));
    out.push('\n');
    for plugin in &report.plugins {
        if let Some(fault) = &plugin.fault {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "fault: {}: {}", visible(&plugin.name), visible(fault));
        }
    }
    out
}
