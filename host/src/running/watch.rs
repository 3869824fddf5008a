//! `tradebox run --watch DIR`: a plugin whose source file is in `DIR` is hot-reloaded when the
//! file changes. Save (or `cargo build`) and the new version trades, or is refused and the
//! running one carries on.
//!
//! The directory is polled (every `interval`): it works the same on every file system,
//! network mounts and containers included, and a compile-and-copy is not a latency race. A
//! change is acted on once the file has kept the same size and modification time for
//! `settle`, so a file still being written is left alone; a file whose content did not change
//! (a `touch`) is not reloaded; a file that fails (half written after all, or broken) is not
//! tried again until it changes again.

use super::Host;
use super::lifecycle::ReloadRequest;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Poll every this often by default.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// A file must be unchanged this long before it is read.
pub const SETTLE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp { len: meta.len(), modified: meta.modified().ok() })
}

struct Watched {
    /// The stamp of the version last acted on (loaded, reloaded, or refused).
    done: Option<Stamp>,
    /// A newer stamp and since when it has not changed.
    pending: Option<(Stamp, Instant)>,
}

/// Watches `dir` until the task is dropped or aborted.
pub async fn watch(host: Arc<Host>, dir: PathBuf, interval: Duration, settle: Duration) {
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let label = format!("watch {}", dir.display());
    let mut files: HashMap<String, Watched> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    let mut warned = false;
    loop {
        tick.tick().await;
        let sources: Vec<(String, PathBuf)> = host
            .sources()
            .into_iter()
            .filter(|(_, path)| std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()).starts_with(&dir))
            .collect();
        if sources.is_empty() && !warned {
            tracing::warn!(dir = %dir.display(), "watch: no loaded plugin comes from this directory");
            warned = true;
        }
        files.retain(|name, _| sources.iter().any(|(n, _)| n == name));
        for (name, path) in sources {
            let now = stamp(&path);
            // First sight: what is there is what was loaded.
            let entry = files.entry(name.clone()).or_insert(Watched { done: now, pending: None });
            if now == entry.done {
                entry.pending = None;
                continue;
            }
            let Some(now) = now else { continue };
            match entry.pending {
                Some((seen, since)) if seen == now => {
                    if since.elapsed() < settle {
                        continue;
                    }
                }
                _ => {
                    entry.pending = Some((now, Instant::now()));
                    continue;
                }
            }
            entry.done = Some(now);
            entry.pending = None;
            reload(&host, &name, &path, &label).await;
        }
    }
}

async fn reload(host: &Arc<Host>, name: &str, path: &Path, by: &str) {
    let wasm = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(plugin = %name, file = %path.display(), error = %e, "watch: cannot read the changed file");
            return;
        }
    };
    let hash = hex::encode(Sha256::digest(&wasm));
    if host.plugin_status(name).is_some_and(|s| s.hash == hash) {
        tracing::debug!(plugin = %name, "watch: the file changed but not its content");
        return;
    }
    let request = ReloadRequest { wasm: Some(wasm), by: by.to_string(), ..ReloadRequest::default() };
    let (host, plugin) = (host.clone(), name.to_string());
    match tokio::task::spawn_blocking(move || host.reload(&plugin, request)).await {
        Ok(Ok(done)) => tracing::info!(
            plugin = %name, to = %hash.get(..12).unwrap_or(&hash), ms = done.total.as_millis() as u64,
            "watch: reloaded"
        ),
        Ok(Err(e)) => tracing::warn!(plugin = %name, file = %path.display(), "watch: {e}"),
        Err(e) => tracing::error!(plugin = %name, "watch: the reload task failed: {e}"),
    }
}
