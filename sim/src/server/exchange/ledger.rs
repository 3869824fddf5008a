//! The account's paper trail as OKX reports it: finished orders (`trade/orders-history`,
//! `-archive`), fills with their transaction types (`trade/fills-history`), the bills each fill
//! writes (`account/bills`), fee rates (`account/trade-fee`) and the funding account's side
//! (`asset/currencies`, `asset/balances`).
//!
//! Bills are written when a fill is applied, with the balance after it: the ledger keeps its own
//! running cash per currency (taken from the venue's report the first time a currency moves) and
//! its own net position per swap, doing the venue's arithmetic (fees in the quote currency,
//! realised PnL on reducing fills), because the venue reports balances only after a batch of
//! fills, never per fill.

use super::{Exchange, FILLS_KEPT, InstrumentId, InstrumentKind, InstrumentSpec, OrderFilter, Records, page};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use tradebox_core::{BalanceReport, FillReport, Liquidity, Side};
use tradebox_okx::model as okx;

/// Bills kept for `account/bills` (up to two per fill).
const BILLS_KEPT: usize = 2 * FILLS_KEPT;

/// OKX's bill type of a trade.
const BILL_TYPE_TRADE: &str = "2";

/// One balance change, as `account/bills` lists it.
#[derive(Debug, Clone)]
struct Bill {
    bill_id: u64,
    inst_type: &'static str,
    inst_id: String,
    ccy: String,
    bal_chg: Decimal,
    bal: Decimal,
    sz: Decimal,
    px: Decimal,
    pnl: Decimal,
    fee: Decimal,
    mgn_mode: String,
    ord_id: String,
    cl_ord_id: String,
    tag: String,
    trade_id: String,
    exec_type: &'static str,
    sub_type: u16,
    ts: i64,
}

/// What `fills-history` adds to a fill: its transaction type, PnL and fee rate.
#[derive(Debug, Clone, Copy)]
struct FillExtra {
    bill_id: u64,
    sub_type: u16,
    pnl: Decimal,
    fee_rate: Decimal,
}

/// Bills, fill extras, and the running cash and positions they are computed from.
#[derive(Default)]
pub(super) struct Ledger {
    bills: VecDeque<Bill>,
    extras: VecDeque<FillExtra>,
    cash: BTreeMap<String, Decimal>,
    positions: HashMap<InstrumentId, (Decimal, Decimal)>,
}

/// OKX's transaction subtype of a fill: 1 buy / 2 sell for spot; for a net swap position,
/// 3 open long, 4 open short, 5 close long, 6 close short, judged by the position before it.
fn sub_type(kind: InstrumentKind, side: Side, before: Decimal) -> u16 {
    match (kind, side) {
        (InstrumentKind::Spot, Side::Buy) => 1,
        (InstrumentKind::Spot, Side::Sell) => 2,
        (InstrumentKind::Swap, Side::Buy) if before < Decimal::ZERO => 6,
        (InstrumentKind::Swap, Side::Buy) => 3,
        (InstrumentKind::Swap, Side::Sell) if before > Decimal::ZERO => 5,
        (InstrumentKind::Swap, Side::Sell) => 4,
    }
}

/// The order a fill belongs to, as its bills name it.
pub(super) struct FillOrder<'a> {
    pub record: &'a okx::Fill,
    pub td_mode: &'a str,
    pub fee_rate: Decimal,
}

