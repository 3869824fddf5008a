//! The manifest a shareable strategy carries inside its `.wasm` file.
//!
//! An operator who receives a strategy from someone else needs to know, before running it, who
//! wrote it, which contract it was built for and what it will ask to do. The manifest says so in
//! a custom section named [`SECTION`] (JSON, [`Manifest`]), written at build time by the plugin's
//! build script ([`build::embed`]) from the crate's `Cargo.toml` plus a small `tradebox.toml`:
//!
//! ```toml
//! [permissions]
//! instruments = ["{symbol}", "ETH-*"]      # a string setting, exact symbols, `*`, `PREFIX*`
//! channels = ["tickers", "trades"]         # tickers, books5, trades, candle1m
//! order_types = ["limit", "post_only"]     # limit, market, post_only, ioc, fok
//! max_orders_per_sec = 5                   # what it expects to need
//! max_order_notional = 1000
//!
//! [config.fast]                            # one table per setting the plugin reads
//! type = "integer"                         # string, integer, number, boolean
//! default = 10
//! description = "fast moving-average length"
//! min = 2
//! ```
//!
//! The host grants permissions in its own config; what a plugin may do is the intersection of
//! what it requested and what it was granted. This crate has no opinion on grants: it only
//! describes requests, so the build script and the host read one definition.

pub mod build;
mod schema;

pub use schema::{Setting, SettingType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
/// The vocabulary the permissions are written in (OKX names on the wire).
pub use tradebox_core::{Channel, OrderKind};

/// The custom section that holds the manifest.
pub const SECTION: &str = "tradebox-manifest";
/// The contract the SDK of this version builds against (the `wit/` package and version).
pub const CONTRACT: &str = "tradebox:strategy@0.1.0";
/// The version of the SDK (and of this crate, released together).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Manifest format version: bumped only for changes an older host cannot read.
pub const FORMAT: u32 = 1;

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("the {SECTION} section is not a valid manifest: {0}")]
    Json(#[from] serde_json::Error),
    /// `tradebox.toml` does not parse.
    #[error("tradebox.toml: {0}")]
    Toml(#[from] toml::de::Error),
    /// Parses, but says something impossible.
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// The plugin's config does not fit the manifest's schema.
    #[error("config: {0}")]
    Config(String),
}

/// Everything a plugin declares about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// Crate name.
    pub name: String,
    /// Crate version (semver).
    pub version: String,
    /// Crate authors.
    #[serde(default)]
    pub authors: Vec<String>,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// SPDX license expression.
    #[serde(default)]
    pub license: String,
    /// Version of the SDK it was built with.
    pub sdk: String,
    /// The contract it was built against, `tradebox:strategy@X.Y.Z`.
    pub contract: String,
    /// What it asks to do.
    #[serde(default)]
    pub permissions: Permissions,
    /// The settings it reads from its config, with defaults.
    #[serde(default)]
    pub config: BTreeMap<String, Setting>,
    /// What it is written in: a host fits its default memory cap and deadlines to the
    /// language's runtime (an interpreter inside the component needs more room than Rust).
    /// The operator's limits still decide; absent in manifests written before it existed.
    #[serde(default, skip_serializing_if = "Language::is_rust")]
    pub language: Language,
}

/// The language a strategy is written in, as its build wrote it into the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Compiled to wasm directly by the Rust SDK.
    #[default]
    Rust,
    /// CPython inside the component (componentize-py).
    Python,
    /// A JavaScript engine inside the component (componentize-js).
    #[serde(rename = "js")]
    JavaScript,
}

impl Language {
    fn is_rust(&self) -> bool {
        *self == Language::Rust
    }

    /// The name `--lang` and the manifest use.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
        }
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rust" | "rs" => Ok(Language::Rust),
            "python" | "py" => Ok(Language::Python),
            "js" | "javascript" => Ok(Language::JavaScript),
            other => Err(format!("unknown language {other:?}: rust, python or js")),
        }
    }
}

/// What a plugin asks to be allowed. Empty lists ask for nothing: a plugin that lists no
/// instruments can see no market and place no order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Instrument symbols or patterns (`*`, `PREFIX*`).
    #[serde(default)]
    pub instruments: Vec<String>,
    /// Market data channels.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Order types.
    #[serde(default)]
    pub order_types: Vec<OrderKind>,
    /// The order rate it expects to need; the host enforces the lower of this and its own limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_orders_per_sec: Option<u32>,
    /// The largest order notional (quote currency) it expects to send; enforced the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_order_notional: Option<f64>,
}

