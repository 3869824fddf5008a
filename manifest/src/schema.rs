//! The config schema: the settings a plugin reads, so the operator learns them from
//! `tradebox plugin inspect` and a typo in the host config fails the load instead of being
//! silently ignored by the plugin.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: SettingType,
    /// Used when the operator gives none; without one the setting is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// What it does, for the operator.
    #[serde(default)]
    pub description: String,
    /// Smallest allowed value (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest allowed value (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// The JSON types a setting can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// true or false.
    Boolean,
}

impl Setting {
    /// Checks the declaration itself: a default must fit its own type and bounds.
    pub(crate) fn validate(&self, key: &str) -> Result<(), String> {
        if key.is_empty() {
            return Err("a config setting has an empty name".into());
        }
        if (self.min.is_some() || self.max.is_some())
            && !matches!(self.kind, SettingType::Integer | SettingType::Number)
        {
            return Err(format!("config.{key}: min and max apply to numbers only"));
        }
        if let Some(default) = &self.default {
            self.check(key, default).map_err(|e| format!("default of {e}"))?;
        }
        Ok(())
    }

    fn check(&self, key: &str, value: &Value) -> Result<(), String> {
        let fits = match self.kind {
            SettingType::String => value.is_string(),
            SettingType::Integer => value.is_i64() || value.is_u64(),
            SettingType::Number => value.is_number(),
            SettingType::Boolean => value.is_boolean(),
        };
        if !fits {
            return Err(format!("config.{key}: expected {}, got {value}", self.kind.name()));
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = self.min
                && n < min
            {
                return Err(format!("config.{key}: {n} is below the minimum {min}"));
            }
            if let Some(max) = self.max
                && n > max
            {
                return Err(format!("config.{key}: {n} is above the maximum {max}"));
            }
        }
        Ok(())
    }
}

impl SettingType {
    fn name(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Integer => "an integer",
            Self::Number => "a number",
            Self::Boolean => "true or false",
        }
    }
}

/// `given` checked against `schema`, defaults filled in. Every problem is reported at once.
pub(crate) fn apply(
    schema: &BTreeMap<String, Setting>,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let mut problems = Vec::new();
    for key in given.keys().filter(|k| !schema.contains_key(*k)) {
        let known: Vec<&str> = schema.keys().map(String::as_str).collect();
        problems.push(format!("config.{key} is not a setting of this plugin (it reads: {})", known.join(", ")));
    }
    let mut out = Map::new();
    for (key, setting) in schema {
        match given.get(key).or(setting.default.as_ref()) {
            Some(value) => match setting.check(key, value) {
                Ok(()) => {
                    out.insert(key.clone(), value.clone());
                }
                Err(e) => problems.push(e),
            },
            None => problems.push(format!("config.{key} is required ({})", setting.description)),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> BTreeMap<String, Setting> {
        serde_json::from_value(json!({
            "symbol": {"type": "string", "description": "what to trade"},
            "fast": {"type": "integer", "default": 10, "min": 2},
            "size": {"type": "number", "default": 0.01, "max": 1.0},
        }))
        .expect("schema")
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn defaults_fill_in_and_given_values_win() {
        let out = apply(&schema(), &map(json!({"symbol": "BTC-USDT", "fast": 5}))).expect("fits");
        assert_eq!(Value::Object(out), json!({"symbol": "BTC-USDT", "fast": 5, "size": 0.01}));
    }

    #[test]
    fn every_problem_is_named() {
        let err = apply(&schema(), &map(json!({"fats": 5, "fast": 1, "size": "big"}))).expect_err("bad");
        assert!(err.contains("config.fats is not a setting"), "{err}");
        assert!(err.contains("config.fast: 1 is below the minimum 2"), "{err}");
        assert!(err.contains("config.size: expected a number"), "{err}");
        assert!(err.contains("config.symbol is required (what to trade)"), "{err}");
    }

    #[test]
    fn a_default_must_fit_its_own_declaration() {
        let s: Setting = serde_json::from_value(json!({"type": "integer", "default": 1.5})).expect("parses");
        assert!(s.validate("n").is_err());
        let s: Setting = serde_json::from_value(json!({"type": "string", "min": 1})).expect("parses");
        assert!(s.validate("n").is_err());
    }
}
