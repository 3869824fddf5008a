//! The checks against OKX (or `tradebox sim`), with the okx crate's clients and nothing of the
//! venue's start-up that acts on the account: reads only (`/public/time`, `/account/config`,
//! `/public/instruments`, `/trade/account-rate-limit`), and WebSocket connections that
//! subscribe to nothing and are dropped once connected (and, on `/private`, logged in).
//!
//! - this file: the order and dependencies of the checks, the REST ones, what OKX's
//!   authentication codes mean;
//! - [`endpoints`]: the WebSocket endpoints and the certificate pins.

mod endpoints;
pub(super) use endpoints::connect as ws_connect;

use super::{Check, Item, TOTAL};
use crate::venue::okx::convert::TradeModes;
use crate::venue::okx::{self as venue, OkxConfig, Region, convert};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tradebox_core::{InstrumentId, InstrumentKind, InstrumentSpec};
use tradebox_okx::limits::{LimiterConfig, ORDER_CAP};
use tradebox_okx::model::{AccountConfig, AccountRateLimit, Instrument, PositionMode};
use tradebox_okx::ws::Login;
use tradebox_okx::{ClockSync, Credentials, OkxError, RestClient, RestConfig, Signer};

/// Beyond this offset the clock is worth fixing, though requests carry corrected time.
const CLOCK_WARN_MS: i64 = 1_000;
/// Near OKX's 30 s window: a clock this far off that jumps or drifts between the host's
/// re-syncs gets requests refused (50102) and WebSocket logins too (60006).
const CLOCK_FAIL_MS: i64 = 25_000;

/// The time left for network steps: each gets the config's timeout, all of them [`TOTAL`].
struct Budget {
    end: Instant,
    step: Duration,
}

/// Why a bounded step has no answer.
#[derive(Debug, Clone, Copy)]
enum Late {
    /// The total bound ran out before the step could start.
    Spent,
    /// No answer within this long.
    After(Duration),
}

impl Budget {
    fn new(timeout_ms: u64) -> Self {
        Self { end: Instant::now() + TOTAL, step: Duration::from_millis(timeout_ms.max(100)) }
    }

    async fn bounded<T>(&self, step: impl Future<Output = T>) -> Result<T, Late> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Late::Spent);
        }
        let bound = left.min(self.step);
        tokio::time::timeout(bound, step).await.map_err(|_| Late::After(bound))
    }
}

impl Late {
    /// The check of a step that got no answer: a failure, or a skip when it never started.
    fn check(self, name: Item, what: &str, fix: &str) -> Check {
        match self {
            // Not checked is not ok: said as a warning, so a slow network never passes quietly.
            Late::Spent => Check::warn(
                name,
                format!("not checked: the doctor's {} s bound ran out", TOTAL.as_secs()),
                "run the doctor again; if it recurs, the network to OKX is slow (see the clock line)",
            ),
            Late::After(d) => Check::fail(name, format!("{what}: no answer within {} ms", d.as_millis()), fix),
        }
    }
}

const REACH_FIX: &str = "check that the host is up and reachable from this machine (firewall, proxy, DNS; OKX's \
     WebSocket port is 8443); `region`, `rest_url` and `ws_url` in [venue.okx] name it; for `tradebox sim`, that it \
     runs at this address";

const PIN_FIX: &str = "if OKX changed its certificates, check the new ones out of band and update [venue.okx.pins] \
     (with the pins unset, the doctor prints what the hosts present); otherwise the connection is being intercepted: \
     do not trade from this network";

