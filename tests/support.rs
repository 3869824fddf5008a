//! Shared helpers for the end-to-end tests: plugin files, a host on the simulated venue, and
//! driving the simulated market step by step until a condition holds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradebox::engine::{Grants, RiskLimits};
use tradebox::plugin::{FailurePolicy, Limits, Mode, PluginSpec, Runtime};
use tradebox::running::{Host, PluginReport};
use tradebox_sim::venue::{SimConfig, SimVenue};

/// The directory holding the built plugin components.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

/// The bytes of a built plugin. Panics with the fix when the plugins were not built: a missing
/// plugin must fail the test, never skip it.
pub fn plugin(name: &str) -> Vec<u8> {
    let path = plugin_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Build the plugins first: `cargo xtask plugins` (or run the tests with `cargo xtask test`)",
            path.display()
        )
    })
}

/// A plugin spec with test-friendly defaults: quick restarts, a modest memory cap.
pub fn spec(name: &str, file: &str, config: &str, instruments: &[&str]) -> PluginSpec {
    PluginSpec {
        name: name.to_string(),
        wasm: plugin(file),
        config: config.to_string(),
        grants: Grants { instruments: instruments.iter().map(|s| s.to_string()).collect(), ..Grants::default() },
        risk: RiskLimits::default(),
        limits: Limits { memory_mib: 32, deadline_ms: 50, ..Limits::default() },
        failure: FailurePolicy { max_failures: 2, backoff_ms: 5, backoff_max_ms: 20, cancel_orders: true },
    }
}

/// The compiled-component cache shared by the tests (safe for concurrent use).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-component-cache")
}

/// A host on a seeded simulated venue whose market moves only when the test steps it.
pub struct TestHost {
    /// The host.
    pub host: Host,
    /// The venue.
    pub venue: Arc<SimVenue>,
    /// The audit log, when the host keeps one ([`TestHost::audited`]).
    pub audit: Option<(Arc<tradebox::audit::AuditLog>, tempfile::TempDir)>,
}

impl TestHost {
    /// A host in `mode` on the demo market with a fixed seed.
    pub async fn new(mode: Mode) -> Self {
        Self::with_cache(mode, Some(cache_dir())).await
    }

    /// Same, with a chosen cache directory.
    pub async fn with_cache(mode: Mode, cache: Option<PathBuf>) -> Self {
        let mut sim = SimConfig::demo();
        sim.seed = 42;
        let venue = SimVenue::new(sim).expect("demo sim config is valid");
        let runtime = Runtime::new(mode, cache).expect("wasm runtime");
        let host = Host::start(venue.clone(), runtime).await.expect("host starts");
        Self { host, venue, audit: None }
    }

    /// A live-mode host that keeps an audit log in a temporary directory.
    pub async fn audited() -> Self {
        let mut sim = SimConfig::demo();
        sim.seed = 42;
        let venue = SimVenue::new(sim).expect("demo sim config is valid");
        let runtime = Runtime::new(Mode::Live, Some(cache_dir())).expect("wasm runtime");
        let dir = tempfile::tempdir().expect("tmp");
        let log =
            tradebox::audit::AuditLog::open(&dir.path().join("audit.jsonl"), Duration::from_millis(50)).expect("audit");
        let host = Host::start_audited(venue.clone(), runtime, Some(log.clone())).await.expect("host starts");
        Self { host, venue, audit: Some((log, dir)) }
    }

