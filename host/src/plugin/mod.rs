//! Plugins: wasm components run in a sandbox with nothing but the `tradebox:strategy` imports.
//!
//! - [`runtime`]: the wasmtime engine, the compiled-component cache, the import check;
//! - [`instance`]: one store with limits armed per call and traps made into [`Fault`]s;
//! - [`host_api`]: the imports a plugin can call, each checked against its grants;
//! - [`supervisor`]: the actor thread per plugin and its failure policy.

pub mod bindings;
pub mod host_api;
pub mod instance;
pub mod limits;
pub mod runtime;
pub mod supervisor;

pub use instance::Fault;
pub use limits::{FailurePolicy, Limits};
pub use runtime::{LoadError, Mode, Runtime};
pub use supervisor::{
    PluginHandle, PluginSpec, ReloadError, Reloader, RunState, StartError, Status, Swap, start, start_in,
};