/// Every OKX check, in order; a step whose premise failed is skipped with the reason.
pub(super) async fn checks(okx: &OkxConfig, out: &mut Vec<Check>) {
    let budget = Budget::new(okx.timeout_ms);
    out.push(region(okx));
    let (rest_tls, ws_tls) = match okx.pins.settings() {
        Ok(tls) => tls,
        Err(e) => return out.push(Check::fail(Item::Pins, e, "correct [venue.okx.pins]")),
    };
    // A credentials command may take seconds: off the async workers.
    let read = {
        let okx = okx.clone();
        tokio::task::spawn_blocking(move || credentials(&okx)).await
    };
    let (credentials_check, credentials) = match read {
        Ok(read) => read,
        Err(e) => (Check::fail(Item::Credentials, format!("not read: {e}"), "run the doctor again"), None),
    };
    let key_hint = credentials.as_ref().map(Credentials::key_hint);
    let signer = credentials.map(Signer::new);
    let config = RestConfig { base_url: okx.rest_base(), demo: okx.demo, timeout: budget.step, tls: rest_tls.clone() };
    let rest = match RestClient::new(config, signer.clone(), Arc::new(ClockSync::new())) {
        Ok(rest) => rest,
        Err(e) => return out.push(Check::fail(Item::Rest, e.to_string(), "correct rest_url and [venue.okx.pins]")),
    };

    let reached = reach(&rest, &budget).await;
    match &reached {
        Ok(()) => {
            out.push(Check::ok(Item::Rest, format!("{} answered GET /api/v5/public/time", okx.rest_base())));
            out.push(clock(&rest, budget.step));
        }
        Err(e) => {
            out.push(e.check(Item::Rest, &okx.rest_base(), okx));
            out.push(Check::skip(Item::Clock, "the REST host was not reached (see rest)"));
        }
    }
    out.push(credentials_check);

    // What the key line says, and the account or why there is none (for the lines after).
    let skipped = |why: &str| (Check::skip(Item::Key, why), Err(why.to_string()));
    let what = "GET /api/v5/account/config";
    let (key, account): (Check, Result<AccountConfig, String>) = match (&reached, &signer) {
        (Err(_), _) => skipped("the REST host was not reached (see rest)"),
        (_, None) => skipped("no credentials (see credentials)"),
        (Ok(()), Some(_)) => match budget.bounded(rest.account_config()).await {
            Ok(Ok(a)) => (key_accepted(&a, key_hint.as_deref().unwrap_or("?"), okx.demo), Ok(a)),
            Ok(Err(e)) => {
                (Failure::Okx(e).check(Item::Key, what, okx), Err("the key was not accepted (see key)".into()))
            }
            Err(late) => {
                (Failure::Late(late).check(Item::Key, what, okx), Err("the key was not checked (see key)".into()))
            }
        },
    };
    out.push(key);
    match &account {
        Ok(a) => {
            out.push(permissions(a, okx.allow_withdraw_key));
            out.push(ip_binding(a));
        }
        Err(why) => {
            out.push(Check::skip(Item::Permissions, why.clone()));
            out.push(Check::skip(Item::IpBinding, why.clone()));
        }
    }

    let specs = match &reached {
        Ok(()) => {
            let (check, specs) = instruments(&rest, okx, &budget).await;
            out.push(check);
            specs
        }
        Err(_) => {
            out.push(Check::skip(Item::Instruments, "the REST host was not reached (see rest)"));
            Vec::new()
        }
    };
    // From the config, not from what OKX listed: a swap that failed to list is still one the
    // host would trade.
    let swaps = okx.instruments.iter().any(|s| venue::inst_type(s) == "SWAP");
    match &account {
        Ok(a) => {
            let complete = specs.len() == okx.instruments.len();
            out.push(modes(a, okx, &specs, complete));
            out.push(rate_limit(&rest, &budget, swaps).await);
        }
        Err(why) => {
            out.push(Check::skip(Item::Modes, why.clone()));
            out.push(Check::skip(Item::RateLimit, why.clone()));
        }
    }

    let login = match (&signer, &account) {
        (None, _) => Err("no credentials to log in with (see credentials)".to_string()),
        (Some(_), Err(why)) if reached.is_ok() => Err(why.clone()),
        (Some(signer), _) => Ok(Login { signer: signer.clone().into(), clock: rest.clock().clone() }),
    };
    let ws = endpoints::websockets(okx, &ws_tls, login, &budget).await;
    out.extend(ws.iter().map(|(check, _)| check.clone()));
    out.push(endpoints::pins(okx, (&rest_tls, &ws_tls), &reached, &ws, &budget).await);
}

/// The site, and the hosts the host would talk to.
fn region(okx: &OkxConfig) -> Check {
    let name = region_name(okx.region);
    let env = if okx.demo { "demo trading" } else { "live" };
    let given = |url: &str| if url.is_empty() { "" } else { " (set in the config)" };
    let detail = format!(
        "{name}, {env}: REST {}{}, WebSocket {}{}",
        okx.rest_base(),
        given(&okx.rest_url),
        okx.ws_base(),
        given(&okx.ws_url)
    );
    if okx.websocket && !okx.rest_url.is_empty() && okx.ws_url.is_empty() {
        return Check::warn(
            Item::Region,
            format!("{detail}: REST goes to rest_url but the WebSocket feeds to the region's host"),
            "set ws_url as well (for `tradebox sim`: ws://127.0.0.1:PORT), or websocket = false",
        );
    }
    Check::ok(Item::Region, detail)
}

