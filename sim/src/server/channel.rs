//! The WebSocket channels the simulator knows, which endpoint each lives on (okx-v5.md §0,
//! §5), and OKX's candle bars with the time each bar opens at.
//!
//! Knowing a channel's home endpoint is what lets the simulator answer a subscription on the
//! wrong one as OKX does (64001 / 64002 / 60018) instead of one catch-all code, so a client's
//! URL mistakes show up here and not first against the exchange.

/// Which endpoint a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `/ws/v5/public`: tickers, books, trades.
    Public,
    /// `/ws/v5/business`: candles, trades-all.
    Business,
    /// `/ws/v5/private`: orders, account, positions, order operations.
    Private,
}

impl Path {
    /// From the last segment of the URL path.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Path::Public),
            "business" => Some(Path::Business),
            "private" => Some(Path::Private),
            _ => None,
        }
    }
}

/// A channel a client may name in a subscription arg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `tickers` (/public).
    Tickers,
    /// `books`: snapshot, then increments (/public).
    Books,
    /// `books5`: a 5-level snapshot every push (/public).
    Books5,
    /// `bbo-tbt`: a 1-level snapshot every push (/public).
    BboTbt,
    /// `books-l2-tbt` (/public, VIP4+ only: the simulator's accounts never are).
    BooksL2Tbt,
    /// `books50-l2-tbt` (/public, VIP4+ only).
    Books50L2Tbt,
    /// `trades`, aggregated per taker order (/public).
    Trades,
    /// `trades-all`, one push per trade (/business).
    TradesAll,
    /// `candle<bar>` (/business).
    Candle(Bar),
    /// `orders` (/private).
    Orders,
    /// `account` (/private).
    Account,
    /// `positions` (/private).
    Positions,
}

impl Channel {
    /// From the `channel` of a subscription arg; `None` for channels the simulator does not
    /// serve anywhere (OKX answers those with 60018).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "tickers" => Channel::Tickers,
            "books" => Channel::Books,
            "books5" => Channel::Books5,
            "bbo-tbt" => Channel::BboTbt,
            "books-l2-tbt" => Channel::BooksL2Tbt,
            "books50-l2-tbt" => Channel::Books50L2Tbt,
            "trades" => Channel::Trades,
            "trades-all" => Channel::TradesAll,
            "orders" => Channel::Orders,
            "account" => Channel::Account,
            "positions" => Channel::Positions,
            other => Channel::Candle(Bar::parse(other.strip_prefix("candle")?)?),
        })
    }

    /// The endpoint that carries it.
    pub fn home(self) -> Path {
        match self {
            Channel::TradesAll | Channel::Candle(_) => Path::Business,
            Channel::Orders | Channel::Account | Channel::Positions => Path::Private,
            _ => Path::Public,
        }
    }

    /// Whether OKX caps it at 30 connections per account (and says so with
    /// `channel-conn-count`).
    pub fn counted(self) -> bool {
        matches!(self, Channel::Orders | Channel::Account | Channel::Positions)
    }

    /// The channel's name for channels whose name is fixed; candles use [`Bar::channel`].
    pub fn name(self) -> &'static str {
        match self {
            Channel::Tickers => "tickers",
            Channel::Books => "books",
            Channel::Books5 => "books5",
            Channel::BboTbt => "bbo-tbt",
            Channel::BooksL2Tbt => "books-l2-tbt",
            Channel::Books50L2Tbt => "books50-l2-tbt",
            Channel::Trades => "trades",
            Channel::TradesAll => "trades-all",
            Channel::Candle(bar) => bar.channel(),
            Channel::Orders => "orders",
            Channel::Account => "account",
            Channel::Positions => "positions",
        }
    }
}

/// How long a bar lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    /// A fixed number of milliseconds.
    Ms(i64),
    /// Calendar months.
    Months(u32),
}

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// OKX's bars without the `utc` suffix open on Hong Kong time (UTC+8): `candle1D` opens at
/// 16:00 UTC. Below 6 h this changes nothing (8 h is a multiple of the span).
const HONG_KONG: i64 = 8 * HOUR;
/// 1970-01-01 was a Thursday; weeks open on Monday.
const MONDAY: i64 = 3 * DAY;

