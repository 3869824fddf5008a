//! OKX's WebSocket feeds as venue events: `/public` (tickers, books, trades) and `/business`
//! (candles) opened when the first subscription needs them, `/private` (orders, account,
//! positions; logged in) from the start.
//!
//! Books are kept here from `books` pushes (snapshot, then updates chained by `seqId`, checksum
//! checked when sent); a broken chain or checksum resubscribes for a fresh snapshot, and until it
//! comes plugins get no book at all rather than a wrong one. Order pushes become fills and order
//! reports (each fill once, whether WebSocket or REST saw it first); after the private stream
//! reconnects, the REST loop reconciles at once. The private feed counts as up only once OKX's
//! `channel-conn-count` says each of its subscriptions stands (OKX acknowledges, then takes
//! back a subscription over its 30 connections a channel); a refused one keeps it down, REST
//! reconciling at its fast pace, and is asked for again after 1 s doubling to a minute. A key
//! rotation logs the private feed in again (`Streams::relogin`). Frames that cannot be read are
//! counted per kind, logged once per kind with a sample, and skipped.

use super::{OkxVenue, convert};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;
use tradebox_core::{Channel, InstrumentId, Liquidity, MarketEvent, VenueEvent};
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
    /// Where the private feed's subscriptions stand (read by the retries of refused ones).
    private: parking_lot::Mutex<PrivateFeed>,
}

/// The private channels the venue subscribes; the private feed is up once OKX acknowledged
/// each of them.
const PRIVATE_CHANNELS: [&str; 3] = ["orders", "account", "positions"];

fn private_arg(channel: &str) -> Value {
    match channel {
        "account" => json!({"channel": "account"}),
        other => json!({"channel": other, "instType": "ANY"}),
    }
}

/// The wait before asking again for a refused private subscription: 1 s, doubling, at most a
/// minute (OKX allows 480 subscription requests an hour on a connection).
fn retry_after(refusals: u32) -> std::time::Duration {
    std::time::Duration::from_secs(1u64 << refusals.min(7).saturating_sub(1)).min(std::time::Duration::from_secs(60))
}

