//! `tradebox doctor`: what would stop (or weaken) a host on this machine with this config,
//! found before it trades, each finding with the fix in words.
//!
//! It never trades or changes anything on the account: it does not start the OKX venue (whose
//! start cancels orders an earlier run left and arms the dead man's switch), but talks to the
//! exchange with the okx crate's REST and WebSocket clients directly, reading only. Every
//! network step is bounded by the config's `timeout_ms` and all of them together by [`TOTAL`],
//! so an unreachable host gives failures, never a hang; a step whose premise failed is
//! reported as skipped with the reason, not attempted.
//!
//! - this file: the report (checks, rendering), the config and the local checks;
//! - `okx`: the checks against OKX (or `tradebox sim`).

mod okx;

use crate::config::{Config, VenueKind};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// The most the remote checks take together: steps still to run when it is spent are skipped.
pub const TOTAL: Duration = Duration::from_secs(60);

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not run: something it needs failed or is not configured (the detail says what).
    Skip,
    /// Fine.
    Ok,
    /// Works, but weaker or riskier than it should be.
    Warn,
    /// The host would not start, or would fail at its first order.
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// What a check is about; the name an operator reads in the report and a tool in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Item {
    /// The config file.
    Config,
    /// What kind of venue the config names.
    Venue,
    /// OKX's site and the hosts it names.
    Region,
    /// The REST host answers `/public/time`.
    Rest,
    /// The local clock against OKX's.
    Clock,
    /// The API credentials can be read.
    Credentials,
    /// OKX accepts the key.
    Key,
    /// What the key may do.
    Permissions,
    /// Whether the key is bound to IP addresses.
    IpBinding,
    /// The configured instruments are listed and tradable.
    Instruments,
    /// Account and position mode, and what they mean for each instrument's orders.
    Modes,
    /// The sub-account's order cap.
    RateLimit,
    /// `/ws/v5/public`.
    WsPublic,
    /// `/ws/v5/business`.
    WsBusiness,
    /// `/ws/v5/private`, logged in.
    WsPrivate,
    /// Certificate pins.
    Pins,
    /// Whether plugins over their CPU share can be put in the background scheduling class.
    Scheduling,
}

impl Item {
    /// The name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Item::Config => "config",
            Item::Venue => "venue",
            Item::Region => "region",
            Item::Rest => "rest",
            Item::Clock => "clock",
            Item::Credentials => "credentials",
            Item::Key => "key",
            Item::Permissions => "permissions",
            Item::IpBinding => "ip-binding",
            Item::Instruments => "instruments",
            Item::Modes => "modes",
            Item::RateLimit => "rate-limit",
            Item::WsPublic => "ws-public",
            Item::WsBusiness => "ws-business",
            Item::WsPrivate => "ws-private",
            Item::Pins => "pins",
            Item::Scheduling => "scheduling",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: Item,
    /// How it went.
    pub status: Status,
    /// What was found (never a secret).
    pub detail: String,
    /// What to do about it, when it is not ok.
    pub fix: Option<String>,
}

impl Check {
    /// A check that passed.
    pub fn ok(name: Item, detail: impl Into<String>) -> Self {
        Self { name, status: Status::Ok, detail: detail.into(), fix: None }
    }

    /// A weakness, with its fix.
    pub fn warn(name: Item, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name, status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }

    /// A failure, with its fix.
    pub fn fail(name: Item, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }

    /// Not run, and why.
    pub fn skip(name: Item, why: impl Into<String>) -> Self {
        Self { name, status: Status::Skip, detail: why.into(), fix: None }
    }
}

/// Every finding, in the order checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The worst status of any check (`ok` when every check passed or was skipped).
    pub status: Status,
    /// The findings.
    pub checks: Vec<Check>,
}

