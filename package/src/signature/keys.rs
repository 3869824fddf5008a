//! Key files, in the standard forms OpenSSL and other tools read: the secret key as PKCS#8 PEM
//! (`-----BEGIN PRIVATE KEY-----`), the public key as SubjectPublicKeyInfo PEM
//! (`-----BEGIN PUBLIC KEY-----`) in a file with `.pub` appended to the secret key's name.
//!
//! A public key is also written as one line, `ed25519:<standard base64 of the 32 raw bytes>`, short
//! enough for trust lists, logs and command lines.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _, KeypairBytes,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::{Zeroize as _, Zeroizing};

use crate::PackageError;

/// Key files are a few hundred bytes; anything much larger is the wrong file, and reading it whole
/// would be pointless.
const MAX_KEY_FILE: u64 = 16 * 1024;

/// An ed25519 public key: who signed a strategy. Two keys are equal exactly when their bytes are,
/// so it can key a trust list.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// What the one-line text form starts with, naming the algorithm so other kinds can follow.
    pub const TEXT_PREFIX: &str = "ed25519:";

    /// Accepts raw key bytes only if they are a usable key, so an invalid or weak (small-order)
    /// key can never be trusted by mistake.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PackageError> {
        let parse_err = |reason: &str| PackageError::ParsePublicKey { reason: reason.to_owned() };
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| parse_err("not a point on the ed25519 curve"))?;
        if key.is_weak() {
            return Err(parse_err("a weak (small-order) key, which cannot prove who signed"));
        }
        Ok(PublicKey(key))
    }

    /// The 32 raw bytes, for callers that store or compare keys in binary form.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The underlying key, for callers that verify other messages with it.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::TEXT_PREFIX, STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = PackageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse_err = |reason: String| PackageError::ParsePublicKey { reason };
        let b64 = s
            .trim()
            .strip_prefix(Self::TEXT_PREFIX)
            .ok_or_else(|| parse_err(format!("it does not start with `{}`", Self::TEXT_PREFIX)))?;
        let raw = STANDARD.decode(b64).map_err(|e| parse_err(format!("invalid base64: {e}")))?;
        let raw: [u8; 32] =
            raw.try_into().map_err(|raw: Vec<u8>| parse_err(format!("it holds {} bytes, not 32", raw.len())))?;
        Self::from_bytes(&raw)
    }
}

/// Makes a new secret key from the operating system's randomness, for `tradebox plugin keygen`.
pub fn generate() -> Result<SigningKey, PackageError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(PackageError::Random)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public half of a secret key, to show or publish who will appear as the signer.
pub fn public_key(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key())
}

/// Where [`write_keypair`] puts the public key for a secret key at `secret`: the same name with
/// `.pub` appended, as ssh-keygen does, so the two are found together.
pub fn public_key_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Generates a key pair and writes the secret key to `prefix` (owner-only, created so before any
/// byte is written) and the public key to `prefix.pub`. Never overwrites either file, because a
/// lost secret key cannot be recovered and files signed with it could no longer be re-signed.
pub fn write_keypair(prefix: &Path) -> Result<PublicKey, PackageError> {
    let public_path = public_key_path(prefix);
    if std::fs::symlink_metadata(&public_path).is_ok() {
        return Err(PackageError::KeyExists { path: public_path });
    }
    let key = generate()?;
    let encode_err = |e: &dyn fmt::Display| PackageError::KeyEncoding { reason: e.to_string() };
    // PKCS#8 v1 (no embedded public key): OpenSSL 3.0 refuses the v2 form for ed25519.
    let mut keypair = KeypairBytes { secret_key: key.to_bytes(), public_key: None };
    let secret_pem = keypair.to_pkcs8_pem(LineEnding::LF).map_err(|e| encode_err(&e));
    keypair.secret_key.zeroize();
    let secret_pem = secret_pem?;
    let public_pem = key.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|e| encode_err(&e))?;

    write_new(prefix, secret_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public_path, public_pem.as_bytes(), 0o644) {
        // Don't leave a secret key without its public half; nothing has used it yet.
        let _ = std::fs::remove_file(prefix);
        return Err(e);
    }
    Ok(public_key(&key))
}

/// Reads a secret key written by [`write_keypair`] (or `openssl genpkey -algorithm ed25519`),
/// refusing one that group or others can read, because such a key may already be copied.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, PackageError> {
    let file = File::open(path).map_err(PackageError::io("open", path))?;
    check_owner_only(&file, path)?;
    let text = read_small(file, path)?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        let reason = if text.contains("PUBLIC KEY") {
            "it holds a public key; pass the secret key file (the name without `.pub`)".to_owned()
        } else {
            e.to_string()
        };
        PackageError::BadSecretKey { path: path.to_path_buf(), reason }
    })
}

/// Reads a public key from a PEM `.pub` file or a file holding the `ed25519:...` line, so keys can
/// come from `keygen`, from OpenSSL, or be pasted from a message.
pub fn read_public_key(path: &Path) -> Result<PublicKey, PackageError> {
    let file = File::open(path).map_err(PackageError::io("open", path))?;
    let text = read_small(file, path)?;
    let bad = |reason: String| PackageError::BadPublicKey { path: path.to_path_buf(), reason };
    let text = text.trim();
    if text.contains("PRIVATE KEY") {
        return Err(bad("it holds a SECRET key; use the `.pub` file beside it and keep this one private".to_owned()));
    }
    if text.starts_with("-----BEGIN") {
        let key = VerifyingKey::from_public_key_pem(text).map_err(|e| bad(e.to_string()))?;
        return PublicKey::from_bytes(key.as_bytes()).map_err(|e| bad(e.to_string()));
    }
    text.parse().map_err(|e| match e {
        PackageError::ParsePublicKey { reason } => bad(reason),
        other => other,
    })
}

/// Creates `path` (failing if it exists) with `mode` set at creation, so a secret is never
/// readable by others even for an instant, and removes it again if writing fails.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), PackageError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => PackageError::KeyExists { path: path.to_path_buf() },
        _ => PackageError::io("create", path)(e),
    })?;
    if let Err(e) = file.write_all(contents).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(PackageError::io("write", path)(e));
    }
    Ok(())
}

/// Reads a key file into memory that is wiped afterwards, refusing files too large to be a key.
fn read_small(file: File, path: &Path) -> Result<Zeroizing<String>, PackageError> {
    // Reserve up front so the key is never left behind in a buffer freed by growing.
    let mut text = Zeroizing::new(String::with_capacity(MAX_KEY_FILE as usize + 1));
    file.take(MAX_KEY_FILE + 1).read_to_string(&mut text).map_err(PackageError::io("read", path))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(PackageError::Io {
            action: "read",
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("larger than {MAX_KEY_FILE} bytes; this is not a key file")),
        });
    }
    Ok(text)
}

#[cfg(unix)]
fn check_owner_only(file: &File, path: &Path) -> Result<(), PackageError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = file.metadata().map_err(PackageError::io("read the permissions of", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PackageError::KeyTooOpen { path: path.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_file: &File, _path: &Path) -> Result<(), PackageError> {
    Ok(())
}
