//! Builds a Python strategy project into a plugin with componentize-py.
//!
//! A project is a directory with `pyproject.toml` (its name, version, authors...), `tradebox.toml`
//! (permissions and config schema, as for a Rust strategy) and `app.py`, the strategy module,
//! which ends with `WitWorld = export_strategy(MyStrategy)`. componentize-py puts CPython, the
//! module, the SDK and the bindings it generates from the WIT into one component.
//!
//! The toolchain is pinned ([`COMPONENTIZE_PY`]) and installed on first use with pip into
//! [`super::toolchains_dir`], under a temporary name renamed into place once complete, so an
//! interrupted install is never used. The SDK and the WIT are compiled into this binary, so the
//! component is built against exactly the contract and the SDK of the host that builds it,
//! wherever the project sits.

use super::{BuildError, Built, io, toolchains_dir, with_manifest, write_component};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tradebox_manifest::Language;
use tradebox_manifest::build::Package;

/// The componentize-py release strategies are built with (the SDK is written against it).
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The contract, the same text the Rust SDK is generated from.
const WIT: &str = include_str!("../../../../wit/strategy.wit");

/// The Python SDK's files, written beside the project for each build.
const SDK: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../../../../sdk-python/tradebox_sdk/__init__.py")),
    ("strategy.py", include_str!("../../../../sdk-python/tradebox_sdk/strategy.py")),
    ("indicators.py", include_str!("../../../../sdk-python/tradebox_sdk/indicators.py")),
];

/// The Python interpreter that installs and runs componentize-py.
const PYTHON: &str = "python3";

/// A Python strategy project, as far as the build needs it.
#[derive(Debug)]
struct Project {
    package: Package,
    tradebox_toml: PathBuf,
}

/// Builds the project in `dir` and writes its component to `out` (default `DIR/NAME.wasm`).
/// componentize-py's and pip's output goes to this process's stderr.
pub fn build(dir: &Path, out: Option<&Path>) -> Result<Built, BuildError> {
    let project = read_project(dir)?;
    // tradebox.toml checked before the toolchain's minute, not after it.
    super::manifest_of(&project.package, &project.tradebox_toml, Language::Python)?;
    let name = project.package.name.clone();
    let toolchain = ensure_toolchain()?;
    eprintln!("building {name} with componentize-py {COMPONENTIZE_PY} (CPython, the SDK and app.py; 15-60 s)");
    let scratch = tempfile::Builder::new()
        .prefix("tradebox-py-build-")
        .tempdir()
        .map_err(io("create a scratch directory in", &std::env::temp_dir()))?;
    let (wit_dir, sdk_dir) = write_sources(scratch.path())?;
    let wasm = scratch.path().join("app.wasm");
    componentize(&toolchain, dir, &wit_dir, &sdk_dir, &wasm)?;
    let component = std::fs::read(&wasm).map_err(io("read", &wasm))?;
    let component = with_manifest(&component, &project.package, &project.tradebox_toml, Language::Python)?;
    write_component(dir, &name, out, component)
}

/// Reads `DIR/pyproject.toml` and checks `tradebox.toml` and `app.py` are there, refusing what
/// is not a strategy project with the fix.
fn read_project(dir: &Path) -> Result<Project, BuildError> {
    let pyproject = dir.join("pyproject.toml");
    let refuse =
        |path: &Path, reason: &str| BuildError::NotAStrategy { path: path.to_path_buf(), reason: reason.into() };
    if !pyproject.is_file() {
        return Err(refuse(
            &pyproject,
            "missing: a Python strategy project has pyproject.toml, tradebox.toml and app.py \
             (`tradebox plugin new NAME --lang python` writes one)",
        ));
    }
    let text = std::fs::read_to_string(&pyproject).map_err(io("read", &pyproject))?;
    let package = parse_pyproject(&text).map_err(|reason| refuse(&pyproject, &reason))?;
    let tradebox_toml = dir.join("tradebox.toml");
    if !tradebox_toml.is_file() {
        return Err(refuse(
            &tradebox_toml,
            "missing: write what the strategy asks of the host there ([permissions] and [config.*] \
             settings, as a Rust strategy's), or a host grants it nothing",
        ));
    }
    let app = dir.join("app.py");
    if !app.is_file() {
        return Err(refuse(
            &app,
            "missing: the strategy module, a tradebox_sdk.Strategy subclass exported with \
             `WitWorld = export_strategy(MyStrategy)`",
        ));
    }
    Ok(Project { package, tradebox_toml })
}

