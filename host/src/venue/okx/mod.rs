//! The OKX venue: the host's authenticated path to OKX v5 (or to `tradebox sim`, which speaks
//! the same protocol), behind the same [`Venue`] trait as the in-process simulator.
//!
//! - this file: start-up checks (clock, key permissions, account and position modes against
//!   the instruments, orders an earlier run left), the trait;
//! - `config`: `[venue.okx]` (region, URLs, margin, key sources, pins, the auth watch);
//! - [`orders`]: place / cancel / amend, with retries that reuse the client order id and
//!   "outcome unknown" settled by querying, never by resending;
//! - `limited`: the one way a request is sent, under the rate limiter (how long it may wait for
//!   its permits, what it does when OKX says it did not execute);
//! - [`stream`]: the WebSocket feeds (market data, private orders/account/positions) as venue
//!   events, books kept with sequence checks, the private feed up only once OKX's count of its
//!   subscriptions says they stand, reconnects that trigger a REST reconciliation;
//! - [`sync`]: the REST loop: reconciliation (fills by bill id, order states, balances,
//!   positions per side), and market data while no WebSocket carries it;
//! - [`convert`]: OKX's wire types to the host's, `tdMode` and `posSide` by the account's modes;
//! - [`authwatch`]: authentication failures of the key, warned of and halted on;
//! - `deadman`: OKX's `cancel-all-after`, for the account and per plugin with orders;
//! - `keys`: rotating the key without a restart.
//!
//! Every request is signed by the okx crate over the exact bytes sent and recorded, without
//! its secret headers, in the audit log with the plugin it was made for.

pub mod authwatch;
mod config;
pub mod convert;
mod deadman;
mod keys;
mod limited;
pub mod orders;
pub mod stream;
pub mod sync;

pub(crate) use config::secure_url;
pub use config::{MarginMode, OkxConfig, OrdersAtStart, PinsConfig, Region};
pub use deadman::TAG_TIMERS;

use crate::audit::AuditLog;
use limited::How;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tradebox_core::{
    BalanceReport, InstrumentId, InstrumentSpec, KeyReloadError, KeySwitch, NewOrder, OrderReport, Origin, PlaceAck,
    PositionReport, Venue, VenueError, VenueEvent,
};
use tradebox_okx::limits::{Endpoint, Limiter, Request};
use tradebox_okx::{ClockSync, Credentials, OkxError, RestClient, RestConfig, Signer};

/// Finds the open orders an earlier run of a host left (client order id and tag `tb...`) and
/// cancels or lists them, before any plugin starts; each is audited.
async fn settle_orders_at_start(
    rest: &RestClient,
    limiter: &Limiter,
    policy: OrdersAtStart,
    audit: Option<&AuditLog>,
) -> Result<Vec<tradebox_okx::model::OrderDetails>, OkxVenueError> {
    let pending = limited::send(limiter, Request::new(Endpoint::PendingOrders, 0), How::STARTING, || {
        rest.pending_orders(None, None)
    })
    .await
    .map_err(okx("reading open orders left by an earlier run"))?;
    let ours: Vec<_> = pending.iter().filter(|d| d.cl_ord_id.starts_with("tb") && d.tag.starts_with("tb")).collect();
    if ours.is_empty() {
        return Ok(Vec::new());
    }
    if policy == OrdersAtStart::Adopt {
        // Audited once the venue knows which of them it can track.
        return Ok(ours.into_iter().cloned().collect());
    }
    let mut cancelled = 0;
    for d in &ours {
        let what = describe(d);
        let detail = match policy {
            // (Adopted orders returned above, to be audited once the venue can track them.)
            OrdersAtStart::Leave | OrdersAtStart::Adopt => format!("left open: {what}"),
            OrdersAtStart::Cancel => {
                let body = tradebox_okx::model::CancelOrder {
                    inst_id: d.inst_id.clone(),
                    ord_id: Some(d.ord_id.clone()),
                    cl_ord_id: None,
                };
                let opts = tradebox_okx::CallOpts::default();
                let done = limited::send(limiter, Request::new(Endpoint::Cancel, 0), How::STARTING, || {
                    rest.cancel_order(&body, &opts)
                })
                .await
                .map_err(OkxError::from);
                match done {
                    Ok(_) => {
                        cancelled += 1;
                        format!("cancelled: {what}")
                    }
                    // Filled or cancelled meanwhile: gone either way.
                    Err(e) if e.cancel_moot() => {
                        format!("already gone: {what}")
                    }
                    Err(e) => return Err(okx("cancelling an order left by an earlier run")(e)),
                }
            }
        };
        if let Some(log) = audit {
            log.append(
                None,
                None,
                &crate::audit::Entry::State { event: crate::audit::StateChange::OrderAtStart, detail },
            );
        }
    }
    match policy {
        OrdersAtStart::Cancel => {
            tracing::warn!(
                found = ours.len(),
                cancelled,
                "cancelled the open orders an earlier run left on the account"
            )
        }
        OrdersAtStart::Leave | OrdersAtStart::Adopt => tracing::warn!(
            found = ours.len(),
            "left open the orders an earlier run left on the account (orders_at_start = \"leave\"); they are not tracked"
        ),
    }
    Ok(Vec::new())
}

