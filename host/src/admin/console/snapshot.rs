//! What one console snapshot holds, read from the host at one moment.
//!
//! Typed, so that the page and the tests read the same names; numbers are `f64` as the page
//! draws them (money is shown, never computed with, here).

use super::{AUDIT_PER_SNAPSHOT, Curves, FIRST_AUDIT};
use crate::running::Host;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tradebox_core::{FeedStatus, InstrumentId};

/// Where a stream is: what it has already sent.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    seq: u64,
    audit_seq: Option<u64>,
    /// Whether the whole curves went out (in the first snapshot).
    curves_sent: bool,
}

/// One snapshot of the stream.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// 1, 2, ... per stream.
    pub seq: u64,
    /// The host's clock, ms.
    pub ts: i64,
    /// The venue's name.
    pub venue: String,
    /// The host has a staging venue (`[staging]`): plugins can be loaded or reloaded there.
    pub staging: bool,
    /// The account as a whole.
    pub account: Account,
    /// The plugins, live first, then staged.
    pub plugins: Vec<PluginView>,
    /// Prices of the instruments in use.
    pub prices: Vec<Price>,
    /// The WebSocket feeds (`None`: the venue has none).
    pub feeds: Option<FeedStatus>,
    /// The rate limits (`None`: the venue keeps none).
    pub rate_limits: Option<RateLimits>,
    /// Whether an audit log is kept (else `audit` stays empty).
    pub audit_kept: bool,
    /// Audit records since the previous snapshot, oldest first.
    pub audit: Vec<AuditLine>,
}

/// The account.
#[derive(Debug, Serialize)]
pub struct Account {
    /// `active`, `reduce_only`, `halted`.
    pub state: &'static str,
    /// Balances priced in USDT where a quote allows (`None`: no balances reported).
    pub equity: Option<f64>,
    /// Currencies with a balance but no USDT price, left out of `equity`.
    pub unpriced: Vec<String>,
    /// Balances as the venue reports them.
    pub balances: Vec<Balance>,
    /// PnL of every plugin and the host's own orders.
    pub pnl: Pnl,
    /// The account's circuit breaker: how far from its limits.
    pub breaker: crate::risk::breaker::Distance,
    /// New orders are refused while the audit log cannot be written.
    pub audit_failing: bool,
    /// Orders an earlier run left that this host tracks.
    pub adopted_open_orders: usize,
    /// Open orders no loaded plugin owns: left working by an unload, or adopted at start
    /// (slot 0). Nothing else shows them, and they still trade.
    pub unowned_orders: Vec<UnownedOrder>,
}

/// An open order without a loaded plugin.
#[derive(Debug, Serialize)]
pub struct UnownedOrder {
    /// The slot of the plugin that placed it (0: the host's own, adopted at start).
    pub slot: u32,
    /// The order.
    #[serde(flatten)]
    pub order: OpenOrder,
}

/// One currency's balance.
#[derive(Debug, Serialize)]
pub struct Balance {
    /// Currency.
    pub ccy: String,
    /// Total.
    pub total: f64,
    /// Free to use.
    pub available: f64,
}

/// Realised, unrealised, fees, and their sum (realised + unrealised − fees).
#[derive(Debug, Serialize, Default)]
pub struct Pnl {
    /// Realised.
    pub realized: f64,
    /// Open positions at the mark.
    pub unrealized: f64,
    /// Fees paid.
    pub fees: f64,
    /// realized + unrealized − fees.
    pub total: f64,
}

impl Pnl {
    fn of(realized: f64, unrealized: f64, fees: f64) -> Self {
        Self { realized, unrealized, fees, total: realized + unrealized - fees }
    }
}

