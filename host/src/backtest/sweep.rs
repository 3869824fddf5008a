//! Parameter sweeps: one plugin over a grid of configs, in parallel on every core, ranked.
//!
//! The plugin is compiled once; each run instantiates it once, on its own hub and exchange,
//! over the data read into memory once. A grid larger than one machine splits into shards
//! (`--shard K/N`: the runs whose index is K modulo N, K from 0 to N-1), whose CSVs concatenate
//! and rank with `tradebox backtest --rank *.csv`, so a batch scheduler runs a sweep across
//! machines and tradebox needs no scheduler of its own. K is 0-based because the schedulers'
//! indices are: a Kubernetes Indexed Job numbers its pods 0 to `completions - 1` in
//! `JOB_COMPLETION_INDEX`, which `--shard N` takes as K unchanged (`docs/sweep-job.yaml`).

use super::results::Stats;
use super::run::{self, Plan, PluginPlan};
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One setting's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The config key.
    pub key: String,
    /// Its values, in order.
    pub values: Vec<Value>,
}

/// The most runs one grid may have.
pub const MAX_RUNS: usize = 1_000_000;

/// Parses `fast=5..20:5,slow=20..60:10,mode=a|b`: `a..b:step` is every value from `a` to `b`
/// inclusive by `step` (1 when absent); `x|y|z` lists values (numbers or words); a single
/// value fixes the setting.
pub fn parse_grid(text: &str) -> Result<Vec<Axis>> {
    let mut axes: Vec<Axis> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, spec) = part.split_once('=').with_context(|| format!("sweep {part:?}: give KEY=VALUES"))?;
        let key = key.trim();
        if key.is_empty() || axes.iter().any(|a| a.key == key) {
            bail!("sweep {part:?}: each setting once, with a name");
        }
        let values = if let Some((range, step)) = spec.split_once("..").map(|(a, rest)| {
            let (b, step) = rest.split_once(':').unwrap_or((rest, "1"));
            ((a.trim(), b.trim()), step.trim())
        }) {
            range_values(range.0, range.1, step).with_context(|| format!("sweep {part:?}"))?
        } else {
            spec.split('|').map(|v| scalar(v.trim())).collect()
        };
        if values.is_empty() {
            bail!("sweep {part:?}: no values");
        }
        axes.push(Axis { key: key.to_string(), values });
    }
    if axes.is_empty() {
        bail!("an empty sweep: give e.g. fast=5..15:5,slow=20..60:10");
    }
    let runs = axes.iter().try_fold(1_usize, |n, a| n.checked_mul(a.values.len()));
    if runs.is_none_or(|n| n > MAX_RUNS) {
        bail!("the sweep has more than {MAX_RUNS} runs: narrow it or split it across machines with --shard");
    }
    Ok(axes)
}

fn scalar(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = text.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(text.to_string()),
    }
}

fn range_values(from: &str, to: &str, step: &str) -> Result<Vec<Value>> {
    if let (Ok(a), Ok(b), Ok(s)) = (from.parse::<i64>(), to.parse::<i64>(), step.parse::<i64>()) {
        if s <= 0 || b < a {
            bail!("a range runs upwards by a positive step");
        }
        let n = (b - a) / s + 1;
        if n as usize > MAX_RUNS {
            bail!("too many values");
        }
        return Ok((0..n).map(|i| Value::from(a + i * s)).collect());
    }
    let (a, b, s): (f64, f64, f64) = (
        from.parse().with_context(|| format!("{from:?} is not a number"))?,
        to.parse().with_context(|| format!("{to:?} is not a number"))?,
        step.parse().with_context(|| format!("{step:?} is not a number"))?,
    );
    if s.is_nan() || s <= 0.0 || b.is_nan() || b < a || !a.is_finite() || !b.is_finite() {
        bail!("a range runs upwards by a positive step");
    }
    let n = ((b - a) / s + 1e-9).floor() as usize + 1;
    if n > MAX_RUNS {
        bail!("too many values");
    }
    Ok((0..n).map(|i| Value::from(a + i as f64 * s)).collect())
}

/// The grid's runs in order (the first setting varies slowest): run `i` of the whole grid.
pub fn combination(axes: &[Axis], mut i: usize) -> Vec<(String, Value)> {
    let mut out = vec![(String::new(), Value::Null); axes.len()];
    for (slot, axis) in out.iter_mut().zip(axes).rev() {
        let n = axis.values.len();
        *slot = (axis.key.clone(), axis.values[i % n].clone());
        i /= n;
    }
    out
}

