//! Certificate pins: SHA-256 digests of a certificate's SubjectPublicKeyInfo (SPKI), the form
//! HPKP used and that `openssl` prints.
//!
//! A pin names a public key, not a certificate, so it survives a renewal that keeps the key, and
//! pinning an intermediate's key survives any leaf the exchange's CA issues. The pins of a
//! connection add to certificate validation (see [`crate::tls`]); they never replace it.
//!
//! # Getting a pin
//!
//! The pin of every certificate a host presents (leaf first, then intermediates):
//!
//! ```text
//! openssl s_client -connect www.okx.com:443 -servername www.okx.com -showcerts </dev/null 2>/dev/null \
//!   | awk '/BEGIN CERT/{n++; f="cert" n ".pem"} f{print > f} /END CERT/{f=""}'
//! for c in cert*.pem; do
//!   openssl x509 -in "$c" -pubkey -noout | openssl pkey -pubin -outform der \
//!     | openssl dgst -sha256 -binary | base64
//! done
//! ```
//!
//! Each line is one pin; write it as is or with the `sha256/` prefix. Pinning a key of the chain
//! that OKX does not control alone (an intermediate) and a backup is what keeps a pin from
//! stopping trading at the next certificate change: a mismatch refuses the connection, by design.
//! The root is usually not sent by the server, so pin the leaf or an intermediate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// How many pins `Display`/`Debug` of [`Pins`] list before summarising the rest: a long list
/// from a config file must not flood a log line.
const SHOWN: usize = 4;

/// A pin given as text is quoted in errors only up to this many characters.
const QUOTED: usize = 60;

/// One SPKI SHA-256 pin.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The pin of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Self(Sha256::digest(spki_der).into())
    }

    /// The pin of a DER-encoded X.509 certificate's public key. Parsing is webpki's (the parser
    /// rustls verifies with), so the key hashed is the one the handshake is checked against.
    pub fn of_certificate(cert_der: &[u8]) -> Result<Self, PinError> {
        let der = CertificateDer::from(cert_der);
        let cert = webpki::EndEntityCert::try_from(&der).map_err(|e| PinError::Certificate(format!("{e:?}")))?;
        Ok(Self::of_spki(cert.subject_public_key_info().as_ref()))
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256/{}", BASE64.encode(self.0))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Pin {
    type Err = PinError;

    /// Accepts `BASE64` or `sha256/BASE64` (standard alphabet, padded: what `base64` prints).
    fn from_str(s: &str) -> Result<Self, PinError> {
        let t = s.trim();
        let malformed = |reason: String| PinError::Malformed { pin: t.chars().take(QUOTED).collect(), reason };
        // Base64 has '/' in its alphabet: only a known digest name before the first one is a
        // prefix.
        let b64 = match t.split_once('/') {
            Some((algo, rest)) if algo.eq_ignore_ascii_case("sha256") => rest,
            Some((algo, _))
                if ["sha1", "sha224", "sha384", "sha512", "md5"].iter().any(|a| algo.eq_ignore_ascii_case(a)) =>
            {
                return Err(malformed(format!("only sha256/ pins are supported, not {algo}/")));
            }
            _ => t,
        };
        if b64.len() == 64 && b64.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(malformed(
                "this is hex; a pin is base64 of the binary digest (`openssl dgst -sha256 -binary | base64`)".into(),
            ));
        }
        let bytes = BASE64.decode(b64).map_err(|e| malformed(format!("not base64: {e}")))?;
        let digest: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| malformed(format!("decodes to {} bytes; a SHA-256 digest is 32", bytes.len())))?;
        Ok(Self(digest))
    }
}

/// A non-empty set of pins for one host: a connection is accepted when any certificate it
/// presents has one of these keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Pins(BTreeSet<Pin>);

