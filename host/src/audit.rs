//! The audit log: what the host did on the user's account, in order, as append-only JSON lines.
//!
//! One record per intent, risk decision, exchange request (method, path, body; never a header
//! that carries a secret), response (status, body, OKX's `inTime`/`outTime`), fill and state
//! change, each with a millisecond UTC timestamp and the plugin's name and hash.
//!
//! Durability: every record is one `write` of one whole line on a file opened for append, so
//! records never interleave; a background thread `fsync`s on a short interval, so a machine
//! crash loses at most that interval. A line torn by a crash mid-write is cut off when the log
//! is next opened (and the cut is itself recorded), so every line in the file parses.
//!
//! Secrets: the log is told the secret values it must never hold ([`AuditLog::forbid`]); a
//! record that contains one anyway is written with it replaced, and the event is counted, as a
//! last line of defence behind the rule that secrets never reach a record in the first place.

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tradebox_core::{Clock, DenialCode, Moment, OrderStatus, TradingState};

/// What happened to the host, a plugin or the log: the `event` of a [`Entry::State`] record,
/// written in snake case (`plugin_loaded`, `account_halted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    /// The host started on a venue.
    HostStart,
    /// A plugin was loaded.
    PluginLoaded,
    /// A plugin was refused at load (signature, contract, grant, config).
    PluginLoadRefused,
    /// A plugin was replaced by a new version in place.
    PluginReloaded,
    /// A reload was refused; the old version keeps running.
    PluginReloadRefused,
    /// A plugin was unloaded.
    PluginUnloaded,
    /// A plugin (or a new version) started on the staging host.
    PluginStaged,
    /// Staging a plugin was refused.
    PluginStageRefused,
    /// A staged plugin was promoted to this host.
    PluginPromoted,
    /// An operator changed a plugin's risk limits.
    PluginLimitsChanged,
    /// An operator changed the account's risk limits.
    AccountLimitsChanged,
    /// An open order an earlier run left, found at start (adopted, cancelled or left).
    OrderAtStart,
    /// The venue raised an alarm about the account.
    VenueAlarm,
    /// The API key was rotated to another key.
    KeySwitched,
    /// The credentials were read again and named the same key.
    KeyUnchanged,
    /// A new API key was refused; the old one stays in use.
    KeyRefused,
    /// A line torn by a crash was cut from the end of the log at open.
    AuditRepaired,
    /// Writes succeed again after failing.
    AuditRecovered,
    /// A periodic write that finds out whether the log can be written again.
    AuditProbe,
    /// A plugin's trading state changed (`plugin_active`, `plugin_reduce_only`, `plugin_halted`).
    PluginState(TradingState),
    /// The account's trading state changed (`account_active`, ...).
    AccountState(TradingState),
}

impl StateChange {
    /// The name written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            StateChange::HostStart => "host_start",
            StateChange::PluginLoaded => "plugin_loaded",
            StateChange::PluginLoadRefused => "plugin_load_refused",
            StateChange::PluginReloaded => "plugin_reloaded",
            StateChange::PluginReloadRefused => "plugin_reload_refused",
            StateChange::PluginUnloaded => "plugin_unloaded",
            StateChange::PluginStaged => "plugin_staged",
            StateChange::PluginStageRefused => "plugin_stage_refused",
            StateChange::PluginPromoted => "plugin_promoted",
            StateChange::PluginLimitsChanged => "plugin_limits_changed",
            StateChange::AccountLimitsChanged => "account_limits_changed",
            StateChange::OrderAtStart => "order_at_start",
            StateChange::VenueAlarm => "venue_alarm",
            StateChange::KeySwitched => "key_switched",
            StateChange::KeyUnchanged => "key_unchanged",
            StateChange::KeyRefused => "key_refused",
            StateChange::AuditRepaired => "audit_repaired",
            StateChange::AuditRecovered => "audit_recovered",
            StateChange::AuditProbe => "audit_probe",
            StateChange::PluginState(TradingState::Active) => "plugin_active",
            StateChange::PluginState(TradingState::ReduceOnly) => "plugin_reduce_only",
            StateChange::PluginState(TradingState::Halted) => "plugin_halted",
            StateChange::AccountState(TradingState::Active) => "account_active",
            StateChange::AccountState(TradingState::ReduceOnly) => "account_reduce_only",
            StateChange::AccountState(TradingState::Halted) => "account_halted",
        }
    }
}

