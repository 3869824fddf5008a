#![allow(missing_docs)]
//! `tradebox record` against the simulator's WebSocket fan-out, both in this process on this
//! machine's cores: the market is stepped as fast as it goes and one recorder subscribes to
//! `tickers`, `books`, `books5`, `bbo-tbt` and `trades` of every instrument, writing hourly zstd
//! files as the CLI does. Figures: frames written per second, MiB/s of text, compressed bytes
//! per million frames and per million book pushes (read back from the files: `books`, `books5`,
//! `bbo-tbt` and the tbt books' pushes, snapshots included), gaps (a recorder that fell behind
//! the simulator's backlog of 8,192 frames is disconnected: a gap) and frames dropped (the
//! writer fell behind its own queue).
//!
//! Run: `cargo bench -p tradebox --bench record [-- --seconds N] [--channels books]` (channels
//! comma-separated; the default is the mix above). `--channels books` gives the size of a
//! million book updates alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tradebox::record::{RecordOptions, record};
use tradebox_sim::server::{SimServer, SimServerConfig};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `--channels a,b` or the default mix.
fn channels() -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    let given = args.iter().position(|a| a == "--channels").and_then(|i| args.get(i + 1));
    given.map_or_else(
        || ["tickers", "books", "books5", "bbo-tbt", "trades"].map(String::from).to_vec(),
        |list| list.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(),
    )
}

/// Book pushes in the recorded files (snapshots and updates of every book channel).
fn book_pushes(files: &[std::path::PathBuf]) -> u64 {
    use std::io::BufRead;
    let mut n = 0;
    for file in files {
        let reader = std::io::BufReader::new(tradebox_data::frames::text(file).expect("the file opens"));
        for line in reader.lines() {
            let line = line.expect("reads");
            let book = ["books", "books5", "bbo-tbt", "books-l2-tbt", "books50-l2-tbt"]
                .iter()
                .any(|c| line.contains(&format!(r#""channel":"{c}""#)));
            n += u64::from(book && line.contains(r#""data":"#));
        }
    }
    n
}

fn main() {
    let seconds = arg("--seconds", 10);
    let channels = channels();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let config = SimServerConfig {
            run_market: false,
            rate_limits: false,
            ws_idle_ms: 600_000,
            ..SimServerConfig::default()
        };
        let sim = SimServer::start(config).await.expect("simulator starts");
        let symbols: Vec<String> = sim.exchange().specs().iter().map(|s| s.symbol.clone()).collect();
        let dir = tempfile::tempdir().expect("dir");
        let opts = RecordOptions {
            instruments: symbols.clone(),
            channels: channels.clone(),
            out: dir.path().to_path_buf(),
            url: sim.ws_url("public"),
            queue: Default::default(),
        };
        let stepping = Arc::new(AtomicBool::new(true));
        let exchange = sim.exchange().clone();
        let flag = stepping.clone();
        let stepper = tokio::spawn(async move {
            // Subscriptions first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut steps = 0u64;
            while flag.load(Ordering::Relaxed) {
                exchange.venue().step();
                exchange.pump();
                steps += 1;
                if steps.is_multiple_of(8) {
                    tokio::task::yield_now().await;
                }
            }
            steps
        });
        let start = Instant::now();
        let mut samples: Vec<u64> = Vec::new();
        let stop = {
            let stepping = stepping.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                stepping.store(false, Ordering::Relaxed);
                // What is in flight is written too.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        };
        let stats = record(opts, stop, |s| samples.push(s.frames)).await.expect("records");
        let elapsed = start.elapsed().as_secs_f64();
        let steps = stepper.await.unwrap_or(0);
        // The steady rate: per-second samples after the first (subscribing).
        let per_second: Vec<u64> = samples.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
        let best = per_second.iter().max().copied().unwrap_or(0);
        println!(
            "record: {} frames in {elapsed:.1} s ({steps} market steps, {} instruments): {:.0} frames/s overall, best \
             second {best}; {:.1} MiB/s of text; {:.1} MiB on disk for {:.1} MiB of text ({:.0} bytes a frame, {:.1} \
             MiB per million frames); {} gaps",
            stats.frames,
            symbols.len(),
            stats.frames as f64 / elapsed,
            stats.text_bytes as f64 / elapsed / (1 << 20) as f64,
            stats.disk_bytes as f64 / (1 << 20) as f64,
            stats.text_bytes as f64 / (1 << 20) as f64,
            stats.disk_bytes as f64 / stats.frames.max(1) as f64,
            stats.disk_bytes as f64 * 1e6 / stats.frames.max(1) as f64 / (1 << 20) as f64,
            stats.gaps
        );
        let books = book_pushes(&stats.files);
        println!(
            "record: channels {}: {books} book pushes, {:.1} MiB per million book pushes; {} frames dropped",
            channels.join(","),
            stats.disk_bytes as f64 * 1e6 / books.max(1) as f64 / (1 << 20) as f64,
            stats.dropped
        );
    });
}
