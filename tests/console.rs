//! The operator's console in a real browser: headless Chromium, driven through WebDriver, on a
//! host trading on the OKX simulator through the real OKX client. One browser session walks
//! through what an operator does, in order (a browser costs seconds to start):
//!
//! 1. a wrong token is refused and the console stays hidden;
//! 2. the real token signs in; the market maker shows, active, and trades;
//! 3. halting it from its card (confirmed) cancels its orders at the exchange; resuming it
//!    has it quote again;
//! 4. a `.wasm` file chosen in the load panel is inspected, then loaded under a grant;
//! 5. it is reloaded from a file on its card, then unloaded;
//! 6. every one of those is in the audit log, as asked by the console, and in the page's trail;
//! 7. a backtest's `report.json` opens in the page.
//!
//! Then, without the browser, requests addressed by another name (DNS rebinding) or sent from
//! another site are refused. Screenshots of the main views go to
//! `target/console-screenshots/`. The element ids are those `console/README.md` lists
//! ("Element ids and classes the browser tests rely on"); the page's wording is not relied on.
//!
//! Waits poll every 100 ms for up to 30 s and say, when they give up, what they waited for and
//! what the page showed; nothing here is timed (the page's speed is `benches/console_page.rs`).

#[path = "console_rig.rs"]
mod console_rig;

use console_rig::{Browser, Stand};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tradebox_core::TradingState;
use tradebox_sim::server::exchange::OrderFilter;

/// How long a wait lasts before the test fails.
const WAIT: Duration = Duration::from_secs(30);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);
/// The plugin the test loads through the page.
const LOADED: &str = "noop-upload";
/// Its config: it subscribes to BTC-USDT (granted below) and places no order.
const LOADED_CONFIG: &str = r#"{"symbol":"BTC-USDT","timer_ms":500}"#;

/// Whether the element `css` is shown (neither it nor an ancestor hidden). Put before a script.
const SHOWN: &str = "const shown = (s) => { const e = document.querySelector(s); \
                     return !!e && !e.hidden && e.getClientRects().length > 0; };";

/// The running (not staged) card of plugin `name`.
fn card(name: &str) -> String {
    format!(r#"[data-plugin="{name}"]:not([data-staged="true"])"#)
}

/// Where the screenshots go: `target/console-screenshots/`.
fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
}

/// The open orders of the market maker at the simulator's exchange (it alone trades ETH-USDT).
fn mm_orders_at_exchange(stand: &Stand) -> usize {
    let filter = OrderFilter { inst_id: "ETH-USDT".into(), ..OrderFilter::default() };
    stand.sim.exchange().pending(&filter).len()
}

/// Sends `request` (method and path) with headers announcing a body of `length` bytes, sends
/// only its first `part` bytes, and returns the status line of the answer. Fails if none comes
/// within [`WAIT`]: the host would be waiting for the rest of the body.
async fn answer_to_part(
    addr: std::net::SocketAddr,
    request: &str,
    token: Option<&str>,
    length: u64,
    part: usize,
) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect to the admin API");
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{request} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("send the request's head");
    tcp.write_all(&vec![b' '; part]).await.expect("send the first part of the body");
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut answer))
        .await
        .unwrap_or_else(|_| {
            panic!("{request} with {part} bytes of its body: no answer in {WAIT:?} (the host waits for the rest)")
        })
        .expect("read the answer");
    String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or_default().to_string()
}

/// Runs a short backtest of `sma-cross` on a synthetic history and writes its `report.json`
/// into `dir`, as `tradebox backtest --report` does; returns the file.
fn backtest_report(dir: &std::path::Path) -> PathBuf {
    use tradebox::backtest::run::{PluginPlan, run};
    use tradebox::plugin::{Limits, Mode, Runtime};
    let runtime = Runtime::new(Mode::Deterministic, Some(tradebox_e2e::cache_dir())).expect("runtime");
    let bars = tradebox_e2e::history::bars(600, 18);
    let plan = tradebox_e2e::history::plan(&bars, tradebox::backtest::FillModel::NextOpen);
    let sma = PluginPlan {
        name: "sma-report".into(),
        path: "sma-cross.wasm".into(),
        compiled: runtime.compile(&tradebox_e2e::plugin("sma-cross")).expect("sma-cross compiles"),
        config: r#"{"symbol":"BTC-USDT","source":"candle","fast":5,"slow":20,"size":1}"#.into(),
        grants: tradebox::engine::Grants { instruments: vec!["BTC-USDT".into()], ..Default::default() },
        risk: tradebox::backtest::command::open_limits().0,
        limits: Limits::default(),
    };
    let report = run(&plan, &[sma], &mut |_| {}).expect("the backtest runs");
    tradebox::backtest::report::write_json(&report, dir).expect("report.json is written")
}

