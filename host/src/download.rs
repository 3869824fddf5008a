//! `tradebox data download`: OKX's candle history into a candle CSV file that
//! `tradebox_data::candles::open` reads (`ts_ms,open,high,low,close,volume`, oldest first,
//! closed bars only, the numbers exactly as OKX wrote them).
//!
//! OKX's public `GET /api/v5/market/history-candles` answers at most 100 rows, newest first,
//! older than its `after` cursor, so the download walks back page by page from `to` to `from`
//! (bars opening at or after `from` and before `to`), paced by OKX's limit for the endpoint (20
//! requests per 2 s per IP, [`tradebox_okx::limits`]) and retrying what may pass (429, 5xx,
//! timeouts, a broken connection, a page that is not JSON) with a growing, jittered back-off.
//!
//! Resumable: when the file exists it must be a candle CSV this command could have written; only
//! what is missing before its first bar and after its last is fetched, so the file stays one
//! run of bars, oldest first, never a row twice. Every write goes to a temporary file in the
//! same directory, renamed over the file when complete, so an interrupted run leaves the file as
//! it was; a long walk back writes what it has every [`DownloadOptions::checkpoint_rows`] rows,
//! so a rerun resumes from there. (Bars after the file's end are written in one go: they are
//! fetched newest first and can only join the file once the walk reaches it; written earlier,
//! they would leave a hole inside the file that no rerun fills, see below.)
//!
//! Gaps inside the file (bars missing between its first and its last: an outage of the
//! exchange, which OKX's history keeps as a gap, or rows removed from the file) are not
//! fetched: a run only extends the file's ends. They are found when the file is read back at
//! the end and reported in the summary ([`DownloadSummary::gaps`]: how many, the first one's
//! start and length); asking OKX again for an outage would bring nothing, so the download never
//! goes back for them. A file with rows removed is refilled by downloading it into a new file.
//!
//! Text the server chose (OKX's `msg`, a page that is not OKX's JSON, a field of a row) reaches
//! an error or a log line escaped (control characters, so no ANSI sequence or forged line gets
//! through) and cut at [`MAX_SERVER_TEXT`] characters.
//!
//! Pages are kept on disk (an unnamed temporary file) until they are written, memory stays flat
//! in the length of the range.

use indicatif::ProgressBar;
use rand::Rng;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};
use tradebox_data::DataError;
use tradebox_data::candles::{self, Bar, Format};
use tradebox_okx::OkxError;
use tradebox_okx::limits::{Endpoint, Limiter, LimiterConfig, RateLimited, Request};
use tradebox_okx::rest::with_cause;

/// OKX's REST API.
pub const DEFAULT_BASE_URL: &str = "https://www.okx.com";

/// The header of the files this writes.
pub const HEADER: &str = "ts_ms,open,high,low,close,volume";

/// OKX's largest page for `history-candles`.
pub const PAGE: u32 = 100;

const PATH: &str = "/api/v5/market/history-candles";

/// OKX's bars: the length of each fixed one, `None` for calendar months. Plain `6H` and longer
/// open at UTC+8 midnight, the `…utc` forms at UTC; the length is the same.
const BARS: &[(&str, Option<i64>)] = &[
    ("1s", Some(1_000)),
    ("1m", Some(60_000)),
    ("3m", Some(180_000)),
    ("5m", Some(300_000)),
    ("15m", Some(900_000)),
    ("30m", Some(1_800_000)),
    ("1H", Some(3_600_000)),
    ("2H", Some(7_200_000)),
    ("4H", Some(14_400_000)),
    ("6H", Some(21_600_000)),
    ("12H", Some(43_200_000)),
    ("1D", Some(86_400_000)),
    ("2D", Some(172_800_000)),
    ("3D", Some(259_200_000)),
    ("1W", Some(604_800_000)),
    ("1M", None),
    ("3M", None),
    ("6Hutc", Some(21_600_000)),
    ("12Hutc", Some(43_200_000)),
    ("1Dutc", Some(86_400_000)),
    ("2Dutc", Some(172_800_000)),
    ("3Dutc", Some(259_200_000)),
    ("1Wutc", Some(604_800_000)),
    ("1Mutc", None),
    ("3Mutc", None),
];

/// What to download, and how hard to try.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// OKX's instrument id, e.g. `BTC-USDT` or `BTC-USDT-SWAP`.
    pub instrument: String,
    /// OKX's bar, e.g. `1m`, `1H`, `1Dutc`.
    pub bar: String,
    /// Bars opening at or after this (ms since the epoch)...
    pub from_ms: i64,
    /// ...and before this.
    pub to_ms: i64,
    /// The CSV file, created or extended.
    pub out: PathBuf,
    /// OKX's REST base URL (the simulator's, in tests).
    pub base_url: String,
    /// Rows per request (OKX's most is [`PAGE`]).
    pub page: u32,
    /// How long one request may take.
    pub timeout: Duration,
    /// Attempts per page before giving up (at least 1).
    pub attempts: u32,
    /// The first back-off after a failed attempt; doubled each time, up to 16 times it.
    pub backoff: Duration,
    /// Older bars are written to the file each time this many have been fetched.
    pub checkpoint_rows: u64,
}

