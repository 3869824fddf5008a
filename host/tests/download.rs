//! `tradebox data download` against the simulator's `market/history-candles`, started in this
//! process on a virtual clock so that hours of market pass in a moment: the file holds every
//! closed bar the simulator serves for the range, oldest first, once each; a rerun fills in
//! what was cut from either end, an interrupted run leaves a file a rerun completes, and
//! failures retry or stop with the file untouched.

use indicatif::ProgressBar;
use std::path::Path;
use std::time::Duration;
use tradebox::download::{DownloadError, DownloadOptions, HEADER, download};
use tradebox_core::{Clock, VirtualTime};
use tradebox_sim::server::exchange::{CandlePage, bar_index};
use tradebox_sim::server::{Faults, SimServer, SimServerConfig};

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
const MINUTE: i64 = 60_000;

/// A simulator whose market has traded for `minutes` (a step every simulated 10 s).
async fn market(minutes: i64) -> (SimServer, VirtualTime) {
    let (clock, time) = Clock::virtual_at(T0);
    let config = SimServerConfig { run_market: false, ..SimServerConfig::default() };
    let sim = SimServer::start_with_clock(config, clock).await.expect("the simulator starts");
    run(&sim, &time, minutes);
    (sim, time)
}

fn run(sim: &SimServer, time: &VirtualTime, minutes: i64) {
    for _ in 0..minutes * 6 {
        time.advance_by(10_000);
        sim.exchange().venue().step();
        sim.exchange().pump();
    }
}

/// Every closed bar the simulator serves in `[from, to)`, oldest first, as CSV lines: read
/// from it directly, 300 at a time.
fn served(sim: &SimServer, bar: &str, from: i64, to: i64) -> Vec<String> {
    let spec = sim.exchange().spec("BTC-USDT").expect("BTC-USDT").clone();
    let bar = bar_index(bar).expect("a bar");
    let mut rows = Vec::new();
    let mut after = to;
    loop {
        let page =
            sim.exchange().candles_json(&spec, bar, CandlePage { after: Some(after), before: None, limit: 300 }, false);
        let Some(last) = page.last() else { break };
        after = last[0].as_str().and_then(|t| t.parse().ok()).expect("a time");
        rows.extend(page.iter().filter(|r| r[8] == "1").map(|r| {
            let f = |i: usize| r[i].as_str().expect("text").to_string();
            (f(0).parse::<i64>().expect("ms"), format!("{},{},{},{},{},{}", f(0), f(1), f(2), f(3), f(4), f(5)))
        }));
        if after < from {
            break;
        }
    }
    rows.retain(|(ts, _)| (from..to).contains(ts));
    rows.reverse();
    rows.into_iter().map(|(_, line)| line).collect()
}

fn options(sim: &SimServer, from: i64, to: i64, out: &Path) -> DownloadOptions {
    let mut o = DownloadOptions::new("BTC-USDT", "1m", from, to, out);
    o.base_url = sim.base_url();
    // Short pages: several of them even for a few hours of bars.
    o.page = 40;
    o.backoff = Duration::from_millis(20);
    o
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).expect("the file").lines().map(str::to_string).collect()
}

