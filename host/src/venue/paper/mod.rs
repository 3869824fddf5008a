//! The paper venue (`[venue] kind = "paper"`): the live market, simulated fills, no keys.
//!
//! Market data comes from OKX's public WebSocket feed (or `tradebox sim`'s): `tickers`,
//! `trades` and `books5` (the top five levels, whole in every push: no chain to break and
//! nothing to ask for again) of every configured instrument, from the start, whatever the plugins subscribe to (the router hands
//! each plugin only what it subscribed; one-minute candles are built from the trades, as on the
//! simulated venue). Orders never leave the process: they fill in a [`PaperExchange`], the same
//! exchange a backtest trades on, under its `book` model (a taking order walks the book's
//! levels, a resting one fills at its limit when a trade prints beyond it or the other side's
//! best price reaches it; fees by OKX tier or rate; balances from the config). Everything above
//! the venue is the live host's: the same plugin file, gateway, risk, audit, admin API and board.
//!
//! The feed is decoded line by line by the reader a backtest uses on a recording
//! ([`tradebox_data::frames`]): each frame as received and a `#gap` line where frames went
//! missing, as `tradebox record` writes them (less the receive time, which no event carries);
//! with `record = DIR` they are also written to hourly files ([`crate::record::FeedWriter`]). A
//! backtest of that recording with `--fill book` then meets the same books in the same order
//! (a test places the same orders at the same points of it and gets the same fills).
//!
//! While the feed is down the exchange keeps the last book it saw: the host's quote ages, and
//! risk's quote-age limit is what stops new orders on a stale market.

pub mod exchange;

pub use exchange::{FeeRates, Fees, FillModel, PaperExchange, Placement, Request};

use crate::record::FeedWriter;
use crate::venue::okx::Region;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tradebox_core::{
    BalanceReport, Clock, FeedStatus, InstrumentId, InstrumentSpec, MarketEvent, NewOrder, OrderReport, Origin,
    PlaceAck, PositionReport, Venue, VenueError, VenueEvent, VenueMetric, VenueStatus,
};
use tradebox_data::frames::{Frames, Recorded, RecordedEvent};
use tradebox_okx::ws::lossy::{self, Delivered};
use tradebox_okx::ws::recorded::gap_line;
use tradebox_okx::ws::{ClientConfig, ClientEvent, ConnectGate, WsClient};
use tradebox_okx::{ClockSync, RestClient, RestConfig};

/// The book the exchange walks: OKX's top five levels a side, as a backtest of the recording
/// reads them ([`tradebox_data::frames::BOOK_DEPTH`]). Deeper books (`books`, 400 levels) would
/// need the backtest to read the same depth, and a resubscription whenever their chain breaks.
const BOOK_CHANNEL: &str = "books5";

/// How much of the feed may wait for the venue before frames are dropped (and a gap marked):
/// a few seconds of a busy feed. Far less than a recorder's queue: a paper venue trading on a
/// market seconds old is worse than one that skips ahead.
const QUEUE: lossy::Limits = lossy::Limits { frames: 8_192, bytes: 16 << 20 };

/// How often a falling-behind venue says so, at most.
const LOSS_WARN_EVERY: Duration = Duration::from_secs(10);

/// `[venue.paper]` in the host config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PaperConfig {
    /// The instruments to trade, as OKX names them; their rules (tick, lot, minimum size) are
    /// read from the exchange's public instrument list at start.
    pub instruments: Vec<String>,
    /// Which OKX site's public feed: it names the hosts unless `rest_url`/`ws_url` say
    /// otherwise. Public data needs no key and no account on that site.
    pub region: Region,
    /// REST base URL (the instrument list); empty: the region's. A simulator:
    /// `http://127.0.0.1:PORT`.
    pub rest_url: String,
    /// WebSocket base URL (`/ws/v5/public` is added); empty: the region's live feed (paper
    /// trades the real market, not the demo one). A simulator: `ws://127.0.0.1:PORT`.
    pub ws_url: String,
    /// The account's starting balances by currency (`{ USDT = 10000, BTC = 0.5 }`); every
    /// start begins from these (paper balances are not carried across restarts).
    pub balances: BTreeMap<String, Decimal>,
    /// OKX fee tier (`Lv1`..`Lv5`, `VIP1`..`VIP8`) whose rates are charged; `Lv1` by default.
    pub fee_tier: Option<String>,
    /// One fee rate for makers and takers instead of a tier (0.001 is 0.1%).
    pub fee_rate: Option<Decimal>,
    /// Leverage for swaps and futures (the margin an opening order needs is its notional over
    /// this).
    pub leverage: Decimal,
    /// A directory to record the feed the venue trades on into (`tradebox record`'s hourly
    /// files): a backtest of it replays this session's market.
    pub record: Option<PathBuf>,
    /// How long the instrument list may take, ms.
    pub timeout_ms: u64,
}

