//! `tradebox record`: OKX's public WebSocket feed (or `tradebox sim`'s) written to disk as
//! received, for backtests and `feed check` to read later.
//!
//! Every text frame goes to the file unchanged, one a line, after its receive time:
//! `RECV_MS FRAME` (the line format: `tradebox_okx::ws::recorded`). A lost connection writes a
//! `#gap` line: frames may be missing there and a book's `seqId` chain is broken, which the
//! readers act on (every book starts afresh; the client's resubscription brings new snapshots).
//!
//! Files are hourly by receive time (UTC), `DIR/okx-public-2026-12-07T12.jsonl.zst`, each one
//! zstd frame; a name already taken (a second run within the hour) gets `-2`, `-3`, ... rather
//! than appending to a file whose end may be cut. The encoder is flushed every second, so a
//! process killed hard leaves a file readable up to its last second (the readers name the cut);
//! a clean stop and every rotation finish the frame. A new hour's file starts with
//! `#continues PREVIOUS` and the chained books (`books`, the tbt books) are asked for again, so
//! each file holds its own snapshots and reads on its own.
//!
//! The files are [`FeedWriter`]'s, public so that the paper venue can tee the feed it trades on
//! into the same hourly files: one format for every recording, which `feed check` and backtests
//! read whoever wrote it.
//!
//! The connections are the okx crate's reconnecting client in raw mode (frames are not parsed:
//! the parse would bound the rate), one for `/public` and, for candles and `trades-all`, one for
//! `/business`. One task receives and writes: zstd at level 3 keeps well ahead of a feed. Between
//! each client and the writer is a bounded queue ([`tradebox_okx::ws::lossy`], 64 MiB or 262,144
//! frames by default): a disk that stalls must not make the process grow until it is killed,
//! which would lose the file's unflushed second as well. The client keeps reading (OKX would
//! drop a slow reader anyway), frames past the cap are dropped, and the file gets
//! `#gap public writer fell behind: N frames dropped (B bytes)` where they are missing, the books
//! asked for again: a reader sees a gap, as after a reconnect. So memory is the queue's cap, the
//! encoder's window and one line's buffer.
//!
//! A subscription OKX refuses (`{"event":"error","code":"60018",...}` for an instrument it does
//! not list) is written like any frame, and also logged as a warning and counted, since a
//! recording that silently lacks an instrument is found out only when it is read.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tradebox_okx::ws::lossy::{self, Delivered};
use tradebox_okx::ws::recorded::{CONTINUES, gap_line};
use tradebox_okx::ws::{ClientConfig, ClientEvent, ConnectGate, Frame, WsClient};

/// OKX's public WebSocket endpoint.
pub const DEFAULT_URL: &str = "wss://ws.okx.com:8443/ws/v5/public";

/// The channels `/public` carries (okx-v5.md §5).
const PUBLIC: [&str; 7] = ["tickers", "books", "books5", "bbo-tbt", "books-l2-tbt", "books50-l2-tbt", "trades"];

/// zstd's level: its default, far faster than a feed and about 10x smaller than the text.
const LEVEL: i32 = 3;

/// How often the encoder is flushed to the file (what a hard kill may lose at most) and the
/// progress reported.
const TICK: Duration = Duration::from_secs(1);

const HOUR_MS: i64 = 3_600_000;

/// What to record and where.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// OKX instrument ids.
    pub instruments: Vec<String>,
    /// OKX channel names (`tickers`, `books`, `books5`, `bbo-tbt`, `trades`, `candle1m`, ...).
    pub channels: Vec<String>,
    /// The directory of the hourly files (created when missing).
    pub out: PathBuf,
    /// The `/public` endpoint; `/business` (candles, `trades-all`) is the same URL ending in
    /// `/business`.
    pub url: String,
    /// What each connection's queue to the writer holds before frames are dropped (and a gap
    /// line written): [`lossy::Limits::default`] unless a test or bench wants a writer that falls
    /// behind sooner.
    pub queue: lossy::Limits,
}

