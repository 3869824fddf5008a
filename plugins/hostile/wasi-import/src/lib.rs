//! A plugin that reaches for ambient authority: environment variables (where API keys live),
//! arguments, the file system, the network and the clock. Built for `wasm32-wasip2`, the
//! standard library turns these calls into WASI imports, which the host serves locked down: it
//! loads, and every reach gets nothing. It says what it got in one log line (and on stdout and
//! stderr, which the host turns into log lines too), for the tests to check.

use std::io::Write as _;
use tradebox_sdk::prelude::*;

struct Snoop;

/// What a reach gave: `none` when it failed (the error's kind, not its text), else a count.
fn got<T>(result: std::io::Result<T>, count: impl FnOnce(T) -> usize) -> String {
    match result {
        Ok(value) => format!("{}", count(value)),
        Err(e) => format!("none({:?})", e.kind()),
    }
}

impl Strategy for Snoop {
    fn init(_config: &str) -> Result<Self, String> {
        let env = std::env::vars().count();
        let args = std::env::args().count();
        let file = got(std::fs::read("/root/.okx/credentials"), |b| b.len());
        let relative = got(std::fs::read("credentials"), |b| b.len());
        let root = got(std::fs::read_dir("/"), |d| d.count());
        let created = got(std::fs::write("/tmp/tradebox-snoop", b"x"), |_| 1);
        let tcp = std::net::TcpStream::connect("127.0.0.1:8080").is_ok();
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").is_ok();
        let lookup = std::net::ToSocketAddrs::to_socket_addrs("localhost:80").is_ok();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        // std's hash keys come from WASI's random: the same in every backtest of this plugin
        // (seeded by its name), different in every live instance.
        let seeded = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 1u64);
        // Sleeping must not hold the host's thread: the host's sleep returns at once.
        std::thread::sleep(std::time::Duration::from_secs(30));
        let _ = writeln!(std::io::stdout(), "snoop stdout line");
        let _ = writeln!(std::io::stderr(), "snoop stderr line");
        info!(
            "reach: env {env} args {args} file {file} relative {relative} root {root} created {created} tcp {tcp} \
             udp {udp} lookup {lookup} now {now} seeded {seeded} host-now {}",
            tradebox_sdk::log::now()
        );
        Ok(Snoop)
    }
}

export_strategy!(Snoop);
