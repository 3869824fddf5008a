//! The admin API: a running host's control surface, on loopback only, behind a bearer token
//! written to an owner-only file at start (or given in the config). The CLI
//! (`tradebox status|halt|resume`) talks to it; so can any HTTP client.
//!
//! - `GET /health`: `{"status":"ok"}`, no token needed;
//! - `GET /status`: account state, every plugin's state, counters (CPU throttling included)
//!   and PnL, the venue's line, whether the audit log is failing, orders adopted at start-up;
//! - `POST /halt` `{"plugin"?, "reason"?, "by"?}`: stop new orders and cancel open ones (one plugin,
//!   or the account); `POST /resume` `{"plugin"?}`: back to ACTIVE;
//! - `POST /keys/reload`: read the venue's API key again and switch to it once OKX accepts it
//!   for the same account (`tradebox keys reload`; 409 with why when refused, the old key
//!   stays);
//! - `GET /risk`: the account's and every plugin's limits; `PUT /risk/account` and
//!   `PUT /risk/plugins/{name}`: replace them (validated; every change audited);
//! - `/plugins`: list, load, reload, unload (see [`plugins`]);
//! - `GET /metrics`: Prometheus metrics (see [`metrics`]), behind the token like the rest;
//! - `GET /` and `/console/...`: the operator's console, a page in the browser, and its live
//!   stream (see [`console`]).
//!
//! Every request, the page's included, must name the address it was sent to in `Host` (the
//! loopback address served, or `localhost`, with the port) and, when it has an `Origin`, come
//! from the page's own: a site the operator visits cannot reach the API by rebinding its DNS
//! name to 127.0.0.1, nor by sending a request across sites (see [`guard`]). The token goes in
//! the `Authorization` header only, which a browser never adds by itself.

pub mod client;
pub mod console;
pub mod guard;
pub mod metrics;
pub mod plugins;

use crate::risk::{AccountLimits, RiskLimits};
use crate::running::Host;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tradebox_core::TradingState;

pub use crate::config::{AdminConfig, DEFAULT_PORT};

/// Where the token goes by default: `$XDG_RUNTIME_DIR/tradebox/admin.token`, else
/// `~/.local/state/tradebox/admin.token`, else the working directory.
pub fn default_token_file() -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("tradebox").join("admin.token")
}

/// Why the admin API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Not a loopback address.
    #[error("the admin API listens on loopback only, not {0}")]
    NotLoopback(SocketAddr),
    /// The address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The given token file is unusable.
    #[error("admin token_from {path}: {reason}")]
    GivenToken {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// The token file could not be written.
    #[error("cannot write the admin token to {path}: {source}")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Largest request body of a load, reload or inspection: a plugin component as base64.
pub const UPLOAD_LIMIT: usize = 96 << 20;

/// Largest body of any other request (limits, a halt's reason).
pub const BODY_LIMIT: usize = 64 << 10;

struct Ctx {
    host: Arc<Host>,
    token: String,
    /// `[defaults]` of the host's config, applied to plugins loaded through the API.
    defaults: crate::config::Defaults,
    metrics: prometheus_client::registry::Registry,
    /// The plugins' PnL since load, for the console.
    curves: console::Curves,
    /// One inspection at a time: each compiles an uploaded component (seconds of both cores
    /// for a large one) in the trading process.
    inspections: tokio::sync::Semaphore,
}

/// A running admin API. Dropping it stops it and removes the token file.
pub struct AdminServer {
    addr: SocketAddr,
    token_file: PathBuf,
    task: tokio::task::JoinHandle<()>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.task.abort();
        self.sampler.abort();
        let _ = std::fs::remove_file(&self.token_file);
    }
}

impl AdminServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the token is.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// The console's address, to open in a browser.
    pub fn console_url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

fn new_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// The token in `path`: an owner-only file of at least 32 printable characters.
fn given_token(path: &Path) -> Result<String, AdminError> {
    let refuse = |reason: String| AdminError::GivenToken { path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(refuse(format!("is readable by others (mode {mode:o}); chmod 600 it")));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    let token = text.trim();
    if token.len() < 32 || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(refuse("must hold one token of at least 32 printable ASCII characters".into()));
    }
    Ok(token.to_string())
}

