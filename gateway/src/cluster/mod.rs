//! `[cluster]`: replicas that share attested OHTTP keys (DESIGN §10).
//!
//! Replicas of one build behind an L4 balancer must serve the same OHTTP keys, or a browser
//! that fetched keys from one gets 422 from the next. So they share one **root secret**,
//! created by the founding replica and sent over mutual RA-TLS, only to a peer whose evidence
//! verifies and whose measurements equal this replica's own (or are allow-listed); each
//! replica then derives every epoch's keys from it, and all rotate together.
//!
//! * [`secret`]: the root secret and what is derived from it (keys per epoch, fingerprint);
//! * [`epoch`]: the wall clock in epochs, and each epoch's key ids;
//! * [`wire`]: the one-request, one-answer protocol inside the channel;
//! * [`trust`]: which peers are accepted, and the mutual RA-TLS configurations;
//! * [`serve`]: the cluster listener, answering peers;
//! * [`dial`]: asking peers (names resolved on every round);
//! * [`acquire`]: founding, or waiting for a peer's secret; then probing;
//! * [`rotation`]: serving each epoch's keys under a certificate that binds them;
//! * [`status`]: readiness and its reason; [`error`]: what went wrong where.

pub(crate) mod acquire;
pub(crate) mod dial;
pub(crate) mod epoch;
pub(crate) mod error;
pub(crate) mod rotation;
pub(crate) mod secret;
pub(crate) mod serve;
pub(crate) mod status;
pub(crate) mod trust;
pub(crate) mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use shroud_ra_tls::attest::Attester as _;
use shroud_ra_tls::tls::RotatingCertResolver;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use self::acquire::Membership;
use self::dial::Dialer;
use self::epoch::Epochs;
use self::error::ClusterError;
use self::rotation::Rotation;
use self::secret::RootSecret;
use self::serve::Listening;
use self::status::ClusterStatus;
use self::trust::PeerTrust;
use crate::collateral::EndorsedAttester;
use crate::metrics::Metrics;
use crate::ohttp::OhttpState;
use crate::settings::ClusterSettings;
use crate::tls::{self, Issuer};
use crate::transport::EgressProxy;

/// A replica's cluster part, bound and not yet running.
pub(crate) struct Cluster {
    settings: ClusterSettings,
    listener: TcpListener,
    local_addr: SocketAddr,
    trust: Arc<PeerTrust>,
    status: Arc<ClusterStatus>,
    egress: Option<Arc<EgressProxy>>,
    epochs: Epochs,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("listen", &self.local_addr)
            .field("found", &self.settings.found)
            .finish_non_exhaustive()
    }
}

/// What the running cluster part changes in the rest of the gateway.
pub(crate) struct Serving {
    /// Issues the certificates binding each epoch's keys.
    pub(crate) issuer: Arc<Issuer>,
    /// Serves them (and is this replica's certificate towards its peers).
    pub(crate) resolver: Arc<RotatingCertResolver>,
    /// The gauges.
    pub(crate) metrics: Arc<Metrics>,
    /// The OHTTP key ring.
    pub(crate) ohttp: Arc<OhttpState>,
}

impl Cluster {
    /// Works out whom this replica shares with (its own measurements, from `attester`, and the
    /// allowed builds; its TCB status from its first `certificate`) and binds the cluster
    /// listener. `resolver` serves this replica's certificate, to peers too.
    pub(crate) async fn bind(
        settings: ClusterSettings,
        egress: Option<Arc<EgressProxy>>,
        attester: &EndorsedAttester,
        certificate: &[u8],
        resolver: Arc<RotatingCertResolver>,
    ) -> Result<Cluster, ClusterError> {
        let platform = attester.platform();
        let own_tcb = PeerTrust::own_tcb_status(platform, certificate);
        let trust = Arc::new(PeerTrust::new(
            platform,
            &attester.measurements(),
            own_tcb,
            &settings.allow,
            settings.danger_allow_simulated,
            resolver,
        )?);
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| ClusterError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ClusterError::Bind {
            addr: settings.listen,
            source,
        })?;
        let epochs = Epochs::new(
            settings
                .key_epoch
                .unwrap_or_else(|| tls::rotation_interval(platform)),
        );
        Ok(Cluster {
            settings,
            listener,
            local_addr,
            trust,
            status: Arc::new(ClusterStatus::new()),
            egress,
            epochs,
        })
    }

    /// The cluster listener's address (the real port when bound to port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Readiness, for `/readyz`.
    pub(crate) fn status(&self) -> Arc<ClusterStatus> {
        Arc::clone(&self.status)
    }

    /// Answers peers, obtains the secret and keeps the served keys on the current epoch, until
    /// `stop` (the rotation until the returned future is dropped).
    pub(crate) async fn run(
        self,
        serving: Serving,
        stop: watch::Receiver<bool>,
    ) -> Result<(), ClusterError> {
        tracing::info!(
            epoch_secs = self.epochs.length().as_secs(),
            found = self.settings.found,
            peers = self.settings.peers.len(),
            "cluster: sharing the OHTTP keys with verified replicas of this build"
        );
        let (secret_tx, secret_rx) = watch::channel::<Option<Arc<RootSecret>>>(None);
        let listening = Listening {
            listener: self.listener,
            acceptor: TlsAcceptor::from(self.trust.server_config()?),
            trust: Arc::clone(&self.trust),
            secret: secret_rx.clone(),
            timeout: self.settings.timeout,
        };
        let membership = Membership {
            dialer: Dialer {
                peers: self.settings.peers,
                egress: self.egress,
                connector: TlsConnector::from(self.trust.client_config()?),
                trust: Arc::clone(&self.trust),
                timeout: self.settings.timeout,
            },
            found: self.settings.found,
            secret: secret_tx,
            status: Arc::clone(&self.status),
            metrics: Arc::clone(&serving.metrics),
        };
        let rotation = Rotation {
            issuer: serving.issuer,
            resolver: serving.resolver,
            metrics: serving.metrics,
            ohttp: serving.ohttp,
            status: self.status,
            secret: secret_rx,
            epochs: self.epochs,
        };
        tokio::join!(
            serve::serve(listening, stop.clone()),
            acquire::run(membership, stop),
            rotation::rotate_in_epochs(rotation),
        );
        Ok(())
    }
}