/// An order left by an earlier run, for the log and the audit trail.
fn describe(d: &tradebox_okx::model::OrderDetails) -> String {
    format!("{} {} {:?} {} @ {}", d.cl_ord_id, d.inst_id, d.side, d.sz.unwrap_or_default(), d.px.unwrap_or_default())
}

/// The account's modes as OKX reports them, with the configured margin; a mode OKX added
/// since this was written is refused rather than guessed at.
pub(crate) fn trade_modes(
    account: &tradebox_okx::model::AccountConfig,
    config: &OkxConfig,
) -> Result<convert::TradeModes, OkxVenueError> {
    let level = account.account_level().ok_or_else(|| {
        OkxVenueError::AccountMode(format!(
            "the account reports acctLv {:?}, not one of OKX's account modes this host knows (1 spot, 2 futures, \
             3 multi-currency margin, 4 portfolio margin); orders would be sent with the wrong tdMode",
            account.acct_lv
        ))
    })?;
    let positions = match account.position_mode() {
        Some(mode) => mode,
        // A spot-mode account has no derivative positions to be in a mode for.
        None if !level.trades_derivatives() => tradebox_okx::model::PositionMode::Net,
        None => {
            return Err(OkxVenueError::AccountMode(format!(
                "the account reports posMode {:?}, neither net_mode nor long_short_mode; orders would be sent \
                 with the wrong posSide",
                account.pos_mode
            )));
        }
    };
    Ok(convert::TradeModes { level, positions, margin: config.margin_mode })
}

/// Refuses, before anything trades, instruments the account's mode cannot trade: swaps in
/// spot mode (OKX would refuse every order with 51010).
pub(crate) fn check_tradable(modes: &convert::TradeModes, specs: &[InstrumentSpec]) -> Result<(), OkxVenueError> {
    let swaps: Vec<&str> =
        specs.iter().filter(|s| s.kind == tradebox_core::InstrumentKind::Swap).map(|s| s.symbol.as_str()).collect();
    if !modes.level.trades_derivatives() && !swaps.is_empty() {
        return Err(OkxVenueError::AccountMode(format!(
            "the account is in {} (acctLv {}), which cannot trade swaps (OKX refuses them with 51010), and the \
             config lists {}: switch the account to Futures mode or a margin mode on OKX (Trade > Settings > \
             Account mode), or take the swaps out of `instruments`",
            modes.level.name(),
            modes.level.code(),
            swaps.join(", ")
        )));
    }
    Ok(())
}

/// OKX's `instType` a configured instrument is listed under (the host trades spot and swaps).
pub(crate) fn inst_type(symbol: &str) -> &'static str {
    if symbol.ends_with("-SWAP") { "SWAP" } else { "SPOT" }
}

/// Why the OKX venue would not start.
#[derive(Debug, thiserror::Error)]
pub enum OkxVenueError {
    /// The connection settings are unusable: a URL that would carry the credentials in clear
    /// text, a certificate pin that cannot be read or would pin nothing.
    #[error("{0}")]
    Settings(String),
    /// A request failed.
    #[error("{what}: {source}")]
    Okx {
        /// What the host was doing.
        what: &'static str,
        /// The failure.
        source: OkxError,
    },
    /// The key may withdraw funds.
    #[error(
        "the API key has withdraw permission ({perm}); a trading host never needs it. Create a key without \
         withdraw, or pass --allow-withdraw-key (allow_withdraw_key = true) if you accept the risk"
    )]
    WithdrawKey {
        /// The key's permissions.
        perm: String,
    },
    /// The key cannot trade.
    #[error("the API key has no trade permission ({perm}); create one with Trade enabled")]
    NoTrade {
        /// The key's permissions.
        perm: String,
    },
    /// The account's mode cannot trade what the config asks for.
    #[error("{0}")]
    AccountMode(String),
    /// A new key (`tradebox keys reload`) was refused; the key in use stays.
    #[error("the new key was not taken, the one in use stays: {0}")]
    KeyRefused(String),
    /// A configured instrument is not listed or not supported.
    #[error("instrument {symbol}: {problem}")]
    Instrument {
        /// Symbol.
        symbol: String,
        /// What is wrong.
        problem: String,
    },
}

