//! A two-sided market maker with inventory control.
//!
//! Config (JSON, every field optional):
//! `{"symbol": "ETH-USDT", "spread_bps": 8, "size": 0.05, "max_inventory": 0.5, "requote_bps": 2,
//!   "skew_bps": 10}`.
//! Quotes a post-only bid and ask `spread_bps / 2` around the mid. Each unit of inventory (as a
//! fraction of `max_inventory`) shifts both quotes by up to `skew_bps` against the position, so a
//! long book leans towards selling. The side that would push inventory past the limit is not
//! quoted. Quotes move (amend) when the fair price drifts by more than `requote_bps`.
//!
//! As an example to copy, it keeps to two rules every strategy that manages resting orders
//! needs:
//!
//! - **Act only on orders still open.** It follows each quote's state from its `order` and
//!   `fill` events and forgets a quote once it has filled, been cancelled or been rejected. The
//!   host learns of a fill a moment before the plugin's events say so, so before amending or
//!   cancelling it also asks the host (`views::open_orders`); a quote the host no longer lists
//!   has ended and its events are on their way. A new quote is moved only once the venue has
//!   confirmed it (a post-only order can be cancelled on arrival). An amend can still cross a
//!   fill at the exchange; the venue then refuses it (a `risk-denied` event) and the next
//!   events settle it.
//! - **Stay inside the declared rate.** Its manifest (`tradebox.toml`) declares
//!   `max_orders_per_sec`; the host refuses what goes beyond it (`RATE_LIMITED`). The plugin
//!   counts its own placements and amends and waits (a timer) instead of being refused.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use tradebox_sdk::prelude::*;

/// The order rate `tradebox.toml` declares (`max_orders_per_sec`): placements and amends, as
/// the host counts them. A test keeps the two equal.
const MAX_ORDERS_PER_SEC: usize = 10;

/// The window the plugin counts its orders in, ms: the host's second plus a margin, because
/// the host counts on its own monotonic clock from the moment a call reaches it, and the plugin
/// in whole milliseconds of host time.
const RATE_WINDOW_MS: i64 = 1_100;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    symbol: String,
    spread_bps: f64,
    size: f64,
    max_inventory: f64,
    requote_bps: f64,
    skew_bps: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            symbol: "ETH-USDT".into(),
            spread_bps: 8.0,
            size: 0.0,
            max_inventory: 0.0,
            requote_bps: 2.0,
            skew_bps: 10.0,
        }
    }
}

/// Where one of our quotes stands, from our own requests and the host's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Placed, not yet confirmed by the venue: not amended until it is, because a post-only
    /// order the venue cancels on arrival (it would have crossed) would have an amend chase it.
    Placing,
    /// On the book, as far as we know.
    Resting,
    /// Our cancel is on its way: neither amended nor cancelled again, and the side gets no new
    /// quote until the order's end arrives.
    Cancelling,
}

/// One side's resting quote.
#[derive(Debug, Clone)]
struct Quote {
    id: String,
    /// The price we last asked for (placement or amend).
    price: f64,
    size: f64,
    filled: f64,
    status: Status,
}

/// What a side needs now.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Nothing,
    Place(f64),
    Amend(f64),
    Cancel,
}

/// Counts placements and amends over the last [`RATE_WINDOW_MS`].
#[derive(Debug, Default)]
struct Throttle {
    sent: VecDeque<i64>,
}

impl Throttle {
    /// Takes a place in the window at `now` (host time, ms), or says no.
    fn try_take(&mut self, now: i64) -> bool {
        while self.sent.front().is_some_and(|&t| now - t >= RATE_WINDOW_MS) {
            self.sent.pop_front();
        }
        if self.sent.len() >= MAX_ORDERS_PER_SEC {
            return false;
        }
        self.sent.push_back(now);
        true
    }

    /// Milliseconds from `now` until a place frees up.
    fn wait_ms(&self, now: i64) -> u64 {
        self.sent.front().map_or(0, |&t| (t + RATE_WINDOW_MS - now).max(1) as u64)
    }
}

