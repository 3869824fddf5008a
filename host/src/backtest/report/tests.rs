//! The renderings of a hand-built run: two plugins, one faulted and both with hostile names,
//! long and short trades on two instruments; and of an empty run.

use std::fs;
use std::path::Path;

use super::csv_files::{SUMMARY_HEADER, TRADES_HEADER};
use super::html::drawdown;
use super::text::{money, percent, price, rfc3339, time_text, visible};
use super::*;
use crate::backtest::results::{
    Direction, FileInput, Inputs, PluginInput, PluginReport, Point, PriceSeries, RoundTrip, RunReport, Stats,
};

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
const MIN: i64 = 60_000;

const CSV_NAME: &str = "a,b\"c";
const SCRIPT_NAME: &str = "<script>alert(1)</script>";
const FAULT: &str = "trap: unreachable\n\u{1b}[31mred";

fn sha(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn points(values: &[f64]) -> Vec<Point> {
    values.iter().enumerate().map(|(n, &value)| Point { ts_ms: T0 + n as i64 * MIN, value }).collect()
}

fn trade(symbol: &str, direction: Direction, entry: (i64, f64), exit: (i64, f64), pnl: f64, fees: f64) -> RoundTrip {
    RoundTrip {
        symbol: symbol.to_owned(),
        direction,
        entry_ms: T0 + entry.0 * MIN,
        entry_price: entry.1,
        exit_ms: T0 + exit.0 * MIN,
        exit_price: exit.1,
        size: 0.5,
        pnl,
        fees,
    }
}

fn sample() -> RunReport {
    let first = PluginReport {
        name: CSV_NAME.to_owned(),
        stats: Stats {
            events: 10,
            delivered: 10,
            orders: 4,
            denied: 1,
            fills: 4,
            round_trips: 2,
            wins: 1,
            pnl: 1234.5678,
            realized: 1240.0,
            unrealized: 0.0,
            fees: 5.4322,
            funding: 12.3456,
            max_drawdown: 321.0,
            max_drawdown_pct: 0.0321,
            sharpe: Some(1.8765),
            start_equity: 10_000.0,
            end_equity: 11_234.567_8,
            open_positions: vec![("BTC-USDT".to_owned(), 0.0)],
        },
        trades: vec![
            trade("BTC-USDT", Direction::Long, (1, 42_000.5), (4, 44_500.25), 1249.875, 4.3),
            trade("BTC-USDT", Direction::Short, (5, 44_600.0), (7, 44_619.75), -9.875, 1.1322),
        ],
        equity: points(&[10_000.0, 10_000.0, 10_400.0, 10_079.0, 11_250.0, 11_240.0, 11_234.567_8]),
        fault: None,
    };
    let second = PluginReport {
        name: SCRIPT_NAME.to_owned(),
        stats: Stats {
            events: 6,
            orders: 2,
            fills: 2,
            round_trips: 1,
            wins: 0,
            pnl: -0.004321,
            fees: 0.000789,
            funding: -0.25,
            max_drawdown: 0.004321,
            max_drawdown_pct: 0.0000004321,
            sharpe: None,
            start_equity: 10_000.0,
            end_equity: 9_999.995_679,
            ..Stats::default()
        },
        trades: vec![trade("ETH-USDT", Direction::Short, (2, 2_250.0), (3, 2_250.007), -0.0035, 0.000789)],
        equity: points(&[10_000.0, 10_000.0, 9_999.995_679]),
        fault: Some(FAULT.to_owned()),
    };
    RunReport {
        inputs: Inputs {
            data: vec![
                FileInput { path: "data/btc.csv".to_owned(), sha256: sha('a') },
                FileInput { path: "data/<eth>.csv".to_owned(), sha256: sha('b') },
            ],
            plugins: vec![
                PluginInput {
                    name: CSV_NAME.to_owned(),
                    path: "plugins/sma.wasm".to_owned(),
                    sha256: sha('c'),
                    config: r#"{"fast":5,"slow":20}"#.to_owned(),
                },
                PluginInput {
                    name: SCRIPT_NAME.to_owned(),
                    path: "plugins/<img src=x>.wasm".to_owned(),
                    sha256: sha('d'),
                    config: r#"{"note":"</pre><script>alert(2)</script>"}"#.to_owned(),
                },
            ],
            instruments: vec!["BTC-USDT".to_owned(), "ETH-USDT".to_owned()],
            from_ms: Some(T0),
            to_ms: None,
            fill: "next-open".to_owned(),
            maker_fee: 0.0008,
            taker_fee: 0.001,
            fee_tier: Some("VIP0".to_owned()),
            balances: vec![("USDT".to_owned(), 20_000.0)],
            version: "0.1.0".to_owned(),
        },
        total: Stats {
            events: 8,
            orders: 6,
            denied: 1,
            fills: 6,
            round_trips: 3,
            wins: 1,
            pnl: 1234.563479,
            fees: 5.432989,
            funding: 12.0956,
            max_drawdown: 321.004321,
            max_drawdown_pct: 0.016,
            sharpe: Some(1.5),
            start_equity: 20_000.0,
            end_equity: 21_234.563_479,
            ..Stats::default()
        },
        plugins: vec![first, second],
        events: 8,
        elapsed_s: 0.25,
        events_per_s: 32.0,
        prices: vec![
            PriceSeries {
                symbol: "BTC-USDT".to_owned(),
                points: points(&[42_000.0, 42_000.5, 43_000.0, 44_000.0, 44_500.25, 44_600.0, 44_700.0, 44_619.75]),
            },
            PriceSeries { symbol: "ETH-USDT".to_owned(), points: points(&[2_249.0, 2_250.0, 2_250.0, 2_250.007]) },
        ],
        equity: points(&[20_000.0, 20_000.0, 20_400.0, 20_079.0, 21_250.0, 21_240.0, 21_234.563_479]),
    }
}

fn empty() -> RunReport {
    RunReport {
        inputs: Inputs {
            data: vec![],
            plugins: vec![],
            instruments: vec![],
            from_ms: None,
            to_ms: None,
            fill: String::new(),
            maker_fee: 0.0,
            taker_fee: 0.0,
            fee_tier: None,
            balances: vec![],
            version: String::new(),
        },
        plugins: vec![],
        total: Stats::default(),
        events: 0,
        elapsed_s: 0.0,
        events_per_s: 0.0,
        prices: vec![],
        equity: vec![],
    }
}

/// The cells of a table line, trimmed.
fn cells(line: &str) -> Vec<&str> {
    line.trim().trim_matches('|').split('|').map(str::trim).collect()
}

fn row_of<'a>(table: &'a str, first_cell: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(&format!("| {first_cell} ")))
        .unwrap_or_else(|| panic!("no row {first_cell}:\n{table}"))
}

