//! The connection pool, bound to the SPKI of the last verified handshake.
//!
//! Every connection in the pool completed an attested handshake. The pool is *bound* to the
//! SubjectPublicKeyInfo (SPKI) of the most recent one: only connections whose certificate has that
//! key are reused. When a new handshake verifies a different key (the gateway rotated its
//! certificate, or another replica answered), the pool rebinds to it and drops idle connections
//! to the old key, so the client moves over to what it verified last. A connection is also never
//! reused once its certificate has expired, or after it sat idle for the idle timeout.
//!
//! HTTP/2 and HTTP/3 connections are shared by concurrent calls (they stay in the pool while in use);
//! HTTP/1.1 connections carry one call at a time and are checked out and back in.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use shroud_ra_tls::Verdict;
use tokio::task::JoinHandle;

/// The request body type of every pooled connection.
pub(crate) type Body = Full<Bytes>;

/// How many idle connections the pool keeps at most.
const MAX_IDLE: usize = 16;

/// The sending half of an HTTP connection, by negotiated version.
#[derive(Debug)]
pub(crate) enum Sender {
    /// One call at a time.
    Http1(http1::SendRequest<Body>),
    /// Multiplexed; clones share the connection.
    Http2(http2::SendRequest<Body>),
    /// HTTP/3 over QUIC, multiplexed; the QUIC connection tells whether it is closed.
    Http3 {
        sender: crate::quic::H3Sender,
        connection: quinn::Connection,
    },
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Self::Http1(sender) => sender.is_closed(),
            Self::Http2(sender) => sender.is_closed(),
            Self::Http3 { connection, .. } => connection.close_reason().is_some(),
        }
    }
}

/// Stops a connection driver when the last handle to the connection goes away.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An attested HTTP connection and what its handshake verified.
#[derive(Debug)]
pub(crate) struct PooledConnection {
    /// Sends requests on the connection.
    pub(crate) sender: Sender,
    /// The verdict of the connection's handshake.
    pub(crate) verdict: Arc<Verdict>,
    /// Keeps the connection driver alive as long as any handle exists.
    pub(crate) driver: Arc<AbortOnDrop>,
    /// Whether this handle came out of the pool (true) or from a fresh handshake.
    pub(crate) reused: bool,
}

impl PooledConnection {
    /// A handle sharing this HTTP/2 or HTTP/3 connection; `None` for HTTP/1.1.
    fn share(&self) -> Option<Self> {
        let sender = match &self.sender {
            Sender::Http2(sender) => Sender::Http2(sender.clone()),
            Sender::Http3 { sender, connection } => Sender::Http3 {
                sender: sender.clone(),
                connection: connection.clone(),
            },
            Sender::Http1(_) => return None,
        };
        Some(Self {
            sender,
            verdict: Arc::clone(&self.verdict),
            driver: Arc::clone(&self.driver),
            reused: true,
        })
    }
}

#[derive(Debug)]
struct Idle {
    connection: PooledConnection,
    since: Instant,
}

#[derive(Debug, Default)]
struct State {
    bound: Option<Arc<Verdict>>,
    idle: Vec<Idle>,
    opened: u64,
}

/// A snapshot of the pool, for diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Attested connections opened (handshakes completed and verified) so far.
    pub connections_opened: u64,
    /// Connections currently kept for reuse.
    pub idle: usize,
    /// SHA-256 of the SPKI the pool is bound to, once a handshake verified.
    pub bound_spki_sha256: Option<[u8; 32]>,
    /// SHA-256 of the certificate whose verification bound the pool.
    pub bound_cert_sha256: Option<[u8; 32]>,
}

/// The pool of attested connections of one [`Client`](crate::Client).
#[derive(Debug)]
pub(crate) struct Pool {
    state: Mutex<State>,
    idle_timeout: Duration,
}

impl Pool {
    pub(crate) fn new(idle_timeout: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            idle_timeout,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent; a panic elsewhere cannot tear it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A usable connection bound to the current SPKI, if the pool has one. `now` is unix
    /// seconds, for the certificate's expiry.
    pub(crate) fn checkout(&self, now: u64) -> Option<PooledConnection> {
        let mut state = self.state();
        let bound = state.bound.as_ref().map(|v| v.spki_sha256())?;
        let idle_timeout = self.idle_timeout;
        state.idle.retain(|idle| {
            idle.connection.verdict.spki_sha256() == bound
                && idle.connection.verdict.expires_at() >= now
                && !idle.connection.sender.is_closed()
                && idle.since.elapsed() < idle_timeout
        });
        let last = state.idle.len().checked_sub(1)?;
        let idle = state.idle.get_mut(last)?;
        if let Some(shared) = idle.connection.share() {
            idle.since = Instant::now();
            return Some(shared);
        }
        let mut connection = state.idle.swap_remove(last).connection;
        connection.reused = true;
        Some(connection)
    }

    /// Records a freshly verified connection: the pool binds to its SPKI (dropping idle
    /// connections to any other key). An HTTP/2 connection goes into the pool right away so
    /// concurrent calls can share it; the returned handle is the caller's.
    pub(crate) fn opened(&self, connection: PooledConnection) -> PooledConnection {
        let mut state = self.state();
        state.opened = state.opened.saturating_add(1);
        let spki = connection.verdict.spki_sha256();
        if state.bound.as_ref().map(|v| v.spki_sha256()) != Some(spki) {
            state
                .idle
                .retain(|idle| idle.connection.verdict.spki_sha256() == spki);
        }
        state.bound = Some(Arc::clone(&connection.verdict));
        if state.idle.len() < MAX_IDLE
            && let Some(shared) = connection.share()
        {
            state.idle.push(Idle {
                connection: shared,
                since: Instant::now(),
            });
        }
        connection
    }

    /// Returns an HTTP/1.1 connection after a complete exchange, if it is still bound.
    pub(crate) fn checkin(&self, connection: PooledConnection) {
        if !matches!(connection.sender, Sender::Http1(_)) || connection.sender.is_closed() {
            return;
        }
        let mut state = self.state();
        let bound = state.bound.as_ref().map(|v| v.spki_sha256());
        if bound == Some(connection.verdict.spki_sha256()) && state.idle.len() < MAX_IDLE {
            state.idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// Drops every idle connection; the next call opens, and attests, a new one.
    pub(crate) fn clear(&self) {
        self.state().idle.clear();
    }

    /// The verdict the pool is bound to.
    pub(crate) fn bound(&self) -> Option<Arc<Verdict>> {
        self.state().bound.clone()
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let state = self.state();
        PoolStats {
            connections_opened: state.opened,
            idle: state.idle.len(),
            bound_spki_sha256: state.bound.as_ref().map(|v| v.spki_sha256()),
            bound_cert_sha256: state.bound.as_ref().map(|v| v.cert_sha256()),
        }
    }
}
