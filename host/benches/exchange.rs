#![allow(missing_docs)] // criterion_group! generates undocumented items.
//! Exchange-path figures (issue "OKX REST"): signing throughput, rate-limiter acquire, and the
//! whole path from an order intent to signed request bytes ready to send. Run with
//! `cargo bench -p tradebox --bench exchange`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;
use std::hint::black_box;
use std::str::FromStr;
use tradebox::ratelimit::{Endpoint, Limiter, LimiterConfig, Request};
use tradebox_okx::Credentials;
use tradebox_okx::model::{OrdType, PlaceOrder, Side};
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

fn intent_to_signed_bytes(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let audit = tradebox::audit::AuditLog::open(&dir.path().join("audit.jsonl"), std::time::Duration::from_millis(200))
        .expect("audit");
    let signer = Signer::new(Credentials::new("key", "22582BD0CFF14C41EDBF1AB98506286D", "pass"));
    let l = Limiter::new(LimiterConfig::default());
    let spec = tradebox::venue::InstrumentSpec {
        id: 1,
        symbol: "BTC-USDT".into(),
        kind: tradebox::venue::InstrumentKind::Spot,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick_size: Decimal::from_str("0.1").expect("tick"),
        lot_size: Decimal::from_str("0.00000001").expect("lot"),
        min_size: Decimal::from_str("0.00001").expect("min"),
        contract_value: Decimal::ONE,
    };
    let mut seq = 0u64;
    let mut now = 1u64;
    let mut g = c.benchmark_group("okx");
    g.bench_function("intent_to_signed_request_bytes", |b| {
        b.iter(|| {
            seq += 1;
            now += 10_000_000_000;
            // Normalise a float intent to the instrument's grid.
            let side = tradebox::venue::Side::Buy;
            let kind = tradebox::venue::OrderKind::Limit;
            let price = tradebox::engine::normalize::price(&spec, side, kind, Some(black_box(60_123.456)))
                .expect("valid price");
            let size = tradebox::engine::normalize::size(&spec, black_box(0.0123)).expect("valid size");
            let client_id = format!("tb1a{seq:x}");
            let order = PlaceOrder {
                inst_id: spec.symbol.clone(),
                td_mode: "cash".into(),
                cl_ord_id: Some(client_id.clone()),
                side: Side::Buy,
                ord_type: OrdType::Limit,
                px: price,
                sz: size,
                tag: None,
                reduce_only: None,
                tgt_ccy: None,
                pos_side: None,
            };
            let body = serde_json::to_vec(&order).expect("json");
            audit.append(
                Some("bench"),
                None,
                &tradebox::audit::Entry::Request {
                    method: "POST".into(),
                    path: "/api/v5/trade/order".into(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                    headers: vec![],
                },
            );
            let permit = l
                .try_acquire_at(&Request::new(Endpoint::Place, 1).for_plugin(1).cap_exempt(true), now)
                .expect("permit");
            let ts = tradebox_okx::sign::timestamp(1_607_418_537_715);
            black_box(signer.headers(ts, "POST", "/api/v5/trade/order", &body));
            l.complete_at(permit, now);
            black_box(body)
        })
    });
    g.finish();
}

criterion_group!(benches, signing, limiter, intent_to_signed_bytes);
criterion_main!(benches);
