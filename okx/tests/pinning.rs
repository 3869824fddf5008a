//! Certificate pinning (issue 13, item 8) against local HTTPS and WSS endpoints whose
//! certificates are generated here: a root CA, an intermediate, and a leaf for `localhost`. The
//! servers present leaf + intermediate, as public hosts do; the root is trusted through
//! `TlsSettings::extra_roots` (the webpki roots do not know it).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PublicKeyData as _,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tradebox_okx::tls::PIN_MISMATCH;
use tradebox_okx::ws::{ClientConfig, ClientEvent, ConnectGate, WsClient};
use tradebox_okx::{ClockSync, OkxError, Pin, PinError, Pins, RestClient, RestConfig, TlsSettings};

/// The time the HTTPS endpoint reports, so that a success is recognisably this server's.
const SERVER_TS: i64 = 1_700_000_000_123;

struct Pki {
    root: CertificateDer<'static>,
    intermediate: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    leaf_key: KeyPair,
    /// Computed from the keys (rcgen's own SPKI encoding), not from the certificates.
    root_pin: Pin,
    intermediate_pin: Pin,
    leaf_pin: Pin,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.distinguished_name.push(DnType::CommonName, name);
    p
}

fn pki() -> Pki {
    let root_key = KeyPair::generate().expect("root key");
    let root_pin = Pin::of_spki(&root_key.subject_public_key_info());
    let root = CertifiedIssuer::self_signed(ca_params("tradebox test root"), root_key).expect("root");
    let intermediate_key = KeyPair::generate().expect("intermediate key");
    let intermediate_pin = Pin::of_spki(&intermediate_key.subject_public_key_info());
    let intermediate = CertifiedIssuer::signed_by(ca_params("tradebox test intermediate"), intermediate_key, &*root)
        .expect("intermediate");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_pin = Pin::of_spki(&leaf_key.subject_public_key_info());
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("leaf");
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf.signed_by(&leaf_key, &*intermediate).expect("leaf cert");
    Pki {
        root: root.der().clone(),
        intermediate: intermediate.der().clone(),
        leaf: leaf.der().clone(),
        leaf_key,
        root_pin,
        intermediate_pin,
        leaf_pin,
    }
}

#[derive(Clone, Copy)]
enum Serve {
    /// Answers `GET /api/v5/public/time` as OKX does, then closes.
    Https,
    /// Completes the WebSocket upgrade and holds the connection.
    Wss,
}

/// A TLS endpoint on 127.0.0.1; returns its port and how many clients got past the TLS
/// handshake.
async fn serve(pki: &Pki, what: Serve) -> (u16, Arc<AtomicUsize>) {
    serve_chain(vec![pki.leaf.clone(), pki.intermediate.clone()], &pki.leaf_key, what).await
}

/// [`serve`] presenting `chain` (leaf first) with the leaf's `key`.
async fn serve_chain(chain: Vec<CertificateDer<'static>>, key: &KeyPair, what: Serve) -> (u16, Arc<AtomicUsize>) {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                // A client that refuses our certificate ends the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                match what {
                    Serve::Https => answer_time(&mut tls).await,
                    Serve::Wss => {
                        use futures_util::StreamExt as _;
                        let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else { return };
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                }
            });
        }
    });
    (port, handshakes)
}

