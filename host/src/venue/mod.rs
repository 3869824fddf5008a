//! The venues the host trades on, each an implementation of [`tradebox_core::Venue`] (the
//! contract and its types live in the vocabulary crate): OKX over REST and WebSocket ([`okx`]),
//! paper trading on OKX's live public feed with fills simulated in-process ([`paper`], whose
//! exchange a backtest trades on too), and the in-process simulated exchange
//! (`tradebox_sim::venue`, a crate of its own).

pub mod okx;
pub mod paper;
