//! The `tradebox` binary.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tradebox::config::{Config, VenueKind};
use tradebox::host::Host;
use tradebox::plugin::{Runtime, runtime::check_imports};
use tradebox::ratelimit::{Limiter, LimiterConfig};
use tradebox::venue::okx::OkxVenue;
use tradebox::venue::sim::SimVenue;

#[derive(Parser)]
#[command(name = "tradebox", version, about = "A trading host that runs strategies as sandboxed wasm components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the example strategies with a live board: the simulator on loopback, reached through
    /// the host's real OKX client (signing, clock, rate limits, audit log).
    Demo {
        /// Stop after this long (e.g. `20s`, `5m`); otherwise at Ctrl-C.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Where the plugin components are (`cargo xtask plugins` writes them).
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/plugins"))]
        plugin_dir: PathBuf,
        /// Seed of the simulated market (a new one each run when absent).
        #[arg(long)]
        seed: Option<u64>,
        /// Call the simulated venue directly instead of through the OKX protocol on loopback.
        #[arg(long)]
        direct: bool,
    },
    /// Run the plugins of a config file.
    Run {
        /// The TOML config.
        #[arg(long)]
        config: PathBuf,
        /// Accept an OKX key with withdraw permission (refused otherwise).
        #[arg(long)]
        allow_withdraw_key: bool,
        /// Stop after this long; otherwise at Ctrl-C.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
    },
    /// A running host's state: account, plugins, venue (through its admin API).
    Status {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Kill switch: stop new orders and cancel every open one, for the account or one plugin.
    Halt {
        /// Only this plugin.
        #[arg(long)]
        plugin: Option<String>,
        /// Recorded in the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Back to ACTIVE after a halt (the loss watch of the scope starts over).
    Resume {
        /// Only this plugin.
        #[arg(long)]
        plugin: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Plugin tools.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Run the OKX-compatible simulator on loopback until Ctrl-C; prints its URLs and, when the
    /// config names no key, a generated demo key, secret and passphrase.
    Sim {
        /// The simulator's TOML config (market, API keys, faults); see the `sim` module docs.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen on 127.0.0.1 at this port (0: any free port).
        #[arg(long, conflicts_with = "listen")]
        port: Option<u16>,
        /// Listen at this address instead, e.g. `127.0.0.1:8080`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Recorded OKX WebSocket feeds.
    Feed {
        #[command(subcommand)]
        command: FeedCommand,
    },
    /// OKX diagnostics.
    Okx {
        #[command(subcommand)]
        command: OkxCommand,
    },
}

/// How to reach a running host.
#[derive(clap::Args)]
struct AdminArgs {
    /// The host's admin API.
    #[arg(long, default_value_t = format!("http://127.0.0.1:{}", tradebox::admin::DEFAULT_PORT))]
    admin: String,
    /// The file holding its token (written by the host at start).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

impl AdminArgs {
    async fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value> {
        let token = self.token_file.clone().unwrap_or_else(tradebox::admin::default_token_file);
        Ok(tradebox::admin::client::request(&self.admin, &token, method, path, body).await?)
    }
}

#[derive(Subcommand)]
enum FeedCommand {
    /// Runs every line of a recorded feed (one raw OKX WebSocket frame per line, as received)
    /// through the host's own parser and book builder, and ends with one summary line.
    Check {
        /// The recording.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum OkxCommand {
    /// Print the prehash string and the signature of a request, signed with the secret in
    /// OKX_API_SECRET (never printed), to compare with another client when OKX answers 50113.
    Sign {
        /// The `OK-ACCESS-TIMESTAMP`, e.g. `2020-12-08T09:08:57.715Z` (WS login: seconds).
        #[arg(long)]
        timestamp: String,
        /// `GET` or `POST` (upper-cased for you).
        #[arg(long)]
        method: String,
        /// Request path with the query string exactly as sent, e.g. `/api/v5/account/balance?ccy=BTC`.
        #[arg(long)]
        path: String,
        /// The JSON body exactly as sent (empty for GET).
        #[arg(long, default_value = "")]
        body: String,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Check that a component would load: valid, and importing nothing beyond the contract.
    Check {
        /// The component.
        file: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Demo { .. }) { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Demo { duration, plugin_dir, seed, direct } => {
                let via =
                    if direct { tradebox::demo::DemoVenue::Direct } else { tradebox::demo::DemoVenue::OkxProtocol };
                tradebox::demo::run(&plugin_dir, duration, seed, via).await
            }
            Command::Run { config, duration, allow_withdraw_key } => run(config, duration, allow_withdraw_key).await,
            Command::Plugin { command: PluginCommand::Check { file } } => check(file),
            Command::Feed { command: FeedCommand::Check { file } } => feed_check(&file),
            Command::Status { admin } => {
                let status = admin.call("GET", "/status", None).await?;
                println!("{}", serde_json::to_string_pretty(&status)?);
                Ok(())
            }
            Command::Halt { plugin, reason, admin } => {
                let answer =
                    admin.call("POST", "/halt", Some(serde_json::json!({"plugin": plugin, "reason": reason}))).await?;
                println!("{answer}");
                Ok(())
            }
            Command::Resume { plugin, admin } => {
                let answer = admin.call("POST", "/resume", Some(serde_json::json!({"plugin": plugin}))).await?;
                println!("{answer}");
                Ok(())
            }
            Command::Sim { config, port, listen } => {
                sim(config, listen.or_else(|| port.map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p))))).await
            }
            Command::Okx { command: OkxCommand::Sign { timestamp, method, path, body } } => {
                okx_sign(&timestamp, &method, &path, &body)
            }
        }
    })
}

fn okx_sign(timestamp: &str, method: &str, path: &str, body: &str) -> Result<()> {
    use tradebox_okx::sign::{Signer, prehash};
    let secret = std::env::var(tradebox_okx::credentials::ENV_SECRET)
        .ok()
        .filter(|s| !s.is_empty())
        .with_context(|| format!("set {} to the API secret to sign with", tradebox_okx::credentials::ENV_SECRET))?;
    let key = std::env::var(tradebox_okx::credentials::ENV_KEY).unwrap_or_default();
    let credentials = tradebox_okx::Credentials::new(&key, &secret, "");
    let method = method.to_ascii_uppercase();
    if body.is_empty() && method == "POST" {
        eprintln!("note: POST with an empty body; OKX answers 50000 to that");
    }
    if timestamp.len() != 24 && timestamp.parse::<i64>().is_err() {
        eprintln!(
            "note: {timestamp:?} is not OKX's timestamp shape (2020-12-08T09:08:57.715Z); OKX would answer 50112"
        );
    }
    let signer = Signer::new(credentials);
    println!("prehash:   {}", prehash(timestamp, &method, path, body));
    println!("signature: {}", signer.sign(timestamp, &method, path, body.as_bytes()));
    if !key.is_empty() {
        println!("key:       {}", signer.credentials().key_hint());
    }
    Ok(())
}

async fn run(path: PathBuf, duration: Option<Duration>, allow_withdraw_key: bool) -> Result<()> {
    let config = Config::load(&path)?;
    let runtime = Runtime::new(config.runtime.mode, config.cache_dir())?;
    let audit = match config.audit() {
        Some((file, sync)) => Some(
            tradebox::audit::AuditLog::open(&file, sync)
                .with_context(|| format!("opening the audit log {}", file.display()))?,
        ),
        None => None,
    };
    let (host, market) = match config.venue.kind {
        VenueKind::Sim => {
            let venue = SimVenue::new(config.sim()?).context("starting the simulated venue")?;
            let host = Host::start_audited(venue.clone(), runtime, audit).await?;
            (host, Some(venue.spawn()))
        }
        VenueKind::Okx => {
            let mut okx = config.okx()?;
            okx.allow_withdraw_key |= allow_withdraw_key;
            let credentials = okx.credentials().context("reading the OKX API credentials")?;
            let limiter = Arc::new(Limiter::new(LimiterConfig::default()));
            let url = okx.rest_url.clone();
            let venue = OkxVenue::connect(okx, credentials, limiter, audit.clone())
                .await
                .with_context(|| format!("connecting to OKX at {url}"))?;
            (Host::start_audited(venue, runtime, audit).await?, None)
        }
    };
    host.hub().set_account_limits(config.risk.clone(), "config").context("[risk]")?;
    for spec in config.plugin_specs()? {
        let name = spec.name.clone();
        host.load(spec).with_context(|| format!("loading plugin {name}"))?;
    }
    let host = Arc::new(host);
    let admin = if config.admin.enabled {
        let server = tradebox::admin::start(host.clone(), &config.admin).await.context("starting the admin API")?;
        tradebox::demo::say(&format!(
            "admin API at http://{} (token in {})\n",
            server.addr(),
            server.token_file().display()
        ));
        Some(server)
    } else {
        None
    };
    let kill = kill_on_sigusr1(host.clone());
    tradebox::demo::watch(&host, duration).await;
    kill.abort();
    drop(admin);
    if let Some(m) = market {
        m.abort();
    }
    tradebox::demo::say(&format!("{}\n", tradebox::demo::board(&host, true)));
    host.shutdown().await;
    Ok(())
}

/// The kill switch on a signal: SIGUSR1 halts the account (new orders stop, open ones are
/// cancelled); `tradebox resume` undoes it.
fn kill_on_sigusr1(host: Arc<Host>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
                tracing::warn!("cannot listen for SIGUSR1; the kill switch is the CLI and the admin API only");
                return;
            };
            while usr1.recv().await.is_some() {
                tracing::warn!("SIGUSR1: halting the account");
                host.hub().set_account_state(tradebox::engine::TradingState::Halted, "kill switch: SIGUSR1");
            }
        }
        #[cfg(not(unix))]
        drop(host);
    })
}

