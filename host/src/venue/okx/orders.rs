//! Order requests to OKX that never duplicate an order.
//!
//! - The client order id is minted by the host and recorded (audit log, then the venue's
//!   [`Sent`]) before the request leaves; every retry sends the same id.
//! - A request that certainly did not execute (never sent, 429 / 50011, 50013 busy, 50001
//!   unavailable) is retried after the limiter's jittered back-off, a bounded number of times
//!   (the one way a request is sent: `limited`).
//! - Who an order is for (its plugin's share of the limits, the caller in the audit log) comes
//!   with each request: the placement's order, and the cancel's and the amend's origin.
//! - A placement whose outcome is unknown (timeout, 5xx, a broken connection, an unreadable
//!   answer, 50004) is settled by querying that client order id: found means placed. Not found
//!   after the request's `expTime` has passed means OKX dropped it, so it is reported as not
//!   placed; before that, the REST loop keeps asking. It is never sent again blindly.
//! - 51016 (duplicate client order id) means an earlier attempt got through: it resolves to
//!   that order.

use super::limited::{self, Failed, How, Retry, Wait, Withdrawal};
use super::{OkxVenue, Placement, Sent, convert};
use rust_decimal::Decimal;
use tradebox_core::{InstrumentId, InstrumentKind, InstrumentSpec, NewOrder, Origin, PlaceAck, VenueError};
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

/// A request under the limiter that did not succeed, as a venue error.
pub(crate) fn refused(failed: Failed) -> VenueError {
    match failed {
        Failed::Throttled(e) => throttled(e),
        Failed::Withdrawn => VenueError::Withdrawn,
        Failed::Okx(e) => venue_error(e),
    }
}

/// Whether the exchange may have executed the request although no success came back. An answer
/// that did not parse counts: OKX may have placed the order and said so in a shape we missed.
fn unknown(e: &OkxError) -> bool {
    e.outcome_unknown() || matches!(e, OkxError::Decode { .. })
}

fn caller(origin: Option<&Origin>) -> Option<Caller> {
    origin.map(|o| Caller { name: o.name.clone(), hash: o.hash.clone() })
}

fn spec(v: &OkxVenue, instrument: InstrumentId) -> Result<&InstrumentSpec, VenueError> {
    v.spec(instrument).ok_or_else(|| VenueError::Rejected {
        code: codes::NO_INSTRUMENT.into(),
        message: format!("instrument {instrument} is not traded by this venue"),
    })
}

/// The `expTime` of a request sent now, when the config sets one.
fn exp_time(v: &OkxVenue) -> Option<i64> {
    (v.config().exp_time_ms > 0).then(|| v.rest().clock().now_ms() + v.config().exp_time_ms as i64)
}

/// Places `order`. Returns once OKX accepted it, refused it, or the outcome is settled.
pub async fn place(v: &OkxVenue, order: NewOrder) -> Result<PlaceAck, VenueError> {
    let spec = spec(v, order.instrument)?;
    let body = convert::place_order(spec, &order, &v.trade_modes());
    let client_id = order.client_id.clone();
    let mut request = Request::new(Endpoint::Place, spec.id).cap_exempt(spec.kind == InstrumentKind::Spot);
    if let Some(o) = &order.origin {
        request = request.for_plugin(o.plugin);
    }
    let caller = caller(order.origin.as_ref());
    {
        let mut sent = v.sent().lock();
        // Withdrawn before this task got here (the host's cancel came first): not sent.
        if v.take_early_withdrawal(&client_id) {
            return Err(VenueError::Withdrawn);
        }
        sent.insert(
            client_id.clone(),
            Sent {
                instrument: spec.id,
                ord_id: String::new(),
                tag: body.tag.clone(),
                placement: Placement::Sending { withdrawn: false },
                last: None,
            },
        );
    }
    let forget = |why: VenueError| {
        v.sent().lock().remove(&client_id);
        Err(why)
    };
    let how = How {
        wait: Wait::Bounded,
        retry: Retry::NotExecuted(Some(v.config().max_retries)),
        withdrawal: Some(Withdrawal { venue: v, client_id: &client_id }),
    };
    // The expTime of the last attempt: a lost answer is settled against it.
    let mut last_exp_time = None;
    let body = &body;
    let sent = v
        .limited(request, how, || {
            let opts = CallOpts { exp_time: exp_time(v), caller: caller.clone() };
            last_exp_time = opts.exp_time;
            async move { v.rest().place_order(body, &opts).await }
        })
        .await;
    let exp_time = last_exp_time;
    match sent {
        Ok(ack) => Ok(accepted(v, &client_id, ack.ord_id)),
        Err(Failed::Okx(e)) if e.code() == Some(codes::DUPLICATE_CL_ORD_ID) => {
            // An earlier attempt got through after all: this is that order.
            tracing::info!(%client_id, "51016: an order with this client id exists; resolving to it");
            settle(v, spec, order, exp_time).await
        }
        Err(Failed::Okx(e)) if unknown(&e) => {
            tracing::warn!(%client_id, error = %e, "order outcome unknown: settling by query");
            settle(v, spec, order, exp_time).await
        }
        Err(failed) => forget(refused(failed)),
    }
}

