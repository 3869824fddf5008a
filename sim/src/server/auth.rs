//! Request authentication exactly as OKX checks it (okx-v5.md §1 and §9.1): the four
//! `OK-ACCESS-*` headers, in OKX's order of checks, each failure with OKX's code, message and
//! HTTP 401. The signature is checked over the raw `path?query` and the raw body bytes, never a
//! re-serialisation, so any client that signs what it sends passes.

use serde::Deserialize;
use std::fmt;
use tradebox_okx::sign::{parse_timestamp, verify};

/// How far a request's timestamp may be from the server's clock (okx-v5.md §8).
pub const WINDOW_MS: i64 = 30_000;

/// An API key the simulator accepts. The secret and passphrase are the simulator's own test
/// values, never an operator's real credentials; they are still kept out of `Debug`.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimKey {
    /// `OK-ACCESS-KEY`.
    pub api_key: String,
    /// HMAC secret.
    pub secret: String,
    /// `OK-ACCESS-PASSPHRASE`.
    pub passphrase: String,
    /// `perm` of `/account/config`: comma-separated `read_only`, `trade`, `withdraw`.
    #[serde(default = "default_perm")]
    pub perm: String,
    /// A demo-trading key (needs `x-simulated-trading: 1`) rather than a live one.
    #[serde(default = "yes")]
    pub demo: bool,
    /// IPs the key is bound to, as `/account/config` reports them (informational).
    #[serde(default)]
    pub ip: String,
    /// The key's label.
    #[serde(default)]
    pub label: String,
    /// OKX's account mode (`acctLv`) the key's account is in: 1 spot, 2 futures (the
    /// default), 3 multi-currency margin, 4 portfolio margin. It decides which `tdMode` each
    /// order needs and whether swaps trade at all.
    #[serde(default = "futures_mode")]
    pub acct_lv: u8,
    /// OKX's position mode: `net_mode` (the default) or `long_short_mode`, where every swap
    /// order names its position (`posSide`).
    #[serde(default)]
    pub pos_mode: tradebox_okx::model::PositionMode,
}

fn futures_mode() -> u8 {
    2
}

fn default_perm() -> String {
    "read_only,trade".into()
}

fn yes() -> bool {
    true
}

impl fmt::Debug for SimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimKey")
            .field("api_key", &self.api_key)
            .field("perm", &self.perm)
            .field("demo", &self.demo)
            .field("acct_lv", &self.acct_lv)
            .field("pos_mode", &self.pos_mode)
            .finish_non_exhaustive()
    }
}

impl SimKey {
    /// A fresh random demo-trading key with `read_only,trade`, for a simulator started without
    /// configured keys (the demo, `tradebox sim` with no config).
    pub fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        let hex = |rng: &mut rand::rngs::ThreadRng, n: usize| -> String {
            (0..n).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0')).collect()
        };
        let api_key = format!("{}-{}-{}", hex(&mut rng, 8), hex(&mut rng, 4), hex(&mut rng, 12));
        let secret = hex(&mut rng, 32).to_uppercase();
        let passphrase = format!("Sim{}", hex(&mut rng, 8));
        Self {
            api_key,
            secret,
            passphrase,
            perm: default_perm(),
            demo: true,
            ip: String::new(),
            label: "generated".into(),
            acct_lv: futures_mode(),
            pos_mode: Default::default(),
        }
    }

    /// The modes the key's account trades in (`None` when `acct_lv` is not 1-4).
    pub fn modes(&self) -> Option<super::exchange::AccountModes> {
        let level = tradebox_okx::model::AccountLevel::from_code(&self.acct_lv.to_string())?;
        Some(super::exchange::AccountModes { level, positions: self.pos_mode })
    }

    /// Whether the key carries permission `p`.
    pub fn has(&self, p: &str) -> bool {
        self.perm.split(',').any(|x| x.trim() == p)
    }
}

/// A refused request: HTTP status, OKX code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// HTTP status (401).
    pub status: u16,
    /// OKX code.
    pub code: &'static str,
    /// OKX message.
    pub msg: &'static str,
}

const fn deny(code: &'static str, msg: &'static str) -> AuthError {
    AuthError { status: 401, code, msg }
}

/// The headers a private request carries (looked up case-insensitively by the caller).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthHeaders<'a> {
    /// `OK-ACCESS-KEY`.
    pub key: Option<&'a str>,
    /// `OK-ACCESS-SIGN`.
    pub sign: Option<&'a str>,
    /// `OK-ACCESS-TIMESTAMP`.
    pub timestamp: Option<&'a str>,
    /// `OK-ACCESS-PASSPHRASE`.
    pub passphrase: Option<&'a str>,
    /// `x-simulated-trading: 1`.
    pub demo: bool,
}

