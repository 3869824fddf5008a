//! The smallest strategy: it counts the tickers and trades it sees and reports the counts in
//! `snapshot` (so a hot reload carries them over). Config keys (both optional; empty and 0 mean
//! none): `{"symbol": "BTC-USDT", "timer_ms": N}`. With a symbol it subscribes to that instrument's
//! tickers and trades. With a timer it sets an interval timer, logs every tenth firing (the
//! host's tests use it to check timers) and, once it has seen trades, logs its trade counts at
//! every firing (the hot-reload tests read them).
//!
//! Trades also check the order of delivery: a trade's price is expected to be one more than
//! the previous one's (the host's tests send them numbered that way), and any trade that is
//! not counts as out of order, so a test sees lost, repeated or reordered events.
//!
//! Snapshot: tickers, trades, out-of-order trades and the last trade price, little-endian.

use tradebox_sdk::prelude::*;

struct Noop {
    tickers: u64,
    timers: u64,
    trades: u64,
    out_of_order: u64,
    last_trade: f64,
}

impl Strategy for Noop {
    fn init(config: &str) -> Result<Self, String> {
        // A tiny config: the only key is a number, so no JSON parser is pulled in.
        let timer_ms = config
            .split("\"timer_ms\":")
            .nth(1)
            .map(|rest| rest.trim_start().chars().take_while(char::is_ascii_digit).collect::<String>())
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(ms) = timer_ms.filter(|ms| *ms > 0) {
            timers::set_interval(ms);
        }
        let symbol = config
            .split("\"symbol\":")
            .nth(1)
            .and_then(|rest| rest.trim_start().split('"').nth(1))
            .filter(|s| !s.is_empty());
        if let Some(symbol) = symbol {
            let instrument = views::find_instrument(symbol).ok_or_else(|| format!("{symbol} is not granted"))?;
            feeds::subscribe(instrument.id, Channel::Ticker).map_err(|d| d.message)?;
            feeds::subscribe(instrument.id, Channel::Trades).map_err(|d| d.message)?;
        }
        Ok(Noop { tickers: 0, timers: 0, trades: 0, out_of_order: 0, last_trade: 0.0 })
    }

    fn on_ticker(&mut self, _ticker: &Ticker) {
        self.tickers += 1;
    }

    fn on_trade(&mut self, trade: &Trade) {
        self.trades += 1;
        if trade.price != self.last_trade + 1.0 {
            self.out_of_order += 1;
        }
        self.last_trade = trade.price;
    }

    fn on_timer(&mut self, _timer: &TimerFired) {
        self.timers += 1;
        if self.timers.is_multiple_of(10) {
            info!("timer fired {} times", self.timers);
        }
        if self.trades > 0 {
            info!("trades {} out of order {} last {}", self.trades, self.out_of_order, self.last_trade);
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.extend_from_slice(&self.tickers.to_le_bytes());
        out.extend_from_slice(&self.trades.to_le_bytes());
        out.extend_from_slice(&self.out_of_order.to_le_bytes());
        out.extend_from_slice(&self.last_trade.to_le_bytes());
        out
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if state.len() != 32 {
            return Err(format!("expected 32 bytes of state, got {}", state.len()));
        }
        let word = |i: usize| -> Result<[u8; 8], String> {
            state.get(i * 8..i * 8 + 8).and_then(|b| b.try_into().ok()).ok_or_else(|| "expected 32 bytes".to_string())
        };
        self.tickers = u64::from_le_bytes(word(0)?);
        self.trades = u64::from_le_bytes(word(1)?);
        self.out_of_order = u64::from_le_bytes(word(2)?);
        self.last_trade = f64::from_le_bytes(word(3)?);
        Ok(())
    }
}

export_strategy!(Noop);
tradebox_sdk::embed_manifest!();
