//! A bounded hand-over of a raw-mode client's frames: past a cap in frames or bytes, frames
//! are dropped and the loss is reported in their place.
//!
//! The client reads its socket as fast as frames come, so that OKX never sees a slow reader
//! (OKX disconnects one whose send buffer fills). A recorder behind it writes to disk; when the
//! disk stalls, an unbounded queue between the two would grow until memory runs out. This one
//! holds at most [`Limits`] of frames, drops what comes past them and, before the next event
//! it lets through, hands over a [`Delivered::Lost`] with what was dropped: exactly where the
//! frames are missing, so a recorder can write a gap line there and ask for fresh books.
//!
//! Only [`ClientEvent::Raw`] frames are counted and dropped. Every other event (connected,
//! disconnected, a parsed frame) goes through: they are few and carry the connection's state.

use super::client::ClientEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// How much a queue holds before it drops frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Frames queued at most (each costs its text plus a few dozen bytes of bookkeeping, so a
    /// flood of tiny frames is bounded too).
    pub frames: usize,
    /// Bytes of frame text queued at most. A frame larger than this on its own still goes
    /// through when the queue is empty: dropping it would lose it every time.
    pub bytes: usize,
}

impl Default for Limits {
    /// 262,144 frames or 64 MiB of text (with the queue's own 32 bytes a frame, at most 72 MiB
    /// and the allocator's overhead): several seconds of OKX's busiest public feed, far beyond a
    /// disk's usual hiccup, and an amount of memory any machine that records can spare.
    fn default() -> Self {
        Self { frames: 1 << 18, bytes: 64 << 20 }
    }
}

/// What a [`Receiver`] hands over.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "handed over one at a time; the queue itself holds a compact item (a frame is a String)"
)]
pub enum Delivered {
    /// An event of the client, in arrival order.
    Event(ClientEvent),
    /// Frames dropped here because the queue was full: the events before this were received
    /// before the loss, those after it after.
    Lost {
        /// Frames dropped.
        frames: u64,
        /// Bytes of their text.
        bytes: u64,
    },
}

/// What the queue holds: a frame in 32 bytes plus its text (a `ClientEvent` is ten times that,
/// which a queue of 262,144 would pay in full), the rare other event boxed.
#[derive(Debug)]
enum Item {
    Raw(String),
    Other(Box<ClientEvent>),
    Lost { frames: u64, bytes: u64 },
}

/// What is queued, shared by both ends.
#[derive(Debug)]
struct Queued {
    frames: AtomicUsize,
    bytes: AtomicUsize,
}

/// The client's end (one producer: [`super::WsClient::spawn`] takes it, through
/// [`super::client::Events`]).
#[derive(Debug)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Item>,
    queued: Arc<Queued>,
    limits: Limits,
    /// Dropped since the last report (atomics only so that `&self` can send, as the client's
    /// other sender does; there is one producer).
    lost_frames: AtomicU64,
    lost_bytes: AtomicU64,
}

/// The consumer's end.
#[derive(Debug)]
pub struct Receiver {
    rx: mpsc::UnboundedReceiver<Item>,
    queued: Arc<Queued>,
}

/// A queue holding at most `limits`.
pub fn channel(limits: Limits) -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(Queued { frames: AtomicUsize::new(0), bytes: AtomicUsize::new(0) });
    let sender =
        Sender { tx, queued: queued.clone(), limits, lost_frames: AtomicU64::new(0), lost_bytes: AtomicU64::new(0) };
    (sender, Receiver { rx, queued })
}

