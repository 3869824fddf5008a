//! `cargo xtask <command>`: the project's own build steps, so a fresh machine with only the Rust
//! toolchain needs nothing else.
//!
//! - `plugins`: add the wasm targets if missing, build every plugin of the `plugins/` workspace,
//!   write components to `target/plugins/NAME.wasm`;
//! - `demo [ARGS]`: `plugins`, build the host, then run `tradebox demo ARGS`;
//! - `test [ARGS]`: `plugins` (and the Python SDK's unit tests), the python packages of the third-party client test (pinned in
//!   `tests/thirdparty/requirements.txt`, into `target/pydeps`), then `cargo test --workspace ARGS`;
//! - `bench [ARGS]`: `plugins`, then `cargo bench -p tradebox ARGS`;
//! - `ci`: format check, clippy with warnings denied, then `test`.
//!
//! A plugin is any member of `plugins/Cargo.toml`'s workspace with a `cdylib` library (as
//! `cargo metadata` lists them), named after its package. It is built for
//! `wasm32-unknown-unknown` and turned into a component as `tradebox plugin build` does
//! (`tradebox_package::component`), unless its `Cargo.toml` names another target:
//!
//! ```toml
//! [package.metadata.tradebox]
//! target = "wasm32-wasip2"   # cargo writes a component itself; used as built
//! ```
//!
//! Strategies in other languages sit in `plugins/python/NAME` (a `pyproject.toml`) and
//! `plugins/js/NAME` (a `package.json`); they are built exactly as a user builds theirs, by
//! `tradebox plugin build DIR --out target/plugins/NAME.wasm` (the host binary is built first),
//! with their pinned toolchains installed into `target/toolchains`, and only when a source
//! (the project, its language's SDK, the WIT, the host binary) is newer than the component.
//!
//! Builds are never `--quiet`: the first one compiles for minutes, and cargo's progress is the
//! only sign of life; a warm one prints cargo's one `Finished` line per step.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target a plugin is built for unless its `[package.metadata.tradebox] target` says
/// otherwise: its components import exactly the tradebox world and nothing else.
const PURE_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    match command.as_str() {
        "plugins" => build_plugins(&root).map(|_| ()),
        "demo" => {
            let dir = build_plugins(&root)?;
            // Built first, with cargo's progress, then run: `cargo run --quiet` compiled the host
            // for minutes on a fresh clone without a line of output.
            let mut build = cargo(&root);
            build.args(["build", "-p", "tradebox"]);
            run(build)?;
            let binary = target_dir(&root).join("debug").join(format!("tradebox{}", std::env::consts::EXE_SUFFIX));
            let mut demo = Command::new(&binary);
            demo.arg("demo").arg("--plugin-dir").arg(&dir).args(&rest);
            exec(demo)
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

/// Builds the plugins, runs the plugins' own unit tests natively, then every workspace test (with
/// the browser the console's tests drive installed first).
fn test(root: &Path, rest: &[String]) -> Result<()> {
    let dir = build_plugins(root)?;
    let mut plugin_tests = cargo(root);
    plugin_tests
        .args(["test", "--manifest-path"])
        .arg(root.join("plugins").join("Cargo.toml"))
        .args(["-p", "sma-cross", "-p", "market-maker"])
        .env("CARGO_TARGET_DIR", target_dir(root));
    run(plugin_tests)?;
    // The Python SDK's own unit tests, natively, on bindings made by the pinned componentize-py
    // that building the Python plugins installed.
    let mut sdk_tests = Command::new("python3");
    sdk_tests
        .args(["-m", "unittest", "discover", "-s", "sdk-python/tests"])
        .current_dir(root)
        .env("TRADEBOX_TOOLCHAINS", target_dir(root).join("toolchains"));
    run(sdk_tests)?;
    let pydeps = python_deps(root)?;
    browser()?;
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

/// Debian's Chromium and its WebDriver, which the console's browser tests drive
/// (`tests/console.rs`): installed with apt-get when either is missing, as root or through
/// `sudo -n`. The tests fail without them rather than skip, so this is where they come from.
fn browser() -> Result<()> {
    const FILES: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromedriver"];
    const PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];
    let missing: Vec<&str> = FILES.iter().copied().filter(|f| !Path::new(f).is_file()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let sudo = !root && Command::new("sudo").args(["-n", "true"]).output().is_ok_and(|o| o.status.success());
    if !root && !sudo {
        bail!(
            "{} missing: install Debian's {} (`apt-get install chromium chromium-driver` as root) for the console's browser tests",
            missing.join(" and "),
            PACKAGES.join(" and ")
        );
    }
    let apt = |args: &[&str]| {
        let mut cmd = if sudo { Command::new("sudo") } else { Command::new("apt-get") };
        if sudo {
            cmd.args(["-n", "apt-get"]);
        }
        // English messages: an unknown package is told by apt's wording below.
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive").env("LC_ALL", "C");
        cmd
    };
    let install = || {
        let mut cmd = apt(&["install", "-y", "--no-install-recommends"]);
        cmd.args(PACKAGES);
        println!("xtask: {} missing; running {cmd:?}", missing.join(" and "));
        // apt's progress goes to stdout, shown as it comes; its errors are kept to tell an
        // unknown package (a stale or empty package list) from other failures, then shown.
        cmd.stdout(std::process::Stdio::inherit()).stderr(std::process::Stdio::piped());
        let out = cmd.output().with_context(|| format!("could not start {cmd:?}"))?;
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        Ok::<_, anyhow::Error>(out)
    };
    let out = install()?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !(stderr.contains("Unable to locate package") || stderr.contains("has no installation candidate")) {
        bail!("installing {} for the console's browser tests failed: {}", PACKAGES.join(" and "), out.status);
    }
    let update = apt(&["update"]);
    println!("xtask: apt does not know the packages yet; running {update:?}");
    run(update).context("updating apt's package lists")?;
    let out = install()?;
    if !out.status.success() {
        bail!("installing {} for the console's browser tests failed: {}", PACKAGES.join(" and "), out.status);
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// Cargo in the workspace, with the environment of a shell rather than the one `cargo xtask`
/// gave us: a build from here and one from the shell then share their artifacts.
fn cargo(root: &Path) -> Command {
    let mut cmd = tradebox_package::component::cargo();
    cmd.current_dir(root);
    cmd
}

/// Becomes `cmd` where the platform allows (Ctrl-C then reaches the demo alone, which draws
/// its final board, instead of ending xtask under it), else runs it to the end.
fn exec(mut cmd: Command) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let err = cmd.exec();
        Err(err).with_context(|| format!("could not start {}", cmd.get_program().to_string_lossy()))
    }
    #[cfg(not(unix))]
    run(cmd)
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

/// A plugin of the `plugins/` workspace.
struct Plugin {
    /// Its package name, the name of its component file.
    name: String,
    /// Its library's name: the file cargo writes (`sma_cross.wasm` for `sma-cross`).
    lib: String,
    /// What it is built for.
    target: String,
}

/// The workspace members of `plugins/Cargo.toml` with a `cdylib` library, as cargo reads the
/// workspace (so a plugin is added by adding it to the workspace, nowhere else).
fn discover_plugins(root: &Path, manifest: &Path) -> Result<Vec<Plugin>> {
    let mut cmd = cargo(root);
    cmd.args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"]).arg(manifest);
    let out = cmd.output().with_context(|| format!("could not start {cmd:?}"))?;
    if !out.status.success() {
        bail!("cargo metadata of {} failed:\n{}", manifest.display(), String::from_utf8_lossy(&out.stderr));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading the output of cargo metadata")?;
    let mut plugins = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let cdylib = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib")));
        let (Some(name), Some(lib)) = (package["name"].as_str(), cdylib.and_then(|t| t["name"].as_str())) else {
            continue;
        };
        let target = package["metadata"]["tradebox"]["target"].as_str().unwrap_or(PURE_TARGET);
        plugins.push(Plugin { name: name.to_string(), lib: lib.replace('-', "_"), target: target.to_string() });
    }
    if plugins.is_empty() {
        bail!("no plugin (a workspace member with a cdylib library) in {}", manifest.display());
    }
    Ok(plugins)
}

/// Builds every plugin and returns the directory holding the components.
fn build_plugins(root: &Path) -> Result<PathBuf> {
    let manifest = root.join("plugins").join("Cargo.toml");
    let plugins = discover_plugins(root, &manifest)?;
    let mut targets: Vec<&str> = plugins.iter().map(|p| p.target.as_str()).collect();
    targets.sort_unstable();
    targets.dedup();
    ensure_targets(&targets)?;
    let target_dir = target_dir(root);
    for triple in &targets {
        let mut cmd = cargo(root);
        cmd.args(["build", "--release", "--target", triple, "--manifest-path"])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target_dir);
        for plugin in plugins.iter().filter(|p| p.target == *triple) {
            cmd.args(["-p", &plugin.name]);
        }
        run(cmd)?;
    }

    let out = target_dir.join("plugins");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for plugin in &plugins {
        let built = target_dir.join(&plugin.target).join("release").join(format!("{}.wasm", plugin.lib));
        let bytes = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
        let component = if plugin.target == PURE_TARGET {
            tradebox_package::component::from_module(&bytes)
                .with_context(|| format!("turning {} into a component", built.display()))?
        } else {
            // Other targets (wasm32-wasip2) have cargo write a component already.
            bytes
        };
        let path = out.join(format!("{}.wasm", plugin.name));
        tradebox_package::component::write_if_changed(&path, &component)?;
    }
    build_other_languages(root, &target_dir, &out)?;
    Ok(out)
}

/// Builds `plugins/python/*` and `plugins/js/*` with `tradebox plugin build`, as a user would.
fn build_other_languages(root: &Path, target_dir: &Path, out: &Path) -> Result<()> {
    let mut projects = Vec::new();
    for (language, file, sdk) in [("python", "pyproject.toml", "sdk-python"), ("js", "package.json", "sdk-js")] {
        let dir = root.join("plugins").join(language);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut found: Vec<PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join(file).is_file()).collect();
        found.sort();
        projects.extend(found.into_iter().map(|p| (p, root.join(sdk))));
    }
    if projects.is_empty() {
        return Ok(());
    }
    let mut cmd = cargo(root);
    cmd.args(["build", "-p", "tradebox"]).env("CARGO_TARGET_DIR", target_dir);
    run(cmd)?;
    let tradebox = target_dir.join("debug").join(format!("tradebox{}", std::env::consts::EXE_SUFFIX));
    let toolchains = target_dir.join("toolchains");
    for (project, sdk) in projects {
        let name = package_name(&project)?;
        let path = out.join(format!("{name}.wasm"));
        let newest = [project.as_path(), sdk.as_path(), &root.join("wit"), tradebox.as_path()]
            .iter()
            .filter_map(|p| newest_mtime(p))
            .max();
        let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if let (Some(built), Some(newest)) = (built, newest)
            && built >= newest
        {
            println!("{name}: up to date ({})", path.display());
            continue;
        }
        let mut cmd = Command::new(&tradebox);
        cmd.args(["plugin", "build"]).arg(&project).arg("--out").arg(&path).env("TRADEBOX_TOOLCHAINS", &toolchains);
        run(cmd)?;
        // An unchanged component keeps its old time (write_if_changed): mark it as checked now.
        if let Ok(file) = std::fs::File::options().append(true).open(&path) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
    }
    Ok(())
}

/// The project's name: `[project] name` of a `pyproject.toml`, `name` of a `package.json`.
fn package_name(project: &Path) -> Result<String> {
    let py = project.join("pyproject.toml");
    if py.is_file() {
        let text = std::fs::read_to_string(&py).with_context(|| format!("reading {}", py.display()))?;
        let toml: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {}", py.display()))?;
        return toml
            .get("project")
            .and_then(|p| p.get("name"))
            .and_then(toml::Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("{}: no [project] name", py.display()));
    }
    let js = project.join("package.json");
    let text = std::fs::read_to_string(&js).with_context(|| format!("reading {}", js.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", js.display()))?;
    json["name"].as_str().map(str::to_string).with_context(|| format!("{}: no name", js.display()))
}

/// The newest modification time of a file or of any file under a directory (build output and
/// installed packages excluded).
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let skip = |name: &str| {
        name.starts_with('.') || name == "node_modules" || name == "__pycache__" || name.ends_with(".wasm")
    };
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| !skip(&e.file_name().to_string_lossy()))
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}
