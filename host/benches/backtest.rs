#![allow(missing_docs)]
//! Backtest throughput (issue 15): `sma-cross` in candle mode (SMA 10/30, long/flat, 1 unit,
//! market orders at the next bar's open, no fees) on 220,780 one-minute bars, one run on one
//! core, with the gateway, risk checks, order tracking and fills on, as `tradebox backtest`
//! runs it. The bars are a seeded random walk (`tradebox_data::synthetic`, BTC-like: 60,000
//! start, 0.08% per bar, tick 0.1), the same on every machine.
//!
//! Rows, each the median of `--runs` runs after one run not counted (warm-up):
//! - `memory`: the bars already in memory (what a sweep does): the engine's own rate;
//! - `csv`: streamed from a CSV file as `tradebox backtest` does (parsing included);
//! - `idle`: the same bars and engine with the `noop` plugin, which subscribes to nothing: the
//!   cost of a step without any call into wasm (router, exchange, books, equity);
//! - `native`: the strategy's signal logic alone (`sma_cross::Core::on_candle`) over the
//!   closes, natively: what the logic costs without the host;
//! - `sweep`: a 3 x 4 grid (`fast=5..15:5,slow=20..50:10`) on 1 thread and on every core:
//!   runs/s and the ratio.
//!
//! Run: `cargo xtask plugins && cargo bench -p tradebox --bench backtest [-- --runs 5] [--bars N]
//! [--memory-only]` (`TRADEBOX_PLUGIN_DIR` to use plugins from elsewhere).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tradebox::backtest::run::{DataFile, Loaded, Plan, PluginPlan};
use tradebox::backtest::{Fees, FillModel, command, sweep};
use tradebox::engine::Grants;
use tradebox::plugin::{Limits, Mode, Runtime};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU seconds this thread has used.
fn thread_cpu_s() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The peak resident memory of this process so far, KiB (Linux's VmHWM).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// In a child process: stream one CSV through a run and print the peak memory.
fn rss_child(csv: &std::path::Path, dir: &std::path::Path) {
    let runtime = Runtime::new(Mode::Deterministic, None).expect("runtime");
    let sma = runtime.compile(&std::fs::read(dir.join("sma-cross.wasm")).expect("plugin")).expect("compiles");
    let (risk, account) = command::open_limits();
    let btc = tradebox_sim::venue::SimVenue::new(tradebox_sim::venue::SimConfig::demo())
        .map(|v| tradebox_core::Venue::instruments(v.as_ref()))
        .expect("instruments")
        .into_iter()
        .find(|s| s.symbol == "BTC-USDT")
        .map(|s| tradebox_core::InstrumentSpec { id: 1, ..s })
        .expect("BTC-USDT");
    let plan = Plan {
        instruments: vec![btc],
        data: vec![DataFile { path: csv.to_path_buf(), symbol: "BTC-USDT".into(), loaded: None }],
        from_ms: None,
        to_ms: None,
        fill: FillModel::NextOpen,
        fees: Fees::none(),
        leverage: rust_decimal::Decimal::ONE,
        balances: vec![("USDT".into(), rust_decimal::Decimal::from(100_000_000))],
        account,
        equity_dir: None,
        funding: Vec::new(),
    };
    let plugin = PluginPlan {
        name: "p".into(),
        path: "bench".into(),
        compiled: sma,
        config: r#"{"symbol":"BTC-USDT","source":"candle","fast":10,"slow":30,"size":1}"#.into(),
        grants: Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() },
        risk,
        limits: Limits::default(),
    };
    let before = peak_rss_kib();
    let report = tradebox::backtest::run::run(&plan, &[plugin], &mut |_| {}).expect("run");
    println!("{} {} {}", report.events, before, peak_rss_kib());
}

