//! Key rotation of a clustered replica: once it holds the root secret, at every epoch boundary
//! it derives that epoch's keys, issues a certificate whose `ohttp-keys` claim binds exactly
//! the list it will serve, installs the keys and serves the certificate. Between boundaries it
//! re-issues the certificate (same keys) as often as the platform's evidence requires.
//!
//! Besides the current epoch's keys, the previous and the next epoch's are accepted: a client
//! that fetched the keys just before a boundary keeps working, and so does one that fetched
//! them from a replica whose clock is slightly ahead.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shroud_ra_tls::attest::Attester as _;
use shroud_ra_tls::tls::RotatingCertResolver;
use tokio::sync::watch;

use super::epoch::Epochs;
use super::secret::RootSecret;
use super::status::ClusterStatus;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::ohttp::OhttpState;
use crate::ohttp::keys::PendingKeys;
use crate::tls::{self, Issuer};

/// How soon a failed issue is retried.
const RETRY: Duration = Duration::from_secs(5);
/// How long after a boundary the new epoch's certificate is issued, so that the wall clock
/// has surely crossed it.
const AFTER_BOUNDARY: Duration = Duration::from_millis(20);

/// What rotating the served keys and certificate touches.
pub(crate) struct Rotation {
    /// Issues the certificates.
    pub(crate) issuer: Arc<Issuer>,
    /// Serves them.
    pub(crate) resolver: Arc<RotatingCertResolver>,
    /// `shroud_attestation_age_seconds`, `shroud_cluster_secret_held`.
    pub(crate) metrics: Arc<Metrics>,
    /// The OHTTP key ring.
    pub(crate) ohttp: Arc<OhttpState>,
    /// Readiness.
    pub(crate) status: Arc<ClusterStatus>,
    /// The root secret, once held.
    pub(crate) secret: watch::Receiver<Option<Arc<RootSecret>>>,
    /// The key epochs.
    pub(crate) epochs: Epochs,
}

/// The time since the Unix epoch by the wall clock.
fn since_unix() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Waits for the secret, then keeps the served keys on the current epoch; runs until aborted.
pub(crate) async fn rotate_in_epochs(mut rotation: Rotation) {
    let secret = loop {
        if let Some(secret) = rotation.secret.borrow_and_update().clone() {
            break secret;
        }
        if rotation.secret.changed().await.is_err() {
            return;
        }
    };
    let refresh_every = tls::rotation_interval(rotation.issuer.attester().platform());
    let mut installed: Option<u64> = None;
    let mut issued_at = Instant::now();
    loop {
        let epoch = rotation.epochs.at(since_unix());
        let stale = issued_at.elapsed() >= refresh_every;
        if installed != Some(epoch) || stale {
            if stale
                && installed.is_some()
                && let Err(error) = rotation.issuer.attester().refresh().await
            {
                tracing::error!(%error, "collateral refresh failed; certificates keep the previous collateral");
            }
            match install(&rotation, &secret, epoch).await {
                Ok(()) => {
                    if installed.is_none() {
                        rotation.status.set_ready();
                        rotation.metrics.cluster_secret_held(true);
                        tracing::info!(
                            epoch,
                            "cluster: ready: serving the OHTTP keys derived from the cluster secret"
                        );
                    } else if installed != Some(epoch) {
                        tracing::info!(epoch, "cluster: rotated to the next key epoch");
                    } else {
                        tracing::info!("RA-TLS certificate rotated with fresh evidence");
                    }
                    rotation.metrics.certificate_issued();
                    installed = Some(epoch);
                    issued_at = Instant::now();
                }
                Err(error) => {
                    tracing::error!(%error, epoch, "cluster: issuing the certificate of the key epoch failed; retrying");
                    if installed.is_none() {
                        rotation.status.set_waiting(format!(
                            "holding the cluster secret, but issuing the certificate for its keys failed: {error}"
                        ));
                    }
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        let until_boundary = rotation
            .epochs
            .until_next(since_unix())
            .saturating_add(AFTER_BOUNDARY);
        let until_stale = refresh_every.saturating_sub(issued_at.elapsed());
        tokio::time::sleep(until_boundary.min(until_stale)).await;
    }
}

/// Derives `epoch`'s keys, issues the certificate binding their list, then installs the keys
/// (with the neighbouring epochs') and serves the certificate. Evidence may block, so it is made
/// on the blocking pool.
async fn install(
    rotation: &Rotation,
    secret: &Arc<RootSecret>,
    epoch: u64,
) -> Result<(), GatewayError> {
    let current = PendingKeys::from_keys(secret.epoch_keys(epoch));
    let mut neighbours = epoch
        .checked_sub(1)
        .map(|previous| secret.epoch_keys(previous))
        .unwrap_or_default();
    neighbours.extend(secret.epoch_keys(epoch.saturating_add(1)));
    let issuer = Arc::clone(&rotation.issuer);
    let list = current.list.clone();
    let certificate = tokio::task::spawn_blocking(move || issuer.issue(&list))
        .await
        .map_err(|e| GatewayError::Task(e.to_string()))??;
    // Keys first: a client that sees the new certificate finds its keys accepted.
    rotation.ohttp.install_epoch(current, neighbours);
    rotation.resolver.rotate(&certificate)?;
    Ok(())
}
