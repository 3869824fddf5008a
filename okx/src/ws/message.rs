//! OKX WebSocket frames (okx-v5.md §5), parsed into types.
//!
//! A frame is `pong`, an event (`subscribe`, `unsubscribe`, `login`, `error`, `notice`,
//! `channel-conn-count`...), the reply to an order operation, or a data push whose `arg.channel`
//! says how to read its `data`. The envelope is read first with `data` left raw, then `data` is
//! read as the channel's type, so a bad item fails that push only, with a reason naming the
//! channel. Numbers that are `""` (OKX's "not applicable") read as `None`, unknown fields are
//! ignored, and channels the host does not use are reported as such rather than guessed at.

use crate::model::{Balance, OrderDetails, Position, Ticker, opt_dec};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fmt;

/// A subscription argument (`arg`), as sent and echoed.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Channel name.
    #[serde(default)]
    pub channel: String,
    /// Instrument.
    #[serde(default)]
    pub inst_id: String,
    /// Instrument type (private channels).
    #[serde(default)]
    pub inst_type: String,
    /// Currency (`account`).
    #[serde(default)]
    pub ccy: String,
    /// Account id (private pushes).
    #[serde(default)]
    pub uid: String,
}

/// An event frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `subscribe`, `unsubscribe`, `login`, `error`, `notice`, `channel-conn-count`, ...
    pub event: String,
    /// OKX code (`"0"` or absent on success).
    pub code: String,
    /// Message.
    pub msg: String,
    /// The subscription it is about, if any.
    pub arg: Option<Arg>,
    /// The request id it answers, if any.
    pub id: String,
    /// Connection id.
    pub conn_id: String,
    /// `channel-conn-count` / `channel-conn-count-error`: the private channel counted (these
    /// events name it at the top level, with no `arg`).
    pub channel: String,
    /// `channel-conn-count` / `channel-conn-count-error`: connections counted on the channel
    /// (the error names the cap it hit).
    pub conn_count: Option<u32>,
}

/// The answer to an order operation (`order`, `cancel-order`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct OpReply {
    /// The request id.
    pub id: String,
    /// The operation.
    pub op: String,
    /// `"0"`, `"1"`, `"2"` or an error code.
    pub code: String,
    /// Message.
    pub msg: String,
    /// Per-item results.
    pub data: Vec<crate::model::OrderAck>,
}

/// One side's level: `[px, sz, "0", numOrders]`, with the strings kept as received (the legacy
/// checksum is computed over them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookLevel {
    /// Price.
    pub px: Decimal,
    /// Size (`0` deletes the level).
    pub sz: Decimal,
    /// Price as received.
    pub px_text: String,
    /// Size as received.
    pub sz_text: String,
    /// Orders at the level.
    pub orders: u32,
}

impl<'de> Deserialize<'de> for BookLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Vec<serde_json::Value> = Vec::deserialize(d)?;
        let text = |i: usize| match raw.get(i) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (Some(px_text), Some(sz_text)) = (text(0), text(1)) else {
            return Err(serde::de::Error::custom("a book level needs a price and a size"));
        };
        let dec = |s: &str| {
            s.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(s))
                .map_err(|_| serde::de::Error::custom(format!("not a decimal: {s:?}")))
        };
        let (px, sz) = (dec(&px_text)?, dec(&sz_text)?);
        let orders = text(3).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(BookLevel { px, sz, px_text, sz_text, orders })
    }
}

/// A book push item (`books`, `books5`, `bbo-tbt`, `books-l2-tbt`, `books50-l2-tbt`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BookData {
    /// Asks (changes, for an update).
    #[serde(default)]
    pub asks: Vec<BookLevel>,
    /// Bids (changes, for an update).
    #[serde(default)]
    pub bids: Vec<BookLevel>,
    /// Time, ms.
    #[serde(with = "crate::model::ms")]
    pub ts: i64,
    /// Legacy CRC32 checksum (0 when not sent).
    #[serde(default)]
    pub checksum: i64,
    /// The previous message's `seqId` (-1 on a snapshot); absent on old feeds.
    #[serde(default)]
    pub prev_seq_id: Option<i64>,
    /// This message's sequence id; absent on old feeds.
    #[serde(default)]
    pub seq_id: Option<i64>,
}

/// A public trade (`trades`, `trades-all`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Trade {
    /// Instrument.
    pub inst_id: String,
    /// Last trade id in the aggregate.
    #[serde(default)]
    pub trade_id: String,
    /// Price.
    pub px: Decimal,
    /// Size.
    pub sz: Decimal,
    /// Taker side.
    pub side: crate::model::Side,
    /// Time, ms.
    #[serde(with = "crate::model::ms")]
    pub ts: i64,
}

