//! The WebSocket endpoints (each connected once, the private one logged in, then dropped) and
//! the certificate pins of the hosts: met when configured, else what the hosts present.

use super::{Budget, Check, Failure, Item, Late, PIN_FIX, REACH_FIX, auth_meaning};
use crate::venue::okx::OkxConfig;
use crate::venue::okx::stream::Endpoint;
use std::sync::Arc;
use tradebox_okx::ws::{ClientConfig, ClientEvent, ConnectGate, Login, WsClient};
use tradebox_okx::{OkxError, TlsSettings};

/// How one WebSocket endpoint went: connected (logged in), refused, or not tried.
pub(super) enum WsOutcome {
    Connected,
    Failed(String),
    NotTried,
}

/// Public, business and private at once (one connection each, OKX's 3 a second), each until
/// it is connected (the private one logged in) or refused, then dropped.
pub(super) async fn websockets(
    okx: &OkxConfig,
    tls: &TlsSettings,
    login: Result<Login, String>,
    budget: &Budget,
) -> Vec<(Check, WsOutcome)> {
    let endpoints = [(Item::WsPublic, Endpoint::Public), (Item::WsBusiness, Endpoint::Business)];
    if !okx.websocket {
        let all = endpoints.iter().map(|(i, _)| *i).chain([Item::WsPrivate]);
        return all
            .map(|i| (Check::skip(i, "websocket = false: the host uses REST only"), WsOutcome::NotTried))
            .collect();
    }
    let base = okx.ws_base().trim_end_matches('/').to_string();
    let url = |e: Endpoint| format!("{base}/ws/v5/{}", e.path());
    let gate = Arc::new(ConnectGate::default());
    let probe = |e: Endpoint, login: Option<Login>| {
        let mut config = ClientConfig::new(url(e), gate.clone());
        config.tls = tls.clone();
        config.login = login;
        budget.bounded(connect(config))
    };
    let private = match login.clone() {
        Ok(l) => Some(probe(Endpoint::Private, Some(l))),
        Err(_) => None,
    };
    let (public, business, private) =
        tokio::join!(probe(Endpoint::Public, None), probe(Endpoint::Business, None), async {
            match private {
                Some(p) => Some(p.await),
                None => None,
            }
        });
    let mut out = Vec::new();
    for ((item, endpoint), result) in endpoints.into_iter().zip([public, business]) {
        out.push(ws_check(item, &url(endpoint), "connected", result, okx));
    }
    out.push(match (private, login) {
        (Some(result), _) => ws_check(Item::WsPrivate, &url(Endpoint::Private), "connected and logged in", result, okx),
        (None, Err(why)) => (Check::skip(Item::WsPrivate, why), WsOutcome::NotTried),
        (None, Ok(_)) => (Check::skip(Item::WsPrivate, "not attempted"), WsOutcome::NotTried),
    });
    out
}

/// Connects (and logs in) once: `Ok` at the client's first `Connected`, the reason at its
/// first `Disconnected`. The client is dropped either way, before it reconnects.
pub(in crate::doctor) async fn connect(config: ClientConfig) -> Result<(), String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _client = WsClient::spawn(config, tx);
    loop {
        match rx.recv().await {
            Some(ClientEvent::Connected) => return Ok(()),
            Some(ClientEvent::Disconnected { reason }) => return Err(reason),
            Some(_) => {}
            None => return Err("the WebSocket client ended".into()),
        }
    }
}

fn ws_check(
    item: Item,
    url: &str,
    done: &str,
    result: Result<Result<(), String>, Late>,
    okx: &OkxConfig,
) -> (Check, WsOutcome) {
    match result {
        Ok(Ok(())) => (Check::ok(item, format!("{done}: {url}")), WsOutcome::Connected),
        Ok(Err(reason)) => {
            let (detail, fix) = match login_code(&reason).and_then(|code| auth_meaning(code, okx)) {
                Some((meaning, fix)) => (format!("{url}: {reason}: {meaning}"), fix),
                None if reason.starts_with(tradebox_okx::tls::PIN_MISMATCH) => {
                    (format!("{url}: {reason}"), PIN_FIX.into())
                }
                None if reason.starts_with("login refused") => (
                    format!("{url}: {reason}"),
                    "check the key, secret and passphrase (the key line says which is wrong)".into(),
                ),
                None => (format!("{url}: {reason}"), REACH_FIX.into()),
            };
            (Check::fail(item, detail, fix), WsOutcome::Failed(reason))
        }
        Err(late) => {
            let outcome = match late {
                Late::Spent => WsOutcome::NotTried,
                Late::After(_) => WsOutcome::Failed("no answer".into()),
            };
            (late.check(item, url, REACH_FIX), outcome)
        }
    }
}

/// OKX's code in the WebSocket client's "login refused: CODE msg".
fn login_code(reason: &str) -> Option<&str> {
    reason.strip_prefix("login refused: ")?.split_whitespace().next()
}