impl Ledger {
    /// Writes the bills of one fill. The first bill takes the fill's `billId`; a second one
    /// (spot fills move two currencies) the next id from `next_bill`.
    pub(super) fn on_fill(
        &mut self,
        spec: &InstrumentSpec,
        fill: &FillReport,
        order: FillOrder<'_>,
        balances: &BTreeMap<String, BalanceReport>,
        next_bill: &mut u64,
    ) {
        let first_id = order.record.bill_id.parse::<u64>().unwrap_or(*next_bill);
        let value = fill.price * fill.size * spec.contract_value;
        let (mut pnl, mut before) = (Decimal::ZERO, Decimal::ZERO);
        // (currency, gross amount, signed change before the fee, fee charged here)
        let moves: Vec<(&str, Decimal, Decimal, Decimal)> = match (spec.kind, fill.side) {
            (InstrumentKind::Spot, Side::Buy) => {
                vec![
                    (spec.quote.as_str(), value, -value, fill.fee),
                    (spec.base.as_str(), fill.size, fill.size, Decimal::ZERO),
                ]
            }
            (InstrumentKind::Spot, Side::Sell) => {
                vec![
                    (spec.quote.as_str(), value, value, fill.fee),
                    (spec.base.as_str(), fill.size, -fill.size, Decimal::ZERO),
                ]
            }
            (InstrumentKind::Swap, side) => {
                let (size, avg) = self.positions.entry(spec.id).or_default();
                before = *size;
                let signed = if side == Side::Buy { fill.size } else { -fill.size };
                pnl = tradebox_core::apply_net_fill(size, avg, signed, fill.price) * spec.contract_value;
                vec![(spec.quote.as_str(), fill.size, pnl, fill.fee)]
            }
        };
        let sub = sub_type(spec.kind, fill.side, before);
        let mgn_mode = if order.td_mode.is_empty() { "cash" } else { order.td_mode };
        for (k, (ccy, sz, change, fee)) in moves.into_iter().enumerate() {
            let bill_id = if k == 0 {
                first_id
            } else {
                *next_bill += 1;
                *next_bill
            };
            let cash = self
                .cash
                .entry(ccy.to_string())
                .or_insert_with(|| balances.get(ccy).map_or(Decimal::ZERO, |b| b.total));
            *cash += change - fee;
            let r = order.record;
            self.bills.push_back(Bill {
                bill_id,
                inst_type: super::inst_type(spec.kind),
                inst_id: spec.symbol.clone(),
                ccy: ccy.to_string(),
                bal_chg: change - fee,
                bal: *cash,
                sz,
                px: fill.price,
                pnl: if spec.kind == InstrumentKind::Swap { pnl } else { Decimal::ZERO },
                fee: -fee,
                mgn_mode: mgn_mode.to_string(),
                ord_id: r.ord_id.clone(),
                cl_ord_id: r.cl_ord_id.clone(),
                tag: r.tag.clone(),
                trade_id: r.trade_id.clone(),
                exec_type: if fill.liquidity == Liquidity::Maker { "M" } else { "T" },
                sub_type: sub,
                ts: fill.ts_ms,
            });
        }
        while self.bills.len() > BILLS_KEPT {
            self.bills.pop_front();
        }
        self.extras.push_back(FillExtra { bill_id: first_id, sub_type: sub, pnl, fee_rate: order.fee_rate });
        while self.extras.len() > FILLS_KEPT {
            self.extras.pop_front();
        }
    }

    fn extra(&self, bill_id: u64) -> Option<&FillExtra> {
        let i = self.extras.binary_search_by_key(&bill_id, |e| e.bill_id).ok()?;
        self.extras.get(i)
    }
}

/// Filters of the history endpoints (each reads the ones OKX documents for it).
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// `instType`.
    pub inst_type: String,
    /// `instFamily` (swaps: `BTC-USDT`).
    pub inst_family: String,
    /// `instId`.
    pub inst_id: String,
    /// `ordId` (fills).
    pub ord_id: String,
    /// `ordType`, a comma list (orders).
    pub ord_types: Vec<String>,
    /// `state` (orders).
    pub state: String,
    /// `category` (orders; every simulated order is `normal`).
    pub category: String,
    /// `subType` (fills, bills).
    pub sub_type: String,
    /// `type` (bills).
    pub bill_type: String,
    /// `ccy` (bills).
    pub ccy: String,
    /// `mgnMode` (bills).
    pub mgn_mode: String,
    /// `ctType` (bills).
    pub ct_type: String,
    /// Records at or after this time, ms (`cTime` for orders, `ts` otherwise).
    pub begin: Option<i64>,
    /// Records at or before this time, ms.
    pub end: Option<i64>,
    /// Id paging and `limit`.
    pub page: OrderFilter,
}

impl HistoryQuery {
    fn family_of(&self, spec: Option<&InstrumentSpec>) -> bool {
        self.inst_family.is_empty()
            || spec.is_some_and(|s| {
                s.kind != InstrumentKind::Spot && format!("{}-{}", s.base, s.quote) == self.inst_family
            })
    }

    fn within(&self, ts: i64) -> bool {
        self.begin.is_none_or(|b| ts >= b) && self.end.is_none_or(|e| ts <= e)
    }
}

fn s(d: Decimal) -> String {
    d.normalize().to_string()
}

fn id_of(text: &str) -> u128 {
    text.parse().unwrap_or(0)
}