#[test]
fn numbers_read_as_documented() {
    assert_eq!(money(1234.5678), "1234.57");
    assert_eq!(money(-9.875), "-9.88");
    assert_eq!(money(0.0), "0.00");
    assert_eq!(money(-0.0), "0.00");
    assert_eq!(money(0.01), "0.01");
    assert_eq!(money(0.001234), "0.001234");
    assert_eq!(money(-0.0035), "-0.003500");
    assert_eq!(money(0.000789), "0.0007890");
    assert_eq!(money(1e-15), "1.000e-15");
    assert_eq!(money(f64::NAN), "NaN");
    assert_eq!(price(2250.007), "2250.007");
    assert_eq!(price(44_600.0), "44600.00");
    assert_eq!(price(42_000.5), "42000.50");
    assert_eq!(price(0.1 + 0.2), "0.30");
    assert_eq!(price(1.234_567_891), "1.2345679");
    assert_eq!(price(0.000_123_4), "0.0001234");
    assert_eq!(price(-3.5), "-3.50");
    assert_eq!(visible("a\nb\u{1b}[0m"), "a\\nb\\u{1b}[0m");
    assert_eq!(percent(0.0321), "3.21%");
    assert_eq!(percent(0.5), "50.00%");
}

#[test]
fn times_are_rfc3339_utc_or_the_raw_ms() {
    assert_eq!(time_text(T0 + 1), "2024-01-01T00:00:00.001Z");
    // humantime panics before 1970 and fails after 9999: neither reaches it.
    assert!(rfc3339(-1).is_none());
    assert_eq!(time_text(-1), "-1 ms");
    assert!(rfc3339(i64::MAX).is_none());
}

