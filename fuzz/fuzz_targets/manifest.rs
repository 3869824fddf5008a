//! `tradebox_manifest::Manifest::from_json`, what the host runs on a plugin's manifest section
//! (`plugin::runtime::read_manifest`), on arbitrary bytes; and `build::from_sources`, what a
//! plugin's build script runs on `tradebox.toml`, on the same bytes as text.
//!
//! Invariants: nothing panics; an accepted manifest validates again, writes and reads back as the
//! same manifest, and holds no control or bidirectional character in anything `plugin inspect`
//! shows an operator; its config schema fills in its own defaults (and only a setting without a
//! default is ever required), and what that yields is accepted again unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tradebox_manifest::{Manifest, SettingType, build, contract_series, is_deceptive};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data) {
        accepted(&m);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let package = build::Package {
            name: "fuzz".into(),
            version: "1.0.0".into(),
            authors: vec!["Ada <ada@example.com>".into()],
            description: "fuzzed".into(),
            license: "MIT".into(),
        };
        if let Ok(m) = build::from_sources(&package, text) {
            accepted(&m);
        }
    }
});

fn accepted(m: &Manifest) {
    m.validate().expect("an accepted manifest validates again");
    let json = m.to_json();
    let back = Manifest::from_json(&json).unwrap_or_else(|e| panic!("{m:?} does not read back: {e}"));
    // Numbers too: the manifest crate reads JSON with serde_json's `float_roundtrip` (this
    // target found a number of 16-17 significant digits coming back one unit off without it).
    assert_eq!(&back, m, "the manifest changed through its own JSON");
    let _ = (m.contract_series(), contract_series(&m.contract));

    // Everything `plugin inspect` prints (host/src/plugin/inspect.rs, `render`).
    let mut shown: Vec<(&str, String)> = vec![
        ("name", m.name.clone()),
        ("version", m.version.clone()),
        ("description", m.description.clone()),
        ("license", m.license.clone()),
        ("sdk", m.sdk.clone()),
        ("contract", m.contract.clone()),
    ];
    shown.extend(m.authors.iter().map(|a| ("authors", a.clone())));
    shown.extend(m.permissions.instruments.iter().map(|i| ("instruments", i.clone())));
    for (key, s) in &m.config {
        shown.push(("config key", key.clone()));
        shown.push(("config description", s.description.clone()));
        if let Some(d) = &s.default {
            shown.push(("config default", d.to_string()));
        }
    }
    for (field, text) in shown {
        assert!(!text.chars().any(is_deceptive), "{field} {text:?} would be printed to the operator as is");
    }

    // The schema applied to an empty config: defaults fill in, only settings without one are
    // missing, and what comes out is accepted unchanged.
    match m.apply_config(&Map::new()) {
        Ok(config) => {
            for (key, s) in &m.config {
                assert_eq!(config.get(key), s.default.as_ref(), "config.{key}");
            }
            let again = m.apply_config(&config).expect("the defaults are accepted again");
            assert_eq!(again, config);
        }
        Err(e) => {
            assert!(m.config.values().any(|s| s.default.is_none()), "defaults alone were refused: {e}");
        }
    }
    // A value of the wrong type is refused for every setting.
    for (key, s) in &m.config {
        let wrong = match s.kind {
            SettingType::String => Value::Bool(true),
            _ => Value::String("x".into()),
        };
        let mut given = Map::new();
        given.insert(key.clone(), wrong);
        assert!(m.apply_config(&given).is_err(), "config.{key} took a value of the wrong type");
    }
}
