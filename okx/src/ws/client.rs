//! One OKX WebSocket endpoint, kept connected: connect (at most 3 new connections a second for
//! all clients sharing a [`ConnectGate`]), log in when the endpoint needs it, subscribe
//! everything tracked, ping after an idle spell and reconnect when the `pong` is late, reconnect
//! at once on OKX's service notice (64008), back off with jitter between attempts, and keep
//! within 480 subscribe/unsubscribe/login requests per connection per hour.
//!
//! The client owns the set of exchange subscriptions; callers add and remove args and receive
//! [`ClientEvent`]s: frames in the order they arrived, and `Connected` / `Disconnected` so they
//! can reconcile what they may have missed.
//!
//! With certificate pins ([`ClientConfig::tls`]) every attempt uses the pinned TLS setup, and a
//! host presenting no pinned key ends the attempt with a `Disconnected` whose reason starts
//! "certificate pin mismatch" ([`ClientEvent::is_pin_mismatch`]); the next attempt is pinned
//! again, never a fallback.

use super::lossy;
use super::message::{self, Frame, ParseError};
use crate::clock::ClockSync;
use crate::tls::{PIN_MISMATCH, PinMismatch, TlsSettings};
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
    /// Signs the login (each login with the key in use then: a rotation takes effect at the
    /// next one).
    pub signer: crate::sign::SharedSigner,
    /// Exchange time for its timestamp.
    pub clock: Arc<ClockSync>,
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
    /// Certificate pins and extra roots for `url`'s host; the default is tungstenite's own TLS.
    pub tls: TlsSettings,
    /// Hand every text frame over unparsed ([`ClientEvent::Raw`]) instead of as a [`Frame`]: a
    /// recorder keeps the bytes as received and has no use for the parse (its cost would bound
    /// the frames a second it keeps up with). `pong` and OKX's service notice are still acted on.
    pub raw: bool,
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
            tls: TlsSettings::default(),
            raw: false,
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
    /// A text frame as received (with [`ClientConfig::raw`] only, in place of `Frame` and `Bad`;
    /// `pong` is not handed over).
    Raw(String),
    /// OKX refused the login (its code and message); a `Disconnected` follows. Apart, so that
    /// the caller can count refusals of its key by code.
    LoginRefused {
        /// OKX code (60004-60009, 60024, ...).
        code: String,
        /// OKX message.
        msg: String,
    },
    /// A frame that could not be read (skipped).
    Bad {
        /// Why.
        error: ParseError,
        /// The start of the frame.
        sample: String,
    },
}

impl ClientEvent {
    /// A disconnect because the server presented no pinned key: not the network, so the caller
    /// says so (the host: an error line beside the link down); every reconnect is pinned too.
    pub fn is_pin_mismatch(&self) -> bool {
        matches!(self, ClientEvent::Disconnected { reason } if reason.starts_with(PIN_MISMATCH))
    }
}

/// Where a client's events go: an unbounded channel (every event kept: the venue's order
/// updates must never be lost), or a [`lossy`] queue for a raw-mode recorder, whose memory
/// must stay bounded when its disk stalls.
#[derive(Debug)]
pub struct Events(Sink);

#[derive(Debug)]
enum Sink {
    Unbounded(mpsc::UnboundedSender<ClientEvent>),
    Lossy(lossy::Sender),
}

impl From<mpsc::UnboundedSender<ClientEvent>> for Events {
    fn from(tx: mpsc::UnboundedSender<ClientEvent>) -> Self {
        Self(Sink::Unbounded(tx))
    }
}

impl From<lossy::Sender> for Events {
    fn from(tx: lossy::Sender) -> Self {
        Self(Sink::Lossy(tx))
    }
}

impl Events {
    /// Hands `event` over (a lossy queue may drop a frame; a receiver gone drops everything,
    /// and the client stops at its next attempt).
    fn send(&self, event: ClientEvent) {
        match &self.0 {
            Sink::Unbounded(tx) => {
                let _ = tx.send(event);
            }
            Sink::Lossy(tx) => tx.send(event),
        }
    }

