//! rustls glue: the client-side verifier and (feature `server`) the server-side resolver.
//!
//! RA-TLS trusts the evidence, not a CA, and not a host name: the measurements pinned by the user
//! are the identity of the server. So the verifier ignores the server name and the web PKI, runs
//! [`verify_certificate`] instead, and still verifies the handshake signature against the
//! certificate key, which is what ties this connection to the attested key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};

use crate::{Error, Policy, Verdict, VerifyOptions, verify_certificate};

/// The ALPN protocol id every attesting client offers besides `h2`/`http/1.1` (DESIGN §4.1): a
/// gateway that also serves a publicly trusted certificate (§4.4) answers a ClientHello offering
/// it with the RA-TLS certificate. The server never selects it; it only steers the certificate.
pub const RA_TLS_ALPN: &[u8] = b"shroud-ra-tls/1";

/// How many verdicts the per-verifier cache keeps; certificates rotate every 12 h, so a handful
/// covers every gateway replica a client talks to.
const VERDICT_CACHE_LEN: usize = 64;

/// The single rustls crypto provider of Shroud: aws-lc-rs, whose key exchange groups start with
/// the post-quantum hybrid X25519MLKEM768 (a classical-only peer still gets X25519 or P-256).
/// ring only in a build without `aws-lc-rs` (the wasm32 tests).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(provider())
}

/// Makes [`crypto_provider`] the process-wide default, for the binaries: a dependency that asks
/// rustls for the default (instead of taking ours) then gets this one, rather than a panic when
/// another crate's features compiled a second provider into rustls (jsonrpsee's client does).
/// Does nothing if a default is already installed.
pub fn install_process_default() {
    // An `Err` only means a default is already installed, which is what we want.
    let _ = CryptoProvider::install_default(provider());
}

#[cfg(feature = "aws-lc-rs")]
fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!(
    "shroud-ra-tls's `rustls` feature needs a crypto provider: feature `aws-lc-rs` or `ring`"
);

/// A rustls `ServerCertVerifier` that accepts exactly the certificates whose evidence verifies
/// and matches the policy. Verdicts are cached per certificate hash.
#[derive(Debug)]
pub struct AttestedServerVerifier {
    policy: Policy,
    danger_allow_simulated: bool,
    algorithms: WebPkiSupportedAlgorithms,
    verdicts: Mutex<HashMap<[u8; 32], Verdict>>,
}

