//! Custom sections: where a strategy file keeps what is not code.
//!
//! A WebAssembly binary is a header followed by sections, each `id (1 byte) | size (LEB128 u32) |
//! contents`. Custom sections (id 0) hold a name and free-form bytes and are ignored by runtimes,
//! which makes them the place for the manifest and the signature. A component can nest core
//! modules and other components; their sections are found too and marked `nested`.
//!
//! Changes are made only at the top level and only by appending: removing a top-level custom
//! section and adding one at the end never moves or rewrites any other section, so the code and
//! every nested module stay byte-for-byte what their author built.
//!
//! This module parses only the section structure. Whether the file is a valid component is the
//! runtime's business; malformed structure is reported as [`PackageError::Malformed`].

use std::ops::Range;

use wasm_encoder::Section as _;
use wasmparser::{Chunk, Parser, Payload, WasmFeatures};

use crate::PackageError;

/// One custom section as found in the file, with enough position information to cut it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomSection {
    /// The section's name, e.g. `tradebox-manifest`.
    pub name: String,
    /// Where the payload (after the name) lies in the file.
    pub data_range: Range<usize>,
    /// Where the whole section lies in the file, from its id byte to its last payload byte.
    pub range: Range<usize>,
    /// True if the section belongs to a module or component nested inside the file rather than to
    /// the file itself; such sections cannot be changed without rewriting their container.
    pub nested: bool,
}

/// What a file's 8-byte header says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A core module: what `cargo build --target wasm32-unknown-unknown` writes, before it is
    /// turned into a component.
    Module,
    /// A component (its version is the parser's to check).
    Component,
}

/// Reads the header alone, so a file that is not WebAssembly at all (a text file, an ELF
/// binary, an empty file) is refused in words before a parser describes it byte by byte.
pub fn wasm_kind(bytes: &[u8]) -> Result<WasmKind, PackageError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    let not_wasm = |reason| Err(PackageError::NotWasm { reason });
    if bytes.is_empty() {
        return not_wasm("the file is empty");
    }
    if !bytes.starts_with(MAGIC) && !MAGIC.starts_with(bytes) {
        return not_wasm("it does not begin with the WebAssembly magic bytes `\\0asm`");
    }
    let Some(&[v0, v1, l0, l1]) = bytes.get(4..8) else {
        return not_wasm("it ends inside the 8-byte WebAssembly header (a truncated file)");
    };
    let (version, layer) = (u16::from_le_bytes([v0, v1]), u16::from_le_bytes([l0, l1]));
    match (version, layer) {
        (1, 0) => Ok(WasmKind::Module),
        (_, 1) => Ok(WasmKind::Component),
        _ => Err(PackageError::UnknownWasmVersion { version, layer }),
    }
}

/// Lists every custom section, top level and nested, in file order, so callers can decide
/// for themselves what to trust (e.g. the signature check refuses nested signatures).
pub fn custom_sections(bytes: &[u8]) -> Result<Vec<CustomSection>, PackageError> {
    wasm_kind(bytes)?;
    let mut found = Vec::new();
    // Parsers of the enclosing modules/components while a nested one is being read.
    let mut outer: Vec<Parser> = Vec::new();
    let mut parser = Parser::new(0);
    // Be lenient about proposals: we only need the section structure.
    parser.set_features(WasmFeatures::all());
    let mut pos = 0;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let (payload, consumed) = match parser.parse(rest, true)? {
            Chunk::Parsed { payload, consumed } => (payload, consumed),
            // Not expected when the parser is told it has the whole input, but never panic on input.
            Chunk::NeedMoreData(_) => {
                return Err(PackageError::Malformed {
                    message: "unexpected end of file".to_owned(),
                    offset: bytes.len() as u64,
                });
            }
        };
        let end = pos + consumed;
        match payload {
            Payload::CustomSection(reader) => {
                let data_range = to_usize(reader.data_range())?;
                if data_range.end != end || data_range.start < pos {
                    // Our bookkeeping disagrees with the parser; refuse rather than cut the wrong bytes.
                    return Err(PackageError::Malformed {
                        message: format!("custom section `{}` has inconsistent bounds", reader.name()),
                        offset: pos as u64,
                    });
                }
                found.push(CustomSection {
                    name: reader.name().to_owned(),
                    data_range,
                    range: pos..end,
                    nested: !outer.is_empty(),
                });
            }
            Payload::ModuleSection { parser: inner, .. } | Payload::ComponentSection { parser: inner, .. } => {
                outer.push(std::mem::replace(&mut parser, inner));
            }
            Payload::End(_) => match outer.pop() {
                Some(enclosing) => parser = enclosing,
                None => break,
            },
            _ => {}
        }
        pos = end;
    }
    Ok(found)
}

