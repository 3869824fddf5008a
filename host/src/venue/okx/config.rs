//! `[venue.okx]`: where the account lives (region, URLs), how it trades (margin, start-up
//! policy for orders left open), where its key comes from, certificate pins, the
//! authentication-failure watch, and the checks that refuse unsafe settings before anything
//! connects.

use super::authwatch;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tradebox_okx::Credentials;

/// `[venue.okx]` in the host config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OkxConfig {
    /// Which OKX site the account lives on; it names the REST and WebSocket hosts unless
    /// `rest_url`/`ws_url` say otherwise. A key used on the wrong site gets 50119 / 50111.
    pub region: Region,
    /// REST base URL; empty means the region's (`https://www.okx.com` for `global`). A
    /// simulator: `http://127.0.0.1:PORT`. OKX's docs from mid-2026 name
    /// `https://openapi.okx.com` for the global site; every SDK still uses `www.okx.com`, and
    /// either can be given here.
    pub rest_url: String,
    /// Demo trading: every request carries `x-simulated-trading: 1` (and a demo key is needed).
    pub demo: bool,
    /// The instruments to trade, as OKX names them (`BTC-USDT`, `BTC-USDT-SWAP`). Each must be
    /// listed by the exchange; plugins are granted from these.
    pub instruments: Vec<String>,
    /// An owner-only file with `OKX_API_KEY=`, `OKX_API_SECRET=`, `OKX_API_PASSPHRASE=` lines.
    /// Where the key comes from, first found: `credentials_command`, this file, systemd's
    /// `$CREDENTIALS_DIRECTORY/okx` (same format), the same names in the environment.
    pub credentials_file: Option<PathBuf>,
    /// A program (and its arguments, no shell) that prints the credentials in the file's format:
    /// a secret manager (`["pass", "show", "okx/trading"]`). Run at start and at every `tradebox
    /// keys reload`; its output is held like any secret.
    pub credentials_command: Vec<String>,
    /// Accept a key with `withdraw` permission (refused by default: a trading host never needs it).
    pub allow_withdraw_key: bool,
    /// How long one request may take before its outcome counts as unknown, ms.
    pub timeout_ms: u64,
    /// OKX drops an order request that arrives later than this after it was sent (`expTime`),
    /// ms; 0 sends none. It is also what lets a timed-out placement be settled for certain.
    pub exp_time_ms: u64,
    /// How often the REST loop reads orders, fills and market data, ms.
    pub poll_ms: u64,
    /// How often it reads balances and positions, ms.
    pub account_poll_ms: u64,
    /// Retries of a request that certainly did not execute (not sent, 429, busy) before giving up.
    pub max_retries: u32,
    /// How often the clock takes a new sample of OKX's time, ms.
    pub clock_sync_ms: u64,
    /// Use the WebSocket feeds (market data and private pushes); REST only when false.
    pub websocket: bool,
    /// WebSocket base URL; empty means the region's, demo or live (for `global`:
    /// `wss://wspap.okx.com:8443` demo, `wss://ws.okx.com:8443` live). A simulator:
    /// `ws://127.0.0.1:PORT`.
    pub ws_url: String,
    /// While the private WebSocket is up, how often REST still reconciles orders and fills, ms.
    pub reconcile_ms: u64,
    /// Send `ping` after this long without a frame, ms (OKX closes at 30 s).
    pub ws_ping_ms: u64,
    /// Reconnect when `pong` has not come this long after `ping`, ms.
    pub ws_pong_ms: u64,
    /// Dead man's switch: OKX cancels the account's orders (and each plugin's, by its order
    /// tag) if the host has not re-armed `cancel-all-after` within this many seconds; the host
    /// re-arms every third of it. 0: off. OKX accepts 10-120.
    pub dead_man_s: u32,
    /// The authentication-failure watch: failures in a window that warn, and that halt the
    /// account ([`authwatch`]).
    pub auth_watch: authwatch::AuthWatchConfig,
    /// Certificate pins (optional): SPKI SHA-256 pins of the REST and WebSocket hosts. A host
    /// that presents none of its pins is refused, every time, never silently let through.
    pub pins: PinsConfig,
    /// Margin for swaps, where OKX offers both: `cross` (the default) or `isolated`. Spot
    /// orders follow the account mode instead (`cash`, or `cross` in multi-currency and
    /// portfolio margin mode).
    pub margin_mode: MarginMode,
    /// What start-up does with open orders an earlier run of a host left on the account
    /// (after a crash, a `kill -9`, a lost machine): `cancel` them (the default), `adopt` them
    /// or `leave` them. Only this host's orders are touched (client order id and tag start
    /// with `tb`).
    pub orders_at_start: OrdersAtStart,
}