    /// Every audit record so far.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        let (log, _) = self.audit.as_ref().expect("an audited host");
        log.sync().expect("sync");
        let text = std::fs::read_to_string(log.path()).expect("audit file");
        // The host may be appending as we read: a last line without its newline is a record
        // still being written, not a torn one.
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).expect("every line parses"))
            .collect()
    }

    /// A plugin's line on the status board.
    pub fn report(&self, name: &str) -> PluginReport {
        self.host.report().into_iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no plugin {name}"))
    }

    /// Steps the market until `done` holds, yielding between steps so the router and the
    /// plugins can work. Panics after `timeout` with `what`.
    pub async fn drive_until(&self, what: &str, timeout: Duration, mut done: impl FnMut(&Self) -> bool) {
        let start = Instant::now();
        loop {
            if done(self) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for: {what}\nboard:\n{}",
                tradebox::demo::board(&self.host, false)
            );
            self.venue.step();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Loads a plugin off the async executor (compiling blocks).
    pub async fn load(&self, spec: PluginSpec) -> Result<(), tradebox::plugin::StartError> {
        tokio::task::block_in_place(|| self.host.load(spec))
    }
}

/// The OKX path under test: a simulator and a host on the OKX venue talking to it.
pub mod okx {
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tradebox::audit::AuditLog;
    use tradebox::plugin::{Mode, Runtime};
    use tradebox::running::Host;
    use tradebox::venue::okx::{OkxConfig, OkxVenue};
    use tradebox_okx::Credentials;
    use tradebox_okx::limits::{Limiter, LimiterConfig};
    use tradebox_sim::server::{Faults, SimKey, SimServer, SimServerConfig};

    /// The simulator keys' secret.
    pub const SECRET: &str = "e2e-secret-5b1f0c9a7d";
    /// Their passphrase.
    pub const PASSPHRASE: &str = "e2e-passphrase-93d1";
    /// How long a test waits for something before failing.
    pub const WAIT: Duration = Duration::from_secs(60);

    /// A simulator key with `perm`.
    pub fn sim_key(perm: &str) -> SimKey {
        serde_json::from_value(serde_json::json!({
            "api_key": format!("e2e-{}", perm.replace(',', "-")), "secret": SECRET, "passphrase": PASSPHRASE,
            "perm": perm, "demo": true,
        }))
        .expect("key")
    }

    /// A simulator with three keys (trade, trade+withdraw, read only) on a fast market.
    pub async fn sim(faults: Faults) -> SimServer {
        sim_with(faults, |_| {}).await
    }

    /// [`sim`] with its settings adjusted.
    pub async fn sim_with(faults: Faults, adjust: impl FnOnce(&mut SimServerConfig)) -> SimServer {
        let mut market = tradebox_sim::venue::SimConfig::demo();
        market.seed = 11;
        market.step_ms = 20;
        let config = SimServerConfig {
            keys: vec![sim_key("read_only,trade"), sim_key("read_only,trade,withdraw"), sim_key("read_only")],
            market,
            faults,
            ..SimServerConfig::default()
        };
        let mut config = config;
        adjust(&mut config);
        SimServer::start(config).await.expect("simulator starts")
    }

    /// OKX venue settings pointing at `sim` (REST and WebSocket), with short timeouts.
    pub fn okx_config(sim: &SimServer) -> OkxConfig {
        OkxConfig {
            rest_url: sim.base_url(),
            ws_url: sim.base_url().replacen("http://", "ws://", 1),
            demo: true,
            instruments: vec!["BTC-USDT".into(), "ETH-USDT".into(), "BTC-USDT-SWAP".into()],
            timeout_ms: 1_000,
            exp_time_ms: 1_500,
            poll_ms: 100,
            account_poll_ms: 500,
            ..OkxConfig::default()
        }
    }

    /// The credentials of the key with `perm`.
    pub fn credentials(perm: &str) -> Credentials {
        Credentials::new(&format!("e2e-{}", perm.replace(',', "-")), SECRET, PASSPHRASE)
    }

    /// A host on the OKX venue, connected to a simulator, with an audit log.
    pub struct Rig {
        /// The simulator.
        pub sim: SimServer,
        /// The host.
        pub host: Host,
        /// The OKX venue.
        pub venue: Arc<OkxVenue>,
        /// The audit log.
        pub audit: Arc<AuditLog>,
        _dir: tempfile::TempDir,
    }