struct MarketMaker {
    config: Config,
    instrument: Instrument,
    bid: Option<Quote>,
    ask: Option<Quote>,
    mid: f64,
    best_bid: f64,
    best_ask: f64,
    fills: u64,
    throttle: Throttle,
    /// A timer is set to requote once the throttle lets us (a quiet market sends no events).
    wake_set: bool,
}

impl MarketMaker {
    fn inventory(&self) -> f64 {
        position_size(self.instrument.id)
    }

    /// Target prices for both sides given the mid and inventory. The skew may move a quote
    /// inside the spread but never across it: a post-only quote that would cross is cancelled.
    fn targets(&self, mid: f64, inventory: f64) -> (f64, f64) {
        let half = mid * self.config.spread_bps / 20_000.0;
        let lean = (inventory / self.config.max_inventory).clamp(-1.0, 1.0);
        let skew = mid * self.config.skew_bps / 10_000.0 * lean;
        let tick = self.instrument.tick_size;
        let bid = (mid - half - skew).min(self.best_ask - tick);
        let ask = (mid + half - skew).max(self.best_bid + tick);
        (bid, ask)
    }

    fn requote(&mut self) {
        if self.mid <= 0.0 {
            return;
        }
        let inventory = self.inventory();
        let (bid_px, ask_px) = self.targets(self.mid, inventory);
        let size = self.config.size;
        let can_buy = inventory + size <= self.config.max_inventory + 1e-12;
        let can_sell = inventory - size >= -self.config.max_inventory - 1e-12;
        let threshold = self.mid * self.config.requote_bps / 10_000.0;
        let mut bid = action(self.bid.as_ref(), bid_px, can_buy, threshold);
        let mut ask = action(self.ask.as_ref(), ask_px, can_sell, threshold);
        let touches_an_order = |a: Action| matches!(a, Action::Amend(_) | Action::Cancel);
        if touches_an_order(bid) || touches_an_order(ask) {
            // The host may know of an end whose events have not reached us yet.
            self.forget_ended();
            bid = action(self.bid.as_ref(), bid_px, can_buy, threshold);
            ask = action(self.ask.as_ref(), ask_px, can_sell, threshold);
        }
        let now = tradebox_sdk::log::now();
        // Cancels first (they have their own window), then quotes missing a side, then moves.
        let mut todo = [(Side::Buy, bid), (Side::Sell, ask)];
        todo.sort_by_key(|(_, a)| match a {
            Action::Cancel => 0,
            Action::Place(_) => 1,
            Action::Amend(_) => 2,
            Action::Nothing => 3,
        });
        for (side, act) in todo {
            match act {
                Action::Nothing => {}
                Action::Cancel => self.cancel(side),
                Action::Place(_) | Action::Amend(_) if !self.throttle.try_take(now) => self.wake_later(now),
                Action::Place(price) => self.place(side, price, size),
                Action::Amend(price) => self.amend(side, price),
            }
        }
    }

    fn quote_mut(&mut self, side: Side) -> &mut Option<Quote> {
        if side == Side::Buy { &mut self.bid } else { &mut self.ask }
    }

    /// Forgets the quotes the host no longer lists as open.
    fn forget_ended(&mut self) {
        let open: Vec<String> = views::open_orders().into_iter().map(|o| o.client_order_id).collect();
        for quote in [&mut self.bid, &mut self.ask] {
            if quote.as_ref().is_some_and(|q| !open.contains(&q.id)) {
                *quote = None;
            }
        }
    }

    fn place(&mut self, side: Side, price: f64, size: f64) {
        match orders::place(OrderRequest::post_only(self.instrument.id, side, price, size)) {
            Ok(id) => *self.quote_mut(side) = Some(Quote { id, price, size, filled: 0.0, status: Status::Placing }),
            Err(d) => debug!("quote refused: {} {}", d.code, d.message),
        }
    }

    fn amend(&mut self, side: Side, price: f64) {
        let Some(quote) = self.quote_mut(side) else { return };
        match orders::amend(&quote.id, Some(price), None) {
            Ok(()) => quote.price = price,
            Err(d) if d.code == "UNKNOWN_ORDER" => *self.quote_mut(side) = None,
            // Still ours and open: tried again at the next quote.
            Err(d) => debug!("amend refused: {} {}", d.code, d.message),
        }
    }