/// (channel name, span, opens on UTC rather than Hong Kong time), in OKX's docs' names.
const BARS: &[(&str, Span, bool)] = &[
    ("candle1s", Span::Ms(SECOND), true),
    ("candle1m", Span::Ms(MINUTE), true),
    ("candle3m", Span::Ms(3 * MINUTE), true),
    ("candle5m", Span::Ms(5 * MINUTE), true),
    ("candle15m", Span::Ms(15 * MINUTE), true),
    ("candle30m", Span::Ms(30 * MINUTE), true),
    ("candle1H", Span::Ms(HOUR), true),
    ("candle2H", Span::Ms(2 * HOUR), true),
    ("candle4H", Span::Ms(4 * HOUR), true),
    ("candle6H", Span::Ms(6 * HOUR), false),
    ("candle12H", Span::Ms(12 * HOUR), false),
    ("candle1D", Span::Ms(DAY), false),
    ("candle2D", Span::Ms(2 * DAY), false),
    ("candle3D", Span::Ms(3 * DAY), false),
    ("candle5D", Span::Ms(5 * DAY), false),
    ("candle1W", Span::Ms(7 * DAY), false),
    ("candle1M", Span::Months(1), false),
    ("candle3M", Span::Months(3), false),
    ("candle6Hutc", Span::Ms(6 * HOUR), true),
    ("candle12Hutc", Span::Ms(12 * HOUR), true),
    ("candle1Dutc", Span::Ms(DAY), true),
    ("candle2Dutc", Span::Ms(2 * DAY), true),
    ("candle3Dutc", Span::Ms(3 * DAY), true),
    ("candle5Dutc", Span::Ms(5 * DAY), true),
    ("candle1Wutc", Span::Ms(7 * DAY), true),
    ("candle1Mutc", Span::Months(1), true),
    ("candle3Mutc", Span::Months(3), true),
];

/// Number of bars OKX offers.
pub const BAR_COUNT: usize = BARS.len();

/// A candle bar OKX offers (`1m`, `4H`, `1Dutc`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bar(u8);

impl Bar {
    /// `1m` → one minute. The case matters: `1m` is a minute, `1M` a month.
    pub fn parse(suffix: &str) -> Option<Self> {
        BARS.iter().position(|(name, _, _)| name.strip_prefix("candle") == Some(suffix)).map(|i| Bar(i as u8))
    }

    /// Every bar.
    pub fn all() -> impl Iterator<Item = Bar> {
        (0..BARS.len()).map(|i| Bar(i as u8))
    }

    /// Position in [`Bar::all`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// `candle<bar>`.
    pub fn channel(self) -> &'static str {
        BARS[self.index()].0
    }

    /// When the bar holding `ts_ms` opened, ms. Multi-day bars count from 1970-01-01 (OKX does
    /// not document their anchor).
    pub fn open(self, ts_ms: i64) -> i64 {
        let (_, span, utc) = BARS[self.index()];
        let zone = if utc { 0 } else { HONG_KONG };
        let local = ts_ms + zone;
        match span {
            Span::Ms(len) => {
                let anchor = if len == 7 * DAY { MONDAY } else { 0 };
                let shifted = local + anchor;
                shifted - shifted.rem_euclid(len) - anchor - zone
            }
            Span::Months(n) => {
                let (y, m, _) = civil(local.div_euclid(DAY));
                let m0 = (m - 1) / n * n + 1;
                days(y, m0, 1) * DAY - zone
            }
        }
    }
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(days_since_epoch: i64, h: i64, min: i64) -> i64 {
        days_since_epoch * DAY + h * HOUR + min * MINUTE
    }

    #[test]
    fn names_follow_okx_case() {
        assert_eq!(Channel::parse("candle1m"), Some(Channel::Candle(Bar::parse("1m").expect("1m"))));
        assert_ne!(Bar::parse("1m"), Bar::parse("1M"), "1m is a minute, 1M a month");
        assert_eq!(Channel::parse("candle1h"), None, "hours are upper case");
        assert_eq!(Channel::parse("candle7m"), None);
        assert_eq!(Channel::parse("trades-all").map(Channel::home), Some(Path::Business));
        assert_eq!(Channel::parse("tickers").map(Channel::home), Some(Path::Public));
        for bar in Bar::all() {
            assert_eq!(Channel::parse(bar.channel()), Some(Channel::Candle(bar)));
        }
    }

    #[test]
    fn bars_open_where_okx_opens_them() {
        // 2024-03-14 (a Thursday) 17:47 UTC = 2024-03-15 01:47 in Hong Kong.
        let d = days(2024, 3, 14);
        assert_eq!(civil(d), (2024, 3, 14));
        let t = ms(d, 17, 47) + 12_345;
        let open = |b: &str| Bar::parse(b).expect(b).open(t);
        assert_eq!(open("1s"), ms(d, 17, 47) + 12_000);
        assert_eq!(open("15m"), ms(d, 17, 45));
        assert_eq!(open("4H"), ms(d, 16, 0));
        assert_eq!(open("1D"), ms(d, 16, 0), "a Hong Kong day opens at 16:00 UTC");
        assert_eq!(open("1Dutc"), ms(d, 0, 0));
        assert_eq!(open("6H"), ms(d, 16, 0));
        assert_eq!(open("6Hutc"), ms(d, 12, 0));
        assert_eq!(open("1Wutc"), ms(days(2024, 3, 11), 0, 0), "Monday");
        assert_eq!(open("1W"), ms(days(2024, 3, 10), 16, 0), "Monday in Hong Kong");
        assert_eq!(open("1M"), ms(days(2024, 2, 29), 16, 0), "March in Hong Kong");
        assert_eq!(open("1Mutc"), ms(days(2024, 3, 1), 0, 0));
        assert_eq!(open("3Mutc"), ms(days(2024, 1, 1), 0, 0));
    }
}
