//! The backtest driver: bars in time order, in virtual time, through the live engine.
//!
//! What is live here: the hub (grants, the gateway's normalisation, client order ids, risk
//! windows and checks, the tracker, positions and PnL), the router (venue events to plugins,
//! quotes), the sender's checks (`router::send_queued`), admission of each plugin against its
//! grant, the plugin's store with its memory cap, and the WIT conversions. What differs: time is
//! virtual and moved by this driver, a plugin's calls are bounded by fuel instead of CPU
//! deadlines (the same input stops at the same instruction), the driver calls the plugin's
//! instance itself on one thread (no actor thread, no CPU share), and the venue is a
//! [`PaperExchange`]. Nothing is random and nothing depends on the machine's clock, so the same
//! inputs give the same trades, curves and figures, byte for byte.
//!
//! # One step
//!
//! For each open time `t` in the data (bars of every instrument at `t` together):
//! 1. the clock moves to `t`; each bar opens at the exchange (orders waiting for it arrive,
//!    resting ones fill if it trades through them) and what happened is routed;
//! 2. the clock moves to the bars' close (`t` + the file's bar length: a bar is known when it
//!    has closed); each instrument's quote becomes the close (a ticker with bid = ask = last =
//!    close, sizes 0, to plugins subscribed to tickers) and the closed candle goes to plugins
//!    subscribed to candles;
//! 3. each plugin gets what is in its inbox, with its timers due by then, in one call; the
//!    orders it placed go to the exchange (under `close` they fill at once), and the reports go
//!    back to the inboxes; this repeats (at most [`ROUNDS`] times) until no inbox has anything;
//! 4. equity is booked at the close.

use super::ledger::{CurveStats, Ledger, Thinned};
use super::results::{FileInput, Inputs, PluginInput, PluginReport, Point, PriceSeries, RunReport, Stats};
use crate::engine::router::{self, Router};
use crate::engine::{Grants, Hub, Lanes, Permissions, PluginEvent, PluginSlot};
use crate::plugin::bindings::{self as b, wit};
use crate::plugin::host_api::{Counters, PluginState};
use crate::plugin::instance::Instance;
use crate::plugin::runtime::{Compiled, Mode};
use crate::plugin::{Fault, Limits};
use crate::risk::{AccountLimits, RiskLimits};
use crate::venue::paper::exchange::{Fees, FillModel, PaperExchange, Range};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tradebox_core::{Clock, InstrumentId, InstrumentKind, InstrumentSpec, MarketEvent, VenueEvent};
use tradebox_data::{Bar, DataError};

/// How many times one step hands plugins what their own orders caused before moving on (an
/// order answered by an order answered by an order...). What is left waits for the next step.
pub const ROUNDS: usize = 8;

/// Fuel a call may spend per millisecond of its live CPU deadline.
pub const FUEL_PER_MS: u64 = 2_000_000;

/// Bars between two progress reports.
const PROGRESS_EVERY: u64 = 1 << 16;

/// One data file and the instrument it is for.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// The file.
    pub path: PathBuf,
    /// Its instrument's symbol.
    pub symbol: String,
    /// Its bars already read (a sweep reads a file once for all its runs); `None` streams the
    /// file as the run goes (memory flat in its length).
    pub loaded: Option<Loaded>,
}

/// What a data file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// Candles: replayed bar by bar (`next-open`, `close`).
    Candles,
    /// Public trades: replayed trade by trade (`book`).
    Trades,
    /// A recorded WebSocket feed: tickers, trades, books and candles, frame by frame (`book`).
    Feed,
}

impl DataKind {
    /// Tells a file's kind from its first bytes: Parquet and CSV with an OHLC header are
    /// candles, CSV with a price column is trades; JSON whose first line is a WebSocket frame
    /// (`arg` or `event`) is a feed, an OKX body whose rows are objects is trades, one whose
    /// rows are arrays is candles.
    pub fn detect(path: &std::path::Path) -> Result<Self, DataError> {
        use std::io::Read;
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return Err(DataError::file(path, "not a file (a data file is a regular file)"));
        }
        let file = std::fs::File::open(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
        // The first MiB: a recorded book snapshot's line runs to tens of kilobytes, and a JSON
        // body may be spread over many lines.
        let mut head = Vec::new();
        file.take(1 << 20).read_to_end(&mut head).map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
        if head.starts_with(b"PAR1") {
            return Ok(DataKind::Candles);
        }
        if head.is_empty() {
            return Err(DataError::file(path, "the file is empty (a recording that never received a frame?)"));
        }
        if head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            // zstd: what `tradebox record` (and the paper venue) write. Its first line says.
            let mut first = String::new();
            let mut text = tradebox_data::frames::text(path)?;
            std::io::BufRead::read_line(&mut text, &mut first)
                .map_err(|e| tradebox_data::frames::read_error(path, 1, &e))?;
            head = first.into_bytes();
        }
        let text = String::from_utf8_lossy(&head);
        let text = text.trim_start();
        let first = text.lines().next().unwrap_or_default();
        // A recorder's line: a receive time before the frame, or a `#gap`/`#continues` mark.
        use tradebox_okx::ws::recorded::{Line, split};
        match split(first) {
            Line::Frame { received_ms: Some(_), text } if text.starts_with('{') => return Ok(DataKind::Feed),
            Line::Gap { .. } | Line::Continues { .. } => return Ok(DataKind::Feed),
            _ => {}
        }
        if text.starts_with('{') {
            if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(first) {
                if map.contains_key("arg") || map.contains_key("event") {
                    return Ok(DataKind::Feed);
                }
                if map.get("data").and_then(|d| d.as_array()).and_then(|d| d.first()).is_some_and(|r| r.is_object()) {
                    return Ok(DataKind::Trades);
                }
            }
            // A body longer than the bytes read: the shape of its first row says.
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            if compact.contains("\"data\":[{") {
                return Ok(DataKind::Trades);
            }
            return Ok(DataKind::Candles);
        }
        let header = first.to_ascii_lowercase();
        if header.split(',').any(|h| h.trim() == "price" || h.trim() == "px") {
            return Ok(DataKind::Trades);
        }
        Ok(DataKind::Candles)
    }
}

