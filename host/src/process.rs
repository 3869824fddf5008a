//! Guards of a process that holds exchange keys.
//!
//! A core dump of the host holds the API secret, the passphrase and the keyed HMAC state in
//! the clear, and any process of the same user can attach a debugger to a dumpable process and
//! read them. A host that loads credentials therefore turns both off for itself: the core size
//! limit goes to 0 and the process becomes non-dumpable (`PR_SET_DUMPABLE` 0, which also bars
//! same-user `ptrace` and makes `/proc/PID/mem` and `environ` root-only).

/// Why the guards could not be put in place.
#[derive(Debug, thiserror::Error)]
#[error("could not {what}: {source}")]
pub struct GuardError {
    what: &'static str,
    source: std::io::Error,
}

/// Turns off core dumps and makes the process non-dumpable. Called before credentials are
/// read; a failure stops the start (the operator can run the host where these calls work).
pub fn protect_secrets() -> Result<(), GuardError> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, setrlimit};
        let none = Rlimit { current: Some(0), maximum: Some(0) };
        setrlimit(Resource::Core, none)
            .map_err(|e| GuardError { what: "turn off core dumps (RLIMIT_CORE)", source: e.into() })?;
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{DumpableBehavior, set_dumpable_behavior};
        set_dumpable_behavior(DumpableBehavior::NotDumpable)
            .map_err(|e| GuardError { what: "make the process non-dumpable (PR_SET_DUMPABLE)", source: e.into() })?;
    }
    Ok(())
}

/// True when this process is non-dumpable and may write no core file (status, tests).
pub fn secrets_protected() -> bool {
    #[cfg(target_os = "linux")]
    {
        let dumpable = rustix::process::dumpable_behavior();
        let core = rustix::process::getrlimit(rustix::process::Resource::Core);
        matches!(dumpable, Ok(rustix::process::DumpableBehavior::NotDumpable))
            && core.current == Some(0)
            && core.maximum == Some(0)
    }
    #[cfg(not(target_os = "linux"))]
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_guards_hold_once_put_in_place() {
        protect_secrets().expect("guards");
        assert!(secrets_protected());
        // Idempotent: a second host start in the same process (tests) is fine.
        protect_secrets().expect("again");
    }
}
