//! [`ClusterError`]: why an exchange with a peer, or the cluster itself, failed. Every variant
//! names the peer (an operator's address, never a client's) and the step; none carries the
//! secret.

use std::time::Duration;

/// Why an exchange with a peer failed, or the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    /// The cluster listener could not be bound.
    #[error("binding the [cluster] listener on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS configuration of the cluster channel could not be built.
    #[error("the cluster's TLS configuration: {0}")]
    TlsConfig(String),
    /// This replica's own identity could not be turned into a policy.
    #[error("this replica's own measurements: {0}")]
    OwnIdentity(String),
    /// No randomness for a new root secret.
    #[error("generating the root secret: no randomness")]
    Random,
    /// A peer name did not resolve.
    #[error("{peer}: resolving the name: {source}")]
    Resolve {
        /// The peer entry.
        peer: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// A peer name resolved to no address.
    #[error("{peer}: the name resolves to no address")]
    NoAddress {
        /// The peer entry.
        peer: String,
    },
    /// The exchange did not finish in time.
    #[error("{peer}: no answer within {timeout:?}")]
    Timeout {
        /// The peer address.
        peer: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The TCP connection (or the egress proxy's) failed.
    #[error("{peer}: connecting: {source}")]
    Connect {
        /// The peer address.
        peer: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// This replica refused the peer's attestation: it is not a build we share with.
    #[error("{peer} is not a replica this one shares with: {source}")]
    PeerNotAccepted {
        /// The peer address.
        peer: String,
        /// What the verification found.
        source: shroud_ra_tls::Error,
    },
    /// The peer ended the handshake with an alert: it refused this replica's attestation (or
    /// the peer's port is not a `[cluster] listen` port).
    #[error(
        "{peer} refused this replica ({alert}): it does not accept our attestation (another build \
         without an allow_measurements entry for ours?), or this is not its [cluster] listen port; \
         its log says which"
    )]
    RefusedByPeer {
        /// The peer address.
        peer: String,
        /// The TLS alert it sent.
        alert: String,
    },
    /// Any other TLS or I/O failure of an established exchange.
    #[error("{peer}: {source}")]
    Io {
        /// The peer address.
        peer: String,
        /// The error.
        source: std::io::Error,
    },
    /// The peer's answer broke the cluster protocol.
    #[error("{peer}: malformed answer: {reason}")]
    Protocol {
        /// The peer address.
        peer: String,
        /// What was wrong.
        reason: &'static str,
    },
}

/// How an exchange with a peer ended, for `shroud_cluster_peers{state}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerState {
    /// Mutual RA-TLS succeeded.
    Verified,
    /// Attestation was refused, either way.
    Refused,
    /// No answer: name, connection, timeout or protocol.
    Unreachable,
    /// Verified, but the peer holds another root secret (two founders).
    Conflict,
}

impl PeerState {
    /// The index of the state in [`crate::metrics::CLUSTER_PEER_STATES`].
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Verified => 0,
            Self::Refused => 1,
            Self::Unreachable => 2,
            Self::Conflict => 3,
        }
    }
}

impl ClusterError {
    /// The gauge state of a failed exchange.
    pub(crate) fn peer_state(&self) -> PeerState {
        match self {
            Self::PeerNotAccepted { .. } | Self::RefusedByPeer { .. } => PeerState::Refused,
            _ => PeerState::Unreachable,
        }
    }

    /// Classifies a TLS error of an exchange with `peer`: our verifier's refusal, the peer's
    /// alert, or anything else.
    pub(crate) fn from_tls(peer: &str, error: std::io::Error) -> ClusterError {
        let peer = peer.to_owned();
        let tls = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(tls) = tls {
            if let Some(refusal) = shroud_ra_tls::tls::attestation_error(tls) {
                return ClusterError::PeerNotAccepted {
                    peer,
                    source: refusal.clone(),
                };
            }
            if let rustls::Error::AlertReceived(alert) = tls {
                return ClusterError::RefusedByPeer {
                    peer,
                    alert: format!("{alert:?}"),
                };
            }
        }
        ClusterError::Io {
            peer,
            source: error,
        }
    }
}
