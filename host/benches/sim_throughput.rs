#![allow(missing_docs)]
//! Simulator throughput (issue "OKX simulator"), client and server in one process on this
//! machine:
//!
//! - `rest`: sustained signed place + cancel over loopback REST. Workers each place a resting
//!   limit order and cancel it, over and over, through the host's own OKX client (every request
//!   signed, every signature verified by the simulator). Figure: orders per second, each one
//!   placed and cancelled.
//! - `ws`: WebSocket fan-out. Ten connections subscribe to `tickers`, `books5`, `bbo-tbt` and
//!   `trades` of every instrument; the market is stepped as fast as it goes. Figure: pushes
//!   received per second, all connections together.
//!
//! Run: `cargo bench -p tradebox --bench sim_throughput [-- rest|ws] [--seconds N] [--workers N]`.
//! OKX's rate limits are switched off in the simulator for this (they cap one instrument at 30
//! orders/s); everything else is as served.

use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tradebox_okx::model::{CancelOrder, OrdType, PlaceOrder, Side};
use tradebox_okx::{CallOpts, ClockSync, Credentials, RestClient, RestConfig, Signer};
use tradebox_sim::server::{SimKey, SimServer, SimServerConfig};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn sim(key: &SimKey) -> SimServer {
    let config = SimServerConfig {
        keys: vec![key.clone()],
        run_market: false,
        rate_limits: false,
        ws_idle_ms: 600_000,
        ..SimServerConfig::default()
    };
    SimServer::start(config).await.expect("simulator starts")
}

async fn rest(seconds: u64, workers: u64) {
    let key = SimKey::generate();
    let sim = sim(&key).await;
    let client = RestClient::new(
        RestConfig { base_url: sim.base_url(), demo: true, timeout: Duration::from_secs(10), tls: Default::default() },
        Some(Signer::new(Credentials::new(&key.api_key, &key.secret, &key.passphrase))),
        Arc::new(ClockSync::new()),
    )
    .expect("client");
    client.sync_clock().await.expect("clock");
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, done, errors, stop) = (client.clone(), done.clone(), errors.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("w{w}n{n}");
                let order = PlaceOrder {
                    inst_id: "BTC-USDT".into(),
                    td_mode: "cash".into(),
                    cl_ord_id: Some(id.clone()),
                    side: Side::Buy,
                    ord_type: OrdType::Limit,
                    px: Some(Decimal::from(1_000 + (n % 500))),
                    sz: Decimal::new(1, 3),
                    tag: None,
                    reduce_only: None,
                    tgt_ccy: None,
                    pos_side: None,
                };
                let placed = client.place_order(&order, &CallOpts::default()).await;
                let cancel = CancelOrder { inst_id: "BTC-USDT".into(), ord_id: None, cl_ord_id: Some(id) };
                let cancelled = client.cancel_order(&cancel, &CallOpts::default()).await;
                if placed.is_ok() && cancelled.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let orders = done.load(Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "rest: {orders} orders placed and cancelled in {elapsed:.1} s by {workers} workers: {:.0} orders/s ({:.0} signed requests/s), {} errors",
        orders as f64 / elapsed,
        2.0 * orders as f64 / elapsed,
        errors.load(Ordering::Relaxed)
    );
}

async fn ws(seconds: u64, subscribers: u64) {
    let key = SimKey::generate();
    let sim = sim(&key).await;
    let symbols: Vec<String> = sim.exchange().specs().iter().map(|s| s.symbol.clone()).collect();
    let received = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let (mut socket, _) = tokio_tungstenite::connect_async(sim.ws_url("public")).await.expect("connects");
        let args: Vec<serde_json::Value> = symbols
            .iter()
            .flat_map(|s| {
                ["tickers", "books5", "bbo-tbt", "trades"].map(|c| serde_json::json!({"channel": c, "instId": s}))
            })
            .collect();
        let sub = serde_json::json!({"op": "subscribe", "args": args}).to_string();
        socket.send(tokio_tungstenite::tungstenite::Message::text(sub)).await.expect("subscribe");
        let (received, counting) = (received.clone(), counting.clone());
        readers.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = socket.next().await {
                if msg.is_text() && counting.load(Ordering::Relaxed) {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let exchange = sim.exchange().clone();
    counting.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let mut steps = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        exchange.venue().step();
        exchange.pump();
        steps += 1;
        if steps.is_multiple_of(8) {
            // Let the connections drain what was published.
            tokio::task::yield_now().await;
        }
    }
    // Count what is still in flight for a moment, then stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    counting.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let pushes = received.load(Ordering::Relaxed);
    println!(
        "ws: {pushes} pushes to {subscribers} subscribers in {elapsed:.1} s ({steps} market steps): {:.0} pushes/s ({:.0} per subscriber)",
        pushes as f64 / elapsed,
        pushes as f64 / elapsed / subscribers as f64
    );
    drop(readers);
}

fn main() {
    let which: Vec<String> = std::env::args().skip(1).filter(|a| a == "rest" || a == "ws").collect();
    let all = which.is_empty();
    let seconds = arg("--seconds", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        if all || which.iter().any(|w| w == "rest") {
            rest(seconds, arg("--workers", 16)).await;
        }
        if all || which.iter().any(|w| w == "ws") {
            ws(seconds, arg("--subscribers", 10)).await;
        }
    });
}
