//! The two engine tasks: the router (venue events → hub state → plugin inboxes) and the sender
//! (accepted commands → venue, one at a time, in the order they were accepted).

use super::activity::Activity;
use super::{Command, Hub, PluginEvent};
use crate::audit::Entry;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tradebox_core::{Channel, InstrumentKind, MarketEvent, OrderReport, Venue, VenueError, VenueEvent};

/// A bar: open time (ms) and OHLCV.
type Bar = (i64, [f64; 5]);

/// Builds one-minute candles from trades, per instrument.
#[derive(Default)]
struct Candles {
    bars: HashMap<u32, Bar>,
    /// Build candles from trades (the venue publishes none of its own).
    from_trades: bool,
}

impl Candles {
    /// Adds a trade; returns the closed bar (if the minute rolled) and the current one.
    fn on_trade(&mut self, instrument: u32, ts: i64, price: f64, size: f64) -> (Option<Bar>, Bar) {
        let minute = ts - ts.rem_euclid(60_000);
        let mut closed = None;
        let bar = self.bars.entry(instrument).or_insert((minute, [price, price, price, price, 0.0]));
        if bar.0 != minute {
            closed = Some(*bar);
            *bar = (minute, [price, price, price, price, 0.0]);
        }
        let ohlcv = &mut bar.1;
        ohlcv[1] = ohlcv[1].max(price);
        ohlcv[2] = ohlcv[2].min(price);
        ohlcv[3] = price;
        ohlcv[4] += size;
        (closed, *bar)
    }
}

/// Routes venue events one at a time, in order: the router task's state (candles being built)
/// and its work, callable directly (benchmarks, tests).
pub struct Router {
    candles: Candles,
    since_prune: u32,
}

impl Router {
    /// A router; `candles_from_trades` when the venue publishes no candles of its own.
    pub fn new(candles_from_trades: bool) -> Self {
        Self { candles: Candles { from_trades: candles_from_trades, ..Candles::default() }, since_prune: 0 }
    }

    /// Applies one venue event to the hub and delivers it to the plugins concerned.
    pub fn route(&mut self, hub: &Hub, event: VenueEvent) {
        route(hub, &mut self.candles, event);
        self.since_prune += 1;
        if self.since_prune >= 10_000 {
            self.since_prune = 0;
            // A minute's grace: a fill that follows its order's last report still finds it.
            hub.tracker.lock().prune_finished(hub.clock.now_ms().saturating_sub(PRUNE_GRACE_MS));
        }
    }
}

/// Drains the venue's event stream until it ends.
pub async fn run_router(hub: Arc<Hub>, mut events: mpsc::UnboundedReceiver<VenueEvent>, candles_from_trades: bool) {
    let mut router = Router::new(candles_from_trades);
    while let Some(event) = events.recv().await {
        router.route(&hub, event);
    }
    tracing::info!("venue event stream ended");
}

