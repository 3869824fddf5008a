//! `tradebox demo` and the live status board shared with `tradebox run`.

use crate::audit::AuditLog;
use crate::engine::Grants;
use crate::host::Host;
use crate::plugin::{PluginSpec, Runtime};
use crate::venue::okx::{OkxConfig, OkxVenue};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};
use tradebox_okx::limits::{Limiter, LimiterConfig};
use tradebox_sim::server::{SimKey, SimServer, SimServerConfig};
use tradebox_sim::venue::{SimConfig, SimVenue};

/// The demo's strategies: (name, component file, config, granted instrument).
const DEMO_PLUGINS: &[(&str, &str, &str, &str)] = &[
    ("sma-btc", "sma-cross.wasm", r#"{"symbol":"BTC-USDT","fast":3,"slow":10,"size":0.05}"#, "BTC-USDT"),
    ("sma-swap", "sma-cross.wasm", r#"{"symbol":"BTC-USDT-SWAP","fast":4,"slow":12,"size":5}"#, "BTC-USDT-SWAP"),
    ("mm-eth", "market-maker.wasm", r#"{"symbol":"ETH-USDT","spread_bps":6,"size":0.5,"max_inventory":2}"#, "ETH-USDT"),
];

/// How the demo reaches its exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoVenue {
    /// `tradebox sim` in-process on loopback, reached through the host's real OKX client:
    /// signed requests, the exchange clock, OKX's rate limits, the audit log.
    OkxProtocol,
    /// The simulated venue called directly (no protocol; seeded runs are reproducible).
    Direct,
}

/// Runs the demo: the simulated market, the example strategies, a live board.
pub async fn run(plugin_dir: &Path, duration: Option<Duration>, seed: Option<u64>, via: DemoVenue) -> Result<()> {
    let mut market = SimConfig::demo();
    market.seed = seed.unwrap_or_else(|| tradebox_core::system_ms() as u64);
    let runtime = Runtime::new(crate::plugin::Mode::Live, crate::plugin::runtime::default_cache_dir())?;
    let mut keep = Vec::new();
    let mut exchange = None;
    let (host, audit_path) = match via {
        DemoVenue::Direct => {
            let venue = SimVenue::new(market).context("starting the simulated venue")?;
            keep.push(venue.spawn());
            (Host::start(venue, runtime).await?, None)
        }
        DemoVenue::OkxProtocol => {
            let key = SimKey::generate();
            let config = SimServerConfig { keys: vec![key.clone()], market, ..SimServerConfig::default() };
            let server = SimServer::start(config).await.context("starting the OKX-compatible simulator")?;
            let path = std::env::temp_dir().join(format!("tradebox-demo-audit-{}.jsonl", std::process::id()));
            let audit = AuditLog::open(&path, Duration::from_millis(200)).context("opening the demo's audit log")?;
            let okx = OkxConfig {
                rest_url: server.base_url(),
                ws_url: server.base_url().replacen("http://", "ws://", 1),
                demo: true,
                instruments: DEMO_PLUGINS.iter().map(|p| p.3.to_string()).collect(),
                poll_ms: 300,
                ..OkxConfig::default()
            };
            let credentials = tradebox_okx::Credentials::new(&key.api_key, &key.secret, &key.passphrase);
            let limiter = std::sync::Arc::new(Limiter::new(LimiterConfig::default()));
            let venue = OkxVenue::connect(okx, credentials, limiter, Some(audit.clone()))
                .await
                .context("connecting to the simulator through the OKX client")?;
            tracing::info!(url = %server.base_url(), audit = %path.display(), "demo: trading through OKX's protocol");
            let host = Host::start_audited(venue, runtime, Some(audit)).await?;
            exchange = Some(server);
            (host, Some(path))
        }
    };
    for (name, file, config, instrument) in DEMO_PLUGINS {
        let path = plugin_dir.join(file);
        let wasm = std::fs::read(&path).with_context(|| {
            format!(
                "reading {} (build the plugins with `cargo xtask plugins`, or run `cargo xtask demo`)",
                path.display()
            )
        })?;
        let spec = PluginSpec {
            name: name.to_string(),
            wasm,
            config: config.to_string(),
            grants: Grants { instruments: vec![instrument.to_string()], ..Grants::default() },
            risk: Default::default(),
            limits: Default::default(),
            failure: Default::default(),
        };
        let started = Instant::now();
        host.load(spec).with_context(|| format!("loading {name}"))?;
        tracing::info!(plugin = name, elapsed = ?started.elapsed(), "loaded");
    }
    watch(&host, duration).await;
    for task in keep {
        task.abort();
    }
    say(&format!("{}\n", board(&host, true)));
    if let Some(path) = audit_path {
        say(&format!("audit log of this run: {}\n", path.display()));
    }
    host.shutdown().await;
    drop(exchange);
    Ok(())
}

/// Writes to stdout and flushes, ignoring errors: the host keeps trading whatever happens to
/// its terminal or pipe.
pub fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Shows the board until Ctrl-C or `duration`.
pub async fn watch(host: &Host, duration: Option<Duration>) {
    let tty = std::io::stdout().is_terminal();
    let until = duration.map(|d| tokio::time::Instant::now() + d);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let sleep = async {
            match until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => {
                // A closed stdout (`| head`) must never stop a trading host: write errors are ignored.
                if tty {
                    say(&format!("\x1b[2J\x1b[H{}", board(host, false)));
                } else {
                    say(&format!("{}\n", summary_line(host)));
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sleep => break,
        }
    }
}

fn summary_line(host: &Host) -> String {
    let mut line = String::new();
    for p in host.report() {
        let _ = write!(
            line,
            "{}: {:?} orders {} fills {} pnl {:+.2} | ",
            p.name,
            p.state,
            p.orders_sent,
            p.fills,
            p.realized + p.unrealized - p.fees
        );
    }
    line.trim_end_matches(" | ").to_string()
}

/// The status board as text.
pub fn board(host: &Host, final_board: bool) -> String {
    let hub = host.hub();
    let mut out = String::new();
    let title = if final_board { "tradebox demo: final" } else { "tradebox demo (Ctrl-C to stop)" };
    let _ = writeln!(out, "{title}  venue: {}\n", host.venue().name());
    let _ = writeln!(out, "{:<16} {:>14} {:>14} {:>14}", "instrument", "bid", "ask", "last");
    for spec in hub.instruments() {
        if let Some(q) = hub.quote(spec.id) {
            let _ = writeln!(out, "{:<16} {:>14.2} {:>14.2} {:>14.2}", spec.symbol, q.bid, q.ask, q.last);
        }
    }
    let _ = writeln!(
        out,
        "\n{:<10} {:<10} {:>6} {:>6} {:>6} {:>5} {:>22} {:>11} {:>11} {:>9}",
        "plugin", "state", "orders", "denied", "fills", "open", "position", "realized", "unrealized", "fees"
    );
    for p in host.report() {
        let position = p.positions.iter().map(|(s, q)| format!("{q:+.4} {s}")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            out,
            "{:<10} {:<10} {:>6} {:>6} {:>6} {:>5} {:>22} {:>+11.2} {:>+11.2} {:>9.2}",
            p.name,
            format!("{:?}", p.state),
            p.orders_sent,
            p.denied,
            p.fills,
            p.open_orders,
            if position.is_empty() { "flat".to_string() } else { position },
            p.realized,
            p.unrealized,
            p.fees
        );
        if let Some(e) = &p.last_error {
            let _ = writeln!(out, "           last failure: {e}");
        }
    }
    if let Some(status) = host.venue().status() {
        let _ = writeln!(out, "\n{status}");
    }
    let _ = writeln!(out, "\nrecent activity:");
    for a in host.board().recent(12) {
        let _ = writeln!(out, "  {:<10} {}", a.plugin, a.what);
    }
    out
}
