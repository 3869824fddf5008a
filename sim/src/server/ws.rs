//! The WebSocket side of the simulator: `/ws/v5/public`, `/ws/v5/business` and
//! `/ws/v5/private`, speaking OKX's protocol (okx-v5.md §5): text `ping`/`pong`, login signed
//! over `timestamp + "GET" + "/users/self/verify"`, subscribe/unsubscribe acknowledged per arg,
//! the channels each path carries, order operations on `/private` (sharing the REST rate
//! limits), the 30-second idle close, and the service notice.
//!
//! Subscriptions are answered as OKX answers them, so a client's mistakes show here first:
//! a channel on the wrong endpoint gets 64001 (a `/business` channel elsewhere), 64002 (another
//! channel on `/business`) or 60018 (public and private swapped); an unknown channel or
//! instrument 60018; `books-l2-tbt`/`books50-l2-tbt` 60011 before login and 64003 after (the
//! simulator's accounts are never VIP4). `books5` and `bbo-tbt` start with a snapshot, and a
//! book that has not changed for [`Shared::books_heartbeat`] gets OKX's keep-alive (`books`:
//! an empty update with `prevSeqId == seqId`; `books5`/`bbo-tbt`: the snapshot again).
//!
//! Private channels OKX caps per account (orders, account, positions) answer each new
//! subscription with `channel-conn-count`; past [`Shared::conn_cap`] connections per channel,
//! or while [`super::Faults::ws_refuse_subscribe`] lasts, the subscription is acknowledged,
//! then `channel-conn-count-error` follows and it is dropped: OKX's docs ("Connection count
//! limit") describe exactly that order.

use super::auth::{SimKey, WINDOW_MS};
use super::channel::{Channel, Path};
use super::feed::{Push, Watch};
use super::rest::{self, Server};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tradebox_okx::limits::Endpoint;

/// How long a connection may go without data either way before the server closes it (4004).
pub const IDLE: Duration = Duration::from_secs(30);
/// Subscribe, unsubscribe and login requests allowed per connection per hour.
pub const OPS_PER_HOUR: usize = 480;
/// How long a book stays unchanged before OKX sends its keep-alive ("around 60 seconds").
pub const BOOKS_HEARTBEAT: Duration = Duration::from_secs(60);
/// Connections per capped private channel per account.
pub const CONN_CAP: usize = 30;

/// OKX's help-centre page that its endpoint-migration errors point to.
const MIGRATION_PAGE: &str =
    "https://www.okx.com/help-center/changes-to-v5-api-websocket-subscription-parameter-and-url";

/// What every WebSocket connection of one simulator shares.
#[derive(Debug)]
pub struct Shared {
    /// How long an unchanged book waits for its keep-alive.
    pub books_heartbeat: Duration,
    /// Connections allowed per capped private channel.
    pub conn_cap: usize,
    /// Connections subscribed to each capped channel (by `connId`); one account per simulator.
    counted: Mutex<HashMap<Channel, HashSet<String>>>,
}

impl Shared {
    /// Settings for one simulator.
    pub fn new(books_heartbeat: Duration, conn_cap: usize) -> Self {
        Self { books_heartbeat, conn_cap, counted: Mutex::default() }
    }

    /// Counts `conn` on `channel`: the connections now counted, or `Err(cap)` when the channel
    /// is full.
    fn join(&self, channel: Channel, conn: &str) -> Result<usize, usize> {
        let mut counted = self.counted.lock();
        let set = counted.entry(channel).or_default();
        if !set.contains(conn) && set.len() >= self.conn_cap {
            return Err(self.conn_cap);
        }
        set.insert(conn.to_string());
        Ok(set.len())
    }

