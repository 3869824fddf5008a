//! The simulator's WebSocket endpoints, driven by a plain WebSocket client: OKX's frames, acks,
//! login codes, book sequence chains, private pushes, order operations and scripted trouble.

use super::tests::{key, server_with};
use super::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(sim: &SimServer, path: &str) -> Ws {
    tokio_tungstenite::connect_async(sim.ws_url(path)).await.expect("connects").0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("sent");
}

/// The next text frame, stepping the market while waiting so pushes come.
async fn next(sim: &SimServer, ws: &mut Ws) -> String {
    for _ in 0..400 {
        match tokio::time::timeout(Duration::from_millis(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("connection ended: {other:?}"),
            Err(_) => {
                sim.exchange().venue().step();
                sim.exchange().pump();
            }
        }
    }
    panic!("no frame within 4 s")
}

async fn next_json(sim: &SimServer, ws: &mut Ws) -> Value {
    let t = next(sim, ws).await;
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}"))
}

/// The next frame of `channel` (skipping others).
async fn next_on(sim: &SimServer, ws: &mut Ws, channel: &str) -> Value {
    loop {
        let v = next_json(sim, ws).await;
        if v["arg"]["channel"] == channel && v.get("event").is_none() {
            return v;
        }
    }
}

fn login_args(api_key: &str, secret: &str, passphrase: &str, ts: i64) -> Value {
    let signer = tradebox_okx::Signer::new(tradebox_okx::Credentials::new(api_key, secret, passphrase));
    json!({"op": "login", "args": [{"apiKey": api_key, "passphrase": passphrase, "timestamp": ts.to_string(), "sign": signer.ws_login(ts)}]})
}

fn now_s() -> i64 {
    tradebox_core::system_ms() / 1_000
}

