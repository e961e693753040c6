//! How many connections one side carries at once, and waiting for them at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `max` connections at once; a connection over it is closed at once.
#[derive(Clone)]
pub(crate) struct Slots {
    semaphore: Arc<Semaphore>,
    max: u32,
}

impl Slots {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// A slot, or `None` when every one is taken.
    pub(crate) fn take(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.semaphore).try_acquire_owned().ok()
    }

    /// Waits up to `grace` for every connection to end; `false` if some were still open.
    pub(crate) async fn drain(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.semaphore.acquire_many(self.max))
            .await
            .is_ok()
    }
}
