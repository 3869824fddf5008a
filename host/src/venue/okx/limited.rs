//! The one way the OKX venue sends a request: under OKX's rate limits as the host keeps them
//! ([`tradebox_okx::limits`]).
//!
//! A request's permits (its endpoint's, per instrument where OKX counts so; the sub-account cap
//! on new and amended orders; the plugin's share of both) are taken before it goes and
//! completed when its answer arrives, so that they count until OKX has certainly counted the
//! request. Requests differ only in how long they may wait for their permits ([`Wait`]), what
//! they do when OKX answers that they did not execute ([`Retry`]), and whether the host may
//! withdraw them meanwhile (a placement: [`Withdrawal`]); those are the parts of [`How`].

use super::OkxVenue;
use std::future::Future;
use std::time::Duration;
use tradebox_okx::OkxError;
use tradebox_okx::error::codes;
use tradebox_okx::limits::{Limiter, Permit, RateLimited, Request};

/// How long a request may wait for its permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not at all: a round of market data without permits skips the read (the next round
    /// reads again), so that polling never queues behind orders.
    Never,
    /// Up to the limiter's `max_wait`; past it the request is refused and nothing is sent.
    Bounded,
    /// As long as it takes: the host's own cancels (the kill switch among them) are never
    /// dropped for a wait; a halt of more orders on one instrument than its window allows
    /// waits a window per batch.
    Unbounded,
    /// Up to `max_wait`, then sent without permits: a start that fails because the host's own
    /// limiter is busy would help no one; OKX's answer decides, and throttling is waited out
    /// ([`Retry::Throttled`]).
    OrSend,
}

/// What a request does after an answer that says it did not execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Nothing: the caller hears of every failure (reads are made again on the next round).
    Never,
    /// Sent again, the same bytes (an order keeps its client id), `Some(n)` times or until it
    /// executes or fails otherwise: after 50011 / 429 once the endpoint's bucket has served
    /// its back-off (the bucket is closed for it, so other requests wait too); after "not
    /// sent" or 50001 following a growing pause.
    NotExecuted(Option<u32>),
    /// Start-up: after 50011 / 429 only, following a pause of 250 ms that doubles up to 4 s,
    /// six times: other clients on the same IP or account share OKX's limits, and the start
    /// waits them out instead of failing.
    Throttled,
}

/// How one request is sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct How<'a> {
    /// How long it may wait for permits.
    pub wait: Wait,
    /// What it does after "did not execute".
    pub retry: Retry,
    /// The placement the host may withdraw while it waits for permits or for a retry.
    pub withdrawal: Option<Withdrawal<'a>>,
}

impl How<'static> {
    /// A read: waits its turn, sent once.
    pub const ONCE: Self = Self { wait: Wait::Bounded, retry: Retry::Never, withdrawal: None };
    /// Market data polled each round: now or not at all.
    pub const NOW: Self = Self { wait: Wait::Never, retry: Retry::Never, withdrawal: None };
    /// The start-up's reads and cancels.
    pub const STARTING: Self = Self { wait: Wait::OrSend, retry: Retry::Throttled, withdrawal: None };
}

/// A placement the host may withdraw before it is sent ([`tradebox_core::Venue::withdraw`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Withdrawal<'a> {
    /// The venue that keeps the flag.
    pub venue: &'a OkxVenue,
    /// The placement's client order id.
    pub client_id: &'a str,
}

impl Withdrawal<'_> {
    fn withdrawn(&self) -> bool {
        self.venue.sent().lock().get(self.client_id).is_some_and(|s| s.placement.withdrawn())
    }

    /// Returns once the host has withdrawn the placement (any withdrawal wakes every waiting
    /// placement, which looks at its own flag; the wait is armed before the flag is read, so a
    /// withdrawal between the two is not missed).
    async fn until_withdrawn(&self) {
        loop {
            let notified = self.venue.withdrawals().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.withdrawn() {
                return;
            }
            notified.await;
        }
    }
}

/// Never resolves without a withdrawal to wait for.
async fn until_withdrawn(withdrawal: Option<Withdrawal<'_>>) {
    match withdrawal {
        Some(w) => w.until_withdrawn().await,
        None => std::future::pending().await,
    }
}

/// Why a request under the limiter did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failed {
    /// The host's limiter gave no permits in time: nothing was sent.
    #[error(transparent)]
    Throttled(RateLimited),
    /// The host withdrew the placement before it was sent.
    #[error("withdrawn by the host before it was sent")]
    Withdrawn,
    /// OKX's answer, or the transport's failure, to the last attempt.
    #[error(transparent)]
    Okx(OkxError),
}