impl Default for PaperConfig {
    fn default() -> Self {
        Self {
            instruments: Vec::new(),
            region: Region::Global,
            rest_url: String::new(),
            ws_url: String::new(),
            balances: BTreeMap::from([("USDT".to_string(), Decimal::from(10_000))]),
            fee_tier: None,
            fee_rate: None,
            leverage: Decimal::ONE,
            record: None,
            timeout_ms: 10_000,
        }
    }
}

impl PaperConfig {
    /// The REST base URL to use.
    pub fn rest_base(&self) -> String {
        if self.rest_url.is_empty() { self.region.rest_url().into() } else { self.rest_url.clone() }
    }

    /// The WebSocket base URL to use (`ws_url` may be given as `tradebox record --url` takes
    /// it, ending in `/ws/v5/public`: the base is the same).
    pub fn ws_base(&self) -> String {
        if self.ws_url.is_empty() {
            return self.region.ws_url(false).into();
        }
        let url = self.ws_url.trim_end_matches('/');
        url.strip_suffix("/ws/v5/public").unwrap_or(url).to_string()
    }

    /// The fees charged.
    pub fn fees(&self) -> Result<Fees, String> {
        match (&self.fee_tier, self.fee_rate) {
            (Some(_), Some(_)) => Err("set fee_tier or fee_rate, not both".into()),
            (None, Some(rate)) if rate < Decimal::new(-1, 3) || rate > Decimal::new(1, 2) => Err(format!(
                "fee_rate {rate} is not from -0.001 to 0.01: a fraction of the notional (0.001 is 0.1%; negative is a \
                 rebate)"
            )),
            (None, Some(rate)) => Ok(Fees::flat(rate)),
            (tier, None) => Fees::tier(tier.as_deref().unwrap_or("Lv1")),
        }
    }

    /// Refuses settings that cannot work, before anything connects.
    pub fn check(&self) -> Result<(), String> {
        if self.instruments.is_empty() {
            return Err("instruments is empty: name the instruments to trade".into());
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = self.instruments.iter().find(|s| !seen.insert(s.as_str())) {
            return Err(format!("instruments names {twice} twice"));
        }
        // No secret crosses these, but the market does: a forged feed would make paper fills,
        // and the staged results promotions are judged on, whatever it likes.
        let risk = "the market data could be changed on the way, and paper fills (and staged results) made of it";
        crate::venue::okx::secure_url("rest_url", &self.rest_base(), "https", risk)?;
        crate::venue::okx::secure_url("ws_url", &self.ws_base(), "wss", risk)?;
        self.fees()?;
        if self.leverage < Decimal::ONE || self.leverage > Decimal::from(125) {
            return Err(format!("leverage {} is not from 1 to 125", self.leverage));
        }
        for (currency, amount) in &self.balances {
            if currency.is_empty() || !currency.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                return Err(format!("balances.{currency}: currencies are named as OKX names them (USDT, BTC)"));
            }
            if amount.is_sign_negative() || *amount > Decimal::from(1_000_000_000_000_000_i64) {
                return Err(format!("balances.{currency} = {amount}: a starting balance is from 0 to 10^15"));
            }
        }
        Ok(())
    }
}

/// Why the paper venue could not start.
#[derive(Debug, thiserror::Error)]
pub enum PaperError {
    /// A setting that cannot work.
    #[error("[venue.paper] {0}")]
    Config(String),
    /// The instrument list could not be read.
    #[error("reading the instrument list from {url}: {message}")]
    Instruments {
        /// Where from.
        url: String,
        /// Why.
        message: String,
    },
    /// An instrument is not listed, or its rules cannot be used.
    #[error("instrument {symbol}: {problem}")]
    Instrument {
        /// OKX's name.
        symbol: String,
        /// Why.
        problem: String,
    },
    /// The recording directory could not be opened.
    #[error("[venue.paper] {0}")]
    Record(String),
}

/// Counters of the feed, for status and `/metrics`.
#[derive(Debug, Default)]
struct FeedStats {
    up: AtomicBool,
    frames: AtomicU64,
    unreadable: AtomicU64,
    reconnects: AtomicU64,
    /// Book pushes that did not continue their book (each waits for the next snapshot).
    book_problems: AtomicU64,
    /// Frames dropped because the venue fell behind its feed.
    dropped: AtomicU64,
}

