//! `tradebox record` against the simulator's WebSocket server, started in this process: the
//! library function the CLI calls and the binary itself (stopped by SIGTERM), a dropped
//! connection marked in the file, a writer that falls behind marked likewise, and a file cut
//! short read up to the cut; a refused subscription warned; a recording backtested as it is.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tradebox::record::{RecordOptions, RecordStats, record};
use tradebox_data::frames::{self, Recorded, RecordedEvent};
use tradebox_okx::ws::lossy::Limits;
use tradebox_sim::server::feed::Push;
use tradebox_sim::server::{SimServer, SimServerConfig};

async fn sim() -> SimServer {
    SimServer::start(SimServerConfig::default()).await.expect("the simulator starts")
}

fn options(sim: &SimServer, out: &Path, channels: &[&str]) -> RecordOptions {
    RecordOptions {
        instruments: vec!["BTC-USDT".into(), "ETH-USDT".into()],
        channels: channels.iter().map(|c| c.to_string()).collect(),
        out: out.to_path_buf(),
        url: sim.ws_url("public"),
        queue: Limits::default(),
    }
}

/// Every event of the files, read strictly (a broken book chain is an error), and the gaps.
fn read_back(files: &[PathBuf]) -> (Vec<Recorded>, u64) {
    let (mut all, mut gaps) = (Vec::new(), 0);
    for file in files {
        let head = std::fs::read(file).expect("the file");
        assert_eq!(head.get(..4), Some(&[0x28, 0xB5, 0x2F, 0xFD][..]), "{} is zstd", file.display());
        let mut frames = frames::open(file).expect("opens");
        for r in frames.by_ref() {
            all.push(r.unwrap_or_else(|e| panic!("{e}")));
        }
        gaps += frames.gaps();
    }
    (all, gaps)
}

fn count(events: &[Recorded], f: fn(&RecordedEvent) -> bool) -> usize {
    events.iter().filter(|r| f(&r.event)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_simulators_market_and_reads_it_back() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("dir");
    let opts = options(&sim, dir.path(), &["tickers", "books", "books5", "trades", "candle1m"]);
    let mut ticks = 0;
    let stats = record(opts, tokio::time::sleep(Duration::from_secs(3)), |_| ticks += 1).await.expect("records");
    assert!(ticks >= 2, "progress every second: {ticks}");
    assert!(stats.frames > 20, "{stats:?}");
    assert_eq!(stats.gaps, 0);
    // Hourly files: one, or two when the run crossed an hour.
    assert!((1..=2).contains(&stats.files.len()), "{stats:?}");
    let on_disk: u64 = stats.files.iter().map(|f| std::fs::metadata(f).expect("file").len()).sum();
    assert_eq!(on_disk, stats.disk_bytes);
    assert!(stats.disk_bytes < stats.text_bytes, "compressed: {stats:?}");
    let name = stats.files[0].file_name().and_then(|n| n.to_str()).expect("a name");
    assert!(name.starts_with("okx-public-20") && name.ends_with(".jsonl.zst") && name.len() == 34, "{name}");

    let (events, gaps) = read_back(&stats.files);
    assert_eq!(gaps, 0);
    for (what, f) in [
        ("tickers", (|e| matches!(e, RecordedEvent::Ticker { .. })) as fn(&RecordedEvent) -> bool),
        ("books", |e| matches!(e, RecordedEvent::Book { .. })),
        ("candles", |e| matches!(e, RecordedEvent::Candle(..))),
    ] {
        assert!(count(&events, f) > 0, "no {what} in {} events", events.len());
    }
    assert!(events.iter().any(|r| r.channel == "books5") && events.iter().any(|r| r.symbol == "ETH-USDT"));
    // Receive times on every line, in the order written, within the run.
    let times: Vec<i64> = events.iter().map(|r| r.received_ms.expect("a receive time")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "receive times go forward");
    let span = times.last().copied().unwrap_or(0) - times.first().copied().unwrap_or(0);
    assert!((500..=4_000).contains(&span), "recorded over the run: {span} ms");

    // `feed check` reads the compressed file as it is.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["feed", "check"])
        .arg(&stats.files[0])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("messages ") && last.ends_with("checksum mismatches 0, sequence gaps 0"), "{last}");
}

/// The binary, stopped by SIGTERM as a service manager would: the file it leaves is whole.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_stops_cleanly_on_sigterm() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("dir");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["record", "--instrument", "BTC-USDT", "--channel", "tickers,books", "--url", &sim.ws_url("public")])
        .arg("--out")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("joins").expect("exits");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let files: Vec<PathBuf> = stdout.lines().filter(|l| l.ends_with(".jsonl.zst")).map(PathBuf::from).collect();
    assert!(!files.is_empty(), "{stdout}");
    assert!(stdout.lines().last().is_some_and(|l| l.contains(" frames, ") && l.ends_with(" files")), "{stdout}");
    let (events, _) = read_back(&files);
    assert!(count(&events, |e| matches!(e, RecordedEvent::Book { .. })) > 0, "{stdout}");
}

