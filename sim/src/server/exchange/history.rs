//! The market's past as OKX serves it: candles for every bar OKX names and the recent public
//! trades, built from the trades the simulated venue prints (synthetic or replayed), so a client
//! can download history from the simulator as it would from OKX (`market/candles`,
//! `market/history-candles`, `market/trades`).
//!
//! Candles are kept per bar rather than aggregated from 1m rows on demand: a day bar over a year
//! would need half a million minute rows, while per-bar rings stay small and answer in one pass.
//! A bucket with no trade repeats the previous close with zero volume, as OKX documents.

use super::{Exchange, InstrumentId, InstrumentKind, InstrumentSpec, Side};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};

/// Rows kept per instrument and bar: a week of 1m candles.
pub const CANDLES_KEPT: usize = 10_080;
/// What `market/candles` reaches back (OKX: "the latest 1,440 data entries").
pub const RECENT_CANDLES: usize = 1_440;
/// Public trades kept per instrument (OKX serves the latest 500).
pub const TRADES_KEPT: usize = 500;
/// The first public trade id; the WebSocket feed numbers its `trades` pushes from the same
/// base, one per venue trade in the same order, so both sides show the same ids.
const TRADE_ID_BASE: u64 = 500_000_000;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// OKX's plain `6H` and longer bars open at UTC+8 midnight; the `…utc` forms at UTC.
const UTC8: i64 = 8 * HOUR;

/// How a bar's buckets are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    /// Fixed length, aligned to `anchor` in the zone `tz` (both ms).
    Fixed { len: i64, tz: i64, anchor: i64 },
    /// Calendar months (1 or 3) in the zone `tz`.
    Months { n: u32, tz: i64 },
}

/// Every bar OKX's candle endpoints accept.
const BARS: &[(&str, Span)] = &[
    ("1s", Span::Fixed { len: 1_000, tz: 0, anchor: 0 }),
    ("1m", Span::Fixed { len: MINUTE, tz: 0, anchor: 0 }),
    ("3m", Span::Fixed { len: 3 * MINUTE, tz: 0, anchor: 0 }),
    ("5m", Span::Fixed { len: 5 * MINUTE, tz: 0, anchor: 0 }),
    ("15m", Span::Fixed { len: 15 * MINUTE, tz: 0, anchor: 0 }),
    ("30m", Span::Fixed { len: 30 * MINUTE, tz: 0, anchor: 0 }),
    ("1H", Span::Fixed { len: HOUR, tz: 0, anchor: 0 }),
    ("2H", Span::Fixed { len: 2 * HOUR, tz: 0, anchor: 0 }),
    ("4H", Span::Fixed { len: 4 * HOUR, tz: 0, anchor: 0 }),
    ("6H", Span::Fixed { len: 6 * HOUR, tz: UTC8, anchor: 0 }),
    ("12H", Span::Fixed { len: 12 * HOUR, tz: UTC8, anchor: 0 }),
    ("1D", Span::Fixed { len: DAY, tz: UTC8, anchor: 0 }),
    ("2D", Span::Fixed { len: 2 * DAY, tz: UTC8, anchor: 0 }),
    ("3D", Span::Fixed { len: 3 * DAY, tz: UTC8, anchor: 0 }),
    // 1970-01-05 was a Monday: weeks open on Mondays.
    ("1W", Span::Fixed { len: 7 * DAY, tz: UTC8, anchor: 4 * DAY }),
    ("1M", Span::Months { n: 1, tz: UTC8 }),
    ("3M", Span::Months { n: 3, tz: UTC8 }),
    ("6Hutc", Span::Fixed { len: 6 * HOUR, tz: 0, anchor: 0 }),
    ("12Hutc", Span::Fixed { len: 12 * HOUR, tz: 0, anchor: 0 }),
    ("1Dutc", Span::Fixed { len: DAY, tz: 0, anchor: 0 }),
    ("2Dutc", Span::Fixed { len: 2 * DAY, tz: 0, anchor: 0 }),
    ("3Dutc", Span::Fixed { len: 3 * DAY, tz: 0, anchor: 0 }),
    ("1Wutc", Span::Fixed { len: 7 * DAY, tz: 0, anchor: 4 * DAY }),
    ("1Mutc", Span::Months { n: 1, tz: 0 }),
    ("3Mutc", Span::Months { n: 3, tz: 0 }),
];