/// The venue (see the module's documentation).
pub struct PaperVenue {
    exchange: Arc<PaperExchange>,
    stats: Arc<FeedStats>,
    feed: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: Arc<tokio::sync::Notify>,
}

impl PaperVenue {
    /// Reads the instruments' rules, opens the public feed and starts trading on it. Returns
    /// once the rules are read; the feed connects (and reconnects) on its own.
    pub async fn connect(config: PaperConfig) -> Result<Arc<Self>, PaperError> {
        config.check().map_err(PaperError::Config)?;
        let fees = config.fees().map_err(PaperError::Config)?;
        let specs = load_instruments(&config).await?;
        let balances: Vec<(String, Decimal)> = config.balances.iter().map(|(c, a)| (c.clone(), *a)).collect();
        let exchange =
            PaperExchange::new(specs.clone(), &balances, Clock::system(), FillModel::Book, fees, config.leverage)
                .for_paper();
        let writer = match &config.record {
            Some(dir) => {
                writable(dir).map_err(PaperError::Record)?;
                let writer = FeedWriter::new(dir).map_err(|e| {
                    PaperError::Record(format!("record = {:?}: cannot create the directory ({e})", dir.display()))
                })?;
                Some(writer)
            }
            None => None,
        };
        let exchange = Arc::new(exchange);
        let stats = Arc::new(FeedStats::default());
        let stop = Arc::new(tokio::sync::Notify::new());
        let feed = Feed {
            exchange: exchange.clone(),
            stats: stats.clone(),
            by_symbol: specs.iter().map(|s| (s.symbol.clone(), s.id)).collect(),
            frames: tradebox_data::frames::live("the paper venue's feed")
                .skip_stale_books()
                .only(config.instruments.iter().cloned()),
            writer,
        };
        let url = format!("{}/ws/v5/public", config.ws_base().trim_end_matches('/'));
        let args: Vec<serde_json::Value> = config
            .instruments
            .iter()
            .flat_map(|symbol| {
                ["tickers", "trades", BOOK_CHANNEL]
                    .map(|channel| serde_json::json!({ "channel": channel, "instId": symbol }))
            })
            .collect();
        let task = tokio::spawn(feed.run(url, args, stop.clone()));
        tracing::info!(
            instruments = %config.instruments.join(","),
            feed = %config.ws_base(),
            book = BOOK_CHANNEL,
            "paper venue: the live market, fills simulated in-process"
        );
        Ok(Arc::new(Self { exchange, stats, feed: parking_lot::Mutex::new(Some(task)), stop }))
    }

    /// The exchange the venue fills orders on (its journal, for replays and tests).
    pub fn exchange(&self) -> &Arc<PaperExchange> {
        &self.exchange
    }