/// Writes `token` to `path`, readable by its owner only.
fn write_token(path: &Path, token: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // A fresh name, created exclusively and never through a symlink: a file or link planted
    // at a guessable name by someone else fails the write instead of receiving the token.
    let tmp = path.with_extension(format!("{:016x}.tmp", rand::random::<u64>()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let written = options.open(&tmp).and_then(|mut f| std::io::Write::write_all(&mut f, token.as_bytes()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // rename replaces a symlink at `path` itself, never what it points to.
    std::fs::rename(&tmp, path)
}

/// Starts the admin API for `host`; plugins loaded through it get `defaults`.
pub async fn start(
    host: Arc<Host>,
    config: &AdminConfig,
    defaults: crate::config::Defaults,
) -> Result<AdminServer, AdminError> {
    if !config.listen.ip().is_loopback() {
        return Err(AdminError::NotLoopback(config.listen));
    }
    let token = match &config.token_from {
        Some(path) => given_token(path)?,
        None => new_token(),
    };
    let token_file = config.token_file.clone().unwrap_or_else(default_token_file);
    write_token(&token_file, &token).map_err(|source| AdminError::Token { path: token_file.clone(), source })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| AdminError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| AdminError::Bind { addr: config.listen, source })?;
    let metrics = metrics::registry(host.clone());
    let ctx = Arc::new(Ctx {
        host,
        token,
        defaults,
        metrics,
        curves: console::Curves::default(),
        inspections: tokio::sync::Semaphore::new(1),
    });
    let sampler = console::spawn_sampler(ctx.clone());
    // Uploads (a component as base64: Python's and JavaScript's are 12-20 MB) may be large;
    // every other body is a few fields.
    let upload = || axum::extract::DefaultBodyLimit::max(UPLOAD_LIMIT);
    let private = Router::new()
        .route("/console/stream", get(console::stream))
        .route("/status", get(status))
        .route("/halt", post(halt))
        .route("/resume", post(resume))
        .route("/keys/reload", post(reload_keys))
        .route("/risk", get(risk))
        .route("/risk/account", put(put_account))
        .route("/risk/plugins/{name}", put(put_plugin))
        .route("/plugins", get(plugins::list).post(plugins::load).layer(upload()))
        .route("/plugins/inspect", post(plugins::inspect).layer(upload()))
        .route("/plugins/{name}/reload", post(plugins::reload).layer(upload()))
        .route("/plugins/{name}/promote", post(plugins::promote))
        .route("/plugins/{name}", delete(plugins::unload))
        .route("/metrics", get(metrics::serve))
        // The token is checked before a handler reads the body: without it, nothing is read
        // (a large body from a caller without the token would otherwise be buffered first).
        // The handlers check it again.
        .route_layer(axum::middleware::from_fn_with_state(ctx.clone(), require_token));
    let app = Router::new()
        .route("/", get(console::assets::index))
        .route("/console/{file}", get(console::assets::asset))
        .route("/health", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .merge(private)
        .with_state(ctx)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(Arc::new(guard::Guard::new(addr)), guard::check));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "admin API stopped");
        }
    });
    tracing::info!(%addr, token_file = %token_file.display(), "admin API listening");
    Ok(AdminServer { addr, token_file, task, sampler })
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": msg.into()}))).into_response()
}