/// The page as the test drives it, with the host behind it for failure messages.
struct Page<'a> {
    client: &'a Client,
    stand: &'a Stand,
}

impl Page<'_> {
    /// Runs `script` (a function body) in the page.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("running a script in the page: {e}"))
    }

    /// A short account of what the page shows: the views, `#connection`, `#answer`, and the
    /// text of `element` when given (a plugin's card).
    async fn shows(&self, element: Option<&str>) -> String {
        let script = format!(
            "{SHOWN}
            const text = (s) => {{ const e = document.querySelector(s);
              return e ? (e.innerText || e.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 400)
                       : '(no such element)'; }};
            const answer = document.getElementById('answer');
            const parts = [
              `sign-in view ${{shown('#sign-in-view') ? 'shown' : 'hidden'}}, console view ${{shown('#console-view') ? 'shown' : 'hidden'}}`,
              `#sign-in-error ${{shown('#sign-in-error') ? 'shown' : 'hidden'}}`,
              `#connection \"${{text('#connection')}}\"`,
              `#answer [class \"${{answer ? answer.className : '(none)'}}\"${{answer && answer.hidden ? ', hidden' : ''}}] \"${{text('#answer')}}\"`,
            ];
            if (arguments[0]) parts.push(`${{arguments[0]}}: \"${{text(arguments[0])}}\"`);
            return parts.join('\\n  ');"
        );
        match self.client.execute(&script, vec![json!(element)]).await {
            Ok(Value::String(s)) => s,
            Ok(other) => format!("(unexpected: {other})"),
            Err(e) => format!("(the page could not be read: {e})"),
        }
    }

    /// Polls `script` until it returns something other than null, false or undefined, and
    /// returns that. Fails after [`WAIT`] saying `what` it waited for and what the page shows
    /// (with the text of `element`).
    async fn wait_for(&self, what: &str, element: Option<&str>, script: &str, args: Vec<Value>) -> Value {
        let script = format!("{SHOWN}\n{script}");
        let start = Instant::now();
        let mut last_error = None;
        loop {
            match self.client.execute(&script, args.clone()).await {
                Ok(Value::Null | Value::Bool(false)) => {}
                Ok(value) => return value,
                Err(e) => last_error = Some(e.to_string()),
            }
            if start.elapsed() > WAIT {
                let error = last_error.map(|e| format!("\nthe last check failed: {e}")).unwrap_or_default();
                panic!("waited {WAIT:?} for: {what}{error}\nthe page shows:\n  {}", self.shows(element).await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `done` (the host's or the exchange's state) like [`Page::wait_for`].
    async fn wait_host(&self, what: &str, element: Option<&str>, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > WAIT {
                panic!(
                    "waited {WAIT:?} for: {what}\nthe page shows:\n  {}\nthe host:\n{}",
                    self.shows(element).await,
                    tradebox::demo::board(&self.stand.host, false)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether the element `css` is shown.
    async fn is_shown(&self, css: &str) -> bool {
        self.js(&format!("{SHOWN} return shown(arguments[0]);"), vec![json!(css)]).await == json!(true)
    }

    /// The element `css`, failing with what the page shows when there is none.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no element {css} on the page ({e})\nthe page shows:\n  {}", self.shows(None).await),
        }
    }

    /// Clicks `css` as a user would (scrolled to the middle of the window first, clear of the
    /// header that stays at the top).
    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.js("document.querySelector(arguments[0]).scrollIntoView({block: 'center'});", vec![json!(css)]).await;
        if let Err(e) = element.click().await {
            panic!("clicking {css}: {e}\nthe page shows:\n  {}", self.shows(Some(css)).await);
        }
    }

    /// Replaces the text of the field `css` by typing `text`.
    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.unwrap_or_else(|e| panic!("clearing {css}: {e}"));
        element.send_keys(text).await.unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Chooses the file `path` in the file input `css`.
    async fn choose_file(&self, css: &str, path: &std::path::Path) {
        let element = self.find(css).await;
        let path = path.to_str().expect("a UTF-8 plugin path");
        element.send_keys(path).await.unwrap_or_else(|e| panic!("choosing {path} in {css}: {e}"));
    }

    /// `#answer`'s class and text now.
    async fn answer(&self) -> Value {
        self.js(
            "const a = document.getElementById('answer'); \
             return a ? [a.className, a.hidden, a.textContent] : null;",
            vec![],
        )
        .await
    }

    /// Answers yes in `#confirm` once it asks, then waits for the host's answer in `#answer`
    /// (a class `ok` or `error`, and not the answer shown `before`), and requires it ok.
    async fn confirm(&self, what: &str, element: Option<&str>, before: Value) {
        self.wait_for(
            &format!("#confirm asking before {what}"),
            element,
            "const d = document.getElementById('confirm'); return !!d && d.open && shown('#confirm-yes');",
            vec![],
        )
        .await;
        self.click("#confirm-yes").await;
        let answer = self
            .wait_for(
                &format!("#answer to say how {what} went (class ok or error)"),
                element,
                "const a = document.getElementById('answer');
                 const now = [a.className, a.hidden, a.textContent];
                 const done = !a.hidden && (a.classList.contains('ok') || a.classList.contains('error'));
                 return done && JSON.stringify(now) !== JSON.stringify(arguments[0]) ? now : null;",
                vec![before],
            )
            .await;
        assert_eq!(
            answer[0],
            "ok",
            "{what}: #answer says {}\nthe page shows:\n  {}",
            answer[2],
            self.shows(element).await
        );
    }

    /// Waits until the card's `.trading-state` says `state`.
    async fn wait_state(&self, card: &str, state: &str) {
        self.wait_for(
            &format!("{card} .trading-state to say {state}"),
            Some(card),
            "const e = document.querySelector(arguments[0] + ' .trading-state');
             return !!e && e.textContent.trim() === arguments[1];",
            vec![json!(card), json!(state)],
        )
        .await;
    }

    /// Waits until the page's audit trail has a row whose text has every one of `words`.
    async fn wait_audit_row(&self, words: &[&str]) {
        self.wait_for(
            &format!("a row of the audit trail (#audit tr.audit-row) with {words:?}"),
            Some("#audit tbody"),
            "const words = arguments[0].map((w) => w.toLowerCase());
             return [...document.querySelectorAll('#audit tr.audit-row')]
               .some((r) => words.every((w) => r.textContent.toLowerCase().includes(w)));",
            vec![json!(words)],
        )
        .await;
    }

    /// Saves a screenshot of the window as `target/console-screenshots/NAME.png`, with the
    /// element `css` scrolled to the top when given.
    async fn screenshot(&self, name: &str, css: Option<&str>) {
        if let Some(css) = css {
            self.js(
                "const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'start'});",
                vec![json!(css)],
            )
            .await;
        } else {
            self.js(
                "window.scrollTo(0, 0); document.querySelectorAll('*').forEach((e) => { e.scrollTop = 0; });",
                vec![],
            )
            .await;
        }
        // Let a scroll and the charts settle into the picture (not a timing assertion).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_signs_in_halts_resumes_loads_reloads_and_unloads_from_the_console() {
    let stand = Stand::start().await;
    let browser = Browser::start("normal").await;
    let page = Page { client: &browser.client, stand: &stand };
    let mm = card("mm");
    let loaded = card(LOADED);

    // 1. A wrong token: refused, and the console stays hidden.
    println!("step 1: a wrong token is refused");
    browser.client.goto(&stand.url()).await.unwrap_or_else(|e| panic!("opening {}: {e}", stand.url()));
    page.wait_for(
        "the sign-in form (#sign-in-view, #token)",
        None,
        "return shown('#sign-in-view') && shown('#token');",
        vec![],
    )
    .await;
    assert!(!page.is_shown("#console-view").await, "#console-view is shown before sign-in");
    page.type_into("#token", &"0".repeat(64)).await;
    page.click("#sign-in").await;
    page.wait_for("#sign-in-error after a wrong token", None, "return shown('#sign-in-error');", vec![]).await;
    assert!(
        !page.is_shown("#console-view").await,
        "step 1: #console-view is shown after a wrong token\nthe page shows:\n  {}",
        page.shows(None).await
    );
    page.screenshot("sign-in-refused", None).await;

    // 2. The real token: the market maker shows, active, and trades.
    println!("step 2: sign in; the market maker trades");
    page.type_into("#token", &stand.token).await;
    page.click("#sign-in").await;
    page.wait_for(
        "the console view with the market maker's card after signing in",
        Some(&mm),
        "return shown('#console-view') && !shown('#sign-in-view') && !!document.querySelector(arguments[0]);",
        vec![json!(mm)],
    )
    .await;
    page.wait_state(&mm, "active").await;
    page.wait_for(
        "#connection to say live",
        None,
        "return document.getElementById('connection').textContent.trim() === 'live';",
        vec![],
    )
    .await;
    let trading = "const n = (s) => Number(document.querySelector(arguments[0] + ' ' + s).textContent.trim());
                   const fills = n('.fills-count'), open = n('.open-orders');";
    page.wait_for(
        "the market maker to trade (its .fills-count or .open-orders above 0)",
        Some(&mm),
        &format!("{trading} return fills > 0 || open > 0 ? {{fills, open}} : null;"),
        vec![json!(mm)],
    )
    .await;
    let url = browser.client.current_url().await.expect("the page's address");
    assert!(!url.as_str().contains(&stand.token), "the token is in the address: {url}");
    let cookies = page.js("return document.cookie;", vec![]).await;
    assert!(!cookies.to_string().contains(&stand.token), "the token is in a cookie");
    // A fill or two makes a better picture of a trading console; not required.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10)
        && page.js(&format!("{trading} return fills;"), vec![json!(mm)]).await.as_f64().unwrap_or(0.0) < 1.0
    {
        tokio::time::sleep(POLL).await;
    }
    page.screenshot("console", None).await;

    // 3. Halt the market maker from its card: its orders leave the exchange; resume it.
    println!("step 3: halt the market maker, then resume it");
    let before = page.answer().await;
    page.click(&format!("{mm} .halt")).await;
    page.confirm("halting mm", Some(&mm), before).await;
    page.wait_host("no open order of the market maker left at the simulator's exchange", Some(&mm), || {
        mm_orders_at_exchange(&stand) == 0
    })
    .await;
    page.wait_state(&mm, "halted").await;
    let state = stand.host.slot("mm").expect("mm is loaded").state();
    assert_eq!(state, TradingState::Halted, "the host's state of mm after halting it from the console");
    page.wait_audit_row(&["plugin_halted", "(console)"]).await;
    let before = page.answer().await;
    page.click(&format!("{mm} .resume")).await;
    page.confirm("resuming mm", Some(&mm), before).await;
    page.wait_state(&mm, "active").await;
    page.wait_host("the market maker's new orders at the simulator's exchange after resuming", Some(&mm), || {
        mm_orders_at_exchange(&stand) > 0
    })
    .await;
    page.wait_audit_row(&["plugin_active", "(console)"]).await;

    // 4. Load a plugin from a file: inspected first, then granted and loaded.
    println!("step 4: load {LOADED} from a file");
    let file = std::fs::canonicalize(tradebox_e2e::plugin_dir().join("noop.wasm"))
        .expect("target/plugins/noop.wasm (build the plugins: `cargo xtask plugins`)");
    let sha256 = hex::encode(sha2::Sha256::digest(std::fs::read(&file).expect("reading noop.wasm")));
    page.choose_file("#load-file", &file).await;
    let inspected = page
        .wait_for(
            "#inspect to show the file's inspection, verdict included",
            Some("#inspect"),
            "const e = document.getElementById('inspect');
             return shown('#inspect') && /verdict/i.test(e.innerText) ? e.innerText : null;",
            vec![],
        )
        .await;
    let inspected = inspected.as_str().unwrap_or_default();
    for (what, shown) in [("its name", "noop"), ("its sha256", sha256.as_str())] {
        assert!(inspected.contains(shown), "step 4: #inspect does not show {what} ({shown}):\n{inspected}");
    }
    page.type_into("#load-name", LOADED).await;
    page.type_into("#load-instruments", "BTC-USDT").await;
    page.type_into("#load-config", LOADED_CONFIG).await;
    page.screenshot("load-inspect", Some("#inspect")).await;
    let before = page.answer().await;
    page.click("#load-confirm").await;
    page.confirm(&format!("loading {LOADED}"), Some("#inspect"), before).await;
    page.wait_for(
        &format!("the card of {LOADED}"),
        Some(&loaded),
        "return !!document.querySelector(arguments[0]);",
        vec![json!(loaded)],
    )
    .await;
    assert!(
        stand.host.plugin_names().iter().any(|n| n == LOADED),
        "step 4: the host has no plugin {LOADED}: {:?}",
        stand.host.plugin_names()
    );
    page.wait_state(&loaded, "active").await;
    page.wait_audit_row(&["plugin_loaded", "console"]).await;

    // 5. Reload it from a file on its card (the same file: a reload of identical bytes counts),
    //    then unload it.
    println!("step 5: reload {LOADED} from a file, then unload it");
    let report = |name: &str| stand.host.report().into_iter().find(|r| r.name == name);
    let hash = report(LOADED).expect("loaded").hash;
    let before = page.answer().await;
    page.choose_file(&format!("{loaded} input.reload-file"), &file).await;
    page.confirm(&format!("reloading {LOADED}"), Some(&loaded), before).await;
    page.wait_host(&format!("the host's report of {LOADED} to count 1 reload"), Some(&loaded), || {
        report(LOADED).is_some_and(|r| r.reloads == 1)
    })
    .await;
    assert_eq!(report(LOADED).expect("loaded").hash, hash, "the same file reloaded keeps its hash");
    page.wait_for(
        &format!("the card of {LOADED} to show reloads 1"),
        Some(&loaded),
        "return /reloads\\s*1\\b/.test(document.querySelector(arguments[0]).textContent);",
        vec![json!(loaded)],
    )
    .await;
    page.wait_audit_row(&["plugin_reloaded", "console"]).await;
    let before = page.answer().await;
    page.click(&format!("{loaded} .unload")).await;
    page.confirm(&format!("unloading {LOADED}"), Some(&loaded), before).await;
    page.wait_host(&format!("{LOADED} gone from the host"), Some(&loaded), || {
        !stand.host.plugin_names().iter().any(|n| n == LOADED)
    })
    .await;
    page.wait_for(
        &format!("the card of {LOADED} gone"),
        Some(&loaded),
        "return !document.querySelector(arguments[0]);",
        vec![json!(loaded)],
    )
    .await;
    page.wait_audit_row(&["plugin_unloaded", "console"]).await;

    // 6. The audit log: each of those, as asked by the console.
    println!("step 6: the audit log names the console for each");
    stand.audit.sync().expect("syncing the audit log");
    let text = std::fs::read_to_string(stand.audit.path()).expect("reading the audit log");
    let records: Vec<Value> =
        text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    let find = |event: &str, plugin: &str, by_console: &dyn Fn(&str) -> bool| {
        records.iter().any(|r| {
            r["kind"] == "state"
                && r["event"] == event
                && r["plugin"] == plugin
                && r["detail"].as_str().is_some_and(by_console)
        })
    };
    let operator = |detail: &str| detail.contains("by the operator (console)");
    let by_console = |detail: &str| serde_json::from_str::<Value>(detail).is_ok_and(|d| d["by"] == "console");
    for (event, plugin, check) in [
        ("plugin_halted", "mm", &operator as &dyn Fn(&str) -> bool),
        ("plugin_active", "mm", &operator),
        ("plugin_loaded", LOADED, &by_console),
        ("plugin_reloaded", LOADED, &by_console),
        ("plugin_unloaded", LOADED, &by_console),
    ] {
        let seen: Vec<&Value> = records.iter().filter(|r| r["event"] == event).collect();
        assert!(
            find(event, plugin, check),
            "step 6: no {event} record of {plugin} asked by the console; {event} records: {seen:?}"
        );
    }
    page.type_into("#audit-filter", "console").await;
    page.wait_for(
        "#audit-filter to leave only rows that mention the console",
        Some("#audit tbody"),
        "const rows = [...document.querySelectorAll('#audit tr.audit-row')];
         const shownRows = rows.filter((r) => !r.hidden);
         return shownRows.length > 0 && shownRows.every((r) => r.textContent.toLowerCase().includes('console'));",
        vec![],
    )
    .await;
    page.screenshot("audit", Some("#audit-filter")).await;

    // 7. A backtest's report.json (as `tradebox backtest --report` writes it) opens in the page,
    //    with its plugin's row and its equity chart drawn by the page's charting library.
    let reports = tempfile::tempdir().expect("temp dir");
    let report = backtest_report(reports.path());
    page.choose_file("#report-file", &report).await;
    page.wait_for(
        "#report to show the backtest's plugin and an equity chart",
        Some("#report"),
        "const r = document.getElementById('report');
         return !!r && !r.hidden && r.textContent.includes('sma-report') && !!r.querySelector('.uplot canvas');",
        vec![],
    )
    .await;
    page.screenshot("report", Some("#report")).await;

    browser.quit().await;

    // 8. Without a browser: another name for the address (DNS rebinding) and another site's
    //    page are refused, the token notwithstanding; the account stays active.
    println!("step 7: requests by another name or from another site are refused");
    let addr = stand.admin.addr();
    let http = reqwest::Client::new();
    let status =
        |host: String| http.get(format!("http://{addr}/status")).header("host", host).bearer_auth(&stand.token).send();
    let ok = status(addr.to_string()).await.expect("GET /status");
    assert_eq!(ok.status(), 200, "GET /status by the served address");
    let rebound = status(format!("evil.example:{}", addr.port())).await.expect("GET /status by another name");
    assert_eq!(rebound.status(), 403, "GET /status with Host: evil.example:{}", addr.port());
    let cross_site = http
        .post(format!("http://{addr}/halt"))
        .header("origin", "http://evil.example")
        .bearer_auth(&stand.token)
        .json(&json!({"by": "evil"}))
        .send()
        .await
        .expect("POST /halt from another site");
    assert_eq!(cross_site.status(), 403, "POST /halt with Origin: http://evil.example");
    assert_eq!(stand.host.hub().account_state(), TradingState::Active, "the account after the cross-site halt");

    // Without the token nothing is read: a request announcing an 8 MiB body, and sending none
    // of it, is answered at once (a host that read the body before the token would wait for it
    // and never answer). With the token, only uploads may be large: an 8 MiB halt is refused
    // by its size once its first 128 KiB are in (past the 64 KiB limit), the rest never sent.
    let eight_mib = 8u64 << 20;
    let anonymous = answer_to_part(addr, "POST /plugins/inspect", None, eight_mib, 0).await;
    assert!(anonymous.starts_with("HTTP/1.1 401"), "an 8 MiB inspection without the token: {anonymous}");
    let oversized = answer_to_part(addr, "POST /halt", Some(&stand.token), eight_mib, 128 << 10).await;
    assert!(oversized.starts_with("HTTP/1.1 413"), "an 8 MiB halt with the token: {oversized}");
    assert_eq!(stand.host.hub().account_state(), TradingState::Active, "the account after the oversized halt");
    let metrics = http.get(format!("http://{addr}/metrics")).send().await.expect("GET /metrics");
    assert_eq!(metrics.status(), 401, "every route but the page's files and /health needs the token");
    assert_eq!(stand.host.hub().account_state(), TradingState::Active, "the account after the oversized halt");

    stand.stop().await;
}
