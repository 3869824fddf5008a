//! `tradebox feed check`'s line reader, `tradebox_okx::ws::check::FeedCheck::line`, on arbitrary
//! lines, read the way the command reads its file (`BufRead::lines`, stopping at a line that is
//! not UTF-8).
//!
//! Invariants: nothing panics; the report counts every frame line once (a recorded line's
//! `RECV_MS ` prefix taken off, `#gap` lines counted as gaps and `#continues` lines as nothing,
//! as `tradebox_okx::ws::recorded::split` reads them); its parse errors and unknown channels
//! are exactly the frames the frame parser refuses as such; checksum
//! mismatches are among the books checked; at most ten samples are kept, each naming a line that
//! was read; and the summary line prints.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::BufRead;
use tradebox_okx::ws::check::FeedCheck;
use tradebox_okx::ws::message::parse;
use tradebox_okx::ws::recorded::{Line, split};

fuzz_target!(|data: &[u8]| {
    let mut check = FeedCheck::new();
    let (mut messages, mut parse_errors, mut unknown, mut gaps) = (0u64, 0u64, 0u64, 0u64);
    let mut read = 0;
    for (i, line) in data.lines().enumerate() {
        let Ok(line) = line else { break };
        check.line(i + 1, &line);
        read = i + 1;
        let text = match split(&line) {
            Line::Blank | Line::Continues { .. } => continue,
            Line::Gap { .. } => {
                gaps += 1;
                continue;
            }
            Line::Frame { text, .. } => text,
        };
        messages += 1;
        match parse(text) {
            Err(e) if e.kind == "unknown-channel" => unknown += 1,
            Err(_) => parse_errors += 1,
            Ok(_) => {}
        }
    }
    let report = check.finish();
    assert_eq!(report.messages, messages);
    assert_eq!(report.gaps, gaps);
    assert_eq!(report.parse_errors, parse_errors);
    assert_eq!(report.unknown_channels.values().sum::<u64>(), unknown);
    assert!(report.checksum_mismatches <= report.books_checked);
    assert!(report.samples.len() <= 10);
    for s in &report.samples {
        let n: usize = s
            .strip_prefix("line ")
            .and_then(|s| s.split_once(':'))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| panic!("a sample without its line number: {s:?}"));
        assert!((1..=read).contains(&n), "{s:?} names a line that was not read");
    }
    let _ = report.to_string();
});