fn main() {
    // `cargo bench` passes `--bench`; criterion-style filters are not used here.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rss-child") {
        let (Some(csv), Some(dir)) = (args.get(i + 1), args.get(i + 2)) else { panic!("--rss-child CSV DIR") };
        return rss_child(std::path::Path::new(csv), std::path::Path::new(dir));
    }
    let runs = arg("--runs", 5).max(1);
    let cpus = std::cell::RefCell::new(Vec::new());
    let count = arg("--bars", 220_780);
    let dir = std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let read = |name: &str| {
        let path = dir.join(format!("{name}.wasm"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask plugins` first)", path.display()))
    };
    let bars = tradebox_data::synthetic::random_walk(7, count, 1_704_067_200_000, 60_000, 60_000.0, 0.0008, 0.1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let csv_path = tmp.path().join("bars.csv");
    if !std::env::args().any(|a| a == "--memory-only") {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&csv_path).expect("csv"));
        tradebox_data::synthetic::write_csv(&bars, &mut file).expect("write csv");
    }
    let runtime = Runtime::new(Mode::Deterministic, None).expect("runtime");
    let sma = runtime.compile(&read("sma-cross")).expect("sma-cross compiles");
    let noop = runtime.compile(&read("noop")).expect("noop compiles");
    let (risk, account) = command::open_limits();
    let specs = tradebox_sim::venue::SimVenue::new(tradebox_sim::venue::SimConfig::demo())
        .map(|v| tradebox_core::Venue::instruments(v.as_ref()))
        .expect("demo instruments");
    let btc =
        specs.iter().find(|s| s.symbol == "BTC-USDT").cloned().map(|s| tradebox_core::InstrumentSpec { id: 1, ..s });
    let plan = |loaded: bool| Plan {
        instruments: btc.iter().cloned().collect(),
        data: vec![DataFile {
            path: csv_path.clone(),
            symbol: "BTC-USDT".into(),
            loaded: loaded.then(|| Loaded { bars: Arc::from(bars.clone()), sha256: "synthetic".into() }),
        }],
        from_ms: None,
        to_ms: None,
        fill: FillModel::NextOpen,
        fees: Fees::none(),
        leverage: rust_decimal::Decimal::ONE,
        balances: vec![("USDT".into(), rust_decimal::Decimal::from(100_000_000))],
        account: account.clone(),
        equity_dir: None,
        funding: Vec::new(),
    };
    let plugin = |compiled: &tradebox::plugin::runtime::Compiled, config: &str| PluginPlan {
        name: "p".into(),
        path: "bench".into(),
        compiled: compiled.clone(),
        config: config.into(),
        grants: Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() },
        risk: risk.clone(),
        limits: Limits::default(),
    };
    let sma_config = r#"{"symbol":"BTC-USDT","source":"candle","fast":10,"slow":30,"size":1}"#;
    // One run first, not counted: the first run of a process pays for the allocator's arenas
    // and the code's first touch (it ran 1.5-2x slower than the rest here), which a long run or
    // a sweep pays once.
    let measure = |plan: &Plan, p: &PluginPlan| -> (f64, u64) {
        let mut rates = Vec::new();
        let mut trades = 0;
        for run in 0..=runs {
            let cpu_before = thread_cpu_s();
            let report = tradebox::backtest::run::run(plan, std::slice::from_ref(p), &mut |_| {}).expect("run");
            let cpu = thread_cpu_s() - cpu_before;
            if std::env::var_os("TRADEBOX_BENCH_EACH").is_some() {
                eprintln!(
                    "    run {run}: {:.0} bars/s ({:.0} by CPU time)",
                    report.events_per_s,
                    report.events as f64 / cpu
                );
            }
            if run > 0 {
                rates.push(report.events_per_s);
                cpus.borrow_mut().push(report.events as f64 / cpu);
            }
            trades = report.total.round_trips;
        }
        (median(rates), trades)
    };
    // The CPU time of the run's thread beside its wall time: on a shared machine the wall time
    // includes waits for a core, the CPU time does not.
    let cpu_rate = || median(std::mem::take(&mut *cpus.borrow_mut()));
    println!("backtest throughput, {count} bars, median of {runs} runs (bars/s):");
    let (memory, trades) = measure(&plan(true), &plugin(&sma, sma_config));
    println!(
        "  memory  sma-cross candle 10/30     {memory:>12.0}   ({trades} round trips; {:.0} by the thread's CPU time)",
        cpu_rate()
    );
    // The same with every order refused at the notional check (the signal and the gateway
    // up to risk run; no order reaches the exchange, no fill comes back): what orders cost.
    let mut refused = plugin(&sma, sma_config);
    refused.risk.max_order_notional = 1.0;
    let (no_orders, _) = measure(&plan(true), &refused);
    println!("  refused every order refused by risk   {no_orders:>12.0}   ({:.0} by CPU time)", cpu_rate());
    if std::env::args().any(|a| a == "--memory-only") {
        return;
    }
    let (csv, _) = measure(&plan(false), &plugin(&sma, sma_config));
    println!(
        "  csv     sma-cross candle 10/30     {csv:>12.0}   (streamed from a {:.1} MB file; {:.0} by CPU time)",
        file_mb(&csv_path),
        cpu_rate()
    );
    let (idle, _) = measure(&plan(true), &plugin(&noop, "{}"));
    println!("  idle    noop, no call into wasm    {idle:>12.0}   ({:.0} ns a bar)", 1e9 / idle);
    cpu_rate();
    let native = {
        let mut rates = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let mut core = sma_cross::Core::new(1, 10, 30);
            let mut crosses = 0_u64;
            for bar in &bars {
                crosses += u64::from(core.on_candle(std::hint::black_box(1), bar.close, true).is_some());
            }
            std::hint::black_box(crosses);
            rates.push(bars.len() as f64 / started.elapsed().as_secs_f64());
        }
        median(rates)
    };
    println!("  native  the signal logic alone     {native:>12.0}   ({:.1} ns a bar)", 1e9 / native);
    println!(
        "  per bar: {:.0} ns in all; {:.0} ns the engine without wasm; {:.0} ns the call and the guest's logic",
        1e9 / memory,
        1e9 / idle,
        1e9 / memory - 1e9 / idle
    );
    let axes = sweep::parse_grid("fast=5..15:5,slow=20..50:10").expect("grid");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let p = plugin(&sma, sma_config);
    let sweep_rate = |jobs: usize| {
        let mut rates = Vec::new();
        for _ in 0..runs.min(3) {
            let started = Instant::now();
            let rows = sweep::sweep(&plan(true), &p, &axes, None, jobs, &|_, _| {}).expect("sweep");
            assert!(rows.iter().all(|r| r.stats.is_ok()), "a sweep run failed");
            rates.push(rows.len() as f64 / started.elapsed().as_secs_f64());
        }
        median(rates)
    };
    let one = sweep_rate(1);
    let all = sweep_rate(cores);
    println!("  sweep   12 runs on 1 thread        {one:>12.2} runs/s");
    println!("  sweep   12 runs on {cores} threads       {all:>12.2} runs/s   ({:.2}x)", all / one);
    // Memory against the length of the data: a tenth of a year and a year of one-minute bars,
    // each streamed from its file in a fresh process.
    for count in [52_560, 525_600] {
        let path = tmp.path().join(format!("year-{count}.csv"));
        let bars = tradebox_data::synthetic::random_walk(3, count, 1_672_531_200_000, 60_000, 20_000.0, 0.0008, 0.1);
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("csv"));
        tradebox_data::synthetic::write_csv(&bars, &mut file).expect("write csv");
        drop(file);
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(["--rss-child", path.to_str().expect("path"), dir.to_str().expect("dir")])
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<u64> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        if let [events, before, peak] = fields[..] {
            println!(
                "  memory  {events:>7} bars streamed from CSV: peak RSS {:.1} MiB ({:.1} MiB before the run)",
                peak as f64 / 1024.0,
                before as f64 / 1024.0
            );
        } else {
            println!("  memory  {count} bars: the child said {text:?} {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

fn file_mb(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1e6)
}
