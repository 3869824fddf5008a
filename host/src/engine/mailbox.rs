//! A plugin's inbox: order events in strict order, market data conflated.
//!
//! A slow plugin must never make the host buffer without bound, and must never miss an order
//! event. So market data is keyed by (instrument, channel) and a newer value replaces an older
//! one still waiting (it keeps its place in the queue), public trades are capped, and every
//! private event is kept in order.

use super::event::PluginEvent;
use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::time::Instant;
use tradebox_core::Channel;
use tradebox_core::InstrumentId;

/// Trades waiting beyond this are dropped (and counted) for a plugin that fell behind.
const MAX_QUEUED_TRADES: usize = 4096;

enum Slot {
    Event(PluginEvent),
    Latest((InstrumentId, Channel)),
}

#[derive(Default)]
struct Queue {
    slots: VecDeque<Slot>,
    /// Keyed by small host-assigned numbers, looked up for every market event: a fast hash
    /// (no key here comes from outside the process).
    latest: FxHashMap<(InstrumentId, Channel), PluginEvent>,
    queued_trades: usize,
    closed: bool,
    interrupted: bool,
}

/// Counters a test or the status page can read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStats {
    /// Events waiting now.
    pub queued: usize,
    /// Market events replaced by a newer one before delivery.
    pub conflated: u64,
    /// Trades dropped because the plugin fell too far behind.
    pub dropped_trades: u64,
}

/// The inbox; shared by the router (producer) and the plugin's actor (consumer).
#[derive(Default)]
pub struct Mailbox {
    queue: Mutex<Queue>,
    ready: Condvar,
    stats: Mutex<MailboxStats>,
}

impl Mailbox {
    /// An empty, open inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues an event that must be delivered (order, fill, position, state...).
    pub fn push(&self, event: PluginEvent) {
        let mut q = self.queue.lock();
        if q.closed {
            return;
        }
        q.slots.push_back(Slot::Event(event));
        drop(q);
        self.ready.notify_one();
    }

    /// Queues market data, replacing an undelivered event of the same stream.
    pub fn push_market(&self, instrument: InstrumentId, channel: Channel, event: PluginEvent) {
        let mut q = self.queue.lock();
        if q.closed {
            return;
        }
        if channel == Channel::Trades {
            if q.queued_trades >= MAX_QUEUED_TRADES {
                drop(q);
                self.stats.lock().dropped_trades += 1;
                return;
            }
            q.queued_trades += 1;
            q.slots.push_back(Slot::Event(event));
        } else if q.latest.insert((instrument, channel), event).is_some() {
            drop(q);
            self.stats.lock().conflated += 1;
            return;
        } else {
            q.slots.push_back(Slot::Latest((instrument, channel)));
        }
        drop(q);
        self.ready.notify_one();
    }

    /// Takes up to `max` events, oldest first, waiting until one arrives, `deadline` passes or
    /// the inbox closes. Returns `None` once closed and empty.
    pub fn take(&self, max: usize, deadline: Option<Instant>) -> Option<Vec<PluginEvent>> {
        let mut q = self.queue.lock();
        while q.slots.is_empty() {
            if q.closed {
                return None;
            }
            if std::mem::take(&mut q.interrupted) {
                return Some(Vec::new());
            }
            match deadline {
                Some(at) => {
                    if self.ready.wait_until(&mut q, at).timed_out() {
                        return Some(Vec::new());
                    }
                }
                None => self.ready.wait(&mut q),
            }
        }
        let mut batch = Vec::with_capacity(q.slots.len().min(max));
        pop_into(&mut q, max, &mut batch);
        Some(batch)
    }

    /// Takes up to `max` events already queued, oldest first, into `batch`, without waiting: for
    /// a consumer that knows when events arrive because it routes them itself (a backtest).
    /// Reusing `batch` keeps the per-call cost to the lock and the moves.
    pub fn drain_into(&self, max: usize, batch: &mut Vec<PluginEvent>) {
        pop_into(&mut self.queue.lock(), max, batch);
    }

