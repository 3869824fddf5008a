//! Client order ids minted by the host.
//!
//! Format: `tb`, the plugin slot (2 base-36 digits), the host start time in seconds (6 base-36
//! digits), then the slot's own sequence number (base 36). A sequence per slot, not one for
//! the host: a plugin must not learn from the gaps in its ids how many orders others sent. That is 1-32 ASCII alphanumerics as OKX requires,
//! unique per host run and plugin, and readable enough to tell at a glance which plugin sent an
//! order. Several hosts on one account (one per sub-account is the rule) still differ by start
//! second.

use std::sync::atomic::{AtomicU64, Ordering};

use super::tracker::PluginId;

/// Slot numbers as they appear in ids (two base-36 digits).
const SLOTS: usize = 1296;

/// Mints ids; cheap and lock-free.
#[derive(Debug)]
pub struct ClientIdMinter {
    epoch: String,
    /// One sequence per encoded slot: a slot number reused after wrapping carries on from the
    /// last id of that slot, so ids never repeat within a host run.
    sequences: Box<[AtomicU64]>,
}

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(13);
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

impl ClientIdMinter {
    /// A minter for a host started at `start_secs` (Unix seconds).
    pub fn new(start_secs: u64) -> Self {
        let sequences = (0..SLOTS).map(|_| AtomicU64::new(1)).collect();
        Self { epoch: base36(start_secs % 36u64.pow(6), 6), sequences }
    }

    /// The next id for `plugin`.
    pub fn next(&self, plugin: PluginId) -> String {
        let slot = plugin as usize % SLOTS;
        let seq = self.sequences[slot].fetch_add(1, Ordering::Relaxed);
        format!("tb{}{}{}", base36(slot as u64, 2), self.epoch, base36(seq, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_alphanumeric_and_unique() {
        let minter = ClientIdMinter::new(1_764_000_000);
        let a = minter.next(7);
        let b = minter.next(7);
        assert_ne!(a, b);
        assert!(a.starts_with("tb07"));
        // Another plugin's orders leave no gap in this one's sequence.
        let _ = minter.next(8);
        let c = minter.next(7);
        assert_eq!((&a[10..], &b[10..], &c[10..]), ("1", "2", "3"));
        // A slot number reused after wrapping does not repeat an id.
        assert_ne!(minter.next(7 + SLOTS as PluginId), c);
        for id in [a, b, ClientIdMinter::new(u64::MAX).next(1295)] {
            assert!(id.len() <= 32 && id.bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
        }
    }
}