    fn cancel(&mut self, side: Side) {
        let Some(quote) = self.quote_mut(side) else { return };
        match orders::cancel(&quote.id) {
            Ok(()) => quote.status = Status::Cancelling,
            Err(d) if d.code == "CANCEL_PENDING" => quote.status = Status::Cancelling,
            Err(d) if d.code == "UNKNOWN_ORDER" => *self.quote_mut(side) = None,
            Err(d) => debug!("cancel refused: {} {}", d.code, d.message),
        }
    }

    fn wake_later(&mut self, now: i64) {
        if !self.wake_set {
            timers::set_timer(self.throttle.wait_ms(now));
            self.wake_set = true;
        }
    }

    /// The quote `id` names, if it is one of ours.
    fn quote_by_id(&mut self, id: &str) -> Option<&mut Option<Quote>> {
        [&mut self.bid, &mut self.ask].into_iter().find(|q| q.as_ref().is_some_and(|q| q.id == id))
    }
}

/// What a side with `quote` needs to rest at `price` (if `allowed` at all), moving only when
/// the price drifted by more than `threshold`.
fn action(quote: Option<&Quote>, price: f64, allowed: bool, threshold: f64) -> Action {
    match quote {
        Some(q) if q.status == Status::Cancelling => Action::Nothing,
        Some(_) if !allowed => Action::Cancel,
        Some(q) if q.status == Status::Resting && (q.price - price).abs() > threshold => Action::Amend(price),
        Some(_) => Action::Nothing,
        None if allowed => Action::Place(price),
        None => Action::Nothing,
    }
}

impl Strategy for MarketMaker {
    fn init(config: &str) -> Result<Self, String> {
        let mut config: Config = serde_json::from_str(config).map_err(|e| format!("config: {e}"))?;
        let instrument = views::find_instrument(&config.symbol)
            .ok_or_else(|| format!("instrument {} is unknown or not granted", config.symbol))?;
        if config.size <= 0.0 {
            config.size = instrument.min_size * 50.0;
        }
        if config.max_inventory <= 0.0 {
            config.max_inventory = config.size * 5.0;
        }
        if config.spread_bps <= 0.0 {
            return Err("config: spread_bps must be positive".into());
        }
        feeds::subscribe(instrument.id, Channel::Ticker).map_err(|d| d.message)?;
        info!("market-maker on {} spread {} bps size {}", instrument.symbol, config.spread_bps, config.size);
        let mut maker = MarketMaker {
            config,
            instrument,
            bid: None,
            ask: None,
            mid: 0.0,
            best_bid: 0.0,
            best_ask: 0.0,
            fills: 0,
            throttle: Throttle::default(),
            wake_set: false,
        };
        // After a restart or reload the plugin's orders are still on the book: adopt one quote per
        // side and cancel the rest, so nothing is left unmanaged.
        let ours = maker.instrument.id;
        for order in views::open_orders().into_iter().filter(|o| o.instrument == ours) {
            let quote = maker.quote_mut(order.side);
            if quote.is_none() {
                *quote = Some(Quote {
                    id: order.client_order_id,
                    price: order.price,
                    size: order.size,
                    filled: order.filled_size,
                    status: if order.state == OrderState::Pending { Status::Placing } else { Status::Resting },
                });
            } else {
                let _ = orders::cancel(&order.client_order_id);
            }
        }
        Ok(maker)
    }

    fn on_ticker(&mut self, ticker: &Ticker) {
        // A ticker with one price on both sides is a market that shows no spread: a backtest on
        // candles hands each bar's close so. Quoting around it is what this strategy would do.
        if ticker.instrument == self.instrument.id && ticker.bid > 0.0 && ticker.ask >= ticker.bid {
            self.mid = (ticker.bid + ticker.ask) / 2.0;
            self.best_bid = ticker.bid;
            self.best_ask = ticker.ask;
        }
    }

    fn on_order(&mut self, order: &OrderUpdate) {
        let done = matches!(order.state, OrderState::Filled | OrderState::Canceled | OrderState::Rejected);
        if let Some(quote) = self.quote_by_id(&order.client_order_id) {
            if done {
                *quote = None;
            } else if let Some(q) = quote {
                q.filled = order.filled_size;
                if q.status == Status::Placing && order.state != OrderState::Pending {
                    q.status = Status::Resting;
                }
            }
        }
    }