impl Serialize for StateChange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The risk check's verdict on an order: `approved`, or the denial's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It may go.
    Approved,
    /// Refused, with this code.
    Denied(DenialCode),
}

impl Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Decision::Approved => "approved",
            Decision::Denied(code) => code.as_str(),
        })
    }
}

/// What happened. Serialised with `"kind"` naming the variant.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A plugin (or the operator) asked for an order, before anything is sent.
    Intent {
        /// Host-minted client order id.
        client_id: String,
        /// Instrument symbol.
        instrument: String,
        /// What was asked, normalised.
        detail: Value,
    },
    /// A plugin asked to amend one of its orders (approved: a refusal is a `Risk` record),
    /// before anything is sent. Without it a fill at a price no intent named could not be
    /// traced to what the plugin asked for.
    Amend {
        /// The order's client id.
        client_id: String,
        /// Instrument symbol.
        instrument: String,
        /// The new price, normalised, when it changes.
        price: Option<String>,
        /// The new total size, normalised, when it changes.
        size: Option<String>,
    },
    /// The risk check's verdict.
    Risk {
        /// The order concerned.
        client_id: String,
        /// Approved or the denial code.
        decision: Decision,
        /// Why, with the limit and the value.
        detail: String,
    },
    /// A request as sent to the exchange (no secret headers).
    Request {
        /// `GET` / `POST`.
        method: String,
        /// Path and query exactly as sent.
        path: String,
        /// Body exactly as sent (`""` for GET).
        body: String,
        /// The non-secret headers that matter (timestamp, demo flag, expTime).
        headers: Vec<(String, String)>,
    },
    /// The exchange's answer.
    Response {
        /// Path it answers.
        path: String,
        /// HTTP status.
        status: u16,
        /// Body as received (truncated past 64 KiB).
        body: String,
        /// OKX's gateway receive time (µs), when given.
        in_time: Option<String>,
        /// OKX's gateway send time (µs), when given.
        out_time: Option<String>,
        /// Round trip, in µs.
        elapsed_us: u64,
    },
    /// A fill on one of our orders.
    Fill {
        /// The order.
        client_id: String,
        /// Exchange trade id.
        trade_id: String,
        /// Price, as the exchange sent it.
        price: String,
        /// Size, as the exchange sent it.
        size: String,
    },
    /// An order's state changed.
    Order {
        /// The order.
        client_id: String,
        /// New state (OKX's names: `live`, `partially_filled`, `filled`, `canceled`, `rejected`).
        state: OrderStatus,
        /// Exchange code/message when rejected.
        detail: String,
    },
    /// Refusal records of one plugin left out over its budget since the last such record
    /// (or the last written refusal), counted by denial code: a plugin looping on refused
    /// intents cannot grow the log faster than its budget.
    RefusalsSuppressed {
        /// How many refusals were not written one by one.
        count: u64,
        /// The same count by denial code.
        by_code: std::collections::BTreeMap<&'static str, u64>,
    },
    /// Host or plugin lifecycle: start, load, reload, unload, halt, resume, recovery.
    State {
        /// What happened.
        event: StateChange,
        /// Details.
        detail: String,
    },
}

/// One line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct Record<'a> {
    /// Milliseconds-precision UTC time, RFC 3339.
    pub ts: String,
    /// Per-log sequence number: a gap means lost lines.
    pub seq: u64,
    /// The plugin the record is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<&'a str>,
    /// That plugin's component hash (sha256), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_hash: Option<&'a str>,
    /// Written on a paper venue: no order of this log reached an exchange, and its fills are
    /// simulated. Absent (false) otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paper: bool,
    /// The entry.
    #[serde(flatten)]
    pub entry: &'a Entry,
}

/// One plugin's budget of refusal records. A plugin can call `place` in a loop with intents
/// that are refused at once; each refusal is worth a record, but not without bound (a loop
/// of 50,000 refused places per event grew the log by gigabytes an hour). Up to
/// [`RefusalBudget::BURST`] records at once and [`RefusalBudget::PER_SECOND`] a second after
/// that are written one by one; the rest are counted by code and written as one
/// [`Entry::RefusalsSuppressed`] at most every [`RefusalBudget::SUMMARY_EVERY`].
#[derive(Debug)]
pub struct RefusalBudget {
    tokens: f64,
    at: Moment,
    suppressed: BTreeMap<&'static str, u64>,
    last_summary: Moment,
}

