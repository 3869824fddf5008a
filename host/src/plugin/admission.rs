//! Admission: what a plugin will be allowed to do, decided from its manifest and the operator's
//! grant before any of its code runs.
//!
//! The manifest's request, with `{setting}` placeholders filled from the plugin's config, is
//! compared with the grant and the plugin's risk limits. A request beyond them is refused,
//! naming every item, unless the operator set `partial_grant` (then the plugin runs with the
//! intersection and the difference is logged). The manifest's order rate and notional are
//! ceilings the risk check applies on top of the operator's limits. The config `init` receives is the operator's,
//! checked against the manifest's schema with its defaults filled in. A component without a
//! manifest asks for nothing: it may log and set timers, and every instrument, channel and
//! order type is refused to it.

use crate::engine::permissions::{self, Grants, Requested};
use crate::risk::RiskLimits;
use serde_json::{Map, Value};
use tradebox_manifest::{Manifest, placeholder};

/// Why a plugin was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// It asks for more than it was granted.
    #[error(
        "plugin {name} requests more than it is granted:\n  - {}\ngrant it in the plugin's config, or set \
         partial_grant = true to run it with only what is granted",
        .excess.join("\n  - ")
    )]
    Excess {
        /// Plugin name.
        name: String,
        /// One line per item beyond the grant.
        excess: Vec<String>,
    },
    /// Its config does not fit its manifest's schema.
    #[error("plugin {name}: {message}")]
    Config {
        /// Plugin name.
        name: String,
        /// Every problem.
        message: String,
    },
}

/// What a plugin is admitted with.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The request, resolved.
    pub requested: Requested,
    /// The config `init` gets (JSON text).
    pub config: String,
    /// What it asked beyond the grant and will not get (only with `partial_grant`).
    pub withheld: Vec<String>,
}

/// Decides what plugin `name` may do.
pub fn admit(
    name: &str,
    manifest: Option<&Manifest>,
    grants: &Grants,
    risk: &RiskLimits,
    config: &str,
) -> Result<Admission, AdmissionError> {
    let config_error = |message: String| AdmissionError::Config { name: name.to_string(), message };
    let Some(manifest) = manifest else {
        tracing::warn!(plugin = %name, "the component has no manifest: it is granted nothing (no instruments, channels or order types)");
        return Ok(Admission { requested: Requested::default(), config: config.to_string(), withheld: Vec::new() });
    };
    let (config, settings) = if manifest.config.is_empty() {
        (config.to_string(), Map::new())
    } else {
        let given = parse_config(config).map_err(config_error)?;
        let applied = manifest.apply_config(&given).map_err(|e| config_error(e.to_string()))?;
        (Value::Object(applied.clone()).to_string(), applied)
    };
    for pattern in &manifest.permissions.instruments {
        if let Some(key) = placeholder(pattern)
            && let Some(value) = settings.get(key).and_then(Value::as_str)
            && !value.is_empty()
            && !tradebox_manifest::is_symbol(value)
        {
            return Err(config_error(format!(
                "config.{key} = {value:?} is not one instrument symbol (the plugin asks for the instrument it names)"
            )));
        }
    }
    let requested = resolve(manifest, &settings);
    let excess = permissions::excess(&requested, grants, risk);
    if !excess.is_empty() && !grants.partial {
        return Err(AdmissionError::Excess { name: name.to_string(), excess });
    }
    if !excess.is_empty() {
        tracing::warn!(plugin = %name, withheld = %excess.join("; "), "partial grant: the plugin runs without part of what it requested");
    }
    Ok(Admission { requested, config, withheld: excess })
}

/// The operator's config as an object; nothing at all is an empty one.
fn parse_config(config: &str) -> Result<Map<String, Value>, String> {
    if config.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(config) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(format!("config must be a table of settings, not {other}")),
        Err(e) => Err(format!("config is not valid JSON: {e}")),
    }
}

