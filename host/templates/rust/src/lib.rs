//! {{name}}: long `size` when the fast moving average of closed one-minute bars crosses above
//! the slow one, flat when it crosses back. One order at a time.
//!
//! Build: `tradebox plugin build .`; test: `cargo test` (backtests the build on
//! `data/sample.csv`); see README.md for loading it into a running host.

use serde::{Deserialize, Serialize};
use tradebox_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    symbol: String,
    fast: usize,
    slow: usize,
    size: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config { symbol: "BTC-USDT".into(), fast: 5, slow: 20, size: 0.01 }
    }
}

/// What a hot reload hands to the next version: the closes both averages need.
#[derive(Serialize, Deserialize)]
struct Saved {
    closes: Vec<f64>,
}

struct Crossover {
    instrument: InstrumentId,
    size: f64,
    fast: Sma,
    slow: Sma,
    /// Whether fast was above slow at the last closed bar.
    above: Option<bool>,
    /// The order on its way, if any.
    working: Option<String>,
}

impl Crossover {
    fn on_close(&mut self, close: f64) {
        let (Some(fast), Some(slow)) = (self.fast.update(close), self.slow.update(close)) else { return };
        let above = fast > slow;
        let crossed = self.above.is_some_and(|was| was != above);
        self.above = Some(above);
        if !crossed || self.working.is_some() {
            return;
        }
        let held = position_size(self.instrument);
        let request = if above && held <= 0.0 {
            OrderRequest::market(self.instrument, Side::Buy, self.size)
        } else if !above && held > 0.0 {
            OrderRequest::market(self.instrument, Side::Sell, held).reduce_only()
        } else {
            return;
        };
        match orders::place(request) {
            Ok(id) => self.working = Some(id),
            Err(denial) => warn!("order denied: {} {}", denial.code, denial.message),
        }
    }
}

impl Strategy for Crossover {
    fn init(config: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(config).map_err(|e| format!("config: {e}"))?;
        if config.fast == 0 || config.fast >= config.slow {
            return Err(format!("config: need 0 < fast < slow, got {} and {}", config.fast, config.slow));
        }
        let instrument = views::find_instrument(&config.symbol)
            .ok_or_else(|| format!("instrument {} is unknown or not granted", config.symbol))?;
        feeds::subscribe(instrument.id, Channel::Candle1m).map_err(|d| d.message)?;
        info!("{{name}} on {} fast {} slow {}", config.symbol, config.fast, config.slow);
        Ok(Crossover {
            instrument: instrument.id,
            size: config.size,
            fast: Sma::new(config.fast),
            slow: Sma::new(config.slow),
            above: None,
            working: None,
        })
    }

    fn on_candle(&mut self, candle: &Candle) {
        if candle.instrument == self.instrument && candle.confirmed {
            self.on_close(candle.close);
        }
    }

    fn on_order(&mut self, order: &OrderUpdate) {
        let done = matches!(order.state, OrderState::Filled | OrderState::Canceled | OrderState::Rejected);
        if done && self.working.as_deref() == Some(order.client_order_id.as_str()) {
            self.working = None;
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&Saved { closes: self.slow.values().collect() }).unwrap_or_default()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let saved: Saved = serde_json::from_slice(state).map_err(|e| format!("restore: {e}"))?;
        for close in saved.closes {
            self.fast.update(close);
            self.slow.update(close);
        }
        Ok(())
    }
}

export_strategy!(Crossover);
tradebox_sdk::embed_manifest!();
