//! A TLS server that counts the application bytes it receives after the handshake.
//!
//! It exists to prove the client's central promise: when attestation fails, the TLS handshake
//! aborts and not one byte of the request reaches the server. The server completes handshakes
//! with whatever `rustls::ServerConfig` the test gives it (an RA-TLS certificate, a plain
//! certificate, ALPN of the test's choosing), then reads everything the peer sends and never
//! answers.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, Default)]
struct Counters {
    app_bytes: AtomicUsize,
    accepted: AtomicUsize,
    completed: AtomicUsize,
    failed: AtomicUsize,
    closed: AtomicUsize,
}

/// A TLS server on `127.0.0.1:0` that counts what it receives. Stops when dropped.
#[derive(Debug)]
pub struct CountingTlsServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    accept_loop: JoinHandle<()>,
}

impl CountingTlsServer {
    /// Binds `127.0.0.1:0` and serves TLS with `config`.
    pub async fn start(config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let acceptor = TlsAcceptor::from(config);
        let accept_loop = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&counters)));
        Ok(Self {
            addr,
            counters,
            accept_loop,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Application bytes received over all completed handshakes so far.
    pub fn app_bytes_received(&self) -> usize {
        self.counters.app_bytes.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    /// TLS handshakes that completed.
    pub fn handshakes_completed(&self) -> usize {
        self.counters.completed.load(Ordering::SeqCst)
    }

    /// TLS handshakes that failed (the peer aborted, sent an alert, or sent garbage).
    pub fn handshakes_failed(&self) -> usize {
        self.counters.failed.load(Ordering::SeqCst)
    }

    /// Connections that are over: the handshake failed, or the peer closed (or reset) the
    /// connection after it completed.
    pub fn connections_closed(&self) -> usize {
        self.counters.closed.load(Ordering::SeqCst)
    }

    /// Waits until at least `connections` connections were accepted and all accepted ones are
    /// over, so the byte count is final. Returns `false` if that did not happen within `timeout`.
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

impl Drop for CountingTlsServer {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection task.
        self.accept_loop.abort();
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, counters: Arc<Counters>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                counters.accepted.fetch_add(1, Ordering::SeqCst);
                connections.spawn(serve(stream, acceptor.clone(), Arc::clone(&counters)));
            }
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(stream: TcpStream, acceptor: TlsAcceptor, counters: Arc<Counters>) {
    let mut tls = match acceptor.accept(stream).await {
        Ok(tls) => tls,
        Err(_) => {
            counters.failed.fetch_add(1, Ordering::SeqCst);
            counters.closed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    counters.completed.fetch_add(1, Ordering::SeqCst);
    let mut buf = vec![0u8; 16 * 1024];
    // Count as bytes arrive, so a test can observe them while the peer keeps the connection open.
    while let Ok(n @ 1..) = tls.read(&mut buf).await {
        counters.app_bytes.fetch_add(n, Ordering::SeqCst);
    }
    counters.closed.fetch_add(1, Ordering::SeqCst);
}
