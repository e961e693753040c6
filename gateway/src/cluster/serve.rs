//! The cluster listener: every replica answers its peers, whether or not it holds the secret
//! yet. A connection is one mutual RA-TLS handshake (the peer's certificate verified by
//! [`super::trust::PeerTrust`] before the handshake finishes), one request, one answer, all
//! within the configured timeout; at most [`MAX_CONNECTIONS`] at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::error::ClusterError;
use super::secret::RootSecret;
use super::trust::PeerTrust;
use super::wire::{Answer, REQUEST_LEN, Request};
use crate::shutdown::{AcceptBackoff, stopped};

/// Most cluster connections served at once; more are closed at accept. A cluster has a
/// handful of replicas, each with one exchange in flight.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// What the listener needs.
pub(crate) struct Listening {
    /// The bound listener.
    pub(crate) listener: TcpListener,
    /// The TLS configuration: our certificate, the peer's required and verified.
    pub(crate) acceptor: TlsAcceptor,
    /// Who we share with.
    pub(crate) trust: Arc<PeerTrust>,
    /// The root secret once this replica holds it.
    pub(crate) secret: watch::Receiver<Option<Arc<RootSecret>>>,
    /// The deadline of one whole exchange.
    pub(crate) timeout: Duration,
}

/// Serves peers until `stop` turns true.
pub(crate) async fn serve(listening: Listening, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = AcceptBackoff::default();
    let listening = Arc::new(listening);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listening.listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.reset();
                    accepted
                }
                Err(error) => {
                    backoff.wait("cluster", &error).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => return,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, "cluster: too many peer connections at once; closing a new one");
            continue;
        };
        let listening = Arc::clone(&listening);
        tokio::spawn(async move {
            let _slot = slot;
            let exchange = answer(&listening, stream, peer);
            let outcome = match tokio::time::timeout(listening.timeout, exchange).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ClusterError::Timeout {
                    peer: peer.to_string(),
                    timeout: listening.timeout,
                }),
            };
            match outcome {
                Ok(()) => {}
                Err(error @ ClusterError::PeerNotAccepted { .. }) => {
                    tracing::warn!("cluster: refused a connection: {error}");
                }
                Err(error) => tracing::info!("cluster: a peer connection failed: {error}"),
            }
        });
    }
}

/// One exchange with the peer at `peer`.
async fn answer(
    listening: &Listening,
    stream: TcpStream,
    peer: SocketAddr,
) -> Result<(), ClusterError> {
    let name = peer.to_string();
    let mut tls = listening
        .acceptor
        .accept(stream)
        .await
        .map_err(|e| ClusterError::from_tls(&name, e))?;
    let mut request = [0_u8; REQUEST_LEN];
    tls.read_exact(&mut request)
        .await
        .map_err(|e| ClusterError::from_tls(&name, e))?;
    let request = Request::decode(request).map_err(|reason| ClusterError::Protocol {
        peer: name.clone(),
        reason,
    })?;
    let secret = listening.secret.borrow().clone();
    let answer = match (request, secret) {
        (_, None) => Answer::NotHolding,
        (Request::Probe, Some(secret)) => Answer::Holding(secret.fingerprint()),
        (Request::Secret, Some(secret)) => Answer::Secret(secret),
    };
    let bytes = answer.encode();
    tls.write_all(&bytes)
        .await
        .map_err(|e| ClusterError::from_tls(&name, e))?;
    tls.shutdown()
        .await
        .map_err(|e| ClusterError::from_tls(&name, e))?;
    let certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first());
    let who = certificate.map_or_else(String::new, |c| listening.trust.describe(c));
    match answer {
        Answer::Secret(_) => {
            tracing::info!(
                "cluster: sent the root secret to the verified replica at {peer} ({who})"
            );
        }
        Answer::NotHolding if request == Request::Secret => {
            tracing::info!(
                "cluster: a verified replica at {peer} asked for the secret; this one holds none yet"
            );
        }
        _ => tracing::debug!("cluster: answered a probe from {peer} ({who})"),
    }
    Ok(())
}