/// The index of `bar` in [`BARS`].
pub fn bar_index(bar: &str) -> Option<usize> {
    BARS.iter().position(|(name, _)| *name == bar)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month) of a day count since 1970-01-01.
fn year_month(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m)
}

impl Span {
    /// The opening time of the bucket holding `ts`.
    fn start(self, ts: i64) -> i64 {
        match self {
            Span::Fixed { len, tz, anchor } => (ts + tz - anchor).div_euclid(len) * len + anchor - tz,
            Span::Months { n, tz } => {
                let (y, m) = year_month((ts + tz).div_euclid(DAY));
                let first = (m - 1) / n * n + 1;
                days_from_civil(y, first, 1) * DAY - tz
            }
        }
    }

    /// The opening time of the bucket before the one opening at `start`.
    fn previous(self, start: i64) -> i64 {
        self.start(start - 1)
    }
}

/// One candle: volumes as OKX counts them (`vol` in contracts for swaps, base for spot;
/// `volCcy` in base for swaps, quote for spot; `volCcyQuote` in quote).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candle {
    ts: i64,
    o: Decimal,
    h: Decimal,
    l: Decimal,
    c: Decimal,
    vol: Decimal,
    vol_ccy: Decimal,
    vol_quote: Decimal,
}

impl Candle {
    fn flat(ts: i64, px: Decimal) -> Self {
        Self { ts, o: px, h: px, l: px, c: px, vol: Decimal::ZERO, vol_ccy: Decimal::ZERO, vol_quote: Decimal::ZERO }
    }

    fn row(&self, confirmed: bool) -> Value {
        let s = |d: Decimal| d.normalize().to_string();
        json!([
            self.ts.to_string(),
            s(self.o),
            s(self.h),
            s(self.l),
            s(self.c),
            s(self.vol),
            s(self.vol_ccy.round_dp(8)),
            s(self.vol_quote.round_dp(8)),
            if confirmed { "1" } else { "0" }
        ])
    }
}

/// A public trade as `market/trades` lists it.
#[derive(Debug, Clone)]
struct Trade {
    id: u64,
    px: Decimal,
    sz: Decimal,
    taker: Side,
    ts: i64,
}

/// One instrument's past: a ring of candles per bar (the newest, still open, last) and the
/// latest trades.
struct Past {
    bars: Vec<VecDeque<Candle>>,
    trades: VecDeque<Trade>,
}

impl Past {
    fn new() -> Self {
        Self { bars: vec![VecDeque::new(); BARS.len()], trades: VecDeque::new() }
    }
}

/// Extends `ring` with flat candles up to the bucket opening at `start` (exclusive), at most
/// [`CANDLES_KEPT`] of them, so quiet buckets show the previous close as OKX's do.
fn fill_gap(ring: &mut VecDeque<Candle>, span: Span, start: i64) {
    let Some(last) = ring.back().copied() else { return };
    let mut missing = Vec::new();
    let mut at = span.previous(start);
    while at > last.ts && missing.len() < CANDLES_KEPT {
        missing.push(at);
        at = span.previous(at);
    }
    ring.extend(missing.into_iter().rev().map(|ts| Candle::flat(ts, last.c)));
    while ring.len() > CANDLES_KEPT {
        ring.pop_front();
    }
}

/// Candles and trades of every instrument.
pub struct MarketHistory {
    past: HashMap<InstrumentId, Past>,
    next_trade: u64,
}

impl Default for MarketHistory {
    fn default() -> Self {
        Self { past: HashMap::new(), next_trade: TRADE_ID_BASE }
    }
}

/// Paging of candle rows: `after`/`before` are opening times, `limit` at most 300.
#[derive(Debug, Clone, Copy, Default)]
pub struct CandlePage {
    /// Rows older than this opening time.
    pub after: Option<i64>,
    /// Rows newer than this opening time.
    pub before: Option<i64>,
    /// At most this many (default 100, at most 300).
    pub limit: usize,
}