    /// A rig with default venue settings.
    pub async fn rig(faults: Faults) -> Rig {
        rig_with(faults, |_| {}).await
    }

    /// A rig whose venue settings `adjust` changes.
    pub async fn rig_with(faults: Faults, adjust: impl FnOnce(&mut OkxConfig)) -> Rig {
        rig_on(sim(faults).await, adjust).await
    }

    /// A rig on a given simulator.
    pub async fn rig_on(sim: SimServer, adjust: impl FnOnce(&mut OkxConfig)) -> Rig {
        let mut config = okx_config(&sim);
        adjust(&mut config);
        let dir = tempfile::tempdir().expect("tmp");
        let audit = AuditLog::open(&dir.path().join("audit.jsonl"), Duration::from_millis(50)).expect("audit");
        let limiter = Arc::new(Limiter::new(LimiterConfig::default()));
        let venue = OkxVenue::connect(config, credentials("read_only,trade"), limiter, Some(audit.clone()))
            .await
            .expect("connects to the simulator");
        let runtime = Runtime::new(Mode::Live, Some(crate::cache_dir())).expect("runtime");
        let host = Host::start_audited(venue.clone(), runtime, Some(audit.clone())).await.expect("host");
        Rig { sim, host, venue, audit, _dir: dir }
    }

    /// Waits (polling) until `done`, failing the test after [`WAIT`].
    pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < WAIT, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every audit record, after checking no secret is in the file.
    pub fn audit_lines(rig: &Rig) -> Vec<serde_json::Value> {
        rig.audit.sync().expect("sync");
        let text = std::fs::read_to_string(rig.audit.path()).expect("audit file");
        assert!(!text.contains(SECRET) && !text.contains(PASSPHRASE), "a secret reached the audit log");
        // The host may be appending as we read: a last line without its newline is a record
        // still being written, not a torn one.
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).expect("every line parses"))
            .collect()
    }
}

/// Hot reloads under a market feed: the `noop` plugin counts numbered trades and checks that
/// each is one more than the last, so a lost, repeated or reordered event shows in its count.
pub mod soak {
    use super::TestHost;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    use tradebox::engine::router::Router;
    use tradebox::running::lifecycle::ReloadRequest;
    use tradebox_core::{MarketEvent, Side, VenueEvent};

    /// What a soak saw.
    pub struct Outcome {
        /// Trades routed to the plugin.
        pub sent: u64,
        /// Trades the plugin counted (across every instance, through the state handoff).
        pub counted: u64,
        /// Trades that were not one more than the previous one.
        pub out_of_order: u64,
        /// Each reload, request to new instance serving.
        pub reloads: Vec<Duration>,
    }

    /// The plugin's last "trades N out of order M last P" log line, parsed.
    fn counts(t: &TestHost, name: &str) -> Option<(u64, u64)> {
        let line = t
            .host
            .activity()
            .recent(200)
            .into_iter()
            .rev()
            .find(|a| a.plugin == name && a.what.to_string().contains("trades "))?;
        let text = line.what.to_string();
        let words: Vec<&str> = text.split_whitespace().collect();
        let at =
            |w: &str| words.iter().position(|x| *x == w).and_then(|i| words.get(i + 1)).and_then(|v| v.parse().ok());
        Some((at("trades")?, at("order")?))
    }