fn okx<E: Into<OkxError>>(what: &'static str) -> impl FnOnce(E) -> OkxVenueError {
    move |source| OkxVenueError::Okx { what, source: source.into() }
}

/// What the venue keeps of an order it sent (or adopted at start-up) until the order finishes:
/// what reporting its changes needs (each once, though the private feed and the REST loop both
/// see them), what the REST loop asks OKX by, where its placement stands, and the tag the dead
/// man's switch arms a timer for. Not who the order is for: each command carries that (the
/// engine's tracker is the host's record of orders and their owners).
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub instrument: InstrumentId,
    /// Exchange id; empty while the placement is in flight or its outcome is unknown.
    pub ord_id: String,
    /// The plugin's tag it was sent with (`None` for the host's own, adopted at start-up, which
    /// the account's timer covers).
    pub tag: Option<String>,
    pub placement: Placement,
    /// The last state reported, to report changes only.
    pub last: Option<OrderReport>,
}

/// Where an order's placement stands.
#[derive(Debug, Clone)]
pub(crate) enum Placement {
    /// The request waits for its permits or is on its way (the REST loop leaves it alone);
    /// `withdrawn`: the host cancelled it first, so it is not sent.
    Sending { withdrawn: bool },
    /// OKX answered, or a report or a query told.
    Settled,
    /// The answer was lost and querying has not told yet: the REST loop keeps asking. OKX drops
    /// a request at its expTime, so an order it does not know after `until` was never placed;
    /// `order` is what its report then says.
    Unknown { until: i64, order: Box<NewOrder> },
}

impl Placement {
    /// The host withdrew it before it was sent.
    pub fn withdrawn(&self) -> bool {
        matches!(self, Placement::Sending { withdrawn: true })
    }
}

/// Early withdrawals remembered at most: the host withdraws only orders it has not seen
/// acknowledged, so one is rarely kept long; the oldest goes first.
const EARLY_WITHDRAWALS: usize = 1_024;

/// The OKX venue.
pub struct OkxVenue {
    name: String,
    rest: RestClient,
    limiter: Arc<Limiter>,
    config: OkxConfig,
    specs: Vec<InstrumentSpec>,
    by_symbol: HashMap<String, InstrumentId>,
    events: mpsc::UnboundedSender<VenueEvent>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<VenueEvent>>>,
    sent: Mutex<HashMap<String, Sent>>,
    pub(crate) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    streams: std::sync::OnceLock<Arc<stream::Streams>>,
    ws_up: [std::sync::atomic::AtomicBool; 3],
    reconcile: tokio::sync::Notify,
    fills_seen: Mutex<SeenFills>,
    /// Orders an earlier run left, adopted at start-up, until the host takes them
    /// ([`Venue::adopted_orders`]).
    adopted: Mutex<Vec<OrderReport>>,
    /// Woken when the host withdraws a placement (see [`Venue::withdraw`]).
    withdrawals: tokio::sync::Notify,
    /// Placements withdrawn before they started (see [`OkxVenue::take_early_withdrawal`]).
    early_withdrawals: Mutex<std::collections::VecDeque<String>>,
    /// The account's modes: every order's `tdMode` and `posSide`.
    modes: convert::TradeModes,
    /// The account's `uid`: a rotated key must belong to the same account.
    uid: String,
    /// The audit log (key switches; the new key's secrets are kept out of it).
    audit: Option<Arc<AuditLog>>,
    /// Authentication failures of this key, REST and WebSocket.
    auth_watch: Arc<authwatch::AuthWatch>,
}

/// Fills already reported, by (order id, trade id), and their order of arrival for forgetting.
type SeenFills = (std::collections::HashSet<(String, String)>, std::collections::VecDeque<(String, String)>);

/// Fills remembered to report each once (WebSocket and REST both see them).
const FILLS_REMEMBERED: usize = 100_000;

impl std::fmt::Debug for OkxVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OkxVenue").field("name", &self.name).field("rest", &self.rest).finish_non_exhaustive()
    }
}

