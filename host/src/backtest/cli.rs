//! What `tradebox backtest` prints and writes: progress while it runs, the summary table, the
//! report files, `--json`, and the sweeps' tables and CSVs.

use super::command::{self, Args};
use super::results::{RunReport, Stats};
use super::run::{self, Progress};
use super::sweep;
use crate::plugin::{Mode, Runtime};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::io::IsTerminal;

/// Runs `tradebox backtest` with `args`.
pub fn execute(args: &Args) -> Result<()> {
    if !args.rank.is_empty() {
        let mut table = sweep::read_csvs(&args.rank)?;
        sweep::rank(&mut table, &args.by)?;
        print!("{}", sweep::render(&table, 20));
        if let Some(out) = &args.out {
            let mut w = csv::Writer::from_path(out).with_context(|| format!("writing {}", out.display()))?;
            w.write_record(&table.header)?;
            for row in &table.rows {
                w.write_record(row)?;
            }
            w.flush()?;
            eprintln!("ranked {} runs into {}", table.rows.len(), out.display());
        }
        return Ok(());
    }
    let runtime = Runtime::new(Mode::Deterministic, crate::plugin::runtime::default_cache_dir())?;
    let (plan, plugins) = command::plan(args, &runtime)?;
    if let Some(grid) = &args.sweep {
        return sweep_command(args, grid, &plan, &plugins);
    }
    let bar = progress_bar(super::results::replayed_unit(&plan.fill.to_string()));
    let mut on_progress = |p: Progress| {
        if let Some(bar) = &bar {
            bar.set_position(p.bars);
            bar.set_message(humantime::format_rfc3339_seconds(at(p.ts_ms)).to_string());
        }
    };
    let report = run::run(&plan, &plugins, &mut on_progress)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print!("{}", super::report::table(&report));
    if let Some(dir) = &args.report {
        let page = super::report::write_html(&report, dir)?;
        super::report::write_csv(&report, dir)?;
        eprintln!("report: {} (and report.json, trades.csv, summary.csv, equity.csv beside it)", page.display());
    }
    if args.json {
        println!("{}", summary_json(&report));
    }
    Ok(())
}

fn at(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A spinner with the bars (or ticks: `unit`) replayed, the time reached and the rate, on
/// stderr; none when stdout is not a terminal (a script or a file reads the output).
fn progress_bar(unit: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    let template = format!("{{spinner}} {{pos}} {unit}  at {{msg}}  {{per_sec}}  {{elapsed}}");
    let style = indicatif::ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

fn stats_json(s: &Stats, elapsed_s: f64) -> serde_json::Value {
    json!({
        "bars": s.events,
        "events": s.events,
        "delivered": s.delivered,
        "orders": s.orders,
        "denied": s.denied,
        "fills": s.fills,
        "round_trips": s.round_trips,
        "wins": s.wins,
        "pnl": s.pnl,
        "realized": s.realized,
        "unrealized": s.unrealized,
        "fees": s.fees,
        "funding": s.funding,
        "max_drawdown": s.max_drawdown,
        "max_drawdown_pct": s.max_drawdown_pct,
        "sharpe": s.sharpe,
        "start_equity": s.start_equity,
        "end_equity": s.end_equity,
        "elapsed_s": elapsed_s,
        "events_per_s": if elapsed_s > 0.0 { s.events as f64 / elapsed_s } else { 0.0 },
    })
}

/// The one JSON object `--json` prints: the totals at the top level, then `total` and
/// `plugins` (each with its own figures and, if it stopped, its fault).
pub fn summary_json(report: &RunReport) -> serde_json::Value {
    let mut top = stats_json(&report.total, report.elapsed_s);
    let plugins: Vec<serde_json::Value> = report
        .plugins
        .iter()
        .map(|p| {
            let mut v = stats_json(&p.stats, report.elapsed_s);
            if let Some(obj) = v.as_object_mut() {
                // Bars are the run's; `events` is what this plugin was handed (bars, order
                // reports, fills...).
                obj.insert("bars".into(), json!(report.events));
                obj.insert("name".into(), json!(p.name));
                obj.insert("fault".into(), json!(p.fault));
            }
            v
        })
        .collect();
    if let Some(obj) = top.as_object_mut() {
        obj.insert("bars".into(), json!(report.events));
        obj.insert("events".into(), json!(report.events));
        obj.insert("events_per_s".into(), json!(report.events_per_s));
        obj.insert("total".into(), stats_json(&report.total, report.elapsed_s));
        obj.insert("plugins".into(), json!(plugins));
    }
    top
}

fn sweep_command(args: &Args, grid: &str, plan: &run::Plan, plugins: &[run::PluginPlan]) -> Result<()> {
    let [plugin] = plugins else { bail!("a sweep runs one plugin: give one plugin file (or one [[plugin]])") };
    let axes = sweep::parse_grid(grid)?;
    let job_index = std::env::var("JOB_COMPLETION_INDEX").ok();
    let shard = args.shard.as_deref().map(|s| sweep::parse_shard(s, job_index.as_deref())).transpose()?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let total = sweep::size(&axes);
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {per_sec}  {eta} left") {
            bar.set_style(style);
        }
        bar
    });
    let started = std::time::Instant::now();
    let rows = sweep::sweep(plan, plugin, &axes, shard, jobs, &|done, of| {
        if let Some(bar) = &bar {
            bar.set_length(of as u64);
            bar.set_position(done as u64);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let keys = sweep::keys(&axes);
    let out = args.out.clone().or_else(|| args.report.as_ref().map(|d| d.join("sweep.csv")));
    if let Some(path) = &out {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        sweep::save(&rows, &keys, path)?;
    }
    let mut table = sweep::table(&rows, &keys)?;
    sweep::rank(&mut table, &args.by)?;
    print!("{}", sweep::render(&table, 20));
    let bars: u64 = rows.iter().map(|r| r.bars).sum();
    let shard_text = shard.map(|(k, n)| format!(" (shard {k}/{n} of {total})")).unwrap_or_default();
    println!(
        "{} run{}{shard_text} in {elapsed:.2} s on {jobs} thread{}: {:.2} runs/s, {:.0} bars/s{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        if jobs == 1 { "" } else { "s" },
        rows.len() as f64 / elapsed.max(1e-9),
        bars as f64 / elapsed.max(1e-9),
        out.map(|p| format!("; all runs in {}", p.display())).unwrap_or_default()
    );
    if args.json {
        println!(
            "{}",
            json!({"runs": rows.len(), "grid": total, "bars": bars, "elapsed_s": elapsed, "runs_per_s": rows.len() as f64 / elapsed.max(1e-9), "jobs": jobs})
        );
    }
    let failed = rows.iter().filter(|r| r.stats.is_err()).count();
    if failed == rows.len() && failed > 0 {
        bail!(
            "every run of the sweep failed (the first: {})",
            rows.iter().find_map(|r| r.stats.as_ref().err()).map_or("?", |e| e.as_str())
        );
    }
    Ok(())
}
