//! `report.html`: one self-contained page (inline CSS, inline SVG, no script, nothing fetched)
//! that can be archived with the run and opened offline, and `report.json` beside it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use super::charts::{self, Curve, Trades};
use super::text::{
    STATS_COLUMNS, StatsRow, direction, money, net, price, stats_header, throughput, time_text, visible,
};
use super::{ReportError, ensure_dir};
use crate::backtest::results::{Inputs, Point, RoundTrip, RunReport};

/// Trades listed per plugin on the page: beyond that a page gets slow to open, and
/// `trades.csv` has them all.
const LISTED_TRADES: usize = 500;

/// The page's style: readable on a laptop (one column, at most ~1100 px wide), tables that
/// scroll sideways rather than squeeze, hashes in monospace so they can be compared by eye.
const CSS: &str = include_str!("../../../../console/src/base.css");

/// Writes `report.html` and `report.json` into `dir` (created if missing) and returns the
/// page's path.
///
/// The page shows what went in (every file and plugin with its sha256, the settings), the
/// figures per plugin and in total (those of [`table`](fn@super::table)), the equity and drawdown
/// curves, and each instrument's price with the trades on it. Every string from the inputs is
/// escaped, so a plugin named `<script>` reads as that text.
pub fn write_html(report: &RunReport, dir: &Path) -> Result<PathBuf, ReportError> {
    ensure_dir(dir)?;
    let page = page(report)?;
    let path = dir.join("report.html");
    std::fs::write(&path, page).map_err(ReportError::io(&path))?;
    write_json(report, dir)?;
    Ok(path)
}

/// Writes `report.json` (the whole [`RunReport`], pretty-printed) into `dir` and returns its
/// path: what the page shows, for scripts. Figures that are not finite are written as `null`.
pub fn write_json(report: &RunReport, dir: &Path) -> Result<PathBuf, ReportError> {
    ensure_dir(dir)?;
    let path = dir.join("report.json");
    let file = File::create(&path).map_err(ReportError::io(&path))?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, report)
        .map_err(|source| ReportError::Json { path: path.clone(), source })?;
    out.write_all(b"\n").and_then(|()| out.flush()).map_err(ReportError::io(&path))?;
    Ok(path)
}

/// Text made safe for anywhere in the page, element content or quoted attribute.
fn esc(s: &str) -> Cow<'_, str> {
    html_escape::encode_safe(s)
}

/// How far equity is below its running peak at each point (zero or negative): the curve
/// behind the maximum drawdown, drawn hanging below zero.
pub(super) fn drawdown(points: &[Point]) -> Vec<Point> {
    let mut peak = f64::NEG_INFINITY;
    points
        .iter()
        .map(|p| {
            // A NaN never becomes the peak (the comparison is false) and stays NaN below.
            if p.value > peak {
                peak = p.value;
            }
            Point { ts_ms: p.ts_ms, value: p.value - peak }
        })
        .collect()
}

/// A fee rate as a percentage with as many decimals as it needs (up to 4): 0.0008 → 0.08%.
fn fee_rate(fraction: f64) -> String {
    let s = format!("{:.4}", fraction * 100.0);
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    format!("{s}%")
}

/// Instruments to chart: those with prices, in their order, then any only traded.
fn symbols(report: &RunReport) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let traded = report.plugins.iter().flat_map(|p| &p.trades).map(|t| t.symbol.as_str());
    for s in report.prices.iter().map(|p| p.symbol.as_str()).chain(traded) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

// Writing to a String cannot fail: the `let _ =` below drop an `Ok(())`.

fn page(report: &RunReport) -> Result<String, ReportError> {
    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(h, "<title>Backtest: {}</title>", esc(&report.inputs.instruments.join(", ")));
    let _ = writeln!(h, "<style>{CSS}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(
        h,
        "<h1>Backtest report</h1>\n<p class=\"muted\">{} · {} · tradebox {}</p>",
        esc(&report.inputs.instruments.join(", ")),
        esc(&period(&report.inputs)),
        esc(&report.inputs.version)
    );
    inputs(&mut h, &report.inputs);
    results(&mut h, report);
    curves(&mut h, report)?;
    instruments(&mut h, report)?;
    trades(&mut h, report);
    h.push_str("</main>\n</body>\n</html>\n");
    Ok(h)
}

fn period(inputs: &Inputs) -> String {
    let from = inputs.from_ms.map_or_else(|| "the start of the data".to_owned(), time_text);
    let to = inputs.to_ms.map_or_else(|| "the end of the data".to_owned(), time_text);
    format!("from {from} to {to}")
}

