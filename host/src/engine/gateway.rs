//! The order gateway: the one way an order reaches a venue. Every source (plugin intents, the
//! operator, the CLI) calls these methods: grant → normalise → client order id → risk's
//! approval (rules, then windows; gathered here, judged by `crate::risk::AccountRisk`) →
//! audit the intent and the decision → tracker → the sender task. Cancels skip risk and
//! limits (only the plugin's cancel window), so a halted plugin can always cancel.

use super::activity::Activity;
use super::{Amend, Command, Hub, OrderIntent, PluginId, PluginSlot, Queued, Ticket, normalize};
use crate::audit::Entry;
use crate::risk::check::{self, Exposure, Input};
use crate::risk::{Approved, windows};
use std::sync::atomic::Ordering;
use tradebox_core::{Denial, DenialCode, Moment, TradingState};
use tradebox_core::{InstrumentId, InstrumentKind, InstrumentSpec, NewOrder, OrderReport, PositionSide, Side};

fn audit_failed() -> Denial {
    Denial::new(
        DenialCode::AuditUnavailable,
        "the audit log cannot be written (disk full or I/O error): new orders are refused until it can",
    )
}

impl Hub {
    /// Records a refusal in the audit log, within the plugin's budget of refusal records (the
    /// rest are counted and summarised), and hands the denial back.
    fn refused(&self, slot: &PluginSlot, denial: Denial, client_id: &str) -> Denial {
        self.refused_asking(slot, denial, client_id, String::new)
    }

    /// [`Hub::refused`], with what was asked (built only when the record is written): a
    /// refused intent is recorded once, in its refusal.
    fn refused_asking(
        &self,
        slot: &PluginSlot,
        denial: Denial,
        client_id: &str,
        asked: impl FnOnce() -> String,
    ) -> Denial {
        if self.audit.get().is_none() {
            return denial;
        }
        let now = self.clock.moment();
        let (write, summary) = {
            let mut budget = slot.refusals.lock();
            (budget.admit(denial.code.as_str(), now), budget.summary(now, false))
        };
        if let Some(summary) = summary {
            self.audit_entry(Some(&slot.origin()), summary);
        }
        if write {
            self.audit_entry(
                Some(&slot.origin()),
                Entry::Risk {
                    // An amend's id is the plugin's text until it is known to be one of ours.
                    client_id: crate::logging::plugin_text(client_id),
                    decision: crate::audit::Decision::Denied(denial.code),
                    detail: match (denial.limit, denial.value) {
                        (Some(l), Some(v)) => format!("{} (limit {l}, value {v}){}", denial.message, asked()),
                        _ => format!("{}{}", denial.message, asked()),
                    },
                },
            );
        }
        denial
    }

    /// No new order (or amend) goes out while the audit log cannot record it.
    fn audit_writable(&self) -> Result<(), Denial> {
        match self.audit.get() {
            Some(log) if log.failing() => Err(audit_failed()),
            _ => Ok(()),
        }
    }

    /// Accepts or refuses a new order intent. Returns the client order id at once; the
    /// outcome arrives as events. The intent and the decision are in the audit log before any
    /// request can leave.
    pub fn place(&self, slot: &PluginSlot, intent: OrderIntent) -> Result<String, Denial> {
        let result = self.place_inner(slot, intent);
        if let Err(denial) = &result {
            slot.stats.count_denial(denial.code);
            tracing::debug!(plugin = %slot.name, %denial, "order denied");
        }
        result
    }