/// One HTTP/1.1 request, one answer: enough of HTTP for `server_time`.
async fn answer_time<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: &mut S) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let (status, body) = if head.starts_with(b"GET /api/v5/public/time ") {
        ("200 OK", format!(r#"{{"code":"0","msg":"","data":[{{"ts":"{SERVER_TS}"}}]}}"#))
    } else {
        ("404 Not Found", r#"{"code":"404","msg":"not here","data":[]}"#.to_string())
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(reply.as_bytes()).await;
    let _ = s.shutdown().await;
}

fn tls(pki: &Pki, pins: Option<Vec<Pin>>) -> TlsSettings {
    TlsSettings { pins: pins.map(|p| Pins::new(p).expect("pins")), extra_roots: vec![pki.root.clone()] }
}

fn rest(port: u16, tls: TlsSettings) -> RestClient {
    let config = RestConfig {
        base_url: format!("https://localhost:{port}"),
        demo: false,
        timeout: Duration::from_secs(10),
        tls,
    };
    RestClient::new(config, None, Arc::new(ClockSync::new())).expect("client")
}

/// A key that is in no certificate here.
fn stranger() -> Pin {
    Pin::of_spki(&KeyPair::generate().expect("key").subject_public_key_info())
}

#[test]
fn pins_of_certificates_are_the_pins_of_their_keys() {
    let pki = pki();
    assert_eq!(Pins::spki_sha256_of(&pki.leaf), Ok(pki.leaf_pin));
    assert_eq!(Pins::spki_sha256_of(&pki.intermediate), Ok(pki.intermediate_pin));
    assert_eq!(Pins::spki_sha256_of(&pki.root), Ok(pki.root_pin));
    assert_ne!(pki.leaf_pin, pki.intermediate_pin);
    // A PEM bundle as `openssl s_client -showcerts` prints it: one pin per certificate, in order.
    let pem = |der: &CertificateDer<'_>| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
    };
    let bundle = format!("depth=0 CN = localhost\n{}{}", pem(&pki.leaf), pem(&pki.intermediate));
    assert_eq!(Pins::spki_sha256_of_pem(bundle.as_bytes()), Ok(vec![pki.leaf_pin, pki.intermediate_pin]));
    // What an operator copies from the pin of a certificate parses back to it.
    let written = pki.leaf_pin.to_string();
    assert!(written.starts_with("sha256/"), "{written}");
    assert_eq!(Pins::parse([&written]).map(|p| p.contains(&pki.leaf_pin)), Ok(true));
}

#[test]
fn a_malformed_pin_is_a_parse_error_naming_it() {
    let e = Pins::parse(["sha256/not-a-pin"]).expect_err("malformed");
    assert!(matches!(&e, PinError::Malformed { pin, .. } if pin == "sha256/not-a-pin"), "{e:?}");
    assert!(e.to_string().contains("malformed certificate pin \"sha256/not-a-pin\""), "{e}");
}

#[tokio::test]
async fn rest_with_the_leaf_pin_gets_an_answer() {
    let pki = pki();
    let (port, _) = serve(&pki, Serve::Https).await;
    let client = rest(port, tls(&pki, Some(vec![pki.leaf_pin])));
    assert_eq!(client.server_time().await, Ok(SERVER_TS));
}

#[tokio::test]
async fn rest_with_the_intermediate_pin_among_others_gets_an_answer() {
    let pki = pki();
    let (port, _) = serve(&pki, Serve::Https).await;
    let client = rest(port, tls(&pki, Some(vec![stranger(), pki.intermediate_pin])));
    assert_eq!(client.server_time().await, Ok(SERVER_TS));
}

#[tokio::test]
async fn rest_with_a_wrong_pin_is_refused_naming_the_host_and_its_keys() {
    let pki = pki();
    let (port, handshakes) = serve(&pki, Serve::Https).await;
    let client = rest(port, tls(&pki, Some(vec![stranger()])));
    let err = client.server_time().await.expect_err("refused");
    assert!(err.is_pin_mismatch() && !err.outcome_unknown(), "{err:?}");
    let OkxError::PinMismatch(m) = &err else { panic!("{err:?}") };
    assert_eq!(m.host, "localhost");
    assert_eq!(m.seen, vec![pki.leaf_pin, pki.intermediate_pin], "leaf first, then the intermediate");
    let text = err.to_string();
    assert!(text.starts_with(PIN_MISMATCH) && text.contains(&pki.leaf_pin.to_string()), "{text}");
    assert_eq!(handshakes.load(Ordering::SeqCst), 0, "the server never got a request through");
    // Every later call is refused the same way: the client has no unpinned path.
    assert!(client.server_time().await.expect_err("again").is_pin_mismatch());
}

/// A server with a certificate that verifies (a mis-issued one, say) sends the pinned site's
/// real certificate beside its own chain, unused: the pin must meet the chain that verified,
/// so it is refused.
#[tokio::test]
async fn a_pinned_certificate_sent_beside_the_chain_that_verified_is_not_enough() {
    let (real, impostor) = (pki(), pki());
    let chain =
        vec![impostor.leaf.clone(), impostor.intermediate.clone(), real.leaf.clone(), real.intermediate.clone()];
    let (port, handshakes) = serve_chain(chain, &impostor.leaf_key, Serve::Https).await;
    let both_trusted = TlsSettings {
        pins: Some(Pins::new(vec![real.leaf_pin, real.intermediate_pin]).expect("pins")),
        extra_roots: vec![real.root.clone(), impostor.root.clone()],
    };
    let err = rest(port, both_trusted).server_time().await.expect_err("refused");
    assert!(err.is_pin_mismatch(), "{err:?}");
    assert_eq!(handshakes.load(Ordering::SeqCst), 0);
}

/// The root is not in what the server presents, so its pin is not seen: pin the leaf or an
/// intermediate (the module doc of `pin` says so).
#[tokio::test]
async fn rest_with_only_the_unsent_root_pinned_is_refused() {
    let pki = pki();
    let (port, _) = serve(&pki, Serve::Https).await;
    let client = rest(port, tls(&pki, Some(vec![pki.root_pin])));
    assert!(client.server_time().await.expect_err("refused").is_pin_mismatch());
}

#[tokio::test]
async fn rest_without_pins_works_with_the_extra_root_and_fails_plainly_without_it() {
    let pki = pki();
    let (port, _) = serve(&pki, Serve::Https).await;
    assert_eq!(rest(port, tls(&pki, None)).server_time().await, Ok(SERVER_TS));
    // The library's own TLS (the default settings) does not know the generated root: a
    // certificate error, and not a pin mismatch.
    let err = rest(port, TlsSettings::default()).server_time().await.expect_err("unknown issuer");
    assert!(matches!(err, OkxError::NotSent(_)), "{err:?}");
    // Pins are checked after, not instead of, validation: the right pin does not make an
    // unknown issuer acceptable.
    let pinned_only = TlsSettings::pinned(Pins::new([pki.leaf_pin]).expect("pins"));
    let err = rest(port, pinned_only).server_time().await.expect_err("unknown issuer");
    assert!(matches!(err, OkxError::NotSent(_)), "{err:?}");
}

#[test]
fn pins_on_a_plain_http_url_are_refused() {
    let config = RestConfig {
        base_url: "http://127.0.0.1:1".into(),
        demo: false,
        timeout: Duration::from_secs(1),
        tls: TlsSettings::pinned(Pins::new([stranger()]).expect("pins")),
    };
    let err = RestClient::new(config, None, Arc::new(ClockSync::new())).expect_err("refused");
    assert!(matches!(&err, OkxError::Usage(m) if m.contains("not https://")), "{err:?}");
}

fn ws(url: String, tls: TlsSettings) -> (WsClient, mpsc::UnboundedReceiver<ClientEvent>) {
    let mut config = ClientConfig::new(url, Arc::new(ConnectGate::default()));
    config.tls = tls;
    config.backoff_min = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(20);
    let (tx, rx) = mpsc::unbounded_channel();
    (WsClient::spawn(config, tx), rx)
}

/// The next event (a hang is a failure, not a wait forever).
async fn next(events: &mut mpsc::UnboundedReceiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(Duration::from_secs(20), events.recv()).await.expect("an event").expect("client running")
}

#[tokio::test]
async fn ws_with_the_leaf_or_intermediate_pin_connects() {
    let pki = pki();
    let (port, _) = serve(&pki, Serve::Wss).await;
    for pin in [pki.leaf_pin, pki.intermediate_pin] {
        let (_client, mut events) = ws(format!("wss://localhost:{port}/ws/v5/public"), tls(&pki, Some(vec![pin])));
        assert_eq!(next(&mut events).await, ClientEvent::Connected, "pinned to {pin}");
    }
}

#[tokio::test]
async fn ws_without_pins_connects_with_the_extra_root() {
    let pki = pki();
    let (port, _) = serve(&pki, Serve::Wss).await;
    let (_client, mut events) = ws(format!("wss://localhost:{port}/ws/v5/public"), tls(&pki, None));
    assert_eq!(next(&mut events).await, ClientEvent::Connected);
}

#[tokio::test]
async fn ws_with_a_wrong_pin_is_refused_every_time_and_never_falls_back() {
    let pki = pki();
    let (port, handshakes) = serve(&pki, Serve::Wss).await;
    let (_client, mut events) = ws(format!("wss://localhost:{port}/ws/v5/public"), tls(&pki, Some(vec![stranger()])));
    for attempt in 0..3 {
        let event = next(&mut events).await;
        assert!(event.is_pin_mismatch(), "attempt {attempt}: {event:?}");
        let ClientEvent::Disconnected { reason } = &event else { panic!("{event:?}") };
        assert!(reason.contains("for localhost") && reason.contains(&pki.leaf_pin.to_string()), "{reason}");
    }
    assert_eq!(handshakes.load(Ordering::SeqCst), 0, "no attempt got past TLS");
}

#[tokio::test]
async fn ws_pins_on_a_plain_url_are_refused_not_ignored() {
    let pki = pki();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/ws/v5/public", listener.local_addr().expect("addr"));
    let (_client, mut events) = ws(url, tls(&pki, Some(vec![pki.leaf_pin])));
    let event = next(&mut events).await;
    assert!(
        matches!(&event, ClientEvent::Disconnected { reason } if reason.contains("not https:// or wss://")),
        "{event:?}"
    );
}

/// What `tradebox doctor` prints for a host with no pins: the keys of the chain it presents,
/// leaf first, once the chain validates; nothing for a chain that does not.
#[tokio::test]
async fn the_pins_a_host_presents_are_read_from_a_validated_handshake() {
    let pki = pki();
    let (port, _) = serve(&pki, Serve::Https).await;
    let url = format!("https://localhost:{port}");
    let probe = |settings: TlsSettings, url: String| {
        tokio::task::spawn_blocking(move || settings.presented_pins(&url, Duration::from_secs(10)))
    };
    let seen = probe(tls(&pki, None), url.clone()).await.expect("joined").expect("a validated chain");
    assert_eq!(seen, vec![pki.leaf_pin, pki.intermediate_pin]);
    // Without the test root the chain does not validate: no pins to recommend.
    let err = probe(TlsSettings::default(), url).await.expect("joined").expect_err("unknown issuer");
    assert!(err.to_string().contains("handshake"), "{err}");
    let err = probe(TlsSettings::default(), format!("http://localhost:{port}")).await.expect("joined");
    assert!(err.expect_err("not TLS").to_string().contains("not TLS"));
}
