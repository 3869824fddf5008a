//! What the engine tells an operator's display as it happens: orders placed and settled,
//! fills, trading states, plugin lifecycle, venue links and alarms. Typed here, written out
//! only where a display writes it (`Display` gives the board's line), and kept by whichever
//! [`ActivitySink`] the host attaches (the board's ring, [`RecentActivity`]), not by the hub.

use std::collections::VecDeque;
use std::fmt;

use parking_lot::Mutex;

use rust_decimal::Decimal;
use tradebox_core::{Liquidity, OrderKind, OrderStatus, Side, TradingState, VenueAlarm};

/// One thing that happened, as the board shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    /// The gateway approved and queued an order.
    Placed {
        /// Client order id.
        client_id: String,
        /// Instrument symbol.
        symbol: String,
        /// Side.
        side: Side,
        /// Size.
        size: Decimal,
        /// Limit price (`None`: market).
        price: Option<Decimal>,
        /// Type.
        kind: OrderKind,
    },
    /// An order reached a final state, or changed without filling.
    Order {
        /// Client order id.
        client_id: String,
        /// Instrument symbol.
        symbol: String,
        /// Its status now.
        status: OrderStatus,
        /// The venue's reason, if it gave one.
        reason: Option<String>,
    },
    /// The venue refused an order.
    VenueRejected {
        /// Client order id.
        client_id: String,
        /// The venue's code.
        code: String,
        /// Its message.
        message: String,
    },
    /// A fill of one of a plugin's orders.
    Fill {
        /// Side.
        side: Side,
        /// Instrument symbol.
        symbol: String,
        /// Size.
        size: Decimal,
        /// Price.
        price: Decimal,
        /// Maker or taker.
        liquidity: Liquidity,
        /// The order's client id.
        client_id: String,
        /// Fee charged (negative: a rebate), in `fee_currency`.
        fee: Decimal,
        /// The fee's currency.
        fee_currency: String,
    },
    /// A plugin's trading state changed.
    PluginState {
        /// The new state.
        state: TradingState,
        /// Why.
        reason: String,
    },
    /// The account's trading state changed.
    AccountState {
        /// The new state.
        state: TradingState,
        /// Why.
        reason: String,
    },
    /// The venue raised an alarm.
    Alarm(VenueAlarm),
    /// A venue link went down or came back.
    Link {
        /// Which link.
        link: String,
        /// Up or down.
        connected: bool,
        /// What happened.
        detail: String,
    },
    /// A plugin instance failed and was dropped.
    Fault {
        /// What went wrong (escaped plugin text included).
        fault: String,
        /// Failures so far.
        failures: u32,
    },
    /// A plugin's log line (info and above; escaped, capped).
    Log(String),
    /// A plugin was loaded.
    Loaded {
        /// Component hash, shortened.
        hash: String,
        /// Who asked.
        by: String,
    },
    /// A reload was refused; the old version keeps running.
    ReloadRefused(String),
    /// A plugin was replaced in place.
    Reloaded {
        /// Old hash, shortened.
        from: String,
        /// New hash, shortened.
        to: String,
        /// Who asked.
        by: String,
    },
    /// A plugin was unloaded.
    Unloaded {
        /// Who asked.
        by: String,
        /// Its open orders then.
        open_orders: usize,
        /// Whether they were cancelled or left working.
        cancelled: bool,
    },
    /// A plugin was started on the staging host.
    Staged {
        /// Who asked.
        by: String,
    },
    /// A staged plugin was promoted here.
    Promoted {
        /// Who asked.
        by: String,
    },
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activity::Placed { client_id, symbol, side, size, price, kind } => {
                let px = price.map_or_else(|| "market".to_string(), |p| p.to_string());
                write!(f, "{client_id} {side:?} {symbol} {size} @ {px} ({kind:?})")
            }
            Activity::Order { client_id, symbol, status, reason } => {
                write!(f, "{client_id} {symbol} {status:?}")?;
                match reason {
                    Some(r) => write!(f, " ({r})"),
                    None => Ok(()),
                }
            }
            Activity::VenueRejected { client_id, code, message } => {
                write!(f, "{client_id} rejected by venue: {code} {message}")
            }
            Activity::Fill { side, symbol, size, price, liquidity, .. } => {
                write!(f, "fill {side:?} {symbol} {size} @ {price} ({liquidity:?})")
            }
            Activity::PluginState { state, reason } => write!(f, "trading state {state:?}: {reason}"),
            Activity::AccountState { state, reason } => write!(f, "account trading state {state:?}: {reason}"),
            Activity::Alarm(alarm) => write!(f, "alarm: {alarm}"),
            Activity::Link { link, connected, detail } => {
                write!(f, "{link} {}: {detail}", if *connected { "up" } else { "down" })
            }
            Activity::Fault { fault, failures } => write!(f, "instance {fault} (failure {failures})"),
            Activity::Log(message) => write!(f, "log: {message}"),
            Activity::Loaded { hash, by } => write!(f, "loaded {hash} by {by}"),
            Activity::ReloadRefused(error) => write!(f, "reload refused: {error}"),
            Activity::Reloaded { from, to, by } => write!(f, "reloaded {from} → {to} by {by}"),
            Activity::Unloaded { by, open_orders, cancelled } => write!(
                f,
                "unloaded by {by} ({open_orders} open orders {})",
                if *cancelled { "cancelled" } else { "left working" }
            ),
            Activity::Staged { by } => write!(f, "staged on the simulated venue by {by}"),
            Activity::Promoted { by } => write!(f, "promoted from the simulated venue by {by}"),
        }
    }
}