fn file_of(rows: &[String]) -> Vec<String> {
    std::iter::once(HEADER.to_string()).chain(rows.iter().cloned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bar_once_oldest_first_and_resumed_at_both_ends() {
    let (sim, time) = market(300).await;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("btc.csv");
    let (from, to) = (T0 + 7 * MINUTE, time.advance_by(0));
    let want = served(&sim, "1m", from, to);
    assert!(want.len() >= 290, "{} bars", want.len());

    let s = download(options(&sim, from, to, &out), ProgressBar::hidden()).await.expect("downloads");
    assert_eq!(lines(&out), file_of(&want));
    assert_eq!((s.added_before, s.added_after, s.rows, s.retries), (want.len() as u64, 0, want.len() as u64, 0));
    assert!(s.requests >= want.len() as u64 / 40, "{} requests", s.requests);
    assert_eq!(s.span.map(|(first, _)| first), Some(from));

    // Cut both ends; a rerun puts back exactly what was cut.
    let cut = &want[23..want.len() - 37];
    std::fs::write(&out, file_of(cut).join("\n") + "\n").expect("cut");
    let s = download(options(&sim, from, to, &out), ProgressBar::hidden()).await.expect("resumes");
    assert_eq!(lines(&out), file_of(&want));
    assert_eq!((s.added_before, s.added_after), (23, 37));

    // Complete already: nothing added, one request to see so.
    let s = download(options(&sim, from, to, &out), ProgressBar::hidden()).await.expect("nothing to do");
    assert_eq!((s.added_before, s.added_after, s.requests), (0, 0, 1));
    assert_eq!(lines(&out), file_of(&want));

    // Later, the same file extended to the new present (and a last line without its newline).
    run(&sim, &time, 90);
    let later = time.advance_by(0);
    let text = std::fs::read_to_string(&out).expect("file");
    std::fs::write(&out, text.trim_end()).expect("no final newline");
    let s = download(options(&sim, from, later, &out), ProgressBar::hidden()).await.expect("extends");
    let want = served(&sim, "1m", from, later);
    assert_eq!(lines(&out), file_of(&want));
    assert_eq!(s.added_after, 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_walk_keeps_its_checkpoints() {
    let (sim, time) = market(240).await;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("btc.csv");
    let (from, to) = (T0, time.advance_by(0));
    let want = served(&sim, "1m", from, to);
    let mut opts = options(&sim, from, to, &out);
    (opts.page, opts.checkpoint_rows) = (10, 20);
    // Slow answers, so the walk is still going when it is stopped.
    sim.faults().set(Faults { delay_ms: 40, ..Faults::default() });
    let task = tokio::spawn(download(opts.clone(), ProgressBar::hidden()));
    while !out.exists() && !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    task.abort();
    let _ = task.await;
    sim.faults().set(Faults::default());
    // What it holds is the newest bars, the file a backtest would read.
    let kept = lines(&out);
    assert!(kept.len() > 1 && kept.len() < want.len(), "{} of {} rows", kept.len() - 1, want.len());
    assert_eq!(kept[1..], want[want.len() - (kept.len() - 1)..]);
    let s = download(opts, ProgressBar::hidden()).await.expect("resumes");
    assert_eq!(lines(&out), file_of(&want));
    assert_eq!(s.added_before as usize, want.len() - (kept.len() - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_or_leave_the_file_as_it_was() {
    let (sim, time) = market(60).await;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("btc.csv");
    let (from, to) = (T0, time.advance_by(0));
    let want = served(&sim, "1m", from, to);

    // Two answers that are a gateway's error page, not OKX's JSON: tried again.
    sim.faults().set(Faults { malformed: 2, ..Faults::default() });
    let s = download(options(&sim, from, to, &out), ProgressBar::hidden()).await.expect("downloads");
    assert_eq!(s.retries, 2);
    assert_eq!(lines(&out), file_of(&want));
    let before = std::fs::read(&out).expect("file");

    // No answer in time, every time: the file stays as it was.
    sim.faults().set(Faults { delay_ms: 300, ..Faults::default() });
    let mut slow = options(&sim, from - 30 * MINUTE, to, &out);
    (slow.timeout, slow.attempts) = (Duration::from_millis(50), 2);
    let e = download(slow, ProgressBar::hidden()).await.expect_err("times out");
    assert!(matches!(e, DownloadError::Okx { attempts: 2, .. }), "{e}");
    assert!(e.to_string().contains("no answer from OKX within 50 ms"), "{e}");
    sim.faults().set(Faults::default());
    assert_eq!(std::fs::read(&out).expect("file"), before);

    // OKX refusing the request is not tried again.
    let mut other = options(&sim, from, to, &dir.path().join("nope.csv"));
    other.instrument = "NOPE-USDT".into();
    let e = download(other, ProgressBar::hidden()).await.expect_err("no such instrument");
    assert!(matches!(e, DownloadError::Okx { attempts: 1, .. }), "{e}");
    assert!(e.to_string().contains("51001"), "{e}");
    assert!(!dir.path().join("nope.csv").exists());

    // A file of other bars, or not a candle file at all, is never touched.
    let mut five = options(&sim, from, to, &out);
    five.bar = "5m".into();
    let e = download(five, ProgressBar::hidden()).await.expect_err("1m bars in the file");
    assert!(e.to_string().contains("holds bars 60000 ms apart, and --bar 5m is 300000 ms"), "{e}");
    let notes = dir.path().join("notes.csv");
    std::fs::write(&notes, "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1,1\n60000,1,2,0.5,1,1\n").expect("write");
    let e = download(options(&sim, from, to, &notes), ProgressBar::hidden()).await.expect_err("a repeated bar");
    assert!(matches!(e, DownloadError::NotResumable { .. }), "{e}");
    assert!(e.to_string().contains("notes.csv:3: bar at 60000 is not after"), "{e}");
    assert_eq!(lines(&notes).len(), 3);
    assert_eq!(std::fs::read(&out).expect("file"), before);
}

/// A server that answers every request with `status` and `body`, whatever it is asked.
async fn canned(status: u16, body: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 1 << 16 {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

/// What the server writes reaches the terminal escaped and cut: no ANSI sequence, no line of
/// its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_text_is_escaped() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("x.csv");
    let opts = |base_url: String| {
        let mut o = DownloadOptions::new("BTC-USDT", "1m", T0, T0 + 60 * MINUTE, &out);
        (o.base_url, o.attempts, o.backoff) = (base_url, 1, Duration::from_millis(1));
        o
    };
    let clean = |e: &DownloadError| {
        let text = e.to_string();
        assert!(!text.contains(['\u{1b}', '\n', '\r']), "{text:?}");
        assert!(text.len() < 800, "{} bytes: {text}", text.len());
        text
    };
    // OKX's envelope, its message an escape sequence, a forged line and a flood.
    static REFUSAL: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        format!(
            r#"{{"code":"51001","msg":"Instrument ID does not exist\u001b[2J\u001b[31m\nerror: all keys revoked{}","data":[]}}"#,
            "!".repeat(100_000)
        )
        .into_bytes()
    });
    let e = download(opts(canned(200, &REFUSAL).await), ProgressBar::hidden()).await.expect_err("refused");
    let text = clean(&e);
    assert!(matches!(e, DownloadError::Okx { attempts: 1, .. }), "{e}");
    assert!(
        text.contains("OKX 51001: Instrument ID does not exist\\u{1b}[2J\\u{1b}[31m\\u{a}error: all keys revoked!!!"),
        "{text}"
    );
    assert!(text.contains("… (cut)"), "{text}");
    // Not OKX's JSON at all.
    let page = b"<html>\x1b]0;owned\x07\x1b[1A\r\nerror: forged</html>";
    let e = download(opts(canned(404, page).await), ProgressBar::hidden()).await.expect_err("not JSON");
    let text = clean(&e);
    assert!(text.contains("unexpected answer from OKX (HTTP 404)") && text.contains("owned"), "{text}");
    // Escaped once: the escape character shows as `\u{1b}`, not `\\u{1b}`.
    assert!(text.contains(r"\u{1b}]0;owned") && !text.contains(r"\\u{1b}"), "{text}");
    assert!(!out.exists(), "nothing written");
}

/// Bars missing inside the file are reported, never fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_inside_are_reported() {
    let (sim, time) = market(120).await;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("btc.csv");
    let (from, to) = (T0 + 7 * MINUTE, time.advance_by(0));
    let want = served(&sim, "1m", from, to);
    let s = download(options(&sim, from, to, &out), ProgressBar::hidden()).await.expect("downloads");
    assert_eq!((s.rows, s.gaps), (want.len() as u64, None));
    // Rows 30 to 39 and 70 removed: both ends complete, so nothing is fetched but a look.
    let kept: Vec<String> =
        want.iter().enumerate().filter(|(i, _)| !(30..40).contains(i) && *i != 70).map(|(_, l)| l.clone()).collect();
    std::fs::write(&out, file_of(&kept).join("\n") + "\n").expect("cut");
    let s = download(options(&sim, from, to, &out), ProgressBar::hidden()).await.expect("looks");
    assert_eq!((s.added_before, s.added_after, s.requests), (0, 0, 1));
    let first: i64 = want[30].split(',').next().and_then(|t| t.parse().ok()).expect("a time");
    assert_eq!(
        s.gaps,
        Some(tradebox::download::Gaps { count: 2, missing_bars: 11, first_from_ms: first, first_bars: 10 })
    );
    assert_eq!(lines(&out), file_of(&kept), "the file as it was");
}

/// The command itself: a summary line, or one line of error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line() {
    let (sim, time) = market(30).await;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("cli.csv");
    let want = served(&sim, "1m", T0, time.advance_by(0));
    let to = time.advance_by(0).to_string();
    let args = |bar: &str| {
        let base = sim.base_url();
        let out = out.display().to_string();
        let (bar, to) = (bar.to_string(), to.clone());
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tradebox"))
                .args(["data", "download", "--instrument", "BTC-USDT", "--bar", &bar, "--from", "2024-01-01"])
                .args(["--to", &to, "--out", &out, "--base-url", &base])
                .env("RUST_BACKTRACE", "0")
                .output()
                .expect("tradebox runs")
        }
    };
    let run = tokio::task::spawn_blocking(args("1m")).await.expect("joins");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout} {}", String::from_utf8_lossy(&run.stderr));
    assert!(
        stdout.contains(&format!("{} bars, 2024-01-01T00:00:00Z to", want.len()))
            && stdout.contains(&format!("({} added before, 0 after", want.len())),
        "{stdout}"
    );
    assert!(run.stderr.is_empty(), "no progress bar when stderr is not a terminal");
    assert_eq!(lines(&out), file_of(&want));

    // A row removed inside: said in one more line, and left so.
    let kept: Vec<String> = want.iter().enumerate().filter(|(i, _)| *i != 5).map(|(_, l)| l.clone()).collect();
    std::fs::write(&out, file_of(&kept).join("\n") + "\n").expect("cut");
    let run = tokio::task::spawn_blocking(args("1m")).await.expect("joins");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    let gap = stdout.lines().nth(1).unwrap_or_default();
    assert!(gap.ends_with("1 gap inside, 1 bar missing in all; the first: 1 bar from 2024-01-01T00:05:00Z (an outage at OKX, or rows removed; a rerun does not fetch them)"), "{stdout}");
    assert_eq!(lines(&out), file_of(&kept));

    let run = tokio::task::spawn_blocking(args("1h")).await.expect("joins");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.starts_with("error: downloading BTC-USDT 1h candles into "), "{stderr}");
    assert!(stderr.contains("--bar \"1h\" is not one of OKX's bars") && stderr.lines().count() == 1, "{stderr}");
}