#[test]
fn table_has_a_row_per_plugin_and_the_total() {
    let report = sample();
    let t = table(&report);

    // The header names what each count counts: the run's bars, the events a plugin was handed.
    let header = cells(t.lines().nth(1).unwrap_or_default());
    assert_eq!(header[..3], ["plugin", "bars", "delivered"], "{t}");
    let column = |title: &str| header.iter().position(|h| *h == title).unwrap_or_else(|| panic!("no {title}: {t}"));

    let first = row_of(&t, CSV_NAME);
    for figure in ["8", "10", "4", "2", "50.00%", "1234.57", "5.43", "12.35", "321.00", "3.21%", "1.88", "11234.57"] {
        assert!(first.contains(&format!(" {figure} |")), "{figure} missing from {first}");
    }
    let second = row_of(&t, SCRIPT_NAME);
    for figure in ["0.00%", "-0.004321", "0.0007890", "-0.25", "0.004321", "0.00%", "—", "10000.00"] {
        assert!(second.contains(&format!(" {figure} |")), "{figure} missing from {second}");
    }
    let total = row_of(&t, "total");
    for figure in ["3", "33.33%", "1234.56", "12.10", "321.00", "1.60%", "1.50", "21234.56"] {
        assert!(total.contains(&format!(" {figure} |")), "{figure} missing from {total}");
    }
    // Bars are the run's on every row; delivered events are each plugin's, summed in the total.
    for (row, bars, delivered, funding) in
        [(first, "8", "10", "12.35"), (second, "8", "6", "-0.25"), (total, "8", "16", "12.10")]
    {
        let row = cells(row);
        assert_eq!(row[column("bars")], bars, "{t}");
        assert_eq!(row[column("delivered")], delivered, "{t}");
        assert_eq!(row[column("funding")], funding, "{t}");
    }
    assert!(t.contains("8 bars in 0.250 s (32 bars/s)"), "{t}");

    // The fault is one line, its escape sequence and line break written out.
    let fault = t.lines().find(|l| l.starts_with("fault: ")).unwrap_or_else(|| panic!("no fault line:\n{t}"));
    assert_eq!(fault, format!("fault: {SCRIPT_NAME}: trap: unreachable\\n\\u{{1b}}[31mred"));
    assert!(!t.contains('\u{1b}'));
    assert_eq!(t.lines().filter(|l| l.starts_with("fault: ")).count(), 1);
}

