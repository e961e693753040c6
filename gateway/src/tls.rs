//! The RA-TLS side: choosing the attester, issuing the certificate, and rotating it with fresh
//! evidence.

use std::sync::Arc;
use std::time::Duration;

use shroud_ra_tls::attest::Attester;
use shroud_ra_tls::attest::detect::DetectPaths;
use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{AttestedCertificate, IssueParams, issue_certificate};
use shroud_ra_tls::tls::RotatingCertResolver;
use shroud_ra_tls::{Platform, UnixTime};

use crate::collateral::EndorsedAttester;
use crate::config::{TeeConfig, TeePlatform};
use crate::error::GatewayError;
use crate::transport::EgressProxy;

/// How often the certificate is re-issued with fresh evidence (DESIGN §3; it is valid 24 h).
pub(crate) const ROTATION_INTERVAL: Duration = Duration::from_secs(12 * 3600);
/// Nitro's rotation interval: the NSM signs each document with a leaf certificate that expires
/// about 3 h after issue, and verifiers check the whole chain at their clock.
pub(crate) const NITRO_ROTATION_INTERVAL: Duration = Duration::from_secs(3600);

/// How often certificates of `platform` are re-issued: before any part of their evidence
/// expires.
pub(crate) fn rotation_interval(platform: Platform) -> Duration {
    match platform {
        Platform::Nitro => NITRO_ROTATION_INTERVAL,
        _ => ROTATION_INTERVAL,
    }
}

/// How soon a failed rotation is retried; the current certificate stays valid meanwhile.
const ROTATION_RETRY: Duration = Duration::from_secs(300);
/// ALPN protocols of the TCP listener, preferred first.
pub(crate) const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Printed to stderr whenever the simulated TEE is used.
pub const INSECURE_WARNING: &str = "\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  WARNING: shroud-gateway is running with the SIMULATED TEE.               !!
!!  This is INSECURE and NOT ATTESTED: the evidence is signed by a key made   !!
!!  at start-up and proves nothing about the code or the machine. Anyone can  !!
!!  produce it. Clients accept it only with --allow-simulated.                !!
!!  DEVELOPMENT ONLY. Never serve real users with this configuration.         !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";

/// The attester for the configured platform: the simulated one only when asked for by name
/// (`--dev` or `platform = "simulated"`), else the hardware TEE's, detected for `auto`. Without a
/// TEE the gateway refuses to start. Blocks (hashing the executable, probing the device).
pub(crate) fn attester_for(
    tee: &TeeConfig,
    egress: Option<&Arc<EgressProxy>>,
) -> Result<Arc<EndorsedAttester>, GatewayError> {
    let inner: Box<dyn Attester> = match tee.platform {
        TeePlatform::Simulated => {
            eprintln!("{INSECURE_WARNING}");
            tracing::warn!("simulated TEE: insecure, not attested, development only");
            Box::new(SimulatedAttester::for_current_executable()?)
        }
        platform => {
            let wanted = match platform {
                TeePlatform::Auto => None,
                TeePlatform::Nitro => Some(Platform::Nitro),
                TeePlatform::Tdx => Some(Platform::Tdx),
                TeePlatform::SevSnp => Some(Platform::SevSnp),
                TeePlatform::Sgx => Some(Platform::Sgx),
                TeePlatform::Simulated => Some(Platform::Simulated),
            };
            let attester = DetectPaths::default().hardware_attester(wanted)?;
            tracing::info!(platform = %attester.platform(), "hardware TEE attester ready");
            attester
        }
    };
    Ok(Arc::new(EndorsedAttester::new(inner, tee, egress)?))
}

/// Issues a certificate with fresh evidence, valid from now, whose `ohttp-keys` claim binds the
/// exact `application/ohttp-keys` bytes served.
pub(crate) fn issue(
    attester: &dyn Attester,
    hosts: &[String],
    ohttp_keys: &[u8],
) -> Result<AttestedCertificate, GatewayError> {
    let mut params = IssueParams::new(hosts.to_vec(), UnixTime::now());
    params.ohttp_keys = Some(ohttp_keys.to_vec());
    Ok(issue_certificate(attester, &params)?)
}

/// Re-issues the certificate every [`ROTATION_INTERVAL`] with fresh collateral (where the
/// platform has any; on failure the previous collateral is kept) and a new generation of OHTTP
/// keys, and swaps both in (the previous keys stay valid until the next rotation); runs until
/// the task is aborted. Evidence generation may block (hardware ioctls), so it runs on the
/// blocking pool.
pub(crate) async fn rotate_forever(
    attester: Arc<EndorsedAttester>,
    hosts: Vec<String>,
    resolver: Arc<RotatingCertResolver>,
    metrics: Arc<crate::metrics::Metrics>,
    ohttp: Arc<crate::ohttp::OhttpState>,
) {
    let interval = rotation_interval(attester.platform());
    let mut wait = interval;
    loop {
        tokio::time::sleep(wait).await;
        if let Err(error) = attester.refresh().await {
            tracing::error!(%error, "collateral refresh failed; certificates keep the previous collateral");
        }
        let attester = Arc::clone(&attester);
        let hosts_now = hosts.clone();
        let keys = ohttp.generate();
        let issued = match keys {
            Ok(keys) => {
                tokio::task::spawn_blocking(move || {
                    issue(attester.as_ref(), &hosts_now, &keys.list).map(|cert| (cert, keys))
                })
                .await
            }
            Err(e) => Ok(Err(GatewayError::Ohttp(e.to_string()))),
        };
        let rotated = match issued {
            // Keys first: the previous generation stays accepted, so clients holding the old
            // certificate keep working while new handshakes see the new one.
            Ok(Ok((cert, keys))) => {
                ohttp.install(keys);
                resolver.rotate(&cert).map_err(|e| e.to_string())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        wait = match rotated {
            Ok(()) => {
                metrics.certificate_issued();
                tracing::info!("RA-TLS certificate rotated with fresh evidence");
                interval
            }
            Err(error) => {
                tracing::error!(%error, "RA-TLS certificate rotation failed; retrying");
                ROTATION_RETRY
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_rotate_before_their_evidence_expires() {
        // A Nitro document's leaf certificate lives about 3 h.
        assert!(rotation_interval(Platform::Nitro) < Duration::from_secs(3 * 3600));
        for platform in [
            Platform::Tdx,
            Platform::Sgx,
            Platform::SevSnp,
            Platform::Simulated,
        ] {
            assert_eq!(rotation_interval(platform), ROTATION_INTERVAL);
        }
    }
}
