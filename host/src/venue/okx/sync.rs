//! The REST loop: reads OKX's view of the account and the market and turns changes into venue
//! events, in the order the engine needs them (fills before the order report that counts them).
//!
//! Each round: new fills (by bill id, so none is missed or repeated), pending orders (state
//! changes of our live orders), the final state of our orders that left the pending list, the
//! orders whose placement outcome is still unknown, tickers and top-5 books of every traded
//! instrument, and on slower beats balances and positions, and a clock sample (the okx client
//! also re-syncs at once when OKX answers 50102). Every read goes through the rate
//! limiter. When the WebSocket feeds arrive (issue "OKX WebSocket") this becomes the
//! reconciliation pass after each reconnect.

use super::limited::{self, Failed, How};
use super::{OkxVenue, Placement, convert};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tradebox_core::{BalanceReport, MarketEvent, OrderReport, OrderStatus, PositionSide, VenueEvent};
use tradebox_okx::OrderRef;
use tradebox_okx::error::codes;
use tradebox_okx::limits::{Endpoint, Request};
use tradebox_okx::rest::{FILLS_PAGE, FillWalk};

struct State {
    fill_cursor: Option<u64>,
    /// The history could not be read at start: the first read that succeeds only sets the
    /// cursor (replaying it would report old fills as new).
    cursor_unknown: bool,
    balances: HashMap<String, BalanceReport>,
    /// Per instrument and position side (two per derivative in long/short mode).
    positions: HashMap<(u32, PositionSide), (Decimal, Decimal)>,
    last_account: Option<Instant>,
    last_clock: Instant,
    last_reconcile: Option<Instant>,
    last_error: Option<String>,
    /// The REST host presented no pinned key: said once, and said again when it does.
    pinned_out: bool,
}

/// Where this run's fills start.
#[derive(Debug, Clone, Copy)]
pub enum FillStart {
    /// After this bill id (`None`: the account has no fills yet).
    After(Option<u64>),
    /// The history could not be read (said in the log).
    Unknown,
}

/// Where the fill history stands now (the newest bill id), read before anything else looks at
/// the account: fills after it are new to this run, fills up to it are history not replayed.
/// One `limit=1` read under the limiter (waiting out throttling like the other start-up reads):
/// the three days behind it are never walked.
pub async fn fill_start(rest: &tradebox_okx::RestClient, limiter: &tradebox_okx::limits::Limiter) -> FillStart {
    match limited::send(limiter, Request::new(Endpoint::Fills, 0), How::STARTING, || rest.newest_fill()).await {
        Ok(newest) => FillStart::After(newest),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the newest fill at start; fills from the next read on are reported, those in between through their orders' state");
            FillStart::Unknown
        }
    }
}

/// Starts the loop from `start` (see [`fill_start`]).
pub fn spawn(venue: &Arc<OkxVenue>, start: FillStart) -> tokio::task::JoinHandle<()> {
    let mut state = State {
        fill_cursor: match start {
            FillStart::After(cursor) => cursor,
            FillStart::Unknown => None,
        },
        cursor_unknown: matches!(start, FillStart::Unknown),
        balances: HashMap::new(),
        positions: HashMap::new(),
        last_account: None,
        last_clock: Instant::now(),
        last_reconcile: None,
        last_error: None,
        pinned_out: false,
    };
    let weak: Weak<OkxVenue> = Arc::downgrade(venue);
    let period = Duration::from_millis(venue.config().poll_ms.max(50));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let asked = {
                let Some(v) = weak.upgrade() else { return };
                tokio::select! {
                    _ = tick.tick() => false,
                    _ = v.reconcile_requested() => true,
                }
            };
            let Some(v) = weak.upgrade() else { return };
            round(&v, &mut state, asked).await;
        }
    })
}

fn note(v: &OkxVenue, state: &mut State, what: &str, e: &tradebox_okx::OkxError) {
    if e.is_pin_mismatch() {
        // Not the network: the REST host is not the one pinned. Nothing was sent, nothing will
        // be until it presents a pinned key; every plugin hears that the link is down, once.
        if !std::mem::replace(&mut state.pinned_out, true) {
            tracing::error!("OKX REST refused: {e}; no request is sent to this host (check [venue.okx.pins])");
            v.emit(VenueEvent::Connectivity { link: "okx-rest".into(), connected: false, detail: e.to_string() });
        }
        return;
    }
    let text = format!("{what}: {e}");
    if state.last_error.as_deref() != Some(&text) {
        tracing::warn!("OKX sync: {text}");
        state.last_error = Some(text);
    }
}

