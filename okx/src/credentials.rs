//! API credentials: key, secret and passphrase, from the environment, an owner-only file, a
//! secret manager's command (as AWS's `credential_process` and git's credential helpers) or
//! systemd's credentials directory, held so that they never show up in a log line, an error,
//! a panic or a debug dump.
//!
//! The secret and the passphrase live in [`SecretString`]s (zeroised on drop, redacted in
//! `Debug`); the API key is not a secret by OKX's rules but identifies the account, so it is
//! shown only by its first four characters.

use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Environment variable holding the API key.
pub const ENV_KEY: &str = "OKX_API_KEY";
/// Environment variable holding the API secret.
pub const ENV_SECRET: &str = "OKX_API_SECRET";
/// Environment variable holding the passphrase.
pub const ENV_PASSPHRASE: &str = "OKX_API_PASSPHRASE";

/// One OKX API key.
#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    secret: SecretString,
    passphrase: SecretString,
}

/// Why credentials could not be loaded. Never carries a value, only names.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A variable is missing or empty.
    #[error("environment variable {0} is not set (or empty)")]
    MissingEnv(&'static str),
    /// The file could not be read.
    #[error("credentials file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is readable by others.
    #[error(
        "credentials file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}` so only its owner can read it"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line is not `NAME=value`, or a name is unknown. Only the line number is reported.
    #[error("{source_name}, line {line}: {reason}")]
    Syntax {
        /// Where the text came from (`credentials file PATH`, `the output of COMMAND`).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong (never the value).
        reason: String,
    },
    /// A required name is missing from the text.
    #[error("{source_name} has no {name}")]
    MissingInFile {
        /// Where the text came from.
        source_name: String,
        /// The missing name.
        name: &'static str,
    },
    /// The credentials command could not run, failed, or took too long. Its standard error is
    /// not shown (a secret manager may echo what it was asked); its exit status is.
    #[error("credentials_command {program:?}: {reason}")]
    Command {
        /// The program (its first word; its arguments may name the secret's path).
        program: String,
        /// What went wrong.
        reason: String,
    },
}

/// How long a credentials command may take (a secret manager asking for a PIN over a
/// terminal it does not have would otherwise hang the start).
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The most a credentials command may print (three lines fit many times over).
pub const COMMAND_OUTPUT_MAX: usize = 64 * 1024;

/// The file systemd puts the credentials in (`LoadCredential=okx:/path/to/okx.env` or
/// `LoadCredentialEncrypted=okx:...` in the unit), in `$CREDENTIALS_DIRECTORY`.
pub const SYSTEMD_CREDENTIAL: &str = "okx";

impl Credentials {
    /// Credentials from values (tests, the simulator's own config).
    pub fn new(api_key: &str, secret: &str, passphrase: &str) -> Self {
        Self {
            api_key: api_key.to_string(),
            secret: SecretString::from(secret.to_string()),
            passphrase: SecretString::from(passphrase.to_string()),
        }
    }

