//! The `tradebox` binary.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tradebox::config::{Config, StagingVenue, VenueKind};
use tradebox::plugin::{Runtime, runtime::check_imports};
use tradebox::running::Host;
use tradebox::running::lifecycle::LoadOptions;
use tradebox::venue::okx::OkxVenue;
use tradebox_okx::limits::{Limiter, LimiterConfig};
use tradebox_sim::venue::SimVenue;

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
    /// Run plugin files on market history in virtual time: the same gateway, risk checks and
    /// order tracking as live; a summary table, `--report DIR`, `--json`, `--sweep`.
    Backtest(Box<tradebox::backtest::command::Args>),
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
        /// Hot-reload a plugin when its component file in this directory changes.
        #[arg(long, value_name = "DIR")]
        watch: Option<PathBuf>,
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
        /// The simulator's TOML config (market, API keys, faults); see the docs of `tradebox_sim::server`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen on 127.0.0.1 at this port (0: any free port).
        #[arg(long, conflicts_with = "listen")]
        port: Option<u16>,
        /// Listen at this address instead, e.g. `127.0.0.1:8080`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Record OKX's public WebSocket feed (or `tradebox sim`'s) into hourly zstd files, every
    /// frame as received after its receive time; no keys. Stops cleanly at Ctrl-C or SIGTERM.
    Record {
        /// OKX instrument ids, e.g. `--instrument BTC-USDT ETH-USDT`.
        #[arg(long = "instrument", required = true, num_args = 1.., value_delimiter = ',')]
        instruments: Vec<String>,
        /// OKX channels: tickers, books, books5, bbo-tbt, trades, candle1m, ...
        #[arg(long = "channel", required = true, num_args = 1.., value_delimiter = ',')]
        channels: Vec<String>,
        /// The directory of the hourly files (`okx-public-2026-12-07T12.jsonl.zst`).
        #[arg(long)]
        out: PathBuf,
        /// The `/public` WebSocket endpoint, e.g. `tradebox sim`'s `ws://127.0.0.1:PORT/ws/v5/public`.
        #[arg(long, default_value = tradebox::record::DEFAULT_URL)]
        url: String,
        /// Stop after this long (e.g. `1m`); otherwise at Ctrl-C or SIGTERM.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
    },
    /// Recorded OKX WebSocket feeds.
    Feed {
        #[command(subcommand)]
        command: FeedCommand,
    },
    /// Market history files: OKX candles downloaded for backtests (formats: data/README.md).
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// OKX diagnostics.
    Okx {
        #[command(subcommand)]
        command: OkxCommand,
    },
    /// Check this machine and a config's venue before trading: clock, key and its permissions,
    /// account modes, instruments, every endpoint, pins, rate limits, scheduling. Reads only;
    /// exits 1 when a check fails.
    Doctor {
        /// The host's TOML config (without it, only this machine is checked).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print one JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// The running host's API key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Read the OKX credentials again (credentials_command, file, systemd, environment) and,
    /// once OKX accepts the new key for the same account with trade and without withdraw
    /// permission, use it for REST and the private WebSocket; a refused key leaves the old one
    /// in use. SIGHUP to the host does the same.
    Reload {
        #[command(flatten)]
        admin: AdminArgs,
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
    /// Runs every line of a recorded feed (one raw OKX WebSocket frame per line, as received,
    /// optionally after its receive time; plain or zstd-compressed, as `tradebox record` writes)
    /// through the host's own parser and book builder, and ends with one summary line.
    Check {
        /// The recording.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download OKX's candles (market/history-candles) into a CSV file a backtest reads:
    /// `ts_ms,open,high,low,close,volume`, oldest first, closed bars only. Run it again on the
    /// same file to fill in what it lacks before its first bar and after its last; bars missing
    /// inside it (an outage at OKX, rows removed) are reported at the end, not fetched.
    Download {
        /// OKX's instrument id, e.g. BTC-USDT or BTC-USDT-SWAP.
        #[arg(long, value_name = "SYM")]
        instrument: String,
        /// OKX's bar: 1s 1m 3m 5m 15m 30m 1H 2H 4H 6H 12H 1D 2D 3D 1W 1M 3M (6H and longer open
        /// at UTC+8 midnight; 6Hutc ... 3Mutc at UTC).
        #[arg(long, default_value = "1m")]
        bar: String,
        /// The first bar: 2024-01-31 (midnight UTC), RFC 3339 (2024-01-31T08:00:00Z,
        /// ...+08:00) or milliseconds since the epoch.
        #[arg(long, value_name = "DATE", value_parser = tradebox::download::parse_time)]
        from: i64,
        /// Bars opening before this (same forms; default: now).
        #[arg(long, value_name = "DATE", value_parser = tradebox::download::parse_time)]
        to: Option<i64>,
        /// The CSV file, created or extended.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// OKX's REST API (e.g. `tradebox sim`'s URL).
        #[arg(long, value_name = "URL", default_value = tradebox::download::DEFAULT_BASE_URL)]
        base_url: String,
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
    /// Start a strategy project from a template: its code, its tradebox.toml, a starter test
    /// that backtests it on a bundled sample, and the commands to build, test and load it.
    New {
        /// The project's name (lowercase letters, digits, '-'); its directory unless --dir.
        name: String,
        /// The language: rust, python or js.
        #[arg(long, default_value = "rust")]
        lang: tradebox_manifest::Language,
        /// Where to write it (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Build a strategy project (anywhere on disk) into a plugin file: Rust (a crate depending
    /// on tradebox-sdk: cargo, then module to component), Python (pyproject.toml:
    /// componentize-py) or JavaScript (package.json: componentize-js), the pinned toolchain
    /// installed on first use; writes the manifest, NAME.wasm, and shows what `plugin inspect` says.
    Build {
        /// The project's directory (its Cargo.toml, pyproject.toml or package.json).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write the component (default: DIR/NAME.wasm).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check that a component would load: valid, and importing nothing beyond the contract.
    Check {
        /// The component.
        file: PathBuf,
    },
    /// Everything to read before granting a plugin file: manifest, contract, imports,
    /// exports, size, sha256, signer.
    Inspect {
        /// The component.
        file: PathBuf,
        /// Print JSON, for tools.
        #[arg(long)]
        json: bool,
        /// The host config whose `[signing]` decides whether the signer is trusted.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Put a manifest into a component built without the Rust SDK (any language that builds a
    /// component): identity from the flags, permissions and settings from a tradebox.toml.
    /// Replaces any manifest it carries and removes a signature (sign it again afterwards).
    Manifest {
        /// The component, changed in place.
        file: PathBuf,
        /// Permissions and config schema (the format of a plugin crate's tradebox.toml).
        #[arg(long = "from", value_name = "TRADEBOX_TOML")]
        from: PathBuf,
        /// The plugin's name.
        #[arg(long)]
        name: String,
        /// Its version (semver).
        #[arg(long)]
        version: String,
        /// An author (repeat for more).
        #[arg(long = "author")]
        authors: Vec<String>,
        /// One line on what it does.
        #[arg(long, default_value = "")]
        description: String,
        /// SPDX license expression.
        #[arg(long, default_value = "")]
        license: String,
    },
    /// Write a publisher key pair: PREFIX (secret, owner-only) and PREFIX.pub.
    Keygen {
        /// Where: PREFIX and PREFIX.pub.
        #[arg(long = "out", value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Sign a plugin file in place with ed25519, over every other byte of the file.
    Sign {
        /// The secret key file written by `keygen`.
        #[arg(long, value_name = "PREFIX")]
        key: PathBuf,
        /// The component.
        file: PathBuf,
    },
    /// The running host's plugins: state, component, orders, PnL.
    List {
        /// Print the host's JSON answer.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Load a plugin into the running host (the host's `[defaults]` apply).
    Load {
        /// The component file.
        file: PathBuf,
        /// Its name in the host (default: the file name without `.wasm`).
        #[arg(long)]
        name: Option<String>,
        /// A granted instrument (repeat for more; `*` and `PREFIX-*` allowed).
        #[arg(long = "instrument", value_name = "SYMBOL")]
        instruments: Vec<String>,
        /// Its config, a JSON object passed to `init`.
        #[arg(long, default_value = "{}")]
        config: String,
        /// Its risk limits, a JSON object over `[defaults.risk]`.
        #[arg(long)]
        risk: Option<String>,
        /// Start REDUCE_ONLY (and after every reload) until `tradebox resume --plugin NAME`.
        #[arg(long)]
        reduce_only: bool,
        /// Run it with only what is granted when its manifest asks for more (else refused).
        #[arg(long)]
        partial_grant: bool,
        /// Load it on the host's staging venue (paper on the live feed, or simulated) until `tradebox plugin promote`.
        #[arg(long)]
        staged: bool,
        /// Send the component's bytes instead of its path (a host that cannot read the file).
        #[arg(long)]
        upload: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Swap a running plugin for a new build, keeping its state and open orders; a version that
    /// fails to start is refused and the running one keeps trading.
    Reload {
        /// The plugin.
        name: String,
        /// The new component (default: read the plugin's file again).
        file: Option<PathBuf>,
        /// A new config (JSON object); default: keep the running one.
        #[arg(long)]
        config: Option<String>,
        /// Start the new version REDUCE_ONLY.
        #[arg(long)]
        reduce_only: bool,
        /// Put the new version on the staging venue (paper on the live feed, or simulated); the running one keeps
        /// trading until `tradebox plugin promote`.
        #[arg(long)]
        staged: bool,
        /// Send the component's bytes instead of its path.
        #[arg(long, requires = "file")]
        upload: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Move a staged plugin from the staging venue to this host's venue: loaded if
    /// new, else the running version is hot-reloaded with the staged one.
    Promote {
        /// The plugin.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Stop a plugin and release its subscriptions; its open orders are cancelled unless
    /// `--leave-orders`.
    Unload {
        /// The plugin.
        name: String,
        /// Leave its open orders working (they stay tracked).
        #[arg(long)]
        leave_orders: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// An error is one line with its causes (`error: reading x.wasm: No such file or directory`),
/// never anyhow's report: that adds a backtrace whenever `RUST_BACKTRACE` is set, which a user
/// of a CLI did not ask for and cannot act on.
fn main() -> std::process::ExitCode {
    match run_cli() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated as `{e:#}` has them, without a cause whose text the
/// message before it already quotes (many errors here say their cause and also return it as
/// their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn run_cli() -> Result<()> {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Demo { .. }) { "warn" } else { "info" };
    // The doctor's report says everything; the clients' own warnings would repeat it.
    let default_level = if matches!(cli.command, Command::Doctor { .. }) { "error" } else { default_level };
    {
        use tracing_subscriber::util::SubscriberInitExt;
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tradebox::logging::subscriber(tradebox::logging::env_filter(default_level), std::io::stderr, ansi).init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Demo { duration, plugin_dir, seed, direct } => {
                let via =
                    if direct { tradebox::demo::DemoVenue::Direct } else { tradebox::demo::DemoVenue::OkxProtocol };
                tradebox::demo::run(&plugin_dir, duration, seed, via).await
            }
            Command::Run { config, duration, allow_withdraw_key, watch } => {
                run(config, duration, allow_withdraw_key, watch).await
            }
            Command::Plugin { command } => plugin_command(command).await,
            Command::Backtest(args) => tokio::task::block_in_place(|| tradebox::backtest::cli::execute(&args)),
            Command::Feed { command: FeedCommand::Check { file } } => feed_check(&file),
            Command::Record { instruments, channels, out, url, duration } => {
                record(
                    tradebox::record::RecordOptions { instruments, channels, out, url, queue: Default::default() },
                    duration,
                )
                .await
            }
            Command::Data { command: DataCommand::Download { instrument, bar, from, to, out, base_url } } => {
                data_download(instrument, bar, from, to, out, base_url).await
            }
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
            Command::Keys { command: KeysCommand::Reload { admin } } => {
                let answer = admin.call("POST", "/keys/reload", None).await?;
                println!("{answer}");
                Ok(())
            }
            Command::Doctor { config, json } => doctor(config.as_deref(), json).await,
        }
    })
}

/// Who is asking, for the host's audit log.
fn cli_user() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    format!("{user} (cli)")
}

fn json_object(what: &str, text: &str) -> Result<serde_json::Value> {
    let value: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("--{what} must be a JSON object, got {text:?}"))?;
    anyhow::ensure!(value.is_object(), "--{what} must be a JSON object, got {text:?}");
    Ok(value)
}

/// The component to send: its absolute path (the host reads it, and can read it again on a
/// later reload or in watch mode), or its bytes.
fn component(file: &std::path::Path, upload: bool) -> Result<(&'static str, serde_json::Value)> {
    use base64::Engine as _;
    let path = std::fs::canonicalize(file).with_context(|| format!("{}", file.display()))?;
    if upload {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(("wasm_base64", base64::engine::general_purpose::STANDARD.encode(bytes).into()))
    } else {
        Ok(("path", path.display().to_string().into()))
    }
}

async fn plugin_command(command: PluginCommand) -> Result<()> {
    use serde_json::json;
    match command {
        PluginCommand::New { name, lang, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let written = tradebox::plugin::template::write(&dir, &name, lang)?;
            println!("wrote a {} strategy project in {}: {}", lang.name(), dir.display(), {
                let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
                names.join(", ")
            });
            print!("{}", tradebox::plugin::template::next_steps(&dir, &name, lang));
            Ok(())
        }
        PluginCommand::Build { dir, out } => build(&dir, out.as_deref()),
        PluginCommand::Check { file } => check(file),
        PluginCommand::List { json, admin } => {
            let answer = admin.call("GET", "/plugins", None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print!("{}", plugin_table(&answer));
            }
            Ok(())
        }
        PluginCommand::Inspect { file, json, config } => inspect(&file, json, config.as_deref()),
        PluginCommand::Manifest { file, from, name, version, authors, description, license } => {
            let toml = std::fs::read_to_string(&from).with_context(|| format!("reading {}", from.display()))?;
            let package = tradebox_manifest::build::Package { name, version, authors, description, license };
            let manifest =
                tradebox_manifest::build::from_sources(&package, &toml).with_context(|| from.display().to_string())?;
            let mut unsigned_by = None;
            tradebox_package::signature::rewrite_in_place(&file, |bytes| {
                if let Ok(tradebox_package::signature::SignatureStatus::Valid { signer }) =
                    tradebox_package::signature::verify(bytes)
                {
                    unsigned_by = Some(signer);
                }
                let bytes = tradebox_package::signature::unsign(bytes)?;
                tradebox_package::sections::set_section(&bytes, tradebox_manifest::SECTION, &manifest.to_json())
            })?;
            println!("wrote the manifest of {} {} into {}", manifest.name, manifest.version, file.display());
            if let Some(signer) = unsigned_by {
                println!("its signature by {signer} no longer matched and was removed: sign it again");
            }
            Ok(())
        }
        PluginCommand::Promote { name, admin } => {
            let body = json!({ "by": cli_user() });
            let answer = admin.call("POST", &format!("/plugins/{name}/promote"), Some(body)).await?;
            println!("{answer}");
            Ok(())
        }
        PluginCommand::Keygen { out } => {
            let key = tradebox_package::signature::write_keypair(&out)?;
            let public = tradebox_package::signature::public_key_path(&out);
            println!("wrote {} (secret: keep it, owner-only) and {}", out.display(), public.display());
            println!("public key: {key}");
            println!("operators trust it with [signing] trusted = [\"{key}\"]");
            Ok(())
        }
        PluginCommand::Sign { key, file } => {
            let secret = tradebox_package::signature::read_signing_key(&key)?;
            tradebox_package::signature::sign_file(&file, &secret)?;
            println!("signed {} as {}", file.display(), tradebox_package::signature::public_key(&secret));
            Ok(())
        }
        PluginCommand::Load {
            file,
            name,
            instruments,
            config,
            risk,
            reduce_only,
            partial_grant,
            staged,
            upload,
            admin,
        } => {
            let name = match name {
                Some(n) => n,
                None => file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_string)
                    .context("cannot name the plugin after its file: give --name")?,
            };
            let (key, value) = component(&file, upload)?;
            let mut body = json!({
                "name": name, "instruments": instruments, "config": json_object("config", &config)?,
                "start_reduce_only": reduce_only, "partial_grant": partial_grant, "staged": staged,
                "by": cli_user(),
            });
            body[key] = value;
            if let Some(risk) = risk {
                body["risk"] = json_object("risk", &risk)?;
            }
            let answer = admin.call("POST", "/plugins", Some(body)).await?;
            println!("{answer}");
            Ok(())
        }
        PluginCommand::Reload { name, file, config, reduce_only, staged, upload, admin } => {
            let mut body = json!({ "by": cli_user() });
            if let Some(file) = file {
                let (key, value) = component(&file, upload)?;
                body[key] = value;
            }
            if let Some(config) = config {
                body["config"] = json_object("config", &config)?;
            }
            if reduce_only {
                body["reduce_only"] = true.into();
            }
            if staged {
                body["staged"] = true.into();
            }
            let answer = admin.call("POST", &format!("/plugins/{name}/reload"), Some(body)).await?;
            println!("{answer}");
            Ok(())
        }
        PluginCommand::Unload { name, leave_orders, admin } => {
            let orders = if leave_orders { "leave" } else { "cancel" };
            let by: String = form_urlencoded::byte_serialize(cli_user().as_bytes()).collect();
            let answer = admin.call("DELETE", &format!("/plugins/{name}?orders={orders}&by={by}"), None).await?;
            println!("{answer}");
            Ok(())
        }
    }
}

/// `tradebox plugin list` as a table.
fn plugin_table(answer: &serde_json::Value) -> String {
    let mut out = format!(
        "{:<16} {:<10} {:<11} {:<12} {:<9} {:>7} {:>6} {:>6} {:>6} {:>10}  last error\n",
        "plugin", "run", "trading", "component", "version", "reloads", "orders", "open", "fills", "pnl"
    );
    for p in answer["plugins"].as_array().into_iter().flatten() {
        let num = |k: &str| p[k].as_f64().unwrap_or(0.0);
        let text = |k: &str| p[k].as_str().unwrap_or("-").to_string();
        let hash = text("hash");
        out.push_str(&format!(
            "{:<16} {:<10} {:<11} {:<12} {:<9} {:>7} {:>6} {:>6} {:>6} {:>10.2}  {}\n",
            text("name"),
            text("run_state"),
            text("trading_state"),
            hash.get(..12).unwrap_or(&hash),
            text("version"),
            num("reloads"),
            num("orders_sent"),
            p["open_orders"].as_array().map_or(0, Vec::len),
            num("fills"),
            num("realized") + num("unrealized") - num("fees"),
            p["last_error"].as_str().unwrap_or(""),
        ));
    }
    let staged = answer["staged"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !staged.is_empty() {
        out.push_str("staged on the staging venue (tradebox plugin promote NAME):\n");
    }
    for p in staged {
        let text = |k: &str| p[k].as_str().unwrap_or("-").to_string();
        let hash = text("hash");
        let pnl = p["realized"].as_f64().unwrap_or(0.0) + p["unrealized"].as_f64().unwrap_or(0.0)
            - p["fees"].as_f64().unwrap_or(0.0);
        out.push_str(&format!(
            "{:<16} {:<10} {:<11} {:<12} {:<9} {:>7} {:>6} {:>6} {:>6} {:>10.2}  {}\n",
            text("name"),
            text("run_state"),
            "staged",
            hash.get(..12).unwrap_or(&hash),
            text("version"),
            "-",
            p["orders_sent"].as_u64().unwrap_or(0),
            "-",
            p["fills"].as_u64().unwrap_or(0),
            pnl,
            p["last_error"].as_str().unwrap_or(""),
        ));
    }
    out
}

fn okx_sign(timestamp: &str, method: &str, path: &str, body: &str) -> Result<()> {
    use tradebox_okx::sign::{Signer, prehash};
    tradebox::process::protect_secrets().context("protecting the secret")?;
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

/// `tradebox doctor`: the report on stdout; exit 1 when a check failed (warnings alone: 0).
async fn doctor(config: Option<&std::path::Path>, json: bool) -> Result<()> {
    let report = tradebox::doctor::run(config).await;
    let text = if json { format!("{}\n", serde_json::to_string(&report)?) } else { report.render() };
    tradebox::demo::say(&text);
    if report.failed() {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(
    path: PathBuf,
    duration: Option<Duration>,
    allow_withdraw_key: bool,
    watch: Option<PathBuf>,
) -> Result<()> {
    // Paper venues finish their recordings however the run ends, a refused plugin included:
    // a file left unfinished at exit may hold nothing at all.
    let mut papers = Vec::new();
    let result = run_host(path, duration, allow_withdraw_key, watch, &mut papers).await;
    for venue in papers {
        venue.close().await;
    }
    result
}

async fn run_host(
    path: PathBuf,
    duration: Option<Duration>,
    allow_withdraw_key: bool,
    watch: Option<PathBuf>,
    papers: &mut Vec<Arc<tradebox::venue::paper::PaperVenue>>,
) -> Result<()> {
    let config = Config::load(&path)?;
    let runtime = Runtime::new(config.runtime.mode, config.cache_dir())?;
    let audit = match config.audit() {
        Some((file, sync)) => {
            let open = if config.venue.kind == VenueKind::Paper {
                tradebox::audit::AuditLog::open_paper
            } else {
                tradebox::audit::AuditLog::open
            };
            Some(open(&file, sync).with_context(|| format!("opening the audit log {}", file.display()))?)
        }
        None => None,
    };
    let (host, market) = match config.venue.kind {
        VenueKind::Sim => {
            let venue = SimVenue::new(config.sim()?).context("starting the simulated venue")?;
            let host = Host::start_audited(venue.clone(), runtime, audit).await?;
            (host, Some(venue.spawn()))
        }
        VenueKind::Paper => {
            let settings = config.paper()?;
            let url = settings.rest_base();
            let venue = tradebox::venue::paper::PaperVenue::connect(settings)
                .await
                .with_context(|| format!("starting the paper venue on {url}'s market"))?;
            tradebox::demo::say("paper trading: the live market, fills simulated here; no order leaves this machine\n");
            papers.push(venue.clone());
            (Host::start_audited(venue, runtime, audit).await?, None)
        }
        VenueKind::Okx => {
            let mut okx = config.okx()?;
            okx.allow_withdraw_key |= allow_withdraw_key;
            // Before the keys are in memory: no core dump or same-user debugger can read them.
            tradebox::process::protect_secrets().context("protecting the credentials")?;
            let credentials = okx.credentials().context("reading the OKX API credentials")?;
            let limiter = Arc::new(Limiter::new(LimiterConfig::default()));
            let url = okx.rest_base();
            let venue = OkxVenue::connect(okx, credentials, limiter, audit.clone())
                .await
                .with_context(|| format!("connecting to OKX at {url}"))?;
            (Host::start_audited(venue, runtime, audit).await?, None)
        }
    };
    host.hub().set_account_limits(config.risk.clone(), "config").context("[risk]")?;
    let trust = config.trust().context("[signing]")?;
    if trust.required() {
        if let Some(dir) = config.cache_dir() {
            tradebox::plugin::runtime::check_cache_dir(&dir).map_err(anyhow::Error::msg).context("[signing]")?;
        }
        tradebox::demo::say("plugins must carry a signature from a trusted publisher ([signing])\n");
    }
    host.set_trust(trust);
    let staging_market = match config.staging_venue()? {
        Some(StagingVenue::Sim(sim)) => {
            let venue = SimVenue::new(sim).context("starting the staging venue ([staging])")?;
            let staging = Host::start(venue.clone(), host.runtime().clone()).await?;
            host.set_staging(staging)?;
            tradebox::demo::say("staging: new plugins and versions can trade on a simulated venue first\n");
            Some(venue.spawn())
        }
        Some(StagingVenue::Paper(paper)) => {
            let venue = tradebox::venue::paper::PaperVenue::connect(paper)
                .await
                .context("starting the staging venue ([staging]: paper on the live feed)")?;
            let staging = Host::start(venue.clone(), host.runtime().clone()).await?;
            host.set_staging(staging)?;
            tradebox::demo::say("staging: new plugins and versions can trade on paper against the live market first\n");
            papers.push(venue);
            None
        }
        None => None,
    };
    for (spec, plugin, source) in config.plugin_specs()? {
        let options =
            LoadOptions { source: Some(source), start_reduce_only: plugin.start_reduce_only, by: "config".into() };
        let name = spec.name.clone();
        if plugin.staged {
            host.stage(spec, options).with_context(|| format!("staging plugin {name}"))?;
        } else {
            host.load_with(spec, options).with_context(|| format!("loading plugin {name}"))?;
        }
    }
    let host = Arc::new(host);
    let admin = if config.admin.enabled {
        let server = tradebox::admin::start(host.clone(), &config.admin, config.defaults.clone())
            .await
            .context("starting the admin API")?;
        tradebox::demo::say(&format!(
            "admin API at http://{} (token in {})\n",
            server.addr(),
            server.token_file().display()
        ));
        let console =
            format!("console: {}  (sign in with the token in {})", server.console_url(), server.token_file().display());
        tradebox::demo::say(&format!("{console}\n"));
        tradebox::demo::set_banner(console);
        Some(server)
    } else {
        None
    };
    let kill = kill_on_sigusr1(host.clone());
    let rotate = reload_keys_on_sighup(host.clone());
    let watcher = match watch {
        Some(dir) => {
            anyhow::ensure!(dir.is_dir(), "--watch {}: not a directory", dir.display());
            tradebox::demo::say(&format!("watching {} for new plugin builds\n", dir.display()));
            use tradebox::running::watch::{INTERVAL, SETTLE, watch};
            Some(tokio::spawn(watch(host.clone(), dir, INTERVAL, SETTLE)))
        }
        None => None,
    };
    tradebox::demo::watch(&host, duration).await;
    kill.abort();
    rotate.abort();
    if let Some(w) = watcher {
        w.abort();
    }
    drop(admin);
    if let Some(m) = staging_market {
        m.abort();
    }
    if let Some(m) = market {
        m.abort();
    }
    tradebox::demo::show_final(&host);
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
                host.hub().set_account_state(tradebox_core::TradingState::Halted, "kill switch: SIGUSR1");
            }
        }
        #[cfg(not(unix))]
        drop(host);
    })
}

/// Key rotation on a signal: SIGHUP reads the OKX credentials again and, once the new key
/// checks out, uses it (as `tradebox keys reload`); a refused key leaves the old one in use.
fn reload_keys_on_sighup(host: Arc<Host>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP; keys are reloaded with `tradebox keys reload` only");
                return;
            };
            while hup.recv().await.is_some() {
                match host.venue().reload_keys().await {
                    Ok(switch) if switch.changed => {
                        tracing::info!(from = %switch.from, to = %switch.to, "SIGHUP: OKX key switched")
                    }
                    Ok(switch) => tracing::info!(key = %switch.to, "SIGHUP: the same OKX key; nothing to switch"),
                    Err(e) => tracing::error!("SIGHUP: {e}"),
                }
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
            toml::from_str::<tradebox_sim::server::SimServerConfig>(&text)
                .with_context(|| format!("{} is not a valid simulator config", path.display()))?
        }
        None => tradebox_sim::server::SimServerConfig::default(),
    };
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let generated = config.keys.is_empty().then(tradebox_sim::server::SimKey::generate);
    config.keys.extend(generated.clone());
    let server = tradebox_sim::server::SimServer::start(config).await.context("starting the simulator")?;
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

/// A recorded feed, plain or compressed: the report of what was read, then (a file cut short,
/// a line that is not text) the error.
fn feed_check(file: &std::path::Path) -> Result<()> {
    use std::io::BufRead;
    let mut reader = tradebox_data::frames::text(file).context("opening the recording")?;
    let mut check = tradebox_okx::ws::check::FeedCheck::new();
    let mut line = String::new();
    let mut failed = None;
    for i in 1.. {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => check.line(i, &line),
            Err(e) => {
                failed = Some(tradebox_data::frames::read_error(file, i as u64, &e));
                break;
            }
        }
    }
    let report = check.finish();
    for sample in &report.samples {
        println!("{sample}");
    }
    for (channel, n) in &report.unknown_channels {
        println!("not read by the host: channel {channel:?} ({n} lines)");
    }
    println!("{report}");
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// `tradebox record`: a progress line on stderr when it is a terminal, a log line every 10 s
/// otherwise; the files and counts on stdout at the end.
async fn record(opts: tradebox::record::RecordOptions, duration: Option<Duration>) -> Result<()> {
    let stop = async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        #[cfg(unix)]
        let term = async move {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        let timer = async move {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
            () = timer => {}
        }
    };
    let progress = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let style = indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")?;
        indicatif::ProgressBar::new_spinner().with_style(style)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let (mut last, mut ticks) = (0u64, 0u64);
    let out = opts.out.clone();
    let stats = tradebox::record::record(opts, stop, |s| {
        let rate = s.frames - last;
        last = s.frames;
        ticks += 1;
        let file = s.files.last().map(|p| p.display().to_string()).unwrap_or_default();
        let text = format!(
            "{rate} frames/s, {} frames, {:.2} MiB on disk ({:.2} MiB of text), {} gaps, {} frames dropped, {} \
             subscriptions refused; {file}",
            s.frames,
            mib(s.disk_bytes),
            mib(s.text_bytes),
            s.gaps,
            s.dropped,
            s.refused
        );
        if progress.is_hidden() {
            if ticks.is_multiple_of(10) {
                tracing::info!("recording: {text}");
            }
        } else {
            progress.set_message(text);
            progress.tick();
        }
    })
    .await;
    progress.finish_and_clear();
    let stats = stats.with_context(|| format!("recording into {}", out.display()))?;
    for file in &stats.files {
        println!("{}", file.display());
    }
    println!(
        "{} frames, {:.2} MiB on disk ({:.2} MiB of text), {} gaps, {} frames dropped, {} subscriptions refused, {} \
         files",
        stats.frames,
        mib(stats.disk_bytes),
        mib(stats.text_bytes),
        stats.gaps,
        stats.dropped,
        stats.refused,
        stats.files.len()
    );
    Ok(())
}

/// `tradebox data download`: a progress bar on stderr when it is a terminal, then one summary
/// line on stdout.
async fn data_download(
    instrument: String,
    bar: String,
    from: i64,
    to: Option<i64>,
    out: PathBuf,
    base_url: String,
) -> Result<()> {
    use tradebox::download::{DownloadOptions, show_time};
    let to = to.unwrap_or_else(tradebox_core::system_ms);
    let mut opts = DownloadOptions::new(&instrument, &bar, from, to, &out);
    opts.base_url = base_url;
    let progress = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} bars, back to {msg}",
        )?;
        indicatif::ProgressBar::no_length().with_style(style)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let done = tradebox::download::download(opts, progress.clone()).await;
    progress.finish_and_clear();
    let s = done.with_context(|| format!("downloading {instrument} {bar} candles into {}", out.display()))?;
    let Some((first, last)) = s.span else {
        println!(
            "OKX has no {instrument} {bar} candles from {} to {}: nothing written ({} requests)",
            show_time(from),
            show_time(to),
            s.requests
        );
        return Ok(());
    };
    println!(
        "{}: {} bars, {} to {} ({} added before, {} after what it held; {} requests, {} retried)",
        out.display(),
        s.rows,
        show_time(first),
        show_time(last),
        s.added_before,
        s.added_after,
        s.requests,
        s.retries
    );
    if let Some(g) = s.gaps {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        println!(
            "{}: {} gap{} inside, {} bar{} missing in all; the first: {} bar{} from {} (an outage at OKX, \
             or rows removed; a rerun does not fetch them)",
            out.display(),
            g.count,
            plural(g.count),
            g.missing_bars,
            plural(g.missing_bars),
            g.first_bars,
            plural(g.first_bars),
            show_time(g.first_from_ms)
        );
    }
    Ok(())
}

fn inspect(file: &std::path::Path, json: bool, config: Option<&std::path::Path>) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let trust = match config {
        Some(path) => Some(Config::load(path)?.trust().context("[signing]")?),
        None => None,
    };
    let runtime = Runtime::new(tradebox::plugin::Mode::Live, tradebox::plugin::runtime::default_cache_dir())?;
    let report = tradebox::plugin::inspect::inspect(&runtime, &bytes, trust.as_ref());
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render(&file.display().to_string()));
    }
    Ok(())
}

/// `tradebox plugin build`: cargo's progress on stderr, then where the file went and the
/// inspection a receiver of the file would read; fails when this host would not load it.
fn build(dir: &std::path::Path, out: Option<&std::path::Path>) -> Result<()> {
    let built = tradebox::plugin::build::build(dir, out)
        .with_context(|| format!("building the strategy in {}", dir.display()))?;
    println!("wrote {} ({} bytes)\n", built.path.display(), built.component.len());
    let runtime = Runtime::new(tradebox::plugin::Mode::Live, tradebox::plugin::runtime::default_cache_dir())?;
    let report = tradebox::plugin::inspect::inspect(&runtime, &built.component, None);
    print!("{}", report.render(&built.path.display().to_string()));
    report.verdict.map_err(|why| anyhow::anyhow!("{} was written, but this host would not load it: {why}", built.name))
}

fn check(file: PathBuf) -> Result<()> {
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    if let Some(why) = tradebox::plugin::runtime::not_a_component(&bytes) {
        anyhow::bail!("{} is not a valid component: {why}", file.display());
    }
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
    let wasi = component.component_type().imports(runtime.engine()).any(|(name, _)| name.starts_with("wasi:"));
    if wasi {
        println!(
            "ok: {} imports the tradebox:strategy contract and WASI, which this host serves locked down \
             (no files, environment or network)",
            file.display()
        );
    } else {
        println!("ok: {} imports only the tradebox:strategy contract", file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_is_one_line_and_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let quoted = anyhow::Error::new(io).context("could not read x.wasm: No such file");
        assert_eq!(super::one_line(&quoted), "could not read x.wasm: No such file");
        let chained = anyhow::anyhow!("unknown field `memory`").context("config bad.toml");
        assert_eq!(super::one_line(&chained), "config bad.toml: unknown field `memory`");
    }
}