    /// Wakes the consumer out of [`Mailbox::take`] with an empty batch, so it can look at
    /// its control messages (a reload) without waiting for an event.
    pub fn interrupt(&self) {
        self.queue.lock().interrupted = true;
        self.ready.notify_all();
    }

    /// Stops accepting events and wakes the consumer; what is queued can still be taken.
    pub fn close(&self) {
        self.queue.lock().closed = true;
        self.ready.notify_all();
    }

    /// Current counters.
    pub fn stats(&self) -> MailboxStats {
        let queued = self.queue.lock().slots.len();
        MailboxStats { queued, ..*self.stats.lock() }
    }
}

/// Moves up to `max` queued events, oldest first, into `batch`.
fn pop_into(q: &mut Queue, max: usize, batch: &mut Vec<PluginEvent>) {
    let n = q.slots.len().min(max);
    for _ in 0..n {
        match q.slots.pop_front() {
            Some(Slot::Event(event)) => {
                if matches!(event, PluginEvent::Market(tradebox_core::MarketEvent::Trade { .. })) {
                    q.queued_trades -= 1;
                }
                batch.push(event);
            }
            Some(Slot::Latest(key)) => {
                if let Some(event) = q.latest.remove(&key) {
                    batch.push(event);
                }
            }
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tradebox_core::MarketEvent;

    fn ticker(bid: f64) -> PluginEvent {
        PluginEvent::Market(MarketEvent::Ticker {
            instrument: 1,
            ts_ms: 0,
            bid,
            bid_size: 1.0,
            ask: bid + 1.0,
            ask_size: 1.0,
            last: bid,
        })
    }

    fn bid_of(event: &PluginEvent) -> f64 {
        match event {
            PluginEvent::Market(MarketEvent::Ticker { bid, .. }) => *bid,
            _ => f64::NAN,
        }
    }

    #[test]
    fn newest_ticker_wins_and_keeps_its_place() {
        let mb = Mailbox::new();
        mb.push_market(1, Channel::Tickers, ticker(1.0));
        mb.push(PluginEvent::Connectivity { link: "orders".into(), connected: true, detail: String::new() });
        mb.push_market(1, Channel::Tickers, ticker(2.0));
        let batch = mb.take(10, None).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(bid_of(&batch[0]), 2.0);
        assert!(matches!(batch[1], PluginEvent::Connectivity { .. }));
        assert_eq!(mb.stats().conflated, 1);
    }

    #[test]
    fn private_events_are_never_dropped() {
        let mb = Mailbox::new();
        for i in 0..10_000 {
            mb.push(PluginEvent::Connectivity { link: i.to_string(), connected: true, detail: String::new() });
        }
        let mut seen = 0;
        while let Some(batch) = mb.take(512, Some(Instant::now())) {
            if batch.is_empty() {
                break;
            }
            for event in batch {
                let PluginEvent::Connectivity { link, .. } = event else { panic!("unexpected event") };
                assert_eq!(link, seen.to_string());
                seen += 1;
            }
        }
        assert_eq!(seen, 10_000);
    }

    #[test]
    fn closed_mailbox_drains_then_ends() {
        let mb = Mailbox::new();
        mb.push_market(1, Channel::Tickers, ticker(1.0));
        mb.close();
        mb.push_market(1, Channel::Tickers, ticker(3.0));
        assert_eq!(mb.take(10, None).map(|b| b.len()), Some(1));
        assert!(mb.take(10, None).is_none());
    }

    #[test]
    fn interrupt_wakes_a_waiting_consumer_once() {
        let mb = Arc::new(Mailbox::new());
        let consumer = {
            let mb = mb.clone();
            std::thread::spawn(move || mb.take(10, None).map(|b| b.len()))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        mb.interrupt();
        assert_eq!(consumer.join().expect("consumer"), Some(0), "woken with an empty batch");
        // The interrupt is spent: the next take waits for an event as usual.
        mb.push_market(1, Channel::Tickers, ticker(1.0));
        assert_eq!(mb.take(10, None).map(|b| b.len()), Some(1));
    }
}