/// A dropped connection: a gap line, the client reconnects and resubscribes, and the reader
/// starts every book afresh there (a strict read, so a book continued across the gap would fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_is_marked_and_books_start_again() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("dir");
    let opts = options(&sim, dir.path(), &["books", "trades"]);
    let exchange = sim.exchange().clone();
    let stop = async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        exchange.feed().control(Push::DropAll);
        tokio::time::sleep(Duration::from_millis(2_500)).await;
    };
    let stats: RecordStats = record(opts, stop, |_| {}).await.expect("records");
    assert_eq!(stats.gaps, 1, "{stats:?}");
    let (events, gaps) = read_back(&stats.files);
    assert_eq!(gaps, 1);
    // The file's text: books before the gap line and after it (fresh snapshots).
    let mut text = String::new();
    for f in &stats.files {
        let mut r = frames::text(f).expect("opens");
        std::io::Read::read_to_string(&mut r, &mut text).expect("reads");
    }
    let gap_at = text.lines().position(|l| l.contains(" #gap public ")).expect("a gap line");
    let snapshot = |l: &&str| l.contains(r#""action":"snapshot""#);
    assert!(text.lines().take(gap_at).filter(snapshot).count() >= 2, "snapshots before the gap");
    assert!(text.lines().skip(gap_at).filter(snapshot).count() >= 2, "snapshots after it");
    let gap_ms: i64 = text.lines().nth(gap_at).and_then(|l| l.split(' ').next()?.parse().ok()).expect("a time");
    let after = events.iter().filter(|r| r.received_ms.is_some_and(|t| t > gap_ms));
    assert!(after.filter(|r| matches!(r.event, RecordedEvent::Book { .. })).count() > 0, "books after the gap");
}

/// A recorder killed hard: the file ends inside its zstd frame. What was flushed reads, and then
/// one error names the cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cut_short_reads_up_to_the_cut() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("dir");
    let opts = options(&sim, dir.path(), &["tickers", "trades"]);
    let stats = record(opts, tokio::time::sleep(Duration::from_millis(2_500)), |_| {}).await.expect("records");
    let file = stats.files.last().expect("a file").clone();
    let whole: Vec<Recorded> = frames::open(&file).expect("opens").collect::<Result<_, _>>().expect("whole");
    let bytes = std::fs::read(&file).expect("file");
    // Cut off the end: most of the file, but not its last block.
    let cut = dir.path().join("cut.jsonl.zst");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).expect("write");
    let read: Vec<_> = frames::open(&cut).expect("opens").collect();
    let (last, before) = read.split_last().expect("something");
    let e = last.as_ref().expect_err("the cut");
    assert!(e.to_string().contains("the compressed file is cut short here"), "{e}");
    assert!(e.to_string().starts_with(&format!("{}:", cut.display())), "{e}");
    assert!(!e.to_string().contains('\n'));
    let before: Vec<&Recorded> = before.iter().map(|r| r.as_ref().expect("before the cut")).collect();
    assert!(!before.is_empty() && before.len() < whole.len(), "{} of {}", before.len(), whole.len());
    assert!(before.iter().zip(&whole).all(|(a, b)| *a == b), "the same events, up to the cut");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["feed", "check"])
        .arg(&cut)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("messages "), "the report of what was read");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cut short"), "{stderr}");
}

