//! Guest SDK for tradebox strategy plugins.
//!
//! A strategy is a plain Rust struct that implements [`Strategy`]; [`export_strategy!`] turns
//! it into a WebAssembly component that the tradebox host can load. The strategy never holds
//! a key and never touches the network: it sees events and asks the host for trades through
//! the functions in [`orders`], [`views`], [`feeds`], [`timers`] and [`log`].
//!
//! # A complete strategy
//!
//! ```no_run
//! use tradebox_sdk::prelude::*;
//!
//! /// Buys when the price drops 1% below its 20-tick average, sells when it is back above.
//! struct MeanRevert {
//!     instrument: InstrumentId,
//!     average: Sma,
//!     size: f64,
//! }
//!
//! impl Strategy for MeanRevert {
//!     fn init(config: &str) -> Result<Self, String> {
//!         let symbol = if config.contains("ETH") { "ETH-USDT" } else { "BTC-USDT" };
//!         let instrument = views::find_instrument(symbol).ok_or("instrument not granted")?;
//!         feeds::subscribe(instrument.id, Channel::Ticker).map_err(|d| d.message)?;
//!         Ok(MeanRevert { instrument: instrument.id, average: Sma::new(20), size: instrument.min_size })
//!     }
//!
//!     fn on_ticker(&mut self, ticker: &Ticker) {
//!         let mid = (ticker.bid + ticker.ask) / 2.0;
//!         let Some(avg) = self.average.update(mid) else { return };
//!         let held = position_size(self.instrument);
//!         if mid < avg * 0.99 && held <= 0.0 {
//!             let _ = orders::place(OrderRequest::limit(self.instrument, Side::Buy, ticker.bid, self.size));
//!         } else if mid > avg && held > 0.0 {
//!             let _ = orders::place(OrderRequest::market(self.instrument, Side::Sell, held));
//!         }
//!     }
//!
//!     fn on_fill(&mut self, fill: &Fill) {
//!         info!("filled {} at {}", fill.size, fill.price);
//!     }
//! }
//!
//! export_strategy!(MeanRevert);
//! # fn main() {}
//! ```
//!
//! Build it for `wasm32-unknown-unknown` and turn the module into a component:
//! `tradebox plugin build DIR` does both for a crate anywhere on disk (`cargo xtask plugins`
//! for the crates in the project's `plugins/`). The result imports exactly the
//! `tradebox:strategy` world and nothing else.
//!
//! # Sharing it
//!
//! A host grants a plugin the intersection of what its operator allows and what the plugin's
//! manifest asks for; a plugin without a manifest is granted nothing. Write what the strategy
//! needs in `tradebox.toml` beside `Cargo.toml` (see [`embed_manifest!`] and the
//! `tradebox-manifest` crate), call `tradebox_manifest::build::embed()` from `build.rs`, and put
//! `tradebox_sdk::embed_manifest!();` next to `export_strategy!`.

#![warn(missing_docs)]

pub mod indicators;
mod strategy;

pub use indicators::{Ema, Sma};
pub use strategy::{Strategy, dispatch, dispatch_tickers};

/// Bindings generated from the WIT contract in `wit/`.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "strategy",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_strategy_world",
        default_bindings_module: "tradebox_sdk::bindings",
    });
}

pub use bindings::tradebox::strategy::types::{
    Balance, Book, Candle, Channel, Connectivity, Denial, Event, Fill, Instrument, InstrumentId, InstrumentKind, Level,
    Liquidity, OrderKind, OrderState, OrderUpdate, Position, RiskDenial, Scope, Side, Ticker, TickerColumns,
    TimerFired, Trade, TradingState, TradingStateChange,
};

/// Order intents: each returns at once with the host-minted client order id or a denial.
pub mod orders {
    pub use crate::bindings::tradebox::strategy::orders::{OrderRequest, amend, cancel, cancel_all, place};
    use crate::{InstrumentId, OrderKind, Side};

    impl OrderRequest {
        /// A limit order resting at `price`.
        pub fn limit(instrument: InstrumentId, side: Side, price: f64, size: f64) -> Self {
            Self::with_kind(instrument, side, OrderKind::Limit, Some(price), size)
        }

        /// A post-only limit order: cancelled by the venue instead of taking liquidity.
        pub fn post_only(instrument: InstrumentId, side: Side, price: f64, size: f64) -> Self {
            Self::with_kind(instrument, side, OrderKind::PostOnly, Some(price), size)
        }

        /// A market order.
        pub fn market(instrument: InstrumentId, side: Side, size: f64) -> Self {
            Self::with_kind(instrument, side, OrderKind::Market, None, size)
        }

        /// Any order kind; `price` is ignored for market orders.
        pub fn with_kind(instrument: InstrumentId, side: Side, kind: OrderKind, price: Option<f64>, size: f64) -> Self {
            Self { instrument, side, kind, price, size, reduce_only: false }
        }

        /// Only reduce the position.
        pub fn reduce_only(mut self) -> Self {
            self.reduce_only = true;
            self
        }
    }
}

/// Read-only views of host state.
pub mod views {
    pub use crate::bindings::tradebox::strategy::views::{
        Quote, balances, best_bid_ask, find_instrument, get_instrument, open_orders, positions,
    };
}