    fn on_fill(&mut self, fill: &Fill) {
        self.fills += 1;
        // The fill that completes a quote ends it, whether or not its `filled` order event has
        // arrived yet.
        if let Some(quote) = self.quote_by_id(&fill.client_order_id)
            && let Some(q) = quote
        {
            q.filled += fill.size;
            if q.filled >= q.size - 1e-12 {
                *quote = None;
            }
        }
    }

    fn on_risk_denied(&mut self, denial: &RiskDenial) {
        // An amend the venue refused: usually it crossed a fill at the exchange, whose events
        // follow. The quote is kept (it may well still rest); `forget_ended` settles it.
        debug!("refused after acceptance: {} {}", denial.denial.code, denial.denial.message);
    }

    fn on_timer(&mut self, _timer: &TimerFired) {
        // The requote follows in `on_batch_end`.
        self.wake_set = false;
    }

    // Quote once per batch, on the newest mid and inventory.
    fn on_batch_end(&mut self) {
        self.requote();
    }

    fn snapshot(&self) -> Vec<u8> {
        // Live quotes are re-adopted from the host's view of open orders on restore.
        self.fills.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| "expected 8 bytes".to_string())?;
        self.fills = u64::from_le_bytes(bytes);
        Ok(())
    }
}

export_strategy!(MarketMaker);
tradebox_sdk::embed_manifest!();

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(price: f64, status: Status) -> Quote {
        Quote { id: "q".into(), price, size: 1.0, filled: 0.0, status }
    }

    #[test]
    fn the_rate_in_the_code_is_the_rate_in_the_manifest() {
        let manifest = include_str!("../tradebox.toml");
        let declared = manifest
            .lines()
            .find_map(|l| l.split('#').next()?.trim().strip_prefix("max_orders_per_sec")?.trim().strip_prefix('='))
            .and_then(|v| v.trim().parse::<usize>().ok());
        assert_eq!(declared, Some(MAX_ORDERS_PER_SEC), "tradebox.toml must declare max_orders_per_sec");
    }

    #[test]
    fn the_throttle_keeps_inside_the_declared_rate_over_any_second() {
        let mut throttle = Throttle::default();
        let mut sent = Vec::new();
        // Someone asking every 10 ms for five seconds.
        for now in (0..5_000).step_by(10) {
            if throttle.try_take(now) {
                sent.push(now);
            }
        }
        for (i, &t) in sent.iter().enumerate() {
            let in_a_second = sent[i..].iter().take_while(|&&u| u - t < 1_000).count();
            assert!(in_a_second <= MAX_ORDERS_PER_SEC, "{in_a_second} from {t}");
        }
        assert!(sent.len() >= 4 * MAX_ORDERS_PER_SEC, "and uses what it may: {}", sent.len());
        assert!(throttle.wait_ms(5_000) > 0);
    }

    #[test]
    fn quotes_move_only_once_on_the_book_and_never_while_cancelled() {
        assert_eq!(action(Some(&quote(100.0, Status::Cancelling)), 90.0, true, 1.0), Action::Nothing);
        assert_eq!(action(Some(&quote(100.0, Status::Cancelling)), 90.0, false, 1.0), Action::Nothing);
        assert_eq!(action(Some(&quote(100.0, Status::Resting)), 90.0, false, 1.0), Action::Cancel);
        assert_eq!(action(Some(&quote(100.0, Status::Resting)), 90.0, true, 1.0), Action::Amend(90.0));
        assert_eq!(action(Some(&quote(100.0, Status::Resting)), 99.5, true, 1.0), Action::Nothing);
        assert_eq!(
            action(Some(&quote(100.0, Status::Placing)), 90.0, true, 1.0),
            Action::Nothing,
            "not yet on the book"
        );
        assert_eq!(action(Some(&quote(100.0, Status::Placing)), 90.0, false, 1.0), Action::Cancel);
        assert_eq!(action(None, 90.0, true, 1.0), Action::Place(90.0));
        assert_eq!(action(None, 90.0, false, 1.0), Action::Nothing);
    }
}