/// Where the hub sends [`Activity`]: called on the order path, so it must be quick and never
/// block for long (the board's ring takes a short lock).
pub trait ActivitySink: Send + Sync {
    /// `what` happened to `plugin` (`host`, `venue` for the host's own) at `ts_ms`.
    fn note(&self, ts_ms: i64, plugin: &str, what: Activity);
}

/// One line of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Noted {
    /// When, ms (the host's clock).
    pub ts_ms: i64,
    /// Which plugin (`host`, `venue` for the host's own).
    pub plugin: String,
    /// What happened.
    pub what: Activity,
}

/// The last [`RecentActivity::LINES`] things the engine reported, for the demo's board, the
/// admin API and tests: the ring the host attaches to its hub.
#[derive(Debug, Default)]
pub struct RecentActivity {
    recent: Mutex<VecDeque<Noted>>,
    /// Each plugin's last [`RecentActivity::FILLS`] fills, apart from the lines: a busy
    /// plugin's logs must not push another's fills out of the console.
    fills: Mutex<std::collections::HashMap<String, VecDeque<Noted>>>,
}

impl RecentActivity {
    /// Lines kept.
    pub const LINES: usize = 200;

    /// Fills kept per plugin.
    pub const FILLS: usize = 20;

    /// `plugin`'s last fills, newest first.
    pub fn fills(&self, plugin: &str) -> Vec<Noted> {
        self.fills.lock().get(plugin).map(|f| f.iter().rev().cloned().collect()).unwrap_or_default()
    }

    /// Forgets the fills of plugins not in `loaded` (unloaded ones).
    pub fn retain_fills(&self, loaded: &[String]) {
        self.fills.lock().retain(|name, _| loaded.contains(name));
    }

    /// The last `n` lines, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Noted> {
        let recent = self.recent.lock();
        recent.iter().skip(recent.len().saturating_sub(n)).cloned().collect()
    }
}

impl ActivitySink for RecentActivity {
    fn note(&self, ts_ms: i64, plugin: &str, what: Activity) {
        if matches!(what, Activity::Fill { .. }) {
            let mut fills = self.fills.lock();
            let ring = fills.entry(plugin.to_string()).or_default();
            if ring.len() >= Self::FILLS {
                ring.pop_front();
            }
            ring.push_back(Noted { ts_ms, plugin: plugin.to_string(), what: what.clone() });
        }
        let mut recent = self.recent.lock();
        if recent.len() >= Self::LINES {
            recent.pop_front();
        }
        recent.push_back(Noted { ts_ms, plugin: plugin.to_string(), what });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_in_order() {
        let board = RecentActivity::default();
        for i in 0..(RecentActivity::LINES + 5) {
            board.note(i as i64, "p", Activity::Log(format!("line {i}")));
        }
        let all = board.recent(usize::MAX);
        assert_eq!(all.len(), RecentActivity::LINES);
        assert_eq!(all[0].what.to_string(), "log: line 5");
        let last = board.recent(2);
        assert_eq!(last.iter().map(|n| n.ts_ms).collect::<Vec<_>>(), [203, 204]);
    }
}