fn route(hub: &Hub, candles: &mut Candles, event: VenueEvent) {
    match event {
        VenueEvent::Market(market) => route_market(hub, candles, market),
        VenueEvent::Order(report) => {
            let owner = hub.tracker.lock().on_report(&report);
            order_changed(hub, owner, report, Learnt::Reported);
        }
        VenueEvent::Fill(fill) => {
            let multiplier = hub
                .instrument(fill.instrument)
                .map_or(Decimal::ONE, |s| if s.kind == InstrumentKind::Swap { s.contract_value } else { Decimal::ONE });
            let owned = hub.tracker.lock().on_fill(&fill, multiplier);
            let slot = owned.as_ref().and_then(|(plugin, _)| hub.plugin(*plugin));
            // Built only for a log that takes it (a backtest keeps none).
            if hub.audit().is_some() {
                hub.audit_entry(
                    slot.as_ref().map(|s| s.origin()).as_deref(),
                    Entry::Fill {
                        client_id: fill.client_id.clone(),
                        trade_id: fill.trade_id.clone(),
                        price: fill.price.to_string(),
                        size: fill.size.to_string(),
                    },
                );
            }
            let (Some((_, position)), Some(slot)) = (owned, slot) else { return };
            hub.count_fill(&slot);
            slot.stats.fills.fetch_add(1, Ordering::Relaxed);
            if hub.recording() {
                let symbol = hub.instrument(fill.instrument).map_or("?", |s| s.symbol.as_str()).to_string();
                let activity = Activity::Fill {
                    side: fill.side,
                    symbol,
                    size: fill.size,
                    price: fill.price,
                    liquidity: fill.liquidity,
                    client_id: fill.client_id.clone(),
                    fee: fill.fee,
                    fee_currency: fill.fee_currency.clone(),
                };
                hub.record(&slot.name, activity);
            }
            let mark = hub.quote(fill.instrument).and_then(|q| q.mid());
            let instrument = fill.instrument;
            slot.mailbox.push(PluginEvent::Fill(Box::new(fill)));
            slot.mailbox.push(PluginEvent::Position { instrument, position: Box::new(position), mark });
        }
        VenueEvent::Balance(balance) => {
            hub.balances.write().insert(balance.currency.clone(), balance.clone());
            for slot in hub.plugins().into_iter().filter(|s| hub.balance_visible(s, &balance.currency)) {
                slot.mailbox.push(PluginEvent::Balance(Box::new(balance.clone())));
            }
        }
        VenueEvent::Position(_) => {
            // The account's venue position; plugins see their own, built from their fills.
        }
        VenueEvent::Alarm(alarm) => {
            hub.record("venue", Activity::Alarm(alarm.clone()));
            let tradebox_core::VenueAlarm::AuthFailures { halt, .. } = &alarm;
            if *halt && hub.account_state() != tradebox_core::TradingState::Halted {
                hub.set_account_state(tradebox_core::TradingState::Halted, &alarm.to_string());
            } else {
                hub.audit_entry(
                    None,
                    Entry::State { event: crate::audit::StateChange::VenueAlarm, detail: alarm.to_string() },
                );
            }
        }
        VenueEvent::Connectivity { link, connected, detail } => {
            hub.record("venue", Activity::Link { link: link.clone(), connected, detail: detail.clone() });
            for slot in hub.plugins() {
                slot.mailbox.push(PluginEvent::Connectivity { link: link.clone(), connected, detail: detail.clone() });
            }
        }
    }
}

