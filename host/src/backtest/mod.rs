//! `tradebox backtest`: plugin files, unchanged, on market history in virtual time, through the
//! same gateway, risk checks and order tracking as live.

pub mod results;