    /// From `OKX_API_KEY`, `OKX_API_SECRET` and `OKX_API_PASSPHRASE`.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any name → value lookup (the environment, or a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        // Every copy read on the way is wiped when dropped, not only the kept one.
        let get = |name: &'static str| {
            lookup(name).map(Zeroizing::new).filter(|v| !v.trim().is_empty()).ok_or(CredentialsError::MissingEnv(name))
        };
        let (key, secret, passphrase) = (get(ENV_KEY)?, get(ENV_SECRET)?, get(ENV_PASSPHRASE)?);
        Ok(Self::new(key.trim(), secret.trim(), &passphrase))
    }

    /// From a file of `NAME=value` lines using the same three names as the environment
    /// (`#` starts a comment; values may be quoted), which must be readable by its owner only.
    pub fn from_file(path: &Path) -> Result<Self, CredentialsError> {
        check_owner_only(path)?;
        // The file's text and each value taken from it are wiped when dropped.
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|source| CredentialsError::Io { path: path.to_path_buf(), source })?,
        );
        Self::from_text(&text, &format!("credentials file {}", path.display()))
    }

    /// From systemd's credentials directory (`$CREDENTIALS_DIRECTORY/okx`, the format of
    /// [`Credentials::from_file`]); `None` when the host was not started with one, or with
    /// other credentials than `okx`. systemd makes the directory readable by the service alone.
    pub fn from_systemd() -> Option<Result<Self, CredentialsError>> {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
        let path = Path::new(&dir).join(SYSTEMD_CREDENTIAL);
        path.exists().then(|| Self::from_file(&path))
    }

    /// From what a command prints on standard output, in the format of
    /// [`Credentials::from_file`] (`pass show okx/trading`, `op read ...`, a vault client).
    /// `argv` is run directly, no shell; a failure, a non-zero exit or
    /// [`COMMAND_TIMEOUT`] is a clear error, and the output is wiped once read.
    pub fn from_command(argv: &[String]) -> Result<Self, CredentialsError> {
        use std::io::Read;
        let program = argv.first().cloned().unwrap_or_default();
        let fail = |reason: String| CredentialsError::Command { program: program.clone(), reason };
        if program.is_empty() {
            return Err(fail("no program given".into()));
        }
        let mut child = std::process::Command::new(&program)
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| fail(format!("could not start: {e}")))?;
        let stdout = child.stdout.take().ok_or_else(|| fail("no standard output".into()))?;
        // Read on a thread, so that the wait below can give up on a command that hangs (or
        // leaves a process behind holding its output open); at most 64 KiB, into a buffer
        // sized once, so no reallocation leaves a copy behind unwiped.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Zeroizing::new(Vec::with_capacity(COMMAND_OUTPUT_MAX + 1));
            let read = stdout.take(COMMAND_OUTPUT_MAX as u64 + 1).read_to_end(&mut out);
            let _ = tx.send(read.map(|_| out));
        });
        let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("gave no answer within {} s", COMMAND_TIMEOUT.as_secs())));
                }
                Err(e) => return Err(fail(format!("could not be waited for: {e}"))),
            }
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now()).max(std::time::Duration::from_secs(1));
        let out = match rx.recv_timeout(left) {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(fail(format!("its output could not be read: {e}"))),
            Err(_) => return Err(fail("exited, but something it started keeps its output open".into())),
        };
        if !status.success() {
            return Err(fail(format!("exited with {status} (its error output is not shown: it may hold secrets)")));
        }
        if out.len() > COMMAND_OUTPUT_MAX {
            return Err(fail(format!("printed more than {COMMAND_OUTPUT_MAX} bytes")));
        }
        let text = std::str::from_utf8(&out).map_err(|_| fail("printed text that is not UTF-8".into()))?;
        Self::from_text(text, &format!("the output of credentials_command {program:?}"))
    }

    /// From `NAME=value` lines (see [`Credentials::from_file`]); `source_name` says where they
    /// came from in errors, which name a line, never a value.
    pub fn from_text(text: &str, source_name: &str) -> Result<Self, CredentialsError> {
        let mut values: [Option<Zeroizing<String>>; 3] = Default::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let syntax = |reason: &str| CredentialsError::Syntax {
                source_name: source_name.to_string(),
                line: i + 1,
                reason: reason.to_string(),
            };
            let (name, value) = line.split_once('=').ok_or_else(|| syntax("expected NAME=value"))?;
            let slot = match name.trim() {
                ENV_KEY => 0,
                ENV_SECRET => 1,
                ENV_PASSPHRASE => 2,
                _ => {
                    return Err(syntax(&format!(
                        "unknown name (expected {ENV_KEY}, {ENV_SECRET} or {ENV_PASSPHRASE})"
                    )));
                }
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            values[slot] = Some(Zeroizing::new(value.to_string()));
        }
        let [key, secret, passphrase] = values;
        let missing = |name| CredentialsError::MissingInFile { source_name: source_name.to_string(), name };
        let key = key.filter(|v| !v.is_empty()).ok_or_else(|| missing(ENV_KEY))?;
        let secret = secret.filter(|v| !v.is_empty()).ok_or_else(|| missing(ENV_SECRET))?;
        let passphrase = passphrase.filter(|v| !v.is_empty()).ok_or_else(|| missing(ENV_PASSPHRASE))?;
        Ok(Self::new(&key, &secret, &passphrase))
    }

    /// Whether `other` is the same key, secret and passphrase (a key read again).
    pub fn same_as(&self, other: &Credentials) -> bool {
        self.api_key == other.api_key
            && self.secret.expose_secret() == other.secret.expose_secret()
            && self.passphrase.expose_secret() == other.passphrase.expose_secret()
    }

    /// The API key (sent in `OK-ACCESS-KEY`).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The key shortened for logs: the first four characters.
    pub fn key_hint(&self) -> String {
        let head: String = self.api_key.chars().take(4).collect();
        format!("{head}…")
    }

    /// The secret, wrapped.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// The passphrase, wrapped.
    pub fn passphrase(&self) -> &SecretString {
        &self.passphrase
    }

    /// The values that must never be written anywhere (for the audit log's last-line check).
    pub fn forbidden_values(&self) -> [&str; 2] {
        [self.secret.expose_secret(), self.passphrase.expose_secret()]
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.key_hint())
            .field("secret", &"[REDACTED]")
            .field("passphrase", &"[REDACTED]")
            .finish()
    }
}

