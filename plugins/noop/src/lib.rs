//! The smallest strategy: it counts the events it sees and reports the count in `snapshot`.

use tradebox_sdk::prelude::*;

struct Noop {
    tickers: u64,
}

impl Strategy for Noop {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Noop { tickers: 0 })
    }

    fn on_ticker(&mut self, _ticker: &Ticker) {
        self.tickers += 1;
    }

    fn snapshot(&self) -> Vec<u8> {
        self.tickers.to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| "expected 8 bytes".to_string())?;
        self.tickers = u64::from_le_bytes(bytes);
        Ok(())
    }
}

export_strategy!(Noop);
