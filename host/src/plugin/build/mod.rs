//! `tradebox plugin build [DIR]`: a strategy project anywhere on disk, built into the component a
//! host loads, exactly as this repository builds its own plugins (`cargo xtask plugins`), so
//! writing a strategy never means editing this repository.
//!
//! The language is told by the project's own file: `Cargo.toml` (Rust, here), `pyproject.toml`
//! (Python, [`python`]) or `package.json` (JavaScript, [`js`]). The Python and JavaScript
//! toolchains are pinned and installed on first use from their package registries into
//! [`toolchains_dir`]; their projects' manifests are written by [`with_manifest`] from the
//! project file and `tradebox.toml`, as a Rust crate's build script writes its own.
//!
//! A Rust crate is checked first (a package with a `cdylib` library that depends on
//! `tradebox-sdk`), so a wrong directory fails in a line rather than after a build. Cargo then
//! builds it for [`TARGET`] with its own progress on the terminal; where the module landed is
//! read from cargo's messages, not guessed, because the crate may sit in a workspace or build
//! into a `CARGO_TARGET_DIR` elsewhere. The module becomes a component through
//! `tradebox_package::component` (the one encoder xtask uses too), and the component must carry
//! a readable manifest: without one a host grants the plugin nothing, which is never what the
//! author of a strategy meant.

use crate::plugin::LoadError;
use tradebox_manifest::Language;

pub mod js;
pub mod python;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use tradebox_package::PackageError;

/// What strategies are built for: a component of it imports the tradebox world and nothing else.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// Why a strategy crate could not be built into a plugin.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The directory holds no strategy crate this command can build.
    #[error("{}: {reason}", path.display())]
    NotAStrategy {
        /// The crate's `Cargo.toml`.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A tool could not be started at all.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// `cargo` or `rustup`.
        program: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A toolchain step ran and failed (pip, npm, esbuild, componentize-py, componentize-js);
    /// its own messages, printed above, say why, and `hint` what usually causes it.
    #[error("{step} failed ({status}); its messages are above. {hint}")]
    Tool {
        /// What was run, as a person would type it.
        step: String,
        /// How it ended.
        status: ExitStatus,
        /// The usual cause and its fix.
        hint: String,
    },
    /// rustup could not add the target.
    #[error("`rustup target add {TARGET}` failed ({status}); add the target by hand")]
    Target {
        /// How rustup ended.
        status: ExitStatus,
    },
    /// Cargo failed; its own messages, printed above, say why.
    #[error("cargo build failed ({status}); its errors are above")]
    Cargo {
        /// How cargo ended.
        status: ExitStatus,
    },
    /// Cargo finished without writing a wasm library of the package.
    #[error("cargo built no .wasm for {package}: its [lib] needs crate-type = [\"cdylib\"]")]
    NoModule {
        /// The package.
        package: String,
    },
    /// The module could not be made a component.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The component carries no manifest.
    #[error(
        "the component carries no manifest, so a host would grant it nothing: add a build.rs calling \
         `tradebox_manifest::build::embed()` (build-dependency tradebox-manifest), a tradebox.toml beside \
         Cargo.toml, and `tradebox_sdk::embed_manifest!();` beside `export_strategy!`"
    )]
    NoManifest,
    /// The manifest is there but a host would refuse it (unreadable, another contract).
    #[error("{0}")]
    Manifest(#[from] LoadError),
}

/// A strategy built into a plugin file.
#[derive(Debug)]
pub struct Built {
    /// The package's name, the file's name.
    pub name: String,
    /// Where the component was written.
    pub path: PathBuf,
    /// The component's bytes.
    pub component: Vec<u8>,
}

/// The strategy crate at `dir`, as far as the build needs it.
#[derive(Debug)]
struct Strategy {
    manifest_path: PathBuf,
    name: String,
}

