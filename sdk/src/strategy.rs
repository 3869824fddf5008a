//! The `Strategy` trait and the event dispatcher behind `export_strategy!`.

use crate::{
    Balance, Book, Candle, Connectivity, Event, Fill, OrderUpdate, Position, RiskDenial, Ticker, TickerColumns,
    TimerFired, Trade, TradingStateChange,
};

/// A trading strategy: a plain struct that reacts to events.
///
/// Every handler has an empty default, so a strategy implements only what it uses. Handlers
/// run one at a time and should return quickly: the host gives each batch a CPU deadline and
/// kills an instance that overruns it.
pub trait Strategy: Sized + 'static {
    /// Builds the strategy from its config (a JSON object as text, `{}` when none). Subscribe
    /// to market data and set timers here. An `Err` refuses the load with that message.
    fn init(config: &str) -> Result<Self, String>;

    /// Best bid/ask and last price changed.
    ///
    /// On busy feeds this runs once per ticker inside the SDK's loop over a column batch. Keep
    /// it small enough to be inlined there (`#[inline]`, and the rare work, such as placing
    /// an order, in a separate `#[inline(never)]` method): in wasm every call that is not
    /// inlined pays a stack check, a deadline check and register saves, several times the
    /// cost of a moving-average update (see `sma-cross`).
    fn on_ticker(&mut self, _ticker: &Ticker) {}
    /// A new top-of-book snapshot.
    fn on_book(&mut self, _book: &Book) {}
    /// A public trade.
    fn on_trade(&mut self, _trade: &Trade) {}
    /// A candle update.
    fn on_candle(&mut self, _candle: &Candle) {}
    /// One of this plugin's orders changed state.
    fn on_order(&mut self, _order: &OrderUpdate) {}
    /// One of this plugin's orders filled (partly or fully).
    fn on_fill(&mut self, _fill: &Fill) {}
    /// This plugin's position changed.
    fn on_position(&mut self, _position: &Position) {}
    /// An account balance changed.
    fn on_balance(&mut self, _balance: &Balance) {}
    /// A timer set through [`crate::timers`] fired.
    fn on_timer(&mut self, _timer: &TimerFired) {}
    /// An intent was refused after it had been accepted.
    fn on_risk_denied(&mut self, _denial: &RiskDenial) {}
    /// A link to the venue went down or came back.
    fn on_connectivity(&mut self, _change: &Connectivity) {}
    /// The plugin's or the account's trading state changed.
    fn on_trading_state(&mut self, _change: &TradingStateChange) {}
    /// Called after each batch, once every event in it has been handled: the place to act
    /// on the newest state instead of on every tick.
    fn on_batch_end(&mut self) {}

    /// State to hand over to the next version on hot reload.
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Takes over the state of the previous version (after `init`). An error refuses the
    /// reload and the running version keeps trading. The plugin's open orders carry over
    /// (adopt them from `views::open_orders()` in `init`); timers and subscriptions do not:
    /// `init` sets them again.
    fn restore(&mut self, _state: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// Routes a batch of events to the strategy's handlers, in order.
pub fn dispatch<S: Strategy>(strategy: &mut S, events: Vec<Event>) {
    for event in &events {
        match event {
            Event::Ticker(e) => strategy.on_ticker(e),
            Event::Book(e) => strategy.on_book(e),
            Event::Trade(e) => strategy.on_trade(e),
            Event::Candle(e) => strategy.on_candle(e),
            Event::Order(e) => strategy.on_order(e),
            Event::Fill(e) => strategy.on_fill(e),
            Event::Position(e) => strategy.on_position(e),
            Event::Balance(e) => strategy.on_balance(e),
            Event::Timer(e) => strategy.on_timer(e),
            Event::RiskDenied(e) => strategy.on_risk_denied(e),
            Event::Connectivity(e) => strategy.on_connectivity(e),
            Event::TradingState(e) => strategy.on_trading_state(e),
        }
    }
    strategy.on_batch_end();
}

/// Routes a run of tickers delivered in columns to `on_ticker`, one ticker at a time and in
/// order, exactly as [`dispatch`] would have for the same tickers as events.
pub fn dispatch_tickers<S: Strategy>(strategy: &mut S, columns: TickerColumns) {
    let TickerColumns { instrument, ts, prices } = columns;
    // Five prices per ticker in field order (the layout of `ticker-columns`). The host sends
    // consistent lengths; a short column or a partial last chunk ends the run rather than
    // panicking.
    let (prices, _) = prices.as_chunks::<5>();
    for ((instrument, ts), &[bid, bid_size, ask, ask_size, last]) in instrument.iter().zip(&ts).zip(prices) {
        let ticker = Ticker { instrument: *instrument, ts: *ts, bid, bid_size, ask, ask_size, last };
        strategy.on_ticker(&ticker);
    }
    strategy.on_batch_end();
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = (u32, i64, f64, f64, f64, f64, f64);

    fn fields(t: &Ticker) -> Fields {
        (t.instrument, t.ts, t.bid, t.bid_size, t.ask, t.ask_size, t.last)
    }

    /// Records what it is handed.
    struct Recorder {
        tickers: Vec<Fields>,
        batches: usize,
    }

    impl Strategy for Recorder {
        fn init(_config: &str) -> Result<Self, String> {
            Ok(Recorder { tickers: Vec::new(), batches: 0 })
        }
        fn on_ticker(&mut self, ticker: &Ticker) {
            self.tickers.push(fields(ticker));
        }
        fn on_batch_end(&mut self) {
            self.batches += 1;
        }
    }

    fn ticker(i: u32) -> Ticker {
        let f = f64::from(i);
        Ticker {
            instrument: i,
            ts: 1000 + i64::from(i),
            bid: f + 0.1,
            bid_size: f + 0.2,
            ask: f + 0.3,
            ask_size: f + 0.4,
            last: f + 0.5,
        }
    }

    #[test]
    fn columns_reach_on_ticker_as_the_same_tickers_as_events() {
        let tickers: Vec<Ticker> = (0..9).map(ticker).collect();
        let columns = TickerColumns {
            instrument: tickers.iter().map(|t| t.instrument).collect(),
            ts: tickers.iter().map(|t| t.ts).collect(),
            prices: tickers.iter().flat_map(|t| [t.bid, t.bid_size, t.ask, t.ask_size, t.last]).collect(),
        };
        let mut by_columns = Recorder::init("{}").expect("init");
        dispatch_tickers(&mut by_columns, columns);
        let mut by_events = Recorder::init("{}").expect("init");
        dispatch(&mut by_events, tickers.iter().copied().map(Event::Ticker).collect());
        let expected: Vec<Fields> = tickers.iter().map(fields).collect();
        assert_eq!(by_columns.tickers, expected);
        assert_eq!(by_events.tickers, expected);
        assert_eq!((by_columns.batches, by_events.batches), (1, 1));
    }

    #[test]
    fn inconsistent_columns_end_the_run_without_panicking() {
        let columns = TickerColumns { instrument: vec![1, 2, 3], ts: vec![10, 20, 30], prices: vec![0.5; 12] };
        let mut r = Recorder::init("{}").expect("init");
        dispatch_tickers(&mut r, columns);
        assert_eq!(r.tickers.len(), 2, "two whole chunks of five prices");
        assert_eq!(r.batches, 1);
    }
}