/// Checks a private request; returns the key it was made with.
pub fn authenticate<'k>(
    keys: &'k [SimKey],
    h: &AuthHeaders<'_>,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    server_ms: i64,
) -> Result<&'k SimKey, AuthError> {
    fn present(v: Option<&str>) -> Option<&str> {
        v.filter(|s| !s.is_empty())
    }
    let key = present(h.key).ok_or(deny("50103", "Request header \"OK-ACCESS-KEY\" cannot be empty."))?;
    let passphrase =
        present(h.passphrase).ok_or(deny("50104", "Request header \"OK-ACCESS-PASSPHRASE\" cannot be empty."))?;
    let sign = present(h.sign).ok_or(deny("50106", "Request header \"OK-ACCESS-SIGN\" cannot be empty."))?;
    let timestamp =
        present(h.timestamp).ok_or(deny("50107", "Request header \"OK-ACCESS-TIMESTAMP\" cannot be empty."))?;
    let k = keys.iter().find(|k| k.api_key == key).ok_or(deny("50111", "Invalid OK-ACCESS-KEY"))?;
    if k.demo != h.demo {
        return Err(deny("50101", "APIKey does not match current environment."));
    }
    let ts = parse_timestamp(timestamp).ok_or(deny("50112", "Invalid OK-ACCESS-TIMESTAMP"))?;
    if (server_ms - ts).abs() > WINDOW_MS {
        return Err(deny("50102", "Timestamp request expired"));
    }
    // okx-v5.md §9.1: where OKX checks the passphrase among these is unconfirmed.
    if k.passphrase != passphrase {
        return Err(deny("50105", "Request header \"OK-ACCESS-PASSPHRASE\" incorrect."));
    }
    if !verify(k.secret.as_bytes(), timestamp, method, path_and_query, body, sign) {
        return Err(deny("50113", "Invalid Sign"));
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradebox_okx::sign::{Signer, timestamp};

    fn key(demo: bool) -> SimKey {
        SimKey {
            api_key: "k1".into(),
            secret: "22582BD0CFF14C41EDBF1AB98506286D".into(),
            passphrase: "pass".into(),
            perm: default_perm(),
            demo,
            ip: String::new(),
            label: String::new(),
            acct_lv: 2,
            pos_mode: Default::default(),
        }
    }

    #[test]
    fn each_failure_has_okx_code_in_okx_order() {
        let keys = [key(true)];
        let now = 1_607_418_537_715;
        let ts = timestamp(now);
        let signer = Signer::new(tradebox_okx::Credentials::new("k1", "22582BD0CFF14C41EDBF1AB98506286D", "pass"));
        let path = "/api/v5/account/balance?ccy=BTC";
        let sign = signer.sign(&ts, "GET", path, b"");
        let good = AuthHeaders {
            key: Some("k1"),
            sign: Some(&sign),
            timestamp: Some(&ts),
            passphrase: Some("pass"),
            demo: true,
        };
        let check =
            |h: AuthHeaders<'_>, at: i64| authenticate(&keys, &h, "GET", path, b"", at).map(|_| ()).map_err(|e| e.code);
        assert_eq!(check(good, now), Ok(()));
        assert_eq!(check(AuthHeaders { key: None, ..good }, now), Err("50103"));
        assert_eq!(check(AuthHeaders { passphrase: Some(""), ..good }, now), Err("50104"));
        assert_eq!(check(AuthHeaders { sign: None, ..good }, now), Err("50106"));
        assert_eq!(check(AuthHeaders { timestamp: None, ..good }, now), Err("50107"));
        assert_eq!(check(AuthHeaders { key: Some("nope"), ..good }, now), Err("50111"));
        assert_eq!(check(AuthHeaders { demo: false, ..good }, now), Err("50101"));
        assert_eq!(check(AuthHeaders { timestamp: Some("2020-12-08 09:08:57"), ..good }, now), Err("50112"));
        assert_eq!(check(good, now + 30_001), Err("50102"));
        assert_eq!(check(good, now - 30_001), Err("50102"));
        assert_eq!(check(AuthHeaders { passphrase: Some("wrong"), ..good }, now), Err("50105"));
        assert_eq!(check(AuthHeaders { sign: Some("AAAA"), ..good }, now), Err("50113"));
        // The signature covers the raw query: another order of the same parameters fails.
        let err = authenticate(&keys, &good, "GET", "/api/v5/account/balance?ccy=ETH", b"", now).unwrap_err();
        assert_eq!((err.status, err.code, err.msg), (401, "50113", "Invalid Sign"));
        assert!(!format!("{:?}", keys[0]).contains("22582BD0"), "Debug never shows the secret");
    }
}