impl MarketHistory {
    /// Records one public trade (`size` in the instrument's order units).
    pub fn on_trade(&mut self, spec: &InstrumentSpec, px: Decimal, size: Decimal, taker: Side, ts: i64) {
        self.next_trade += 1;
        let past = self.past.entry(spec.id).or_insert_with(Past::new);
        past.trades.push_back(Trade { id: self.next_trade, px, sz: size, taker, ts });
        if past.trades.len() > TRADES_KEPT {
            past.trades.pop_front();
        }
        let (vol_ccy, vol_quote) = match spec.kind {
            InstrumentKind::Spot => (px * size, px * size),
            InstrumentKind::Swap => (size * spec.contract_value, size * spec.contract_value * px),
        };
        for ((_, span), ring) in BARS.iter().zip(past.bars.iter_mut()) {
            let start = span.start(ts);
            fill_gap(ring, *span, start);
            match ring.back_mut() {
                Some(c) if c.ts >= start => {
                    c.h = c.h.max(px);
                    c.l = c.l.min(px);
                    c.c = px;
                    c.vol += size;
                    c.vol_ccy += vol_ccy;
                    c.vol_quote += vol_quote;
                }
                _ => {
                    ring.push_back(Candle { vol: size, vol_ccy, vol_quote, ..Candle::flat(start, px) });
                    if ring.len() > CANDLES_KEPT {
                        ring.pop_front();
                    }
                }
            }
        }
    }

    /// Candle rows of `bar` (an index from [`bar_index`]), newest first, up to `now`; `recent`
    /// limits them to the newest [`RECENT_CANDLES`] (`market/candles`).
    pub fn candles(
        &mut self,
        instrument: InstrumentId,
        bar: usize,
        page: CandlePage,
        now: i64,
        recent: bool,
    ) -> Vec<Value> {
        let (Some(past), Some((_, span))) = (self.past.get_mut(&instrument), BARS.get(bar)) else {
            return Vec::new();
        };
        let ring = &mut past.bars[bar];
        let current = span.start(now);
        // Quiet buckets up to now exist on OKX too (flat at the previous close).
        fill_gap(ring, *span, current);
        if ring.back().is_some_and(|c| c.ts < current) {
            let close = ring.back().map(|c| c.c).unwrap_or_default();
            ring.push_back(Candle::flat(current, close));
            if ring.len() > CANDLES_KEPT {
                ring.pop_front();
            }
        }
        let limit = if page.limit == 0 { 100 } else { page.limit.min(300) };
        let reach = if recent { RECENT_CANDLES } else { CANDLES_KEPT };
        ring.iter()
            .rev()
            .take(reach)
            .filter(|c| page.after.is_none_or(|a| c.ts < a))
            .filter(|c| page.before.is_none_or(|b| c.ts > b))
            .take(limit)
            .map(|c| c.row(c.ts < current))
            .collect()
    }

    /// `market/trades` items, newest first (`limit` default 100, at most 500).
    pub fn trades(&self, spec: &InstrumentSpec, limit: usize) -> Vec<Value> {
        let limit = if limit == 0 { 100 } else { limit.min(TRADES_KEPT) };
        let Some(past) = self.past.get(&spec.id) else { return Vec::new() };
        past.trades
            .iter()
            .rev()
            .take(limit)
            .map(|t| {
                json!({
                    "instId": spec.symbol, "tradeId": t.id.to_string(), "px": t.px.normalize().to_string(),
                    "sz": t.sz.normalize().to_string(), "side": if t.taker == Side::Buy { "buy" } else { "sell" },
                    "source": "0", "ts": t.ts.to_string(),
                })
            })
            .collect()
    }
}

impl Exchange {
    /// `market/candles` (`recent`) or `market/history-candles` rows.
    pub fn candles_json(&self, spec: &InstrumentSpec, bar: usize, page: CandlePage, recent: bool) -> Vec<Value> {
        self.pump();
        self.history.lock().candles(spec.id, bar, page, self.clock().now_ms(), recent)
    }

    /// `market/trades` items.
    pub fn trades_json(&self, spec: &InstrumentSpec, limit: usize) -> Vec<Value> {
        self.pump();
        self.history.lock().trades(spec, limit)
    }