#[test]
fn csv_files_parse_back_to_the_trades() {
    let report = sample();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new/run");
    let paths = write_csv(&report, &out).unwrap();
    assert_eq!(paths, vec![out.join("trades.csv"), out.join("summary.csv")]);

    let mut r = csv::Reader::from_path(&paths[0]).unwrap();
    assert_eq!(r.headers().unwrap(), &csv::StringRecord::from(TRADES_HEADER.to_vec()));
    let rows: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().unwrap();
    let expected: Vec<(&str, &RoundTrip)> =
        report.plugins.iter().flat_map(|p| p.trades.iter().map(move |t| (p.name.as_str(), t))).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.len(), expected.len());
    for (row, (plugin, t)) in rows.iter().zip(expected) {
        let num = |i: usize| row[i].parse::<f64>().unwrap();
        assert_eq!(&row[0], plugin);
        assert_eq!(&row[1], t.symbol);
        assert_eq!(&row[2], if t.direction == Direction::Long { "long" } else { "short" });
        assert_eq!(row[3].parse::<i64>().unwrap(), t.entry_ms);
        assert_eq!(row[4], time_text(t.entry_ms));
        assert_eq!(num(5), t.entry_price);
        assert_eq!(row[6].parse::<i64>().unwrap(), t.exit_ms);
        assert_eq!(num(8), t.exit_price);
        assert_eq!(num(9), t.size);
        assert_eq!(num(10), t.pnl);
        assert_eq!(num(11), t.fees);
        assert_eq!(num(12), t.pnl - t.fees);
    }
    assert_eq!(&rows[0][4], "2024-01-01T00:01:00.000Z");

    let mut r = csv::Reader::from_path(&paths[1]).unwrap();
    assert_eq!(r.headers().unwrap(), &csv::StringRecord::from(SUMMARY_HEADER.to_vec()));
    let rows: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().unwrap();
    let column = |name: &str| SUMMARY_HEADER.iter().position(|h| *h == name).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!((&rows[0][0], &rows[0][1]), ("plugin", CSV_NAME));
    assert_eq!((&rows[1][0], &rows[1][1]), ("plugin", SCRIPT_NAME));
    assert_eq!((&rows[2][0], &rows[2][1]), ("total", ""));
    assert_eq!(rows[0][column("pnl")].parse::<f64>().unwrap(), 1234.5678);
    // Funding always has its column, each row its own figure at full precision.
    let funding: Vec<f64> = rows.iter().map(|r| r[column("funding")].parse().unwrap()).collect();
    assert_eq!(funding, [12.3456, -0.25, 12.0956]);
    // `bars` is the run's on every row; `events` is `--json`'s (handed to the plugin; the total's
    // is the run's).
    let counts: Vec<(&str, &str)> = rows.iter().map(|r| (&r[column("bars")], &r[column("events")])).collect();
    assert_eq!(counts, [("8", "10"), ("8", "6"), ("8", "8")]);
    assert_eq!(&rows[0][column("win_rate")], "0.5");
    assert_eq!(&rows[0][column("open_positions")], "BTC-USDT:0");
    assert_eq!(&rows[1][column("sharpe")], "", "no Sharpe ratio is not a zero one");
    assert_eq!(&rows[1][column("fault")], FAULT);
    assert_eq!(rows[2][column("end_equity")].parse::<f64>().unwrap(), 21_234.563_479);
}

/// The page with the SVG namespace taken out: what is left must name no address.
fn without_svg_namespace(html: &str) -> String {
    html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
}

/// Every tag of a page: from a `<` to the next `>` (escaped text holds neither).
fn tags(html: &str) -> impl Iterator<Item = &str> {
    html.split('<').skip(1).map(|rest| rest.split('>').next().unwrap_or(rest))
}