/// The exchange subscription behind a host channel.
pub fn arg(symbol: &str, channel: Channel) -> (Endpoint, Value) {
    match channel {
        Channel::Tickers => (Endpoint::Public, json!({"channel": "tickers", "instId": symbol})),
        Channel::Books5 => (Endpoint::Public, json!({"channel": "books", "instId": symbol})),
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
            private: parking_lot::Mutex::default(),
        });
        let private = streams.client(Endpoint::Private);
        for channel in PRIVATE_CHANNELS {
            streams.with(private, |c| c.subscribe(&private_arg(channel)));
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

    /// Logs the private feed in again (the key was rotated): the connection is replaced by one
    /// that logs in with the key in use now and subscribes again; until OKX acknowledges that,
    /// the feed is down and REST reconciles at its fast pace, and it reconciles once more when
    /// the new connection is up, so no order event is lost in between.
    pub fn relogin(&self) {
        let old = self.clients.lock().remove(&Endpoint::Private);
        drop(old);
        let reason = "key rotated: logging in again with the new key".to_string();
        let _ = self.events.send((Endpoint::Private, ClientEvent::Disconnected { reason }));
        let private = self.client(Endpoint::Private);
        for channel in PRIVATE_CHANNELS {
            self.with(private, |c| c.subscribe(&private_arg(channel)));
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

/// The private feed counts as up only once OKX has acknowledged each of its subscriptions: a
/// connection whose `orders` subscription was refused carries no fills, and the REST loop must
/// keep reconciling at its fast pace until one does.
#[derive(Default)]
struct PrivateFeed {
    /// Channels acknowledged on the current connection.
    acked: std::collections::HashSet<&'static str>,
    /// Announced down (a disconnect or a refusal) and not announced back up since.
    announced_down: bool,
    /// Refusals in a row: the wait before asking again grows with them (the first is
    /// announced even when a disconnect already was: it says why the link stays down). OKX
    /// acknowledges a subscription before it refuses it for the connection cap, so a feed up
    /// for less than [`STEADY`] does not start the count over.
    refusals: u32,
    /// When the feed last came up.
    up_since: Option<std::time::Instant>,
}

/// How long the private feed must stay up before its refusals are forgotten.
const STEADY: std::time::Duration = std::time::Duration::from_secs(30);

async fn run(venue: Weak<OkxVenue>, streams: Arc<Streams>, mut rx: mpsc::UnboundedReceiver<(Endpoint, ClientEvent)>) {
    let mut state = State { books: HashMap::new(), logged: HashMap::new(), down: HashMap::new() };
    while let Some((endpoint, event)) = rx.recv().await {
        let Some(v) = venue.upgrade() else { return };
        handle(&v, &streams, &mut state, endpoint, event);
    }
}

/// A private subscription was acknowledged: the feed is up once all of them are.
fn private_acked(v: &OkxVenue, streams: &Streams, channel: &str) {
    let Some(channel) = PRIVATE_CHANNELS.iter().find(|c| **c == channel) else { return };
    let mut feed = streams.private.lock();
    feed.acked.insert(channel);
    if feed.acked.len() < PRIVATE_CHANNELS.len() || v.ws_up(Endpoint::Private) {
        return;
    }
    v.set_ws_up(Endpoint::Private, true);
    feed.up_since = Some(std::time::Instant::now());
    // Fills between the connection and now came over no feed: read them back.
    v.request_reconcile();
    if std::mem::take(&mut feed.announced_down) {
        tracing::info!("OKX private feed back: orders, account and positions acknowledged");
        v.emit(VenueEvent::Connectivity {
            link: "okx-private".into(),
            connected: true,
            detail: "subscriptions acknowledged".into(),
        });
    }
}

/// OKX refused private subscriptions (`channels`; all not yet acknowledged when OKX did not
/// say which): the feed is down, REST reconciles at its fast pace, and each is asked for
/// again after a growing wait.
fn private_refused(v: &OkxVenue, streams: &Arc<Streams>, channels: &[&'static str], why: String) {
    let mut feed = streams.private.lock();
    for c in channels {
        feed.acked.remove(c);
    }
    v.set_ws_up(Endpoint::Private, false);
    if feed.up_since.take().is_some_and(|t| t.elapsed() >= STEADY) {
        feed.refusals = 0;
    }
    feed.refusals += 1;
    let wait = retry_after(feed.refusals);
    tracing::warn!(channels = ?channels, %why, retry_in_ms = wait.as_millis() as u64, "OKX refused a private subscription: fills come through REST until it is accepted");
    // Said when the link was last said to be up, and on the first refusal (a disconnect said
    // before it did not say why the link stays down).
    if !std::mem::replace(&mut feed.announced_down, true) || feed.refusals == 1 {
        v.emit(VenueEvent::Connectivity { link: "okx-private".into(), connected: false, detail: why });
    }
    v.request_reconcile();
    let streams = Arc::downgrade(streams);
    let channels = channels.to_vec();
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        if let Some(s) = streams.upgrade() {
            // Only those still not standing: each request spends OKX's 480 an hour.
            let acked = s.private.lock().acked.clone();
            for c in channels.into_iter().filter(|c| !acked.contains(c)) {
                s.with(Endpoint::Private, |client| client.resubscribe(&private_arg(c)));
            }
        }
    });
}

fn handle(v: &OkxVenue, streams: &Arc<Streams>, state: &mut State, endpoint: Endpoint, event: ClientEvent) {
    let link = format!("okx-{}", endpoint.path());
    match event {
        ClientEvent::Connected if endpoint == Endpoint::Private => {
            if state.down.insert(endpoint, false).unwrap_or(false) {
                streams.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%link, "OKX WebSocket back; waiting for its subscriptions to be acknowledged");
            }
            // Up once OKX acknowledges the subscriptions this connection just asked for.
            streams.private.lock().acked.clear();
            // Whatever happened while it was down (or before it first came up) is read back.
            v.request_reconcile();
        }
        ClientEvent::Connected => {
            let was_down = state.down.insert(endpoint, false).unwrap_or(false);
            v.set_ws_up(endpoint, true);
            if was_down {
                streams.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%link, "OKX WebSocket back");
                v.emit(VenueEvent::Connectivity { link, connected: true, detail: "reconnected".into() });
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
            let newly_down = !state.down.insert(endpoint, true).unwrap_or(false);
            if endpoint == Endpoint::Private {
                let mut feed = streams.private.lock();
                feed.acked.clear();
                if !std::mem::replace(&mut feed.announced_down, true) {
                    v.emit(VenueEvent::Connectivity { link, connected: false, detail: reason });
                }
            } else if newly_down {
                v.emit(VenueEvent::Connectivity { link, connected: false, detail: reason });
            }
            if endpoint == Endpoint::Public {
                state.books.values_mut().for_each(OrderBook::invalidate);
            }
        }
        ClientEvent::LoginRefused { code, msg } => {
            tracing::warn!(%link, %code, %msg, "OKX refused the WebSocket login");
            if super::authwatch::is_auth_failure(&code) {
                v.auth_watch().record(super::authwatch::Source::WsLogin, &code, std::time::Instant::now());
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
        // Only a client in raw mode (a recorder) hands these over; the venue's never is.
        ClientEvent::Raw(_) => {}
        ClientEvent::Frame(frame) => {
            streams.stats.frames.fetch_add(1, Ordering::Relaxed);
            match frame {
                Frame::Push(push) => on_push(v, streams, state, push),
                // OKX acknowledges a private subscription and then, over the channel's cap of
                // connections, takes it back: the count it sends after the acknowledgement is
                // what says the subscription stands.
                Frame::Event(e) if endpoint == Endpoint::Private && e.event == "channel-conn-count" => {
                    private_acked(v, streams, &e.channel);
                }
                Frame::Event(e) if endpoint == Endpoint::Private && e.event == "channel-conn-count-error" => {
                    let refused: Vec<&'static str> =
                        PRIVATE_CHANNELS.iter().copied().filter(|c| *c == e.channel).collect();
                    let why = format!(
                        "subscription to {} refused: {} connections already on it (OKX's cap)",
                        e.channel,
                        e.conn_count.map_or_else(|| "too many".to_string(), |n| n.to_string())
                    );
                    private_refused(v, streams, &refused, why);
                }
                Frame::Event(e) if e.event == "error" => {
                    tracing::warn!(%link, code = %e.code, msg = %e.msg, "OKX WebSocket error");
                    if super::authwatch::is_auth_failure(&e.code) {
                        v.auth_watch().record(super::authwatch::Source::WsLogin, &e.code, std::time::Instant::now());
                    } else if endpoint == Endpoint::Private
                        && streams.private.lock().acked.len() < PRIVATE_CHANNELS.len()
                    {
                        // An error while subscriptions are outstanding (60011 "Please log in",
                        // 60018, ...) names no channel: every one not acknowledged is refused.
                        let acked = streams.private.lock().acked.clone();
                        let unacked: Vec<&'static str> =
                            PRIVATE_CHANNELS.iter().copied().filter(|c| !acked.contains(c)).collect();
                        let why = format!("private subscription refused: OKX {} {}", e.code, e.msg);
                        private_refused(v, streams, &unacked, why);
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

/// A price or size OKX sent, as information for plugins (`""`, not applicable, shows as 0).
fn f(d: Option<Decimal>) -> f64 {
    d.map_or(0.0, tradebox_core::num::shown)
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
                        tradebox_okx::model::Side::Buy => tradebox_core::Side::Buy,
                        tradebox_okx::model::Side::Sell => tradebox_core::Side::Sell,
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
            streams.resubscribe(symbol, Channel::Books5);
        }
    }
}

fn on_order(v: &OkxVenue, o: &OrderPush) {
    if let (Some((px, sz, trade_id)), Some(instrument)) = (o.fill(), v.instrument_id(&o.order.inst_id)) {
        let fill = tradebox_core::FillReport {
            client_id: o.order.cl_ord_id.clone(),
            trade_id: trade_id.to_string(),
            instrument,
            side: match o.order.side {
                tradebox_okx::model::Side::Buy => tradebox_core::Side::Buy,
                tradebox_okx::model::Side::Sell => tradebox_core::Side::Sell,
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
        v.publish(report);
    }
}
