//! The console's figure "page usable within 1 s of opening on loopback": how long the page
//! takes, in a fresh headless Chromium tab, from the start of its navigation to showing the
//! first snapshot (`#console-view` visible and a plugin's card, `[data-plugin]`, drawn), on
//! the same stand as `tests/console.rs` (the OKX simulator, the host through the OKX client,
//! the market maker trading). The token is put in the tab's sessionStorage first, as a signed-in
//! operator's tab has it, so the figure is the page's own: fetching its files, opening the
//! stream, drawing the first snapshot.
//!
//! Run with `cargo bench -p tradebox-e2e --bench console_page` (needs the plugins built and
//! Debian's chromium and chromium-driver; `cargo xtask test` installs those).

#[path = "../console_rig.rs"]
mod console_rig;

use console_rig::{Browser, Stand};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Page opens measured.
const OPENS: usize = 10;

/// Resolves, in the page, with `performance.now()` (ms since the navigation started) at the
/// first animation frame after the console view shows a plugin's card, watched by a
/// MutationObserver (so the moment is the page's, not a poll's); `null` while the script runs in
/// the document being replaced (marked `__replaced`) or before the new one has a body. Run as soon
/// as the navigation commits (the session's page load strategy is "none"); if the page shows the
/// snapshot already, that moment is an upper bound, and `already` says so.
const FIRST_SNAPSHOT: &str = "
    const done = arguments[arguments.length - 1];
    if (window.__replaced || !document.body) { done(null); return; }
    const ready = () => {
      const view = document.getElementById('console-view');
      return !!view && !view.hidden && view.getClientRects().length > 0 && !!document.querySelector('[data-plugin]');
    };
    const already = ready();
    const finish = () => requestAnimationFrame(() => done({ shown: performance.now(), already }));
    if (already) { finish(); return; }
    new MutationObserver((_, observer) => {
      if (ready()) { observer.disconnect(); finish(); }
    }).observe(document.documentElement, { subtree: true, childList: true, attributes: true });
";

/// Navigation start to DOMContentLoaded, once the page has it (null before).
const DOM_CONTENT_LOADED: &str = "
    const t = performance.timing;
    return t.domContentLoadedEventEnd > 0 ? t.domContentLoadedEventEnd - t.navigationStart : null;
";

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

/// Runs `script` until it returns something other than null (or fails while a navigation
/// replaces the document), for up to 30 s.
async fn until(client: &fantoccini::Client, what: &str, script: &str, args: Vec<Value>, asynchronous: bool) -> Value {
    let start = Instant::now();
    loop {
        let answer = if asynchronous {
            client.execute_async(script, args.clone()).await
        } else {
            client.execute(script, args.clone()).await
        };
        match answer {
            Ok(Value::Null) => {}
            Ok(value) => return value,
            Err(e) if start.elapsed() > Duration::from_secs(30) => panic!("waited 30 s for {what}: {e}"),
            Err(_) => {}
        }
        assert!(start.elapsed() < Duration::from_secs(30), "waited 30 s for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let stand = Stand::start().await;
    let browser = Browser::start("none").await;
    let client = &browser.client;
    let url = stand.url();

    // Sign in once through the form, and learn which sessionStorage key the page keeps the
    // token under (the page's own business; the spec says only "sessionStorage").
    client.goto(&url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
    until(
        client,
        "the sign-in form",
        "return document.getElementById('token') && document.readyState === 'complete' ? true : null;",
        vec![],
        false,
    )
    .await;
    let token = client.find(fantoccini::Locator::Id("token")).await.expect("#token");
    token.send_keys(&stand.token).await.expect("typing the token");
    client.find(fantoccini::Locator::Id("sign-in")).await.expect("#sign-in").click().await.expect("signing in");
    let key = until(
        client,
        "the token in sessionStorage",
        "return Object.keys(sessionStorage).find((k) => sessionStorage.getItem(k) === arguments[0]) || null;",
        vec![json!(stand.token)],
        false,
    )
    .await;
    until(client, "the page showing the market maker after sign-in", FIRST_SNAPSHOT, vec![], true).await;
    let first = client.window().await.expect("the first tab");

    let (mut shown, mut loaded, mut already) = (Vec::new(), Vec::new(), 0);
    for _ in 0..OPENS {
        // A fresh tab: nothing of the page in it yet (its files in the browser's cache, as an
        // operator's browser would have them).
        let tab = client.new_window(true).await.expect("a new tab").handle;
        client.switch_to_window(tab).await.expect("switching to the new tab");
        client.goto(&url).await.expect("opening the console");
        until(
            client,
            "the page loaded in the new tab",
            "return document.readyState === 'complete' && document.getElementById('token') ? true : null;",
            vec![],
            false,
        )
        .await;
        client
            .execute(
                "sessionStorage.setItem(arguments[0], arguments[1]); window.__replaced = true; location.reload();",
                vec![key.clone(), json!(stand.token)],
            )
            .await
            .expect("putting the token in the tab's sessionStorage and reloading");
        let figures = until(client, "the page showing its first snapshot", FIRST_SNAPSHOT, vec![], true).await;
        shown.push(figures["shown"].as_f64().expect("performance.now()"));
        already += usize::from(figures["already"] == json!(true));
        let dcl = until(client, "DOMContentLoaded", DOM_CONTENT_LOADED, vec![], false).await;
        loaded.push(dcl.as_f64().expect("a time"));
        client.close_window().await.expect("closing the tab");
        client.switch_to_window(first.clone()).await.expect("back to the first tab");
    }
    shown.sort_by(f64::total_cmp);
    loaded.sort_by(f64::total_cmp);
    println!(
        "console page on loopback, navigation start -> first snapshot shown ({OPENS} opens in a fresh tab): \
         median {:.0} ms, max {:.0} ms{}",
        median(&shown),
        shown[shown.len() - 1],
        if already > 0 {
            format!(" ({already} already shown when first watched: upper bounds)")
        } else {
            String::new()
        },
    );
    println!(
        "console page on loopback, navigation start -> DOMContentLoaded ({OPENS} opens): median {:.0} ms, max {:.0} ms",
        median(&loaded),
        loaded[loaded.len() - 1],
    );
    browser.quit().await;
    stand.stop().await;
}
