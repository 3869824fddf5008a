//! OKX's WebSocket feeds as venue events: `/public` (tickers, books, trades) and `/business`
//! (candles) opened when the first subscription needs them, `/private` (orders, account,
//! positions; logged in) from the start.
//!
//! Books are kept here from `books` pushes (snapshot, then updates chained by `seqId`, checksum
//! checked when sent); a broken chain or checksum resubscribes for a fresh snapshot, and until it
//! comes plugins get no book at all rather than a wrong one. Order pushes become fills and order
//! reports (each fill once, whether WebSocket or REST saw it first); after the private stream
//! reconnects, the REST loop reconciles at once. Frames that cannot be read are counted per kind,
//! logged once per kind with a sample, and skipped.

use super::{OkxVenue, convert};
use crate::venue::{Channel, InstrumentId, Liquidity, MarketEvent, VenueEvent};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;
use tradebox_okx::ws::message::{BookData, OrderPush};
use tradebox_okx::ws::{Action, ClientConfig, ClientEvent, ConnectGate, Data, Frame, Login, OrderBook, Push, WsClient};

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/ws/v5/public`.
    Public,
    /// `/ws/v5/business`.
    Business,
    /// `/ws/v5/private`.
    Private,
}

impl Endpoint {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Public => "public",
            Endpoint::Business => "business",
            Endpoint::Private => "private",
        }
    }
}

/// Counters of the feeds, for status and tests.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Frames read.
    pub frames: AtomicU64,
    /// Frames that could not be read.
    pub bad_frames: AtomicU64,
    /// Book sequence gaps (each answered by a fresh snapshot).
    pub book_gaps: AtomicU64,
    /// Book checksum mismatches (each answered by a fresh snapshot).
    pub checksum_mismatches: AtomicU64,
    /// Reconnections of any endpoint.
    pub reconnects: AtomicU64,
}

/// The WebSocket side of the venue.
pub struct Streams {
    base: String,
    login: Login,
    /// (ping after, pong within).
    timing: (std::time::Duration, std::time::Duration),
    /// Certificate pins of the WebSocket hosts (every connection and reconnection).
    tls: tradebox_okx::TlsSettings,
    gate: Arc<ConnectGate>,
    events: mpsc::UnboundedSender<(Endpoint, ClientEvent)>,
    clients: parking_lot::Mutex<HashMap<Endpoint, WsClient>>,
    /// Counters.
    pub stats: Arc<StreamStats>,
}

/// The exchange subscription behind a host channel.
pub fn arg(symbol: &str, channel: Channel) -> (Endpoint, Value) {
    match channel {
        Channel::Ticker => (Endpoint::Public, json!({"channel": "tickers", "instId": symbol})),
        Channel::Book5 => (Endpoint::Public, json!({"channel": "books", "instId": symbol})),
        Channel::Trades => (Endpoint::Public, json!({"channel": "trades", "instId": symbol})),
        Channel::Candle1m => (Endpoint::Business, json!({"channel": "candle1m", "instId": symbol})),
    }
}

impl Streams {
    /// Starts the private endpoint and the task that turns frames into venue events.
    pub(crate) fn start(
        venue: &Arc<OkxVenue>,
        base: String,
        login: Login,
        timing: (std::time::Duration, std::time::Duration),
        tls: tradebox_okx::TlsSettings,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let streams = Arc::new(Self {
            base: base.trim_end_matches('/').to_string(),
            login,
            timing,
            tls,
            gate: Arc::new(ConnectGate::default()),
            events: tx,
            clients: parking_lot::Mutex::new(HashMap::new()),
            stats: Arc::new(StreamStats::default()),
        });
        let private = streams.client(Endpoint::Private);
        for a in [
            json!({"channel": "orders", "instType": "ANY"}),
            json!({"channel": "account"}),
            json!({"channel": "positions", "instType": "ANY"}),
        ] {
            streams.with(private, |c| c.subscribe(&a));
        }
        let task = tokio::spawn(run(Arc::downgrade(venue), streams.clone(), rx));
        venue.tasks.lock().push(task);
        streams
    }

    /// The client of `endpoint`, connecting it on first use.
    fn client(&self, endpoint: Endpoint) -> Endpoint {
        let mut clients = self.clients.lock();
        clients.entry(endpoint).or_insert_with(|| {
            let mut config = ClientConfig::new(format!("{}/ws/v5/{}", self.base, endpoint.path()), self.gate.clone());
            (config.ping_after, config.pong_within) = self.timing;
            config.tls = self.tls.clone();
            if endpoint == Endpoint::Private {
                config.login = Some(self.login.clone());
            }
            let (tx, mut rx) = mpsc::unbounded_channel();
            let events = self.events.clone();
            tokio::spawn(async move {
                while let Some(e) = rx.recv().await {
                    if events.send((endpoint, e)).is_err() {
                        return;
                    }
                }
            });
            WsClient::spawn(config, tx)
        });
        endpoint
    }

    fn with(&self, endpoint: Endpoint, f: impl FnOnce(&WsClient)) {
        if let Some(c) = self.clients.lock().get(&endpoint) {
            f(c);
        }
    }

    /// Closes every connection (the venue is shutting down).
    pub fn stop(&self) {
        self.clients.lock().clear();
    }

    /// Subscribes the exchange stream behind `channel` for `symbol`.
    pub fn subscribe(&self, symbol: &str, channel: Channel) {
        let (endpoint, a) = arg(symbol, channel);
        let endpoint = self.client(endpoint);
        self.with(endpoint, |c| c.subscribe(&a));
    }

    /// Unsubscribes it.
    pub fn unsubscribe(&self, symbol: &str, channel: Channel) {
        let (endpoint, a) = arg(symbol, channel);
        self.with(endpoint, |c| c.unsubscribe(&a));
    }

    fn resubscribe(&self, symbol: &str, channel: Channel) {
        let (endpoint, a) = arg(symbol, channel);
        self.with(endpoint, |c| c.resubscribe(&a));
    }
}

struct State {
    books: HashMap<InstrumentId, OrderBook>,
    /// Bad-frame kinds already logged.
    logged: HashMap<String, u64>,
    /// Endpoints that have been down since they last connected.
    down: HashMap<Endpoint, bool>,
}

async fn run(venue: Weak<OkxVenue>, streams: Arc<Streams>, mut rx: mpsc::UnboundedReceiver<(Endpoint, ClientEvent)>) {
    let mut state = State { books: HashMap::new(), logged: HashMap::new(), down: HashMap::new() };
    while let Some((endpoint, event)) = rx.recv().await {
        let Some(v) = venue.upgrade() else { return };
        handle(&v, &streams, &mut state, endpoint, event);
    }
}

fn handle(v: &OkxVenue, streams: &Streams, state: &mut State, endpoint: Endpoint, event: ClientEvent) {
    let link = format!("okx-{}", endpoint.path());
    match event {
        ClientEvent::Connected => {
            let was_down = state.down.insert(endpoint, false).unwrap_or(false);
            v.set_ws_up(endpoint, true);
            if was_down {
                streams.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%link, "OKX WebSocket back");
                v.emit(VenueEvent::Connectivity { link, connected: true, detail: "reconnected".into() });
            }
            if endpoint == Endpoint::Private {
                // Whatever happened while it was down (or before it first came up) is read back.
                v.request_reconcile();
            }
            if endpoint == Endpoint::Public {
                // Fresh snapshots follow the resubscription; old books are stale.
                state.books.values_mut().for_each(OrderBook::invalidate);
            }
        }
        ClientEvent::Disconnected { reason } => {
            if event_is_pin_mismatch(&reason) {
                tracing::error!(%link, %reason, "OKX WebSocket refused: the server presented no pinned key (check [venue.okx.pins])");
            }
            v.set_ws_up(endpoint, false);
            if !state.down.insert(endpoint, true).unwrap_or(false) {
                v.emit(VenueEvent::Connectivity { link, connected: false, detail: reason });
            }
            if endpoint == Endpoint::Public {
                state.books.values_mut().for_each(OrderBook::invalidate);
            }
        }
        ClientEvent::Bad { error, sample } => {
            streams.stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            let seen = state.logged.entry(error.kind.clone()).or_insert(0);
            if *seen == 0 {
                tracing::warn!(%link, kind = %error.kind, reason = %error.reason, %sample, "skipped an OKX frame that could not be read (logged once per kind)");
            }
            *seen += 1;
        }
        ClientEvent::Frame(frame) => {
            streams.stats.frames.fetch_add(1, Ordering::Relaxed);
            match frame {
                Frame::Push(push) => on_push(v, streams, state, push),
                Frame::Event(e) if e.event == "error" => {
                    tracing::warn!(%link, code = %e.code, msg = %e.msg, "OKX WebSocket error");
                    if super::authwatch::is_auth_failure(&e.code) {
                        v.auth_watch().record(super::authwatch::Source::WsLogin, &e.code, std::time::Instant::now());
                    }
                }
                Frame::Event(e) if e.event == "notice" => {
                    tracing::info!(%link, code = %e.code, msg = %e.msg, "OKX notice");
                }
                _ => {}
            }
        }
    }
}

fn event_is_pin_mismatch(reason: &str) -> bool {
    ClientEvent::Disconnected { reason: reason.to_string() }.is_pin_mismatch()
}

fn f(d: Option<Decimal>) -> f64 {
    d.and_then(|d| d.to_f64()).unwrap_or(0.0)
}

/// The market events of a tickers, trades or candles push (books need a kept book, and
/// private channels are not market data: both give none here). `instrument` maps OKX's
/// symbols to the host's handles; pushes for other instruments give nothing.
pub fn market_events(push: &Push, instrument: impl Fn(&str) -> Option<InstrumentId>) -> Vec<MarketEvent> {
    match &push.data {
        Data::Tickers(ts) => ts.iter().filter_map(|t| Some(convert::ticker(instrument(&t.inst_id)?, t))).collect(),
        Data::Trades(ts) => ts
            .iter()
            .filter_map(|t| {
                Some(MarketEvent::Trade {
                    instrument: instrument(&t.inst_id)?,
                    ts_ms: t.ts,
                    price: f(Some(t.px)),
                    size: f(Some(t.sz)),
                    taker_side: match t.side {
                        tradebox_okx::model::Side::Buy => crate::venue::Side::Buy,
                        tradebox_okx::model::Side::Sell => crate::venue::Side::Sell,
                    },
                })
            })
            .collect(),
        Data::Candles(cs) => {
            let Some(id) = instrument(&push.arg.inst_id) else { return Vec::new() };
            cs.iter()
                .map(|c| {
                    let [o, h, l, cl] = c.ohlc.map(|x| f(Some(x)));
                    MarketEvent::Candle {
                        instrument: id,
                        ts_ms: c.ts,
                        ohlcv: [o, h, l, cl, f(Some(c.vol))],
                        confirmed: c.confirmed.unwrap_or(false),
                    }
                })
                .collect()
        }
        Data::Books(_) | Data::Orders(_) | Data::Account(_) | Data::Positions(_) => Vec::new(),
    }
}

fn on_push(v: &OkxVenue, streams: &Streams, state: &mut State, push: Push) {
    let instrument = v.instrument_id(&push.arg.inst_id);
    match &push.data {
        Data::Tickers(_) | Data::Trades(_) | Data::Candles(_) => {
            for e in market_events(&push, |s| v.instrument_id(s)) {
                v.emit(VenueEvent::Market(e));
            }
        }
        Data::Books(items) => {
            let Some(instrument) = instrument else { return };
            let action = if push.action.as_deref() == Some("update") { Action::Update } else { Action::Snapshot };
            for d in items {
                on_book(v, streams, state, instrument, &push.arg.inst_id, action, d);
            }
        }
        Data::Orders(orders) => {
            for o in orders {
                on_order(v, o);
            }
        }
        Data::Account(balances) => {
            for b in balances {
                for d in &b.details {
                    v.emit(VenueEvent::Balance(convert::balance(d)));
                }
            }
        }
        Data::Positions(positions) => {
            for p in positions.iter().filter_map(|p| convert::position(v, p)) {
                v.emit(VenueEvent::Position(p));
            }
        }
    }
}

fn on_book(
    v: &OkxVenue,
    streams: &Streams,
    state: &mut State,
    instrument: InstrumentId,
    symbol: &str,
    action: Action,
    d: &BookData,
) {
    let book = state.books.entry(instrument).or_default();
    match book.apply(action, d) {
        Ok(()) => {
            if let Some((bids, asks)) = book.top(5) {
                let levels = |ls: Vec<(Decimal, Decimal, u32)>| {
                    ls.into_iter().map(|(p, s, _)| (f(Some(p)), f(Some(s)))).collect()
                };
                v.emit(VenueEvent::Market(MarketEvent::Book {
                    instrument,
                    ts_ms: d.ts,
                    bids: levels(bids),
                    asks: levels(asks),
                }));
            }
        }
        Err(tradebox_okx::ws::BookError::NoSnapshot) => {}
        Err(e) => {
            let counter = match e {
                tradebox_okx::ws::BookError::Checksum { .. } => &streams.stats.checksum_mismatches,
                _ => &streams.stats.book_gaps,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%symbol, error = %e, "OKX book out of step: resubscribing for a fresh snapshot");
            streams.resubscribe(symbol, Channel::Book5);
        }
    }
}

fn on_order(v: &OkxVenue, o: &OrderPush) {
    if let (Some((px, sz, trade_id)), Some(instrument)) = (o.fill(), v.instrument_id(&o.order.inst_id)) {
        let fill = crate::venue::FillReport {
            client_id: o.order.cl_ord_id.clone(),
            trade_id: trade_id.to_string(),
            instrument,
            side: match o.order.side {
                tradebox_okx::model::Side::Buy => crate::venue::Side::Buy,
                tradebox_okx::model::Side::Sell => crate::venue::Side::Sell,
            },
            price: px,
            size: sz,
            fee: -o.fill_fee.unwrap_or_default(),
            fee_currency: if o.fill_fee_ccy.is_empty() { o.order.fee_ccy.clone() } else { o.fill_fee_ccy.clone() },
            liquidity: if o.exec_type == "M" { Liquidity::Maker } else { Liquidity::Taker },
            ts_ms: if o.fill_time > 0 { o.fill_time } else { o.order.u_time },
        };
        v.emit_fill(&o.order.ord_id, fill);
    }
    if let Some(report) = convert::report(v, &o.order) {
        super::sync::publish(v, report);
    }
}
