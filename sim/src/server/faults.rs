//! Fault injection: what a test (or a curious user) scripts the simulator to do wrong, set from
//! the simulator's config or at run time with `POST /sim/faults`. One-shot faults count down as
//! requests consume them, so a test asks for exactly "the next placement times out".

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// The faults in force. Counters are "the next N requests of that kind".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay before every REST answer, ms (slow responses).
    pub delay_ms: u64,
    /// The next N order placements are executed but never answered: the client times out and
    /// must find out by querying.
    pub hang_after_place: u32,
    /// How long a hung request is held before the connection is dropped, ms.
    pub hang_ms: u64,
    /// The next N order placements are executed and then answered with HTTP 500.
    pub error_after_place: u32,
    /// The next N order placements are executed and then answered as OKX does when it fails
    /// inside: HTTP 500 with its JSON body, code 50026 "System error".
    pub system_error_after_place: u32,
    /// The next N order placements are held this long before the exchange looks at them (a
    /// congested gateway); one whose `expTime` passes meanwhile is dropped unexecuted.
    pub delay_before_place: u32,
    /// How long [`Faults::delay_before_place`] holds a placement, ms.
    pub delay_before_place_ms: u64,
    /// The next N private requests are answered 503 / 50001 without being executed.
    pub unavailable: u32,
    /// The next N private requests are answered HTTP 429 / 50011 without being executed.
    pub rate_limit: u32,
    /// The next N private requests are answered HTTP 429 / 50013 (systems busy) without being
    /// executed.
    pub busy: u32,
    /// The next N answers are not JSON.
    pub malformed: u32,
    /// The next N private requests are refused as a bad signature is (HTTP 401, 50113
    /// "Invalid Sign") without being executed: what a brute-force attempt or a broken key
    /// looks like from the host's side.
    pub bad_sign: u32,
    /// The next N WebSocket logins are refused as a bad signature is (60007 "Invalid sign").
    pub bad_login: u32,
    /// The server's clock runs this far ahead of the machine's (negative: behind), ms.
    pub clock_offset_ms: i64,
    /// WebSocket: the next N frames sent are cut in half (malformed JSON).
    pub ws_malformed: u32,
    /// WebSocket: the next N frames are sent twice.
    pub ws_duplicate: u32,
    /// WebSocket: the next N frames are held back and sent after the frame that follows them.
    pub ws_reorder: u32,
    /// WebSocket, acted on when set: close every connection at once (a dropped network).
    pub ws_drop: bool,
    /// WebSocket, acted on when set: send OKX's service-upgrade notice (64008) to every connection.
    pub ws_notice: bool,
    /// WebSocket, acted on when set: the next `books` update skips a sequence number.
    pub books_gap: bool,
    /// WebSocket, acted on when set: every connection goes silent for this long, ms (a stalled
    /// network: no pushes, no `pong`).
    pub ws_stall_ms: u64,
    /// WebSocket: the next N subscriptions to a capped private channel (orders, account,
    /// positions) on `/private` are refused as OKX refuses one past its 30 connections per
    /// channel: acknowledged, then `channel-conn-count-error`, then dropped (no pushes). Only
    /// subscriptions that would otherwise succeed count down.
    pub ws_refuse_subscribe: u32,
}

/// The shared fault state and what the simulator has seen, for tests and the demo.
#[derive(Debug, Default)]
pub struct FaultState {
    faults: Mutex<Faults>,
    /// REST requests received.
    pub requests: AtomicU64,
    /// Requests refused by authentication.
    pub auth_failures: AtomicU64,
    /// Requests answered 50011 by the simulator's own rate limits.
    pub rate_limited: AtomicU64,
    /// Orders accepted.
    pub orders_placed: AtomicU64,
    /// WebSocket subscriptions acknowledged and kept (not those refused right after their ack
    /// over the connection cap).
    pub ws_subscribes: AtomicU64,
    /// WebSocket connections opened.
    pub ws_connections: AtomicU64,
    /// Requests that authenticated, per API key (which key a client signs with, e.g. across
    /// a key rotation).
    pub by_key: Mutex<std::collections::BTreeMap<String, u64>>,
    /// WebSocket logins that succeeded, per API key.
    pub logins_by_key: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// A fault that fires for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strike {
    /// Answer 503 / 50001 before doing anything.
    Unavailable,
    /// Answer 429 / 50011 before doing anything.
    RateLimit,
    /// Answer 429 / 50013 before doing anything.
    Busy,
    /// Answer 401 / 50113 before doing anything.
    AuthFailure,
}

/// What to do after executing a placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterPlace {
    /// Answer normally.
    Answer,
    /// Hold the answer this long, then drop the connection.
    Hang(u64),
    /// Answer HTTP 500.
    Error,
    /// Answer HTTP 500 with OKX's JSON body, 50026 "System error".
    SystemError,
}

