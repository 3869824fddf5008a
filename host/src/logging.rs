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

/// Longest line of plugin text kept; the rest is cut.
pub const MAX_LOG_LINE: usize = 1024;

/// Untrusted text (a plugin's log line, an id it passed) as the host writes it: one line, with control characters (newlines
/// that would forge a host log line, NUL, escapes) and bidirectional overrides (that would
/// reorder what an operator reads) shown escaped.
pub fn sanitize(s: String) -> String {
    let suspicious = tradebox_manifest::is_deceptive;
    if !s.chars().any(suspicious) {
        return s;
    }
    s.chars().map(|c| if suspicious(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

/// Any text that comes from a plugin (a log line, the error `init` or `restore` returns, a
/// trap's text with the guest's own function names) as the host may show it: at most
/// [`MAX_LOG_LINE`] bytes, one line, control and bidi characters escaped.
pub fn plugin_text(s: impl Into<String>) -> String {
    // Cut before escaping (escaping a huge text costs), and again after (escapes grow it).
    truncate(sanitize(truncate(s.into())))
}

/// At most [`MAX_LOG_LINE`] bytes, cut on a character boundary and marked as cut.
pub fn truncate(mut s: String) -> String {
    if s.len() > MAX_LOG_LINE {
        let mut cut = MAX_LOG_LINE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("… (truncated)");
    }
    s
}

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
    fn a_plugin_cannot_forge_log_lines_or_reorder_them() {
        let forged = sanitize("ok\r\n2099-01-01T00:00:00Z ERROR tradebox: forged\0".into());
        assert!(!forged.contains('\n') && !forged.contains('\r') && !forged.contains('\0'), "{forged}");
        assert!(forged.starts_with("ok\\u{d}\\u{a}2099"), "{forged}");
        assert!(!sanitize("a\u{202e}b".into()).contains('\u{202e}'));
        assert_eq!(sanitize("plain ünïcode".into()), "plain ünïcode");
        // ANSI/OSC escapes (colours, window titles, hyperlinks) and anything long.
        let osc = plugin_text("\u{1b}]8;;http://x\u{7}click\u{1b}[31mRED\u{9b}2J".to_string() + &"x".repeat(5000));
        assert!(!osc.chars().any(|c| c.is_control()), "{osc}");
        assert!(osc.len() < MAX_LOG_LINE + 200, "{}", osc.len());
        let escapes = plugin_text("\u{1b}".repeat(5000));
        assert!(escapes.len() < MAX_LOG_LINE + 200 && escapes.starts_with("\\u{1b}"), "{}", escapes.len());
    }

    #[test]
    fn websocket_frame_dumps_are_never_logged() {
        assert!(!allowed("tungstenite::protocol", &Level::TRACE));
        assert!(!allowed("tokio_tungstenite", &Level::TRACE));
        assert!(allowed("tungstenite::protocol", &Level::DEBUG));
        assert!(allowed("tungstenite_other", &Level::TRACE));
        assert!(allowed("tradebox::venue::okx", &Level::TRACE));
    }
}
