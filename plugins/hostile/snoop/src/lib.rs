//! A hostile plugin used by the key-isolation test (`tests/isolation.rs`): it tries every route
//! a strategy has to something it should not see and keeps a tape of every byte the host hands
//! it, which `snapshot()` returns for the test to scan for the account's secrets.
//!
//! What goes on the tape, one line per item (`{:?}` of the value, and the raw text of every
//! string the host sent, so no escaping can hide a byte):
//!
//! - the config `init` receives, and any state `restore` is handed;
//! - every event, through every handler of [`Strategy`] (tickers arrive either way), and each
//!   batch end;
//! - the result, `Ok` or `Err` with the whole denial, of every host call it makes:
//!   - every view: `find-instrument` on real, unknown and junk symbols (empty, a path, an
//!     environment variable's name, 10 KB), `get-instrument` for ids 0..=2000, `best-bid-ask`
//!     for 0..=50, its positions, the balances, its open orders, the host clock;
//!   - a subscription to every channel of ids 0..=50 (and unsubscriptions);
//!   - orders, a few per timer tick so its rate stays modest: marketable ones on a granted
//!     instrument (so it has fills), every order kind, oversize, off-tick, NaN / infinite /
//!     negative / zero prices and sizes, unknown instruments; amends and cancels of its own
//!     orders, of garbage ids and of ids shaped like another plugin's; `cancel-all`;
//!   - timers, and log lines built to upset a log pipeline (their results are not readable).
//!
//! The tape holds about 8 MiB: when full it drops its oldest half and keeps going. The plugin
//! sweeps in `init`, on a 200 ms interval and on some events. Its config is ignored (`{}`).

use std::fmt::Debug;
use tradebox_sdk::log::{self, LogLevel};
use tradebox_sdk::prelude::*;
use tradebox_sdk::{Connectivity, Denial, InstrumentKind};

/// How much of what it saw the plugin keeps.
const TAPE_CAP: usize = 8 << 20;
/// The ids it tries in `get-instrument`.
const MAX_PROBE_ID: u32 = 2_000;
/// The ids it tries to subscribe to and quote.
const MAX_SUB_ID: u32 = 50;
/// The sweep interval.
const TICK_MS: u64 = 200;
/// Own order ids remembered for amends and cancels.
const OWN_IDS: usize = 64;

const CHANNELS: [Channel; 4] = [Channel::Ticker, Channel::Book5, Channel::Trades, Channel::Candle1m];
const KINDS: [OrderKind; 5] =
    [OrderKind::Limit, OrderKind::Market, OrderKind::PostOnly, OrderKind::Ioc, OrderKind::Fok];

/// Everything the plugin received, oldest first.
struct Tape {
    buf: Vec<u8>,
    dropped: u64,
}

impl Tape {
    fn new() -> Self {
        Tape { buf: Vec::with_capacity(TAPE_CAP), dropped: 0 }
    }

