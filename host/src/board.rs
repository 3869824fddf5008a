//! The operator's recent-activity feed: the last [`Board::LINES`] things the engine reported
//! ([`crate::engine::activity::Activity`]), for the demo's board and tests. The hub only
//! reports; keeping and showing is here.

use std::collections::VecDeque;

use parking_lot::Mutex;

use crate::engine::activity::{Activity, ActivitySink};

/// One line of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Noted {
    /// When, ms (the host's clock).
    pub ts_ms: i64,
    /// Which plugin (`host`, `venue` for the host's own).
    pub plugin: String,
    /// What happened.
    pub what: Activity,
}

/// The ring of recent activity.
#[derive(Debug, Default)]
pub struct Board {
    recent: Mutex<VecDeque<Noted>>,
}

impl Board {
    /// Lines kept.
    pub const LINES: usize = 200;

    /// The last `n` lines, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Noted> {
        let recent = self.recent.lock();
        recent.iter().skip(recent.len().saturating_sub(n)).cloned().collect()
    }
}

impl ActivitySink for Board {
    fn note(&self, ts_ms: i64, plugin: &str, what: Activity) {
        let mut recent = self.recent.lock();
        if recent.len() >= Self::LINES {
            recent.pop_front();
        }
        recent.push_back(Noted { ts_ms, plugin: plugin.to_string(), what });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_in_order() {
        let board = Board::default();
        for i in 0..(Board::LINES + 5) {
            board.note(i as i64, "p", Activity::Log(format!("line {i}")));
        }
        let all = board.recent(usize::MAX);
        assert_eq!(all.len(), Board::LINES);
        assert_eq!(all[0].what.to_string(), "log: line 5");
        let last = board.recent(2);
        assert_eq!(last.iter().map(|n| n.ts_ms).collect::<Vec<_>>(), [203, 204]);
    }
}
