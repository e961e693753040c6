//! The bounded queue of one WebSocket client: answers and notifications wait here for the
//! connection's task to write them. Bounded in messages and in bytes; the first push that does
//! not fit marks the client slow, and its connection is closed with 1013 rather than let the
//! follower (or the gateway's memory) wait on one reader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

/// A subscription id: the gateway's own, random, `0x` and 32 hex digits.
pub(crate) type SubscriptionId = Arc<str>;

/// What a client is sent.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A whole message (an answer).
    Text(Bytes),
    /// `eth_subscription` of `subscription` with `result`, assembled when written so that one
    /// result is shared by every subscriber.
    Notification {
        /// The client's subscription.
        subscription: SubscriptionId,
        /// The result's JSON.
        result: Bytes,
    },
}

impl Outgoing {
    fn len(&self) -> usize {
        match self {
            Self::Text(bytes) => bytes.len(),
            Self::Notification {
                subscription,
                result,
            } => NOTIFICATION_OVERHEAD + subscription.len() + result.len(),
        }
    }

    /// The message's text.
    pub(crate) fn into_text(self) -> Vec<u8> {
        let len = self.len();
        match self {
            Self::Text(bytes) => bytes.into(),
            Self::Notification {
                subscription,
                result,
            } => {
                let mut out = Vec::with_capacity(len);
                out.extend_from_slice(NOTIFICATION_OPEN);
                out.extend_from_slice(subscription.as_bytes());
                out.extend_from_slice(NOTIFICATION_MIDDLE);
                out.extend_from_slice(&result);
                out.extend_from_slice(NOTIFICATION_CLOSE);
                out
            }
        }
    }
}

const NOTIFICATION_OPEN: &[u8] =
    br#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":""#;
const NOTIFICATION_MIDDLE: &[u8] = br#"","result":"#;
const NOTIFICATION_CLOSE: &[u8] = b"}}";
const NOTIFICATION_OVERHEAD: usize =
    NOTIFICATION_OPEN.len() + NOTIFICATION_MIDDLE.len() + NOTIFICATION_CLOSE.len();

/// Why a client was closed as slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slow {
    /// Its queue holds its maximum of messages.
    Messages(usize),
    /// Its queue holds its maximum of bytes.
    Bytes(usize),
}

/// The sending side, shared by the connection and the followers of its subscriptions.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    sender: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    bytes: AtomicUsize,
    max_bytes: usize,
    max_messages: usize,
    slow: AtomicBool,
    why: std::sync::Mutex<Option<Slow>>,
    woken: Notify,
}

/// The receiving side, the connection's.
#[derive(Debug)]
pub(crate) struct Inbox {
    receiver: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
}

/// A queue of `max_messages` messages and `max_bytes` bytes (one larger message is let through
/// when the queue is empty).
pub(crate) fn queue(max_messages: usize, max_bytes: usize) -> (Outbox, Inbox) {
    let (sender, receiver) = mpsc::channel(max_messages.max(1));
    let shared = Arc::new(Shared {
        bytes: AtomicUsize::new(0),
        max_bytes,
        max_messages,
        slow: AtomicBool::new(false),
        why: std::sync::Mutex::new(None),
        woken: Notify::new(),
    });
    (
        Outbox {
            sender,
            shared: Arc::clone(&shared),
        },
        Inbox { receiver, shared },
    )
}

impl Outbox {
    /// Queues `message`; when it does not fit, marks the client slow and drops it. `false`
    /// when the client is (now) slow or gone: its subscriptions should be dropped.
    pub(crate) fn push(&self, message: Outgoing) -> bool {
        if self.shared.slow.load(Ordering::Relaxed) {
            return false;
        }
        let len = message.len();
        let queued = self.shared.bytes.fetch_add(len, Ordering::AcqRel);
        if queued > 0 && queued.saturating_add(len) > self.shared.max_bytes {
            self.shared.bytes.fetch_sub(len, Ordering::AcqRel);
            self.mark_slow(Slow::Bytes(self.shared.max_bytes));
            return false;
        }
        match self.sender.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.bytes.fetch_sub(len, Ordering::AcqRel);
                self.mark_slow(Slow::Messages(self.shared.max_messages));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn mark_slow(&self, why: Slow) {
        if !self.shared.slow.swap(true, Ordering::AcqRel) {
            if let Ok(mut slot) = self.shared.why.lock() {
                *slot = Some(why);
            }
            self.shared.woken.notify_one();
        }
    }

    /// Resolves once the client is marked slow, with why.
    pub(crate) async fn slow(&self) -> Slow {
        loop {
            let woken = self.shared.woken.notified();
            if self.shared.slow.load(Ordering::Acquire) {
                let why = self.shared.why.lock().ok().and_then(|why| *why);
                return why.unwrap_or(Slow::Messages(self.shared.max_messages));
            }
            woken.await;
        }
    }

    /// Whether the client was marked slow.
    #[cfg(test)]
    pub(crate) fn is_slow(&self) -> bool {
        self.shared.slow.load(Ordering::Relaxed)
    }
}

impl Inbox {
    /// The next message, or `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Outgoing> {
        let message = self.receiver.recv().await?;
        self.shared.bytes.fetch_sub(message.len(), Ordering::AcqRel);
        Some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_by_messages_then_slow() {
        let (outbox, mut inbox) = queue(2, 1 << 20);
        assert!(outbox.push(Outgoing::Text(Bytes::from_static(b"1"))));
        assert!(outbox.push(Outgoing::Text(Bytes::from_static(b"2"))));
        assert!(!outbox.push(Outgoing::Text(Bytes::from_static(b"3"))));
        assert!(outbox.is_slow());
        assert_eq!(outbox.slow().await, Slow::Messages(2));
        // Slow is final: room does not make a slow client fast again.
        assert!(inbox.recv().await.is_some());
        assert!(!outbox.push(Outgoing::Text(Bytes::from_static(b"4"))));
    }

    #[tokio::test]
    async fn full_by_bytes_but_one_large_message_passes_alone() {
        let (outbox, mut inbox) = queue(100, 10);
        assert!(outbox.push(Outgoing::Text(Bytes::from(vec![b'x'; 50]))));
        assert_eq!(inbox.recv().await.unwrap().into_text().len(), 50);
        assert!(outbox.push(Outgoing::Text(Bytes::from(vec![b'x'; 6]))));
        assert!(!outbox.push(Outgoing::Text(Bytes::from(vec![b'x'; 6]))));
        assert_eq!(outbox.slow().await, Slow::Bytes(10));
    }

    #[test]
    fn notifications_are_assembled_when_written() {
        let message = Outgoing::Notification {
            subscription: Arc::from("0xab"),
            result: Bytes::from_static(b"{\"n\":1}"),
        };
        let len = message.len();
        let text = message.into_text();
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xab","result":{"n":1}}}"#
        );
        assert_eq!(text.len(), len);
    }
}