/// The region as the config spells it.
fn region_name(region: Region) -> &'static str {
    match region {
        Region::Global => "global",
        Region::Eea => "eea",
        Region::Us => "us",
    }
}

/// Reads the credentials as `run` does, after the same guards.
fn credentials(okx: &OkxConfig) -> (Check, Option<Credentials>) {
    if let Err(e) = crate::process::protect_secrets() {
        let fix = "run where a process may turn off its core dumps and ptrace access, as the host must";
        return (Check::fail(Item::Credentials, format!("not read: {e}"), fix), None);
    }
    let source = okx.credentials_source();
    match okx.credentials() {
        Ok(c) => (Check::ok(Item::Credentials, format!("key {} read from {source}", c.key_hint())), Some(c)),
        Err(e) => {
            let fix = match &e {
                tradebox_okx::CredentialsError::TooOpen { path, .. } => format!("chmod 600 {}", path.display()),
                tradebox_okx::CredentialsError::Command { .. } => {
                    "run credentials_command by hand: it must exit 0 within 15 s and print the OKX_API_KEY=, \
                     OKX_API_SECRET= and OKX_API_PASSPHRASE= lines"
                        .to_string()
                }
                _ => "write OKX_API_KEY=, OKX_API_SECRET= and OKX_API_PASSPHRASE= lines to an owner-only file \
                      (chmod 600) named by credentials_file in [venue.okx], or export those variables"
                    .to_string(),
            };
            (Check::fail(Item::Credentials, e.to_string(), fix), None)
        }
    }
}

/// Clock samples, as the venue takes them at start.
async fn reach(rest: &RestClient, budget: &Budget) -> Result<(), Failure> {
    for _ in 0..tradebox_okx::clock::SAMPLES {
        match budget.bounded(rest.sync_clock()).await {
            Ok(Ok(_)) => {}
            // One answer is enough to call the host reachable; the clock uses what it has.
            Ok(Err(_)) | Err(_) if !rest.clock().samples().is_empty() => break,
            Ok(Err(e)) => return Err(Failure::Okx(e)),
            Err(late) => return Err(Failure::Late(late)),
        }
    }
    Ok(())
}

/// The offset to OKX's clock and the round trip, from the samples [`reach`] took.
fn clock(rest: &RestClient, step: Duration) -> Check {
    let samples = rest.clock().samples();
    let mut rtts: Vec<i64> = samples.iter().map(|s| s.rtt_ms).collect();
    rtts.sort_unstable();
    let rtt = rtts.get(rtts.len() / 2).copied().unwrap_or(0);
    clock_check(rest.clock().offset_ms(), rtt, samples.len(), step)
}

fn clock_check(offset_ms: i64, rtt_ms: i64, samples: usize, step: Duration) -> Check {
    let detail = format!("offset {offset_ms:+} ms, round trip {rtt_ms} ms (median of {samples})");
    let ntp = "synchronise the machine's clock (NTP: `timedatectl set-ntp true`, chrony or ntpd)";
    if offset_ms.unsigned_abs() >= CLOCK_FAIL_MS.unsigned_abs() {
        return Check::fail(
            Item::Clock,
            format!("{detail}: near OKX's 30 s window, past which requests and logins are refused"),
            ntp,
        );
    }
    if offset_ms.unsigned_abs() > CLOCK_WARN_MS.unsigned_abs() {
        return Check::warn(Item::Clock, format!("{detail}: requests carry corrected time, but the clock is off"), ntp);
    }
    let half = i64::try_from(step.as_millis() / 2).unwrap_or(i64::MAX);
    if rtt_ms > half {
        return Check::warn(
            Item::Clock,
            format!("{detail}: more than half of timeout_ms ({} ms)", step.as_millis()),
            "use a closer network path to OKX, or raise timeout_ms in [venue.okx]",
        );
    }
    Check::ok(Item::Clock, detail)
}

fn key_accepted(account: &AccountConfig, hint: &str, demo: bool) -> Check {
    let env = if demo { "demo" } else { "live" };
    let sub = if account.is_sub_account() { ", a sub-account" } else { "" };
    Check::ok(Item::Key, format!("key {hint} accepted ({env}), account uid {}{sub}", account.uid))
}