/// The number of runs in a grid.
pub fn size(axes: &[Axis]) -> usize {
    axes.iter().map(|a| a.values.len()).product()
}

/// `K/N`, K from 0 to N-1; K from `job_index` (`JOB_COMPLETION_INDEX`, 0-based, taken as it is)
/// when the text is `N` alone or K is `$`. A K written out wins over the variable, so a shard
/// can be re-run by hand inside a Job's pod.
pub fn parse_shard(text: &str, job_index: Option<&str>) -> Result<(usize, usize)> {
    let (k, n) = text.split_once('/').unwrap_or(("", text));
    let n: usize = n.trim().parse().with_context(|| format!("--shard {text:?}: give K/N"))?;
    let k: usize = match (k.trim(), job_index) {
        ("" | "$", Some(index)) => {
            index.trim().parse().with_context(|| format!("JOB_COMPLETION_INDEX {index:?} is not a number"))?
        }
        ("" | "$", None) => bail!("--shard {text:?}: no K given and JOB_COMPLETION_INDEX is not set"),
        (k, _) => k.parse().with_context(|| format!("--shard {text:?}: K is not a number"))?,
    };
    if n == 0 {
        bail!("--shard {text:?}: N, the number of shards, must be at least 1");
    }
    if k >= n {
        let from = if text.contains('/') && !matches!(text.split('/').next().map(str::trim), Some("" | "$")) {
            String::new()
        } else {
            " (K from JOB_COMPLETION_INDEX)".to_string()
        };
        bail!(
            "--shard {text:?}: K is {k}{from}, but K runs from 0 to N-1 = {} (in a Job, give N = the Job's completions)",
            n - 1
        );
    }
    Ok((k, n))
}

/// The grid indices shard `(k, n)` of a grid of `total` runs runs: those equal to K modulo N,
/// so shards 0 to N-1 run every index once between them (and neighbouring settings, which
/// tend to cost alike, are spread over every shard).
pub fn shard_indices(total: usize, (k, n): (usize, usize)) -> impl Iterator<Item = usize> {
    (k..total).step_by(n.max(1))
}

/// One run's outcome in a sweep.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its index in the whole grid.
    pub index: usize,
    /// The settings it ran with.
    pub params: Vec<(String, Value)>,
    /// Its figures (the plugin's), or why it did not run.
    pub stats: Result<Stats, String>,
    /// Bars the run replayed (0 when it could not run): the plugin's [`Stats::events`] are what
    /// it was handed, which a rate in bars must not be taken from.
    pub bars: u64,
}