/// The project in `dir`: which language it is written in, by the file that describes it.
pub fn language_of(dir: &Path) -> Result<Language, BuildError> {
    let found: Vec<Language> =
        [("Cargo.toml", Language::Rust), ("pyproject.toml", Language::Python), ("package.json", Language::JavaScript)]
            .into_iter()
            .filter(|(file, _)| dir.join(file).is_file())
            .map(|(_, language)| language)
            .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(BuildError::NotAStrategy {
            path: dir.to_path_buf(),
            reason: "no Cargo.toml, pyproject.toml or package.json: give the strategy project's own directory \
                     (`tradebox plugin new NAME --lang rust|python|js` writes one)"
                .into(),
        }),
        _ => Err(BuildError::NotAStrategy {
            path: dir.to_path_buf(),
            reason: "more than one of Cargo.toml, pyproject.toml and package.json: one project per directory".into(),
        }),
    }
}

/// Builds the strategy project in `dir`, in whatever language it is written, and writes its
/// component to `out` (default: `DIR/NAME.wasm`). The toolchain's progress and errors go to
/// this process's stderr.
pub fn build(dir: &Path, out: Option<&Path>) -> Result<Built, BuildError> {
    match language_of(dir)? {
        Language::Rust => build_rust(dir, out),
        Language::Python => python::build(dir, out),
        Language::JavaScript => js::build(dir, out),
    }
}

/// Where pinned toolchains are installed: `$TRADEBOX_TOOLCHAINS`, else beside the compiled
/// plugin cache (`~/.cache/tradebox/toolchains`). Each toolchain has its own directory named by
/// its pinned version, so a new pin installs beside an old one rather than over it.
pub fn toolchains_dir() -> Result<PathBuf, BuildError> {
    if let Some(dir) = std::env::var_os("TRADEBOX_TOOLCHAINS") {
        return Ok(PathBuf::from(dir));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("tradebox").join("toolchains"))
        .ok_or_else(|| BuildError::NotAStrategy {
            path: PathBuf::from("$HOME"),
            reason: "neither TRADEBOX_TOOLCHAINS nor HOME is set: nowhere to install the toolchain".into(),
        })
}

/// The manifest of `package` with the project's `tradebox.toml` (permissions and config
/// schema), marked as written in `language`. A mistake in `tradebox.toml` fails here, where the
/// author sees it; the builders call it before their slow step, so it fails in a second.
pub fn manifest_of(
    package: &tradebox_manifest::build::Package,
    tradebox_toml: &Path,
    language: Language,
) -> Result<tradebox_manifest::Manifest, BuildError> {
    let text = std::fs::read_to_string(tradebox_toml).map_err(io("read", tradebox_toml))?;
    let mut manifest = tradebox_manifest::build::from_sources(package, &text).map_err(|e| {
        // The manifest crate names the file already; say it once, with its path.
        let reason = e.to_string();
        let reason = reason.strip_prefix("tradebox.toml: ").unwrap_or(&reason).to_string();
        BuildError::NotAStrategy { path: tradebox_toml.to_path_buf(), reason }
    })?;
    manifest.language = language;
    Ok(manifest)
}

/// `component` with [`manifest_of`] in its manifest section.
pub fn with_manifest(
    component: &[u8],
    package: &tradebox_manifest::build::Package,
    tradebox_toml: &Path,
    language: Language,
) -> Result<Vec<u8>, BuildError> {
    let manifest = manifest_of(package, tradebox_toml, language)?;
    Ok(tradebox_package::sections::set_section(component, tradebox_manifest::SECTION, &manifest.to_json())?)
}

/// Writes a built component to `out` (default `DIR/NAME.wasm`), unchanged files untouched.
pub(crate) fn write_component(
    dir: &Path,
    name: &str,
    out: Option<&Path>,
    component: Vec<u8>,
) -> Result<Built, BuildError> {
    if super::runtime::read_manifest(&component)?.is_none() {
        return Err(BuildError::NoManifest);
    }
    let path = match out {
        Some(path) => path.to_path_buf(),
        None => dir.join(format!("{name}.wasm")),
    };
    tradebox_package::component::write_if_changed(&path, &component)?;
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    Ok(Built { name: name.to_string(), path, component })
}

