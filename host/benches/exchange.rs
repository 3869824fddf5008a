#![allow(missing_docs)] // criterion_group! generates undocumented items.
//! Exchange-path figures (issue "OKX REST"): signing throughput, rate-limiter acquire, and the
//! whole path from an order intent to signed request bytes ready to send. Run with
//! `cargo bench -p tradebox --bench exchange`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;
use std::hint::black_box;
use std::str::FromStr;
use tradebox::engine::router::Router;
use tradebox_core::{MarketEvent, VenueEvent};
use tradebox_okx::Credentials;
use tradebox_okx::limits::{Endpoint, Limiter, LimiterConfig, Request};
use tradebox_okx::sign::Signer;

const TS: &str = "2020-12-08T09:08:57.715Z";
const BODY: &str = r#"{"instId":"BTC-USDT","tdMode":"cash","clOrdId":"tb1a2b3c4d","side":"buy","ordType":"limit","px":"60123.4","sz":"0.0123"}"#;

fn signing(c: &mut Criterion) {
    let signer = Signer::new(Credentials::new("key", "22582BD0CFF14C41EDBF1AB98506286D", "pass"));
    let mut g = c.benchmark_group("okx");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_order_request", |b| {
        b.iter(|| black_box(signer.sign(black_box(TS), "POST", "/api/v5/trade/order", black_box(BODY.as_bytes()))))
    });
    g.finish();
}

fn limiter(c: &mut Criterion) {
    // A window far larger than any run, so every acquire is granted (uncontended).
    let l = Limiter::new(LimiterConfig { headroom: 1.0, plugin_share: 1.0, ..LimiterConfig::default() });
    let mut g = c.benchmark_group("ratelimit");
    let mut now = 1u64;
    g.bench_function("acquire_uncontended_place_for_plugin", |b| {
        b.iter(|| {
            // 10 s apart: each acquire finds its permits free, as an uncontended one does.
            now += 10_000_000_000;
            black_box(l.try_acquire_at(black_box(&Request::new(Endpoint::Place, 3).for_plugin(1)), now))
        })
    });
    g.finish();
}

/// Open orders each plugin holds while the figure is taken (risk counts them on every intent).
const OPEN: usize = 50;

fn intent_to_signed_bytes(c: &mut Criterion) {
    use tradebox::engine::{Command, Grants, Hub, OrderIntent, Permissions, RiskLimits};
    use tradebox_core::{InstrumentKind, InstrumentSpec, OrderKind, Side};
    use tradebox_okx::Observer;
    use tradebox_okx::rest::SentRequest;

    let dir = tempfile::tempdir().expect("tmp");
    let audit = tradebox::audit::AuditLog::open(&dir.path().join("audit.jsonl"), std::time::Duration::from_millis(200))
        .expect("audit");
    let signer = Signer::new(Credentials::new("key", "22582BD0CFF14C41EDBF1AB98506286D", "pass"));
    let clock = tradebox_okx::ClockSync::new();
    let limiter = Limiter::new(LimiterConfig::default());
    let spec = InstrumentSpec {
        id: 1,
        symbol: "BTC-USDT".into(),
        kind: InstrumentKind::Spot,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick_size: Decimal::from_str("0.1").expect("tick"),
        lot_size: Decimal::from_str("0.00000001").expect("lot"),
        min_size: Decimal::from_str("0.00001").expect("min"),
        contract_value: Decimal::ONE,
    };
    let intent = OrderIntent {
        instrument: 1,
        side: Side::Buy,
        kind: OrderKind::Limit,
        price: Some(60_123.456),
        size: 0.0123,
        reduce_only: false,
    };
    let mut now = 1u64;
    let mut g = c.benchmark_group("okx");
    g.throughput(Throughput::Elements(OPEN as u64));
    // Each batch: a fresh gateway, then OPEN intents from one plugin through the whole path up
    // to the bytes and headers that go on the wire: the gateway (grant, normalise, client id,
    // audit intent, risk with the open orders so far, rate token, audit decision, tracker),
    // then the OKX venue's preparation (request body, serialise once, rate-limit permits,
    // corrected timestamp, HMAC signature, audit of the request). Only the network is left out.
    g.bench_function("intent_to_signed_request_bytes_x50", |b| {
        b.iter_batched(
            || {
                let (hub, rx) = Hub::new(vec![spec.clone()]);
                hub.attach_audit(audit.clone());
                // A market to check the orders against (price band, quote age).
                let ticker = MarketEvent::Ticker {
                    instrument: 1,
                    ts_ms: 1,
                    bid: 60_120.0,
                    bid_size: 5.0,
                    ask: 60_125.0,
                    ask_size: 5.0,
                    last: 60_123.0,
                };
                Router::new(false).route(&hub, VenueEvent::Market(ticker));
                let risk =
                    RiskLimits { max_orders_per_sec: u32::MAX, max_open_orders: 10_000, ..RiskLimits::default() };
                let slot = hub.register_component(
                    "bench",
                    &"ab".repeat(32),
                    Permissions::granted_only(Grants { instruments: vec!["*".into()], ..Grants::default() }),
                    risk,
                );
                (hub, rx, slot)
            },
            |(hub, mut rx, slot)| {
                use tradebox::venue::okx::convert;
                let modes = convert::TradeModes {
                    level: tradebox_okx::model::AccountLevel::Futures,
                    positions: tradebox_okx::model::PositionMode::Net,
                    margin: tradebox::venue::okx::MarginMode::Cross,
                };
                for _ in 0..OPEN {
                    hub.place(&slot, black_box(intent)).expect("accepted");
                    let Ok(Command::Place(order)) = rx.try_recv() else { panic!("queued") };
                    let body = serde_json::to_vec(&convert::place_order(&spec, &order, &modes)).expect("json");
                    now += 10_000_000_000;
                    let request = Request::new(Endpoint::Place, 1).for_plugin(slot.id).cap_exempt(true);
                    let permit = limiter.try_acquire_at(&request, now).expect("permit");
                    let headers = signer.headers(clock.timestamp(), "POST", "/api/v5/trade/order", &body);
                    audit.request(&SentRequest {
                        method: "POST",
                        path: "/api/v5/trade/order",
                        body: &body,
                        timestamp: Some(&headers.timestamp),
                        demo: true,
                        exp_time: Some(1),
                        caller: None,
                    });
                    limiter.complete_at(permit, now);
                    black_box((headers, body));
                }
                (hub, rx, slot)
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, signing, limiter, intent_to_signed_bytes);
criterion_main!(benches);