    fn leave(&self, channel: Channel, conn: &str) {
        if let Some(set) = self.counted.lock().get_mut(&channel) {
            set.remove(conn);
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new(BOOKS_HEARTBEAT, CONN_CAP)
    }
}

struct Sub {
    /// The arg as the client sent it (echoed in acks and pushes).
    arg: Value,
    channel: Channel,
    inst_id: String,
    inst_type: String,
    ccy: String,
    /// Books: the last `seqId` sent.
    last_seq: i64,
    /// Books: when the last frame went out (the keep-alive counts from it).
    last_push: Instant,
    /// Candles: keeps the bar's frames being built while subscribed.
    _watch: Option<Watch>,
}

impl Sub {
    fn is_book(&self) -> bool {
        matches!(self.channel, Channel::Books | Channel::Books5 | Channel::BboTbt)
    }
}

struct Conn {
    id: String,
    path: Path,
    server: Arc<Server>,
    shared: Arc<Shared>,
    key: Option<SimKey>,
    subs: Vec<Sub>,
    ops: std::collections::VecDeque<Instant>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        for channel in self.subs.iter().map(|s| s.channel).filter(|c| c.counted()) {
            self.shared.leave(channel, &self.id);
        }
    }
}

fn text(v: &Value, name: &str) -> String {
    rest::text(v, name)
}

/// Serves one connection until it closes.
pub async fn serve(mut socket: WebSocket, path: Path, server: Arc<Server>, shared: Arc<Shared>) {
    let mut rx = server.exchange.feed().subscribe();
    super::FaultState::count(&server.faults.ws_connections);
    let id = format!("{:08x}", rand::random::<u32>());
    let mut conn = Conn { id, path, server, shared, key: None, subs: Vec::new(), ops: Default::default() };
    let mut last_heard = Instant::now();
    let mut last_sent = Instant::now();
    // A frame held back by the reorder fault, sent after the next one.
    let mut held: Option<String> = None;
    // Silent (a stall fault) until then: nothing is sent.
    let mut mute_until = Instant::now();
    loop {
        let beat_at = conn.next_beat();
        let outgoing: Vec<String> = tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { return };
                last_heard = Instant::now();
                match msg {
                    Message::Text(t) if t.as_str() == "ping" => vec!["pong".to_string()],
                    Message::Text(t) => conn.on_text(t.as_str()).await,
                    Message::Close(_) => return,
                    _ => Vec::new(),
                }
            }
            push = rx.recv() => match push {
                Ok(Push::DropAll) => return,
                Ok(Push::Stall(ms)) => {
                    mute_until = Instant::now() + Duration::from_millis(ms);
                    Vec::new()
                }
                Ok(Push::Notice) => vec![json!({"event": "notice", "code": "64008",
                    "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
                    "connId": conn.id}).to_string()],
                Ok(push) => conn.on_push(&push),
                Err(RecvError::Lagged(_)) => {
                    close(&mut socket, 4005, "Buffer full, please reconnect.").await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            _ = tokio::time::sleep_until(beat_at.unwrap_or_else(Instant::now)), if beat_at.is_some() => conn.beat(),
            // OKX closes a connection with neither subscriptions nor data for 30 s.
            _ = tokio::time::sleep_until(last_heard.max(last_sent) + conn.server.ws_idle) => {
                close(&mut socket, 4004, "No data received in 30s.").await;
                return;
            }
        };
        if Instant::now() < mute_until {
            continue;
        }
        for frame in outgoing {
            if held.is_none() && conn.server.faults.ws_hold() {
                held = Some(frame);
                continue;
            }
            let mut frames = conn.server.faults.ws_frame(frame);
            frames.extend(held.take());
            for f in frames {
                if socket.send(Message::Text(Utf8Bytes::from(f))).await.is_err() {
                    return;
                }
                last_sent = Instant::now();
            }
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))).await;
}

impl Conn {
    fn error(&self, id: &str, code: &str, msg: &str) -> String {
        let mut v = json!({"event": "error", "code": code, "msg": msg, "connId": self.id});
        if !id.is_empty() {
            v["id"] = json!(id);
        }
        v.to_string()
    }

