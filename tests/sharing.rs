//! Sharing a strategy as one file: a second author signs a build, the operator inspects it,
//! grants it and trades with it; tampered, unsigned (where required), over-asking and
//! wrong-version files are refused with messages that say why, and a refused reload leaves the
//! running version trading.

use std::time::Duration;
use tradebox::plugin::inspect::{SignatureReport, inspect};
use tradebox::plugin::trust::Trust;
use tradebox::plugin::{Mode, Runtime};
use tradebox::running::lifecycle::{LifecycleError, ReloadRequest};
use tradebox_e2e::{TestHost, cache_dir, plugin, spec};
use tradebox_package::sections::{find_section, set_section};
use tradebox_package::signature::{self, SigningKey};

const WAIT: Duration = Duration::from_secs(60);
const SMA: &str = r#"{"symbol":"BTC-USDT","fast":3,"slow":8,"size":0.01}"#;

fn key() -> SigningKey {
    signature::generate().expect("a key")
}

fn signed(bytes: &[u8], key: &SigningKey) -> Vec<u8> {
    signature::sign(bytes, key).expect("signs")
}

/// `bytes` with its manifest replaced by `edit` of it (as a top-level section, which the host
/// prefers): what a build with a different `tradebox.toml` would carry.
fn with_manifest(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let section = find_section(bytes, tradebox_manifest::SECTION).expect("parses").expect("a manifest");
    let mut manifest: serde_json::Value = serde_json::from_slice(section).expect("json");
    edit(&mut manifest);
    set_section(bytes, tradebox_manifest::SECTION, manifest.to_string().as_bytes()).expect("rewritten")
}

/// Every `needle` in `bytes` replaced by `with` (same length, so the file stays well formed).
fn replace_all(bytes: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    assert_eq!(needle.len(), with.len());
    let mut out = bytes.to_vec();
    let mut i = 0;
    while let Some(at) = out[i..].windows(needle.len()).position(|w| w == needle) {
        out[i + at..i + at + needle.len()].copy_from_slice(with);
        i += at + needle.len();
    }
    out
}