/// As an OKX error: a refusal by the host's own limiter reads as the 50011 OKX would have
/// answered, so that callers handle both alike.
impl From<Failed> for OkxError {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::Okx(e) => e,
            Failed::Throttled(e) => {
                OkxError::RateLimited { code: codes::RATE_LIMIT.into(), msg: format!("not sent: {e}") }
            }
            Failed::Withdrawn => OkxError::NotSent("withdrawn by the host before it was sent".into()),
        }
    }
}

/// Pauses a start-up request waits out throttling with before it gives up.
const STARTING_PAUSES: u32 = 6;

/// Failures after which the request certainly did not execute, so sending it again (with the
/// same client order id) is safe.
fn retryable(e: &OkxError) -> bool {
    e.is_rate_limit() || matches!(e, OkxError::NotSent(_)) || e.code() == Some("50001")
}

/// The pause before attempt `attempt + 1` after a failure that is not OKX's "too many".
pub(crate) async fn backoff(attempt: u32) {
    let ms = 100u64.saturating_mul(1 << attempt.min(6));
    tokio::time::sleep(Duration::from_millis(ms.min(3_000))).await;
}

/// Takes the request's permits as `wait` says: `None` when it goes without them.
async fn permits(limiter: &Limiter, request: &Request, how: How<'_>) -> Result<Option<Permit>, Failed> {
    match how.wait {
        Wait::Never => match limiter.try_acquire(request) {
            Ok(permit) => Ok(Some(permit)),
            Err(Ok(retry_after)) => {
                Err(Failed::Throttled(RateLimited::TooLong { retry_after, max_wait: Duration::ZERO }))
            }
            Err(Err(e)) => Err(Failed::Throttled(e)),
        },
        // The wait for a permit ends early when the host withdraws the placement.
        Wait::Bounded => tokio::select! {
            acquired = limiter.acquire(request) => acquired.map(Some).map_err(Failed::Throttled),
            () = until_withdrawn(how.withdrawal), if how.withdrawal.is_some() => Err(Failed::Withdrawn),
        },
        Wait::Unbounded => loop {
            match limiter.acquire(request).await {
                Ok(permit) => return Ok(Some(permit)),
                Err(RateLimited::TooLong { retry_after, .. }) => {
                    tokio::time::sleep(retry_after.max(Duration::from_millis(1))).await;
                }
                Err(e) => return Err(Failed::Throttled(e)),
            }
        },
        Wait::OrSend => Ok(limiter.acquire(request).await.ok()),
    }
}

/// Sends `request` (each attempt made by `call`) under `limiter`, as `how` says.
pub(crate) async fn send<T, F, Fut>(limiter: &Limiter, request: Request, how: How<'_>, mut call: F) -> Result<T, Failed>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OkxError>>,
{
    let mut attempt = 0u32;
    let mut pause = Duration::from_millis(250);
    loop {
        let permit = permits(limiter, &request, how).await?;
        // Checked again once the permit is granted (the wait for it can be up to `max_wait`):
        // an attempt goes only while the host has not withdrawn the placement. Every attempt
        // before this one left nothing at the exchange, or the loop would not be here.
        if how.withdrawal.is_some_and(|w| w.withdrawn()) {
            if let Some(p) = permit {
                limiter.complete(p);
            }
            return Err(Failed::Withdrawn);
        }
        let answer = call().await;
        if let Some(p) = permit {
            limiter.complete(p);
        }
        let e = match answer {
            Ok(t) => {
                limiter.succeeded(&request);
                return Ok(t);
            }
            Err(e) => e,
        };
        match how.retry {
            Retry::NotExecuted(times) if retryable(&e) && times.is_none_or(|n| attempt < n) => {
                if e.is_rate_limit() {
                    limiter.penalize(&request);
                } else {
                    tokio::select! {
                        () = backoff(attempt) => {}
                        () = until_withdrawn(how.withdrawal), if how.withdrawal.is_some() => {
                            return Err(Failed::Withdrawn);
                        }
                    }
                }
                attempt += 1;
                let client_id = how.withdrawal.map_or("", |w| w.client_id);
                tracing::info!(%client_id, endpoint = ?request.endpoint, attempt, error = %e, "not executed; sending it again (an order keeps its client order id)");
            }
            Retry::Throttled if e.is_rate_limit() && attempt < STARTING_PAUSES => {
                tracing::info!(error = %e, "throttled while starting; waiting {} ms", pause.as_millis());
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(4));
                attempt += 1;
            }
            _ => return Err(Failed::Okx(e)),
        }
    }
}

impl OkxVenue {
    /// [`send`] under this account's limiter.
    pub(crate) async fn limited<T, F, Fut>(&self, request: Request, how: How<'_>, call: F) -> Result<T, Failed>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OkxError>>,
    {
        send(self.limiter(), request, how, call).await
    }
}
