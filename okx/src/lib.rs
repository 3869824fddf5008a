//! OKX API v5 wire protocol: what the host needs to talk to OKX (or to the project's own
//! OKX-compatible simulator) and nothing about plugins.
//!
//! - [`sign`]: request and WebSocket-login signatures, timestamps, server-side verification.
//! - [`model`]: typed REST messages with exact decimals.
//! - [`clock`]: the offset to OKX's clock.
//! - [`rest`]: the REST client; [`error`]: what can go wrong.
//! - [`limits`]: OKX's rate limits as sliding windows per endpoint and instrument, the
//!   sub-account order cap, per-plugin shares.
//! - [`credentials`]: API keys from the environment or an owner-only file, never printable.
//! - [`ws`]: WebSocket frames, order books with sequence checks, and a reconnecting client.
//! - [`pin`], [`tls`]: optional certificate pinning (SPKI SHA-256) of the REST and WebSocket hosts.

pub mod clock;
pub mod credentials;
pub mod error;
pub mod limits;
pub mod model;
pub mod pin;
pub mod rest;
pub mod sign;
pub mod tls;
pub mod ws;

pub use clock::ClockSync;
pub use credentials::{Credentials, CredentialsError};
pub use error::OkxError;
pub use pin::{Pin, PinError, Pins};
pub use rest::{CallOpts, Caller, Observer, OrderRef, RestClient, RestConfig};
pub use sign::Signer;
pub use tls::{PinMismatch, TlsSettings};