impl std::fmt::Display for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OKX key {}", self.key_hint())
    }
}

#[cfg(unix)]
fn check_owner_only(path: &Path) -> Result<(), CredentialsError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| CredentialsError::Io { path: path.to_path_buf(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CredentialsError::TooOpen { path: path.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path) -> Result<(), CredentialsError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "S3CRET-0123456789abcdef";
    const PASS: &str = "pass-phrase-xyz";

    #[test]
    fn debug_display_and_errors_never_show_secrets() {
        let c = Credentials::new("abcd-1234-key", SECRET, PASS);
        let shown = format!("{c:?} {c} {:?}", c.clone());
        assert!(!shown.contains(SECRET) && !shown.contains(PASS) && !shown.contains("abcd-1234"), "{shown}");
        assert!(shown.contains("abcd…"));
    }

    #[test]
    fn from_lookup_names_the_missing_variable() {
        let mut env: HashMap<&str, String> = HashMap::new();
        env.insert(ENV_KEY, "k".into());
        env.insert(ENV_SECRET, SECRET.into());
        let err = Credentials::from_lookup(|n| env.get(n).cloned()).expect_err("no passphrase");
        assert!(err.to_string().contains(ENV_PASSPHRASE));
        assert!(!err.to_string().contains(SECRET));
        env.insert(ENV_PASSPHRASE, PASS.into());
        let c = Credentials::from_lookup(|n| env.get(n).cloned()).expect("complete");
        assert_eq!(c.passphrase().expose_secret(), PASS);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_readable_by_others_is_refused_an_owner_only_one_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("okx.env");
        let text = format!("# demo key\n{ENV_KEY}=abcd\nexport {ENV_SECRET}=\"{SECRET}\"\n{ENV_PASSPHRASE}='{PASS}'\n");
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = Credentials::from_file(&path).expect_err("world readable");
        assert!(matches!(err, CredentialsError::TooOpen { mode: 0o644, .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c = Credentials::from_file(&path).expect("owner only");
        assert_eq!(c.api_key(), "abcd");
        assert_eq!(c.secret().expose_secret(), SECRET);
        assert_eq!(c.passphrase().expose_secret(), PASS);
    }

    #[cfg(unix)]
    #[test]
    fn syntax_errors_name_the_line_never_the_value() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("okx.env");
        std::fs::write(&path, format!("{ENV_KEY}=a\nOKX_SECRET={SECRET}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = Credentials::from_file(&path).expect_err("unknown name").to_string();
        assert!(err.contains("line 2") && !err.contains(SECRET), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_credentials_command_is_read_like_a_file_and_its_failures_are_plain() {
        let sh = |script: &str| vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()];
        let printed = format!("printf '{ENV_KEY}=abcd\\n{ENV_SECRET}={SECRET}\\n{ENV_PASSPHRASE}={PASS}\\n'");
        let c = Credentials::from_command(&sh(&printed)).expect("read");
        assert_eq!((c.api_key(), c.secret().expose_secret(), c.passphrase().expose_secret()), ("abcd", SECRET, PASS));
        // A failing secret manager: its exit status, never what it printed on stderr.
        let err = Credentials::from_command(&sh(&format!("echo {SECRET} >&2; exit 3"))).expect_err("fails").to_string();
        assert!(err.contains("exit status: 3") && !err.contains(SECRET), "{err}");
        let err = Credentials::from_command(&["/nonexistent/vault".to_string()]).expect_err("missing").to_string();
        assert!(err.contains("could not start"), "{err}");
        let err = Credentials::from_command(&sh(&format!("echo {ENV_KEY}=abcd"))).expect_err("incomplete").to_string();
        assert!(err.contains("output of credentials_command") && err.contains(ENV_SECRET), "{err}");
        assert!(Credentials::from_command(&[]).is_err());
    }
}
