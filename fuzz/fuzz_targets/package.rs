//! `tradebox_package`: the custom-section reader and the signature check, on arbitrary bytes.
//!
//! - `sections::custom_sections` / `find_section`: never panic; every section found lies inside
//!   the file, starts at an id byte 0 and ends where its payload ends; `find_section` returns one
//!   of them, preferring the top level.
//! - `signature::verify` on the input: never panics; `Valid` is only ever said of a file whose
//!   signature section is its last, and for the fixed test key only of a file that signing its
//!   own signed part with that key gives back byte for byte.
//! - `signature::sign` with the fixed test key, when the input parses: the result verifies as
//!   that key's, unsigning it gives the input without its signatures, and changing any one byte
//!   of it (the position and the change come from the input) is never `Valid` any more.

#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tradebox_package::sections::{custom_sections, find_section};
use tradebox_package::signature::{self, SECTION_NAME, SignatureStatus, public_key, sign, unsign, verify};

/// A fixed test key (never used for anything else).
static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[7; 32]));

fuzz_target!(|data: &[u8]| {
    let key = &*KEY;
    let sections = custom_sections(data);
    if let Ok(sections) = &sections {
        for s in sections {
            assert!(s.range.start < s.data_range.start && s.data_range.start <= s.data_range.end);
            assert_eq!(s.range.end, s.data_range.end);
            assert!(s.range.end <= data.len(), "{s:?} ends past the file ({} bytes)", data.len());
            assert_eq!(data[s.range.start], 0, "{s:?} does not start at a custom section id");
        }
        for name in [SECTION_NAME, "tradebox-manifest", "name"] {
            let found = find_section(data, name).expect("parsed once, parses again");
            let named: Vec<_> = sections.iter().filter(|s| s.name == name).collect();
            match found {
                None => assert!(named.is_empty()),
                Some(payload) => {
                    let chosen = named.iter().find(|s| !s.nested).or(named.first()).expect("a section of that name");
                    assert_eq!(payload, &data[chosen.data_range.clone()]);
                }
            }
        }
    }

    match verify(data) {
        Ok(SignatureStatus::Valid { signer }) => {
            let sections = sections.as_ref().expect("a valid file parses");
            let last = sections.last().expect("a signed file has a section");
            assert!(last.name == SECTION_NAME && !last.nested && last.range.end == data.len());
            assert_eq!(sections.iter().filter(|s| s.name == SECTION_NAME).count(), 1);
            if signer == public_key(key) {
                let again = sign(&data[..last.range.start], key).expect("signs");
                assert_eq!(again, data, "a file the test key did not sign verifies as the test key's");
            }
        }
        Ok(SignatureStatus::Unsigned) => {
            let sections = sections.as_ref().expect("an unsigned file parses");
            assert!(sections.iter().all(|s| s.name != SECTION_NAME));
        }
        Ok(SignatureStatus::Invalid { reason, .. }) => assert!(!reason.is_empty()),
        Err(e) => {
            assert!(sections.is_err(), "verify failed on a file whose sections read: {e}");
            let _ = e.to_string();
        }
    }

    let Ok(signed) = sign(data, key) else { return };
    assert_eq!(verify(&signed).expect("a signed file parses"), SignatureStatus::Valid { signer: public_key(key) });
    assert_eq!(unsign(&signed).expect("unsigns"), unsign(data).expect("unsigns"), "unsign(sign(x)) != unsign(x)");
    // Changed bytes, chosen by the input: one anywhere, one in the signed part, one in the
    // signature section (header or payload).
    let pick = data.iter().fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
    let sig_start = custom_sections(&signed).ok().and_then(|s| s.last().map(|s| s.range.start)).expect("signed");
    assert_eq!(signed.len() - sig_start, 3 + SECTION_NAME.len() + signature::PAYLOAD_LEN);
    let flip = u8::try_from(pick % 255 + 1).unwrap_or(1);
    for at in [pick % signed.len(), pick % sig_start.max(1), sig_start + pick % (signed.len() - sig_start)] {
        let mut tampered = signed.clone();
        tampered[at] ^= flip;
        if let Ok(SignatureStatus::Valid { signer }) = verify(&tampered) {
            panic!("byte {at} xor {flip:#x} of a signed file still verifies (as {signer})");
        }
    }
});
