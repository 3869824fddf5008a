//! Checking a recorded feed (one raw OKX WebSocket frame per line, as received, optionally after
//! its receive time; gap lines where the recorder reconnected: [`super::recorded`]) with the
//! same parser and book builder the host runs: what `tradebox feed check FILE` reports.

use super::book::{Action, BookError, OrderBook};
use super::message::{Data, Frame, parse};
use super::recorded::{Line, split};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedReport {
    /// Non-empty lines read.
    pub messages: u64,
    /// Lines that did not parse (channels the host does not read are not errors).
    pub parse_errors: u64,
    /// Book pushes applied to a book (snapshots and updates).
    pub books_checked: u64,
    /// Books whose checksum did not match after a push.
    pub checksum_mismatches: u64,
    /// Updates that did not continue their book's chain (or came with no snapshot).
    pub sequence_gaps: u64,
    /// Lines of channels the host does not read, by channel.
    pub unknown_channels: BTreeMap<String, u64>,
    /// The first problems found, with their line numbers.
    pub samples: Vec<String>,
    /// Gap lines (the recorder lost its connection there; every book starts afresh after one).
    pub gaps: u64,
}

impl fmt::Display for FeedReport {
    /// The one summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "messages {}, parse errors {}, books checked {}, checksum mismatches {}, sequence gaps {}",
            self.messages, self.parse_errors, self.books_checked, self.checksum_mismatches, self.sequence_gaps
        )?;
        // Only when there are any: a recording without reconnects reads as it always did.
        if self.gaps > 0 {
            write!(f, ", reconnect gaps {}", self.gaps)?;
        }
        Ok(())
    }
}

const SAMPLES: usize = 10;

/// Runs a check over lines.
#[derive(Default)]
pub struct FeedCheck {
    report: FeedReport,
    books: HashMap<(String, String), OrderBook>,
    /// The file goes on from another (`#continues`): a book's updates before its first
    /// snapshot here belong to a chain that began there.
    continued: bool,
}

impl FeedCheck {
    /// A fresh check.
    pub fn new() -> Self {
        Self::default()
    }

    fn sample(&mut self, line_no: usize, what: String) {
        if self.report.samples.len() < SAMPLES {
            self.report.samples.push(format!("line {line_no}: {what}"));
        }
    }

