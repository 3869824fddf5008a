//! Which plugin owns which order, the state of every order the host sent, and each plugin's
//! position and PnL built from its own fills.

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tradebox_core::{FillReport, InstrumentId, OrderKind, OrderReport, OrderStatus, PositionSide, Side};

/// A plugin's slot number; part of every client order id it gets.
pub type PluginId = u32;

/// The owner of orders the host adopted at start-up from an earlier run: plugins are numbered
/// from 1, so no plugin's cancels or queries reach them, while the account kill switch and the
/// account's risk limits do.
pub const HOST: PluginId = 0;

/// The host's record of one order.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedOrder {
    /// Owner.
    pub plugin: PluginId,
    /// Last known state; `status == None` while the venue has not acknowledged it yet.
    pub report: OrderReport,
    /// True until the venue sends its first report.
    pub pending: bool,
    /// A cancel asked for by the plugin is on its way: a second one is refused.
    pub cancel_pending: bool,
    /// The host cancelled it (kill switch, breaker, unload, failure policy): its placement or
    /// amend, if still queued, must not go out after that cancel.
    pub cancelled_by_host: bool,
    /// Quote value of one unit of size (limit price, or the mark when placed for a market
    /// order, times the contract value): what the open size counts for in gross exposure.
    pub unit_value: f64,
    /// The position its fills change (one of two in long/short mode).
    pub leg: PositionSide,
}

/// What a plugin's open orders add up to, kept as orders come and go so the risk check reads
/// it without walking them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenSummary {
    /// Open orders.
    pub count: usize,
    /// Their unfilled size valued at `unit_value`, absolute, quote currency.
    pub notional: f64,
    /// Unfilled size per instrument and side.
    pub remaining: FxHashMap<(InstrumentId, Side), Decimal>,
}

/// A plugin's position in one instrument, from its own fills.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginPosition {
    /// Signed size.
    pub size: Decimal,
    /// Average entry price of the open size.
    pub avg_price: Decimal,
    /// Realised PnL in the quote currency (before fees).
    pub realized: Decimal,
    /// Fees paid, in the fee currency (the quote currency on the simulator).
    pub fees: Decimal,
    /// Contract multiplier (base per unit of size).
    pub multiplier: Decimal,
    /// `|size| × multiplier` as a float, kept with every fill: what the risk check multiplies by
    /// the mark for gross exposure, without converting decimals on every intent.
    pub units: f64,
}

impl PluginPosition {
    /// Applies one fill: grows the position at a new average or realises PnL on the part that
    /// closes it.
    pub fn apply(&mut self, side: Side, price: Decimal, size: Decimal, fee: Decimal) {
        self.fees += fee;
        let pnl = tradebox_core::apply_net_fill(&mut self.size, &mut self.avg_price, side.sign() * size, price);
        self.realized += pnl * self.multiplier;
        self.units = tradebox_core::num::measure((self.size * self.multiplier).abs());
    }

    /// Unrealised PnL at `mark`.
    pub fn unrealized(&self, mark: Decimal) -> Decimal {
        (mark - self.avg_price) * self.size * self.multiplier
    }

    /// A plugin's positions of one instrument (its long and short ones in long/short mode) as
    /// the one position a plugin is shown: sizes, PnL, fees and units (gross) add up; the
    /// average is the price at which the net size carries the positions' combined unrealised
    /// PnL; and when they cancel out (as large a long as a short), the PnL they lock in counts
    /// as realised. One position is shown as it is.
    pub fn merged<'a>(legs: impl IntoIterator<Item = &'a PluginPosition>) -> PluginPosition {
        let mut legs = legs.into_iter();
        let Some(first) = legs.next() else { return PluginPosition::default() };
        let Some(second) = legs.next() else { return first.clone() };
        let mut out = PluginPosition { multiplier: first.multiplier, ..Default::default() };
        let mut cost = Decimal::ZERO;
        for leg in [first, second].into_iter().chain(legs) {
            out.size += leg.size;
            out.realized += leg.realized;
            out.fees += leg.fees;
            out.units += leg.units;
            cost += leg.avg_price * leg.size;
        }
        if out.size.is_zero() {
            out.realized -= cost * out.multiplier;
        } else {
            out.avg_price = cost / out.size;
        }
        out
    }
}