/// Why recording stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The options cannot work.
    #[error("{0}")]
    Options(String),
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// What has been recorded so far.
#[derive(Debug, Clone, Default)]
pub struct RecordStats {
    /// Frames written.
    pub frames: u64,
    /// Bytes of text written (before compression).
    pub text_bytes: u64,
    /// Bytes on disk (compressed), finished files and the open one.
    pub disk_bytes: u64,
    /// Gap lines written (connections lost, frames dropped).
    pub gaps: u64,
    /// Frames dropped because the writer fell behind (each run of them is one gap line).
    pub dropped: u64,
    /// Error answers from OKX, in practice refused subscriptions (an instrument or channel it
    /// does not serve); each is also a warning in the log.
    pub refused: u64,
    /// Every file written to, in order.
    pub files: Vec<PathBuf>,
}

/// A channel's endpoint: `/business` for candles and `trades-all`, `/public` for the rest.
fn business(channel: &str) -> Option<bool> {
    if PUBLIC.contains(&channel) {
        Some(false)
    } else if channel == "trades-all" || channel.strip_prefix("candle").is_some_and(|bar| !bar.is_empty()) {
        Some(true)
    } else {
        None
    }
}

/// The subscriptions per endpoint: (`/public` args, `/business` args).
fn args(opts: &RecordOptions) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), RecordError> {
    if opts.instruments.is_empty() || opts.channels.is_empty() {
        return Err(RecordError::Options("at least one --instrument and one --channel are needed".into()));
    }
    let (mut public, mut biz) = (Vec::new(), Vec::new());
    for channel in &opts.channels {
        let to_business = business(channel).ok_or_else(|| {
            RecordError::Options(format!(
                "channel {channel:?} is not one OKX serves publicly here (tickers, books, books5, bbo-tbt, \
                 books-l2-tbt, books50-l2-tbt, trades, trades-all, candle1m and the other candle bars)"
            ))
        })?;
        for inst in &opts.instruments {
            let arg = serde_json::json!({"channel": channel, "instId": inst});
            if to_business { biz.push(arg) } else { public.push(arg) }
        }
    }
    Ok((public, biz))
}

/// The `/business` URL beside a `/public` one.
fn business_url(url: &str) -> Result<String, RecordError> {
    let trimmed = url.trim_end_matches('/');
    trimmed.strip_suffix("/public").map(|base| format!("{base}/business")).ok_or_else(|| {
        RecordError::Options(format!(
            "--url {url:?} does not end in /public, so the /business endpoint candles and trades-all need \
             cannot be told from it"
        ))
    })
}

/// A writer that counts what reaches the file.
struct Counted {
    file: File,
    bytes: u64,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A file's write error.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io { path: path.to_path_buf(), source }
}

/// The open hourly file.
struct HourFile {
    path: PathBuf,
    hour: i64,
    encoder: zstd::stream::write::Encoder<'static, Counted>,
}

/// `okx-public-2026-12-07T12` for the hour holding `ms`.
fn stem(hour: i64) -> String {
    let shown = crate::download::show_time(hour * HOUR_MS);
    format!("okx-public-{}", shown.get(..13).unwrap_or(&shown))
}

impl HourFile {
    /// A new file for `hour` in `dir`, never one that exists.
    fn create(dir: &Path, hour: i64) -> Result<Self, RecordError> {
        let stem = stem(hour);
        for n in 1u32.. {
            let name = if n == 1 { format!("{stem}.jsonl.zst") } else { format!("{stem}-{n}.jsonl.zst") };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let io = |source| RecordError::Io { path: path.clone(), source };
                    let encoder = zstd::stream::write::Encoder::new(Counted { file, bytes: 0 }, LEVEL).map_err(io)?;
                    return Ok(Self { path, hour, encoder });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(RecordError::Io { path, source }),
            }
        }
        Err(RecordError::Options(format!("no free file name for {stem} in {}", dir.display())))
    }

    /// Ends the zstd frame and syncs the file: complete on disk.
    fn finish(self) -> Result<u64, RecordError> {
        let path = self.path.clone();
        let io = |source| RecordError::Io { path: path.clone(), source };
        let counted = self.encoder.finish().map_err(io)?;
        counted.file.sync_all().map_err(io)?;
        Ok(counted.bytes)
    }
}

