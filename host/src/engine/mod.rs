//! The engine: shared host state, the one choke point for orders, and event routing.
//!
//! Data flows one way. Venue events enter through [`router`], update the [`Hub`] (order
//! tracker, positions, quotes, balances) and go to plugin [`Mailbox`]es. Intents from plugins
//! (and any other order source) enter through the gateway methods on [`Hub`]: permission →
//! normalise → client order id → risk's approval (`crate::risk::AccountRisk::approve`) →
//! audit → tracker → the sender task → venue. Nothing else sends orders: a [`Command`] that
//! places or amends takes only a `crate::risk::Approved` request.

pub mod activity;
pub mod event;
mod gateway;
pub mod ids;
pub mod mailbox;
pub mod normalize;
pub mod permissions;
pub mod router;
pub mod tracker;

pub use event::{PluginEvent, Scope};
pub use mailbox::Mailbox;
pub use permissions::{Grants, Missing, Permissions, Requested};
pub use tracker::{PluginId, PluginPosition, TrackedOrder};

use crate::audit::{AuditLog, Entry};
use crate::risk::Approved;
use activity::{Activity, ActivitySink};
use parking_lot::{Mutex, RwLock};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rustc_hash::FxHashMap;
use tradebox_core::{BalanceReport, InstrumentId, InstrumentSpec, NewOrder, OrderKind, OrderReport, Origin, Side};
use tradebox_core::{Channel, Clock, Denial, DenialCode, Quote, TradingState};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

pub use crate::risk::{AccountLimits, RiskLimits};

/// Counters per plugin, for the status display and tests.
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Intents accepted and sent.
    pub orders_sent: AtomicU64,
    /// Requests denied by the host: order intents and market data subscriptions.
    pub denied: AtomicU64,
    /// Orders the venue rejected.
    pub rejected: AtomicU64,
    /// Fills received.
    pub fills: AtomicU64,
    /// `denied` by code, indexed by [`DenialCode::index`] (the console shows which limits a
    /// plugin runs into).
    by_code: [AtomicU64; DenialCode::ALL.len()],
}

