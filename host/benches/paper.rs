#![allow(missing_docs)] // criterion_group! generates undocumented items.
//! Paper fill decision (issue 16: <= 2 µs an order): what the paper venue's exchange does with
//! one order against a live five-level book, reports and balances included, the feed and the
//! host around it not. Run with `cargo bench -p tradebox --bench paper`.
//!
//! - `market_walks_3_of_5_levels`: a market buy taking three levels (three fills).
//! - `limit_rests`: a limit buy below the book (checked, held, on the book, no fill).
//! - `trade_through_fills_resting`: a trade printing through one resting order (the fill of a
//!   resting order as the feed moves), with 20 other orders resting on the instrument.
//! - `book_update_20_resting`: a new book (five levels a side) with 20 resting orders none of
//!   which it reaches: what every book push costs while orders rest.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rust_decimal::Decimal;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tradebox::venue::paper::{Fees, FillModel, PaperExchange};
use tradebox_core::{
    Clock, InstrumentKind, InstrumentSpec, MarketEvent, NewOrder, OrderKind, PositionSide, Side, Venue, VenueEvent,
};

fn spec() -> InstrumentSpec {
    InstrumentSpec {
        id: 1,
        symbol: "BTC-USDT".into(),
        kind: InstrumentKind::Spot,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick_size: Decimal::new(1, 1),
        lot_size: Decimal::new(1, 8),
        min_size: Decimal::new(1, 5),
        contract_value: Decimal::ONE,
    }
}

/// The exchange's futures never wait (it answers in-process): one poll finishes them.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the paper exchange never waits"),
    }
}

fn book() -> MarketEvent {
    let bids = (0..5).map(|i| (64_000.0 - f64::from(i) * 0.5, 0.25)).collect();
    let asks = (0..5).map(|i| (64_000.5 + f64::from(i) * 0.5, 0.25)).collect();
    MarketEvent::Book { instrument: 1, ts_ms: 1, bids, asks }
}

fn exchange() -> (PaperExchange, tokio::sync::mpsc::UnboundedReceiver<VenueEvent>) {
    let balances =
        [("USDT".to_string(), Decimal::from(1_000_000_000_000_i64)), ("BTC".to_string(), Decimal::from(1_000_000))];
    let fees = Fees::tier("Lv1").expect("a tier");
    let x =
        PaperExchange::new(vec![spec()], &balances, Clock::system(), FillModel::Book, fees, Decimal::ONE).for_paper();
    let rx = x.take_events().expect("events");
    x.on_market(&book());
    (x, rx)
}

fn order(n: u64, kind: OrderKind, price: Option<Decimal>, size: Decimal) -> NewOrder {
    NewOrder {
        client_id: format!("tb{n}"),
        instrument: 1,
        side: Side::Buy,
        kind,
        price,
        size,
        reduce_only: false,
        leg: PositionSide::Net,
        origin: None,
    }
}

fn fill_decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("paper");
    let (x, mut rx) = exchange();
    let mut n = 0;
    group.bench_function("market_walks_3_of_5_levels", |b| {
        b.iter_batched(
            || {
                // Events of earlier orders out of the way.
                while rx.try_recv().is_ok() {}
                n += 1;
                order(n, OrderKind::Market, None, Decimal::new(60, 2))
            },
            |o| black_box(now(x.place(o))),
            BatchSize::PerIteration,
        )
    });

    let (x, mut rx) = exchange();
    group.bench_function("limit_rests", |b| {
        b.iter_batched(
            || {
                while rx.try_recv().is_ok() {}
                n += 1;
                // Cancel the one before: the account's open orders stay few.
                let _ = now(x.cancel(1, &format!("tb{}", n - 1), None));
                order(n, OrderKind::Limit, Some(Decimal::from(63_000)), Decimal::new(1, 2))
            },
            |o| black_box(now(x.place(o))),
            BatchSize::PerIteration,
        )
    });

    let (x, mut rx) = exchange();
    for i in 0..20 {
        n += 1;
        let price = Decimal::from(60_000 + i);
        now(x.place(order(n, OrderKind::Limit, Some(price), Decimal::new(1, 2)))).expect("rests");
    }
    let through = MarketEvent::Trade { instrument: 1, ts_ms: 2, price: 62_999.0, size: 0.5, taker_side: Side::Sell };
    group.bench_function("trade_through_fills_resting", |b| {
        b.iter_batched(
            || {
                while rx.try_recv().is_ok() {}
                n += 1;
                now(x.place(order(n, OrderKind::Limit, Some(Decimal::from(63_000)), Decimal::new(1, 2))))
                    .expect("rests");
            },
            |()| x.on_market(black_box(&through)),
            BatchSize::PerIteration,
        )
    });

    let fresh = book();
    group.bench_function("book_update_20_resting", |b| {
        b.iter(|| {
            x.on_market(black_box(&fresh));
        });
        while rx.try_recv().is_ok() {}
    });
    group.finish();
}

criterion_group!(benches, fill_decision);
criterion_main!(benches);
