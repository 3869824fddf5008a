//! The smallest strategy: it counts the tickers it sees and reports the count in `snapshot`.
//! With config `{"timer_ms": N}` it also sets an interval timer and logs every tenth firing,
//! which the host's tests use to check timers.

use tradebox_sdk::prelude::*;

struct Noop {
    tickers: u64,
    timers: u64,
}

impl Strategy for Noop {
    fn init(config: &str) -> Result<Self, String> {
        // A tiny config: the only key is a number, so no JSON parser is pulled in.
        let timer_ms = config
            .split("\"timer_ms\":")
            .nth(1)
            .map(|rest| rest.trim_start().chars().take_while(char::is_ascii_digit).collect::<String>())
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(ms) = timer_ms {
            timers::set_interval(ms);
        }
        Ok(Noop { tickers: 0, timers: 0 })
    }

    fn on_ticker(&mut self, _ticker: &Ticker) {
        self.tickers += 1;
    }

    fn on_timer(&mut self, _timer: &TimerFired) {
        self.timers += 1;
        if self.timers.is_multiple_of(10) {
            info!("timer fired {} times", self.timers);
        }
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
