//! `tradebox demo` and the live status board shared with `tradebox run`.

use crate::audit::AuditLog;
use crate::engine::Grants;
use crate::plugin::{PluginSpec, Runtime};
use crate::running::{Host, PluginReport};
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

/// The demo account's daily loss limit, USDT. The example strategies lose on the random walk,
/// mostly in fees (250-600 a minute was seen): at this limit the breaker halts the account
/// after most of an hour or more, which the board and the console then show.
const DEMO_MAX_DAILY_LOSS: f64 = 25_000.0;

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
    // A daily loss limit on the account, so that the board and the console show the breaker's
    // distance to it (and a demo left running long enough shows it halting the account).
    let limits = crate::risk::AccountLimits { max_daily_loss: DEMO_MAX_DAILY_LOSS, ..host.hub().account_limits() };
    host.hub().set_account_limits(limits, "the demo").context("setting the demo's loss limit")?;
    let host = std::sync::Arc::new(host);
    let admin = start_admin(&host).await?;
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
    drop(admin);
    for task in keep {
        task.abort();
    }
    show_final(&host);
    if let Some(path) = audit_path {
        say(&format!("audit log of this run: {}\n", path.display()));
    }
    host.shutdown().await;
    drop(exchange);
    Ok(())
}

/// The admin API for the demo, with the console: on the default port when it is free (else
/// any), its token in a file of the demo's own (a `tradebox run` on the same machine keeps
/// its own). Prints the console's address and the token's file, and puts both on the board.
async fn start_admin(host: &std::sync::Arc<Host>) -> Result<crate::admin::AdminServer> {
    let token_file = crate::admin::default_token_file().with_file_name("demo-admin.token");
    let mut config = crate::admin::AdminConfig { token_file: Some(token_file), ..Default::default() };
    let server = match crate::admin::start(host.clone(), &config, Default::default()).await {
        Ok(server) => server,
        Err(crate::admin::AdminError::Bind { .. }) => {
            config.listen.set_port(0);
            crate::admin::start(host.clone(), &config, Default::default()).await.context("starting the admin API")?
        }
        Err(e) => return Err(e).context("starting the admin API"),
    };
    let line =
        format!("console: {}  (sign in with the token in {})", server.console_url(), server.token_file().display());
    say(&format!("{line}\n"));
    set_banner(line);
    Ok(server)
}

/// What the board shows under its title, for as long as the process runs: the console's
/// address and where its token is. One board per process (the terminal's), so one line.
static BANNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the board's line under its title (once; later calls are ignored).
pub fn set_banner(line: String) {
    let _ = BANNER.set(line);
}

