//! Client order ids minted by the host.
//!
//! Format: `tb`, the plugin slot (2 base-36 digits), the host start time in seconds (6 base-36
//! digits), a random run nonce (6 base-36 digits, ~2.2e9 values, drawn from the OS at start),
//! then the slot's own sequence number (base 36): at most 29 of the 32 ASCII alphanumerics OKX
//! allows. A sequence per slot, not one for the host: a plugin must not learn from the gaps in
//! its ids how many orders others sent. The nonce is what keeps ids unique across runs: a host
//! restarted within the same second, or two hosts on one account, would otherwise mint ids
//! OKX has already seen (51016, "duplicated clOrdId"), and the host would settle the new order
//! to the old one. The start second stays so an id still says roughly when its run began.

use std::sync::atomic::{AtomicU64, Ordering};

use super::tracker::PluginId;

/// Slot numbers as they appear in ids (two base-36 digits).
const SLOTS: usize = 1296;

/// Mints ids; cheap and lock-free.
#[derive(Debug)]
pub struct ClientIdMinter {
    /// Start second and run nonce, written once.
    run: String,
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
    /// A minter for a host started at `start_secs` (Unix seconds), with a fresh random nonce.
    pub fn new(start_secs: u64) -> Self {
        Self::with_nonce(start_secs, rand::random::<u64>())
    }

    /// A minter with a given nonce (tests; deterministic runs).
    pub fn with_nonce(start_secs: u64, nonce: u64) -> Self {
        let sequences = (0..SLOTS).map(|_| AtomicU64::new(1)).collect();
        let run = base36(start_secs % 36u64.pow(6), 6) + &base36(nonce % 36u64.pow(6), 6);
        Self { run, sequences }
    }

    /// The next id for `plugin`.
    pub fn next(&self, plugin: PluginId) -> String {
        let slot = plugin as usize % SLOTS;
        let seq = self.sequences[slot].fetch_add(1, Ordering::Relaxed);
        format!("tb{}{}{}", base36(slot as u64, 2), self.run, base36(seq, 1))
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
        assert_eq!((&a[16..], &b[16..], &c[16..]), ("1", "2", "3"));
        // A slot number reused after wrapping does not repeat an id.
        assert_ne!(minter.next(7 + SLOTS as PluginId), c);
        let longest = ClientIdMinter::with_nonce(u64::MAX, u64::MAX);
        longest.sequences[1295].store(u64::MAX, Ordering::Relaxed);
        for id in [a, b, longest.next(1295)] {
            assert!(id.len() <= 32 && id.bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
        }
    }

    #[test]
    fn a_restart_within_the_same_second_mints_new_ids() {
        // Two runs of a host (a crash and a restart, or two hosts on one account) starting in
        // the same second, with the same plugins in the same slots: before the run nonce, both
        // minted tb01<second>1 first.
        let ids = |minter: &ClientIdMinter| (0..100).map(|_| minter.next(1)).collect::<std::collections::HashSet<_>>();
        let (first, second) = (ids(&ClientIdMinter::new(1_764_000_000)), ids(&ClientIdMinter::new(1_764_000_000)));
        assert!(first.is_disjoint(&second), "a second run repeated ids of the first");
    }
}