fn inputs(h: &mut String, i: &Inputs) {
    h.push_str("<h2>Inputs</h2>\n<div class=\"scroll\"><table>\n");
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    };
    row("instruments", &i.instruments.join(", "));
    row("from (inclusive)", &i.from_ms.map_or_else(|| "start of the data".to_owned(), time_text));
    row("to (exclusive)", &i.to_ms.map_or_else(|| "end of the data".to_owned(), time_text));
    row("fill model", &i.fill);
    let tier = i.fee_tier.as_deref().map(|t| format!(" (tier {t})")).unwrap_or_default();
    row("fees", &format!("maker {}, taker {}{tier}", fee_rate(i.maker_fee), fee_rate(i.taker_fee)));
    let balances: Vec<String> = i.balances.iter().map(|(ccy, amount)| format!("{} {ccy}", money(*amount))).collect();
    row("starting balances", &balances.join(", "));
    row("tradebox version", &i.version);
    h.push_str("</table></div>\n");

    h.push_str("<h3>Data files</h3>\n<div class=\"scroll\"><table>\n<tr><th>path</th><th>sha256</th></tr>\n");
    for f in &i.data {
        let _ =
            writeln!(h, "<tr><td><code>{}</code></td><td class=\"hash\">{}</td></tr>", esc(&f.path), esc(&f.sha256));
    }
    h.push_str("</table></div>\n");

    h.push_str("<h3>Plugins</h3>\n<div class=\"scroll\"><table>\n");
    h.push_str("<tr><th>name</th><th>file</th><th>sha256</th><th>config</th></tr>\n");
    for (n, p) in i.plugins.iter().enumerate() {
        // Pretty-printed when it parses (it normally does: the host wrote it), as given if not.
        let config = serde_json::from_str::<serde_json::Value>(&p.config)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| p.config.clone());
        let _ = writeln!(
            h,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td><code>{}</code></td>\
             <td class=\"hash\">{}</td><td><pre>{}</pre></td></tr>",
            charts::css(charts::colour(n)),
            esc(&p.name),
            esc(&p.path),
            esc(&p.sha256),
            esc(&config)
        );
    }
    h.push_str("</table></div>\n");
}

fn results(h: &mut String, report: &RunReport) {
    h.push_str("<h2>Results</h2>\n<div class=\"scroll\"><table>\n<tr>");
    for (n, title) in stats_header(report.replayed_unit()).iter().enumerate() {
        let class = if n == 0 { "" } else { " class=\"num\"" };
        let _ = write!(h, "<th{class}>{}</th>", esc(title));
    }
    h.push_str("</tr>\n");
    let row = |h: &mut String, class: &str, name: &str, cells: [String; STATS_COLUMNS]| {
        let _ = write!(h, "<tr{class}><td>{name}</td>");
        for c in cells {
            let _ = write!(h, "<td class=\"num\">{}</td>", esc(&c));
        }
        h.push_str("</tr>\n");
    };
    for (n, p) in report.plugins.iter().enumerate() {
        let name = format!(
            "<span class=\"swatch\" style=\"background:{}\"></span>{}",
            charts::css(charts::colour(n)),
            esc(&p.name)
        );
        row(h, "", &name, StatsRow::plugin(report, &p.stats).cells());
    }
    row(h, " class=\"total\"", "total", StatsRow::total(report).cells());
    h.push_str("</table></div>\n");
    let _ = writeln!(
        h,
        "<p class=\"muted\">{}. {}: replayed by the run; delivered: the events a plugin was handed \
         (market data, its orders' reports and fills, timers). Money in the instruments' quote currency; PnL \
         after fees and funding (funding paid is positive), open positions marked at the last price.</p>",
        esc(&throughput(report)),
        report.replayed_unit()
    );
    let faults: Vec<_> = report.plugins.iter().filter_map(|p| p.fault.as_ref().map(|f| (&p.name, f))).collect();
    if !faults.is_empty() {
        h.push_str("<h3>Faults</h3>\n<ul>\n");
        for (name, fault) in faults {
            let _ = writeln!(h, "<li class=\"fault\"><b>{}</b>: {}</li>", esc(name), esc(&visible(fault)));
        }
        h.push_str("</ul>\n<p class=\"muted\">The run carried on without a faulted plugin.</p>\n");
    }
    let open: Vec<String> = report
        .total
        .open_positions
        .iter()
        .filter(|(_, size)| *size != 0.0)
        .map(|(sym, size)| format!("{sym} {size}"))
        .collect();
    if !open.is_empty() {
        let _ = writeln!(h, "<p>Open at the end: {}</p>", esc(&open.join(", ")));
    }
}

