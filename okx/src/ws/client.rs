//! One OKX WebSocket endpoint, kept connected: connect (at most 3 new connections a second for
//! all clients sharing a [`ConnectGate`]), log in when the endpoint needs it, subscribe
//! everything tracked, ping after an idle spell and reconnect when the `pong` is late, reconnect
//! at once on OKX's service notice (64008), back off with jitter between attempts, and keep
//! within 480 subscribe/unsubscribe/login requests per connection per hour.
//!
//! The client owns the set of exchange subscriptions; callers add and remove args and receive
//! [`ClientEvent`]s: frames in the order they arrived, and `Connected` / `Disconnected` so they
//! can reconcile what they may have missed.

use super::message::{self, Frame, ParseError};
use crate::clock::Clock;
use crate::sign::Signer;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use rand::Rng;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// New connections per second OKX allows per IP.
pub const CONNECTS_PER_SEC: usize = 3;
/// Subscribe + unsubscribe + login requests OKX allows per connection per hour.
pub const OPS_PER_HOUR: usize = 480;
/// Args per subscribe request (OKX caps a request at 64 KB; this stays far below).
const ARGS_PER_REQUEST: usize = 20;

/// Spaces out new connections across every client that shares it (OKX: 3 per second per IP).
#[derive(Debug, Default)]
pub struct ConnectGate {
    recent: Mutex<VecDeque<Instant>>,
}