/// One plugin.
#[derive(Debug, Serialize)]
pub struct PluginView {
    /// Its name.
    pub name: String,
    /// On the staging venue.
    pub staged: bool,
    /// `Running`, `Restarting`, `Disabled`, `Stopped`.
    pub run_state: String,
    /// `active`, `reduce_only`, `halted`.
    pub trading_state: Option<&'static str>,
    /// Its manifest's version.
    pub version: Option<String>,
    /// Who signed it.
    pub signer: Option<String>,
    /// sha256 of the component serving.
    pub hash: String,
    /// Hot reloads.
    pub reloads: u32,
    /// The file it was loaded from (`None`: uploaded).
    pub source: Option<String>,
    /// The operator's grant.
    pub granted: Option<crate::engine::Grants>,
    /// What its manifest asks for (`None`: a component without a manifest, or native code);
    /// it runs with the grant intersected with this.
    pub requested: Option<crate::engine::permissions::Requested>,
    /// Net positions.
    pub positions: Vec<Position>,
    /// PnL now.
    pub pnl: Pnl,
    /// PnL since load (`[ms, pnl]`), whole in a stream's first snapshot, empty after.
    pub pnl_curve: Vec<(i64, f64)>,
    /// Its open orders.
    pub open_orders: Vec<OpenOrder>,
    /// Its last fills, newest first.
    pub fills: Vec<FillView>,
    /// Denials since load, by code.
    pub denials: BTreeMap<&'static str, u64>,
    /// Counters.
    pub counts: Counts,
    /// The last failure.
    pub last_error: Option<String>,
    /// CPU against its caps.
    pub cpu: Cpu,
    /// Memory against its cap.
    pub memory: Memory,
}

/// A net position.
#[derive(Debug, Serialize)]
pub struct Position {
    /// Instrument.
    pub instrument: String,
    /// Signed size.
    pub size: f64,
}

/// An open order.
#[derive(Debug, Serialize)]
pub struct OpenOrder {
    /// Client id.
    pub client_id: String,
    /// Instrument.
    pub instrument: Option<String>,
    /// Side.
    pub side: tradebox_core::Side,
    /// Limit price.
    pub price: Option<f64>,
    /// Size.
    pub size: f64,
    /// Filled so far.
    pub filled: f64,
    /// Status.
    pub status: tradebox_core::OrderStatus,
}

/// A fill.
#[derive(Debug, Serialize)]
pub struct FillView {
    /// When (the host's clock), ms.
    pub ts: i64,
    /// Instrument.
    pub instrument: String,
    /// Side.
    pub side: tradebox_core::Side,
    /// Price.
    pub price: f64,
    /// Size.
    pub size: f64,
    /// Fee (negative: rebate).
    pub fee: f64,
    /// Its currency.
    pub fee_currency: String,
    /// Maker or taker.
    pub liquidity: tradebox_core::Liquidity,
    /// The order's client id.
    pub client_id: String,
}

/// Counters since load.
#[derive(Debug, Serialize)]
pub struct Counts {
    /// Orders sent.
    pub orders: u64,
    /// Fills.
    pub fills: u64,
    /// Requests denied.
    pub denied: u64,
    /// Orders the venue rejected.
    pub rejected: u64,
    /// Instance failures.
    pub failures: u32,
    /// Events delivered.
    pub events: u64,
}

/// CPU use.
#[derive(Debug, Serialize)]
pub struct Cpu {
    /// CPU time spent, µs (the page divides differences by time for a share of a core).
    pub used_us: u64,
    /// Its share of a core (0: none).
    pub share: f64,
    /// Budget per call, ms.
    pub deadline_ms: u64,
    /// Time spent waiting for its share, ms.
    pub throttled_ms: u64,
    /// Running in the background class (over its share lately).
    pub background: bool,
}

/// Memory use.
#[derive(Debug, Serialize)]
pub struct Memory {
    /// Held by its instance, bytes.
    pub used_bytes: u64,
    /// Its cap, bytes.
    pub cap_bytes: u64,
}