/// How the host learnt an order's new state.
enum Learnt {
    /// The venue reported it.
    Reported,
    /// The venue refused the placement.
    Refused {
        /// The venue's code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The sender did not send the placement (the report's reason says why).
    Unsent,
}

/// The one way an order's new state reaches its plugin, once the tracker has taken it: the
/// audit log, the board's activity, the plugin's count of rejections and its inbox, whether the
/// venue reported the state, refused the placement, or the sender never sent it.
fn order_changed(hub: &Hub, owner: Option<super::PluginId>, report: OrderReport, learnt: Learnt) {
    let slot = owner.and_then(|id| hub.plugin(id));
    let detail = || match &learnt {
        Learnt::Reported => format!(
            "venue id {} filled {} of {}{}",
            report.venue_id,
            report.filled,
            report.size,
            report.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        ),
        Learnt::Refused { code, message } => format!("{code}: {message}"),
        Learnt::Unsent => report.reason.clone().unwrap_or_default(),
    };
    // A venue's report is recorded even for an order no plugin owns any more; what the host
    // itself decided about a placement only while its plugin is there to hear it.
    if hub.audit().is_some() && (slot.is_some() || matches!(learnt, Learnt::Reported)) {
        hub.audit_entry(
            slot.as_ref().map(|s| s.origin()).as_deref(),
            Entry::Order { client_id: report.client_id.clone(), state: report.status, detail: detail() },
        );
    }
    let Some(slot) = slot else { return };
    let activity = match learnt {
        _ if !hub.recording() => None,
        Learnt::Reported if report.status.is_terminal() || report.filled.is_zero() => Some(Activity::Order {
            client_id: report.client_id.clone(),
            symbol: hub.instrument(report.instrument).map_or("?", |s| s.symbol.as_str()).to_string(),
            status: report.status,
            reason: report.reason.clone(),
        }),
        Learnt::Refused { code, message } => {
            Some(Activity::VenueRejected { client_id: report.client_id.clone(), code, message })
        }
        Learnt::Reported | Learnt::Unsent => None,
    };
    if let Some(activity) = activity {
        hub.record(&slot.name, activity);
    }
    if report.status == tradebox_core::OrderStatus::Rejected {
        slot.stats.rejected.fetch_add(1, Ordering::Relaxed);
    }
    slot.mailbox.push(PluginEvent::Order(Box::new(report)));
}

fn route_market(hub: &Hub, candles: &mut Candles, market: MarketEvent) {
    let instrument = market.instrument();
    let channel = match &market {
        MarketEvent::Ticker { bid, bid_size, ask, ask_size, last, .. } => {
            let received = Some(hub.clock.moment());
            let quote = tradebox_core::Quote {
                bid: *bid,
                bid_size: *bid_size,
                ask: *ask,
                ask_size: *ask_size,
                last: *last,
                received,
            };
            hub.quotes.write().insert(instrument, quote);
            Channel::Tickers
        }
        MarketEvent::Book { .. } => Channel::Books5,
        MarketEvent::Candle { ts_ms, ohlcv, confirmed, .. } => {
            for slot in hub.subscribers(instrument, Channel::Candle1m).iter() {
                let candle = PluginEvent::Candle { instrument, ts_ms: *ts_ms, ohlcv: *ohlcv, confirmed: *confirmed };
                if *confirmed {
                    // A closed candle is final: never conflated away.
                    slot.mailbox.push(candle);
                } else {
                    slot.mailbox.push_market(instrument, Channel::Candle1m, candle);
                }
            }
            return;
        }
        MarketEvent::Trade { ts_ms, price, size, .. } => {
            if candles.from_trades {
                let (closed, current) = candles.on_trade(instrument, *ts_ms, *price, *size);
                let subs = hub.subscribers(instrument, Channel::Candle1m);
                for slot in subs.iter() {
                    if let Some((ts_ms, ohlcv)) = closed {
                        slot.mailbox.push(PluginEvent::Candle { instrument, ts_ms, ohlcv, confirmed: true });
                    }
                    let candle =
                        PluginEvent::Candle { instrument, ts_ms: current.0, ohlcv: current.1, confirmed: false };
                    slot.mailbox.push_market(instrument, Channel::Candle1m, candle);
                }
            }
            Channel::Trades
        }
    };
    let subs = hub.subscribers(instrument, channel);
    if let Some((last, rest)) = subs.split_last() {
        for slot in rest {
            slot.mailbox.push_market(instrument, channel, PluginEvent::Market(market.clone()));
        }
        last.mailbox.push_market(instrument, channel, PluginEvent::Market(market));
    }
}

/// Sends accepted commands to the venue until the hub is dropped. Commands about one order
/// reach the venue in the order they were accepted (a cancel never overtakes its place), except
/// that a host cancel waits only for its order's placement, not for the plugin's own cancels
/// and amends of it still waiting for their rate share.
/// A venue that takes concurrent requests gets each command as soon as the previous command of
/// the same order is done, so one slow round trip or one order whose outcome is being settled
/// holds up nothing else; other venues get them one at a time. The host's lane is always
/// emptied first. The work per command is O(1): no scan of what is in flight.
pub async fn run_sender(hub: Arc<Hub>, venue: Arc<dyn Venue>, mut lanes: super::Lanes) {
    if !venue.concurrent() {
        while let Some((command, ticket)) = lanes.recv().await {
            withdraw_early(&hub, venue.as_ref(), &command);
            execute(&hub, venue.as_ref(), command).await;
            drop(ticket);
        }
        return;
    }
    // The last command sent for each order (or stream), and what it waits for.
    let mut last: HashMap<String, Link> = HashMap::new();
    let mut prune_at = PRUNE_AT;
    // Every task of the current generation holds a clone of `generation`; a flush closes the
    // generation and waits until all of its clones are gone (and the previous flush, which
    // holds a clone of this generation, is done): all commands before it have been sent.
    let (mut generation, mut generation_done) = mpsc::channel::<()>(1);
    while let Some((command, ticket)) = lanes.recv().await {
        if let Command::Flush(done) = command {
            let (next, next_done) = mpsc::channel::<()>(1);
            let closed = std::mem::replace(&mut generation, next);
            let mut waiting = std::mem::replace(&mut generation_done, next_done);
            drop(closed);
            let hold = generation.clone();
            tokio::spawn(async move {
                let _ = waiting.recv().await;
                let _ = done.send(());
                drop(hold);
            });
            continue;
        }
        withdraw_early(&hub, venue.as_ref(), &command);
        let Some(key) = command.key() else { continue };
        let prev = last.remove(&key);
        // A plugin's cancel or amend: what a host cancel need not wait for.
        let skippable = matches!(command, Command::Cancel { by_host: false, .. } | Command::Amend(_));
        let host_cancel = matches!(command, Command::Cancel { by_host: true, .. });
        // What a skippable command waited for: everything before it but skippable ones.
        let gate = |p: &Link| if p.skippable { p.gate.clone() } else { Some(p.done.clone()) };
        // A host cancel waits for its order's placement (a cancel sent before it would find
        // nothing and leave the order open), never for the plugin's cancels and amends of it,
        // which may be waiting for the plugin's share of the rate limit, as in a storm: sent
        // after the cancel, an amend finds the order gone and a second cancel finds it gone
        // (not an error).
        let before = match &prev {
            Some(p) if host_cancel => gate(p),
            Some(p) => Some(p.done.clone()),
            None => None,
        };
        let (finished, done) = tokio::sync::watch::channel(());
        let link_gate = if skippable { prev.as_ref().and_then(gate) } else { None };
        last.insert(key, Link { done, gate: link_gate, skippable });
        if last.len() > prune_at {
            // Forget orders whose last command has finished; amortised O(1) per command.
            last.retain(|_, link| link.done.has_changed().is_ok());
            prune_at = PRUNE_AT.max(last.len() * 2);
        }
        let (hub, venue, member) = (hub.clone(), venue.clone(), generation.clone());
        tokio::spawn(async move {
            if let Some(mut before) = before {
                // Resolves with an error once that command's task has dropped its sender.
                while before.changed().await.is_ok() {}
            }
            execute(&hub, venue.as_ref(), command).await;
            drop(finished);
            drop(ticket);
            drop(member);
        });
    }
}

/// Sends every command already queued, on the caller's thread, one at a time, the host's lane
/// first: the sender's work for a venue that answers at once and is driven by its caller (a
/// backtest's exchange, moved bar by bar). The same checks as [`run_sender`] apply (a
/// placement of a plugin halted since its check is dropped, a venue refusal reaches the
/// plugin). Returns how many commands it sent; a venue that does not answer at once is a
/// programming error, logged, and its command dropped.
pub fn send_queued(hub: &Hub, venue: &dyn Venue, lanes: &mut super::Lanes) -> usize {
    let mut sent = 0;
    while let Ok(command) = lanes.try_recv() {
        withdraw_early(hub, venue, &command);
        let mut call = std::pin::pin!(execute(hub, venue, command));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        if call.as_mut().poll(&mut context).is_pending() {
            tracing::error!(
                venue = venue.name(),
                "a venue driven by its caller did not answer at once: command dropped"
            );
        }
        sent += 1;
    }
    sent
}

/// The sender's record of the last command about one order: `done` closes when it has been
/// sent (its task dropped the sender).
///
/// For example, for place P, then the plugin's amend A and cancel C of it, then a host cancel
/// H: A waits for P, C for A (order kept); A and C are skippable, and each carries as `gate`
/// what the first non-skippable command before it waits on, P's `done`; so H waits for P
/// alone, and goes even while A and C wait for the plugin's rate share.
struct Link {
    done: tokio::sync::watch::Receiver<()>,
    /// For a plugin's cancel or amend: what it waits for itself, which is what a host cancel
    /// after it waits for instead of it.
    gate: Option<tokio::sync::watch::Receiver<()>>,
    skippable: bool,
}

/// A host cancel tells the venue at once, before it waits for the order's placement: a
/// placement still waiting for its rate-limit permit is then never sent (see
/// [`Venue::withdraw`]), so the kill switch does not wait for it, nor leave it live behind.
fn withdraw_early(hub: &Hub, venue: &dyn Venue, command: &Command) {
    if let Command::Cancel { client_id, by_host: true, .. } = command
        && hub.tracker.lock().order(client_id).is_some_and(|t| t.pending && t.report.venue_id.is_empty())
    {
        venue.withdraw(client_id);
    }
}

/// Ends a placement the sender does not send, as cancelled: its plugin and the audit log are
/// told why.
fn drop_unsent(hub: &Hub, client_id: &str, why: &str) {
    let done = hub.tracker.lock().finish_unsent(
        client_id,
        tradebox_core::OrderStatus::Canceled,
        why.into(),
        hub.clock.now_ms(),
    );
    if let Some((plugin, report)) = done {
        order_changed(hub, Some(plugin), report, Learnt::Unsent);
    }
}

/// How long an order that ended is kept for a fill that comes after its last report, ms.
const PRUNE_GRACE_MS: i64 = 60_000;

/// Orders remembered by the sender before it forgets finished ones.
const PRUNE_AT: usize = 4_096;

async fn execute(hub: &Hub, venue: &dyn Venue, command: Command) {
    match command {
        Command::Flush(done) => {
            let _ = done.send(());
        }
        Command::Place(order) => {
            let client_id = order.client_id.clone();
            // The host cancelled it while this placement waited in the plugin's lane: the
            // cancel went first (the host's lane always does), so sending it now would leave a
            // live order behind the kill switch.
            if hub.tracker.lock().cancelled_by_host(&client_id) {
                drop_unsent(hub, &client_id, "cancelled by the host before it was sent");
                return;
            }
            // Halted since the check it passed: a halt that came between the plugin's check and
            // the order's entry in the tracker found nothing to cancel, so it is stopped here.
            let halted =
                order.origin.as_ref().and_then(|o| hub.plugin(o.plugin)).is_some_and(|slot| {
                    hub.account_state().stricter(slot.state()) == tradebox_core::TradingState::Halted
                });
            if halted {
                drop_unsent(hub, &client_id, "halted before it was sent");
                return;
            }
            match venue.place(order.into_inner()).await {
                Ok(_) => {}
                Err(VenueError::Withdrawn) => drop_unsent(hub, &client_id, "cancelled by the host before it was sent"),
                Err(VenueError::Rejected { code, message }) => {
                    let rejected =
                        hub.tracker.lock().reject(&client_id, format!("{code}: {message}"), hub.clock.now_ms());
                    if let Some((plugin, report)) = rejected {
                        order_changed(hub, Some(plugin), report, Learnt::Refused { code, message });
                    }
                }
                Err(VenueError::Unavailable(why)) => {
                    // Outcome unknown: never resend blindly. The order stays pending until a
                    // venue report or a reconciliation settles it.
                    tracing::warn!(%client_id, %why, "order outcome unknown");
                }
            }
        }
        Command::Subscribe(instrument, channel) => {
            if let Err(e) = venue.subscribe(instrument, channel).await {
                tracing::warn!(instrument, ?channel, error = %e, "the venue refused a market data subscription");
            }
        }
        Command::Unsubscribe(instrument, channel) => {
            if let Err(e) = venue.unsubscribe(instrument, channel).await {
                tracing::debug!(instrument, ?channel, error = %e, "unsubscribe failed");
            }
        }
        Command::Cancel { instrument, client_id, by_host, origin } => {
            // Ended before its cancel's turn came (filled, or its placement withdrawn and never
            // sent): there is nothing to cancel, and a request would spend the rate limit the
            // kill switch's other cancels need.
            if hub.tracker.lock().order(&client_id).is_none_or(|t| !t.pending && t.report.status.is_terminal()) {
                return;
            }
            let result = if by_host {
                venue.cancel_for_host(instrument, &client_id, origin.as_deref()).await
            } else {
                venue.cancel(instrument, &client_id, origin.as_deref()).await
            };
            if let Err(e) = result {
                if by_host {
                    // The venue retried all it could: the operator must know an order the
                    // kill switch (or the breaker, or an unload) meant to cancel may be live.
                    tracing::error!(%client_id, error = %e, "the host's cancel was refused: the order may still be live");
                } else {
                    tracing::debug!(%client_id, error = %e, "cancel refused");
                }
                // The order may still be live: its plugin may ask again.
                hub.tracker.lock().cancel_failed(&client_id);
            }
        }
        Command::Amend(amend) => {
            let super::Amend { instrument, client_id, price, size, origin } = amend.into_inner();
            if hub.tracker.lock().cancelled_by_host(&client_id) {
                return;
            }
            if let Err(e) = venue.amend(instrument, &client_id, price, size, Some(&origin)).await {
                tracing::debug!(%client_id, error = %e, "amend refused");
                let owner = hub.tracker.lock().owner(&client_id);
                if let Some(slot) = owner.and_then(|p| hub.plugin(p)) {
                    let denial = tradebox_core::Denial::new(
                        tradebox_core::DenialCode::VenueRejected,
                        format!("amend refused: {e}"),
                    );
                    slot.mailbox.push(PluginEvent::RiskDenied { client_id: Some(client_id), denial });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Grants, OrderIntent, RiskLimits};
    use tradebox_core::TradingState;
    use tradebox_core::{InstrumentId, OrderKind, OrderReport, OrderStatus, Side};
    use tradebox_sim::venue::{SimConfig, SimVenue};

    /// A hub over `instruments` with a BTC-USDT price and a plugin `p` granted BTC-USDT; no
    /// sender running yet.
    fn priced_hub(
        instruments: Vec<tradebox_core::InstrumentSpec>,
    ) -> (Arc<Hub>, super::super::Lanes, Arc<crate::engine::PluginSlot>, InstrumentId) {
        let (hub, lanes) = Hub::new(instruments);
        let btc = hub.instrument_by_symbol("BTC-USDT").expect("BTC-USDT").id;
        let ticker = MarketEvent::Ticker {
            instrument: btc,
            ts_ms: 1,
            bid: 50_000.0,
            bid_size: 1.0,
            ask: 50_001.0,
            ask_size: 1.0,
            last: 50_000.0,
        };
        Router::new(true).route(&hub, VenueEvent::Market(ticker));
        let grants = Grants { instruments: vec!["BTC-USDT".into()], ..Grants::default() };
        let slot = hub.register("p", grants, RiskLimits::default());
        (hub, lanes, slot, btc)
    }

    /// [`priced_hub`] on the simulator.
    fn halted_rig() -> (Arc<SimVenue>, Arc<Hub>, super::super::Lanes, Arc<crate::engine::PluginSlot>, InstrumentId) {
        let venue = SimVenue::new(SimConfig::demo()).expect("sim");
        let (hub, lanes, slot, btc) = priced_hub(venue.instruments());
        (venue, hub, lanes, slot, btc)
    }

    fn buy(instrument: InstrumentId, price: f64) -> OrderIntent {
        OrderIntent {
            instrument,
            side: Side::Buy,
            kind: OrderKind::Limit,
            price: Some(price),
            size: 0.001,
            reduce_only: false,
        }
    }

    /// The kill switch while a plugin's placements still wait in its lane: the host's cancels
    /// go first, and the placements they overtook are dropped, not sent after them.
    #[tokio::test]
    async fn a_placement_overtaken_by_the_kill_switch_never_goes_out() {
        let (venue, hub, lanes, slot, btc) = halted_rig();
        let ids: Vec<String> =
            (0..5).map(|i| hub.place(&slot, buy(btc, 49_000.0 + f64::from(i))).expect("placed")).collect();
        // Nothing has been sent yet when the kill switch is thrown.
        hub.set_account_state(TradingState::Halted, "kill switch");
        let sender = tokio::spawn(run_sender(hub.clone(), venue.clone(), lanes));
        hub.flush().await;
        assert!(venue.open_orders().await.expect("orders").is_empty(), "an order went out after the kill switch");
        for id in &ids {
            let order = hub.order(id).expect("tracked");
            assert_eq!(order.report.status, OrderStatus::Canceled, "{id}");
        }
        sender.abort();
    }

    /// A halt that came between a plugin's pre-trade check and its order's entry in the
    /// tracker finds nothing to cancel: the sender drops that placement instead of sending it.
    #[tokio::test]
    async fn a_placement_of_a_plugin_halted_since_its_check_never_goes_out() {
        let (venue, hub, lanes, slot, btc) = halted_rig();
        let id = hub.place(&slot, buy(btc, 49_000.0)).expect("placed");
        // The halt's state, without its walk of the tracker (which the race let it miss).
        hub.account_state.store(TradingState::Halted as u8, std::sync::atomic::Ordering::Release);
        let sender = tokio::spawn(run_sender(hub.clone(), venue.clone(), lanes));
        hub.flush().await;
        assert!(venue.open_orders().await.expect("orders").is_empty(), "an order went out after the halt");
        let order = hub.order(&id).expect("tracked");
        assert_eq!(order.report.status, OrderStatus::Canceled);
        assert_eq!(order.report.reason.as_deref(), Some("halted before it was sent"));
        sender.abort();
    }

    /// The simulator as a network venue (commands in flight at once) whose plugin cancels
    /// never get their rate share: they wait forever, as in a cancel storm.
    struct StarvedCancels(Arc<SimVenue>, tokio::sync::Notify);

    #[async_trait::async_trait]
    impl Venue for StarvedCancels {
        fn name(&self) -> &str {
            "starved"
        }
        fn instruments(&self) -> Vec<tradebox_core::InstrumentSpec> {
            self.0.instruments()
        }
        fn concurrent(&self) -> bool {
            true
        }
        fn take_events(&self) -> Option<mpsc::UnboundedReceiver<VenueEvent>> {
            self.0.take_events()
        }
        async fn place(
            &self,
            order: tradebox_core::NewOrder,
        ) -> Result<tradebox_core::PlaceAck, tradebox_core::VenueError> {
            self.0.place(order).await
        }
        async fn cancel(
            &self,
            _: InstrumentId,
            _: &str,
            _: Option<&tradebox_core::Origin>,
        ) -> Result<(), tradebox_core::VenueError> {
            self.1.notify_one();
            std::future::pending().await
        }
        async fn cancel_for_host(
            &self,
            instrument: InstrumentId,
            id: &str,
            origin: Option<&tradebox_core::Origin>,
        ) -> Result<(), tradebox_core::VenueError> {
            self.0.cancel(instrument, id, origin).await
        }
        async fn amend(
            &self,
            i: InstrumentId,
            id: &str,
            p: Option<Decimal>,
            s: Option<Decimal>,
            origin: Option<&tradebox_core::Origin>,
        ) -> Result<(), tradebox_core::VenueError> {
            self.0.amend(i, id, p, s, origin).await
        }
        async fn open_orders(&self) -> Result<Vec<OrderReport>, tradebox_core::VenueError> {
            self.0.open_orders().await
        }
        async fn balances(&self) -> Result<Vec<tradebox_core::BalanceReport>, tradebox_core::VenueError> {
            self.0.balances().await
        }
        async fn positions(&self) -> Result<Vec<tradebox_core::PositionReport>, tradebox_core::VenueError> {
            self.0.positions().await
        }
    }

    /// The kill switch after a plugin's cancel that waits for its rate share: the host's cancel
    /// of the same order does not queue behind it.
    #[tokio::test]
    async fn the_kill_switch_does_not_wait_behind_a_plugins_starved_cancel() {
        let sim = SimVenue::new(SimConfig::demo()).expect("sim");
        let venue = Arc::new(StarvedCancels(sim.clone(), tokio::sync::Notify::new()));
        let (hub, lanes, slot, btc) = priced_hub(venue.instruments());
        let id = hub.place(&slot, buy(btc, 49_000.0)).expect("placed");
        let sender = tokio::spawn(run_sender(hub.clone(), venue.clone(), lanes));
        let open = || async { sim.open_orders().await.expect("orders").iter().any(|o| o.client_id == id) };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !open().await {
            assert!(tokio::time::Instant::now() < deadline, "never placed");
            tokio::task::yield_now().await;
        }
        hub.cancel(&slot, &id).expect("the plugin's cancel is accepted (and never gets its share)");
        // The sender has taken it to the venue (the host's lane would otherwise be read first).
        venue.1.notified().await;
        hub.set_account_state(TradingState::Halted, "kill switch");
        while open().await {
            assert!(tokio::time::Instant::now() < deadline, "the host's cancel waited behind the plugin's");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        sender.abort();
    }

    #[test]
    fn candles_roll_over_each_minute() {
        let mut c = Candles::default();
        let (closed, bar) = c.on_trade(1, 60_000, 10.0, 1.0);
        assert_eq!((closed, bar), (None, (60_000, [10.0, 10.0, 10.0, 10.0, 1.0])));
        c.on_trade(1, 60_500, 12.0, 2.0);
        let (_, bar) = c.on_trade(1, 119_999, 9.0, 1.0);
        assert_eq!(bar, (60_000, [10.0, 12.0, 9.0, 9.0, 4.0]));
        let (closed, bar) = c.on_trade(1, 120_000, 11.0, 1.0);
        assert_eq!(closed, Some((60_000, [10.0, 12.0, 9.0, 9.0, 4.0])));
        assert_eq!(bar, (120_000, [11.0, 11.0, 11.0, 11.0, 1.0]));
    }
}