impl OkxVenue {
    /// Connects: syncs the clock, checks the key's permissions, loads the instruments and
    /// starts the REST loop. Requests and responses go to `audit` when given.
    pub async fn connect(
        config: OkxConfig,
        credentials: Credentials,
        limiter: Arc<Limiter>,
        audit: Option<Arc<AuditLog>>,
    ) -> Result<Arc<Self>, OkxVenueError> {
        config.check().map_err(OkxVenueError::Settings)?;
        if let Some(log) = &audit {
            for secret in credentials.forbidden_values() {
                log.forbid(secret);
            }
        }
        let (rest_tls, ws_tls) = config.pins.settings().map_err(OkxVenueError::Settings)?;
        let rest_config = RestConfig {
            base_url: config.rest_base(),
            demo: config.demo,
            timeout: Duration::from_millis(config.timeout_ms.max(100)),
            tls: rest_tls,
        };
        let key_hint = credentials.key_hint();
        let mut rest = RestClient::new(rest_config, Some(Signer::new(credentials)), Arc::new(ClockSync::new()))
            .map_err(okx("building the HTTP client"))?;
        let (events, receiver) = mpsc::unbounded_channel();
        let auth_watch = authwatch::AuthWatch::new(config.auth_watch, events.clone());
        let inner = audit.clone().map(|log| log as Arc<dyn tradebox_okx::Observer>);
        rest = rest.with_observer(Arc::new(authwatch::Watching { inner, watch: auth_watch.clone() }));
        // The clock first: every private request is stamped with it. Three samples, so the
        // median already ignores one slow round trip.
        for _ in 0..3 {
            limited::send(&limiter, Request::new(Endpoint::PublicTime, 0), How::STARTING, || rest.sync_clock())
                .await
                .map_err(okx("reading OKX's clock (GET /api/v5/public/time)"))?;
        }
        let offset = rest.clock().offset_ms();
        let account =
            limited::send(&limiter, Request::new(Endpoint::AccountConfig, 0), How::STARTING, || rest.account_config())
                .await
                .map_err(okx("reading the account config"))?;
        if account.can_withdraw() && !config.allow_withdraw_key {
            return Err(OkxVenueError::WithdrawKey { perm: account.perm });
        }
        if !account.can_trade() {
            return Err(OkxVenueError::NoTrade { perm: account.perm });
        }
        let modes = trade_modes(&account, &config)?;
        tracing::info!(
            key = %key_hint,
            perm = %account.perm,
            account_mode = %format!("{} (acctLv {})", modes.level.name(), modes.level.code()),
            position_mode = modes.positions.code(),
            ip_bound = account.ip_bound(),
            sub_account = account.is_sub_account(),
            demo = config.demo,
            clock_offset_ms = offset,
            "OKX key accepted"
        );
        if account.can_withdraw() {
            tracing::warn!("the API key can withdraw funds (allowed by configuration)");
        }
        if !account.ip_bound() {
            tracing::warn!("the API key is not bound to an IP address; OKX recommends binding trading keys");
        }
        let specs = Self::load_instruments(&rest, &limiter, &config.instruments).await?;
        check_tradable(&modes, &specs)?;
        // Before the open orders are read: a fill of an adopted order that lands between the
        // two reads is then after the cursor, and reported.
        let fill_start = sync::fill_start(&rest, &limiter).await;
        let to_adopt = settle_orders_at_start(&rest, &limiter, config.orders_at_start, audit.as_deref()).await?;
        let by_symbol = specs.iter().map(|s| (s.symbol.clone(), s.id)).collect();
        let name = if config.demo { "okx-demo" } else { "okx-live" }.to_string();
        let venue = Arc::new(Self {
            name,
            rest,
            limiter,
            config,
            specs,
            by_symbol,
            events,
            receiver: Mutex::new(Some(receiver)),
            sent: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            streams: std::sync::OnceLock::new(),
            ws_up: Default::default(),
            reconcile: tokio::sync::Notify::new(),
            fills_seen: Mutex::default(),
            adopted: Mutex::default(),
            withdrawals: tokio::sync::Notify::new(),
            early_withdrawals: Mutex::default(),
            modes,
            auth_watch,
            uid: account.uid.clone(),
            audit: audit.clone(),
        });
        // Before the REST loop starts, so its first round already reconciles them.
        venue.adopt(&to_adopt, audit.as_deref());
        let task = sync::spawn(&venue, fill_start);
        venue.tasks.lock().push(task);
        if venue.config.dead_man_s > 0 {
            let task = deadman::dead_man(&venue);
            venue.tasks.lock().push(task);
        }
        if let (true, Some(signer)) = (venue.config.websocket, venue.rest.signer().cloned()) {
            // The REST client's signer, shared: a key rotation changes both at once.
            let login = tradebox_okx::ws::Login { signer, clock: venue.rest.clock().clone() };
            let timing = (
                Duration::from_millis(venue.config.ws_ping_ms.max(100)),
                Duration::from_millis(venue.config.ws_pong_ms.max(100)),
            );
            let streams = stream::Streams::start(&venue, venue.config.ws_base(), login, timing, ws_tls);
            let _ = venue.streams.set(streams);
        }
        Ok(venue)
    }