/// The manifest's request with placeholders filled in from the applied config. A placeholder
/// whose setting is empty asks for nothing.
fn resolve(manifest: &Manifest, settings: &Map<String, Value>) -> Requested {
    let p = &manifest.permissions;
    let instruments = p
        .instruments
        .iter()
        .filter_map(|pattern| match placeholder(pattern) {
            Some(key) => settings.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string),
            None => Some(pattern.clone()),
        })
        .collect();
    // The manifest speaks the shared vocabulary: its channels and order types are the host's.
    let channels = p.channels.clone();
    let order_kinds = p.order_types.clone();
    Requested {
        instruments,
        channels,
        order_kinds,
        max_orders_per_sec: p.max_orders_per_sec,
        max_order_notional: p.max_order_notional,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradebox_manifest::build::{Package, from_sources};

    fn manifest() -> Manifest {
        from_sources(
            &Package { name: "sma".into(), version: "1.0.0".into(), ..Package::default() },
            r#"
            [permissions]
            instruments = ["{symbol}"]
            channels = ["tickers"]
            order_types = ["market"]
            max_orders_per_sec = 2
            [config.symbol]
            type = "string"
            default = "BTC-USDT"
            [config.fast]
            type = "integer"
            default = 10
            "#,
        )
        .expect("manifest")
    }

    fn grants(instruments: &[&str]) -> Grants {
        Grants { instruments: instruments.iter().map(|s| s.to_string()).collect(), ..Grants::default() }
    }

    #[test]
    fn the_request_follows_the_config_and_defaults_fill_in() {
        let m = manifest();
        let a = admit("sma", Some(&m), &grants(&["ETH-USDT"]), &RiskLimits::default(), r#"{"symbol":"ETH-USDT"}"#)
            .expect("admitted");
        assert_eq!(a.requested.instruments, ["ETH-USDT"]);
        assert_eq!(a.requested.channels, [tradebox_core::Channel::Tickers]);
        assert_eq!(
            serde_json::from_str::<Value>(&a.config).expect("json"),
            serde_json::json!({"symbol": "ETH-USDT", "fast": 10})
        );
        assert_eq!(a.requested.max_orders_per_sec, Some(2));
    }

    #[test]
    fn asking_beyond_the_grant_is_refused_unless_partial() {
        let m = manifest();
        let err = admit("sma", Some(&m), &grants(&["ETH-USDT"]), &RiskLimits::default(), "{}").expect_err("over-asks");
        let text = err.to_string();
        assert!(text.contains("instrument BTC-USDT (granted: ETH-USDT)"), "{text}");
        let partial = Grants { partial: true, ..grants(&["ETH-USDT"]) };
        let a = admit("sma", Some(&m), &partial, &RiskLimits::default(), "{}").expect("partial grant");
        assert_eq!(a.withheld.len(), 1);
    }

    #[test]
    fn a_placeholder_cannot_widen_the_request_to_a_pattern() {
        let m = manifest();
        for wide in ["*", "BTC-*"] {
            let config = format!(r#"{{"symbol":"{wide}"}}"#);
            let err = admit("sma", Some(&m), &grants(&["*"]), &RiskLimits::default(), &config).expect_err("a pattern");
            assert!(err.to_string().contains("is not one instrument symbol"), "{err}");
        }
    }

    #[test]
    fn a_config_that_does_not_fit_the_schema_is_refused() {
        let m = manifest();
        let err = admit("sma", Some(&m), &grants(&["*"]), &RiskLimits::default(), r#"{"fats": 3}"#).expect_err("typo");
        assert!(err.to_string().contains("config.fats is not a setting"), "{err}");
        let err = admit("sma", Some(&m), &grants(&["*"]), &RiskLimits::default(), "[1]").expect_err("not a table");
        assert!(err.to_string().contains("table"), "{err}");
    }

    #[test]
    fn no_manifest_asks_for_nothing() {
        let a = admit("x", None, &grants(&["*"]), &RiskLimits::default(), "\"spin\"").expect("admitted");
        assert_eq!(a.requested, Requested::default());
        assert_eq!(a.config, "\"spin\"");
    }
}