/// A writer that falls behind (here the progress callback blocks the writing task for 2 s, as a
/// disk stuck in `write` would): the queue stays within its cap, the frames past it are dropped,
/// the file says where and how many, and the books start again after it from fresh snapshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_falls_behind_drops_frames_and_marks_the_gap() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut opts = options(&sim, dir.path(), &["books", "tickers", "trades"]);
    opts.queue = Limits { frames: 8, bytes: 1 << 20 };
    let mut calls = 0;
    let stall = |_: &RecordStats| {
        calls += 1;
        if calls == 2 {
            std::thread::sleep(Duration::from_secs(2));
        }
    };
    let stats = record(opts, tokio::time::sleep(Duration::from_secs(5)), stall).await.expect("records");
    assert!(stats.dropped > 0, "{stats:?}");
    let mut text = String::new();
    for f in &stats.files {
        let mut r = frames::text(f).expect("opens");
        std::io::Read::read_to_string(&mut r, &mut text).expect("reads");
    }
    let marker = " #gap public writer fell behind: ";
    let losses: Vec<(usize, u64)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let (_, rest) = l.split_once(marker)?;
            let (n, _) = rest.split_once(" frames dropped (")?;
            Some((i, n.parse().ok()?))
        })
        .collect();
    assert!(!losses.is_empty(), "a gap line for the loss");
    assert_eq!(losses.iter().map(|(_, n)| n).sum::<u64>(), stats.dropped, "every dropped frame is counted in the file");
    assert_eq!(stats.gaps, losses.len() as u64, "no reconnect, only losses: {stats:?}");
    // Fresh snapshots of both books after the (first) loss: the chains start again there.
    let snapshots = text.lines().skip(losses[0].0).filter(|l| l.contains(r#""action":"snapshot""#)).count();
    assert!(snapshots >= 2, "books asked for again after the loss: {snapshots}");
    // The file reads as the backtest reads it (the stale updates between the loss and the new
    // snapshots skipped, not taken as the book).
    let mut books_after = 0;
    for file in &stats.files {
        let mut read = frames::open(file).expect("opens").skip_stale_books();
        for r in read.by_ref() {
            let r = r.unwrap_or_else(|e| panic!("{e}"));
            let after = r.received_ms.is_some_and(|t| t > gap_time(&text, losses[0].0));
            books_after += usize::from(after && matches!(r.event, RecordedEvent::Book { .. }));
        }
    }
    assert!(books_after > 0, "books after the loss");
}

/// The receive time of line `i` of a recording's text.
fn gap_time(text: &str, i: usize) -> i64 {
    text.lines().nth(i).and_then(|l| l.split(' ').next()?.parse().ok()).expect("a time")
}

/// An instrument OKX does not list: its refusal (60018) is in the file as received, and the CLI
/// says so in one warning naming it, and counts it; the instrument beside it is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_is_warned_and_counted() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("dir");
    let url = sim.ws_url("public");
    let out = dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tradebox"))
            .args(["record", "--instrument", "NOPE-USDT,BTC-USDT", "--channel", "tickers", "--duration", "3s"])
            .args(["--url", &url])
            .arg("--out")
            .arg(&out)
            .output()
    });
    let out = run.await.expect("joins").expect("runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("OKX refused a subscription")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("60018"), "{}", warnings[0]);
    assert!(warnings[0].contains("NOPE-USDT") && warnings[0].contains("tickers"), "{}", warnings[0]);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.contains(", 1 subscriptions refused, "), "{last}");
    let files: Vec<PathBuf> = stdout.lines().filter(|l| l.ends_with(".jsonl.zst")).map(PathBuf::from).collect();
    let mut text = String::new();
    for f in &files {
        let mut r = frames::text(f).expect("opens");
        std::io::Read::read_to_string(&mut r, &mut text).expect("reads");
    }
    assert!(text.lines().any(|l| l.contains(r#""event":"error""#) && l.contains("NOPE-USDT")), "kept in the file");
    let (events, _) = read_back(&files);
    assert!(events.iter().any(|r| r.symbol == "BTC-USDT" && matches!(r.event, RecordedEvent::Ticker { .. })));
}

/// Where the plugins are built (`cargo xtask plugins`), as the CLI tests find them.
fn plugin_dir() -> PathBuf {
    std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

/// Recorded, then backtested: the compressed hourly file as `tradebox record` leaves it is
/// `--data` for the real binary's backtest with the book fill model, and a real strategy is
/// handed its ticks. The two ends were tested apart; this is the path a user takes (it found
/// `DataKind::detect` taking zstd and `RECV_MS`-prefixed recordings for candles).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_backtested_as_it_is() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut opts = options(&sim, dir.path(), &["tickers", "books", "trades"]);
    opts.instruments = vec!["BTC-USDT".into()];
    let stats = record(opts, tokio::time::sleep(Duration::from_secs(4)), |_| {}).await.expect("records");
    let file = stats.files.last().expect("a file").clone();
    assert!(file.to_string_lossy().ends_with(".jsonl.zst"));
    let (events, _) = read_back(&stats.files);
    let tickers = count(&events, |e| matches!(e, RecordedEvent::Ticker { .. }));
    assert!(tickers >= 10, "tickers recorded: {tickers}");

    let sma = plugin_dir().join("sma-cross.wasm");
    assert!(sma.is_file(), "{} missing: build the plugins with `cargo xtask plugins`", sma.display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .arg("backtest")
        .arg(&sma)
        .args(["--instrument", "BTC-USDT", "--fill", "book", "--json", "--data"])
        .args(&stats.files)
        .args(["--config", r#"{"source":"ticker","fast":2,"slow":4,"size":0.001}"#])
        .env("XDG_CACHE_HOME", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-xdg-cache"))
        .output()
        .expect("runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the last line is JSON: {stdout}"));
    let replayed = summary["bars"].as_u64().unwrap_or(0);
    // A plugin's `events`: what it was handed (the run's `delivered`).
    let delivered = summary["plugins"][0]["events"].as_u64().unwrap_or(0);
    assert!(replayed >= tickers as u64 && delivered > 0, "{summary}");
    assert!(summary["plugins"][0]["fault"].is_null(), "{summary}");
}