impl Report {
    /// A report of `checks`.
    pub fn new(checks: Vec<Check>) -> Self {
        let status = checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok).max(Status::Ok);
        Self { status, checks }
    }

    /// Whether any check failed (the command then exits 1; warnings alone do not).
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }

    /// One aligned line per check (`ok   clock  offset +12 ms, ...`), the fix on the line
    /// below, then a count.
    pub fn render(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.name().len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            // Details carry text from servers (OKX's messages, close reasons): one line,
            // control characters escaped, cut, before it reaches a terminal.
            let detail = crate::logging::plugin_text(c.detail.as_str());
            let _ = writeln!(out, "{:<4} {:<width$}  {detail}", c.status.word(), c.name.name());
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "{:<4} {:<width$}  fix: {fix}", "", "");
            }
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "{}: {} failed, {} warnings, {} ok, {} skipped",
            self.status.word(),
            count(Status::Fail),
            count(Status::Warn),
            count(Status::Ok),
            count(Status::Skip)
        );
        out
    }
}

/// Runs every check that `config` (none: the local ones only) allows.
pub async fn run(config: Option<&Path>) -> Report {
    let mut checks = Vec::new();
    match config {
        None => checks.push(Check::skip(
            Item::Config,
            "no --config given: only this machine was checked, nothing remote (give the host's config to check the venue)",
        )),
        Some(path) => match Config::load(path) {
            Err(e) => {
                // The first line only: a parse error goes on to quote the line at fault, which
                // for a file given by mistake (the credentials) would be a secret.
                let first = format!("{e:#}").lines().next().unwrap_or_default().to_string();
                checks.push(Check::fail(
                    Item::Config,
                    first,
                    "correct the config file (the message names the section or line at fault)",
                ));
                checks.push(Check::skip(Item::Venue, "the config could not be read"));
            }
            Ok(config) => {
                checks.push(Check::ok(Item::Config, format!("{} read and valid", path.display())));
                venue(&config, &mut checks).await;
            }
        },
    }
    checks.push(scheduling());
    Report::new(checks)
}

async fn venue(config: &Config, checks: &mut Vec<Check>) {
    match config.venue.kind {
        VenueKind::Sim => checks.push(Check::ok(
            Item::Venue,
            "kind = \"sim\": the in-process simulated venue needs no checks beyond the local ones",
        )),
        VenueKind::Okx => match config.okx() {
            Ok(okx) => okx::checks(&okx, checks).await,
            Err(e) => checks.push(Check::fail(Item::Venue, format!("{e:#}"), "correct [venue.okx]")),
        },
        VenueKind::Paper => match config.paper() {
            Ok(paper) => paper_checks(&paper, checks).await,
            Err(e) => checks.push(Check::fail(Item::Venue, format!("{e:#}"), "correct [venue.paper]")),
        },
    }
}

/// A paper venue: its instrument list, its public feed (connected once), the recording's
/// directory; no keys.
async fn paper_checks(paper: &crate::venue::paper::PaperConfig, checks: &mut Vec<Check>) {
    checks.push(match crate::venue::paper::load_instruments(paper).await {
        Ok(specs) => Check::ok(
            Item::Venue,
            format!(
                "kind = \"paper\": {} listed at {}, no keys",
                match specs.len() {
                    1 => "the instrument".to_string(),
                    n => format!("{n} instruments"),
                },
                paper.rest_base(),
            ),
        ),
        Err(e) => Check::fail(Item::Venue, e.to_string(), "correct [venue.paper]"),
    });
    let url = format!("{}/ws/v5/public", paper.ws_base().trim_end_matches('/'));
    let config = tradebox_okx::ws::ClientConfig::new(url.clone(), Default::default());
    checks.push(match tokio::time::timeout(std::time::Duration::from_secs(10), okx::ws_connect(config)).await {
        Ok(Ok(())) => Check::ok(Item::WsPublic, format!("connected: {url}")),
        Ok(Err(why)) => {
            Check::fail(Item::WsPublic, format!("{url}: {why}"), "check ws_url (or the region) and the network")
        }
        Err(_) => Check::fail(
            Item::WsPublic,
            format!("{url}: no answer within 10 s"),
            "check ws_url (or the region) and the network",
        ),
    });
    if let Some(dir) = &paper.record {
        checks.push(match crate::venue::paper::writable(dir) {
            Ok(()) => Check::ok(Item::Venue, format!("record = {:?}: the feed can be recorded there", dir.display())),
            Err(why) => Check::fail(Item::Venue, why, "give [venue.paper] record a directory this user can write"),
        });
    }
}