/// Pins configured: whether the hosts met them. None: the pins the hosts present, to copy
/// into the config (pinning does not apply to a plain-text simulator URL).
pub(super) async fn pins(
    okx: &OkxConfig,
    (rest_tls, ws_tls): (&TlsSettings, &TlsSettings),
    reached: &Result<(), Failure>,
    ws: &[(Check, WsOutcome)],
    budget: &Budget,
) -> Check {
    let mut parts = Vec::new();
    let mut mismatch = false;
    // Whether anything was looked at: a line of hosts not reached checked nothing.
    let mut looked = false;
    // REST.
    let rest_url = okx.rest_base();
    match (&rest_tls.pins, reached) {
        (Some(_), Ok(())) => {
            looked = true;
            parts.push("rest: the host presented a pinned key".to_string())
        }
        (Some(_), Err(Failure::Okx(OkxError::PinMismatch(m)))) => {
            mismatch = true;
            parts.push(format!("rest: {m}"));
        }
        (Some(_), Err(_)) => parts.push("rest: not reached".to_string()),
        (None, Err(_)) => parts.push("rest: not pinned (host not reached)".to_string()),
        (None, Ok(())) => {
            looked = true;
            parts.push(format!("rest: {}", presented(&rest_url, rest_tls, budget).await))
        }
    }
    // WebSocket.
    let ws_url = okx.ws_base();
    let mismatched = ws.iter().find_map(|(_, o)| match o {
        WsOutcome::Failed(reason) if reason.starts_with(tradebox_okx::tls::PIN_MISMATCH) => Some(reason.clone()),
        _ => None,
    });
    let connected = ws.iter().any(|(_, o)| matches!(o, WsOutcome::Connected));
    match (&ws_tls.pins, mismatched) {
        (_, Some(reason)) => {
            mismatch = true;
            parts.push(format!("ws: {reason}"));
        }
        (Some(_), None) if connected => {
            looked = true;
            parts.push("ws: the host presented a pinned key".to_string())
        }
        (Some(_), None) => parts.push("ws: not reached".to_string()),
        (None, None) if !okx.websocket => parts.push("ws: not used (websocket = false)".to_string()),
        (None, None) if connected => {
            looked = true;
            parts.push(format!("ws: {}", presented(&ws_url, ws_tls, budget).await))
        }
        (None, None) => parts.push("ws: not pinned (host not reached)".to_string()),
    }
    if mismatch {
        return Check::fail(Item::Pins, parts.join("; "), PIN_FIX);
    }
    if !looked {
        return Check::skip(Item::Pins, parts.join("; "));
    }
    Check::ok(Item::Pins, parts.join("; "))
}

/// "not pinned; HOST presents PIN (leaf), PIN", or why that is not known.
async fn presented(url: &str, tls: &TlsSettings, budget: &Budget) -> String {
    if !(url.starts_with("https://") || url.starts_with("wss://")) {
        return "not TLS (a simulator on this machine): pinning does not apply".to_string();
    }
    let (probe_url, probe_tls, step) = (url.to_string(), tls.clone(), budget.step);
    // A thread of its own, not tokio's blocking pool: a name lookup that outlives the bound
    // must not hold the process's exit (the runtime waits for its blocking tasks).
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("doctor-tls-probe".into()).spawn(move || {
        let _ = tx.send(probe_tls.presented_pins(&probe_url, step));
    });
    if let Err(e) = spawned {
        return format!("not pinned; its certificates could not be read: {e}");
    }
    match budget.bounded(rx).await {
        Ok(Ok(Ok(pins))) => {
            let shown: Vec<String> = pins
                .iter()
                .enumerate()
                .map(|(i, p)| if i == 0 { format!("{p} (leaf)") } else { p.to_string() })
                .collect();
            format!("not pinned; {url} presents {} (pin an intermediate and a backup)", shown.join(", "))
        }
        Ok(Ok(Err(e))) => format!("not pinned; its certificates could not be read: {e}"),
        Ok(Err(_)) => "not pinned; its certificates could not be read".to_string(),
        Err(Late::After(d)) => format!("not pinned; its certificates could not be read within {} ms", d.as_millis()),
        Err(Late::Spent) => "not pinned; not probed (the doctor's time bound ran out)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn configured_pins_that_do_not_match_fail_naming_what_was_presented() {
        use tradebox_okx::{Pin, PinMismatch};
        let pinned = Pin::of_spki(b"pinned");
        let presented = Pin::of_spki(b"presented");
        let mut okx = OkxConfig {
            rest_url: "https://www.okx.com".into(),
            ws_url: "wss://ws.okx.com:8443".into(),
            ..OkxConfig::default()
        };
        okx.pins.rest = vec![pinned.to_string()];
        okx.pins.ws = vec![pinned.to_string()];
        let (rest_tls, ws_tls) = okx.pins.settings().expect("pins");
        let budget = Budget::new(1_000);
        let mismatch = PinMismatch { host: "www.okx.com".into(), seen: vec![presented] };
        let refused = Err(Failure::Okx(OkxError::PinMismatch(mismatch.clone())));
        let ws = [(Check::ok(Item::WsPublic, ""), WsOutcome::Connected)];
        let c = pins(&okx, (&rest_tls, &ws_tls), &refused, &ws, &budget).await;
        assert_eq!(c.status, crate::doctor::Status::Fail, "{c:?}");
        assert!(c.detail.contains(&format!("{presented} (leaf)")), "names the presented pin: {}", c.detail);
        assert!(c.detail.contains("ws: the host presented a pinned key"), "{}", c.detail);
        assert!(c.fix.is_some());
        let c = pins(&okx, (&rest_tls, &ws_tls), &Ok(()), &ws, &budget).await;
        assert_eq!(c.status, crate::doctor::Status::Ok, "{c:?}");
        assert!(c.detail.starts_with("rest: the host presented a pinned key"), "{}", c.detail);
    }

    #[test]
    fn login_refusals_are_read_for_their_code() {
        assert_eq!(login_code("login refused: 60024 Wrong passphrase"), Some("60024"));
        assert_eq!(login_code("could not connect: refused"), None);
    }
}