async fn round(v: &OkxVenue, state: &mut State, asked: bool) {
    round_of_reads(v, state, asked).await;
    if state.pinned_out {
        // One public read says whether the host presents a pinned key again.
        let probe = v.limited(Request::new(Endpoint::PublicTime, 0), How::ONCE, || v.rest().sync_clock()).await;
        if probe.is_ok() {
            state.pinned_out = false;
            tracing::info!("OKX REST host presents a pinned key again");
            let detail = "presents a pinned key again".to_string();
            v.emit(VenueEvent::Connectivity { link: "okx-rest".into(), connected: true, detail });
        }
    }
}

async fn round_of_reads(v: &OkxVenue, state: &mut State, asked: bool) {
    if state.last_clock.elapsed() >= Duration::from_millis(v.config().clock_sync_ms.max(1_000)) {
        state.last_clock = Instant::now();
        match v.limited(Request::new(Endpoint::PublicTime, 0), How::ONCE, || v.rest().sync_clock()).await {
            Ok(offset) => tracing::debug!(offset_ms = offset, "OKX clock re-synced"),
            Err(Failed::Okx(e)) => note(v, state, "re-syncing the clock", &e),
            Err(_) => {}
        }
    }
    // With the private feed up, orders and fills arrive as pushes; REST still checks now and
    // then, and at once after a reconnect.
    let private_up = v.ws_up(super::stream::Endpoint::Private);
    let due = !private_up
        || asked
        || state.last_reconcile.is_none_or(|t| t.elapsed() >= Duration::from_millis(v.config().reconcile_ms));
    let mut new_fills = false;
    if due {
        state.last_reconcile = Some(Instant::now());
        new_fills = fills(v, state).await;
        orders(v, state).await;
    }
    if !v.ws_up(super::stream::Endpoint::Public) {
        market(v).await;
    }
    let account_due =
        state.last_account.is_none_or(|t| t.elapsed() >= Duration::from_millis(v.config().account_poll_ms));
    if (account_due && !private_up) || new_fills || asked {
        account(v, state).await;
        state.last_account = Some(Instant::now());
    }
}

async fn fills(v: &OkxVenue, state: &mut State) -> bool {
    if state.cursor_unknown {
        // Where the history stands, as at start: one read, nothing delivered.
        match v.limited(Request::new(Endpoint::Fills, 0), How::ONCE, || v.rest().newest_fill()).await {
            Ok(newest) => {
                state.cursor_unknown = false;
                state.fill_cursor = newest;
            }
            Err(Failed::Okx(e)) => note(v, state, "reading the newest fill", &e),
            Err(_) => {}
        }
        return false;
    }
    // Each page waits for its own permit; a page that fails leaves the cursor where it was, so
    // the next round reads the same fills again (each reported once: `emit_fill`).
    let mut walk = FillWalk::new(state.fill_cursor);
    while let Some(after) = walk.next_page() {
        let page = || v.rest().fills_page(None, after, FILLS_PAGE);
        match v.limited(Request::new(Endpoint::Fills, 0), How::ONCE, page).await {
            Ok(page) => walk.take(page),
            Err(Failed::Okx(e)) => {
                note(v, state, "reading fills", &e);
                return false;
            }
            Err(_) => return false,
        }
    }
    let fills = walk.finish();
    for f in &fills {
        if let Ok(bill) = f.bill_id.parse::<u64>() {
            state.fill_cursor = Some(state.fill_cursor.map_or(bill, |c| c.max(bill)));
        }
        if let Some(report) = convert::fill(v, f) {
            v.emit_fill(&f.ord_id, report);
        }
    }
    !fills.is_empty()
}