    fn is_closed(&self) -> bool {
        match &self.0 {
            Sink::Unbounded(tx) => tx.is_closed(),
            Sink::Lossy(tx) => tx.is_closed(),
        }
    }
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
    /// Starts connecting; events go to `events` (an `UnboundedSender<ClientEvent>`, or a
    /// [`lossy::Sender`] for a raw-mode consumer that may fall behind).
    pub fn spawn(config: ClientConfig, events: impl Into<Events>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(config, rx, events.into()));
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

/// The login frame. Built by hand into wiped buffers (a `serde_json::Value` would keep a copy
/// of the passphrase that nothing wipes); the copy handed to the socket library is its own.
fn login_frame(l: &Login) -> String {
    use secrecy::ExposeSecret;
    use zeroize::Zeroizing;
    let ts = l.clock.now_ms() / 1_000;
    let signer = l.signer.current();
    let sign = signer.ws_login(ts);
    let c = signer.credentials();
    let quoted = |v: &str| Zeroizing::new(serde_json::to_string(v).unwrap_or_default());
    let (key, passphrase) = (quoted(c.api_key()), quoted(c.passphrase().expose_secret()));
    let frame = Zeroizing::new(format!(
        r#"{{"op":"login","args":[{{"apiKey":{},"passphrase":{},"timestamp":"{ts}","sign":"{sign}"}}]}}"#,
        key.as_str(),
        passphrase.as_str()
    ));
    frame.as_str().to_owned()
}

/// Requests on this connection within the last hour (OKX's 480 per hour).
struct OpBudget(VecDeque<Instant>);

impl OpBudget {
    /// When one more request fits: now, or when the oldest of the last hour's ages out.
    fn ready_at(&mut self, now: Instant) -> Instant {
        while self.0.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3_600)) {
            self.0.pop_front();
        }
        if self.0.len() < OPS_PER_HOUR { now } else { self.0.front().map_or(now, |t| *t + Duration::from_secs(3_600)) }
    }

    /// Counts a request sent now.
    fn count(&mut self, now: Instant) {
        self.0.push_back(now);
    }
}

/// What the exchange has been asked for on this connection against what callers want. Ops
/// are worked out from the difference when the budget has room, so a subscription toggled on
/// and off while the budget is spent costs nothing, and waiting for the budget never stops
/// the connection reading frames or answering pings.
#[derive(Default)]
struct Ops {
    /// Args subscribed on this connection (or asked for).
    active: BTreeSet<String>,
    /// Args to drop and subscribe again (a book that lost its sequence).
    resubscribe: BTreeSet<String>,
    warned: bool,
}

impl Ops {
    /// The next request to send, if the wanted set and this connection's differ.
    fn next(&mut self, wanted: &BTreeSet<String>) -> Option<String> {
        if let Some(a) = self.resubscribe.pop_first()
            && self.active.remove(&a)
        {
            return Some(op("unsubscribe", &[&a]));
        }
        let subscribe: Vec<&String> = wanted.difference(&self.active).take(ARGS_PER_REQUEST).collect();
        if !subscribe.is_empty() {
            let text = op("subscribe", &subscribe);
            let added: Vec<String> = subscribe.into_iter().cloned().collect();
            self.active.extend(added);
            return Some(text);
        }
        let unsubscribe: Vec<&String> = self.active.difference(wanted).take(ARGS_PER_REQUEST).collect();
        if !unsubscribe.is_empty() {
            let text = op("unsubscribe", &unsubscribe);
            let gone: Vec<String> = unsubscribe.into_iter().cloned().collect();
            for a in gone {
                self.active.remove(&a);
            }
            return Some(text);
        }
        None
    }

