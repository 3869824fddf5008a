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
    crate::engine::now_ms() / 1_000
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
    for _ in 0..2 {
        let err = next_json(&sim, &mut ws).await;
        assert_eq!((err["event"].as_str(), err["code"].as_str()), (Some("error"), Some("60018")), "{err}");
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
    assert_eq!(next_json(&sim, &mut ws).await["event"], "subscribe");
    assert_eq!(next_json(&sim, &mut ws).await["event"], "subscribe");
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
