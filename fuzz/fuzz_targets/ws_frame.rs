//! `tradebox_okx::ws::parse`, the function the WebSocket client calls on every text frame it
//! receives, on arbitrary text.
//!
//! Invariants: it never panics; an error has one of the documented kinds; a push is only ever of
//! a channel the host reads, and its data is the type that channel carries; an order push's fill
//! is a real fill; book pushes apply to a book without panicking; and the model types inside
//! frames (tickers, orders, order acks, balances, positions) survive a JSON round trip unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use tradebox_okx::ws::message::{Data, Frame, known_channel, parse};

fuzz_target!(|data: &[u8]| {
    // The client only ever sees text frames, which tungstenite has already checked are UTF-8.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse(text) {
        Ok(Frame::Pong) => assert_eq!(text, "pong"),
        Ok(Frame::Event(e)) => {
            let _ = (e.event.len(), e.code.len(), e.msg.len());
        }
        Ok(Frame::OpReply(r)) => {
            for ack in &r.data {
                round_trip(ack);
            }
        }
        Ok(Frame::Push(p)) => {
            let ch = p.arg.channel.as_str();
            assert!(known_channel(ch), "a push of a channel the host does not read: {ch:?}");
            match &p.data {
                Data::Tickers(items) => {
                    assert_eq!(ch, "tickers");
                    items.iter().for_each(round_trip);
                }
                Data::Books(items) => {
                    assert!(matches!(ch, "books" | "books5" | "bbo-tbt" | "books-l2-tbt" | "books50-l2-tbt"), "{ch}");
                    // What the host does with a book push (the `book` target goes deeper).
                    let mut book = tradebox_okx::ws::OrderBook::new();
                    for d in items {
                        let _ = book.apply(tradebox_okx::ws::Action::Snapshot, d);
                        let _ = book.top(5);
                    }
                }
                Data::Trades(_) => assert!(matches!(ch, "trades" | "trades-all"), "{ch}"),
                Data::Candles(_) => assert!(ch.starts_with("candle"), "{ch}"),
                Data::Orders(items) => {
                    assert_eq!(ch, "orders");
                    for o in items {
                        round_trip(&o.order);
                        if let Some((_, sz, trade_id)) = o.fill() {
                            assert!(!sz.is_zero() && !trade_id.is_empty(), "a fill without size or trade id: {o:?}");
                        }
                    }
                }
                Data::Account(items) => {
                    assert_eq!(ch, "account");
                    items.iter().for_each(round_trip);
                }
                Data::Positions(items) => {
                    assert_eq!(ch, "positions");
                    items.iter().for_each(round_trip);
                }
            }
        }
        Err(e) => {
            let kind = e.kind.as_str();
            assert!(
                matches!(kind, "json" | "shape" | "unknown-channel") || kind.starts_with("channel:"),
                "undocumented error kind {kind:?}"
            );
            let _ = e.to_string();
        }
    }
});

/// What the host writes of a model reads back as the same value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("a model always serialises");
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
    assert_eq!(&back, value, "{json}");
}