/// Orders and positions of every plugin.
#[derive(Debug, Default)]
pub struct Tracker {
    orders: HashMap<String, TrackedOrder>,
    /// Per plugin, instrument and position side (`Net`, or `Long` and `Short` in long/short
    /// mode).
    positions: FxHashMap<(PluginId, InstrumentId, PositionSide), PluginPosition>,
    /// Open orders by owner: the risk check reads them on every intent, so it must not scan
    /// finished ones.
    /// Sorted (by client order id), so that every walk of them goes in one order on every run:
    /// a backtest's cancels and a plugin's `open-orders` view must not depend on a hash seed.
    open: BTreeMap<PluginId, BTreeSet<String>>,
    summaries: FxHashMap<PluginId, OpenSummary>,
    /// Orders the venue has not acknowledged yet.
    unacked: HashSet<String>,
    /// What those add up to per instrument and side: (size, value at `unit_value`).
    unacked_sums: FxHashMap<(InstrumentId, Side), (Decimal, f64)>,
}

impl Tracker {
    /// Records an order the host is about to send; `unit_value` is what one unit of its size
    /// is worth in the quote currency (see [`TrackedOrder::unit_value`]).
    #[allow(clippy::too_many_arguments)]
    pub fn insert_pending(
        &mut self,
        plugin: PluginId,
        client_id: &str,
        instrument: InstrumentId,
        side: Side,
        kind: OrderKind,
        price: Option<Decimal>,
        size: Decimal,
        unit_value: f64,
        leg: PositionSide,
        ts_ms: i64,
    ) -> OrderReport {
        let report = OrderReport {
            client_id: client_id.to_string(),
            venue_id: String::new(),
            instrument,
            side,
            kind,
            price,
            size,
            filled: Decimal::ZERO,
            avg_price: None,
            status: OrderStatus::Live,
            reason: None,
            ts_ms,
        };
        self.orders.insert(
            client_id.to_string(),
            TrackedOrder {
                plugin,
                report: report.clone(),
                pending: true,
                cancel_pending: false,
                cancelled_by_host: false,
                unit_value,
                leg,
            },
        );
        self.open.entry(plugin).or_default().insert(client_id.to_string());
        self.unacked.insert(client_id.to_string());
        let u = self.unacked_sums.entry((instrument, side)).or_default();
        u.0 += size;
        u.1 += (tradebox_core::num::measure(size) * unit_value).abs();
        let s = self.summaries.entry(plugin).or_default();
        s.count += 1;
        s.notional += (tradebox_core::num::measure(size) * unit_value).abs();
        *s.remaining.entry((instrument, side)).or_default() += size;
        report
    }

    /// Tracks an order an earlier run left open as [`HOST`]'s, in the state the venue reports.
    pub fn adopt(&mut self, report: &OrderReport, unit_value: f64) {
        let r = report;
        let leg = PositionSide::Net;
        self.insert_pending(
            HOST,
            &r.client_id,
            r.instrument,
            r.side,
            r.kind,
            r.price,
            r.size,
            unit_value,
            leg,
            r.ts_ms,
        );
        self.on_report(report);
    }

    /// The venue has acknowledged (or refused) an order: it no longer counts as unacknowledged.
    fn acknowledged(&mut self, client_id: &str) {
        if !self.unacked.remove(client_id) {
            return;
        }
        let Some(t) = self.orders.get(client_id) else { return };
        let key = (t.report.instrument, t.report.side);
        if let Some(u) = self.unacked_sums.get_mut(&key) {
            u.0 -= t.report.size;
            u.1 = (u.1 - (tradebox_core::num::relief(t.report.size) * t.unit_value).abs()).max(0.0);
            if u.0 <= Decimal::ZERO {
                self.unacked_sums.remove(&key);
            }
        }
    }

