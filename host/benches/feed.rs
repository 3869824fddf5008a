#![allow(missing_docs)] // criterion_group! generates undocumented items.
//! WebSocket feed figures (issue "OKX WebSocket"): parse and route a `tickers` push to one
//! plugin's inbox, apply a 10-level `books` update to a 400-level book, and parse a mix of real
//! pushes in a row. Run with `cargo bench -p tradebox --bench feed`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;
use std::hint::black_box;
use std::str::FromStr;
use tradebox::engine::router::Router;
use tradebox::engine::{Grants, Hub, RiskLimits};
use tradebox::venue::okx::stream::market_events;
use tradebox_core::Channel;
use tradebox_core::{InstrumentKind, InstrumentSpec, VenueEvent};
use tradebox_okx::ws::message::{BookData, BookLevel};
use tradebox_okx::ws::{Action, Frame, OrderBook, parse};

const TICKER: &str = r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT","last":"60123.4","lastSz":"0.0123","askPx":"60123.5","askSz":"1.234","bidPx":"60123.4","bidSz":"0.567","open24h":"59000","high24h":"61000","low24h":"58800.1","volCcy24h":"123456789.12","vol24h":"2061.53","sodUtc0":"59500","sodUtc8":"59600","ts":"1764000000000"}]}"#;

fn spec() -> InstrumentSpec {
    InstrumentSpec {
        id: 1,
        symbol: "BTC-USDT".into(),
        kind: InstrumentKind::Spot,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick_size: Decimal::from_str("0.1").expect("tick"),
        lot_size: Decimal::from_str("0.00000001").expect("lot"),
        min_size: Decimal::from_str("0.00001").expect("min"),
        contract_value: Decimal::ONE,
    }
}

fn tickers_to_one_plugin(c: &mut Criterion) {
    let (hub, _commands) = Hub::new(vec![spec()]);
    let slot = hub.register("p", Grants { instruments: vec!["*".into()], ..Grants::default() }, RiskLimits::default());
    hub.subscribe(&slot, 1, Channel::Tickers).expect("granted");
    let mut router = Router::new(false);
    let symbol = |s: &str| (s == "BTC-USDT").then_some(1);
    let mut g = c.benchmark_group("feed");
    g.bench_function("parse_and_route_tickers_push_to_1_plugin", |b| {
        b.iter(|| {
            let Ok(Frame::Push(push)) = parse(black_box(TICKER)) else { panic!("a push") };
            for e in market_events(&push, symbol) {
                router.route(&hub, VenueEvent::Market(e));
            }
            // The plugin's inbox keeps the newest ticker (conflated): it does not grow.
        })
    });
    g.finish();
}

fn level(px: Decimal, sz: Decimal) -> BookLevel {
    BookLevel { px, sz, px_text: px.to_string(), sz_text: sz.to_string(), orders: 1 }
}

fn book_update(c: &mut Criterion) {
    let tick = Decimal::from_str("0.1").expect("tick");
    let mid = Decimal::from(60_000);
    let side = |sign: i64| -> Vec<BookLevel> {
        (1..=400).map(|i| level(mid + tick * Decimal::from(sign * i), Decimal::from_str("0.5").expect("sz"))).collect()
    };
    let snapshot =
        BookData { asks: side(1), bids: side(-1), ts: 1, checksum: 0, prev_seq_id: Some(-1), seq_id: Some(1) };
    let mut book = OrderBook::new();
    book.apply(Action::Snapshot, &snapshot).expect("snapshot");
    // Ten changed levels near the top: five per side, sizes alternating so each update changes
    // the book.
    let sizes = [Decimal::from_str("0.7").expect("sz"), Decimal::from_str("0.3").expect("sz")];
    let updates: Vec<BookData> = sizes
        .iter()
        .map(|sz| BookData {
            asks: (1..=5).map(|i| level(mid + tick * Decimal::from(i), *sz)).collect(),
            bids: (1..=5).map(|i| level(mid - tick * Decimal::from(i), *sz)).collect(),
            ts: 2,
            checksum: 0,
            prev_seq_id: None,
            seq_id: None,
        })
        .collect();
    let mut seq = 1i64;
    let mut g = c.benchmark_group("feed");
    g.bench_function("apply_10_level_books_update_to_400_level_book", |b| {
        b.iter(|| {
            let mut u = updates[(seq % 2) as usize].clone();
            u.prev_seq_id = Some(seq);
            u.seq_id = Some(seq + 1);
            seq += 1;
            black_box(book.apply(Action::Update, &u)).expect("in sequence");
        })
    });
    g.bench_function("clone_10_level_books_update (subtract from the row above)", |b| {
        b.iter(|| black_box(updates[(seq % 2) as usize].clone()))
    });
    g.finish();
}

fn parse_mix(c: &mut Criterion) {
    // Real captured pushes of the channels the host reads (fixtures from other projects).
    let text =
        std::fs::read_to_string(format!("{}/../okx/tests/data/tardis_okx_v5_msgs.jsonl", env!("CARGO_MANIFEST_DIR")))
            .expect("fixture");
    let mut frames: Vec<String> = text.lines().filter(|l| parse(l).is_ok()).map(String::from).collect();
    frames.push(TICKER.to_string());
    let mut g = c.benchmark_group("feed");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function(format!("parse_{}_captured_pushes", frames.len()), |b| {
        b.iter(|| {
            for f in &frames {
                black_box(parse(black_box(f)).is_ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, tickers_to_one_plugin, book_update, parse_mix);
criterion_main!(benches);