    /// `market/tickers` items of one instrument type (and family, for swaps).
    pub fn tickers_json(&self, inst_type: &str, inst_family: &str) -> Vec<Value> {
        self.specs
            .iter()
            .filter(|s| super::inst_type(s.kind) == inst_type)
            .filter(|s| inst_family.is_empty() || format!("{}-{}", s.base, s.quote) == inst_family)
            .filter_map(|s| self.ticker_json(s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * DAY + h * HOUR
    }

    #[test]
    fn bars_open_where_okx_opens_them() {
        let span = |bar: &str| BARS[bar_index(bar).expect("bar")].1;
        // 2024-03-15 10:17 UTC.
        let t = ms(2024, 3, 15, 10) + 17 * MINUTE + 5_000;
        assert_eq!(span("1m").start(t), ms(2024, 3, 15, 10) + 17 * MINUTE);
        assert_eq!(span("15m").start(t), ms(2024, 3, 15, 10) + 15 * MINUTE);
        assert_eq!(span("4H").start(t), ms(2024, 3, 15, 8));
        // 1D opens at UTC+8 midnight (16:00 UTC the day before); 1Dutc at UTC midnight.
        assert_eq!(span("1D").start(t), ms(2024, 3, 14, 16));
        assert_eq!(span("1Dutc").start(t), ms(2024, 3, 15, 0));
        // 2024-03-11 was a Monday.
        assert_eq!(span("1Wutc").start(t), ms(2024, 3, 11, 0));
        assert_eq!(span("1W").start(t), ms(2024, 3, 10, 16));
        assert_eq!(span("1Mutc").start(t), ms(2024, 3, 1, 0));
        assert_eq!(span("3Mutc").start(t), ms(2024, 1, 1, 0));
        assert_eq!(span("1Mutc").previous(ms(2024, 3, 1, 0)), ms(2024, 2, 1, 0));
        assert_eq!(span("3M").previous(span("3M").start(t)), ms(2023, 9, 30, 16));
        assert_eq!(year_month(days_from_civil(2000, 2, 29)), (2000, 2));
        assert!(bar_index("7m").is_none());
    }

    #[test]
    fn quiet_buckets_repeat_the_close_and_rings_stay_bounded() {
        let spec = InstrumentSpec {
            id: 1,
            symbol: "BTC-USDT".into(),
            kind: InstrumentKind::Spot,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: Decimal::new(1, 1),
            lot_size: Decimal::new(1, 8),
            min_size: Decimal::new(1, 5),
            contract_value: Decimal::ONE,
        };
        let mut h = MarketHistory::default();
        let t0 = ms(2024, 1, 1, 0);
        h.on_trade(&spec, Decimal::from(100), Decimal::ONE, Side::Buy, t0 + 1_000);
        h.on_trade(&spec, Decimal::from(103), Decimal::TWO, Side::Sell, t0 + 2_000);
        h.on_trade(&spec, Decimal::from(101), Decimal::ONE, Side::Buy, t0 + 3 * MINUTE + 10);
        let m1 = bar_index("1m").expect("1m");
        let rows = h.candles(1, m1, CandlePage::default(), t0 + 3 * MINUTE + 20, true);
        let ts: Vec<&str> = rows.iter().filter_map(|r| r[0].as_str()).collect();
        let want: Vec<String> = (0..4).rev().map(|k| (t0 + k * MINUTE).to_string()).collect();
        assert_eq!(ts, want, "newest first, quiet minutes included");
        assert_eq!(rows[3], json!([t0.to_string(), "100", "103", "100", "103", "3", "306", "306", "1"]));
        assert_eq!(rows[2][1], "103", "a quiet minute opens and closes at the last close");
        assert_eq!((rows[2][5].as_str(), rows[0][8].as_str()), (Some("0"), Some("0")));
        let page = CandlePage { after: Some(t0 + 2 * MINUTE), limit: 1, ..CandlePage::default() };
        assert_eq!(h.candles(1, m1, page, t0 + 3 * MINUTE + 20, true)[0][0], (t0 + MINUTE).to_string());
        // A long silence fills at most a ring's worth.
        let later = t0 + (CANDLES_KEPT as i64 * 3) * MINUTE;
        h.on_trade(&spec, Decimal::from(99), Decimal::ONE, Side::Sell, later);
        assert_eq!(h.past[&1].bars[m1].len(), CANDLES_KEPT);
        assert_eq!(h.trades(&spec, 2)[0]["px"], "99");
        assert_eq!(h.trades(&spec, 0).len(), 4);
    }
}
