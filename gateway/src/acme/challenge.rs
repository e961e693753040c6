//! TLS-ALPN-01 validation certificates (RFC 8737 §3): self-signed, for the one name validated,
//! with the critical `id-pe-acmeIdentifier` extension holding the SHA-256 of the key
//! authorization. Their throwaway keys are not the enclave's: nothing is attested by them.

use std::sync::Arc;

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::error::AcmeError;

/// The validation certificate of `host` for a key authorization whose SHA-256 is `digest`.
pub(super) fn validation_certificate(
    host: &str,
    digest: &[u8],
) -> Result<Arc<CertifiedKey>, AcmeError> {
    let failed = |e: rcgen::Error| AcmeError::Certificate(format!("validation certificate: {e}"));
    // rcgen asserts the length; check it here so that nothing can panic.
    let digest: [u8; 32] = digest
        .try_into()
        .map_err(|_| AcmeError::Certificate("key authorization digest is not SHA-256".into()))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(failed)?;
    params.distinguished_name = DistinguishedName::new();
    params
        .custom_extensions
        .push(CustomExtension::new_acme_identifier(&digest));
    let certificate = params.self_signed(&key).map_err(failed)?;
    let signing_key = shroud_ra_tls::tls::crypto_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .map_err(|e| AcmeError::Certificate(format!("validation key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![certificate.der().clone()],
        signing_key,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, X509Certificate};

    #[test]
    fn carries_the_digest_in_a_critical_acme_identifier_extension() {
        let digest = [0xab; 32];
        let served = validation_certificate("rpc.example.org", &digest).unwrap();
        let der = served.cert.first().unwrap();
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        let extension = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .unwrap();
        assert!(extension.critical);
        // DER OCTET STRING of 32 bytes.
        assert_eq!(extension.value[..2], [0x04, 32]);
        assert_eq!(extension.value[2..], digest);
        let names = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(names.value.general_names.len(), 1);
    }

    #[test]
    fn refuses_a_digest_of_another_length() {
        assert!(validation_certificate("rpc.example.org", &[0; 20]).is_err());
    }
}