    /// Stops the feed and finishes the recording, if any (the file is then complete). The
    /// venue still answers, on a market that no longer moves.
    pub async fn close(&self) {
        self.stop.notify_one();
        let task = self.feed.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for PaperVenue {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// Whether the feed can be recorded in `dir` (created when missing): a file written there and
/// removed. Files open at the first frame, so a directory that cannot be written is better told
/// at start (and by `tradebox doctor`) than after the host began trading.
pub fn writable(dir: &std::path::Path) -> Result<(), String> {
    let probe = dir.join(".tradebox-write-test");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("record = {:?}: cannot write there ({e})", dir.display()))
}

/// Reads the configured instruments' rules from the public instrument list (also what
/// `tradebox doctor` checks).
pub async fn load_instruments(config: &PaperConfig) -> Result<Vec<InstrumentSpec>, PaperError> {
    let url = config.rest_base();
    let rest_config = RestConfig {
        base_url: url.clone(),
        demo: false,
        timeout: Duration::from_millis(config.timeout_ms.max(100)),
        tls: Default::default(),
    };
    let failed = |message: String| PaperError::Instruments { url: url.clone(), message };
    let rest = RestClient::new(rest_config, None, Arc::new(ClockSync::new())).map_err(|e| failed(e.to_string()))?;
    let mut listed: BTreeMap<&'static str, Vec<tradebox_okx::model::Instrument>> = BTreeMap::new();
    let mut specs = Vec::with_capacity(config.instruments.len());
    for (i, symbol) in config.instruments.iter().enumerate() {
        let inst_type = crate::venue::okx::inst_type(symbol);
        if !listed.contains_key(inst_type) {
            let all = rest.instruments(inst_type).await.map_err(|e| failed(e.to_string()))?;
            listed.insert(inst_type, all);
        }
        let found = listed.get(inst_type).and_then(|all| all.iter().find(|x| &x.inst_id == symbol));
        let instrument = found.ok_or_else(|| PaperError::Instrument {
            symbol: symbol.clone(),
            problem: format!("not listed by the exchange among {inst_type} instruments"),
        })?;
        let spec = crate::venue::okx::convert::spec(i as InstrumentId + 1, instrument)
            .map_err(|problem| PaperError::Instrument { symbol: symbol.clone(), problem })?;
        specs.push(spec);
    }
    Ok(specs)
}

/// A recorded (or live) feed's event as the host's market event, for an instrument of the run;
/// `None` for any other. The one conversion the paper venue and a backtest share.
pub fn market_event(by_symbol: &impl Fn(&str) -> Option<InstrumentId>, r: Recorded) -> Option<MarketEvent> {
    let instrument = by_symbol(&r.symbol)?;
    let ts_ms = r.ts_ms;
    Some(match r.event {
        RecordedEvent::Ticker { bid, bid_size, ask, ask_size, last } => {
            MarketEvent::Ticker { instrument, ts_ms, bid, bid_size, ask, ask_size, last }
        }
        RecordedEvent::Trade { price, size, taker_side } => {
            MarketEvent::Trade { instrument, ts_ms, price, size, taker_side }
        }
        RecordedEvent::Book { bids, asks } => MarketEvent::Book { instrument, ts_ms, bids, asks },
        RecordedEvent::Candle(bar, confirmed) => {
            let ohlcv = [bar.open, bar.high, bar.low, bar.close, bar.volume];
            MarketEvent::Candle { instrument, ts_ms: bar.ts_ms, ohlcv, confirmed }
        }
    })
}

/// The task that reads the public feed into the exchange.
struct Feed {
    exchange: Arc<PaperExchange>,
    stats: Arc<FeedStats>,
    by_symbol: BTreeMap<String, InstrumentId>,
    frames: Frames,
    writer: Option<FeedWriter>,
}

impl Feed {
    async fn run(mut self, url: String, args: Vec<serde_json::Value>, stop: Arc<tokio::sync::Notify>) {
        let mut config = ClientConfig::new(url, Arc::new(ConnectGate::default()));
        config.raw = true;
        // Bounded: a venue that falls behind its feed drops frames and marks a gap there
        // (books start again at their next snapshot), rather than growing without bound.
        let (tx, mut rx) = lossy::channel(QUEUE);
        let client = WsClient::spawn(config, tx);
        for arg in &args {
            client.subscribe(arg);
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut bad_logged = false;
        let mut last_loss_warned = None;
        loop {
            let event = tokio::select! {
                biased;
                () = stop.notified() => break,
                _ = tick.tick() => {
                    let now = tradebox_core::system_ms();
                    // `books5` is whole in every push: a new hourly file needs no fresh snapshot.
                    self.write(|w| w.tick(now));
                    continue;
                }
                event = rx.recv() => match event {
                    Some(Delivered::Event(event)) => event,
                    Some(Delivered::Lost { frames, bytes }) => {
                        let now = tradebox_core::system_ms();
                        let reason = format!("the paper venue fell behind: {frames} frames dropped ({bytes} bytes)");
                        self.stats.dropped.fetch_add(frames, Ordering::Relaxed);
                        if last_loss_warned.is_none_or(|at: std::time::Instant| at.elapsed() >= LOSS_WARN_EVERY) {
                            last_loss_warned = Some(std::time::Instant::now());
                            let total = self.stats.dropped.load(Ordering::Relaxed);
                            tracing::warn!(dropped_in_all = total, "paper venue: {reason}; a gap is marked there");
                        }
                        self.write(|w| w.gap(now, "public", &reason));
                        self.take(&gap_line(now, "public", &reason), &mut bad_logged);
                        continue;
                    }
                    None => break,
                },
            };
            let now = tradebox_core::system_ms();
            let line = match event {
                ClientEvent::Raw(text) => {
                    self.stats.frames.fetch_add(1, Ordering::Relaxed);
                    self.write(|w| w.frame(now, &text));
                    // The frame alone: its receive time (the recording's prefix) is not read
                    // into the events, so writing it only for the decoder to split it off again
                    // would cost a copy of every frame.
                    text
                }
                ClientEvent::Connected => {
                    tracing::info!("paper venue: market feed connected");
                    self.stats.up.store(true, Ordering::Relaxed);
                    continue;
                }
                ClientEvent::Disconnected { reason } => {
                    if !self.stats.up.swap(false, Ordering::Relaxed) {
                        continue;
                    }
                    tracing::warn!(%reason, "paper venue: market feed lost; reconnecting (the exchange keeps the last book)");
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    self.write(|w| w.gap(now, "public", &reason));
                    gap_line(now, "public", &reason)
                }
                ClientEvent::Frame(_) | ClientEvent::Bad { .. } | ClientEvent::LoginRefused { .. } => continue,
            };
            self.take(&line, &mut bad_logged);
        }
        drop(client);
        if let Some(writer) = self.writer.take()
            && let Err(e) = writer.close()
        {
            tracing::warn!(error = %e, "paper venue: the recording could not be finished");
        }
    }

    /// Decodes one line and hands its events to the exchange (which publishes them).
    fn take(&mut self, line: &str, bad_logged: &mut bool) {
        if let Err(e) = self.frames.push_line(line) {
            self.stats.unreadable.fetch_add(1, Ordering::Relaxed);
            if !std::mem::replace(bad_logged, true) {
                tracing::warn!(error = %e, "paper venue: a frame could not be read (skipped; later ones are counted, not logged)");
            }
        }
        self.stats.book_problems.store(self.frames.book_problems(), Ordering::Relaxed);
        let Feed { exchange, by_symbol, frames, .. } = self;
        let by_symbol = |s: &str| by_symbol.get(s).copied();
        for recorded in frames.take_ready() {
            if let Some(event) = market_event(&by_symbol, recorded) {
                exchange.publish(event);
            }
        }
    }

    /// Writes to the recording; a failure stops the recording (trading goes on) and says so once.
    fn write(&mut self, f: impl FnOnce(&mut FeedWriter) -> Result<(), crate::record::RecordError>) {
        if let Some(writer) = self.writer.as_mut()
            && let Err(e) = f(writer)
        {
            tracing::error!(error = %e, "paper venue: recording the feed failed; recording stops, trading goes on");
            self.writer = None;
        }
    }
}

#[async_trait::async_trait]
impl Venue for PaperVenue {
    fn name(&self) -> &str {
        "paper"
    }

    fn instruments(&self) -> Vec<InstrumentSpec> {
        self.exchange.instruments()
    }

    fn status(&self) -> Option<VenueStatus> {
        let s = &self.stats;
        let up = s.up.load(Ordering::Relaxed);
        Some(VenueStatus {
            rate_limits: None,
            auth_failures: None,
            feeds: Some(FeedStatus {
                public_up: up,
                // No private feed: orders, fills and balances are the venue's own, never late.
                private_up: None,
                frames: s.frames.load(Ordering::Relaxed),
                unreadable: s.unreadable.load(Ordering::Relaxed),
                book_gaps: s.book_problems.load(Ordering::Relaxed),
                checksum_mismatches: 0,
                reconnects: s.reconnects.load(Ordering::Relaxed),
            }),
        })
    }

    fn metrics(&self) -> Vec<VenueMetric> {
        let s = &self.stats;
        let metric = |name, help, counter, value: u64| VenueMetric { name, help, counter, value: value as f64 };
        vec![
            metric(
                "tradebox_paper_feed_up",
                "The paper venue's market feed is connected.",
                false,
                u64::from(s.up.load(Ordering::Relaxed)),
            ),
            metric(
                "tradebox_paper_feed_frames",
                "Frames the paper venue's feed received.",
                true,
                s.frames.load(Ordering::Relaxed),
            ),
            metric(
                "tradebox_paper_feed_unreadable",
                "Frames of the paper venue's feed that could not be read.",
                true,
                s.unreadable.load(Ordering::Relaxed),
            ),
            metric(
                "tradebox_paper_feed_reconnects",
                "Times the paper venue's feed was lost and reconnected.",
                true,
                s.reconnects.load(Ordering::Relaxed),
            ),
        ]
    }

    fn candles_from_trades(&self) -> bool {
        true
    }

    fn clock(&self) -> Clock {
        self.exchange.clock()
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<VenueEvent>> {
        self.exchange.take_events()
    }

    async fn place(&self, order: NewOrder) -> Result<PlaceAck, VenueError> {
        self.exchange.place(order).await
    }

    async fn cancel(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        self.exchange.cancel(instrument, client_id, origin).await
    }

    async fn amend(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        new_price: Option<Decimal>,
        new_size: Option<Decimal>,
        origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        self.exchange.amend(instrument, client_id, new_price, new_size, origin).await
    }

    async fn open_orders(&self) -> Result<Vec<OrderReport>, VenueError> {
        self.exchange.open_orders().await
    }

    async fn balances(&self) -> Result<Vec<BalanceReport>, VenueError> {
        self.exchange.balances().await
    }

    async fn positions(&self) -> Result<Vec<PositionReport>, VenueError> {
        self.exchange.positions().await
    }
}