    async fn on_text(&mut self, raw: &str) -> Vec<String> {
        let Ok(v) = serde_json::from_str::<Value>(raw) else {
            return vec![self.error("", "60012", &format!("Invalid request: {raw}"))];
        };
        let id = text(&v, "id");
        if !id.is_empty() && (id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return vec![self.error("", "60012", &format!("Invalid request: {raw}"))];
        }
        let op = text(&v, "op");
        let args: Vec<Value> = v.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
        match op.as_str() {
            "login" | "subscribe" | "unsubscribe" => {
                let now = Instant::now();
                while self.ops.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3_600)) {
                    self.ops.pop_front();
                }
                if self.ops.len() >= OPS_PER_HOUR {
                    // okx-v5.md §5.1 gives the limit; the code sent past it is unconfirmed.
                    return vec![self.error(&id, "60014", "Requests too frequent.")];
                }
                self.ops.push_back(now);
                match op.as_str() {
                    "login" => vec![self.login(args.first())],
                    "subscribe" => self.subscribe(&id, &args),
                    _ => self.unsubscribe(&id, &args),
                }
            }
            "order"
            | "batch-orders"
            | "cancel-order"
            | "batch-cancel-orders"
            | "amend-order"
            | "batch-amend-orders" => {
                vec![self.order_op(&id, &op, &v, args).await]
            }
            _ => vec![self.error(&id, "60019", &format!("Invalid op: {op}"))],
        }
    }

    fn login(&mut self, arg: Option<&Value>) -> String {
        let Some(arg) = arg else { return self.error("", "60012", "Invalid request: login needs args") };
        let (api_key, passphrase, ts, sign) =
            (text(arg, "apiKey"), text(arg, "passphrase"), text(arg, "timestamp"), text(arg, "sign"));
        if [&api_key, &passphrase, &ts, &sign].iter().any(|v| v.is_empty()) {
            return self.error("", "60009", "Login failed.");
        }
        let Some(key) = self.server.keys.iter().find(|k| k.api_key == api_key).cloned() else {
            return self.error("", "60032", "API key doesn't exist.");
        };
        if !key.demo {
            // The simulator's WebSocket URLs are the demo ones (wspap.okx.com).
            return self.error("", "50101", "APIKey does not match current environment.");
        }
        // Seconds, possibly with a fraction (okx-v5.md §5.2).
        let Some(secs) = ts.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0) else {
            return self.error("", "60004", "Invalid timestamp");
        };
        let server_ms = self.server.exchange.clock().now_ms() + self.server.faults.clock_offset_ms();
        if ((server_ms as f64) - secs * 1_000.0).abs() > WINDOW_MS as f64 {
            return self.error("", "60006", "Timestamp request expired");
        }
        if key.passphrase != passphrase {
            return self.error("", "60024", "Wrong passphrase");
        }
        if self.server.faults.refuse_login() {
            super::FaultState::count(&self.server.faults.auth_failures);
            return self.error("", "60007", "Invalid sign");
        }
        if !tradebox_okx::sign::verify(key.secret.as_bytes(), &ts, "GET", "/users/self/verify", b"", &sign) {
            return self.error("", "60007", "Invalid sign");
        }
        self.server.faults.count_login(&key.api_key);
        self.key = Some(key);
        json!({"event": "login", "code": "0", "msg": "", "connId": self.id}).to_string()
    }

    fn subscribe(&mut self, id: &str, args: &[Value]) -> Vec<String> {
        if args.is_empty() {
            return vec![self.error(id, "60013", "Invalid args")];
        }
        let mut out = Vec::new();
        for arg in args {
            if let Err(refusal) = self.subscribe_one(id, arg, &mut out) {
                out.push(refusal);
            }
        }
        out
    }

    /// Subscribes one arg, appending the ack and what the subscription starts with; `Err` is
    /// the error frame refusing it.
    fn subscribe_one(&mut self, id: &str, arg: &Value, out: &mut Vec<String>) -> Result<(), String> {
        let name = text(arg, "channel");
        let inst_id = text(arg, "instId");
        let ex = self.server.exchange.clone();
        let missing = || {
            format!(
                "Wrong URL or channel:{name},instId:{inst_id} doesn't exist. Please use the correct URL, channel and \
                 parameters referring to API document."
            )
        };
        let channel = Channel::parse(&name).ok_or_else(|| self.error(id, "60018", &missing()))?;
        match (channel.home(), self.path) {
            (home, path) if home == path => {}
            (Path::Business, _) => {
                let msg = format!(
                    "This channel has been migrated to the '/business' URL. Please subscribe using the new URL. \
                     More details can refer to: {MIGRATION_PAGE}"
                );
                return Err(self.error(id, "64001", &msg));
            }
            (_, Path::Business) => {
                let msg = format!(
                    "This channel is not supported by \"/business\" URL. Please use \"/private\" URL(for private \
                     channels), or \"/public\" URL(for public channels). More details can refer to: {MIGRATION_PAGE}"
                );
                return Err(self.error(id, "64002", &msg));
            }
            _ => return Err(self.error(id, "60018", &missing())),
        }
        let private = self.path == Path::Private;
        let vip_only = matches!(channel, Channel::BooksL2Tbt | Channel::Books50L2Tbt);
        if (private || vip_only) && self.key.is_none() {
            return Err(self.error(id, "60011", "Please log in."));
        }
        if vip_only {
            return Err(self.error(
                id,
                "64003",
                "Your trading fee tier doesn't meet the requirement to access this channel",
            ));
        }
        let inst_type = text(arg, "instType");
        let spec = ex.spec(&inst_id);
        let known = if private { inst_id.is_empty() || spec.is_some() } else { spec.is_some() };
        let type_ok = !matches!(channel, Channel::Orders | Channel::Positions)
            || matches!(inst_type.as_str(), "ANY" | "SPOT" | "MARGIN" | "SWAP" | "FUTURES" | "OPTION");
        if !known || !type_ok {
            return Err(self.error(id, "60018", &missing()));
        }
        let mut ack = json!({"event": "subscribe", "arg": arg, "connId": self.id});
        if !id.is_empty() {
            ack["id"] = json!(id);
        }
        out.push(ack.to_string());
        if channel.counted() {
            let refused = if self.server.faults.ws_refuse_subscribe() {
                Err(self.shared.conn_cap)
            } else {
                self.shared.join(channel, &self.id)
            };
            let (event, count) = match refused {
                Ok(n) => ("channel-conn-count", n),
                Err(n) => ("channel-conn-count-error", n),
            };
            out.push(
                json!({"event": event, "channel": name, "connCount": count.to_string(), "connId": self.id}).to_string(),
            );
            if refused.is_err() {
                return Ok(());
            }
        }
        super::FaultState::count(&self.server.faults.ws_subscribes);
        self.subs.retain(|s| s.arg != *arg);
        let mut sub = Sub {
            arg: arg.clone(),
            channel,
            inst_id: inst_id.clone(),
            inst_type,
            ccy: text(arg, "ccy"),
            last_seq: i64::MIN,
            last_push: Instant::now(),
            _watch: match channel {
                Channel::Candle(bar) => Some(ex.feed().watch(bar)),
                _ => None,
            },
        };
        // What a subscription starts with: a books, books5 or bbo-tbt snapshot, an account or
        // positions snapshot (orders have none).
        match channel {
            Channel::Books | Channel::Books5 | Channel::BboTbt => {
                if let Some(spec) = spec {
                    let fresh = || ex.venue().snapshot(spec.id, super::feed::BOOK_DEPTH);
                    let (frame, seq) = match channel {
                        Channel::Books => ex.feed().books_snapshot(spec, fresh),
                        _ => ex.feed().top_snapshot(spec, channel, fresh),
                    };
                    sub.last_seq = seq;
                    out.push(frame.to_string());
                }
            }
            Channel::Account => {
                let ccys: Vec<&str> = if sub.ccy.is_empty() { vec![] } else { vec![sub.ccy.as_str()] };
                out.push(self.snapshot(&sub, vec![ex.balance_json(&ccys)]));
            }
            Channel::Positions => {
                let positions = ex
                    .positions_json(&sub.inst_id)
                    .into_iter()
                    .filter(|p| sub.inst_type == "ANY" || p["instType"] == sub.inst_type.as_str())
                    .collect();
                out.push(self.snapshot(&sub, positions));
            }
            _ => {}
        }
        self.subs.push(sub);
        Ok(())
    }

    /// When the next book keep-alive is due, if any book is subscribed.
    fn next_beat(&self) -> Option<Instant> {
        self.subs.iter().filter(|s| s.is_book()).map(|s| s.last_push + self.shared.books_heartbeat).min()
    }

    /// OKX's keep-alive for books unchanged for a while: `books` gets an empty update whose
    /// `prevSeqId` is its `seqId`; `books5` and `bbo-tbt` get the latest snapshot again.
    fn beat(&mut self) -> Vec<String> {
        let now = Instant::now();
        let ex = self.server.exchange.clone();
        let mut out = Vec::new();
        for s in self.subs.iter_mut().filter(|s| s.is_book() && now >= s.last_push + self.shared.books_heartbeat) {
            s.last_push = now;
            let Some(spec) = ex.spec(&s.inst_id) else { continue };
            if s.channel == Channel::Books {
                let ts = ex.clock().now_ms().to_string();
                out.push(
                    json!({"arg": {"channel": "books", "instId": spec.symbol}, "action": "update",
                           "data": [{"asks": [], "bids": [], "ts": ts, "checksum": 0,
                                     "prevSeqId": s.last_seq, "seqId": s.last_seq}]})
                    .to_string(),
                );
            } else {
                let fresh = || ex.venue().snapshot(spec.id, super::feed::BOOK_DEPTH);
                let (frame, seq) = ex.feed().top_snapshot(spec, s.channel, fresh);
                s.last_seq = s.last_seq.max(seq);
                out.push(frame.to_string());
            }
        }
        out
    }

    fn snapshot(&self, sub: &Sub, data: Vec<Value>) -> String {
        json!({"arg": self.private_arg(sub), "eventType": "snapshot", "curPage": 1, "lastPage": true, "data": data})
            .to_string()
    }

    fn private_arg(&self, sub: &Sub) -> Value {
        let mut arg = sub.arg.clone();
        arg["uid"] = json!(self.server.uid);
        arg
    }

    fn unsubscribe(&mut self, id: &str, args: &[Value]) -> Vec<String> {
        args.iter()
            .map(|arg| {
                let gone: Vec<Channel> = self.subs.iter().filter(|s| s.arg == *arg).map(|s| s.channel).collect();
                self.subs.retain(|s| s.arg != *arg);
                for channel in gone.into_iter().filter(|c| c.counted()) {
                    if !self.subs.iter().any(|s| s.channel == channel) {
                        self.shared.leave(channel, &self.id);
                    }
                }
                let mut ack = json!({"event": "unsubscribe", "arg": arg, "connId": self.id});
                if !id.is_empty() {
                    ack["id"] = json!(id);
                }
                ack.to_string()
            })
            .collect()
    }

    fn on_push(&mut self, push: &Push) -> Vec<String> {
        match push {
            Push::Public { channel, inst_id, frame } => {
                let wanted = self.subs.iter().any(|s| s.channel == *channel && s.inst_id == **inst_id);
                if wanted { vec![frame.to_string()] } else { Vec::new() }
            }
            Push::BookUpdate { inst_id, seq, frame, .. } => self.book_push(Channel::Books, inst_id, *seq, frame),
            Push::Top { channel, inst_id, seq, frame } => self.book_push(*channel, inst_id, *seq, frame),
            Push::Private { channel, inst_type, key, data } => {
                let event = if *channel == "orders" { None } else { Some("event_update") };
                let mut out = Vec::new();
                for s in self.subs.iter().filter(|s| s.channel.name() == *channel) {
                    let matches = match *channel {
                        "account" => s.ccy.is_empty() || s.ccy == **key,
                        _ => {
                            (s.inst_type == "ANY" || s.inst_type == *inst_type)
                                && (s.inst_id.is_empty() || s.inst_id == **key)
                        }
                    };
                    if matches {
                        let arg = self.private_arg(s);
                        out.push(match event {
                            Some(e) => format!(r#"{{"arg":{arg},"eventType":"{e}","data":[{data}]}}"#),
                            None => format!(r#"{{"arg":{arg},"data":[{data}]}}"#),
                        });
                    }
                }
                out
            }
            Push::DropAll | Push::Notice | Push::Stall(_) => Vec::new(),
        }
    }

    /// A book frame for the subscriptions of `(channel, inst_id)` it is news to: pushes queued
    /// before a subscription's snapshot are already in it.
    fn book_push(&mut self, channel: Channel, inst_id: &str, seq: i64, frame: &str) -> Vec<String> {
        let mut out = Vec::new();
        for s in self.subs.iter_mut().filter(|s| s.channel == channel && s.inst_id == inst_id) {
            if seq > s.last_seq {
                s.last_seq = seq;
                s.last_push = Instant::now();
                out.push(frame.to_string());
            }
        }
        out
    }

    async fn order_op(&mut self, id: &str, op: &str, v: &Value, args: Vec<Value>) -> String {
        let in_time = rest::micros();
        let reply = |code: &str, msg: &str, data: Vec<Value>| {
            json!({"id": id, "op": op, "code": code, "msg": msg, "data": data, "inTime": in_time, "outTime": rest::micros()})
                .to_string()
        };
        if self.path != Path::Private {
            return self.error(id, "60018", &format!("Wrong URL or op:{op} doesn't exist."));
        }
        let Some(key) = &self.key else { return self.error(id, "60011", "Please log in.") };
        if id.is_empty() {
            return reply("60013", "Invalid args", Vec::new());
        }
        let modes = key.modes().unwrap_or_default();
        if !key.has("trade") {
            return reply("50120", "This API key doesn't have permission to use this function", Vec::new());
        }
        let batch = op.starts_with("batch");
        if args.is_empty() || (!batch && args.len() != 1) || args.len() > 20 {
            return reply("60013", "Invalid args", Vec::new());
        }
        // `instIdCode` wins over `instId` (okx-v5.md §5.9).
        let ex = self.server.exchange.clone();
        let args: Vec<Value> = args
            .into_iter()
            .map(|mut a| {
                let code = a.get("instIdCode").and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()));
                if let Some(spec) = code.and_then(|c| ex.spec_by_code(c)) {
                    a["instId"] = json!(spec.symbol);
                } else if code.is_some() {
                    a["instId"] = json!("");
                }
                a
            })
            .collect();
        let endpoint = match op {
            "order" => Endpoint::Place,
            "batch-orders" => Endpoint::BatchPlace,
            "cancel-order" => Endpoint::Cancel,
            "batch-cancel-orders" => Endpoint::BatchCancel,
            "amend-order" => Endpoint::Amend,
            _ => Endpoint::BatchAmend,
        };
        let body = if batch { Value::Array(args.clone()) } else { args[0].clone() };
        if !rest::within_limits(&self.server, endpoint, &[], &body) {
            return reply("50011", "Too Many Requests", Vec::new());
        }
        let exp = text(v, "expTime").parse::<i64>().ok();
        let now = self.server.exchange.clock().now_ms() + self.server.faults.clock_offset_ms();
        if matches!(endpoint, Endpoint::Place | Endpoint::BatchPlace | Endpoint::Amend | Endpoint::BatchAmend)
            && exp.is_some_and(|e| now > e)
        {
            return reply("50037", "Order expired.", Vec::new());
        }
        let ts = self.server.exchange.clock().now_ms().to_string();
        let items: Vec<Value> = args
            .iter()
            .map(|a| {
                let result = match endpoint {
                    Endpoint::Place | Endpoint::BatchPlace => rest::parse_place(a).and_then(|r| ex.place(r, modes)),
                    Endpoint::Cancel | Endpoint::BatchCancel => rest::cancel(&ex, a),
                    _ => rest::amend(&ex, a),
                };
                if result.is_ok() && matches!(endpoint, Endpoint::Place | Endpoint::BatchPlace) {
                    super::FaultState::count(&self.server.faults.orders_placed);
                }
                let mut item = rest::item(&result, a, &ts);
                if item["sCode"] == "0" && !matches!(endpoint, Endpoint::Place | Endpoint::BatchPlace) {
                    item["sMsg"] = json!("");
                }
                item
            })
            .collect();
        let failed = items.iter().filter(|i| i["sCode"] != "0").count();
        match failed {
            0 => reply("0", "", items),
            n if n == items.len() => reply("1", "", items),
            _ => reply("2", "", items),
        }
    }
}