    fn raw(&mut self, bytes: &[u8]) {
        let bytes = &bytes[..bytes.len().min(TAPE_CAP / 2)];
        if self.buf.len() + bytes.len() > TAPE_CAP {
            let half = self.buf.len() / 2;
            self.buf.drain(..half);
            self.dropped += half as u64;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// One line: `tag {value:?}`.
    fn put(&mut self, tag: &str, value: &dyn Debug) {
        let line = format!("{tag} {value:?}\n");
        self.raw(line.as_bytes());
    }

    /// The raw text of a string the host sent (Debug escapes some bytes).
    fn text(&mut self, tag: &str, s: &str) {
        self.raw(tag.as_bytes());
        self.raw(b" raw: ");
        self.raw(s.as_bytes());
        self.raw(b"\n");
    }

    fn denial(&mut self, tag: &str, d: &Denial) {
        self.text(tag, &d.code);
        self.text(tag, &d.message);
    }

    /// A call's result, with the raw text of a denial.
    fn result<T: Debug>(&mut self, tag: &str, r: &Result<T, Denial>) {
        self.put(tag, r);
        if let Err(d) = r {
            self.denial(tag, d);
        }
    }

    fn instrument(&mut self, tag: &str, i: &Instrument) {
        self.put(tag, i);
        for s in [&i.symbol, &i.base_currency, &i.quote_currency] {
            self.text(tag, s);
        }
    }
}

struct Snoop {
    tape: Tape,
    /// Instruments `get-instrument` showed it.
    granted: Vec<Instrument>,
    /// The instrument it trades (BTC-USDT when granted).
    main: Option<Instrument>,
    own: Vec<String>,
    ticks: u64,
    events: u64,
    batches: u64,
    fills: u64,
}

/// Strings that have no business being instrument symbols.
fn junk_symbols() -> Vec<String> {
    let mut v: Vec<String> = [
        "BTC-USDT",
        "ETH-USDT",
        "BTC-USDT-SWAP",
        "SOL-USDT",
        "btc-usdt",
        "*",
        "BTC-*",
        "",
        " ",
        "../../etc/passwd",
        "/proc/self/environ",
        "OKX_API_SECRET",
        "OKX_API_KEY",
        "OKX_PASSPHRASE",
        "$OKX_API_SECRET",
        "${OKX_API_SECRET}",
        "secret",
        "passphrase",
        "api_key",
        "credentials",
        "\0",
        "BTC-USDT\0",
        "%s%s%s%n",
        "{}",
        "🦀",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("A".repeat(10 * 1024));
    v
}

fn id_of(i: &Instrument) -> InstrumentId {
    i.id
}

impl Snoop {
    /// Every view, every time.
    fn views(&mut self, why: &str) {
        self.tape.put("sweep", &why);
        for symbol in junk_symbols() {
            let found = views::find_instrument(&symbol);
            let shown = if symbol.len() > 64 { format!("<{} bytes>", symbol.len()) } else { symbol.clone() };
            self.tape.put(&format!("find_instrument({shown:?})"), &found);
            if let Some(i) = &found {
                self.tape.instrument("find_instrument", i);
            }
        }
        let mut granted = Vec::new();
        let mut none = 0u32;
        for id in 0..=MAX_PROBE_ID {
            match views::get_instrument(id) {
                Some(i) => {
                    self.tape.instrument(&format!("get_instrument({id})"), &i);
                    granted.push(i);
                }
                None => none += 1,
            }
        }
        for id in [u32::MAX, u32::MAX - 1, 1 << 31, 65_535, 65_536] {
            let i = views::get_instrument(id);
            self.tape.put(&format!("get_instrument({id})"), &i);
        }
        self.tape.put("get_instrument none for ids", &none);
        for id in (0..=MAX_SUB_ID).chain([u32::MAX]) {
            let q = views::best_bid_ask(id);
            if q.is_some() {
                self.tape.put(&format!("best_bid_ask({id})"), &q);
            }
        }
        let positions = views::positions();
        self.tape.put("positions", &positions);
        let balances = views::balances();
        self.tape.put("balances", &balances);
        for b in &balances {
            self.tape.text("balance currency", &b.currency);
        }
        let open = views::open_orders();
        self.tape.put("open_orders", &open);
        for o in &open {
            self.tape.text("open order id", &o.client_order_id);
            if let Some(r) = &o.reason {
                self.tape.text("open order reason", r);
            }
        }
        let now = log::now();
        self.tape.put("now", &now);
        if self.main.is_none() {
            self.main = granted
                .iter()
                .find(|i| i.symbol == "BTC-USDT")
                .or_else(|| granted.iter().find(|i| i.kind == InstrumentKind::Spot))
                .or(granted.first())
                .cloned();
        }
        self.granted = granted;
    }

    /// Every channel of every id 0..=50; drops the streams of ids that do not exist again, and
    /// now and then one real stream (taken again on the next subscription sweep).
    fn subscriptions(&mut self) {
        let mut refused = 0u32;
        for id in 0..=MAX_SUB_ID {
            for channel in CHANNELS {
                let r = feeds::subscribe(id, channel);
                if r.is_err() {
                    refused += 1;
                    // Each distinct refusal once per sweep is enough: the text is the same.
                    if refused <= 8 || self.granted.iter().any(|i| i.id == id) {
                        self.tape.result(&format!("subscribe({id}, {channel:?})"), &r);
                    }
                } else {
                    self.tape.result(&format!("subscribe({id}, {channel:?})"), &r);
                }
            }
        }
        let r = feeds::subscribe(u32::MAX, Channel::Ticker);
        self.tape.result("subscribe(u32::MAX, ticker)", &r);
        self.tape.put("subscribe refusals", &refused);
        for id in 0..=MAX_SUB_ID {
            if !self.granted.iter().any(|i| i.id == id) {
                feeds::unsubscribe(id, Channel::Candle1m);
            }
        }
        feeds::unsubscribe(u32::MAX, Channel::Trades);
        if self.ticks % 25 == 24
            && let Some(i) = self.granted.iter().find(|i| i.symbol == "BTC-USDT-SWAP")
        {
            feeds::unsubscribe(i.id, Channel::Trades);
            self.tape.put("unsubscribe trades", &i.id);
        }
    }

    fn remember(&mut self, r: &Result<String, Denial>) {
        if let Ok(id) = r {
            self.tape.text("own id", id);
            self.own.push(id.clone());
            if self.own.len() > OWN_IDS {
                self.own.remove(0);
            }
        }
    }

    fn place(&mut self, what: &str, request: OrderRequest) {
        self.tape.put(&format!("place {what}"), &request);
        let r = orders::place(request);
        self.tape.result(&format!("place {what}"), &r);
        self.remember(&r);
    }

    fn cancel(&mut self, id: &str) {
        let r = orders::cancel(id);
        let shown = if id.len() > 40 { format!("<{} bytes>", id.len()) } else { id.to_string() };
        self.tape.result(&format!("cancel({shown:?})"), &r);
    }

    fn amend(&mut self, id: &str, price: Option<f64>, size: Option<f64>) {
        let r = orders::amend(id, price, size);
        let shown = if id.len() > 40 { format!("<{} bytes>", id.len()) } else { id.to_string() };
        self.tape.result(&format!("amend({shown:?}, {price:?}, {size:?})"), &r);
    }

    /// Ids shaped like another plugin's: `tb` + slot (2 base-36 digits) + the host's epoch (6)
    /// + a sequence number, with the slot changed from its own.
    fn foreign_ids(&self) -> Vec<String> {
        let Some(mine) = self.own.last() else { return vec!["tb00000000001".into(), "tb01abcdef1".into()] };
        if mine.len() < 11 || !mine.is_ascii() {
            return vec![];
        }
        let (slot, epoch) = (&mine[2..4], &mine[4..10]);
        let seq = u64::from_str_radix(&mine[10..], 36).unwrap_or(1);
        let mut out = Vec::new();
        for other in ["00", "01", "02", "03", "04"] {
            if other == slot {
                continue;
            }
            for back in 1..=4u64 {
                out.push(format!("tb{other}{epoch}{}", base36(seq.saturating_sub(back).max(1))));
            }
        }
        out
    }

    /// A few orders per tick, a different set each time.
    fn trade(&mut self) {
        let Some(main) = self.main.clone() else { return };
        let id = main.id;
        let quote = views::best_bid_ask(id);
        self.tape.put("main quote", &quote);
        let Some(q) = quote else { return };
        let (bid, ask, tick, min) = (q.bid, q.ask, main.tick_size, main.min_size.max(main.lot_size));
        let req = OrderRequest::with_kind;
        match self.ticks % 12 {
            0 => self.place("ioc buy at ask", req(id, Side::Buy, OrderKind::Ioc, Some(ask), min)),
            1 => self.place("ioc sell at bid", req(id, Side::Sell, OrderKind::Ioc, Some(bid), min)),
            2 => self.place("market buy", OrderRequest::market(id, Side::Buy, min)),
            3 => self.place("market sell", OrderRequest::market(id, Side::Sell, min)),
            4 => {
                self.place("oversize", OrderRequest::limit(id, Side::Buy, bid, 1e6));
                self.place("max size", OrderRequest::limit(id, Side::Buy, bid, f64::MAX));
            }
            5 => {
                self.place("off-tick rest", OrderRequest::limit(id, Side::Buy, bid * 0.98 + tick * 0.37, min));
                self.place("post-only crossing", OrderRequest::post_only(id, Side::Buy, ask + tick, min));
            }
            6 => {
                self.place("nan size", OrderRequest::limit(id, Side::Buy, bid, f64::NAN));
                self.place("inf price", OrderRequest::limit(id, Side::Buy, f64::INFINITY, min));
                self.place("negative size", OrderRequest::limit(id, Side::Buy, bid, -min));
                self.place("negative price", OrderRequest::limit(id, Side::Buy, -bid, min));
                self.place("zero size", OrderRequest::limit(id, Side::Buy, bid, 0.0));
                self.place("no price", req(id, Side::Buy, OrderKind::Limit, None, min));
                self.place("sub-lot size", OrderRequest::limit(id, Side::Buy, bid, min * 1e-9));
                self.place("nan market", OrderRequest::market(id, Side::Sell, f64::NAN));
                self.place("far below band", OrderRequest::limit(id, Side::Buy, bid * 0.5, min));
            }
            7 => {
                for bad in [9_999, u32::MAX, MAX_PROBE_ID + 1] {
                    self.place(&format!("unknown instrument {bad}"), OrderRequest::limit(bad, Side::Buy, bid, min));
                }
                self.place("fok buy at ask", req(id, Side::Buy, OrderKind::Fok, Some(ask), min));
                self.place("reduce-only sell", OrderRequest::limit(id, Side::Sell, ask, 1_000.0).reduce_only());
            }
            8 => {
                if let Some(own) = self.own.last().cloned() {
                    self.amend(&own, Some(bid * 0.97), None);
                    self.amend(&own, Some(f64::NAN), None);
                    self.amend(&own, None, Some(-1.0));
                    self.amend(&own, None, Some(1e9));
                }
                if let Some(oldest) = self.own.first().cloned() {
                    self.cancel(&oldest);
                }
                for garbage in ["", "x", "tb"] {
                    self.amend(garbage, Some(bid), None);
                }
            }
            9 => {
                let x = "x".repeat(100);
                for garbage in ["", "x", x.as_str(), "tb", "../../etc/passwd", "\0", "🦀", "OKX_API_SECRET"] {
                    self.cancel(garbage);
                }
                for other in self.foreign_ids() {
                    self.cancel(&other);
                    self.amend(&other, Some(bid), None);
                }
            }
            10 => {
                for kind in KINDS {
                    // Resting, far enough from the market to stay inside the price band.
                    let price = if kind == OrderKind::Market { None } else { Some(bid * 0.97) };
                    self.place(&format!("kind {kind:?}"), req(id, Side::Buy, kind, price, min));
                }
                let r = orders::cancel_all(Some(id));
                self.tape.result("cancel_all(main)", &r);
                let r = orders::cancel_all(Some(u32::MAX));
                self.tape.result("cancel_all(u32::MAX)", &r);
            }
            _ => {
                let r = orders::cancel_all(None);
                self.tape.result("cancel_all(None)", &r);
                // Another instrument it was granted: orders there are the account's too.
                if let Some(other) = self.granted.iter().find(|i| i.id != id).cloned()
                    && let Some(oq) = views::best_bid_ask(other.id)
                {
                    let size = other.min_size.max(other.lot_size);
                    self.place("other instrument", OrderRequest::limit(other.id, Side::Buy, oq.bid * 0.97, size));
                }
            }
        }
    }

    /// Log lines built to confuse a log pipeline.
    fn logs(&mut self) {
        let k = self.ticks;
        match k % 4 {
            0 => {
                log::log(
                    LogLevel::Info,
                    &format!(
                        "snoop tick {k} \x1b[31mred\x1b[0m \0 nul \r\n2099-01-01T00:00:00Z ERROR tradebox: forged line secret="
                    ),
                );
                log::log(LogLevel::Trace, "{} {:?} %s %x %n {{plugin}} ${OKX_API_SECRET}");
            }
            1 => {
                // Long, with a multi-byte character across the host's 1024-byte cut.
                let long = format!("{}{}", "a".repeat(1023), "é".repeat(3000));
                log::log(LogLevel::Warn, &long);
                log::log(LogLevel::Debug, "");
            }
            2 => {
                let shown = format!("{:?}", self.own.last());
                log::log(LogLevel::Error, &format!("snoop: last own id {shown}, {} fills", self.fills));
            }
            _ => {
                log::log(LogLevel::Info, "\u{202e}reversed\u{202c} \u{feff}bom \u{7f} del");
            }
        }
    }

    fn sweep(&mut self, why: &str) {
        self.views(why);
        if self.ticks.is_multiple_of(10) {
            self.subscriptions();
        }
        self.trade();
        self.logs();
    }

    fn event(&mut self, tag: &str, value: &dyn Debug) {
        self.events += 1;
        self.tape.put(tag, value);
        // Now and then look at the market and its own orders from inside an event.
        if self.events.is_multiple_of(200) {
            for i in self.granted.clone() {
                let q = views::best_bid_ask(id_of(&i));
                self.tape.put("event best_bid_ask", &q);
            }
            let open = views::open_orders();
            self.tape.put("event open_orders", &open);
        }
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

impl Strategy for Snoop {
    fn init(config: &str) -> Result<Self, String> {
        let mut s = Snoop {
            tape: Tape::new(),
            granted: Vec::new(),
            main: None,
            own: Vec::new(),
            ticks: 0,
            events: 0,
            batches: 0,
            fills: 0,
        };
        s.tape.put("config", &config);
        s.tape.text("config", config);
        let interval = timers::set_interval(TICK_MS);
        s.tape.put("set_interval", &interval);
        for (what, id) in [("set_timer(0)", timers::set_timer(0)), ("set_timer(max)", timers::set_timer(u64::MAX))] {
            s.tape.put(what, &id);
        }
        let far = timers::set_timer(u64::MAX - 1);
        timers::cancel_timer(far);
        timers::cancel_timer(u64::MAX);
        timers::cancel_timer(0);
        s.views("init");
        s.subscriptions();
        s.trade();
        s.logs();
        Ok(s)
    }

    fn on_ticker(&mut self, ticker: &Ticker) {
        self.event("ticker", ticker);
    }

    fn on_book(&mut self, book: &Book) {
        self.event("book", book);
    }

    fn on_trade(&mut self, trade: &Trade) {
        self.event("trade", trade);
    }

    fn on_candle(&mut self, candle: &Candle) {
        self.event("candle", candle);
    }

    fn on_order(&mut self, order: &OrderUpdate) {
        self.event("order", order);
        self.tape.text("order id", &order.client_order_id);
        if let Some(reason) = &order.reason {
            self.tape.text("order reason", reason);
        }
        // A finished order: cancelling it again has to be refused.
        if matches!(order.state, OrderState::Filled | OrderState::Canceled | OrderState::Rejected) {
            let id = order.client_order_id.clone();
            self.cancel(&id);
        }
    }

    fn on_fill(&mut self, fill: &Fill) {
        self.fills += 1;
        self.event("fill", fill);
        for s in [&fill.client_order_id, &fill.fee_currency, &fill.trade_id] {
            self.tape.text("fill", s);
        }
        let positions = views::positions();
        self.tape.put("fill positions", &positions);
        let balances = views::balances();
        self.tape.put("fill balances", &balances);
    }

    fn on_position(&mut self, position: &Position) {
        self.event("position", position);
    }

    fn on_balance(&mut self, balance: &Balance) {
        self.event("balance", balance);
        self.tape.text("balance", &balance.currency);
    }

    fn on_timer(&mut self, timer: &TimerFired) {
        self.event("timer", timer);
        self.ticks += 1;
        self.sweep("timer");
    }

    fn on_risk_denied(&mut self, denial: &RiskDenial) {
        self.event("risk_denied", denial);
        self.tape.denial("risk_denied", &denial.denial);
    }

    fn on_connectivity(&mut self, change: &Connectivity) {
        self.event("connectivity", change);
        self.tape.text("connectivity link", &change.link);
        self.tape.text("connectivity detail", &change.detail);
    }

    fn on_trading_state(&mut self, change: &TradingStateChange) {
        self.event("trading_state", change);
        self.tape.text("trading_state", &change.reason);
    }

    fn on_batch_end(&mut self) {
        self.batches += 1;
        self.tape.put("batch_end", &self.batches);
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = self.tape.buf.clone();
        let summary = format!(
            "summary events {} batches {} fills {} ticks {} dropped {} own {:?}\n",
            self.events, self.batches, self.fills, self.ticks, self.tape.dropped, self.own
        );
        out.extend_from_slice(summary.as_bytes());
        out
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        self.tape.put("restore bytes", &state.len());
        self.tape.raw(&state[..state.len().min(64 * 1024)]);
        self.tape.raw(b"\n");
        Ok(())
    }
}

export_strategy!(Snoop);
tradebox_sdk::embed_manifest!();
