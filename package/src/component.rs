//! From the core module `cargo build --target wasm32-unknown-unknown` writes to the component a
//! host loads: one place for `cargo xtask plugins` and `tradebox plugin build`, so a strategy
//! built outside this repository is encoded exactly like the shipped ones.
//!
//! The SDK's bindings (wit-bindgen) leave the component type in a custom section of the module;
//! wit-component reads it back and wraps the module in a component with those imports and
//! exports. The module's own custom sections (the `tradebox-manifest` among them) stay in the
//! nested module, where the host finds them.

use std::path::Path;
use std::process::Command;

use crate::PackageError;
use crate::sections::{WasmKind, wasm_kind};

/// The component for `module`, validated as wit-component validates it.
pub fn from_module(module: &[u8]) -> Result<Vec<u8>, PackageError> {
    if wasm_kind(module)? != WasmKind::Module {
        return Err(PackageError::Componentize {
            reason: "this file is a component already, not a core module".into(),
        });
    }
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|encoder| encoder.validate(true).encode())
        // wit-component's causes, on one line.
        .map_err(|e| PackageError::Componentize { reason: format!("{e:#}") })
}

/// A `cargo` command (the one running us, if cargo started us) without the variables cargo sets
/// for a program it runs (`cargo run`, a test binary): they describe that program's package,
/// and build scripts that watch them (ring's watches `CARGO_PKG_NAME` and `CARGO_MANIFEST_DIR`)
/// would see a change and rebuild whenever a build is started from such a program instead of
/// from a shell, and again at the next build from the shell.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let of_the_runner = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"]
                .contains(&key);
        if of_the_runner {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Writes `bytes` to `path` unless the file already holds exactly them, so a rebuild that
/// changed nothing keeps the file's time and a watching host (`run --watch`) sees no change;
/// otherwise through a temporary file and a rename, so a watcher never reads half a file.
/// Returns whether it wrote.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, PackageError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    // Beside the file (a rename never crosses file systems), under a fresh name no one else
    // can have planted (a shared directory: a fixed `NAME.tmp` could be a link to someone's
    // file), readable by all (the old file's mode, else 0644): a plugin file is for sharing.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(PackageError::io("write", dir))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(PackageError::io("write", tmp.path()))?;
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        let shared = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0o644);
        std::fs::Permissions::from_mode(shared & 0o777)
    };
    std::fs::set_permissions(tmp.path(), mode).map_err(PackageError::io("write", tmp.path()))?;
    tmp.persist(path).map_err(|e| PackageError::io("write", path)(e.error))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::tests::component_with_manifest;

    #[test]
    fn refuses_what_is_not_a_core_module_in_words() {
        let err = from_module(b"hello").expect_err("not wasm");
        assert!(err.to_string().contains("not a WebAssembly file"), "{err}");
        let err = from_module(&component_with_manifest(b"m")).expect_err("a component");
        assert!(err.to_string().contains("a component already"), "{err}");
    }

    #[test]
    fn a_module_becomes_a_component_that_keeps_its_custom_sections() {
        let mut module = wasm_encoder::Module::new();
        module.section(&wasm_encoder::CustomSection { name: "tradebox-manifest".into(), data: b"{}".into() });
        let component = from_module(&module.finish()).expect("encodes");
        assert_eq!(wasm_kind(&component).expect("header"), WasmKind::Component);
        let found = crate::sections::find_section(&component, "tradebox-manifest").expect("parses");
        assert_eq!(found, Some(&b"{}"[..]));
    }

    #[test]
    fn writes_only_when_the_bytes_change() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("p.wasm");
        assert!(write_if_changed(&path, b"one").expect("write"));
        assert!(!write_if_changed(&path, b"one").expect("same bytes"));
        assert!(write_if_changed(&path, b"two").expect("write"));
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary file left behind: {names:?}");
    }
}