/// A data file read into memory, with its hash.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The bars, oldest first, checked.
    pub bars: Arc<[Bar]>,
    /// sha256 of the file.
    pub sha256: String,
}

impl DataFile {
    /// Reads the whole file now (checked as a stream would be).
    pub fn load(&mut self) -> Result<(), DataError> {
        let bars = tradebox_data::candles::open(&self.path)?.collect::<Result<Vec<_>, _>>()?;
        self.loaded = Some(Loaded { bars: bars.into(), sha256: file_sha256(&self.path)? });
        Ok(())
    }
}

/// Where a stream's bars come from.
enum Source {
    File(tradebox_data::Candles),
    Memory(Arc<[Bar]>, usize),
}

impl Source {
    fn next(&mut self) -> Option<Result<Bar, DataError>> {
        match self {
            Source::File(candles) => candles.next(),
            Source::Memory(bars, i) => {
                let bar = bars.get(*i).copied();
                *i += 1;
                bar.map(Ok)
            }
        }
    }
}

/// A plugin to run.
#[derive(Clone)]
pub struct PluginPlan {
    /// Its name in the run (unique).
    pub name: String,
    /// Where its file came from (shown in the report).
    pub path: String,
    /// The component, compiled once (a sweep instantiates it once per run).
    pub compiled: Compiled,
    /// The config `init` gets before the manifest's defaults (JSON).
    pub config: String,
    /// What it may touch.
    pub grants: Grants,
    /// Its pre-trade limits.
    pub risk: RiskLimits,
    /// Memory cap, fuel per call, batch size.
    pub limits: Limits,
}

/// Everything a run needs besides the plugins.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The instruments traded, ids 1..=n.
    pub instruments: Vec<InstrumentSpec>,
    /// Candle files, one per instrument (several instruments replay merged in time).
    pub data: Vec<DataFile>,
    /// Replay from this open time (ms, inclusive).
    pub from_ms: Option<i64>,
    /// Replay up to this open time (ms, exclusive).
    pub to_ms: Option<i64>,
    /// How orders meet the bars.
    pub fill: FillModel,
    /// Fee rates.
    pub fees: Fees,
    /// Leverage of derivative positions (margin = notional / leverage).
    pub leverage: Decimal,
    /// Starting balances.
    pub balances: Vec<(String, Decimal)>,
    /// The account's limits.
    pub account: AccountLimits,
    /// Write the per-bar equity CSV here (and nothing else: the caller renders the rest).
    pub equity_dir: Option<PathBuf>,
    /// Swap funding times and rates, oldest first (see [`super::funding`]).
    pub funding: Vec<super::funding::Funding>,
}

/// Why a run could not be done. A plugin that traps or refuses to start is not one: the run
/// carries on without it and its report says why.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// A data file is unreadable or wrong.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The plan does not hold together.
    #[error("{0}")]
    Plan(String),
    /// A plugin was not admitted (its request against its grant, its config).
    #[error(transparent)]
    Admission(#[from] crate::plugin::admission::AdmissionError),
    /// Writing the equity file failed.
    #[error(transparent)]
    Write(#[from] super::report::ReportError),
}

/// Progress of a run: bars done so far, and the open time reached.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Bars replayed.
    pub bars: u64,
    /// The open time of the last one, ms.
    pub ts_ms: i64,
}

/// A stream of one file's bars, one read ahead.
struct Stream {
    instrument: InstrumentId,
    bars: Source,
    next: Option<Bar>,
    /// The bar length: the smallest spacing of open times seen so far (a gap in the data is
    /// not a longer bar), 0 until a second bar is seen.
    bar_ms: i64,
}

impl Stream {
    fn advance(&mut self) -> Result<Option<Bar>, DataError> {
        let current = self.next.take();
        self.next = self.bars.next().transpose()?;
        if let (Some(a), Some(b)) = (current, self.next) {
            let spacing = b.ts_ms.saturating_sub(a.ts_ms);
            if spacing > 0 && (self.bar_ms == 0 || spacing < self.bar_ms) {
                self.bar_ms = spacing;
            }
        }
        Ok(current)
    }
}

/// Where a tick stream's events come from.
enum TickSource {
    Trades(tradebox_data::trades::Trades, InstrumentId),
    Feed(tradebox_data::frames::Frames),
}

