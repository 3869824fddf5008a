//! Host bindings generated from `wit/`, and conversions from host types to WIT types.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "strategy",
    path: "../wit",
});

pub use self::tradebox::strategy::types as wit;
use crate::engine::{self, PluginEvent, PluginPosition};
use crate::venue;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

impl From<venue::Side> for wit::Side {
    fn from(s: venue::Side) -> Self {
        match s {
            venue::Side::Buy => wit::Side::Buy,
            venue::Side::Sell => wit::Side::Sell,
        }
    }
}

impl From<wit::Side> for venue::Side {
    fn from(s: wit::Side) -> Self {
        match s {
            wit::Side::Buy => venue::Side::Buy,
            wit::Side::Sell => venue::Side::Sell,
        }
    }
}

impl From<venue::OrderKind> for wit::OrderKind {
    fn from(k: venue::OrderKind) -> Self {
        match k {
            venue::OrderKind::Limit => wit::OrderKind::Limit,
            venue::OrderKind::Market => wit::OrderKind::Market,
            venue::OrderKind::PostOnly => wit::OrderKind::PostOnly,
            venue::OrderKind::Ioc => wit::OrderKind::Ioc,
            venue::OrderKind::Fok => wit::OrderKind::Fok,
        }
    }
}

impl From<wit::OrderKind> for venue::OrderKind {
    fn from(k: wit::OrderKind) -> Self {
        match k {
            wit::OrderKind::Limit => venue::OrderKind::Limit,
            wit::OrderKind::Market => venue::OrderKind::Market,
            wit::OrderKind::PostOnly => venue::OrderKind::PostOnly,
            wit::OrderKind::Ioc => venue::OrderKind::Ioc,
            wit::OrderKind::Fok => venue::OrderKind::Fok,
        }
    }
}

impl From<wit::Channel> for engine::Channel {
    fn from(c: wit::Channel) -> Self {
        match c {
            wit::Channel::Ticker => engine::Channel::Ticker,
            wit::Channel::Book5 => engine::Channel::Book5,
            wit::Channel::Trades => engine::Channel::Trades,
            wit::Channel::Candle1m => engine::Channel::Candle1m,
        }
    }
}

impl From<&engine::Denial> for wit::Denial {
    fn from(d: &engine::Denial) -> Self {
        wit::Denial { code: d.code.as_str().to_string(), message: d.message.clone(), limit: d.limit, value: d.value }
    }
}

impl From<engine::Denial> for wit::Denial {
    fn from(d: engine::Denial) -> Self {
        wit::Denial::from(&d)
    }
}

/// The WIT view of an instrument.
pub fn instrument(spec: &venue::InstrumentSpec) -> wit::Instrument {
    wit::Instrument {
        id: spec.id,
        symbol: spec.symbol.clone(),
        kind: match spec.kind {
            venue::InstrumentKind::Spot => wit::InstrumentKind::Spot,
            venue::InstrumentKind::Swap => wit::InstrumentKind::Swap,
        },
        base_currency: spec.base.clone(),
        quote_currency: spec.quote.clone(),
        tick_size: f(spec.tick_size),
        lot_size: f(spec.lot_size),
        min_size: f(spec.min_size),
        contract_value: f(spec.contract_value),
    }
}

/// The WIT view of an order.
pub fn order(r: &venue::OrderReport, pending: bool) -> wit::OrderUpdate {
    let state = if pending {
        wit::OrderState::Pending
    } else {
        match r.status {
            venue::OrderStatus::Live => wit::OrderState::Live,
            venue::OrderStatus::PartiallyFilled => wit::OrderState::PartiallyFilled,
            venue::OrderStatus::Filled => wit::OrderState::Filled,
            venue::OrderStatus::Canceled => wit::OrderState::Canceled,
            venue::OrderStatus::Rejected => wit::OrderState::Rejected,
        }
    };
    wit::OrderUpdate {
        client_order_id: r.client_id.clone(),
        instrument: r.instrument,
        side: r.side.into(),
        kind: r.kind.into(),
        price: r.price.map_or(0.0, f),
        size: f(r.size),
        filled_size: f(r.filled),
        avg_fill_price: r.avg_price.map_or(0.0, f),
        state,
        reason: r.reason.clone(),
        ts: r.ts_ms,
    }
}

/// The WIT view of a plugin's position.
pub fn position(instrument: u32, p: &PluginPosition, mark: Option<f64>) -> wit::Position {
    let unrealized = mark.and_then(|m| Decimal::try_from(m).ok()).map_or(0.0, |m| f(p.unrealized(m)));
    wit::Position {
        instrument,
        size: f(p.size),
        avg_price: f(p.avg_price),
        realized_pnl: f(p.realized),
        unrealized_pnl: unrealized,
    }
}

/// The WIT view of a balance.
pub fn balance(b: &venue::BalanceReport) -> wit::Balance {
    wit::Balance { currency: b.currency.clone(), total: f(b.total), available: f(b.available), frozen: f(b.frozen) }
}

fn trading_state(s: engine::TradingState) -> wit::TradingState {
    match s {
        engine::TradingState::Active => wit::TradingState::Active,
        engine::TradingState::ReduceOnly => wit::TradingState::ReduceOnly,
        engine::TradingState::Halted => wit::TradingState::Halted,
    }
}

/// Converts one host event to its WIT form.
pub fn event(e: PluginEvent) -> wit::Event {
    match e {
        PluginEvent::Market(venue::MarketEvent::Ticker { instrument, ts_ms, bid, bid_size, ask, ask_size, last }) => {
            wit::Event::Ticker(wit::Ticker { instrument, ts: ts_ms, bid, bid_size, ask, ask_size, last })
        }
        PluginEvent::Market(venue::MarketEvent::Book { instrument, ts_ms, bids, asks }) => {
            let levels = |v: Vec<(f64, f64)>| v.into_iter().map(|(price, size)| wit::Level { price, size }).collect();
            wit::Event::Book(wit::Book { instrument, ts: ts_ms, bids: levels(bids), asks: levels(asks) })
        }
        PluginEvent::Market(venue::MarketEvent::Trade { instrument, ts_ms, price, size, taker_side }) => {
            wit::Event::Trade(wit::Trade { instrument, ts: ts_ms, price, size, taker_side: taker_side.into() })
        }
        PluginEvent::Candle { instrument, ts_ms, ohlcv, confirmed } => wit::Event::Candle(wit::Candle {
            instrument,
            ts: ts_ms,
            open: ohlcv[0],
            high: ohlcv[1],
            low: ohlcv[2],
            close: ohlcv[3],
            volume: ohlcv[4],
            confirmed,
        }),
        PluginEvent::Order(r) => wit::Event::Order(order(&r, false)),
        PluginEvent::Fill(fl) => wit::Event::Fill(wit::Fill {
            client_order_id: fl.client_id,
            instrument: fl.instrument,
            side: fl.side.into(),
            price: f(fl.price),
            size: f(fl.size),
            fee: f(fl.fee),
            fee_currency: fl.fee_currency,
            liquidity: match fl.liquidity {
                venue::Liquidity::Maker => wit::Liquidity::Maker,
                venue::Liquidity::Taker => wit::Liquidity::Taker,
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