impl PluginStats {
    /// Counts one denied request.
    pub fn count_denial(&self, code: DenialCode) {
        self.denied.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.by_code.get(code.index()) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Denials so far by code, the codes never met left out.
    pub fn denials_by_code(&self) -> Vec<(DenialCode, u64)> {
        DenialCode::ALL
            .iter()
            .zip(&self.by_code)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// A loaded plugin as the engine sees it: identity, grants, limits, inbox.
pub struct PluginSlot {
    /// Slot number (part of its client order ids).
    pub id: PluginId,
    /// Operator-given name.
    pub name: String,
    /// Who its orders come from: slot, name and component hash (for venues and the audit log).
    /// A hot reload swaps the hash.
    origin: RwLock<Arc<Origin>>,
    /// What it may touch: the grant intersected with its manifest's request. A reload may
    /// bring a manifest that asks for less.
    permissions: RwLock<Arc<Permissions>>,
    /// Its risk state: limits (the admin API may change them while it runs), windows, loss
    /// watch, subscription budget.
    pub risk: crate::risk::PluginRisk,
    /// Its inbox.
    pub mailbox: Arc<Mailbox>,
    /// Counters.
    pub stats: PluginStats,
    state: AtomicU8,
    /// Its commands accepted and not yet sent (see [`Ticket`]).
    queued: Arc<AtomicUsize>,
    /// How many of its refusals are still written one by one.
    refusals: Mutex<crate::audit::RefusalBudget>,
    subscriptions: Mutex<HashSet<(InstrumentId, Channel)>>,
}

impl PluginSlot {
    /// The risk limits its orders are checked against: the operator's, lowered to the
    /// author's own ceiling where its manifest asked for less (narrowing only tightens).
    pub fn effective_risk(&self) -> RiskLimits {
        let mut limits = self.risk.limits();
        if let Some(requested) = &self.permissions.read().requested {
            permissions::narrow(&mut limits, requested);
        }
        limits
    }

    /// Who its orders come from now: slot, name and the hash of the component serving it.
    pub fn origin(&self) -> Arc<Origin> {
        self.origin.read().clone()
    }

    /// A reload put another component behind the slot: its orders and audit records name it.
    pub(crate) fn set_hash(&self, hash: &str) {
        let mut origin = self.origin.write();
        *origin = Arc::new(Origin { hash: hash.to_string(), ..(**origin).clone() });
    }

    /// What it may touch now.
    pub fn permissions(&self) -> Arc<Permissions> {
        self.permissions.read().clone()
    }

    /// Puts new permissions in force (a reload's manifest); returns the old ones.
    pub(crate) fn set_permissions(&self, permissions: Permissions) -> Arc<Permissions> {
        std::mem::replace(&mut *self.permissions.write(), Arc::new(permissions))
    }

    /// Its trading state.
    pub fn state(&self) -> TradingState {
        TradingState::from_u8(self.state.load(Ordering::Acquire))
    }
}

/// A request to the venue, in the order the gateway accepted it.
#[derive(Debug)]
pub enum Command {
    /// Answer once every earlier command has been sent.
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Send a new order (only risk approves one).
    Place(Approved<NewOrder>),
    /// Cancel one order.
    Cancel {
        /// Instrument.
        instrument: InstrumentId,
        /// Client order id.
        client_id: String,
        /// The host's own cancel (kill switch, breaker, unload, failure policy): not charged to
        /// the plugin's share of the exchange's limits.
        by_host: bool,
        /// The owner's (`None` for the host's own orders): the venue tags the request with it
        /// and charges a plugin's own cancel to its share, so it keeps no record of owners.
        origin: Option<Arc<Origin>>,
    },
    /// Start the venue's stream (the first subscriber arrived).
    Subscribe(InstrumentId, Channel),
    /// Stop it (the last subscriber left).
    Unsubscribe(InstrumentId, Channel),
    /// Amend one order (only risk approves one).
    Amend(Approved<Amend>),
}

/// A change of an open order's price and/or total size, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Amend {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Client order id.
    pub client_id: String,
    /// New price.
    pub price: Option<Decimal>,
    /// New total size.
    pub size: Option<Decimal>,
    /// The plugin amending it: the venue tags the request with it and charges it to its share.
    pub origin: Arc<Origin>,
}

impl Command {
    /// What it is about, for ordering: commands with the same key reach the venue in the order
    /// they were accepted (an order's client id; a market data stream). `None` for a flush.
    pub fn key(&self) -> Option<String> {
        match self {
            Command::Flush(_) => None,
            Command::Place(order) => Some(order.client_id.clone()),
            Command::Cancel { client_id, .. } => Some(client_id.clone()),
            Command::Amend(amend) => Some(amend.client_id.clone()),
            Command::Subscribe(i, c) | Command::Unsubscribe(i, c) => Some(format!("stream {i} {c:?}")),
        }
    }
}

/// Requests to the venue one plugin may have queued and not yet sent: past it, its next
/// intent is refused (`QUEUE_FULL`) instead of waiting or growing the queue.
pub const MAX_QUEUED: usize = 256;

/// A plugin's place in the queue: taken when its command is accepted, given back when the
/// sender is done with it (dropped), so the count costs O(1) on both ends.
#[derive(Debug)]
pub struct Ticket(Arc<AtomicUsize>);

impl Ticket {
    /// Takes a place in `queued`, or refuses when [`MAX_QUEUED`] are taken.
    fn take(queued: &Arc<AtomicUsize>) -> Result<Self, Denial> {
        if queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED {
            queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Denial::limit(
                DenialCode::QueueFull,
                "too many requests queued for the venue; wait for them to go",
                MAX_QUEUED as f64,
                MAX_QUEUED as f64 + 1.0,
            ));
        }
        Ok(Self(queued.clone()))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A command on the plugins' lane, with its plugin's ticket (none for the host's own
/// subscription changes and flushes).
#[derive(Debug)]
pub struct Queued {
    /// What to send.
    pub command: Command,
    /// The sender drops it once the command is done.
    pub ticket: Option<Ticket>,
}

/// The two lanes the sender task reads. The host's own commands (the kill switch's cancels,
/// the breaker's, unload's, a failure policy's) have a lane of their own that the sender always
/// empties first: no plugin can fill it or queue ahead of it.
pub struct Lanes {
    /// Plugins' commands (bounded per plugin by [`MAX_QUEUED`]).
    pub plugins: mpsc::UnboundedReceiver<Queued>,
    /// The host's commands.
    pub host: mpsc::UnboundedReceiver<Command>,
}

impl Lanes {
    /// The next command, the host's lane first.
    pub async fn recv(&mut self) -> Option<(Command, Option<Ticket>)> {
        tokio::select! {
            biased;
            Some(c) = self.host.recv() => Some((c, None)),
            Some(q) = self.plugins.recv() => Some((q.command, q.ticket)),
            else => None,
        }
    }

    /// The next command already queued, the host's lane first (tests, benchmarks).
    pub fn try_recv(&mut self) -> Result<Command, mpsc::error::TryRecvError> {
        match self.host.try_recv() {
            Ok(c) => Ok(c),
            Err(_) => self.plugins.try_recv().map(|q| q.command),
        }
    }
}

/// Shared host state. One per host; plugins and the router hold an `Arc`.
pub struct Hub {
    // Small integer keys read on every intent and event: a fast hash (no untrusted keys).
    instruments: FxHashMap<InstrumentId, InstrumentSpec>,
    by_symbol: HashMap<String, InstrumentId>,
    quotes: RwLock<FxHashMap<InstrumentId, Quote>>,
    tracker: Mutex<tracker::Tracker>,
    balances: RwLock<BTreeMap<String, BalanceReport>>,
    plugins: RwLock<HashMap<PluginId, Arc<PluginSlot>>>,
    routes: RwLock<Routes>,
    /// What [`Hub::subscribers`] answers for a stream nobody follows (no allocation per event).
    no_subscribers: Arc<[Arc<PluginSlot>]>,
    commands: mpsc::UnboundedSender<Queued>,
    host_commands: mpsc::UnboundedSender<Command>,
    minter: ids::ClientIdMinter,
    account_state: AtomicU8,
    next_plugin: AtomicU32,
    activity: OnceLock<Arc<dyn ActivitySink>>,
    audit: OnceLock<Arc<AuditLog>>,
    account_risk: crate::risk::AccountRisk,
    /// The venue account's position mode, set once at start ([`Hub::set_position_mode`]).
    position_mode: OnceLock<tradebox_core::PositionMode>,
    /// The one clock the engine and its plugins read (the venue's).
    clock: Clock,
}

/// Subscribers per market data stream. A shared slice: the router takes it with one reference
/// count per event (no copy, no allocation); subscribing, rare, builds a new one.
type Routes = FxHashMap<(InstrumentId, Channel), Arc<[Arc<PluginSlot>]>>;

/// A new order as a plugin (or any other source) asks for it: floats, not yet normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderIntent {
    /// Instrument handle.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderKind,
    /// Limit price (ignored for market orders).
    pub price: Option<f64>,
    /// Size.
    pub size: f64,
    /// Only reduce the position.
    pub reduce_only: bool,
}

impl Hub {
    /// A hub for these instruments on the machine's clock; returns the lanes the sender task
    /// drains.
    pub fn new(instruments: Vec<InstrumentSpec>) -> (Arc<Self>, Lanes) {
        Self::with_clock(instruments, Clock::system())
    }

    /// A hub for these instruments reading time from `clock` (the venue's): order ids, audit
    /// stamps, risk windows, quote ages, plugin time and timers.
    pub fn with_clock(instruments: Vec<InstrumentSpec>, clock: Clock) -> (Arc<Self>, Lanes) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (host_tx, host_rx) = mpsc::unbounded_channel();
        let by_symbol = instruments.iter().map(|s| (s.symbol.clone(), s.id)).collect();
        let start = u64::try_from(clock.now_ms() / 1_000).unwrap_or(0);
        let hub = Hub {
            instruments: instruments.into_iter().map(|s| (s.id, s)).collect(),
            by_symbol,
            quotes: RwLock::default(),
            tracker: Mutex::default(),
            balances: RwLock::default(),
            plugins: RwLock::default(),
            routes: RwLock::default(),
            no_subscribers: Arc::from([]),
            commands: tx,
            host_commands: host_tx,
            minter: ids::ClientIdMinter::new(start),
            account_state: AtomicU8::new(TradingState::Active as u8),
            next_plugin: AtomicU32::new(1),
            activity: OnceLock::new(),
            audit: OnceLock::new(),
            account_risk: crate::risk::AccountRisk::default(),
            position_mode: OnceLock::new(),
            clock,
        };
        (Arc::new(hub), Lanes { plugins: rx, host: host_rx })
    }

    /// Tells the hub the venue account's position mode (before any order): in long/short mode
    /// each order trades the long or the short position of its instrument, and positions are
    /// kept per side.
    pub fn set_position_mode(&self, mode: tradebox_core::PositionMode) {
        if self.position_mode.set(mode).is_err() {
            tracing::warn!("the position mode was already set; keeping the first");
        }
    }

    /// The venue account's position mode (net unless the venue said otherwise).
    pub fn position_mode(&self) -> tradebox_core::PositionMode {
        self.position_mode.get().copied().unwrap_or_default()
    }

    /// The clock the engine reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Sends every intent, risk decision, order change and fill to `audit` from now on, stamped
    /// by the hub's clock.
    pub fn attach_audit(&self, audit: Arc<AuditLog>) {
        audit.use_clock(self.clock.clone());
        if self.audit.set(audit).is_err() {
            tracing::warn!("an audit log was already attached; keeping the first");
        }
    }

    /// The attached audit log.
    pub fn audit(&self) -> Option<&Arc<AuditLog>> {
        self.audit.get()
    }

    /// Writes `entry` to the audit log, if one is attached; false when it could not be written.
    pub(crate) fn audit_entry(&self, origin: Option<&Origin>, entry: Entry) -> bool {
        match self.audit.get() {
            Some(log) => log.append(origin.map(|o| o.name.as_str()), origin.map(|o| o.hash.as_str()), &entry),
            None => true,
        }
    }

    // ----- plugins -----

    /// Registers a plugin without a component (tests, host-side strategies) and returns its slot.
    pub fn register(&self, name: &str, grants: Grants, risk: RiskLimits) -> Arc<PluginSlot> {
        self.register_component(name, "", Permissions::granted_only(grants), risk)
    }

    /// Registers the plugin built from the component with sha256 `hash`.
    pub fn register_component(
        &self,
        name: &str,
        hash: &str,
        permissions: Permissions,
        risk: RiskLimits,
    ) -> Arc<PluginSlot> {
        let mut id = self.next_plugin.fetch_add(1, Ordering::Relaxed);
        if id == tracker::HOST {
            // Wrapped after 2^32 registrations: 0 is the host's own.
            id = self.next_plugin.fetch_add(1, Ordering::Relaxed);
        }
        let slot = Arc::new(PluginSlot {
            id,
            name: name.to_string(),
            origin: RwLock::new(Arc::new(Origin { plugin: id, name: name.to_string(), hash: hash.to_string() })),
            permissions: RwLock::new(Arc::new(permissions)),
            risk: crate::risk::PluginRisk::new(risk),
            mailbox: Arc::new(Mailbox::new()),
            stats: PluginStats::default(),
            state: AtomicU8::new(TradingState::Active as u8),
            queued: Arc::default(),
            refusals: Mutex::new(crate::audit::RefusalBudget::new(self.clock.moment())),
            subscriptions: Mutex::default(),
        });
        self.plugins.write().insert(id, slot.clone());
        slot
    }

    /// Removes a plugin: its routes go, its inbox closes. Its orders stay tracked so late
    /// reports still update positions.
    pub fn unregister(&self, plugin: PluginId) {
        if let Some(slot) = self.plugins.write().remove(&plugin) {
            if let Some(entry) = slot.refusals.lock().summary(self.clock.moment(), true) {
                self.audit_entry(Some(&slot.origin()), entry);
            }
            for (key, subs) in self.routes.write().iter_mut() {
                let before = subs.len();
                *subs = subs.iter().filter(|s| s.id != plugin).cloned().collect();
                if before > 0 && subs.is_empty() {
                    // The lane its subscribe took, so the unsubscribe never overtakes it.
                    let unsubscribe = Command::Unsubscribe(key.0, key.1);
                    let _ = self.commands.send(Queued { command: unsubscribe, ticket: None });
                }
            }
            slot.mailbox.close();
        }
    }

    /// Every registered plugin.
    pub fn plugins(&self) -> Vec<Arc<PluginSlot>> {
        let mut v: Vec<_> = self.plugins.read().values().cloned().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    pub(crate) fn plugin(&self, id: PluginId) -> Option<Arc<PluginSlot>> {
        self.plugins.read().get(&id).cloned()
    }

    // ----- views -----

    /// An instrument by handle.
    pub fn instrument(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.instruments.get(&id)
    }

    /// An instrument by symbol.
    pub fn instrument_by_symbol(&self, symbol: &str) -> Option<&InstrumentSpec> {
        self.by_symbol.get(symbol).and_then(|id| self.instruments.get(id))
    }

    /// Every instrument, by handle.
    pub fn instruments(&self) -> Vec<&InstrumentSpec> {
        let mut v: Vec<_> = self.instruments.values().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Best bid/ask and last.
    pub fn quote(&self, id: InstrumentId) -> Option<Quote> {
        self.quotes.read().get(&id).copied()
    }

    /// Whether any plugin follows `channel` of `instrument` (a driver that makes its own
    /// market events skips building the ones nobody hears).
    pub fn followed(&self, instrument: InstrumentId, channel: Channel) -> bool {
        self.routes.read().get(&(instrument, channel)).is_some_and(|subs| !subs.is_empty())
    }

    /// Sets an instrument's quote as a ticker nobody follows would (a backtest's bar close):
    /// what risk reads, stamped now on the hub's clock.
    pub fn set_quote(&self, id: InstrumentId, bid: f64, ask: f64, last: f64) {
        let quote = Quote { bid, bid_size: 0.0, ask, ask_size: 0.0, last, received: Some(self.clock.moment()) };
        self.quotes.write().insert(id, quote);
    }

    /// Takes over the orders an earlier run left open (see [`tracker::HOST`]); the venue has
    /// audited each, and gives only orders on instruments this host trades.
    pub(crate) fn adopt_orders(&self, reports: Vec<OrderReport>) {
        for report in reports {
            let Some(spec) = self.instrument(report.instrument) else { continue };
            let multiplier =
                if spec.kind == tradebox_core::InstrumentKind::Swap { spec.contract_value } else { Decimal::ONE };
            let unit = report.price.and_then(|p| (p * multiplier).to_f64()).unwrap_or(0.0);
            self.tracker.lock().adopt(&report, unit);
        }
    }

    /// Open orders the host adopted at start-up and still tracks.
    pub fn adopted_open(&self) -> usize {
        self.tracker.lock().summary(tracker::HOST).map_or(0, |s| s.count)
    }

    pub(crate) fn seed_balance(&self, balance: BalanceReport) {
        self.balances.write().insert(balance.currency.clone(), balance);
    }

    /// Account balances.
    pub fn balances(&self) -> Vec<BalanceReport> {
        self.balances.read().values().cloned().collect()
    }

    /// True when `slot` may see the balance of `currency`: it is the base or quote of an
    /// instrument the plugin may trade. A plugin learns nothing of the rest of the account.
    pub fn balance_visible(&self, slot: &PluginSlot, currency: &str) -> bool {
        let permissions = slot.permissions.read();
        self.instruments
            .values()
            .any(|i| (i.base == currency || i.quote == currency) && permissions.allows_instrument(&i.symbol))
    }

    /// The host's record of one order (any owner), while it is tracked.
    pub fn order(&self, client_id: &str) -> Option<TrackedOrder> {
        self.tracker.lock().order(client_id).cloned()
    }

    /// A plugin's open orders.
    pub fn open_orders(&self, plugin: PluginId) -> Vec<OrderReport> {
        self.tracker.lock().open_orders(plugin).map(|t| t.report.clone()).collect()
    }

    /// Every open order with its owner's slot (0: the host's own, adopted at start), for
    /// the console's list of orders no loaded plugin owns.
    pub fn all_open_orders(&self) -> Vec<(PluginId, OrderReport)> {
        self.tracker.lock().all_open_orders().map(|t| (t.plugin, t.report.clone())).collect()
    }

    /// A plugin's positions.
    pub fn positions(&self, plugin: PluginId) -> Vec<(InstrumentId, PluginPosition)> {
        let mut v = self.tracker.lock().positions(plugin);
        v.sort_by_key(|(i, _)| *i);
        v
    }

    /// A plugin's PnL marked to mid: (realised, unrealised, fees), in quote currency.
    pub fn pnl(&self, plugin: PluginId) -> (f64, f64, f64) {
        let mut totals = (0.0, 0.0, 0.0);
        for (instrument, pos) in self.positions(plugin) {
            totals.0 += pos.realized.to_f64().unwrap_or(0.0);
            totals.2 += pos.fees.to_f64().unwrap_or(0.0);
            let mark = self.quote(instrument).and_then(|q| q.mid());
            // The mark as the decimal it prints as (the shortest that reads back as the same
            // float): a price of 509.0 counts as 509, not as the binary fraction beside it.
            if let Some(mark) = mark.filter(|m| m.is_finite()).and_then(|m| m.to_string().parse::<Decimal>().ok()) {
                totals.1 += pos.unrealized(mark).to_f64().unwrap_or(0.0);
            }
        }
        totals
    }

    /// Sends what happens ([`Activity`]) to `sink` from now on (the board's feed).
    pub fn attach_activity(&self, sink: Arc<dyn ActivitySink>) {
        if self.activity.set(sink).is_err() {
            tracing::warn!("an activity sink was already attached; keeping the first");
        }
    }

    /// Whether anyone hears the activity ([`Hub::record`]): what is recorded is built only then.
    pub(crate) fn recording(&self) -> bool {
        self.activity.get().is_some()
    }

    /// Tells the attached sink (the board's feed) what happened to `plugin`, on the hub's clock.
    pub(crate) fn record(&self, plugin: &str, what: Activity) {
        if let Some(sink) = self.activity.get() {
            sink.note(self.clock.now_ms(), plugin, what);
        }
    }

    // ----- subscriptions -----

    /// Subscribes a plugin to a stream of a granted instrument.
    /// The venue is asked for a stream when its first subscriber arrives, and told to stop when
    /// the last one leaves: one exchange subscription however many plugins want it. New
    /// subscriptions come out of the plugin's budget ([`crate::risk::windows::SUBSCRIBE_BURST`]
    /// at once, [`crate::risk::windows::SUBSCRIBES_PER_HOUR`] an hour); unsubscribing is free.
    pub fn subscribe(&self, slot: &Arc<PluginSlot>, instrument: InstrumentId, channel: Channel) -> Result<(), Denial> {
        let spec = self.granted(slot, instrument)?;
        self.channel_permitted(slot, channel)?;
        let mut subscriptions = slot.subscriptions.lock();
        if subscriptions.contains(&(spec.id, channel)) {
            return Ok(());
        }
        // Each new subscription may cost an exchange request: a plugin churning its
        // subscriptions spends its own budget, not the connection's 480 an hour.
        if !slot.risk.take_subscription(self.clock.moment()) {
            return Err(Denial::limit(
                DenialCode::RateLimited,
                "too many new market data subscriptions; keep subscriptions instead of toggling them",
                crate::risk::windows::SUBSCRIBES_PER_HOUR,
                crate::risk::windows::SUBSCRIBES_PER_HOUR + 1.0,
            ));
        }
        if subscriptions.insert((spec.id, channel)) {
            drop(subscriptions);
            let mut routes = self.routes.write();
            let subs = routes.entry((spec.id, channel)).or_insert_with(|| Arc::from([]));
            *subs = subs.iter().chain(std::iter::once(slot)).cloned().collect();
            if subs.len() == 1 {
                let _ = self.commands.send(Queued { command: Command::Subscribe(spec.id, channel), ticket: None });
            }
        }
        Ok(())
    }

    /// Ends a subscription (no-op when absent).
    pub fn unsubscribe(&self, slot: &PluginSlot, instrument: InstrumentId, channel: Channel) {
        if slot.subscriptions.lock().remove(&(instrument, channel))
            && let Some(subs) = self.routes.write().get_mut(&(instrument, channel))
        {
            *subs = subs.iter().filter(|s| s.id != slot.id).cloned().collect();
            if subs.is_empty() {
                let _ = self.commands.send(Queued { command: Command::Unsubscribe(instrument, channel), ticket: None });
            }
        }
    }

    /// What a plugin is subscribed to, sorted.
    pub fn subscriptions(&self, slot: &PluginSlot) -> Vec<(InstrumentId, Channel)> {
        let mut subs: Vec<_> = slot.subscriptions.lock().iter().copied().collect();
        subs.sort_by_key(|(i, c)| (*i, *c as u8));
        subs
    }

    pub(crate) fn subscribers(&self, instrument: InstrumentId, channel: Channel) -> Arc<[Arc<PluginSlot>]> {
        self.routes.read().get(&(instrument, channel)).unwrap_or(&self.no_subscribers).clone()
    }

    fn granted(&self, slot: &PluginSlot, instrument: InstrumentId) -> Result<&InstrumentSpec, Denial> {
        let spec = self
            .instrument(instrument)
            .ok_or_else(|| Denial::new(DenialCode::UnknownInstrument, format!("no instrument with id {instrument}")))?;
        let permitted = slot.permissions.read().instrument(&spec.symbol);
        permitted.map_err(|m| denial(m, &slot.name, &spec.symbol, "instruments")).map(|()| spec)
    }

    fn kind_permitted(&self, slot: &PluginSlot, kind: OrderKind) -> Result<(), Denial> {
        let permitted = slot.permissions.read().kind(kind);
        permitted
            .map_err(|m| denial(m, &slot.name, &format!("order type {}", permissions::wire_name(&kind)), "order types"))
    }

    fn channel_permitted(&self, slot: &PluginSlot, channel: Channel) -> Result<(), Denial> {
        let permitted = slot.permissions.read().channel(channel);
        permitted
            .map_err(|m| denial(m, &slot.name, &format!("channel {}", permissions::wire_name(&channel)), "channels"))
    }

    // ----- trading state -----

    /// The account-wide trading state.
    pub fn account_state(&self) -> TradingState {
        TradingState::from_u8(self.account_state.load(Ordering::Acquire))
    }

    /// Sets a plugin's trading state, tells the plugin, audits it, and on HALTED cancels its
    /// orders. Back to ACTIVE, the plugin's loss watch starts over from its current PnL.
    pub fn set_plugin_state(&self, slot: &PluginSlot, state: TradingState, reason: &str) {
        slot.state.store(state as u8, Ordering::Release);
        slot.mailbox.push(PluginEvent::TradingState { scope: Scope::Plugin, state, reason: reason.to_string() });
        self.record(&slot.name, Activity::PluginState { state, reason: reason.to_string() });
        self.audit_entry(
            Some(&slot.origin()),
            Entry::State { event: crate::audit::StateChange::PluginState(state), detail: reason.to_string() },
        );
        if state == TradingState::Halted {
            self.cancel_all_for_host(slot.id, None);
        }
        if state == TradingState::Active {
            slot.risk.reset_losses(self.pnl_total(slot.id));
        }
    }

    /// Sets the account-wide state; on HALTED cancels every open order. Back to ACTIVE, the
    /// account's loss watch starts over.
    pub fn set_account_state(&self, state: TradingState, reason: &str) {
        self.account_state.store(state as u8, Ordering::Release);
        self.audit_entry(
            None,
            Entry::State { event: crate::audit::StateChange::AccountState(state), detail: reason.to_string() },
        );
        if state == TradingState::Halted {
            self.cancel_all_for_host(tracker::HOST, None);
        }
        for slot in self.plugins() {
            slot.mailbox.push(PluginEvent::TradingState { scope: Scope::Account, state, reason: reason.to_string() });
            if state == TradingState::Halted {
                self.cancel_all_for_host(slot.id, None);
            }
        }
        if state == TradingState::Active {
            let plugins: f64 = self.plugins().iter().map(|s| self.pnl_total(s.id)).sum();
            self.account_risk.reset_losses(plugins + self.pnl_total(tracker::HOST));
        }
        self.record("host", Activity::AccountState { state, reason: reason.to_string() });
    }

    // ----- limits and the circuit breaker -----

    /// The account's limits.
    pub fn account_limits(&self) -> AccountLimits {
        self.account_risk.limits()
    }

    /// Replaces the account's limits (validated first), and audits the change with `who`.
    pub fn set_account_limits(&self, limits: AccountLimits, who: &str) -> Result<(), crate::risk::LimitError> {
        let detail = format!("by {who}: {}", serde_json::to_string(&limits).unwrap_or_default());
        self.account_risk.set_limits(limits)?;
        self.audit_entry(None, Entry::State { event: crate::audit::StateChange::AccountLimitsChanged, detail });
        Ok(())
    }

    /// Replaces a plugin's limits (validated first), and audits the change with `who`.
    pub fn set_plugin_limits(
        &self,
        slot: &PluginSlot,
        limits: RiskLimits,
        who: &str,
    ) -> Result<(), crate::risk::LimitError> {
        let detail = format!("by {who}: {}", serde_json::to_string(&limits).unwrap_or_default());
        slot.risk.set_limits(limits)?;
        self.audit_entry(
            Some(&slot.origin()),
            Entry::State { event: crate::audit::StateChange::PluginLimitsChanged, detail },
        );
        Ok(())
    }

    /// A plugin's PnL as the circuit breaker sees it: realised + unrealised − fees.
    pub fn pnl_total(&self, plugin: PluginId) -> f64 {
        let (realized, unrealized, fees) = self.pnl(plugin);
        realized + unrealized - fees
    }

    /// Writes each plugin's summary of refusal records left out over its budget, when one is
    /// due (`final_one`: whatever is pending, at unload or shutdown).
    pub fn flush_refusals(&self, final_one: bool) {
        if self.audit.get().is_none() {
            return;
        }
        let now = self.clock.moment();
        for slot in self.plugins() {
            let summary = slot.refusals.lock().summary(now, final_one);
            if let Some(entry) = summary {
                self.audit_entry(Some(&slot.origin()), entry);
            }
        }
    }

    /// The account's PnL as its breaker sees it: every plugin's and the host's own orders'.
    pub fn account_pnl_total(&self) -> f64 {
        self.pnl_total(tracker::HOST) + self.plugins().iter().map(|s| self.pnl_total(s.id)).sum::<f64>()
    }

    /// The account breaker's distance to its limits now.
    pub fn account_breaker(&self) -> crate::risk::breaker::Distance {
        self.account_risk.breaker(self.account_pnl_total())
    }

    /// One pass of the loss-based circuit breaker over every plugin and the account: halts (and
    /// so cancels the orders of) each scope whose loss limit is broken, and records why.
    pub fn watch_losses(&self, now_ms: i64) {
        // The orders adopted at start-up are the account's too.
        let mut total = self.pnl_total(tracker::HOST);
        for slot in self.plugins() {
            let pnl = self.pnl_total(slot.id);
            total += pnl;
            let trip = slot.risk.watch_losses(now_ms, pnl);
            if let Some(trip) = trip
                && slot.state() != TradingState::Halted
            {
                tracing::warn!(plugin = %slot.name, %trip, "circuit breaker tripped");
                self.set_plugin_state(&slot, TradingState::Halted, &trip.to_string());
            }
        }
        let trip = self.account_risk.watch_losses(now_ms, total);
        if let Some(trip) = trip
            && self.account_state() != TradingState::Halted
        {
            tracing::warn!(%trip, "account circuit breaker tripped");
            self.set_account_state(TradingState::Halted, &format!("account {trip}"));
        }
    }
}

/// The refusal of something the intersection of grant and request does not hold.
fn denial(missing: Missing, plugin: &str, what: &str, kinds: &str) -> Denial {
    let message = match missing {
        Missing::Grant => format!("{what} is not granted to {plugin}"),
        Missing::Request => format!("{what} is not among the {kinds} {plugin}'s manifest requests"),
    };
    Denial::new(DenialCode::NotPermitted, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use std::time::Instant;
    use tradebox_core::InstrumentKind;

    fn hub() -> (Arc<Hub>, Lanes) {
        hub_on(Clock::system())
    }

    fn hub_on(clock: Clock) -> (Arc<Hub>, Lanes) {
        let spec = |id, symbol: &str| InstrumentSpec {
            id,
            symbol: symbol.into(),
            kind: InstrumentKind::Spot,
            base: symbol.split('-').next().unwrap_or_default().into(),
            quote: "USDT".into(),
            tick_size: "0.1".parse().unwrap(),
            lot_size: "0.0001".parse().unwrap(),
            min_size: "0.001".parse().unwrap(),
            contract_value: Decimal::ONE,
        };
        let (hub, rx) = Hub::with_clock(vec![spec(1, "BTC-USDT"), spec(2, "ETH-USDT")], clock);
        // A market around 100, so the price band has a reference.
        for id in [1, 2] {
            hub.quotes
                .write()
                .insert(id, Quote { bid: 99.9, bid_size: 1.0, ask: 100.1, ask_size: 1.0, last: 100.0, received: None });
        }
        (hub, rx)
    }

    fn grants(symbols: &[&str]) -> Grants {
        Grants { instruments: symbols.iter().map(|s| s.to_string()).collect(), ..Grants::default() }
    }

    #[test]
    fn an_order_of_a_type_no_longer_permitted_can_be_cancelled_not_amended() {
        let (hub, _rx) = hub();
        let limit_only = |kinds: Vec<OrderKind>| {
            let requested =
                Requested { instruments: vec!["BTC-USDT".into()], order_kinds: kinds, ..Requested::default() };
            Permissions::new(grants(&["*"]), requested)
        };
        let slot = hub.register_component("w", "", limit_only(vec![OrderKind::Limit]), RiskLimits::default());
        let intent = OrderIntent {
            instrument: 1,
            side: Side::Buy,
            kind: OrderKind::Limit,
            price: Some(100.0),
            size: 0.01,
            reduce_only: false,
        };
        let id = hub.place(&slot, intent).expect("a limit order");
        // A new version asks for market orders only.
        slot.set_permissions(limit_only(vec![OrderKind::Market]));
        let denial = hub.amend(&slot, &id, Some(100.1), None).expect_err("no longer permitted");
        assert_eq!(denial.code, DenialCode::NotPermitted);
        assert!(denial.message.contains("order type limit"), "{denial}");
        hub.cancel(&slot, &id).expect("cancels always pass");
    }

    #[test]
    fn the_manifests_notional_ceiling_holds_beside_the_operators_limit() {
        let (hub, _rx) = hub();
        let requested =
            Requested { instruments: vec!["*".into()], order_kinds: vec![OrderKind::Limit], ..Requested::default() };
        let ceiling = Requested { max_order_notional: Some(10.0), ..requested };
        let slot = hub.register_component("w", "", Permissions::new(grants(&["*"]), ceiling), RiskLimits::default());
        let intent = OrderIntent {
            instrument: 1,
            side: Side::Buy,
            kind: OrderKind::Limit,
            price: Some(100.0),
            size: 0.5,
            reduce_only: false,
        };
        let denial = hub.place(&slot, intent).expect_err("50 notional is above the author's 10");
        assert_eq!((denial.code, denial.limit), (DenialCode::MaxNotionalExceeded, Some(10.0)));
    }

    #[test]
    fn in_long_short_mode_each_order_trades_one_side_and_limits_hold_per_side() {
        let swap = InstrumentSpec {
            id: 1,
            symbol: "BTC-USDT-SWAP".into(),
            kind: InstrumentKind::Swap,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: "0.1".parse().unwrap(),
            lot_size: Decimal::ONE,
            min_size: Decimal::ONE,
            contract_value: "0.01".parse().unwrap(),
        };
        let (hub, mut rx) = Hub::new(vec![swap]);
        hub.quotes
            .write()
            .insert(1, Quote { bid: 99.9, bid_size: 1.0, ask: 100.1, ask_size: 1.0, last: 100.0, received: None });
        hub.set_position_mode(tradebox_core::PositionMode::LongShort);
        let risk = RiskLimits { max_position: 10.0, duplicate_window_ms: 0, ..RiskLimits::default() };
        let slot = hub.register("hedger", grants(&["*"]), risk);
        let intent = |side, size, reduce_only| OrderIntent {
            instrument: 1,
            side,
            kind: OrderKind::Limit,
            price: Some(100.0),
            size,
            reduce_only,
        };
        let mut trade = |side, size, reduce_only| {
            let id = hub.place(&slot, intent(side, size, reduce_only)).expect("accepted");
            let Ok(Command::Place(order)) = rx.try_recv() else { panic!("nothing queued") };
            let fill = tradebox_core::FillReport {
                client_id: id,
                trade_id: format!("t{size}{side:?}"),
                instrument: 1,
                side,
                price: "100".parse().unwrap(),
                size: order.size,
                fee: Decimal::ZERO,
                fee_currency: "USDT".into(),
                liquidity: tradebox_core::Liquidity::Taker,
                ts_ms: 0,
            };
            let mut tracker = hub.tracker.lock();
            tracker.on_fill(&fill, "0.01".parse().unwrap());
            let mut done = tracker.order(&fill.client_id).expect("tracked").report.clone();
            (done.status, done.filled) = (tradebox_core::OrderStatus::Filled, order.size);
            tracker.on_report(&done);
            order.leg
        };
        use tradebox_core::PositionSide::{Long, Short};
        assert_eq!(trade(Side::Buy, 3.0, false), Long, "a buy opens the long");
        assert_eq!(trade(Side::Sell, 3.0, false), Short, "a sell opens the short beside it");
        // Shown as one position: long 3 and short 3 make 0.
        assert!(hub.positions(slot.id)[0].1.size.is_zero());
        // A reduce-only buy closes the short, as far as there is one.
        let denial = hub.place(&slot, intent(Side::Buy, 4.0, true)).expect_err("more than the short");
        assert_eq!(denial.code, DenialCode::ReduceOnly);
        assert_eq!(trade(Side::Buy, 2.0, true), Short);
        // A new buy adds to the long of 3, and the limit holds for both sides: 3 + 7 long and
        // 1 short make 11 (a net position of 2 would have allowed 8 more).
        let denial = hub.place(&slot, intent(Side::Buy, 7.0, false)).expect_err("11 in all");
        assert_eq!(denial.code, DenialCode::MaxPosition);
        assert_eq!(trade(Side::Buy, 2.0, false), Long);
        let shown = &hub.positions(slot.id)[0].1;
        assert_eq!(shown.size, Decimal::from(4), "long 5, short 1");
        // Gross units count both sides: (5 + 1) contracts of 0.01.
        assert!((shown.units - 0.06).abs() < 1e-12, "{shown:?}");
    }

    #[test]
    fn a_plugin_sees_the_balances_of_what_it_may_trade_only() {
        let (hub, _rx) = hub();
        let slot = hub.register("p", grants(&["BTC-USDT"]), RiskLimits::default());
        assert!(hub.balance_visible(&slot, "BTC") && hub.balance_visible(&slot, "USDT"));
        assert!(!hub.balance_visible(&slot, "ETH") && !hub.balance_visible(&slot, "SOL"));
        let requested = Requested { instruments: vec!["ETH-USDT".into()], ..Requested::default() };
        let wasm = hub.register_component("w", "", Permissions::new(grants(&["*"]), requested), RiskLimits::default());
        assert!(hub.balance_visible(&wasm, "ETH") && !hub.balance_visible(&wasm, "BTC"));
    }

    #[test]
    fn an_accepted_intent_is_normalised_tracked_and_queued() {
        let (hub, mut rx) = hub();
        let slot = hub.register("p", grants(&["BTC-*"]), RiskLimits::default());
        let intent = OrderIntent {
            instrument: 1,
            side: Side::Buy,
            kind: OrderKind::Limit,
            price: Some(100.0 + 0.30000000000000004),
            size: 0.01239,
            reduce_only: false,
        };
        let id = hub.place(&slot, intent).unwrap();
        let Ok(Command::Place(order)) = rx.try_recv() else { panic!("nothing queued") };
        assert_eq!(order.client_id, id);
        assert_eq!(order.price.unwrap().to_string(), "100.3");
        assert_eq!(order.size.to_string(), "0.0123");
        assert_eq!(hub.open_orders(slot.id).len(), 1);
    }

    #[test]
    fn refusals_carry_stable_codes_and_send_nothing() {
        let (hub, mut rx) = hub();
        let slot = hub.register("p", grants(&["BTC-USDT"]), RiskLimits { max_orders_per_sec: 2, ..Default::default() });
        let place = |instrument, price: f64, size| {
            hub.place(
                &slot,
                OrderIntent {
                    instrument,
                    side: Side::Buy,
                    kind: OrderKind::Limit,
                    price: Some(price),
                    size,
                    reduce_only: false,
                },
            )
        };
        assert_eq!(place(2, 100.0, 0.01).unwrap_err().code, DenialCode::NotPermitted);
        assert_eq!(place(9, 100.0, 0.01).unwrap_err().code, DenialCode::UnknownInstrument);
        assert_eq!(place(1, 100.0, 0.0001).unwrap_err().code, DenialCode::SizeBelowMinimum);
        let too_big = place(1, 100_000.0, 10.0).unwrap_err();
        assert_eq!(too_big.code, DenialCode::MaxNotionalExceeded);
        assert_eq!(too_big.limit, Some(250_000.0));
        assert!(rx.try_recv().is_err());
        place(1, 100.0, 0.01).unwrap();
        place(1, 100.0, 0.01).unwrap();
        assert_eq!(place(1, 100.0, 0.01).unwrap_err().code, DenialCode::RateLimited);
        let other = hub.register("q", grants(&["BTC-USDT"]), RiskLimits::default());
        let theirs = hub.open_orders(slot.id)[0].client_id.clone();
        assert_eq!(hub.cancel(&other, &theirs).unwrap_err().code, DenialCode::UnknownOrder);
    }

    #[test]
    fn halted_refuses_new_orders_but_cancels_pass() {
        let (hub, mut rx) = hub();
        let slot = hub.register("p", grants(&["*"]), RiskLimits::default());
        let id = hub
            .place(
                &slot,
                OrderIntent {
                    instrument: 1,
                    side: Side::Sell,
                    kind: OrderKind::Limit,
                    price: Some(100.0),
                    size: 0.01,
                    reduce_only: false,
                },
            )
            .unwrap();
        let _ = rx.try_recv();
        hub.set_account_state(TradingState::Halted, "test");
        let denial = hub
            .place(
                &slot,
                OrderIntent {
                    instrument: 1,
                    side: Side::Buy,
                    kind: OrderKind::Limit,
                    price: Some(100.0),
                    size: 0.01,
                    reduce_only: false,
                },
            )
            .unwrap_err();
        assert_eq!(denial.code, DenialCode::TradingHalted);
        // The halt itself cancelled the open order.
        assert!(matches!(rx.try_recv(), Ok(Command::Cancel { client_id, .. }) if client_id == id));
        assert!(matches!(slot.mailbox.take(10, Some(Instant::now())).unwrap()[0], PluginEvent::TradingState { .. }));
    }

    fn audited() -> (Arc<Hub>, Lanes, tempfile::TempDir, std::path::PathBuf) {
        let (hub, rx) = hub();
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        hub.attach_audit(AuditLog::open(&path, std::time::Duration::from_secs(60)).expect("audit"));
        (hub, rx, dir, path)
    }

    /// What a backtest needs of the engine: on a virtual clock, the rate window, the age of a
    /// quote, order ids and audit stamps all follow virtual time and nothing else.
    #[test]
    fn on_a_virtual_clock_windows_quote_ages_and_audit_stamps_follow_virtual_time() {
        const START_MS: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
        let (clock, time) = Clock::virtual_at(START_MS);
        let (hub, _rx) = hub_on(clock);
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.jsonl");
        hub.attach_audit(AuditLog::open(&path, std::time::Duration::from_secs(60)).expect("audit"));
        let limits = RiskLimits { max_orders_per_sec: 2, ..RiskLimits::default() };
        let slot = hub.register("p", grants(&["BTC-USDT"]), limits);
        let fresh = |hub: &Hub| {
            let quote = hub.quote(1).expect("quote");
            hub.quotes.write().insert(1, Quote { received: Some(hub.clock().moment()), ..quote });
        };
        fresh(&hub);
        hub.place(&slot, buy(99.0)).expect("first");
        hub.place(&slot, buy(99.1)).expect("second");
        let denial = hub.place(&slot, buy(99.2)).expect_err("a third in the same virtual second");
        assert_eq!(denial.code, DenialCode::RateLimited);
        // However long the machine takes, only moving the clock frees the window...
        std::thread::sleep(std::time::Duration::from_millis(1_100));
        assert_eq!(hub.place(&slot, buy(99.3)).expect_err("still the same second").code, DenialCode::RateLimited);
        time.advance_by(1_001);
        hub.place(&slot, buy(99.4)).expect("a virtual second later");
        // ... and ages the quote: 11 virtual seconds without a ticker is a stale quote.
        time.advance_by(11_000);
        assert_eq!(hub.place(&slot, buy(99.5)).expect_err("stale").code, DenialCode::StaleQuote);
        fresh(&hub);
        hub.place(&slot, buy(99.6)).expect("a fresh quote");
        let records: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let stamps: std::collections::BTreeSet<&str> = records.iter().filter_map(|r| r["ts"].as_str()).collect();
        assert_eq!(
            stamps.into_iter().collect::<Vec<_>>(),
            ["2023-11-14T22:13:20.000Z", "2023-11-14T22:13:21.001Z", "2023-11-14T22:13:32.001Z"],
            "every record stamped by the virtual clock"
        );
        // Order ids carry the start second of the clock they were minted by (2023-11-14).
        let id = records.iter().find_map(|r| r["client_id"].as_str()).expect("an id");
        let start_s = u64::try_from(START_MS / 1_000).expect("positive");
        let same_start = ids::ClientIdMinter::with_nonce(start_s, 0).next(slot.id);
        assert_eq!(id[4..10], same_start[4..10], "{id} vs {same_start}");
    }

    fn buy(price: f64) -> OrderIntent {
        OrderIntent {
            instrument: 1,
            side: Side::Buy,
            kind: OrderKind::Limit,
            price: Some(price),
            size: 0.01,
            reduce_only: false,
        }
    }

    #[test]
    fn a_loop_of_refused_intents_writes_a_bounded_audit_trail() {
        let (hub, _rx, _dir, path) = audited();
        let slot = hub.register("spam", grants(&["BTC-USDT"]), RiskLimits::default());
        let quiet = hub.register("quiet", grants(&["BTC-USDT"]), RiskLimits::default());
        // 50,000 refused places (an invalid price) and amends of an order that is not there.
        for _ in 0..25_000 {
            assert_eq!(hub.place(&slot, buy(-1.0)).unwrap_err().code, DenialCode::InvalidPrice);
            assert_eq!(hub.amend(&slot, "tb0000", Some(1.0), None).unwrap_err().code, DenialCode::UnknownOrder);
        }
        // The neighbour's own refusal is still written.
        assert_eq!(hub.place(&quiet, buy(-1.0)).unwrap_err().code, DenialCode::InvalidPrice);
        hub.unregister(slot.id);
        let text = std::fs::read_to_string(&path).expect("audit");
        let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        let of = |name: &str| records.iter().filter(|r| r["plugin"] == name).count();
        assert!(of("spam") <= crate::audit::RefusalBudget::BURST as usize + 2, "{} records", of("spam"));
        assert_eq!(of("quiet"), 1);
        let summary = records.iter().find(|r| r["kind"] == "refusals_suppressed").expect("a summary at unload");
        assert_eq!(summary["count"].as_u64(), Some(50_000 - crate::audit::RefusalBudget::BURST as u64));
        assert!(
            summary["by_code"]["INVALID_PRICE"].as_u64() > Some(0)
                && summary["by_code"]["UNKNOWN_ORDER"].as_u64() > Some(0)
        );
        assert!(text.len() < 64 * 1024, "{} bytes", text.len());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn no_order_goes_out_unrecorded() {
        let (hub, mut rx, _dir, path) = audited();
        let slot = hub.register("p", grants(&["BTC-USDT"]), RiskLimits::default());
        let open = hub.place(&slot, buy(99.0)).expect("placed");
        let _ = rx.try_recv();
        let log = hub.audit().expect("attached").clone();
        log.redirect(std::fs::OpenOptions::new().append(true).open("/dev/full").expect("/dev/full"));
        // The first record that cannot be written turns the log to failing...
        let _ = hub.place(&slot, buy(98.0));
        assert!(log.failing());
        // ...and from then on nothing new goes out, while cancels still do.
        let denial = hub.place(&slot, buy(97.0)).expect_err("fail closed");
        assert_eq!(denial.code, DenialCode::AuditUnavailable);
        assert_eq!(hub.amend(&slot, &open, Some(98.5), None).unwrap_err().code, DenialCode::AuditUnavailable);
        while let Ok(cmd) = rx.try_recv() {
            assert!(!matches!(cmd, Command::Place(_)), "an order went out unrecorded");
        }
        hub.cancel(&slot, &open).expect("cancels still go");
        assert!(matches!(rx.try_recv(), Ok(Command::Cancel { .. })));
        // Space again: the next order is recorded and goes.
        log.redirect(std::fs::OpenOptions::new().read(true).append(true).open(&path).expect("reopen"));
        let _ = hub.place(&slot, buy(-1.0));
        hub.place(&slot, buy(96.0)).expect("accepted again");
    }

    #[test]
    fn an_approved_amend_is_recorded_before_it_goes() {
        let (hub, mut rx, _dir, path) = audited();
        let slot = hub.register("p", grants(&["BTC-USDT"]), RiskLimits::default());
        let id = hub.place(&slot, buy(99.0)).expect("placed");
        hub.amend(&slot, &id, Some(99.5), None).expect("amended");
        let sent: Vec<Command> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert!(matches!(sent.last(), Some(Command::Amend(_))), "{sent:?}");
        let records: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let amend = records.iter().find(|r| r["kind"] == "amend").expect("an amend record");
        assert_eq!(amend["client_id"], id.as_str());
        assert_eq!(amend["instrument"], "BTC-USDT");
        assert_eq!(amend["price"], "99.5");
        assert!(amend["size"].is_null());
        assert_eq!(amend["plugin"], "p");
    }

    #[test]
    fn a_cancel_storm_sends_one_cancel_and_is_refused_the_rest() {
        let (hub, mut lanes) = hub();
        let limits = RiskLimits { max_cancels_per_sec: 3, ..RiskLimits::default() };
        let slot = hub.register("storm", grants(&["BTC-USDT"]), limits.clone());
        let ids: Vec<String> = (0..4).map(|i| hub.place(&slot, buy(99.0 - f64::from(i))).expect("placed")).collect();
        while lanes.try_recv().is_ok() {}
        // 5,000 cancels of one order: one goes; the next are refused with their own code until
        // the window is spent, and past it on the plugin's window alone.
        hub.cancel(&slot, &ids[0]).expect("the first cancel goes");
        let codes: Vec<DenialCode> = (0..5_000).map(|_| hub.cancel(&slot, &ids[0]).unwrap_err().code).collect();
        assert_eq!(codes[..2], [DenialCode::CancelPending, DenialCode::CancelPending]);
        assert!(codes[2..].iter().all(|c| *c == DenialCode::CancelRateLimited));
        let sent: Vec<Command> = std::iter::from_fn(|| lanes.try_recv().ok()).collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        // A fresh plugin (a fresh window): once the venue refused a cancel, the plugin may ask
        // again, and every attempt counts in its window (3 a second here).
        let calm = hub.register("calm", grants(&["BTC-USDT"]), limits);
        let mine: Vec<String> = (0..3).map(|i| hub.place(&calm, buy(99.5 - f64::from(i))).expect("placed")).collect();
        hub.cancel(&calm, &mine[0]).expect("first in the window");
        hub.tracker.lock().cancel_failed(&mine[0]);
        hub.cancel(&calm, &mine[0]).expect("again after a failure, second in the window");
        hub.cancel(&calm, &mine[1]).expect("third in the window");
        let denial = hub.cancel(&calm, &mine[2]).expect_err("fourth in one second");
        assert_eq!((denial.code, denial.limit), (DenialCode::CancelRateLimited, Some(3.0)));
        // The kill switch's cancels are the host's: no window, no pending check.
        assert_eq!(hub.cancel_all_for_host(slot.id, None), 4);
    }

    #[test]
    fn a_plugins_queue_is_bounded_and_the_host_lane_goes_first() {
        let (hub, mut lanes) = hub();
        let limits = RiskLimits { max_orders_per_sec: 10_000, max_open_orders: 10_000, ..RiskLimits::default() };
        let account = AccountLimits { max_orders_per_sec: 10_000, max_open_orders: 10_000, ..AccountLimits::default() };
        hub.set_account_limits(account, "test").expect("limits");
        let slot = hub.register("flood", grants(&["BTC-USDT"]), limits);
        let quiet = hub.register("quiet", grants(&["BTC-USDT"]), RiskLimits::default());
        let quiet_id = hub.place(&quiet, buy(95.0)).expect("placed");
        // Nothing is sent meanwhile (a slow venue): the plugin fills its queue, then is refused.
        for i in 0..MAX_QUEUED {
            hub.place(&slot, buy(96.0 + (i % 30) as f64 * 0.1)).unwrap_or_else(|d| panic!("order {i}: {d}"));
        }
        // (The quiet plugin's order holds one place in its own queue, not in this one.)
        let denial = hub.place(&slot, buy(96.5)).expect_err("full");
        assert_eq!(denial.code, DenialCode::QueueFull);
        assert_eq!(
            hub.amend(&slot, &hub.open_orders(slot.id)[0].client_id, Some(97.0), None).unwrap_err().code,
            DenialCode::QueueFull
        );
        hub.place(&quiet, buy(95.5)).expect("a neighbour's queue is its own");
        // The kill switch goes ahead of everything the plugins queued.
        hub.set_account_state(TradingState::Halted, "kill switch");
        let first = lanes.try_recv().expect("a command");
        assert!(matches!(first, Command::Cancel { by_host: true, .. }), "{first:?}");
        let mut host_cancels = 1;
        while let Ok(Command::Cancel { by_host: true, .. }) = lanes.host.try_recv() {
            host_cancels += 1;
        }
        assert_eq!(host_cancels, MAX_QUEUED + 2, "every open order of both plugins");
        // Once the sender has taken the plugin's commands, its queue has room again.
        while lanes.try_recv().is_ok() {}
        hub.set_account_state(TradingState::Active, "resume");
        hub.place(&slot, buy(96.5)).expect("room again");
        let _ = quiet_id;
    }

    #[test]
    fn an_order_priced_off_a_stale_quote_is_refused() {
        let (hub, _lanes) = hub();
        let slot = hub.register("p", grants(&["BTC-USDT"]), RiskLimits::default());
        let old = hub.clock().moment().saturating_sub(std::time::Duration::from_secs(11));
        let quote = hub.quote(1).expect("quote");
        hub.quotes.write().insert(1, Quote { received: Some(old), ..quote });
        let denial = hub.place(&slot, buy(99.0)).expect_err("the feed stopped 11 s ago");
        assert_eq!((denial.code, denial.limit), (DenialCode::StaleQuote, Some(10_000.0)));
        hub.quotes.write().insert(1, Quote { received: Some(hub.clock().moment()), ..quote });
        hub.place(&slot, buy(99.0)).expect("a fresh quote");
    }

    #[test]
    fn subscription_churn_spends_the_plugins_own_budget() {
        let (hub, mut lanes) = hub();
        let slot = hub.register("churn", grants(&["BTC-USDT"]), RiskLimits::default());
        let mut accepted = 0;
        for _ in 0..10_000 {
            if hub.subscribe(&slot, 1, Channel::Trades).is_ok() {
                accepted += 1;
            }
            hub.unsubscribe(&slot, 1, Channel::Trades);
        }
        assert_eq!(accepted, crate::risk::windows::SUBSCRIBE_BURST as usize);
        let venue_ops = std::iter::from_fn(|| lanes.try_recv().ok()).count();
        assert_eq!(venue_ops, 2 * accepted, "a subscribe and an unsubscribe per accepted toggle");
        let denial = hub.subscribe(&slot, 1, Channel::Trades).expect_err("spent");
        assert_eq!(denial.code, DenialCode::RateLimited);
        // Another plugin's budget is its own.
        let other = hub.register("other", grants(&["BTC-USDT"]), RiskLimits::default());
        hub.subscribe(&other, 1, Channel::Trades).expect("its own budget");
    }

    #[test]
    fn reduce_only_needs_a_position_to_reduce() {
        let (hub, _rx) = hub();
        let slot = hub.register("p", grants(&["*"]), RiskLimits::default());
        let denial = hub
            .place(
                &slot,
                OrderIntent {
                    instrument: 1,
                    side: Side::Sell,
                    kind: OrderKind::Market,
                    price: None,
                    size: 0.01,
                    reduce_only: true,
                },
            )
            .unwrap_err();
        assert_eq!(denial.code, DenialCode::ReduceOnly);
    }
}