#[tokio::test]
async fn public_channels_ack_push_and_chain_books() {
    let sim = server_with(Faults::default()).await;
    let mut ws = connect(&sim, "public").await;
    send(
        &mut ws,
        json!({"id": "s1", "op": "subscribe", "args": [
        {"channel": "tickers", "instId": "BTC-USDT"}, {"channel": "books", "instId": "BTC-USDT"},
        {"channel": "trades", "instId": "BTC-USDT"}, {"channel": "candle1m", "instId": "BTC-USDT"},
        {"channel": "tickers", "instId": "NOPE-USDT"}]}),
    )
    .await;
    let ack = next_json(&sim, &mut ws).await;
    assert_eq!((ack["event"].as_str(), ack["id"].as_str()), (Some("subscribe"), Some("s1")));
    assert_eq!(ack["arg"], json!({"channel": "tickers", "instId": "BTC-USDT"}));
    assert_eq!(ack["connId"].as_str().map(str::len), Some(8));
    let ack = next_json(&sim, &mut ws).await;
    assert_eq!(ack["arg"]["channel"], "books");
    let snapshot = next_json(&sim, &mut ws).await;
    assert_eq!((snapshot["action"].as_str(), snapshot["data"][0]["prevSeqId"].as_i64()), (Some("snapshot"), Some(-1)));
    assert!(next_json(&sim, &mut ws).await["event"] == "subscribe", "trades ack");
    // candle1m lives on /business, the unknown instrument nowhere.
    for code in ["64001", "60018"] {
        let err = next_json(&sim, &mut ws).await;
        assert_eq!((err["event"].as_str(), err["code"].as_str()), (Some("error"), Some(code)), "{err}");
    }
    // Build the book from the snapshot and a run of updates; every update continues the chain.
    let mut bids: std::collections::BTreeMap<String, String> = Default::default();
    let apply = |book: &mut std::collections::BTreeMap<String, String>, levels: &Value| {
        for l in levels.as_array().expect("levels") {
            let (px, sz) = (l[0].as_str().expect("px").to_string(), l[1].as_str().expect("sz").to_string());
            if sz == "0" {
                book.remove(&px);
            } else {
                book.insert(px, sz);
            }
        }
    };
    apply(&mut bids, &snapshot["data"][0]["bids"]);
    let mut seq = snapshot["data"][0]["seqId"].as_i64().expect("seq");
    let mut updates = 0;
    let mut tickers = 0;
    let mut trades = 0;
    while updates < 10 || tickers < 3 || trades < 1 {
        let v = next_json(&sim, &mut ws).await;
        match v["arg"]["channel"].as_str() {
            Some("books") => {
                let d = &v["data"][0];
                assert_eq!(d["prevSeqId"].as_i64(), Some(seq), "the chain continues");
                seq = d["seqId"].as_i64().expect("seq");
                apply(&mut bids, &d["bids"]);
                updates += 1;
            }
            Some("tickers") => {
                assert!(v["data"][0]["bidPx"].as_str().is_some_and(|p| p.parse::<f64>().is_ok()));
                tickers += 1;
            }
            Some("trades") => {
                assert!(matches!(v["data"][0]["side"].as_str(), Some("buy" | "sell")));
                trades += 1;
            }
            _ => panic!("unexpected {v}"),
        }
    }
    // The book built from pushes is the exchange's book.
    let rest = sim.exchange().books_json(sim.exchange().spec("BTC-USDT").expect("spec"), 400).expect("book");
    let best_rest = rest["bids"][0][0].as_str().expect("best").to_string();
    let best_ws =
        bids.keys().max_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
    assert_eq!(best_ws, Some(&best_rest));
    send(&mut ws, json!({"op": "unsubscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})).await;
    ws.send(Message::text("ping")).await.expect("ping");
    let mut pong = false;
    for _ in 0..50 {
        if next(&sim, &mut ws).await == "pong" {
            pong = true;
            break;
        }
    }
    assert!(pong, "text ping gets text pong");
}

#[tokio::test]
async fn candles_are_on_the_business_endpoint() {
    let sim = server_with(Faults::default()).await;
    let mut ws = connect(&sim, "business").await;
    send(&mut ws, json!({"op": "subscribe", "args": [{"channel": "candle1m", "instId": "ETH-USDT"}]})).await;
    assert_eq!(next_json(&sim, &mut ws).await["event"], "subscribe");
    let c = next_on(&sim, &mut ws, "candle1m").await;
    let row = c["data"][0].as_array().expect("row");
    assert_eq!(row.len(), 9);
    assert!(matches!(row[8].as_str(), Some("0" | "1")));
}

#[tokio::test]
async fn private_login_codes_pushes_and_order_operations() {
    let sim = server_with(Faults::default()).await;
    let k = key("read_only,trade", true);
    let mut ws = connect(&sim, "private").await;
    send(&mut ws, json!({"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}]})).await;
    assert_eq!(next_json(&sim, &mut ws).await["code"], "60011", "private channels need a login");
    send(&mut ws, json!({"op": "login", "args": [{"apiKey": k.api_key}]})).await;
    assert_eq!(next_json(&sim, &mut ws).await["code"], "60009", "an incomplete login fails");
    send(&mut ws, login_args(&k.api_key, "wrong-secret", &k.passphrase, now_s())).await;
    assert_eq!(next_json(&sim, &mut ws).await["code"], "60007");
    send(&mut ws, login_args(&k.api_key, &k.secret, "wrong", now_s())).await;
    assert_eq!(next_json(&sim, &mut ws).await["code"], "60024");
    send(&mut ws, login_args(&k.api_key, &k.secret, &k.passphrase, now_s() - 60)).await;
    assert_eq!(next_json(&sim, &mut ws).await["code"], "60006");
    send(&mut ws, login_args("nobody", &k.secret, &k.passphrase, now_s())).await;
    assert_eq!(next_json(&sim, &mut ws).await["code"], "60032");
    send(&mut ws, login_args(&k.api_key, &k.secret, &k.passphrase, now_s())).await;
    let ok = next_json(&sim, &mut ws).await;
    assert_eq!((ok["event"].as_str(), ok["code"].as_str()), (Some("login"), Some("0")), "{ok}");
    send(&mut ws, json!({"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}, {"channel": "account", "ccy": "USDT"}]})).await;
    for channel in ["orders", "account"] {
        assert_eq!(next_json(&sim, &mut ws).await["event"], "subscribe");
        let count = next_json(&sim, &mut ws).await;
        assert_eq!((count["event"].as_str(), count["channel"].as_str()), (Some("channel-conn-count"), Some(channel)));
    }
    let account = next_json(&sim, &mut ws).await;
    assert_eq!((account["eventType"].as_str(), account["arg"]["uid"].as_str()), (Some("snapshot"), Some(sim_uid())));
    assert_eq!(account["data"][0]["details"][0]["ccy"], "USDT");
    // Place by instIdCode, as the 2026 docs ask.
    let code = Exchange::inst_id_code(sim.exchange().spec("BTC-USDT").expect("spec"));
    send(
        &mut ws,
        json!({"id": "o1", "op": "order", "args": [{"instIdCode": code, "tdMode": "cash", "side": "buy",
        "ordType": "limit", "px": "1000", "sz": "0.001", "clOrdId": "ws1"}]}),
    )
    .await;
    let mut placed = None;
    let mut live = None;
    while placed.is_none() || live.is_none() {
        let v = next_json(&sim, &mut ws).await;
        if v["op"] == "order" {
            placed = Some(v);
        } else if v["arg"]["channel"] == "orders" {
            live = Some(v);
        }
    }
    let placed = placed.expect("reply");
    assert_eq!((placed["id"].as_str(), placed["code"].as_str()), (Some("o1"), Some("0")), "{placed}");
    assert_eq!(placed["data"][0]["clOrdId"], "ws1");
    assert!(placed["inTime"].is_string());
    let live = live.expect("push");
    assert_eq!((live["data"][0]["state"].as_str(), live["data"][0]["clOrdId"].as_str()), (Some("live"), Some("ws1")));
    assert_eq!(live["data"][0]["fillSz"], "0");
    send(&mut ws, json!({"id": "c1", "op": "cancel-order", "args": [{"instId": "BTC-USDT", "clOrdId": "ws1"}]})).await;
    loop {
        let v = next_json(&sim, &mut ws).await;
        if v["arg"]["channel"] == "orders" && v["data"][0]["state"] == "canceled" {
            break;
        }
    }
    // An order operation needs an id; a bad order gets its sCode.
    send(&mut ws, json!({"op": "order", "args": [{"instId": "BTC-USDT"}]})).await;
    assert_eq!(next_on_op(&sim, &mut ws).await["code"], "60013");
    send(
        &mut ws,
        json!({"id": "o2", "op": "order", "args": [{"instId": "BTC-USDT", "tdMode": "cash", "side": "buy",
        "ordType": "limit", "px": "1000.05", "sz": "0.001"}]}),
    )
    .await;
    let bad = next_on_op(&sim, &mut ws).await;
    assert_eq!((bad["code"].as_str(), bad["data"][0]["sCode"].as_str()), (Some("1"), Some("51000")));
}

async fn next_on_op(sim: &SimServer, ws: &mut Ws) -> Value {
    loop {
        let v = next_json(sim, ws).await;
        if v.get("op").is_some() || v["event"] == "error" {
            return v;
        }
    }
}

fn sim_uid() -> &'static str {
    "44705892343619584"
}

#[tokio::test]
async fn scripted_trouble_reaches_every_connection() {
    let sim = server_with(Faults::default()).await;
    let mut a = connect(&sim, "public").await;
    send(&mut a, json!({"op": "subscribe", "args": [{"channel": "books", "instId": "ETH-USDT"}]})).await;
    assert_eq!(next_json(&sim, &mut a).await["event"], "subscribe");
    let snap = next_json(&sim, &mut a).await;
    let mut seq = snap["data"][0]["seqId"].as_i64().expect("seq");
    // A sequence gap: the next update's prevSeqId does not match.
    let admin = |body: Value| {
        let url = format!("{}/sim/faults", sim.base_url());
        async move { reqwest::Client::new().post(url).body(body.to_string()).send().await.expect("admin") }
    };
    let first = next_on(&sim, &mut a, "books").await;
    assert_eq!(first["data"][0]["prevSeqId"].as_i64(), Some(seq));
    seq = first["data"][0]["seqId"].as_i64().expect("seq");
    admin(json!({"books_gap": true})).await;
    // Updates already on their way continue the chain; then one breaks it.
    let mut gapped = false;
    for _ in 0..50 {
        let u = next_on(&sim, &mut a, "books").await;
        if u["data"][0]["prevSeqId"].as_i64() != Some(seq) {
            gapped = true;
            break;
        }
        seq = u["data"][0]["seqId"].as_i64().expect("seq");
    }
    assert!(gapped, "a gap was injected");
    // A frame held back and sent after the next: an update arrives before its predecessor.
    admin(json!({"ws_reorder": 1})).await;
    let mut reordered = false;
    let mut last = None;
    for _ in 0..50 {
        let u = next_on(&sim, &mut a, "books").await;
        let s = u["data"][0]["seqId"].as_i64().expect("seq");
        if last.is_some_and(|l| s < l) {
            reordered = true;
            break;
        }
        last = Some(s);
    }
    assert!(reordered, "an out-of-order push was injected");
    // A malformed frame, then the service notice, then every connection dropped.
    admin(json!({"ws_malformed": 1})).await;
    let garbled = next(&sim, &mut a).await;
    assert!(serde_json::from_str::<Value>(&garbled).is_err(), "{garbled}");
    admin(json!({"ws_notice": true})).await;
    loop {
        let v = next_json(&sim, &mut a).await;
        if v["event"] == "notice" {
            assert_eq!(v["code"], "64008");
            break;
        }
    }
    let mut b = connect(&sim, "public").await;
    admin(json!({"ws_drop": true})).await;
    for ws in [&mut a, &mut b] {
        let end = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match ws.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(end.is_ok(), "the connection was dropped");
    }
}

#[tokio::test]
async fn silent_connections_are_closed_with_4004() {
    let config = SimServerConfig {
        keys: vec![key("read_only,trade", true)],
        run_market: false,
        ws_idle_ms: 200,
        ..SimServerConfig::default()
    };
    let sim = SimServer::start(config).await.expect("sim");
    let mut ws = connect(&sim, "public").await;
    let frame = tokio::time::timeout(Duration::from_secs(2), ws.next()).await.expect("closed in time");
    match frame {
        Some(Ok(Message::Close(Some(c)))) => assert_eq!(u16::from(c.code), 4004),
        other => panic!("expected a 4004 close, got {other:?}"),
    }
}

/// The next text frame without stepping the market: what the server sends on its own.
async fn quiet_next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                return serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("{e}: {t}"));
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no frame: {other:?}"),
        }
    }
}

async fn admin(sim: &SimServer, body: Value) {
    let url = format!("{}/sim/faults", sim.base_url());
    let r = reqwest::Client::new().post(url).body(body.to_string()).send().await.expect("admin");
    assert!(r.status().is_success(), "faults set: {}", r.status());
}

async fn logged_in(sim: &SimServer, path: &str) -> Ws {
    let k = key("read_only,trade", true);
    let mut ws = connect(sim, path).await;
    send(&mut ws, login_args(&k.api_key, &k.secret, &k.passphrase, now_s())).await;
    assert_eq!(quiet_next(&mut ws).await["event"], "login");
    ws
}

fn dec(v: &Value) -> rust_decimal::Decimal {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a decimal: {v}"))
}

#[tokio::test]
async fn business_carries_trades_all_and_candles_of_every_bar() {
    let sim = server_with(Faults::default()).await;
    let mut ws = connect(&sim, "business").await;
    let bars = ["3m", "5m", "15m", "30m", "1H", "4H", "1D", "1Dutc"];
    let mut args = vec![json!({"channel": "trades-all", "instId": "BTC-USDT"})];
    args.extend(bars.iter().map(|b| json!({"channel": format!("candle{b}"), "instId": "BTC-USDT"})));
    send(&mut ws, json!({"op": "subscribe", "args": args})).await;
    for _ in 0..args.len() {
        let ack = next_json(&sim, &mut ws).await;
        assert_eq!(ack["event"], "subscribe", "{ack}");
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut trades = 0;
    while trades < 3 || seen.len() < bars.len() {
        let v = next_json(&sim, &mut ws).await;
        let channel = v["arg"]["channel"].as_str().expect("a push").to_string();
        if channel == "trades-all" {
            // One trade per push, in OKX's trades-all shape (no aggregate count).
            let data = v["data"].as_array().expect("data");
            assert_eq!(data.len(), 1);
            let t = &data[0];
            assert_eq!((t["instId"].as_str(), t["source"].as_str()), (Some("BTC-USDT"), Some("0")), "{t}");
            assert!(t.get("count").is_none() && t["tradeId"].is_string() && t["ts"].is_string(), "{t}");
            assert!(matches!(t["side"].as_str(), Some("buy" | "sell")));
            trades += 1;
            continue;
        }
        let bar = channel.strip_prefix("candle").expect("a candle");
        let row = v["data"][0].as_array().expect("row");
        assert_eq!(row.len(), 9);
        let open: i64 = row[0].as_str().and_then(|t| t.parse().ok()).expect("open time");
        let (span, zone) = match bar {
            "3m" => (180_000, 0),
            "5m" => (300_000, 0),
            "15m" => (900_000, 0),
            "30m" => (1_800_000, 0),
            "1H" => (3_600_000, 0),
            "4H" => (14_400_000, 0),
            "1D" => (86_400_000, 8 * 3_600_000),
            "1Dutc" => (86_400_000, 0),
            other => panic!("not subscribed: {other}"),
        };
        assert_eq!((open + zone) % span, 0, "{channel} opens on its boundary: {row:?}");
        seen.insert(bar.to_string());
    }
}

#[tokio::test]
async fn wrong_endpoints_and_channels_get_okx_codes() {
    let sim = server_with(Faults::default()).await;
    let code_of = |v: &Value| (v["event"].as_str().map(String::from), v["code"].as_str().map(String::from));
    let err = |code: &str| (Some("error".to_string()), Some(code.to_string()));
    let cases = [
        ("public", "candle1m", "BTC-USDT", "64001"),
        ("public", "trades-all", "BTC-USDT", "64001"),
        ("public", "orders", "", "60018"),
        ("public", "books-l2-tbt", "BTC-USDT", "60011"),
        ("public", "mark-price-nope", "BTC-USDT", "60018"),
        ("public", "tickers", "NOPE-USDT", "60018"),
        ("business", "tickers", "BTC-USDT", "64002"),
        ("business", "books", "BTC-USDT", "64002"),
        ("business", "orders", "", "64002"),
        ("business", "candle7m", "BTC-USDT", "60018"),
        ("business", "candle1h", "BTC-USDT", "60018"),
        ("business", "candle1m", "NOPE-USDT", "60018"),
    ];
    for (path, channel, inst, code) in cases {
        let mut ws = connect(&sim, path).await;
        send(
            &mut ws,
            json!({"id": "e1", "op": "subscribe", "args": [{"channel": channel, "instId": inst, "instType": "ANY"}]}),
        )
        .await;
        let v = quiet_next(&mut ws).await;
        assert_eq!(code_of(&v), err(code), "{channel} on /{path}: {v}");
        assert_eq!(v["id"], "e1");
        let msg = v["msg"].as_str().expect("msg");
        match code {
            "64001" => assert!(msg.starts_with("This channel has been migrated to the '/business' URL."), "{msg}"),
            "64002" => assert!(msg.starts_with("This channel is not supported by \"/business\" URL."), "{msg}"),
            "60018" => assert!(
                msg.starts_with(&format!("Wrong URL or channel:{channel},instId:{inst} doesn't exist.")),
                "{msg}"
            ),
            _ => {}
        }
    }
    // Logged in, the tick-by-tick books need VIP4, which the simulator's accounts never are.
    let mut ws = logged_in(&sim, "public").await;
    for channel in ["books-l2-tbt", "books50-l2-tbt"] {
        send(&mut ws, json!({"op": "subscribe", "args": [{"channel": channel, "instId": "BTC-USDT"}]})).await;
        let v = quiet_next(&mut ws).await;
        assert_eq!(code_of(&v), err("64003"), "{v}");
        assert_eq!(v["msg"], "Your trading fee tier doesn't meet the requirement to access this channel");
    }
    // Public channels are not on /private, and candles are on /business only.
    let mut ws = logged_in(&sim, "private").await;
    for (channel, code) in [("tickers", "60018"), ("candle1m", "64001")] {
        send(&mut ws, json!({"op": "subscribe", "args": [{"channel": channel, "instId": "BTC-USDT"}]})).await;
        assert_eq!(code_of(&quiet_next(&mut ws).await), err(code), "{channel} on /private");
    }
}

#[tokio::test]
async fn books5_and_bbo_start_with_a_snapshot() {
    let sim = server_with(Faults::default()).await;
    let mut ws = connect(&sim, "public").await;
    send(
        &mut ws,
        json!({"op": "subscribe", "args": [{"channel": "books5", "instId": "ETH-USDT"}, {"channel": "bbo-tbt", "instId": "ETH-USDT"}]}),
    )
    .await;
    // Nothing steps the market: what comes is sent because of the subscription alone.
    for (channel, depth) in [("books5", 5), ("bbo-tbt", 1)] {
        assert_eq!(quiet_next(&mut ws).await["event"], "subscribe");
        let snap = quiet_next(&mut ws).await;
        assert_eq!(snap["arg"], json!({"channel": channel, "instId": "ETH-USDT"}), "{snap}");
        assert!(snap.get("action").is_none(), "every push of {channel} is a whole snapshot");
        let d = &snap["data"][0];
        assert_eq!(d["asks"].as_array().map(Vec::len), Some(depth), "{snap}");
        assert_eq!(d["bids"].as_array().map(Vec::len), Some(depth), "{snap}");
        assert!(dec(&d["bids"][0][0]) < dec(&d["asks"][0][0]));
        assert!(d["seqId"].is_i64() && d["ts"].is_string());
        assert_eq!(d.get("instId").is_some(), channel == "books5", "only books5 names the instrument: {d}");
    }
}

#[tokio::test]
async fn a_still_book_gets_okx_keep_alive() {
    let config = SimServerConfig {
        keys: vec![key("read_only,trade", true)],
        run_market: false,
        ws_books_heartbeat_ms: 100,
        ..SimServerConfig::default()
    };
    let sim = SimServer::start(config).await.expect("sim");
    let mut ws = connect(&sim, "public").await;
    send(&mut ws, json!({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})).await;
    assert_eq!(quiet_next(&mut ws).await["event"], "subscribe");
    let snap = quiet_next(&mut ws).await;
    assert_eq!(snap["action"], "snapshot");
    let mut seq = snap["data"][0]["seqId"].as_i64().expect("seq");
    // The market is still: the next books frame is the empty update that keeps the chain.
    let beat = loop {
        let v = quiet_next(&mut ws).await;
        let d = &v["data"][0];
        assert_eq!(d["prevSeqId"].as_i64(), Some(seq), "the chain continues: {v}");
        if d["asks"] == json!([]) && d["bids"] == json!([]) {
            break v;
        }
        seq = d["seqId"].as_i64().expect("seq");
    };
    assert_eq!(beat["action"], "update");
    assert_eq!(beat["data"][0]["seqId"].as_i64(), Some(seq), "prevSeqId == seqId");
    // The next keep-alive continues the same chain.
    let again = quiet_next(&mut ws).await;
    assert_eq!((again["data"][0]["prevSeqId"].as_i64(), again["data"][0]["seqId"].as_i64()), (Some(seq), Some(seq)));
    // books5 gets its snapshot again.
    send(&mut ws, json!({"op": "unsubscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})).await;
    send(&mut ws, json!({"op": "subscribe", "args": [{"channel": "books5", "instId": "BTC-USDT"}]})).await;
    let mut snapshots = 0;
    while snapshots < 2 {
        let v = quiet_next(&mut ws).await;
        if v["arg"]["channel"] == "books5" && v.get("event").is_none() {
            assert_eq!(v["data"][0]["asks"].as_array().map(Vec::len), Some(5), "{v}");
            snapshots += 1;
        }
    }
}

fn conn_event(v: &Value) -> (&str, &str, &str) {
    (v["event"].as_str().unwrap_or(""), v["channel"].as_str().unwrap_or(""), v["connCount"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn private_subscriptions_report_connection_counts_and_the_cap() {
    let config = SimServerConfig {
        keys: vec![key("read_only,trade", true)],
        run_market: false,
        ws_channel_conn_cap: 2,
        ..SimServerConfig::default()
    };
    let sim = SimServer::start(config).await.expect("sim");
    let orders = |t: &str| json!({"op": "subscribe", "args": [{"channel": "orders", "instType": t}]});
    let mut a = logged_in(&sim, "private").await;
    send(&mut a, orders("ANY")).await;
    assert_eq!(quiet_next(&mut a).await["event"], "subscribe");
    let count = quiet_next(&mut a).await;
    assert_eq!(conn_event(&count), ("channel-conn-count", "orders", "1"), "{count}");
    assert_eq!(count["connId"].as_str().map(str::len), Some(8));
    // A second arg of the same channel on the same connection counts once.
    send(&mut a, orders("SPOT")).await;
    assert_eq!(quiet_next(&mut a).await["event"], "subscribe");
    assert_eq!(conn_event(&quiet_next(&mut a).await), ("channel-conn-count", "orders", "1"));
    let mut b = logged_in(&sim, "private").await;
    send(&mut b, orders("ANY")).await;
    assert_eq!(quiet_next(&mut b).await["event"], "subscribe");
    assert_eq!(conn_event(&quiet_next(&mut b).await), ("channel-conn-count", "orders", "2"));
    // The third connection is over the cap: acknowledged, then refused (OKX's order).
    let mut c = logged_in(&sim, "private").await;
    send(&mut c, orders("ANY")).await;
    assert_eq!(quiet_next(&mut c).await["event"], "subscribe");
    assert_eq!(conn_event(&quiet_next(&mut c).await), ("channel-conn-count-error", "orders", "2"));
    // Other channels count apart.
    send(&mut c, json!({"op": "subscribe", "args": [{"channel": "account", "ccy": "USDT"}]})).await;
    assert_eq!(quiet_next(&mut c).await["event"], "subscribe");
    assert_eq!(conn_event(&quiet_next(&mut c).await), ("channel-conn-count", "account", "1"));
    assert_eq!(quiet_next(&mut c).await["eventType"], "snapshot");
    // The refused subscription gets nothing: an order's push comes before the balance change
    // it causes, and only the balance change reaches the third connection.
    send(
        &mut a,
        json!({"id": "p1", "op": "order", "args": [{"instId": "BTC-USDT", "tdMode": "cash", "side": "buy",
        "ordType": "limit", "px": "1000", "sz": "0.001"}]}),
    )
    .await;
    loop {
        let v = quiet_next(&mut c).await;
        assert_ne!(v["arg"]["channel"], "orders", "a refused subscription is dropped: {v}");
        if v["arg"]["channel"] == "account" {
            break;
        }
    }
    // Leaving frees a place: the first connection drops both its orders args.
    send(&mut a, json!({"op": "unsubscribe", "args": [{"channel": "orders", "instType": "ANY"}]})).await;
    send(&mut a, json!({"op": "unsubscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})).await;
    let mut acks = 0;
    while acks < 2 {
        if quiet_next(&mut a).await["event"] == "unsubscribe" {
            acks += 1;
        }
    }
    send(&mut c, orders("ANY")).await;
    assert_eq!(quiet_next(&mut c).await["event"], "subscribe");
    assert_eq!(conn_event(&quiet_next(&mut c).await), ("channel-conn-count", "orders", "2"));
}

#[tokio::test]
async fn the_refuse_subscribe_fault_refuses_private_subscriptions() {
    let sim = server_with(Faults::default()).await;
    admin(&sim, json!({"ws_refuse_subscribe": 1})).await;
    // Public subscriptions do not use it up.
    let mut public = connect(&sim, "public").await;
    send(&mut public, json!({"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})).await;
    assert_eq!(quiet_next(&mut public).await["event"], "subscribe");
    let mut ws = logged_in(&sim, "private").await;
    let sub = json!({"id": "r1", "op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}]});
    send(&mut ws, sub.clone()).await;
    let ack = quiet_next(&mut ws).await;
    assert_eq!((ack["event"].as_str(), ack["id"].as_str()), (Some("subscribe"), Some("r1")));
    let refused = quiet_next(&mut ws).await;
    assert_eq!(conn_event(&refused), ("channel-conn-count-error", "orders", "30"), "{refused}");
    // One refusal asked for, one given.
    send(&mut ws, sub).await;
    assert_eq!(quiet_next(&mut ws).await["event"], "subscribe");
    assert_eq!(conn_event(&quiet_next(&mut ws).await), ("channel-conn-count", "orders", "1"));
}

#[tokio::test]
async fn volumes_are_in_okx_units() {
    let sim = server_with(Faults::default()).await;
    let ct_val = sim.exchange().spec("BTC-USDT-SWAP").expect("swap").contract_value;
    let mut business = connect(&sim, "business").await;
    send(
        &mut business,
        json!({"op": "subscribe", "args": [{"channel": "candle1m", "instId": "BTC-USDT"}, {"channel": "candle1m", "instId": "BTC-USDT-SWAP"}]}),
    )
    .await;
    let tolerance = rust_decimal::Decimal::new(1, 8);
    let (mut spot, mut swap) = (false, false);
    while !(spot && swap) {
        let v = next_on(&sim, &mut business, "candle1m").await;
        let row = v["data"][0].as_array().expect("row");
        let (l, h, vol, vol_ccy, vol_quote) = (dec(&row[3]), dec(&row[2]), dec(&row[5]), dec(&row[6]), dec(&row[7]));
        if vol.is_zero() {
            continue;
        }
        // The quote volume lies between the volume at the low and at the high.
        let between = |q: rust_decimal::Decimal, base: rust_decimal::Decimal| {
            base * l - tolerance <= q && q <= base * h + tolerance
        };
        if v["arg"]["instId"] == "BTC-USDT" {
            // Spot: vol base, volCcy quote, volCcyQuote quote.
            assert_eq!(vol_ccy, vol_quote, "{row:?}");
            assert!(between(vol_quote, vol), "{row:?}");
            spot = true;
        } else {
            // Swap: vol contracts, volCcy base, volCcyQuote quote.
            assert_eq!(vol_ccy, vol * ct_val, "{row:?}");
            assert!(between(vol_quote, vol_ccy), "{row:?}");
            swap = true;
        }
    }
    let mut public = connect(&sim, "public").await;
    send(
        &mut public,
        json!({"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT-SWAP"}, {"channel": "tickers", "instId": "BTC-USDT"}]}),
    )
    .await;
    let (mut spot, mut swap) = (false, false);
    while !(spot && swap) {
        let v = next_on(&sim, &mut public, "tickers").await;
        let t = &v["data"][0];
        let vol = dec(&t["vol24h"]);
        if vol.is_zero() {
            continue;
        }
        if t["instId"] == "BTC-USDT-SWAP" {
            // Swap: vol24h contracts, volCcy24h base.
            assert_eq!(dec(&t["volCcy24h"]), vol * ct_val, "{t}");
            swap = true;
        } else {
            // Spot: vol24h base, volCcy24h quote (at the last price).
            assert_eq!(dec(&t["volCcy24h"]), (vol * dec(&t["last"])).round_dp(8), "{t}");
            spot = true;
        }
    }
}