/// Checks the bearer token in constant time.
fn authorized(ctx: &Ctx, headers: &HeaderMap) -> bool {
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| {
        g.len() == ctx.token.len() && g.bytes().zip(ctx.token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "missing or wrong admin token")
}

/// The token, before the route's handler runs (and so before its body is read).
async fn require_token(
    State(ctx): State<Arc<Ctx>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if authorized(&ctx, request.headers()) { next.run(request).await } else { unauthorized() }
}

async fn status(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let hub = ctx.host.hub();
    let plugins: Vec<Value> = ctx
        .host
        .report()
        .into_iter()
        .map(|p| {
            let state = ctx.host.slot(&p.name).map_or("unknown", |s| s.state().as_str());
            json!({
                "name": p.name, "run_state": format!("{:?}", p.state), "trading_state": state,
                "failures": p.failures, "last_error": p.last_error, "orders_sent": p.orders_sent,
                "denied": p.denied, "rejected": p.rejected, "fills": p.fills, "open_orders": p.open_orders,
                "positions": p.positions, "realized": p.realized, "unrealized": p.unrealized, "fees": p.fees,
                "throttled_ms": p.throttled_ms, "cpu_background": p.cpu_background,
            })
        })
        .collect();
    axum::Json(json!({
        "venue": ctx.host.venue().name(),
        "account_state": hub.account_state().as_str(),
        "plugins": plugins,
        // The board's lines, and the same figures as fields.
        "venue_status": ctx.host.venue().status().map(|s| s.to_string()),
        "venue_health": ctx.host.venue().status(),
        // Fail closed: while true, new orders are refused (AUDIT_UNAVAILABLE).
        "audit_failing": hub.audit().is_some_and(|a| a.failing()),
        // Orders an earlier run left, tracked by the host (`orders_at_start = "adopt"`).
        "adopted_open_orders": hub.adopted_open(),
    }))
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct StateRequest {
    plugin: Option<String>,
    reason: Option<String>,
    /// Who asked (`console` from the page); in the audit record's detail.
    by: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("bad request body: {e}"))
}

async fn set_state(ctx: &Ctx, headers: &HeaderMap, body: &[u8], state: TradingState) -> Response {
    if !authorized(ctx, headers) {
        return unauthorized();
    }
    let req: StateRequest = match parse(body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let verb = if state == TradingState::Halted { "halted" } else { "resumed" };
    let by = req.by.filter(|b| !b.trim().is_empty());
    let reason = match (req.reason.filter(|r| !r.trim().is_empty()), by) {
        (Some(reason), Some(by)) => format!("{reason} ({verb} by {by})"),
        (Some(reason), None) => reason,
        (None, by) => format!("{verb} by the operator ({})", by.as_deref().unwrap_or("admin API")),
    };
    let hub = ctx.host.hub();
    match req.plugin {
        Some(name) => match ctx.host.slot(&name) {
            Some(slot) => {
                let open = hub.open_orders(slot.id).len();
                hub.set_plugin_state(&slot, state, &reason);
                axum::Json(json!({"plugin": name, "trading_state": state.as_str(), "cancelling": if state == TradingState::Halted { open } else { 0 }})).into_response()
            }
            None => error(StatusCode::NOT_FOUND, format!("no plugin named {name:?}")),
        },
        None => {
            let plugins: usize = hub.plugins().iter().map(|s| hub.open_orders(s.id).len()).sum();
            let open = plugins + hub.adopted_open();
            hub.set_account_state(state, &reason);
            axum::Json(json!({"account_state": state.as_str(), "cancelling": if state == TradingState::Halted { open } else { 0 }}))
                .into_response()
        }
    }
}

async fn halt(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    set_state(&ctx, &headers, &body, TradingState::Halted).await
}

async fn resume(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    set_state(&ctx, &headers, &body, TradingState::Active).await
}

/// Rotates the venue's API key (see `Venue::reload_keys`): 200 with the keys' first characters,
/// or 409 with why the new key was refused (the old one stays in use).
async fn reload_keys(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    match ctx.host.venue().reload_keys().await {
        Ok(switch) => {
            let key = if switch.changed { "switched" } else { "unchanged" };
            axum::Json(json!({"key": key, "from": switch.from, "to": switch.to})).into_response()
        }
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

async fn risk(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let plugins: serde_json::Map<String, Value> = ctx
        .host
        .plugin_names()
        .into_iter()
        .filter_map(|n| ctx.host.slot(&n).map(|s| (n, serde_json::to_value(s.risk.limits()).unwrap_or_default())))
        .collect();
    axum::Json(json!({"account": ctx.host.hub().account_limits(), "plugins": plugins})).into_response()
}

async fn put_account(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let limits: AccountLimits = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad account limits: {e}")),
    };
    match ctx.host.hub().set_account_limits(limits.clone(), "admin API") {
        Ok(()) => axum::Json(json!({"account": limits})).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

async fn put_plugin(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let Some(slot) = ctx.host.slot(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no plugin named {name:?}"));
    };
    let limits: RiskLimits = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad limits for {name}: {e}")),
    };
    match ctx.host.hub().set_plugin_limits(&slot, limits.clone(), "admin API") {
        Ok(()) => axum::Json(json!({"plugin": name, "limits": limits})).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_token_must_be_owner_only_and_long() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("admin.token");
        let token = "t".repeat(40);
        write_token(&path, &format!("{token}\n")).expect("write");
        assert_eq!(given_token(&path).expect("usable"), token);
        write_token(&path, "short").expect("write");
        let err = given_token(&path).expect_err("too short").to_string();
        assert!(err.contains("at least 32") && !err.contains("short"), "never the content: {err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            write_token(&path, &token).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(given_token(&path).expect_err("readable by others").to_string().contains("chmod 600"));
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_token_never_goes_through_a_planted_link() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("admin.token");
        // Someone else's file, linked from where the token goes and from the old temporary name.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").expect("victim");
        std::os::unix::fs::symlink(&victim, &path).expect("link");
        std::os::unix::fs::symlink(&victim, path.with_extension("tmp")).expect("link");
        write_token(&path, &"t".repeat(40)).expect("write");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "untouched");
        assert!(!std::fs::symlink_metadata(&path).expect("token").file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&path).expect("token"), "t".repeat(40));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("token").permissions().mode() & 0o777, 0o600);
    }
}
