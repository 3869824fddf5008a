//! The paper venue on the simulator's live public feed (`tradebox sim`'s WebSocket server,
//! started in this process): a real plugin trades on it with no keys and nothing reaches the
//! exchange; every audit record says paper; and the feed it recorded, replayed through the
//! backtest's exchange with the same requests at the same points, gives the same fills.

use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tradebox::plugin::{Mode, Runtime};
use tradebox::running::Host;
use tradebox::venue::paper::{FillModel, PaperConfig, PaperExchange, PaperVenue, Request, market_event};
use tradebox_core::{Clock, FillReport, Liquidity, NewOrder, OrderKind, PositionSide, Side, Venue, VenueEvent};
use tradebox_e2e::{cache_dir, spec};
use tradebox_sim::server::feed::Push;
use tradebox_sim::server::{SimServer, SimServerConfig};

const SYMBOLS: [&str; 2] = ["BTC-USDT", "ETH-USDT"];

fn config(sim: &SimServer, record: Option<PathBuf>) -> PaperConfig {
    PaperConfig {
        instruments: SYMBOLS.iter().map(|s| s.to_string()).collect(),
        rest_url: sim.base_url(),
        ws_url: format!("ws://{}", sim.addr()),
        balances: BTreeMap::from([
            ("USDT".to_string(), Decimal::from(1_000_000)),
            ("BTC".to_string(), Decimal::from(10)),
            ("ETH".to_string(), Decimal::from(100)),
        ]),
        record,
        ..PaperConfig::default()
    }
}

/// A market maker quoting BTC-USDT tightly, so that the simulator's market fills it within seconds.
fn market_maker() -> tradebox::plugin::PluginSpec {
    let config = r#"{"symbol":"BTC-USDT","spread_bps":2,"requote_bps":1}"#;
    spec("mm", "market-maker", config, &["BTC-USDT"])
}

/// A host on a paper venue on the simulator's feed, keeping a paper audit log.
struct Paper {
    venue: Arc<PaperVenue>,
    host: Host,
    audit: Arc<tradebox::audit::AuditLog>,
    runtime: Arc<Runtime>,
    dir: tempfile::TempDir,
}

