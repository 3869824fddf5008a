use super::*;
use crate::sections::tests::{component_with_manifest, validate};
use crate::sections::{append_custom_section, custom_sections, set_section};

fn key() -> SigningKey {
    generate().expect("random")
}

fn signed_component(key: &SigningKey) -> Vec<u8> {
    // A manifest of a realistic size makes the tamper sweep cover a few hundred bytes of code and
    // headers plus a larger JSON payload.
    let manifest = format!(r#"{{"name":"test","params":"{}"}}"#, "x".repeat(2000));
    sign(&component_with_manifest(manifest.as_bytes()), key).expect("sign")
}

fn reason(status: SignatureStatus) -> String {
    match status {
        SignatureStatus::Invalid { reason, .. } => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn signed_file_verifies_and_stays_a_valid_component() {
    let key = key();
    let signed = signed_component(&key);
    validate(&signed);
    assert_eq!(verify(&signed).expect("parse"), SignatureStatus::Valid { signer: public_key(&key) });
    let sections = custom_sections(&signed).expect("parse");
    let last = sections.last().expect("a section");
    assert_eq!((last.name.as_str(), last.nested, last.range.end), (SECTION_NAME, false, signed.len()));
    assert_eq!(last.data_range.len(), PAYLOAD_LEN);
    assert_eq!(signed[last.data_range.start], FORMAT_VERSION);
}

#[test]
fn unsigned_file_is_unsigned() {
    assert_eq!(verify(&component_with_manifest(b"{}")).expect("parse"), SignatureStatus::Unsigned);
}

#[test]
fn unsigning_gives_back_the_bytes_that_were_signed() {
    let original = component_with_manifest(b"{}");
    let unsigned = unsign(&sign(&original, &key()).expect("sign")).expect("unsign");
    assert_eq!(unsigned, original);
    assert_eq!(verify(&unsigned).expect("parse"), SignatureStatus::Unsigned);
}

#[test]
fn resigning_replaces_the_signer() {
    let (first, second) = (key(), key());
    let resigned = sign(&signed_component(&first), &second).expect("sign");
    assert_eq!(verify(&resigned).expect("parse"), SignatureStatus::Valid { signer: public_key(&second) });
    let count = custom_sections(&resigned).expect("parse").iter().filter(|s| s.name == SECTION_NAME).count();
    assert_eq!(count, 1);
    // Signing again with the same key gives back the same file: ed25519 is deterministic.
    assert_eq!(sign(&resigned, &second).expect("sign"), resigned);
}

#[test]
fn any_single_byte_change_is_refused() {
    let signed = signed_component(&key());
    assert!(signed.len() > 2048, "sweep covers a file of {} bytes", signed.len());
    // One verification per byte, a low bit at even offsets and a high bit at odd ones, so LEB128
    // continuation bits and small values are both exercised. Verification is slow in debug
    // builds, so the positions are shared between threads.
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let positions: Vec<usize> = (0..signed.len()).collect();
    std::thread::scope(|scope| {
        for chunk in positions.chunks(signed.len().div_ceil(threads)) {
            let signed = &signed;
            scope.spawn(move || {
                for &i in chunk {
                    let flip = if i % 2 == 0 { 0x01 } else { 0x80 };
                    let mut tampered = signed.clone();
                    tampered[i] ^= flip;
                    if let Ok(SignatureStatus::Valid { .. }) = verify(&tampered) {
                        panic!("byte {i} xor {flip:#x} still verifies");
                    }
                }
            });
        }
    });
}

#[test]
fn changed_signature_names_the_claimed_signer() {
    let key = key();
    let mut signed = signed_component(&key);
    let last = signed.len() - 1;
    signed[last] ^= 0x01;
    let status = verify(&signed).expect("parse");
    assert!(matches!(&status, SignatureStatus::Invalid { signer: Some(s), .. } if *s == public_key(&key)));
    assert!(reason(status).contains("does not match"));
}

#[test]
fn section_added_after_signing_is_refused() {
    let signed = signed_component(&key());
    let appended = set_section(&signed, "tradebox-manifest", b"{}").expect("set");
    assert!(reason(verify(&appended).expect("parse")).contains("not the last section"));
}

#[test]
fn two_signature_sections_are_refused() {
    let signed = signed_component(&key());
    let sections = custom_sections(&signed).expect("parse");
    let payload = &signed[sections.last().expect("signature").data_range.clone()];
    let mut doubled = signed.clone();
    append_custom_section(&mut doubled, SECTION_NAME, payload).expect("encode");
    assert!(reason(verify(&doubled).expect("parse")).contains("2 `tradebox-signature` sections"));
}

#[test]
fn nested_signature_is_refused_and_cannot_be_signed() {
    let mut module = wasm_encoder::Module::new();
    module.section(&wasm_encoder::CustomSection { name: SECTION_NAME.into(), data: [0u8; PAYLOAD_LEN][..].into() });
    let mut component = wasm_encoder::Component::new();
    component.section(&wasm_encoder::ModuleSection(&module));
    let bytes = component.finish();
    validate(&bytes);

    let key = key();
    assert!(matches!(sign(&bytes, &key), Err(PackageError::NestedSignature { .. })));
    // Even with a correct top-level signature over everything else, the file is refused.
    let mut forged = bytes.clone();
    let mut payload = vec![FORMAT_VERSION];
    payload.extend_from_slice(key.verifying_key().as_bytes());
    payload.extend_from_slice(&key.sign(&bytes).to_bytes());
    append_custom_section(&mut forged, SECTION_NAME, &payload).expect("encode");
    assert!(reason(verify(&forged).expect("parse")).contains("nested"));
}

#[test]
fn wrong_length_or_version_is_refused() {
    let bytes = component_with_manifest(b"{}");
    let mut short = bytes.clone();
    append_custom_section(&mut short, SECTION_NAME, &[FORMAT_VERSION; 96]).expect("encode");
    assert!(reason(verify(&short).expect("parse")).contains("holds 96 bytes"));

    let key = key();
    let mut future = sign(&bytes, &key).expect("sign");
    let version_at = future.len() - PAYLOAD_LEN;
    future[version_at] = 2;
    let status = verify(&future).expect("parse");
    assert!(matches!(status, SignatureStatus::Invalid { signer: None, .. }));
    assert!(reason(status).contains("format version 2"));
}

#[test]
fn padded_section_header_is_refused() {
    let signed = signed_component(&key());
    let sections = custom_sections(&signed).expect("parse");
    let sig = sections.last().expect("signature");
    // Re-encode the same section with its size as a 5-byte LEB128, which parsers accept.
    let contents = &signed[sig.range.start + 2..];
    let size = contents.len() as u8;
    assert!(size < 0x80);
    let mut padded = signed[..sig.range.start].to_vec();
    padded.extend_from_slice(&[0, size | 0x80, 0x80, 0x80, 0x80, 0x00]);
    padded.extend_from_slice(contents);
    assert!(reason(verify(&padded).expect("parse")).contains("not minimally encoded"));
}

#[test]
fn malformed_file_is_an_error() {
    assert!(matches!(verify(b"\0asm\x0d\0\x01\0\x00"), Err(PackageError::Malformed { .. })));
    assert!(matches!(sign(b"garbage", &key()), Err(PackageError::NotWasm { .. })));
}

#[test]
fn keypair_files_round_trip_and_are_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("author.key");
    let public = write_keypair(&secret).expect("keygen");
    let public_path = public_key_path(&secret);
    assert_eq!(public_path, dir.path().join("author.key.pub"));

    let pem = std::fs::read_to_string(&secret).expect("read");
    // PKCS#8 v1 exactly as RFC 8410 and `openssl genpkey -algorithm ed25519` write it (OpenSSL 3.0
    // cannot read the v2 form with an embedded public key).
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"), "{}", &pem[..28]);
    assert!(std::fs::read_to_string(&public_path).expect("read").starts_with("-----BEGIN PUBLIC KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let key = read_signing_key(&secret).expect("read key");
    assert_eq!(public_key(&key), public);
    assert_eq!(read_public_key(&public_path).expect("read pub"), public);

    assert!(matches!(write_keypair(&secret), Err(PackageError::KeyExists { .. })));
    assert_eq!(std::fs::read_to_string(&secret).expect("read"), pem, "untouched");
    // A leftover `.pub` alone also blocks, and no secret key is left behind.
    let other = dir.path().join("other.key");
    std::fs::write(public_key_path(&other), "x").expect("write");
    assert!(matches!(write_keypair(&other), Err(PackageError::KeyExists { .. })));
    assert!(!other.exists());
}

#[cfg(unix)]
#[test]
fn secret_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("k");
    write_keypair(&secret).expect("keygen");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let err = read_signing_key(&secret).expect_err("too open");
    assert!(matches!(err, PackageError::KeyTooOpen { mode: 0o640, .. }));
    let message = err.to_string();
    assert!(message.contains(&secret.display().to_string()) && message.contains("640"), "{message}");
}

#[test]
fn key_material_never_appears_in_errors_or_debug() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("k");
    write_keypair(&secret).expect("keygen");
    let key = read_signing_key(&secret).expect("read");
    let secret_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.to_bytes());
    let debug = format!("{key:?}");
    assert!(!debug.contains(&secret_b64[..20]) && !debug.contains(&format!("{:?}", key.to_bytes())), "{debug}");

    // Corrupt the PEM body: the error must not echo it.
    let pem = std::fs::read_to_string(&secret).expect("read");
    let body_line = pem.lines().nth(1).expect("body").to_owned();
    let broken = dir.path().join("broken");
    std::fs::write(&broken, pem.replace(&body_line, &format!("{body_line}!!"))).expect("write");
    #[cfg(unix)]
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let err = read_signing_key(&broken).expect_err("corrupt");
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, PackageError::BadSecretKey { .. }));
    assert!(!shown.contains(&body_line[..20]), "{shown}");
}