/// `[venue.okx.pins]`: the SPKI SHA-256 pins (base64, optionally `sha256/`-prefixed, as
/// `openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary |
/// base64` prints them) a connection must meet in the chain the server presents (its leaf or
/// an intermediate; roots are not sent, so cannot be pinned). Empty: no pinning. Give a
/// backup pin (the next key, or the issuing CA's) so that a certificate renewal does not stop
/// trading.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PinsConfig {
    /// Pins for the REST host.
    pub rest: Vec<String>,
    /// Pins for the WebSocket hosts.
    pub ws: Vec<String>,
}

impl PinsConfig {
    /// The TLS settings for the REST client and the WebSocket clients.
    pub fn settings(&self) -> Result<(tradebox_okx::TlsSettings, tradebox_okx::TlsSettings), String> {
        let one = |name: &str, pins: &[String]| -> Result<tradebox_okx::TlsSettings, String> {
            if pins.is_empty() {
                return Ok(tradebox_okx::TlsSettings::default());
            }
            let parsed = tradebox_okx::Pins::parse(pins).map_err(|e| format!("pins.{name}: {e}"))?;
            Ok(tradebox_okx::TlsSettings::pinned(parsed))
        };
        Ok((one("rest", &self.rest)?, one("ws", &self.ws)?))
    }
}

/// Margin for derivatives (OKX's `tdMode` for swaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MarginMode {
    /// Margin shared across the account's positions.
    #[default]
    Cross,
    /// Margin set aside per position.
    Isolated,
}

impl MarginMode {
    /// OKX's `tdMode` value.
    pub fn td_mode(self) -> &'static str {
        match self {
            MarginMode::Cross => "cross",
            MarginMode::Isolated => "isolated",
        }
    }
}

/// OKX's sites: an account opened on one answers only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// `www.okx.com` (most accounts).
    #[default]
    Global,
    /// OKX's European Economic Area site, `eea.okx.com` (accounts of `my.okx.com`).
    Eea,
    /// OKX's US site, `us.okx.com` (accounts of `app.okx.com` in the US).
    Us,
}

impl Region {
    /// REST base URL (demo trading uses the same host, chosen by a header).
    pub fn rest_url(self) -> &'static str {
        match self {
            Region::Global => "https://www.okx.com",
            Region::Eea => "https://eea.okx.com",
            Region::Us => "https://us.okx.com",
        }
    }

    /// WebSocket base URL, live or demo (demo hosts add `pap`).
    pub fn ws_url(self, demo: bool) -> &'static str {
        match (self, demo) {
            (Region::Global, false) => "wss://ws.okx.com:8443",
            (Region::Global, true) => "wss://wspap.okx.com:8443",
            (Region::Eea, false) => "wss://wseea.okx.com:8443",
            (Region::Eea, true) => "wss://wseeapap.okx.com:8443",
            (Region::Us, false) => "wss://wsus.okx.com:8443",
            (Region::Us, true) => "wss://wsuspap.okx.com:8443",
        }
    }
}

/// What start-up does with the open orders an earlier run left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OrdersAtStart {
    /// Cancel each one before any plugin starts: no strategy inherits orders it did not place.
    #[default]
    Cancel,
    /// Keep them open and track them as the host's own: their changes and fills are audited,
    /// they count against the account's risk limits, and the account kill switch (`tradebox
    /// halt`) cancels them. No plugin owns them (a restarted plugin is a new instance that
    /// never knew them), so none sees or can cancel them. Orders on instruments this host
    /// does not trade cannot be tracked and are left open, and said so.
    Adopt,
    /// Leave them on the exchange (listed in the log and the audit trail); they are not
    /// tracked, so the kill switch does not reach them: cancel them on OKX's side.
    Leave,
}