/// The manifest's package fields from the `[project]` table of a `pyproject.toml` (PEP 621):
/// name and version are required; authors are `{name, email}` tables, written as Cargo does
/// (`Name <email>`); the license is a string or `{text = ...}`.
fn parse_pyproject(text: &str) -> Result<Package, String> {
    let toml: toml::Table = toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
    let project = toml
        .get("project")
        .and_then(toml::Value::as_table)
        .ok_or("no [project] table: add one with name = \"my-strategy\" and version = \"0.1.0\"")?;
    let text_of = |key: &str| project.get(key).and_then(toml::Value::as_str).map(str::trim).unwrap_or_default();
    let name = text_of("name");
    if name.is_empty() {
        return Err("no [project] name: add name = \"my-strategy\" (it names the plugin and its .wasm file)".into());
    }
    // The name becomes a file name and the plugin's name in every listing.
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) || name.starts_with('.') {
        return Err(format!(
            "[project] name {name:?}: use letters, digits, '-', '_' and '.' (it names the .wasm file)"
        ));
    }
    let version = text_of("version");
    if version.is_empty() {
        return Err("no [project] version: add version = \"0.1.0\" (a dynamic version cannot be read here)".into());
    }
    let authors = match project.get("authors") {
        None => Vec::new(),
        Some(toml::Value::Array(list)) => list.iter().map(author).collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("[project] authors: expected a list of {name = ..., email = ...} tables".into()),
    };
    let license = match project.get("license") {
        None => String::new(),
        Some(toml::Value::String(s)) => s.trim().to_string(),
        Some(toml::Value::Table(t)) => {
            t.get("text").and_then(toml::Value::as_str).unwrap_or_default().trim().to_string()
        }
        Some(_) => return Err("[project] license: expected a string or {text = ...}".into()),
    };
    Ok(Package {
        name: name.to_string(),
        version: version.to_string(),
        authors,
        description: text_of("description").to_string(),
        license,
    })
}

/// One `{name, email}` author as `Name <email>` (or whichever of the two is given).
fn author(value: &toml::Value) -> Result<String, String> {
    let bad = || "[project] authors: each is a {name = ..., email = ...} table".to_string();
    let table = value.as_table().ok_or_else(bad)?;
    let field = |k: &str| table.get(k).and_then(toml::Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    match (field("name"), field("email")) {
        (Some(name), Some(email)) => Ok(format!("{name} <{email}>")),
        (Some(one), None) | (None, Some(one)) => Ok(one.to_string()),
        (None, None) => Err(bad()),
    }
}

/// The componentize-py install: `TOOLCHAINS/componentize-py-VERSION`, installed now if it is not
/// there yet.
fn ensure_toolchain() -> Result<PathBuf, BuildError> {
    let toolchains = toolchains_dir()?;
    let home = toolchains.join(format!("componentize-py-{COMPONENTIZE_PY}"));
    if script(&home).is_file() {
        return Ok(home);
    }
    std::fs::create_dir_all(&toolchains).map_err(io("create", &toolchains))?;
    // A name of this process's own, so two builds installing at once do not write into one
    // directory; the first to finish renames its copy into place.
    let tmp = toolchains.join(format!(".componentize-py-{COMPONENTIZE_PY}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io("remove", &tmp))?;
    }
    eprintln!("installing componentize-py {COMPONENTIZE_PY} into {} (once; about 50 MB from PyPI)", home.display());
    let status = Command::new(PYTHON)
        // Wheels only: a source distribution would run its build scripts here, outside any sandbox.
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--only-binary",
            ":all:",
            "--target",
        ])
        .arg(&tmp)
        .arg(format!("componentize-py=={COMPONENTIZE_PY}"))
        .env_remove("PIP_USER")
        .stdin(Stdio::null())
        // pip reports progress on stdout: onto stderr with the rest of the build's progress.
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(spawn_error)?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(BuildError::Tool {
            step: format!("`{PYTHON} -m pip install --target {} componentize-py=={COMPONENTIZE_PY}`", home.display()),
            status,
            hint: format!(
                "Without pip (\"No module named pip\") install it (e.g. `apt install python3-pip`, \
                 or `{PYTHON} -m ensurepip`); offline, install that package into this directory by hand"
            ),
        });
    }
    match std::fs::rename(&tmp, &home) {
        Ok(()) => {}
        // Another build finished first: its install is as good as ours.
        Err(_) if script(&home).is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(source) => return Err(BuildError::Io { action: "move into place", path: home, source }),
    }
    if !script(&home).is_file() {
        return Err(BuildError::NotAStrategy {
            path: script(&home),
            reason: "pip finished but did not install this script: remove the directory and build again".into(),
        });
    }
    Ok(home)
}

/// componentize-py's entry script in an install.
fn script(home: &Path) -> PathBuf {
    home.join("bin").join("componentize-py")
}

/// The error for a Python that could not be started, with what to do about it.
fn spawn_error(source: std::io::Error) -> BuildError {
    BuildError::Spawn {
        program: format!(
            "{PYTHON} (Python 3.9 or later, with pip, installs and runs componentize-py: install it and put \
             `{PYTHON}` on PATH)"
        ),
        source,
    }
}