    async fn load_instruments(
        rest: &RestClient,
        limiter: &Limiter,
        symbols: &[String],
    ) -> Result<Vec<InstrumentSpec>, OkxVenueError> {
        let mut listed: HashMap<&'static str, Vec<tradebox_okx::model::Instrument>> = HashMap::new();
        let mut specs = Vec::with_capacity(symbols.len());
        for (i, symbol) in symbols.iter().enumerate() {
            let inst_type = inst_type(symbol);
            if !listed.contains_key(inst_type) {
                let key = if inst_type == "SPOT" { 1 } else { 2 };
                let request = Request::new(Endpoint::Instruments, key);
                let all = limited::send(limiter, request, How::STARTING, || rest.instruments(inst_type))
                    .await
                    .map_err(okx("listing instruments"))?;
                listed.insert(inst_type, all);
            }
            let found = listed.get(inst_type).and_then(|all| all.iter().find(|x| &x.inst_id == symbol));
            let instrument = found.ok_or_else(|| OkxVenueError::Instrument {
                symbol: symbol.clone(),
                problem: format!("not listed by the exchange among {inst_type} instruments"),
            })?;
            let spec = convert::spec(i as InstrumentId + 1, instrument)
                .map_err(|problem| OkxVenueError::Instrument { symbol: symbol.clone(), problem })?;
            specs.push(spec);
        }
        Ok(specs)
    }

    /// The REST client (for diagnostics and tests).
    pub fn rest(&self) -> &RestClient {
        &self.rest
    }

    /// The limiter shared by every request of this account.
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    pub(crate) fn specs(&self) -> &[InstrumentSpec] {
        &self.specs
    }

    pub(crate) fn spec(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.specs.get((id as usize).checked_sub(1)?)
    }

    pub(crate) fn instrument_id(&self, symbol: &str) -> Option<InstrumentId> {
        self.by_symbol.get(symbol).copied()
    }

    pub(crate) fn emit(&self, event: VenueEvent) {
        let _ = self.events.send(event);
    }

    /// Tracks the orders an earlier run left (`orders_at_start = "adopt"`) as this venue's
    /// own, so that their changes and fills are reported like those of the orders it sends.
    fn adopt(&self, found: &[tradebox_okx::model::OrderDetails], audit: Option<&AuditLog>) {
        if found.is_empty() {
            return;
        }
        let mut adopted = Vec::new();
        for d in found {
            let what = describe(d);
            let report = convert::report(self, d).filter(|r| !r.status.is_terminal());
            let detail = match report {
                Some(report) => {
                    let sent = Sent {
                        instrument: report.instrument,
                        ord_id: report.venue_id.clone(),
                        tag: None,
                        placement: Placement::Settled,
                        last: Some(report.clone()),
                    };
                    self.sent.lock().insert(report.client_id.clone(), sent);
                    adopted.push(report);
                    format!("adopted: {what}")
                }
                None => format!("left open (not an instrument this host trades): {what}"),
            };
            if let Some(log) = audit {
                log.append(
                    None,
                    None,
                    &crate::audit::Entry::State { event: crate::audit::StateChange::OrderAtStart, detail },
                );
            }
        }
        tracing::warn!(
            found = found.len(),
            adopted = adopted.len(),
            "adopted the open orders an earlier run left on the account (orders_at_start = \"adopt\"): the account kill switch cancels them"
        );
        *self.adopted.lock() = adopted;
    }

    /// Orders this venue sent (or adopted) that have not finished, with what is known of each.
    pub(crate) fn sent(&self) -> &Mutex<HashMap<String, Sent>> {
        &self.sent
    }

    pub(crate) fn withdrawals(&self) -> &tokio::sync::Notify {
        &self.withdrawals
    }

    /// True (and forgotten) when the host withdrew `client_id` before its placement started.
    /// Called with the `sent` lock held, as [`Venue::withdraw`] takes them in that order.
    pub(crate) fn take_early_withdrawal(&self, client_id: &str) -> bool {
        let mut early = self.early_withdrawals.lock();
        match early.iter().position(|id| id == client_id) {
            Some(i) => {
                early.remove(i);
                true
            }
            None => false,
        }
    }

