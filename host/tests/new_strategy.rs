//! Issue 17's "done when", as a new user does it, with the real binary and the real toolchains
//! (installed by `cargo xtask plugins` into `target/toolchains`, pinned): `tradebox plugin new
//! my-strat --lang python|js`, the build command it prints, the starter test it wrote (which
//! builds and backtests the strategy on the bundled sample), a backtest by hand, a load into a
//! running host, then a change to the source, a build and a hot reload.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `program ARGS` in `dir` as the user's shell would run it, with the tests' own caches.
fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    let tradebox = env!("CARGO_BIN_EXE_tradebox");
    Command::new(if program == "tradebox" { tradebox } else { program })
        .args(args)
        .current_dir(dir)
        .env("TRADEBOX", tradebox)
        .env("TRADEBOX_TOOLCHAINS", root().join("target/toolchains"))
        .env("XDG_CACHE_HOME", root().join("target/test-xdg-cache"))
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

fn ok(out: &Output, what: &str) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    format!("{stdout}{stderr}")
}

/// A host on the simulator with its admin API on a free port; killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn running_host(dir: &Path) -> (Running, String, PathBuf) {
    use std::io::{BufRead, BufReader};
    let token = dir.join("admin.token");
    let config = dir.join("host.toml");
    let text = format!(
        "[venue]\nkind = \"sim\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = {:?}\n",
        token.display().to_string()
    );
    std::fs::write(&config, text).expect("config");
    let mut host = Command::new(env!("CARGO_BIN_EXE_tradebox"))
        .args(["run", "--config"])
        .arg(&config)
        .args(["--duration", "300s"])
        .env("XDG_CACHE_HOME", root().join("target/test-xdg-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tradebox run starts");
    let mut lines = BufReader::new(host.stdout.take().expect("stdout")).lines();
    let url = loop {
        let line = lines.next().expect("the host prints its admin address").expect("utf-8");
        if let Some(rest) = line.strip_prefix("admin API at ") {
            break rest.split_whitespace().next().expect("url").to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (Running(host), url, token)
}

/// The whole path for one language: `test` is the starter test's command, `source` the file to
/// change before the reload.
fn new_build_test_backtest_load_and_reload(lang: &str, test: &[&str], source: &str) {
    let work = tempfile::tempdir().expect("temp dir");
    let said = ok(&run("tradebox", &["plugin", "new", "my-strat", "--lang", lang], work.path()), "plugin new");
    assert!(said.contains("tradebox plugin build .") && said.contains(test.join(" ").as_str()), "{said}");
    let project = work.path().join("my-strat");

    // The build command it printed, then the starter test it wrote.
    let built = ok(&run("tradebox", &["plugin", "build", "."], &project), "plugin build");
    assert!(built.contains(&format!("language   {lang}")) && built.contains("this host can load it"), "{built}");
    let (program, args) = test.split_first().expect("a command");
    ok(&run(program, args, &project), "the starter test");

    // A backtest by hand: it trades on the sample and never fails.
    let args = ["backtest", "my-strat.wasm", "--instrument", "BTC-USDT", "--data", "data/sample.csv", "--json"];
    let out = ok(&run("tradebox", &args, &project), "backtest");
    let report: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the backtest's JSON: {out}"));
    let plugin = &report["plugins"][0];
    assert!(plugin["fault"].is_null() && plugin["orders"].as_u64().unwrap_or(0) > 0, "{plugin}");

    // Into a running host, then a change, a build and a hot reload.
    let (_host, url, token) = running_host(work.path());
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--admin", &url, "--token-file", token.to_str().expect("utf-8")]);
        run("tradebox", &all, &project)
    };
    ok(&cli(&["plugin", "load", "my-strat.wasm", "--instrument", "BTC-USDT"]), "plugin load");
    let listed = |field: &str| -> serde_json::Value {
        let out = ok(&cli(&["plugin", "list", "--json"]), "plugin list");
        let list: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let mine = list["plugins"].as_array().and_then(|p| p.iter().find(|p| p["name"] == "my-strat").cloned());
        mine.unwrap_or_else(|| panic!("my-strat is not listed: {out}"))[field].clone()
    };
    let first = listed("hash");
    let path = project.join(source);
    let text = std::fs::read_to_string(&path).expect("the source");
    assert!(text.contains("my-strat on "), "the template's log line: {text}");
    std::fs::write(&path, text.replace("my-strat on ", "my-strat (second version) on ")).expect("edit");
    ok(&run("tradebox", &["plugin", "build", "."], &project), "the second build");
    ok(&cli(&["plugin", "reload", "my-strat"]), "plugin reload");
    assert_eq!(listed("reloads"), 1);
    assert_ne!(listed("hash"), first, "the running version is the new build");
    assert_eq!(listed("run_state"), "Running");
}

#[test]
fn a_python_strategy_from_plugin_new_to_a_hot_reload() {
    new_build_test_backtest_load_and_reload("python", &["python3", "-m", "unittest"], "app.py");
}

#[test]
fn a_javascript_strategy_from_plugin_new_to_a_hot_reload() {
    new_build_test_backtest_load_and_reload("js", &["npm", "test"], "strategy.js");
}
