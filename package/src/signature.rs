//! Ed25519 signatures carried inside the strategy file itself.
//!
//! # Format
//!
//! The signature is a top-level custom section named `tradebox-signature` that must be the LAST
//! section of the file. Its payload is exactly 97 bytes:
//!
//! | bytes   | content                                   |
//! |---------|-------------------------------------------|
//! | 0       | format version, currently `1`             |
//! | 1..33   | the signer's ed25519 public key (raw)     |
//! | 33..97  | the ed25519 signature (raw, `R ‖ S`)      |
//!
//! The signed message is every byte of the file except the signature section (id, size, name and
//! payload): since the section is last, that is simply the file up to where the section starts.
//! So any change to any other byte, in any section, nested or not, makes the signature fail, and
//! the message is a plain file anyone can check with standard tools (e.g. OpenSSL's
//! `pkeyutl -verify -rawin` on the file truncated before the section). Plain Ed25519 (RFC 8032)
//! is used, verified in strict mode so that malleable signatures and weak keys are refused.
//!
//! Why these choices: one file instead of a file plus a `.sig` keeps the signature from getting
//! lost; requiring the section to be last means the signed bytes are a prefix of the file, with no
//! splicing ambiguity; the section header must be encoded minimally, so that no byte of a signed file
//! can change without [`verify`] refusing it; the public key travels with the signature so the
//! host can say *who* signed, and then decide whether it trusts that key.

mod keys;

pub use ed25519_dalek::SigningKey;
use ed25519_dalek::{Signature, Signer as _};
pub use keys::{PublicKey, generate, public_key, public_key_path, read_public_key, read_signing_key, write_keypair};

use crate::PackageError;
use crate::sections::{self, CustomSection};

/// The custom section that holds the signature.
pub const SECTION_NAME: &str = "tradebox-signature";
/// The payload version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The payload length: version, public key, signature.
pub const PAYLOAD_LEN: usize = 1 + 32 + 64;

/// What [`verify`] concluded. Only `Valid` says the file is unchanged since `signer` signed it;
/// whether `signer` is trusted is the caller's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// The file carries no signature section at all.
    Unsigned,
    /// The file is exactly what `signer` signed.
    Valid {
        /// Whose key made the signature.
        signer: PublicKey,
    },
    /// The file carries a signature that must not be trusted.
    Invalid {
        /// The key the signature section names, if one could be read; NOT proof of anything.
        signer: Option<PublicKey>,
        /// Why it was refused, for the operator.
        reason: String,
    },
}

/// Signs the file so any later change to it is detected, replacing any earlier signature (so
/// re-signing with another key changes the signer). The result is the file with one
/// `tradebox-signature` section at the end.
pub fn sign(bytes: &[u8], key: &SigningKey) -> Result<Vec<u8>, PackageError> {
    let sections = sections::custom_sections(bytes)?;
    if let Some(nested) = sections.iter().find(|s| s.nested && s.name == SECTION_NAME) {
        return Err(PackageError::NestedSignature { offset: nested.range.start });
    }
    let mut out = sections::remove_top_level(bytes, &sections, SECTION_NAME);
    let signature = key.sign(&out);
    let mut payload = Vec::with_capacity(PAYLOAD_LEN);
    payload.push(FORMAT_VERSION);
    payload.extend_from_slice(key.verifying_key().as_bytes());
    payload.extend_from_slice(&signature.to_bytes());
    sections::append_custom_section(&mut out, SECTION_NAME, &payload)?;
    Ok(out)
}

/// Signs a file in place (see [`rewrite_in_place`]).
pub fn sign_file(path: &std::path::Path, key: &SigningKey) -> Result<(), PackageError> {
    rewrite_in_place(path, |bytes| sign(bytes, key))
}

/// The file without its signature: what a tool that changes a signed file must start from
/// (any change invalidates the signature; the author signs the result again).
pub fn unsign(bytes: &[u8]) -> Result<Vec<u8>, PackageError> {
    let sections = sections::custom_sections(bytes)?;
    Ok(sections::remove_top_level(bytes, &sections, SECTION_NAME))
}

