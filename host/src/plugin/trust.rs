//! Who a plugin file comes from: its ed25519 signature checked against the publisher keys the
//! operator trusts (`[signing]` in the config).
//!
//! A signature covers every other byte of the file, so a file changed after signing (one byte,
//! in any section) is refused whatever the policy. Whether an unsigned file, or one signed by a
//! key nobody listed, may load is the policy's call: by default a signature from a trusted key
//! is required on a live account and optional on the simulator and OKX demo trading.

use serde::Deserialize;
use std::path::Path;
use tradebox_package::signature::{self, PublicKey, SignatureStatus};

/// When a trusted signature is required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    /// With real money only (OKX without `demo = true`).
    #[default]
    Live,
    /// Always.
    Always,
    /// Never (a tampered file is still refused).
    Never,
}

/// `[signing]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// When a trusted signature is required.
    #[serde(default)]
    pub require: Require,
    /// Trusted publisher keys: `ed25519:BASE64`, or the path of a `.pub` file (relative to the
    /// config file).
    #[serde(default)]
    pub trusted: Vec<String>,
}

/// Why a file's signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Signed, but not by these bytes: changed after signing, or a damaged signature.
    #[error("the plugin's signature is invalid: {reason}")]
    Invalid {
        /// What did not check out.
        reason: String,
    },
    /// No signature where one is required.
    #[error("the plugin is not signed, and this host requires a signature from a trusted publisher")]
    Unsigned,
    /// A valid signature by a key the operator does not trust.
    #[error("the plugin is signed by {signer}, which is not among this host's trusted publishers ([signing] trusted)")]
    Untrusted {
        /// The signer's key (boxed: an ed25519 key is large, and errors travel by value).
        signer: Box<PublicKey>,
    },
    /// The file's sections could not be read.
    #[error("not a valid wasm component: {0}")]
    Malformed(String),
}

impl From<TrustError> for super::ReloadError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::Malformed(m) => Self::Load(super::LoadError::Invalid(m)),
            other => Self::Trust(other),
        }
    }
}

impl From<TrustError> for super::StartError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::Malformed(m) => Self::Load(super::LoadError::Invalid(m)),
            other => Self::Trust(other),
        }
    }
}

/// What the host knows about a file's origin once it is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// No signature (allowed by the policy).
    Unsigned,
    /// A valid signature by a trusted publisher.
    Trusted(PublicKey),
    /// A valid signature by a key nobody listed (allowed by the policy).
    Untrusted(PublicKey),
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsigned => f.write_str("unsigned"),
            Self::Trusted(key) => write!(f, "{key} (trusted)"),
            Self::Untrusted(key) => write!(f, "{key} (not trusted)"),
        }
    }
}

/// The policy in force.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    required: bool,
    trusted: Vec<PublicKey>,
}

impl Trust {
    /// Signatures checked when present, required only if `required`.
    pub fn new(required: bool, trusted: Vec<PublicKey>) -> Self {
        Self { required, trusted }
    }

    /// From the config: `live` says whether the venue trades real money.
    pub fn from_config(config: &SigningConfig, live: bool, base_dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let mut trusted = Vec::new();
        for entry in &config.trusted {
            let key = if entry.starts_with(PublicKey::TEXT_PREFIX) {
                entry.parse::<PublicKey>().with_context(|| format!("[signing] trusted: {entry:?}"))?
            } else {
                signature::read_public_key(&base_dir.join(entry))
                    .with_context(|| format!("[signing] trusted: {entry}"))?
            };
            trusted.push(key);
        }
        let required = match config.require {
            Require::Always => true,
            Require::Never => false,
            Require::Live => live,
        };
        if required && trusted.is_empty() {
            anyhow::bail!("[signing] requires signed plugins here, but lists no trusted publisher keys");
        }
        Ok(Self { required, trusted })
    }

    /// True when every plugin must carry a trusted signature.
    pub fn required(&self) -> bool {
        self.required
    }

    /// Accepts or refuses a plugin file.
    pub fn check(&self, bytes: &[u8]) -> Result<Signer, TrustError> {
        match signature::verify(bytes).map_err(|e| TrustError::Malformed(e.to_string()))? {
            SignatureStatus::Invalid { reason, .. } => Err(TrustError::Invalid { reason }),
            SignatureStatus::Unsigned if self.required => Err(TrustError::Unsigned),
            SignatureStatus::Unsigned => Ok(Signer::Unsigned),
            SignatureStatus::Valid { signer } if self.trusted.contains(&signer) => Ok(Signer::Trusted(signer)),
            SignatureStatus::Valid { signer } if self.required => {
                Err(TrustError::Untrusted { signer: Box::new(signer) })
            }
            SignatureStatus::Valid { signer } => Ok(Signer::Untrusted(signer)),
        }
    }
}
