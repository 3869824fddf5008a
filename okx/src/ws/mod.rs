//! OKX's WebSocket API (okx-v5.md §5): frames as types ([`message`]), order books kept from
//! pushes with sequence and checksum checks ([`book`]), and a client that keeps one endpoint
//! connected ([`client`]), with a bounded queue for a consumer that may fall behind ([`lossy`]);
//! the line format of a recorded feed ([`recorded`]).

pub mod book;
pub mod check;
pub mod client;
pub mod lossy;
pub mod message;
pub mod recorded;

pub use book::{Action, BookError, OrderBook};
pub use client::{ClientConfig, ClientEvent, ConnectGate, Events, Login, WsClient};
pub use message::{Arg, Data, Frame, ParseError, Push, parse};