impl RefusalBudget {
    /// A full budget, made at `now`.
    pub fn new(now: Moment) -> Self {
        Self { tokens: Self::BURST, at: now, suppressed: BTreeMap::new(), last_summary: now }
    }

    /// Refusal records written back to back.
    pub const BURST: f64 = 100.0;
    /// Refusal records a second after the burst.
    pub const PER_SECOND: f64 = 2.0;
    /// Shortest time between two summaries.
    pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

    /// True when a refusal with `code` may be written now; otherwise it is counted.
    pub fn admit(&mut self, code: &'static str, now: Moment) -> bool {
        self.tokens =
            (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * Self::PER_SECOND).min(Self::BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        *self.suppressed.entry(code).or_default() += 1;
        false
    }

    /// The summary of what was left out, when there is any and the last summary is at least
    /// [`Self::SUMMARY_EVERY`] old (or `now` is the end: unload, shutdown).
    pub fn summary(&mut self, now: Moment, final_one: bool) -> Option<Entry> {
        if self.suppressed.is_empty()
            || (!final_one && now.saturating_duration_since(self.last_summary) < Self::SUMMARY_EVERY)
        {
            return None;
        }
        self.last_summary = now;
        let by_code = std::mem::take(&mut self.suppressed);
        Some(Entry::RefusalsSuppressed { count: by_code.values().sum(), by_code })
    }
}

/// Errors opening the log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be opened or repaired.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

const MAX_BODY: usize = 64 * 1024;

/// Counters.
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Lines written.
    pub records: AtomicU64,
    /// Lines that failed to write (disk full...); each is also logged.
    pub write_errors: AtomicU64,
    /// `fsync`s done.
    pub syncs: AtomicU64,
    /// Records in which a forbidden value was found and replaced.
    pub redactions: AtomicU64,
}

struct Inner {
    file: File,
    seq: u64,
    forbidden: Vec<String>,
    /// Bytes of whole lines in the file: a write that fails half-way is cut back to this.
    len: u64,
    /// A failed write may have left part of a line that could not be cut yet: nothing is
    /// written after it until the cut succeeds.
    torn: bool,
    /// What records are stamped with: the host's clock once the engine is attached
    /// ([`AuditLog::use_clock`]), the machine's until then.
    clock: Clock,
    /// Every record says `"paper":true` ([`AuditLog::open_paper`]).
    paper: bool,
    /// The last lines written, for the console's trail ([`AuditLog::recent_since`]): their
    /// bytes one after another in a ring of [`RECENT_BYTES`] (a copy into memory already
    /// held: keeping each line's own `String` instead cost the order path ~10%, measured, in
    /// allocations that could no longer reuse the block just freed), and each line's `seq` and
    /// length.
    recent: Recent,
}

/// Bytes of the latest lines the log keeps in memory for [`AuditLog::recent_since`] (a line
/// is a few hundred bytes: some thousands of records).
pub const RECENT_BYTES: usize = 1 << 20;

/// The ring of recent lines.
#[derive(Default)]
struct Recent {
    bytes: std::collections::VecDeque<u8>,
    lines: std::collections::VecDeque<(u64, usize)>,
}

impl Recent {
    fn push(&mut self, seq: u64, line: &[u8]) {
        if line.len() > RECENT_BYTES {
            return;
        }
        while self.bytes.len() + line.len() > RECENT_BYTES {
            let Some((_, len)) = self.lines.pop_front() else { break };
            self.bytes.drain(..len);
        }
        self.bytes.extend(line);
        self.lines.push_back((seq, line.len()));
    }

    /// Lines after `seq`, the last `max` of them, oldest first.
    fn since(&self, seq: u64, max: usize) -> Vec<(u64, String)> {
        let newer = self.lines.iter().rev().take_while(|(s, _)| *s > seq).take(max).count();
        let skip = self.lines.len() - newer;
        let mut start: usize = self.lines.iter().take(skip).map(|(_, len)| len).sum();
        let mut out = Vec::with_capacity(newer);
        for (s, len) in self.lines.iter().skip(skip) {
            let bytes: Vec<u8> = self.bytes.range(start..start + len).copied().collect();
            start += len;
            out.push((*s, String::from_utf8_lossy(&bytes).trim_end().to_string()));
        }
        out
    }
}