/// Builds the Rust strategy crate in `dir`.
fn build_rust(dir: &Path, out: Option<&Path>) -> Result<Built, BuildError> {
    let strategy = read_crate(dir)?;
    ensure_target(dir)?;
    let module_path = cargo_build(dir, &strategy)?;
    let module = std::fs::read(&module_path).map_err(io("read", &module_path))?;
    let component = tradebox_package::component::from_module(&module)?;
    write_component(dir, &strategy.name, out, component)
}

/// Reads `DIR/Cargo.toml` and refuses what is not a strategy crate, each with its fix.
fn read_crate(dir: &Path) -> Result<Strategy, BuildError> {
    let manifest_path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest_path).map_err(io("read", &manifest_path))?;
    let not_a_strategy = |reason: &str| BuildError::NotAStrategy { path: manifest_path.clone(), reason: reason.into() };
    let toml: toml::Table = toml::from_str(&text).map_err(|e| not_a_strategy(&format!("not valid TOML: {e}")))?;
    let name = toml
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .ok_or_else(|| not_a_strategy("no [package] name: give the strategy crate's own directory"))?
        .to_string();
    // `tradebox-sdk = ...` by path, version or workspace, or another name with `package = ...`.
    let sdk = toml.get("dependencies").and_then(toml::Value::as_table).is_some_and(|deps| {
        deps.iter().any(|(key, value)| {
            key == "tradebox-sdk" || value.get("package").and_then(toml::Value::as_str) == Some("tradebox-sdk")
        })
    });
    if !sdk {
        return Err(not_a_strategy(
            "does not depend on tradebox-sdk: this builds strategies written with the SDK \
             (tradebox-sdk = { path = \".../tradebox/sdk\" } under [dependencies])",
        ));
    }
    let cdylib = toml
        .get("lib")
        .and_then(|lib| lib.get("crate-type"))
        .and_then(toml::Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("cdylib")));
    if !cdylib {
        return Err(not_a_strategy("needs [lib] crate-type = [\"cdylib\"], or cargo writes no .wasm"));
    }
    Ok(Strategy { manifest_path, name })
}

/// Adds [`TARGET`] with rustup when the toolchain that builds `dir` lacks it (a
/// `rust-toolchain.toml` cannot, on machines that set `RUSTUP_AUTO_INSTALL=0`). Without rustup
/// the toolchain is taken as it is: cargo says so if the target is missing.
fn ensure_target(dir: &Path) -> Result<(), BuildError> {
    let listed = Command::new("rustup").args(["target", "list", "--installed"]).current_dir(dir).output();
    let installed = match listed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => return Ok(()),
    };
    if installed.lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(dir)
        .status()
        .map_err(|source| BuildError::Spawn { program: "rustup".into(), source })?;
    if status.success() { Ok(()) } else { Err(BuildError::Target { status }) }
}