impl DownloadOptions {
    /// OKX's defaults for everything but what to fetch.
    pub fn new(instrument: &str, bar: &str, from_ms: i64, to_ms: i64, out: &Path) -> Self {
        Self {
            instrument: instrument.to_string(),
            bar: bar.to_string(),
            from_ms,
            to_ms,
            out: out.to_path_buf(),
            base_url: DEFAULT_BASE_URL.to_string(),
            page: PAGE,
            timeout: Duration::from_secs(10),
            attempts: 6,
            backoff: Duration::from_millis(500),
            checkpoint_rows: 50_000,
        }
    }
}

/// Bars missing inside a file: between its first bar and its last, where a bar of the asked
/// length should open and none does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gaps {
    /// How many runs of missing bars.
    pub count: u64,
    /// Bars missing in all.
    pub missing_bars: u64,
    /// Where the first run starts: the opening time of its first missing bar.
    pub first_from_ms: i64,
    /// How many bars the first run lacks.
    pub first_bars: u64,
}

/// What a download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadSummary {
    /// The file.
    pub path: PathBuf,
    /// Bars added before the file's first bar (all of them for a new file).
    pub added_before: u64,
    /// Bars added after the file's last bar.
    pub added_after: u64,
    /// Bars in the file now.
    pub rows: u64,
    /// The file's first and last bar (opening times), if it has any.
    pub span: Option<(i64, i64)>,
    /// Requests sent.
    pub requests: u64,
    /// Of them, repeats after a failed attempt.
    pub retries: u64,
    /// Bars missing inside the file now (never fetched again: see the module's doc); `None`
    /// when it has none, or its bars are calendar months (their lengths vary).
    pub gaps: Option<Gaps>,
}

/// Why a download stopped. The file is as it was before the run, or as of its last checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Not one of OKX's bars.
    #[error("--bar {0:?} is not one of OKX's bars: {list}", list = BARS.iter().map(|b| b.0).collect::<Vec<_>>().join(" "))]
    UnknownBar(String),
    /// Nothing to download.
    #[error("--from {from} is not before --to {to}")]
    EmptyRange {
        /// `from`, as a date.
        from: String,
        /// `to`, as a date.
        to: String,
    },
    /// The file exists but is not a candle CSV this could extend.
    #[error("{} exists and cannot be extended: {reason}; move it away or choose another --out", path.display())]
    NotResumable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file holds bars of another length.
    #[error(
        "{} holds bars {spacing_ms} ms apart, and --bar {bar} is {bar_ms} ms: choose another --out",
        path.display()
    )]
    OtherBar {
        /// The file.
        path: PathBuf,
        /// The shortest step between its first bars.
        spacing_ms: i64,
        /// The bar asked for.
        bar: String,
        /// Its length.
        bar_ms: i64,
    },
    /// OKX refused, or kept failing.
    #[error("GET {request}: {source} (after {attempts} attempt{s})", s = if *attempts == 1 { "" } else { "s" })]
    Okx {
        /// The request (path and query).
        request: String,
        /// How many times it was sent.
        attempts: u32,
        /// The last failure.
        source: OkxError,
    },
    /// An answer that breaks the endpoint's rules (order, bars).
    #[error("GET {request}: {reason}")]
    Answer {
        /// The request.
        request: String,
        /// What was wrong.
        reason: String,
    },
    /// Our own pacing refused to wait any longer.
    #[error("OKX's rate limit for history-candles: {0}")]
    Paced(#[from] RateLimited),
    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (or its directory).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// The length of OKX's `bar` in ms (`None` for calendar months); an error for a bar OKX does
/// not have.
pub fn bar_length(bar: &str) -> Result<Option<i64>, DownloadError> {
    BARS.iter().find(|(name, _)| *name == bar).map(|b| b.1).ok_or_else(|| DownloadError::UnknownBar(bar.to_string()))
}

/// A time as given on the command line: milliseconds since the epoch (digits only), a date
/// (`2024-01-31`, midnight UTC) or RFC 3339 (`2024-01-31T08:00:00Z`, `...+08:00`, fractions;
/// no offset means UTC).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map_err(|e| format!("{t:?}: {e}"));
    }
    let midnight;
    let t = if t.len() == 10 {
        midnight = format!("{t}T00:00:00");
        midnight.as_str()
    } else {
        t
    };
    // humantime reads UTC only: take a numeric offset off and apply it here.
    // The offset's six bytes, when they start on a character boundary (any other text is not a
    // time, and says so below rather than panicking on a split inside a character).
    let split = t.len().checked_sub(6).filter(|i| t.is_char_boundary(*i)).map(|i| t.split_at(i));
    let (stamp, offset_ms) = match split {
        Some((stamp, off)) if stamp.len() >= 19 && (off.starts_with('+') || off.starts_with('-')) => {
            let (h, m) = off[1..].split_once(':').ok_or_else(|| format!("{text:?}: offset {off:?} is not ±HH:MM"))?;
            let minutes = h.parse::<i64>().ok().zip(m.parse::<i64>().ok()).map(|(h, m)| h * 60 + m);
            let minutes = minutes.ok_or_else(|| format!("{text:?}: offset {off:?} is not ±HH:MM"))?;
            (stamp, if off.starts_with('-') { -minutes } else { minutes } * 60_000)
        }
        _ => (t, 0),
    };
    let time = humantime::parse_rfc3339_weak(stamp).map_err(|e| {
        format!("{text:?} is not a time ({e}): give 2024-01-31, 2024-01-31T08:00:00Z, ...+08:00 or milliseconds")
    })?;
    let ms = time.duration_since(UNIX_EPOCH).map_err(|_| format!("{text:?} is before 1970"))?.as_millis();
    i64::try_from(ms).ok().and_then(|ms| ms.checked_sub(offset_ms)).ok_or_else(|| format!("{text:?} is too far away"))
}

