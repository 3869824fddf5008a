//! Containment figures (issue 12, "Containment, round two"). A bench binary, not a criterion
//! bench: it drives hosts on the simulated venues itself and prints the distributions it saw.
//!
//! - `latency`: a well-behaved plugin's tick-to-intent latency (p50, p99), alone and beside each
//!   hostile mode of `misbehave` (spin, memory-bomb, log-flood, order-spam, cancel-storm,
//!   timer-hog, sub-churn, view-spin);
//! - `memory`: the host's resident memory while a plugin attacks memory (`memory-bomb` under
//!   the default 64 MiB cap), and while a component written in WAT grows a funcref table under
//!   the host's limiter until it is refused;
//! - `halt`: the kill switch under attack: from `Hub::set_account_state(Halted)` to zero open
//!   orders at the venue, a host on OKX's protocol against the embedded simulator, the market
//!   maker alone, then beside `misbehave cancel-storm`, then beside `misbehave view-spin`.
//!
//! Run (after `cargo xtask plugins`):
//! `TRADEBOX_PLUGIN_DIR=$PWD/target/plugins cargo bench -p tradebox --bench containment -- [latency|memory|halt]
//! [--samples N] [--rounds N] [--modes spin,log-flood,...] [--halts N]`; no part runs all three. Linux only (reads /proc/self/status).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tradebox::audit::AuditLog;
use tradebox::engine::router::{self, Router};
use tradebox::engine::{Command, Grants, Hub, Lanes, RiskLimits};
use tradebox::plugin::limits::{CapExceeded, Limiter};
use tradebox::plugin::{self, FailurePolicy, Limits, Mode, PluginHandle, PluginSpec, RunState, Runtime};
use tradebox::running::Host;
use tradebox_core::TradingState;
use tradebox_core::{MarketEvent, Venue, VenueEvent};
use tradebox_sim::venue::{SimConfig, SimVenue};

/// The hostile modes the latency figure is measured beside.
const HOSTILE: [&str; 8] =
    ["spin", "memory-bomb", "log-flood", "order-spam", "cancel-storm", "timer-hog", "sub-churn", "view-spin"];

/// The well-behaved plugin: a crossover on every ticker of a zigzag (see [`measure_latency`]).
const SMA: &str = r#"{"symbol":"ETH-USDT","fast":2,"slow":3}"#;

/// The market maker of the hostile tests.
const MM: &str = r#"{"symbol":"ETH-USDT","spread_bps":4,"size":0.5,"max_inventory":2}"#;