/// An instrument's price.
#[derive(Debug, Serialize)]
pub struct Price {
    /// Instrument.
    pub instrument: String,
    /// Best bid.
    pub bid: f64,
    /// Best ask.
    pub ask: f64,
    /// Last trade.
    pub last: f64,
}

/// The rate limits.
#[derive(Debug, Serialize)]
pub struct RateLimits {
    /// Counters since start.
    #[serde(flatten)]
    pub status: tradebox_core::RateLimitStatus,
    /// `fullest`'s plugin slots by name (a bucket names its plugin by slot).
    pub plugin_names: BTreeMap<u32, String>,
}

/// One audit record.
#[derive(Debug, Serialize)]
pub struct AuditLine {
    /// Its `seq`.
    pub seq: u64,
    /// Its `ts` as written (RFC 3339).
    pub ts: String,
    /// The plugin it is about.
    pub plugin: Option<String>,
    /// Its kind (`intent`, `risk`, `request`, `response`, `fill`, `order`, `state`, ...).
    pub kind: String,
    /// The rest of it in one line (long values cut).
    pub text: String,
    /// The record as written, long strings cut at [`TEXT_CAP`] characters.
    pub record: Value,
}

/// Longest string of a record the stream carries (a response body may be 64 KiB).
pub const TEXT_CAP: usize = 600;

/// Builds the next snapshot of a stream at `cursor`.
pub(crate) fn build(host: &Host, curves: &Curves, cursor: &mut Cursor) -> Snapshot {
    cursor.seq += 1;
    let hub = host.hub();
    let first = !cursor.curves_sent;
    cursor.curves_sent = true;
    let mut plugins = plugin_views(host, false, curves, first);
    if let Some(staging) = host.staging() {
        plugins.extend(plugin_views(staging, true, curves, first));
    }
    let status = host.venue().status();
    let (feeds, rate_limits) = match status {
        Some(s) => {
            let names = hub.plugins().iter().map(|s| (s.id, s.name.clone())).collect();
            (s.feeds, s.rate_limits.map(|status| RateLimits { status, plugin_names: names }))
        }
        None => (None, None),
    };
    let (audit_kept, audit) = match hub.audit() {
        Some(log) => (true, audit_lines(log, cursor)),
        None => (false, Vec::new()),
    };
    Snapshot {
        seq: cursor.seq,
        ts: hub.clock().now_ms(),
        venue: host.venue().name().to_string(),
        staging: host.staging().is_some(),
        account: account(host),
        prices: prices(host),
        plugins,
        feeds,
        rate_limits,
        audit_kept,
        audit,
    }
}

