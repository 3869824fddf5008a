//! A hostile plugin used by the host's containment tests. Its config is one word naming the
//! misbehaviour, triggered by the first ticker it receives (so `init` succeeds and the host has
//! to contain it while it is serving):
//!
//! - `spin`: an infinite loop;
//! - `memory-bomb`: allocates (and touches) memory until the host refuses more;
//! - `panic`: panics;
//! - `recursion`: unbounded recursion until the wasm call stack overflows;
//! - `stack-smash`: unbounded recursion with big frames, overflowing the shadow stack that
//!   Rust keeps in linear memory;
//! - `log-flood`: logs two thousand 4 KiB lines per batch;
//! - `order-spam`: tries to place a thousand orders per batch (each at its own price);
//!
//! and, against the risk engine (each on every ticker):
//!
//! - `oversize`: a buy of 1,000 BTC;
//! - `off-band`: a buy 20% above the market;
//! - `duplicate`: the same limit order twice in a row;
//! - `runaway`: a market buy of 0.01, again and again (its position only grows);
//! - `loser`: buys at the ask and sells at the bid, paying the spread and fees every time.
//!
//! and, against hot reload: `fail-init` subscribes (like every mode) and then fails `init`;
//!
//! and, against the host's own resources (containment, round two):
//!
//! - `forge-init`: fails `init` with a message that would forge a host log line (a newline, a
//!   fake timestamp, ANSI colour and OSC escapes);
//! - `cancel-storm`: keeps one resting order and, on every ticker, cancels it 50,000 times and
//!   amends it 50,000 times;
//! - `timer-hog`: 1,023 intervals of 10 ms and a zero-delay timer that sets itself again, each
//!   firing spending about a millisecond of CPU: a plugin that never lets its thread rest;
//! - `sub-churn`: subscribes to and unsubscribes from a second stream 10,000 times per ticker,
//!   then logs how many of its subscriptions so far were accepted;
//! - `view-spin`: keeps one resting order and reads its open orders, positions, balances and
//!   quote 20,000 times per ticker (each read takes a lock the host's own threads take).

use tradebox_sdk::log;
use tradebox_sdk::prelude::*;

struct Misbehave {
    mode: String,
    sink: Vec<Vec<u8>>,
    /// `sub-churn`'s subscriptions tried and accepted so far.
    churned: (u64, u64),
    /// The zero-delay timer of `timer-hog`.
    zero: u64,
}

/// Recursion whose frames live on the wasm call stack: ends in the engine's stack limit.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    // Never true in practice; it only keeps the recursion formally conditional.
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    // Using the result after the call keeps it from becoming a loop.
    std::hint::black_box(recurse(depth + 1)).wrapping_mul(3) ^ depth
}

/// Recursion with an array in each frame: the frames live on the guest's shadow stack in
/// linear memory, which overflows (below address 0) long before the wasm call stack does.
#[inline(never)]
fn smash(depth: u64, trail: &mut [u64; 16]) -> u64 {
    trail[(depth % 16) as usize] = depth;
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    let mut local = [depth; 32];
    local[0] = std::hint::black_box(local[(depth % 32) as usize]);
    smash(depth + 1, trail) + local[0]
}

impl Strategy for Misbehave {
    fn init(config: &str) -> Result<Self, String> {
        let mode = config.trim().trim_matches('"').to_string();
        let instrument = views::find_instrument("BTC-USDT").ok_or("BTC-USDT not granted")?;
        feeds::subscribe(instrument.id, Channel::Ticker).map_err(|d| d.message)?;
        if mode == "fail-init" {
            return Err("misbehave: init fails after subscribing".into());
        }
        if mode == "timer-hog" {
            for _ in 0..1_023 {
                timers::set_interval(10);
            }
        }
        let zero = if mode == "timer-hog" { timers::set_timer(0) } else { 0 };
        if mode == "forge-init" {
            return Err("misbehave: refused\n2099-01-01T00:00:00.000Z ERROR tradebox: \x1b[31mhost compromised\x1b[0m \x1b]0;owned\x07".into());
        }
        Ok(Misbehave { mode, sink: Vec::new(), churned: (0, 0), zero })
    }

    fn on_timer(&mut self, timer: &TimerFired) {
        if self.mode == "timer-hog" && timer.id == self.zero {
            let _ = std::hint::black_box(Self::burn());
            self.zero = timers::set_timer(0);
        }
    }