    /// Moves an order's contribution to its owner's summary from `before` (remaining size,
    /// open) to its current state.
    fn resummarise(&mut self, client_id: &str, before_remaining: Decimal, was_open: bool) {
        let Some(t) = self.orders.get(client_id) else { return };
        let now_open = !t.report.status.is_terminal();
        let now_remaining = if now_open { (t.report.size - t.report.filled).max(Decimal::ZERO) } else { Decimal::ZERO };
        let before = if was_open { before_remaining } else { Decimal::ZERO };
        let (plugin, key, unit) = (t.plugin, (t.report.instrument, t.report.side), t.unit_value);
        let s = self.summaries.entry(plugin).or_default();
        if was_open && !now_open {
            s.count = s.count.saturating_sub(1);
        }
        s.notional = (s.notional + tradebox_core::num::change(now_remaining - before) * unit.abs()).max(0.0);
        let r = s.remaining.entry(key).or_default();
        *r += now_remaining - before;
        if r.is_zero() {
            s.remaining.remove(&key);
        }
    }

    fn settle(&mut self, plugin: PluginId, client_id: &str, terminal: bool) {
        if terminal && let Some(set) = self.open.get_mut(&plugin) {
            set.remove(client_id);
        }
    }

    /// Applies a venue report; returns the owner, or `None` for an order this host did not send
    /// and for a report older than what the host holds. Reports arrive by two paths (pushes and
    /// the REST reconciliation) and pushes can be reordered: a report that would take an order
    /// back (out of a final state, to less filled, or to an earlier update with the same fill)
    /// is stale and left out.
    pub fn on_report(&mut self, report: &OrderReport) -> Option<PluginId> {
        self.acknowledged(&report.client_id);
        let tracked = self.orders.get_mut(&report.client_id)?;
        let old = &tracked.report;
        let stale = (old.status.is_terminal() && !report.status.is_terminal())
            || report.filled < old.filled
            || (report.filled == old.filled && report.ts_ms < old.ts_ms && !tracked.pending);
        if stale {
            return None;
        }
        let before = tracked.report.size - tracked.report.filled;
        let was_open = !tracked.report.status.is_terminal();
        tracked.report = report.clone();
        tracked.pending = false;
        let plugin = tracked.plugin;
        self.resummarise(&report.client_id, before, was_open);
        self.settle(plugin, &report.client_id, report.status.is_terminal());
        Some(plugin)
    }

    /// Marks an order rejected before the venue saw it, or refused by the venue.
    pub fn reject(&mut self, client_id: &str, reason: String, ts_ms: i64) -> Option<(PluginId, OrderReport)> {
        self.finish_unsent(client_id, OrderStatus::Rejected, reason, ts_ms)
    }

    /// Marks the host's cancel of an order; true when its placement may still be queued (the
    /// venue has not acknowledged it), so the sender must check before sending it.
    pub fn host_cancel(&mut self, client_id: &str) -> bool {
        match self.orders.get_mut(client_id) {
            Some(t) => {
                t.cancelled_by_host = true;
                t.pending
            }
            None => false,
        }
    }

    /// True when the host cancelled the order: a queued placement or amend of it is dropped.
    pub fn cancelled_by_host(&self, client_id: &str) -> bool {
        self.orders.get(client_id).is_some_and(|t| t.cancelled_by_host)
    }

    /// Ends an order that never reached the venue with `status`.
    pub fn finish_unsent(
        &mut self,
        client_id: &str,
        status: OrderStatus,
        reason: String,
        ts_ms: i64,
    ) -> Option<(PluginId, OrderReport)> {
        self.acknowledged(client_id);
        let tracked = self.orders.get_mut(client_id)?;
        let before = tracked.report.size - tracked.report.filled;
        let was_open = !tracked.report.status.is_terminal();
        tracked.pending = false;
        tracked.report.status = status;
        tracked.report.reason = Some(reason);
        tracked.report.ts_ms = ts_ms;
        let out = (tracked.plugin, tracked.report.clone());
        self.resummarise(client_id, before, was_open);
        self.settle(out.0, client_id, true);
        Some(out)
    }

