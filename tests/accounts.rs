//! Every kind of OKX account a user may bring, against `tradebox sim` set up as that account:
//! the four account modes (acctLv 1 spot, 2 futures, 3 multi-currency margin, 4 portfolio
//! margin), each in both position modes. Each account places, amends and cancels the spot and
//! swap orders its mode allows, with the `tdMode` and `posSide` OKX wants (the simulator
//! refuses any other with OKX's codes), keeps its long and short positions apart in long/short
//! mode, and is told at start-up, in words, what it cannot trade.

use std::sync::Arc;
use tradebox::engine::{Grants, OrderIntent, PluginSlot, RiskLimits};
use tradebox::venue::okx::{MarginMode, OkxVenue, OkxVenueError};
use tradebox_core::{InstrumentId, OrderKind, OrderStatus, PositionSide, Side, Venue};
use tradebox_e2e::okx::{Rig, credentials, okx_config, rig_on, sim_with, wait_for};
use tradebox_okx::OrderRef;
use tradebox_okx::limits::{Limiter, LimiterConfig};
use tradebox_okx::model::PositionMode;
use tradebox_sim::server::Faults;

/// A simulator whose keys belong to an account in `acct_lv` and `mode`.
async fn account(acct_lv: u8, mode: PositionMode) -> tradebox_sim::server::SimServer {
    sim_with(Faults::default(), |c| {
        for k in &mut c.keys {
            k.acct_lv = acct_lv;
            k.pos_mode = mode;
        }
    })
    .await
}

/// A gateway user of the test's own with a wide price band, subscribed to the tickers of
/// `symbols` once each has a price (the risk check needs a reference).
async fn trader(r: &Rig, symbols: &[&str]) -> Arc<PluginSlot> {
    let grants = Grants { instruments: vec!["*".into()], ..Grants::default() };
    let risk = RiskLimits {
        max_orders_per_sec: 100,
        max_open_orders: 100,
        max_order_notional: 1e9,
        price_band_pct: 50.0,
        duplicate_window_ms: 0,
        ..RiskLimits::default()
    };
    let slot = r.host.hub().register("trader", grants, risk);
    for symbol in symbols {
        let id = instrument(r, symbol);
        r.host.hub().subscribe(&slot, id, tradebox_core::Channel::Tickers).expect("granted");
        wait_for("a price", || r.host.hub().quote(id).is_some()).await;
    }
    slot
}

fn instrument(r: &Rig, symbol: &str) -> InstrumentId {
    r.host.hub().instrument_by_symbol(symbol).expect("configured").id
}

fn mid(r: &Rig, id: InstrumentId) -> f64 {
    r.host.hub().quote(id).and_then(|q| q.mid()).expect("a price")
}

fn order(
    id: InstrumentId,
    side: Side,
    kind: OrderKind,
    price: Option<f64>,
    size: f64,
    reduce_only: bool,
) -> OrderIntent {
    OrderIntent { instrument: id, side, kind, price, size, reduce_only }
}

async fn settled(r: &Rig, client_id: &str, status: OrderStatus) {
    wait_for(&format!("{client_id} {status:?}"), || {
        r.host.hub().order(client_id).is_some_and(|t| t.report.status == status)
    })
    .await;
}

/// Waits for the venue's answer to a placement; fails on a refusal, with its reason.
async fn acknowledged(r: &Rig, client_id: &str) {
    let answered = |t: &tradebox::engine::TrackedOrder| !t.report.venue_id.is_empty() || t.report.status.is_terminal();
    wait_for("the venue's answer", || r.host.hub().order(client_id).is_some_and(|t| answered(&t))).await;
    let t = r.host.hub().order(client_id).expect("tracked");
    assert_ne!(t.report.status, OrderStatus::Rejected, "{client_id} refused: {:?}", t.report.reason);
}

/// A resting limit buy well below the market: placed (with the expected `tdMode` and
/// `posSide` at the exchange), amended lower, cancelled.
async fn place_amend_cancel(r: &Rig, slot: &PluginSlot, symbol: &str, td_mode: &str, pos_side: &str) {
    let id = instrument(r, symbol);
    let size = if symbol.ends_with("-SWAP") { 1.0 } else { 0.001 };
    let price = (mid(r, id) * 0.8).round();
    let client_id =
        r.host.hub().place(slot, order(id, Side::Buy, OrderKind::Limit, Some(price), size, false)).expect("accepted");
    acknowledged(r, &client_id).await;
    let d = r.venue.rest().order_details(symbol, OrderRef::ClOrdId(&client_id)).await.expect("on the exchange");
    assert_eq!((d.td_mode.as_str(), d.pos_side.as_str()), (td_mode, pos_side), "{symbol}");
    r.host.hub().amend(slot, &client_id, Some(price - 10.0), None).expect("amend accepted");
    wait_for("the amend to apply", || {
        let now = r.host.hub().order(&client_id).and_then(|t| t.report.price);
        now.and_then(|p| rust_decimal::prelude::ToPrimitive::to_f64(&p)) == Some(price - 10.0)
    })
    .await;
    r.host.hub().cancel(slot, &client_id).expect("cancel accepted");
    settled(r, &client_id, OrderStatus::Canceled).await;
}

