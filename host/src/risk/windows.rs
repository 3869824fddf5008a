//! The time-window checks: orders per second (per plugin and for the account), duplicate
//! orders, and the fill throttle. An order is admitted by every window or by none: a refused
//! order uses up no rate.

use super::limits::{AccountLimits, RiskLimits};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::time::Duration;
use tradebox_core::Moment;
use tradebox_core::{Denial, DenialCode};
use tradebox_core::{InstrumentId, Side};

/// An order as the duplicate check remembers it: instrument, side, and price and size as
/// (mantissa, scale). The gateway's normalisation writes equal values the same way, so the
/// raw parts compare and hash as the values would, without decimal arithmetic.
pub type Fingerprint = (InstrumentId, Side, (i128, u32), (i128, u32));

/// The fingerprint of an order.
pub fn fingerprint(instrument: InstrumentId, side: Side, price: Option<Decimal>, size: Decimal) -> Fingerprint {
    let raw = |d: Decimal| (d.mantissa(), d.scale());
    (instrument, side, price.map_or((0, 0), raw), raw(size))
}

/// A token bucket: `burst` at once, then `per_sec` a second.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    /// When tokens were last counted (`None`: untouched since it was made full).
    at: Option<Moment>,
    burst: f64,
    per_sec: f64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(burst: f64, per_sec: f64) -> Self {
        Self { tokens: burst, at: None, burst, per_sec }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Moment) -> bool {
        let since = self.at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.tokens = (self.tokens + since.as_secs_f64() * self.per_sec).min(self.burst);
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// New market data subscriptions a plugin may make at once: enough for any start-up.
pub const SUBSCRIBE_BURST: f64 = 64.0;
/// New subscriptions a plugin may make an hour after that. OKX allows 480 subscription
/// requests per connection per hour, shared by every plugin: no plugin may spend them.
pub const SUBSCRIBES_PER_HOUR: f64 = 360.0;

/// One plugin's windows.
#[derive(Debug, Default)]
pub struct PluginWindows {
    orders: VecDeque<Moment>,
    cancels: VecDeque<Moment>,
    /// Recent orders in arrival order (for expiry) and by fingerprint (for the check), so the
    /// duplicate check costs the same however many orders the window holds.
    recent: VecDeque<(Moment, Fingerprint)>,
    last_seen: FxHashMap<Fingerprint, Moment>,
    fills: VecDeque<Moment>,
}

/// The account's window.
#[derive(Debug, Default)]
pub struct AccountWindow {
    orders: VecDeque<Moment>,
}

fn trim(q: &mut VecDeque<Moment>, now: Moment, window: Duration) {
    while q.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
        q.pop_front();
    }
}

impl PluginWindows {
    /// Admits one cancel the plugin asked for through its cancel window (the host's own
    /// cancels never come here), or refuses it and records nothing. Each attempt counts,
    /// whether or not the cancel is then refused for another reason.
    pub fn admit_cancel(&mut self, limits: &RiskLimits, now: Moment) -> Result<(), Denial> {
        trim(&mut self.cancels, now, Duration::from_secs(1));
        if self.cancels.len() >= limits.max_cancels_per_sec as usize {
            return Err(Denial::limit(
                DenialCode::CancelRateLimited,
                "too many cancels in the last second",
                f64::from(limits.max_cancels_per_sec),
                self.cancels.len() as f64 + 1.0,
            ));
        }
        self.cancels.push_back(now);
        Ok(())
    }

    /// Refuses at once, recording nothing, when this plugin's own windows are full (its order
    /// rate or its fill throttle): checked before anything shared with other plugins is
    /// touched, so a plugin far past its rate costs its neighbours no lock.
    pub fn refuse_early(&mut self, limits: &RiskLimits, now: Moment) -> Result<(), Denial> {
        trim(&mut self.orders, now, Duration::from_secs(1));
        trim(&mut self.fills, now, Duration::from_secs(60));
        if limits.max_fills_per_min > 0 && self.fills.len() >= limits.max_fills_per_min as usize {
            return Err(Denial::limit(
                DenialCode::FillThrottle,
                "too many fills in the last minute; new orders pause",
                f64::from(limits.max_fills_per_min),
                self.fills.len() as f64,
            ));
        }
        if self.orders.len() >= limits.max_orders_per_sec as usize {
            return Err(Denial::limit(
                DenialCode::RateLimited,
                "too many orders in the last second",
                f64::from(limits.max_orders_per_sec),
                self.orders.len() as f64 + 1.0,
            ));
        }
        Ok(())
    }