/// The hourly files of a feed, written as `tradebox record` writes them: `RECV_MS FRAME` and
/// `#gap` lines, a new file at every UTC hour starting with `#continues PREVIOUS`, the encoder
/// flushed at every [`FeedWriter::tick`] and each file finished at its hour's end or at
/// [`FeedWriter::close`].
///
/// Public so that whatever else receives OKX's feed can keep it in the same files and format,
/// readable by `feed check` and backtests alike: the paper venue tees the feed it trades on
/// here, so a paper session can be replayed against exactly the market it saw. The writer
/// does no I/O beyond its files and never blocks on the network; what it cannot do itself is
/// ask the exchange for fresh snapshots, so [`FeedWriter::take_rotated`] tells its owner when
/// a new file began and the chained books must be asked for again.
pub struct FeedWriter {
    dir: PathBuf,
    file: Option<HourFile>,
    line: Vec<u8>,
    stats: RecordStats,
    /// Bytes of the files already finished.
    finished_bytes: u64,
    /// A new file went on from an earlier one since the last [`FeedWriter::take_rotated`].
    rotated: bool,
}

impl FeedWriter {
    /// A writer into `dir` (created when missing). No file is opened before the first line, so
    /// a writer that never writes leaves nothing behind.
    pub fn new(dir: &Path) -> Result<Self, RecordError> {
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file: None,
            line: Vec::with_capacity(1 << 12),
            stats: RecordStats::default(),
            finished_bytes: 0,
            rotated: false,
        })
    }

    /// The file for the hour of `now_ms`, rotating when the hour changed.
    fn file_for(&mut self, now_ms: i64) -> Result<&mut HourFile, RecordError> {
        let hour = now_ms.div_euclid(HOUR_MS);
        if self.file.as_ref().is_some_and(|f| f.hour != hour) {
            self.finish_file()?;
        }
        if self.file.is_none() {
            let mut file = HourFile::create(&self.dir, hour)?;
            tracing::info!(file = %file.path.display(), "recording into a new file");
            // Books' chains go on from the last file: said on the first line, so a reader of
            // this file alone waits for each book's next snapshot (asked for by the caller).
            if let Some(previous) = self.stats.files.last().and_then(|p| p.file_name()) {
                let line = format!("{now_ms} {CONTINUES} {}\n", previous.to_string_lossy());
                file.encoder.write_all(line.as_bytes()).map_err(io_at(&file.path))?;
                self.rotated = true;
            }
            self.stats.files.push(file.path.clone());
            self.file = Some(file);
        }
        self.file.as_mut().ok_or_else(|| RecordError::Options("no file open".into()))
    }

    /// Writes `line` (newline included) into the file of `now_ms`.
    fn write(&mut self, now_ms: i64, line: &[u8]) -> Result<(), RecordError> {
        let file = self.file_for(now_ms)?;
        let written = file.encoder.write_all(line).map_err(io_at(&file.path));
        self.count_disk();
        written
    }

    /// One frame, received at `now_ms`, as the line `RECV_MS FRAME`. A newline inside the
    /// frame becomes a space (JSON whitespace), so the file stays one frame a line.
    pub fn frame(&mut self, now_ms: i64, text: &str) -> Result<(), RecordError> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        line.extend_from_slice(itoa::Buffer::new().format(now_ms).as_bytes());
        line.push(b' ');
        line.extend_from_slice(text.as_bytes());
        // A raw newline in JSON is whitespace between tokens (inside strings it is escaped), so
        // a space in its place keeps the frame's meaning and the file one frame a line.
        for b in &mut line {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
        line.push(b'\n');
        let written = self.write(now_ms, &line);
        self.stats.frames += 1;
        self.stats.text_bytes += line.len() as u64;
        if line.capacity() > 1 << 20 {
            // One large snapshot must not keep its buffer for the whole run.
            line = Vec::with_capacity(1 << 12);
        }
        self.line = line;
        written
    }

    /// A `#gap` line: frames from `endpoint` (`public`, `business`, ...) may be missing here
    /// for `reason`, and every reader starts each book afresh at it. The caller asks for fresh
    /// snapshots of the chained books, or they stay unreadable until the next hour's file.
    pub fn gap(&mut self, now_ms: i64, endpoint: &str, reason: &str) -> Result<(), RecordError> {
        self.stats.gaps += 1;
        self.write(now_ms, gap_line(now_ms, endpoint, reason).as_bytes())
    }

    /// What the owner calls about once a second, frames or not: finishes the file of an hour
    /// that ended in silence (not only at the next frame, which may be hours away) and flushes
    /// the encoder, so a process killed hard leaves its file readable up to this call.
    pub fn tick(&mut self, now_ms: i64) -> Result<(), RecordError> {
        if self.file.as_ref().is_some_and(|f| f.hour != now_ms.div_euclid(HOUR_MS)) {
            self.finish_file()?;
        }
        if let Some(file) = self.file.as_mut() {
            file.encoder.flush().map_err(io_at(&file.path))?;
        }
        self.count_disk();
        Ok(())
    }

    /// Bytes on disk: the finished files' and what the open one has been handed so far.
    fn count_disk(&mut self) {
        self.stats.disk_bytes = self.finished_bytes + self.file.as_ref().map_or(0, |f| f.encoder.get_ref().bytes);
    }

    /// Whether a new file went on from an earlier one since the last call: the owner then asks
    /// for fresh snapshots of the chained books (`books`, the tbt books), so that each file holds
    /// its own and reads on its own.
    pub fn take_rotated(&mut self) -> bool {
        std::mem::take(&mut self.rotated)
    }

    /// What has been written so far (disk bytes as of the last line or tick).
    pub fn stats(&self) -> &RecordStats {
        &self.stats
    }

    /// Finishes the open file (a complete zstd frame, synced) and returns the counts.
    pub fn close(mut self) -> Result<RecordStats, RecordError> {
        self.finish_file()?;
        Ok(std::mem::take(&mut self.stats))
    }

    /// Finishes the open file, if any.
    fn finish_file(&mut self) -> Result<(), RecordError> {
        if let Some(file) = self.file.take() {
            self.finished_bytes += file.finish()?;
        }
        self.stats.disk_bytes = self.finished_bytes;
        Ok(())
    }
}

