//! Host bindings generated from `wit/`, and conversions from host types to WIT types.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "strategy",
    path: "../wit",
});

pub use self::tradebox::strategy::types as wit;
use crate::engine::{self, PluginEvent, PluginPosition};
use rust_decimal::Decimal;

impl From<tradebox_core::Side> for wit::Side {
    fn from(s: tradebox_core::Side) -> Self {
        match s {
            tradebox_core::Side::Buy => wit::Side::Buy,
            tradebox_core::Side::Sell => wit::Side::Sell,
        }
    }
}

impl From<wit::Side> for tradebox_core::Side {
    fn from(s: wit::Side) -> Self {
        match s {
            wit::Side::Buy => tradebox_core::Side::Buy,
            wit::Side::Sell => tradebox_core::Side::Sell,
        }
    }
}

impl From<tradebox_core::OrderKind> for wit::OrderKind {
    fn from(k: tradebox_core::OrderKind) -> Self {
        match k {
            tradebox_core::OrderKind::Limit => wit::OrderKind::Limit,
            tradebox_core::OrderKind::Market => wit::OrderKind::Market,
            tradebox_core::OrderKind::PostOnly => wit::OrderKind::PostOnly,
            tradebox_core::OrderKind::Ioc => wit::OrderKind::Ioc,
            tradebox_core::OrderKind::Fok => wit::OrderKind::Fok,
        }
    }
}

impl From<wit::OrderKind> for tradebox_core::OrderKind {
    fn from(k: wit::OrderKind) -> Self {
        match k {
            wit::OrderKind::Limit => tradebox_core::OrderKind::Limit,
            wit::OrderKind::Market => tradebox_core::OrderKind::Market,
            wit::OrderKind::PostOnly => tradebox_core::OrderKind::PostOnly,
            wit::OrderKind::Ioc => tradebox_core::OrderKind::Ioc,
            wit::OrderKind::Fok => tradebox_core::OrderKind::Fok,
        }
    }
}

impl From<wit::Channel> for tradebox_core::Channel {
    fn from(c: wit::Channel) -> Self {
        match c {
            wit::Channel::Ticker => tradebox_core::Channel::Tickers,
            wit::Channel::Book5 => tradebox_core::Channel::Books5,
            wit::Channel::Trades => tradebox_core::Channel::Trades,
            wit::Channel::Candle1m => tradebox_core::Channel::Candle1m,
        }
    }
}

impl From<&tradebox_core::Denial> for wit::Denial {
    fn from(d: &tradebox_core::Denial) -> Self {
        wit::Denial { code: d.code.as_str().to_string(), message: d.message.clone(), limit: d.limit, value: d.value }
    }
}

impl From<tradebox_core::Denial> for wit::Denial {
    fn from(d: tradebox_core::Denial) -> Self {
        wit::Denial::from(&d)
    }
}

/// The WIT view of an instrument.
pub fn instrument(spec: &tradebox_core::InstrumentSpec) -> wit::Instrument {
    wit::Instrument {
        id: spec.id,
        symbol: spec.symbol.clone(),
        kind: match spec.kind {
            tradebox_core::InstrumentKind::Spot => wit::InstrumentKind::Spot,
            tradebox_core::InstrumentKind::Swap => wit::InstrumentKind::Swap,
        },
        base_currency: spec.base.clone(),
        quote_currency: spec.quote.clone(),
        tick_size: tradebox_core::num::shown(spec.tick_size),
        lot_size: tradebox_core::num::shown(spec.lot_size),
        min_size: tradebox_core::num::shown(spec.min_size),
        contract_value: tradebox_core::num::shown(spec.contract_value),
    }
}

/// The WIT view of an order.
pub fn order(r: &tradebox_core::OrderReport, pending: bool) -> wit::OrderUpdate {
    let state = if pending {
        wit::OrderState::Pending
    } else {
        match r.status {
            tradebox_core::OrderStatus::Live => wit::OrderState::Live,
            tradebox_core::OrderStatus::PartiallyFilled => wit::OrderState::PartiallyFilled,
            tradebox_core::OrderStatus::Filled => wit::OrderState::Filled,
            tradebox_core::OrderStatus::Canceled => wit::OrderState::Canceled,
            tradebox_core::OrderStatus::Rejected => wit::OrderState::Rejected,
        }
    };
    wit::OrderUpdate {
        client_order_id: r.client_id.clone(),
        instrument: r.instrument,
        side: r.side.into(),
        kind: r.kind.into(),
        price: r.price.map_or(0.0, tradebox_core::num::shown),
        size: tradebox_core::num::shown(r.size),
        filled_size: tradebox_core::num::shown(r.filled),
        avg_fill_price: r.avg_price.map_or(0.0, tradebox_core::num::shown),
        state,
        reason: r.reason.clone(),
        ts: r.ts_ms,
    }
}

