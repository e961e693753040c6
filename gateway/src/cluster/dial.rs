//! Dialing peers: resolve every `[cluster] peers` entry (again on every round, since a
//! Kubernetes headless Service's addresses change as replicas come and go), then one mutual
//! RA-TLS exchange with each address, all at once, each within the timeout.
//!
//! With `[egress]`, the enclave has no network of its own: each entry is dialed by name through
//! the egress proxy, which resolves it (to one address per connection).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use super::error::ClusterError;
use super::secret::{FINGERPRINT_LEN, SECRET_LEN};
use super::trust::PeerTrust;
use super::wire::{ANSWER_HEAD_LEN, Answer, Request};
use crate::settings::PeerAddress;
use crate::transport::{EgressProxy, Stream};

/// Most addresses one peer entry may resolve to; the rest are not dialed this round.
const MAX_ADDRESSES_PER_PEER: usize = 64;

/// Where one exchange goes.
#[derive(Debug, Clone)]
enum Target {
    /// A resolved address.
    Address(SocketAddr),
    /// A name the egress proxy resolves.
    ByName(PeerAddress),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address(addr) => addr.fmt(f),
            Self::ByName(peer) => peer.fmt(f),
        }
    }
}

/// How one exchange with one address ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A verified peer answered.
    Answered(Answer),
    /// The address is this replica's own.
    Myself,
    /// It failed; the error says where and why.
    Failed(ClusterError),
}

/// Dials the configured peers.
pub(crate) struct Dialer {
    /// The configured entries.
    pub(crate) peers: Vec<PeerAddress>,
    /// The egress proxy, when the enclave has no network of its own.
    pub(crate) egress: Option<Arc<EgressProxy>>,
    /// Our certificate presented, theirs verified.
    pub(crate) connector: TlsConnector,
    /// Who we share with.
    pub(crate) trust: Arc<PeerTrust>,
    /// The deadline of resolving, and of each exchange.
    pub(crate) timeout: Duration,
}

impl Dialer {
    /// Sends `request` to every address of every peer at once; one outcome per address (or
    /// per entry that did not resolve), labelled with the address.
    pub(crate) async fn round(&self, request: Request) -> Vec<(String, Outcome)> {
        let mut targets = Vec::new();
        let mut outcomes = Vec::new();
        for peer in &self.peers {
            match self.resolve(peer).await {
                Ok(resolved) => targets.extend(resolved),
                Err(error) => outcomes.push((peer.to_string(), Outcome::Failed(error))),
            }
        }
        let exchanges = targets.into_iter().map(|target| async move {
            let label = target.to_string();
            let outcome =
                match tokio::time::timeout(self.timeout, self.exchange(&target, request)).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(error)) => Outcome::Failed(error),
                    Err(_) => Outcome::Failed(ClusterError::Timeout {
                        peer: label.clone(),
                        timeout: self.timeout,
                    }),
                };
            (label, outcome)
        });
        outcomes.extend(futures_util::future::join_all(exchanges).await);
        outcomes
    }

    /// The addresses of `peer` now.
    async fn resolve(&self, peer: &PeerAddress) -> Result<Vec<Target>, ClusterError> {
        if self.egress.is_some() {
            return Ok(vec![Target::ByName(peer.clone())]);
        }
        let lookup = tokio::net::lookup_host((peer.host.as_str(), peer.port));
        let addresses = match tokio::time::timeout(self.timeout, lookup).await {
            Ok(Ok(addresses)) => addresses,
            Ok(Err(source)) => {
                return Err(ClusterError::Resolve {
                    peer: peer.to_string(),
                    source,
                });
            }
            Err(_) => {
                return Err(ClusterError::Timeout {
                    peer: peer.to_string(),
                    timeout: self.timeout,
                });
            }
        };
        let mut targets: Vec<Target> = Vec::new();
        for address in addresses.take(MAX_ADDRESSES_PER_PEER) {
            if !targets
                .iter()
                .any(|t| matches!(t, Target::Address(a) if *a == address))
            {
                targets.push(Target::Address(address));
            }
        }
        if targets.is_empty() {
            return Err(ClusterError::NoAddress {
                peer: peer.to_string(),
            });
        }
        Ok(targets)
    }

    /// One exchange: connect, mutual RA-TLS, `request`, the answer (read exactly, bounded).
    async fn exchange(&self, target: &Target, request: Request) -> Result<Outcome, ClusterError> {
        let label = target.to_string();
        let stream = match target {
            Target::Address(addr) => tokio::net::TcpStream::connect(addr).await.map(Stream::Tcp),
            Target::ByName(peer) => match &self.egress {
                Some(egress) => egress.connect(&peer.host, peer.port).await,
                None => Err(std::io::Error::other("no egress proxy")),
            },
        }
        .map_err(|source| ClusterError::Connect {
            peer: label.clone(),
            source,
        })?;
        // The verifier ignores the name (the evidence is the identity); this one reveals
        // nothing in the clear ClientHello.
        let name = ServerName::try_from("shroud-cluster.invalid")
            .map_err(|e| ClusterError::TlsConfig(e.to_string()))?;
        let mut tls = self
            .connector
            .connect(name, stream)
            .await
            .map_err(|e| ClusterError::from_tls(&label, e))?;
        let myself = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .is_some_and(|certificate| self.trust.is_own(certificate));
        if myself {
            return Ok(Outcome::Myself);
        }
        tls.write_all(&request.encode())
            .await
            .map_err(|e| ClusterError::from_tls(&label, e))?;
        tls.flush()
            .await
            .map_err(|e| ClusterError::from_tls(&label, e))?;
        let mut head = [0_u8; ANSWER_HEAD_LEN];
        tls.read_exact(&mut head)
            .await
            .map_err(|e| ClusterError::from_tls(&label, e))?;
        let protocol = |reason| ClusterError::Protocol {
            peer: label.clone(),
            reason,
        };
        let len = Answer::body_len(head).map_err(protocol)?;
        let mut body = Zeroizing::new([0_u8; FINGERPRINT_LEN + SECRET_LEN]);
        let body = body
            .get_mut(..len)
            .ok_or_else(|| protocol("wrong length"))?;
        tls.read_exact(body)
            .await
            .map_err(|e| ClusterError::from_tls(&label, e))?;
        let answer = Answer::decode(head, body).map_err(protocol)?;
        Ok(Outcome::Answered(answer))
    }
}