    pub(crate) fn config(&self) -> &OkxConfig {
        &self.config
    }

    /// How the account trades (account mode, position mode, margin), as read at start-up.
    pub fn trade_modes(&self) -> convert::TradeModes {
        self.modes
    }

    /// Stops talking to OKX: the REST loop, the feeds and the dead man's switch heartbeat end.
    /// Open orders stay on the exchange, and the switch (if armed) cancels them when it runs out.
    pub fn shutdown(&self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        if let Some(s) = self.streams.get() {
            s.stop();
        }
    }

    /// The authentication-failure watch.
    pub fn auth_watch(&self) -> &authwatch::AuthWatch {
        &self.auth_watch
    }

    /// The WebSocket feeds' counters (when the feeds are on).
    pub fn stream_stats(&self) -> Option<Arc<stream::StreamStats>> {
        self.streams.get().map(|s| s.stats.clone())
    }

    fn ws_index(endpoint: stream::Endpoint) -> usize {
        match endpoint {
            stream::Endpoint::Public => 0,
            stream::Endpoint::Business => 1,
            stream::Endpoint::Private => 2,
        }
    }

    pub(crate) fn set_ws_up(&self, endpoint: stream::Endpoint, up: bool) {
        self.ws_up[Self::ws_index(endpoint)].store(up, std::sync::atomic::Ordering::Release);
    }

    /// Whether an endpoint's WebSocket is connected.
    pub fn ws_up(&self, endpoint: stream::Endpoint) -> bool {
        self.ws_up[Self::ws_index(endpoint)].load(std::sync::atomic::Ordering::Acquire)
    }

    /// Asks the REST loop for a reconciliation round now.
    pub(crate) fn request_reconcile(&self) {
        self.reconcile.notify_one();
    }

    pub(crate) async fn reconcile_requested(&self) {
        self.reconcile.notified().await;
    }

    /// Reports a fill unless it was reported already (by order id and trade id).
    pub(crate) fn emit_fill(&self, ord_id: &str, fill: tradebox_core::FillReport) {
        let key = (ord_id.to_string(), fill.trade_id.clone());
        {
            let mut seen = self.fills_seen.lock();
            if !seen.0.insert(key.clone()) {
                return;
            }
            seen.1.push_back(key);
            while seen.1.len() > FILLS_REMEMBERED {
                if let Some(old) = seen.1.pop_front() {
                    seen.0.remove(&old);
                }
            }
        }
        self.emit(VenueEvent::Fill(fill));
    }
}

fn changed(last: Option<&OrderReport>, now: &OrderReport) -> bool {
    last.is_none_or(|l| l.status != now.status || l.filled != now.filled || l.size != now.size || l.price != now.price)
}

impl OkxVenue {
    /// Reports a state if it changed; forgets the order once it is finished. Orders this venue
    /// did not send (or already finished) are not reported. Both the WebSocket feed and the REST
    /// loop report through it, so each change is reported once.
    pub(crate) fn publish(&self, report: OrderReport) {
        let mut sent = self.sent.lock();
        let Some(entry) = sent.get_mut(&report.client_id) else { return };
        if entry.ord_id.is_empty() {
            entry.ord_id = report.venue_id.clone();
            // OKX has it: a lost answer is settled.
            if matches!(entry.placement, Placement::Unknown { .. }) {
                entry.placement = Placement::Settled;
            }
        }
        if !changed(entry.last.as_ref(), &report) {
            return;
        }
        entry.last = Some(report.clone());
        if report.status.is_terminal() {
            sent.remove(&report.client_id);
        }
        drop(sent);
        self.emit(VenueEvent::Order(report));
    }
}