    fn place_inner(&self, slot: &PluginSlot, intent: OrderIntent) -> Result<String, Denial> {
        let OrderIntent { instrument, side, kind, price, size, reduce_only } = intent;
        let spec = self.granted(slot, instrument).map_err(|d| self.refused(slot, d, ""))?;
        self.kind_permitted(slot, kind).map_err(|d| self.refused(slot, d, ""))?;
        let price = normalize::price(spec, side, kind, price).map_err(|d| self.refused(slot, d, ""))?;
        let size = normalize::size(spec, size).map_err(|d| self.refused(slot, d, ""))?;
        // A place in the plugin's queue first: a full queue refuses before any rate is used.
        let ticket = Ticket::take(&slot.queued).map_err(|d| self.refused(slot, d, ""))?;
        let client_id = self.minter.next(slot.id);
        self.audit_writable().map_err(|d| self.refused(slot, d, &client_id))?;
        let leg = PositionSide::of_order(self.position_mode(), spec.kind, side, reduce_only);
        let order = check::Order { spec, side, kind, price, size, reduce_only, leg };
        let asked = || {
            let px = price.map_or_else(|| "market".to_string(), |p| p.to_string());
            let reduce = if reduce_only { " reduce-only" } else { "" };
            format!("; asked: {side:?} {size} {} @ {px} ({kind:?}{reduce})", spec.symbol)
        };
        let new_order = NewOrder {
            client_id: client_id.clone(),
            instrument: spec.id,
            side,
            kind,
            price,
            size,
            reduce_only,
            leg,
            origin: Some((*slot.origin()).clone()),
        };
        let fingerprint = Some(windows::fingerprint(spec.id, side, price, size));
        let approved = self
            .pre_trade(new_order, slot, &order, None, fingerprint, self.clock.moment())
            .map_err(|d| self.refused_asking(slot, d, &client_id, asked))?;
        // The intent and the verdict are written once the order is approved, still before it
        // can leave: a refused intent costs one (budgeted) record, not two.
        if self.audit.get().is_some() {
            let detail = serde_json::json!({
                "side": side, "kind": kind, "price": price.map(|p| p.to_string()), "size": size.to_string(),
                "reduce_only": reduce_only,
            });
            let intent = Entry::Intent { client_id: client_id.clone(), instrument: spec.symbol.clone(), detail };
            let approved = Entry::Risk {
                client_id: client_id.clone(),
                decision: crate::audit::Decision::Approved,
                detail: String::new(),
            };
            if !(self.audit_entry(Some(&slot.origin()), intent) && self.audit_entry(Some(&slot.origin()), approved)) {
                return Err(self.refused(slot, self.audit_writable().err().unwrap_or_else(audit_failed), &client_id));
            }
        }
        let mark = || self.quote(spec.id).and_then(|q| q.mid()).unwrap_or(0.0);
        let unit_value =
            price.map_or_else(mark, tradebox_core::num::measure) * tradebox_core::num::measure(spec.contract_value);
        let report = self.tracker.lock().insert_pending(
            slot.id,
            &client_id,
            spec.id,
            side,
            kind,
            price,
            size,
            unit_value,
            leg,
            self.clock.now_ms(),
        );
        self.enqueue(Command::Place(approved), ticket)?;
        slot.stats.orders_sent.fetch_add(1, Ordering::Relaxed);
        if self.activity.get().is_some() {
            let placed = Activity::Placed {
                client_id: client_id.clone(),
                symbol: spec.symbol.clone(),
                side,
                size,
                price: report.price,
                kind,
            };
            self.record(&slot.name, placed);
        }
        Ok(client_id)
    }

    /// Runs the whole pre-trade check of an intent (grant, normalisation, every risk rule and
    /// window) without placing it: a dry run, and what the risk figure in BENCHMARKS.md times.
    /// A pass counts in the windows as a placed order would.
    pub fn check_intent(&self, slot: &PluginSlot, intent: OrderIntent) -> Result<(), Denial> {
        self.check_intent_at(slot, intent, self.clock.moment())
    }

    /// [`Hub::check_intent`] as of `now` for the time windows (a benchmark's clock).
    pub fn check_intent_at(&self, slot: &PluginSlot, intent: OrderIntent, now: Moment) -> Result<(), Denial> {
        let OrderIntent { instrument, side, kind, price, size, reduce_only } = intent;
        let spec = self.granted(slot, instrument)?;
        self.kind_permitted(slot, kind)?;
        let price = normalize::price(spec, side, kind, price)?;
        let size = normalize::size(spec, size)?;
        let leg = PositionSide::of_order(self.position_mode(), spec.kind, side, reduce_only);
        let order = check::Order { spec, side, kind, price, size, reduce_only, leg };
        self.pre_trade((), slot, &order, None, Some(windows::fingerprint(spec.id, side, price, size)), now).map(|_| ())
    }