    /// Reads one line (`line_no` counts from 1, for the samples).
    pub fn line(&mut self, line_no: usize, line: &str) {
        let line = match split(line) {
            Line::Blank => return,
            Line::Gap { .. } => {
                // The chain of every book is broken here; the snapshots after the reconnect
                // start them again, so nothing before the gap is held against them.
                self.report.gaps += 1;
                self.books.clear();
                self.continued = false;
                return;
            }
            Line::Continues { .. } => {
                self.continued = true;
                return;
            }
            Line::Frame { text, .. } => text,
        };
        self.report.messages += 1;
        let frame = match parse(line) {
            Ok(f) => f,
            Err(e) if e.kind == "unknown-channel" => {
                let channel = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["arg"]["channel"].as_str().map(str::to_string))
                    .unwrap_or_default();
                *self.report.unknown_channels.entry(channel).or_default() += 1;
                return;
            }
            Err(e) => {
                self.report.parse_errors += 1;
                self.sample(line_no, format!("parse error: {e}"));
                return;
            }
        };
        let Frame::Push(push) = frame else { return };
        let Data::Books(items) = &push.data else { return };
        // `books` and the tbt books carry snapshots then updates; the others are whole each time.
        let update = push.action.as_deref() == Some("update");
        let key = (push.arg.channel.clone(), push.arg.inst_id.clone());
        for d in items {
            let fresh = !self.books.contains_key(&key);
            let book = self.books.entry(key.clone()).or_default();
            let action = if update { Action::Update } else { Action::Snapshot };
            match book.apply(action, d) {
                Ok(()) => self.report.books_checked += 1,
                Err(BookError::NoSnapshot) if fresh && self.continued => {
                    // The tail of the chain the earlier file held; the fresh snapshot follows.
                    self.books.remove(&key);
                }
                Err(BookError::Checksum { expected, computed }) => {
                    self.report.books_checked += 1;
                    self.report.checksum_mismatches += 1;
                    self.sample(
                        line_no,
                        format!("{} {}: checksum {expected} expected, {computed} computed", key.0, key.1),
                    );
                }
                Err(e @ (BookError::Gap { .. } | BookError::NoSnapshot)) => {
                    self.report.sequence_gaps += 1;
                    self.sample(line_no, format!("{} {}: {e}", key.0, key.1));
                }
            }
        }
    }

    /// The findings.
    pub fn finish(self) -> FeedReport {
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_feed_and_a_broken_one() {
        let path = format!("{}/tests/data/tardis_okx_v5_msgs.jsonl", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("fixture");
        let mut check = FeedCheck::new();
        for (i, line) in text.lines().enumerate() {
            check.line(i + 1, line);
        }
        let report = check.finish();
        // The fixture keeps excerpts of real books: updates without their snapshots (gaps) and
        // snapshots cut short by its authors, so the checksums OKX sent no longer match (the
        // checksum itself is checked against okx-v5.md's vectors in `book`).
        assert_eq!(
            report.to_string(),
            "messages 39, parse errors 0, books checked 4, checksum mismatches 2, sequence gaps 4"
        );
        assert!(report.unknown_channels.contains_key("mark-price"));

        let broken = [
            r#"{"arg":{"channel":"books","instId":"X"},"action":"snapshot","data":[{"asks":[["2","1","0","1"]],"bids":[["1","1","0","1"]],"ts":"1","checksum":0,"prevSeqId":-1,"seqId":10}]}"#,
            r#"{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[["1","2","0","1"]],"ts":"2","checksum":0,"prevSeqId":10,"seqId":11}]}"#,
            r#"{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[["1","3","0","1"]],"ts":"3","checksum":0,"prevSeqId":12,"seqId":13}]}"#,
            r#"{"arg":{"channel":"books","instId":"X"},"action":"snapshot","data":[{"asks":[["2","1","0","1"]],"bids":[["1","1","0","1"]],"ts":"1","checksum":12345,"prevSeqId":-1,"seqId":20}]}"#,
            r#"{"arg":{"channel":"tickers","instId":"X"},"data":[{"instId":"X","#,
            "",
        ];
        let mut check = FeedCheck::new();
        for (i, line) in broken.iter().enumerate() {
            check.line(i + 1, line);
        }
        let report = check.finish();
        assert_eq!(
            report.to_string(),
            "messages 5, parse errors 1, books checked 3, checksum mismatches 1, sequence gaps 1"
        );
        assert!(report.samples.iter().any(|s| s.starts_with("line 3:") && s.contains("gap")), "{:?}", report.samples);
    }
    #[test]
    fn timestamped_lines_and_a_gap_that_restarts_the_books() {
        let book = |action: &str, prev: i64, seq: i64| {
            format!(
                r#"{{"arg":{{"channel":"books","instId":"X"}},"action":"{action}","data":[{{"asks":[["2","1","0","1"]],"bids":[["1","1","0","1"]],"ts":"1","checksum":0,"prevSeqId":{prev},"seqId":{seq}}}]}}"#
            )
        };
        // Across the gap the chain breaks (50 does not follow 11) and a fresh snapshot follows.
        let lines = [
            format!("1000 {}", book("snapshot", -1, 10)),
            format!("1001 {}", book("update", 10, 11)),
            crate::ws::recorded::gap_line(1002, "public", "connection closed").trim_end().to_string(),
            format!("1003 {}", book("snapshot", -1, 50)),
            format!("1004 {}", book("update", 50, 51)),
            "1005 pong".to_string(),
        ];
        let mut check = FeedCheck::new();
        for (i, line) in lines.iter().enumerate() {
            check.line(i + 1, line);
        }
        let report = check.finish();
        assert_eq!(
            report.to_string(),
            "messages 5, parse errors 0, books checked 4, checksum mismatches 0, sequence gaps 0, reconnect gaps 1"
        );
        // A file that goes on from another: the old chain's tail before the new snapshot is no
        // gap; without the header it is one.
        let tail = [format!("2 {}", book("update", 11, 12)), format!("3 {}", book("snapshot", -1, 40))];
        for (header, gaps) in [("1 #continues earlier.jsonl.zst", 0), ("", 1)] {
            let mut check = FeedCheck::new();
            check.line(1, header);
            for (i, line) in tail.iter().enumerate() {
                check.line(i + 2, line);
            }
            assert_eq!(check.finish().sequence_gaps, gaps, "{header:?}");
        }
    }
}
