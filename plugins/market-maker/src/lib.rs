//! A two-sided market maker with inventory control.
//!
//! Config (JSON, every field optional):
//! `{"symbol": "ETH-USDT", "spread_bps": 8, "size": 0.05, "max_inventory": 0.5, "requote_bps": 2,
//!   "skew_bps": 10}`.
//! Quotes a post-only bid and ask `spread_bps / 2` around the mid. Each unit of inventory (as a
//! fraction of `max_inventory`) shifts both quotes by up to `skew_bps` against the position, so a
//! long book leans towards selling. The side that would push inventory past the limit is not
//! quoted. Quotes move (amend) when the fair price drifts by more than `requote_bps`.

use serde::{Deserialize, Serialize};
use tradebox_sdk::prelude::*;

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

/// One side's resting quote.
#[derive(Debug, Clone, Default)]
struct Quote {
    id: Option<String>,
    price: f64,
}

struct MarketMaker {
    config: Config,
    instrument: Instrument,
    bid: Quote,
    ask: Quote,
    mid: f64,
    best_bid: f64,
    best_ask: f64,
    fills: u64,
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
        let instrument = self.instrument.id;
        update_side(&mut self.bid, instrument, Side::Buy, bid_px, size, can_buy, threshold);
        update_side(&mut self.ask, instrument, Side::Sell, ask_px, size, can_sell, threshold);
    }
}

fn update_side(
    quote: &mut Quote,
    instrument: InstrumentId,
    side: Side,
    price: f64,
    size: f64,
    allowed: bool,
    threshold: f64,
) {
    match (&quote.id, allowed) {
        (Some(id), false) => {
            let _ = orders::cancel(id);
            quote.id = None;
        }
        (Some(id), true) => {
            if (quote.price - price).abs() > threshold {
                match orders::amend(id, Some(price), None) {
                    Ok(()) => quote.price = price,
                    Err(d) => debug!("amend refused: {} {}", d.code, d.message),
                }
            }
        }
        (None, true) => match orders::place(OrderRequest::post_only(instrument, side, price, size)) {
            Ok(id) => *quote = Quote { id: Some(id), price },
            Err(d) => debug!("quote refused: {} {}", d.code, d.message),
        },
        (None, false) => {}
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
            bid: Quote::default(),
            ask: Quote::default(),
            mid: 0.0,
            best_bid: 0.0,
            best_ask: 0.0,
            fills: 0,
        };
        // After a restart or reload the plugin's orders are still on the book: adopt one quote per
        // side and cancel the rest, so nothing is left unmanaged.
        for order in views::open_orders().into_iter().filter(|o| o.instrument == maker.instrument.id) {
            let quote = if order.side == Side::Buy { &mut maker.bid } else { &mut maker.ask };
            if quote.id.is_none() {
                *quote = Quote { id: Some(order.client_order_id), price: order.price };
            } else {
                let _ = orders::cancel(&order.client_order_id);
            }
        }
        Ok(maker)
    }

    fn on_ticker(&mut self, ticker: &Ticker) {
        if ticker.instrument == self.instrument.id && ticker.bid > 0.0 && ticker.ask > ticker.bid {
            self.mid = (ticker.bid + ticker.ask) / 2.0;
            self.best_bid = ticker.bid;
            self.best_ask = ticker.ask;
        }
    }

    fn on_order(&mut self, order: &OrderUpdate) {
        let done = matches!(order.state, OrderState::Filled | OrderState::Canceled | OrderState::Rejected);
        if !done {
            return;
        }
        for quote in [&mut self.bid, &mut self.ask] {
            if quote.id.as_deref() == Some(order.client_order_id.as_str()) {
                quote.id = None;
            }
        }
    }

    fn on_fill(&mut self, _fill: &Fill) {
        self.fills += 1;
    }

    fn on_risk_denied(&mut self, denial: &RiskDenial) {
        for quote in [&mut self.bid, &mut self.ask] {
            if denial.client_order_id.is_some() && quote.id == denial.client_order_id {
                quote.id = None;
            }
        }
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
