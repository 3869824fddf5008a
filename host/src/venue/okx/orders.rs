//! Order requests to OKX that never duplicate an order.
//!
//! - The client order id is minted by the host and recorded (audit log, then [`Live`]) before
//!   the request leaves; every retry sends the same id.
//! - A request that certainly did not execute (never sent, 429 / 50011, 50013 busy, 50001
//!   unavailable) is retried after the limiter's jittered back-off, a bounded number of times.
//! - A placement whose outcome is unknown (timeout, 5xx, a broken connection, an unreadable
//!   answer, 50004) is settled by querying that client order id: found means placed. Not found
//!   after the request's `expTime` has passed means OKX dropped it, so it is reported as not
//!   placed; before that, the REST loop keeps asking. It is never sent again blindly.
//! - 51016 (duplicate client order id) means an earlier attempt got through: it resolves to
//!   that order.

use super::{Live, OkxVenue, convert};
use rust_decimal::Decimal;
use std::time::Duration;
use tradebox_core::{InstrumentId, InstrumentKind, NewOrder, Origin, PlaceAck, VenueError};
use tradebox_okx::error::codes;
use tradebox_okx::limits::{Endpoint, RateLimited, Request};
use tradebox_okx::model::{AmendOrder, CancelOrder};
use tradebox_okx::{CallOpts, Caller, OkxError, OrderRef};

/// A refusal by the host's own limiter: nothing was sent.
pub fn throttled(e: RateLimited) -> VenueError {
    VenueError::Rejected { code: codes::RATE_LIMIT.into(), message: format!("not sent: {e}") }
}

/// An OKX failure as a venue error: refusals keep OKX's code; anything that leaves the outcome
/// open is `Unavailable`.
pub fn venue_error(e: OkxError) -> VenueError {
    match e.code() {
        Some(code) if !e.outcome_unknown() => VenueError::Rejected { code: code.to_string(), message: e.to_string() },
        _ => VenueError::Unavailable(e.to_string()),
    }
}

/// Failures after which the request certainly did not execute, so sending it again (with the
/// same client order id) is safe.
fn retryable(e: &OkxError) -> bool {
    e.is_rate_limit() || matches!(e, OkxError::NotSent(_)) || e.code() == Some("50001")
}

/// Whether the exchange may have executed the request although no success came back. An answer
/// that did not parse counts: OKX may have placed the order and said so in a shape we missed.
fn unknown(e: &OkxError) -> bool {
    e.outcome_unknown() || matches!(e, OkxError::Decode { .. })
}

fn caller(origin: Option<&Origin>) -> Option<Caller> {
    origin.map(|o| Caller { name: o.name.clone(), hash: o.hash.clone() })
}

async fn backoff(attempt: u32) {
    let ms = 100u64.saturating_mul(1 << attempt.min(6));
    tokio::time::sleep(Duration::from_millis(ms.min(3_000))).await;
}

/// Returns once the host has withdrawn the placement of `client_id` (any withdrawal wakes
/// every waiting placement, which looks at its own flag; the wait is armed before the flag is
/// read, so a withdrawal between the two is not missed).
async fn until_withdrawn(v: &OkxVenue, client_id: &str) {
    loop {
        let notified = v.withdrawals().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if v.live().lock().get(client_id).is_some_and(|l| l.withdrawn) {
            return;
        }
        notified.await;
    }
}

