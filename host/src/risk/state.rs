//! The risk layer's own state, one [`PluginRisk`] per plugin and one [`AccountRisk`]: limits,
//! time windows, the subscription budget and the loss watch. The engine holds them and asks
//! them; it never reaches into their parts, and only `AccountRisk::approve` and
//! `AccountRisk::approve_in_windows` turn a request into an [`Approved`] one. A backtest
//! drives the same objects on a virtual clock (every call takes its time).

use parking_lot::{Mutex, RwLock};
use tradebox_core::{Denial, Moment};

use super::Approved;
use super::breaker::{PnlWatch, Trip};
use super::check::{self, Input, Order};
use super::limits::{AccountLimits, LimitError, RiskLimits};
use super::windows::{self, AccountWindow, Bucket, Fingerprint, PluginWindows};

/// One plugin's risk state.
#[derive(Debug)]
pub struct PluginRisk {
    /// The operator's limits (the admin API may change them while it runs).
    limits: RwLock<RiskLimits>,
    windows: Mutex<PluginWindows>,
    /// New market data subscriptions it may still make (see [`windows::SUBSCRIBES_PER_HOUR`]).
    subscribes: Mutex<Bucket>,
    losses: Mutex<PnlWatch>,
}

impl PluginRisk {
    /// A plugin's state under `limits`.
    pub fn new(limits: RiskLimits) -> Self {
        Self {
            limits: RwLock::new(limits),
            windows: Mutex::default(),
            subscribes: Mutex::new(Bucket::new(windows::SUBSCRIBE_BURST, windows::SUBSCRIBES_PER_HOUR / 3_600.0)),
            losses: Mutex::default(),
        }
    }

    /// The operator's limits.
    pub fn limits(&self) -> RiskLimits {
        self.limits.read().clone()
    }

    /// Replaces the operator's limits, validated first.
    pub fn set_limits(&self, limits: RiskLimits) -> Result<(), LimitError> {
        limits.validate()?;
        *self.limits.write() = limits;
        Ok(())
    }

    /// Refuses an order before anything else is spent on it when its windows are already full
    /// (under `effective` limits: the operator's, narrowed to the manifest's).
    pub fn refuse_early(&self, effective: &RiskLimits, now: Moment) -> Result<(), Denial> {
        self.windows.lock().refuse_early(effective, now)
    }

    /// Admits one cancel the plugin asked for through its cancel window, or refuses it.
    pub fn admit_cancel(&self, now: Moment) -> Result<(), Denial> {
        let limits = self.limits.read();
        self.windows.lock().admit_cancel(&limits, now)
    }

    /// One of its orders filled (the fill throttle counts it).
    pub fn on_fill(&self, now: Moment) {
        self.windows.lock().on_fill(now);
    }

    /// Takes one new subscription from its budget, if there is one left.
    pub fn take_subscription(&self, now: Moment) -> bool {
        self.subscribes.lock().take(now)
    }

    /// Feeds its PnL at `now_ms` to its loss watch: a trip the first time its limit is broken.
    pub fn watch_losses(&self, now_ms: i64, pnl: f64) -> Option<Trip> {
        let (daily, drawdown) = {
            let l = self.limits.read();
            (l.max_daily_loss, l.max_drawdown)
        };
        self.losses.lock().observe(now_ms, pnl, daily, drawdown)
    }

    /// Resumed by an operator: losses so far are acknowledged, the watch counts from `pnl`.
    pub fn reset_losses(&self, pnl: f64) {
        self.losses.lock().reset(pnl);
    }
}

/// The account's risk state.
#[derive(Debug, Default)]
pub struct AccountRisk {
    limits: RwLock<AccountLimits>,
    window: Mutex<AccountWindow>,
    losses: Mutex<PnlWatch>,
}

impl AccountRisk {
    /// The account's limits.
    pub fn limits(&self) -> AccountLimits {
        self.limits.read().clone()
    }

    /// Replaces them, validated first.
    pub fn set_limits(&self, limits: AccountLimits) -> Result<(), LimitError> {
        limits.validate()?;
        *self.limits.write() = limits;
        Ok(())
    }

    /// The whole pre-trade decision on one of `plugin`'s requests: every rule on what `input`
    /// says (limits, state, quote, exposure, balance), then its windows and the account's.
    /// The rules run before any lock is taken: a stream of intents that fail them never holds
    /// the account's window.
    pub(crate) fn approve<T>(
        &self,
        plugin: &PluginRisk,
        subject: T,
        input: &Input<'_>,
        order: &Order<'_>,
        fingerprint: Option<Fingerprint>,
        now: Moment,
    ) -> Result<Approved<T>, Denial> {
        check::check(input, order)?;
        self.admit(plugin, subject, input.limits, input.account, fingerprint, now)
    }

    /// Approves a change no rule can object to (an amend that only shrinks an order): it
    /// counts in the windows.
    pub(crate) fn approve_in_windows<T>(
        &self,
        plugin: &PluginRisk,
        subject: T,
        effective: &RiskLimits,
        now: Moment,
    ) -> Result<Approved<T>, Denial> {
        let account = self.limits.read().clone();
        self.admit(plugin, subject, effective, &account, None, now)
    }

    /// Through the plugin's windows and the account's (a refused request uses up no rate),
    /// into an approval.
    fn admit<T>(
        &self,
        plugin: &PluginRisk,
        subject: T,
        limits: &RiskLimits,
        account: &AccountLimits,
        fingerprint: Option<Fingerprint>,
        now: Moment,
    ) -> Result<Approved<T>, Denial> {
        windows::admit(&mut plugin.windows.lock(), &mut self.window.lock(), limits, account, fingerprint, now)?;
        Ok(Approved(subject))
    }

    /// Feeds the account's PnL (every plugin and the host's own orders) to its loss watch.
    pub fn watch_losses(&self, now_ms: i64, total: f64) -> Option<Trip> {
        let (daily, drawdown) = {
            let l = self.limits.read();
            (l.max_daily_loss, l.max_drawdown)
        };
        self.losses.lock().observe(now_ms, total, daily, drawdown)
    }

    /// The account breaker's distance to its limits at `total`.
    pub fn breaker(&self, total: f64) -> super::breaker::Distance {
        let (daily, drawdown) = {
            let l = self.limits.read();
            (l.max_daily_loss, l.max_drawdown)
        };
        self.losses.lock().distance(total, daily, drawdown)
    }

    /// Resumed by an operator: the account's watch counts from `total`.
    pub fn reset_losses(&self, total: f64) {
        self.losses.lock().reset(total);
    }
}