    /// The whole pre-trade check of one order (or of an amend, leaving the amended order out of
    /// the counts): what risk needs to know, gathered here, and its approval of `subject`.
    fn pre_trade<T>(
        &self,
        subject: T,
        slot: &PluginSlot,
        order: &check::Order<'_>,
        amended: Option<&str>,
        fingerprint: Option<windows::Fingerprint>,
        now: Moment,
    ) -> Result<Approved<T>, Denial> {
        let limits = slot.effective_risk();
        slot.risk.refuse_early(&limits, now)?;
        let account = self.account_risk.limits();
        let (plugin, all, available) = {
            let tracker = self.tracker.lock();
            let quotes = self.quotes.read();
            let mark = |i: InstrumentId| quotes.get(&i).and_then(|q| q.mid()).unwrap_or(0.0);
            let plugin = self.exposure(&tracker, Some(slot.id), order, amended, &mark);
            let all = self.exposure(&tracker, None, order, amended, &mark);
            let available = (account.check_balance && order.spec.kind == InstrumentKind::Spot)
                .then(|| self.available(&tracker, order.spec, order.side))
                .flatten();
            (plugin, all, available)
        };
        let quote = self.quote(order.spec.id);
        let input = Input {
            limits: &limits,
            account: &account,
            state: self.account_state().stricter(slot.state()),
            quote,
            quote_age: quote.and_then(|q| q.received).map(|t| now.saturating_duration_since(t)),
            plugin,
            all,
            available,
        };
        self.account_risk.approve(&slot.risk, subject, &input, order, fingerprint, now)
    }

    /// What a plugin (or, with `None`, every plugin) holds: open orders, the position in the
    /// order's instrument, size still open on its side, gross exposure. Open orders come from
    /// the tracker's running summaries (no walk over them); an amended order is left out.
    fn exposure(
        &self,
        tracker: &super::tracker::Tracker,
        plugin: Option<PluginId>,
        order: &check::Order<'_>,
        amended: Option<&str>,
        mark: &dyn Fn(InstrumentId) -> f64,
    ) -> Exposure {
        let mut e = Exposure::default();
        let key = (order.spec.id, order.side);
        let mut add = |s: &super::tracker::OpenSummary| {
            e.open_orders += s.count;
            e.gross += s.notional;
            e.same_side_open += s.remaining.get(&key).copied().unwrap_or_default();
        };
        match plugin {
            Some(p) => {
                if let Some(s) = tracker.summary(p) {
                    add(s);
                }
            }
            None => tracker.summaries().for_each(|(_, s)| add(s)),
        }
        if let Some(t) = amended.and_then(|id| tracker.order(id))
            && plugin.is_none_or(|p| p == t.plugin)
            && !t.report.status.is_terminal()
        {
            let remaining = t.report.size - t.report.filled;
            e.open_orders = e.open_orders.saturating_sub(1);
            e.gross = (e.gross - tradebox_core::num::relief(remaining) * t.unit_value.abs()).max(0.0);
            if (t.report.instrument, t.report.side) == key {
                e.same_side_open -= remaining;
            }
        }
        for (owner, instrument, leg, pos) in tracker.all_positions() {
            if plugin.is_some_and(|p| p != owner) || pos.size.is_zero() {
                continue;
            }
            if instrument == order.spec.id && leg == order.leg {
                e.position += pos.size;
            } else if instrument == order.spec.id && order.leg != PositionSide::Net {
                e.other_side += pos.size.abs();
            }
            e.gross += pos.units * mark(instrument).abs();
        }
        e
    }

    /// Free balance in what a spot order spends, after what this host's orders not yet
    /// acknowledged by the venue will take (the venue's own figure already counts the others).
    fn available(&self, tracker: &super::tracker::Tracker, spec: &InstrumentSpec, side: Side) -> Option<f64> {
        let ccy = if side == Side::Buy { &spec.quote } else { &spec.base };
        let free = tradebox_core::num::relief(self.balances.read().get(ccy)?.available);
        let mut pending = 0.0;
        for (instrument, side, size, value) in tracker.unacknowledged() {
            let Some(s) = self.instrument(instrument).filter(|s| s.kind == InstrumentKind::Spot) else { continue };
            match side {
                // Market buys were valued at the mark: leave them OKX's 5% margin.
                Side::Buy if &s.quote == ccy => pending += value * 1.05,
                Side::Sell if &s.base == ccy => pending += tradebox_core::num::measure(size),
                _ => {}
            }
        }
        Some(free - pending)
    }

    fn owned_open(&self, slot: &PluginSlot, client_id: &str) -> Result<OrderReport, Denial> {
        owned_open(&self.tracker.lock(), slot, client_id)
    }