/// The most bytes one answer may have.
const MAX_ANSWER: usize = 1 << 20;

/// The most characters of the server's own text an error quotes: enough for any message of
/// OKX's, and a server's page of anything else cannot flood the terminal.
pub const MAX_SERVER_TEXT: usize = 200;

/// Text the server chose, as it may be shown: cut at [`MAX_SERVER_TEXT`] characters, then
/// control and bidirectional characters escaped (`\u{1b}`), as the host shows a plugin's text.
fn server_text(text: String) -> String {
    let cut_at = text.char_indices().nth(MAX_SERVER_TEXT).map(|(i, _)| i);
    let mut shown = match cut_at {
        Some(i) => crate::logging::sanitize(text[..i].to_string()),
        None => crate::logging::sanitize(text),
    };
    if cut_at.is_some() {
        shown.push_str("… (cut)");
    }
    shown
}

/// Text at most [`MAX_SERVER_TEXT`] characters long, for a field shown escaped anyway.
fn cut(mut text: String) -> String {
    if let Some((i, _)) = text.char_indices().nth(MAX_SERVER_TEXT) {
        text.truncate(i);
        text.push_str("… (cut)");
    }
    text
}

/// A field of a row the server sent, quoted for an error: escaped and cut.
fn quoted(field: &str) -> String {
    format!("\"{}\"", server_text(field.to_string()).replace('"', "\\\""))
}

/// The error with every text the server chose made safe to print ([`server_text`]).
fn tame(e: OkxError) -> OkxError {
    let t = server_text;
    match e {
        OkxError::Api { http_status, code, msg } => OkxError::Api { http_status, code: t(code), msg: t(msg) },
        OkxError::Item { code, msg } => OkxError::Item { code: t(code), msg: t(msg) },
        OkxError::RateLimited { code, msg } => OkxError::RateLimited { code: t(code), msg: t(msg) },
        OkxError::Server { http_status, excerpt } => OkxError::Server { http_status, excerpt: t(excerpt) },
        // Its excerpt is printed debug-quoted, which escapes it already: only cut it (escaped
        // twice, `\u{1b}` would show as `\\u{1b}`).
        OkxError::Decode { http_status, reason, excerpt } => {
            OkxError::Decode { http_status, reason: t(reason), excerpt: cut(excerpt) }
        }
        OkxError::Redirected { http_status, location } => OkxError::Redirected { http_status, location: t(location) },
        OkxError::NotSent(text) => OkxError::NotSent(t(text)),
        OkxError::Transport(text) => OkxError::Transport(t(text)),
        other => other,
    }
}