fn permissions(account: &AccountConfig, allow_withdraw: bool) -> Check {
    let perm = if account.perm.is_empty() { "none".to_string() } else { account.perm.clone() };
    if !account.can_trade() {
        return Check::fail(
            Item::Permissions,
            format!("perm {perm}: the key cannot trade"),
            "create a key with Trade enabled (OKX: Profile > API keys) and put it in the credentials",
        );
    }
    match (account.can_withdraw(), allow_withdraw) {
        (true, false) => Check::fail(
            Item::Permissions,
            format!("perm {perm}: the key can withdraw funds, which a trading host never needs; the host refuses it"),
            "create a key without Withdraw, or set allow_withdraw_key = true in [venue.okx] if you accept the risk",
        ),
        (true, true) => Check::warn(
            Item::Permissions,
            format!("perm {perm}: the key can withdraw funds (allowed by allow_withdraw_key)"),
            "create a key without Withdraw: whoever gets this one can move the funds out",
        ),
        (false, _) => Check::ok(Item::Permissions, format!("perm {perm}")),
    }
}

fn ip_binding(account: &AccountConfig) -> Check {
    if account.ip_bound() {
        return Check::ok(Item::IpBinding, format!("bound to {}", account.ip));
    }
    Check::warn(
        Item::IpBinding,
        "the key is bound to no IP address: whoever has it can trade from anywhere, and OKX deletes unbound \
         trading keys after 14 days unused",
        "bind the key to this machine's public IP address on OKX (Profile > API keys > Edit)",
    )
}

/// Each configured instrument listed, live and of a kind the host trades.
async fn instruments(rest: &RestClient, okx: &OkxConfig, budget: &Budget) -> (Check, Vec<InstrumentSpec>) {
    let mut listed: HashMap<&'static str, Vec<Instrument>> = HashMap::new();
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for (i, symbol) in okx.instruments.iter().enumerate() {
        let inst_type = venue::inst_type(symbol);
        if !listed.contains_key(inst_type) {
            let what = format!("GET /api/v5/public/instruments?instType={inst_type}");
            match budget.bounded(rest.instruments(inst_type)).await {
                Ok(Ok(all)) => {
                    listed.insert(inst_type, all);
                }
                Ok(Err(e)) => return (Failure::Okx(e).check(Item::Instruments, &what, okx), specs),
                Err(late) => return (Failure::Late(late).check(Item::Instruments, &what, okx), specs),
            }
        }
        let found = listed.get(inst_type).and_then(|all| all.iter().find(|x| &x.inst_id == symbol));
        let Some(instrument) = found else {
            problems.push(format!("{symbol}: not listed among {inst_type} instruments"));
            continue;
        };
        match convert::spec(i as InstrumentId + 1, instrument) {
            Ok(spec) => specs.push(spec),
            Err(problem) => problems.push(format!("{symbol}: {problem}")),
        }
    }
    if problems.is_empty() {
        let names: Vec<&str> = specs.iter().map(|s| s.symbol.as_str()).collect();
        return (Check::ok(Item::Instruments, format!("{} listed and live", names.join(", "))), specs);
    }
    let fix = "correct `instruments` in [venue.okx]: OKX's names (BTC-USDT, BTC-USDT-SWAP) of live spot or linear \
               swap instruments";
    (Check::fail(Item::Instruments, problems.join("; "), fix), specs)
}

/// The account and position mode, and the `tdMode`/`posSide` every order of each instrument
/// will carry, decided by the venue's own functions.
fn modes(account: &AccountConfig, okx: &OkxConfig, specs: &[InstrumentSpec], complete: bool) -> Check {
    let modes = match venue::trade_modes(account, okx) {
        Ok(m) => m,
        Err(e) => {
            let fix = "switch the account to one of OKX's documented modes, or update tradebox to a version that \
                       knows this one";
            return Check::fail(Item::Modes, e.to_string(), fix);
        }
    };
    let head = format!("{} (acctLv {}), {}", modes.level.name(), modes.level.code(), modes.positions.code());
    let configured_swaps: Vec<&str> =
        okx.instruments.iter().filter(|s| venue::inst_type(s) == "SWAP").map(String::as_str).collect();
    let refused = if !modes.level.trades_derivatives() && !configured_swaps.is_empty() {
        Err(format!(
            "the account cannot trade swaps (OKX refuses them with 51010), and the config lists {}",
            configured_swaps.join(", ")
        ))
    } else {
        venue::check_tradable(&modes, specs).map_err(|e| e.to_string())
    };
    if let Err(e) = refused {
        let fix = "switch the account to Futures mode or a margin mode on OKX (Trade > Settings > Account mode), or \
                   take the swaps out of `instruments`";
        return Check::fail(Item::Modes, format!("{head}: {e}"), fix);
    }
    let each: Vec<String> = specs.iter().map(|s| format!("{} {}", s.symbol, implication(&modes, s.kind))).collect();
    let mut detail = if each.is_empty() { head } else { format!("{head}; {}", each.join("; ")) };
    if !complete {
        detail.push_str(" (instruments not listed are left out: see instruments)");
    }
    Check::ok(Item::Modes, detail)
}