/// A candle row: `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]` (old feeds send 7
/// fields and no `confirm`).
#[derive(Debug, Clone, PartialEq)]
pub struct Candle {
    /// Open time, ms.
    pub ts: i64,
    /// Open, high, low, close.
    pub ohlc: [Decimal; 4],
    /// Volume (base or contracts).
    pub vol: Decimal,
    /// Whether the candle is closed (`None` on old feeds).
    pub confirmed: Option<bool>,
}

impl<'de> Deserialize<'de> for Candle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Vec<String> = Vec::deserialize(d)?;
        if raw.len() < 6 {
            return Err(serde::de::Error::custom(format!("a candle has at least 6 fields, got {}", raw.len())));
        }
        let dec = |i: usize| {
            raw[i].parse::<Decimal>().map_err(|_| serde::de::Error::custom(format!("candle field {i}: {:?}", raw[i])))
        };
        let ts = raw[0].parse().map_err(|_| serde::de::Error::custom(format!("candle time {:?}", raw[0])))?;
        Ok(Candle {
            ts,
            ohlc: [dec(1)?, dec(2)?, dec(3)?, dec(4)?],
            vol: dec(5)?,
            confirmed: raw.get(8).map(|c| c == "1"),
        })
    }
}

/// An `orders` push item: the order (as `/trade/order` shows it) and this update's fill.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderPush {
    /// The order.
    #[serde(flatten)]
    pub order: OrderDetails,
    /// Fee of this fill (negative when charged).
    #[serde(default, with = "opt_dec")]
    pub fill_fee: Option<Decimal>,
    /// Fee currency of this fill.
    #[serde(default)]
    pub fill_fee_ccy: String,
    /// `T` taker, `M` maker.
    #[serde(default)]
    pub exec_type: String,
    /// Time of this fill, ms.
    #[serde(default, with = "crate::model::ms")]
    pub fill_time: i64,
    /// Amend outcome: `-1` failed, `0` ok, `1` auto-cancelled.
    #[serde(default)]
    pub amend_result: String,
    /// Amend request id.
    #[serde(default)]
    pub req_id: String,
}

impl OrderPush {
    /// The fill this update reports (`fillSz` > 0 with a trade id), if any.
    pub fn fill(&self) -> Option<(Decimal, Decimal, &str)> {
        let sz = self.order.fill_sz.filter(|s| !s.is_zero())?;
        let px = self.order.fill_px?;
        (!self.order.trade_id.is_empty()).then_some((px, sz, self.order.trade_id.as_str()))
    }
}

/// A data push, by channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `tickers`.
    Tickers(Vec<Ticker>),
    /// Books of any depth.
    Books(Vec<BookData>),
    /// `trades`, `trades-all`.
    Trades(Vec<Trade>),
    /// `candle*`.
    Candles(Vec<Candle>),
    /// `orders`.
    Orders(Vec<OrderPush>),
    /// `account`.
    Account(Vec<Balance>),
    /// `positions`.
    Positions(Vec<Position>),
}

/// A data push.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// What it is for.
    pub arg: Arg,
    /// `snapshot` / `update` (`books`), else `None`.
    pub action: Option<String>,
    /// `snapshot` / `event_update` (`account`, `positions`).
    pub event_type: Option<String>,
    /// The data.
    pub data: Data,
}

/// A frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The text `pong`.
    Pong,
    /// An event.
    Event(Event),
    /// An order operation's answer.
    OpReply(OpReply),
    /// Data.
    Push(Push),
}

/// Why a frame could not be read. `kind` is stable (for counting); the rest says what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// `json`, `shape`, `unknown-channel`, or `channel:<name>`.
    pub kind: String,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason)
    }
}