/// A record's timestamp: RFC 3339 with milliseconds, UTC.
fn stamp(ms: i64) -> String {
    tradebox_okx::sign::timestamp(ms)
}

/// The log. Share it with `Arc`; writes from many threads are serialised.
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Set while the last write (or `fsync`) failed (disk full, I/O error): the gateway
    /// refuses new orders until a write succeeds again.
    failing: Arc<AtomicBool>,
    dirty: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Counters.
    pub stats: Arc<AuditStats>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("path", &self.path).finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating it, owner-only) the log at `path`, repairs a line torn by a crash, and
    /// starts the `fsync` thread with `sync_every`.
    pub fn open(path: &Path, sync_every: Duration) -> Result<Arc<Self>, AuditError> {
        Self::open_marked(path, sync_every, false)
    }

    /// [`AuditLog::open`] for a paper venue's host: every record says `"paper":true`, the first
    /// (a repair of a line torn by a crash) included.
    pub fn open_paper(path: &Path, sync_every: Duration) -> Result<Arc<Self>, AuditError> {
        Self::open_marked(path, sync_every, true)
    }

    fn open_marked(path: &Path, sync_every: Duration, paper: bool) -> Result<Arc<Self>, AuditError> {
        let io = |source| AuditError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        let torn = repair(&mut file).map_err(io)?;
        // Sequence numbers continue across restarts, so a gap always means lost lines.
        let seq = last_seq(&mut file).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let log = Arc::new(Self {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                file,
                seq,
                forbidden: Vec::new(),
                len,
                torn: false,
                clock: Clock::system(),
                paper,
                recent: Recent::default(),
            }),
            failing: Arc::new(AtomicBool::new(false)),
            dirty: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(AuditStats::default()),
        });
        log.spawn_syncer(sync_every).map_err(io)?;
        if torn > 0 {
            let detail = format!("cut {torn} bytes of a line torn by a crash");
            log.append(None, None, &Entry::State { event: StateChange::AuditRepaired, detail });
        }
        Ok(log)
    }

    fn spawn_syncer(self: &Arc<Self>, every: Duration) -> std::io::Result<()> {
        let file = self.inner.lock().file.try_clone()?;
        let (dirty, stop, stats, failing) =
            (self.dirty.clone(), self.stop.clone(), self.stats.clone(), self.failing.clone());
        std::thread::Builder::new().name("audit-fsync".into()).spawn(move || {
            loop {
                std::thread::sleep(every);
                let stopping = stop.load(Ordering::Acquire);
                if dirty.swap(false, Ordering::AcqRel) {
                    match file.sync_data() {
                        Ok(()) => {
                            stats.syncs.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            // Records written may not be on disk: fail closed until a write
                            // succeeds again.
                            failing.store(true, Ordering::Release);
                            stats.write_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(error = %e, "audit log fsync failed: new orders are refused until a write succeeds");
                        }
                    }
                }
                if stopping {
                    return;
                }
            }
        })?;
        Ok(())
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A value that must never appear in the log (an API secret, a passphrase). Values shorter
    /// than 8 bytes are ignored: they would match ordinary text.
    pub fn forbid(&self, secret: &str) {
        if secret.len() >= 8 {
            self.inner.lock().forbidden.push(secret.to_string());
        }
    }

    /// True while records cannot be written (the last write failed). Orders must not go out
    /// unrecorded: the gateway refuses new ones while this holds (fail closed); cancels still
    /// go.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// Stamps every later record by `clock` (the venue's: exchange-corrected on OKX, virtual in
    /// a backtest), so the log and the orders it records tell one time.
    pub fn use_clock(&self, clock: Clock) {
        self.inner.lock().clock = clock;
    }

    /// Appends one record and flushes it to the OS. A write error is counted, cut back out of
    /// the file (no torn line stays behind) and makes the log [`failing`](Self::failing) until a
    /// later write succeeds, which is then recorded with the number of lines lost (the gap in
    /// `seq` shows where). Returns whether the record was written.
    pub fn append(&self, plugin: Option<&str>, plugin_hash: Option<&str>, entry: &Entry) -> bool {
        let mut inner = self.inner.lock();
        let written = self.write(&mut inner, plugin, plugin_hash, entry);
        if written && self.failing.swap(false, Ordering::AcqRel) {
            let lost = self.stats.write_errors.load(Ordering::Relaxed);
            tracing::warn!(path = %self.path.display(), "the audit log can be written again; new orders are accepted");
            let detail = format!("writes succeed again after {lost} failed writes in all; new orders are accepted");
            self.write(&mut inner, None, None, &Entry::State { event: StateChange::AuditRecovered, detail });
        }
        written
    }

    fn write(&self, inner: &mut Inner, plugin: Option<&str>, plugin_hash: Option<&str>, entry: &Entry) -> bool {
        inner.seq += 1;
        let ts = stamp(inner.clock.now_ms());
        let record = Record { ts, seq: inner.seq, plugin, plugin_hash, paper: inner.paper, entry };
        let mut line = match serde_json::to_string(&record) {
            Ok(line) => line,
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "audit record did not serialise");
                return false;
            }
        };
        for secret in &inner.forbidden {
            if line.contains(secret.as_str()) {
                line = line.replace(secret.as_str(), "[REDACTED]");
                self.stats.redactions.fetch_add(1, Ordering::Relaxed);
                tracing::error!("a secret reached an audit record; it was redacted (this is a bug)");
            }
        }
        line.push('\n');
        if inner.torn {
            if inner.file.set_len(inner.len).is_err() {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            inner.torn = false;
        }
        match inner.file.write_all(line.as_bytes()) {
            Ok(()) => {
                inner.len += line.len() as u64;
                let seq = inner.seq;
                inner.recent.push(seq, line.as_bytes());
                self.stats.records.fetch_add(1, Ordering::Relaxed);
                self.dirty.store(true, Ordering::Release);
                true
            }
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                // Part of the line may be in the file: cut it, so every line still parses (and
                // if even that fails, cut it before anything else is written).
                inner.torn = inner.file.set_len(inner.len).is_err();
                if !self.failing.swap(true, Ordering::AcqRel) {
                    tracing::error!(
                        error = %e, path = %self.path.display(),
                        "the audit log cannot be written: new orders are refused until it can (cancels still go)"
                    );
                }
                false
            }
        }
    }

    /// While the log is failing, tries one record, so a host with nothing else to write finds
    /// out that the disk has room again (the host calls it on its breaker tick).
    pub fn probe(&self) {
        if self.failing() {
            let detail = "probing after a failed write".to_string();
            self.append(None, None, &Entry::State { event: StateChange::AuditProbe, detail });
        }
    }

    /// Lines written after `seq` (oldest first, at most the last `max`, each without its
    /// newline), from the last [`RECENT_BYTES`] written. The console's audit trail reads the
    /// log this way rather than the file, which may be large and is being appended to.
    pub fn recent_since(&self, seq: u64, max: usize) -> Vec<(u64, String)> {
        self.inner.lock().recent.since(seq, max)
    }

    /// Points the log at another file (tests: `/dev/full` stands for a full disk).
    #[cfg(test)]
    pub(crate) fn redirect(&self, file: File) {
        let mut inner = self.inner.lock();
        inner.len = file.metadata().map(|m| m.len()).unwrap_or(0);
        inner.file = file;
    }

    /// Forces everything written so far to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.inner.lock().file.sync_data()?;
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.inner.get_mut().file.sync_data();
    }
}

