//! The REST routes beside trading itself, over real HTTP with signed requests: market history,
//! the account's paper trail, fee rates, the funding account, mass-cancel and the batch forms
//! of cancel and amend, each answered with OKX's shapes and codes.

use super::tests::{key, raw, signed};
use super::*;
use serde_json::{Value, json};

const TRADER: &str = "key-read_only-trade";

async fn sim_with(funding: &[(&str, &str)]) -> SimServer {
    let config = SimServerConfig {
        keys: vec![key("read_only,trade", true), key("read_only", true)],
        run_market: false,
        funding: funding.iter().map(|(c, a)| (c.to_string(), a.parse().expect("amount"))).collect(),
        ..SimServerConfig::default()
    };
    SimServer::start(config).await.expect("sim starts")
}

fn now() -> String {
    tradebox_okx::sign::timestamp(tradebox_core::system_ms())
}

async fn get_as(sim: &SimServer, api_key: &str, path: &str) -> (u16, Value) {
    raw(sim, "GET", path, "", &signed(api_key, &now(), "GET", path, "")).await
}

async fn get(sim: &SimServer, path: &str) -> (u16, Value) {
    get_as(sim, TRADER, path).await
}

async fn post_as(sim: &SimServer, api_key: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    raw(sim, "POST", path, &body, &signed(api_key, &now(), "POST", path, &body)).await
}

async fn post(sim: &SimServer, path: &str, body: &Value) -> (u16, Value) {
    post_as(sim, TRADER, path, body).await
}