impl Exchange {
    /// `trade/orders-history(-archive)`: finished orders, newest first, paged by `ordId`.
    pub fn orders_history(&self, q: &HistoryQuery) -> Vec<Value> {
        self.pump();
        let r = self.records.lock();
        let mut v: Vec<&okx::OrderDetails> = r
            .finished
            .iter()
            .filter_map(|id| r.orders.get(id))
            .map(|o| &o.details)
            .filter(|d| d.inst_type == q.inst_type)
            .filter(|d| q.inst_id.is_empty() || d.inst_id == q.inst_id)
            .filter(|d| q.family_of(self.spec(&d.inst_id)))
            .filter(|d| {
                q.ord_types.is_empty()
                    || q.ord_types.iter().any(|t| serde_json::to_value(d.ord_type).is_ok_and(|v| v == t.as_str()))
            })
            .filter(|d| q.state.is_empty() || serde_json::to_value(d.state).is_ok_and(|v| v == q.state.as_str()))
            .filter(|_| q.category.is_empty() || q.category == "normal")
            .filter(|d| q.within(d.c_time))
            .collect();
        v.sort_by_key(|d| std::cmp::Reverse(id_of(&d.ord_id)));
        page(v, &q.page, |d| id_of(&d.ord_id))
            .into_iter()
            .map(|d| {
                let mut item = serde_json::to_value(d).unwrap_or_default();
                let spot = d.inst_type == "SPOT";
                if let Some(obj) = item.as_object_mut() {
                    for (k, v) in [
                        ("category", "normal"),
                        ("source", ""),
                        ("stpMode", "cancel_maker"),
                        ("pnl", "0"),
                        ("rebate", "0"),
                        ("lever", if spot { "" } else { "10" }),
                        ("tgtCcy", ""),
                        ("ccy", ""),
                        ("algoId", ""),
                        ("algoClOrdId", ""),
                        ("cancelSourceReason", ""),
                        ("tradeQuoteCcy", if spot { d.fee_ccy.as_str() } else { "" }),
                    ] {
                        obj.entry(k).or_insert_with(|| Value::String(v.to_string()));
                    }
                    obj.entry("attachAlgoOrds").or_insert_with(|| json!([]));
                    obj.entry("rebateCcy").or_insert_with(|| Value::String(d.fee_ccy.clone()));
                }
                item
            })
            .collect()
    }

    /// `trade/fills-history`: fills with their transaction type, newest first, paged by `billId`.
    pub fn fills_history(&self, q: &HistoryQuery) -> Vec<Value> {
        self.pump();
        let r = self.records.lock();
        let v: Vec<(&okx::Fill, Option<&FillExtra>)> = r
            .fills
            .iter()
            .rev()
            .filter(|f| f.inst_type == q.inst_type)
            .filter(|f| q.inst_id.is_empty() || f.inst_id == q.inst_id)
            .filter(|f| q.ord_id.is_empty() || f.ord_id == q.ord_id)
            .filter(|f| q.family_of(self.spec(&f.inst_id)))
            .filter(|f| q.within(f.ts))
            .map(|f| (f, f.bill_id.parse().ok().and_then(|id| r.ledger.extra(id))))
            .filter(|(_, e)| q.sub_type.is_empty() || e.is_some_and(|e| e.sub_type.to_string() == q.sub_type))
            .collect();
        page(v, &q.page, |(f, _)| id_of(&f.bill_id))
            .into_iter()
            .map(|(f, e)| {
                let mut item = serde_json::to_value(f).unwrap_or_default();
                let spot = f.inst_type == "SPOT";
                if let Some(obj) = item.as_object_mut() {
                    let text = |v: String| Value::String(v);
                    obj.insert("subType".into(), text(e.map(|e| e.sub_type.to_string()).unwrap_or_default()));
                    obj.insert("fillPnl".into(), text(e.map_or_else(|| "0".into(), |e| s(e.pnl))));
                    // Only SPOT and MARGIN fills carry a fee rate (negative: charged).
                    let rate = e.filter(|_| spot).map(|e| s(-e.fee_rate)).unwrap_or_default();
                    obj.insert("feeRate".into(), text(rate));
                    let quote = if spot {
                        self.spec(&f.inst_id).map(|s| s.quote.clone()).unwrap_or_default()
                    } else {
                        String::new()
                    };
                    obj.insert("tradeQuoteCcy".into(), text(quote));
                    for k in ["fillIdxPx", "fillMarkPx", "fillPxVol", "fillPxUsd", "fillMarkVol", "fillFwdPx"] {
                        obj.insert(k.into(), text(String::new()));
                    }
                }
                item
            })
            .collect()
    }

