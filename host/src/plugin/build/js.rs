//! Builds a JavaScript strategy project into a plugin.
//!
//! A project is a directory with:
//! - `package.json`: `name` (the plugin's name and the `.wasm` file's, so letters, digits, `-`,
//!   `_` and `.`), `version`, optional `description`, `author` (a string or `{name, email}`)
//!   and `license`, and `"type": "module"` (the strategy is an ES module, for the component as
//!   for `node --test`). The strategy module is `main` when it is given, else `strategy.js`.
//! - `tradebox.toml`: the permissions and config schema, as for a Rust plugin.
//! - the strategy module, which imports the SDK by the bare name `tradebox-sdk` and exports the
//!   world's functions (`export const { init, onEvents, onTickers, snapshot, restore } =
//!   exportStrategy(MyStrategy)`).
//!
//! The build bundles the module with esbuild (componentize-js resolves relative imports but not
//! bare names, so neither the SDK nor an npm package a strategy uses would be found), with
//! `tradebox-sdk` bound to the SDK embedded in this binary (so a strategy is always built with
//! the SDK of the host that builds it, whatever its `node_modules` holds) and the
//! `tradebox:strategy/*` imports left to the component. componentize-js then makes the
//! component, with WASI's HTTP and fetch-event features disabled: a host serves no network to a
//! plugin and refuses a component that imports `wasi:http`. Both tools are pinned and installed
//! from npm on first use into [`toolchains_dir`], each in a directory named by its version.

use super::{BuildError, Built, toolchains_dir, with_manifest, write_component};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tradebox_manifest::Language;
use tradebox_manifest::build::Package;

/// The componentize-js release strategies are built with. 0.23.0 builds this WIT where
/// `jco componentize` 1.35 fails on it (docs/research/issue-17-wasi-python-js.md).
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// The esbuild release that bundles a strategy with the SDK and its npm dependencies.
pub const ESBUILD: &str = "0.28.2";

/// The SDK a strategy imports as `tradebox-sdk`.
const SDK: &str = include_str!("../../../../sdk-js/index.js");

/// The contract the component is built against.
const WIT: &str = include_str!("../../../../wit/strategy.wit");

/// Runs esbuild's JavaScript API: `node bundle.mjs ESBUILD_MAIN ENTRY SDK OUT`. esbuild's own
/// messages go to stderr; a failed bundle exits 1 without a stack trace of this script.
const BUNDLE_SCRIPT: &str = r#"import { pathToFileURL } from 'node:url';
import path from 'node:path';
const [esbuildMain, entry, sdk, outfile, root] = process.argv.slice(2);
const esbuild = await import(pathToFileURL(esbuildMain).href);
// Only the project's own files (its node_modules included) and the SDK go into the plugin: an
// import of '/home/you/.okx/keys.json' must not bundle a file of the machine that builds it.
const inside = (file) => [root, path.dirname(sdk)].some((dir) => file === dir || file.startsWith(dir + path.sep));
const projectOnly = {
  name: 'project-only',
  setup(build) {
    build.onLoad({ filter: /.*/ }, (args) => {
      if (args.namespace === 'file' && !inside(args.path)) {
        return { errors: [{ text: `${args.path} is outside the project ${root}: a strategy bundles only its own files` }] };
      }
      return undefined;
    });
  },
};
try {
  await esbuild.build({
    plugins: [projectOnly],
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    target: 'es2022',
    external: ['tradebox:*'],
    alias: { 'tradebox-sdk': sdk },
    logLevel: 'warning',
  });
} catch {
  console.error('(tradebox-sdk is built in; any other package the strategy imports must be installed in ' +
    'its node_modules, e.g. `npm install NAME`; node: modules do not exist inside a plugin)');
  process.exit(1);
}
"#;

/// The JavaScript project at `dir`, as far as the build needs it.
#[derive(Debug)]
struct Project {
    package: Package,
    /// The strategy module.
    entry: PathBuf,
    tradebox_toml: PathBuf,
}

