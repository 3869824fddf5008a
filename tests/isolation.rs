//! Key isolation: a hostile plugin tries every route to the account's secrets and finds
//! nothing.
//!
//! The routes, and where each is closed:
//!
//! - WASI (environment variables, files, sockets): served locked down (`host/src/plugin/wasi.rs`:
//!   no environment, arguments, preopened directories or sockets), so a component that reaches
//!   for them gets nothing (`tests/hostile.rs`,
//!   `wasi_is_served_locked_down_and_wasi_http_is_refused_by_name`, with
//!   `plugins/hostile/wasi-import`); any other import (`wasi:http`) is refused at load, named.
//! - Everything in that world: the `snoop` plugin (`plugins/hostile/snoop`) calls every view
//!   (with real, unknown and junk arguments), subscribes to every channel of every id, places,
//!   amends and cancels orders of every kind, good and malformed, its own and other plugins'
//!   ids, so it reads every denial message the host can write, and keeps every byte it is handed
//!   (its config, every event, every result) on a tape that its `snapshot()` returns.
//!
//! This test runs a full trading session on the OKX path (signed REST and WebSocket to an
//! embedded `tradebox sim`, with a market maker so the market trades and both plugins fill) with
//! known secret values, and scans the snoop's tape, the host's log output at TRACE (every crate,
//! including the HTTP and WebSocket clients) and the audit file for the secret and the
//! passphrase in every cheap-to-check encoding, and for the HMAC key material derived from the
//! secret. It is the only test in this file because it installs the process's global tracing
//! subscriber.
//!
//! The simulator (the stand-in for the exchange, which has to know the secret to verify
//! signatures) runs on its own thread with logging off: its logs are the exchange's, not the
//! host's.

use parking_lot::Mutex;
use sha2::digest::generic_array::GenericArray;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing_subscriber::util::SubscriberInitExt;
use tradebox::running::Host;
use tradebox_e2e::okx::{self, PASSPHRASE, SECRET, WAIT};
use tradebox_e2e::spec;
use tradebox_sim::server::{Faults, SimServer};

/// Everything the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process's subscriber, as `RUST_LOG=trace` does for the `tradebox` binary
/// (`tradebox::logging`, which drops tungstenite's TRACE frame dumps: they print the WebSocket
/// login, passphrase included): every
/// event of every crate at TRACE (the `log` records of crates such as the HTTP and WebSocket
/// clients included), written to memory. Only the compiler is held at DEBUG: it sees nothing but
/// plugin code, and at TRACE it writes a gigabyte for each plugin it compiles.
fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    let filter = "trace,cranelift_codegen=debug,cranelift_frontend=debug,wasmtime_internal_cranelift=debug";
    // The binary's own log setup (its guards included), with the writer swapped for memory.
    tradebox::logging::subscriber(tracing_subscriber::EnvFilter::new(filter), move || writer.clone(), false)
        .try_init()
        .expect("the only subscriber in this test binary");
    captured
}

/// The simulator on a thread of its own, logging nothing; the sender stops it.
async fn quiet_sim() -> (SimServer, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (sim_tx, sim_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _quiet = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("sim runtime");
        runtime.block_on(async move {
            let _ = sim_tx.send(okx::sim(Faults::default()).await);
            let _ = stop_rx.await;
        });
    });
    (sim_rx.await.expect("the simulator starts"), stop_tx, thread)
}

/// The SHA-256 state after one block: how HMAC-SHA256 keeps a keyed state (the padded key
/// XOR the inner or outer pad, compressed once).
fn midstate(block: &[u8; 64]) -> [u32; 8] {
    let mut state: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    sha2::compress256(&mut state, &[*GenericArray::from_slice(block)]);
    state
}

