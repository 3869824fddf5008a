//! tradebox: a native trading host that owns exchange credentials, time, rate and risk limits,
//! and runs user strategies as sandboxed WebAssembly components.
//!
//! See `ARCHITECTURE.md` at the repository root for the map of modules and the path of an
//! order from plugin to venue.

pub mod admin;
pub mod audit;
pub mod backtest;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod download;
pub mod engine;
pub mod logging;
pub mod plugin;
pub mod process;
pub mod record;
pub mod risk;
pub mod running;
pub mod venue;