/// Builds the project in `dir` and writes its component to `out` (default `DIR/NAME.wasm`).
pub fn build(dir: &Path, out: Option<&Path>) -> Result<Built, BuildError> {
    let project = read_project(dir)?;
    // tradebox.toml checked before the toolchain's minute, not after it.
    super::manifest_of(&project.package, &project.tradebox_toml, Language::JavaScript)?;
    let tools = toolchains_dir()?;
    let componentize = install(&tools, "@bytecodealliance/componentize-js", COMPONENTIZE_JS)?;
    let esbuild = install(&tools, "esbuild", ESBUILD)?;
    let scratch = tempfile::Builder::new()
        .prefix("tradebox-js-build-")
        .tempdir()
        .map_err(super::io("create a scratch directory in", &std::env::temp_dir()))?;
    let s = scratch.path();
    std::fs::create_dir_all(s.join("wit")).map_err(super::io("create", &s.join("wit")))?;
    for (path, text) in
        [(s.join("tradebox-sdk.js"), SDK), (s.join("wit/strategy.wit"), WIT), (s.join("bundle.mjs"), BUNDLE_SCRIPT)]
    {
        std::fs::write(&path, text).map_err(super::io("write", &path))?;
    }

    eprintln!("bundling {} with esbuild {ESBUILD}", project.entry.display());
    let esbuild_main = esbuild.join("node_modules/esbuild/lib/main.js");
    let mut node = tool("node");
    // Real paths, as esbuild reports what it loads (a symlinked temporary directory otherwise
    // makes the SDK look outside).
    let sdk = std::fs::canonicalize(s.join("tradebox-sdk.js")).unwrap_or_else(|_| s.join("tradebox-sdk.js"));
    node.arg(s.join("bundle.mjs")).arg(&esbuild_main).arg(&project.entry).arg(sdk);
    let root = std::fs::canonicalize(dir).map_err(super::io("read", dir))?;
    node.arg(s.join("strategy.bundle.js")).arg(&root).current_dir(dir);
    run("esbuild", node)?;

    eprintln!(
        "componentize-js {COMPONENTIZE_JS}: making the component of {} (a JavaScript engine inside; 20-60 s)",
        project.package.name
    );
    let cli = componentize.join("node_modules/@bytecodealliance/componentize-js/src/cli.js");
    let mut node = tool("node");
    node.arg(cli).args(["strategy.bundle.js", "--wit", "wit", "-n", "strategy", "-d", "http", "fetch-event"]);
    node.args(["-o", "strategy.wasm"]).current_dir(s);
    run("componentize-js", node)?;

    let wasm = s.join("strategy.wasm");
    let component = std::fs::read(&wasm).map_err(super::io("read", &wasm))?;
    let component = with_manifest(&component, &project.package, &project.tradebox_toml, Language::JavaScript)?;
    write_component(dir, &project.package.name, out, component)
}

/// Reads `DIR/package.json` and refuses what is not a strategy project, each with its fix.
fn read_project(dir: &Path) -> Result<Project, BuildError> {
    let path = dir.join("package.json");
    let text = std::fs::read_to_string(&path).map_err(super::io("read", &path))?;
    let refuse = |reason: String| BuildError::NotAStrategy { path: path.clone(), reason };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| refuse(format!("not valid JSON: {e}")))?;
    let field = |key: &str| json.get(key).and_then(serde_json::Value::as_str).map(str::trim).unwrap_or_default();
    let name = field("name");
    if name.is_empty() {
        return Err(refuse("no \"name\": the plugin's name, e.g. \"name\": \"my-strategy\"".into()));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) || name.starts_with('.') {
        return Err(refuse(format!(
            "\"name\": {name:?} names the plugin and its .wasm file: use letters, digits, '-', '_' and '.' \
             (no npm scope)"
        )));
    }
    let version = field("version");
    if version.is_empty() {
        return Err(refuse("no \"version\": e.g. \"version\": \"0.1.0\"".into()));
    }
    if json.get("type").and_then(serde_json::Value::as_str) != Some("module") {
        return Err(refuse(
            "needs \"type\": \"module\": the strategy is an ES module (it imports tradebox-sdk and exports \
             the plugin's functions)"
                .into(),
        ));
    }
    let authors = match json.get("author") {
        Some(serde_json::Value::String(a)) if !a.trim().is_empty() => vec![a.trim().to_string()],
        Some(serde_json::Value::Object(a)) => {
            let part = |k: &str| a.get(k).and_then(serde_json::Value::as_str).map(str::trim).unwrap_or_default();
            match (part("name"), part("email")) {
                ("", _) => Vec::new(),
                (name, "") => vec![name.to_string()],
                (name, email) => vec![format!("{name} <{email}>")],
            }
        }
        _ => Vec::new(),
    };
    let main = json.get("main").and_then(serde_json::Value::as_str).map(str::trim).filter(|m| !m.is_empty());
    let entry = dir.join(main.unwrap_or("strategy.js"));
    if !entry.is_file() {
        let fix = if main.is_some() {
            "\"main\" in package.json names the strategy module, and it is not there"
        } else {
            "the strategy module is strategy.js, or the file \"main\" in package.json names"
        };
        return Err(BuildError::NotAStrategy { path: entry, reason: format!("missing: {fix}") });
    }
    let entry = std::fs::canonicalize(&entry).unwrap_or(entry);
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !entry.starts_with(&root) {
        return Err(BuildError::NotAStrategy {
            path: entry,
            reason: "outside the project: \"main\" in package.json must name a file of the project".into(),
        });
    }
    let tradebox_toml = dir.join("tradebox.toml");
    if !tradebox_toml.is_file() {
        return Err(BuildError::NotAStrategy {
            path: tradebox_toml,
            reason: "missing: it declares what the strategy asks of a host (its [permissions], e.g. instruments \
                     and order types) and its [config.*] settings; without it a host would grant nothing"
                .into(),
        });
    }
    let package = Package {
        name: name.to_string(),
        version: version.to_string(),
        authors,
        description: field("description").to_string(),
        license: field("license").to_string(),
    };
    Ok(Project { package, entry, tradebox_toml })
}