/// Market data subscriptions.
pub mod feeds {
    pub use crate::bindings::tradebox::strategy::feeds::{subscribe, unsubscribe};
}

/// Timers that fire as [`crate::Strategy::on_timer`].
pub mod timers {
    pub use crate::bindings::tradebox::strategy::timers::{cancel_timer, set_interval, set_timer};
}

/// Host logging and host time.
pub mod log {
    pub use crate::bindings::tradebox::strategy::host::{LogLevel, log, now};
}

/// The plugin's signed position in `instrument` (0 when flat), from the host's view.
pub fn position_size(instrument: InstrumentId) -> f64 {
    views::positions().iter().find(|p| p.instrument == instrument).map_or(0.0, |p| p.size)
}

/// The mid price of `instrument`, when the host has a two-sided quote.
pub fn mid_price(instrument: InstrumentId) -> Option<f64> {
    views::best_bid_ask(instrument).map(|q| (q.bid + q.ask) / 2.0)
}

/// Logs at info level through the host, `format!` style.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::LogLevel::Info, &format!($($arg)*)) };
}

/// Logs at warn level through the host, `format!` style.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::LogLevel::Warn, &format!($($arg)*)) };
}

/// Logs at debug level through the host, `format!` style.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::LogLevel::Debug, &format!($($arg)*)) };
}

/// Everything a strategy usually needs, in one `use`.
pub mod prelude {
    pub use crate::orders::{self, OrderRequest};
    pub use crate::{
        Balance, Book, Candle, Channel, Ema, Event, Fill, Instrument, InstrumentId, OrderKind, OrderState, OrderUpdate,
        Position, RiskDenial, Side, Sma, Strategy, Ticker, TimerFired, Trade, TradingState, TradingStateChange, debug,
        export_strategy, feeds, info, mid_price, position_size, timers, views, warn,
    };
}

#[doc(hidden)]
pub mod __private {
    /// Forwards panic messages to the host log, where the operator sees them; without this a
    /// guest panic is only an anonymous `unreachable` trap.
    pub fn install_panic_hook() {
        std::panic::set_hook(Box::new(|info| {
            crate::log::log(crate::log::LogLevel::Error, &format!("plugin panicked: {info}"));
        }));
    }
}

/// Puts the plugin's manifest (name, version, requested permissions, config schema) into the
/// component, so an operator can inspect and grant it before running it.
///
/// The manifest is written by the crate's build script from `Cargo.toml` and `tradebox.toml`:
///
/// ```toml
/// # Cargo.toml
/// [build-dependencies]
/// tradebox-manifest = "0.1"
/// ```
/// ```ignore
/// // build.rs
/// fn main() { tradebox_manifest::build::embed(); }
/// // lib.rs
/// tradebox_sdk::embed_manifest!();
/// ```
///
/// A plugin without a manifest still loads, with the narrowest permissions: none.
#[macro_export]
macro_rules! embed_manifest {
    () => {
        // A custom section, like the one wit-bindgen writes for the component type: the
        // linker keeps it and the host finds it without running any of the plugin's code.
        #[allow(unsafe_code)]
        #[unsafe(link_section = "tradebox-manifest")]
        #[used]
        static __TRADEBOX_MANIFEST: [u8; include_bytes!(concat!(env!("OUT_DIR"), "/tradebox-manifest.json")).len()] =
            *include_bytes!(concat!(env!("OUT_DIR"), "/tradebox-manifest.json"));
    };
}

/// Exports a [`Strategy`] type as the plugin's component exports.
///
/// The type is created by [`Strategy::init`] when the host calls `init`, and lives until the
/// instance is dropped. Use it once per plugin crate.
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty) => {
        mod __tradebox_export {
            use super::*;
            use std::cell::RefCell;

            thread_local! {
                static STATE: RefCell<Option<$strategy>> = const { RefCell::new(None) };
            }

            pub struct Export;

            impl $crate::bindings::Guest for Export {
                fn init(config: String) -> Result<(), String> {
                    $crate::__private::install_panic_hook();
                    let strategy = <$strategy as $crate::Strategy>::init(&config)?;
                    STATE.with_borrow_mut(|s| *s = Some(strategy));
                    Ok(())
                }

                fn on_events(events: Vec<$crate::Event>) {
                    STATE.with_borrow_mut(|s| {
                        if let Some(s) = s {
                            $crate::dispatch(s, events);
                        }
                    });
                }

                fn on_tickers(tickers: $crate::TickerColumns) {
                    STATE.with_borrow_mut(|s| {
                        if let Some(s) = s {
                            $crate::dispatch_tickers(s, tickers);
                        }
                    });
                }

                fn snapshot() -> Vec<u8> {
                    STATE.with_borrow(|s| {
                        s.as_ref().map(<$strategy as $crate::Strategy>::snapshot).unwrap_or_default()
                    })
                }

                fn restore(state: Vec<u8>) -> Result<(), String> {
                    STATE.with_borrow_mut(|s| match s {
                        Some(s) => <$strategy as $crate::Strategy>::restore(s, &state),
                        None => Err("restore called before init".to_string()),
                    })
                }
            }

            $crate::bindings::__export_strategy_world!(Export with_types_in $crate::bindings);
        }
    };
}