    /// Cancels one of the plugin's orders. Allowed whatever the trading state, once per order
    /// at a time (a second cancel of an order already being cancelled is `CANCEL_PENDING`),
    /// within the plugin's cancel window and its queue.
    pub fn cancel(&self, slot: &PluginSlot, client_id: &str) -> Result<(), Denial> {
        let result = self.cancel_inner(slot, client_id);
        if let Err(denial) = &result {
            slot.stats.count_denial(denial.code);
        }
        result
    }

    fn cancel_inner(&self, slot: &PluginSlot, client_id: &str) -> Result<(), Denial> {
        // Every attempt counts in the window, refused or not: past it, a plugin's cancels are
        // refused on its own state alone, without the tracker every plugin shares.
        slot.risk.admit_cancel(self.clock.moment())?;
        let order = {
            let tracker = self.tracker.lock();
            let order = owned_open(&tracker, slot, client_id)?;
            if tracker.order(client_id).is_some_and(|t| t.cancel_pending) {
                return Err(Denial::new(
                    DenialCode::CancelPending,
                    format!("a cancel of {client_id} is already on its way"),
                ));
            }
            order
        };
        let ticket = Ticket::take(&slot.queued)?;
        if !self.tracker.lock().start_cancel(client_id) {
            return Err(Denial::new(
                DenialCode::CancelPending,
                format!("a cancel of {client_id} is already on its way"),
            ));
        }
        let command = Command::Cancel {
            instrument: order.instrument,
            client_id: client_id.to_string(),
            by_host: false,
            origin: Some(slot.origin()),
        };
        self.enqueue(command, ticket)
    }

    /// Amends price and/or total size of one of the plugin's orders. An amend that moves the
    /// price or grows the order is checked like a new order (without counting the order
    /// itself twice); shrinking always passes.
    pub fn amend(
        &self,
        slot: &PluginSlot,
        client_id: &str,
        price: Option<f64>,
        size: Option<f64>,
    ) -> Result<(), Denial> {
        self.amend_inner(slot, client_id, price, size).map_err(|denial| {
            tracing::debug!(plugin = %slot.name, %denial, "amend denied");
            let denial = self.refused(slot, denial, client_id);
            slot.stats.count_denial(denial.code);
            denial
        })
    }

    fn amend_inner(
        &self,
        slot: &PluginSlot,
        client_id: &str,
        price: Option<f64>,
        size: Option<f64>,
    ) -> Result<(), Denial> {
        slot.risk.refuse_early(&slot.effective_risk(), self.clock.moment())?;
        let order = self.owned_open(slot, client_id)?;
        self.audit_writable()?;
        let spec = self.granted(slot, order.instrument)?;
        // An amend is a new order in all but name: after a reload that narrowed the plugin's
        // order types, its older orders of another type can be cancelled, not amended.
        self.kind_permitted(slot, order.kind)?;
        let price = match price {
            Some(px) => normalize::price(spec, order.side, order.kind, Some(px))?,
            None => None,
        };
        let size = size.map(|s| normalize::size(spec, s)).transpose()?;
        if price.is_none() && size.is_none() {
            return Err(Denial::new(DenialCode::InvalidPrice, "an amend needs a new price or a new size"));
        }
        let grows = size.is_some_and(|s| s > order.size);
        let amend = Amend {
            instrument: order.instrument,
            client_id: client_id.to_string(),
            price,
            size,
            origin: slot.origin(),
        };
        let approved = if grows || price.is_some() {
            let leg = self.tracker.lock().order(client_id).map_or(PositionSide::Net, |t| t.leg);
            let checked = check::Order {
                spec,
                side: order.side,
                kind: order.kind,
                price: price.or(order.price),
                size: size.unwrap_or(order.size) - order.filled,
                reduce_only: false,
                leg,
            };
            self.pre_trade(amend, slot, &checked, Some(client_id), None, self.clock.moment())?
        } else {
            // A smaller size only: no rule to check, but it counts in the windows (at the
            // manifest's rate where that is lower, as every order does).
            self.account_risk.approve_in_windows(&slot.risk, amend, &slot.effective_risk(), self.clock.moment())?
        };
        let ticket = Ticket::take(&slot.queued)?;
        // As a placement's intent: recorded once approved, before it can leave.
        if self.audit.get().is_some() {
            let entry = Entry::Amend {
                client_id: client_id.to_string(),
                instrument: spec.symbol.clone(),
                price: price.map(|p| p.to_string()),
                size: size.map(|s| s.to_string()),
            };
            if !self.audit_entry(Some(&slot.origin()), entry) {
                return Err(self.audit_writable().err().unwrap_or_else(audit_failed));
            }
        }
        self.enqueue(Command::Amend(approved), ticket)
    }

