//! The venues the host trades on, each an implementation of [`tradebox_core::Venue`] (the
//! contract and its types live in the vocabulary crate): OKX over REST and WebSocket ([`okx`]),
//! and the in-process simulated exchange ([`sim`]).

pub mod okx;
pub mod sim;