#[test]
fn public_key_text_form_round_trips_and_rejects_junk() {
    let public = public_key(&key());
    let text = public.to_string();
    assert!(text.starts_with("ed25519:") && text.len() == 8 + 44, "{text}");
    assert_eq!(text.parse::<PublicKey>().expect("parse"), public);
    assert_eq!(format!("{public:?}"), format!("PublicKey({text})"));

    for junk in ["", "ed25519:", "rsa:AAAA", "ed25519:not base64!", "ed25519:AAAA"] {
        assert!(matches!(junk.parse::<PublicKey>(), Err(PackageError::ParsePublicKey { .. })), "{junk}");
    }
    // The identity point is a valid encoding but a weak key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = format!("ed25519:{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, identity));
    let err = weak.parse::<PublicKey>().expect_err("weak");
    assert!(err.to_string().contains("weak"), "{err}");
}

#[test]
fn public_key_file_may_hold_the_text_line_but_not_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let public = public_key(&key());
    let line = dir.path().join("line.pub");
    std::fs::write(&line, format!("{public}\n")).expect("write");
    assert_eq!(read_public_key(&line).expect("read"), public);

    let secret = dir.path().join("k");
    write_keypair(&secret).expect("keygen");
    let err = read_public_key(&secret).expect_err("secret given as public");
    assert!(err.to_string().contains("SECRET key"), "{err}");
    let public_path = public_key_path(&secret);
    #[cfg(unix)]
    std::fs::set_permissions(&public_path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let err = read_signing_key(&public_path).expect_err("public given as secret");
    assert!(err.to_string().contains("holds a public key"), "{err}");
}

#[test]
fn sign_file_signs_in_place_and_keeps_permissions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("strategy.wasm");
    std::fs::write(&path, component_with_manifest(b"{}")).expect("write");
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).expect("chmod");
    let key = key();
    sign_file(&path, &key).expect("sign");
    let bytes = std::fs::read(&path).expect("read");
    assert_eq!(verify(&bytes).expect("parse"), SignatureStatus::Valid { signer: public_key(&key) });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o640);
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1, "no temporary file left behind");

    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"junk").expect("write");
    let err = sign_file(&bad, &key).expect_err("malformed");
    assert!(err.to_string().contains("bad.wasm") && err.to_string().contains("not a WebAssembly file"), "{err}");
}