    /// Cancels the plugin's open orders (in one instrument or all) that are not being
    /// cancelled already; returns how many cancels it queued. Each call counts as one attempt
    /// in the plugin's cancel window: what it sends is bounded by the open orders, but each
    /// call reads them under the tracker's lock, so a loop of calls must be bounded too. A
    /// full queue stops it (`QUEUE_FULL` when not one cancel could be queued).
    pub fn cancel_all(&self, slot: &PluginSlot, instrument: Option<InstrumentId>) -> Result<u32, Denial> {
        if let Err(denial) = slot.risk.admit_cancel(self.clock.moment()) {
            slot.stats.count_denial(denial.code);
            return Err(denial);
        }
        let targets = self.open_of(slot.id, instrument);
        let origin = slot.origin();
        let mut queued = 0;
        for (instrument, client_id) in targets {
            let ticket = match Ticket::take(&slot.queued) {
                Ok(t) => t,
                Err(denial) if queued == 0 => return Err(denial),
                Err(_) => break,
            };
            if !self.tracker.lock().start_cancel(&client_id) {
                continue;
            }
            let command = Command::Cancel { instrument, client_id, by_host: false, origin: Some(origin.clone()) };
            self.enqueue(command, ticket)?;
            queued += 1;
        }
        Ok(queued)
    }

    /// The host cancels every open order of a plugin (kill switch, breaker, unload, failure
    /// policy): on the host's own lane, ahead of anything plugins queued, whatever cancels
    /// the plugin has asked for already; returns how many.
    /// An order whose placement is still queued behind the plugin's other commands is marked,
    /// and the sender drops that placement when it comes to it (the host's cancel went first).
    pub fn cancel_all_for_host(&self, plugin: PluginId, instrument: Option<InstrumentId>) -> u32 {
        let targets = self.open_of(plugin, instrument);
        let n = targets.len() as u32;
        // The owner's, while it is loaded (its orders outlive it); none for the host's own.
        let origin = self.plugin(plugin).map(|slot| slot.origin());
        for (instrument, client_id) in targets {
            self.tracker.lock().host_cancel(&client_id);
            let command = Command::Cancel { instrument, client_id, by_host: true, origin: origin.clone() };
            let _ = self.host_commands.send(command);
        }
        n
    }

    fn open_of(&self, plugin: PluginId, instrument: Option<InstrumentId>) -> Vec<(InstrumentId, String)> {
        self.tracker
            .lock()
            .open_orders(plugin)
            .filter(|t| instrument.is_none_or(|i| t.report.instrument == i))
            .map(|t| (t.report.instrument, t.report.client_id.clone()))
            .collect()
    }

    /// Resolves once every command accepted before it has been sent to the venue.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.commands.send(Queued { command: Command::Flush(tx), ticket: None }).is_ok() {
            let _ = rx.await;
        }
    }

    fn enqueue(&self, command: Command, ticket: Ticket) -> Result<(), Denial> {
        self.commands
            .send(Queued { command, ticket: Some(ticket) })
            .map_err(|_| Denial::new(DenialCode::Unavailable, "the host is shutting down"))
    }

    /// Counts a fill for the plugin's fill throttle.
    pub(super) fn count_fill(&self, slot: &PluginSlot) {
        slot.risk.on_fill(self.clock.moment());
    }

    /// The stricter of a plugin's and the account's states.
    pub fn effective_state(&self, slot: &PluginSlot) -> TradingState {
        self.account_state().stricter(slot.state())
    }
}

/// The plugin's own open order `client_id`, or `UNKNOWN_ORDER`.
fn owned_open(tracker: &super::tracker::Tracker, slot: &PluginSlot, client_id: &str) -> Result<OrderReport, Denial> {
    match tracker.order(client_id) {
        Some(t) if t.plugin == slot.id && !t.report.status.is_terminal() => Ok(t.report.clone()),
        _ => Err(Denial::new(
            DenialCode::UnknownOrder,
            // The id is the plugin's text: shown escaped and capped, never as given.
            format!("{} is not an open order of this plugin", crate::logging::plugin_text(client_id)),
        )),
    }
}
