//! `tradebox_okx::rest::parse`, which turns every HTTP answer body into a reply or an error, for
//! every model type the REST client reads, and `rest::ack`, which reads an order item's
//! `sCode`/`sMsg`.
//!
//! Invariants: nothing panics; a reply is only ever returned for a status below 500 with code
//! `"0"` (or `"1"`/`"2"` carrying per-item results), and agrees with an untyped reading of the
//! same body (code, message, item count); a 429 is never anything but a reply or a rate limit;
//! an error is one that a received body can cause (never a transport or usage error); an item's
//! `sCode` decides its outcome as documented; and every model survives a JSON round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Debug;
use tradebox_okx::OkxError;
use tradebox_okx::error::codes;
use tradebox_okx::model::*;
use tradebox_okx::rest::{ack, parse};

/// Statuses that take different branches of `parse`.
const STATUSES: [u16; 4] = [200, 400, 429, 503];

fuzz_target!(|body: &[u8]| {
    for status in STATUSES {
        check::<OrderAck>(status, body, |a| {
            let outcome = ack(a.clone());
            match &outcome {
                Ok(ok) => assert!(a.s_code == "0" && ok == a, "{a:?} -> {outcome:?}"),
                Err(OkxError::RateLimited { code, msg }) => {
                    assert!([codes::RATE_LIMIT, codes::SUB_ACCOUNT_RATE_LIMIT, codes::BUSY].contains(&code.as_str()));
                    assert!(code == &a.s_code && msg == &a.s_msg);
                }
                Err(OkxError::Item { code, msg }) => {
                    assert!(code != "0" && code == &a.s_code && msg == &a.s_msg, "{a:?} -> {outcome:?}");
                    assert!(![codes::RATE_LIMIT, codes::SUB_ACCOUNT_RATE_LIMIT, codes::BUSY].contains(&code.as_str()));
                }
                Err(other) => panic!("an item's sCode gave {other:?}"),
            }
        });
    }
    check::<ServerTime>(200, body, |_| {});
    check::<Instrument>(200, body, round_trip);
    check::<Ticker>(200, body, round_trip);
    check::<Book>(200, body, round_trip);
    check::<OrderDetails>(200, body, round_trip);
    check::<Fill>(200, body, round_trip);
    check::<Balance>(200, body, |b| {
        round_trip(b);
        for d in &b.details {
            let _ = d.available();
        }
    });
    check::<Position>(200, body, round_trip);
    check::<AccountConfig>(200, body, |c| {
        round_trip(c);
        let _ = (c.can_trade(), c.can_withdraw(), c.ip_bound(), c.is_sub_account());
    });
    check::<CancelAllAfterAck>(200, body, round_trip);
});

fn check<T: DeserializeOwned + Debug>(status: u16, body: &[u8], item: impl Fn(&T)) {
    let untyped = serde_json::from_slice::<Envelope<Value>>(body).ok();
    match parse::<T>(status, body) {
        Ok(reply) => {
            assert!(status < 500, "a {status} became a reply");
            assert_eq!(reply.http_status, status);
            let per_item = (reply.code == "1" || reply.code == "2") && !reply.data.is_empty();
            assert!(
                reply.code == "0" || per_item,
                "code {:?} with {} items became a reply",
                reply.code,
                reply.data.len()
            );
            // The typed reading agrees with an untyped one of the same bytes. (The untyped one
            // can fail where the typed one does not: serde_json skips the fields a type ignores
            // without checking that their strings are UTF-8.)
            if let Some(env) = untyped {
                assert_eq!(
                    (env.code.as_str(), env.msg.as_str(), env.data.len()),
                    (reply.code.as_str(), reply.msg.as_str(), reply.data.len())
                );
                assert_eq!((&env.in_time, &env.out_time), (&reply.in_time, &reply.out_time));
            }
            reply.data.iter().for_each(item);
        }
        Err(e) => {
            match &e {
                OkxError::Api { http_status, code, .. } => {
                    assert_eq!(*http_status, status);
                    assert_ne!(code, "0", "code 0 became an error");
                    assert_ne!(status, 429, "a 429 must read as a rate limit");
                }
                OkxError::RateLimited { .. } | OkxError::Server { .. } | OkxError::Decode { .. } => {}
                other => panic!("a received body cannot cause {other:?}"),
            }
            if let OkxError::Server { http_status, .. } | OkxError::Decode { http_status, .. } = &e {
                assert_eq!(*http_status, status);
            }
            if let OkxError::Server { .. } = &e {
                assert!(status >= 500);
            }
            if status == 429 {
                assert!(e.is_rate_limit(), "a 429 became {e:?}");
            }
            let _ = (e.to_string(), e.outcome_unknown(), e.is_clock_skew());
        }
    }
}

/// What the host writes of a model reads back as the same value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("a model always serialises");
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
    assert_eq!(&back, value, "{json}");
}
