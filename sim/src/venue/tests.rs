use super::*;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A quiet market: one BTC-USDT spot and one swap, no random taker flow.
fn venue() -> (Arc<SimVenue>, mpsc::UnboundedReceiver<VenueEvent>) {
    let mut config = SimConfig::demo();
    config.instruments.retain(|i| i.symbol != "ETH-USDT");
    for i in &mut config.instruments {
        i.taker_probability = 0.0;
    }
    let v = SimVenue::new(config).unwrap();
    let rx = v.take_events().unwrap();
    (v, rx)
}

const BTC: InstrumentId = 1;
const SWAP: InstrumentId = 2;

fn order(id: &str, instrument: InstrumentId, side: Side, kind: OrderKind, price: Option<&str>, size: &str) -> NewOrder {
    NewOrder {
        client_id: id.into(),
        instrument,
        side,
        kind,
        price: price.map(d),
        size: d(size),
        reduce_only: false,
        leg: tradebox_core::PositionSide::Net,
        origin: None,
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<VenueEvent>) -> Vec<VenueEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

fn reports(events: &[VenueEvent], id: &str) -> Vec<OrderReport> {
    events
        .iter()
        .filter_map(|e| if let VenueEvent::Order(r) = e { Some(r.clone()) } else { None })
        .filter(|r| r.client_id == id)
        .collect()
}

fn fills(events: &[VenueEvent], id: &str) -> Vec<FillReport> {
    events
        .iter()
        .filter_map(|e| if let VenueEvent::Fill(f) = e { Some(f.clone()) } else { None })
        .filter(|f| f.client_id == id)
        .collect()
}

fn best(v: &SimVenue, instrument: InstrumentId) -> (Decimal, Decimal) {
    let s = v.state.lock();
    let inst = &s.instruments[instrument as usize - 1];
    let (b, a) = inst.book.best();
    (inst.price(b.unwrap()), inst.price(a.unwrap()))
}

async fn balance(v: &SimVenue, ccy: &str) -> BalanceReport {
    v.balances().await.unwrap().into_iter().find(|b| b.currency == ccy).unwrap()
}

#[tokio::test]
async fn market_buy_takes_liquidity_and_moves_balances() {
    let (v, mut rx) = venue();
    let (_, ask) = best(&v, BTC);
    v.place(order("m1", BTC, Side::Buy, OrderKind::Market, None, "0.1")).await.unwrap();
    let events = drain(&mut rx);
    let f = fills(&events, "m1");
    assert_eq!(f.iter().map(|f| f.size).sum::<Decimal>(), d("0.1"));
    assert!(f.iter().all(|f| f.price >= ask && f.liquidity == Liquidity::Taker));
    let last = reports(&events, "m1").pop().unwrap();
    assert_eq!(last.status, OrderStatus::Filled);
    let cost: Decimal = f.iter().map(|f| f.price * f.size + f.fee).sum();
    assert_eq!(balance(&v, "USDT").await.total, d("100000") - cost);
    assert_eq!(balance(&v, "BTC").await.total, d("1.1"));
    assert!(events.iter().any(|e| matches!(e, VenueEvent::Market(MarketEvent::Trade { .. }))));
}

#[tokio::test]
async fn resting_buy_reserves_quote_and_fills_as_the_market_walks_down() {
    let (v, mut rx) = venue();
    let (bid, _) = best(&v, BTC);
    let price = bid - d("30");
    v.place(order("r1", BTC, Side::Buy, OrderKind::Limit, Some(&price.to_string()), "0.01")).await.unwrap();
    assert_eq!(balance(&v, "USDT").await.frozen, price * d("0.01"));
    let mut filled = false;
    // A seeded walk of ~2 bps a step crosses 30 USDT (5 bps) in well under 10,000 steps.
    for _ in 0..10_000 {
        v.step();
        let events = drain(&mut rx);
        if reports(&events, "r1").iter().any(|r| r.status == OrderStatus::Filled) {
            let f = fills(&events, "r1");
            assert!(f.iter().all(|f| f.price == price && f.liquidity == Liquidity::Maker));
            filled = true;
            break;
        }
    }
    assert!(filled, "the resting order never filled");
    assert_eq!(balance(&v, "USDT").await.frozen, Decimal::ZERO);
}

#[tokio::test]
async fn post_only_that_would_cross_is_cancelled() {
    let (v, mut rx) = venue();
    let (_, ask) = best(&v, BTC);
    v.place(order("p1", BTC, Side::Buy, OrderKind::PostOnly, Some(&ask.to_string()), "0.01")).await.unwrap();
    let events = drain(&mut rx);
    assert!(fills(&events, "p1").is_empty());
    assert_eq!(reports(&events, "p1").last().unwrap().status, OrderStatus::Canceled);
    assert_eq!(balance(&v, "USDT").await.frozen, Decimal::ZERO);
}

#[tokio::test]
async fn fok_never_fills_partly_and_ioc_cancels_the_rest() {
    let (v, mut rx) = venue();
    let (_, ask) = best(&v, BTC);
    // The best level holds 0.25-0.75 BTC: 50 BTC at the best ask cannot fill.
    v.place(order("f1", BTC, Side::Buy, OrderKind::Fok, Some(&ask.to_string()), "50")).await.unwrap_err();
    // (50 BTC at ~60k needs 3M USDT: insufficient balance is checked first.)
    v.place(order("f2", BTC, Side::Buy, OrderKind::Fok, Some(&ask.to_string()), "1")).await.unwrap();
    let events = drain(&mut rx);
    assert!(fills(&events, "f2").is_empty());
    assert_eq!(reports(&events, "f2").last().unwrap().status, OrderStatus::Canceled);

    v.place(order("i1", BTC, Side::Buy, OrderKind::Ioc, Some(&ask.to_string()), "1")).await.unwrap();
    let events = drain(&mut rx);
    let got: Decimal = fills(&events, "i1").iter().map(|f| f.size).sum();
    assert!(got > Decimal::ZERO && got < d("1"), "partial fill expected, got {got}");
    let last = reports(&events, "i1").pop().unwrap();
    assert_eq!((last.status, last.filled), (OrderStatus::Canceled, got));
    assert_eq!(balance(&v, "USDT").await.frozen, Decimal::ZERO);
}

#[tokio::test]
async fn bad_orders_get_okx_codes() {
    let (v, _rx) = venue();
    let code = |r: Result<PlaceAck, VenueError>| match r {
        Err(VenueError::Rejected { code, .. }) => code,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(code(v.place(order("a", BTC, Side::Buy, OrderKind::Limit, Some("100.05"), "0.01")).await), "51000");
    assert_eq!(code(v.place(order("a", BTC, Side::Buy, OrderKind::Limit, Some("100"), "0.000001")).await), "51020");
    assert_eq!(code(v.place(order("a", BTC, Side::Buy, OrderKind::Limit, Some("100"), "2000")).await), "51008");
    assert_eq!(code(v.place(order("a", 9, Side::Buy, OrderKind::Limit, Some("100"), "1")).await), "51001");
    assert_eq!(code(v.place(order("bad-id", BTC, Side::Buy, OrderKind::Limit, Some("100"), "0.01")).await), "51000");
    v.place(order("a", BTC, Side::Buy, OrderKind::Limit, Some("100"), "0.01")).await.unwrap();
    assert_eq!(code(v.place(order("a", BTC, Side::Buy, OrderKind::Limit, Some("100"), "0.01")).await), "51016");
    assert!(matches!(v.cancel(BTC, "nope", None).await, Err(VenueError::Rejected { code, .. }) if code == "51400"));
}

#[tokio::test]
async fn amend_moves_price_and_size() {
    let (v, mut rx) = venue();
    let (bid, ask) = best(&v, BTC);
    let low = (bid - d("100")).to_string();
    v.place(order("a1", BTC, Side::Buy, OrderKind::Limit, Some(&low), "0.02")).await.unwrap();
    v.amend(BTC, "a1", None, Some(d("0.03")), None).await.unwrap();
    assert_eq!(balance(&v, "USDT").await.frozen, d(&low) * d("0.03"));
    // Moving the price through the ask makes it trade.
    v.amend(BTC, "a1", Some(ask), None, None).await.unwrap();
    let events = drain(&mut rx);
    assert!(!fills(&events, "a1").is_empty());
    // A new size at or below what filled completes the order.
    let filled = reports(&events, "a1").last().unwrap().filled;
    if reports(&events, "a1").last().unwrap().status != OrderStatus::Filled {
        v.amend(BTC, "a1", None, Some(filled), None).await.unwrap();
        assert_eq!(reports(&drain(&mut rx), "a1").last().unwrap().status, OrderStatus::Filled);
    }
    assert!(
        matches!(v.amend(BTC, "a1", None, Some(d("1")), None).await, Err(VenueError::Rejected { code, .. }) if code == "51503")
    );
}

#[tokio::test]
async fn our_own_orders_never_trade_with_each_other() {
    let (v, mut rx) = venue();
    let (_, ask) = best(&v, BTC);
    let inside = (ask - d("0.1")).to_string();
    v.place(order("s1", BTC, Side::Sell, OrderKind::Limit, Some(&inside), "0.01")).await.unwrap();
    v.place(order("b1", BTC, Side::Buy, OrderKind::Limit, Some(&inside), "0.01")).await.unwrap();
    let events = drain(&mut rx);
    assert!(fills(&events, "s1").is_empty());
    assert_eq!(reports(&events, "s1").last().unwrap().status, OrderStatus::Canceled);
    assert_eq!(reports(&events, "b1").last().unwrap().status, OrderStatus::Live);
}

#[tokio::test]
async fn swap_positions_realise_pnl_and_reduce_only_is_enforced() {
    let (v, mut rx) = venue();
    let mut reduce = order("r0", SWAP, Side::Sell, OrderKind::Market, None, "1");
    reduce.reduce_only = true;
    assert!(matches!(v.place(reduce).await, Err(VenueError::Rejected { code, .. }) if code == "51169"));
    v.place(order("l1", SWAP, Side::Buy, OrderKind::Market, None, "10")).await.unwrap();
    let positions = v.positions().await.unwrap();
    assert_eq!(positions[0].size, d("10"));
    let usdt_before = balance(&v, "USDT").await.total;
    let mut close = order("c1", SWAP, Side::Sell, OrderKind::Market, None, "10");
    close.reduce_only = true;
    v.place(close).await.unwrap();
    assert!(v.positions().await.unwrap().is_empty());
    let events = drain(&mut rx);
    let entry: Decimal = fills(&events, "l1").iter().map(|f| f.price * f.size).sum::<Decimal>() / d("10");
    let exit_fills = fills(&events, "c1");
    let exit: Decimal = exit_fills.iter().map(|f| f.price * f.size).sum::<Decimal>() / d("10");
    let fees: Decimal = exit_fills.iter().map(|f| f.fee).sum();
    let pnl = (exit - entry) * d("10") * d("0.01");
    assert_eq!(balance(&v, "USDT").await.total, usdt_before + pnl - fees);
}

#[test]
fn same_seed_same_market() {
    let run = || {
        let v = SimVenue::new(SimConfig::demo()).unwrap();
        let mut rx = v.take_events().unwrap();
        for _ in 0..200 {
            v.step();
        }
        drain(&mut rx)
            .into_iter()
            .filter_map(|e| match e {
                VenueEvent::Market(MarketEvent::Ticker { instrument, bid, ask, last, .. }) => {
                    Some((instrument, bid, ask, last))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.len(), 600);
    assert_eq!(a, b);
}

#[test]
fn bad_config_is_named() {
    let mut config = SimConfig::demo();
    config.instruments[1].min_size = d("0.0000015");
    let err = SimVenue::new(config).err().unwrap().to_string();
    assert!(err.contains("ETH-USDT") && err.contains("min_size"), "{err}");
}

#[test]
fn a_replayed_market_follows_the_recorded_candles() {
    let file = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../okx/tests/data/hummingbot_rest_market_candles_btc_usdt_1h.json");
    let prices = replay::load(&file).expect("candles");
    let mut config = SimConfig::demo();
    config.instruments.retain(|i| i.symbol == "BTC-USDT");
    config.instruments[0].replay = Some(file);
    let v = SimVenue::new(config).expect("replay venue");
    for expected in prices.iter().chain(prices.iter().take(3)) {
        v.step();
        let (bid, ask) = best(&v, BTC);
        let mid = ((bid + ask) / Decimal::TWO).to_f64().unwrap();
        assert!((mid - expected).abs() <= 1.0, "mid {mid} should follow the replay ({expected})");
    }
    let mut bad = SimConfig::demo();
    bad.instruments[0].replay = Some("no-such-file.json".into());
    let err = SimVenue::new(bad).err().expect("refused").to_string();
    assert!(err.contains("no-such-file.json"), "{err}");
}

#[tokio::test]
async fn timestamps_read_the_clock_it_was_given() {
    let mut config = SimConfig::demo();
    config.instruments.retain(|i| i.symbol != "ETH-USDT");
    let (clock, time) = Clock::virtual_at(1_000);
    let v = SimVenue::with_clock(config, clock).unwrap();
    let mut rx = v.take_events().unwrap();
    let (_, ask) = best(&v, BTC);
    v.place(order("c1", BTC, Side::Buy, OrderKind::Limit, Some("1000"), "0.01")).await.unwrap();
    assert_eq!(reports(&drain(&mut rx), "c1").pop().unwrap().ts_ms, 1_000);
    time.advance_to(2_000);
    v.place(order("c2", BTC, Side::Buy, OrderKind::Market, None, "0.01")).await.unwrap();
    let events = drain(&mut rx);
    assert!(fills(&events, "c2").iter().all(|f| f.ts_ms == 2_000 && f.price >= ask));
    assert_eq!(reports(&events, "c2").pop().unwrap().ts_ms, 2_000);
    assert_eq!(v.snapshot(BTC, 1).unwrap().ts_ms, 2_000);
    assert_eq!(v.clock().now_ms(), 2_000);
}