/// Every OKX request and response goes into the log, tagged with the plugin it was made for.
/// The observer sees the request after signing, but only its method, path, body and the
/// non-secret headers: the key, signature and passphrase never reach it.
impl tradebox_okx::Observer for AuditLog {
    fn request(&self, r: &tradebox_okx::rest::SentRequest<'_>) {
        let mut headers = Vec::new();
        if let Some(ts) = r.timestamp {
            headers.push(("OK-ACCESS-TIMESTAMP".to_string(), ts.to_string()));
        }
        if r.demo {
            headers.push(("x-simulated-trading".to_string(), "1".to_string()));
        }
        if let Some(exp) = r.exp_time {
            headers.push(("expTime".to_string(), exp.to_string()));
        }
        let entry =
            Entry::Request { method: r.method.to_string(), path: r.path.to_string(), body: body(r.body), headers };
        self.append(r.caller.map(|c| c.name.as_str()), r.caller.map(|c| c.hash.as_str()), &entry);
    }

    fn response(&self, r: &tradebox_okx::rest::ReceivedResponse<'_>) {
        // OKX's gateway times, when the body carries them.
        let times = serde_json::from_slice::<Value>(r.body).ok().map(|v| {
            let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            (field("inTime"), field("outTime"))
        });
        let (in_time, out_time) = times.unwrap_or_default();
        let entry = Entry::Response {
            path: r.path.to_string(),
            status: r.status,
            body: body(r.body),
            in_time,
            out_time,
            elapsed_us: u64::try_from(r.elapsed.as_micros()).unwrap_or(u64::MAX),
        };
        self.append(r.caller.map(|c| c.name.as_str()), r.caller.map(|c| c.hash.as_str()), &entry);
    }
}