/// Runs the grid's runs of shard `shard` (all when `None`) on `jobs` threads; rows in grid
/// order.
pub fn sweep(
    plan: &Plan,
    plugin: &PluginPlan,
    axes: &[Axis],
    shard: Option<(usize, usize)>,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<Row>> {
    let mut plan = plan.clone();
    plan.equity_dir = None;
    for data in &mut plan.data {
        if super::run::DataKind::detect(&data.path).map_err(|e| anyhow::anyhow!("{e}"))?
            != super::run::DataKind::Candles
        {
            bail!(
                "{}: a sweep replays candles (read into memory once for all its runs), not tick data",
                data.path.display()
            );
        }
        data.load().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let base: Map<String, Value> = match serde_json::from_str(&plugin.config)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mine: Vec<usize> = shard_indices(size(axes), shard.unwrap_or((0, 1))).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let rows = Mutex::new(Vec::with_capacity(mine.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(mine.len().max(1)) {
            scope.spawn(|| {
                while let Some(&index) = mine.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let params = combination(axes, index);
                    let mut config = base.clone();
                    for (key, value) in &params {
                        config.insert(key.clone(), value.clone());
                    }
                    let mut one = plugin.clone();
                    one.config = Value::Object(config).to_string();
                    let (bars, stats) = match run::run(&plan, std::slice::from_ref(&one), &mut |_| {}) {
                        Ok(report) => (
                            report.events,
                            match report.plugins.into_iter().next() {
                                Some(p) => match p.fault {
                                    Some(fault) => Err(fault),
                                    None => Ok(p.stats),
                                },
                                None => Err("no result".into()),
                            },
                        ),
                        Err(e) => (0, Err(e.to_string())),
                    };
                    if let Ok(mut rows) = rows.lock() {
                        rows.push(Row { index, params, stats, bars });
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, mine.len());
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap_or_else(|e| e.into_inner());
    rows.sort_by_key(|r| r.index);
    Ok(rows)
}

/// The figures a sweep's CSV carries, after the settings.
const FIGURES: &[&str] = &[
    "events",
    "orders",
    "denied",
    "fills",
    "round_trips",
    "wins",
    "pnl",
    "fees",
    "max_drawdown",
    "max_drawdown_pct",
    "sharpe",
    "end_equity",
    "error",
];

/// Writes rows as CSV: `index`, the settings, then [`FIGURES`].
pub fn write_csv(rows: &[Row], keys: &[String], out: &mut dyn std::io::Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let mut header = vec!["index".to_string()];
    header.extend(keys.iter().cloned());
    header.extend(FIGURES.iter().map(|s| s.to_string()));
    w.write_record(&header)?;
    for row in rows {
        let mut record = vec![row.index.to_string()];
        for key in keys {
            let value = row.params.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            record.push(value.map_or(String::new(), |v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }));
        }
        match &row.stats {
            Ok(s) => {
                let sharpe = s.sharpe.map_or(String::new(), |v| v.to_string());
                record.extend([
                    s.events.to_string(),
                    s.orders.to_string(),
                    s.denied.to_string(),
                    s.fills.to_string(),
                    s.round_trips.to_string(),
                    s.wins.to_string(),
                    s.pnl.to_string(),
                    s.fees.to_string(),
                    s.max_drawdown.to_string(),
                    s.max_drawdown_pct.to_string(),
                    sharpe,
                    s.end_equity.to_string(),
                    String::new(),
                ]);
            }
            Err(e) => {
                record.extend(std::iter::repeat_n(String::new(), FIGURES.len() - 1));
                record.push(e.clone());
            }
        }
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}

/// A sweep CSV read back: the header and its records.
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, as text.
    pub rows: Vec<Vec<String>>,
}

/// A sweep's rows as the table its CSV would read back as (one ranking for both).
pub fn table(rows: &[Row], keys: &[String]) -> Result<Table> {
    let mut buffer = Vec::new();
    write_csv(rows, keys, &mut buffer)?;
    let mut reader = csv::Reader::from_reader(buffer.as_slice());
    let header = reader.headers()?.iter().map(String::from).collect();
    let rows = reader.records().map(|r| r.map(|r| r.iter().map(String::from).collect())).collect::<Result<_, _>>()?;
    Ok(Table { header, rows })
}

/// Reads sweep CSVs (shards of one sweep: the same header) into one table.
pub fn read_csvs(paths: &[std::path::PathBuf]) -> Result<Table> {
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for path in paths {
        let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
        let this: Vec<String> =
            reader.headers().with_context(|| format!("{}", path.display()))?.iter().map(String::from).collect();
        if this.first().map(String::as_str) != Some("index") || !this.iter().any(|h| h == "pnl") {
            bail!("{}: not a sweep CSV (its header has no index and pnl columns)", path.display());
        }
        match &header {
            Some(h) if h != &this => {
                bail!("{}: its columns differ from the first file's: not a shard of the same sweep", path.display())
            }
            Some(_) => {}
            None => header = Some(this),
        }
        for (i, record) in reader.records().enumerate() {
            let record = record.with_context(|| format!("{}:{}", path.display(), i + 2))?;
            rows.push(record.iter().map(String::from).collect());
        }
    }
    Ok(Table { header: header.unwrap_or_default(), rows })
}

/// Sorts a table best first by `by` (`max_drawdown` smallest first, the others largest first;
/// failed runs last; ties by index), and drops repeats of an index (a shard run twice).
pub fn rank(table: &mut Table, by: &str) -> Result<()> {
    let column = table
        .header
        .iter()
        .position(|h| h == by)
        .with_context(|| format!("cannot rank by {by:?}: the columns are {}", table.header.join(", ")))?;
    let ascending = by == "max_drawdown" || by == "max_drawdown_pct";
    let key = |row: &Vec<String>| row.get(column).and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite());
    let index = |row: &Vec<String>| row.first().and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX);
    table.rows.sort_by_key(index);
    table.rows.dedup_by_key(|r| index(r));
    table.rows.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) => {
            let order = if ascending { x.total_cmp(&y) } else { y.total_cmp(&x) };
            order.then(index(a).cmp(&index(b)))
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => index(a).cmp(&index(b)),
    });
    Ok(())
}

/// The best `top` rows of a ranked table, as aligned text.
pub fn render(table: &Table, top: usize) -> String {
    let shown: Vec<&str> = ["pnl", "sharpe", "max_drawdown", "round_trips", "fees", "error"].to_vec();
    let settings_end = table.header.iter().position(|h| h == "events").unwrap_or(table.header.len());
    let mut columns: Vec<usize> = (1..settings_end).collect();
    columns.extend(shown.iter().filter_map(|s| table.header.iter().position(|h| h == s)));
    let mut lines: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["rank".to_string()];
    head.extend(columns.iter().map(|c| table.header[*c].clone()));
    lines.push(head);
    for (i, row) in table.rows.iter().take(top).enumerate() {
        let mut line = vec![(i + 1).to_string()];
        for c in &columns {
            // Cells of a CSV someone else wrote reach the terminal: control characters escaped.
            let text = row.get(*c).map(|t| t.escape_default().to_string()).unwrap_or_default();
            let text = match text.parse::<f64>() {
                Ok(v) if text.contains('.') || text.contains('e') => format!("{v:.4}"),
                _ => text,
            };
            line.push(text);
        }
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| lines.iter().map(|l| l.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(s, w)| format!("{s:>w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The keys of a grid, in order.
pub fn keys(axes: &[Axis]) -> Vec<String> {
    axes.iter().map(|a| a.key.clone()).collect()
}

/// Writes `rows` to `path` as CSV.
pub fn save(rows: &[Row], keys: &[String], path: &Path) -> Result<()> {
    let mut file = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    write_csv(rows, keys, &mut file).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_parse_as_documented() {
        let axes = parse_grid("fast=5..20:5, slow=20..60:10,mode=a|b").unwrap();
        assert_eq!(axes[0].values, vec![Value::from(5), Value::from(10), Value::from(15), Value::from(20)]);
        assert_eq!(axes[1].values.len(), 5);
        assert_eq!(axes[2].values, vec![Value::from("a"), Value::from("b")]);
        assert_eq!(size(&axes), 40);
        assert_eq!(
            combination(&axes, 0),
            vec![("fast".into(), 5.into()), ("slow".into(), 20.into()), ("mode".into(), "a".into())]
        );
        assert_eq!(combination(&axes, 39)[0].1, Value::from(20));
        let floats = parse_grid("size=0.5..1.5:0.5").unwrap();
        assert_eq!(floats[0].values, vec![Value::from(0.5), Value::from(1.0), Value::from(1.5)]);
        for bad in ["", "fast", "fast=5..1", "fast=1..5:0", "a=1,a=2", "x=1..1000000000"] {
            assert!(parse_grid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_split_the_grid_and_read_the_job_index() {
        assert_eq!(parse_shard("1/4", None).unwrap(), (1, 4));
        assert_eq!(parse_shard("4", Some("3")).unwrap(), (3, 4));
        assert_eq!(parse_shard("$/4", Some("0")).unwrap(), (0, 4));
        assert!(parse_shard("4/4", None).is_err());
        assert!(parse_shard("4", None).is_err());
    }

    /// A Kubernetes Indexed Job of `completions: N` gives its pods `JOB_COMPLETION_INDEX` 0 to
    /// N-1; with `--shard N` those are shards 0/N to (N-1)/N, which run the grid once between
    /// them. An index outside (a Job whose completions differ from N) is refused, not wrapped.
    #[test]
    fn job_completion_index_is_k_from_0_and_the_shards_cover_the_grid_once() {
        let n = 8;
        let total = 43;
        let mut seen = vec![0_u32; total];
        for index in 0..n {
            let shard = parse_shard(&n.to_string(), Some(&index.to_string())).unwrap();
            assert_eq!(shard, (index, n), "pod {index} runs shard {index}/{n}");
            assert_eq!(parse_shard(&format!("$/{n}"), Some(&index.to_string())).unwrap(), shard);
            for i in shard_indices(total, shard) {
                assert_eq!(i % n, index);
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1), "every run once: {seen:?}");
        assert_eq!(shard_indices(total, (0, 1)).count(), total, "no shard: the whole grid");
        assert_eq!(shard_indices(3, (5, 8)).count(), 0, "a shard past a small grid runs nothing");

        let err = parse_shard("8", Some("8")).unwrap_err().to_string();
        assert!(err.contains("K is 8 (K from JOB_COMPLETION_INDEX), but K runs from 0 to N-1 = 7"), "{err}");
        let err = parse_shard("9/8", None).unwrap_err().to_string();
        assert!(err.contains("\"9/8\": K is 9, but"), "{err}");
        let err = parse_shard("0/0", None).unwrap_err().to_string();
        assert!(err.contains("must be at least 1"), "{err}");
        assert!(parse_shard("8", Some("-1")).is_err());
        assert!(parse_shard("8", Some("one")).is_err());
        // K written out wins over the Job's index.
        assert_eq!(parse_shard("2/8", Some("5")).unwrap(), (2, 8));
    }

    /// Words of a shell command line: blanks split, quotes group and are dropped (all the
    /// manifest's command line uses).
    fn shell_words(line: &str) -> Vec<String> {
        let (mut words, mut word, mut quote, mut started) = (Vec::new(), String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (None, '\'' | '"') => (quote, started) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => {
                    if started {
                        words.push(std::mem::take(&mut word));
                    }
                    started = false;
                }
                _ => {
                    word.push(c);
                    started = true;
                }
            }
        }
        if started {
            words.push(word);
        }
        words
    }

    /// `docs/sweep-job.yaml` as the code reads it: its command parses as `tradebox backtest`'s
    /// arguments, its `--shard` takes K from the Job's index and its N is the Job's completions,
    /// so pods 0 to N-1 run the grid once between them.
    #[test]
    fn the_documented_job_agrees_with_the_shards() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: crate::backtest::command::Args,
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/sweep-job.yaml");
        let yaml = std::fs::read_to_string(path).unwrap();
        let field = |name: &str| -> usize {
            let line = yaml.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("no {name}"));
            line.split(':').nth(1).and_then(|v| v.split('#').next()).unwrap().trim().parse().unwrap()
        };
        let completions = field("completions:");
        assert_eq!(yaml.matches("completionMode: Indexed").count(), 1);
        let command: Vec<&str> = yaml
            .lines()
            .map(str::trim)
            .skip_while(|l| !l.starts_with("tradebox backtest "))
            .take_while(|l| !l.ends_with(':'))
            .collect();
        let mut words = shell_words(&command.join(" "));
        assert_eq!(words.drain(..2).collect::<Vec<_>>(), ["tradebox", "backtest"]);
        for index in 0..completions {
            let line = words.iter().map(|w| w.replace("${JOB_COMPLETION_INDEX}", &index.to_string()));
            let cli = <Cli as clap::Parser>::try_parse_from(std::iter::once("backtest".to_owned()).chain(line))
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(cli.args.sweep.is_some(), "a sweep");
            let shard = parse_shard(cli.args.shard.as_deref().unwrap(), Some(&index.to_string())).unwrap();
            assert_eq!(shard, (index, completions), "pod {index} runs shard {index} of the Job's {completions}");
            let out = cli.args.out.unwrap();
            assert!(out.to_string_lossy().ends_with(&format!("shard-{index}.csv")), "one CSV per pod: {out:?}");
        }
        assert!(yaml.contains("--rank /results/shard-*.csv"), "the ranking the comment gives reads the shards' CSVs");
    }

    #[test]
    fn shards_concatenate_and_rank_as_one() {
        let stats = |pnl: f64| Stats { pnl, ..Stats::default() };
        let rows = |from: usize| -> Vec<Row> {
            (from..from + 2)
                .map(|i| Row {
                    index: i,
                    params: vec![("fast".into(), Value::from(i))],
                    stats: Ok(stats(i as f64 * 10.0 - 15.0)),
                    bars: 0,
                })
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        save(&rows(0), &["fast".into()], &a).unwrap();
        let mut failed = rows(2);
        failed[1].stats = Err("trapped, at 1: \"x\"".into());
        save(&failed, &["fast".into()], &b).unwrap();
        let mut table = read_csvs(&[a.clone(), b, a]).unwrap();
        rank(&mut table, "pnl").unwrap();
        let order: Vec<&str> = table.rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(order, vec!["2", "1", "0", "3"]);
        assert!(render(&table, 10).contains("trapped"));
        rank(&mut table, "max_drawdown").unwrap();
        assert!(rank(&mut table, "luck").is_err());
    }
}