/// The directory holding npm package `package` at `version` (`DIR/node_modules/...`), installed
/// into `tools` first if it is not there. npm installs into a scratch directory beside it that
/// is renamed into place only when complete, so an interrupted install is never used; install
/// scripts are not run (neither tool needs them), so installing runs no package's code.
fn install(tools: &Path, package: &str, version: &str) -> Result<PathBuf, BuildError> {
    let short = package.rsplit('/').next().unwrap_or(package);
    let dest = tools.join(format!("{short}-{version}"));
    let marker = |root: &Path| root.join("node_modules").join(package).join("package.json");
    if marker(&dest).is_file() {
        return Ok(dest);
    }
    std::fs::create_dir_all(tools).map_err(super::io("create", tools))?;
    let partial = tools.join(format!(".{short}-{version}.partial-{}", std::process::id()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(super::io("remove", &partial))?;
    }
    eprintln!("installing {package}@{version} from npm into {} (once)", dest.display());
    let mut npm = tool("npm");
    npm.args(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix"]).arg(&partial);
    npm.arg(format!("{package}@{version}"));
    let installed = run("npm install", npm);
    if installed.is_err() || !marker(&partial).is_file() {
        let _ = std::fs::remove_dir_all(&partial);
        installed?;
        return Err(BuildError::Spawn {
            program: format!("npm install {package}@{version}"),
            source: std::io::Error::other("it finished without installing the package"),
        });
    }
    match std::fs::rename(&partial, &dest) {
        Ok(()) => Ok(dest),
        // Another build installed it meanwhile: theirs is complete too.
        Err(_) if marker(&dest).is_file() => {
            let _ = std::fs::remove_dir_all(&partial);
            Ok(dest)
        }
        Err(e) => Err(BuildError::Io { action: "move the installed toolchain into", path: dest, source: e }),
    }
}

/// `program` with its output on this process's stderr (stdout stays the command's own) and
/// without the exchange credentials the host reads from the environment: npm and node run
/// outside any sandbox.
fn tool(program: &str) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("OKX_")) {
            command.env_remove(key);
        }
    }
    command.stdin(Stdio::null()).stdout(std::io::stderr());
    command
}

