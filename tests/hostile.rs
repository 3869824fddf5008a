//! Hostile plugins are contained: each misbehaviour kills only its own instance (or is
//! throttled), is reported with its cause, and a well-behaved plugin beside it keeps trading.

use std::time::Duration;
use tradebox::plugin::{Mode, RunState};
use tradebox_e2e::{TestHost, spec};

const WAIT: Duration = Duration::from_secs(60);
const MM: &str = r#"{"symbol":"ETH-USDT","spread_bps":4,"size":0.5,"max_inventory":2}"#;

/// Loads the market maker and a hostile plugin, waits until the hostile one is disabled, then
/// checks the market maker is still running and still sending orders.
async fn contained(mode: &str, expected_error: &str, host_mode: Mode) {
    contained_within(mode, expected_error, host_mode, None).await;
}

/// [`contained`] with the hostile plugin's CPU deadline set to `deadline_ms`: misbehaviours
/// that another limit must stop get a deadline long enough that a slow (debug) build cannot
/// make the deadline fire first.
async fn contained_within(mode: &str, expected_error: &str, host_mode: Mode, deadline_ms: Option<u64>) {
    let t = TestHost::new(host_mode).await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    let mut hostile = spec("hostile", "misbehave", &format!("\"{mode}\""), &["BTC-USDT"]);
    if let Some(ms) = deadline_ms {
        hostile.limits.deadline_ms = ms;
    }
    t.load(hostile).await.expect("hostile plugin loads");

    t.drive_until("the hostile plugin to be disabled", WAIT, |t| t.report("hostile").state == RunState::Disabled).await;
    let hostile = t.report("hostile");
    assert_eq!(hostile.failures, 2, "one restart, then disabled: {hostile:?}");
    let error = hostile.last_error.clone().unwrap_or_default();
    assert!(error.contains(expected_error), "expected {expected_error:?} in {error:?}");

    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    let mm = t.report("mm");
    assert_eq!(mm.state, RunState::Running);
    assert_eq!(mm.failures, 0);
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_hits_the_deadline() {
    contained("spin", "CPU deadline", Mode::Live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_runs_out_of_fuel_in_deterministic_mode() {
    contained("spin", "ran out of fuel", Mode::Deterministic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_hits_the_cap() {
    contained_within("memory-bomb", "memory cap of 32 MiB", Mode::Live, Some(5_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_reported_with_its_message() {
    contained("panic", "deliberate panic on ticker", Mode::Live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_overflows_only_its_own_stack() {
    contained_within("recursion", "overflowed its stack", Mode::Live, Some(5_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_stack_overflow_is_an_out_of_bounds_trap() {
    contained_within("stack-smash", "out-of-bounds memory access", Mode::Live, Some(5_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_flood_is_throttled_not_fatal() {
    let t = TestHost::new(Mode::Live).await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    t.load(spec("flood", "misbehave", "\"log-flood\"", &["BTC-USDT"])).await.expect("flood loads");
    t.drive_until("log lines to be suppressed", WAIT, |t| t.report("flood").logs_suppressed >= 5_000).await;
    let flood = t.report("flood");
    assert_eq!(flood.state, RunState::Running, "throttled, not killed: {flood:?}");
    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_spam_is_rate_limited() {
    let t = TestHost::new(Mode::Live).await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    let mut spam = spec("spam", "misbehave", "\"order-spam\"", &["BTC-USDT"]);
    // Throttling is under test here, not the CPU deadline (a debug build is slow).
    spam.limits.deadline_ms = 5_000;
    t.load(spam).await.expect("spam loads");
    t.drive_until("spam to be denied", WAIT, |t| t.report("spam").denied >= 1000).await;
    let spam = t.report("spam");
    // 20 orders per second by default: whatever got through is bounded by elapsed seconds.
    assert!(spam.orders_sent <= 20 * 60, "{spam:?}");
    assert!(spam.orders_sent >= 1, "{spam:?}");
    assert_eq!(spam.state, RunState::Running);
    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_is_served_locked_down_and_wasi_http_is_refused_by_name() {
    let t = TestHost::new(Mode::Live).await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    // A component built for wasm32-wasip2 reaches for the environment (this test process has
    // PATH, HOME and cargo's variables), its arguments, files (absolute, relative, the root,
    // a new one), TCP, UDP, name lookup, and sleeps 30 s: it loads, gets nothing, and its
    // sleep does not hold its thread.
    let started = std::time::Instant::now();
    t.load(spec("snoop", "wasi-import", "{}", &["BTC-USDT"])).await.expect("a WASI component loads");
    let said = |needle: &str| {
        t.host
            .activity()
            .recent(usize::MAX)
            .into_iter()
            .find(|a| a.plugin == "snoop" && a.what.to_string().contains(needle))
    };
    let reach = said("reach: ").expect("the snoop says what it reached").what.to_string();
    for nothing in [
        "env 0 ",
        "args 0 ",
        "file none(NotFound)",
        "relative none(NotFound)",
        "root none(NotFound)",
        "created none(NotFound)",
        "tcp false",
        "udp false",
        "lookup false",
    ] {
        assert!(reach.contains(nothing), "{nothing} not in: {reach}");
    }
    // Its wall clock is the host's (the same millisecond, or the next).
    let ms = |key: &str| -> i64 {
        reach.split(key).nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    assert!((ms(" host-now ") - ms(" now ")).abs() <= 5 && ms(" now ") > 1_700_000_000_000, "{reach}");
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "the guest's 30 s sleep held the thread");
    // Random bytes are the operating system's live: a second instance draws others.
    t.load(spec("snoop2", "wasi-import", "{}", &["BTC-USDT"])).await.expect("loads again");
    let seeded = |plugin: &str| {
        t.host
            .activity()
            .recent(usize::MAX)
            .into_iter()
            .find(|a| a.plugin == plugin && a.what.to_string().contains("reach: "))
            .and_then(|a| {
                a.what.to_string().split(" seeded ").nth(1).map(|r| r.split(' ').next().unwrap_or("").to_string())
            })
            .unwrap_or_default()
    };
    assert!(!seeded("snoop").is_empty() && seeded("snoop") != seeded("snoop2"), "live random repeated");
    // What it printed is in its log, stdout and stderr alike.
    assert!(said("snoop stdout line").is_some() && said("snoop stderr line").is_some());
    // wasi:http is not served: refused at load, named.
    let err = t.load(spec("caller", "wasi-http", "{}", &["BTC-USDT"])).await.expect_err("wasi:http must be refused");
    let message = err.to_string();
    assert!(message.contains("wasi:http/outgoing-handler") && message.contains("wasi:http/types"), "{message}");
    assert!(!message.contains("wasi:cli"), "served WASI named as refused: {message}");
    assert!(t.host.hub().plugins().iter().all(|p| p.name != "caller"), "nothing of the refused plugin was registered");
    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_and_amend_storm_is_refused_at_the_gateway_and_the_kill_switch_still_clears() {
    let t = TestHost::audited().await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    let mut storm = spec("storm", "misbehave", "\"cancel-storm\"", &["BTC-USDT"]);
    // 100,000 refused calls per ticker in a debug build: the storm, not the CPU deadline, is
    // under test here.
    storm.limits.deadline_ms = 30_000;
    // Nor the failure policy for staying over its CPU share (a slow build stays over long).
    storm.limits.cpu_throttle_s = 3_600;
    t.load(storm).await.expect("storm loads");
    // Two tickers' worth of storm: 200,000 refused cancels and amends.
    t.drive_until("the storm to be refused", WAIT, |t| t.report("storm").denied >= 200_000).await;
    let report = t.report("storm");
    assert_eq!(report.state, RunState::Running, "refused, not killed: {report:?}");
    assert!(report.orders_sent <= 5, "{report:?}");
    let records = t.audit_records();
    let of_storm = records.iter().filter(|r| r["plugin"] == "storm").count();
    assert!(of_storm < 300, "the storm wrote {of_storm} audit records");
    // The kill switch: the host's cancels go ahead of whatever the storm queued.
    the_neighbour_trades_and_the_kill_switch_clears(&t).await;
    t.host.shutdown().await;
}

/// The market maker ("mm") keeps trading beside the attacker, and the account kill switch
/// then leaves no order of any plugin open.
async fn the_neighbour_trades_and_the_kill_switch_clears(t: &TestHost) {
    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    t.host.hub().set_account_state(tradebox_core::TradingState::Halted, "kill switch");
    t.drive_until("every open order to be cancelled", WAIT, |t| {
        t.host.hub().plugins().iter().all(|s| t.host.hub().open_orders(s.id).is_empty())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_churn_spends_only_the_plugins_own_budget() {
    let t = TestHost::new(Mode::Live).await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    let mut churn = spec("churn", "misbehave", "\"sub-churn\"", &["BTC-USDT"]);
    churn.limits.deadline_ms = 30_000;
    churn.limits.cpu_throttle_s = 3_600;
    t.load(churn).await.expect("churn loads");
    // Three tickers' worth: 30,000 subscribes, of which the budget lets through its burst.
    // After each ticker's 10,000 the plugin logs how many of its own were accepted so far.
    let churned = |t: &TestHost| -> Option<(u64, u64)> {
        let line = t
            .host
            .activity()
            .recent(usize::MAX)
            .into_iter()
            .rev()
            .find(|a| a.plugin == "churn" && a.what.to_string().contains("churned: "))?;
        let text = line.what.to_string();
        let (accepted, tried) = text.split_once("churned: ")?.1.trim_end_matches(" accepted").split_once(" of ")?;
        Some((tried.parse().ok()?, accepted.parse().ok()?))
    };
    t.drive_until("30,000 subscriptions tried", WAIT, |t| churned(t).is_some_and(|(tried, _)| tried >= 30_000)).await;
    let (tried, accepted) = churned(&t).expect("the churn's own count");
    let churn = t.report("churn");
    assert_eq!(churn.state, RunState::Running, "refused, not killed: {churn:?}");
    let burst = tradebox::risk::windows::SUBSCRIBE_BURST as u64;
    assert!((1..=burst + 2).contains(&accepted), "{accepted} of {tried} subscriptions accepted, burst {burst}");
    // Every one the plugin saw refused, the host counted (and maybe some of the next ticker's).
    assert!(
        churn.denied >= tried - accepted,
        "host counted {} refusals, plugin saw {}",
        churn.denied,
        tried - accepted
    );
    // Its ticker stream still flows (the churned stream is another one), and the neighbour
    // trades on.
    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    let denied = t.report("churn").denied;
    t.drive_until("the churn to keep receiving tickers", WAIT, |t| t.report("churn").denied > denied).await;
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_error_text_cannot_forge_host_log_lines() {
    let t = TestHost::new(Mode::Live).await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    let err = t.load(spec("forger", "misbehave", "\"forge-init\"", &["BTC-USDT"])).await.expect_err("init fails");
    let message = format!("{err:#}");
    assert!(message.contains("misbehave: refused"), "{message}");
    assert!(!message.chars().any(|c| c.is_control()), "raw control characters reach the host: {message:?}");
    assert!(message.contains("\\u{a}") && message.contains("\\u{1b}"), "shown escaped: {message}");
    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_never_rests_is_held_to_its_cpu_share_then_stopped() {
    let t = TestHost::new(Mode::Live).await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    let mut hog = spec("hog", "misbehave", "\"timer-hog\"", &["BTC-USDT"]);
    // A short throttling limit so the test sees the failure policy; the CPU deadline is not
    // what is under test (a debug build is slow).
    hog.limits.cpu_throttle_s = 2;
    hog.limits.deadline_ms = 5_000;
    // A share small enough that the hog stays over it even when a busy machine gives its
    // thread little CPU (it is charged the CPU it used, not the time it waited).
    hog.limits.cpu_share = 0.02;
    t.load(hog).await.expect("hog loads");
    t.drive_until("the hog to be disabled", WAIT, |t| t.report("hog").state == RunState::Disabled).await;
    let hog = t.report("hog");
    let error = hog.last_error.clone().unwrap_or_default();
    assert!(error.contains("CPU share of 2% of a core for 2 s"), "{error}");
    let before = t.report("mm").orders_sent;
    t.drive_until("the market maker to keep trading", WAIT, |t| t.report("mm").orders_sent > before).await;
    assert_eq!(t.report("mm").failures, 0);
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_spinning_on_the_hosts_views_stops_neither_its_neighbour_nor_the_kill_switch() {
    let t = TestHost::new(Mode::Live).await;
    t.load(spec("mm", "market-maker", MM, &["ETH-USDT"])).await.expect("market maker loads");
    let mut spin = spec("viewer", "misbehave", "\"view-spin\"", &["BTC-USDT"]);
    // Its reads, not the CPU deadline or the failure policy, are under test (a debug build
    // is slow): it stays loaded, over its share, for the whole test.
    spin.limits.deadline_ms = 30_000;
    spin.limits.cpu_throttle_s = 3_600;
    t.load(spin).await.expect("viewer loads");
    // Over its share: each of its reads takes a lock the router, the sender and the kill
    // switch take too, while its guest code runs in the background class (on Linux, where
    // allowed) and its reads in the normal one.
    t.drive_until("the viewer to be throttled with its order open", WAIT, |t| {
        let r = t.report("viewer");
        r.throttled_ms > 0 && r.open_orders == 1
    })
    .await;
    the_neighbour_trades_and_the_kill_switch_clears(&t).await;
    let viewer = t.report("viewer");
    assert_eq!(viewer.state, RunState::Running, "throttled, not killed: {viewer:?}");
    assert_eq!(t.report("mm").failures, 0);
    t.host.shutdown().await;
}