/// Places `order`. Returns once OKX accepted it, refused it, or the outcome is settled.
pub async fn place(v: &OkxVenue, order: NewOrder) -> Result<PlaceAck, VenueError> {
    let spec = v.spec(order.instrument).ok_or_else(|| VenueError::Rejected {
        code: codes::NO_INSTRUMENT.into(),
        message: format!("instrument {} is not traded by this venue", order.instrument),
    })?;
    let body = convert::place_order(spec, &order, &v.trade_modes());
    let client_id = order.client_id.clone();
    let mut request = Request::new(Endpoint::Place, spec.id).cap_exempt(spec.kind == InstrumentKind::Spot);
    if let Some(o) = &order.origin {
        request = request.for_plugin(o.plugin);
    }
    let opts_caller = caller(order.origin.as_ref());
    {
        let mut live = v.live().lock();
        // Withdrawn before this task got here (the host's cancel came first): not sent.
        if v.take_early_withdrawal(&client_id) {
            return Err(VenueError::Withdrawn);
        }
        live.insert(
            client_id.clone(),
            Live {
                instrument: spec.id,
                ord_id: String::new(),
                origin: order.origin.clone(),
                unknown_until: None,
                placing: true,
                withdrawn: false,
                last: None,
                order: order.clone(),
            },
        );
    }
    let forget = |why: VenueError| {
        v.live().lock().remove(&client_id);
        Err(why)
    };
    let mut attempt = 0;
    // Checked before each attempt and again once its permit is granted (the wait for it can be
    // up to `max_wait`): an attempt is sent only while the host has not cancelled the order.
    // Every attempt before this one left nothing at the exchange, or the loop would not be here.
    let withdrawn = || v.live().lock().get(&client_id).is_some_and(|l| l.withdrawn);
    loop {
        // The wait for a permit ends early when the host withdraws the order.
        let acquired = tokio::select! {
            acquired = v.limiter().acquire(&request) => acquired,
            () = until_withdrawn(v, &client_id) => return forget(VenueError::Withdrawn),
        };
        let permit = match acquired {
            Ok(p) => p,
            Err(e) => return forget(throttled(e)),
        };
        if withdrawn() {
            v.limiter().complete(permit);
            return forget(VenueError::Withdrawn);
        }
        let exp_time = (v.config().exp_time_ms > 0).then(|| v.rest().clock().now_ms() + v.config().exp_time_ms as i64);
        let opts = CallOpts { exp_time, caller: opts_caller.clone() };
        let sent = v.rest().place_order(&body, &opts).await;
        v.limiter().complete(permit);
        match sent {
            Ok(ack) => {
                v.limiter().succeeded(&request);
                return Ok(accepted(v, &client_id, ack.ord_id));
            }
            Err(e) if e.code() == Some(codes::DUPLICATE_CL_ORD_ID) => {
                // An earlier attempt got through after all: this is that order.
                tracing::info!(%client_id, attempt, "51016: an order with this client id exists; resolving to it");
                return settle(v, &client_id, exp_time).await;
            }
            Err(e) if retryable(&e) && attempt < v.config().max_retries => {
                if e.is_rate_limit() {
                    v.limiter().penalize(&request);
                } else {
                    tokio::select! {
                        () = backoff(attempt) => {}
                        () = until_withdrawn(v, &client_id) => return forget(VenueError::Withdrawn),
                    }
                }
                attempt += 1;
                tracing::info!(%client_id, attempt, error = %e, "order not executed; retrying with the same client order id");
            }
            Err(e) if unknown(&e) => {
                tracing::warn!(%client_id, error = %e, "order outcome unknown: settling by query");
                return settle(v, &client_id, exp_time).await;
            }
            Err(e) => return forget(venue_error(e)),
        }
    }
}

fn accepted(v: &OkxVenue, client_id: &str, ord_id: String) -> PlaceAck {
    if let Some(live) = v.live().lock().get_mut(client_id) {
        live.ord_id = ord_id.clone();
        live.placing = false;
        live.unknown_until = None;
    }
    PlaceAck { venue_id: ord_id }
}

/// Finds out whether a placement whose answer was lost executed.
async fn settle(v: &OkxVenue, client_id: &str, exp_time: Option<i64>) -> Result<PlaceAck, VenueError> {
    let Some(instrument) = v.live().lock().get(client_id).map(|l| l.instrument) else {
        return Err(VenueError::Unavailable("order forgotten while settling".into()));
    };
    let Some(symbol) = v.spec(instrument).map(|s| s.symbol.clone()) else {
        return Err(VenueError::Unavailable("unknown instrument while settling".into()));
    };
    // OKX drops the request once its expTime has passed; a little margin for clock error.
    let give_up_after = exp_time.map(|e| e + 2_000);
    for attempt in 0..8u32 {
        let query = v.limited(
            Request::new(Endpoint::OrderDetails, instrument),
            v.rest().order_details(&symbol, OrderRef::ClOrdId(client_id)),
        );
        let Ok(answer) = query.await else {
            backoff(attempt).await;
            continue;
        };
        match answer {
            Ok(details) => {
                tracing::info!(%client_id, ord_id = %details.ord_id, "settled: the order was placed");
                return Ok(accepted(v, client_id, details.ord_id));
            }
            Err(e) if e.code() == Some(codes::NO_ORDER) => {
                if give_up_after.is_some_and(|t| v.rest().clock().now_ms() > t) {
                    tracing::info!(%client_id, "settled: the order was not placed");
                    v.live().lock().remove(client_id);
                    return Err(VenueError::Rejected {
                        code: codes::ENDPOINT_TIMEOUT.into(),
                        message:
                            "not placed: the request got no answer and OKX has no order with this id after its expTime"
                                .into(),
                    });
                }
            }
            Err(e) => tracing::debug!(%client_id, error = %e, "settling: query failed"),
        }
        backoff(attempt).await;
    }
    // Still open: the REST loop keeps asking until OKX answers either way.
    if let Some(live) = v.live().lock().get_mut(client_id) {
        live.placing = false;
        live.unknown_until = Some(give_up_after.unwrap_or(i64::MAX));
    }
    Err(VenueError::Unavailable(format!("outcome of {client_id} still unknown; the host keeps checking")))
}

