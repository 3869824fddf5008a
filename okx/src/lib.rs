//! OKX API v5 wire protocol: what the host needs to talk to OKX (or to the project's own
//! OKX-compatible simulator) and nothing about plugins.
//!
//! - [`sign`]: request and WebSocket-login signatures, timestamps, server-side verification.
//! - [`model`]: typed REST messages with exact decimals.
//! - [`credentials`]: API keys from the environment or an owner-only file, never printable.

pub mod credentials;
pub mod model;
pub mod sign;

pub use credentials::{Credentials, CredentialsError};
pub use sign::Signer;