/// A time for people: `2024-01-31T08:00:00Z`.
pub fn show_time(ms: i64) -> String {
    use std::fmt::Write;
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    // humantime refuses years past 9999 (its Display would panic in `to_string`): a file may
    // hold such a time, and then it shows as the number it is.
    let mut text = String::new();
    match write!(text, "{}", humantime::format_rfc3339_seconds(time)) {
        Ok(()) => text,
        Err(_) => format!("{ms} ms"),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io { path: path.to_path_buf(), source }
}

/// The file as it is: its run of bars.
#[derive(Debug, Clone, Copy)]
struct Existing {
    first: i64,
    last: i64,
    rows: u64,
    gaps: Option<Gaps>,
}

/// Reads the whole file through the same reader a backtest uses: a file it would refuse is
/// never extended.
fn existing(path: &Path, bar: &str, bar_ms: Option<i64>) -> Result<Option<Existing>, DownloadError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
        Ok(m) if !m.is_file() => {
            return Err(DownloadError::NotResumable { path: path.to_path_buf(), reason: "not a file".into() });
        }
        Ok(_) => {}
    }
    let refuse = |reason: String| DownloadError::NotResumable { path: path.to_path_buf(), reason };
    // Only as much as the header could be: the first line of any file is not read whole.
    let mut head = Vec::new();
    let mut first = File::open(path).map_err(io(path))?.take(HEADER.len() as u64 + 2);
    first.read_to_end(&mut head).map_err(io(path))?;
    let first_line = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or_default());
    if first_line.trim_end() != HEADER {
        return Err(refuse(format!("its first line is {:?}, not {HEADER:?}", first_line.trim_end())));
    }
    let bars = candles::open(path).map_err(|e: DataError| refuse(e.to_string()))?;
    if bars.format() != Format::PlainCsv {
        return Err(refuse(format!("it reads as {:?}", bars.format())));
    }
    let (mut run, mut spacing): (Option<Existing>, Option<i64>) = (None, None);
    for bar in bars {
        let Bar { ts_ms, .. } = bar.map_err(|e| refuse(e.to_string()))?;
        run = Some(match run {
            None => Existing { first: ts_ms, last: ts_ms, rows: 1, gaps: None },
            Some(r) => {
                // Saturating: the times of a hand-made file may be anywhere in an i64.
                let step = ts_ms.saturating_sub(r.last);
                // Quiet periods are bars too on OKX, so bars of the asked length sit that far
                // apart somewhere among the first hundred.
                if r.rows < 100 {
                    spacing = Some(spacing.map_or(step, |s| s.min(step)));
                }
                let gaps = match bar_ms {
                    Some(bar_ms) if step > bar_ms => {
                        let missing = u64::try_from(step / bar_ms - 1).unwrap_or(0).max(1);
                        Some(match r.gaps {
                            None => Gaps {
                                count: 1,
                                missing_bars: missing,
                                first_from_ms: r.last.saturating_add(bar_ms),
                                first_bars: missing,
                            },
                            Some(g) => Gaps { count: g.count + 1, missing_bars: g.missing_bars + missing, ..g },
                        })
                    }
                    _ => r.gaps,
                };
                Existing { last: ts_ms, rows: r.rows + 1, gaps, ..r }
            }
        });
    }
    if let (Some(spacing_ms), Some(bar_ms)) = (spacing, bar_ms)
        && spacing_ms != bar_ms
    {
        return Err(DownloadError::OtherBar { path: path.to_path_buf(), spacing_ms, bar: bar.to_string(), bar_ms });
    }
    Ok(run)
}

/// Fetched rows waiting to be written: pages as they came (each already oldest first), in an
/// unnamed temporary file, with where each starts.
struct Spool {
    file: BufWriter<File>,
    pages: Vec<(u64, u64)>,
    end: u64,
    rows: u64,
}

impl Spool {
    fn new(dir: &Path) -> Result<Self, DownloadError> {
        let file = tempfile::tempfile_in(dir).map_err(io(dir))?;
        Ok(Self { file: BufWriter::new(file), pages: Vec::new(), end: 0, rows: 0 })
    }

    fn add(&mut self, lines: &str, rows: u64, dir: &Path) -> Result<(), DownloadError> {
        self.file.write_all(lines.as_bytes()).map_err(io(dir))?;
        self.pages.push((self.end, lines.len() as u64));
        self.end += lines.len() as u64;
        self.rows += rows;
        Ok(())
    }

    /// Copies the rows oldest first: the pages in the reverse of the order they came.
    fn copy_to(&mut self, out: &mut impl Write, dir: &Path) -> Result<(), DownloadError> {
        self.file.flush().map_err(io(dir))?;
        let file = self.file.get_mut();
        for &(start, len) in self.pages.iter().rev() {
            file.seek(SeekFrom::Start(start)).map_err(io(dir))?;
            std::io::copy(&mut (&mut *file).take(len), out).map_err(io(dir))?;
        }
        file.seek(SeekFrom::Start(self.end)).map_err(io(dir))?;
        Ok(())
    }

    fn clear(&mut self, dir: &Path) -> Result<(), DownloadError> {
        self.file.flush().map_err(io(dir))?;
        self.file.get_mut().set_len(0).map_err(io(dir))?;
        self.file.get_mut().seek(SeekFrom::Start(0)).map_err(io(dir))?;
        (self.pages, self.end, self.rows) = (Vec::new(), 0, 0);
        Ok(())
    }
}

