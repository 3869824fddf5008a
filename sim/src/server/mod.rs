//! `tradebox sim`: an OKX v5-compatible exchange on loopback, built on the in-process simulated
//! venue ([`crate::venue`]), so the host's real OKX path (signing, clock, rate limits, order
//! handling) runs in the demo and in tests with no internet and no account.
//!
//! Named `server` because that is what it adds to the venue: OKX's REST and WebSocket APIs
//! served over HTTP. Everything only the server needs (authentication, OKX's order checks and
//! records, the pushes, scripted faults) sits under it, so the venue stays a plain [`Venue`]
//! that the host can hold without any of it.
//!
//! [`Venue`]: tradebox_core::Venue
//!
//! - [`exchange`]: the account as OKX reports it, OKX's order checks, the market's history
//!   (candles of every OKX bar, public trades) and the account's (finished orders, fills,
//!   bills); every timestamp it and the endpoints write reads its venue's clock;
//! - [`auth`]: `OK-ACCESS-*` checks in OKX's order with OKX's codes;
//! - [`rest`]: routing, envelopes, rate limits (50011), order operations, and the routes
//!   beside trading (market history, order/fill history, bills, fee rates, funding account);
//! - [`ws`], [`channel`] and [`feed`]: the WebSocket endpoints, the channels each carries and
//!   what they push; `ticker`: the ticker record REST and WebSocket share;
//! - [`faults`]: scripted trouble (timeouts, 5xx, 429 storms, garbage, clock skew, dropped
//!   sockets, truncated, duplicated or reordered frames, book gaps, the 64008 notice, refused
//!   private subscriptions).
//!
//! The configuration (TOML) names the market, the API keys the simulator accepts and any faults:
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! uid = "44705892343619584"
//! [market]                 # the simulated venue's settings (default: the demo market)
//! seed = 7
//! # [[market.instruments]] ... replay = "candles.json"   # an OKX market/candles or trades body
//! [[key]]
//! api_key = "sim-key-1"
//! secret = "sim-secret-1"
//! passphrase = "sim-pass"
//! perm = "read_only,trade"  # add ",withdraw" to see the host refuse the key
//! demo = true               # needs x-simulated-trading: 1
//! acct_lv = 2               # OKX's account mode: 1 spot, 2 futures, 3 multi-currency, 4 portfolio
//! pos_mode = "net_mode"     # or "long_short_mode" (swap orders name their posSide)
//! [faults]                  # also settable at run time: POST /sim/faults (GET shows them)
//! delay_ms = 0               # and bad_sign, bad_login, ws_refuse_subscribe, ... (faults.rs)
//! [funding]                 # the funding account (asset/balances); none unless given
//! USDT = "500"
//! ```
//!
//! Also `ws_books_heartbeat_ms` (60 s: `books` sends its empty heartbeat update when still) and
//! `ws_channel_conn_cap` (30 connections a private channel) at the top level. The keys share
//! one account (one uid, balances, positions): give a key an account kind to see how a client
//! is treated in it; positions opened by keys in different position modes sit side by side.
//! `history-candles` serves what the simulator has traded since it started.
//!
//! Without keys, `tradebox sim` makes one and prints it. `GET /sim/stats` counts requests,
//! authentication failures, 50011 answers and orders placed.

pub mod auth;
pub mod channel;
pub mod exchange;
pub mod faults;
pub mod feed;
pub mod rest;
mod ticker;
pub mod ws;

pub use auth::SimKey;
pub use exchange::Exchange;
pub use faults::{FaultState, Faults};

use crate::venue::{SimConfig, SimVenue};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as AxumPath, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tradebox_core::Clock;
use tradebox_okx::limits::{Limiter, LimiterConfig};

/// The simulator's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimServerConfig {
    /// Where to listen; loopback only unless the operator says otherwise.
    pub listen: SocketAddr,
    /// The account's `uid`.
    pub uid: String,
    /// The market and the account's opening balances.
    pub market: SimConfig,
    /// API keys accepted.
    #[serde(rename = "key")]
    pub keys: Vec<SimKey>,
    /// Faults in force from the start.
    pub faults: Faults,
    /// Step the synthetic market on a timer (off: tests step it by hand).
    pub run_market: bool,
    /// Close a WebSocket connection that sent nothing for this long, ms (OKX: 30 s).
    pub ws_idle_ms: u64,
    /// Send the book keep-alive after a book has not changed for this long, ms (OKX: about
    /// 60 s; tests go lower).
    pub ws_books_heartbeat_ms: u64,
    /// WebSocket connections allowed per capped private channel (orders, account, positions)
    /// per account (OKX: 30; tests go lower).
    pub ws_channel_conn_cap: usize,
    /// Enforce OKX's rate limits (off only to measure the simulator's own throughput).
    pub rate_limits: bool,
    /// The shortest `cancel-all-after` timeout accepted, s (OKX: 10; tests go lower).
    pub dead_man_min_s: u32,
    /// The funding account's balances, which `asset/balances` reports (none unless given:
    /// the simulated account trades from its trading account alone).
    pub funding: std::collections::BTreeMap<String, rust_decimal::Decimal>,
}