impl ConnectGate {
    /// Waits until a new connection is allowed and takes the slot.
    pub async fn wait(&self) {
        loop {
            let wait = {
                let mut recent = self.recent.lock();
                let now = Instant::now();
                while recent.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
                    recent.pop_front();
                }
                if recent.len() < CONNECTS_PER_SEC {
                    recent.push_back(now);
                    return;
                }
                recent.front().map_or(Duration::ZERO, |t| Duration::from_secs(1).saturating_sub(now.duration_since(*t)))
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// What an endpoint needs to log in.
#[derive(Clone)]
pub struct Login {
    /// Signs the login.
    pub signer: Signer,
    /// Exchange time for its timestamp.
    pub clock: Arc<Clock>,
}

/// Settings of one endpoint.
#[derive(Clone)]
pub struct ClientConfig {
    /// `wss://ws.okx.com:8443/ws/v5/public`, or a simulator's `ws://127.0.0.1:PORT/ws/v5/public`.
    pub url: String,
    /// Log in after connecting (`/private`, and `/business` for private channels).
    pub login: Option<Login>,
    /// Send `ping` after this long without a frame (OKX closes at 30 s).
    pub ping_after: Duration,
    /// Reconnect when `pong` has not come this long after `ping`.
    pub pong_within: Duration,
    /// First pause before reconnecting; doubles up to `backoff_max`, with jitter.
    pub backoff_min: Duration,
    /// Longest pause before reconnecting.
    pub backoff_max: Duration,
    /// Shared limit on new connections.
    pub gate: Arc<ConnectGate>,
}

impl ClientConfig {
    /// Defaults for `url`: ping after 20 s, pong within 10 s, back off 250 ms to 30 s.
    pub fn new(url: impl Into<String>, gate: Arc<ConnectGate>) -> Self {
        Self {
            url: url.into(),
            login: None,
            ping_after: Duration::from_secs(20),
            pong_within: Duration::from_secs(10),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            gate,
        }
    }
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Connected (and logged in): every tracked subscription has been requested again.
    Connected,
    /// The connection is gone; the client is reconnecting.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A frame, in arrival order.
    Frame(Frame),
    /// A frame that could not be read (skipped).
    Bad {
        /// Why.
        error: ParseError,
        /// The start of the frame.
        sample: String,
    },
}

enum Cmd {
    Subscribe(String),
    Unsubscribe(String),
    Resubscribe(String),
    Send(String),
}

/// A handle to one endpoint's connection task. Dropping it stops the task.
pub struct WsClient {
    tx: mpsc::UnboundedSender<Cmd>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WsClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WsClient {
    /// Starts connecting; events go to `events`.
    pub fn spawn(config: ClientConfig, events: mpsc::UnboundedSender<ClientEvent>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(config, rx, events));
        Self { tx, task }
    }

    /// Adds a subscription (an OKX `arg` object); sent now when connected, and after every
    /// reconnect.
    pub fn subscribe(&self, arg: &serde_json::Value) {
        let _ = self.tx.send(Cmd::Subscribe(arg.to_string()));
    }

    /// Removes a subscription.
    pub fn unsubscribe(&self, arg: &serde_json::Value) {
        let _ = self.tx.send(Cmd::Unsubscribe(arg.to_string()));
    }

    /// Unsubscribes and subscribes again (a fresh `books` snapshot after a gap).
    pub fn resubscribe(&self, arg: &serde_json::Value) {
        let _ = self.tx.send(Cmd::Resubscribe(arg.to_string()));
    }

    /// Sends a text frame as is (order operations).
    pub fn send(&self, text: String) {
        let _ = self.tx.send(Cmd::Send(text));
    }
}

fn op(op: &str, args: &[&String]) -> String {
    let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    format!(r#"{{"op":"{op}","args":[{}]}}"#, args.join(","))
}

fn login_frame(l: &Login) -> String {
    let ts = l.clock.now_ms() / 1_000;
    let sign = l.signer.ws_login(ts);
    let c = l.signer.credentials();
    use secrecy::ExposeSecret;
    serde_json::json!({"op": "login", "args": [{
        "apiKey": c.api_key(), "passphrase": c.passphrase().expose_secret(), "timestamp": ts.to_string(), "sign": sign,
    }]})
    .to_string()
}

/// Requests on this connection within the last hour (OKX's 480 per hour).
struct OpBudget(VecDeque<Instant>);

impl OpBudget {
    /// Waits until one more request is within the budget, and counts it.
    async fn take(&mut self) {
        loop {
            let now = Instant::now();
            while self.0.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3_600)) {
                self.0.pop_front();
            }
            if self.0.len() < OPS_PER_HOUR {
                self.0.push_back(now);
                return;
            }
            let oldest = self.0.front().copied().unwrap_or(now);
            tracing::warn!("OKX WebSocket: 480 subscribe/login requests this hour on one connection; waiting");
            tokio::time::sleep_until(oldest + Duration::from_secs(3_600)).await;
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn run(config: ClientConfig, mut cmds: mpsc::UnboundedReceiver<Cmd>, events: mpsc::UnboundedSender<ClientEvent>) {
    let mut tracked: BTreeSet<String> = BTreeSet::new();
    let mut backoff = config.backoff_min;
    let mut failures = 0u32;
    loop {
        config.gate.wait().await;
        let reason =
            match tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(&config.url)).await {
                Ok(Ok((socket, _))) => {
                    let (reason, was_up) = session(&config, socket, &mut tracked, &mut cmds, &events).await;
                    if was_up {
                        backoff = config.backoff_min;
                        failures = 0;
                    }
                    reason
                }
                Ok(Err(e)) => format!("could not connect: {e}"),
                Err(_) => "could not connect: timed out".to_string(),
            };
        if events.is_closed() || cmds.is_closed() {
            return;
        }
        failures += 1;
        if failures == 1 || failures.is_power_of_two() {
            tracing::warn!(url = %config.url, %reason, failures, "OKX WebSocket down; reconnecting");
        }
        let _ = events.send(ClientEvent::Disconnected { reason });
        // Full jitter over [backoff/2, backoff]: clients dropped together do not return together.
        let ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX).max(2);
        let pause = Duration::from_millis(rand::rng().random_range(ms / 2..=ms));
        // Commands that arrive meanwhile still change the tracked set.
        let until = Instant::now() + pause;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Subscribe(a)) => { tracked.insert(a); }
                    Some(Cmd::Unsubscribe(a)) => { tracked.remove(&a); }
                    Some(Cmd::Resubscribe(_) | Cmd::Send(_)) => {}
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
}

/// One connection's life. Returns why it ended and whether it got as far as `Connected`.
async fn session(
    config: &ClientConfig,
    mut socket: Socket,
    tracked: &mut BTreeSet<String>,
    cmds: &mut mpsc::UnboundedReceiver<Cmd>,
    events: &mpsc::UnboundedSender<ClientEvent>,
) -> (String, bool) {
    let mut budget = OpBudget(VecDeque::new());
    let send = |text: String| Message::text(text);
    if let Some(login) = &config.login {
        budget.take().await;
        if let Err(e) = socket.send(send(login_frame(login))).await {
            return (format!("sending login: {e}"), false);
        }
        // Wait for the answer; nothing else comes before it.
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(msg) = socket.next().await {
                match msg {
                    Ok(Message::Text(t)) => match message::parse(t.as_str()) {
                        Ok(Frame::Event(e)) if e.event == "login" => return Ok(()),
                        Ok(Frame::Event(e)) if e.event == "error" => {
                            return Err(format!("login refused: {} {}", e.code, e.msg));
                        }
                        _ => {}
                    },
                    Ok(Message::Close(c)) => return Err(format!("closed during login: {c:?}")),
                    Ok(_) => {}
                    Err(e) => return Err(format!("login: {e}")),
                }
            }
            Err("closed during login".to_string())
        })
        .await;
        match answer {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return (why, false),
            Err(_) => return ("no answer to login within 10 s".into(), false),
        }
    }
    let all: Vec<&String> = tracked.iter().collect();
    for chunk in all.chunks(ARGS_PER_REQUEST) {
        budget.take().await;
        if let Err(e) = socket.send(send(op("subscribe", chunk))).await {
            return (format!("resubscribing: {e}"), false);
        }
    }
    let _ = events.send(ClientEvent::Connected);
    let mut last_heard = Instant::now();
    let mut pong_due: Option<Instant> = None;
    loop {
        let timer = pong_due.unwrap_or(last_heard + config.ping_after);
        tokio::select! {
            msg = socket.next() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        let text = t.as_str();
                        match message::parse(text) {
                            Ok(Frame::Pong) => pong_due = None,
                            Ok(Frame::Event(e)) if e.event == "notice" && e.code == "64008" => {
                                let _ = events.send(ClientEvent::Frame(Frame::Event(e)));
                                return ("service upgrade notice (64008): reconnecting early".into(), true);
                            }
                            Ok(frame) => {
                                let _ = events.send(ClientEvent::Frame(frame));
                            }
                            Err(error) => {
                                let sample: String = text.chars().take(200).collect();
                                let _ = events.send(ClientEvent::Bad { error, sample });
                            }
                        }
                    }
                    Some(Ok(Message::Close(c))) => {
                        return (c.map_or_else(|| "closed".into(), |c| format!("closed by OKX: {} {}", c.code, c.reason)), true);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return (format!("connection error: {e}"), true),
                    None => return ("connection closed".into(), true),
                }
            }
            cmd = cmds.recv() => {
                let Some(cmd) = cmd else { return ("client dropped".into(), true) };
                let text = match cmd {
                    Cmd::Subscribe(a) => tracked.insert(a.clone()).then(|| op("subscribe", &[&a])),
                    Cmd::Unsubscribe(a) => tracked.remove(&a).then(|| op("unsubscribe", &[&a])),
                    Cmd::Resubscribe(a) => {
                        if tracked.contains(&a) {
                            budget.take().await;
                            if let Err(e) = socket.send(send(op("unsubscribe", &[&a]))).await {
                                return (format!("sending: {e}"), true);
                            }
                            Some(op("subscribe", &[&a]))
                        } else {
                            None
                        }
                    }
                    Cmd::Send(t) => {
                        if let Err(e) = socket.send(send(t)).await {
                            return (format!("sending: {e}"), true);
                        }
                        None
                    }
                };
                if let Some(t) = text {
                    budget.take().await;
                    if let Err(e) = socket.send(send(t)).await {
                        return (format!("sending: {e}"), true);
                    }
                }
            }
            _ = tokio::time::sleep_until(timer) => {
                if pong_due.is_some() {
                    return (format!("no pong within {} ms", config.pong_within.as_millis()), true);
                }
                if let Err(e) = socket.send(send("ping".into())).await {
                    return (format!("sending ping: {e}"), true);
                }
                pong_due = Some(Instant::now() + config.pong_within);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_most_three_connections_a_second() {
        let gate = ConnectGate::default();
        let start = Instant::now();
        for _ in 0..3 {
            gate.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        gate.wait().await;
        assert!(start.elapsed() >= Duration::from_secs(1), "the fourth waits a second");
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_480_requests_an_hour_per_connection() {
        let mut budget = OpBudget(VecDeque::new());
        let start = Instant::now();
        for _ in 0..OPS_PER_HOUR {
            budget.take().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        budget.take().await;
        assert!(start.elapsed() >= Duration::from_secs(3_600), "the 481st waits for the hour");
    }
}
