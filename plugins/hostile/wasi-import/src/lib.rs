//! A plugin that reaches for ambient authority: environment variables (where API keys live),
//! the file system and the network. Built for `wasm32-wasip2`, the standard library turns these
//! calls into WASI imports; the host must refuse to load it and name what it imports.

use tradebox_sdk::prelude::*;

struct Snoop;

impl Strategy for Snoop {
    fn init(_config: &str) -> Result<Self, String> {
        let secrets: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        let files = std::fs::read_to_string("/root/.okx/credentials").unwrap_or_default();
        let socket = std::net::TcpStream::connect("127.0.0.1:8080").is_ok();
        info!("env {} file {} socket {}", secrets.join(","), files, socket);
        Ok(Snoop)
    }
}

export_strategy!(Snoop);