/// The `data` of a successful answer.
async fn data(sim: &SimServer, path: &str) -> Vec<Value> {
    let (status, body) = get(sim, path).await;
    assert_eq!((status, body["code"].as_str()), (200, Some("0")), "{path}: {body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

/// Asserts an OKX error answer.
fn refused((status, body): (u16, Value), want_status: u16, code: &str) {
    assert_eq!((status, body["code"].as_str()), (want_status, Some(code)), "{body}");
}

fn step(sim: &SimServer, n: usize) {
    for _ in 0..n {
        sim.exchange().venue().step();
        sim.exchange().pump();
    }
}

fn num(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a number string: {v}"))
}

#[tokio::test]
async fn market_history_is_served_with_okx_rows() {
    let sim = sim_with(&[]).await;
    step(&sim, 60);
    let spot = data(&sim, "/api/v5/market/tickers?instType=SPOT").await;
    let ids: Vec<&str> = spot.iter().filter_map(|t| t["instId"].as_str()).collect();
    assert_eq!(ids, ["BTC-USDT", "ETH-USDT"]);
    assert!(spot.iter().all(|t| t["instType"] == "SPOT" && num(&t["bidPx"]) < num(&t["askPx"])));
    let swaps = data(&sim, "/api/v5/market/tickers?instType=SWAP&instFamily=BTC-USDT").await;
    assert_eq!(swaps.len(), 1);
    assert!(data(&sim, "/api/v5/market/tickers?instType=FUTURES").await.is_empty());
    refused(get(&sim, "/api/v5/market/tickers").await, 400, "50014");
    refused(get(&sim, "/api/v5/market/tickers?instType=MARGIN").await, 400, "51000");

    // Candles: OKX's nine-field rows, newest first, the open one last to confirm.
    let rows = data(&sim, "/api/v5/market/candles?instId=BTC-USDT").await;
    assert!(!rows.is_empty());
    let first = rows[0].as_array().expect("a row is an array");
    assert_eq!(first.len(), 9);
    assert_eq!(first[8], "0", "the current candle is not confirmed");
    assert!(first[1..8].iter().all(|f| num(f) >= 0.0));
    assert!(num(&first[2]) >= num(&first[3]), "high >= low");
    for bar in ["1m", "5m", "15m", "1H", "4H", "1D", "1Dutc", "1W", "1M"] {
        let rows = data(&sim, &format!("/api/v5/market/history-candles?instId=BTC-USDT-SWAP&bar={bar}")).await;
        assert!(!rows.is_empty(), "{bar}");
        let ts = |r: &Value| r[0].as_str().and_then(|t| t.parse::<i64>().ok()).expect("ts");
        let open = ts(&rows[0]);
        let hour = 3_600_000;
        let aligned = match bar {
            "1m" => open % 60_000 == 0,
            "5m" => open % 300_000 == 0,
            "15m" => open % 900_000 == 0,
            "1H" => open % hour == 0,
            "4H" => open % (4 * hour) == 0,
            "1D" => (open + 8 * hour) % (24 * hour) == 0,
            _ => open % hour == 0,
        };
        assert!(aligned, "{bar} opens at {open}");
        assert!(rows.windows(2).all(|w| ts(&w[0]) > ts(&w[1])), "{bar}: newest first");
        // Swaps count volume in contracts, volCcy in base (contracts x 0.01).
        let (vol, vol_ccy) = (num(&rows[0][5]), num(&rows[0][6]));
        assert!((vol * 0.01 - vol_ccy).abs() < 1e-6, "{bar}: {vol} contracts, {vol_ccy} base");
    }
    let newest = rows[0][0].as_str().expect("ts").to_string();
    let older = data(&sim, &format!("/api/v5/market/history-candles?instId=BTC-USDT&after={newest}")).await;
    assert!(older.iter().all(|r| r[0].as_str() < Some(newest.as_str())));
    refused(get(&sim, "/api/v5/market/candles").await, 400, "50014");
    refused(get(&sim, "/api/v5/market/candles?instId=BTC-USDT&bar=7m").await, 400, "51000");
    refused(get(&sim, "/api/v5/market/history-candles?instId=NOPE-USDT").await, 200, "51001");

    // Public trades: newest first, the taker's side, string numbers.
    let trades = data(&sim, "/api/v5/market/trades?instId=BTC-USDT&limit=5").await;
    assert_eq!(trades.len(), 5);
    let ids: Vec<u64> = trades.iter().filter_map(|t| t["tradeId"].as_str()?.parse().ok()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(trades.iter().all(|t| {
        t["instId"] == "BTC-USDT"
            && (t["side"] == "buy" || t["side"] == "sell")
            && num(&t["px"]) > 0.0
            && t["source"] == "0"
    }));
    refused(get(&sim, "/api/v5/market/trades").await, 400, "50014");
}

/// Places a spot order and returns its ordId.
async fn place(sim: &SimServer, order: Value) -> String {
    let (status, body) = post(sim, "/api/v5/trade/order", &order).await;
    assert_eq!((status, body["code"].as_str()), (200, Some("0")), "{body}");
    body["data"][0]["ordId"].as_str().expect("ordId").to_string()
}

#[tokio::test]
async fn the_paper_trail_lists_orders_fills_and_bills() {
    let sim = sim_with(&[]).await;
    let ask = num(&data(&sim, "/api/v5/market/ticker?instId=BTC-USDT").await[0]["askPx"]);
    let above = format!("{:.1}", ask * 1.01);
    let filled = place(
        &sim,
        json!({"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "ioc", "px": above, "sz": "0.02", "clOrdId": "h1"}),
    )
    .await;
    let rest = place(
        &sim,
        json!({"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "1000", "sz": "0.01", "clOrdId": "h2"}),
    )
    .await;
    let (_, answer) = post(&sim, "/api/v5/trade/cancel-order", &json!({"instId": "BTC-USDT", "ordId": rest})).await;
    assert_eq!(answer["code"], "0", "{answer}");
    let live = place(
        &sim,
        json!({"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "1000", "sz": "0.01"}),
    )
    .await;

    // Finished orders only, newest first; OKX requires instType.
    for path in ["/api/v5/trade/orders-history", "/api/v5/trade/orders-history-archive"] {
        let orders = data(&sim, &format!("{path}?instType=SPOT")).await;
        let ids: Vec<&str> = orders.iter().filter_map(|o| o["ordId"].as_str()).collect();
        assert_eq!(ids, [rest.as_str(), filled.as_str()], "{path}: {orders:?}");
        assert!(!ids.contains(&live.as_str()));
        assert_eq!((orders[0]["state"].as_str(), orders[1]["state"].as_str()), (Some("canceled"), Some("filled")));
        assert_eq!(num(&orders[1]["accFillSz"]), 0.02);
        refused(get(&sim, path).await, 400, "50014");
    }
    let only = |q: &str| {
        let sim = &sim;
        let q = q.to_string();
        async move { data(sim, &format!("/api/v5/trade/orders-history?instType=SPOT&{q}")).await.len() }
    };
    assert_eq!(only("state=filled").await, 1);
    assert_eq!(only("ordType=limit,post_only").await, 1);
    assert_eq!(only(&format!("after={rest}")).await, 1);
    assert_eq!(only("limit=1").await, 1);
    assert!(data(&sim, "/api/v5/trade/orders-history?instType=SWAP").await.is_empty());
    refused(get(&sim, "/api/v5/trade/orders-history?instType=SPOT&state=live").await, 400, "51000");

    // Fills with their transaction type and fee rate (charged: negative).
    let fills = data(&sim, "/api/v5/trade/fills-history?instType=SPOT").await;
    assert!(!fills.is_empty());
    assert!(fills.iter().all(|f| f["ordId"] == filled.as_str()
        && f["subType"] == "1"
        && f["feeRate"] == "-0.001"
        && f["execType"] == "T"
        && f["tradeQuoteCcy"] == "USDT"
        && num(&f["fee"]) < 0.0));
    refused(get(&sim, "/api/v5/trade/fills-history").await, 400, "50014");

    // Bills: two per spot fill (quote and base), newest first, the balance after each.
    let bills = data(&sim, "/api/v5/account/bills").await;
    assert_eq!(bills.len(), 2 * fills.len());
    let bill_ids: Vec<u64> = bills.iter().filter_map(|b| b["billId"].as_str()?.parse().ok()).collect();
    assert!(bill_ids.windows(2).all(|w| w[0] > w[1]), "{bill_ids:?}");
    assert!(bills.iter().all(|b| b["type"] == "2" && b["subType"] == "1" && b["mgnMode"] == "cash"));
    let btc: f64 = bills.iter().filter(|b| b["ccy"] == "BTC").map(|b| num(&b["balChg"])).sum();
    assert!((btc - 0.02).abs() < 1e-12, "BTC bought: {btc}");
    let balance = data(&sim, "/api/v5/account/balance?ccy=USDT,BTC").await;
    let cash = |ccy: &str| {
        balance[0]["details"].as_array().and_then(|d| d.iter().find(|x| x["ccy"] == ccy)).map(|x| x["cashBal"].clone())
    };
    for ccy in ["USDT", "BTC"] {
        let newest = bills.iter().find(|b| b["ccy"] == ccy).expect("a bill");
        assert_eq!(Some(newest["bal"].clone()), cash(ccy), "{ccy}: {newest}");
    }
    let usdt = bills.iter().find(|b| b["ccy"] == "USDT").expect("USDT bill");
    let (chg, sz, fee) = (num(&usdt["balChg"]), num(&usdt["sz"]), num(&usdt["fee"]));
    assert!((chg - (-sz + fee)).abs() < 1e-9, "balChg = -value + fee: {usdt}");
    assert_eq!(data(&sim, "/api/v5/account/bills?ccy=BTC").await.len(), fills.len());
    let after = bill_ids[0];
    assert_eq!(data(&sim, &format!("/api/v5/account/bills?after={after}")).await.len(), bills.len() - 1);
    assert_eq!(data(&sim, &format!("/api/v5/account/bills?before={}", bill_ids[1])).await.len(), 1);

    // A swap fill opens a long: subType 3, cross margin, contracts as sz.
    let swap_ask = num(&data(&sim, "/api/v5/market/ticker?instId=BTC-USDT-SWAP").await[0]["askPx"]);
    place(
        &sim,
        json!({"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "ioc",
               "px": format!("{:.1}", swap_ask * 1.01), "sz": "2"}),
    )
    .await;
    let swap_bills = data(&sim, "/api/v5/account/bills?instType=SWAP").await;
    assert!(!swap_bills.is_empty());
    assert!(swap_bills.iter().all(|b| b["subType"] == "3" && b["mgnMode"] == "cross" && b["ccy"] == "USDT"));
    let swap_fills = data(&sim, "/api/v5/trade/fills-history?instType=SWAP&instFamily=BTC-USDT").await;
    assert!(swap_fills.iter().all(|f| f["subType"] == "3" && f["feeRate"] == ""), "{swap_fills:?}");
}

#[tokio::test]
async fn fee_rates_currencies_and_the_funding_account() {
    let sim = sim_with(&[("USDT", "500"), ("ETH", "0")]).await;
    let fee = data(&sim, "/api/v5/account/trade-fee?instType=SPOT&instId=BTC-USDT").await;
    assert_eq!((fee[0]["maker"].as_str(), fee[0]["taker"].as_str()), (Some("-0.0008"), Some("-0.001")));
    assert_eq!(fee[0]["feeGroup"][0], json!({"groupId": "1", "maker": "-0.0008", "taker": "-0.001", "elpMaker": ""}));
    assert_eq!(fee[0]["level"], "Lv1");
    let swap = data(&sim, "/api/v5/account/trade-fee?instType=SWAP").await;
    assert_eq!(swap[0]["takerU"], "-0.001");
    refused(get(&sim, "/api/v5/account/trade-fee").await, 400, "50014");
    refused(get(&sim, "/api/v5/account/trade-fee?instType=SPOT&instId=NOPE-USDT").await, 200, "51001");

    let all = data(&sim, "/api/v5/asset/currencies").await;
    let names: Vec<&str> = all.iter().filter_map(|c| c["ccy"].as_str()).collect();
    assert_eq!(names, ["BTC", "ETH", "USDT"]);
    assert!(all.iter().all(|c| c["canDep"] == false && c["canWd"] == false && c["chain"].is_string()));
    assert_eq!(data(&sim, "/api/v5/asset/currencies?ccy=ETH").await.len(), 1);

    // Only currencies with a balance are listed, as on OKX.
    let funding = data(&sim, "/api/v5/asset/balances").await;
    assert_eq!(funding, [json!({"ccy": "USDT", "bal": "500", "frozenBal": "0", "availBal": "500"})]);
    assert!(data(&sim, "/api/v5/asset/balances?ccy=BTC").await.is_empty());
    let plain = sim_with(&[]).await;
    assert!(data(&plain, "/api/v5/asset/balances").await.is_empty(), "no funding balance unless configured");
}

#[tokio::test]
async fn mass_cancel_is_only_for_options_as_on_okx() {
    let sim = sim_with(&[]).await;
    let path = "/api/v5/trade/mass-cancel";
    refused(post(&sim, path, &json!({"instType": "SPOT", "instFamily": "BTC-USDT"})).await, 400, "51000");
    refused(post(&sim, path, &json!({"instFamily": "BTC-USD"})).await, 400, "50014");
    refused(post(&sim, path, &json!({"instType": "OPTION"})).await, 400, "50014");
    refused(
        post(&sim, path, &json!({"instType": "OPTION", "instFamily": "BTC-USD", "lockInterval": "20000"})).await,
        400,
        "51000",
    );
    let (status, answer) = post(&sim, path, &json!({"instType": "OPTION", "instFamily": "BTC-USD"})).await;
    assert_eq!((status, &answer["data"]), (200, &json!([{"result": true}])), "{answer}");
    // It trades: a read-only key is refused.
    refused(
        post_as(&sim, "key-read_only", path, &json!({"instType": "OPTION", "instFamily": "BTC-USD"})).await,
        200,
        "50120",
    );
}

#[tokio::test]
async fn batch_cancel_and_amend_answer_per_item() {
    let sim = sim_with(&[]).await;
    let order = |cl: &str| json!({"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "1000", "sz": "0.01", "clOrdId": cl});
    let a = place(&sim, order("ba")).await;
    place(&sim, order("bb")).await;
    let amend = json!([
        {"instId": "BTC-USDT", "ordId": a, "newPx": "1001"},
        {"instId": "BTC-USDT", "clOrdId": "bb", "newSz": "0.02", "reqId": "r2"},
        {"instId": "BTC-USDT", "clOrdId": "never", "newPx": "999"},
    ]);
    let (status, answer) = post(&sim, "/api/v5/trade/amend-batch-orders", &amend).await;
    assert_eq!(
        (status, answer["code"].as_str(), answer["msg"].as_str()),
        (200, Some("2"), Some("Bulk operation partially succeeded."))
    );
    let codes: Vec<&str> =
        answer["data"].as_array().expect("items").iter().filter_map(|i| i["sCode"].as_str()).collect();
    assert_eq!(codes, ["0", "0", "51503"]);
    assert_eq!(answer["data"][1]["reqId"], "r2");
    assert!(answer["inTime"].is_string() && answer["outTime"].is_string());
    let pending = data(&sim, "/api/v5/trade/orders-pending?instType=SPOT").await;
    let px_of = |cl: &str| pending.iter().find(|o| o["clOrdId"] == cl).map(|o| (num(&o["px"]), num(&o["sz"])));
    assert_eq!(px_of("ba"), Some((1001.0, 0.01)));
    assert_eq!(px_of("bb"), Some((1000.0, 0.02)));

    let cancel = json!([{"instId": "BTC-USDT", "ordId": a}, {"instId": "BTC-USDT", "clOrdId": "bb"}]);
    let (_, answer) = post(&sim, "/api/v5/trade/cancel-batch-orders", &cancel).await;
    assert_eq!(answer["code"], "0", "{answer}");
    assert!(data(&sim, "/api/v5/trade/orders-pending?instType=SPOT").await.is_empty());
    let (_, answer) = post(&sim, "/api/v5/trade/cancel-batch-orders", &cancel).await;
    assert_eq!((answer["code"].as_str(), answer["msg"].as_str()), (Some("1"), Some("All operations failed")));
    assert!(answer["data"].as_array().expect("items").iter().all(|i| i["sCode"] == "51400"));
    let many = Value::Array((0..21).map(|_| json!({"instId": "BTC-USDT", "ordId": a})).collect());
    refused(post(&sim, "/api/v5/trade/cancel-batch-orders", &many).await, 200, "51111");
    refused(post(&sim, "/api/v5/trade/amend-batch-orders", &json!([])).await, 400, "50014");
}

#[tokio::test]
async fn account_rate_limit_answers_okx_shape_with_the_enforced_cap() {
    let sim = sim_with(&[]).await;
    let items = data(&sim, "/api/v5/trade/account-rate-limit").await;
    assert_eq!(items.len(), 1, "{items:?}");
    for field in ["accRateLimit", "fillRatio", "mainFillRatio", "nextAccRateLimit", "ts"] {
        assert!(items[0][field].is_string(), "{field} missing: {}", items[0]);
    }
    let typed: tradebox_okx::model::AccountRateLimit = serde_json::from_value(items[0].clone()).expect("typed");
    assert_eq!(typed.acc_rate_limit, Some(tradebox_okx::limits::ORDER_CAP.permits.into()));
    assert!(typed.ts > 0 && typed.fill_ratio.is_none());
    // Private: a request without a key is refused.
    refused(raw(&sim, "GET", "/api/v5/trade/account-rate-limit", "", &[]).await, 401, "50103");
}