#[test]
fn html_page_is_self_contained_escaped_and_complete() {
    let report = sample();
    let dir = tempfile::tempdir().unwrap();
    let path = write_html(&report, dir.path()).unwrap();
    assert_eq!(path, dir.path().join("report.html"));
    let html = fs::read_to_string(&path).unwrap();

    // Charts: equity, drawdown, and one per instrument.
    assert_eq!(html.matches("<svg").count(), 4, "{html}");
    assert!(html.contains("viewBox="));

    // Nothing fetched or linked: no address anywhere, no tag that loads or links anything. (An
    // input's text may well read `src=`: escaped, it is text, not part of a tag.)
    let rest = without_svg_namespace(&html).to_lowercase();
    for needle in ["http://", "https://", "url(", "@import", "<script", "<link", "<iframe", "<object", "<embed"] {
        assert!(!rest.contains(needle), "the page contains {needle:?}");
    }
    for tag in tags(&rest) {
        for attribute in ["src=", "href=", "srcset=", "action=", "data=", "on"] {
            let attribute = format!(" {attribute}");
            // `on`: an event handler (onload=...); no attribute of ours starts with it.
            assert!(!tag.contains(&attribute), "a tag with {attribute:?}: {tag}");
        }
    }
    assert!(tags(&html).count() > 100, "the tags were not found");

    // Hostile strings are text.
    assert!(!html.contains("<script>alert(1)"));
    assert!(!html.contains("<img src=x>"));
    assert!(!html.contains("</pre><script>"));
    assert!(html.contains(&*html_escape::encode_safe(SCRIPT_NAME)));
    assert!(html.contains("&lt;script&gt;alert(1)"));
    assert!(html.contains(&*html_escape::encode_safe(CSV_NAME)));
    assert!(html.contains(&*html_escape::encode_safe("plugins/<img src=x>.wasm")));

    // The inputs, each hash among them.
    for f in &report.inputs.data {
        assert!(html.contains(&f.sha256), "data hash {} missing", f.sha256);
    }
    for p in &report.inputs.plugins {
        assert!(html.contains(&p.sha256), "plugin hash {} missing", p.sha256);
    }
    for text in
        ["next-open", "0.08%", "0.1%", "VIP0", "20000.00 USDT", "2024-01-01T00:00:00.000Z", "&quot;fast&quot;: 5"]
    {
        assert!(html.contains(text), "{text} missing");
    }

    // The figures of the terminal table.
    for figure in ["1234.57", "50.00%", "3.21%", "1.88", "11234.57", "-0.004321", "—", "21234.56"] {
        assert!(html.contains(&format!(">{figure}</td>")), "{figure} missing");
    }
    // Funding per plugin and in total, under its own title; both counts named.
    for title in ["bars", "delivered", "funding"] {
        assert!(html.contains(&format!(">{title}</th>")), "no {title} column");
    }
    for figure in ["12.35", "-0.25", "12.10", "16"] {
        assert!(html.contains(&format!(">{figure}</td>")), "{figure} missing");
    }
    assert!(html.contains("trap: unreachable\\n\\u{1b}[31mred"), "the fault, its control characters visible");
    assert!(!html.contains('\u{1b}'));

    // Trades listed, prices to their last digit.
    assert!(html.contains(">2250.007</td>"));
    assert!(html.contains(": 1 round trip</summary>"));

    // The time axis has its ticks on round times, labelled to the second for a 7-minute run.
    assert!(html.contains("2024-01-01 00:02:00"), "no round tick");

    // Trades: markers in each plugin's colour (plotters writes them as polygons and polylines).
    assert!(html.contains("<polygon"));

    // The JSON beside it is the report.
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["plugins"][1]["name"], SCRIPT_NAME);
    assert_eq!(json["plugins"][0]["trades"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["inputs"]["data"][1]["sha256"], sha('b'));
}

#[test]
fn drawdown_is_equity_below_its_running_peak() {
    let dd: Vec<f64> =
        drawdown(&points(&[100.0, 110.0, 99.0, f64::NAN, 120.0, 90.0])).iter().map(|p| p.value).collect();
    assert_eq!(dd[..3], [0.0, 0.0, -11.0]);
    assert!(dd[3].is_nan());
    assert_eq!(dd[4..], [0.0, -30.0]);
}

#[test]
fn charts_survive_odd_curves() {
    let mut report = sample();
    // One point, a flat line, values that are not finite, a trade with no prices under it.
    report.equity = points(&[5.0]);
    report.plugins[0].equity = points(&[f64::NAN, f64::INFINITY]);
    report.plugins[1].equity = points(&[0.0, 0.0]);
    report.prices.truncate(1);
    report.prices[0].points = points(&[f64::NAN]);
    report.plugins[0].trades[0].exit_price = f64::NAN;
    let dir = tempfile::tempdir().unwrap();
    let html = fs::read_to_string(write_html(&report, dir.path()).unwrap()).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
}