fn figure(h: &mut String, svg: Option<String>, caption: &str, empty: &str) {
    match svg {
        Some(svg) => {
            let _ = writeln!(h, "<figure>\n{svg}\n<figcaption>{caption}</figcaption>\n</figure>");
        }
        None => {
            let _ = writeln!(h, "<p class=\"muted\">{empty}</p>");
        }
    }
}

fn curves(h: &mut String, report: &RunReport) -> Result<(), ReportError> {
    h.push_str("<h2>Equity</h2>\n");
    // The total last, drawn over the plugins' curves it often coincides with.
    let mut equity: Vec<Curve<'_>> = report
        .plugins
        .iter()
        .enumerate()
        .map(|(n, p)| Curve { name: &p.name, colour: charts::colour(n), points: &p.equity })
        .collect();
    equity.push(Curve { name: "total", colour: charts::INK, points: &report.equity });
    let svg = charts::line_chart("Equity", "equity", &equity)?;
    figure(h, svg, "The account's equity and each plugin's (its start plus its PnL), thinned.", "No equity points.");

    let drawdowns: Vec<Vec<Point>> = equity.iter().map(|c| drawdown(c.points)).collect();
    let curves: Vec<Curve<'_>> =
        equity.iter().zip(&drawdowns).map(|(c, d)| Curve { name: c.name, colour: c.colour, points: d }).collect();
    let svg = charts::line_chart("Drawdown", "below peak", &curves)?;
    figure(
        h,
        svg,
        "How far each equity curve is below its running peak, in money; its lowest point is the \
         maximum drawdown (the table's comes from every bar, this from the thinned curve).",
        "No equity points.",
    );
    Ok(())
}

fn instruments(h: &mut String, report: &RunReport) -> Result<(), ReportError> {
    h.push_str("<h2>Prices and trades</h2>\n");
    let symbols = symbols(report);
    if symbols.is_empty() {
        h.push_str("<p class=\"muted\">No prices and no trades.</p>\n");
    }
    for symbol in symbols {
        let prices = report.prices.iter().find(|p| p.symbol == symbol).map_or(&[][..], |p| &p.points);
        let trades: Vec<Trades<'_>> = report
            .plugins
            .iter()
            .enumerate()
            .map(|(n, p)| Trades {
                plugin: &p.name,
                colour: charts::colour(n),
                trades: p.trades.iter().filter(|t| t.symbol == symbol).collect(),
            })
            .filter(|t| !t.trades.is_empty())
            .collect();
        let _ = writeln!(h, "<h3>{}</h3>", esc(symbol));
        let svg = charts::price_chart(symbol, prices, &trades)?;
        figure(
            h,
            svg,
            "Close prices (thinned). Each trade in its plugin's colour: ▲ a buy, ▼ a sell; filled at the entry, \
             hollow at the exit (long: ▲ then ▽, short: ▼ then △); a line joins entry and exit.",
            "No prices.",
        );
    }
    Ok(())
}

fn trade_row(h: &mut String, t: &RoundTrip) {
    let _ = writeln!(
        h,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
        esc(&t.symbol),
        direction(t.direction),
        esc(&time_text(t.entry_ms)),
        price(t.entry_price),
        esc(&time_text(t.exit_ms)),
        price(t.exit_price),
        t.size,
        money(t.pnl),
        money(t.fees),
        money(net(t)),
    );
}

fn trades(h: &mut String, report: &RunReport) {
    h.push_str("<h2>Trades</h2>\n");
    for (n, p) in report.plugins.iter().enumerate() {
        let _ = writeln!(
            h,
            "<details><summary><span class=\"swatch\" style=\"background:{}\"></span>{}: {} round trip{}</summary>",
            charts::css(charts::colour(n)),
            esc(&p.name),
            p.trades.len(),
            if p.trades.len() == 1 { "" } else { "s" }
        );
        if !p.trades.is_empty() {
            h.push_str(
                "<div class=\"scroll\"><table>\n<tr><th>symbol</th><th>direction</th><th>entry</th>\
                 <th class=\"num\">price</th><th>exit</th><th class=\"num\">price</th><th class=\"num\">size</th>\
                 <th class=\"num\">PnL</th><th class=\"num\">fees</th><th class=\"num\">net</th></tr>\n",
            );
            for t in p.trades.iter().take(LISTED_TRADES) {
                trade_row(h, t);
            }
            h.push_str("</table></div>\n");
            if p.trades.len() > LISTED_TRADES {
                let _ = writeln!(h, "<p class=\"muted\">The first {LISTED_TRADES}; trades.csv has all.</p>");
            }
        }
        h.push_str("</details>\n");
    }
}