/// Runs `command`; a failure names `what` and leaves the tool's own messages (above) to say why.
fn run(what: &str, mut command: Command) -> Result<(), BuildError> {
    let status = command.status().map_err(|source| {
        let source = if source.kind() == std::io::ErrorKind::NotFound {
            std::io::Error::new(
                source.kind(),
                "not found on PATH: building a JavaScript strategy needs Node.js (20 or newer) with npm \
                 (https://nodejs.org or the system's package manager)",
            )
        } else {
            source
        };
        BuildError::Spawn { program: what.to_string(), source }
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Tool { step: what.to_string(), status, hint: String::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = "[permissions]\ninstruments = [\"BTC-USDT\"]\n";

    fn project(package_json: &str, files: &[&str]) -> (tempfile::TempDir, Result<Project, BuildError>) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("package.json"), package_json).expect("write");
        for file in files {
            let text = if *file == "tradebox.toml" { TOML } else { "export function init() {}\n" };
            std::fs::write(dir.path().join(file), text).expect("write");
        }
        let read = read_project(dir.path());
        (dir, read)
    }

    #[test]
    fn package_json_gives_the_manifests_package_and_the_entry() {
        let json = r#"{"name": "my-strat", "version": "1.2.3", "description": "d", "license": "MIT",
                      "author": {"name": "Ann", "email": "ann@example.com"}, "type": "module"}"#;
        let (dir, read) = project(json, &["strategy.js", "tradebox.toml"]);
        let p = read.expect("a project");
        assert_eq!(p.package.name, "my-strat");
        assert_eq!(p.package.version, "1.2.3");
        assert_eq!(p.package.authors, vec!["Ann <ann@example.com>".to_string()]);
        assert_eq!((p.package.description.as_str(), p.package.license.as_str()), ("d", "MIT"));
        assert!(p.entry.ends_with("strategy.js"), "{}", p.entry.display());
        assert_eq!(p.tradebox_toml, dir.path().join("tradebox.toml"));

        let json = r#"{"name": "s", "version": "0.1.0", "author": "Bob", "type": "module", "main": "src/main.js"}"#;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("src")).expect("mkdir");
        std::fs::write(dir.path().join("package.json"), json).expect("write");
        std::fs::write(dir.path().join("src/main.js"), "").expect("write");
        std::fs::write(dir.path().join("tradebox.toml"), TOML).expect("write");
        let p = read_project(dir.path()).expect("a project");
        assert_eq!(p.package.authors, vec!["Bob".to_string()]);
        assert!(p.entry.ends_with("src/main.js"));
        assert_eq!((p.package.description.as_str(), p.package.license.as_str()), ("", ""));
    }

    #[test]
    fn what_is_not_a_strategy_project_is_refused_with_the_file_and_the_fix() {
        let ok = r#""version": "0.1.0", "type": "module""#;
        let both = &["strategy.js", "tradebox.toml"][..];
        let refused: [(String, &[&str], &str, &str); 8] = [
            ("{".into(), both, "package.json", "not valid JSON"),
            (format!("{{{ok}}}"), both, "package.json", "no \"name\""),
            (format!("{{\"name\": \"@me/s\", {ok}}}"), both, "package.json", "no npm scope"),
            (format!("{{\"name\": \"../s\", {ok}}}"), both, "package.json", "letters, digits"),
            (r#"{"name": "s", "type": "module"}"#.into(), both, "package.json", "no \"version\""),
            (r#"{"name": "s", "version": "0.1.0"}"#.into(), both, "package.json", "\"type\": \"module\""),
            (format!("{{\"name\": \"s\", {ok}}}"), &["tradebox.toml"], "strategy.js", "missing"),
            (format!("{{\"name\": \"s\", {ok}}}"), &["strategy.js"], "tradebox.toml", "[permissions]"),
        ];
        for (json, files, file, expected) in refused {
            let (_dir, read) = project(&json, files);
            let err = read.expect_err(&json);
            assert!(matches!(err, BuildError::NotAStrategy { .. }), "{json}: {err:?}");
            let err = err.to_string();
            assert!(err.contains(file) && err.contains(expected), "{json}: {err}");
        }
        let (_dir, read) = project(&format!("{{\"name\": \"s\", \"main\": \"app.js\", {ok}}}"), both);
        let err = read.expect_err("main names a missing file").to_string();
        assert!(err.contains("app.js") && err.contains("\"main\""), "{err}");
    }

    #[test]
    fn the_embedded_sdk_and_contract_are_the_ones_a_strategy_needs() {
        assert!(WIT.contains("world strategy") && WIT.contains("package tradebox:strategy@0.1.0"));
        for export in ["export function exportStrategy", "export class Strategy", "export function dispatchTickers"] {
            assert!(SDK.contains(export), "{export}");
        }
    }
}