impl AttestedServerVerifier {
    /// A verifier for `policy` that refuses simulated evidence.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            danger_allow_simulated: false,
            algorithms: provider().signature_verification_algorithms,
            verdicts: Mutex::new(HashMap::new()),
        }
    }

    /// Accepts simulated evidence. Development only: simulated evidence proves nothing.
    pub fn danger_allow_simulated(mut self, allow: bool) -> Self {
        self.danger_allow_simulated = allow;
        self
    }

    /// The policy this verifier enforces.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The verdict for a certificate this verifier accepted, if it is still cached.
    pub fn verdict_for(&self, cert_der: &[u8]) -> Option<Verdict> {
        self.cache().get(&crate::sha256(cert_der)).cloned()
    }

    /// Runs the verification (or takes the cached verdict) at `now`.
    pub fn verify(&self, cert_der: &[u8], now: UnixTime) -> Result<Verdict, Error> {
        let key = crate::sha256(cert_der);
        if let Some(verdict) = self.cache().get(&key) {
            // A cached verdict still has to be inside its validity: the certificate's and the
            // evidence's own (a Nitro chain expires hours after the document was made).
            let secs = now.as_secs();
            if verdict.not_before() <= secs && secs <= verdict.expires_at() {
                return Ok(verdict.clone());
            }
        }
        let options = VerifyOptions {
            danger_allow_simulated: self.danger_allow_simulated,
            ..VerifyOptions::at(now)
        };
        let verdict = verify_certificate(cert_der, &self.policy, &options)?;
        let mut cache = self.cache();
        if cache.len() >= VERDICT_CACHE_LEN {
            cache.retain(|_, v| v.expires_at() >= now.as_secs());
            if cache.len() >= VERDICT_CACHE_LEN {
                cache.clear();
            }
        }
        cache.insert(key, verdict.clone());
        Ok(verdict)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Verdict>> {
        // The map holds only finished verdicts; a panic elsewhere cannot leave it half-written.
        self.verdicts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ServerCertVerifier for AttestedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify(end_entity, now)
            .map(|_| ServerCertVerified::assertion())
            .map_err(certificate_refused)
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // TLS 1.3 only (DESIGN §4.1); the client config never offers 1.2.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls error that aborts a handshake because `error` refused the peer's certificate;
/// [`attestation_error`] takes it back out.
pub fn certificate_refused(error: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

/// Extracts the attestation error from a rustls handshake error, when that is what failed.
pub fn attestation_error(error: &rustls::Error) -> Option<&Error> {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<Error>()
        }
        _ => None,
    }
}

/// A TLS 1.3-only client config that trusts exactly what `verifier` accepts. Resumption and
/// early data are off: both are linkable, and resumption would skip attestation.
///
/// It offers `alpn` and then [`RA_TLS_ALPN`], so that a gateway with a public certificate
/// serves this client its RA-TLS certificate. As the server never selects [`RA_TLS_ALPN`], an
/// empty `alpn` offers `http/1.1` with it (a server that speaks ALPN refuses a ClientHello
/// whose protocols it has none of).
pub fn client_config(
    verifier: Arc<AttestedServerVerifier>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, Error> {
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Attestation(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    config.alpn_protocols = attesting_alpn(alpn);
    Ok(config)
}

/// `alpn` (or `http/1.1` when empty) followed by [`RA_TLS_ALPN`].
fn attesting_alpn(alpn: &[&[u8]]) -> Vec<Vec<u8>> {
    let offered: &[&[u8]] = if alpn.is_empty() {
        &[b"http/1.1"]
    } else {
        alpn
    };
    offered
        .iter()
        .filter(|p| **p != RA_TLS_ALPN)
        .map(|p| p.to_vec())
        .chain(std::iter::once(RA_TLS_ALPN.to_vec()))
        .collect()
}

#[cfg(feature = "server")]
pub use server::{RotatingCertResolver, server_config};

#[cfg(feature = "server")]
mod server {
    use std::sync::{Arc, PoisonError, RwLock};

    use rustls::ServerConfig;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
    use rustls::sign::CertifiedKey;

    use super::crypto_provider;
    use crate::Error;
    use crate::cert::AttestedCertificate;

    /// Serves the current attested certificate and swaps in a new one on rotation; handshakes in
    /// flight keep the certificate they started with.
    #[derive(Debug)]
    pub struct RotatingCertResolver {
        current: RwLock<Arc<CertifiedKey>>,
    }

    impl RotatingCertResolver {
        /// A resolver serving `cert`.
        pub fn new(cert: &AttestedCertificate) -> Result<Self, Error> {
            Ok(Self {
                current: RwLock::new(certified_key(cert)?),
            })
        }

        /// Serves `cert` from now on.
        pub fn rotate(&self, cert: &AttestedCertificate) -> Result<(), Error> {
            let key = certified_key(cert)?;
            *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
            Ok(())
        }

        /// The certificate and key currently served.
        pub fn current(&self) -> Arc<CertifiedKey> {
            Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
        }

        /// The certificate currently served.
        pub fn current_certificate(&self) -> Option<CertificateDer<'static>> {
            let key = self.current.read().unwrap_or_else(PoisonError::into_inner);
            key.cert.first().cloned()
        }
    }

    impl ResolvesServerCert for RotatingCertResolver {
        fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(Arc::clone(
                &self.current.read().unwrap_or_else(PoisonError::into_inner),
            ))
        }
    }

    fn certified_key(cert: &AttestedCertificate) -> Result<Arc<CertifiedKey>, Error> {
        let key = crypto_provider()
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(cert.key.clone_key()))
            .map_err(|e| Error::Attestation(format!("loading the certificate key: {e}")))?;
        Ok(Arc::new(CertifiedKey::new(
            vec![cert.certificate.clone()],
            key,
        )))
    }

    /// A TLS 1.3-only server config serving `resolver`'s certificate, with no session tickets,
    /// no session cache and no early data.
    pub fn server_config(
        resolver: Arc<dyn ResolvesServerCert>,
        alpn: &[&[u8]],
    ) -> Result<ServerConfig, Error> {
        let mut config = ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::Attestation(format!("TLS configuration: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        config.max_early_data_size = 0;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attesting_clients_always_offer_the_ra_tls_protocol_last() {
        assert_eq!(
            attesting_alpn(&[b"h2", b"http/1.1"]),
            [b"h2".to_vec(), b"http/1.1".to_vec(), RA_TLS_ALPN.to_vec()]
        );
        // No protocols asked for: HTTP/1.1, which is what a client without ALPN speaks.
        assert_eq!(
            attesting_alpn(&[]),
            [b"http/1.1".to_vec(), RA_TLS_ALPN.to_vec()]
        );
        // Asked for explicitly: offered once.
        assert_eq!(
            attesting_alpn(&[RA_TLS_ALPN, b"h2"]),
            [b"h2".to_vec(), RA_TLS_ALPN.to_vec()]
        );
    }
}
