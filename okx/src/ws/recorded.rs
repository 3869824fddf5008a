//! One line of a recorded feed, as `tradebox record` writes it and every reader takes it.
//!
//! A line is one of:
//! - a raw frame exactly as received (`{"arg":...}`, `pong`): older recordings and captures
//!   from other tools;
//! - `RECV_MS FRAME`: the receive time in milliseconds since the Unix epoch (this machine's
//!   clock), one space, then the raw frame: what `tradebox record` writes;
//! - `RECV_MS #gap ENDPOINT REASON` (or without the time): the connection to `ENDPOINT` was lost
//!   here and frames may be missing; a book's `seqId` chain is broken at this line, so a reader
//!   starts every book afresh (the recorder's reconnection brings new snapshots);
//! - `RECV_MS #continues FILE`: the first line of an hourly file that goes on from `FILE`. Its
//!   books' chains began there: updates of a book before its first snapshot in this file are
//!   skipped, not errors (the recorder asks for fresh snapshots at every new file).
//!
//! Kept here, beside the parser, so that `feed check` and `tradebox-data` split a line the same
//! way: a frame never starts with a digit or `#` (OKX sends JSON objects and `pong`).

/// What a line of a recorded feed holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A frame, with its receive time when the line has one.
    Frame {
        /// Milliseconds since the Unix epoch when the recorder received it.
        received_ms: Option<i64>,
        /// The raw frame.
        text: &'a str,
    },
    /// A gap: the connection was lost here (what follows `#gap`: the endpoint and why).
    Gap {
        /// When the recorder noticed.
        received_ms: Option<i64>,
        /// The endpoint and the reason, as written.
        what: &'a str,
    },
    /// The file goes on from another (what follows `#continues`: its name).
    Continues {
        /// The earlier file's name.
        from: &'a str,
    },
    /// Nothing (blank).
    Blank,
}

/// The marker word of a gap line.
pub const GAP: &str = "#gap";
/// The marker word of a file's first line when it goes on from another.
pub const CONTINUES: &str = "#continues";

/// Splits a line (its newline already removed or not).
pub fn split(line: &str) -> Line<'_> {
    let line = line.trim();
    if line.is_empty() {
        return Line::Blank;
    }
    let (received_ms, rest) = match line.split_once(' ') {
        Some((head, rest)) if !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit()) => {
            match head.parse::<i64>() {
                Ok(ms) => (Some(ms), rest.trim_start()),
                // More digits than an i64: not a time; left whole, so the parser names it.
                Err(_) => (None, line),
            }
        }
        _ => (None, line),
    };
    let marker = |word: &str| rest.strip_prefix(word).filter(|what| what.is_empty() || what.starts_with(' '));
    if let Some(what) = marker(GAP) {
        Line::Gap { received_ms, what: what.trim() }
    } else if let Some(from) = marker(CONTINUES) {
        Line::Continues { from: from.trim() }
    } else {
        Line::Frame { received_ms, text: rest }
    }
}

/// A gap line as the recorder writes it (newline included); `reason` is made one line.
pub fn gap_line(received_ms: i64, endpoint: &str, reason: &str) -> String {
    let reason: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!("{received_ms} {GAP} {endpoint} {reason}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split() {
        assert_eq!(split("  \n"), Line::Blank);
        assert_eq!(split("pong\n"), Line::Frame { received_ms: None, text: "pong" });
        assert_eq!(split("{\"arg\":1}"), Line::Frame { received_ms: None, text: "{\"arg\":1}" });
        assert_eq!(
            split("1765108800123 {\"a\": 1}\n"),
            Line::Frame { received_ms: Some(1_765_108_800_123), text: "{\"a\": 1}" }
        );
        assert_eq!(split("17 pong"), Line::Frame { received_ms: Some(17), text: "pong" });
        let gap = gap_line(5, "public", "closed\nby OKX");
        assert_eq!(gap, "5 #gap public closed by OKX\n");
        assert_eq!(split(&gap), Line::Gap { received_ms: Some(5), what: "public closed by OKX" });
        assert_eq!(split("#gap"), Line::Gap { received_ms: None, what: "" });
        assert!(matches!(split("5 #gapless"), Line::Frame { .. }));
        assert!(matches!(split("99999999999999999999 {}"), Line::Frame { received_ms: None, .. }));
        assert_eq!(
            split("7 #continues okx-public-2026-12-07T12.jsonl.zst\n"),
            Line::Continues { from: "okx-public-2026-12-07T12.jsonl.zst" }
        );
    }
}
