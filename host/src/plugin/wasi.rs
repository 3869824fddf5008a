//! The locked-down WASI a plugin's language runtime may need, and nothing more.
//!
//! Python (componentize-py) and JavaScript (componentize-js) components carry an interpreter
//! built against WASI: it reads the clock, asks for random bytes, writes to stdout and looks
//! for files and environment variables on start. Refusing those imports would refuse the
//! languages; serving them the usual way would hand a strategy the machine. So every plugin
//! gets the same context, built here:
//!
//! - no preopened directories (every path is "not found"), no environment, no arguments, stdin
//!   closed, no sockets (TCP, UDP and name lookup off, every address refused), no `wasi:http`
//!   (refused by name at load, [`ALLOWED`] lists what may be imported at all);
//! - stdout and stderr are [`LogPipe`]s drained after every call into the plugin's
//!   rate-limited, escaped log (`host_api`), stderr at error level, so a Python traceback or a
//!   JavaScript exception names the failure as a Rust panic message does;
//! - both clocks are the hub's: the exchange-corrected wall clock live, virtual time in a
//!   backtest; a guest's sleep or timeout ([`add_to_linker`]'s shadowed `subscribe-*`) returns
//!   at once instead of blocking the plugin's thread in real time, where no CPU deadline sees it;
//! - random bytes from the operating system live; in deterministic mode (backtests) from a
//!   generator seeded by the plugin's name, so a strategy that draws random numbers repeats.

use super::runtime::Mode;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tradebox_core::{Clock, Moment};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// WASI interfaces a plugin may import (any 0.2.x version): what Rust's `wasm32-wasip2`,
/// componentize-py and componentize-js link against. Each is served by the locked-down
/// context: an import of sockets or files links, and every use of it fails.
pub const ALLOWED: &[&str] = &[
    "wasi:io/poll",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Whether `name` (`wasi:cli/stdout@0.2.9`) is a WASI import this host serves.
pub fn allowed(name: &str) -> bool {
    let (path, version) = name.split_once('@').unwrap_or((name, ""));
    ALLOWED.contains(&path) && version.starts_with("0.2.")
}

/// Bytes a plugin's stdout or stderr keeps between two drains; beyond it a call's output is
/// dropped and counted, never a trap (a chatty strategy must not die of its prints).
const PIPE_CAP: usize = 64 * 1024;
/// Longest random read served at once (Python asks for 32 bytes at start).
const MAX_RANDOM: u64 = 1 << 16;
/// Resources (pollables, streams) a guest may hold at once, in the store and in WASI's table:
/// each costs host memory outside the instance's memory cap (~150 bytes), so the bound is ours.
pub const MAX_HANDLES: usize = 10_000;

/// The WASI half of a plugin's store.
pub struct Wasi {
    ctx: WasiCtx,
    table: ResourceTable,
    /// What the guest wrote to stdout and stderr since the last drain.
    pub(crate) stdout: LogPipe,
    pub(crate) stderr: LogPipe,
}

impl Wasi {
    /// The locked-down context for the plugin `name` on `clock`.
    pub fn new(name: &str, clock: &Clock, mode: Mode) -> Self {
        let (stdout, stderr) = (LogPipe::default(), LogPipe::default());
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(WallClock(clock.clone()))
            .monotonic_clock(MonotonicClock { clock: clock.clone(), origin: clock.moment() })
            .max_random_size(MAX_RANDOM)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        if mode == Mode::Deterministic {
            use rand_wasi::SeedableRng as _;
            let seed: [u8; 32] = Sha256::digest(name.as_bytes()).into();
            builder
                .secure_random(rand_wasi::rngs::StdRng::from_seed(seed))
                .insecure_random(rand_wasi::rngs::StdRng::from_seed(seed))
                .insecure_random_seed(u128::from_le_bytes(seed[..16].try_into().unwrap_or_default()));
        }
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        Self { ctx: builder.build(), table, stdout, stderr }
    }
}

impl Wasi {
    /// What wasmtime-wasi's bindings work on (the store's `WasiView`).
    pub fn view(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// Adds WASI to `linker`, with a sleep that never blocks: a guest's `time.sleep` or
/// `setTimeout` subscribes to the monotonic clock and then polls; the pollable handed back is
/// ready at once, so the call goes on (in virtual time a wait means nothing; live, a strategy
/// waits with `timers`, which the host schedules).
pub fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    for name in ["subscribe-duration", "subscribe-instant"] {
        clock.func_wrap(name, |mut store, (_,): (u64,)| {
            let table = store.data_mut().ctx().table;
            let ready = table.push(Ready)?;
            Ok((wasmtime_wasi::p2::subscribe(table, ready)?,))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// A pollable that is always ready (see [`add_to_linker`]).
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

/// The hub's wall clock (exchange-corrected live, virtual in a backtest).
struct WallClock(Clock);

impl wasmtime_wasi::HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now_ms()).unwrap_or(0))
    }
}

/// The hub clock's steady timeline, from the instance's creation, in whole milliseconds: the
/// resolution `host.now` has. A nanosecond clock would let a plugin time the host's calls (lock
/// contention, other plugins' work): the building block of timing side channels.
struct MonotonicClock {
    clock: Clock,
    origin: Moment,
}

impl wasmtime_wasi::HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        let ms = self.clock.moment().saturating_duration_since(self.origin).as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX / 1_000_000).saturating_mul(1_000_000)
    }
}