impl Drop for OkxVenue {
    fn drop(&mut self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

#[async_trait::async_trait]
impl Venue for OkxVenue {
    fn name(&self) -> &str {
        &self.name
    }

    fn instruments(&self) -> Vec<InstrumentSpec> {
        self.specs.clone()
    }

    fn adopted_orders(&self) -> Vec<OrderReport> {
        std::mem::take(&mut *self.adopted.lock())
    }

    fn concurrent(&self) -> bool {
        true
    }

    fn status(&self) -> Option<tradebox_core::VenueStatus> {
        /// The endpoints whose bucket key is an instrument id (others are keyed by an
        /// instrument type or a tag's hash, or not at all).
        fn keyed_by_instrument(e: Endpoint) -> bool {
            use Endpoint::*;
            matches!(e, Place | Cancel | Amend | OrderDetails | BatchPlace | BatchCancel | BatchAmend)
        }
        use std::sync::atomic::Ordering::Relaxed;
        use tradebox_core::{AuthFailureStatus, FeedStatus, RateLimitStatus, VenueStatus};
        let l = &self.limiter.stats;
        let waited = l.waited.load(Relaxed);
        let avg_wait_ms = if waited == 0 { 0.0 } else { l.wait_us.load(Relaxed) as f64 / waited as f64 / 1_000.0 };
        let rate_limits = RateLimitStatus {
            immediate: l.immediate.load(Relaxed),
            waited,
            avg_wait_ms,
            refused: l.refused.load(Relaxed),
            backoffs: l.penalties.load(Relaxed),
            fullest: self
                .limiter
                .fullest(8)
                .into_iter()
                .map(|b| tradebox_core::RateBucket {
                    instrument: b
                        .endpoint
                        .filter(|e| keyed_by_instrument(*e))
                        .and_then(|_| self.spec(b.key))
                        .map(|s| s.symbol.clone()),
                    scope: b.endpoint.map_or_else(|| "OrderCap".to_string(), |e| format!("{e:?}")),
                    plugin: b.plugin,
                    used: b.used,
                    capacity: b.capacity,
                    window_ms: b.window_ms,
                    blocked_ms: b.blocked_ms,
                })
                .collect(),
        };
        let recent = u64::from(self.auth_watch.recent(std::time::Instant::now()));
        let auth_failures = (recent > 0).then(|| AuthFailureStatus {
            recent,
            window_s: self.config.auth_watch.window_s,
            total: self.auth_watch.total.load(Relaxed),
        });
        let feeds = self.stream_stats().map(|s| FeedStatus {
            public_up: self.ws_up(stream::Endpoint::Public),
            private_up: Some(self.ws_up(stream::Endpoint::Private)),
            frames: s.frames.load(Relaxed),
            unreadable: s.bad_frames.load(Relaxed),
            book_gaps: s.book_gaps.load(Relaxed),
            checksum_mismatches: s.checksum_mismatches.load(Relaxed),
            reconnects: s.reconnects.load(Relaxed),
        });
        Some(VenueStatus { rate_limits: Some(rate_limits), auth_failures, feeds })
    }

    fn metrics(&self) -> Vec<tradebox_core::VenueMetric> {
        use std::sync::atomic::Ordering::Relaxed;
        let metric =
            |name, help, counter, value: u64| tradebox_core::VenueMetric { name, help, counter, value: value as f64 };
        let l = &self.limiter.stats;
        let mut out = vec![
            metric(
                "tradebox_okx_requests_immediate",
                "Requests the rate limiter let through at once",
                true,
                l.immediate.load(Relaxed),
            ),
            metric(
                "tradebox_okx_requests_waited",
                "Requests that waited for the rate limiter",
                true,
                l.waited.load(Relaxed),
            ),
            metric(
                "tradebox_okx_requests_refused",
                "Requests refused by the rate limiter (the wait was too long)",
                true,
                l.refused.load(Relaxed),
            ),
            metric(
                "tradebox_okx_rate_limit_backoffs",
                "Back-offs after OKX answered too many requests",
                true,
                l.penalties.load(Relaxed),
            ),
        ];
        out.push(metric(
            "tradebox_okx_auth_failures",
            "Requests and WebSocket logins refused authentication (50100-50120, 60004-60009, 60024)",
            true,
            self.auth_watch.total.load(Relaxed),
        ));
        out.push(metric(
            "tradebox_okx_auth_failures_recent",
            "Authentication failures within the watch's window",
            false,
            u64::from(self.auth_watch.recent(std::time::Instant::now())),
        ));
        out.push(tradebox_core::VenueMetric {
            name: "tradebox_okx_rate_limit_wait_seconds",
            help: "Time spent waiting for the rate limiter",
            counter: true,
            value: l.wait_us.load(Relaxed) as f64 / 1e6,
        });
        if let Some(s) = self.stream_stats() {
            out.extend([
                metric("tradebox_okx_ws_frames", "WebSocket frames received", true, s.frames.load(Relaxed)),
                metric(
                    "tradebox_okx_ws_bad_frames",
                    "WebSocket frames that could not be read",
                    true,
                    s.bad_frames.load(Relaxed),
                ),
                metric(
                    "tradebox_okx_ws_book_gaps",
                    "Order book sequence gaps (book resubscribed)",
                    true,
                    s.book_gaps.load(Relaxed),
                ),
                metric(
                    "tradebox_okx_ws_checksum_mismatches",
                    "Order book checksum mismatches",
                    true,
                    s.checksum_mismatches.load(Relaxed),
                ),
                metric("tradebox_okx_ws_reconnects", "WebSocket reconnects", true, s.reconnects.load(Relaxed)),
                metric(
                    "tradebox_okx_ws_public_up",
                    "Public feed connected (1) or not (0)",
                    false,
                    u64::from(self.ws_up(stream::Endpoint::Public)),
                ),
                metric(
                    "tradebox_okx_ws_private_up",
                    "Private feed connected (1) or not (0)",
                    false,
                    u64::from(self.ws_up(stream::Endpoint::Private)),
                ),
            ]);
        }
        out
    }

    fn clock(&self) -> tradebox_core::Clock {
        self.rest.clock().clock()
    }

    fn position_mode(&self) -> tradebox_core::PositionMode {
        self.modes.position_mode()
    }

    fn candles_from_trades(&self) -> bool {
        // OKX publishes candles (candle1m); without the feeds there are none to build from.
        !self.config.websocket
    }

    async fn subscribe(&self, instrument: InstrumentId, channel: tradebox_core::Channel) -> Result<(), VenueError> {
        if let (Some(streams), Some(spec)) = (self.streams.get(), self.spec(instrument)) {
            streams.subscribe(&spec.symbol, channel);
        }
        Ok(())
    }

    async fn unsubscribe(&self, instrument: InstrumentId, channel: tradebox_core::Channel) -> Result<(), VenueError> {
        if let (Some(streams), Some(spec)) = (self.streams.get(), self.spec(instrument)) {
            streams.unsubscribe(&spec.symbol, channel);
        }
        Ok(())
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<VenueEvent>> {
        self.receiver.lock().take()
    }

    async fn place(&self, order: NewOrder) -> Result<PlaceAck, VenueError> {
        orders::place(self, order).await
    }

    async fn cancel(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        orders::cancel(self, instrument, client_id, origin, false).await
    }

    fn withdraw(&self, client_id: &str) {
        let mut sent = self.sent.lock();
        match sent.get_mut(client_id) {
            // Only a placement not yet answered: once OKX has the order, the cancel goes for it.
            Some(Sent { placement: Placement::Sending { withdrawn }, ord_id, .. }) if ord_id.is_empty() => {
                *withdrawn = true;
                self.withdrawals.notify_waiters();
            }
            Some(_) => {}
            // Its placement has not started (the sender called this for an order it has not
            // acknowledged): remembered, so that `place` does not send it when it does.
            None => {
                let mut early = self.early_withdrawals.lock();
                if early.len() >= EARLY_WITHDRAWALS {
                    early.pop_front();
                }
                early.push_back(client_id.to_string());
            }
        }
    }

    async fn cancel_for_host(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        orders::cancel(self, instrument, client_id, origin, true).await
    }

    async fn reload_keys(&self) -> Result<KeySwitch, KeyReloadError> {
        OkxVenue::reload_keys(self).await.map_err(|e| KeyReloadError::Refused(e.to_string()))
    }

    async fn amend(
        &self,
        instrument: InstrumentId,
        client_id: &str,
        new_price: Option<Decimal>,
        new_size: Option<Decimal>,
        origin: Option<&Origin>,
    ) -> Result<(), VenueError> {
        orders::amend(self, instrument, client_id, new_price, new_size, origin).await
    }

    async fn open_orders(&self) -> Result<Vec<OrderReport>, VenueError> {
        let pending = self
            .limited(Request::new(Endpoint::PendingOrders, 0), How::ONCE, || self.rest.pending_orders(None, None))
            .await
            .map_err(orders::refused)?;
        Ok(pending.iter().filter_map(|d| convert::report(self, d)).collect())
    }

    async fn balances(&self) -> Result<Vec<BalanceReport>, VenueError> {
        let balance = self
            .limited(Request::new(Endpoint::Balance, 0), How::ONCE, || self.rest.balance(&[]))
            .await
            .map_err(orders::refused)?;
        Ok(balance.details.iter().map(convert::balance).collect())
    }

    async fn positions(&self) -> Result<Vec<PositionReport>, VenueError> {
        let positions = self
            .limited(Request::new(Endpoint::Positions, 0), How::ONCE, || self.rest.positions(None))
            .await
            .map_err(orders::refused)?;
        Ok(positions.iter().filter_map(|p| convert::position(self, p)).collect())
    }
}
