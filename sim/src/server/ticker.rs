//! The ticker record OKX shows, on REST (`market/ticker`, `market/tickers`) and on the
//! `tickers` channel alike, and the 24-hour figures it carries: one definition for both sides,
//! so the exchange and the feed need not reach into each other.

use crate::venue::BookSnapshot;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tradebox_core::{InstrumentKind, InstrumentSpec};

/// What a ticker reports of the last 24 hours (since the simulator started, at most).
#[derive(Default)]
pub(crate) struct Stats24h {
    pub(crate) open: Option<Decimal>,
    pub(crate) high: Option<Decimal>,
    pub(crate) low: Option<Decimal>,
    pub(crate) volume: Decimal,
    pub(crate) last_size: Option<Decimal>,
}

/// A ticker as OKX sends it (REST `/market/ticker` and the WS `tickers` channel).
pub(crate) fn ticker_value(spec: &InstrumentSpec, snap: &BookSnapshot, st: Option<&Stats24h>) -> Value {
    let opt = |d: Option<Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_default();
    let (bid, ask) = (snap.bids.first(), snap.asks.first());
    let mid = match (bid, ask) {
        (Some(b), Some(a)) => Some((b.0 + a.0) / Decimal::TWO),
        _ => None,
    };
    let last = snap.last.or(mid).map(|p| p.round_dp(spec.tick_size.scale()));
    let volume = st.map_or(Decimal::ZERO, |s| s.volume);
    // `vol24h` counts what trades count (base on spot, contracts on swaps); `volCcy24h` is quote
    // currency on spot but base currency on swaps. Spot's quote volume is approximated at the
    // last price (24 h turnover is not kept).
    let vol_ccy = match spec.kind {
        InstrumentKind::Swap => Some(volume * spec.contract_value),
        InstrumentKind::Spot => last.map(|p| (p * volume).round_dp(8)),
    };
    json!({
        "instType": if spec.kind == InstrumentKind::Swap { "SWAP" } else { "SPOT" }, "instId": spec.symbol,
        "last": opt(last), "lastSz": opt(st.and_then(|s| s.last_size)),
        "askPx": opt(ask.map(|l| l.0)), "askSz": opt(ask.map(|l| l.1)),
        "bidPx": opt(bid.map(|l| l.0)), "bidSz": opt(bid.map(|l| l.1)),
        "open24h": opt(st.and_then(|s| s.open).or(last)), "high24h": opt(st.and_then(|s| s.high).or(last)),
        "low24h": opt(st.and_then(|s| s.low).or(last)),
        "volCcy24h": opt(vol_ccy),
        "vol24h": volume.normalize().to_string(),
        "sodUtc0": opt(st.and_then(|s| s.open).or(last)), "sodUtc8": opt(st.and_then(|s| s.open).or(last)),
        "ts": snap.ts_ms.to_string(),
    })
}