/// A stream of one file's market events, one read ahead, in the file's order (a time earlier
/// than the one before it is read as that one: the file's order is the order received).
struct TickStream {
    source: TickSource,
    next: Option<(i64, MarketEvent)>,
    last_ts: i64,
    /// Events of instruments not in the run, passed over.
    skipped: u64,
}

impl TickStream {
    fn advance(&mut self, instruments: &[InstrumentSpec]) -> Result<Option<(i64, MarketEvent)>, DataError> {
        let current = self.next.take();
        self.next = loop {
            let item = match &mut self.source {
                TickSource::Trades(trades, instrument) => trades.next().transpose()?.map(|t| {
                    let event = MarketEvent::Trade {
                        instrument: *instrument,
                        ts_ms: t.ts_ms,
                        price: t.price,
                        size: t.size,
                        taker_side: t.taker_side,
                    };
                    Some((t.ts_ms, event))
                }),
                TickSource::Feed(frames) => frames.next().transpose()?.map(|r| {
                    // The paper venue's own conversion: a replay of its recording meets what it met.
                    let id = |symbol: &str| instruments.iter().find(|s| s.symbol == symbol).map(|s| s.id);
                    let ts_ms = r.ts_ms;
                    crate::venue::paper::market_event(&id, r).map(|event| (ts_ms, event))
                }),
            };
            match item {
                None => break None,
                Some(None) => self.skipped += 1,
                Some(Some((ts, event))) => {
                    self.last_ts = self.last_ts.max(ts);
                    break Some((self.last_ts, event));
                }
            }
        };
        Ok(current)
    }
}

/// A plugin while it runs.
struct Runner {
    name: String,
    slot: Arc<PluginSlot>,
    instance: Option<Instance>,
    fault: Option<String>,
    ledger: Ledger,
    batch: Vec<PluginEvent>,
    /// The same events in WIT form; kept between calls so that a step allocates nothing.
    delivery: Vec<wit::Event>,
    max_batch: usize,
    events: u64,
    input: PluginInput,
}

impl Runner {
    /// Hands the plugin its inbox and due timers in one call; whether there was anything.
    fn deliver(&mut self, hub: &Hub) -> bool {
        let Some(instance) = self.instance.as_mut() else {
            // A stopped plugin's inbox is emptied so that nothing piles up.
            self.batch.clear();
            self.slot.mailbox.drain_into(usize::MAX, &mut self.batch);
            self.batch.clear();
            return false;
        };
        self.slot.mailbox.drain_into(self.max_batch, &mut self.batch);
        let clock = hub.clock();
        let due = instance.state().timers.next_due().is_some_and(|d| d <= clock.moment());
        if self.batch.is_empty() && !due {
            return false;
        }
        let events = &mut self.delivery;
        events.clear();
        events.extend(self.batch.drain(..).map(b::event));
        if due {
            for id in instance.state_mut().timers.take_due(clock.moment()) {
                events.push(wit::Event::Timer(wit::TimerFired { id, ts: clock.now_ms() }));
            }
        }
        self.events += events.len() as u64;
        let tickers = events.iter().filter(|e| matches!(e, wit::Event::Ticker(_))).count();
        let result = if tickers < b::COLUMN_RUN_MIN {
            instance.on_events(events)
        } else {
            b::deliveries(std::mem::take(events)).iter().try_for_each(|d| instance.deliver(d))
        };
        if let Err(fault) = result {
            self.stop(hub, &fault);
        }
        true
    }

    /// The plugin faulted: it stops here (a backtest does not restart it: the run would no
    /// longer say what the strategy does), its open orders are cancelled, its positions stay.
    fn stop(&mut self, hub: &Hub, fault: &Fault) {
        tracing::warn!(plugin = %self.name, %fault, "plugin stopped in the backtest");
        self.fault = Some(format!("at {}: {fault}", crate::download::show_time(hub.clock().now_ms())));
        self.instance = None;
        hub.cancel_all_for_host(self.slot.id, None);
    }
}