#[test]
fn empty_run_renders() {
    let report = empty();
    let t = table(&report);
    assert!(row_of(&t, "total").contains(" — |"));
    assert!(t.contains("0 bars in 0.000 s"));
    let header = cells(t.lines().nth(1).unwrap_or_default());
    assert!(header.contains(&"funding"), "funding is always a column: {t}");
    let funding = header.iter().position(|h| *h == "funding").unwrap();
    assert_eq!(cells(row_of(&t, "total"))[funding], "0.00");

    let dir = tempfile::tempdir().unwrap();
    let paths = write_csv(&report, dir.path()).unwrap();
    assert_eq!(csv::Reader::from_path(&paths[0]).unwrap().records().count(), 0);
    assert_eq!(csv::Reader::from_path(&paths[1]).unwrap().records().count(), 1);

    let html = fs::read_to_string(write_html(&report, dir.path()).unwrap()).unwrap();
    assert!(!html.contains("<svg"));
    assert!(html.contains("No equity points."));
    assert!(html.contains("No prices and no trades."));
    assert!(dir.path().join("report.json").exists());

    let equity = EquityWriter::create(dir.path(), &[]).unwrap();
    let path = equity.finish().unwrap();
    assert_eq!(fs::read_to_string(path).unwrap(), "ts_ms,time,total\n");
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn equity_writer_streams_rows_under_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec![CSV_NAME.to_owned(), "two".to_owned()];
    let mut w = EquityWriter::create(dir.path(), &names).unwrap();
    w.row(T0, 20_000.0, &[10_000.0, 10_000.0]).unwrap();
    w.row(T0 + MIN + 5, 20_001.25, &[10_001.5, 9_999.75]).unwrap();
    w.row(-1, 0.1, &[f64::NAN, -0.000123]).unwrap();
    // A row that would shift values under the wrong names is refused, and nothing of it written.
    let err = w.row(T0, 1.0, &[1.0]).unwrap_err();
    assert!(matches!(err, ReportError::Columns { expected: 2, got: 1, .. }), "{err}");
    let path = w.finish().unwrap();
    assert_eq!(path, dir.path().join("equity.csv"));

    assert_eq!(
        read(&path),
        "ts_ms,time,total,\"a,b\"\"c\",two\n\
         1704067200000,2024-01-01T00:00:00.000Z,20000.0,10000.0,10000.0\n\
         1704067260005,2024-01-01T00:01:00.005Z,20001.25,10001.5,9999.75\n\
         -1,,0.1,NaN,-0.000123\n"
    );
    let mut r = csv::Reader::from_path(&path).unwrap();
    assert_eq!(r.headers().unwrap(), vec!["ts_ms", "time", "total", CSV_NAME, "two"]);
    let second = r.records().nth(1).unwrap().unwrap();
    assert_eq!(second[4].parse::<f64>().unwrap(), 9_999.75);
}

#[test]
fn equity_writer_names_the_file_in_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be.
    let blocked = dir.path().join("blocked");
    fs::write(&blocked, "").unwrap();
    let err = EquityWriter::create(&blocked, &[]).unwrap_err();
    assert!(matches!(err, ReportError::Io { ref path, .. } if path == &blocked), "{err}");
    assert!(err.to_string().contains("blocked"));
}

#[test]
fn tick_runs_count_ticks() {
    let mut report = sample();
    report.inputs.fill = "book".to_owned();
    let t = table(&report);
    let header = cells(t.lines().nth(1).unwrap_or_default());
    assert_eq!(header[..3], ["plugin", "ticks", "delivered"], "{t}");
    assert!(!header.contains(&"bars"), "{t}");
    assert!(t.contains("8 ticks in 0.250 s (32 ticks/s)"), "{t}");

    let dir = tempfile::tempdir().unwrap();
    let html = fs::read_to_string(write_html(&report, dir.path()).unwrap()).unwrap();
    assert!(html.contains(">ticks</th>") && html.contains("8 ticks in 0.250 s"));
    // The CSV's column keeps `--json`'s name whatever the data.
    let paths = write_csv(&report, dir.path()).unwrap();
    let mut r = csv::Reader::from_path(&paths[1]).unwrap();
    assert_eq!(r.headers().unwrap(), &csv::StringRecord::from(SUMMARY_HEADER.to_vec()));
}