/// The WIT view of a plugin's position.
pub fn position(instrument: u32, p: &PluginPosition, mark: Option<f64>) -> wit::Position {
    let unrealized =
        mark.and_then(|m| Decimal::try_from(m).ok()).map_or(0.0, |m| tradebox_core::num::shown(p.unrealized(m)));
    wit::Position {
        instrument,
        size: tradebox_core::num::shown(p.size),
        avg_price: tradebox_core::num::shown(p.avg_price),
        realized_pnl: tradebox_core::num::shown(p.realized),
        unrealized_pnl: unrealized,
    }
}

/// The WIT view of a balance.
pub fn balance(b: &tradebox_core::BalanceReport) -> wit::Balance {
    wit::Balance {
        currency: b.currency.clone(),
        total: tradebox_core::num::shown(b.total),
        available: tradebox_core::num::shown(b.available),
        frozen: tradebox_core::num::shown(b.frozen),
    }
}

fn trading_state(s: tradebox_core::TradingState) -> wit::TradingState {
    match s {
        tradebox_core::TradingState::Active => wit::TradingState::Active,
        tradebox_core::TradingState::ReduceOnly => wit::TradingState::ReduceOnly,
        tradebox_core::TradingState::Halted => wit::TradingState::Halted,
    }
}

/// Converts one host event to its WIT form.
pub fn event(e: PluginEvent) -> wit::Event {
    match e {
        PluginEvent::Market(tradebox_core::MarketEvent::Ticker {
            instrument,
            ts_ms,
            bid,
            bid_size,
            ask,
            ask_size,
            last,
        }) => wit::Event::Ticker(wit::Ticker { instrument, ts: ts_ms, bid, bid_size, ask, ask_size, last }),
        PluginEvent::Market(tradebox_core::MarketEvent::Book { instrument, ts_ms, bids, asks }) => {
            let levels = |v: Vec<(f64, f64)>| v.into_iter().map(|(price, size)| wit::Level { price, size }).collect();
            wit::Event::Book(wit::Book { instrument, ts: ts_ms, bids: levels(bids), asks: levels(asks) })
        }
        PluginEvent::Market(tradebox_core::MarketEvent::Trade { instrument, ts_ms, price, size, taker_side }) => {
            wit::Event::Trade(wit::Trade { instrument, ts: ts_ms, price, size, taker_side: taker_side.into() })
        }
        PluginEvent::Candle { instrument, ts_ms, ohlcv, confirmed }
        | PluginEvent::Market(tradebox_core::MarketEvent::Candle { instrument, ts_ms, ohlcv, confirmed }) => {
            wit::Event::Candle(wit::Candle {
                instrument,
                ts: ts_ms,
                open: ohlcv[0],
                high: ohlcv[1],
                low: ohlcv[2],
                close: ohlcv[3],
                volume: ohlcv[4],
                confirmed,
            })
        }
        PluginEvent::Order(r) => wit::Event::Order(order(&r, false)),
        PluginEvent::Fill(fl) => wit::Event::Fill(wit::Fill {
            client_order_id: fl.client_id,
            instrument: fl.instrument,
            side: fl.side.into(),
            price: tradebox_core::num::shown(fl.price),
            size: tradebox_core::num::shown(fl.size),
            fee: tradebox_core::num::shown(fl.fee),
            fee_currency: fl.fee_currency,
            liquidity: match fl.liquidity {
                tradebox_core::Liquidity::Maker => wit::Liquidity::Maker,
                tradebox_core::Liquidity::Taker => wit::Liquidity::Taker,
            },
            trade_id: fl.trade_id,
            ts: fl.ts_ms,
        }),
        PluginEvent::Position { instrument, position: p, mark } => wit::Event::Position(position(instrument, &p, mark)),
        PluginEvent::Balance(b) => wit::Event::Balance(balance(&b)),
        PluginEvent::RiskDenied { client_id, denial } => {
            wit::Event::RiskDenied(wit::RiskDenial { client_order_id: client_id, denial: denial.into() })
        }
        PluginEvent::Connectivity { link, connected, detail } => {
            wit::Event::Connectivity(wit::Connectivity { link, connected, detail })
        }
        PluginEvent::TradingState { scope, state, reason } => wit::Event::TradingState(wit::TradingStateChange {
            scope: match scope {
                engine::Scope::Plugin => wit::Scope::Plugin,
                engine::Scope::Account => wit::Scope::Account,
            },
            state: trading_state(state),
            reason,
        }),
    }
}

/// Runs of fewer tickers than this go as ordinary events: every column costs the runtime one
/// allocation call into the guest, which a short run does not repay (measured in BENCHMARKS.md).
pub const COLUMN_RUN_MIN: usize = 8;

/// One guest call's worth of events, in the cheapest shape the contract allows for them.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Through `on-events`.
    Events(Vec<wit::Event>),
    /// A run of tickers through `on-tickers`.
    Tickers(wit::TickerColumns),
}