fn f(d: rust_decimal::Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

fn account(host: &Host) -> Account {
    let hub = host.hub();
    let balances: Vec<Balance> = hub
        .balances()
        .into_iter()
        .map(|b| Balance { ccy: b.currency, total: f(b.total), available: f(b.available) })
        .collect();
    let mut unpriced = Vec::new();
    let mut equity = 0.0;
    for b in &balances {
        match usdt_price(host, &b.ccy) {
            Some(p) => equity += b.total * p,
            None => unpriced.push(b.ccy.clone()),
        }
    }
    let (mut realized, mut unrealized, mut fees) = hub.pnl(crate::engine::tracker::HOST);
    for slot in hub.plugins() {
        let (r, u, f) = hub.pnl(slot.id);
        realized += r;
        unrealized += u;
        fees += f;
    }
    Account {
        state: hub.account_state().as_str(),
        equity: (!balances.is_empty()).then_some(equity),
        unpriced,
        balances,
        pnl: Pnl::of(realized, unrealized, fees),
        breaker: hub.account_breaker(),
        audit_failing: hub.audit().is_some_and(|a| a.failing()),
        adopted_open_orders: hub.adopted_open(),
        unowned_orders: unowned_orders(host),
    }
}

fn open_order(host: &Host, o: tradebox_core::OrderReport) -> OpenOrder {
    OpenOrder {
        instrument: host.hub().instrument(o.instrument).map(|i| i.symbol.clone()),
        side: o.side,
        price: o.price.map(f),
        size: f(o.size),
        filled: f(o.filled),
        status: o.status,
        client_id: o.client_id,
    }
}

fn unowned_orders(host: &Host) -> Vec<UnownedOrder> {
    let hub = host.hub();
    let loaded: BTreeSet<u32> = hub.plugins().iter().map(|s| s.id).collect();
    hub.all_open_orders()
        .into_iter()
        .filter(|(slot, _)| !loaded.contains(slot))
        .map(|(slot, o)| UnownedOrder { slot, order: open_order(host, o) })
        .collect()
}

/// One unit of `ccy` in USDT (and the stablecoins OKX quotes against it at ~1), from the
/// `CCY-USDT` spot quote's mid or last.
fn usdt_price(host: &Host, ccy: &str) -> Option<f64> {
    if ccy == "USDT" {
        return Some(1.0);
    }
    let spec = host.hub().instrument_by_symbol(&format!("{ccy}-USDT"))?;
    let q = host.hub().quote(spec.id)?;
    q.mid().or((q.last > 0.0).then_some(q.last))
}

fn prices(host: &Host) -> Vec<Price> {
    let hub = host.hub();
    let mut used: BTreeSet<InstrumentId> = BTreeSet::new();
    for slot in hub.plugins() {
        used.extend(hub.subscriptions(&slot).into_iter().map(|(i, _)| i));
        used.extend(hub.positions(slot.id).into_iter().map(|(i, _)| i));
    }
    used.into_iter()
        .filter_map(|id| {
            let spec = hub.instrument(id)?;
            let q = hub.quote(id)?;
            Some(Price { instrument: spec.symbol.clone(), bid: q.bid, ask: q.ask, last: q.last })
        })
        .collect()
}

fn plugin_views(host: &Host, staged: bool, curves: &Curves, first: bool) -> Vec<PluginView> {
    let hub = host.hub();
    let sources: BTreeMap<String, std::path::PathBuf> = host.sources().into_iter().collect();
    host.report()
        .into_iter()
        .map(|p| {
            let slot = host.slot(&p.name);
            let status = host.plugin_status(&p.name);
            let open_orders = slot
                .as_ref()
                .map(|s| hub.open_orders(s.id))
                .unwrap_or_default()
                .into_iter()
                .map(|o| open_order(host, o))
                .collect();
            let fills = host
                .activity()
                .fills(&p.name)
                .into_iter()
                .filter_map(|n| match n.what {
                    crate::engine::activity::Activity::Fill {
                        side,
                        symbol,
                        size,
                        price,
                        liquidity,
                        client_id,
                        fee,
                        fee_currency,
                    } => Some(FillView {
                        ts: n.ts_ms,
                        instrument: symbol,
                        side,
                        price: f(price),
                        size: f(size),
                        fee: f(fee),
                        fee_currency,
                        liquidity,
                        client_id,
                    }),
                    _ => None,
                })
                .collect();
            let denials = slot
                .as_ref()
                .map(|s| s.stats.denials_by_code().into_iter().map(|(c, n)| (c.as_str(), n)).collect())
                .unwrap_or_default();
            PluginView {
                staged,
                run_state: format!("{:?}", p.state),
                trading_state: slot.as_ref().map(|s| s.state().as_str()),
                version: status.as_ref().and_then(|s| s.manifest.as_ref().map(|m| m.version.clone())),
                signer: status.as_ref().map(|s| s.signer.clone()),
                hash: p.hash.clone(),
                reloads: p.reloads,
                source: sources.get(&p.name).map(|s| s.display().to_string()),
                granted: slot.as_ref().map(|s| s.permissions().granted.clone()),
                requested: slot.as_ref().and_then(|s| s.permissions().requested.clone()),
                positions: p
                    .positions
                    .iter()
                    .map(|(i, size)| Position { instrument: i.clone(), size: *size })
                    .collect(),
                pnl: Pnl::of(p.realized, p.unrealized, p.fees),
                pnl_curve: if first { curves.get(staged, &p.name) } else { Vec::new() },
                open_orders,
                fills,
                denials,
                counts: Counts {
                    orders: p.orders_sent,
                    fills: p.fills,
                    denied: p.denied,
                    rejected: p.rejected,
                    failures: p.failures,
                    events: p.events,
                },
                last_error: p.last_error.clone(),
                cpu: Cpu {
                    used_us: p.cpu_us,
                    share: p.cpu_share,
                    deadline_ms: p.deadline_ms,
                    throttled_ms: p.throttled_ms,
                    background: p.cpu_background,
                },
                memory: Memory { used_bytes: p.memory_bytes, cap_bytes: p.memory_cap_bytes },
                name: p.name,
            }
        })
        .collect()
}

/// The audit records written since the cursor's, as lines for the trail.
fn audit_lines(log: &crate::audit::AuditLog, cursor: &mut Cursor) -> Vec<AuditLine> {
    let (after, max) = match cursor.audit_seq {
        Some(seq) => (seq, AUDIT_PER_SNAPSHOT),
        None => (0, FIRST_AUDIT),
    };
    let lines = log.recent_since(after, max);
    if let Some((seq, _)) = lines.last() {
        cursor.audit_seq = Some(*seq);
    } else if cursor.audit_seq.is_none() {
        cursor.audit_seq = Some(0);
    }
    lines.into_iter().filter_map(|(seq, line)| audit_line(seq, &line)).collect()
}

/// One record as the trail shows it; `None` for a line that does not parse (never written by
/// this log, which writes whole JSON lines only).
fn audit_line(seq: u64, line: &str) -> Option<AuditLine> {
    let mut record: Value = serde_json::from_str(line).ok()?;
    cut_strings(&mut record);
    let map = record.as_object()?;
    let get = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
    // Short fields first (ids, states, codes), long ones (bodies, details) after them, so
    // what a line is about is never cut off by a body before it.
    let mut fields: Vec<(&String, String)> = map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "ts" | "seq" | "plugin" | "plugin_hash" | "paper" | "kind"))
        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    fields.sort_by_key(|(_, v)| v.len());
    let mut text = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("  ");
    if text.chars().count() > TEXT_CAP {
        text = text.chars().take(TEXT_CAP).collect::<String>() + "…";
    }
    Some(AuditLine {
        seq,
        ts: get("ts").unwrap_or_default(),
        plugin: get("plugin"),
        kind: get("kind").unwrap_or_default(),
        text,
        record,
    })
}

fn cut_strings(v: &mut Value) {
    match v {
        Value::String(s) if s.chars().count() > TEXT_CAP => {
            *s = s.chars().take(TEXT_CAP).collect::<String>() + "…";
        }
        Value::Array(items) => items.iter_mut().for_each(cut_strings),
        Value::Object(map) => map.values_mut().for_each(cut_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_line_reads_in_one_line_with_long_values_cut() {
        let body = "x".repeat(5_000);
        let line = format!(
            r#"{{"ts":"2026-12-07T10:00:00.000Z","seq":7,"plugin":"mm","kind":"response","path":"/api/v5/trade/order","status":200,"body":"{body}"}}"#
        );
        let a = audit_line(7, &line).expect("parses");
        assert_eq!((a.seq, a.kind.as_str(), a.plugin.as_deref()), (7, "response", Some("mm")));
        assert!(a.text.starts_with("status=200  path=/api/v5/trade/order  body=xxx"), "{}", a.text);
        assert!(a.text.chars().count() <= TEXT_CAP + 1);
        assert!(a.record["body"].as_str().expect("body").chars().count() <= TEXT_CAP + 1);
        assert!(audit_line(8, "not json").is_none());
    }
}