/// Writes `before` + the file's rows (if it exists) + `after` to a temporary file beside it and
/// renames that over it: the file is either as it was or complete, never half written.
fn commit(
    out: &Path,
    before: Option<&mut Spool>,
    keep: bool,
    after: Option<&mut Spool>,
    source: (&str, &str),
) -> Result<(), DownloadError> {
    let dir = parent(out);
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp =
        tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".part").tempfile_in(dir).map_err(io(dir))?;
    let mut w = BufWriter::new(tmp.as_file());
    let write = |w: &mut BufWriter<&File>, bytes: &[u8]| w.write_all(bytes).map_err(io(out));
    write(&mut w, HEADER.as_bytes())?;
    write(&mut w, b"\n")?;
    if let Some(s) = before {
        s.copy_to(&mut w, dir)?;
    }
    if keep {
        let mut old = BufReader::new(File::open(out).map_err(io(out))?);
        let mut header = Vec::new();
        old.read_until(b'\n', &mut header).map_err(io(out))?;
        let mut last = b'\n';
        let mut buf = [0u8; 1 << 16];
        loop {
            let n = old.read(&mut buf).map_err(io(out))?;
            if n == 0 {
                break;
            }
            write(&mut w, &buf[..n])?;
            last = buf[n - 1];
        }
        if last != b'\n' {
            write(&mut w, b"\n")?;
        }
    }
    if let Some(s) = after {
        s.copy_to(&mut w, dir)?;
    }
    w.flush().map_err(io(out))?;
    drop(w);
    tmp.as_file().sync_all().map_err(io(out))?;
    tmp.persist(out).map_err(|e| io(out)(e.error))?;
    write_source(out, source.0, source.1)
}

/// Where the file beside `out` that says what `out` holds is: the candle CSV has no column for
/// it, and a resumed download must not add another instrument's bars to it.
pub fn source_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".source");
    out.with_file_name(name)
}

/// Refuses to extend `out` with bars of another instrument or length than its `.source` file
/// names (a file without one, from elsewhere, is taken at its word).
fn check_source(out: &Path, instrument: &str, bar: &str) -> Result<(), DownloadError> {
    let path = source_path(out);
    let wanted = format!("{instrument} {bar}");
    if !out.exists() {
        return Ok(());
    }
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim() == wanted => Ok(()),
        Ok(text) => Err(DownloadError::NotResumable {
            path: out.to_path_buf(),
            reason: format!(
                "it holds {} bars (as {} says), not {wanted}",
                text.trim().chars().take(80).collect::<String>().escape_default(),
                path.display()
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Says what `out` now holds, in its `.source` file (once a download has put bars in it).
fn write_source(out: &Path, instrument: &str, bar: &str) -> Result<(), DownloadError> {
    let path = source_path(out);
    std::fs::write(&path, format!("{instrument} {bar}\n")).map_err(io(&path))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The HTTP side: one client, OKX's pacing, retries.
struct Okx {
    http: reqwest::Client,
    limiter: Limiter,
    opts: DownloadOptions,
    requests: u64,
    retries: u64,
}

/// Whether trying again may help: throttling, the server failing, the network, a gateway's
/// page where OKX's JSON should be. Not: OKX refusing the request itself (bad instrument, bar).
fn transient(e: &OkxError) -> bool {
    match e {
        OkxError::RateLimited { .. } | OkxError::Timeout { .. } | OkxError::Server { .. } => true,
        OkxError::Transport(_) | OkxError::NotSent(_) => true,
        // 50001 service unavailable, 50004 endpoint timeout, 50026 system error.
        OkxError::Api { http_status, code, .. } => {
            *http_status >= 500 || ["50001", "50004", "50026"].contains(&code.as_str())
        }
        OkxError::Decode { http_status, .. } => *http_status == 200 || *http_status >= 500,
        _ => false,
    }
}

impl Okx {
    fn new(opts: &DownloadOptions) -> Result<Self, DownloadError> {
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| DownloadError::Client(e.to_string()))?;
        // Pacing waits as long as it must: a back-off after a 429 can be longer than the 2 s a
        // trading request may wait.
        let limiter = Limiter::new(LimiterConfig { max_wait: Duration::from_secs(120), ..LimiterConfig::default() });
        Ok(Self { http, limiter, opts: opts.clone(), requests: 0, retries: 0 })
    }

    async fn send(&self, url: &str) -> Result<Vec<Vec<String>>, OkxError> {
        let timeout_ms = u64::try_from(self.opts.timeout.as_millis()).unwrap_or(u64::MAX);
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                OkxError::Timeout { timeout_ms }
            } else if e.is_connect() {
                OkxError::NotSent(with_cause(e))
            } else {
                OkxError::Transport(with_cause(e))
            }
        };
        let response = self.http.get(url).header("Accept", "application/json").send().await.map_err(failed)?;
        let status = response.status().as_u16();
        // One page is at most 300 rows of a few hundred bytes: a larger answer is not OKX's.
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                return Err(OkxError::Decode {
                    http_status: status,
                    reason: format!("an answer of more than {MAX_ANSWER} bytes, larger than any page of OKX's"),
                    excerpt: tradebox_okx::error::excerpt(&body, 100),
                });
            }
        }
        tradebox_okx::rest::parse::<Vec<String>>(status, &body).map(|reply| reply.data)
    }

    /// One page of rows older than `after`, newest first, as OKX wrote them.
    async fn page(&mut self, after: i64) -> Result<(String, Vec<Vec<String>>), DownloadError> {
        let after = after.to_string();
        let limit = self.opts.page.clamp(1, PAGE).to_string();
        let query =
            [("instId", self.opts.instrument.as_str()), ("bar", &self.opts.bar), ("after", &after), ("limit", &limit)];
        let request = tradebox_okx::rest::path_and_query(PATH, &query);
        let url = format!("{}{request}", self.opts.base_url.trim_end_matches('/'));
        let permits = Request::new(Endpoint::HistoryCandles, 0);
        let mut backoff = self.opts.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permit = self.limiter.acquire(&permits).await?;
            self.requests += 1;
            // Tamed here, before the text is in any error or log line.
            let answer = self.send(&url).await.map_err(tame);
            self.limiter.complete(permit);
            match answer {
                Ok(rows) => {
                    self.limiter.succeeded(&permits);
                    return Ok((request, rows));
                }
                Err(e) if transient(&e) && attempt < self.opts.attempts.max(1) => {
                    if e.is_rate_limit() {
                        self.limiter.penalize(&permits);
                    }
                    tracing::debug!(%request, attempt, error = %e, "history-candles failed; trying again");
                    self.retries += 1;
                    let wait = rand::rng().random_range(backoff / 2..=backoff);
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(self.opts.backoff * 16);
                }
                Err(source) => return Err(DownloadError::Okx { request, attempts: attempt, source }),
            }
        }
    }
}