fn take(n: &mut u32) -> bool {
    if *n > 0 {
        *n -= 1;
        true
    } else {
        false
    }
}

impl FaultState {
    /// Starts with `faults`.
    pub fn new(faults: Faults) -> Self {
        Self { faults: Mutex::new(faults), ..Self::default() }
    }

    /// Counts a request that authenticated with `api_key`.
    pub fn count_key(&self, api_key: &str) {
        *self.by_key.lock().entry(api_key.to_string()).or_default() += 1;
    }

    /// Counts a WebSocket login with `api_key`.
    pub fn count_login(&self, api_key: &str) {
        *self.logins_by_key.lock().entry(api_key.to_string()).or_default() += 1;
    }

    /// Requests that authenticated with `api_key` so far.
    pub fn key_uses(&self, api_key: &str) -> u64 {
        self.by_key.lock().get(api_key).copied().unwrap_or(0)
    }

    /// WebSocket logins with `api_key` so far.
    pub fn key_logins(&self, api_key: &str) -> u64 {
        self.logins_by_key.lock().get(api_key).copied().unwrap_or(0)
    }

    /// The faults in force now.
    pub fn get(&self) -> Faults {
        self.faults.lock().clone()
    }

    /// Replaces the faults in force.
    pub fn set(&self, faults: Faults) {
        tracing::info!(?faults, "sim: faults set");
        *self.faults.lock() = faults;
    }

    /// Delay before answering, ms.
    pub fn delay_ms(&self) -> u64 {
        self.faults.lock().delay_ms
    }

    /// The server clock's offset, ms.
    pub fn clock_offset_ms(&self) -> i64 {
        self.faults.lock().clock_offset_ms
    }

    /// A fault that refuses this private request, if one is due.
    pub fn strike(&self) -> Option<Strike> {
        let mut f = self.faults.lock();
        if take(&mut f.unavailable) {
            Some(Strike::Unavailable)
        } else if take(&mut f.rate_limit) {
            Some(Strike::RateLimit)
        } else if take(&mut f.busy) {
            Some(Strike::Busy)
        } else if take(&mut f.bad_sign) {
            Some(Strike::AuthFailure)
        } else {
            None
        }
    }

    /// Whether this private subscription is to be refused as over the connection cap.
    pub fn ws_refuse_subscribe(&self) -> bool {
        take(&mut self.faults.lock().ws_refuse_subscribe)
    }

    /// Whether this WebSocket login is to be refused (the `bad_login` fault).
    pub fn refuse_login(&self) -> bool {
        take(&mut self.faults.lock().bad_login)
    }

    /// Whether this WebSocket frame is to be held back and sent after the next one.
    pub fn ws_hold(&self) -> bool {
        take(&mut self.faults.lock().ws_reorder)
    }

    /// What to send for one WebSocket frame: the frame, a cut-off copy, or the frame twice.
    pub fn ws_frame(&self, frame: String) -> Vec<String> {
        let mut f = self.faults.lock();
        if take(&mut f.ws_malformed) {
            let mut cut = frame.len() / 2;
            while !frame.is_char_boundary(cut) {
                cut -= 1;
            }
            vec![frame[..cut].to_string()]
        } else if take(&mut f.ws_duplicate) {
            vec![frame.clone(), frame]
        } else {
            vec![frame]
        }
    }

    /// Whether this answer is to be garbled.
    pub fn garble(&self) -> bool {
        take(&mut self.faults.lock().malformed)
    }

    /// How long to hold a placement before executing it, ms (0: not at all).
    pub fn before_place(&self) -> u64 {
        let mut f = self.faults.lock();
        if take(&mut f.delay_before_place) { f.delay_before_place_ms.max(1) } else { 0 }
    }

    /// What to do with the answer to a placement that was executed.
    pub fn after_place(&self) -> AfterPlace {
        let mut f = self.faults.lock();
        if take(&mut f.hang_after_place) {
            AfterPlace::Hang(if f.hang_ms == 0 { 30_000 } else { f.hang_ms })
        } else if take(&mut f.error_after_place) {
            AfterPlace::Error
        } else if take(&mut f.system_error_after_place) {
            AfterPlace::SystemError
        } else {
            AfterPlace::Answer
        }
    }

    /// Counts one.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_faults_count_down() {
        let s =
            FaultState::new(Faults { hang_after_place: 1, error_after_place: 1, unavailable: 1, ..Faults::default() });
        assert_eq!(s.after_place(), AfterPlace::Hang(30_000));
        assert_eq!(s.after_place(), AfterPlace::Error);
        assert_eq!(s.after_place(), AfterPlace::Answer);
        assert_eq!(s.strike(), Some(Strike::Unavailable));
        assert_eq!(s.strike(), None);
        let s = FaultState::new(Faults { ws_refuse_subscribe: 2, ..Faults::default() });
        assert!(s.ws_refuse_subscribe() && s.ws_refuse_subscribe() && !s.ws_refuse_subscribe());
    }
}