    /// Applies a fill to the owner's position (the one its order trades); returns the owner
    /// and its position in the instrument as the plugin is shown it.
    pub fn on_fill(&mut self, fill: &FillReport, multiplier: Decimal) -> Option<(PluginId, PluginPosition)> {
        let order = self.orders.get(&fill.client_id)?;
        let (plugin, leg) = (order.plugin, order.leg);
        let position = self
            .positions
            .entry((plugin, fill.instrument, leg))
            .or_insert_with(|| PluginPosition { multiplier, ..Default::default() });
        position.apply(fill.side, fill.price, fill.size, fill.fee);
        if leg == PositionSide::Net {
            return Some((plugin, position.clone()));
        }
        Some((plugin, self.position(plugin, fill.instrument).unwrap_or_default()))
    }

    /// Marks a plugin's cancel of `client_id` as on its way; false when one already is.
    pub fn start_cancel(&mut self, client_id: &str) -> bool {
        match self.orders.get_mut(client_id) {
            Some(t) if t.cancel_pending => false,
            Some(t) => {
                t.cancel_pending = true;
                true
            }
            None => false,
        }
    }

    /// The venue refused a cancel: the plugin may ask again.
    pub fn cancel_failed(&mut self, client_id: &str) {
        if let Some(t) = self.orders.get_mut(client_id) {
            t.cancel_pending = false;
        }
    }

    /// The owner of an order.
    pub fn owner(&self, client_id: &str) -> Option<PluginId> {
        self.orders.get(client_id).map(|t| t.plugin)
    }

    /// One order.
    pub fn order(&self, client_id: &str) -> Option<&TrackedOrder> {
        self.orders.get(client_id)
    }

    /// A plugin's orders that are not finished.
    pub fn open_orders(&self, plugin: PluginId) -> impl Iterator<Item = &TrackedOrder> {
        self.open.get(&plugin).into_iter().flatten().filter_map(|id| self.orders.get(id))
    }

    /// Every plugin's orders that are not finished.
    pub fn all_open_orders(&self) -> impl Iterator<Item = &TrackedOrder> {
        self.open.values().flatten().filter_map(|id| self.orders.get(id))
    }

    /// Open orders of every plugin together.
    pub fn open_count(&self) -> usize {
        self.open.values().map(BTreeSet::len).sum()
    }

    /// What a plugin's open orders add up to.
    pub fn summary(&self, plugin: PluginId) -> Option<&OpenSummary> {
        self.summaries.get(&plugin)
    }

    /// Every plugin's open-order summary.
    pub fn summaries(&self) -> impl Iterator<Item = (PluginId, &OpenSummary)> {
        self.summaries.iter().map(|(p, s)| (*p, s))
    }