/// sha256 of a file, hex.
pub fn file_sha256(path: &std::path::Path) -> Result<String, DataError> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0_u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Runs `plugins` over `plan`'s data; `progress` hears how far it got every 65,536 bars.
pub fn run(
    plan: &Plan,
    plugins: &[PluginPlan],
    progress: &mut dyn FnMut(Progress),
) -> Result<RunReport, BacktestError> {
    if plugins.is_empty() {
        return Err(BacktestError::Plan("no plugin to run".into()));
    }
    let mut streams = Vec::with_capacity(plan.data.len());
    let mut ticks: Vec<TickStream> = Vec::new();
    let mut files = Vec::with_capacity(plan.data.len());
    let mut trades_only = false;
    for data in &plan.data {
        let kind = if data.loaded.is_some() { DataKind::Candles } else { DataKind::detect(&data.path)? };
        let spec = plan.instruments.iter().find(|s| s.symbol == data.symbol);
        let spec = match (spec, kind) {
            (Some(spec), _) => Some(spec),
            (None, DataKind::Feed) => None,
            (None, _) => {
                return Err(BacktestError::Plan(format!(
                    "{}: instrument {} is not among the run's instruments",
                    data.path.display(),
                    data.symbol
                )));
            }
        };
        let wanted = if kind == DataKind::Candles { "next-open or close" } else { "book" };
        if (kind == DataKind::Candles) == (plan.fill == FillModel::Book) {
            return Err(BacktestError::Plan(format!(
                "{}: {} replay with the {wanted} fill model, not {}",
                data.path.display(),
                if kind == DataKind::Candles { "candles" } else { "trades and recorded feeds (tick data)" },
                plan.fill
            )));
        }
        let sha256 = match &data.loaded {
            Some(loaded) => loaded.sha256.clone(),
            None => file_sha256(&data.path)?,
        };
        files.push(FileInput { path: data.path.display().to_string(), sha256 });
        let source = match (kind, spec) {
            (DataKind::Candles, Some(spec)) => {
                let bars = match &data.loaded {
                    Some(loaded) => Source::Memory(loaded.bars.clone(), 0),
                    None => Source::File(tradebox_data::candles::open(&data.path)?),
                };
                let mut stream = Stream { instrument: spec.id, bars, next: None, bar_ms: 0 };
                // Skip what is before `from`; the first bar kept is read ahead.
                loop {
                    stream.advance()?;
                    match stream.next {
                        Some(bar) if plan.from_ms.is_some_and(|from| bar.ts_ms < from) => continue,
                        _ => break,
                    }
                }
                streams.push(stream);
                continue;
            }
            (DataKind::Trades, Some(spec)) => {
                trades_only = true;
                TickSource::Trades(tradebox_data::trades::open(&data.path)?, spec.id)
            }
            // Only the run's instruments: a feed recorded for many builds no book for the rest.
            _ => TickSource::Feed(
                tradebox_data::frames::open(&data.path)?
                    .skip_stale_books()
                    .only(plan.instruments.iter().map(|s| s.symbol.clone())),
            ),
        };
        let mut stream = TickStream { source, next: None, last_ts: i64::MIN, skipped: 0 };
        loop {
            stream.advance(&plan.instruments)?;
            match &stream.next {
                Some((ts, _)) if plan.from_ms.is_some_and(|from| *ts < from) => continue,
                _ => break,
            }
        }
        ticks.push(stream);
    }
    let first_bar = streams.iter().filter_map(|s| s.next.map(|b| b.ts_ms)).min();
    let first_tick = ticks.iter().filter_map(|s| s.next.as_ref().map(|n| n.0)).min();
    let Some(first) = first_bar.into_iter().chain(first_tick).min() else {
        return Err(BacktestError::Plan("the data has nothing in the range asked for".into()));
    };
    let (clock, time) = Clock::virtual_at(first);
    let exchange = Arc::new(PaperExchange::new(
        plan.instruments.clone(),
        &plan.balances,
        clock.clone(),
        plan.fill,
        plan.fees.clone(),
        plan.leverage,
    ));
    let Some(mut venue_events) = tradebox_core::Venue::take_events(exchange.as_ref()) else {
        return Err(BacktestError::Plan("the exchange's events were taken".into()));
    };
    let (hub, mut lanes) = Hub::with_clock(plan.instruments.clone(), clock.clone());
    hub.set_account_limits(plan.account.clone(), "backtest").map_err(|e| BacktestError::Plan(e.to_string()))?;
    for balance in exchange.balance_reports() {
        hub.seed_balance(balance);
    }
    let specs: Vec<(f64, String)> = plan
        .instruments
        .iter()
        .map(|s| {
            let multiplier =
                if s.kind == InstrumentKind::Spot { 1.0 } else { s.contract_value.to_f64().unwrap_or(1.0) };
            (multiplier, s.symbol.clone())
        })
        .collect();
    // Plugins following one-minute candles get them built from the trades when the data has
    // nothing else (a trades file; a recorded feed brings its own candles, if it has any).
    let mut router = Router::new(trades_only);
    let mut runners = Vec::with_capacity(plugins.len());
    for plugin in plugins {
        runners.push(start(&hub, plugin)?);
        pump(&hub, exchange.as_ref(), &mut lanes, &mut router, &mut venue_events, &mut runners, &specs);
    }
    let names: Vec<String> = runners.iter().map(|r| r.name.clone()).collect();
    let equity_file =
        plan.equity_dir.as_deref().map(|dir| super::report::EquityWriter::create(dir, &names)).transpose()?;
    let mut tally = Tally {
        marks: vec![0.0_f64; plan.instruments.len() + 1],
        prices: vec![Thinned::default(); plan.instruments.len() + 1],
        start_value: None,
        total_curve: CurveStats::default(),
        total_equity: Thinned::default(),
        each: vec![0.0; runners.len()],
        equity_file,
    };
    let watch_losses = plugins.iter().any(|p| p.risk.max_daily_loss > 0.0 || p.risk.max_drawdown > 0.0)
        || plan.account.max_daily_loss > 0.0
        || plan.account.max_drawdown > 0.0;
    let bar_ms = |streams: &[Stream]| streams.iter().map(|s| s.bar_ms).find(|ms| *ms > 0).unwrap_or(60_000);
    let mut next_funding = plan.funding.partition_point(|f| f.ts_ms < first);
    let started = Instant::now();
    let mut bars = 0_u64;
    let mut step: Vec<(InstrumentId, Bar, i64)> = Vec::with_capacity(streams.len());
    loop {
        // The next open time of a bar and the next tick's time; bars at a time go first.
        let t_bar = streams.iter().filter_map(|s| s.next.map(|b| b.ts_ms)).min();
        let t_tick = ticks.iter().filter_map(|s| s.next.as_ref().map(|n| n.0)).min();
        let tick_first = match (t_bar, t_tick) {
            (None, None) => break,
            (Some(b), Some(k)) => k < b,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        let t = if tick_first { t_tick } else { t_bar }.unwrap_or(i64::MAX);
        if plan.to_ms.is_some_and(|to| t >= to) {
            break;
        }
        if tick_first {
            let Some(stream) = ticks.iter_mut().find(|s| s.next.as_ref().is_some_and(|n| n.0 == t)) else { break };
            let trades_file = matches!(stream.source, TickSource::Trades(..));
            let Some((ts, event)) = stream.advance(&plan.instruments)? else { break };
            time.advance_to(ts);
            let instrument = event.instrument();
            let price = match &event {
                MarketEvent::Ticker { last, bid, ask, .. } => Some(if *last > 0.0 { *last } else { (bid + ask) / 2.0 }),
                MarketEvent::Trade { price, .. } => Some(*price),
                MarketEvent::Book { bids, asks, .. } => bids.first().zip(asks.first()).map(|(b, a)| (b.0 + a.0) / 2.0),
                MarketEvent::Candle { .. } => None,
            };
            if let Some(price) = price.filter(|p| *p > 0.0 && p.is_finite()) {
                tally.mark(instrument, ts, price);
            }
            exchange.on_market(&event);
            fund(&mut next_funding, plan, ts, &tally.marks, &specs, exchange.as_ref(), &mut runners);
            route(&hub, &mut router, &mut venue_events, exchange.as_ref(), &mut runners, &specs);
            // A trades file has no quotes: each trade's price is the instrument's quote (bid =
            // ask = last), which risk reads, before the trade itself is routed.
            if trades_file && let MarketEvent::Trade { instrument, ts_ms, price, .. } = &event {
                let quote = MarketEvent::Ticker {
                    instrument: *instrument,
                    ts_ms: *ts_ms,
                    bid: *price,
                    bid_size: 0.0,
                    ask: *price,
                    ask_size: 0.0,
                    last: *price,
                };
                router.route(&hub, VenueEvent::Market(quote));
            }
            router.route(&hub, VenueEvent::Market(event));
            bars += 1;
            pump(&hub, exchange.as_ref(), &mut lanes, &mut router, &mut venue_events, &mut runners, &specs);
            if watch_losses {
                hub.watch_losses(ts);
            }
            tally.book(&mut runners, ts, &specs, &plan.balances, &plan.instruments)?;
            if bars.is_multiple_of(PROGRESS_EVERY) {
                progress(Progress { bars, ts_ms: ts });
            }
            continue;
        }
        step.clear();
        for stream in &mut streams {
            if stream.next.is_some_and(|b| b.ts_ms == t)
                && let Some(bar) = stream.advance()?
            {
                let length = if stream.bar_ms > 0 { stream.bar_ms } else { 60_000 };
                step.push((stream.instrument, bar, length));
            }
        }
        time.advance_to(t);
        fund(&mut next_funding, plan, t, &tally.marks, &specs, exchange.as_ref(), &mut runners);
        for (instrument, bar, _) in &step {
            exchange.open_bar(*instrument, Range { ts_ms: t, open: bar.open, high: bar.high, low: bar.low });
        }
        route(&hub, &mut router, &mut venue_events, exchange.as_ref(), &mut runners, &specs);
        let close_at = t.saturating_add(step.iter().map(|s| s.2).max().unwrap_or(60_000));
        time.advance_to(close_at);
        for (instrument, bar, _) in &step {
            let instrument = *instrument;
            exchange.mark(instrument, bar.close);
            tally.mark(instrument, bar.ts_ms, bar.close);
            // The close as a ticker: to plugins that follow tickers through the router, as
            // live; else only as the quote risk reads (what the router would do with it).
            if hub.followed(instrument, tradebox_core::Channel::Tickers) {
                let ticker = MarketEvent::Ticker {
                    instrument,
                    ts_ms: close_at,
                    bid: bar.close,
                    bid_size: 0.0,
                    ask: bar.close,
                    ask_size: 0.0,
                    last: bar.close,
                };
                router.route(&hub, VenueEvent::Market(ticker));
            } else {
                hub.set_quote(instrument, bar.close, bar.close, bar.close);
            }
            let ohlcv = [bar.open, bar.high, bar.low, bar.close, bar.volume];
            let candle = MarketEvent::Candle { instrument, ts_ms: bar.ts_ms, ohlcv, confirmed: true };
            router.route(&hub, VenueEvent::Market(candle));
        }
        bars += step.len() as u64;
        pump(&hub, exchange.as_ref(), &mut lanes, &mut router, &mut venue_events, &mut runners, &specs);
        if watch_losses {
            hub.watch_losses(close_at);
        }
        tally.book(&mut runners, close_at, &specs, &plan.balances, &plan.instruments)?;
        if bars % PROGRESS_EVERY < step.len() as u64 {
            progress(Progress { bars, ts_ms: t });
        }
    }
    let skipped: u64 = ticks
        .iter()
        .map(|s| s.skipped + if let TickSource::Feed(frames) = &s.source { frames.passed_over() } else { 0 })
        .sum();
    if skipped > 0 {
        tracing::info!(skipped, "events of instruments not in the run were passed over");
    }
    let Tally { prices, start_value, total_curve, total_equity, equity_file, .. } = tally;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(file) = equity_file {
        file.finish()?;
    }
    let mut prices = prices;
    progress(Progress { bars, ts_ms: time.advance_by(0) });
    let base = start_value.unwrap_or(0.0);
    // Equity is booked at every tick of tick data: its returns are not on a regular grid, so
    // a Sharpe ratio (annualised per bar) is given for candles only.
    let bar_ms = if ticks.is_empty() { bar_ms(&streams) } else { 0 };
    let mut total = Stats { start_equity: base, events: bars, ..Stats::default() };
    let mut reports = Vec::with_capacity(runners.len());
    let mut plugin_inputs = Vec::with_capacity(runners.len());
    for runner in runners {
        let stats = plugin_stats(&hub, &runner, base, bar_ms, &specs);
        total.delivered += stats.delivered;
        total.orders += stats.orders;
        total.denied += stats.denied;
        total.fills += stats.fills;
        total.round_trips += stats.round_trips;
        total.wins += stats.wins;
        total.pnl += stats.pnl;
        total.realized += stats.realized;
        total.unrealized += stats.unrealized;
        total.fees += stats.fees;
        total.funding += stats.funding;
        for (symbol, size) in &stats.open_positions {
            match total.open_positions.iter_mut().find(|(s, _)| s == symbol) {
                Some(p) => p.1 += size,
                None => total.open_positions.push((symbol.clone(), *size)),
            }
        }
        plugin_inputs.push(runner.input);
        reports.push(PluginReport {
            name: runner.name,
            stats,
            trades: runner.ledger.trades,
            equity: runner.ledger.equity.finish(),
            fault: runner.fault,
        });
    }
    total.max_drawdown = total_curve.max_drawdown;
    total.max_drawdown_pct = total_curve.max_drawdown_pct;
    total.sharpe = total_curve.sharpe(bar_ms);
    total.end_equity = base + total.pnl;
    let inputs = Inputs {
        data: files,
        plugins: plugin_inputs,
        instruments: plan.instruments.iter().map(|s| s.symbol.clone()).collect(),
        from_ms: plan.from_ms,
        to_ms: plan.to_ms,
        fill: plan.fill.to_string(),
        maker_fee: fee_rates(plan).maker.to_f64().unwrap_or(0.0),
        taker_fee: fee_rates(plan).taker.to_f64().unwrap_or(0.0),
        fee_tier: plan.fees.tier.clone(),
        balances: plan.balances.iter().map(|(c, a)| (c.clone(), a.to_f64().unwrap_or(0.0))).collect(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let prices = plan
        .instruments
        .iter()
        .map(|s| PriceSeries {
            symbol: s.symbol.clone(),
            points: prices.get_mut(s.id as usize).map(std::mem::take).unwrap_or_default().finish(),
        })
        .collect();
    Ok(RunReport {
        inputs,
        plugins: reports,
        total,
        events: bars,
        elapsed_s: elapsed,
        events_per_s: if elapsed > 0.0 { bars as f64 / elapsed } else { 0.0 },
        prices,
        equity: total_equity.finish(),
    })
}

/// The fee rates of the run's first instrument (spot or derivatives), for the report.
fn fee_rates(plan: &Plan) -> crate::venue::paper::exchange::FeeRates {
    match plan.instruments.first().map(|s| s.kind) {
        Some(InstrumentKind::Spot) | None => plan.fees.spot,
        Some(_) => plan.fees.derivatives,
    }
}

/// Applies the fundings due by `now` (from `next` on) at the last prices: to each plugin's ledger
/// by its own position, and to the account at the exchange.
fn fund(
    next: &mut usize,
    plan: &Plan,
    now: i64,
    marks: &[f64],
    specs: &[(f64, String)],
    exchange: &PaperExchange,
    runners: &mut [Runner],
) {
    while let Some(f) = plan.funding.get(*next).filter(|f| f.ts_ms <= now) {
        *next += 1;
        let mark = marks.get(f.instrument as usize).copied().unwrap_or(0.0);
        let multiplier = specs.get((f.instrument as usize).wrapping_sub(1)).map_or(1.0, |s| s.0);
        if mark <= 0.0 {
            continue;
        }
        for runner in runners.iter_mut() {
            runner.ledger.fund(f.instrument, multiplier, mark, f.rate);
        }
        exchange.fund(f.instrument, mark, f.rate);
    }
}

/// What the run books as it goes: the last price per instrument, the curves, the equity file.
struct Tally {
    /// By instrument id (1..=n).
    marks: Vec<f64>,
    prices: Vec<Thinned>,
    start_value: Option<f64>,
    total_curve: CurveStats,
    total_equity: Thinned,
    /// Each plugin's equity at the last booking (reused).
    each: Vec<f64>,
    equity_file: Option<super::report::EquityWriter>,
}

impl Tally {
    fn mark(&mut self, instrument: InstrumentId, ts_ms: i64, price: f64) {
        if let Some(mark) = self.marks.get_mut(instrument as usize) {
            *mark = price;
        }
        if let Some(series) = self.prices.get_mut(instrument as usize) {
            series.push(Point { ts_ms, value: price });
        }
    }

    /// Books every plugin's equity, and the account's, at `ts_ms`.
    fn book(
        &mut self,
        runners: &mut [Runner],
        ts_ms: i64,
        specs: &[(f64, String)],
        balances: &[(String, Decimal)],
        instruments: &[InstrumentSpec],
    ) -> Result<(), BacktestError> {
        let marks = &self.marks;
        let base = *self.start_value.get_or_insert_with(|| starting_equity(balances, instruments, marks));
        let mark = |i: InstrumentId| {
            let i = i as usize;
            (marks.get(i).copied().unwrap_or(0.0), specs.get(i.wrapping_sub(1)).map_or(1.0, |s| s.0))
        };
        let mut total = base;
        for (runner, value) in runners.iter_mut().zip(self.each.iter_mut()) {
            let pnl = runner.ledger.pnl(mark);
            total += pnl;
            *value = base + pnl;
            runner.ledger.curve.push(*value, base);
            runner.ledger.equity.push(Point { ts_ms, value: *value });
        }
        self.total_curve.push(total, base);
        self.total_equity.push(Point { ts_ms, value: total });
        if let Some(file) = self.equity_file.as_mut() {
            file.row(ts_ms, total, &self.each)?;
        }
        Ok(())
    }
}

/// Admits a plugin against its grant, registers it with the hub and runs its `init`. A plugin
/// whose `init` fails (or whose instance cannot start) is reported, not fatal.
fn start(hub: &Arc<Hub>, plugin: &PluginPlan) -> Result<Runner, BacktestError> {
    let compiled = &plugin.compiled;
    let admission = crate::plugin::admission::admit(
        &plugin.name,
        compiled.manifest.as_deref(),
        &plugin.grants,
        &plugin.risk,
        &plugin.config,
    )?;
    let permissions = Permissions::new(plugin.grants.clone(), admission.requested);
    let slot = hub.register_component(&plugin.name, &compiled.hash, permissions, plugin.risk.clone());
    let state =
        PluginState::new(hub.clone(), slot.clone(), Arc::new(Counters::default()), crate::plugin::Mode::Deterministic);
    let input = PluginInput {
        name: plugin.name.clone(),
        path: plugin.path.clone(),
        sha256: compiled.hash.clone(),
        config: admission.config.clone(),
    };
    let mut runner = Runner {
        name: plugin.name.clone(),
        slot,
        instance: None,
        fault: None,
        ledger: Ledger::default(),
        batch: Vec::new(),
        delivery: Vec::new(),
        max_batch: plugin.limits.max_batch.max(1),
        events: 0,
        input,
    };
    // A call may spend the fuel of its live CPU deadline (about 2 million instructions a
    // millisecond here), not the runtime's generous default: a strategy too slow for live is a
    // fault in the backtest too, and one plugin cannot make every bar of a run take seconds.
    let limits =
        Limits { fuel: plugin.limits.fuel.min(plugin.limits.deadline_ms.saturating_mul(FUEL_PER_MS)), ..plugin.limits };
    match Instance::new(compiled, state, limits, Mode::Deterministic) {
        Ok(mut instance) => match instance.init(&admission.config) {
            Ok(()) => runner.instance = Some(instance),
            Err(fault) => runner.stop(hub, &fault),
        },
        Err(fault) => runner.stop(hub, &fault),
    }
    Ok(runner)
}

/// Sends what plugins asked for, routes what the exchange answered, and hands plugins their
/// inboxes, until nothing is left or [`ROUNDS`] have passed.
fn pump(
    hub: &Hub,
    exchange: &PaperExchange,
    lanes: &mut Lanes,
    router: &mut Router,
    events: &mut mpsc::UnboundedReceiver<VenueEvent>,
    runners: &mut [Runner],
    specs: &[(f64, String)],
) {
    for _ in 0..ROUNDS {
        let mut any = false;
        for runner in runners.iter_mut() {
            any |= runner.deliver(hub);
        }
        let sent = router::send_queued(hub, exchange, lanes);
        let routed = route(hub, router, events, exchange, runners, specs);
        // Inboxes fill only from what is routed: nothing sent and nothing routed, nothing new.
        if !any || (sent == 0 && routed == 0) {
            break;
        }
    }
}

/// Routes what the exchange said, and books its fills in the plugins' ledgers.
fn route(
    hub: &Hub,
    router: &mut Router,
    events: &mut mpsc::UnboundedReceiver<VenueEvent>,
    exchange: &PaperExchange,
    runners: &mut [Runner],
    specs: &[(f64, String)],
) -> usize {
    let mut routed = 0;
    while let Ok(event) = events.try_recv() {
        router.route(hub, event);
        routed += 1;
    }
    for fill in exchange.take_fills() {
        let Some(runner) = runners.iter_mut().find(|r| Some(r.slot.id) == fill.plugin) else { continue };
        let (multiplier, symbol) = match specs.get((fill.instrument as usize).wrapping_sub(1)) {
            Some((m, s)) => (*m, s.as_str()),
            None => (
                hub.instrument(fill.instrument).map_or(1.0, |s| {
                    if s.kind == InstrumentKind::Spot { 1.0 } else { s.contract_value.to_f64().unwrap_or(1.0) }
                }),
                hub.instrument(fill.instrument).map_or("?", |s| s.symbol.as_str()),
            ),
        };
        runner.ledger.fill(&fill, symbol, multiplier);
    }
    routed
}

/// What the account held at the start, valued in the first instrument's quote currency at the
/// first closes: that currency one for one, any instrument's base at its close.
fn starting_equity(balances: &[(String, Decimal)], instruments: &[InstrumentSpec], marks: &[f64]) -> f64 {
    let Some(quote) = instruments.first().map(|s| s.quote.as_str()) else { return 0.0 };
    balances
        .iter()
        .map(|(currency, amount)| {
            let amount = amount.to_f64().unwrap_or(0.0);
            if currency == quote {
                return amount;
            }
            instruments
                .iter()
                .find(|s| s.kind == InstrumentKind::Spot && &s.base == currency && s.quote == quote)
                .and_then(|s| marks.get(s.id as usize))
                .map_or(0.0, |price| amount * price)
        })
        .sum()
}

/// A plugin's figures: PnL from the host's tracker (as live), the rest from its ledger.
fn plugin_stats(hub: &Hub, runner: &Runner, base: f64, bar_ms: i64, specs: &[(f64, String)]) -> Stats {
    let (realized, unrealized, fees) = hub.pnl(runner.slot.id);
    let stats = &runner.slot.stats;
    let orders = stats.orders_sent.load(std::sync::atomic::Ordering::Relaxed);
    let denied = stats.denied.load(std::sync::atomic::Ordering::Relaxed);
    let funding = runner.ledger.funding;
    let pnl = realized + unrealized - fees - funding;
    let open_positions = hub
        .positions(runner.slot.id)
        .into_iter()
        .filter_map(|(instrument, p)| {
            let size = p.size.to_f64().unwrap_or(0.0);
            (size != 0.0).then(|| {
                let symbol =
                    specs.get((instrument as usize).wrapping_sub(1)).map_or_else(|| "?".to_string(), |s| s.1.clone());
                (symbol, size)
            })
        })
        .collect();
    Stats {
        events: runner.events,
        delivered: runner.events,
        orders,
        denied,
        fills: runner.ledger.fills,
        round_trips: runner.ledger.trades.len() as u64,
        wins: runner.ledger.trades.iter().filter(|t| t.pnl - t.fees > 0.0).count() as u64,
        pnl,
        realized,
        unrealized,
        fees,
        funding,
        max_drawdown: runner.ledger.curve.max_drawdown,
        max_drawdown_pct: runner.ledger.curve.max_drawdown_pct,
        sharpe: runner.ledger.curve.sharpe(bar_ms),
        start_equity: base,
        end_equity: base + pnl,
        open_positions,
    }
}

#[cfg(test)]
mod tests {
    use super::DataKind;

    #[test]
    fn a_recording_is_a_feed_compressed_or_not() {
        let dir = tempfile::tempdir().expect("dir");
        let frame = r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[]}"#;
        let cases = [
            ("raw.jsonl", format!("{frame}\n")),
            ("recorded.jsonl", format!("1765108800123 {frame}\n")),
            ("continued.jsonl", format!("1765108800123 #continues okx-public-2026-12-07T11.jsonl.zst\n{frame}\n")),
            ("gap-first.jsonl", "1765108800123 #gap public dropped\n".to_string()),
            ("candles.csv", "1765108800000,1,2,0.5,1.5,10\n".to_string()),
            ("trades.csv", "ts_ms,price,size,side\n1,2,3,buy\n".to_string()),
        ];
        for (name, text) in &cases {
            std::fs::write(dir.path().join(name), text).expect("write");
            let zst = dir.path().join(format!("{name}.zst"));
            std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).expect("zstd")).expect("write");
        }
        let kind = |name: &str| DataKind::detect(&dir.path().join(name)).expect(name);
        for name in ["raw.jsonl", "recorded.jsonl", "continued.jsonl", "gap-first.jsonl"] {
            assert_eq!(kind(name), DataKind::Feed, "{name}");
            assert_eq!(kind(&format!("{name}.zst")), DataKind::Feed, "{name}.zst");
        }
        assert_eq!(kind("candles.csv"), DataKind::Candles);
        assert_eq!(kind("trades.csv"), DataKind::Trades);
        assert_eq!(kind("trades.csv.zst"), DataKind::Trades, "told by its first line");
        std::fs::write(dir.path().join("empty.jsonl.zst"), b"").expect("write");
        let e = DataKind::detect(&dir.path().join("empty.jsonl.zst")).expect_err("empty").to_string();
        assert!(e.contains("empty"), "{e}");
    }
}
