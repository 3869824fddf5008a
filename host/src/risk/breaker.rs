//! The loss-based circuit breaker: watches each plugin's PnL and the account's (all plugins),
//! realised + unrealised marked to market, after fees, and halts the scope when its loss since
//! the UTC day began or its fall from the day's peak passes the limit. It runs on the host's
//! own clock, independent of any plugin code: a strategy that keeps losing cannot keep it from
//! firing, and halting cancels the scope's open orders.

/// One scope's watch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PnlWatch {
    /// UTC day (days since the epoch) the baseline belongs to.
    day: i64,
    /// PnL when the day began (or when the operator last resumed the scope).
    day_start: Option<f64>,
    /// Highest PnL since then.
    peak: f64,
    /// Tripped and not yet resumed.
    tripped: bool,
}

/// Why a breaker tripped.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    /// `daily_loss` or `drawdown`.
    pub kind: &'static str,
    /// The limit.
    pub limit: f64,
    /// The value that broke it.
    pub value: f64,
}

impl std::fmt::Display for Trip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what =
            if self.kind == "daily_loss" { "loss since the UTC day began" } else { "drawdown from the day's peak" };
        write!(f, "circuit breaker: {what} {:.2} reached the limit of {:.2}", self.value, self.limit)
    }
}

impl PnlWatch {
    /// Feeds the scope's current PnL at `now_ms`; returns a trip the first time a limit (`0`:
    /// off) is broken, then nothing until [`PnlWatch::reset`].
    pub fn observe(&mut self, now_ms: i64, pnl: f64, max_daily_loss: f64, max_drawdown: f64) -> Option<Trip> {
        let day = now_ms.div_euclid(86_400_000);
        // Only a later day starts a new one: a clock stepping back across midnight (a resync of
        // the exchange offset, NTP) must not reset the day's loss baseline or clear a trip.
        if self.day_start.is_none() || day > self.day {
            self.day = day;
            self.day_start = Some(pnl);
            self.peak = pnl;
            self.tripped = false;
        }
        self.peak = self.peak.max(pnl);
        if self.tripped || !pnl.is_finite() {
            return None;
        }
        let loss = self.day_start.unwrap_or(pnl) - pnl;
        let drawdown = self.peak - pnl;
        let trip = if max_daily_loss > 0.0 && loss >= max_daily_loss {
            Some(Trip { kind: "daily_loss", limit: max_daily_loss, value: loss })
        } else if max_drawdown > 0.0 && drawdown >= max_drawdown {
            Some(Trip { kind: "drawdown", limit: max_drawdown, value: drawdown })
        } else {
            None
        };
        self.tripped = trip.is_some();
        trip
    }

    /// The operator resumed the scope: the losses so far are acknowledged and count from here.
    pub fn reset(&mut self, pnl: f64) {
        self.day_start = Some(pnl);
        self.peak = pnl;
        self.tripped = false;
    }

    /// Whether it has tripped (and not been reset).
    pub fn tripped(&self) -> bool {
        self.tripped
    }

    /// How far `pnl` is from each limit (`0`: off), as the watch would judge it now; the
    /// operator's console shows it. Before the first observation the day starts at `pnl`.
    pub fn distance(&self, pnl: f64, max_daily_loss: f64, max_drawdown: f64) -> Distance {
        let loss = self.day_start.map_or(0.0, |start| start - pnl);
        let drawdown = (self.peak.max(pnl) - pnl).max(0.0);
        let left = |limit: f64, used: f64| (limit > 0.0).then_some(limit - used);
        Distance {
            loss,
            drawdown,
            max_daily_loss,
            max_drawdown,
            to_daily_loss: left(max_daily_loss, loss),
            to_drawdown: left(max_drawdown, drawdown),
            tripped: self.tripped,
        }
    }
}

/// A breaker's distance to its limits (see [`PnlWatch::distance`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Distance {
    /// Loss since the UTC day began (negative: a gain).
    pub loss: f64,
    /// Fall from the day's peak.
    pub drawdown: f64,
    /// The daily loss limit (0: off).
    pub max_daily_loss: f64,
    /// The drawdown limit (0: off).
    pub max_drawdown: f64,
    /// What is left before the daily loss limit trips (`None`: off).
    pub to_daily_loss: Option<f64>,
    /// What is left before the drawdown limit trips (`None`: off).
    pub to_drawdown: Option<f64>,
    /// Tripped and not yet resumed.
    pub tripped: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_clock_stepping_back_across_midnight_keeps_the_day_and_the_trip() {
        const DAY: i64 = 86_400_000;
        let mut w = PnlWatch::default();
        assert!(w.observe(2 * DAY - 10, 0.0, 50.0, 0.0).is_none());
        assert!(w.observe(2 * DAY + 10, -10.0, 50.0, 0.0).is_none(), "a new day: baseline 0 -> -10");
        assert!(w.observe(2 * DAY - 5, -70.0, 50.0, 0.0).is_some(), "back before midnight: same day, same baseline");
        assert!(w.observe(2 * DAY + 20, -70.0, 50.0, 0.0).is_none(), "tripped once");
        assert!(w.tripped(), "and still tripped after the clock came forward again");
    }

    #[test]
    fn the_distance_is_what_is_left_before_each_limit() {
        let mut w = PnlWatch::default();
        w.observe(DAY + 1, 10.0, 100.0, 0.0);
        w.observe(DAY + 2, 40.0, 100.0, 0.0);
        let d = w.distance(25.0, 100.0, 0.0);
        assert_eq!((d.loss, d.drawdown), (-15.0, 15.0));
        assert_eq!((d.to_daily_loss, d.to_drawdown, d.tripped), (Some(115.0), None, false));
    }

    #[test]
    fn daily_loss_and_drawdown_trip_once_and_reset() {
        let mut w = PnlWatch::default();
        assert_eq!(w.observe(DAY + 1, 0.0, 100.0, 50.0), None);
        assert_eq!(w.observe(DAY + 2, 40.0, 100.0, 50.0), None);
        // Up 40, then down to -15: a drawdown of 55 from the peak trips first.
        let trip = w.observe(DAY + 3, -15.0, 100.0, 50.0).expect("trips");
        assert_eq!((trip.kind, trip.value), ("drawdown", 55.0));
        assert_eq!(w.observe(DAY + 4, -500.0, 100.0, 50.0), None, "once until reset");
        w.reset(-500.0);
        assert_eq!(w.observe(DAY + 5, -560.0, 100.0, 0.0), None, "60 below the reset point, limit 100");
        let trip = w.observe(DAY + 6, -601.0, 100.0, 0.0).expect("daily loss");
        assert_eq!(trip.kind, "daily_loss");
        // A new UTC day starts over.
        assert_eq!(w.observe(2 * DAY + 1, -601.0, 100.0, 0.0), None);
        assert!(!w.tripped());
    }
}