impl Default for OkxConfig {
    fn default() -> Self {
        Self {
            region: Region::Global,
            rest_url: String::new(),
            demo: true,
            instruments: Vec::new(),
            credentials_file: None,
            credentials_command: Vec::new(),
            allow_withdraw_key: false,
            timeout_ms: 5_000,
            exp_time_ms: 5_000,
            poll_ms: 500,
            account_poll_ms: 2_000,
            max_retries: 3,
            clock_sync_ms: 60_000,
            websocket: true,
            ws_url: String::new(),
            reconcile_ms: 5_000,
            ws_ping_ms: 20_000,
            ws_pong_ms: 10_000,
            dead_man_s: 60,
            pins: PinsConfig::default(),
            auth_watch: authwatch::AuthWatchConfig::default(),
            margin_mode: MarginMode::Cross,
            orders_at_start: OrdersAtStart::Cancel,
        }
    }
}

impl OkxConfig {
    /// The REST base URL to use.
    pub fn rest_base(&self) -> String {
        if self.rest_url.is_empty() { self.region.rest_url().into() } else { self.rest_url.clone() }
    }

    /// The WebSocket base URL to use.
    pub fn ws_base(&self) -> String {
        if self.ws_url.is_empty() { self.region.ws_url(self.demo).into() } else { self.ws_url.clone() }
    }

    /// Refuses settings that cannot work or would be unsafe, before anything connects: URLs
    /// that would send the signed headers or the WebSocket login (the passphrase) in clear text
    /// to another machine (`http://` and `ws://` only for loopback, `tradebox sim` on this
    /// machine; `https://`/`wss://` everywhere else), unreadable pins, two key sources.
    pub fn check(&self) -> Result<(), String> {
        if !self.credentials_command.is_empty() && self.credentials_file.is_some() {
            return Err("set credentials_command or credentials_file, not both".into());
        }
        check_url("rest_url", &self.rest_base(), "https")?;
        if !self.ws_url.is_empty() {
            check_url("ws_url", &self.ws_url, "wss")?;
        }
        // Pins are checked here too: a pin that cannot be read, or one on a plain-text URL
        // (where it would pin nothing), is a config error, not a surprise at the first order.
        let (rest, ws) = self.pins.settings()?;
        rest.check_url(&self.rest_base()).map_err(|e| format!("pins.rest: {e}"))?;
        ws.check_url(&self.ws_base()).map_err(|e| format!("pins.ws: {e}"))?;
        Ok(())
    }

    /// Reads the credentials this config names: the command, the file, systemd's credentials
    /// directory, or else the environment (one key per host instance).
    pub fn credentials(&self) -> Result<Credentials, tradebox_okx::CredentialsError> {
        if !self.credentials_command.is_empty() {
            return Credentials::from_command(&self.credentials_command);
        }
        if let Some(path) = &self.credentials_file {
            return Credentials::from_file(path);
        }
        Credentials::from_systemd().unwrap_or_else(Credentials::from_env)
    }

    /// Where [`OkxConfig::credentials`] reads from, in words (for the log and doctor).
    pub fn credentials_source(&self) -> String {
        if let Some(program) = self.credentials_command.first() {
            return format!("credentials_command {program:?}");
        }
        if let Some(path) = &self.credentials_file {
            return format!("credentials file {}", path.display());
        }
        match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => format!("systemd credential {}", Path::new(&dir).join("okx").display()),
            None => "the environment (OKX_API_KEY, OKX_API_SECRET, OKX_API_PASSPHRASE)".into(),
        }
    }
}

/// `url` must use `secure` (`https`/`wss`), or its insecure twin on a loopback host (a
/// simulator); `risk` says what would cross the network in clear text otherwise. Shared with
/// the paper venue, whose market data is what it protects.
pub(crate) fn secure_url(name: &str, url: &str, secure: &str, risk: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{name} {url:?} is not a URL: {e}"))?;
    let insecure = if secure == "https" { "http" } else { "ws" };
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        s if s == secure => Ok(()),
        s if s == insecure && loopback => Ok(()),
        s if s == insecure => Err(format!(
            "{name} {url:?} is {insecure}:// to another machine: {risk}; use {secure}:// ({insecure}:// is for a \
             simulator on this machine)"
        )),
        s => Err(format!("{name} {url:?}: expected {secure}:// (got {s}://)")),
    }
}

/// An OKX URL: the key's signatures and the WebSocket login cross it.
fn check_url(name: &str, url: &str, secure: &str) -> Result<(), String> {
    secure_url(name, url, secure, "the API key, passphrase and signatures would cross the network in clear text")
}