/// The setting an instrument request names, `symbol` of `{symbol}`: a strategy that trades
/// whatever instrument its config names asks for exactly that one.
pub fn placeholder(pattern: &str) -> Option<&str> {
    pattern.strip_prefix('{')?.strip_suffix('}')
}

/// True for one instrument symbol (`BTC-USDT`, `BTC-USDT-SWAP`): what a `{setting}`
/// placeholder may stand for. Never a pattern, so a setting cannot widen a request to `*`.
pub fn is_symbol(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Control characters (newlines, escapes), bidirectional overrides, invisible characters
/// (zero-width spaces and joiners, the byte order mark, the word joiner) and the line and
/// paragraph separators: text that could forge, reorder or hide what an operator reads
/// (`mm-eth` and `\u{200b}mm-eth` look the same).
pub fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{180e}'
                | '\u{feff}'
        )
}

/// The longest text a manifest may give per field, in characters: enough for any honest
/// description; past it, a manifest could push what the operator must read (the signature,
/// the verdict) off the screen.
pub const TEXT_LIMITS: &[(&str, usize)] =
    &[("name", 64), ("version", 64), ("license", 100), ("sdk", 100), ("description", 2_000), ("authors", 200)];

/// Most authors, settings and requested instruments a manifest may list.
pub const MAX_ITEMS: usize = 64;

/// True when `symbol` matches `pattern` (exact, `*`, or `PREFIX*`).
pub fn pattern_matches(pattern: &str, symbol: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => symbol.starts_with(prefix),
        None => pattern == symbol,
    }
}

/// True when every symbol `inner` matches is also matched by `outer`.
pub fn pattern_covers(outer: &str, inner: &str) -> bool {
    match (outer.strip_suffix('*'), inner.strip_suffix('*')) {
        (Some(o), Some(i)) => i.starts_with(o),
        (Some(o), None) => inner.starts_with(o),
        (None, Some(_)) => false,
        (None, None) => outer == inner,
    }
}

impl Manifest {
    /// Reads the JSON of a manifest section and checks it.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Self = serde_json::from_slice(bytes)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The section's bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, numbers and maps with string keys always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Checks what serde cannot: names, patterns, limits and the config schema.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |m: String| Err(ManifestError::Invalid(m));
        if self.format != FORMAT {
            return invalid(format!("format {} is not understood (this host reads format {FORMAT})", self.format));
        }
        if self.name.trim().is_empty() {
            return invalid("name is empty".into());
        }
        if !self.contract.starts_with("tradebox:strategy@") {
            return invalid(format!("contract {:?} is not a tradebox:strategy version", self.contract));
        }
        // What an operator reads in `plugin inspect` must not be able to draw lines of its own:
        // every text it prints, including the contract, the SDK version, the instruments and the
        // settings' names and string defaults. A setting's name is checked before it labels its
        // description.
        let mut texts: Vec<(&str, &str)> = vec![
            ("name", &self.name),
            ("version", &self.version),
            ("description", &self.description),
            ("license", &self.license),
            ("sdk", &self.sdk),
            ("contract", &self.contract),
        ];
        texts.extend(self.authors.iter().map(|a| ("authors", a.as_str())));
        texts.extend(self.permissions.instruments.iter().map(|i| ("instruments", i.as_str())));
        for (key, setting) in &self.config {
            texts.push(("a config setting's name", key));
            texts.push((key, &setting.description));
            if let Some(default) = setting.default.as_ref().and_then(|d| d.as_str()) {
                texts.push((key, default));
            }
        }
        if self.authors.len() > MAX_ITEMS
            || self.config.len() > MAX_ITEMS
            || self.permissions.instruments.len() > MAX_ITEMS
        {
            return invalid(format!("more than {MAX_ITEMS} authors, config settings or instruments"));
        }
        for (field, text) in &texts {
            // A setting's description and default are labelled by its name.
            let limit = TEXT_LIMITS.iter().find(|(f, _)| f == field).map_or(500, |(_, n)| *n);
            let chars = text.chars().count();
            if chars > limit {
                return invalid(format!("{field} is {chars} characters long; at most {limit}"));
            }
        }
        for (field, text) in texts {
            if text.chars().any(is_deceptive) {
                return invalid(format!("{field} contains control, invisible or bidirectional characters: {text:?}"));
            }
        }
        for pattern in &self.permissions.instruments {
            if let Some(key) = placeholder(pattern) {
                match self.config.get(key) {
                    Some(setting) if setting.kind == SettingType::String => {
                        if let Some(default) = setting.default.as_ref().and_then(|d| d.as_str())
                            && !default.is_empty()
                            && !is_symbol(default)
                        {
                            return invalid(format!(
                                "instrument {pattern}: the default {default:?} of config.{key} is not one instrument symbol"
                            ));
                        }
                        continue;
                    }
                    _ => return invalid(format!("instrument {pattern}: config.{key} must be a string setting")),
                }
            }
            let body = pattern.strip_suffix('*').unwrap_or(pattern);
            if body.contains('*') || !body.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return invalid(format!(
                    "instrument pattern {pattern:?}: use a symbol like BTC-USDT, `*`, or a prefix like BTC-*"
                ));
            }
        }
        if self.permissions.max_orders_per_sec == Some(0) {
            return invalid("max_orders_per_sec must be at least 1".into());
        }
        if let Some(n) = self.permissions.max_order_notional
            && !(n.is_finite() && n > 0.0)
        {
            return invalid(format!("max_order_notional must be a positive number, not {n}"));
        }
        for (key, setting) in &self.config {
            setting.validate(key).map_err(ManifestError::Invalid)?;
        }
        Ok(())
    }

    /// The config `init` receives: `given` checked against the schema, with defaults filled in.
    /// A manifest without settings passes `given` through unchanged.
    pub fn apply_config(
        &self,
        given: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ManifestError> {
        if self.config.is_empty() {
            return Ok(given.clone());
        }
        schema::apply(&self.config, given).map_err(ManifestError::Config)
    }

    /// The major.minor of the contract (`0.1` of `tradebox:strategy@0.1.0`): plugins and hosts
    /// with the same one understand each other.
    pub fn contract_series(&self) -> &str {
        contract_series(&self.contract)
    }
}

