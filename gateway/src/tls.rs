//! The RA-TLS side: choosing the attester, issuing the certificate, and rotating it with fresh
//! evidence.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256};
use shroud_ra_tls::attest::Attester;
use shroud_ra_tls::attest::detect::DetectPaths;
use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{AttestedCertificate, IssueParams, issue_certificate_with_key};
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
/// The same with TLS-ALPN-01's protocol (RFC 8737) first, when `[acme]` is configured: only the
/// CA's validation offers it, it must be the protocol negotiated, and such a connection ends
/// after its handshake.
pub(crate) const ALPN_WITH_ACME: [&[u8]; 3] = [crate::certs::ACME_TLS_ALPN, b"h2", b"http/1.1"];

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

/// Issues every certificate of this gateway's life, for one P-256 key generated at start in
/// enclave memory and never written anywhere: the rotations with fresh evidence, the nonce-bound
/// certificates of `?nonce=` and the CSR of the publicly trusted certificate (DESIGN §4.4) all
/// name that key, which is what lets the attestation vouch for each of them.
pub(crate) struct Issuer {
    attester: Arc<EndorsedAttester>,
    key: KeyPair,
    hosts: Vec<String>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("platform", &self.attester.platform())
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer for a new key, naming `hosts` in its certificates.
    pub(crate) fn new(
        attester: Arc<EndorsedAttester>,
        hosts: Vec<String>,
    ) -> Result<Self, GatewayError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| GatewayError::Certificate(format!("generating the key: {e}")))?;
        Ok(Self {
            attester,
            key,
            hosts,
        })
    }

    /// The attester.
    pub(crate) fn attester(&self) -> &Arc<EndorsedAttester> {
        &self.attester
    }

    /// A certificate with fresh evidence, valid from now, whose `ohttp-keys` claim binds the
    /// exact `application/ohttp-keys` bytes served. Blocks (evidence from the TEE).
    pub(crate) fn issue(&self, ohttp_keys: &[u8]) -> Result<AttestedCertificate, GatewayError> {
        self.issue_with(ohttp_keys, None)
    }

    /// Like [`Issuer::issue`], with a verifier's nonce in the claims (`?nonce=`, DESIGN §4.2).
    pub(crate) fn issue_for_nonce(
        &self,
        ohttp_keys: &[u8],
        nonce: Vec<u8>,
    ) -> Result<AttestedCertificate, GatewayError> {
        self.issue_with(ohttp_keys, Some(nonce))
    }

    fn issue_with(
        &self,
        ohttp_keys: &[u8],
        nonce: Option<Vec<u8>>,
    ) -> Result<AttestedCertificate, GatewayError> {
        let mut params = IssueParams::new(self.hosts.clone(), UnixTime::now());
        params.ohttp_keys = Some(ohttp_keys.to_vec());
        params.nonce = nonce;
        Ok(issue_certificate_with_key(
            self.attester.as_ref(),
            &params,
            &self.key,
        )?)
    }

    /// A certificate signing request for `hosts` with this key (DER), for the ACME CA.
    pub(crate) fn csr(&self, hosts: &[String]) -> Result<Vec<u8>, GatewayError> {
        let failed = |e: rcgen::Error| GatewayError::Certificate(format!("building the CSR: {e}"));
        let mut params = CertificateParams::new(hosts.to_vec()).map_err(failed)?;
        params.distinguished_name = DistinguishedName::new();
        let csr = params.serialize_request(&self.key).map_err(failed)?;
        Ok(csr.der().to_vec())
    }
}

/// Re-issues the certificate every [`ROTATION_INTERVAL`] with fresh collateral (where the
/// platform has any; on failure the previous collateral is kept) and a new generation of OHTTP
/// keys, and swaps both in (the previous keys stay valid until the next rotation); runs until
/// the task is aborted. Evidence generation may block (hardware ioctls), so it runs on the
/// blocking pool.
pub(crate) async fn rotate_forever(
    issuer: Arc<Issuer>,
    resolver: Arc<RotatingCertResolver>,
    metrics: Arc<crate::metrics::Metrics>,
    ohttp: Arc<crate::ohttp::OhttpState>,
) {
    let interval = rotation_interval(issuer.attester().platform());
    let mut wait = interval;
    loop {
        tokio::time::sleep(wait).await;
        if let Err(error) = issuer.attester().refresh().await {
            tracing::error!(%error, "collateral refresh failed; certificates keep the previous collateral");
        }
        let issuer = Arc::clone(&issuer);
        let keys = ohttp.generate();
        let issued = match keys {
            Ok(keys) => {
                tokio::task::spawn_blocking(move || {
                    issuer.issue(&keys.list).map(|cert| (cert, keys))
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