/// What the host sends for an instrument of `kind` (see `convert::place_order`).
fn implication(modes: &TradeModes, kind: InstrumentKind) -> String {
    let td = modes.td_mode(kind);
    match (kind, modes.positions) {
        (InstrumentKind::Spot, _) if modes.level.margined_spot() => format!("tdMode {td} (spot is margined here)"),
        (InstrumentKind::Spot, _) => format!("tdMode {td}"),
        (InstrumentKind::Swap, PositionMode::Net) => format!("tdMode {td}, net position (no posSide)"),
        (InstrumentKind::Swap, PositionMode::LongShort) => format!("tdMode {td}, posSide long/short on every order"),
    }
}

async fn rate_limit(rest: &RestClient, budget: &Budget, swaps: bool) -> Check {
    match budget.bounded(rest.account_rate_limit()).await {
        Ok(Ok(limit)) => headroom(&limit, swaps),
        Ok(Err(e)) => Check::warn(
            Item::RateLimit,
            format!("not available: {e}"),
            "nothing to change for the host (its limiter assumes OKX's lowest tier); run the doctor again later to \
             see the account's cap",
        ),
        Err(Late::Spent) => Late::Spent.check(Item::RateLimit, "", ""),
        Err(Late::After(d)) => Check::warn(
            Item::RateLimit,
            format!("GET /api/v5/trade/account-rate-limit: no answer within {} ms", d.as_millis()),
            "run the doctor again; the host's limiter assumes OKX's lowest tier meanwhile",
        ),
    }
}

/// The sub-account's cap on new and amended derivative orders against what the host's limiter
/// assumes (OKX's lowest tier) and lets itself use.
fn headroom(limit: &AccountRateLimit, swaps: bool) -> Check {
    let assumed = Decimal::from(ORDER_CAP.permits);
    let used = (f64::from(ORDER_CAP.permits) * LimiterConfig::default().headroom).floor();
    let Some(cap) = limit.acc_rate_limit else {
        return Check::warn(
            Item::RateLimit,
            "OKX sent no accRateLimit",
            "nothing to change; the host's limiter assumes OKX's lowest tier",
        );
    };
    let ratio = limit.fill_ratio.map_or_else(|| "not assessed".to_string(), |r| r.to_string());
    let detail =
        format!("{cap} new and amended derivative orders per 2 s (fill ratio {ratio}); the host uses at most {used}");
    let fix = |cap: Decimal| {
        format!(
            "keep the plugins' swap orders under {cap} per 2 s together ([risk] max_orders_per_sec, plugin limits), \
             or raise the account's fill ratio"
        )
    };
    if !swaps {
        return Check::ok(Item::RateLimit, format!("{detail}; spot is exempt and no swap is configured"));
    }
    if cap < assumed {
        return Check::warn(
            Item::RateLimit,
            format!("{detail}, which assumes {assumed}: bursts past {cap} get 50061 and back off"),
            fix(cap),
        );
    }
    match limit.next_acc_rate_limit {
        Some(next) if next < cap => Check::warn(
            Item::RateLimit,
            format!("{detail}; OKX will lower the cap to {next} at its next assessment"),
            fix(next),
        ),
        _ => Check::ok(Item::RateLimit, detail),
    }
}

