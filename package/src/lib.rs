//! A shareable tradebox strategy is one `.wasm` file: a WebAssembly component whose core module may
//! carry a `tradebox-manifest` custom section, optionally signed with ed25519.
//!
//! Keeping everything in one file means there is nothing to unpack and nothing that can get
//! separated from the code it describes: custom sections are ignored by every WebAssembly runtime,
//! so the file stays loadable by tools that know nothing about tradebox.
//!
//! - [`sections`]: find, list and replace custom sections without understanding the rest of the file.
//! - [`signature`]: sign a file in place, verify it, and manage the key files.
//! - `component` (feature `component`): the core module cargo builds, turned into the component
//!   a host loads.
//! - [`PackageError`]: everything that can go wrong, worded for the operator.

#[cfg(feature = "component")]
pub mod component;
mod error;
pub mod sections;
pub mod signature;

pub use error::PackageError;
