//! A QUIC server that counts the stream bytes it receives after the handshake: the QUIC twin of
//! [`tls_counter`](crate::tls_counter).
//!
//! It proves the same promise over HTTP/3: when attestation fails inside the QUIC handshake, the
//! client never opens a stream, so not one byte of a request (nor even HTTP/3's control stream)
//! reaches the server. It completes handshakes with whatever `rustls::ServerConfig` the test gives
//! it, then reads every stream the peer opens, both directions and unidirectional, and never
//! answers.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use quinn::crypto::rustls::QuicServerConfig;
use tokio::task::{JoinHandle, JoinSet};

#[derive(Debug, Default)]
struct Counters {
    stream_bytes: AtomicUsize,
    streams: AtomicUsize,
    accepted: AtomicUsize,
    completed: AtomicUsize,
    failed: AtomicUsize,
    closed: AtomicUsize,
}

/// A QUIC server on UDP `127.0.0.1:0` that counts what it receives. Stops when dropped.
#[derive(Debug)]
pub struct CountingQuicServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    accept_loop: JoinHandle<()>,
    endpoint: quinn::Endpoint,
}

impl CountingQuicServer {
    /// Binds UDP `127.0.0.1:0` and serves QUIC with `config` (TLS 1.3; its
    /// `max_early_data_size` must be 0 or `u32::MAX`, as QUIC requires).
    pub async fn start(config: rustls::ServerConfig) -> io::Result<Self> {
        let crypto = QuicServerConfig::try_from(config).map_err(io::Error::other)?;
        let server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint = quinn::Endpoint::server(server, ([127, 0, 0, 1], 0).into())?;
        let addr = endpoint.local_addr()?;
        let counters = Arc::new(Counters::default());
        let accept_loop = tokio::spawn(accept_loop(endpoint.clone(), Arc::clone(&counters)));
        Ok(Self {
            addr,
            counters,
            accept_loop,
            endpoint,
        })
    }

    /// The UDP address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stream bytes received over all completed handshakes so far.
    pub fn stream_bytes_received(&self) -> usize {
        self.counters.stream_bytes.load(Ordering::SeqCst)
    }

    /// Streams the peers opened (whether or not they carried bytes).
    pub fn streams_opened(&self) -> usize {
        self.counters.streams.load(Ordering::SeqCst)
    }

    /// Connection attempts (Initial packets that became an incoming connection) so far.
    pub fn connections_accepted(&self) -> usize {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    /// QUIC handshakes that completed.
    pub fn handshakes_completed(&self) -> usize {
        self.counters.completed.load(Ordering::SeqCst)
    }

    /// QUIC handshakes that failed (the peer aborted with a TLS alert, or timed out).
    pub fn handshakes_failed(&self) -> usize {
        self.counters.failed.load(Ordering::SeqCst)
    }

    /// Connections that are over.
    pub fn connections_closed(&self) -> usize {
        self.counters.closed.load(Ordering::SeqCst)
    }

    /// Waits until at least `connections` connections were accepted and all accepted ones are
    /// over, so the counts are final. `false` if that did not happen within `timeout`.
    pub async fn wait_until_closed(&self, connections: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let accepted = self.connections_accepted();
            if accepted >= connections && self.connections_closed() >= accepted {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for CountingQuicServer {
    fn drop(&mut self) {
        self.endpoint.close(0u32.into(), b"");
        // Dropping the accept loop drops its JoinSet, which aborts every connection task.
        self.accept_loop.abort();
    }
}

async fn accept_loop(endpoint: quinn::Endpoint, counters: Arc<Counters>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { return };
                counters.accepted.fetch_add(1, Ordering::SeqCst);
                connections.spawn(serve(incoming, Arc::clone(&counters)));
            }
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(incoming: quinn::Incoming, counters: Arc<Counters>) {
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(_) => {
            counters.failed.fetch_add(1, Ordering::SeqCst);
            counters.closed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    counters.completed.fetch_add(1, Ordering::SeqCst);
    let mut streams = JoinSet::new();
    let mut held = Vec::new();
    loop {
        // The sending half of a bidirectional stream is kept open (never answered): dropping it
        // would finish the stream, which the peer would take as an empty answer.
        let accepted = tokio::select! {
            bi = connection.accept_bi() => bi.map(|(send, recv)| (Some(send), recv)),
            uni = connection.accept_uni() => uni.map(|recv| (None, recv)),
        };
        let Ok((send, mut recv)) = accepted else {
            break;
        };
        // Kept until the connection ends (a test opens a handful of streams at most).
        held.extend(send);
        counters.streams.fetch_add(1, Ordering::SeqCst);
        let counters = Arc::clone(&counters);
        streams.spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            // Count as bytes arrive, so a test can observe them while the stream stays open.
            while let Ok(Some(n)) = recv.read(&mut buf).await {
                counters.stream_bytes.fetch_add(n, Ordering::SeqCst);
            }
        });
    }
    drop(held);
    while streams.join_next().await.is_some() {}
    counters.closed.fetch_add(1, Ordering::SeqCst);
}