/// Returns the payload of the section the file itself declares, because a nested module's
/// section of the same name describes only that module; a nested one is used only if the top
/// level has none (toolchains put custom sections into the core module, not the component).
pub fn find_section<'a>(bytes: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, PackageError> {
    let sections = custom_sections(bytes)?;
    let mut named = sections.iter().filter(|s| s.name == name);
    let chosen = named.clone().find(|s| !s.nested).or_else(|| named.next());
    Ok(chosen.and_then(|s| bytes.get(s.data_range.clone())))
}

/// Returns a copy of the file whose only top-level section called `name` is a new one at the end
/// holding `data`, so a tool can set the manifest without touching the code around it.
///
/// Nested sections of that name are left alone. Anything appended after a signature makes the
/// signature invalid, so set sections before signing.
pub fn set_section(bytes: &[u8], name: &str, data: &[u8]) -> Result<Vec<u8>, PackageError> {
    let sections = custom_sections(bytes)?;
    let mut out = remove_top_level(bytes, &sections, name);
    append_custom_section(&mut out, name, data)?;
    Ok(out)
}

/// The file without the top-level custom sections called `name`; `sections` must come from
/// [`custom_sections`] on the same bytes.
pub(crate) fn remove_top_level(bytes: &[u8], sections: &[CustomSection], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut copied_to = 0;
    for s in sections.iter().filter(|s| !s.nested && s.name == name) {
        out.extend_from_slice(bytes.get(copied_to..s.range.start).unwrap_or_default());
        copied_to = s.range.end;
    }
    out.extend_from_slice(bytes.get(copied_to..).unwrap_or_default());
    out
}

/// Appends `id 0 | size | name | data` with minimal LEB128 sizes. Modules and components use the
/// same id for custom sections, so this works for both.
pub(crate) fn append_custom_section(out: &mut Vec<u8>, name: &str, data: &[u8]) -> Result<(), PackageError> {
    // Name length prefix is at most 5 bytes; checking the bound up front keeps the encoder from
    // panicking on sizes the format cannot express.
    let len = name.len().saturating_add(data.len()).saturating_add(5);
    if u32::try_from(len).is_err() {
        return Err(PackageError::SectionTooLarge { name: name.to_owned(), len });
    }
    wasm_encoder::CustomSection { name: name.into(), data: data.into() }.append_to(out);
    Ok(())
}

