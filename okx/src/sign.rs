//! Request signing (okx-v5.md §1): `base64(HMAC-SHA256(secret, timestamp + METHOD +
//! requestPath + body))`.
//!
//! The keyed HMAC state is built once per [`Signer`] and cloned per signature, so a signature
//! costs two SHA-256 compressions of the message and none of the key. That state is as good as
//! the secret to a forger, so it and every clone of it are wiped when dropped (hmac's and
//! sha2's `zeroize` features), as is the passphrase's copy in [`SignedHeaders`]. The caller signs the exact
//! bytes it sends: `path_and_query` as it goes on the wire and the body as serialised once.

use crate::credentials::Credentials;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use std::time::{Duration, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// OKX's REST timestamp: UTC ISO-8601 with exactly three millisecond digits and `Z`, e.g.
/// `2020-12-08T09:08:57.715Z`.
pub fn timestamp(ms_since_epoch: i64) -> String {
    // RFC 3339 ends at 9999-12-31: a time from outside (a server's clock) never makes this panic.
    const LAST_MS: i64 = 253_402_300_799_999;
    let ms = ms_since_epoch.clamp(0, LAST_MS);
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses a REST timestamp back to milliseconds since the epoch; `None` unless it has exactly
/// OKX's shape (what a server answers with 50112 for).
pub fn parse_timestamp(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    let shape_ok = b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape_ok {
        return None;
    }
    let t = humantime::parse_rfc3339(ts).ok()?;
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// The prehash string: what is signed.
pub fn prehash(timestamp: &str, method: &str, path_and_query: &str, body: &str) -> String {
    let mut s = String::with_capacity(timestamp.len() + method.len() + path_and_query.len() + body.len());
    s.push_str(timestamp);
    s.push_str(method);
    s.push_str(path_and_query);
    s.push_str(body);
    s
}

/// The headers of a signed private request. The passphrase is only ever exposed here, into the
/// header value that has to carry it.
pub struct SignedHeaders {
    /// `OK-ACCESS-KEY`.
    pub key: String,
    /// `OK-ACCESS-SIGN`.
    pub sign: String,
    /// `OK-ACCESS-TIMESTAMP`.
    pub timestamp: String,
    /// `OK-ACCESS-PASSPHRASE`: wiped when the headers are dropped.
    pub passphrase: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedHeaders").field("timestamp", &self.timestamp).finish_non_exhaustive()
    }
}

/// Signs requests with one account's secret.
#[derive(Clone)]
pub struct Signer {
    credentials: Credentials,
    keyed: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("credentials", &self.credentials).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        let keyed = keyed(credentials.secret().expose_secret().as_bytes());
        Self { credentials, keyed }
    }

    /// The credentials (for the key id in headers; the secret stays wrapped).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// `base64(HMAC-SHA256(secret, prehash))` over the four parts, without building the string.
    pub fn sign(&self, timestamp: &str, method: &str, path_and_query: &str, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(timestamp.as_bytes());
        mac.update(method.as_bytes());
        mac.update(path_and_query.as_bytes());
        mac.update(body);
        BASE64.encode(mac.finalize().into_bytes())
    }

    /// The four `OK-ACCESS-*` header values for a request stamped `timestamp`.
    pub fn headers(&self, timestamp: String, method: &str, path_and_query: &str, body: &[u8]) -> SignedHeaders {
        let sign = self.sign(&timestamp, method, path_and_query, body);
        SignedHeaders {
            key: self.credentials.api_key().to_string(),
            sign,
            timestamp,
            passphrase: zeroize::Zeroizing::new(self.credentials.passphrase().expose_secret().to_string()),
        }
    }

    /// The WebSocket login signature: `sign(ts_seconds + "GET" + "/users/self/verify")`.
    pub fn ws_login(&self, ts_seconds: i64) -> String {
        self.sign(&ts_seconds.to_string(), "GET", "/users/self/verify", b"")
    }
}

/// The signer in use, shared by the REST client and the WebSocket logins of one account, and
/// swapped whole when the key is rotated: a request is signed by the old key or the new one,
/// never by a mix, and the old key's material is wiped once the last request using it is done.
#[derive(Clone)]
pub struct SharedSigner(std::sync::Arc<parking_lot::RwLock<std::sync::Arc<Signer>>>);

impl SharedSigner {
    /// Shares `signer`.
    pub fn new(signer: Signer) -> Self {
        Self(std::sync::Arc::new(parking_lot::RwLock::new(std::sync::Arc::new(signer))))
    }

    /// The signer to use now.
    pub fn current(&self) -> std::sync::Arc<Signer> {
        self.0.read().clone()
    }

    /// Puts `signer` in use for every request and login from now on.
    pub fn replace(&self, signer: Signer) {
        self.take_from(&Self::new(signer));
    }

    /// Puts the signer `other` uses now in use here too (a key tried on its own first).
    pub fn take_from(&self, other: &SharedSigner) {
        let next = other.current();
        let old = std::mem::replace(&mut *self.0.write(), next);
        drop(old);
    }
}

impl std::fmt::Debug for SharedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedSigner").field(&self.current()).finish()
    }
}