fn symbol_of(v: &OkxVenue, instrument: InstrumentId) -> Result<String, VenueError> {
    v.spec(instrument).map(|s| s.symbol.clone()).ok_or_else(|| VenueError::Rejected {
        code: codes::NO_INSTRUMENT.into(),
        message: format!("instrument {instrument} is not traded by this venue"),
    })
}

/// A request about an existing order.
enum Change<'a> {
    Cancel(&'a CancelOrder),
    Amend(&'a AmendOrder),
}

/// Sends a change that is safe to repeat until it certainly executed or was refused.
async fn with_retries(
    v: &OkxVenue,
    request: Request,
    change: Change<'_>,
    opts: &CallOpts,
    patient: bool,
) -> Result<tradebox_okx::model::OrderAck, OkxError> {
    let mut attempt = 0;
    loop {
        let permit = match v.limiter().acquire(&request).await {
            Ok(permit) => permit,
            // The host's own cancels (the kill switch among them) are never dropped for a
            // wait: they queue for the next permit, however many there are (a halt of more
            // orders on one instrument than its window allows waits a window per batch).
            Err(tradebox_okx::limits::RateLimited::TooLong { retry_after, .. }) if patient => {
                tokio::time::sleep(retry_after.max(std::time::Duration::from_millis(1))).await;
                continue;
            }
            Err(e) => {
                return Err(OkxError::RateLimited { code: codes::RATE_LIMIT.into(), msg: format!("not sent: {e}") });
            }
        };
        let sent = match change {
            Change::Cancel(body) => v.rest().cancel_order(body, opts).await,
            Change::Amend(body) => v.rest().amend_order(body, opts).await,
        };
        v.limiter().complete(permit);
        match sent {
            Ok(t) => {
                v.limiter().succeeded(&request);
                return Ok(t);
            }
            // The host's cancels retry for as long as the exchange says "not executed".
            Err(e) if retryable(&e) && (patient || attempt < v.config().max_retries) => {
                if e.is_rate_limit() {
                    v.limiter().penalize(&request);
                } else {
                    backoff(attempt).await;
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Cancels an order by client id. Cancels have their own rate-limit buckets, so new orders
/// never starve them. "Already finished" (51400) and "already being cancelled" (51410) are not
/// errors: the order is gone, or going, either way.
/// A cancel `by_host` (kill switch, breaker, unload) is not charged to the owner's share; its
/// `origin` still names the owner in the audit log.
pub async fn cancel(
    v: &OkxVenue,
    instrument: InstrumentId,
    client_id: &str,
    origin: Option<&Origin>,
    by_host: bool,
) -> Result<(), VenueError> {
    let inst_id = symbol_of(v, instrument)?;
    let mut request = Request::new(Endpoint::Cancel, instrument);
    if let Some(o) = origin.filter(|_| !by_host) {
        request = request.for_plugin(o.plugin);
    }
    let body = CancelOrder { inst_id, ord_id: None, cl_ord_id: Some(client_id.to_string()) };
    let opts = CallOpts { exp_time: None, caller: caller(origin) };
    match with_retries(v, request, Change::Cancel(&body), &opts, by_host).await {
        Ok(_) => Ok(()),
        Err(e) if e.cancel_moot() => Ok(()),
        Err(e) => Err(venue_error(e)),
    }
}

/// Amends price and/or total size. An amend that may or may not have applied is settled by
/// the REST loop's next read of the order, which reports whatever OKX holds.
pub async fn amend(
    v: &OkxVenue,
    instrument: InstrumentId,
    client_id: &str,
    new_price: Option<Decimal>,
    new_size: Option<Decimal>,
    origin: Option<&Origin>,
) -> Result<(), VenueError> {
    let spec = v.spec(instrument).ok_or_else(|| VenueError::Rejected {
        code: codes::NO_INSTRUMENT.into(),
        message: format!("instrument {instrument} is not traded by this venue"),
    })?;
    let mut request = Request::new(Endpoint::Amend, instrument).cap_exempt(spec.kind == InstrumentKind::Spot);
    if let Some(o) = origin {
        request = request.for_plugin(o.plugin);
    }
    let body = AmendOrder {
        inst_id: spec.symbol.clone(),
        ord_id: None,
        cl_ord_id: Some(client_id.to_string()),
        cxl_on_fail: None,
        req_id: None,
        new_sz: new_size,
        new_px: new_price,
    };
    let exp_time = (v.config().exp_time_ms > 0).then(|| v.rest().clock().now_ms() + v.config().exp_time_ms as i64);
    let opts = CallOpts { exp_time, caller: caller(origin) };
    with_retries(v, request, Change::Amend(&body), &opts, false).await.map(|_| ()).map_err(venue_error)
}