/// The `major.minor` part of `tradebox:strategy@major.minor.patch`.
pub fn contract_series(contract: &str) -> &str {
    let version = contract.rsplit_once('@').map(|(_, v)| v).unwrap_or(contract);
    match version.match_indices('.').nth(1) {
        Some((i, _)) => &version[..i],
        None => version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        build::from_sources(
            &build::Package {
                name: "sma-cross".into(),
                version: "1.2.0".into(),
                authors: vec!["Ada <ada@example.com>".into()],
                description: "crossover".into(),
                license: "MIT".into(),
            },
            r#"
            [permissions]
            instruments = ["{symbol}", "ETH-*"]
            channels = ["tickers"]
            order_types = ["limit", "post_only"]
            max_orders_per_sec = 5
            [config.fast]
            type = "integer"
            default = 10
            min = 2
            description = "fast length"
            [config.symbol]
            type = "string"
            default = "BTC-USDT"
            "#,
        )
        .expect("parses")
    }

    #[test]
    fn round_trips_through_json() {
        let m = sample();
        assert_eq!(Manifest::from_json(&m.to_json()).expect("reads back"), m);
        assert_eq!(m.contract, CONTRACT);
        assert_eq!(m.contract_series(), "0.1");
        assert_eq!(m.permissions.order_types, [OrderKind::Limit, OrderKind::PostOnly]);
    }

    #[test]
    fn unknown_fields_and_bad_patterns_are_refused() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).expect("json");
        json["permissions"]["withdraw"] = true.into();
        let err = Manifest::from_json(json.to_string().as_bytes()).expect_err("unknown field");
        assert!(err.to_string().contains("withdraw"), "{err}");

        let mut m = sample();
        m.permissions.instruments = vec!["B*TC".into()];
        assert!(m.validate().expect_err("bad pattern").to_string().contains("B*TC"));
        let mut m = sample();
        m.permissions.instruments = vec!["{fast}".into()];
        assert!(m.validate().expect_err("not a string").to_string().contains("config.fast"));
        let mut m = sample();
        m.config.get_mut("symbol").expect("symbol").default = Some("*".into());
        assert!(m.validate().expect_err("a wildcard default").to_string().contains("not one instrument symbol"));
        let mut m = sample();
        m.description = "fine\nverdict    this host can load it".into();
        assert!(m.validate().expect_err("a forged line").to_string().contains("control"));
        let mut m = sample();
        m.format = 2;
        assert!(m.validate().is_err());
    }

    /// Found by `fuzz/` (target `manifest`): a number of 16-17 significant digits came back one
    /// unit in the last place off (serde_json without `float_roundtrip`).
    #[test]
    fn numbers_read_back_as_written() {
        let x: f64 = "88888868888888888888800000000000713226315987390001.0".parse().expect("f64");
        let text = serde_json::to_string(&x).expect("json");
        assert_eq!(serde_json::from_str::<f64>(&text).expect("reads"), x, "{text}");
    }

    /// Found by `fuzz/` (target `manifest`): the contract, the SDK version, the instruments and
    /// the settings' names and string defaults were not checked for control and bidirectional
    /// characters, yet `plugin inspect` prints them all (and a contract like this one still
    /// names the served series).
    #[test]
    fn every_text_inspect_prints_is_checked() {
        let found = "{\"format\":1,\"name\":\"noop\",\"version\":\"0.1.0'\",\"sdk\":\"0.1.0\",\"contract\":\"tradebox:strategy@0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u{7f}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.1d0\"}";
        let err = Manifest::from_json(found.as_bytes()).expect_err("a DEL in the contract");
        assert!(err.to_string().contains("contract contains control"), "{err}");

        let mut m = sample();
        m.contract = "tradebox:strategy@0.1.0\u{202e}".into();
        assert_eq!(m.contract_series(), "0.1", "it would pass the host's series check");
        assert!(m.validate().expect_err("bidi in the contract").to_string().contains("contract"));
        let mut m = sample();
        m.sdk = "0.1.0\nverdict    this host can load it".into();
        assert!(m.validate().expect_err("a forged line").to_string().contains("sdk"));
        let mut m = sample();
        let fast = m.config.remove("fast").expect("fast");
        m.config.insert("fast\u{2066}".into(), fast);
        assert!(m.validate().expect_err("bidi in a name").to_string().contains("config setting's name"));
        let mut m = sample();
        m.config.get_mut("symbol").expect("symbol").default = Some("ETH\u{202e}".into());
        m.permissions.instruments = vec!["ETH-*".into()];
        assert!(m.validate().expect_err("bidi in a default").to_string().contains("symbol contains"));
    }

    /// From the console's attacker review: a manifest's texts are shown to the operator above
    /// the verdict; invisible characters and very long texts must not pass.
    #[test]
    fn invisible_characters_and_very_long_texts_are_refused() {
        let mut m = sample();
        m.authors = vec!["\u{200b}tradebox developers".into()];
        assert!(m.validate().expect_err("a zero-width space").to_string().contains("invisible"));
        let mut m = sample();
        m.description = "x".repeat(2_001);
        assert!(m.validate().expect_err("a long description").to_string().contains("at most 2000"));
        let mut m = sample();
        m.version = "1".repeat(65);
        assert!(m.validate().expect_err("a long version").to_string().contains("version"));
        let mut m = sample();
        m.authors = vec!["a".into(); MAX_ITEMS + 1];
        assert!(m.validate().is_err(), "too many authors");
        let mut m = sample();
        m.description = "x".repeat(2_000);
        m.validate().expect("2,000 characters are fine");
    }

    #[test]
    fn patterns_cover_what_they_should() {
        assert!(pattern_covers("*", "BTC-USDT"));
        assert!(pattern_covers("*", "BTC-*"));
        assert!(pattern_covers("BTC-*", "BTC-USDT-SWAP"));
        assert!(pattern_covers("BTC-*", "BTC-USDT-*"));
        assert!(!pattern_covers("BTC-USDT", "BTC-*"));
        assert!(!pattern_covers("BTC-*", "ETH-USDT"));
        assert!(pattern_covers("BTC-USDT", "BTC-USDT"));
        assert!(pattern_matches("ETH-*", "ETH-USDT") && !pattern_matches("ETH-*", "BTC-USDT"));
    }

    #[test]
    fn contract_series_is_major_minor() {
        assert_eq!(contract_series("tradebox:strategy@0.2.7"), "0.2");
        assert_eq!(contract_series("tradebox:strategy@1"), "1");
    }
}