/// Runs `cargo build --release --target wasm32-unknown-unknown` for the crate, with cargo's
/// progress on stderr, and returns the module it wrote.
fn cargo_build(dir: &Path, strategy: &Strategy) -> Result<PathBuf, BuildError> {
    let mut cargo = tradebox_package::component::cargo();
    // Building runs the crate's build scripts and proc-macros natively, outside any sandbox:
    // at least the exchange credentials the host reads from the environment stay out of it.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("OKX_")) {
            cargo.env_remove(key);
        }
    }
    let mut child = cargo
        .args(["build", "--release", "--target", TARGET, "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&strategy.manifest_path)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| BuildError::Spawn { program: "cargo".into(), source })?;
    let ours = std::fs::canonicalize(&strategy.manifest_path).unwrap_or_else(|_| strategy.manifest_path.clone());
    let mut module = None;
    if let Some(stdout) = child.stdout.take() {
        // Read to the end whatever happens, so cargo never blocks on a full pipe.
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            module = module.or_else(|| wasm_artifact(&line, &ours));
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn { program: "cargo".into(), source })?;
    if !status.success() {
        return Err(BuildError::Cargo { status });
    }
    module.ok_or_else(|| BuildError::NoModule { package: strategy.name.clone() })
}

/// The `.wasm` a `compiler-artifact` message of cargo reports for the cdylib of the package whose
/// manifest is `ours`.
fn wasm_artifact(line: &str, ours: &Path) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let manifest = PathBuf::from(message["manifest_path"].as_str()?);
    if std::fs::canonicalize(&manifest).unwrap_or(manifest) != ours {
        return None;
    }
    let kinds = message["target"]["kind"].as_array()?;
    if !kinds.iter().any(|k| k == "cdylib") {
        return None;
    }
    message["filenames"].as_array()?.iter().filter_map(|f| f.as_str()).find(|f| f.ends_with(".wasm")).map(PathBuf::from)
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_path_buf();
    move |source| BuildError::Io { action, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_with(cargo_toml: &str) -> (tempfile::TempDir, Result<Strategy, BuildError>) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("Cargo.toml"), cargo_toml).expect("write");
        let read = read_crate(dir.path());
        (dir, read)
    }

    #[test]
    fn a_strategy_crate_is_told_from_what_is_not_one() {
        let lib = "[lib]\ncrate-type = [\"cdylib\"]\n";
        for sdk in [
            "tradebox-sdk = { path = \"/x/sdk\" }",
            "tradebox-sdk = \"0.1\"",
            "tradebox-sdk.workspace = true",
            "sdk = { package = \"tradebox-sdk\", version = \"0.1\" }",
        ] {
            let (_dir, read) = crate_with(&format!("[package]\nname = \"s\"\n{lib}[dependencies]\n{sdk}\n"));
            assert_eq!(read.expect(sdk).name, "s");
        }
        let refused = [
            ("[workspace]\nmembers = [\"a\"]\n", "no [package] name"),
            ("[package]\nname = \"s\"\n[lib]\ncrate-type = [\"cdylib\"]\n", "does not depend on tradebox-sdk"),
            ("[package]\nname = \"s\"\n[dependencies]\ntradebox-sdk = \"0.1\"\n", "crate-type"),
            ("[package\n", "not valid TOML"),
        ];
        for (toml, expected) in refused {
            let (_dir, read) = crate_with(toml);
            let err = read.expect_err(toml).to_string();
            assert!(err.contains(expected) && err.contains("Cargo.toml"), "{toml}: {err}");
        }
        let empty = tempfile::tempdir().expect("temp dir");
        let err = read_crate(empty.path()).expect_err("no Cargo.toml").to_string();
        assert!(err.contains("could not read") && err.contains("Cargo.toml"), "{err}");
    }

    #[test]
    fn the_module_is_found_in_cargos_messages() {
        let ours = Path::new("/s/Cargo.toml");
        let artifact = |manifest: &str, kind: &str, file: &str| {
            serde_json::json!({
                "reason": "compiler-artifact",
                "manifest_path": manifest,
                "target": { "kind": [kind] },
                "filenames": [file],
            })
            .to_string()
        };
        let found = wasm_artifact(&artifact("/s/Cargo.toml", "cdylib", "/t/s.wasm"), ours);
        assert_eq!(found, Some(PathBuf::from("/t/s.wasm")));
        assert_eq!(wasm_artifact(&artifact("/other/Cargo.toml", "cdylib", "/t/o.wasm"), ours), None);
        assert_eq!(wasm_artifact(&artifact("/s/Cargo.toml", "custom-build", "/t/build"), ours), None);
        assert_eq!(wasm_artifact("{\"reason\":\"build-finished\",\"success\":true}", ours), None);
        assert_eq!(wasm_artifact("not json", ours), None);
    }
}
