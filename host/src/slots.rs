//! How many connections one side carries at once, and waiting for them at shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `max` connections at once; a connection over it is closed at once.
#[derive(Clone)]
pub(crate) struct Slots {
    semaphore: Arc<Semaphore>,
    max: u32,
    refusals: Arc<Refusals>,
}

/// Connections closed for want of a slot, reported when the limit is first hit and when it is
/// left again, not once per connection (a flood would flood the log too).
#[derive(Default)]
struct Refusals {
    at_limit: AtomicBool,
    count: AtomicU64,
}

impl Slots {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(max as usize)),
            max,
            refusals: Arc::default(),
        }
    }

    /// A slot, or `None` when every one is taken.
    pub(crate) fn take(&self) -> Option<OwnedSemaphorePermit> {
        let taken = Arc::clone(&self.semaphore).try_acquire_owned().ok();
        let refusals = &self.refusals;
        if taken.is_some() {
            if refusals.at_limit.swap(false, Ordering::Relaxed) {
                let refused = refusals.count.swap(0, Ordering::Relaxed);
                tracing::info!(refused, "below the connection limit again");
            }
        } else {
            refusals.count.fetch_add(1, Ordering::Relaxed);
            if !refusals.at_limit.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max = self.max,
                    "connection limit reached; closing new connections"
                );
            }
        }
        taken
    }

    /// Waits up to `grace` for every connection to end; `false` if some were still open.
    pub(crate) async fn drain(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.semaphore.acquire_many(self.max))
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_and_drains() {
        let slots = Slots::new(2);
        let first = slots.take().unwrap();
        let second = slots.take().unwrap();
        assert!(slots.take().is_none());
        assert_eq!(slots.refusals.count.load(Ordering::Relaxed), 1);
        drop(first);
        let third = slots.take().unwrap();
        assert_eq!(slots.refusals.count.load(Ordering::Relaxed), 0);
        assert!(
            !slots.drain(Duration::from_millis(50)).await,
            "two still open"
        );
        drop((second, third));
        assert!(slots.drain(Duration::from_secs(5)).await);
    }
}
