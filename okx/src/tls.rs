//! TLS settings of one OKX connection: optional certificate pins and extra trust anchors.
//!
//! With none of either, the REST and WebSocket clients build their TLS exactly as before (the
//! HTTP and WebSocket libraries' own rustls setup with the webpki roots). With any, they use the
//! rustls configuration built here: the same crypto provider and roots, plus
//!
//! - the extra roots (a test's generated CA; a site's own CA), trusted besides webpki's;
//! - the pins: after the usual WebPKI validation (chain to a root, name, validity, signatures)
//!   has passed, at least one certificate the server presented (leaf or intermediate) must have
//!   a pinned public key. Otherwise the handshake fails with a [`PinMismatch`] that names the
//!   host and the keys it saw. There is no fallback to an unpinned connection: a pinned client
//!   only ever has the pinned configuration.

use crate::pin::{Pin, Pins};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore, SignatureScheme};
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

pub use rustls::pki_types::CertificateDer;

/// At most this many of the presented certificates' pins are kept in a [`PinMismatch`]: the
/// chain is the peer's choice, the error message is ours.
const SEEN_KEPT: usize = 4;

/// TLS settings of one connection (one REST base URL, one WebSocket URL). The default (no pins,
/// no extra roots) is the libraries' own TLS, unchanged.
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// Keys one of which the server must present; `None`: no pinning.
    pub pins: Option<Pins>,
    /// Trust anchors besides the webpki roots (DER).
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings").field("pins", &self.pins).field("extra_roots", &self.extra_roots.len()).finish()
    }
}

impl TlsSettings {
    /// Pins and nothing else (production).
    pub fn pinned(pins: Pins) -> Self {
        Self { pins: Some(pins), extra_roots: Vec::new() }
    }

    /// Whether these are the libraries' defaults (then no own rustls configuration is built).
    pub fn is_default(&self) -> bool {
        self.pins.is_none() && self.extra_roots.is_empty()
    }

    /// The rustls configuration for these settings: webpki roots and the extra ones, verified by
    /// WebPKI, then by the pins when there are any. `alpn` as the caller's protocol needs
    /// (`http/1.1` for REST; none for WebSocket, as tungstenite does).
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, TlsError> {
        let (provider, roots, webpki) = self.webpki()?;
        let algorithms = provider.signature_verification_algorithms;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(format!("TLS versions: {e}")))?;
        let mut config = match &self.pins {
            // "dangerous" is rustls's word for any own verifier; this one runs WebPKI first.
            Some(pins) => builder.dangerous().with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                webpki,
                pins: Some(pins.clone()),
                roots,
                algorithms,
                seen: parking_lot::Mutex::new(Vec::new()),
            })),
            None => builder.with_webpki_verifier(webpki),
        }
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    /// The provider and the WebPKI verifier over the webpki roots and the extra ones.
    fn webpki(&self) -> Result<Verification, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for (i, der) in self.extra_roots.iter().enumerate() {
            roots.add(der.clone()).map_err(|e| TlsError::Setup(format!("extra root certificate #{i}: {e}")))?;
        }
        // The provider the libraries' unpinned path uses: the process default if one was
        // installed, else ring (the only one compiled in).
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let roots = Arc::new(roots);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Setup(format!("certificate verifier: {e}")))?;
        Ok((provider, roots, webpki))
    }

    /// The pins of the certificates the host of `url` presents (leaf first), once its chain
    /// has passed WebPKI validation against these settings' roots: what an operator would pin
    /// (`tradebox doctor` prints them for a host with no pins configured). No request is sent;
    /// the connection ends after the handshake. Blocking, each step bounded by `timeout` (run
    /// it on a blocking thread).
    pub fn presented_pins(&self, url: &str, timeout: std::time::Duration) -> Result<Vec<Pin>, TlsError> {
        use std::net::ToSocketAddrs as _;
        let probe = |what: String| TlsError::Probe(what);
        let parsed = reqwest::Url::parse(url).map_err(|e| probe(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "wss") {
            return Err(probe(format!("{}:// is not TLS: there is no certificate to pin", parsed.scheme())));
        }
        let host = parsed.host_str().ok_or_else(|| probe("the URL names no host".into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let (provider, roots, webpki) = self.webpki()?;
        let algorithms = provider.signature_verification_algorithms;
        let recorder = Arc::new(PinnedVerifier {
            webpki,
            pins: None,
            roots,
            algorithms,
            seen: parking_lot::Mutex::new(Vec::new()),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(format!("TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| probe(format!("{host:?} is not a server name: {e}")))?;
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| TlsError::Setup(format!("TLS client: {e}")))?;
        let addrs = (host.as_str(), port).to_socket_addrs().map_err(|e| probe(format!("resolving {host}: {e}")))?;
        let mut last = format!("{host} resolves to no address");
        let mut tcp = None;
        for addr in addrs {
            match std::net::TcpStream::connect_timeout(&addr, timeout) {
                Ok(t) => {
                    tcp = Some(t);
                    break;
                }
                Err(e) => last = format!("connecting to {addr}: {e}"),
            }
        }
        let mut tcp = tcp.ok_or_else(|| probe(last))?;
        tcp.set_read_timeout(Some(timeout))
            .and_then(|()| tcp.set_write_timeout(Some(timeout)))
            .map_err(|e| probe(e.to_string()))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| probe(format!("TLS handshake with {host}:{port}: {e}")))?;
        }
        let seen = recorder.seen.lock().clone();
        if seen.is_empty() {
            return Err(probe(format!("{host}:{port} presented no readable certificate")));
        }
        Ok(seen)
    }

    /// Refuses pins on a URL that is not TLS: they would be silently unused.
    pub fn check_url(&self, url: &str) -> Result<(), TlsError> {
        let tls = ["https://", "wss://"].iter().any(|s| url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
        if self.pins.is_some() && !tls {
            let shown: String = url.chars().take(100).collect();
            return Err(TlsError::Setup(format!(
                "certificate pins are set for {shown}, which is not https:// or wss://: refusing to connect without TLS"
            )));
        }
        Ok(())
    }
}

/// TLS could not be set up as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A root certificate, verifier or protocol setting was refused.
    #[error("TLS setup: {0}")]
    Setup(String),
    /// A host's certificates could not be read ([`TlsSettings::presented_pins`]): not
    /// reachable, not TLS, or a chain that failed validation.
    #[error("{0}")]
    Probe(String),
}

/// The server's certificates passed validation but none has a pinned key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMismatch {
    /// The host connected to (as in the URL).
    pub host: String,
    /// The pins of the presented certificates, leaf first (at most four).
    pub seen: Vec<Pin>,
}

/// Every message about a pin mismatch starts with this (the WebSocket client's disconnect
/// reason among them, see [`crate::ws::ClientEvent::is_pin_mismatch`]).
pub const PIN_MISMATCH: &str = "certificate pin mismatch";

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PIN_MISMATCH} for {}: it presented ", self.host)?;
        match self.seen.split_first() {
            None => write!(f, "no readable certificate")?,
            Some((leaf, rest)) => {
                write!(f, "{leaf} (leaf)")?;
                for p in rest {
                    write!(f, ", {p}")?;
                }
            }
        }
        write!(f, "; none is pinned, connection refused")
    }
}