fn to_usize(r: Range<u64>) -> Result<Range<usize>, PackageError> {
    let conv = |v: u64| {
        usize::try_from(v).map_err(|_| PackageError::Malformed {
            message: "offset does not fit this platform's address space".to_owned(),
            offset: v,
        })
    };
    Ok(conv(r.start)?..conv(r.end)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use wasm_encoder::{Component, CustomSection as Custom, Module, ModuleSection};

    /// A component holding one core module; the module carries `tradebox-manifest`, like a
    /// real plugin, and a function so the file has code as well as metadata.
    pub(crate) fn component_with_manifest(manifest: &[u8]) -> Vec<u8> {
        let mut module = Module::new();
        let mut types = wasm_encoder::TypeSection::new();
        types.ty().function([wasm_encoder::ValType::I32], [wasm_encoder::ValType::I32]);
        module.section(&types);
        let mut funcs = wasm_encoder::FunctionSection::new();
        funcs.function(0);
        module.section(&funcs);
        let mut exports = wasm_encoder::ExportSection::new();
        exports.export("double", wasm_encoder::ExportKind::Func, 0);
        module.section(&exports);
        let mut code = wasm_encoder::CodeSection::new();
        let mut f = wasm_encoder::Function::new([]);
        f.instructions().local_get(0).local_get(0).i32_add().end();
        code.function(&f);
        module.section(&code);
        module.section(&Custom { name: "tradebox-manifest".into(), data: manifest.into() });

        let mut component = Component::new();
        component.section(&Custom { name: "producers-ish".into(), data: b"test".as_slice().into() });
        component.section(&ModuleSection(&module));
        component.finish()
    }

    pub(crate) fn validate(bytes: &[u8]) {
        wasmparser::Validator::new_with_features(WasmFeatures::all()).validate_all(bytes).expect("valid component");
    }

    #[test]
    fn lists_top_level_and_nested_sections_with_exact_ranges() {
        let bytes = component_with_manifest(br#"{"name":"x"}"#);
        validate(&bytes);
        let sections = custom_sections(&bytes).expect("parse");
        let names: Vec<_> = sections.iter().map(|s| (s.name.as_str(), s.nested)).collect();
        assert_eq!(names, [("producers-ish", false), ("tradebox-manifest", true)]);
        for s in &sections {
            assert_eq!(bytes[s.range.start], 0, "section starts at its id byte");
            assert_eq!(s.range.end, s.data_range.end);
            assert!(s.range.start < s.data_range.start);
        }
        assert_eq!(&bytes[sections[1].data_range.clone()], br#"{"name":"x"}"#);
    }

    #[test]
    fn finds_nested_section_but_prefers_top_level() {
        let bytes = component_with_manifest(b"nested");
        assert_eq!(find_section(&bytes, "tradebox-manifest").expect("parse"), Some(&b"nested"[..]));
        assert_eq!(find_section(&bytes, "absent").expect("parse"), None);

        let bytes = set_section(&bytes, "tradebox-manifest", b"top").expect("set");
        assert_eq!(find_section(&bytes, "tradebox-manifest").expect("parse"), Some(&b"top"[..]));
    }

    #[test]
    fn set_section_replaces_only_top_level_and_keeps_component_valid() {
        let original = component_with_manifest(b"m");
        let once = set_section(&original, "note", b"first").expect("set");
        let twice = set_section(&once, "note", b"second").expect("set");
        validate(&twice);
        let sections = custom_sections(&twice).expect("parse");
        let notes: Vec<_> = sections.iter().filter(|s| s.name == "note").collect();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].range.end, twice.len(), "appended last");
        assert_eq!(&twice[notes[0].data_range.clone()], b"second");
        // Everything before is the original, untouched.
        assert_eq!(&twice[..original.len()], &original[..]);
        // The nested manifest is still there.
        assert!(sections.iter().any(|s| s.nested && s.name == "tradebox-manifest"));
        // A section in the middle is removed without disturbing its neighbours.
        let middle = set_section(&original, "producers-ish", b"new").expect("set");
        validate(&middle);
        let names: Vec<_> = custom_sections(&middle).expect("parse").into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["tradebox-manifest", "producers-ish"]);
    }

    #[test]
    fn set_section_works_on_a_core_module_too() {
        let mut module = Module::new();
        module.section(&Custom { name: "a".into(), data: b"1".as_slice().into() });
        let bytes = set_section(&module.finish(), "a", b"2").expect("set");
        validate(&bytes);
        assert_eq!(find_section(&bytes, "a").expect("parse"), Some(&b"2"[..]));
    }

    #[test]
    fn headers_are_told_apart_in_words_never_as_bytes() {
        assert_eq!(wasm_kind(&component_with_manifest(b"m")).expect("component"), WasmKind::Component);
        assert_eq!(wasm_kind(&Module::new().finish()).expect("module"), WasmKind::Module);
        let cases: [(&[u8], &str); 5] = [
            (b"", "the file is empty"),
            (b"hello, world", "does not begin with the WebAssembly magic bytes"),
            (b"\x7fELF\x02\x01\x01\0", "does not begin with the WebAssembly magic bytes"),
            (b"\0asm\x01", "truncated"),
            (b"\0asm not really", "unknown kind"),
        ];
        for (bytes, expected) in cases {
            for err in [wasm_kind(bytes).expect_err("refused"), custom_sections(bytes).expect_err("refused")] {
                let text = err.to_string();
                assert!(text.contains(expected), "{bytes:?}: {text}");
                assert!(!text.contains('\n') && !text.contains("0x61"), "{bytes:?}: one line, no byte dump: {text}");
            }
        }
    }

    #[test]
    fn encodes_custom_section_by_the_spec() {
        let mut out = Vec::new();
        append_custom_section(&mut out, "ab", b"xyz").expect("encode");
        assert_eq!(out, [0, 6, 2, b'a', b'b', b'x', b'y', b'z']);

        // A payload past 127 bytes needs a two-byte size.
        let mut out = Vec::new();
        append_custom_section(&mut out, "n", &[7; 200]).expect("encode");
        assert_eq!(&out[..4], [0, 0xca, 0x01, 1]);
        assert_eq!(out.len(), 4 + 1 + 200);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let bytes = component_with_manifest(b"manifest");
        for cut in 0..bytes.len() {
            // Truncations either fail or (at a section boundary) parse; they must never panic.
            let _ = custom_sections(&bytes[..cut]);
        }
        assert!(matches!(custom_sections(b""), Err(PackageError::NotWasm { .. })));
        assert!(matches!(custom_sections(b"not wasm at all"), Err(PackageError::NotWasm { .. })));
        let err = custom_sections(&bytes[..bytes.len() - 1]).expect_err("truncated");
        assert!(err.to_string().contains("not a well-formed WebAssembly file"), "{err}");
        let mut garbage = bytes.clone();
        garbage.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(custom_sections(&garbage).is_err());
    }
}