async fn orders(v: &OkxVenue, state: &mut State) {
    if v.sent().lock().is_empty() {
        return;
    }
    let read = || v.rest().pending_orders(None, None);
    let pending = match v.limited(Request::new(Endpoint::PendingOrders, 0), How::ONCE, read).await {
        Ok(p) => p,
        Err(Failed::Okx(e)) => return note(v, state, "reading pending orders", &e),
        Err(_) => return,
    };
    let mut open = HashSet::new();
    for d in &pending {
        open.insert(d.cl_ord_id.clone());
        if let Some(report) = convert::report(v, d) {
            v.publish(report);
        }
    }
    // Ours that are no longer pending finished since the last round (or were placed after the
    // list was read, which one query settles either way); outcomes still unknown are asked for
    // by client id.
    let to_check: Vec<(String, u32, String, Option<i64>)> = v
        .sent()
        .lock()
        .iter()
        .filter(|(id, s)| !matches!(s.placement, Placement::Sending { .. }) && !open.contains(*id))
        .map(|(id, s)| {
            let unknown_until = match s.placement {
                Placement::Unknown { until, .. } => Some(until),
                _ => None,
            };
            (id.clone(), s.instrument, s.ord_id.clone(), unknown_until)
        })
        .collect();
    for (client_id, instrument, ord_id, unknown_until) in to_check {
        let Some(symbol) = v.spec(instrument).map(|s| s.symbol.clone()) else { continue };
        let by = if ord_id.is_empty() { OrderRef::ClOrdId(&client_id) } else { OrderRef::OrdId(&ord_id) };
        let read = || v.rest().order_details(&symbol, by);
        match v.limited(Request::new(Endpoint::OrderDetails, instrument), How::ONCE, read).await {
            Ok(d) => {
                if let Some(report) = convert::report(v, &d) {
                    v.publish(report);
                }
            }
            Err(Failed::Okx(e))
                if e.code() == Some(codes::NO_ORDER)
                    && unknown_until.is_some_and(|t| v.rest().clock().now_ms() > t) =>
            {
                // Never placed: OKX dropped it at its expTime. Tell the owner.
                let placement = {
                    let mut sent = v.sent().lock();
                    // Unless a report settled it since the list was read.
                    let unknown =
                        sent.get(&client_id).is_some_and(|s| matches!(s.placement, Placement::Unknown { .. }));
                    if unknown { sent.remove(&client_id).map(|s| s.placement) } else { None }
                };
                if let Some(Placement::Unknown { order: o, .. }) = placement {
                    tracing::info!(%client_id, "settled: the order was not placed");
                    v.emit(VenueEvent::Order(OrderReport {
                        client_id,
                        venue_id: String::new(),
                        instrument,
                        side: o.side,
                        kind: o.kind,
                        price: o.price,
                        size: o.size,
                        filled: Decimal::ZERO,
                        avg_price: None,
                        status: OrderStatus::Rejected,
                        reason: Some("not placed: no answer, and OKX has no such order after its expTime".into()),
                        ts_ms: v.rest().clock().now_ms(),
                    }));
                }
            }
            Err(Failed::Okx(e)) => note(v, state, "reading an order", &e),
            Err(_) => {}
        }
    }
}

async fn market(v: &OkxVenue) {
    for spec in v.specs() {
        if let Ok(t) = v.limited(Request::new(Endpoint::Ticker, 0), How::NOW, || v.rest().ticker(&spec.symbol)).await {
            v.emit(VenueEvent::Market(convert::ticker(spec.id, &t)));
        }
        if let Ok(b) = v.limited(Request::new(Endpoint::Books, 0), How::NOW, || v.rest().books(&spec.symbol, 5)).await {
            let levels = |ls: &[tradebox_okx::model::Level]| {
                ls.iter().map(|l| (l.0.to_f64().unwrap_or(0.0), l.1.to_f64().unwrap_or(0.0))).collect()
            };
            v.emit(VenueEvent::Market(MarketEvent::Book {
                instrument: spec.id,
                ts_ms: b.ts,
                bids: levels(&b.bids),
                asks: levels(&b.asks),
            }));
        }
    }
}

async fn account(v: &OkxVenue, state: &mut State) {
    match v.limited(Request::new(Endpoint::Balance, 0), How::ONCE, || v.rest().balance(&[])).await {
        Ok(b) => {
            for d in &b.details {
                let report = convert::balance(d);
                if state.balances.get(&report.currency) != Some(&report) {
                    state.balances.insert(report.currency.clone(), report.clone());
                    v.emit(VenueEvent::Balance(report));
                }
            }
        }
        Err(Failed::Okx(e)) => note(v, state, "reading balances", &e),
        Err(_) => {}
    }
    match v.limited(Request::new(Endpoint::Positions, 0), How::ONCE, || v.rest().positions(None)).await {
        Ok(positions) => {
            let mut seen = HashSet::new();
            for p in positions.iter().filter_map(|p| convert::position(v, p)) {
                let key = (p.instrument, p.side);
                seen.insert(key);
                if state.positions.get(&key) != Some(&(p.size, p.avg_price)) {
                    state.positions.insert(key, (p.size, p.avg_price));
                    v.emit(VenueEvent::Position(p));
                }
            }
            // A position that is no longer listed is flat.
            let flat: Vec<_> = state.positions.keys().filter(|k| !seen.contains(*k)).copied().collect();
            for (instrument, side) in flat {
                state.positions.remove(&(instrument, side));
                v.emit(VenueEvent::Position(tradebox_core::PositionReport {
                    instrument,
                    side,
                    size: Decimal::ZERO,
                    avg_price: Decimal::ZERO,
                }));
            }
        }
        Err(Failed::Okx(e)) => note(v, state, "reading positions", &e),
        Err(_) => {}
    }
}