/// One row checked (closed, a sound bar) and written as a CSV line from OKX's own text.
fn line(row: &[String]) -> Result<Option<(i64, String)>, String> {
    let [ts, o, h, l, c, vol, rest @ ..] = row else {
        let fields: Vec<String> = row.iter().take(8).map(|f| quoted(f)).collect();
        return Err(format!("a row of {} fields: [{}]", row.len(), fields.join(", ")));
    };
    let ts_ms = ts.parse::<i64>().map_err(|_| format!("a row whose time is {}", quoted(ts)))?;
    if rest.get(2).is_some_and(|confirm| confirm == "0") {
        // The bar still forming: a later run takes it once closed.
        return Ok(None);
    }
    let num = |s: &String| s.parse::<f64>().map_err(|_| format!("bar {ts}: {} is not a number", quoted(s)));
    let bar = Bar { ts_ms, open: num(o)?, high: num(h)?, low: num(l)?, close: num(c)?, volume: num(vol)? };
    bar.check().map_err(|why| format!("bar {ts}: {why}"))?;
    Ok(Some((ts_ms, format!("{ts},{o},{h},{l},{c},{vol}\n"))))
}

/// Walks back from `before` (exclusive) to `lowest` (inclusive) into `spool`; returns how
/// many bars it added. `checkpoint` is offered the spool after every page.
async fn walk(
    okx: &mut Okx,
    spool: &mut Spool,
    before: i64,
    lowest: i64,
    progress: &ProgressBar,
    mut checkpoint: impl FnMut(&mut Spool) -> Result<(), DownloadError>,
) -> Result<u64, DownloadError> {
    let dir = parent(&okx.opts.out).to_path_buf();
    let mut cursor = before;
    let mut added = 0;
    loop {
        let (request, rows) = okx.page(cursor).await?;
        let Some(last) = rows.last() else { return Ok(added) };
        let mut lines = Vec::with_capacity(rows.len());
        let (mut newer, mut kept) = (cursor, cursor);
        let mut reached = false;
        for row in &rows {
            let answer = |reason: String| DownloadError::Answer { request: request.clone(), reason };
            let Some((ts, text)) = line(row).map_err(answer)? else { continue };
            if ts >= newer {
                return Err(answer(format!(
                    "bar {ts} is not older than {newer}: rows must come newest first, older than `after`"
                )));
            }
            newer = ts;
            if ts < lowest {
                reached = true;
                break;
            }
            kept = ts;
            lines.push(text);
        }
        let oldest = last.first().and_then(|t| t.parse::<i64>().ok()).unwrap_or(lowest);
        if !lines.is_empty() {
            let n = lines.len() as u64;
            lines.reverse();
            spool.add(&lines.concat(), n, &dir)?;
            added += n;
            progress.inc(n);
            progress.set_message(show_time(kept));
            checkpoint(spool)?;
        }
        if reached || oldest <= lowest {
            return Ok(added);
        }
        let next = oldest.min(newer);
        if next >= cursor {
            // A server that answers the same page again (only rows it skipped, a bar still
            // forming) would hold the walk in place forever.
            return Err(DownloadError::Answer {
                request,
                reason: format!("the page brought nothing older than {}: the walk cannot go on", show_time(cursor)),
            });
        }
        cursor = next;
    }
}