/// What an authentication code means for this config (REST 501xx and WebSocket 600xx).
fn auth_meaning(code: &str, okx: &OkxConfig) -> Option<(String, String)> {
    let region = region_name(okx.region);
    let (meaning, fix) = match code {
        "50111" | "50119" | "60005" | "60032" => (
            "OKX does not know this key".to_string(),
            format!(
                "check OKX_API_KEY; a key of another OKX site is unknown here too (region = \"{region}\" talks to {}: \
                 an EEA account (my.okx.com) needs region = \"eea\", a US one region = \"us\")",
                okx.rest_base()
            ),
        ),
        "50113" | "60007" => (
            "the signature does not match: the secret is not this key's".to_string(),
            "check OKX_API_SECRET (the whole secret shown when the key was created)".to_string(),
        ),
        "50105" | "60024" => (
            "wrong passphrase".to_string(),
            "check OKX_API_PASSPHRASE: the passphrase chosen when the key was created, not the account password"
                .to_string(),
        ),
        "50101" if okx.demo => (
            "demo = true, but this is a live key".to_string(),
            "set demo = false in [venue.okx], or create a key under Demo trading".to_string(),
        ),
        "50101" => (
            "demo = false, but this is a demo-trading key".to_string(),
            "set demo = true in [venue.okx], or use a live key".to_string(),
        ),
        "50110" => (
            "this machine's IP address is not in the key's IP whitelist".to_string(),
            "add this machine's public IP address to the key on OKX, or run the host where the key is bound"
                .to_string(),
        ),
        "50102" | "60004" | "60006" => (
            "OKX refused the timestamp".to_string(),
            "synchronise the machine's clock (NTP) and see the clock line".to_string(),
        ),
        "50100" => ("the key is frozen".to_string(), "see OKX's notice about the key, or create a new one".to_string()),
        "50120" | "50030" => {
            ("the key may not read the account".to_string(), "create a key with Read and Trade permissions".to_string())
        }
        _ => return None,
    };
    Some((meaning, fix))
}

/// A REST step that failed.
enum Failure {
    Okx(OkxError),
    Late(Late),
}