    /// Loads `noop` as `name` on BTC-USDT, routes `rate` numbered trades a second through the
    /// host's router while reloading it `reloads` times, then waits for the plugin to report.
    pub async fn reloads_under_feed(t: &TestHost, name: &str, reloads: usize, rate: u64) -> Outcome {
        let config = |ms: u64| format!(r#"{{"symbol":"BTC-USDT","timer_ms":{ms}}}"#);
        let mut spec = super::spec(name, "noop", &config(50), &["BTC-USDT"]);
        spec.limits.deadline_ms = 1_000;
        t.load(spec).await.expect("noop loads");
        let btc = t.host.hub().instrument_by_symbol("BTC-USDT").expect("BTC-USDT").id;
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let feed = {
            let (hub, sent, stop) = (t.host.hub().clone(), sent.clone(), stop.clone());
            tokio::spawn(async move {
                let mut router = Router::new(false);
                let start = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    // Catch up to the rate whatever the timer's jitter.
                    let due = start.elapsed().as_micros() as u64 * rate / 1_000_000;
                    while sent.load(Ordering::Relaxed) < due {
                        let n = sent.fetch_add(1, Ordering::Relaxed) + 1;
                        let trade = MarketEvent::Trade {
                            instrument: btc,
                            ts_ms: n as i64,
                            price: n as f64,
                            size: 1.0,
                            taker_side: Side::Buy,
                        };
                        router.route(&hub, VenueEvent::Market(trade));
                    }
                }
            })
        };
        let wasm = super::plugin("noop");
        let mut times = Vec::with_capacity(reloads);
        for i in 0..reloads {
            let request = ReloadRequest {
                wasm: Some(wasm.clone()),
                config: Some(config(if i % 2 == 0 { 40 } else { 50 })),
                by: "soak".into(),
                ..ReloadRequest::default()
            };
            let started = Instant::now();
            tokio::task::block_in_place(|| t.host.reload(name, request)).expect("reload");
            times.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        stop.store(true, Ordering::Relaxed);
        feed.await.expect("feed task");
        let sent = sent.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(60);
        let (counted, out_of_order) = loop {
            let now = counts(t, name);
            if now.is_some_and(|(n, _)| n >= sent) || Instant::now() > deadline {
                break now.unwrap_or_default();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Outcome { sent, counted, out_of_order, reloads: times }
    }
}

/// Market history for backtests of twins (the same strategy in two languages): a seeded random
/// walk of one-minute BTC-USDT bars and the plan that replays it.
pub mod history {
    use rust_decimal::Decimal;
    use std::sync::Arc;
    use tradebox::backtest::command::open_limits;
    use tradebox::backtest::run::{DataFile, Loaded, Plan};
    use tradebox::backtest::{Fees, FillModel};
    use tradebox_data::Bar;

    /// The first bar's time: 2024-01-01.
    pub const START: i64 = 1_704_067_200_000;

    /// `n` one-minute bars of a random walk from 60,000 (0.08% a bar, tick 0.1).
    pub fn bars(n: usize, seed: u64) -> Vec<Bar> {
        tradebox_data::synthetic::random_walk(seed, n, START, 60_000, 60_000.0, 0.0008, 0.1)
    }

    /// The simulator's BTC-USDT, as instrument 1.
    pub fn btc() -> Vec<tradebox_core::InstrumentSpec> {
        let venue = tradebox_sim::venue::SimVenue::new(tradebox_sim::venue::SimConfig::demo()).expect("demo venue");
        let specs = tradebox_core::Venue::instruments(venue.as_ref());
        let spec = specs.into_iter().find(|s| s.symbol == "BTC-USDT").expect("BTC-USDT");
        vec![tradebox_core::InstrumentSpec { id: 1, ..spec }]
    }

    /// A backtest of `bars` in memory, no fees, 100,000,000 USDT and 100 BTC.
    pub fn plan(bars: &[Bar], fill: FillModel) -> Plan {
        Plan {
            instruments: btc(),
            data: vec![DataFile {
                path: "synthetic.csv".into(),
                symbol: "BTC-USDT".into(),
                loaded: Some(Loaded { bars: Arc::from(bars.to_vec()), sha256: "synthetic".into() }),
            }],
            from_ms: None,
            to_ms: None,
            fill,
            fees: Fees::none(),
            leverage: Decimal::ONE,
            balances: vec![("USDT".into(), Decimal::from(100_000_000)), ("BTC".into(), Decimal::from(100))],
            account: open_limits().1,
            equity_dir: None,
            funding: Vec::new(),
        }
    }
}
