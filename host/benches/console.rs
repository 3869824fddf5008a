//! The console's live stream against the order path (issue 18): "the live stream holds 20
//! updates/s with 10 plugins without the host's dispatch figures moving".
//!
//! One process: a host on the simulated venue with 10 trading plugins and its admin API, and
//! beside it the dispatch fixture of `benches/plugin.rs` (a batch of 1 ticker into `noop`).
//! Dispatch is timed in rounds, alternately with no console reading and with a console reading
//! `/console/stream?interval_ms=50` (20 snapshots a second), so that both see the same machine
//! and the same trading. Prints per phase the median of the rounds' means, the ratio, and what
//! the stream delivered (snapshots a second, bytes a snapshot).
//!
//! `cargo xtask bench --bench console` (builds the plugins first).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tradebox::engine::{Grants, Hub, RiskLimits};
use tradebox::plugin::bindings::{self, Delivery};
use tradebox::plugin::host_api::{Counters, PluginState};
use tradebox::plugin::instance::Instance;
use tradebox::plugin::{Limits, Mode, PluginSpec, Runtime};
use tradebox::running::Host;
use tradebox_core::{MarketEvent, Venue};
use tradebox_sim::venue::{SimConfig, SimVenue};

fn plugin(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask bench`", path.display()))
}

/// Ten plugins trading on the simulator: market makers and crossovers on its three markets.
fn trading_host(rt: &tokio::runtime::Runtime, cache: PathBuf) -> Arc<Host> {
    rt.block_on(async {
        let venue = SimVenue::new(SimConfig::demo()).expect("demo sim");
        std::mem::forget(venue.spawn());
        let runtime = Runtime::new(Mode::Live, Some(cache)).expect("runtime");
        let host = Host::start(venue, runtime).await.expect("host");
        for i in 0..10 {
            let (file, config, instrument) = match i % 3 {
                0 => (
                    "market-maker",
                    r#"{"symbol":"ETH-USDT","spread_bps":6,"size":0.05,"max_inventory":2}"#,
                    "ETH-USDT",
                ),
                1 => ("sma-cross", r#"{"symbol":"BTC-USDT","fast":3,"slow":10,"size":0.001}"#, "BTC-USDT"),
                _ => (
                    "market-maker",
                    r#"{"symbol":"BTC-USDT","spread_bps":8,"size":0.001,"max_inventory":0.05}"#,
                    "BTC-USDT",
                ),
            };
            let spec = PluginSpec {
                name: format!("p{i}"),
                wasm: plugin(file),
                config: config.into(),
                grants: Grants { instruments: vec![instrument.into()], ..Grants::default() },
                risk: Default::default(),
                limits: Default::default(),
                failure: Default::default(),
            };
            host.load(spec).expect("loads");
        }
        Arc::new(host)
    })
}

/// The dispatch fixture of `benches/plugin.rs`: `noop` on a hub of its own.
fn noop(cache: PathBuf) -> (Instance, Vec<Delivery>, tradebox::engine::Lanes) {
    let venue = SimVenue::new(SimConfig::demo()).expect("demo sim");
    let (hub, lanes) = Hub::new(venue.instruments());
    let runtime = Runtime::new(Mode::Live, Some(cache)).expect("runtime");
    let compiled = runtime.compile(&plugin("noop")).expect("compiles");
    let grants = Grants { instruments: vec!["*".into()], ..Grants::default() };
    let slot = hub.register("noop", grants, RiskLimits::default());
    let state = PluginState::new(hub.clone(), slot, Arc::new(Counters::default()), Mode::Live);
    let mut inst =
        Instance::new(&compiled, state, Limits { deadline_ms: 10_000, ..Limits::default() }, Mode::Live).expect("inst");
    inst.init("{}").expect("init");
    let tick = MarketEvent::Ticker {
        instrument: 1,
        ts_ms: 1,
        bid: 60_000.0,
        bid_size: 1.0,
        ask: 60_000.1,
        ask_size: 1.0,
        last: 60_000.05,
    };
    let one = bindings::deliveries(vec![bindings::event(tradebox::engine::PluginEvent::Market(tick))]);
    (inst, one, lanes)
}

/// Rounds of each phase.
const ROUNDS: usize = 10;

/// Mean ns of one dispatch over `n` calls.
fn time_dispatch(inst: &mut Instance, one: &[Delivery], n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        for d in one {
            inst.deliver(std::hint::black_box(d)).expect("call");
        }
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// CPU time the whole process has used, ms (user and system, from /proc: 10 ms ticks).
fn process_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces, so split after its `)`).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are the 14th and 15th fields of the line, the 12th and 13th after `)`.
    (ticks(11) + ticks(12)) * 10.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // Criterion-style arguments (`--bench`, filters) are accepted and ignored.
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let host = trading_host(&rt, dir.path().join("cache"));
    let token_file = dir.path().join("admin.token");
    let admin = rt.block_on(async {
        let config = tradebox::admin::AdminConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            token_file: Some(token_file.clone()),
            ..Default::default()
        };
        tradebox::admin::start(host.clone(), &config, Default::default()).await.expect("admin API")
    });
    let token = std::fs::read_to_string(&token_file).expect("token");
    let url = format!("http://{}/console/stream?interval_ms=50", admin.addr());
    let (mut inst, one, _lanes) = noop(dir.path().join("cache"));
    // Warm up: the plugins start trading, the instance's code is hot.
    std::thread::sleep(Duration::from_secs(2));
    time_dispatch(&mut inst, &one, 200_000);

    let reading = Arc::new(AtomicBool::new(false));
    let snapshots = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    {
        let (reading, snapshots, bytes) = (reading.clone(), snapshots.clone(), bytes.clone());
        rt.spawn(async move {
            let client = reqwest::Client::new();
            loop {
                if !reading.load(Ordering::Acquire) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                let mut response = client
                    .get(&url)
                    .bearer_auth(token.trim())
                    .send()
                    .await
                    .expect("stream")
                    .error_for_status()
                    .expect("200");
                while reading.load(Ordering::Acquire) {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                            let text = String::from_utf8_lossy(&chunk);
                            snapshots.fetch_add(text.matches("event: snapshot").count() as u64, Ordering::Relaxed);
                        }
                        _ => break,
                    }
                }
            }
        });
    }

    let (mut quiet, mut streaming) = (Vec::new(), Vec::new());
    let mut stream_time = Duration::ZERO;
    // Process CPU per wall second in each phase: what the stream adds is the difference.
    let (mut quiet_cpu, mut streaming_cpu) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (t, c) = (Instant::now(), process_cpu_ms());
        quiet.push(time_dispatch(&mut inst, &one, 400_000));
        quiet_cpu.push((process_cpu_ms() - c) / t.elapsed().as_secs_f64());
        reading.store(true, Ordering::Release);
        let t = Instant::now();
        // Let the stream start before timing.
        std::thread::sleep(Duration::from_millis(300));
        let (ts, c) = (Instant::now(), process_cpu_ms());
        streaming.push(time_dispatch(&mut inst, &one, 400_000));
        streaming_cpu.push((process_cpu_ms() - c) / ts.elapsed().as_secs_f64());
        reading.store(false, Ordering::Release);
        stream_time += t.elapsed();
        std::thread::sleep(Duration::from_millis(100));
    }
    // One snapshot's cost, on this thread, while the plugins trade: what bounds the stream.
    let mut next = tradebox::admin::console::snapshots(host.clone());
    next();
    let builds = 400;
    let (t, mut size) = (Instant::now(), 0);
    for _ in 0..builds {
        size += next();
    }
    let each = t.elapsed().as_secs_f64() / f64::from(builds);
    println!(
        "console/snapshot: {:.0} µs to build and serialise one ({} bytes, 10 plugins): {:.2}% of a core at 20 a second",
        each * 1e6,
        size / builds as usize,
        each * 20.0 * 100.0
    );
    let n = snapshots.load(Ordering::Relaxed).max(1);
    let (q, s) = (median(quiet.clone()), median(streaming.clone()));
    println!("console/dispatch_quiet: {q:.0} ns a batch of 1 ticker (median of {} rounds)", quiet.len());
    println!("console/dispatch_streaming: {s:.0} ns a batch of 1 ticker while a console reads 20 snapshots/s");
    println!("console/dispatch_ratio: {:.3} (streaming / quiet)", s / q);
    let rounds = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" ");
    println!("console/rounds: quiet {} | streaming {} (ns)", rounds(&quiet), rounds(&streaming));
    let (qc, sc) = (median(quiet_cpu), median(streaming_cpu));
    println!(
        "console/process_cpu: {qc:.0} ms/s quiet, {sc:.0} ms/s streaming: the stream's share {:.1}% of a core",
        (sc - qc) / 10.0
    );
    println!(
        "console/stream: {:.1} snapshots/s received over the timed rounds (asked 20), {:.0} bytes a snapshot, 10 plugins",
        n as f64 / stream_time.as_secs_f64(),
        bytes.load(Ordering::Relaxed) as f64 / n as f64
    );
    drop(admin);
    rt.block_on(host.shutdown());
}