/// Downloads what `opts.out` lacks of `[from, to)` and writes it in. `progress` (a handle; keep
/// a clone to draw it) counts bars, its length set here when the bar has a fixed length, and
/// shows the date reached.
pub async fn download(opts: DownloadOptions, progress: ProgressBar) -> Result<DownloadSummary, DownloadError> {
    let bar_ms = bar_length(&opts.bar)?;
    if opts.from_ms >= opts.to_ms {
        return Err(DownloadError::EmptyRange { from: show_time(opts.from_ms), to: show_time(opts.to_ms) });
    }
    let out = opts.out.clone();
    let dir = parent(&out).to_path_buf();
    let file = existing(&out, &opts.bar, bar_ms)?;
    check_source(&out, &opts.instrument, &opts.bar)?;
    // What is missing: after the file's last bar, and before its first (or everything).
    let after = file.filter(|f| f.last + 1 < opts.to_ms).map(|f| f.last + 1);
    let before = match file {
        Some(f) if f.first > opts.from_ms => Some(f.first),
        Some(_) => None,
        None => Some(opts.to_ms),
    };
    if let Some(bar_ms) = bar_ms {
        // An estimate (quiet hours are bars too; a listing date or an outage is not known here).
        let count = |from: i64, to: i64| u64::try_from((to - from) / bar_ms).unwrap_or(0);
        let expected = after.map_or(0, |a| count(a, opts.to_ms)) + before.map_or(0, |b| count(opts.from_ms, b));
        progress.set_length(expected);
    }
    let mut okx = Okx::new(&opts)?;
    let mut summary = DownloadSummary {
        path: out.clone(),
        added_before: 0,
        added_after: 0,
        rows: file.map_or(0, |f| f.rows),
        span: file.map(|f| (f.first, f.last)),
        requests: 0,
        retries: 0,
        gaps: None,
    };
    let mut have_file = file.is_some();
    let source = (opts.instrument.as_str(), opts.bar.as_str());
    if let Some(lowest) = after {
        let mut spool = Spool::new(&dir)?;
        summary.added_after = walk(&mut okx, &mut spool, opts.to_ms, lowest, &progress, |_| Ok(())).await?;
        if spool.rows > 0 {
            commit(&out, None, have_file, Some(&mut spool), source)?;
        }
    }
    if let Some(before) = before {
        let mut spool = Spool::new(&dir)?;
        let every = opts.checkpoint_rows.max(1);
        let keep = &mut have_file;
        summary.added_before = walk(&mut okx, &mut spool, before, opts.from_ms, &progress, |s| {
            if s.rows >= every {
                commit(&out, Some(s), *keep, None, source)?;
                *keep = true;
                s.clear(&dir)?;
            }
            Ok(())
        })
        .await?;
        if spool.rows > 0 {
            commit(&out, Some(&mut spool), have_file, None, source)?;
        }
    }
    (summary.requests, summary.retries) = (okx.requests, okx.retries);
    // What is in the file now, read back as a backtest would.
    let written = existing(&out, &opts.bar, bar_ms)?;
    summary.rows = written.map_or(0, |f| f.rows);
    summary.span = written.map(|f| (f.first, f.last));
    summary.gaps = written.and_then(|f| f.gaps);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_time_past_year_9999_shows_as_its_number() {
        assert_eq!(super::show_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::show_time(253_402_300_800_000), "253402300800000 ms");
    }

    #[test]
    fn a_file_is_extended_only_with_the_instrument_and_bar_it_holds() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("btc.csv");
        check_source(&out, "BTC-USDT", "1m").expect("a new file");
        std::fs::write(&out, format!("{HEADER}\n")).expect("write");
        check_source(&out, "ETH-USDT", "1m").expect("a file from elsewhere, taken at its word");
        write_source(&out, "BTC-USDT", "1m").expect("written");
        check_source(&out, "BTC-USDT", "1m").expect("the same");
        let e = check_source(&out, "ETH-USDT", "1m").expect_err("another instrument").to_string();
        assert!(e.contains("BTC-USDT 1m") && e.contains("not ETH-USDT 1m"), "{e}");
        assert!(check_source(&out, "BTC-USDT", "1s").is_err());
        std::fs::remove_file(&out).expect("rm");
        check_source(&out, "ETH-USDT", "1s").expect("gone: a new file again");
    }

    use super::*;

    #[test]
    fn times_on_the_command_line() {
        assert_eq!(parse_time("2024-01-31"), Ok(1_706_659_200_000));
        assert_eq!(parse_time("2024-01-31T08:00:00Z"), Ok(1_706_688_000_000));
        assert_eq!(parse_time("2024-01-31T16:00:00+08:00"), Ok(1_706_688_000_000));
        assert_eq!(parse_time("2024-01-31T03:30:00.5-04:30"), Ok(1_706_688_000_500));
        assert_eq!(parse_time("1706688000000"), Ok(1_706_688_000_000));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2024-01-31T16:00:00+0800").is_err());
        assert_eq!(show_time(1_706_688_000_000), "2024-01-31T08:00:00Z");
    }

    #[test]
    fn bars_and_what_is_retried() {
        assert_eq!(bar_length("1H").ok(), Some(Some(3_600_000)));
        assert_eq!(bar_length("1Mutc").ok(), Some(None));
        let e = bar_length("1h").expect_err("OKX writes hours upper-case");
        assert!(e.to_string().starts_with("--bar \"1h\" is not one of OKX's bars: 1s 1m 3m"), "{e}");
        let api =
            |status: u16, code: &str| OkxError::Api { http_status: status, code: code.into(), msg: String::new() };
        assert!(transient(&OkxError::RateLimited { code: "50011".into(), msg: String::new() }));
        assert!(transient(&OkxError::Timeout { timeout_ms: 1 }));
        assert!(transient(&api(503, "50001")));
        assert!(transient(&api(200, "50026")));
        assert!(!transient(&api(200, "51001")), "an unknown instrument stays unknown");
        assert!(!transient(&api(400, "51000")));
        let page =
            |status: u16| OkxError::Decode { http_status: status, reason: String::new(), excerpt: String::new() };
        assert!(transient(&page(200)) && transient(&page(502)) && !transient(&page(404)));
    }

    #[test]
    fn the_servers_text_is_escaped_and_cut() {
        let e = tame(OkxError::Api {
            http_status: 200,
            code: "5\u{1b}1".into(),
            msg: format!("bad\u{1b}[31m red\nerror: forged\u{202e}{}", "x".repeat(5_000)),
        })
        .to_string();
        assert!(!e.contains(['\u{1b}', '\n', '\u{202e}']), "{e}");
        assert!(e.starts_with("OKX 5\\u{1b}1: bad\\u{1b}[31m red\\u{a}error: forged\\u{202e}xxx"), "{e}");
        assert!(e.len() < 2 * MAX_SERVER_TEXT && e.contains("… (cut)"), "{} bytes: {e}", e.len());
        let short = tame(OkxError::Server { http_status: 502, excerpt: "Bad Gateway".into() });
        assert_eq!(short.to_string(), "OKX server error HTTP 502: Bad Gateway", "plain text untouched");
        // A row's fields, quoted the same way.
        let row = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = line(&row(&["60000", "1", "2", "1", "\u{1b}[2J\n", "3"])).expect_err("not a number");
        assert_eq!(e, "bar 60000: \"\\u{1b}[2J\\u{a}\" is not a number");
        let e = line(&row(&["\u{7}", "\""])).expect_err("two fields");
        assert_eq!(e, "a row of 2 fields: [\"\\u{7}\", \"\\\"\"]");
    }

    #[test]
    fn gaps_inside_a_file_are_counted() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("gaps.csv");
        let rows: String = [0, 1, 4, 5, 7, 8].iter().map(|m| format!("{},1,2,1,1,0\n", m * 60_000)).collect();
        std::fs::write(&out, format!("{HEADER}\n{rows}")).expect("write");
        let file = existing(&out, "1m", Some(60_000)).expect("reads").expect("bars");
        assert_eq!(
            file.gaps,
            Some(Gaps { count: 2, missing_bars: 3, first_from_ms: 120_000, first_bars: 2 }),
            "bars 2 and 3, then 6"
        );
        // Calendar months are not judged.
        assert_eq!(existing(&out, "1M", None).expect("reads").expect("bars").gaps, None);
        std::fs::write(&out, format!("{HEADER}\n0,1,2,1,1,0\n60000,1,2,1,1,0\n")).expect("write");
        assert_eq!(existing(&out, "1m", Some(60_000)).expect("reads").expect("bars").gaps, None);
        // A first line that never ends is not read whole to be refused.
        std::fs::write(&out, "x".repeat(1 << 20)).expect("write");
        let e = existing(&out, "1m", Some(60_000)).expect_err("not a candle file").to_string();
        assert!(e.len() < 300 && e.contains("its first line is \"xxxx"), "{e}");
    }

    #[test]
    fn rows_become_lines_of_okx_text() {
        let row = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            line(&row(&["60000", "1.10", "2", "1", "1.5", "0", "0", "0", "1"])),
            Ok(Some((60_000, "60000,1.10,2,1,1.5,0\n".into())))
        );
        assert_eq!(line(&row(&["60000", "1", "2", "1", "1.5", "3", "0", "0", "0"])), Ok(None), "still forming");
        assert!(line(&row(&["60000", "1", "2", "1"])).is_err());
        assert!(line(&row(&["60000", "1", "0.5", "1", "1", "1"])).expect_err("high below open").contains("bracket"));
    }
}