/// Whether a plugin over its CPU share can be moved to the background class (and back), as
/// `plugin::priority` does; without it such a plugin only waits, delaying its neighbours on a
/// busy machine.
fn scheduling() -> Check {
    if !cfg!(target_os = "linux") {
        return Check::skip(Item::Scheduling, "scheduling classes are a Linux feature; plugins over their share wait");
    }
    if crate::plugin::priority::can_leave() {
        Check::ok(Item::Scheduling, "plugins over their CPU share can run in the background class (SCHED_IDLE)")
    } else {
        Check::warn(
            Item::Scheduling,
            "this process may not take a thread back out of the background class (no CAP_SYS_NICE, RLIMIT_NICE < 20): \
             a plugin over its CPU share will only wait, and can delay its neighbours on a busy machine",
            "run the host with CAP_SYS_NICE, or with RLIMIT_NICE 20: `LimitNICE=20` in its systemd unit, or \
             `ulimit -e 20` in the shell that starts it (a host started by systemd gets the unit's limits, not this shell's)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report::new(vec![
            Check::ok(Item::Clock, "offset +12 ms, round trip 3 ms"),
            Check::warn(Item::IpBinding, "not bound", "bind it"),
            Check::skip(Item::RateLimit, "the key was refused"),
        ])
    }

    #[test]
    fn lines_are_aligned_and_fixes_follow_their_check() {
        let text = sample().render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ok   clock       offset +12 ms, round trip 3 ms");
        assert_eq!(lines[1], "warn ip-binding  not bound");
        assert_eq!(lines[2], "                 fix: bind it");
        assert_eq!(lines[3], "skip rate-limit  the key was refused");
        assert_eq!(lines[4], "warn: 0 failed, 1 warnings, 1 ok, 1 skipped");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn the_worst_status_wins_and_only_a_failure_fails() {
        let report = sample();
        assert_eq!(report.status, Status::Warn);
        assert!(!report.failed(), "warnings alone do not fail");
        let mut checks = report.checks;
        checks.push(Check::fail(Item::Rest, "could not reach", "start it"));
        let report = Report::new(checks);
        assert_eq!(report.status, Status::Fail);
        assert!(report.failed());
        assert_eq!(Report::new(vec![Check::skip(Item::Config, "none")]).status, Status::Ok, "skips alone are ok");
    }

    #[test]
    fn json_names_statuses_and_items_as_printed() {
        let json = serde_json::to_value(sample()).expect("json");
        assert_eq!(json["status"], "warn");
        assert_eq!(json["checks"][1]["name"], "ip-binding");
        assert_eq!(json["checks"][1]["status"], "warn");
        assert_eq!(json["checks"][1]["fix"], "bind it");
        assert_eq!(json["checks"][0]["fix"], serde_json::Value::Null);
        for item in [Item::WsPrivate, Item::RateLimit, Item::IpBinding] {
            assert_eq!(serde_json::to_value(item).expect("item"), item.name());
        }
    }

    #[tokio::test]
    async fn without_a_config_only_local_checks_run() {
        let report = run(None).await;
        let names: Vec<Item> = report.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, [Item::Config, Item::Scheduling]);
        assert_eq!(report.checks[0].status, Status::Skip);
        assert!(report.checks[0].detail.contains("nothing remote"), "{}", report.checks[0].detail);
    }

    #[tokio::test]
    async fn a_sim_config_needs_no_remote_checks_and_a_bad_one_fails() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("tradebox.toml");
        std::fs::write(&path, "[venue]\nkind = \"sim\"\n").expect("write");
        let report = run(Some(&path)).await;
        assert_eq!(report.checks[1].name, Item::Venue);
        assert_eq!(report.checks[1].status, Status::Ok);
        std::fs::write(&path, "[venue]\nkind = \"okx\"\n[venue.okx]\ninstruments = []\n").expect("write");
        let report = run(Some(&path)).await;
        assert!(report.failed());
        assert_eq!((report.checks[0].name, report.checks[0].status), (Item::Config, Status::Fail));
        assert!(report.checks[0].detail.contains("instruments is empty"), "{}", report.checks[0].detail);
        assert_eq!(report.checks[1].status, Status::Skip);
        let missing = run(Some(&dir.path().join("nope.toml"))).await;
        assert!(missing.failed() && missing.checks[0].detail.contains("nope.toml"), "{missing:?}");
    }
}