impl Pins {
    /// Parses pins as an operator writes them (see [`Pin::from_str`]). An empty list is an
    /// error, not "no pinning": a pin set that matches nothing would refuse every connection, and
    /// "no pins" is said by not giving any (`None`).
    pub fn parse<I, S>(pins: I) -> Result<Self, PinError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = pins.into_iter().map(|p| p.as_ref().parse()).collect::<Result<BTreeSet<Pin>, _>>()?;
        Self::new(set)
    }

    /// A set of already computed pins; empty is an error as for [`Pins::parse`].
    pub fn new(pins: impl IntoIterator<Item = Pin>) -> Result<Self, PinError> {
        let set: BTreeSet<Pin> = pins.into_iter().collect();
        if set.is_empty() {
            return Err(PinError::Empty);
        }
        Ok(Self(set))
    }

    /// Whether `pin` is one of these.
    pub fn contains(&self, pin: &Pin) -> bool {
        self.0.contains(pin)
    }

    /// The pins, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = &Pin> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false (a `Pins` is never empty); here because `len` is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pin of a DER certificate: what `tradebox doctor` prints for the certificates a host
    /// presents, and what an operator puts in the config.
    pub fn spki_sha256_of(cert_der: &[u8]) -> Result<Pin, PinError> {
        Pin::of_certificate(cert_der)
    }

    /// The pins of every certificate in a PEM bundle, in order (e.g. the output of
    /// `openssl s_client -showcerts`).
    pub fn spki_sha256_of_pem(pem: &[u8]) -> Result<Vec<Pin>, PinError> {
        let pins = CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map_err(|e| PinError::Certificate(format!("PEM: {e}"))).and_then(|c| Pin::of_certificate(&c)))
            .collect::<Result<Vec<_>, _>>()?;
        if pins.is_empty() {
            return Err(PinError::Certificate("no CERTIFICATE block in the PEM text".into()));
        }
        Ok(pins)
    }
}

impl fmt::Display for Pins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        list(f, self.0.iter())
    }
}

impl fmt::Debug for Pins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pins(")?;
        list(f, self.0.iter())?;
        write!(f, ")")
    }
}

/// `a, b, c, d and N more`.
pub(crate) fn list<'a>(f: &mut fmt::Formatter<'_>, pins: impl ExactSizeIterator<Item = &'a Pin>) -> fmt::Result {
    let n = pins.len();
    for (i, p) in pins.take(SHOWN).enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{p}")?;
    }
    if n > SHOWN {
        write!(f, " and {} more", n - SHOWN)?;
    }
    Ok(())
}

/// A pin or a certificate that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// A pin that is not `[sha256/]BASE64` of 32 bytes.
    #[error("malformed certificate pin {pin:?}: {reason}")]
    Malformed {
        /// The pin as given (its start).
        pin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An empty pin list.
    #[error("empty certificate pin list: give at least one pin, or none at all to not pin")]
    Empty,
    /// A certificate whose public key could not be read.
    #[error("cannot read the certificate: {0}")]
    Certificate(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    #[test]
    fn parses_the_openssl_form_with_or_without_prefix() {
        let bare: Pin = A.parse().expect("bare");
        let prefixed: Pin = format!(" sha256/{A}\n").parse().expect("prefixed");
        assert_eq!(bare, prefixed);
        // SHA-256 of the empty string: the text is the digest, not a hash of the text.
        assert_eq!(bare, Pin::of_spki(b""));
        assert_eq!(bare.to_string(), format!("sha256/{A}"));
        // A '/' of the base64 alphabet early on is not a prefix.
        let slash = "AAAA/".to_string() + &"A".repeat(38) + "=";
        assert_eq!(slash.parse::<Pin>().map(|p| p.as_bytes()[3]), Ok(0xfc));
    }

    #[test]
    fn malformed_pins_say_what_is_wrong() {
        let why = |s: &str| s.parse::<Pin>().expect_err(s).to_string();
        assert!(why("not base64!").contains("not base64"), "{}", why("not base64!"));
        assert!(why("AAAA").contains("decodes to 3 bytes"), "{}", why("AAAA"));
        assert!(why(&format!("sha1/{A}")).contains("only sha256/"), "{}", why(&format!("sha1/{A}")));
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(why(hex).contains("this is hex"), "{}", why(hex));
        let long = "x".repeat(10_000);
        assert!(why(&long).len() < 300, "a huge pin is not quoted whole");
        assert_eq!(Pins::parse(Vec::<String>::new()), Err(PinError::Empty));
        assert!(matches!(Pins::parse([A, "nope"]), Err(PinError::Malformed { .. })));
    }

    #[test]
    fn display_is_bounded() {
        let pins = Pins::new((0u8..50).map(|i| Pin::of_spki(&[i]))).expect("pins");
        let shown = format!("{pins:?}");
        assert!(shown.ends_with(" and 46 more)") && shown.len() < 300, "{shown}");
    }

    #[test]
    fn certificates_that_are_not_certificates_are_errors() {
        assert!(matches!(Pins::spki_sha256_of(b"\x30\x03\x02\x01\x01"), Err(PinError::Certificate(_))));
        assert!(matches!(Pins::spki_sha256_of_pem(b"no pem here"), Err(PinError::Certificate(_))));
    }
}
