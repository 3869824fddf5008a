//! The venues the host trades on, each an implementation of [`tradebox_core::Venue`] (the
//! contract and its types live in the vocabulary crate): OKX over REST and WebSocket ([`okx`]),
//! and the in-process simulated exchange (`tradebox_sim::venue`, a crate of its own).

pub mod okx;
