//! [`PeerTrust`]: which replicas this one shares the root secret with, and the mutual RA-TLS
//! configurations that enforce it on both ends of a cluster connection.
//!
//! A peer is accepted when its certificate verifies ([`shroud_ra_tls::verify_certificate`]:
//! evidence to the vendor's root, claims bound to the certificate key) and its measurements
//! equal this replica's own code identity, or one of `allow_measurements`. Each side presents
//! its current RA-TLS certificate and key (the ones its https listener serves), and each side
//! checks the other's handshake signature, which proves the peer holds the attested key.
//! TLS 1.3 only; no resumption, tickets or early data.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier as _;
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::NoServerSessionStorage;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use shroud_ra_tls::policy::AcceptRule;
use shroud_ra_tls::tls::{AttestedServerVerifier, RotatingCertResolver, crypto_provider};
use shroud_ra_tls::{Measurements, Platform, Policy, TcbStatus, VerifyOptions};

use super::error::ClusterError;
use super::wire::ALPN;

/// The measurement fields that identify the code (and, where the platform measures it, the
/// configuration) of a replica: what "the same build" compares. Nitro's PCR3 (the parent's IAM
/// role) and PCR4 (the parent instance's id) say where an enclave runs, not what it runs, and
/// differ between replicas of one build; they are left out.
fn code_identity(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::Nitro => &["pcr0", "pcr1", "pcr2", "pcr8"],
        Platform::Tdx => &["mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"],
        Platform::Sgx => &["mrenclave", "mrsigner", "isvprodid", "isvsvn"],
        Platform::SevSnp => &["measurement", "host_data", "policy"],
        _ => &["measurement"],
    }
}

/// The rule accepting this replica's own build: its code identity, as it measures itself.
fn own_rule(platform: Platform, measurements: &Measurements) -> Result<AcceptRule, ClusterError> {
    let fields: BTreeMap<String, Vec<u8>> = code_identity(platform)
        .iter()
        .filter_map(|field| {
            measurements
                .get(field)
                .map(|value| ((*field).to_owned(), value.to_vec()))
        })
        .collect();
    AcceptRule::new(platform, fields).map_err(|e| ClusterError::OwnIdentity(e.to_string()))
}

/// Which replicas this one shares with, and its own certificate to show them.
#[derive(Debug)]
pub(crate) struct PeerTrust {
    verifier: Arc<AttestedServerVerifier>,
    own: Arc<RotatingCertResolver>,
}

impl PeerTrust {
    /// Accepts replicas whose code identity equals `measurements` (this replica's, on
    /// `platform`), or any of `allow`; with the TCB status this replica's own evidence has
    /// (`own_tcb`, unless revoked) allowed besides the default ones. Simulated evidence is
    /// accepted only when this replica is simulated too and `danger_allow_simulated`.
    pub(crate) fn new(
        platform: Platform,
        measurements: &Measurements,
        own_tcb: Option<TcbStatus>,
        allow: &[AcceptRule],
        danger_allow_simulated: bool,
        own: Arc<RotatingCertResolver>,
    ) -> Result<PeerTrust, ClusterError> {
        let mut rules: Vec<AcceptRule> = std::iter::once(own_rule(platform, measurements)?)
            .chain(allow.iter().cloned())
            .collect();
        if let Some(status) = own_tcb.filter(|status| *status != TcbStatus::Revoked) {
            for rule in &mut rules {
                rule.allow_tcb(status)
                    .map_err(|e| ClusterError::OwnIdentity(e.to_string()))?;
            }
        }
        let verifier = AttestedServerVerifier::new(Policy::new(rules))
            .danger_allow_simulated(danger_allow_simulated && platform == Platform::Simulated);
        Ok(PeerTrust {
            verifier: Arc::new(verifier),
            own,
        })
    }

    /// The TCB status of this replica's own certificate, as a verifier sees it (simulated
    /// evidence read only when this replica is simulated): peers on the same machines have the
    /// same, so it is allowed even when it is not up to date. `None` when it cannot be read.
    pub(crate) fn own_tcb_status(platform: Platform, certificate: &[u8]) -> Option<TcbStatus> {
        let options = VerifyOptions {
            danger_allow_simulated: platform == Platform::Simulated,
            ..VerifyOptions::at(UnixTime::now())
        };
        match shroud_ra_tls::verify_certificate_evidence(certificate, &options) {
            Ok((report, _claims)) => Some(report.tcb_status),
            Err(error) => {
                tracing::warn!(%error, "cluster: reading this replica's own TCB status failed; peers must be up to date");
                None
            }
        }
    }