fn plugin_file(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask plugins`", path.display()))
}

fn spec(name: &str, file: &str, config: &str, instrument: &str) -> PluginSpec {
    PluginSpec {
        name: name.into(),
        wasm: plugin_file(file),
        config: config.into(),
        grants: Grants { instruments: vec![instrument.into()], ..Grants::default() },
        risk: RiskLimits::default(),
        limits: Limits::default(),
        failure: FailurePolicy::default(),
    }
}

/// A hostile plugin that keeps attacking for the whole measurement: restarted after every
/// failure (quickly), every other limit at its default.
fn hostile_spec(mode: &str) -> PluginSpec {
    let mut s = spec("hostile", "misbehave", &format!("\"{mode}\""), "BTC-USDT");
    s.failure = FailurePolicy { max_failures: u32::MAX, backoff_ms: 5, backoff_max_ms: 20, cancel_orders: true };
    s
}

// ----- statistics -----

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// A small deterministic generator for jitter between ticks.
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ----- /proc -----

/// A field of /proc/self/status in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"))
}

fn rss() -> u64 {
    status_bytes("VmRSS")
}

/// Resets the kernel's peak-RSS mark (`VmHWM`) to the current RSS; false when refused.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Reads VmRSS every millisecond on its own thread and keeps the largest value.
struct Sampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(rss()));
        let thread = {
            let (stop, max) = (stop.clone(), max.clone());
            std::thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        max.fetch_max(rss(), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .expect("sampler thread")
        };
        Self { stop, max, thread: Some(thread) }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max.load(Ordering::Relaxed).max(rss())
    }
}

/// The peak since `reset` (the kernel's mark when it could be reset, and the sampled maximum).
fn peak(reset: bool, sampled: u64) -> u64 {
    if reset { sampled.max(status_bytes("VmHWM")) } else { sampled }
}

// ----- latency -----

/// A host built from its pieces (the way `Host::start` builds it) so that the plugins' command
/// lane can be watched: a thread blocked on the lane timestamps each `Command::Place` of the
/// watched plugin as it arrives and forwards every command, unchanged and in order, to the
/// host's own sender task. Market data comes only from the bench (the venue is never stepped):
/// the timed ETH-USDT tickers of the well-behaved plugin and a BTC-USDT feed for the hostile one.
struct LatencyRig {
    venue: Arc<SimVenue>,
    hub: Arc<Hub>,
    router: Router,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// (when it reached the lane, client order id) of each place of the watched plugin.
    places: std::sync::mpsc::Receiver<(Instant, String)>,
    watched: Arc<AtomicU32>,
    _audit: tempfile::TempDir,
}

impl LatencyRig {
    fn new(rt: &tokio::runtime::Runtime) -> Self {
        let mut sim = SimConfig::demo();
        sim.seed = 42;
        let venue = SimVenue::new(sim).expect("demo sim");
        let events = venue.take_events().expect("the venue's event stream");
        let (hub, lanes) = Hub::new(venue.instruments());
        let dir = tempfile::tempdir().expect("temp dir");
        let audit = AuditLog::open(&dir.path().join("audit.jsonl"), Duration::from_millis(50)).expect("audit log");
        hub.attach_audit(audit);
        let Lanes { plugins, host } = lanes;
        let (forward, forwarded) = tokio::sync::mpsc::unbounded_channel();
        let watched = Arc::new(AtomicU32::new(0));
        let (seen, places) = std::sync::mpsc::channel();
        {
            let watched = watched.clone();
            std::thread::Builder::new()
                .name("lane-tap".into())
                .spawn(move || {
                    let mut plugins = plugins;
                    while let Some(queued) = plugins.blocking_recv() {
                        let at = Instant::now();
                        if let Command::Place(order) = &queued.command
                            && order.origin.as_ref().is_some_and(|o| o.plugin == watched.load(Ordering::Relaxed))
                        {
                            let _ = seen.send((at, order.client_id.clone()));
                        }
                        if forward.send(queued).is_err() {
                            return;
                        }
                    }
                })
                .expect("tap thread");
        }
        let lanes = Lanes { plugins: forwarded, host };
        let sender_venue: Arc<dyn Venue> = venue.clone();
        let breaker = hub.clone();
        let tasks = vec![
            // The router task, less the venue's own market data (a fill moves the simulated book
            // and publishes a ticker, which would be an extra, untimed crossover).
            rt.spawn({
                let (hub, mut events) = (hub.clone(), events);
                async move {
                    let mut router = Router::new(false);
                    while let Some(event) = events.recv().await {
                        if !matches!(event, VenueEvent::Market(_)) {
                            router.route(&hub, event);
                        }
                    }
                }
            }),
            rt.spawn(router::run_sender(hub.clone(), sender_venue, lanes)),
            rt.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(tradebox::running::BREAKER_MS));
                loop {
                    tick.tick().await;
                    breaker.watch_losses(tradebox_core::system_ms());
                    breaker.flush_refusals(false);
                }
            }),
        ];
        let mut router = Router::new(false);
        for balance in rt.block_on(venue.balances()).expect("balances") {
            router.route(&hub, VenueEvent::Balance(balance));
        }
        Self { venue, hub, router, tasks, places, watched, _audit: dir }
    }

    fn start(&self, runtime: &Arc<Runtime>, spec: PluginSpec) -> PluginHandle {
        let name = spec.name.clone();
        plugin::start(runtime.clone(), self.hub.clone(), spec).unwrap_or_else(|e| panic!("{name} starts: {e}"))
    }

    fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One configuration's latencies, over every round.
#[derive(Default)]
struct Latency {
    label: String,
    sorted: Vec<Duration>,
    missed: usize,
    hostile: Option<HostileStats>,
}

impl Latency {
    fn p(&self, p: f64) -> Duration {
        percentile(&self.sorted, p)
    }
}

/// What the hostile plugin did while the latency was measured beside it (summed over rounds).
#[derive(Default)]
struct HostileStats {
    seconds: f64,
    fed: u64,
    failures: u64,
    events: u64,
    orders_sent: u64,
    denied: u64,
    logs_suppressed: u64,
    throttled_ms: u64,
    last_error: String,
}

impl HostileStats {
    fn add(&mut self, other: HostileStats) {
        self.seconds += other.seconds;
        self.fed += other.fed;
        self.failures += other.failures;
        self.events += other.events;
        self.orders_sent += other.orders_sent;
        self.denied += other.denied;
        self.logs_suppressed += other.logs_suppressed;
        self.throttled_ms += other.throttled_ms;
        if !other.last_error.is_empty() {
            self.last_error = other.last_error;
        }
    }
}

/// The mid of an instrument's simulated book, rounded to a whole number.
fn book_mid(venue: &SimVenue, instrument: u32) -> f64 {
    let book = venue.snapshot(instrument, 1).expect("book");
    let price = |side: &[(rust_decimal::Decimal, rust_decimal::Decimal, u32)]| {
        side.first().and_then(|l| l.0.to_string().parse::<f64>().ok()).expect("a two-sided book")
    };
    ((price(&book.bids) + price(&book.asks)) / 2.0).round()
}

/// Feeds BTC-USDT tickers (a small random walk) through a router of its own every 2 ms until
/// stopped: the hostile plugins' trigger, so their attack goes on all the time, whatever the
/// phase of the measured tickers. Runs in every configuration, alone too.
fn hostile_feed(hub: Arc<Hub>, venue: &SimVenue, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let btc = hub.instrument_by_symbol("BTC-USDT").expect("BTC-USDT").id;
    let mut px = book_mid(venue, btc);
    std::thread::Builder::new()
        .name("btc-feed".into())
        .spawn(move || {
            let mut router = Router::new(false);
            let mut walk = Jitter(0x2545_f491_4f6c_dd1d);
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                px += (walk.next() % 3) as f64 - 1.0;
                let ticker = MarketEvent::Ticker {
                    instrument: btc,
                    ts_ms: tradebox_core::system_ms(),
                    bid: px - 0.5,
                    bid_size: 1.0,
                    ask: px + 0.5,
                    ask_size: 1.0,
                    last: px,
                };
                router.route(&hub, VenueEvent::Market(ticker));
                sent += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            sent
        })
        .expect("feed thread")
}

/// Routes ETH-USDT tickers one at a time into the hub (`Router::route`, as the router task
/// does) and times each to the `Command::Place` of `sma-cross` it causes. The mids zigzag
/// (x, x+1, x, x+1, ...): with fast = 2 and slow = 3 the fast average always lies between the
/// last two slow ones, so every ticker is a crossover and `sma-cross` buys on one and sells on
/// the next (one market order a ticker). After each order the bench waits for the venue's
/// fill to be routed, then 210-260 ms (jittered) before the next ticker: `sma-cross`'s
/// manifest allows it 5 orders a second.
fn measure_latency(rig: &mut LatencyRig, samples: usize, jitter: &mut Jitter) -> (Vec<Duration>, usize) {
    const WARMUP: u64 = 6;
    let eth = rig.hub.instrument_by_symbol("ETH-USDT").expect("ETH-USDT").id;
    let base = book_mid(&rig.venue, eth);
    let mut latencies = Vec::with_capacity(samples);
    let mut missed = 0;
    let mut i = 0u64;
    while latencies.len() < samples && i < WARMUP + 2 * samples as u64 {
        i += 1;
        let px = if i.is_multiple_of(2) { base } else { base + 1.0 };
        while rig.places.try_recv().is_ok() {}
        let ticker = MarketEvent::Ticker {
            instrument: eth,
            ts_ms: tradebox_core::system_ms(),
            bid: px - 0.5,
            bid_size: 1.0,
            ask: px + 0.5,
            ask_size: 1.0,
            last: px,
        };
        let warm = i > WARMUP;
        let sent = Instant::now();
        rig.router.route(&rig.hub, VenueEvent::Market(ticker));
        let timeout = if warm { Duration::from_secs(1) } else { Duration::from_millis(200) };
        match rig.places.recv_timeout(timeout) {
            Ok((at, client_id)) => {
                if warm {
                    latencies.push(at.saturating_duration_since(sent));
                }
                // The fill (and the order's end) reach the hub before the next ticker.
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline {
                    if rig.hub.order(&client_id).is_some_and(|o| !o.pending && o.report.status.is_terminal()) {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            Err(_) if warm => missed += 1,
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(210 + jitter.next() % 51));
    }
    latencies.sort();
    (latencies, missed)
}

/// One session: a fresh host with `sma-cross` (and the hostile plugin of `mode`), `samples`
/// timed tickers.
fn latency_once(
    rt: &tokio::runtime::Runtime,
    runtime: &Arc<Runtime>,
    mode: Option<&str>,
    samples: usize,
    jitter: &mut Jitter,
) -> (Vec<Duration>, usize, Option<HostileStats>) {
    let mut rig = LatencyRig::new(rt);
    let sma = rig.start(runtime, spec("sma", "sma-cross", SMA, "ETH-USDT"));
    rig.watched.store(sma.slot.id, Ordering::Relaxed);
    let hostile = mode.map(|m| rig.start(runtime, hostile_spec(m)));
    let stop = Arc::new(AtomicBool::new(false));
    let feed = hostile_feed(rig.hub.clone(), &rig.venue, stop.clone());
    let started = Instant::now();
    let (latencies, missed) = measure_latency(&mut rig, samples, jitter);
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let fed = feed.join().expect("feed thread");
    let stats = hostile.map(|h| {
        let status = h.status();
        let (c, s) = (h.counters(), &h.slot.stats);
        let stats = HostileStats {
            seconds,
            fed,
            failures: u64::from(status.failures),
            events: c.events.load(Ordering::Relaxed),
            orders_sent: s.orders_sent.load(Ordering::Relaxed),
            denied: s.denied.load(Ordering::Relaxed),
            logs_suppressed: c.logs_suppressed.load(Ordering::Relaxed),
            throttled_ms: c.throttled_ms.load(Ordering::Relaxed),
            last_error: status.last_error.unwrap_or_default(),
        };
        h.stop(true);
        stats
    });
    sma.stop(true);
    rig.stop();
    (latencies, missed, stats)
}

/// The latency figure: alone and beside each hostile mode, in `rounds` rounds of
/// `samples / rounds` tickers per configuration (each round visits every configuration, from a
/// different one each time), so that whatever else the shared machine does falls on all of
/// them alike.
fn latency(rt: &tokio::runtime::Runtime, runtime: &Arc<Runtime>, samples: usize, rounds: usize, only: &[String]) {
    let rounds = rounds.clamp(1, samples.max(1));
    let per = samples.div_ceil(rounds);
    println!(
        "\n== latency: sma-cross tick-to-intent (router → Command::Place on the plugins' lane), \
         {} samples per configuration in {rounds} interleaved rounds",
        per * rounds
    );
    let chosen = HOSTILE.into_iter().filter(|m| only.is_empty() || only.iter().any(|o| o == m));
    let modes: Vec<Option<&str>> = std::iter::once(None).chain(chosen.map(Some)).collect();
    let mut runs: Vec<Latency> = modes
        .iter()
        .map(|m| Latency { label: m.map_or_else(|| "alone".into(), |m| format!("beside {m}")), ..Latency::default() })
        .collect();
    let mut jitter = Jitter(0x9e37_79b9_7f4a_7c15);
    for round in 0..rounds {
        for k in 0..modes.len() {
            let c = (k + round) % modes.len();
            let (latencies, missed, stats) = latency_once(rt, runtime, modes[c], per, &mut jitter);
            let run = &mut runs[c];
            run.sorted.extend(latencies);
            run.missed += missed;
            if let Some(stats) = stats {
                run.hostile.get_or_insert_with(HostileStats::default).add(stats);
            }
        }
        eprintln!("latency: round {} of {rounds} done", round + 1);
    }
    for run in &mut runs {
        run.sorted.sort();
    }
    let alone = &runs[0];
    let (a50, a99) = (alone.p(0.5).as_secs_f64(), alone.p(0.99).as_secs_f64());
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10} {:>7} {:>9} {:>9}",
        "", "p50", "p90", "p99", "max", "missed", "p50/alone", "p99/alone"
    );
    for r in &runs {
        println!(
            "{:<22} {:>10} {:>10} {:>10} {:>10} {:>7} {:>8.2}x {:>8.2}x",
            r.label,
            us(r.p(0.5)),
            us(r.p(0.9)),
            us(r.p(0.99)),
            us(r.p(1.0)),
            r.missed,
            r.p(0.5).as_secs_f64() / a50,
            r.p(0.99).as_secs_f64() / a99,
        );
    }
    for r in &runs {
        let Some(h) = &r.hostile else { continue };
        let mut error = h.last_error.clone();
        error.truncate(90);
        println!(
            "  {}: over {:.0} s ({} BTC-USDT tickers fed): failures {}, events {}, orders sent {}, denied {}, \
             logs suppressed {}, throttled_ms counter {}; last error: {error}",
            r.label, h.seconds, h.fed, h.failures, h.events, h.orders_sent, h.denied, h.logs_suppressed, h.throttled_ms,
        );
    }
}

// ----- memory -----

/// A component whose guest grows a funcref table by `n` elements per call (tables cannot be
/// grown from Rust guests; the attack that held 764 MiB took small steps).
const GROWER: &str = r#"(component
    (core module $m
        (table $t 1 funcref)
        (func (export "grow-table") (param i32) (result i32) (table.grow $t (ref.null func) (local.get 0))))
    (core instance $i (instantiate $m))
    (func (export "grow-table") (param "n" u32) (result s32) (canon lift (core func $i "grow-table"))))"#;

/// Funcrefs added per call.
const TABLE_STEP: u32 = 1_000;

fn memory(rt: &tokio::runtime::Runtime, runtime: &Arc<Runtime>) {
    let cap = Limits::default().memory_bytes() as u64;
    let goal = cap + (16 << 20);
    println!("\n== memory: host VmRSS growth under a memory attack (cap {}, goal <= {})", mib(cap), mib(goal));

    // A plugin: memory-bomb on a host, each ticker allocating 1 MiB chunks until refused.
    let (before, peak_rss, disabled, unloaded, failures, error, reset) = rt.block_on(async {
        let mut sim = SimConfig::demo();
        sim.seed = 42;
        let venue = SimVenue::new(sim).expect("demo sim");
        let host = Host::start(venue.clone(), runtime.clone()).await.expect("host starts");
        let mut bomb = spec("bomb", "misbehave", "\"memory-bomb\"", "BTC-USDT");
        // The cap must stop it, not the CPU deadline (as in tests/hostile.rs); three bombs.
        bomb.limits.deadline_ms = 5_000;
        bomb.failure = FailurePolicy { max_failures: 3, backoff_ms: 5, backoff_max_ms: 20, cancel_orders: true };
        tokio::task::block_in_place(|| runtime.compile(&bomb.wasm)).expect("compiles (warms the cache)");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss();
        let reset = reset_peak();
        let sampler = Sampler::start();
        tokio::task::block_in_place(|| host.load(bomb)).expect("bomb loads");
        let started = Instant::now();
        let state = |host: &Host| host.plugin_status("bomb").map(|s| s.state);
        while state(&host) != Some(RunState::Disabled) && started.elapsed() < Duration::from_secs(120) {
            venue.step();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let status = host.plugin_status("bomb").expect("bomb status");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let disabled = rss();
        let peak_rss = peak(reset, sampler.finish());
        host.shutdown().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let unloaded = rss();
        (before, peak_rss, disabled, unloaded, status.failures, status.last_error.unwrap_or_default(), reset)
    });
    let growth = peak_rss.saturating_sub(before);
    println!(
        "memory-bomb: RSS before {} | peak {} (growth {}, {} goal) | after it was disabled {} | after unload {}",
        mib(before),
        mib(peak_rss),
        mib(growth),
        if growth <= goal { "within" } else { "OVER" },
        mib(disabled),
        mib(unloaded),
    );
    println!(
        "  {failures} bombs, last error: {error}; peak from {}",
        if reset { "VmHWM (reset before) and 1 ms samples" } else { "1 ms samples (VmHWM reset refused)" }
    );

    // A table: a WAT component under the host's limiter, growing a funcref table until refused.
    let engine = runtime.engine();
    let component =
        wasmtime::component::Component::new(engine, wat::parse_str(GROWER).expect("wat")).expect("the grower compiles");
    let mut store = wasmtime::Store::new(engine, Limiter::new(&Limits::default()));
    store.limiter(|l| l);
    // The host's engine interrupts on epochs; this store is not under a deadline.
    store.set_epoch_deadline(10_000_000);
    let instance =
        wasmtime::component::Linker::new(engine).instantiate(&mut store, &component).expect("the grower instantiates");
    let grow = instance.get_typed_func::<(u32,), (i32,)>(&mut store, "grow-table").expect("grow-table");
    std::thread::sleep(Duration::from_millis(100));
    let before = rss();
    let reset = reset_peak();
    let sampler = Sampler::start();
    let started = Instant::now();
    let mut calls = 0u64;
    let refusal = loop {
        match grow.call(&mut store, (TABLE_STEP,)) {
            Ok((r,)) if r < 0 => break "table.grow returned -1".to_string(),
            Ok(_) => calls += 1,
            Err(e) => {
                break e
                    .chain()
                    .find_map(|c| c.downcast_ref::<CapExceeded>())
                    .map_or_else(|| format!("{e:#}"), |c| c.to_string());
            }
        }
        if calls > 10_000_000 {
            break "never refused".to_string();
        }
    };
    let took = started.elapsed();
    let held = store.data().held() as u64;
    let at_refusal = rss();
    let peak_rss = peak(reset, sampler.finish());
    drop(store);
    std::thread::sleep(Duration::from_millis(100));
    let dropped = rss();
    let growth = peak_rss.saturating_sub(before);
    let mut refusal = refusal.replace('\n', " ");
    refusal.truncate(160);
    println!(
        "funcref table: {calls} grows of {TABLE_STEP} in {} → {} elements charged {} ({} B each); \
         RSS before {} | at refusal {} | peak {} (growth {}, {} goal) | store dropped {}",
        ms(took),
        calls * u64::from(TABLE_STEP),
        mib(held),
        tradebox::plugin::limits::TABLE_ELEMENT_BYTES,
        mib(before),
        mib(at_refusal),
        mib(peak_rss),
        mib(growth),
        if growth <= goal { "within" } else { "OVER" },
        mib(dropped),
    );
    println!("  refused with: {refusal}");
}

// ----- halt -----

const SECRET: &str = "bench-secret-5b1f0c9a7d";
const PASSPHRASE: &str = "bench-passphrase-93d1";
const API_KEY: &str = "bench-trade";

/// Halts timed on one host (see [`halts_on_okx`]).
struct Halts {
    label: String,
    times: Vec<Duration>,
    open_at_halt: Vec<usize>,
    note: String,
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// `n` halts of a host trading the market maker, beside the `misbehave` mode `hostile` (loaded
/// as "storm") if one is named.
async fn halts_on_okx(runtime: Arc<Runtime>, hostile: Option<&str>, n: usize) -> Halts {
    use tradebox::venue::okx::{OkxConfig, OkxVenue};
    use tradebox_sim::server::exchange::OrderFilter;
    use tradebox_sim::server::{SimKey, SimServer, SimServerConfig};

    let key: SimKey = serde_json::from_value(serde_json::json!({
        "api_key": API_KEY, "secret": SECRET, "passphrase": PASSPHRASE, "perm": "read_only,trade", "demo": true,
    }))
    .expect("key");
    let mut market = SimConfig::demo();
    market.seed = 11;
    market.step_ms = 20;
    let sim = SimServer::start(SimServerConfig { keys: vec![key], market, ..SimServerConfig::default() })
        .await
        .expect("simulator starts");
    let config = OkxConfig {
        rest_url: sim.base_url(),
        ws_url: sim.base_url().replacen("http://", "ws://", 1),
        demo: true,
        instruments: vec!["BTC-USDT".into(), "ETH-USDT".into(), "BTC-USDT-SWAP".into()],
        timeout_ms: 1_000,
        exp_time_ms: 1_500,
        poll_ms: 100,
        account_poll_ms: 500,
        ..OkxConfig::default()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl"), Duration::from_millis(50)).expect("audit log");
    let limiter = Arc::new(tradebox_okx::limits::Limiter::new(tradebox_okx::limits::LimiterConfig::default()));
    let credentials = tradebox_okx::Credentials::new(API_KEY, SECRET, PASSPHRASE);
    let venue =
        OkxVenue::connect(config, credentials, limiter, Some(audit.clone())).await.expect("connects to the simulator");
    let host = Host::start_audited(venue, runtime, Some(audit)).await.expect("host starts");
    tokio::task::block_in_place(|| host.load(spec("mm", "market-maker", MM, "ETH-USDT"))).expect("mm loads");
    let attacked = hostile.is_some();
    // The cancel storm is trading again once it has been refused another 100,000 calls; the
    // view spinner once it has read through another ticker.
    let refused = if hostile == Some("cancel-storm") { 100_000 } else { 0 };
    if let Some(mode) = hostile {
        let mut s = hostile_spec(mode);
        s.name = "storm".into();
        // 100,000 refused calls a ticker: the attack, not the CPU deadline or the failure
        // policy, is under test.
        s.limits.deadline_ms = 5_000;
        s.limits.cpu_throttle_s = 3_600;
        tokio::task::block_in_place(|| host.load(s)).expect("storm loads");
    }
    let exchange = sim.exchange().clone();
    let open = || exchange.pending(&OrderFilter::default()).len();
    let denied = |host: &Host| host.slot("storm").map_or(0, |s| s.stats.denied.load(Ordering::Relaxed));
    let events = |host: &Host| host.report().iter().find(|r| r.name == "storm").map_or(0, |r| r.events);
    let wanted = 2 + usize::from(attacked);
    let mut times = Vec::with_capacity(n);
    let mut open_at_halt = Vec::with_capacity(n);
    let mut skipped = 0;
    for _ in 0..n {
        // Trading again: the market maker's two quotes (and the attacker's order) resting at
        // the venue, and the attacker at work since the last resume.
        let (since, seen) = (denied(&host), events(&host));
        let ready = wait_until(Duration::from_secs(60), || {
            open() >= wanted && (!attacked || (denied(&host) >= since + refused && events(&host) > seen))
        })
        .await;
        if !ready {
            skipped += 1;
            continue;
        }
        let resting = open();
        let halted = Instant::now();
        host.hub().set_account_state(TradingState::Halted, "kill switch (bench)");
        while open() > 0 && halted.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(halted.elapsed());
        open_at_halt.push(resting);
        host.hub().set_account_state(TradingState::Active, "resume (bench)");
    }
    let note = match host.plugin_status("storm") {
        Some(s) => format!(
            "storm: state {:?}, failures {}, denied {}, orders sent {}{}",
            s.state,
            s.failures,
            denied(&host),
            host.slot("storm").map_or(0, |s| s.stats.orders_sent.load(Ordering::Relaxed)),
            if skipped > 0 {
                format!("; {skipped} halts skipped (not trading again within 60 s)")
            } else {
                String::new()
            }
        ),
        None if skipped > 0 => format!("{skipped} halts skipped (not trading again within 60 s)"),
        None => String::new(),
    };
    host.shutdown().await;
    drop(sim);
    times.sort();
    let label = hostile.map_or_else(|| "market maker alone".to_string(), |m| format!("beside {m}"));
    Halts { label, times, open_at_halt, note }
}

fn halt(rt: &tokio::runtime::Runtime, runtime: &Arc<Runtime>, n: usize) {
    println!(
        "\n== halt: kill switch → zero open orders at the venue (OKX protocol, embedded simulator), {n} halts each"
    );
    let normal = rt.block_on(halts_on_okx(runtime.clone(), None, n));
    let storm = rt.block_on(halts_on_okx(runtime.clone(), Some("cancel-storm"), n));
    let viewer = rt.block_on(halts_on_okx(runtime.clone(), Some("view-spin"), n));
    for h in [&normal, &storm, &viewer] {
        let (lo, hi) =
            (h.open_at_halt.iter().min().copied().unwrap_or(0), h.open_at_halt.iter().max().copied().unwrap_or(0));
        println!(
            "{:<20} halts {:>3}: min {} | median {} | p90 {} | max {} (open at the venue when halted: {lo}-{hi})",
            h.label,
            h.times.len(),
            ms(percentile(&h.times, 0.0)),
            ms(percentile(&h.times, 0.5)),
            ms(percentile(&h.times, 0.9)),
            ms(percentile(&h.times, 1.0)),
        );
        if !h.note.is_empty() {
            println!("  {}", h.note);
        }
    }
    for h in [&storm, &viewer] {
        let ratio = percentile(&h.times, 0.5).as_secs_f64() / percentile(&normal.times, 0.5).as_secs_f64();
        println!("median {} / median alone: {ratio:.2}x", h.label);
    }
}

fn main() {
    let mut parts: Vec<String> = Vec::new();
    let mut samples = 500usize;
    let mut rounds = 10usize;
    let mut only: Vec<String> = Vec::new();
    let mut halts = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "latency" | "memory" | "halt" => parts.push(arg),
            "--samples" => samples = args.next().and_then(|v| v.parse().ok()).expect("--samples N"),
            "--modes" => {
                only = args.next().expect("--modes spin,log-flood,...").split(',').map(String::from).collect();
                if let Some(bad) = only.iter().find(|m| !HOSTILE.contains(&m.as_str())) {
                    panic!("unknown mode {bad:?}: one of {HOSTILE:?}");
                }
            }
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--halts" => halts = args.next().and_then(|v| v.parse().ok()).expect("--halts N"),
            // `cargo bench` passes `--bench`; no other flag is this binary's.
            a if a.starts_with("--") => {}
            other => panic!("unknown part {other:?}: latency, memory or halt"),
        }
    }
    if parts.is_empty() {
        parts = ["latency", "memory", "halt"].map(String::from).to_vec();
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "containment: {cores} cores; load average at start {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::new(Mode::Live, Some(cache.path().to_path_buf())).expect("wasm runtime");
    for name in ["sma-cross", "misbehave", "market-maker"] {
        runtime.compile(&plugin_file(name)).expect("compiles");
    }
    for part in &parts {
        match part.as_str() {
            "latency" => latency(&rt, &runtime, samples, rounds, &only),
            "memory" => memory(&rt, &runtime),
            "halt" => halt(&rt, &runtime, halts),
            _ => unreachable!(),
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\nload average at the end {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
}
