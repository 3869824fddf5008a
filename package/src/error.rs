//! One error type for the whole crate, so the host can report any failure with `{err}` and the
//! operator learns which file or section is at fault. No variant ever holds secret key bytes.

use std::path::PathBuf;

/// What can go wrong while reading, changing, signing or verifying a strategy file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// The bytes cannot be parsed as a WebAssembly module or component, so no section can be trusted.
    #[error("not a well-formed WebAssembly file: {message} (at byte offset {offset:#x})")]
    Malformed {
        /// What the parser found wrong.
        message: String,
        /// Where in the file.
        offset: u64,
    },
    /// The file does not even start like WebAssembly (another file given by mistake, or an
    /// empty one); said in words, because the parser's own message dumps the header's bytes.
    #[error("not a WebAssembly file: {reason}")]
    NotWasm {
        /// What the header shows instead.
        reason: &'static str,
    },
    /// A WebAssembly header of a version this parser does not know: no section can be read.
    #[error(
        "a WebAssembly file of an unknown kind (version {version:#x}, layer {layer}): neither a core module (version 1) nor a component (layer 1)"
    )]
    UnknownWasmVersion {
        /// The version field of the header.
        version: u16,
        /// The layer field (0 for core modules, 1 for components).
        layer: u16,
    },
    /// wit-component could not turn the core module into a component.
    #[cfg(feature = "component")]
    #[error("could not turn the core module into a component: {reason}")]
    Componentize {
        /// wit-component's reason, its causes on one line.
        reason: String,
    },
    /// The section would not fit the format's 32-bit size field.
    #[error("custom section `{name}` would hold {len} bytes, more than a WebAssembly section can (4 GiB)")]
    SectionTooLarge {
        /// The section's name.
        name: String,
        /// The bytes it would have held (name and payload).
        len: usize,
    },
    /// A signature section inside a nested module can never verify, so signing such a file is refused.
    #[error(
        "a `tradebox-signature` section is nested inside a module or component (at byte offset {offset:#x}); only the top level of the file may carry one"
    )]
    NestedSignature {
        /// Where that section starts.
        offset: usize,
    },
    /// An operation on a named file failed; wraps the cause with the path for the operator.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong with its contents.
        source: Box<PackageError>,
    },
    /// Reading or writing a file failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "read" or "create".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Key generation never overwrites a key: losing a secret key cannot be undone.
    #[error("refusing to overwrite {path}: it already exists; remove it first or choose another name")]
    KeyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A secret key others can read is no longer secret.
    #[error(
        "secret key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}` so only its owner can read it"
    )]
    KeyTooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a secret key this crate can use. The reason never includes key bytes.
    #[error("{path} is not an ed25519 secret key in PKCS#8 PEM form: {reason}")]
    BadSecretKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is not a public key this crate can use.
    #[error(
        "{path} is not an ed25519 public key (expected a PEM `PUBLIC KEY` block or a line `ed25519:<base64>`): {reason}"
    )]
    BadPublicKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A public key given as text (e.g. on the command line or in a trust list) is not in the form we print.
    #[error("not an ed25519 public key (expected `ed25519:<base64 of 32 bytes>`): {reason}")]
    ParsePublicKey {
        /// What is wrong with it.
        reason: String,
    },
    /// A freshly generated key could not be written out as PEM; nothing was written.
    #[error("could not encode the key as PEM: {reason}")]
    KeyEncoding {
        /// The encoder's reason (never key bytes).
        reason: String,
    },
    /// Without randomness no key can be generated safely.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

impl PackageError {
    /// Attaches the file name to an error about a file's contents.
    pub(crate) fn in_file(self, path: impl Into<PathBuf>) -> Self {
        PackageError::File { path: path.into(), source: Box::new(self) }
    }

    /// Builds an [`PackageError::Io`]; a helper so call sites stay one line.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| PackageError::Io { action, path, source }
    }
}

impl From<wasmparser::BinaryReaderError> for PackageError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        PackageError::Malformed { message: e.message().to_owned(), offset: e.offset() }
    }
}
