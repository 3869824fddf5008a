//! The admin API answers only requests addressed to it by name: `Host` must be the loopback
//! address it serves (or `localhost`) with its port, and an `Origin`, when a browser sends
//! one, the page's own.
//!
//! Loopback alone does not keep a browser out. A web page the operator visits can resolve its
//! own name to 127.0.0.1 (DNS rebinding) and then send requests the browser considers
//! same-origin: they arrive with that name in `Host`, and are refused here. A page on another
//! site can send simple cross-site requests (a form's POST) without reading the answer; they
//! carry its `Origin` and are refused too. Neither can send the token, which travels only in
//! the `Authorization` header, but a refusal before any handler runs leaves nothing to reason
//! about (the console's files included).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The names a request may address this API by.
#[derive(Debug, Clone)]
pub struct Guard {
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl Guard {
    /// For an API listening at `addr` (a loopback address).
    pub fn new(addr: SocketAddr) -> Self {
        let port = addr.port();
        let mut hosts = vec![addr.to_string(), format!("localhost:{port}")];
        // The default port may be left out of `Host` by some clients; not by browsers for a
        // non-default port, so only port 80 gets the bare names.
        if port == 80 {
            hosts.push(match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            });
            hosts.push("localhost".into());
        }
        let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
        Self { hosts, origins }
    }

    /// Why a request with these headers is refused, if it is.
    pub fn refusal(&self, headers: &HeaderMap) -> Option<&'static str> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        match host {
            Some(h) if self.hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)) => {}
            Some(_) => return Some("the Host header does not name this admin API's loopback address"),
            None => return Some("the request has no Host header"),
        }
        let origins: Vec<&HeaderValue> = headers.get_all(header::ORIGIN).iter().collect();
        match origins.as_slice() {
            [] => None,
            [one] if one.to_str().is_ok_and(|o| self.origins.iter().any(|ok| ok.eq_ignore_ascii_case(o))) => None,
            _ => Some("requests from another site (its Origin) are refused"),
        }
    }
}

/// The middleware: refuses with 403 and one line of JSON, before any route runs. Every
/// answer also carries the headers that keep the page out of frames and its type unguessed.
pub async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let mut response = match guard.refusal(request.headers()) {
        Some(why) => (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({ "error": why }))).into_response(),
        None => next.run(request).await,
    };
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(super::console::assets::CSP));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn only_the_served_address_and_its_own_origin_pass() {
        let g = Guard::new("127.0.0.1:7878".parse().expect("addr"));
        assert_eq!(g.refusal(&headers(&[("host", "127.0.0.1:7878")])), None);
        assert_eq!(g.refusal(&headers(&[("host", "localhost:7878"), ("origin", "http://localhost:7878")])), None);
        assert_eq!(g.refusal(&headers(&[("host", "127.0.0.1:7878"), ("origin", "http://127.0.0.1:7878")])), None);
        // DNS rebinding: the attacker's name, resolved to loopback.
        assert!(g.refusal(&headers(&[("host", "evil.example:7878")])).is_some());
        assert!(g.refusal(&headers(&[("host", "127.0.0.1:7879")])).is_some(), "another port");
        assert!(g.refusal(&headers(&[("host", "127.0.0.1")])).is_some(), "no port");
        assert!(g.refusal(&headers(&[])).is_some(), "no Host");
        // Cross-site: the right Host, another page's Origin.
        for origin in ["http://evil.example", "null", "https://127.0.0.1:7878", "http://127.0.0.1:7878.evil.example"] {
            let h = headers(&[("host", "127.0.0.1:7878"), ("origin", origin)]);
            assert!(g.refusal(&h).is_some(), "{origin}");
        }
        let two = headers(&[("host", "127.0.0.1:7878"), ("origin", "http://127.0.0.1:7878"), ("origin", "http://e.x")]);
        assert!(g.refusal(&two).is_some(), "two origins");
        let v6 = Guard::new("[::1]:9000".parse().expect("addr"));
        assert_eq!(v6.refusal(&headers(&[("host", "[::1]:9000")])), None);
    }
}
