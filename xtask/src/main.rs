//! `cargo xtask <command>`: the project's own build steps, so a fresh machine with only the Rust
//! toolchain needs nothing else.
//!
//! - `plugins`: add the wasm targets if missing, build every plugin, write components to
//!   `target/plugins/NAME.wasm`;
//! - `demo [ARGS]`: `plugins`, then `tradebox demo ARGS`;
//! - `test [ARGS]`: `plugins`, the python packages of the third-party client test (pinned in
//!   `tests/thirdparty/requirements.txt`, into `target/pydeps`), then `cargo test --workspace ARGS`;
//! - `bench [ARGS]`: `plugins`, then `cargo bench -p tradebox ARGS`;
//! - `ci`: format check, clippy with warnings denied, then `test`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Plugins built for `wasm32-unknown-unknown` and turned into components: they import exactly
/// the tradebox world and nothing else.
const PURE_PLUGINS: &[&str] = &["noop", "sma-cross", "market-maker", "misbehave", "snoop"];
/// Plugins built for `wasm32-wasip2` (a component that imports WASI): used only to prove the host
/// refuses them.
const WASI_PLUGINS: &[&str] = &["wasi-import"];

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    match command.as_str() {
        "plugins" => build_plugins(&root).map(|_| ()),
        "demo" => {
            let dir = build_plugins(&root)?;
            let mut cmd = cargo(&root);
            cmd.args(["run", "--quiet", "-p", "tradebox", "--", "demo", "--plugin-dir"]).arg(&dir).args(&rest);
            run(cmd)
        }
        "test" => test(&root, &rest),
        "bench" => {
            let dir = build_plugins(&root)?;
            let mut cmd = cargo(&root);
            cmd.args(["bench", "-p", "tradebox"]).args(&rest).env("TRADEBOX_PLUGIN_DIR", &dir);
            run(cmd)
        }
        "ci" => {
            let mut fmt = cargo(&root);
            fmt.args(["fmt", "--all", "--", "--check"]);
            run(fmt).context("cargo fmt found unformatted code; run `cargo fmt --all`")?;
            let mut clippy = cargo(&root);
            clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
            run(clippy)?;
            test(&root, &rest)
        }
        _ => bail!("usage: cargo xtask <plugins|demo|test|bench|ci> [ARGS...]"),
    }
}

/// Builds the plugins, runs the plugins' own unit tests natively, then every workspace test.
fn test(root: &Path, rest: &[String]) -> Result<()> {
    let dir = build_plugins(root)?;
    let mut plugin_tests = cargo(root);
    plugin_tests
        .args(["test", "--manifest-path"])
        .arg(root.join("plugins").join("Cargo.toml"))
        .args(["-p", "sma-cross"])
        .env("CARGO_TARGET_DIR", target_dir(root));
    run(plugin_tests)?;
    let pydeps = python_deps(root)?;
    let mut cmd = cargo(root);
    cmd.args(["test", "--workspace"]).args(rest).env("TRADEBOX_PLUGIN_DIR", &dir).env("TRADEBOX_PYDEPS", &pydeps);
    run(cmd)
}

/// Installs the pinned python packages of the third-party client test into `target/pydeps`
/// (once per version of the requirements file).
fn python_deps(root: &Path) -> Result<PathBuf> {
    let requirements = root.join("tests").join("thirdparty").join("requirements.txt");
    let wanted =
        std::fs::read_to_string(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let dir = target_dir(root).join("pydeps");
    let marker = dir.join(".requirements");
    if std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted) {
        return Ok(dir);
    }
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--root-user-action=ignore",
        "--upgrade",
        "--target",
    ])
    .arg(&dir)
    .arg("-r")
    .arg(&requirements);
    run(pip).context("installing the python packages of the third-party client test (needs python3 with pip)")?;
    std::fs::write(&marker, wanted).with_context(|| format!("writing {}", marker.display()))?;
    Ok(dir)
}

fn workspace_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Adds the wasm targets with rustup when they are missing (`rust-toolchain.toml` cannot, on
/// machines that set `RUSTUP_AUTO_INSTALL=0`).
fn ensure_targets(targets: &[&str]) -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let installed = match installed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            eprintln!("xtask: rustup not found; assuming the wasm targets are installed");
            return Ok(());
        }
    };
    let missing: Vec<&str> = targets.iter().copied().filter(|t| !installed.lines().any(|l| l.trim() == *t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add"]).args(&missing);
    run(cmd).context("adding the wasm targets")
}

/// Builds every plugin and returns the directory holding the components.
fn build_plugins(root: &Path) -> Result<PathBuf> {
    ensure_targets(&["wasm32-unknown-unknown", "wasm32-wasip2"])?;
    let target = target_dir(root);
    let manifest = root.join("plugins").join("Cargo.toml");
    let build = |triple: &str, names: &[&str]| -> Result<()> {
        let mut cmd = cargo(root);
        cmd.args(["build", "--quiet", "--release", "--target", triple, "--manifest-path"])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target);
        for name in names {
            cmd.args(["-p", name]);
        }
        run(cmd)
    };
    build("wasm32-unknown-unknown", PURE_PLUGINS)?;
    build("wasm32-wasip2", WASI_PLUGINS)?;

    let out = target.join("plugins");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for name in PURE_PLUGINS {
        let module_path =
            target.join("wasm32-unknown-unknown/release").join(format!("{}.wasm", name.replace('-', "_")));
        let module = std::fs::read(&module_path).with_context(|| format!("reading {}", module_path.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|e| e.validate(true).encode())
            .with_context(|| format!("turning {} into a component", module_path.display()))?;
        write_if_changed(&out.join(format!("{name}.wasm")), &component)?;
    }
    for name in WASI_PLUGINS {
        let path = target.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
        let component = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        write_if_changed(&out.join(format!("{name}.wasm")), &component)?;
    }
    Ok(out)
}

/// Keeps the file's mtime when nothing changed, so watchers and caches see no change.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let tmp = path.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