/// A body for a record: as received, cut at [`MAX_BODY`] on a character boundary.
pub fn body(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX_BODY {
        return text.into_owned();
    }
    let mut end = MAX_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes]", &text[..end], text.len())
}

/// Cuts a trailing partial line; returns how many bytes were cut.
fn repair(file: &mut File) -> std::io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(0);
    }
    // Find the last newline, reading backwards in chunks.
    let mut end = len;
    let mut buf = vec![0u8; 8192];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep < len {
                file.set_len(keep)?;
            }
            return Ok(len - keep);
        }
        end = start;
    }
    file.set_len(0)?;
    Ok(len)
}

/// The `seq` of the last line (0 for an empty log). Reads only the tail.
fn last_seq(file: &mut File) -> std::io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(2 * MAX_BODY as u64 + 4096);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let last = tail.split(|b| *b == b'\n').rev().find(|l| !l.is_empty());
    Ok(last
        .and_then(|l| serde_json::from_slice::<Value>(l).ok())
        .and_then(|v| v.get("seq").and_then(Value::as_u64))
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}")))
            .collect()
    }

    #[test]
    fn refusals_past_the_budget_become_one_summary_by_code() {
        let t = Clock::system().moment();
        let mut b = RefusalBudget::new(t);
        let written =
            (0..50_000).filter(|i| b.admit(if i % 2 == 0 { "RATE_LIMITED" } else { "INVALID_PRICE" }, t)).count();
        assert_eq!(written, RefusalBudget::BURST as usize);
        assert!(b.summary(t, false).is_none(), "not before SUMMARY_EVERY");
        let later = t + RefusalBudget::SUMMARY_EVERY;
        let Some(Entry::RefusalsSuppressed { count, by_code }) = b.summary(later, false) else { panic!("a summary") };
        assert_eq!(count, 50_000 - RefusalBudget::BURST as u64);
        assert_eq!((by_code["RATE_LIMITED"], by_code["INVALID_PRICE"]), (24_950, 24_950));
        assert!(b.summary(later, true).is_none(), "nothing more to say");
        // Ten seconds refilled twenty records.
        assert_eq!((0..100).filter(|_| b.admit("RATE_LIMITED", later)).count(), 20);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_fails_closed_cuts_the_torn_line_and_recovers() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, Duration::from_secs(60)).expect("open");
        log.append(None, None, &Entry::State { event: StateChange::HostStart, detail: String::new() });
        assert!(!log.failing());
        // Every write to /dev/full fails with ENOSPC, as on a full disk.
        log.redirect(OpenOptions::new().append(true).open("/dev/full").expect("/dev/full"));
        log.append(None, None, &Entry::State { event: StateChange::PluginLoaded, detail: String::new() });
        assert!(log.failing(), "a failed write is not silent");
        assert_eq!(log.stats.write_errors.load(Ordering::Relaxed), 1);
        // Space again.
        log.redirect(OpenOptions::new().read(true).append(true).open(&path).expect("reopen"));
        // Nothing else to write on a quiet host: the breaker tick's probe finds the room.
        log.probe();
        assert!(!log.failing());
        log.probe();
        let l = lines(&path);
        let events: Vec<_> = l.iter().map(|r| r["event"].as_str().unwrap_or_default().to_string()).collect();
        assert_eq!(events, ["host_start", "audit_probe", "audit_recovered"]);
        assert_eq!((l[0]["seq"].as_u64(), l[1]["seq"].as_u64()), (Some(1), Some(3)), "the gap shows the lost line");
    }

    #[test]
    fn the_recent_lines_are_kept_in_order_within_their_ring() {
        let mut ring = Recent::default();
        let line = |i: u64| format!("{{\"seq\":{i},\"pad\":\"{}\"}}\n", "x".repeat(400));
        for i in 1..=5_000u64 {
            ring.push(i, line(i).as_bytes());
        }
        assert!(ring.bytes.len() <= RECENT_BYTES);
        let last = ring.since(0, usize::MAX);
        assert!(last.len() > 2_000 && last.len() < 5_000, "{}", last.len());
        assert_eq!(last.last().map(|(s, l)| (*s, l.clone())), Some((5_000, line(5_000).trim_end().to_string())));
        let newer = ring.since(4_997, 100);
        assert_eq!(newer.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [4_998, 4_999, 5_000]);
        assert_eq!(newer[0].1, line(4_998).trim_end(), "whole lines, without the newline");
        assert_eq!(ring.since(0, 2).iter().map(|(s, _)| *s).collect::<Vec<_>>(), [4_999, 5_000], "the last max");
        assert!(ring.since(5_000, 10).is_empty());
    }

    #[test]
    fn records_are_json_lines_with_time_sequence_and_plugin() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, Duration::from_millis(10)).expect("open");
        log.append(
            Some("sma"),
            Some("ab12"),
            &Entry::Request {
                method: "POST".into(),
                path: "/api/v5/trade/order".into(),
                body: r#"{"instId":"BTC-USDT"}"#.into(),
                headers: vec![("x-simulated-trading".into(), "1".into())],
            },
        );
        log.append(None, None, &Entry::State { event: StateChange::HostStart, detail: "demo".into() });
        let l = lines(&path);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0]["kind"], "request");
        assert_eq!(l[0]["plugin"], "sma");
        assert_eq!(l[0]["plugin_hash"], "ab12");
        assert_eq!(l[0]["body"], r#"{"instId":"BTC-USDT"}"#);
        assert_eq!(l[1]["seq"], 2);
        assert!(l[1].get("plugin").is_none());
        let ts = l[0]["ts"].as_str().expect("ts");
        assert!(ts.ends_with('Z') && ts.len() == "2026-11-24T00:00:00.000Z".len(), "{ts}");
        std::thread::sleep(Duration::from_millis(50));
        assert!(log.stats.syncs.load(Ordering::Relaxed) >= 1, "the fsync thread ran");
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a/audit.jsonl");
        let _log = AuditLog::open(&path, Duration::from_secs(1)).expect("open");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_cut_recorded() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        {
            let log = AuditLog::open(&path, Duration::from_secs(1)).expect("open");
            log.append(None, None, &Entry::State { event: StateChange::HostStart, detail: String::new() });
        }
        // A crash in the middle of the second write.
        let mut f = OpenOptions::new().append(true).open(&path).expect("reopen");
        f.write_all(br#"{"ts":"2026-11-24T00:00:00.000Z","seq":2,"kind":"sta"#).expect("torn write");
        drop(f);
        let log = AuditLog::open(&path, Duration::from_secs(1)).expect("open repairs");
        log.append(None, None, &Entry::State { event: StateChange::PluginUnloaded, detail: String::new() });
        let l = lines(&path);
        assert_eq!(l.len(), 3, "{l:?}");
        assert_eq!(l[0]["event"], "host_start");
        assert_eq!(l[1]["event"], "audit_repaired");
        assert_eq!(l[2]["event"], "plugin_unloaded");
        let seqs: Vec<u64> = l.iter().map(|r| r["seq"].as_u64().expect("seq")).collect();
        assert_eq!(seqs, vec![1, 2, 3], "sequence continues across opens");
    }

    #[test]
    fn a_forbidden_value_never_reaches_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, Duration::from_secs(1)).expect("open");
        log.forbid("s3cret-passphrase");
        log.append(
            None,
            None,
            &Entry::State { event: StateChange::KeyRefused, detail: "pass=s3cret-passphrase".into() },
        );
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("s3cret-passphrase"));
        assert!(text.contains("[REDACTED]"));
        assert_eq!(log.stats.redactions.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn concurrent_writers_never_interleave_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, Duration::from_millis(5)).expect("open");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        let detail = format!("{t}-{i}-{}", "x".repeat(300));
                        log.append(Some("p"), None, &Entry::State { event: StateChange::PluginLoaded, detail });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("writer");
        }
        let l = lines(&path);
        assert_eq!(l.len(), 1000);
        let mut seqs: Vec<u64> = l.iter().map(|r| r["seq"].as_u64().expect("seq")).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=1000).collect::<Vec<_>>());
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_BODY);
        let cut = body(long.as_bytes());
        assert!(cut.len() < long.len() && cut.contains("…["));
        assert_eq!(body(b"{}"), "{}");
    }
}
