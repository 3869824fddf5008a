//! Opening a data file as what its first bytes say it is, whatever its name.
//!
//! The first bytes are read once and handed on (chained before the rest), so a CSV reader still
//! sees line 1 and its line numbers stay the file's.

use crate::DataError;
use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

/// How much is looked at to tell the kind (leading blank lines of a CSV are rare and short).
const HEAD: usize = 8 * 1024;

/// The largest JSON file held in memory: OKX's bodies are tens of kilobytes, so anything near
/// this is not one, and CSV (streamed) is the format for it. Parsed, a body takes up to ~20
/// times its size (measured in review): the cap keeps that near 300 MiB.
pub(crate) const JSON_CAP: u64 = 16 << 20;

/// Parquet's magic number, the first (and last) four bytes of every Parquet file.
const PARQUET_MAGIC: &[u8] = b"PAR1";

/// A file, by kind.
pub(crate) enum Input {
    /// Text (CSV), from its first byte.
    Text(Box<dyn Read + Send>),
    /// JSON, whole.
    Json(String),
    /// Parquet, which is read from its footer backwards, so it needs the file (or the bytes).
    Parquet(ParquetSource),
}

/// Where Parquet bytes come from.
pub(crate) enum ParquetSource {
    /// A file on disk (read in place, row group by row group).
    File(File),
    /// Bytes already in memory (`from_reader`).
    Bytes(bytes::Bytes),
}

/// The first up to [`HEAD`] bytes.
fn head(path: &Path, reader: &mut dyn Read) -> Result<Vec<u8>, DataError> {
    let mut head = Vec::with_capacity(HEAD);
    reader.take(HEAD as u64).read_to_end(&mut head).map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
    Ok(head)
}

/// JSON opens with `{` or `[` after blanks (and a UTF-8 byte order mark); Parquet with its magic.
fn kind(head: &[u8]) -> Kind {
    if head.starts_with(PARQUET_MAGIC) {
        return Kind::Parquet;
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(head);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => Kind::Json,
        _ => Kind::Text,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Json,
    Parquet,
}

/// The rest of a JSON file after `head`, within [`JSON_CAP`].
fn json(path: &Path, mut head: Vec<u8>, rest: &mut dyn Read) -> Result<Input, DataError> {
    let room = (JSON_CAP + 1).saturating_sub(head.len() as u64);
    rest.take(room).read_to_end(&mut head).map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
    if head.len() as u64 > JSON_CAP {
        return Err(DataError::file(
            path,
            format!(
                "a JSON file is read whole (OKX's rows are newest first) and this one is over {} MiB; \
                 write long histories as CSV (`tradebox data download` does)",
                JSON_CAP >> 20
            ),
        ));
    }
    String::from_utf8(head).map(Input::Json).map_err(|e| DataError::file(path, format!("JSON must be UTF-8 text: {e}")))
}

impl Input {
    /// Opens `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, DataError> {
        let mut file = File::open(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
        let head = head(path, &mut file)?;
        match kind(&head) {
            // Parquet reads at offsets of its own (the footer first): the file as it is.
            Kind::Parquet => Ok(Input::Parquet(ParquetSource::File(file))),
            Kind::Json => json(path, head, &mut file),
            Kind::Text => {
                let rest = BufReader::with_capacity(1 << 16, file);
                Ok(Input::Text(Box::new(Cursor::new(head).chain(rest))))
            }
        }
    }

    /// Reads from `reader`; `path` names it in errors. Parquet is then read into memory whole.
    pub(crate) fn from_reader(path: &Path, mut reader: Box<dyn Read + Send>) -> Result<Self, DataError> {
        let mut head = head(path, &mut reader)?;
        match kind(&head) {
            Kind::Parquet => {
                reader.read_to_end(&mut head).map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
                Ok(Input::Parquet(ParquetSource::Bytes(head.into())))
            }
            Kind::Json => json(path, head, &mut reader),
            Kind::Text => Ok(Input::Text(Box::new(Cursor::new(head).chain(reader)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_in_the_first_bytes() {
        assert_eq!(kind(b"PAR1\x15\x04"), Kind::Parquet);
        assert_eq!(kind(b"  \n\t{\"code\":\"0\"}"), Kind::Json);
        assert_eq!(kind(b"\xEF\xBB\xBF[[\"1\"]]"), Kind::Json);
        assert_eq!(kind(b"ts_ms,open\n"), Kind::Text);
        assert_eq!(kind(b""), Kind::Text);
        // The magic counts only at the very start.
        assert_eq!(kind(b" PAR1"), Kind::Text);
    }

    #[test]
    fn text_keeps_its_first_bytes() {
        let long = format!("{}\nrest", "x".repeat(HEAD + 10));
        let Ok(Input::Text(mut r)) = Input::from_reader(Path::new("t"), Box::new(Cursor::new(long.clone()))) else {
            panic!("text")
        };
        let mut back = String::new();
        r.read_to_string(&mut back).expect("read");
        assert_eq!(back, long);
    }
}