impl Failure {
    fn check(&self, name: Item, what: &str, okx: &OkxConfig) -> Check {
        let e = match self {
            Failure::Late(late) => return late.check(name, what, REACH_FIX),
            Failure::Okx(e) => e,
        };
        if let OkxError::Timeout { timeout_ms } = e {
            // Not "outcome unknown": nothing the doctor sends changes anything.
            return Check::fail(name, format!("{what}: no answer within {timeout_ms} ms"), REACH_FIX);
        }
        if let Some((meaning, fix)) = e.code().and_then(|c| auth_meaning(c, okx)) {
            return Check::fail(name, format!("{what}: {e}: {meaning}"), fix);
        }
        let fix = match e {
            OkxError::NotSent(_) | OkxError::Timeout { .. } | OkxError::Transport(_) => REACH_FIX,
            OkxError::PinMismatch(_) => PIN_FIX,
            OkxError::RateLimited { .. } => {
                "other clients on this IP address or account use OKX's limits: run the doctor again in a moment"
            }
            OkxError::Redirected { .. } | OkxError::Decode { .. } | OkxError::Server { .. } => {
                "rest_url must be OKX's API host (or `tradebox sim`): it answered, but not as OKX does"
            }
            _ => "see OKX's code in its API documentation (error codes), or okx-v5.md",
        };
        Check::fail(name, format!("{what}: {e}"), fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(acct_lv: &str, pos_mode: &str, perm: &str) -> AccountConfig {
        serde_json::from_value(serde_json::json!({
            "uid": "1", "mainUid": "1", "acctLv": acct_lv, "posMode": pos_mode, "perm": perm, "ip": "",
        }))
        .expect("account config")
    }

    fn spec(symbol: &str) -> InstrumentSpec {
        let kind = if symbol.ends_with("-SWAP") { InstrumentKind::Swap } else { InstrumentKind::Spot };
        InstrumentSpec {
            id: 1,
            symbol: symbol.into(),
            kind,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick_size: Decimal::ONE,
            lot_size: Decimal::ONE,
            min_size: Decimal::ONE,
            contract_value: Decimal::ONE,
        }
    }

    fn check_modes(acct_lv: &str, pos_mode: &str, margin: venue::MarginMode) -> Check {
        let okx = OkxConfig { margin_mode: margin, ..OkxConfig::default() };
        modes(&account(acct_lv, pos_mode, "read_only,trade"), &okx, &[spec("BTC-USDT"), spec("BTC-USDT-SWAP")], true)
    }

    #[test]
    fn modes_say_what_each_instrument_is_sent_with() {
        use venue::MarginMode::{Cross, Isolated};
        let c = check_modes("2", "net_mode", Cross);
        assert_eq!(c.status, super::super::Status::Ok, "{c:?}");
        assert_eq!(
            c.detail,
            "Futures mode (acctLv 2), net_mode; BTC-USDT tdMode cash; BTC-USDT-SWAP tdMode cross, net position (no posSide)"
        );
        let c = check_modes("3", "long_short_mode", Isolated);
        assert!(c.detail.contains("BTC-USDT tdMode cross (spot is margined here)"), "{}", c.detail);
        assert!(c.detail.contains("BTC-USDT-SWAP tdMode isolated, posSide long/short on every order"), "{}", c.detail);
    }

    #[test]
    fn swaps_in_spot_mode_fail_with_the_fix() {
        let c = check_modes("1", "", venue::MarginMode::Cross);
        assert_eq!(c.status, super::super::Status::Fail, "{c:?}");
        assert!(c.detail.contains("Spot mode") && c.detail.contains("BTC-USDT-SWAP"), "{}", c.detail);
        assert!(c.fix.as_deref().is_some_and(|f| f.contains("Account mode")), "{c:?}");
        // Spot alone is fine in spot mode.
        let okx = OkxConfig::default();
        let c = modes(&account("1", "", "trade"), &okx, &[spec("BTC-USDT")], true);
        assert_eq!(
            (c.status, c.detail.as_str()),
            (super::super::Status::Ok, "Spot mode (acctLv 1), net_mode; BTC-USDT tdMode cash")
        );
        // A mode this host does not know is refused, not guessed at.
        let c = check_modes("9", "net_mode", venue::MarginMode::Cross);
        assert_eq!(c.status, super::super::Status::Fail, "{c:?}");
    }

    #[test]
    fn permissions_refuse_no_trade_and_withdraw_unless_allowed() {
        use super::super::Status::{Fail, Ok, Warn};
        let status = |perm: &str, allow| permissions(&account("2", "net_mode", perm), allow).status;
        assert_eq!(status("read_only,trade", false), Ok);
        assert_eq!(status("read_only", false), Fail);
        assert_eq!(status("read_only,trade,withdraw", false), Fail);
        assert_eq!(status("read_only,trade,withdraw", true), Warn);
        assert_eq!(ip_binding(&account("2", "net_mode", "trade")).status, Warn);
    }

    #[test]
    fn clock_thresholds() {
        use super::super::Status::{Fail, Ok, Warn};
        let step = Duration::from_secs(5);
        assert_eq!(clock_check(12, 3, 5, step).detail, "offset +12 ms, round trip 3 ms (median of 5)");
        assert_eq!(clock_check(-900, 3, 5, step).status, Ok);
        assert_eq!(clock_check(-1_500, 3, 5, step).status, Warn);
        assert_eq!(clock_check(26_000, 3, 5, step).status, Fail);
        assert_eq!(clock_check(0, 3_000, 5, step).status, Warn, "a round trip over half the timeout");
    }

    #[test]
    fn headroom_against_the_assumed_cap() {
        use super::super::Status::{Ok, Warn};
        let limit = |cap: &str, next: &str| -> AccountRateLimit {
            serde_json::from_value(serde_json::json!({
                "accRateLimit": cap, "fillRatio": "0.2", "mainFillRatio": "0.2", "nextAccRateLimit": next, "ts": "1",
            }))
            .expect("limit")
        };
        assert_eq!(headroom(&limit("1000", ""), true).status, Ok);
        let low = headroom(&limit("500", ""), true);
        assert_eq!(low.status, Warn);
        assert!(low.fix.as_deref().is_some_and(|f| f.contains("under 500")), "{low:?}");
        assert_eq!(headroom(&limit("500", ""), false).status, Ok, "spot is exempt");
        assert_eq!(headroom(&limit("2000", "1000"), true).status, Warn, "a lower cap is coming");
    }

    #[test]
    fn auth_codes_name_the_wrong_part() {
        let okx = OkxConfig::default();
        let fix = |code| auth_meaning(code, &okx).map(|(_, f)| f).unwrap_or_default();
        assert!(fix("50111").contains("region"));
        assert!(fix("50119").contains("region"));
        assert!(fix("50113").contains("OKX_API_SECRET"));
        assert!(fix("60024").contains("OKX_API_PASSPHRASE"));
        assert!(fix("50101").contains("demo = false"), "the default config is demo");
        assert!(fix("50110").contains("IP"));
        assert!(auth_meaning("51000", &okx).is_none());
    }
}