impl Default for SimServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            uid: "44705892343619584".into(),
            market: SimConfig::demo(),
            keys: Vec::new(),
            faults: Faults::default(),
            run_market: true,
            ws_idle_ms: ws::IDLE.as_millis() as u64,
            ws_books_heartbeat_ms: ws::BOOKS_HEARTBEAT.as_millis() as u64,
            ws_channel_conn_cap: ws::CONN_CAP,
            rate_limits: true,
            dead_man_min_s: 10,
            funding: std::collections::BTreeMap::new(),
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimServerError {
    /// The market settings are invalid.
    #[error(transparent)]
    Market(#[from] crate::venue::SimError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A key is unusable.
    #[error("simulator key {0:?}: api_key, secret and passphrase must all be non-empty")]
    Key(String),
    /// A key names an account mode OKX does not have.
    #[error(
        "simulator key {0:?}: acct_lv must be 1 (spot), 2 (futures), 3 (multi-currency margin) or 4 (portfolio margin)"
    )]
    AccountMode(String),
}

/// A running simulator.
pub struct SimServer {
    addr: SocketAddr,
    exchange: Arc<Exchange>,
    faults: Arc<FaultState>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimServer {
    /// Starts the market, the housekeeping and the HTTP server on the current tokio runtime, on
    /// the system clock.
    pub async fn start(config: SimServerConfig) -> Result<Self, SimServerError> {
        Self::start_with_clock(config, Clock::system()).await
    }

    /// [`SimServer::start`] with every timestamp it writes (its venue's and its own) read from
    /// `clock`. The market's step timer and the housekeeping still run on tokio's timers.
    pub async fn start_with_clock(config: SimServerConfig, clock: Clock) -> Result<Self, SimServerError> {
        if let Some(k) =
            config.keys.iter().find(|k| k.api_key.is_empty() || k.secret.is_empty() || k.passphrase.is_empty())
        {
            return Err(SimServerError::Key(k.api_key.clone()));
        }
        if let Some(k) = config.keys.iter().find(|k| k.modes().is_none()) {
            return Err(SimServerError::AccountMode(k.api_key.clone()));
        }
        let venue = SimVenue::with_clock(config.market.clone(), clock)?;
        let exchange = Exchange::new(venue.clone())
            .ok_or_else(|| SimServerError::Key("internal: the venue's event stream was already taken".into()))?;
        exchange.seed().await;
        let faults = Arc::new(FaultState::new(config.faults.clone()));
        let limiter = Limiter::new(LimiterConfig { headroom: 1.0, plugin_share: 1.0, ..LimiterConfig::default() });
        if !config.rate_limits {
            tracing::warn!("sim: OKX's rate limits are off");
        }
        let server = Arc::new(rest::Server {
            exchange: exchange.clone(),
            keys: config.keys.clone(),
            faults: faults.clone(),
            limiter,
            uid: config.uid.clone(),
            ws_idle: Duration::from_millis(config.ws_idle_ms.max(1)),
            rate_limits: config.rate_limits,
            dead_man_min_s: config.dead_man_min_s.max(1),
            funding: config.funding.clone(),
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimServerError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| SimServerError::Bind { addr: config.listen, source })?;
        let ws_server = server.clone();
        let ws_shared = Arc::new(ws::Shared::new(
            Duration::from_millis(config.ws_books_heartbeat_ms.max(1)),
            config.ws_channel_conn_cap,
        ));
        let app = Router::new()
            .route(
                "/ws/v5/{path}",
                axum::routing::get(move |upgrade: WebSocketUpgrade, AxumPath(path): AxumPath<String>| {
                    let (server, shared) = (ws_server.clone(), ws_shared.clone());
                    async move {
                        match channel::Path::parse(&path) {
                            Some(p) => {
                                upgrade.on_upgrade(move |socket| ws::serve(socket, p, server, shared)).into_response()
                            }
                            None => (axum::http::StatusCode::NOT_FOUND, "no such WebSocket endpoint").into_response(),
                        }
                    }
                }),
            )
            .fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                rest::handle(server.clone(), method, uri, headers, body)
            });
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "sim: HTTP server stopped");
            }
        })];
        if config.run_market {
            // Step the market and publish what it did at once (pushes go out with each step).
            let (market, period) = (exchange.clone(), Duration::from_millis(config.market.step_ms.max(1)));
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tick.tick().await;
                    market.venue().step();
                    market.pump();
                }
            }));
        }
        let housekeeping = exchange.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                housekeeping.pump();
                housekeeping.fire_dead_man();
            }
        }));
        tracing::info!(%addr, keys = config.keys.len(), "sim: OKX-compatible REST and WebSocket API listening");
        Ok(Self { addr, exchange, faults, tasks })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL for an OKX client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://ADDR/ws/v5/{public,business,private}`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}/ws/v5/{path}", self.addr)
    }

    /// The exchange behind it (tests inspect and step it).
    pub fn exchange(&self) -> &Arc<Exchange> {
        &self.exchange
    }

    /// Faults and counters.
    pub fn faults(&self) -> &Arc<FaultState> {
        &self.faults
    }

    /// Stops serving (dropping it does the same).
    pub fn shutdown(self) {
        drop(self);
    }
}

#[cfg(test)]
mod rest_more_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod ws_tests;

impl Drop for SimServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
