//! OKX's REST body (`{"code":"0","msg":"","data":[...]}`) or a bare JSON array of its rows,
//! with each row's place in the file kept: an error then names the line the row starts on,
//! as the CSV readers do, rather than an index nobody can find in a pretty-printed file.

use crate::DataError;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::path::Path;

/// The rows of a body, in the file's order (OKX's: newest first).
pub(crate) struct Rows {
    text: String,
    spans: Vec<Span>,
}

struct Span {
    start: usize,
    end: usize,
    line: u64,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    msg: Option<Value>,
    #[serde(borrow, default)]
    data: Option<Vec<&'a RawValue>>,
}

/// A JSON string or number as its text (OKX writes numbers as strings; hand-made files may not).
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn syntax(path: &Path, e: &serde_json::Error) -> DataError {
    DataError::at(path, e.line() as u64, format!("not an OKX body: {e}"))
}

impl Rows {
    /// Reads a whole file's text.
    pub(crate) fn parse(path: &Path, text: String) -> Result<Self, DataError> {
        let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let rows: Vec<&RawValue> = if body.trim_start().starts_with('[') {
            serde_json::from_str(body).map_err(|e| syntax(path, &e))?
        } else {
            let envelope: Envelope<'_> = serde_json::from_str(body).map_err(|e| syntax(path, &e))?;
            let code = envelope.code.as_ref().and_then(scalar);
            if let Some(code) = code.filter(|c| c != "0") {
                let msg = envelope.msg.as_ref().and_then(scalar).unwrap_or_default();
                return Err(DataError::file(
                    path,
                    format!(
                        "OKX answered code {}: {} (no market data)",
                        if code.chars().all(|c| c.is_ascii_alphanumeric()) {
                            code.clone()
                        } else {
                            crate::quoted(&code)
                        },
                        crate::quoted(&msg)
                    ),
                ));
            }
            envelope.data.ok_or_else(|| DataError::file(path, "no `data` array: not an OKX market body"))?
        };
        // Where each row starts, as a line number: one pass over the text, rows in order.
        let base = text.as_ptr() as usize;
        let (mut line, mut counted) = (1u64, 0usize);
        let mut spans = Vec::with_capacity(rows.len());
        for raw in rows {
            let start = (raw.get().as_ptr() as usize).saturating_sub(base);
            let end = start + raw.get().len();
            line += text.as_bytes()[counted..start].iter().filter(|b| **b == b'\n').count() as u64;
            counted = start;
            spans.push(Span { start, end, line });
        }
        Ok(Rows { text, spans })
    }

    /// How many rows.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Row `i` (in the file's order) parsed as a JSON value, with the line it starts on.
    pub(crate) fn row(&self, i: usize) -> Option<(Value, u64)> {
        let s = self.spans.get(i)?;
        // The span was cut from a value serde_json already read, so it parses again.
        let value = serde_json::from_str(&self.text[s.start..s.end]).unwrap_or(Value::Null);
        Some((value, s.line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_lines() {
        let body = "{\"code\":\"0\",\"msg\":\"\",\n\"data\":[\n [\"2\",\"a\"],\n\n [\"1\",\"b\"]\n]}";
        let rows = Rows::parse(Path::new("b.json"), body.to_string()).expect("body");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.row(0).map(|r| r.1), Some(3));
        assert_eq!(rows.row(1), Some((serde_json::json!(["1", "b"]), 5)));
        let bare = Rows::parse(Path::new("b.json"), "[[1],[2]]".into()).expect("array");
        assert_eq!(bare.row(1).map(|r| r.1), Some(1));
    }

    #[test]
    fn an_error_body_quotes_okx() {
        let e = Rows::parse(
            Path::new("e.json"),
            r#"{"code":"51001","msg":"Instrument ID does not exist.","data":[]}"#.into(),
        )
        .err()
        .expect("refused");
        assert_eq!(
            e.to_string(),
            "e.json: OKX answered code 51001: \"Instrument ID does not exist.\" (no market data)"
        );
        let e = Rows::parse(Path::new("e.json"), "{\"code\":\"0\"}".into()).err().expect("no data");
        assert!(e.reason.contains("no `data`"), "{e}");
        let e = Rows::parse(Path::new("e.json"), "{\"code\":\"0\",\n\"data\":[1,}".into()).err().expect("bad");
        assert_eq!(e.line, Some(2), "{e}");
    }
}
