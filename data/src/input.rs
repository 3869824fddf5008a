//! Opening a data file as what its first bytes say it is, whatever its name.
//!
//! The first bytes are read once and handed on (chained before the rest), so a CSV reader still
//! sees line 1 and its line numbers stay the file's. Text is handed on through [`LineCap`], so
//! no reader above it ever holds more than one capped line of a file, whatever the file holds.

use crate::DataError;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
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
                "larger than {} MiB, the most a JSON file may be (it is read whole: OKX's rows are newest \
                 first); write long histories as CSV (`tradebox data download` does)",
                JSON_CAP >> 20
            ),
        ));
    }
    String::from_utf8(head).map(Input::Json).map_err(|e| DataError::file(path, format!("JSON must be UTF-8 text: {e}")))
}

/// A line over its reader's cap: carried inside the `io::Error` [`LineCap`] returns, so that a
/// reader above it (the `csv` crate, a `BufRead`) hands it back and it can be told from a disk
/// failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line longer than {cap} bytes")]
pub(crate) struct LineTooLong {
    /// The 1-based line.
    pub(crate) line: u64,
    /// The cap, in bytes (the newline not counted).
    pub(crate) cap: u64,
}

impl LineTooLong {
    /// The line and the cap, when `e` is a capped reader's refusal.
    pub(crate) fn of(e: &io::Error) -> Option<Self> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<LineTooLong>()).copied()
    }

    /// `FILE:LINE: line longer than N bytes`.
    pub(crate) fn error(self, path: &Path) -> DataError {
        DataError::at(path, self.line, self.to_string())
    }

    /// The refusal inside a CSV reader's error, when it is one.
    pub(crate) fn in_csv(e: &csv::Error) -> Option<Self> {
        match e.kind() {
            csv::ErrorKind::Io(io) => Self::of(io),
            _ => None,
        }
    }
}

/// A CSV reader's error: a line over [`crate::MAX_CSV_LINE`] says so (with its own line: the
/// reader's position is where the row began), anything else as the reader put it.
pub(crate) fn unreadable(path: &Path, line: u64, what: &str, e: &csv::Error) -> DataError {
    match LineTooLong::in_csv(e) {
        Some(long) => long.error(path),
        None => DataError::at(path, line, format!("unreadable {what}: {e}")),
    }
}

/// A reader that refuses a line longer than its cap: a file of one endless line (a dump, a
/// binary, a truncated write without a newline) would otherwise be buffered whole by the line
/// or record reader above it. The bytes before the long line are handed on first, so an
/// earlier bad row is still the error reported; then the refusal, every time it is asked.
pub(crate) struct LineCap<R> {
    inner: R,
    cap: u64,
    /// The 1-based line being read.
    line: u64,
    /// Its bytes so far.
    len: u64,
    over: bool,
}

impl<R> LineCap<R> {
    pub(crate) fn new(inner: R, cap: u64) -> Self {
        Self { inner, cap, line: 1, len: 0, over: false }
    }

    fn refusal(&self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, LineTooLong { line: self.line, cap: self.cap })
    }
}

impl<R: Read> Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.over {
            return Err(self.refusal());
        }
        let n = self.inner.read(buf)?;
        let mut start = 0;
        while start < n {
            let rest = &buf[start..n];
            // A line ends at `\n` or `\r` (the csv crate reads lines ended by `\r` alone too);
            // lines are counted by `\n` (a file ending its lines in `\r` alone is named at line 1).
            let end = rest.iter().position(|b| *b == b'\n' || *b == b'\r');
            let piece = end.unwrap_or(rest.len()) as u64;
            if self.len + piece > self.cap {
                // Up to the cap is handed on (`len` never exceeds it), the refusal next.
                let keep = start + usize::try_from(self.cap - self.len).unwrap_or(0);
                self.over = true;
                return if keep > 0 { Ok(keep) } else { Err(self.refusal()) };
            }
            match end {
                Some(i) => {
                    if rest[i] == b'\n' {
                        self.line += 1;
                    }
                    self.len = 0;
                    start += i + 1;
                }
                None => {
                    self.len += piece;
                    break;
                }
            }
        }
        Ok(n)
    }
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
                Ok(Input::Text(Box::new(LineCap::new(Cursor::new(head).chain(rest), crate::MAX_CSV_LINE))))
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
            Kind::Text => Ok(Input::Text(Box::new(LineCap::new(Cursor::new(head).chain(reader), crate::MAX_CSV_LINE)))),
        }
    }
}

/// The CSV reader of candle and trade files: a header, rows of varying length (OKX's columns
/// beyond the ones read), fields trimmed, and no quoting: a row is numbers and words, and a
/// quote would let one field run over many lines, past the line cap (a 40 MB field held whole).
pub(crate) fn csv_reader<R: Read>(reader: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new().has_headers(true).flexible(true).quoting(false).trim(csv::Trim::All).from_reader(reader)
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
    fn a_line_over_the_cap_is_refused_where_it_starts() {
        let text = b"ab\ncdef\n\nghijkl".to_vec();
        let mut capped = LineCap::new(Cursor::new(text.clone()), 4);
        let mut got = Vec::new();
        let e = capped.read_to_end(&mut got).expect_err("line 4 is 6 bytes");
        assert_eq!(LineTooLong::of(&e), Some(LineTooLong { line: 4, cap: 4 }));
        // Everything before it was handed on, and the refusal stays.
        assert_eq!(got, b"ab\ncdef\n\nghij");
        assert!(capped.read(&mut [0; 8]).is_err());
        // At the cap is fine, whatever the reads' sizes.
        let mut back = Vec::new();
        LineCap::new(Cursor::new(text).chain(&b""[..]), 6).read_to_end(&mut back).expect("fits");
        assert_eq!(back.len(), 15);
        let mut one_by_one = LineCap::new(io::repeat(b'x').take(5), 4);
        let mut byte = [0u8; 1];
        let reads: Vec<bool> = (0..5).map(|_| one_by_one.read(&mut byte).is_ok()).collect();
        assert_eq!(reads, [true, true, true, true, false]);
        // `\r` ends a line too: lines ended by `\r` alone, or a line at the cap before `\r\n`.
        let mut back = Vec::new();
        LineCap::new(Cursor::new(b"abcd\r\nefgh\rijkl\r".to_vec()), 4).read_to_end(&mut back).expect("fits");
        assert_eq!(back.len(), 16);
    }

    #[test]
    fn a_json_body_over_the_cap_is_refused_in_one_line() {
        let want = "big.json: larger than 16 MiB, the most a JSON file may be (it is read whole: OKX's rows are \
                    newest first); write long histories as CSV (`tradebox data download` does)";
        // From a stream: read up to one byte past the cap, never on.
        let endless = Cursor::new(b"{\"code\":\"0\",\"data\":[".to_vec()).chain(io::repeat(b' '));
        let Err(e) = Input::from_reader(Path::new("big.json"), Box::new(endless)) else { panic!("over the cap") };
        assert_eq!(e.to_string(), want);
        // From a file (sparse: `[` and then nothing but its length).
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("big.json");
        let file = File::create(&path).expect("create");
        std::io::Write::write_all(&mut &file, b"[").expect("write");
        file.set_len(JSON_CAP + 1).expect("grow");
        let Err(e) = Input::open(&path) else { panic!("over the cap") };
        assert_eq!(e.to_string(), want.replace("big.json", &path.display().to_string()));
        // At the cap it is read (and then refused for what it holds, not its size).
        file.set_len(JSON_CAP).expect("shrink");
        assert!(matches!(Input::open(&path), Ok(Input::Json(_))));
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