    /// What the orders the venue has not acknowledged yet add up to, per instrument and
    /// side: (size, value).
    pub fn unacknowledged(&self) -> impl Iterator<Item = (InstrumentId, Side, Decimal, f64)> + '_ {
        self.unacked_sums.iter().map(|((i, s), (size, value))| (*i, *s, *size, *value))
    }

    /// Every plugin's positions, each side of long/short mode on its own.
    pub fn all_positions(&self) -> impl Iterator<Item = (PluginId, InstrumentId, PositionSide, &PluginPosition)> {
        self.positions.iter().map(|((p, i, leg), pos)| (*p, *i, *leg, pos))
    }

    /// A plugin's positions as it is shown them, one per instrument ([`PluginPosition::merged`]).
    pub fn positions(&self, plugin: PluginId) -> Vec<(InstrumentId, PluginPosition)> {
        let mut by_instrument: FxHashMap<InstrumentId, Vec<&PluginPosition>> = FxHashMap::default();
        for ((_, instrument, _), pos) in self.positions.iter().filter(|((p, ..), _)| *p == plugin) {
            by_instrument.entry(*instrument).or_default().push(pos);
        }
        by_instrument.into_iter().map(|(i, legs)| (i, PluginPosition::merged(legs))).collect()
    }

    /// A plugin's position in one instrument as it is shown it.
    pub fn position(&self, plugin: PluginId, instrument: InstrumentId) -> Option<PluginPosition> {
        let legs: Vec<&PluginPosition> = [PositionSide::Net, PositionSide::Long, PositionSide::Short]
            .iter()
            .filter_map(|leg| self.positions.get(&(plugin, instrument, *leg)))
            .collect();
        (!legs.is_empty()).then(|| PluginPosition::merged(legs))
    }

    /// Forgets orders that ended before `before_ms` (the hub's clock). Not those that ended
    /// since: a venue may report an order filled before it sends the fill itself (the backtest's
    /// exchange does, and OKX's two channels may), and a fill whose order is forgotten has no
    /// owner, so its position change would be lost (a long backtest lost hundreds of trades to
    /// this when pruning took every finished order).
    pub fn prune_finished(&mut self, before_ms: i64) {
        self.orders.retain(|_, t| !t.report.status.is_terminal() || t.report.ts_ms >= before_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// A net-mode limit order of `plugin` on instrument 7, valued at its price.
    fn limit(t: &mut Tracker, plugin: PluginId, id: &str, side: Side, px: &str, size: &str) -> OrderReport {
        let value = px.parse::<f64>().unwrap();
        t.insert_pending(plugin, id, 7, side, OrderKind::Limit, Some(d(px)), d(size), value, PositionSide::Net, 0)
    }

    #[test]
    fn position_averages_in_and_realises_out() {
        let mut p = PluginPosition { multiplier: Decimal::ONE, ..Default::default() };
        p.apply(Side::Buy, d("100"), d("1"), d("0.1"));
        p.apply(Side::Buy, d("110"), d("1"), d("0.1"));
        assert_eq!(p.size, d("2"));
        assert_eq!(p.avg_price, d("105"));
        p.apply(Side::Sell, d("120"), d("1.5"), d("0.1"));
        assert_eq!(p.size, d("0.5"));
        assert_eq!(p.realized, d("22.5"));
        assert_eq!(p.fees, d("0.3"));
        assert_eq!(p.unrealized(d("100")), d("-2.5"));
    }

    #[test]
    fn a_reordered_or_late_report_never_takes_an_order_back() {
        let mut t = Tracker::default();
        let a = limit(&mut t, 1, "a", Side::Buy, "100", "2");
        let live = OrderReport { status: OrderStatus::Live, ts_ms: 10, ..a.clone() };
        let part = OrderReport { filled: d("1"), status: OrderStatus::PartiallyFilled, ts_ms: 20, ..a.clone() };
        let done = OrderReport { filled: d("2"), status: OrderStatus::Filled, ts_ms: 30, ..a.clone() };
        assert_eq!(t.on_report(&live), Some(1));
        assert_eq!(t.on_report(&done), Some(1));
        // The push of the partial fill and the first acknowledgement arrive late.
        assert_eq!(t.on_report(&part), None);
        assert_eq!(t.on_report(&live), None);
        let held = &t.order("a").expect("tracked").report;
        assert_eq!((held.filled, held.status), (d("2"), OrderStatus::Filled));
        // An amend's later report (same fill, newer time) is taken; an older one is not.
        let b = limit(&mut t, 1, "b", Side::Buy, "100", "2");
        t.on_report(&OrderReport { status: OrderStatus::Live, ts_ms: 10, ..b.clone() });
        let amended = OrderReport { price: Some(d("101")), status: OrderStatus::Live, ts_ms: 20, ..b.clone() };
        assert_eq!(t.on_report(&amended), Some(1));
        assert_eq!(t.on_report(&OrderReport { status: OrderStatus::Live, ts_ms: 15, ..b }), None);
        assert_eq!(t.order("b").expect("tracked").report.price, Some(d("101")));
    }

    #[test]
    fn open_summaries_follow_orders_as_they_fill_and_finish() {
        let mut t = Tracker::default();
        let a = limit(&mut t, 1, "a", Side::Buy, "100", "2");
        limit(&mut t, 1, "b", Side::Sell, "110", "1");
        limit(&mut t, 2, "c", Side::Buy, "90", "1");
        let s = t.summary(1).expect("plugin 1").clone();
        assert_eq!((s.count, s.notional), (2, 310.0));
        assert_eq!(s.remaining.get(&(7, Side::Buy)), Some(&d("2")));
        assert_eq!(t.unacknowledged().count(), 2, "(7, buy) of both plugins together, and (7, sell)");
        // Half of "a" fills: its open size halves; the venue has acknowledged it.
        t.on_report(&OrderReport { filled: d("1"), status: OrderStatus::PartiallyFilled, ..a.clone() });
        let s = t.summary(1).expect("plugin 1").clone();
        assert_eq!((s.count, s.notional), (2, 210.0));
        assert_eq!(s.remaining.get(&(7, Side::Buy)), Some(&d("1")));
        let unacked: Vec<_> = t.unacknowledged().collect();
        assert!(
            unacked.iter().any(|u| *u == (7, Side::Buy, d("1"), 90.0)),
            "only c is left on the buy side: {unacked:?}"
        );
        // "a" finishes, "b" is refused: nothing of plugin 1 is open.
        t.on_report(&OrderReport { filled: d("2"), status: OrderStatus::Filled, ..a });
        t.reject("b", "51008".into(), 1);
        let s = t.summary(1).expect("plugin 1");
        assert_eq!((s.count, s.notional, s.remaining.is_empty()), (0, 0.0, true));
        assert_eq!(t.open_orders(1).count(), 0);
        assert_eq!(t.summary(2).map(|s| s.count), Some(1), "another plugin's orders are its own");
    }

    #[test]
    fn position_flips_at_the_fill_price() {
        let mut p = PluginPosition { multiplier: d("0.01"), ..Default::default() };
        p.apply(Side::Sell, d("100"), d("2"), Decimal::ZERO);
        p.apply(Side::Buy, d("90"), d("5"), Decimal::ZERO);
        assert_eq!(p.size, d("3"));
        assert_eq!(p.avg_price, d("90"));
        assert_eq!(p.realized, d("0.2"));
    }

    #[test]
    fn a_long_and_a_short_are_shown_as_one_position_with_the_same_pnl() {
        let one = Decimal::ONE;
        let (mut long, mut short) = (
            PluginPosition { multiplier: one, ..Default::default() },
            PluginPosition { multiplier: one, ..Default::default() },
        );
        long.apply(Side::Buy, d("100"), d("3"), Decimal::ZERO);
        short.apply(Side::Sell, d("110"), d("1"), Decimal::ZERO);
        let shown = PluginPosition::merged([&long, &short]);
        assert_eq!(shown.size, d("2"));
        // At any mark the shown position carries what the two carry together.
        for mark in [d("90"), d("105"), d("130")] {
            assert_eq!(shown.unrealized(mark) + shown.realized, long.unrealized(mark) + short.unrealized(mark));
        }
        // As large a short as the long: flat, and the PnL the pair locks in is realised.
        short.apply(Side::Sell, d("120"), d("2"), Decimal::ZERO);
        let shown = PluginPosition::merged([&long, &short]);
        assert!(shown.size.is_zero());
        assert_eq!(shown.realized.round_dp(12), d("50"), "sold 1 at 110 and 2 at 120 against 3 bought at 100");
        // One position is shown as it is.
        assert_eq!(PluginPosition::merged([&long]), long);
    }
}