/// Market orders on the swap: buy 2 (long), sell 1 without reduce-only, sell 1 reduce-only.
/// Net mode nets them out to flat; long/short mode holds a long and a short of 1 each.
async fn swap_positions(r: &Rig, slot: &PluginSlot, mode: PositionMode) {
    let swap = instrument(r, "BTC-USDT-SWAP");
    for (side, size, reduce_only) in [(Side::Buy, 2.0, false), (Side::Sell, 1.0, false), (Side::Sell, 1.0, true)] {
        let id =
            r.host.hub().place(slot, order(swap, side, OrderKind::Market, None, size, reduce_only)).expect("accepted");
        settled(r, &id, OrderStatus::Filled).await;
    }
    // The simulator moved its positions with each fill before it reported the order filled.
    let positions = r.venue.positions().await.expect("positions");
    let mut rows: Vec<(PositionSide, String)> =
        positions.iter().map(|p| (p.side, p.size.normalize().to_string())).collect();
    rows.sort();
    match mode {
        PositionMode::Net => assert!(rows.is_empty(), "net mode nets to flat: {rows:?}"),
        PositionMode::LongShort => assert_eq!(
            rows,
            vec![(PositionSide::Long, "1".to_string()), (PositionSide::Short, "-1".to_string())],
            "a long and a short, side by side"
        ),
    }
    // The plugin is shown one position: long 1 and short 1 make 0, as in net mode.
    let shown = r.host.hub().positions(slot.id).into_iter().find(|(i, _)| *i == swap).expect("a swap position").1;
    assert!(shown.size.is_zero(), "{shown:?}");
}

async fn trades_what_it_allows(acct_lv: u8, mode: PositionMode, margin: MarginMode) {
    let sim = account(acct_lv, mode).await;
    let swaps = acct_lv >= 2;
    if !swaps {
        // Told at start-up, in words, before anything trades.
        let limiter = Arc::new(Limiter::new(LimiterConfig::default()));
        let err = OkxVenue::connect(okx_config(&sim), credentials("read_only,trade"), limiter, None)
            .await
            .expect_err("a spot-mode account cannot trade the swap");
        assert!(matches!(err, OkxVenueError::AccountMode(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("Spot mode") && text.contains("51010") && text.contains("BTC-USDT-SWAP"), "{text}");
    }
    let r = rig_on(sim, |c| {
        c.margin_mode = margin;
        if !swaps {
            c.instruments.retain(|s| !s.ends_with("-SWAP"));
        }
    })
    .await;
    let modes = r.venue.trade_modes();
    assert_eq!((modes.level.code(), modes.positions), (acct_lv.to_string().as_str(), mode));
    let symbols: &[&str] = if swaps { &["BTC-USDT", "BTC-USDT-SWAP"] } else { &["BTC-USDT"] };
    let slot = trader(&r, symbols).await;
    let spot_td = if acct_lv >= 3 { "cross" } else { "cash" };
    place_amend_cancel(&r, &slot, "BTC-USDT", spot_td, "").await;
    if swaps {
        let pos_side = if mode == PositionMode::Net { "net" } else { "long" };
        place_amend_cancel(&r, &slot, "BTC-USDT-SWAP", margin.td_mode(), pos_side).await;
        swap_positions(&r, &slot, mode).await;
    }
    r.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_mode_trades_spot_and_refuses_a_swap_at_start() {
    trades_what_it_allows(1, PositionMode::Net, MarginMode::Cross).await;
    trades_what_it_allows(1, PositionMode::LongShort, MarginMode::Cross).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_mode_trades_spot_for_cash_and_swaps_in_both_position_modes() {
    trades_what_it_allows(2, PositionMode::Net, MarginMode::Cross).await;
    trades_what_it_allows(2, PositionMode::LongShort, MarginMode::Isolated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_currency_margin_trades_spot_on_cross_and_swaps_in_both_position_modes() {
    trades_what_it_allows(3, PositionMode::Net, MarginMode::Isolated).await;
    trades_what_it_allows(3, PositionMode::LongShort, MarginMode::Cross).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portfolio_margin_trades_spot_on_cross_and_swaps_in_both_position_modes() {
    trades_what_it_allows(4, PositionMode::Net, MarginMode::Cross).await;
    trades_what_it_allows(4, PositionMode::LongShort, MarginMode::Isolated).await;
}