/// The secrets, and what can be derived from them cheaply, in the forms a leak could take.
fn needles() -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: String, bytes: Vec<u8>| out.push((name, bytes));
    for (label, value) in [("secret", SECRET), ("passphrase", PASSPHRASE)] {
        let raw = value.as_bytes();
        add(label.to_string(), raw.to_vec());
        add(format!("{label} upper case"), value.to_uppercase().into_bytes());
        add(format!("{label} reversed"), raw.iter().rev().copied().collect());
        add(format!("{label} base64"), STANDARD.encode(raw).into_bytes());
        add(format!("{label} base64 (no padding)"), STANDARD_NO_PAD.encode(raw).into_bytes());
        add(format!("{label} base64url"), URL_SAFE_NO_PAD.encode(raw).into_bytes());
        add(format!("{label} hex"), hex::encode(raw).into_bytes());
        add(format!("{label} HEX"), hex::encode_upper(raw).into_bytes());
        add(format!("{label} UTF-16LE"), value.encode_utf16().flat_map(u16::to_le_bytes).collect());
        add(format!("{label} UTF-16BE"), value.encode_utf16().flat_map(u16::to_be_bytes).collect());
        // `{:?}` of the bytes, e.g. `[101, 50, 101, ...` (without the closing bracket, so a
        // longer buffer that starts with them matches too).
        let debug = format!("{:?}", &raw[..12]);
        add(format!("{label} as a Debug byte list"), debug.trim_end_matches(']').as_bytes().to_vec());
        add(format!("{label} SHA-256 hex"), hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw)).into_bytes());
    }
    // The part of each value that is not a readable word (a partial print or a split line).
    add("secret's random tail".into(), b"5b1f0c9a7d".to_vec());
    add("passphrase's tail".into(), b"passphrase-93d1".to_vec());
    // HMAC-SHA256's key material: the key zero-padded to the block, XOR 0x36 (inner) and 0x5c
    // (outer), and the SHA-256 state each leaves after one compression (what a keyed
    // `Hmac<Sha256>` holds, and all a forger needs).
    for (label, pad) in [("inner", 0x36u8), ("outer", 0x5c)] {
        let mut block = [0u8; 64];
        block[..SECRET.len()].copy_from_slice(SECRET.as_bytes());
        for b in &mut block {
            *b ^= pad;
        }
        add(format!("HMAC {label} padded key"), block[..16].to_vec());
        add(format!("HMAC {label} padded key hex"), hex::encode(&block[..16]).into_bytes());
        let state = midstate(&block);
        let be: Vec<u8> = state.iter().flat_map(|w| w.to_be_bytes()).collect();
        let le: Vec<u8> = state.iter().flat_map(|w| w.to_le_bytes()).collect();
        add(format!("HMAC {label} state (big endian)"), be[..16].to_vec());
        add(format!("HMAC {label} state (little endian)"), le[..16].to_vec());
        add(format!("HMAC {label} state hex"), hex::encode(&be[..16]).into_bytes());
        add(format!("HMAC {label} state HEX"), hex::encode_upper(&be[..16]).into_bytes());
        add(format!("HMAC {label} state base64"), STANDARD.encode(&be).as_bytes()[..20].to_vec());
        add(format!("HMAC {label} state as Debug words"), format!("[{}, {}, ", state[0], state[1]).into_bytes());
        add(format!("HMAC {label} state as hex words"), format!("{:x}, {:x}", state[0], state[1]).into_bytes());
    }
    out
}