async fn paper_host(sim: &SimServer) -> Paper {
    let venue = PaperVenue::connect(config(sim, None)).await.expect("the paper venue starts");
    let dir = tempfile::tempdir().expect("dir");
    let audit = tradebox::audit::AuditLog::open_paper(&dir.path().join("audit.jsonl"), Duration::from_millis(20))
        .expect("the audit log");
    let runtime = Runtime::new(Mode::Live, Some(cache_dir())).expect("runtime");
    let host = Host::start_audited(venue.clone(), runtime.clone(), Some(audit.clone())).await.expect("the host");
    Paper { venue, host, audit, runtime, dir }
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_trades_on_paper_against_the_live_feed_and_nothing_reaches_the_exchange() {
    let sim = SimServer::start(SimServerConfig::default()).await.expect("the simulator starts");
    let Paper { venue, host, audit, runtime: _, dir: _dir } = paper_host(&sim).await;
    assert_eq!(host.hub().instruments().len(), 2, "the rules of both instruments, read from the exchange's list");
    host.load(market_maker()).expect("the market maker loads");

    let report = || host.report().into_iter().find(|r| r.name == "mm").expect("mm on the board");
    wait_for("the market maker's quotes to fill on paper", Duration::from_secs(60), || report().fills >= 2).await;
    let status = venue.status().and_then(|s| s.feeds).expect("feed status");
    assert!(status.public_up && status.frames > 0 && status.private_up.is_none(), "{status:?}");

    // Nothing reached the exchange whose feed it traded on.
    let everything = tradebox_sim::server::exchange::OrderFilter::default();
    assert_eq!(sim.exchange().pending(&everything).len(), 0, "orders at the simulator's exchange");
    assert_eq!(sim.exchange().fills(&everything).len(), 0, "fills at the simulator's exchange");

    host.shutdown().await;
    venue.close().await;
    audit.sync().expect("sync");
    let text = std::fs::read_to_string(audit.path()).expect("the audit log");
    let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("a record")).collect();
    assert!(records.iter().any(|r| r["kind"] == "fill"), "fills are audited: {text}");
    assert!(records.iter().all(|r| r["paper"] == true), "every record says paper: {text}");
    assert!(records.iter().any(|r| r["detail"].as_str().is_some_and(|d| d.contains("venue paper"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_of_the_paper_feed_replayed_through_the_backtests_exchange_gives_the_same_fills() {
    let sim = SimServer::start(SimServerConfig::default()).await.expect("the simulator starts");
    let recording = tempfile::tempdir().expect("dir");
    let settings = config(&sim, Some(recording.path().to_path_buf()));
    let venue = PaperVenue::connect(settings.clone()).await.expect("the paper venue starts");
    venue.exchange().keep_journal();
    let mut events = venue.take_events().expect("events");
    let runtime = Runtime::new(Mode::Live, Some(cache_dir())).expect("runtime");
    // The host reads the venue's events through a tap, to keep the fills the paper venue gave.
    let (tap, tapped) = tokio::sync::mpsc::unbounded_channel();
    let tee = Arc::new(Tap { inner: venue.clone(), events: parking_lot::Mutex::new(Some(tapped)) });
    let paper_fills = Arc::new(parking_lot::Mutex::new(Vec::<FillReport>::new()));
    let kept = paper_fills.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let VenueEvent::Fill(fill) = &event {
                kept.lock().push(fill.clone());
            }
            if tap.send(event).is_err() {
                break;
            }
        }
    });
    let host = Host::start(tee, runtime).await.expect("the host starts");
    host.load(market_maker()).expect("the market maker loads");
    // Beside the market maker's resting quotes, orders that take: market buys and IOC sells
    // walking the book (sent to the venue directly; the host does not track them).
    let taker = venue.clone();
    let takers = tokio::spawn(async move {
        for n in 0..20_u32 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            let (side, kind, price) = if n % 2 == 0 {
                (Side::Buy, OrderKind::Market, None)
            } else {
                (Side::Sell, OrderKind::Ioc, Some(Decimal::ONE))
            };
            let order = NewOrder {
                client_id: format!("test{n}"),
                instrument: 1,
                side,
                kind,
                price,
                size: Decimal::new(5, 2),
                reduce_only: false,
                leg: PositionSide::Net,
                origin: None,
            };
            let _ = taker.place(order).await;
        }
    });
    // The feed dropped once on the way: the recording marks the gap and both readings start
    // every book again there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.exchange().feed().control(Push::DropAll);
    wait_for("fills on paper, and the feed back after its drop", Duration::from_secs(60), || {
        let fills = paper_fills.lock();
        let feed = venue.status().and_then(|s| s.feeds).expect("feed status");
        fills.len() >= 12
            && fills.iter().any(|f| f.liquidity == Liquidity::Maker)
            && feed.reconnects >= 1
            && feed.public_up
    })
    .await;
    takers.await.expect("the taking orders");
    // More of the market after the reconnection, with the quotes resting in it.
    let after_drop = paper_fills.lock().len();
    wait_for("a fill after the reconnection", Duration::from_secs(60), || paper_fills.lock().len() > after_drop).await;
    // Stop the requests first, then the feed: the recording ends after the last of them.
    host.shutdown().await;
    venue.close().await;
    let journal = venue.exchange().journal();
    let live: Vec<FillReport> = paper_fills.lock().clone();
    assert!(journal.iter().any(|p| matches!(p.request, Request::Cancel { .. } | Request::Amend { .. })));

    // The recording, read as a backtest reads a feed file, through a fresh exchange under the
    // `book` model with the same requests at the same points of the stream.
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(recording.path()).expect("the recording").map(|e| e.expect("an entry").path()).collect();
    files.sort();
    assert!(!files.is_empty(), "the paper venue recorded its feed");
    let mut reader: Box<dyn std::io::Read + Send> = Box::new(std::io::empty());
    for file in &files {
        reader = Box::new(std::io::Read::chain(reader, std::fs::File::open(file).expect("a file")));
    }
    let frames = tradebox_data::frames::from_reader(&files[0], reader).skip_stale_books().only(SYMBOLS);
    let specs = venue.instruments();
    let balances: Vec<(String, Decimal)> = settings.balances.iter().map(|(c, a)| (c.clone(), *a)).collect();
    let fees = settings.fees().expect("fees");
    let replay = PaperExchange::new(specs.clone(), &balances, Clock::system(), FillModel::Book, fees, Decimal::ONE);
    let mut replay_events = replay.take_events().expect("events");
    let id = |symbol: &str| specs.iter().find(|s| s.symbol == symbol).map(|s| s.id);
    let mut pending = journal.iter().peekable();
    let mut seen = 0_u64;
    let mut frames = frames;
    for recorded in frames.by_ref() {
        let recorded = recorded.unwrap_or_else(|e| panic!("the recording reads: {e}"));
        let Some(event) = market_event(&id, recorded) else { continue };
        while let Some(p) = pending.next_if(|p| p.after == seen) {
            let _ = replay.apply(p.request.clone()).await;
        }
        replay.on_market(&event);
        seen += 1;
    }
    for p in pending {
        let _ = replay.apply(p.request.clone()).await;
    }
    assert_eq!(frames.gaps(), 1, "the drop is marked in the recording");
    let mut replayed = Vec::new();
    while let Ok(event) = replay_events.try_recv() {
        if let VenueEvent::Fill(fill) = event {
            replayed.push(fill);
        }
    }
    // Times differ (the replay's clock is not the session's); everything else is the same.
    let key = |f: &FillReport| (f.client_id.clone(), f.side, f.price, f.size, f.fee, f.liquidity);
    let live: Vec<_> = live.iter().map(key).collect();
    let replayed: Vec<_> = replayed.iter().map(key).collect();
    assert!(live.len() >= 12);
    assert_eq!(replayed, live, "{} paper fills, {} replayed", live.len(), replayed.len());
}

/// The paper venue with its event stream taken over by the test (to keep the fills it gave).
struct Tap {
    inner: Arc<PaperVenue>,
    events: parking_lot::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<VenueEvent>>>,
}

#[async_trait::async_trait]
impl Venue for Tap {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn instruments(&self) -> Vec<tradebox_core::InstrumentSpec> {
        self.inner.instruments()
    }
    fn take_events(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<VenueEvent>> {
        self.events.lock().take()
    }
    fn clock(&self) -> Clock {
        self.inner.clock()
    }
    async fn place(
        &self,
        order: tradebox_core::NewOrder,
    ) -> Result<tradebox_core::PlaceAck, tradebox_core::VenueError> {
        self.inner.place(order).await
    }
    async fn cancel(
        &self,
        instrument: tradebox_core::InstrumentId,
        client_id: &str,
        origin: Option<&tradebox_core::Origin>,
    ) -> Result<(), tradebox_core::VenueError> {
        self.inner.cancel(instrument, client_id, origin).await
    }
    async fn amend(
        &self,
        instrument: tradebox_core::InstrumentId,
        client_id: &str,
        new_price: Option<Decimal>,
        new_size: Option<Decimal>,
        origin: Option<&tradebox_core::Origin>,
    ) -> Result<(), tradebox_core::VenueError> {
        self.inner.amend(instrument, client_id, new_price, new_size, origin).await
    }
    async fn open_orders(&self) -> Result<Vec<tradebox_core::OrderReport>, tradebox_core::VenueError> {
        self.inner.open_orders().await
    }
    async fn balances(&self) -> Result<Vec<tradebox_core::BalanceReport>, tradebox_core::VenueError> {
        self.inner.balances().await
    }
    async fn positions(&self) -> Result<Vec<tradebox_core::PositionReport>, tradebox_core::VenueError> {
        self.inner.positions().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_staged_on_paper_and_its_promotion_records_both_results() {
    let sim = SimServer::start(SimServerConfig::default()).await.expect("the simulator starts");
    // The host trades on paper too here (an OKX account would need keys); the staging host
    // gets its own paper venue on the same feed, as `[staging]` builds it for either.
    let Paper { venue, host, audit, runtime, dir: _dir } = paper_host(&sim).await;
    let staged_venue = PaperVenue::connect(config(&sim, None)).await.expect("the staging venue starts");
    host.set_staging(Host::start(staged_venue.clone(), runtime).await.expect("the staging host")).expect("staging");

    host.load(market_maker()).expect("the running version loads");
    let by = |h: &Host| h.report().into_iter().find(|r| r.name == "mm");
    // A new version (a wider quote) staged while the running one keeps trading here.
    let mut next = market_maker();
    next.config = r#"{"symbol":"BTC-USDT","spread_bps":3,"requote_bps":1}"#.into();
    let options =
        tradebox::running::lifecycle::LoadOptions { source: None, start_reduce_only: false, by: "test".into() };
    host.stage(next, options).expect("stages");
    let staging = host.staging().expect("a staging host");
    wait_for("the staged version to fill on paper", Duration::from_secs(60), || {
        by(staging).is_some_and(|r| r.fills >= 1) && by(&host).is_some_and(|r| r.fills >= 1)
    })
    .await;
    let promoted = host.promote("mm", "test").expect("promotes");
    assert!(matches!(promoted, tradebox::running::staging::Promoted::Reloaded { .. }), "{promoted:?}");
    assert!(by(staging).is_none(), "the staged instance is gone once promoted");

    audit.sync().expect("sync");
    let text = std::fs::read_to_string(audit.path()).expect("the audit log");
    let promotion = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a record"))
        .find(|r| r["event"] == "plugin_promoted")
        .expect("a promotion record");
    let detail: serde_json::Value =
        serde_json::from_str(promotion["detail"].as_str().expect("its detail")).expect("detail is JSON");
    for side in ["staged", "live"] {
        assert_eq!(detail[side]["venue"], "paper", "{detail}");
        assert!(detail[side]["fills"].as_u64().is_some_and(|n| n >= 1), "{detail}");
        assert!(detail[side]["hash"].as_str().is_some_and(|h| h.len() == 64), "{detail}");
    }
    host.shutdown().await;
    venue.close().await;
    staged_venue.close().await;
}
