//! The risk engine against plugins that try to break it, on the simulated venue: each is
//! refused (with its stable code, in the audit log) or halted with its orders cancelled by the
//! circuit breaker, while a well-behaved market maker beside it keeps trading.

use std::time::Duration;
use tradebox::engine::RiskLimits;
use tradebox::plugin::RunState;
use tradebox_core::TradingState;
use tradebox_e2e::{TestHost, spec};

const WAIT: Duration = Duration::from_secs(60);
const MM: &str = r#"{"symbol":"ETH-USDT","spread_bps":4,"size":0.5,"max_inventory":2}"#;

/// Runs `mode` of the hostile plugin with `risk` beside the market maker until `code` has been
/// denied `times` times; checks the denials are audited and the market maker unaffected.
async fn refused(mode: &str, risk: RiskLimits, code: &str, times: usize) -> TestHost {
    let t = TestHost::audited().await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    let mut hostile = spec("hostile", "misbehave", &format!("\"{mode}\""), &["BTC-USDT"]);
    hostile.risk = risk;
    // A thousand refused intents a batch take a while in a debug build: the CPU deadline is
    // not what these tests are about.
    hostile.limits.deadline_ms = 5_000;
    t.load(hostile).await.expect("loads");
    // Refusals one by one, and those past the plugin's budget of refusal records as counts in
    // its summaries.
    let denials = |t: &TestHost| {
        let records = t.audit_records();
        let one_by_one =
            records.iter().filter(|r| r["kind"] == "risk" && r["plugin"] == "hostile" && r["decision"] == code).count();
        let summarised: u64 = records
            .iter()
            .filter(|r| r["kind"] == "refusals_suppressed" && r["plugin"] == "hostile")
            .filter_map(|r| r["by_code"][code].as_u64())
            .sum();
        one_by_one + summarised as usize
    };
    t.drive_until(&format!("{times} {code} denials"), WAIT, |t| denials(t) >= times).await;
    let records = t.audit_records();
    let denial = records.iter().find(|r| r["kind"] == "risk" && r["decision"] == code).expect("the denial is audited");
    assert!(denial["plugin_hash"].as_str().is_some_and(|h| h.len() == 64), "{denial}");
    // A refused intent is recorded once, in its refusal, with what was asked.
    let asked = denial["detail"].as_str().unwrap_or_default();
    assert!(asked.contains("asked: Buy") && asked.contains("BTC-USDT"), "{denial}");
    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    let mm_denials: Vec<String> = t
        .audit_records()
        .iter()
        // An amend that races its order's fill is refused as UNKNOWN_ORDER: that is no limit.
        .filter(|r| r["kind"] == "risk" && r["plugin"] == "mm")
        .filter(|r| r["decision"] != "approved" && r["decision"] != "UNKNOWN_ORDER")
        .map(|r| format!("{} {}", r["decision"], r["detail"]))
        .collect();
    assert!(mm_denials.is_empty(), "the market maker was refused: {mm_denials:?}");
    assert_eq!(t.report("hostile").state, RunState::Running, "refused, not killed");
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_orders_are_refused() {
    let risk = RiskLimits { max_order_size: 10.0, ..RiskLimits::default() };
    refused("oversize", risk, "MAX_ORDER_SIZE", 3).await.host.shutdown().await;
    // Without a size limit the notional limit still catches 1,000 BTC.
    refused("oversize", RiskLimits::default(), "MAX_NOTIONAL_EXCEEDED", 3).await.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_band_prices_are_refused() {
    refused("off-band", RiskLimits::default(), "PRICE_OUTSIDE_BAND", 3).await.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_spam_is_throttled() {
    // 50 refusals written one by one (the plugin's budget of refusal records is 100 at once;
    // the rest are counted in summaries, see tests/hostile.rs), a thousand refused in all.
    let t = refused("order-spam", RiskLimits::default(), "RATE_LIMITED", 50).await;
    t.drive_until("1,000 refusals", WAIT, |t| t.report("hostile").denied >= 1_000).await;
    assert!(t.report("hostile").orders_sent >= 1, "some orders got through under the rate");
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_refused() {
    let risk = RiskLimits { duplicate_window_ms: 500, ..RiskLimits::default() };
    refused("duplicate", risk, "DUPLICATE_ORDER", 3).await.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_position_is_capped() {
    let risk = RiskLimits { max_position: 0.05, ..RiskLimits::default() };
    let t = refused("runaway", risk, "MAX_POSITION", 3).await;
    let held: f64 = t.report("hostile").positions.iter().map(|(_, q)| *q).sum();
    assert!(held <= 0.05 + 1e-9, "position {held} beyond the cap");
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_losing_strategy_is_halted_by_the_circuit_breaker() {
    let t = TestHost::audited().await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    let mut loser = spec("loser", "misbehave", "\"loser\"", &["BTC-USDT"]);
    loser.risk = RiskLimits { max_daily_loss: 20.0, ..RiskLimits::default() };
    t.load(loser).await.expect("loads");
    let slot = t.host.slot("loser").expect("slot");
    t.drive_until("the circuit breaker to halt the loser", WAIT, |_| slot.state() == TradingState::Halted).await;
    // The halt takes effect first and is audited a moment later.
    let halt_record = |t: &TestHost| {
        t.audit_records()
            .into_iter()
            .find(|r| r["kind"] == "state" && r["event"] == "plugin_halted" && r["plugin"] == "loser")
    };
    t.drive_until("the halt audited", WAIT, |t| halt_record(t).is_some()).await;
    let halt = halt_record(&t).expect("the halt is audited");
    assert!(halt["detail"].as_str().is_some_and(|d| d.contains("circuit breaker")), "{halt}");
    let pnl = t.host.hub().pnl_total(slot.id);
    assert!(pnl <= -20.0, "halted after losing {pnl}");
    // Halted: nothing open, and every new intent refused.
    t.drive_until("the loser's orders gone", WAIT, |t| t.report("loser").open_orders == 0).await;
    let denied = t.report("loser").denied;
    t.drive_until("its intents refused", WAIT, |t| t.report("loser").denied > denied + 3).await;
    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    assert_eq!(t.host.hub().account_state(), TradingState::Active, "only the loser's scope halted");
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_breaker_and_kill_switch_stop_everyone_within_a_second() {
    let t = TestHost::audited().await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    t.drive_until("quotes", WAIT, |t| t.report("mm").open_orders == 2).await;
    let started = std::time::Instant::now();
    t.host.hub().set_account_state(TradingState::Halted, "kill switch (test)");
    t.drive_until("every order cancelled", WAIT, |t| t.report("mm").open_orders == 0).await;
    assert!(started.elapsed() < Duration::from_secs(1), "cancelled in {:?}", started.elapsed());
    let denied = t.report("mm").denied;
    t.drive_until("new orders refused", WAIT, |t| t.report("mm").denied > denied).await;
    t.host.hub().set_account_state(TradingState::Active, "resume (test)");
    let sent = t.report("mm").orders_sent;
    t.drive_until("trading again", WAIT, |t| t.report("mm").orders_sent > sent).await;
    // An account loss limit of 0.01 trips on the first loss of any plugin.
    let limits = tradebox::engine::AccountLimits { max_drawdown: 0.01, ..Default::default() };
    t.host.hub().set_account_limits(limits, "test").expect("valid");
    t.drive_until("the account breaker", WAIT, |t| t.host.hub().account_state() == TradingState::Halted).await;
    let audit = t.audit_records();
    assert!(
        audit
            .iter()
            .any(|r| r["event"] == "account_limits_changed"
                && r["detail"].as_str().is_some_and(|d| d.contains("by test")))
    );
    assert!(
        audit
            .iter()
            .any(|r| r["event"] == "account_halted"
                && r["detail"].as_str().is_some_and(|d| d.contains("circuit breaker")))
    );
    t.host.shutdown().await;
}
