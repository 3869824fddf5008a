//! What the console's browser tests (`console.rs`) and its page benchmark
//! (`benches/console_page.rs`) both stand on: a host trading on the OKX simulator through the
//! real OKX client, with its admin API (and so the console) on loopback; and a headless Debian
//! Chromium driven through WebDriver by a chromedriver this process starts and ends.
//!
//! Included by both with `#[path]` rather than put in the `tradebox-e2e` library, so that the
//! WebDriver client stays a dev-dependency.

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradebox::admin::{AdminConfig, AdminServer};
use tradebox::audit::AuditLog;
use tradebox::plugin::{Mode, Runtime};
use tradebox::running::Host;
use tradebox::venue::okx::OkxVenue;
use tradebox_e2e::{cache_dir, okx, spec};
use tradebox_okx::limits::{Limiter, LimiterConfig};
use tradebox_sim::server::{Faults, SimServer};

/// Debian's Chromium (`apt-get install chromium`; `cargo xtask test` installs it).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Its WebDriver (`apt-get install chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The market maker's settings: the demo's, which quote inside the simulator's spread and so
/// fill within seconds.
pub const MM_CONFIG: &str = r#"{"symbol":"ETH-USDT","spread_bps":6,"size":0.5,"max_inventory":2}"#;

/// The host under test: the simulator, a host on it through the OKX client with an audit log
/// and the market maker `mm` loaded, and its admin API.
pub struct Stand {
    /// The OKX-compatible simulator (its exchange state is read directly).
    pub sim: SimServer,
    /// The host.
    pub host: Arc<Host>,
    /// The host's audit log.
    #[allow(dead_code, reason = "the browser tests read it; the page benchmark does not")]
    pub audit: Arc<AuditLog>,
    /// The admin API serving the console.
    pub admin: AdminServer,
    /// The admin token, as the operator would read it from the token file.
    pub token: String,
    _dir: tempfile::TempDir,
}

impl Stand {
    /// Starts everything; the market maker is trading (or about to) when this returns.
    pub async fn start() -> Self {
        let sim = okx::sim(Faults::default()).await;
        let dir = tempfile::tempdir().expect("a temporary directory for the audit log and the token");
        let audit = AuditLog::open(&dir.path().join("audit.jsonl"), Duration::from_millis(50)).expect("audit log");
        let limiter = Arc::new(Limiter::new(LimiterConfig::default()));
        let venue =
            OkxVenue::connect(okx::okx_config(&sim), okx::credentials("read_only,trade"), limiter, Some(audit.clone()))
                .await
                .expect("the OKX venue connects to the simulator");
        let runtime = Runtime::new(Mode::Live, Some(cache_dir())).expect("wasm runtime");
        let host = Arc::new(
            Host::start_audited(venue, runtime, Some(audit.clone())).await.expect("the host starts on the simulator"),
        );
        tokio::task::block_in_place(|| host.load(spec("mm", "market-maker", MM_CONFIG, &["ETH-USDT"])))
            .expect("the market maker loads");
        let config = AdminConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            token_file: Some(dir.path().join("admin.token")),
            ..AdminConfig::default()
        };
        let admin =
            tradebox::admin::start(host.clone(), &config, Default::default()).await.expect("the admin API starts");
        let token = std::fs::read_to_string(admin.token_file()).expect("the admin token file").trim().to_string();
        Self { sim, host, audit, admin, token, _dir: dir }
    }

    /// The console's address.
    pub fn url(&self) -> String {
        self.admin.console_url()
    }

    /// Stops the admin API and the host (the simulator goes with `self`).
    pub async fn stop(self) {
        let Self { sim, host, admin, .. } = self;
        drop(admin);
        host.shutdown().await;
        drop(sim);
    }
}

/// A headless Chromium session through a chromedriver of our own on a free loopback port.
/// Dropping it ends chromedriver and the browser it started, so a failed test leaves no
/// browser behind.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and opens a session. Fails the test, with what to install, when
    /// Chromium or chromedriver is missing: a browser test is never skipped.
    ///
    /// `page_load` is WebDriver's page load strategy: `"normal"` (navigating waits until the
    /// page has loaded) for the tests; `"none"` (it returns at once) for the benchmark, which
    /// watches the page from the start of its navigation.
    pub async fn start(page_load: &str) -> Self {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).is_file(),
                "{path} is missing: the console's browser tests need Debian's {package} \
                 (`cargo xtask test` installs it; or `apt-get install chromium chromium-driver`)"
            );
        }
        let profile = tempfile::tempdir().expect("a temporary Chromium profile directory");
        let driver = Driver::start(profile.path()).await;
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1400,1000".into(),
            format!("--user-data-dir={}", profile.path().join("profile").display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert("pageLoadStrategy".into(), page_load.into());
        capabilities.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": CHROMIUM, "args": args }));
        let client = ClientBuilder::new(HttpConnector::new()).capabilities(capabilities).connect(&driver.url).await;
        let client = client.unwrap_or_else(|e| {
            panic!("opening a Chromium session through {CHROMEDRIVER}: {e}\n{}", driver.log_tail())
        });
        Self { client, driver, _profile: profile }
    }

    /// Ends the session (chromedriver closes the browser), then chromedriver.
    pub async fn quit(mut self) {
        if let Err(e) = self.client.clone().close().await {
            eprintln!("closing the browser session: {e}");
        }
        self.driver.kill();
    }
}

/// A chromedriver process of ours.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Driver {
    /// Starts chromedriver on a free loopback port, logging into `dir`, and waits until it
    /// answers.
    async fn start(dir: &Path) -> Self {
        let log = dir.join("chromedriver.log");
        let port = free_port();
        let log_file = std::fs::File::create(&log).expect("chromedriver's log file");
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("chromedriver's log file"))
            .stderr(log_file);
        // Its own process group: the browser it starts is in it too, and ends with it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let mut driver = Self { child, url: format!("http://127.0.0.1:{port}"), log };
        let start = Instant::now();
        loop {
            if let Some(status) = driver.child.try_wait().expect("chromedriver's exit status") {
                panic!("{CHROMEDRIVER} exited at start ({status}):\n{}", driver.log_tail());
            }
            let answer = reqwest::get(format!("{}/status", driver.url)).await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return driver;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{CHROMEDRIVER} did not answer on port {port} within 30 s:\n{}",
                driver.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The end of chromedriver's log.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // The group made at spawn (chromedriver and the browser it started), by its id.
        #[cfg(unix)]
        {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port free on loopback now (the listener is closed before chromedriver takes it).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("the port's address").port()
}