impl Delivery {
    /// How many events it carries.
    pub fn len(&self) -> usize {
        match self {
            Delivery::Events(events) => events.len(),
            Delivery::Tickers(columns) => columns.instrument.len(),
        }
    }

    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits a batch into deliveries without reordering it: every run of at least
/// [`COLUMN_RUN_MIN`] consecutive tickers becomes one column delivery, everything else stays in
/// `on-events` batches between them.
pub fn deliveries(batch: Vec<wit::Event>) -> Vec<Delivery> {
    let mut out = Vec::new();
    let mut events = Vec::with_capacity(batch.len());
    let mut run: Vec<wit::Ticker> = Vec::new();
    for event in batch {
        match event {
            wit::Event::Ticker(t) => run.push(t),
            other => {
                flush_run(&mut run, &mut events, &mut out);
                events.push(other);
            }
        }
    }
    flush_run(&mut run, &mut events, &mut out);
    if !events.is_empty() {
        out.push(Delivery::Events(events));
    }
    out
}

fn flush_run(run: &mut Vec<wit::Ticker>, events: &mut Vec<wit::Event>, out: &mut Vec<Delivery>) {
    if run.len() < COLUMN_RUN_MIN {
        events.extend(run.drain(..).map(wit::Event::Ticker));
        return;
    }
    if !events.is_empty() {
        out.push(Delivery::Events(std::mem::take(events)));
    }
    out.push(Delivery::Tickers(columns(run.drain(..))));
}

/// How many entries of `ticker-columns.prices` belong to one ticker.
pub const PRICES_PER_TICKER: usize = 5;

/// Tickers in column form: the layout documented on `ticker-columns` in the WIT.
pub fn columns(tickers: impl ExactSizeIterator<Item = wit::Ticker>) -> wit::TickerColumns {
    let n = tickers.len();
    let mut c = wit::TickerColumns {
        instrument: Vec::with_capacity(n),
        ts: Vec::with_capacity(n),
        prices: Vec::with_capacity(n * PRICES_PER_TICKER),
    };
    for t in tickers {
        c.instrument.push(t.instrument);
        c.ts.push(t.ts);
        c.prices.extend_from_slice(&[t.bid, t.bid_size, t.ask, t.ask_size, t.last]);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticker(i: u32) -> wit::Event {
        wit::Event::Ticker(wit::Ticker {
            instrument: i,
            ts: i64::from(i),
            bid: 1.0,
            bid_size: 2.0,
            ask: 3.0,
            ask_size: 4.0,
            last: f64::from(i),
        })
    }

    fn timer(id: u64) -> wit::Event {
        wit::Event::Timer(wit::TimerFired { id, ts: 0 })
    }

    /// Flattens deliveries back to (kind, id) pairs so order can be compared.
    fn flatten(ds: &[Delivery]) -> Vec<(char, u64)> {
        let mut out = Vec::new();
        for d in ds {
            match d {
                Delivery::Events(events) => out.extend(events.iter().map(|e| match e {
                    wit::Event::Ticker(t) => ('t', u64::from(t.instrument)),
                    wit::Event::Timer(t) => ('x', t.id),
                    _ => ('?', 0),
                })),
                Delivery::Tickers(c) => {
                    assert_eq!(c.instrument.len(), c.ts.len());
                    assert_eq!(c.instrument.len() * PRICES_PER_TICKER, c.prices.len());
                    assert!(c.instrument.len() >= COLUMN_RUN_MIN);
                    out.extend(c.instrument.iter().map(|i| ('c', u64::from(*i))));
                }
            }
        }
        out
    }

    #[test]
    fn short_runs_stay_events_long_runs_become_columns_and_order_is_kept() {
        let mut batch = vec![ticker(0), ticker(1), timer(100)];
        batch.extend((2..12).map(ticker));
        batch.push(timer(101));
        batch.extend((12..15).map(ticker));
        let ds = deliveries(batch);
        assert_eq!(ds.len(), 3, "{ds:?}");
        let kinds: Vec<(char, u64)> = flatten(&ds);
        let mut expected = vec![('t', 0), ('t', 1), ('x', 100)];
        expected.extend((2..12).map(|i| ('c', i)));
        expected.push(('x', 101));
        expected.extend((12..15).map(|i| ('t', i)));
        assert_eq!(kinds, expected);
        assert_eq!(ds.iter().map(Delivery::len).sum::<usize>(), 17);
    }

    #[test]
    fn columns_carry_every_field() {
        let ds = deliveries((0..COLUMN_RUN_MIN as u32).map(ticker).collect());
        let [Delivery::Tickers(c)] = ds.as_slice() else { panic!("one column delivery: {ds:?}") };
        assert_eq!(c.prices.len(), COLUMN_RUN_MIN * PRICES_PER_TICKER);
        for i in 0..COLUMN_RUN_MIN {
            assert_eq!((c.instrument[i], c.ts[i]), (i as u32, i as i64));
            // Ticker i's five prices, interleaved in field order: bid, bid-size, ask, ask-size, last.
            assert_eq!(c.prices[5 * i..5 * i + 5], [1.0, 2.0, 3.0, 4.0, i as f64]);
        }
        assert!(deliveries(Vec::new()).is_empty());
    }
}