/// Writes the WIT and the SDK into `scratch`; returns the WIT directory and the directory to
/// put on the module path (the one holding `tradebox_sdk/`).
fn write_sources(scratch: &Path) -> Result<(PathBuf, PathBuf), BuildError> {
    let wit_dir = scratch.join("wit");
    let sdk_root = scratch.join("sdk");
    let package = sdk_root.join("tradebox_sdk");
    for d in [&wit_dir, &package] {
        std::fs::create_dir_all(d).map_err(io("create", d))?;
    }
    let wit = wit_dir.join("strategy.wit");
    std::fs::write(&wit, WIT).map_err(io("write", &wit))?;
    for (file, text) in SDK {
        let path = package.join(file);
        std::fs::write(&path, text).map_err(io("write", &path))?;
    }
    Ok((wit_dir, sdk_root))
}

/// Runs componentize-py on `project/app.py` with the SDK, writing the component to `wasm`.
fn componentize(toolchain: &Path, project: &Path, wit: &Path, sdk: &Path, wasm: &Path) -> Result<(), BuildError> {
    // Absolute: componentize-py runs in the project directory, where a relative path from here
    // would name something else.
    let project = &std::fs::canonicalize(project).map_err(io("find", project))?;
    let mut command = Command::new(PYTHON);
    // The interpreter runs the script rather than the script's own `#!` line, which names the
    // Python that installed it (perhaps gone since).
    command.arg(script(toolchain)).arg("-d").arg(wit).args(["-w", "strategy", "componentize", "app", "-p"]);
    command.arg(project).arg("-p").arg(sdk).arg("-o").arg(wasm);
    // Building runs the project's module natively (componentize-py imports it): at least the
    // exchange credentials the host reads from the environment stay out of it.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("OKX_")) {
            command.env_remove(key);
        }
    }
    let status = command
        .env("PYTHONPATH", toolchain)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(project)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(spawn_error)?;
    if !status.success() {
        return Err(BuildError::Tool {
            step: format!("componentize-py {COMPONENTIZE_PY}"),
            status,
            hint: "Usually a Python error in app.py, or no `WitWorld = export_strategy(MyStrategy)` at its end".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pyproject_gives_the_manifests_package_fields() {
        let p = parse_pyproject(
            r#"
[project]
name = "sma-cross-py"
version = "0.2.0"
description = "A crossover."
authors = [{ name = "Ada", email = "ada@example.com" }, { name = "Bob" }, { email = "c@example.com" }]
license = { text = "Apache-2.0" }
"#,
        )
        .expect("parses");
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.description.as_str()),
            ("sma-cross-py", "0.2.0", "A crossover.")
        );
        assert_eq!(p.authors, ["Ada <ada@example.com>", "Bob", "c@example.com"]);
        assert_eq!(p.license, "Apache-2.0");
        let p = parse_pyproject("[project]\nname = \"s\"\nversion = \"1\"\nlicense = \"MIT\"\n").expect("parses");
        assert_eq!((p.license.as_str(), p.authors.len(), p.description.as_str()), ("MIT", 0, ""));
    }

    #[test]
    fn what_is_not_a_python_strategy_is_refused_with_the_fix() {
        let refused = [
            ("[project\n", "not valid TOML"),
            ("[tool.x]\na = 1\n", "no [project] table"),
            ("[project]\nversion = \"1\"\n", "no [project] name"),
            ("[project]\nname = \"../evil\"\nversion = \"1\"\n", "names the .wasm file"),
            ("[project]\nname = \"s\"\ndynamic = [\"version\"]\n", "no [project] version"),
            ("[project]\nname = \"s\"\nversion = \"1\"\nauthors = \"me\"\n", "authors"),
            ("[project]\nname = \"s\"\nversion = \"1\"\nauthors = [{}]\n", "authors"),
            ("[project]\nname = \"s\"\nversion = \"1\"\nlicense = 3\n", "license"),
        ];
        for (text, expected) in refused {
            let err = parse_pyproject(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn a_project_needs_its_three_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = read_project(dir.path()).expect_err("empty").to_string();
        assert!(err.contains("pyproject.toml") && err.contains("plugin new"), "{err}");
        std::fs::write(dir.path().join("pyproject.toml"), "[project]\nname = \"s\"\nversion = \"1\"\n").expect("write");
        let err = read_project(dir.path()).expect_err("no tradebox.toml").to_string();
        assert!(err.contains("tradebox.toml") && err.contains("[permissions]"), "{err}");
        std::fs::write(dir.path().join("tradebox.toml"), "").expect("write");
        let err = read_project(dir.path()).expect_err("no app.py").to_string();
        assert!(err.contains("app.py") && err.contains("export_strategy"), "{err}");
        std::fs::write(dir.path().join("app.py"), "").expect("write");
        let project = read_project(dir.path()).expect("a project");
        assert_eq!(project.package.name, "s");
        assert!(project.tradebox_toml.ends_with("tradebox.toml"));
    }

    #[test]
    fn the_embedded_sdk_and_contract_are_the_repositorys() {
        assert!(WIT.contains("package tradebox:strategy@"));
        assert!(SDK.iter().any(|(f, text)| *f == "__init__.py" && text.contains("def export_strategy")));
        // Every module of the package is embedded.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-python/tradebox_sdk");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("sdk-python")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| f.ends_with(".py"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = SDK.iter().map(|(f, _)| f.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
