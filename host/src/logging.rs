//! The host's log: `tracing` to stderr (or any writer), filtered by `RUST_LOG`, with guards no
//! filter setting can lift.
//!
//! The guards exist because some libraries log what must never reach a log file:
//! tungstenite at TRACE prints every frame it sends, and the private WebSocket login frame
//! carries the API key, the passphrase and a login signature. Its TRACE records are dropped
//! whatever `RUST_LOG` says (its DEBUG and above stay). `main` and the key-isolation test use
//! the same setup, so the test checks what users run.

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Crates whose TRACE output can contain credentials.
const SECRET_TRACE: &[&str] = &["tungstenite", "tokio_tungstenite"];

/// True for records that may be logged at all.
fn allowed(target: &str, level: &Level) -> bool {
    !(*level == Level::TRACE && SECRET_TRACE.iter().any(|c| target == *c || target.starts_with(&format!("{c}::"))))
}

/// The subscriber: `filter` (from `RUST_LOG` or a default), the guards, text to `writer`.
/// Install it with `tracing_subscriber::util::SubscriberInitExt::init`, which also forwards
/// the `log` crate's records (through the same guards).
pub fn subscriber<W>(filter: EnvFilter, writer: W, ansi: bool) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let guard = FilterFn::new(|meta| allowed(meta.target(), meta.level()));
    tracing_subscriber::registry()
        .with(guard)
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi))
}

/// `RUST_LOG`, or `default` when it is unset or invalid.
pub fn env_filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_frame_dumps_are_never_logged() {
        assert!(!allowed("tungstenite::protocol", &Level::TRACE));
        assert!(!allowed("tokio_tungstenite", &Level::TRACE));
        assert!(allowed("tungstenite::protocol", &Level::DEBUG));
        assert!(allowed("tungstenite_other", &Level::TRACE));
        assert!(allowed("tradebox::venue::okx", &Level::TRACE));
    }
}
