//! What every language's plugin goes through the same way: its manifest (with its language)
//! read and inspected, a signature required and checked (a byte changed after signing is
//! refused), its requests against the operator's grant (asking for more is refused, naming
//! what), and then it trades on the simulator. Run for the Python and the JavaScript
//! `sma-cross` (`plugins/python/sma-cross`, `plugins/js/sma-cross`; the Rust one's are in
//! `tests/sharing.rs`). Reloads and backtests of each language are in `tests/python.rs` and
//! `tests/js.rs`.

use std::time::Duration;
use tradebox::plugin::inspect::{SignatureReport, inspect};
use tradebox::plugin::trust::Trust;
use tradebox::plugin::{Mode, Runtime};
use tradebox_e2e::{TestHost, cache_dir, plugin, spec};
use tradebox_manifest::Language;
use tradebox_package::signature;

const WAIT: Duration = Duration::from_secs(90);
const SMA: &str = r#"{"symbol":"BTC-USDT","fast":3,"slow":8,"size":0.01}"#;

async fn shared_signed_granted_and_trading(file: &str, language: Language) {
    let author = signature::generate().expect("a key");
    let trust = Trust::new(true, vec![signature::public_key(&author)]);
    let original = plugin(file);
    let good = signature::sign(&original, &author).expect("signs");

    let runtime = Runtime::new(Mode::Live, Some(cache_dir())).expect("runtime");
    let report = tokio::task::block_in_place(|| inspect(&runtime, &good, Some(&trust)));
    let manifest = report.manifest.as_ref().expect("a manifest");
    assert_eq!((manifest.name.as_str(), manifest.language), (file, language));
    assert_eq!(manifest.permissions.instruments, ["{symbol}"]);
    assert!(report.verdict.is_ok(), "{:?}", report.verdict);
    assert!(matches!(report.signature, SignatureReport::Valid { trusted: Some(true), .. }), "{:?}", report.signature);
    let text = report.render(file);
    assert!(text.contains(&format!("language   {}", language.name())), "{text}");
    assert!(text.contains("served locked down") && !text.contains("OUTSIDE"), "{text}");

    let t = TestHost::audited().await;
    t.host.set_trust(trust);
    let load = |wasm: Vec<u8>, instruments: &[&str]| {
        let mut s = spec("sma", file, SMA, instruments);
        s.wasm = wasm;
        tokio::task::block_in_place(|| t.host.load(s)).map(|_| ()).map_err(|e| e.to_string())
    };
    // A byte changed after signing (in the manifest's name: a file that lies about itself).
    let mut tampered = good.clone();
    let at = tampered.windows(file.len()).position(|w| w == file.as_bytes()).expect("the name is in the file");
    tampered[at] ^= 0x20;
    let err = load(tampered, &["BTC-USDT"]).expect_err("tampered");
    assert!(err.contains("signature is invalid"), "{err}");
    let err = load(original, &["BTC-USDT"]).expect_err("unsigned");
    assert!(err.contains("not signed"), "{err}");
    let err = load(good.clone(), &["ETH-USDT"]).expect_err("asks for more than granted");
    assert!(err.contains("requests more than it is granted") && err.contains("instrument BTC-USDT"), "{err}");
    load(good, &["BTC-USDT"]).expect("signed, trusted, granted");
    t.drive_until("the shared strategy to trade", WAIT, |t| t.report("sma").fills >= 1).await;
    let loaded = t
        .audit_records()
        .into_iter()
        .find(|r| r["kind"] == "state" && r["event"] == "plugin_loaded")
        .expect("the load is audited");
    let detail: serde_json::Value = serde_json::from_str(loaded["detail"].as_str().expect("detail")).expect("json");
    assert!(detail["signer"].as_str().is_some_and(|s| s.ends_with("(trusted)")), "{detail}");
    t.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_strategy_is_shared_signed_granted_and_trades() {
    shared_signed_granted_and_trading("sma-cross-py", Language::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_strategy_is_shared_signed_granted_and_trades() {
    shared_signed_granted_and_trading("sma-cross-js", Language::JavaScript).await;
}