impl Sender {
    /// Queues `event`, or drops it when it is a frame the queue has no room for.
    pub fn send(&self, event: ClientEvent) {
        let item = if let ClientEvent::Raw(text) = event {
            let len = text.len();
            let frames = self.queued.frames.load(Ordering::Acquire);
            let bytes = self.queued.bytes.load(Ordering::Acquire);
            let full = frames >= self.limits.frames || (frames > 0 && bytes.saturating_add(len) > self.limits.bytes);
            if full {
                self.lost_frames.fetch_add(1, Ordering::Relaxed);
                self.lost_bytes.fetch_add(len as u64, Ordering::Relaxed);
                return;
            }
            // Counted before it is sent, so the receiver never takes away more than was added.
            self.queued.frames.fetch_add(1, Ordering::AcqRel);
            self.queued.bytes.fetch_add(len, Ordering::AcqRel);
            Item::Raw(text)
        } else {
            Item::Other(Box::new(event))
        };
        self.report_loss();
        let _ = self.tx.send(item);
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Hands over what was dropped since the last report, if anything was.
    fn report_loss(&self) {
        let frames = self.lost_frames.swap(0, Ordering::Relaxed);
        if frames > 0 {
            let bytes = self.lost_bytes.swap(0, Ordering::Relaxed);
            let _ = self.tx.send(Item::Lost { frames, bytes });
        }
    }
}

impl Drop for Sender {
    /// A loss at the very end is still reported.
    fn drop(&mut self) {
        self.report_loss();
    }
}

impl Receiver {
    /// The next event or loss; `None` when the client is gone and everything was taken.
    pub async fn recv(&mut self) -> Option<Delivered> {
        Some(match self.rx.recv().await? {
            Item::Raw(text) => {
                self.queued.frames.fetch_sub(1, Ordering::AcqRel);
                self.queued.bytes.fetch_sub(text.len(), Ordering::AcqRel);
                Delivered::Event(ClientEvent::Raw(text))
            }
            Item::Other(event) => Delivered::Event(*event),
            Item::Lost { frames, bytes } => Delivered::Lost { frames, bytes },
        })
    }

    /// Frames and bytes queued now.
    pub fn queued(&self) -> (usize, usize) {
        (self.queued.frames.load(Ordering::Acquire), self.queued.bytes.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> ClientEvent {
        ClientEvent::Raw(text.to_string())
    }

    async fn all(rx: &mut Receiver) -> Vec<Delivered> {
        let mut out = Vec::new();
        while let Ok(Some(d)) = tokio::time::timeout(std::time::Duration::from_millis(10), rx.recv()).await {
            out.push(d);
        }
        out
    }

    #[tokio::test]
    async fn frames_past_the_cap_are_dropped_and_reported_where_they_were_lost() {
        let (tx, mut rx) = channel(Limits { frames: 2, bytes: 1_000 });
        tx.send(ClientEvent::Connected);
        for t in ["a", "bb", "ccc", "dddd"] {
            tx.send(raw(t));
        }
        assert_eq!(rx.queued(), (2, 3), "connected is not counted; two frames fit");
        // The state of the connection always goes through, after the loss it followed; a
        // frame still finds the queue full.
        tx.send(ClientEvent::Disconnected { reason: "x".into() });
        tx.send(raw("e"));
        let got = all(&mut rx).await;
        assert_eq!(
            got,
            [
                Delivered::Event(ClientEvent::Connected),
                Delivered::Event(raw("a")),
                Delivered::Event(raw("bb")),
                Delivered::Lost { frames: 2, bytes: 7 },
                Delivered::Event(ClientEvent::Disconnected { reason: "x".into() }),
            ]
        );
        assert_eq!(rx.queued(), (0, 0), "taking frames makes room again");
        for t in ["f", "g", "h"] {
            tx.send(raw(t));
        }
        drop(tx);
        let got = all(&mut rx).await;
        assert_eq!(
            got,
            [
                Delivered::Lost { frames: 1, bytes: 1 },
                Delivered::Event(raw("f")),
                Delivered::Event(raw("g")),
                Delivered::Lost { frames: 1, bytes: 1 },
            ],
            "e lost before f; h lost at the end, reported as the client goes"
        );
    }

    #[tokio::test]
    async fn bytes_are_capped_but_a_lone_large_frame_goes_through() {
        let (tx, mut rx) = channel(Limits { frames: 100, bytes: 10 });
        tx.send(raw("0123456789abcdef"));
        assert_eq!(rx.queued(), (1, 16), "alone in the queue, so kept");
        tx.send(raw("x"));
        assert_eq!(rx.queued(), (1, 16), "no room next to it");
        assert_eq!(rx.recv().await, Some(Delivered::Event(raw("0123456789abcdef"))));
        for t in ["12345", "12345", "1"] {
            tx.send(raw(t));
        }
        assert_eq!(rx.queued(), (2, 10));
        let got = all(&mut rx).await;
        let kept = |t: &str| Delivered::Event(raw(t));
        assert_eq!(got, [Delivered::Lost { frames: 1, bytes: 1 }, kept("12345"), kept("12345")], "x was lost");
        tx.send(raw("y"));
        let got = all(&mut rx).await;
        assert_eq!(got, [Delivered::Lost { frames: 1, bytes: 1 }, kept("y")], "the loss waits for the next event");
    }
}