fn accepted(v: &OkxVenue, client_id: &str, ord_id: String) -> PlaceAck {
    if let Some(sent) = v.sent().lock().get_mut(client_id) {
        sent.ord_id = ord_id.clone();
        sent.placement = Placement::Settled;
    }
    PlaceAck { venue_id: ord_id }
}

/// Finds out whether a placement whose answer was lost executed.
async fn settle(
    v: &OkxVenue,
    spec: &InstrumentSpec,
    order: NewOrder,
    exp_time: Option<i64>,
) -> Result<PlaceAck, VenueError> {
    let client_id = order.client_id.as_str();
    if !v.sent().lock().contains_key(client_id) {
        return Err(VenueError::Unavailable("order forgotten while settling".into()));
    }
    // OKX drops the request once its expTime has passed; a little margin for clock error.
    let give_up_after = exp_time.map(|e| e + 2_000);
    let request = Request::new(Endpoint::OrderDetails, spec.id);
    for attempt in 0..8u32 {
        let answer =
            v.limited(request, How::ONCE, || v.rest().order_details(&spec.symbol, OrderRef::ClOrdId(client_id))).await;
        match answer {
            Ok(details) => {
                tracing::info!(%client_id, ord_id = %details.ord_id, "settled: the order was placed");
                return Ok(accepted(v, client_id, details.ord_id));
            }
            Err(Failed::Okx(e)) if e.code() == Some(codes::NO_ORDER) => {
                if give_up_after.is_some_and(|t| v.rest().clock().now_ms() > t) {
                    tracing::info!(%client_id, "settled: the order was not placed");
                    v.sent().lock().remove(client_id);
                    return Err(VenueError::Rejected {
                        code: codes::ENDPOINT_TIMEOUT.into(),
                        message:
                            "not placed: the request got no answer and OKX has no order with this id after its expTime"
                                .into(),
                    });
                }
            }
            Err(Failed::Okx(e)) => tracing::debug!(%client_id, error = %e, "settling: query failed"),
            Err(_) => {}
        }
        limited::backoff(attempt).await;
    }
    // Still open: the REST loop keeps asking until OKX answers either way.
    let until = give_up_after.unwrap_or(i64::MAX);
    let client_id = order.client_id.clone();
    if let Some(sent) = v.sent().lock().get_mut(&client_id) {
        sent.placement = Placement::Unknown { until, order: Box::new(order) };
    }
    Err(VenueError::Unavailable(format!("outcome of {client_id} still unknown; the host keeps checking")))
}

/// How a cancel or an amend is sent: the host's own cancels wait for permits and retry for as
/// long as it takes; a plugin's, within the limiter's bounds.
fn change(v: &OkxVenue, by_host: bool) -> How<'static> {
    if by_host {
        How { wait: Wait::Unbounded, retry: Retry::NotExecuted(None), withdrawal: None }
    } else {
        How { wait: Wait::Bounded, retry: Retry::NotExecuted(Some(v.config().max_retries)), withdrawal: None }
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
    let inst_id = spec(v, instrument)?.symbol.clone();
    let mut request = Request::new(Endpoint::Cancel, instrument);
    if let Some(o) = origin.filter(|_| !by_host) {
        request = request.for_plugin(o.plugin);
    }
    let body = CancelOrder { inst_id, ord_id: None, cl_ord_id: Some(client_id.to_string()) };
    let opts = CallOpts { exp_time: None, caller: caller(origin) };
    match v.limited(request, change(v, by_host), || v.rest().cancel_order(&body, &opts)).await.map_err(OkxError::from) {
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
    let spec = spec(v, instrument)?;
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
    let opts = CallOpts { exp_time: exp_time(v), caller: caller(origin) };
    match v.limited(request, change(v, false), || v.rest().amend_order(&body, &opts)).await {
        Ok(_) => Ok(()),
        Err(failed) => Err(venue_error(failed.into())),
    }
}
