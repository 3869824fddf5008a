//! `tradebox backtest`: plugin files, unchanged, on market history in virtual time, through the
//! same gateway, risk checks and order tracking as live.

pub mod cli;
pub mod command;
pub mod funding;
pub mod ledger;
pub mod report;
pub mod results;
pub mod run;
pub mod sweep;

pub use crate::venue::paper::exchange::{Fees, FillModel};
pub use run::{BacktestError, DataFile, Plan, PluginPlan, Progress, run};