impl StdError for PinMismatch {}

impl PinMismatch {
    /// The mismatch somewhere in an error's chain: the handshake's error reaches the caller
    /// wrapped by rustls, an `io::Error` (whose `source()` skips what it wraps, so it is opened
    /// with `get_ref`) and the HTTP or WebSocket library.
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a PinMismatch> {
        let mut next = Some(err);
        // Bounded: a chain is short, and a cycle must not hang a connection attempt.
        for _ in 0..32 {
            let e = next?;
            if let Some(m) = e.downcast_ref::<PinMismatch>() {
                return Some(m);
            }
            if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner)))) =
                e.downcast_ref::<rustls::Error>()
            {
                let inner: &(dyn StdError + 'static) = inner.as_ref();
                next = Some(inner);
                continue;
            }
            if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
                let inner: &(dyn StdError + 'static) = inner;
                next = Some(inner);
                continue;
            }
            next = e.source();
        }
        None
    }
}

/// What verifies a server: the crypto provider, the trusted roots, WebPKI over them.
type Verification = (Arc<CryptoProvider>, Arc<RootCertStore>, Arc<WebPkiServerVerifier>);

/// WebPKI first, then the pins (when there are any), which must meet the chain WebPKI
/// verified: the leaf or an intermediate on the path to the trusted root. Any other certificate
/// the server sends is not looked at: a server holding a mis-issued certificate could send the
/// real site's certificates beside it, unused, to match a pin. The pins of that chain are kept
/// (what an operator would pin: `TlsSettings::presented_pins`).
#[derive(Debug)]
struct PinnedVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pins: Option<Pins>,
    roots: Arc<RootCertStore>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
    seen: parking_lot::Mutex<Vec<Pin>>,
}

/// The certificates of the path WebPKI verifies from `end_entity` to a trusted root, leaf first
/// (the root is not sent, so not pinned).
fn verified_path(
    roots: &RootCertStore,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: rustls::pki_types::UnixTime,
) -> Result<Vec<CertificateDer<'static>>, rustls::Error> {
    let cert = webpki::EndEntityCert::try_from(end_entity)
        .map_err(|e| rustls::Error::General(format!("the certificate cannot be read: {e}")))?;
    let path = cert
        .verify_for_usage(algorithms.all, &roots.roots, intermediates, now, webpki::KeyUsage::server_auth(), None, None)
        .map_err(|e| rustls::Error::General(format!("no verified path: {e}")))?;
    let mut chain = vec![end_entity.clone().into_owned()];
    chain.extend(path.intermediate_certificates().map(|c| c.der().into_owned()));
    Ok(chain)
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        // A certificate webpki accepted parses; one that does not simply matches nothing.
        let path = verified_path(&self.roots, self.algorithms, end_entity, intermediates, now)?;
        let chain: Vec<Pin> = path.iter().filter_map(|c| Pin::of_certificate(c).ok()).collect();
        *self.seen.lock() = chain.iter().take(SEEN_KEPT).copied().collect();
        let Some(pins) = &self.pins else { return Ok(verified) };
        if chain.iter().any(|pin| pins.contains(pin)) {
            return Ok(verified);
        }
        let seen = chain.into_iter().take(SEEN_KEPT).collect();
        let mismatch = PinMismatch { host: server_name.to_str().into_owned(), seen };
        tracing::error!(%mismatch, "refusing a TLS connection: no certificate of the verified chain has a pinned key");
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(mismatch)))))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}