    fn on_ticker(&mut self, ticker: &Ticker) {
        match self.mode.as_str() {
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory-bomb" => loop {
                let chunk = vec![0xA5u8; 1 << 20];
                self.sink.push(std::hint::black_box(chunk));
            },
            "panic" => panic!("misbehave: deliberate panic on ticker at {}", ticker.ts),
            "recursion" => {
                let _ = std::hint::black_box(recurse(0));
            }
            "stack-smash" => {
                let mut trail = [0u64; 16];
                let _ = std::hint::black_box(smash(0, &mut trail));
            }
            "log-flood" => {
                let line = "x".repeat(4096);
                for i in 0..2_000 {
                    log::log(log::LogLevel::Error, &format!("{i} {line}"));
                }
            }
            "order-spam" => {
                for i in 0..1000 {
                    let price = ticker.bid * (0.99 - f64::from(i) * 0.00001);
                    let _ = orders::place(OrderRequest::limit(ticker.instrument, Side::Buy, price, 0.001));
                }
            }
            "oversize" => {
                let _ = orders::place(OrderRequest::limit(ticker.instrument, Side::Buy, ticker.bid, 1_000.0));
            }
            "off-band" => {
                let _ = orders::place(OrderRequest::limit(ticker.instrument, Side::Buy, ticker.ask * 1.2, 0.001));
            }
            "duplicate" => {
                let order = || OrderRequest::limit(ticker.instrument, Side::Buy, ticker.bid * 0.99, 0.001);
                let _ = orders::place(order());
                let _ = orders::place(order());
            }
            "runaway" => {
                let _ = orders::place(OrderRequest::market(ticker.instrument, Side::Buy, 0.01));
            }
            "cancel-storm" => {
                let open = views::open_orders();
                let Some(order) = open.first() else {
                    let _ = orders::place(OrderRequest::limit(ticker.instrument, Side::Buy, ticker.bid * 0.97, 0.001));
                    return;
                };
                for _ in 0..50_000 {
                    let _ = orders::cancel(&order.client_order_id);
                }
                for i in 0..50_000 {
                    let _ = orders::amend(
                        &order.client_order_id,
                        Some(ticker.bid * (0.96 + f64::from(i % 100) * 0.0001)),
                        None,
                    );
                }
            }
            "sub-churn" => {
                // Toggles a second stream as fast as the host lets it: each new subscription
                // could cost an exchange request (OKX allows 480 an hour per connection).
                for _ in 0..10_000 {
                    self.churned.0 += 1;
                    if feeds::subscribe(ticker.instrument, Channel::Trades).is_ok() {
                        self.churned.1 += 1;
                    }
                    feeds::unsubscribe(ticker.instrument, Channel::Trades);
                }
                // What it got, in its own words, for the test to compare with the host's count.
                let (tried, accepted) = self.churned;
                log::log(log::LogLevel::Info, &format!("churned: {accepted} of {tried} accepted"));
            }
            "view-spin" => {
                // Reads the host's views as fast as it can, beside an order of its own, so that
                // each read copies something: every read takes a lock the host's own threads
                // (the router, the sender, the kill switch) take too.
                if views::open_orders().is_empty() {
                    let _ = orders::place(OrderRequest::limit(ticker.instrument, Side::Buy, ticker.bid * 0.97, 0.001));
                }
                for _ in 0..20_000 {
                    std::hint::black_box(views::open_orders());
                    std::hint::black_box(views::positions());
                    std::hint::black_box(views::balances());
                    std::hint::black_box(views::best_bid_ask(ticker.instrument));
                }
            }
            "loser" => {
                let size = 0.05;
                let ioc =
                    |side, price| OrderRequest::with_kind(ticker.instrument, side, OrderKind::Ioc, Some(price), size);
                let _ = orders::place(ioc(Side::Buy, ticker.ask));
                let _ = orders::place(ioc(Side::Sell, ticker.bid));
            }
            _ => {}
        }
    }
}

impl Misbehave {
    /// About a millisecond of work that the optimiser cannot remove.
    fn burn() -> u64 {
        let mut x: u64 = 1;
        for i in 0..300_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        x
    }
}

export_strategy!(Misbehave);
tradebox_sdk::embed_manifest!();
