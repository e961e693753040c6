//! Which client connections the gateway keeps: at most `max_connections` in all and
//! `max_connections_per_client` per client key, and when full, the oldest connection that has
//! not finished its TLS handshake makes room for the new one.
//!
//! Slots are taken at accept, before the handshake, because that is when a connection starts to
//! cost a descriptor. Without a per-client cap and shedding, one address holding idle sockets
//! that never send a byte could take every slot until their handshake timeout.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::ratelimit::ClientKey;

/// How long an accept waits for a shed connection to give its slot back.
const SHED_WAIT: Duration = Duration::from_millis(250);

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// This client holds its maximum.
    ClientFull,
    /// Every slot is taken by a handshaken connection.
    Full,
}

impl Refused {
    /// Why, for the debug log.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::ClientFull => "this client's connection limit reached",
            Self::Full => "connection limit reached",
        }
    }
}

/// The admission state of a listener (or several sharing the limits).
#[derive(Debug)]
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    max_per_client: usize,
    per_client: Mutex<HashMap<ClientKey, usize>>,
    /// Connections still in their handshake, oldest first; sending on the channel closes one.
    unhandshaken: Mutex<BTreeMap<u64, oneshot::Sender<()>>>,
    next: AtomicU64,
}

impl Admission {
    /// `max_connections` slots, at most `max_per_client` for one client.
    pub(crate) fn new(max_connections: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max_connections)),
            max_per_client,
            per_client: Mutex::new(HashMap::new()),
            unhandshaken: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        })
    }

    /// Admits a new connection of `client`, shedding the oldest unhandshaken connection when
    /// every slot is taken.
    pub(crate) async fn admit(self: &Arc<Self>, client: ClientKey) -> Result<Admitted, Refused> {
        self.count(client)?;
        // From here on, dropping `pending` gives the client's count back.
        let mut pending = Admitted {
            admission: Arc::clone(self),
            client: Some(client),
            permit: None,
            ticket: None,
        };
        pending.permit = Some(self.slot().await?);
        Ok(pending)
    }

    /// Admits a connection whose client is not known yet (it will be named by its PROXY
    /// header, [`Admitted::assign`]) or is a local forwarder: a slot, no per-client count.
    pub(crate) async fn admit_unkeyed(self: &Arc<Self>) -> Result<Admitted, Refused> {
        let permit = self.slot().await?;
        Ok(Admitted {
            admission: Arc::clone(self),
            client: None,
            permit: Some(permit),
            ticket: None,
        })
    }

    /// Counts one more connection of `client`, unless it holds its maximum.
    fn count(&self, client: ClientKey) -> Result<(), Refused> {
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = per_client.entry(client).or_insert(0);
        if *count >= self.max_per_client {
            return Err(Refused::ClientFull);
        }
        *count += 1;
        Ok(())
    }

    /// A slot, shedding the oldest unhandshaken connection when every slot is taken.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, Refused> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if !self.shed_oldest() {
            return Err(Refused::Full);
        }
        let wait = Arc::clone(&self.slots).acquire_owned();
        match tokio::time::timeout(SHED_WAIT, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Refused::Full),
        }
    }

    /// Closes the oldest connection still in its handshake; `false` when there is none.
    fn shed_oldest(&self) -> bool {
        let mut unhandshaken = self
            .unhandshaken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while let Some((_, shed)) = unhandshaken.pop_first() {
            if shed.send(()).is_ok() {
                return true;
            }
        }
        false
    }

    /// Slots free right now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

/// An admitted connection: its slot and its client count, given back when dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    /// `None` until the client is known (or for a local forwarder's connection).
    client: Option<ClientKey>,
    permit: Option<OwnedSemaphorePermit>,
    ticket: Option<u64>,
}

impl Admitted {
    /// Registers the connection as in its handshake; the receiver completes when it is shed.
    pub(crate) fn handshaking(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let ticket = self.admission.next.fetch_add(1, Ordering::Relaxed);
        self.admission
            .unhandshaken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(ticket, tx);
        self.ticket = Some(ticket);
        rx
    }

    /// Names the client of a connection admitted unkeyed, counting it against the client's
    /// maximum; refused (and nothing counted) when the client holds its maximum already.
    pub(crate) fn assign(&mut self, client: ClientKey) -> Result<(), Refused> {
        if self.client.is_some() {
            return Ok(());
        }
        self.admission.count(client)?;
        self.client = Some(client);
        Ok(())
    }

    /// The handshake is done: the connection can no longer be shed.
    pub(crate) fn handshaken(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.admission
                .unhandshaken
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&ticket);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.handshaken();
        let Some(client) = self.client else { return };
        let mut per_client = self
            .admission
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_client.get_mut(&client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_client.remove(&client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LimitsConfig;
    use crate::ratelimit::RateLimiter;

    fn keys() -> (ClientKey, ClientKey) {
        let limiter = RateLimiter::new(&LimitsConfig::default().settings().unwrap());
        (
            limiter.key("127.0.0.2".parse().unwrap()),
            limiter.key("127.0.0.3".parse().unwrap()),
        )
    }

    #[tokio::test]
    async fn one_client_cannot_take_every_slot() {
        let (a, b) = keys();
        let admission = Admission::new(10, 3);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(admission.admit(a).await.unwrap());
        }
        assert_eq!(admission.admit(a).await.unwrap_err(), Refused::ClientFull);
        let other = admission.admit(b).await.unwrap();
        drop(held.pop());
        let again = admission.admit(a).await.unwrap();
        assert_eq!(admission.available(), 10 - 4);
        drop((other, again, held));
        assert_eq!(admission.available(), 10);
        assert!(admission.per_client.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn when_full_the_oldest_unhandshaken_connection_makes_room() {
        let (a, b) = keys();
        let admission = Admission::new(2, 10);
        let mut first = admission.admit(a).await.unwrap();
        let mut first_shed = first.handshaking();
        let mut second = admission.admit(a).await.unwrap();
        let _second_shed = second.handshaking();
        // The first connection's task closes it when told to.
        let closer = tokio::spawn(async move {
            let _ = (&mut first_shed).await;
            drop(first);
        });
        let third = admission.admit(b).await.unwrap();
        closer.await.unwrap();
        drop(third);
        // Handshaken connections are never shed.
        second.handshaken();
        let _fourth = admission.admit(b).await.unwrap();
        assert_eq!(admission.admit(b).await.unwrap_err(), Refused::Full);
    }
}
