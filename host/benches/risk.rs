#![allow(missing_docs)] // criterion_group! generates undocumented items.
//! Risk figure (issue "Risk engine"): the full pre-trade check of one order for a plugin that
//! already has 50 open orders and positions in 10 instruments. Run with
//! `cargo bench -p tradebox --bench risk`.

use criterion::{Criterion, criterion_group, criterion_main};
use rust_decimal::Decimal;
use std::hint::black_box;
use tradebox::engine::router::Router;
use tradebox::engine::{Command, Grants, Hub, OrderIntent, RiskLimits};
use tradebox_core::{
    BalanceReport, FillReport, InstrumentKind, InstrumentSpec, Liquidity, MarketEvent, OrderKind, Side, VenueEvent,
};

fn spec(id: u32) -> InstrumentSpec {
    InstrumentSpec {
        id,
        symbol: format!("C{id}-USDT"),
        kind: InstrumentKind::Spot,
        base: format!("C{id}"),
        quote: "USDT".into(),
        tick_size: Decimal::new(1, 2),
        lot_size: Decimal::new(1, 4),
        min_size: Decimal::new(1, 3),
        contract_value: Decimal::ONE,
    }
}

fn pre_trade_check(c: &mut Criterion) {
    let (hub, mut commands) = Hub::new((1..=10).map(spec).collect());
    let mut router = Router::new(true);
    for id in 1..=10 {
        router.route(
            &hub,
            VenueEvent::Market(MarketEvent::Ticker {
                instrument: id,
                ts_ms: 1,
                bid: 99.99,
                bid_size: 5.0,
                ask: 100.01,
                ask_size: 5.0,
                last: 100.0,
            }),
        );
    }
    for ccy in ["USDT", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"] {
        let amount = Decimal::from(1_000_000);
        router.route(
            &hub,
            VenueEvent::Balance(BalanceReport {
                currency: ccy.into(),
                total: amount,
                available: amount,
                frozen: Decimal::ZERO,
            }),
        );
    }
    let limits = RiskLimits {
        max_orders_per_sec: 1_000,
        max_open_orders: 1_000,
        max_position: 1_000.0,
        max_gross_exposure: 1e12,
        duplicate_window_ms: 1_000,
        ..RiskLimits::default()
    };
    let slot = hub.register("bench", Grants { instruments: vec!["*".into()], ..Grants::default() }, limits);
    let wide = tradebox::engine::AccountLimits {
        max_orders_per_sec: u32::MAX,
        max_open_orders: 100_000,
        max_position: 1e9,
        max_gross_exposure: 1e15,
        ..Default::default()
    };
    hub.set_account_limits(wide, "bench").expect("valid");
    let intent = |instrument: u32, price: f64| OrderIntent {
        instrument,
        side: Side::Buy,
        kind: OrderKind::Limit,
        price: Some(price),
        size: 0.01,
        reduce_only: false,
    };
    // 10 positions: one filled order per instrument.
    for id in 1..=10 {
        let client_id = hub.place(&slot, intent(id, 99.9)).expect("accepted");
        router.route(
            &hub,
            VenueEvent::Fill(FillReport {
                client_id,
                trade_id: format!("t{id}"),
                instrument: id,
                side: Side::Buy,
                price: Decimal::new(9990, 2),
                size: Decimal::new(1, 2),
                fee: Decimal::ZERO,
                fee_currency: "USDT".into(),
                liquidity: Liquidity::Maker,
                ts_ms: 1,
            }),
        );
    }
    // 50 open orders besides (the filled ones above stay open: 10 of the 50 are those).
    for i in 0..40 {
        hub.place(&slot, intent(1 + i % 10, 99.0 - f64::from(i) * 0.01)).expect("accepted");
    }
    while commands.try_recv().is_ok_and(|c| matches!(c, Command::Place(_))) {}
    assert_eq!(hub.open_orders(slot.id).len(), 50);
    assert_eq!(hub.positions(slot.id).len(), 10);
    // Setting up placed 60 orders at once; from here on the default rates apply.
    // The quote-age check runs on every order, but the windows' clock below moves 100 ms an
    // order while the quote stays where it was set: its limit is set past any run's length.
    let realistic = RiskLimits { max_orders_per_sec: 20, max_quote_age_ms: 1 << 40, ..hub_limits(&slot) };
    hub.set_plugin_limits(&slot, realistic, "bench").expect("valid");
    let account = tradebox::engine::AccountLimits { max_orders_per_sec: 50, ..hub.account_limits() };
    hub.set_account_limits(account, "bench").expect("valid");
    let mut n = 0u64;
    // The windows' clock: a plugin sending 10 orders a second, as a busy real one might (the
    // windows then hold what they would hold in life, not everything a tight loop sends).
    let mut now = hub.clock().moment() + std::time::Duration::from_secs(1);
    let mut g = c.benchmark_group("risk");
    g.bench_function("pre_trade_check_50_open_orders_10_positions", |b| {
        b.iter(|| {
            // A different order each time (price and size), so the duplicate check (1 s
            // window) sees new orders.
            n += 1;
            let price = 98.0 + (n % 150) as f64 * 0.01;
            let size = 0.02 + ((n / 150) % 100_000) as f64 * 0.0001;
            let order = OrderIntent { size, ..intent(3, price) };
            now += std::time::Duration::from_millis(100);
            black_box(hub.check_intent_at(&slot, black_box(order), now)).expect("passes")
        })
    });
    g.finish();
}

fn hub_limits(slot: &tradebox::engine::PluginSlot) -> RiskLimits {
    slot.risk.limits()
}

criterion_group!(benches, pre_trade_check);
criterion_main!(benches);