impl std::error::Error for ParseError {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFrame<'a> {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    conn_id: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    conn_count: Option<String>,
    #[serde(default)]
    arg: Option<Arg>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

fn items<'a, T: Deserialize<'a>>(channel: &str, raw: &'a RawValue) -> Result<Vec<T>, ParseError> {
    serde_json::from_str(raw.get())
        .map_err(|e| ParseError { kind: format!("channel:{channel}"), reason: e.to_string() })
}

/// Whether the host reads this channel (others are reported as `unknown-channel`).
pub fn known_channel(channel: &str) -> bool {
    matches!(
        channel,
        "tickers"
            | "books"
            | "books5"
            | "bbo-tbt"
            | "books-l2-tbt"
            | "books50-l2-tbt"
            | "trades"
            | "trades-all"
            | "orders"
            | "account"
            | "positions"
    ) || channel.starts_with("candle")
}

/// Reads one text frame.
pub fn parse(text: &str) -> Result<Frame, ParseError> {
    if text == "pong" {
        return Ok(Frame::Pong);
    }
    let raw: RawFrame<'_> =
        serde_json::from_str(text).map_err(|e| ParseError { kind: "json".into(), reason: e.to_string() })?;
    if let Some(event) = raw.event {
        return Ok(Frame::Event(Event {
            event,
            code: raw.code.unwrap_or_default(),
            msg: raw.msg.unwrap_or_default(),
            arg: raw.arg,
            id: raw.id.unwrap_or_default(),
            conn_id: raw.conn_id.unwrap_or_default(),
            channel: raw.channel.unwrap_or_default(),
            conn_count: raw.conn_count.and_then(|n| n.parse().ok()),
        }));
    }
    if let Some(op) = raw.op {
        let data = match raw.data {
            Some(d) => items(&op, d)?,
            None => Vec::new(),
        };
        return Ok(Frame::OpReply(OpReply {
            id: raw.id.unwrap_or_default(),
            op,
            code: raw.code.unwrap_or_default(),
            msg: raw.msg.unwrap_or_default(),
            data,
        }));
    }
    let (Some(arg), Some(data)) = (raw.arg, raw.data) else {
        return Err(ParseError {
            kind: "shape".into(),
            reason: "neither an event, an operation reply nor a push".into(),
        });
    };
    let ch = arg.channel.as_str();
    let data = match ch {
        "tickers" => Data::Tickers(items(ch, data)?),
        "books" | "books5" | "bbo-tbt" | "books-l2-tbt" | "books50-l2-tbt" => Data::Books(items(ch, data)?),
        "trades" | "trades-all" => Data::Trades(items(ch, data)?),
        "orders" => Data::Orders(items(ch, data)?),
        "account" => Data::Account(items(ch, data)?),
        "positions" => Data::Positions(items(ch, data)?),
        c if c.starts_with("candle") => Data::Candles(items(ch, data)?),
        other => {
            return Err(ParseError {
                kind: "unknown-channel".into(),
                reason: format!("channel {other:?} is not read by the host"),
            });
        }
    };
    Ok(Frame::Push(Push { arg, action: raw.action, event_type: raw.event_type, data }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(file: &str) -> Vec<String> {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")).lines().map(String::from).collect()
    }

    /// Every captured push either parses or is refused as a channel the host does not read.
    #[test]
    fn every_captured_push_parses_or_is_an_unknown_channel() {
        let mut parsed = 0;
        let mut unknown = 0;
        for line in lines("cryptomsgparser_okx_v5_msgs.jsonl") {
            let v: serde_json::Value = serde_json::from_str(&line).expect("fixture line");
            let msg = &v["msg"];
            if msg.get("arg").is_none() && msg.get("event").is_none() {
                continue; // REST bodies kept in the same file
            }
            match parse(&msg.to_string()) {
                Ok(_) => parsed += 1,
                Err(e) if e.kind == "unknown-channel" => unknown += 1,
                Err(e) => panic!("{e}: {msg}"),
            }
        }
        for line in lines("tardis_okx_v5_msgs.jsonl") {
            match parse(&line) {
                Ok(_) => parsed += 1,
                Err(e) if e.kind == "unknown-channel" => unknown += 1,
                Err(e) => panic!("{e}: {line}"),
            }
        }
        assert!(parsed >= 50 && unknown >= 10, "parsed {parsed}, unknown {unknown}");
        let account =
            std::fs::read_to_string(format!("{}/tests/data/nautilus_ws_account.json", env!("CARGO_MANIFEST_DIR")))
                .expect("account push");
        let Ok(Frame::Push(Push { data: Data::Account(b), .. })) = parse(&account) else { panic!("account push") };
        assert_eq!(b[0].details[0].ccy, "USDT");
    }

    #[test]
    fn documented_frames() {
        let ticker = r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT","last":"9999.99","lastSz":"0.1","askPx":"9999.99","askSz":"11","bidPx":"8888.88","bidSz":"5","open24h":"9000","high24h":"10000","low24h":"8888.88","volCcy24h":"2222","vol24h":"2222","sodUtc0":"2222","sodUtc8":"2222","ts":"1597026383085"}]}"#;
        let Ok(Frame::Push(p)) = parse(ticker) else { panic!("ticker") };
        let Data::Tickers(t) = p.data else { panic!("tickers") };
        assert_eq!(t[0].bid_px.map(|d| d.to_string()), Some("8888.88".into()));
        let update = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["8476.98","0","0","0"]],"bids":[["8475.60","3","0","1"]],"ts":"1597026383185","checksum":0,"prevSeqId":123456,"seqId":123457}]}"#;
        let Ok(Frame::Push(p)) = parse(update) else { panic!("books") };
        assert_eq!(p.action.as_deref(), Some("update"));
        let Data::Books(b) = p.data else { panic!("books") };
        assert_eq!((b[0].prev_seq_id, b[0].seq_id), (Some(123456), Some(123457)));
        assert_eq!(b[0].bids[0].px_text, "8475.60", "the price text is kept as received");
        let candle = r#"{"arg":{"channel":"candle1D","instId":"BTC-USDT"},"data":[["1597026383085","8533.02","8553.74","8527.17","8548.26","45247","529.5858061","5529.5858061","0"]]}"#;
        let Ok(Frame::Push(Push { data: Data::Candles(c), .. })) = parse(candle) else { panic!("candle") };
        assert_eq!(c[0].confirmed, Some(false));
        let order = r#"{"arg":{"channel":"orders","instType":"SPOT","instId":"BTC-USDT","uid":"614488474791936"},"data":[{"instType":"SPOT","instId":"BTC-USDT","ordId":"452197707845865472","clOrdId":"","tag":"","px":"31527.1","sz":"0.001","ordType":"limit","side":"sell","posSide":"","tdMode":"cash","state":"filled","accFillSz":"0.001","avgPx":"31527.1","fillPx":"31527.1","fillSz":"0.001","fillTime":"1654084353263","tradeId":"242589207","execType":"M","fillFee":"-0.02522168","fillFeeCcy":"USDT","fee":"-0.02522168","feeCcy":"USDT","fillPnl":"0.01","notionalUsd":"31.5","fillNotionalUsd":"31.5","lever":"0","reduceOnly":"false","cancelSource":"","amendResult":"","reqId":"","amendSource":"","code":"0","msg":"","category":"normal","lastPx":"38892.2","cTime":"1654084334977","uTime":"1654084353264"}]}"#;
        let Ok(Frame::Push(Push { data: Data::Orders(o), .. })) = parse(order) else { panic!("orders") };
        assert_eq!(o[0].fill().map(|f| f.2.to_string()), Some("242589207".into()));
        assert_eq!(o[0].exec_type, "M");
        let login = r#"{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}"#;
        assert!(matches!(parse(login), Ok(Frame::Event(e)) if e.event == "login" && e.conn_id == "a4d3ae55"));
        assert_eq!(parse("pong"), Ok(Frame::Pong));
        let reply = r#"{"id":"1512","op":"order","code":"0","msg":"","data":[{"clOrdId":"b15","ordId":"12345689","tag":"","ts":"1695190491421","sCode":"0","sMsg":""}],"inTime":"1695190491421339","outTime":"1695190491423240"}"#;
        assert!(matches!(parse(reply), Ok(Frame::OpReply(r)) if r.data[0].ord_id == "12345689"));
    }

    /// OKX's connection-count events (docs: "Connection count limit") are events, not
    /// unreadable frames, and say which channel they count.
    #[test]
    fn connection_count_events_are_events() {
        let count = r#"{"event":"channel-conn-count","channel":"orders","connCount":"2","connId":"abcd1234"}"#;
        let Ok(Frame::Event(e)) = parse(count) else { panic!("channel-conn-count") };
        assert_eq!((e.event.as_str(), e.channel.as_str(), e.conn_count), ("channel-conn-count", "orders", Some(2)));
        assert_eq!(e.arg, None);
        let full = r#"{"event":"channel-conn-count-error","channel":"account","connCount":"30","connId":"a4d3ae55"}"#;
        let Ok(Frame::Event(e)) = parse(full) else { panic!("channel-conn-count-error") };
        assert_eq!(
            (e.event.as_str(), e.channel.as_str(), e.conn_count),
            ("channel-conn-count-error", "account", Some(30))
        );
        assert_eq!(e.conn_id, "a4d3ae55");
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        assert_eq!(parse("{\"arg\":").unwrap_err().kind, "json");
        assert_eq!(parse(r#"{"hello":1}"#).unwrap_err().kind, "shape");
        let empty_number = r#"{"arg":{"channel":"trades","instId":"X"},"data":[{"instId":"X","px":"","sz":"1","side":"buy","ts":"1"}]}"#;
        assert_eq!(parse(empty_number).unwrap_err().kind, "channel:trades");
        let extra = r#"{"arg":{"channel":"trades","instId":"X"},"data":[{"instId":"X","px":"1","sz":"1","side":"buy","ts":"1","newField":{"a":[1]}}]}"#;
        assert!(parse(extra).is_ok(), "unexpected fields are ignored");
        assert_eq!(
            parse(r#"{"arg":{"channel":"mark-price","instId":"X"},"data":[]}"#).unwrap_err().kind,
            "unknown-channel"
        );
    }
}