/// A guest's stdout or stderr: bytes kept for the host to drain into the plugin's log after the
/// call. Always writable, never blocks, never traps; what does not fit in [`PIPE_CAP`] is
/// dropped and counted.
#[derive(Clone, Default)]
pub struct LogPipe(Arc<Shared>);

/// The bytes behind a lock, and whether there are any: the host drains after every call, and
/// most calls (every call of a Rust plugin) print nothing, so a drain first reads one atomic.
#[derive(Default)]
struct Shared {
    written: std::sync::atomic::AtomicBool,
    pipe: Mutex<Pipe>,
}

#[derive(Default)]
struct Pipe {
    bytes: Vec<u8>,
    dropped: u64,
}

impl LogPipe {
    fn push(&self, bytes: &[u8]) {
        let mut pipe = self.0.pipe.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.0.written.store(true, std::sync::atomic::Ordering::Release);
        let room = PIPE_CAP.saturating_sub(pipe.bytes.len());
        let kept = bytes.len().min(room);
        pipe.bytes.extend_from_slice(&bytes[..kept]);
        pipe.dropped += (bytes.len() - kept) as u64;
    }

    /// The complete lines written since the last drain (all of it when `flush`, a last line
    /// without its newline included), and how many bytes were dropped for want of room.
    pub fn drain(&self, flush: bool) -> (Vec<String>, u64) {
        if !self.0.written.load(std::sync::atomic::Ordering::Acquire) {
            return (Vec::new(), 0);
        }
        let mut pipe = self.0.pipe.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let end = if flush || pipe.bytes.len() >= PIPE_CAP {
            pipe.bytes.len()
        } else {
            pipe.bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
        };
        let taken: Vec<u8> = pipe.bytes.drain(..end).collect();
        // Still set while an unfinished line waits for its end.
        self.0.written.store(!pipe.bytes.is_empty(), std::sync::atomic::Ordering::Release);
        let lines = String::from_utf8_lossy(&taken)
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        (lines, std::mem::take(&mut pipe.dropped))
    }
}

impl wasmtime_wasi::cli::IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always room: what does not fit is dropped by `push`, counted, and said in the log.
        Ok(PIPE_CAP)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_imports_are_allowed_by_interface_and_series() {
        assert!(allowed("wasi:cli/stdout@0.2.9"));
        assert!(allowed("wasi:sockets/tcp@0.2.12"));
        assert!(!allowed("wasi:http/types@0.2.10"));
        assert!(!allowed("wasi:http/outgoing-handler@0.2.0"));
        assert!(!allowed("wasi:cli/stdout@0.3.0"));
        assert!(!allowed("wasi:cli/stdout"));
        assert!(!allowed("wasi:keyvalue/store@0.2.0"));
    }

    #[test]
    fn a_pipe_hands_out_whole_lines_and_drops_what_does_not_fit() {
        let pipe = LogPipe::default();
        pipe.push(b"one\r\ntwo\n\nthr");
        assert_eq!(pipe.drain(false), (vec!["one".to_string(), "two".to_string()], 0));
        pipe.push(b"ee");
        assert_eq!(pipe.drain(false), (vec![], 0));
        assert_eq!(pipe.drain(true), (vec!["three".to_string()], 0));
        pipe.push(&vec![b'x'; PIPE_CAP + 10]);
        let (lines, dropped) = pipe.drain(false);
        assert_eq!((lines.len(), lines[0].len(), dropped), (1, PIPE_CAP, 10));
    }
}