    /// Counts a fill (for the throttle).
    pub fn on_fill(&mut self, now: Moment) {
        self.fills.push_back(now);
        trim(&mut self.fills, now, Duration::from_secs(60));
    }
}

/// Admits an order (or an amend: `fingerprint` `None`, which skips the duplicate check) through
/// the plugin's and the account's windows, recording it in both; or refuses it and records
/// nothing. Only the risk state's approvals ([`super::AccountRisk`]) call it: an admitted
/// order comes with its approval.
pub(super) fn admit(
    plugin: &mut PluginWindows,
    account: &mut AccountWindow,
    limits: &RiskLimits,
    account_limits: &AccountLimits,
    fingerprint: Option<Fingerprint>,
    now: Moment,
) -> Result<(), Denial> {
    plugin.refuse_early(limits, now)?;
    trim(&mut account.orders, now, Duration::from_secs(1));
    if account.orders.len() >= account_limits.max_orders_per_sec as usize {
        return Err(Denial::limit(
            DenialCode::AccountRateLimited,
            "too many orders in the last second across the account",
            f64::from(account_limits.max_orders_per_sec),
            account.orders.len() as f64 + 1.0,
        ));
    }
    let dup_window = Duration::from_millis(limits.duplicate_window_ms);
    if let Some(fp) = fingerprint
        && limits.duplicate_window_ms > 0
    {
        while plugin.recent.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) >= dup_window) {
            if let Some((t, old)) = plugin.recent.pop_front()
                && plugin.last_seen.get(&old) == Some(&t)
            {
                plugin.last_seen.remove(&old);
            }
        }
        if plugin.last_seen.get(&fp).is_some_and(|t| now.saturating_duration_since(*t) < dup_window) {
            return Err(Denial::limit(
                DenialCode::DuplicateOrder,
                format!("the same order was placed within the last {} ms", limits.duplicate_window_ms),
                limits.duplicate_window_ms as f64,
                0.0,
            ));
        }
        plugin.recent.push_back((now, fp));
        plugin.last_seen.insert(fp, now);
    }
    plugin.orders.push_back(now);
    account.orders.push_back(now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_duplicates_and_fill_throttle() {
        let limits = RiskLimits {
            max_orders_per_sec: 3,
            duplicate_window_ms: 500,
            max_fills_per_min: 2,
            ..RiskLimits::default()
        };
        let account = AccountLimits { max_orders_per_sec: 4, ..AccountLimits::default() };
        let (mut p, mut q, mut a) = (PluginWindows::default(), PluginWindows::default(), AccountWindow::default());
        let t = tradebox_core::Clock::system().moment();
        let fp = |n: i64| Some(fingerprint(1, Side::Buy, Some(Decimal::from(n)), Decimal::ONE));
        assert!(admit(&mut p, &mut a, &limits, &account, fp(1), t).is_ok());
        assert_eq!(admit(&mut p, &mut a, &limits, &account, fp(1), t).unwrap_err().code, DenialCode::DuplicateOrder);
        assert!(admit(&mut p, &mut a, &limits, &account, fp(2), t).is_ok());
        assert!(admit(&mut p, &mut a, &limits, &account, None, t).is_ok());
        assert_eq!(admit(&mut p, &mut a, &limits, &account, fp(3), t).unwrap_err().code, DenialCode::RateLimited);
        // Another plugin hits the account's limit of 4 per second.
        assert!(admit(&mut q, &mut a, &limits, &account, fp(9), t).is_ok());
        assert_eq!(
            admit(&mut q, &mut a, &limits, &account, fp(8), t).unwrap_err().code,
            DenialCode::AccountRateLimited
        );
        // A second later everything is free again, and the duplicate window has passed.
        let later = t + Duration::from_millis(1_001);
        assert!(admit(&mut p, &mut a, &limits, &account, fp(1), later).is_ok());
        p.on_fill(later);
        p.on_fill(later);
        assert_eq!(admit(&mut p, &mut a, &limits, &account, fp(5), later).unwrap_err().code, DenialCode::FillThrottle);
        assert!(admit(&mut p, &mut a, &limits, &account, fp(5), later + Duration::from_secs(61)).is_ok());
    }
}