/// Where each needle occurs in `hay`: one pass, looking only where the first two bytes of some
/// needle are (fast enough unoptimised for tens of megabytes).
fn scan(hay: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<(usize, usize)> {
    let mut starts = vec![false; 1 << 16];
    for (_, n) in needles {
        assert!(n.len() >= 8, "a needle too short to mean anything: {n:?}");
        starts[usize::from(n[0]) << 8 | usize::from(n[1])] = true;
    }
    let mut hits = Vec::new();
    for (i, pair) in hay.windows(2).enumerate() {
        if starts[usize::from(pair[0]) << 8 | usize::from(pair[1])] {
            for (k, (_, n)) in needles.iter().enumerate() {
                if hay[i..].starts_with(n) {
                    hits.push((k, i));
                }
            }
        }
    }
    hits
}

/// A short window of `hay` around `at`, printable.
fn context(hay: &[u8], at: usize, len: usize) -> String {
    let from = at.saturating_sub(120);
    let to = (at + len + 120).min(hay.len());
    format!("{:?}", String::from_utf8_lossy(&hay[from..to]))
}

fn contains(hay: &[u8], what: &str) -> bool {
    String::from_utf8_lossy(hay).contains(what)
}

/// The counters the snoop appends to its tape: `summary events N batches N fills N ticks N`.
fn summary(tape: &[u8], field: &str) -> u64 {
    let text = String::from_utf8_lossy(&tape[tape.len().saturating_sub(4096)..]).into_owned();
    let Some(line) = text.lines().rev().find(|l| l.starts_with("summary ")) else { return 0 };
    let words: Vec<&str> = line.split_whitespace().collect();
    words.iter().position(|w| *w == field).and_then(|i| words.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn snapshot(host: &Host) -> Vec<u8> {
    tokio::task::block_in_place(|| host.snapshot("snoop")).expect("the snoop's snapshot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_plugin_finds_no_secret_in_anything_it_can_read() {
    let started = Instant::now();
    let log = capture_logs();
    let (sim, stop_sim, sim_thread) = quiet_sim().await;
    let r = okx::rig_on(sim, |_| {}).await;

    // A market maker so the market trades against plugin orders, and the snoop, granted every
    // instrument (risk limits stay the defaults: the risk engine refuses some of its orders).
    let config = r#"{"symbol":"ETH-USDT","spread_bps":2,"size":0.05,"max_inventory":1}"#;
    tokio::task::block_in_place(|| r.host.load(spec("mm", "market-maker", config, &["ETH-USDT"])))
        .expect("market maker loads");
    let mut snoop = spec("snoop", "snoop", "{}", &["*"]);
    // Room for its 8 MiB tape (and the copy `snapshot` returns), and for sweeping thousands of
    // views per tick in an unoptimised host.
    snoop.limits.memory_mib = 64;
    snoop.limits.deadline_ms = 2_000;
    tokio::task::block_in_place(|| r.host.load(snoop)).expect("snoop loads");

    // Until the snoop has filled and gone through its order menu (12 timer ticks) twice and its
    // subscription churn (tick 24) once.
    let report = |name: &str| r.host.report().into_iter().find(|p| p.name == name).expect("loaded");
    let wait_start = Instant::now();
    let tape = loop {
        let tape = snapshot(&r.host);
        if report("snoop").fills >= 2 && summary(&tape, "ticks") >= 26 {
            break tape;
        }
        assert!(
            wait_start.elapsed() < WAIT,
            "timed out waiting for the snoop to trade: {:?}, tape summary {:?}",
            report("snoop"),
            String::from_utf8_lossy(&tape[tape.len().saturating_sub(300)..])
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (mm, snooped) = (report("mm"), report("snoop"));
    r.host.shutdown().await;
    r.audit.sync().expect("audit sync");
    let audit = std::fs::read(r.audit.path()).expect("audit file");
    let base_url = r.sim.base_url();
    drop(r);
    let _ = stop_sim.send(());
    sim_thread.join().expect("the simulator's thread");
    let log = log.0.lock().clone();
    println!(
        "session {:?}: tape {} bytes, log {} bytes, audit {} bytes; snoop {} fills {} denied, mm {} fills",
        started.elapsed(),
        tape.len(),
        log.len(),
        audit.len(),
        snooped.fills,
        snooped.denied,
        mm.fills
    );

    // No secret anywhere (and the scan finds each needle where it is).
    let needles = needles();
    for (k, (name, needle)) in needles.iter().enumerate() {
        let planted = [b"..".as_slice(), needle, b".."].concat();
        assert!(scan(&planted, &needles).iter().any(|&(hit, at)| hit == k && at == 2), "the scan misses {name}");
    }
    let mut found = Vec::new();
    for (source, hay) in [("the snoop's tape", &tape), ("the log", &log), ("the audit file", &audit)] {
        let hits = scan(hay, &needles);
        let mut shown = std::collections::HashSet::new();
        for &(k, at) in &hits {
            // One context per needle and source is enough to find it.
            if shown.insert(k) {
                let (name, needle) = &needles[k];
                let count = hits.iter().filter(|(n, _)| *n == k).count();
                found.push(format!(
                    "{name} in {source} ({count} times), first at byte {at}: {}",
                    context(hay, at, needle.len())
                ));
            }
        }
    }
    assert!(found.is_empty(), "secrets leaked ({} kinds):\n{}", found.len(), found.join("\n\n"));

    // The scan has to cover something: the tape holds what a plugin sees of the market, its
    // fills, the account and the host's refusals; the log holds the traffic; the audit file
    // holds the plugin's orders.
    assert!(tape.len() > 100_000, "a thin tape: {} bytes", tape.len());
    for expected in [
        "config \"{}\"",
        "symbol: \"ETH-USDT\"",
        "symbol: \"BTC-USDT\"",
        "fill Fill {",
        "balances [Balance {",
        "ticker Ticker {",
        "order OrderUpdate {",
        "UNKNOWN_INSTRUMENT",
        "UNKNOWN_ORDER",
        "INVALID_SIZE",
        "INVALID_PRICE",
        "MAX_NOTIONAL_EXCEEDED",
    ] {
        assert!(contains(&tape, expected), "the snoop's tape lacks {expected:?}");
    }
    assert!(snooped.denied > 0, "the risk engine refused some of its orders: {snooped:?}");
    let addr = base_url.trim_start_matches("http://");
    for expected in [addr, "reqwest::connect", "plugin loaded", "order denied plugin=snoop", "TRACE"] {
        assert!(contains(&log, expected), "the captured log lacks {expected:?}");
    }
    for expected in [
        "\"kind\":\"request\"",
        "/api/v5/trade/order",
        "OK-ACCESS-TIMESTAMP",
        "\"plugin\":\"snoop\"",
        "\"kind\":\"fill\"",
    ] {
        assert!(contains(&audit, expected), "the audit file lacks {expected:?}");
    }
    println!("scanned for {} needles in {:?}", needles.len(), started.elapsed());
}