/// Writes to stdout and flushes, ignoring errors: the host keeps trading whatever happens to
/// its terminal or pipe.
pub fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Shows the board until Ctrl-C, SIGTERM (a service manager's stop: the host then shuts down
/// as cleanly as at Ctrl-C) or `duration`: on a terminal, redrawn in place every second;
/// otherwise (a pipe, a log file) one summary line a second. [`show_final`] ends it.
pub async fn watch(host: &Host, duration: Option<Duration>) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let tty = std::io::stdout().is_terminal();
    let until = duration.map(|d| tokio::time::Instant::now() + d);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut first = true;
    loop {
        let sleep = async {
            match until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let terminated = async {
            #[cfg(unix)]
            if let Some(t) = term.as_mut() {
                t.recv().await;
                return;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = terminated => break,
            _ = tick.tick() => {
                // A closed stdout (`| head`) must never stop a trading host: write errors are ignored.
                if tty {
                    say(&frame(&board(host, false), first));
                    first = false;
                } else {
                    say(&format!("{}\n", summary_line(host)));
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sleep => break,
        }
    }
}

/// The final board, once: on a terminal it takes the place of the live one [`watch`] drew,
/// so the screen ends with one board rather than the last live board followed by the final.
pub fn show_final(host: &Host) {
    let text = board(host, true);
    if std::io::stdout().is_terminal() { say(&frame(&text, false)) } else { say(&format!("{text}\n")) }
}

/// The bytes that put `board` on a terminal in place of the previous one. The first frame
/// clears the screen (what was there, such as the build's output, stays in the scrollback on
/// most terminals); later frames go back to the top and overwrite line by line, clearing each
/// line's rest and everything below, because clearing the whole screen every second pushes a
/// copy of the board into many terminals' scrollback, and the final board then printed below
/// the last live one left two boards on screen.
fn frame(board: &str, first: bool) -> String {
    let mut out = String::with_capacity(board.len() + 256);
    out.push_str(if first { "\x1b[2J\x1b[H" } else { "\x1b[H" });
    for line in board.lines() {
        out.push_str(line);
        out.push_str("\x1b[K\n");
    }
    out.push_str("\x1b[J");
    out
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

/// What the board shows, read from a host at one moment (apart from the host, so the drawing
/// can be tested on its own).
struct Board {
    final_board: bool,
    /// The line under the title ([`set_banner`]).
    banner: Option<String>,
    venue: String,
    /// (symbol, bid, ask, last).
    quotes: Vec<(String, f64, f64, f64)>,
    plugins: Vec<PluginReport>,
    venue_status: Option<String>,
    /// (plugin, what happened), oldest first.
    activity: Vec<(String, String)>,
}

impl Board {
    fn read(host: &Host, final_board: bool) -> Self {
        let hub = host.hub();
        let quotes = hub
            .instruments()
            .into_iter()
            .filter_map(|spec| hub.quote(spec.id).map(|q| (spec.symbol.clone(), q.bid, q.ask, q.last)))
            .collect();
        Self {
            final_board,
            banner: BANNER.get().cloned(),
            venue: host.venue().name().to_string(),
            quotes,
            plugins: host.report(),
            venue_status: host.venue().status().map(|s| s.to_string()),
            activity: host.activity().recent(12).into_iter().map(|a| (a.plugin, a.what.to_string())).collect(),
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let title = if self.final_board { "tradebox demo: final" } else { "tradebox demo (Ctrl-C to stop)" };
        let _ = writeln!(out, "{title}  venue: {}", self.venue);
        // The final board is drawn after the admin API stopped: its address would mislead.
        if let Some(banner) = self.banner.as_ref().filter(|_| !self.final_board) {
            let _ = writeln!(out, "{banner}");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<16} {:>14} {:>14} {:>14}", "instrument", "bid", "ask", "last");
        for (symbol, bid, ask, last) in &self.quotes {
            let _ = writeln!(out, "{symbol:<16} {bid:>14.2} {ask:>14.2} {last:>14.2}");
        }
        let _ = writeln!(
            out,
            "\n{:<10} {:<10} {:>6} {:>6} {:>6} {:>5} {:>22} {:>11} {:>11} {:>9}",
            "plugin", "state", "orders", "denied", "fills", "open", "position", "realized", "unrealized", "fees"
        );
        for p in &self.plugins {
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
        if let Some(line) = &self.venue_status {
            let _ = writeln!(out, "\n{line}");
        }
        let _ = writeln!(out, "\nrecent activity:");
        for (plugin, text) in &self.activity {
            let _ = writeln!(out, "  {plugin:<10} {text}");
        }
        out
    }
}

/// The status board as text.
pub fn board(host: &Host, final_board: bool) -> String {
    Board::read(host, final_board).render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::RunState;

    fn plugin(name: &str) -> PluginReport {
        PluginReport {
            name: name.into(),
            state: RunState::Running,
            failures: 0,
            last_error: None,
            orders_sent: 3,
            denied: 0,
            rejected: 0,
            fills: 2,
            open_orders: 1,
            positions: vec![("ETH-USDT".into(), 0.5)],
            realized: 1.0,
            unrealized: -0.5,
            fees: 0.1,
            events: 10,
            logs_suppressed: 0,
            conflated: 0,
            hash: String::new(),
            reloads: 0,
            throttled_ms: 0,
            cpu_background: false,
            cpu_us: 0,
            memory_bytes: 0,
            memory_cap_bytes: 0,
            deadline_ms: 0,
            cpu_share: 0.0,
        }
    }

    fn demo_board(final_board: bool) -> Board {
        Board {
            final_board,
            banner: None,
            venue: "okx-demo".into(),
            quotes: vec![("BTC-USDT".into(), 1.0, 2.0, 1.5), ("ETH-USDT".into(), 3.0, 4.0, 3.5)],
            plugins: ["mm-eth", "sma-btc", "sma-swap"].map(plugin).to_vec(),
            venue_status: Some("rate limits: fine".into()),
            activity: vec![("mm-eth".into(), "quoted".into()), ("sma-btc".into(), "bought".into())],
        }
    }

    /// A terminal as far as the board uses one: rows of characters, a cursor, and the escapes
    /// `frame` writes (clear the screen, home, clear to the end of the line, clear below).
    fn screen_after(output: &str, rows: usize) -> Vec<String> {
        let mut screen: Vec<Vec<char>> = vec![Vec::new(); rows];
        let (mut row, mut col) = (0, 0);
        let mut rest = output;
        while let Some(c) = rest.chars().next() {
            let escape = ["\x1b[2J", "\x1b[H", "\x1b[K", "\x1b[J"].into_iter().find(|e| rest.starts_with(e));
            match escape {
                Some("\x1b[2J") => screen.iter_mut().for_each(Vec::clear),
                Some("\x1b[H") => (row, col) = (0, 0),
                Some("\x1b[K") => screen[row].truncate(col),
                Some(_) => {
                    screen[row].truncate(col);
                    screen.iter_mut().skip(row + 1).for_each(Vec::clear);
                }
                // The terminal's line discipline turns a newline into carriage return and line feed.
                None if c == '\n' => {
                    (row, col) = (row + 1, 0);
                    if row == rows {
                        screen.remove(0);
                        screen.push(Vec::new());
                        row -= 1;
                    }
                }
                None => {
                    let line = &mut screen[row];
                    if line.len() <= col {
                        line.resize(col, ' ');
                        line.push(c);
                    } else {
                        line[col] = c;
                    }
                    col += 1;
                }
            }
            rest = &rest[escape.map_or(c.len_utf8(), str::len)..];
        }
        screen.into_iter().map(|l| l.into_iter().collect()).collect()
    }

    #[test]
    fn the_board_lists_each_plugin_once() {
        let text = demo_board(true).render();
        for name in ["mm-eth", "sma-btc", "sma-swap"] {
            let rows = text.lines().filter(|l| l.starts_with(&format!("{name} "))).count();
            assert_eq!(rows, 1, "{name} in:\n{text}");
        }
        assert!(text.starts_with("tradebox demo: final  venue: okx-demo"), "{text}");
    }

    #[test]
    fn the_final_board_takes_the_place_of_the_live_one_on_a_terminal() {
        let mut output = String::from("   Compiling tradebox\n");
        output.push_str(&frame(&demo_board(false).render(), true));
        output.push_str(&frame(&demo_board(false).render(), false));
        // The last live board was taller (a failure line) than the final one.
        let mut taller = demo_board(false);
        taller.plugins[0].last_error = Some("trap".into());
        output.push_str(&frame(&taller.render(), false));
        output.push_str(&frame(&demo_board(true).render(), false));
        let screen = screen_after(&output, 80);
        let shown: Vec<&str> = screen.iter().map(String::as_str).filter(|l| !l.is_empty()).collect();
        let count = |prefix: &str| shown.iter().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(count("tradebox demo: final"), 1, "{shown:#?}");
        assert_eq!(count("tradebox demo (Ctrl-C"), 0, "no live board left: {shown:#?}");
        for name in ["mm-eth ", "sma-btc ", "sma-swap "] {
            assert_eq!(count(name), 1, "{name}: {shown:#?}");
        }
        assert_eq!(count("           last failure"), 0, "{shown:#?}");
        assert_eq!(shown.len(), demo_board(true).render().lines().filter(|l| !l.is_empty()).count());
    }
}