    /// Whether `certificate` is this replica's own (it dialed itself: a peer name that
    /// resolves to every replica includes this one).
    pub(crate) fn is_own(&self, certificate: &CertificateDer<'_>) -> bool {
        self.own
            .current_certificate()
            .is_some_and(|own| own.as_ref() == certificate.as_ref())
    }

    /// The primary measurement of an accepted peer certificate, for logs.
    pub(crate) fn describe(&self, certificate: &CertificateDer<'_>) -> String {
        self.verifier
            .verdict_for(certificate)
            .map(|verdict| {
                let platform = verdict.platform();
                let value = verdict
                    .measurements()
                    .get(platform.primary_field())
                    .map(hex::encode)
                    .unwrap_or_default();
                format!("{platform} {}={value}", platform.primary_field())
            })
            .unwrap_or_else(|| "verified".to_owned())
    }

    /// The cluster listener's configuration: this replica's certificate, a client certificate
    /// required and verified like a server's.
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, ClusterError> {
        let mut config = ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClusterError::TlsConfig(e.to_string()))?
            .with_client_cert_verifier(Arc::new(AttestedClientVerifier(Arc::clone(&self.verifier))))
            .with_cert_resolver(Arc::clone(&self.own) as _);
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        config.max_early_data_size = 0;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Arc::new(config))
    }

    /// The configuration for dialing a peer: its certificate verified, ours presented.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, ClusterError> {
        let mut config = ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClusterError::TlsConfig(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&self.verifier) as _)
            .with_client_cert_resolver(Arc::new(OwnCertificate(Arc::clone(&self.own))));
        config.resumption = Resumption::disabled();
        config.enable_early_data = false;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Arc::new(config))
    }
}

/// Presents this replica's current RA-TLS certificate as its client certificate.
#[derive(Debug)]
struct OwnCertificate(Arc<RotatingCertResolver>);

impl ResolvesClientCert for OwnCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A rustls `ClientCertVerifier` over the same verification as [`AttestedServerVerifier`]: the
/// client certificate's evidence, claims and measurements, then the handshake signature.
#[derive(Debug)]
struct AttestedClientVerifier(Arc<AttestedServerVerifier>);

impl ClientCertVerifier for AttestedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .verify(end_entity, now)
            .map(|_| ClientCertVerified::assertion())
            .map_err(shroud_ra_tls::tls::certificate_refused)
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        // TLS 1.3 only: the server configuration never offers 1.2.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shroud_ra_tls::policy::Observed;

    fn nitro(pcr2: u8, pcr4: u8) -> Measurements {
        let mut m = Measurements::new();
        for (field, value) in [
            ("pcr0", 0),
            ("pcr1", 1),
            ("pcr2", pcr2),
            ("pcr3", 3),
            ("pcr4", pcr4),
            ("pcr8", 8),
        ] {
            m.insert(field, vec![value; 48]);
        }
        m
    }

    fn accepts(rule: &AcceptRule, measurements: &Measurements) -> bool {
        let observed = Observed {
            platform: rule.platform(),
            measurements,
            tcb_status: TcbStatus::NotApplicable,
            tcb_eval_data_number: None,
            snp_tcb: None,
            snp_vmpl: None,
            issued_at: None,
        };
        Policy::new(vec![rule.clone()])
            .check_measurements(&observed, UnixTime::now())
            .is_ok()
    }

    #[test]
    fn the_same_build_on_another_parent_instance_is_the_same_replica() {
        let rule = own_rule(Platform::Nitro, &nitro(2, 4)).unwrap();
        // PCR4 names the parent instance: another one runs the same build.
        assert!(accepts(&rule, &nitro(2, 40)));
        // PCR2 is the application (and its configuration): another build.
        assert!(!accepts(&rule, &nitro(20, 4)));
    }

    #[test]
    fn an_identity_without_its_code_fields_is_no_identity() {
        let mut partial = Measurements::new();
        partial.insert("pcr0", vec![0; 48]);
        assert!(matches!(
            own_rule(Platform::Nitro, &partial),
            Err(ClusterError::OwnIdentity(_))
        ));
        let mut simulated = Measurements::new();
        simulated.insert("measurement", vec![7; 48]);
        let rule = own_rule(Platform::Simulated, &simulated).unwrap();
        assert!(accepts(&rule, &simulated));
    }
}