async fn sim(path: Option<PathBuf>, listen: Option<std::net::SocketAddr>) -> Result<()> {
    let mut config = match &path {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<tradebox::sim::SimServerConfig>(&text)
                .with_context(|| format!("{} is not a valid simulator config", path.display()))?
        }
        None => tradebox::sim::SimServerConfig::default(),
    };
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let generated = config.keys.is_empty().then(tradebox::sim::SimKey::generate);
    config.keys.extend(generated.clone());
    let server = tradebox::sim::SimServer::start(config).await.context("starting the simulator")?;
    // Written without panicking: a closed stdout must not take the exchange down.
    let mut text = format!("OKX-compatible simulator: REST at {} (Ctrl-C to stop)\n", server.base_url());
    text.push_str(&format!(
        "WebSocket: {} {} {}\n",
        server.ws_url("public"),
        server.ws_url("business"),
        server.ws_url("private")
    ));
    if let Some(k) = generated {
        // The simulator's own throwaway demo key, shown so a client can be pointed at it.
        text.push_str("demo key (perm read_only,trade; send x-simulated-trading: 1):\n");
        text.push_str(&format!(
            "  OKX_API_KEY={}\n  OKX_API_SECRET={}\n  OKX_API_PASSPHRASE={}\n",
            k.api_key, k.secret, k.passphrase
        ));
    }
    tradebox::demo::say(&text);
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    server.shutdown();
    Ok(())
}

fn feed_check(file: &std::path::Path) -> Result<()> {
    use std::io::BufRead;
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let mut check = tradebox_okx::ws::check::FeedCheck::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {} is not UTF-8 text", file.display(), i + 1))?;
        check.line(i + 1, &line);
    }
    let report = check.finish();
    for sample in &report.samples {
        println!("{sample}");
    }
    for (channel, n) in &report.unknown_channels {
        println!("not read by the host: channel {channel:?} ({n} lines)");
    }
    println!("{report}");
    Ok(())
}

fn check(file: PathBuf) -> Result<()> {
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = Runtime::new(tradebox::plugin::Mode::Live, None)?;
    let component = wasmtime::component::Component::new(runtime.engine(), &bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{} is not a valid component", file.display()))?;
    println!("imports:");
    for (name, _) in component.component_type().imports(runtime.engine()) {
        println!("  {name}");
    }
    check_imports(runtime.engine(), &component)?;
    runtime.compile(&bytes)?;
    println!("ok: {} imports only the tradebox:strategy contract", file.display());
    Ok(())
}