    /// `account/bills`: balance changes, newest first, paged by `billId`.
    pub fn bills_json(&self, q: &HistoryQuery) -> Vec<Value> {
        self.pump();
        let r = self.records.lock();
        let v: Vec<&Bill> = r
            .ledger
            .bills
            .iter()
            .rev()
            .filter(|b| q.inst_type.is_empty() || b.inst_type == q.inst_type)
            .filter(|b| q.inst_id.is_empty() || b.inst_id == q.inst_id)
            .filter(|b| q.ccy.is_empty() || q.ccy.split(',').any(|c| c == b.ccy))
            .filter(|b| q.mgn_mode.is_empty() || b.mgn_mode == q.mgn_mode)
            .filter(|b| q.ct_type.is_empty() || (b.inst_type == "SWAP" && q.ct_type == "linear"))
            .filter(|_| q.bill_type.is_empty() || q.bill_type == BILL_TYPE_TRADE)
            .filter(|b| q.sub_type.is_empty() || b.sub_type.to_string() == q.sub_type)
            .filter(|b| q.within(b.ts))
            .collect();
        page(v, &q.page, |b| u128::from(b.bill_id))
            .into_iter()
            .map(|b| {
                json!({
                    "billId": b.bill_id.to_string(), "type": BILL_TYPE_TRADE, "subType": b.sub_type.to_string(),
                    "instType": b.inst_type, "instId": b.inst_id, "ccy": b.ccy,
                    "balChg": s(b.bal_chg), "bal": s(b.bal), "posBalChg": "0", "posBal": "0",
                    "sz": s(b.sz), "px": s(b.px), "pnl": s(b.pnl), "fee": s(b.fee), "mgnMode": b.mgn_mode,
                    "ordId": b.ord_id, "clOrdId": b.cl_ord_id, "tag": b.tag, "tradeId": b.trade_id,
                    "execType": b.exec_type, "fillTime": b.ts.to_string(), "ts": b.ts.to_string(),
                    "interest": "0", "notes": "", "from": "", "to": "", "earnAmt": "", "earnApr": "",
                    "fillIdxPx": "", "fillMarkPx": "", "fillPxVol": "", "fillPxUsd": "", "fillMarkVol": "",
                    "fillFwdPx": "",
                })
            })
            .collect()
    }

    /// `account/trade-fee` item: the simulator charges one maker and one taker rate everywhere;
    /// OKX writes a charged rate as a negative number.
    pub fn trade_fee_json(&self, inst_type: &str) -> Value {
        let (maker, taker) = (s(-self.fees.0), s(-self.fees.1));
        let swap = matches!(inst_type, "SWAP" | "FUTURES");
        let u = |v: &str| if swap { v.to_string() } else { String::new() };
        json!({
            "level": "Lv1", "instType": inst_type,
            "feeGroup": [{"groupId": "1", "maker": maker, "taker": taker, "elpMaker": ""}],
            "maker": maker, "taker": taker, "makerU": u(&maker), "takerU": u(&taker),
            "makerUSDC": "", "takerUSDC": "", "delivery": "", "exercise": "", "category": "1",
            "ruleType": "normal", "fiat": [], "ts": self.clock().now_ms().to_string(),
        })
    }

    /// Every currency the simulator knows: its instruments' and its balances'.
    pub fn currencies(&self) -> BTreeSet<String> {
        self.pump();
        let mut all: BTreeSet<String> = self.specs.iter().flat_map(|s| [s.base.clone(), s.quote.clone()]).collect();
        all.extend(self.records.lock().balances.keys().cloned());
        all
    }
}

/// An `asset/currencies` item. The simulator has no chains: deposits and withdrawals are off.
pub fn currency_json(ccy: &str) -> Value {
    json!({
        "ccy": ccy, "name": ccy, "chain": format!("{ccy}-Simulated"), "logoLink": "", "ctAddr": "",
        "canDep": false, "canWd": false, "canInternal": false, "depEstOpenTime": "", "wdEstOpenTime": "",
        "minDep": "0", "minWd": "0", "minInternal": "0", "maxWd": "0", "wdTickSz": "8", "wdQuota": "0",
        "usedWdQuota": "0", "fee": "0", "minFee": "0", "maxFee": "0", "minFeeForCtAddr": "",
        "maxFeeForCtAddr": "", "burningFeeRate": "", "mainNet": true, "needTag": false,
        "minDepArrivalConfirm": "0", "minWdUnlockConfirm": "0", "depQuotaFixed": "", "usedDepQuotaFixed": "",
        "depQuoteDailyLayer2": "",
    })
}

impl Records {
    /// The fill's bills; called as the fill is recorded.
    pub(super) fn write_bills(
        &mut self,
        spec: &InstrumentSpec,
        fill: &FillReport,
        record: &okx::Fill,
        td_mode: &str,
        fees: (Decimal, Decimal),
    ) {
        let fee_rate = if fill.liquidity == Liquidity::Maker { fees.0 } else { fees.1 };
        let order = FillOrder { record, td_mode, fee_rate };
        self.ledger.on_fill(spec, fill, order, &self.balances, &mut self.next_bill);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_fills_open_and_close_by_the_position_before_them() {
        assert_eq!(sub_type(InstrumentKind::Swap, Side::Buy, Decimal::ZERO), 3);
        assert_eq!(sub_type(InstrumentKind::Swap, Side::Sell, Decimal::ONE), 5);
        assert_eq!(sub_type(InstrumentKind::Swap, Side::Sell, Decimal::ZERO), 4);
        assert_eq!(sub_type(InstrumentKind::Swap, Side::Buy, -Decimal::ONE), 6);
        assert_eq!(sub_type(InstrumentKind::Spot, Side::Sell, Decimal::ONE), 2);
    }
}