async fn require_signatures(t: &TestHost, trusted: &SigningKey) {
    t.host.set_trust(Trust::new(true, vec![signature::public_key(trusted)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_strategy_from_another_author_is_inspected_granted_and_trades() {
    // The author builds and signs; the operator receives one file and trusts the author's key.
    let author = key();
    let file = signed(&plugin("sma-cross"), &author);
    let trust = Trust::new(true, vec![signature::public_key(&author)]);

    let runtime = Runtime::new(Mode::Live, Some(cache_dir())).expect("runtime");
    let report = tokio::task::block_in_place(|| inspect(&runtime, &file, Some(&trust)));
    let manifest = report.manifest.as_ref().expect("a manifest");
    assert_eq!((manifest.name.as_str(), manifest.contract.as_str()), ("sma-cross", "tradebox:strategy@0.1.0"));
    assert_eq!(manifest.permissions.instruments, ["{symbol}"]);
    assert!(report.contract_served, "{report:?}");
    assert!(report.imports.iter().all(|i| i.name.starts_with("tradebox:strategy/")), "{:?}", report.imports);
    assert!(report.exports.iter().any(|e| e.name == "on-events"));
    assert_eq!(report.sha256.len(), 64);
    match &report.signature {
        SignatureReport::Valid { signer, trusted } => {
            assert_eq!(signer, &signature::public_key(&author).to_string());
            assert_eq!(*trusted, Some(true));
        }
        other => panic!("expected a valid signature, got {other:?}"),
    }
    assert!(report.verdict.is_ok(), "{:?}", report.verdict);
    let text = report.render("sma-cross.wasm");
    assert!(text.contains("no network, files, environment or clocks") && text.contains("(trusted)"), "{text}");

    // Granted exactly what it asks for, it trades on the simulator.
    let t = TestHost::audited().await;
    t.host.set_trust(trust);
    let mut sma = spec("sma", "sma-cross", SMA, &["BTC-USDT"]);
    sma.wasm = file;
    t.load(sma).await.expect("a trusted, granted plugin loads");
    t.drive_until("the shared strategy to trade", WAIT, |t| t.report("sma").fills >= 1).await;
    let loaded = t
        .audit_records()
        .into_iter()
        .find(|r| r["kind"] == "state" && r["event"] == "plugin_loaded")
        .expect("the load is audited");
    let detail: serde_json::Value =
        serde_json::from_str(loaded["detail"].as_str().expect("detail")).expect("detail is json");
    assert_eq!(detail["version"], "0.1.0");
    assert!(detail["signer"].as_str().is_some_and(|s| s.ends_with("(trusted)")), "{detail}");
    assert_eq!(detail["requested"]["instruments"], serde_json::json!(["BTC-USDT"]));
    // The host checks the manifest's ceiling too: sma-cross says it needs at most 5 orders/s.
    let slot = t.host.slot("sma").expect("slot");
    assert_eq!(slot.permissions().requested.as_ref().and_then(|r| r.max_orders_per_sec), Some(5));
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_unsigned_untrusted_over_asking_and_wrong_version_files_are_refused() {
    let author = key();
    let t = TestHost::new(Mode::Live).await;
    require_signatures(&t, &author).await;
    let original = plugin("sma-cross");
    let load = |wasm: Vec<u8>, config: &str, instruments: &[&str]| {
        let mut s = spec("sma", "sma-cross", config, instruments);
        s.wasm = wasm;
        tokio::task::block_in_place(|| t.host.load(s)).map(|_| ()).map_err(|e| e.to_string())
    };

    // One byte changed anywhere after signing: here, a letter of the manifest's description.
    let good = signed(&original, &author);
    let tampered = replace_all(&good, b"Moving-average", b"Moving-averagf");
    assert_ne!(tampered, good);
    let err = load(tampered, SMA, &["BTC-USDT"]).expect_err("tampered");
    assert!(err.contains("signature is invalid"), "{err}");
    // No signature where one is required, or a signature nobody trusts.
    let err = load(original.clone(), SMA, &["BTC-USDT"]).expect_err("unsigned");
    assert!(err.contains("not signed"), "{err}");
    let err = load(signed(&original, &key()), SMA, &["BTC-USDT"]).expect_err("untrusted");
    assert!(err.contains("not among this host's trusted publishers"), "{err}");

    // Asking for more than the grant: the difference is named, item by item.
    let err = load(good.clone(), SMA, &["ETH-USDT"]).expect_err("over-asks");
    assert!(err.contains("requests more than it is granted") && err.contains("instrument BTC-USDT"), "{err}");
    let greedy = signed(
        &with_manifest(&original, |m| {
            m["permissions"]["instruments"] = serde_json::json!(["*"]);
            m["permissions"]["order_types"] = serde_json::json!(["market", "limit"]);
            m["permissions"]["max_orders_per_sec"] = 1000.into();
        }),
        &author,
    );
    let mut narrow = spec("sma", "sma-cross", SMA, &["BTC-USDT"]);
    narrow.grants.order_kinds = vec![tradebox_core::OrderKind::Market];
    narrow.wasm = greedy;
    let err = tokio::task::block_in_place(|| t.host.load(narrow)).expect_err("greedy").to_string();
    for item in ["instrument * (granted: BTC-USDT)", "order type limit (granted: market)", "1000 orders/s"] {
        assert!(err.contains(item), "{item} missing from: {err}");
    }
    // A setting the plugin does not read is a typo, not something to ignore.
    let err = load(good.clone(), r#"{"symbol":"BTC-USDT","fats":3}"#, &["BTC-USDT"]).expect_err("typo");
    assert!(err.contains("config.fats is not a setting"), "{err}");

    // Built for a contract this host does not serve: by its manifest, or by its imports.
    let future = signed(&with_manifest(&original, |m| m["contract"] = "tradebox:strategy@0.2.0".into()), &author);
    let err = load(future, SMA, &["BTC-USDT"]).expect_err("manifest of another contract");
    assert!(err.contains("tradebox:strategy@0.2.0") && err.contains("0.1.0"), "{err}");
    // (the manifest still claims 0.1.0: the imports are what the host believes)
    let imports_only = with_manifest(&replace_all(&original, b"@0.1.0", b"@0.2.0"), |m| {
        m["contract"] = "tradebox:strategy@0.1.0".into();
    });
    let rebuilt = signed(&imports_only, &author);
    let err = load(rebuilt, SMA, &["BTC-USDT"]).expect_err("imports of another contract");
    assert!(err.contains("tradebox:strategy@0.2.0") && err.contains("0.1.0"), "{err}");

    // And the good file loads.
    load(good, SMA, &["BTC-USDT"]).expect("signed, trusted, granted");
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_asks_for_more_is_refused_and_the_running_version_keeps_trading() {
    let t = TestHost::new(Mode::Live).await;
    t.load(spec("sma", "sma-cross", SMA, &["BTC-USDT"])).await.expect("loads");
    t.drive_until("sma-cross to see tickers", WAIT, |t| t.report("sma").events > 20).await;
    let hash = t.report("sma").hash;
    let greedy = with_manifest(&plugin("sma-cross"), |m| {
        m["permissions"]["instruments"] = serde_json::json!(["{symbol}", "ETH-USDT"]);
    });
    let request = ReloadRequest { wasm: Some(greedy), by: "test".into(), ..ReloadRequest::default() };
    let err = tokio::task::block_in_place(|| t.host.reload("sma", request)).expect_err("over-asks");
    assert!(matches!(err, LifecycleError::Reload(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("instrument ETH-USDT (granted: BTC-USDT)") && text.contains("keeps trading"), "{text}");
    let slot = t.host.slot("sma").expect("slot");
    assert_eq!(slot.permissions().requested.as_ref().map(|r| r.instruments.clone()), Some(vec!["BTC-USDT".into()]));
    let events = t.report("sma").events;
    t.drive_until("the running version to keep going", WAIT, |t| t.report("sma").events > events + 20).await;
    assert_eq!(t.report("sma").hash, hash);
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_without_a_manifest_is_granted_nothing() {
    let t = TestHost::new(Mode::Live).await;
    // Renaming the section (same length) leaves a valid component that carries no manifest.
    let bare = replace_all(&plugin("noop"), b"tradebox-manifest", b"tradebox-manifesX");
    assert!(find_section(&bare, tradebox_manifest::SECTION).expect("parses").is_none());
    let mut quiet = spec("bare", "noop", r#"{"timer_ms":50}"#, &["*"]);
    quiet.wasm = bare.clone();
    t.load(quiet).await.expect("it loads: logging and timers need no permission");
    let slot = t.host.slot("bare").expect("slot");
    assert!(!slot.permissions().allows_instrument("BTC-USDT"));
    let mut reader = spec("bare2", "noop", r#"{"symbol":"BTC-USDT"}"#, &["*"]);
    reader.wasm = bare;
    let err = t.load(reader).await.expect_err("it can see no instrument").to_string();
    assert!(err.contains("BTC-USDT is not granted"), "{err}");
    t.host.shutdown().await;
}
