//! Which plugin owns which order, the state of every order the host sent, and each plugin's
//! position and PnL built from its own fills.

use crate::venue::{FillReport, InstrumentId, OrderKind, OrderReport, OrderStatus, Side};
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};

/// A plugin's slot number; part of every client order id it gets.
pub type PluginId = u32;

/// The host's record of one order.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedOrder {
    /// Owner.
    pub plugin: PluginId,
    /// Last known state; `status == None` while the venue has not acknowledged it yet.
    pub report: OrderReport,
    /// True until the venue sends its first report.
    pub pending: bool,
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
}

impl PluginPosition {
    /// Applies one fill: grows the position at a new average or realises PnL on the part that
    /// closes it.
    pub fn apply(&mut self, side: Side, price: Decimal, size: Decimal, fee: Decimal) {
        self.fees += fee;
        let pnl = crate::venue::apply_net_fill(&mut self.size, &mut self.avg_price, side.sign() * size, price);
        self.realized += pnl * self.multiplier;
    }

    /// Unrealised PnL at `mark`.
    pub fn unrealized(&self, mark: Decimal) -> Decimal {
        (mark - self.avg_price) * self.size * self.multiplier
    }
}

/// Orders and positions of every plugin.
#[derive(Debug, Default)]
pub struct Tracker {
    orders: HashMap<String, TrackedOrder>,
    positions: HashMap<(PluginId, InstrumentId), PluginPosition>,
    /// Open orders by owner: the risk check reads them on every intent, so it must not scan
    /// finished ones.
    open: HashMap<PluginId, HashSet<String>>,
}

impl Tracker {
    /// Records an order the host is about to send.
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
        self.orders.insert(client_id.to_string(), TrackedOrder { plugin, report: report.clone(), pending: true });
        self.open.entry(plugin).or_default().insert(client_id.to_string());
        report
    }

    fn settle(&mut self, plugin: PluginId, client_id: &str, terminal: bool) {
        if terminal && let Some(set) = self.open.get_mut(&plugin) {
            set.remove(client_id);
        }
    }

    /// Applies a venue report; returns the owner, or `None` for an order this host did not send.
    pub fn on_report(&mut self, report: &OrderReport) -> Option<PluginId> {
        let tracked = self.orders.get_mut(&report.client_id)?;
        tracked.report = report.clone();
        tracked.pending = false;
        let plugin = tracked.plugin;
        self.settle(plugin, &report.client_id, report.status.is_terminal());
        Some(plugin)
    }

    /// Marks an order rejected before the venue saw it, or refused by the venue.
    pub fn reject(&mut self, client_id: &str, reason: String, ts_ms: i64) -> Option<(PluginId, OrderReport)> {
        let tracked = self.orders.get_mut(client_id)?;
        tracked.pending = false;
        tracked.report.status = OrderStatus::Rejected;
        tracked.report.reason = Some(reason);
        tracked.report.ts_ms = ts_ms;
        let out = (tracked.plugin, tracked.report.clone());
        self.settle(out.0, client_id, true);
        Some(out)
    }

    /// Applies a fill to the owner's position; returns the owner and the new position.
    pub fn on_fill(&mut self, fill: &FillReport, multiplier: Decimal) -> Option<(PluginId, PluginPosition)> {
        let plugin = self.orders.get(&fill.client_id)?.plugin;
        let position = self
            .positions
            .entry((plugin, fill.instrument))
            .or_insert_with(|| PluginPosition { multiplier, ..Default::default() });
        position.apply(fill.side, fill.price, fill.size, fill.fee);
        Some((plugin, position.clone()))
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
        self.open.values().map(HashSet::len).sum()
    }

    /// Every plugin's positions.
    pub fn all_positions(&self) -> impl Iterator<Item = (PluginId, InstrumentId, &PluginPosition)> {
        self.positions.iter().map(|((p, i), pos)| (*p, *i, pos))
    }

    /// A plugin's positions.
    pub fn positions(&self, plugin: PluginId) -> impl Iterator<Item = (InstrumentId, &PluginPosition)> {
        self.positions.iter().filter(move |((p, _), _)| *p == plugin).map(|((_, i), pos)| (*i, pos))
    }

    /// A plugin's position in one instrument.
    pub fn position(&self, plugin: PluginId, instrument: InstrumentId) -> Option<&PluginPosition> {
        self.positions.get(&(plugin, instrument))
    }

    /// Drops finished orders, keeping the tracker small on long runs.
    pub fn prune_finished(&mut self) {
        self.orders.retain(|_, t| !t.report.status.is_terminal());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
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
    fn position_flips_at_the_fill_price() {
        let mut p = PluginPosition { multiplier: d("0.01"), ..Default::default() };
        p.apply(Side::Sell, d("100"), d("2"), Decimal::ZERO);
        p.apply(Side::Buy, d("90"), d("5"), Decimal::ZERO);
        assert_eq!(p.size, d("3"));
        assert_eq!(p.avg_price, d("90"));
        assert_eq!(p.realized, d("0.2"));
    }
}