/// Replaces a file's bytes with `change` of them. Writes a temporary file beside it and renames
/// it over the original, so a crash leaves either the old or the new file, never half of one;
/// the permissions are kept, and a symlink's target is changed rather than the link replaced.
pub fn rewrite_in_place(
    path: &std::path::Path,
    change: impl FnOnce(&[u8]) -> Result<Vec<u8>, PackageError>,
) -> Result<(), PackageError> {
    let path = std::fs::canonicalize(path).map_err(PackageError::io("find", path))?;
    let bytes = std::fs::read(&path).map_err(PackageError::io("read", &path))?;
    let permissions =
        std::fs::metadata(&path).map_err(PackageError::io("read the permissions of", &path))?.permissions();
    let changed = change(&bytes).map_err(|e| e.in_file(&path))?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(PackageError::io("create a temporary file in", dir))?;
    let tmp_path = tmp.path().to_path_buf();
    std::io::Write::write_all(&mut tmp, &changed).map_err(PackageError::io("write", &tmp_path))?;
    tmp.as_file().sync_all().map_err(PackageError::io("write", &tmp_path))?;
    std::fs::set_permissions(&tmp_path, permissions).map_err(PackageError::io("set the permissions of", &tmp_path))?;
    tmp.persist(&path).map_err(|e| PackageError::io("replace", &path)(e.error))?;
    Ok(())
}

/// Checks the file's signature, so the host can refuse a strategy changed after signing.
///
/// An `Err` means the file could not even be parsed (and so must not be loaded either); a parsed
/// file yields a [`SignatureStatus`].
pub fn verify(bytes: &[u8]) -> Result<SignatureStatus, PackageError> {
    let sections = sections::custom_sections(bytes)?;
    let signatures: Vec<&CustomSection> = sections.iter().filter(|s| s.name == SECTION_NAME).collect();
    let Some(last) = signatures.last() else {
        return Ok(SignatureStatus::Unsigned);
    };
    let payload = bytes.get(last.data_range.clone()).unwrap_or_default();
    let claimed = claimed_signer(payload);
    let invalid = |reason: String| Ok(SignatureStatus::Invalid { signer: claimed, reason });

    if let Some(nested) = signatures.iter().find(|s| s.nested) {
        return invalid(format!(
            "a `{SECTION_NAME}` section is nested inside a module or component (at byte offset {:#x}); only the file itself may be signed",
            nested.range.start
        ));
    }
    if signatures.len() > 1 {
        return invalid(format!(
            "the file has {} `{SECTION_NAME}` sections; a signed file has exactly one",
            signatures.len()
        ));
    }
    if last.range.end != bytes.len() {
        return invalid(format!(
            "the `{SECTION_NAME}` section is not the last section of the file: {} bytes were added after signing",
            bytes.len() - last.range.end
        ));
    }
    let mut canonical = Vec::with_capacity(last.range.len());
    sections::append_custom_section(&mut canonical, SECTION_NAME, payload)?;
    if bytes.get(last.range.clone()) != Some(canonical.as_slice()) {
        return invalid(format!(
            "the `{SECTION_NAME}` section's header is not minimally encoded, so the file was altered"
        ));
    }
    if payload.len() != PAYLOAD_LEN {
        return invalid(format!(
            "the `{SECTION_NAME}` section holds {} bytes; format version {FORMAT_VERSION} holds {PAYLOAD_LEN}",
            payload.len()
        ));
    }
    if payload[0] != FORMAT_VERSION {
        return invalid(format!(
            "the `{SECTION_NAME}` section has format version {}; this build reads version {FORMAT_VERSION}",
            payload[0]
        ));
    }
    let Some(signer) = claimed else {
        return invalid(format!("the `{SECTION_NAME}` section names an invalid ed25519 public key"));
    };
    let Ok(signature) = <[u8; 64]>::try_from(&payload[33..]).map(|b| Signature::from_bytes(&b)) else {
        return invalid(format!("the `{SECTION_NAME}` section's signature is not 64 bytes"));
    };
    let message = bytes.get(..last.range.start).unwrap_or_default();
    if signer.verifying_key().verify_strict(message, &signature).is_err() {
        return invalid(format!(
            "the signature does not match the file's contents: the file was changed after {signer} signed it, or the signature is corrupt"
        ));
    }
    Ok(SignatureStatus::Valid { signer })
}

/// The public key a payload names, if the payload is well formed; used to tell the operator who
/// claims to have signed even when the signature is refused.
fn claimed_signer(payload: &[u8]) -> Option<PublicKey> {
    if payload.len() != PAYLOAD_LEN || payload[0] != FORMAT_VERSION {
        return None;
    }
    let key: &[u8; 32] = payload[1..33].try_into().ok()?;
    PublicKey::from_bytes(key).ok()
}

#[cfg(test)]
mod tests;