    fn pending(&self, wanted: &BTreeSet<String>) -> bool {
        !self.resubscribe.is_empty() || wanted != &self.active
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn run(config: ClientConfig, mut cmds: mpsc::UnboundedReceiver<Cmd>, events: Events) {
    let mut tracked: BTreeSet<String> = BTreeSet::new();
    let mut backoff = config.backoff_min;
    let mut failures = 0u32;
    // Built once: every attempt of this client is made with the same TLS setup, so a pinned
    // client has no unpinned path to fall back to. A setup that cannot work is reported as
    // each attempt's failure (visible, retried with backoff like any other).
    let connector = connector(&config);
    loop {
        config.gate.wait().await;
        let reason = match &connector {
            Err(why) => why.clone(),
            Ok(connector) => {
                let connect =
                    tokio_tungstenite::connect_async_tls_with_config(&config.url, None, false, connector.clone());
                match tokio::time::timeout(Duration::from_secs(10), connect).await {
                    Ok(Ok((socket, _))) => {
                        let (reason, was_up) = session(&config, socket, &mut tracked, &mut cmds, &events).await;
                        if was_up {
                            backoff = config.backoff_min;
                            failures = 0;
                        }
                        reason
                    }
                    Ok(Err(e)) => match PinMismatch::find(&e) {
                        Some(m) => m.to_string(),
                        None => format!("could not connect: {e}"),
                    },
                    Err(_) => "could not connect: timed out".to_string(),
                }
            }
        };
        if events.is_closed() || cmds.is_closed() {
            return;
        }
        failures += 1;
        if failures == 1 || failures.is_power_of_two() {
            tracing::warn!(url = %config.url, %reason, failures, "OKX WebSocket down; reconnecting");
        }
        events.send(ClientEvent::Disconnected { reason });
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

/// The connector for `config.tls`: `None` (tungstenite's own TLS, as before pinning) for the
/// default settings.
fn connector(config: &ClientConfig) -> Result<Option<tokio_tungstenite::Connector>, String> {
    config.tls.check_url(&config.url).map_err(|e| e.to_string())?;
    if config.tls.is_default() {
        return Ok(None);
    }
    // No ALPN, as tungstenite's own setup.
    let tls = config.tls.client_config(&[]).map_err(|e| e.to_string())?;
    Ok(Some(tokio_tungstenite::Connector::Rustls(Arc::new(tls))))
}

/// One connection's life. Returns why it ended and whether it got as far as `Connected`.
async fn session(
    config: &ClientConfig,
    mut socket: Socket,
    tracked: &mut BTreeSet<String>,
    cmds: &mut mpsc::UnboundedReceiver<Cmd>,
    events: &Events,
) -> (String, bool) {
    let mut budget = OpBudget(VecDeque::new());
    let send = |text: String| Message::text(text);
    if let Some(login) = &config.login {
        budget.count(Instant::now());
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
                            let why = format!("login refused: {} {}", e.code, e.msg);
                            events.send(ClientEvent::LoginRefused { code: e.code, msg: e.msg });
                            return Err(why);
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
    // Everything tracked is subscribed from the loop below, as the budget allows.
    let mut ops = Ops::default();
    events.send(ClientEvent::Connected);
    let mut last_heard = Instant::now();
    let mut pong_due: Option<Instant> = None;
    loop {
        let timer = pong_due.unwrap_or(last_heard + config.ping_after);
        let work = ops.pending(tracked);
        let op_at = if work { budget.ready_at(Instant::now()) } else { Instant::now() };
        if work && op_at > Instant::now() && !ops.warned {
            ops.warned = true;
            tracing::warn!(
                "OKX WebSocket: 480 subscribe/login requests this hour on one connection; subscription changes wait \
                 (frames and pings go on)"
            );
        }
        tokio::select! {
            msg = socket.next() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(t))) if config.raw => {
                        let text = t.as_str();
                        if text == "pong" {
                            pong_due = None;
                        } else {
                            // Only a notice can carry 64008; nothing else is parsed at all.
                            let upgrade = text.contains("64008")
                                && matches!(message::parse(text), Ok(Frame::Event(e)) if e.event == "notice" && e.code == "64008");
                            events.send(ClientEvent::Raw(text.to_string()));
                            if upgrade {
                                return ("service upgrade notice (64008): reconnecting early".into(), true);
                            }
                        }
                    }
                    Some(Ok(Message::Text(t))) => {
                        let text = t.as_str();
                        match message::parse(text) {
                            Ok(Frame::Pong) => pong_due = None,
                            Ok(Frame::Event(e)) if e.event == "notice" && e.code == "64008" => {
                                events.send(ClientEvent::Frame(Frame::Event(e)));
                                return ("service upgrade notice (64008): reconnecting early".into(), true);
                            }
                            Ok(frame) => {
                                events.send(ClientEvent::Frame(frame));
                            }
                            Err(error) => {
                                let sample: String = text.chars().take(200).collect();
                                events.send(ClientEvent::Bad { error, sample });
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
                match cmd {
                    Cmd::Subscribe(a) => {
                        tracked.insert(a);
                    }
                    Cmd::Unsubscribe(a) => {
                        tracked.remove(&a);
                    }
                    Cmd::Resubscribe(a) => {
                        if tracked.contains(&a) {
                            ops.resubscribe.insert(a);
                        }
                    }
                    Cmd::Send(t) => {
                        if let Err(e) = socket.send(send(t)).await {
                            return (format!("sending: {e}"), true);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(op_at), if work => {
                if let Some(t) = ops.next(tracked) {
                    budget.count(Instant::now());
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
            assert_eq!(budget.ready_at(Instant::now()), start);
            budget.count(Instant::now());
        }
        assert_eq!(budget.ready_at(Instant::now()), start + Duration::from_secs(3_600), "the 481st waits for the hour");
    }

    #[test]
    fn ops_follow_the_difference_and_a_toggle_costs_nothing() {
        let arg = |n: u32| format!(r#"{{"channel":"tickers","instId":"I{n}"}}"#);
        let mut ops = Ops::default();
        let mut wanted: BTreeSet<String> = (0..25).map(arg).collect();
        let first = ops.next(&wanted).expect("subscribe");
        assert!(first.starts_with(r#"{"op":"subscribe""#) && first.matches("instId").count() == ARGS_PER_REQUEST);
        assert_eq!(ops.next(&wanted).expect("the rest").matches("instId").count(), 5);
        assert!(ops.next(&wanted).is_none() && !ops.pending(&wanted));
        // Toggled off and on again before the budget had room: nothing to send.
        wanted.remove(&arg(3));
        wanted.insert(arg(3));
        assert!(!ops.pending(&wanted));
        wanted.remove(&arg(4));
        assert!(ops.next(&wanted).expect("unsubscribe").starts_with(r#"{"op":"unsubscribe""#));
        ops.resubscribe.insert(arg(5));
        assert!(ops.next(&wanted).expect("drop").contains("unsubscribe"));
        assert!(ops.next(&wanted).expect("again").contains(r#""op":"subscribe""#));
    }

    /// With the hour's 480 requests spent, a further subscription waits, while frames are still
    /// read and pings still sent (the connection was frozen for up to an hour before).
    #[tokio::test]
    async fn a_spent_op_budget_never_stops_reading_or_pinging() {
        use tokio_tungstenite::tungstenite::Message;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let (seen_tx, mut seen) = mpsc::unbounded_channel::<String>();
        let (push_tx, mut push) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("handshake");
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            if t.as_str() == "ping" {
                                let _ = ws.send(Message::text("pong")).await;
                            }
                            let _ = seen_tx.send(t.as_str().to_string());
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    Some(text) = push.recv() => { let _ = ws.send(Message::text(text)).await; }
                }
            }
        });
        let mut config = ClientConfig::new(url, Arc::new(ConnectGate::default()));
        config.ping_after = Duration::from_millis(300);
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let client = WsClient::spawn(config, events_tx);
        assert_eq!(events.recv().await, Some(ClientEvent::Connected));
        let arg = |n: u32| serde_json::json!({"channel": "tickers", "instId": format!("I{n}")});
        let mut ops = 0;
        // 240 toggles, each waited for: the hour's 480 requests.
        for i in 0..OPS_PER_HOUR / 2 {
            let a = arg(i as u32);
            client.subscribe(&a);
            let s = next_op(&mut seen).await;
            assert!(s.contains("subscribe"), "{s}");
            client.unsubscribe(&a);
            let u = next_op(&mut seen).await;
            assert!(u.contains("unsubscribe"), "{u}");
            ops += 2;
        }
        assert_eq!(ops, OPS_PER_HOUR);
        client.subscribe(&arg(9_999));
        push_tx.send(r#"{"event":"notice-less","arg":{"channel":"tickers","instId":"I1"}}"#.into()).expect("push");
        push_tx.send(r#"{"event":"error","code":"60012","msg":"x"}"#.into()).expect("push");
        // Frames still arrive...
        let frame = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match events.recv().await {
                    Some(ClientEvent::Frame(f)) => return f,
                    Some(_) => {}
                    None => panic!("client ended"),
                }
            }
        })
        .await
        .expect("a frame while the budget is spent");
        let _ = frame;
        while let Ok(heard) = seen.try_recv() {
            assert!(!heard.contains("I9999"), "a request past the budget went out: {heard}");
        }
        // ...and after the idle spell the next thing the server hears is a ping, not the
        // subscription past the budget.
        let next = tokio::time::timeout(Duration::from_secs(30), seen.recv()).await.expect("a ping").expect("open");
        assert_eq!(next, "ping");
    }

    /// The next op the server heard (pings interleave while the toggles run).
    async fn next_op(seen: &mut mpsc::UnboundedReceiver<String>) -> String {
        loop {
            let s = seen.recv().await.expect("open");
            if s != "ping" {
                return s;
            }
        }
    }
}
