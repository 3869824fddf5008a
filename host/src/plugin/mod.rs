//! Plugins: wasm components run in a sandbox with nothing but the `tradebox:strategy` imports.
//!
//! - [`runtime`]: the wasmtime engine, the compiled-component cache, the import check;
//! - [`admission`]: the manifest's request against the operator's grant, before any code runs;
//! - [`instance`]: one store with limits armed per call and traps made into [`Fault`]s;
//! - [`host_api`]: the imports a plugin can call, each checked against its grants;
//! - [`supervisor`]: the actor thread per plugin and its failure policy;
//! - [`trust`]: a plugin file's signature against the operator's trusted publishers;
//! - [`inspect`]: the report an operator reads before granting a plugin file;
//! - [`build`]: a strategy project anywhere on disk, in Rust, Python or JavaScript, built into a
//!   plugin file (`tradebox plugin build`);
//! - [`template`]: a new strategy project in one of those languages (`tradebox plugin new`);
//! - [`bindings`]: the WIT types and the one conversion between them and the host's;
//! - [`limits`]: what a plugin may spend (memory, CPU share) and its failure policy;
//! - [`priority`]: the scheduling class of its guest code and the CPU clock it is charged by;
//! - [`wasi`]: the locked-down WASI a Python or JavaScript runtime needs (no files, environment,
//!   sockets; stdout to the log; the host's clocks).

pub mod admission;
pub mod bindings;
pub mod build;
pub mod host_api;
pub mod inspect;
pub mod instance;
pub mod limits;
pub mod priority;
pub mod runtime;
pub mod supervisor;
pub mod template;
pub mod trust;
pub mod wasi;

pub use instance::Fault;
pub use limits::{FailurePolicy, Limits};
pub use runtime::{LoadError, Mode, Runtime};
pub use supervisor::{
    PluginHandle, PluginSpec, ReloadError, Reloader, RunState, StartError, Status, Swap, start, start_in,
};