impl From<Signer> for SharedSigner {
    fn from(signer: Signer) -> Self {
        Self::new(signer)
    }
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// Checks a signature the way an OKX server does (for the simulator), in constant time.
pub fn verify(secret: &[u8], timestamp: &str, method: &str, path_and_query: &str, body: &[u8], sign: &str) -> bool {
    let Ok(expected) = BASE64.decode(sign) else { return false };
    let mut mac = keyed(secret);
    mac.update(timestamp.as_bytes());
    mac.update(method.as_bytes());
    mac.update(path_and_query.as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2020-12-08T09:08:57.715Z";

    fn signer(secret: &str) -> Signer {
        Signer::new(Credentials::new("key-id", secret, "passphrase"))
    }

    #[test]
    fn vector_1_nautilus_simple_get() {
        let s = signer("chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO");
        assert_eq!(s.sign(TS, "GET", "/api/v5/account/balance", b""), "PJ61e1nb2F2Qd7D8SPiaIcx2gjdELc+o0ygzre9z33k=");
    }

    #[test]
    fn vector_2_table() {
        let s = signer("22582BD0CFF14C41EDBF1AB98506286D");
        let cases = [
            ("GET", "/api/v5/account/balance?ccy=BTC", "", "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY="),
            (
                "GET",
                "/api/v5/trade/orders-pending?instType=SPOT&instId=BTC-USDT",
                "",
                "n4z8EhdoLivikUgHwYai810p6XKcX0yDa43sSkA4FOM=",
            ),
            (
                "POST",
                "/api/v5/trade/order",
                r#"{"instId":"BTC-USDT","tdMode":"cash","clOrdId":"b15","side":"buy","ordType":"limit","px":"2.15","sz":"2"}"#,
                "dI6rrL9rXW/HdaPKJ/6LC1OgvH4/PYju6R3CqixMTNQ=",
            ),
            (
                "POST",
                "/api/v5/trade/batch-orders",
                r#"[{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","px":"2.15","sz":"2"}]"#,
                "PO965QpimcEMaJx4t+wOZRnmpBSacC+0bI3zA7gs6K4=",
            ),
        ];
        for (method, path, body, expected) in cases {
            assert_eq!(s.sign(TS, method, path, body.as_bytes()), expected, "{method} {path}");
            assert!(verify(b"22582BD0CFF14C41EDBF1AB98506286D", TS, method, path, body.as_bytes(), expected));
        }
    }

    #[test]
    fn vector_ws_login() {
        let s = signer("22582BD0CFF14C41EDBF1AB98506286D");
        assert_eq!(prehash("1538054050", "GET", "/users/self/verify", ""), "1538054050GET/users/self/verify");
        assert_eq!(s.ws_login(1538054050), "+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M=");
    }

    #[test]
    fn verify_refuses_any_change() {
        let secret = b"22582BD0CFF14C41EDBF1AB98506286D";
        let good = "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=";
        assert!(!verify(secret, TS, "GET", "/api/v5/account/balance?ccy=ETH", b"", good));
        assert!(!verify(secret, "2020-12-08T09:08:57.716Z", "GET", "/api/v5/account/balance?ccy=BTC", b"", good));
        assert!(!verify(b"other", TS, "GET", "/api/v5/account/balance?ccy=BTC", b"", good));
        assert!(!verify(secret, TS, "GET", "/api/v5/account/balance?ccy=BTC", b"", "not base64!"));
    }

    #[test]
    fn timestamps_have_exactly_okx_shape() {
        assert_eq!(timestamp(1_607_418_537_715), TS);
        assert_eq!(timestamp(1_607_418_537_000), "2020-12-08T09:08:57.000Z");
        assert_eq!(parse_timestamp(TS), Some(1_607_418_537_715));
        for bad in
            ["2020-12-08T09:08:57Z", "2020-12-08 09:08:57.715Z", "1607418537715", "2020-12-08T09:08:57.715+00:00"]
        {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_carry_the_signature_and_debug_hides_the_passphrase() {
        let s = signer("22582BD0CFF14C41EDBF1AB98506286D");
        let h = s.headers(TS.to_string(), "GET", "/api/v5/account/balance?ccy=BTC", b"");
        assert_eq!(h.sign, "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=");
        assert_eq!(h.key, "key-id");
        assert_eq!(h.passphrase.as_str(), "passphrase");
        let shown = format!("{h:?} {s:?}");
        assert!(!shown.contains("passphrase\"") && !shown.contains("22582BD0"), "{shown}");
    }
}