/// The next event of an optional receiver (never, without one).
async fn next(rx: &mut Option<lossy::Receiver>) -> Option<Delivered> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// OKX's code and message when `text` is an error answer (a refused subscription). Frames are
/// not parsed in raw mode; this one is, when it is short and names an error, which a push of
/// market data never does outside its strings (and a push that does still parses as a push).
fn refusal(text: &str) -> Option<(String, String)> {
    if text.len() > 4_096 || !text.contains("\"error\"") {
        return None;
    }
    match tradebox_okx::ws::parse(text) {
        Ok(Frame::Event(e)) if e.event == "error" => Some((e.code, e.msg)),
        _ => None,
    }
}

/// Records until `stop` completes, calling `progress` every second; finishes the open file and
/// returns the counts. A failure to write ends the run (the file finished as far as it can be).
pub async fn record(
    opts: RecordOptions,
    stop: impl Future<Output = ()>,
    mut progress: impl FnMut(&RecordStats),
) -> Result<RecordStats, RecordError> {
    let (public_args, business_args) = args(&opts)?;
    let business_url = if business_args.is_empty() { None } else { Some(business_url(&opts.url)?) };
    let mut writer = FeedWriter::new(&opts.out)?;
    let gate = Arc::new(ConnectGate::default());
    let connect = |url: String, args: &[serde_json::Value]| {
        let mut config = ClientConfig::new(url, gate.clone());
        config.raw = true;
        let (tx, rx) = lossy::channel(opts.queue);
        let client = WsClient::spawn(config, tx);
        for arg in args {
            client.subscribe(arg);
        }
        (client, rx)
    };
    let (public, mut public_rx) = (!public_args.is_empty()).then(|| connect(opts.url.clone(), &public_args)).unzip();
    let (biz, mut business_rx) = business_url.map(|url| connect(url, &business_args)).unzip();

    // Books sent as a snapshot and then updates: asked for again at every new file, so that
    // each hourly file holds a snapshot of every such book.
    let chained: Vec<&serde_json::Value> = public_args
        .iter()
        .filter(|a| matches!(a["channel"].as_str(), Some("books" | "books-l2-tbt" | "books50-l2-tbt")))
        .collect();
    // Whether each endpoint has been up since its last gap line: a failed attempt while down
    // writes nothing more.
    let mut up = [false, false];
    // Runs of dropped frames so far (warned at the first and then ever more rarely).
    let mut losses = 0u64;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    let outcome: Result<(), RecordError> = loop {
        let (endpoint, event) = tokio::select! {
            biased;
            () = &mut stop => break Ok(()),
            _ = tick.tick() => {
                if let Err(e) = writer.tick(tradebox_core::system_ms()) {
                    break Err(e);
                }
                progress(writer.stats());
                continue;
            }
            Some(e) = next(&mut public_rx) => (0, e),
            Some(e) = next(&mut business_rx) => (1, e),
        };
        let name = if endpoint == 0 { "public" } else { "business" };
        let now = tradebox_core::system_ms();
        let mut books_again = false;
        let written = match event {
            Delivered::Event(ClientEvent::Raw(text)) => {
                if let Some((code, msg)) = refusal(&text) {
                    writer.stats.refused += 1;
                    tracing::warn!("OKX refused a subscription on /{name}: {code} {msg}");
                }
                writer.frame(now, &text)
            }
            Delivered::Event(ClientEvent::Connected) => {
                tracing::info!(endpoint = name, "connected; subscribing");
                up[endpoint] = true;
                Ok(())
            }
            Delivered::Event(ClientEvent::Disconnected { reason }) => {
                let was_up = std::mem::replace(&mut up[endpoint], false);
                if was_up { writer.gap(now, name, &reason) } else { Ok(()) }
            }
            // Not sent in raw mode, and no login here.
            Delivered::Event(ClientEvent::Frame(_) | ClientEvent::Bad { .. } | ClientEvent::LoginRefused { .. }) => {
                Ok(())
            }
            Delivered::Lost { frames, bytes } => {
                writer.stats.dropped += frames;
                losses += 1;
                if losses == 1 || losses.is_power_of_two() {
                    tracing::warn!(
                        endpoint = name,
                        frames,
                        losses,
                        "the writer fell behind the feed (a slow disk?): frames dropped, a gap written"
                    );
                }
                // The books' chains are broken: fresh snapshots, as after a reconnect.
                books_again = endpoint == 0;
                let why = format!("writer fell behind: {frames} frames dropped ({bytes} bytes)");
                writer.gap(now, name, &why)
            }
        };
        if let Err(e) = written {
            break Err(e);
        }
        if (writer.take_rotated() || books_again)
            && let Some(client) = &public
        {
            for arg in &chained {
                client.resubscribe(arg);
            }
        }
    };
    drop((public, biz));
    let closed = writer.close();
    outcome?;
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_go_to_their_endpoint() {
        let opts = |channels: &[&str]| RecordOptions {
            instruments: vec!["BTC-USDT".into()],
            channels: channels.iter().map(|c| c.to_string()).collect(),
            out: PathBuf::from("x"),
            url: DEFAULT_URL.into(),
            queue: lossy::Limits::default(),
        };
        let (public, biz) = args(&opts(&["tickers", "books", "candle1m", "trades-all"])).expect("known");
        assert_eq!((public.len(), biz.len()), (2, 2));
        let e = args(&opts(&["orders"])).expect_err("private");
        assert!(e.to_string().starts_with("channel \"orders\" is not one OKX serves publicly"), "{e}");
        assert_eq!(business_url(DEFAULT_URL).expect("public"), "wss://ws.okx.com:8443/ws/v5/business");
        assert!(business_url("ws://127.0.0.1:1/").is_err());
        assert_eq!(stem(1_765_108_800_000 / HOUR_MS), "okx-public-2025-12-07T12");
    }

    #[test]
    fn files_rotate_at_the_hour_and_say_what_they_continue() {
        let dir = tempfile::tempdir().expect("dir");
        let mut writer = FeedWriter::new(&dir.path().join("feed")).expect("the directory is created");
        let noon = 1_765_108_800_000;
        writer.frame(noon - 1, "pong").expect("write");
        assert!(!writer.take_rotated(), "the first file continues nothing");
        writer.frame(noon, "{}").expect("write");
        assert!(writer.take_rotated());
        let first = std::fs::metadata(&writer.stats().files[0]).expect("finished").len();
        assert!(writer.stats().disk_bytes >= first, "the finished file counts: {:?}", writer.stats());
        writer.frame(noon + 1, "{\n}").expect("write");
        // A name already taken is never reused.
        std::fs::write(dir.path().join("feed/okx-public-2025-12-07T13.jsonl.zst"), b"").expect("taken");
        writer.frame(noon + HOUR_MS, "{}").expect("write");
        let stats = writer.close().expect("close");
        let names: Vec<String> =
            stats.files.iter().filter_map(|p| Some(p.file_name()?.to_str()?.to_string())).collect();
        assert_eq!(
            names,
            [
                "okx-public-2025-12-07T11.jsonl.zst",
                "okx-public-2025-12-07T12.jsonl.zst",
                "okx-public-2025-12-07T13-2.jsonl.zst"
            ]
        );
        let text = |i: usize| {
            String::from_utf8(zstd::decode_all(std::fs::File::open(&stats.files[i]).expect("file")).expect("whole"))
                .expect("text")
        };
        assert_eq!(text(0), format!("{} pong\n", noon - 1));
        assert_eq!(
            text(1),
            format!("{noon} #continues okx-public-2025-12-07T11.jsonl.zst\n{noon} {{}}\n{} {{ }}\n", noon + 1)
        );
        assert!(text(2).starts_with(&format!("{} #continues okx-public-2025-12-07T12.jsonl.zst\n", noon + HOUR_MS)));
        assert_eq!(stats.frames, 4);
    }

    /// The tick finishes an hour that ended in silence (a whole zstd frame on disk while the
    /// owner waits for its next line) and flushes an open one; the counts follow the disk.
    #[test]
    fn the_tick_finishes_a_silent_hour_and_gaps_are_lines() {
        let dir = tempfile::tempdir().expect("dir");
        let mut writer = FeedWriter::new(dir.path()).expect("writer");
        let noon = 1_765_108_800_000;
        writer.frame(noon - 10, "{}").expect("write");
        writer.tick(noon - 5).expect("flush");
        let first = writer.stats().files[0].clone();
        let flushed = std::fs::metadata(&first).expect("file").len();
        assert!(flushed > 0 && writer.stats().disk_bytes == flushed, "flushed: {:?}", writer.stats());
        assert!(zstd::decode_all(std::fs::File::open(&first).expect("file")).is_err(), "not finished yet");
        writer.tick(noon + 1).expect("the hour ended");
        let whole = zstd::decode_all(std::fs::File::open(&first).expect("file")).expect("a whole frame");
        assert_eq!(whole, format!("{} {{}}\n", noon - 10).into_bytes());
        assert_eq!(writer.stats().files.len(), 1, "no file for an hour without lines");
        writer.gap(noon + 2, "public", "closed\nby OKX").expect("gap");
        assert!(writer.take_rotated(), "the new file continues the first");
        let stats = writer.close().expect("close");
        assert_eq!((stats.frames, stats.gaps, stats.files.len()), (1, 1, 2));
        let on_disk: u64 = stats.files.iter().map(|f| std::fs::metadata(f).expect("file").len()).sum();
        assert_eq!(stats.disk_bytes, on_disk);
        let second = zstd::decode_all(std::fs::File::open(&stats.files[1]).expect("file")).expect("whole");
        assert_eq!(
            String::from_utf8(second).expect("text"),
            format!("{0} #continues okx-public-2025-12-07T11.jsonl.zst\n{0} #gap public closed by OKX\n", noon + 2)
        );
    }

    /// Error answers are told from pushes without parsing every frame, whatever the key order.
    #[test]
    fn refusals_are_told_apart() {
        let sim = r#"{"code":"60018","connId":"1","event":"error","msg":"Wrong URL or channel:tickers,instId:NOPE-USDT doesn't exist."}"#;
        let (code, msg) = refusal(sim).expect("a refusal");
        assert_eq!(code, "60018");
        assert!(msg.contains("NOPE-USDT"), "{msg}");
        assert!(refusal(r#"{"event":"error","msg":"Invalid request","code":"60012","connId":"a"}"#).is_some());
        let push = r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","note":"error"}]}"#;
        assert_eq!(refusal(push), None);
        assert_eq!(refusal(r#"{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}}"#), None);
        assert_eq!(refusal("pong"), None);
    }
}
