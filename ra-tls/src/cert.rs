//! Parsing (and, with feature `server`, issuing) RA-TLS certificates.

use rustls_pki_types::UnixTime;
use x509_cert::der::asn1::ObjectIdentifier;

use crate::Error;
use crate::x509::Certificate;

/// OID of the evidence extension, `tcg-dice-conceptual-message-wrapper`.
pub const OID_EVIDENCE: &str = "2.23.133.5.4.9";
/// OID of the optional endorsements extension (`tcg-dice-endorsement-manifest-uri` arc, DESIGN §3).
pub const OID_ENDORSEMENTS: &str = "2.23.133.5.4.2";
/// Largest evidence extension accepted (DESIGN §3).
pub const MAX_EVIDENCE_LEN: usize = 64 * 1024;
/// Largest endorsements extension accepted: Intel collateral (CRLs, TCB info, QE identity, PCK chain)
/// is some tens of KiB.
pub const MAX_ENDORSEMENTS_LEN: usize = 256 * 1024;
/// Largest certificate accepted.
pub const MAX_CERTIFICATE_LEN: usize = MAX_EVIDENCE_LEN + MAX_ENDORSEMENTS_LEN + 8 * 1024;

/// What the verifier needs from an RA-TLS certificate, extracted and structurally checked.
#[derive(Debug, Clone)]
pub struct ParsedCertificate {
    /// The SubjectPublicKeyInfo DER of the certificate key.
    pub spki_der: Vec<u8>,
    /// The evidence extension's value.
    pub evidence: Vec<u8>,
    /// The endorsements extension's value, when present.
    pub endorsements: Option<Vec<u8>>,
    /// notBefore, unix seconds.
    pub not_before: u64,
    /// notAfter, unix seconds.
    pub not_after: u64,
    /// SHA-256 of the whole certificate DER, the verification cache key.
    pub cert_sha256: [u8; 32],
}

impl ParsedCertificate {
    /// Parses `der`, requiring exactly one bounded evidence extension and a valid self-signature.
    pub fn parse(der: &[u8]) -> Result<Self, Error> {
        if der.len() > MAX_CERTIFICATE_LEN {
            return Err(Error::TooLarge {
                what: "certificate",
                len: der.len(),
                max: MAX_CERTIFICATE_LEN,
            });
        }
        let cert =
            Certificate::from_der(der).map_err(|e| Error::CertificateParse(e.to_string()))?;
        let evidence = single_extension(
            &cert,
            (EVIDENCE_ID, OID_EVIDENCE),
            "evidence extension",
            MAX_EVIDENCE_LEN,
        )?
        .ok_or(Error::MissingEvidence)?;
        let endorsements = single_extension(
            &cert,
            (ENDORSEMENTS_ID, OID_ENDORSEMENTS),
            "endorsements extension",
            MAX_ENDORSEMENTS_LEN,
        )?;
        verify_self_signature(&cert)?;
        Ok(Self {
            spki_der: cert.spki_der().to_vec(),
            evidence,
            endorsements,
            not_before: cert.not_before(),
            not_after: cert.not_after(),
            cert_sha256: crate::sha256(der),
        })
    }

    /// Checks the validity period against the verifier's clock.
    pub fn check_validity(&self, now: UnixTime) -> Result<(), Error> {
        let now = now.as_secs();
        if now < self.not_before {
            return Err(Error::CertificateNotYetValid {
                not_before: self.not_before,
                now,
            });
        }
        if now > self.not_after {
            return Err(Error::CertificateExpired {
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }
}

/// A certificate given as PEM (the first `CERTIFICATE` block) or DER, as DER.
pub fn certificate_der(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    crate::pem::decode_all(bytes)
        .ok()
        .and_then(|blocks| blocks.into_iter().find(|b| b.label == "CERTIFICATE"))
        .map(|block| block.der)
        .ok_or_else(|| Error::CertificateParse("neither DER nor a PEM CERTIFICATE block".into()))
}

/// The OIDs above, parsed at compile time (the dotted-string parser stays out of the browser
/// bundle).
const EVIDENCE_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap(OID_EVIDENCE);
const ENDORSEMENTS_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap(OID_ENDORSEMENTS);

/// The value of the extension `id` (`oid`, for messages) when present once, within `max` bytes
/// and not critical.
fn single_extension(
    cert: &Certificate<'_>,
    (id, oid): (ObjectIdentifier, &'static str),
    what: &'static str,
    max: usize,
) -> Result<Option<Vec<u8>>, Error> {
    let matching: Vec<_> = cert
        .extensions()
        .iter()
        .filter(|ext| ext.extn_id == id)
        .collect();
    match matching.as_slice() {
        [] => Ok(None),
        [ext] if ext.extn_value.as_bytes().len() > max => Err(Error::TooLarge {
            what,
            len: ext.extn_value.as_bytes().len(),
            max,
        }),
        // The CCC interoperable RA-TLS profile makes both extensions non-critical, so that TLS
        // stacks unaware of attestation still accept the certificate. A critical one is not
        // what any attester of the profile produces; refusing it keeps one form for one meaning.
        [ext] if ext.critical => Err(Error::CertificateParse(format!(
            "the {what} ({oid}) is marked critical; the RA-TLS profile requires it non-critical"
        ))),
        [ext] => Ok(Some(ext.extn_value.as_bytes().to_vec())),
        many => Err(Error::DuplicateExtension {
            oid,
            count: many.len(),
        }),
    }
}

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// RA-TLS certificates are self-signed; a valid self-signature shows that nobody edited the
/// extensions after the key holder signed them. (The key itself is bound by the evidence.)
fn verify_self_signature(cert: &Certificate<'_>) -> Result<(), Error> {
    use p256::pkcs8::DecodePublicKey;
    use sha2::Digest;

    let (key_algorithm, curve) = cert.key_algorithm();
    if key_algorithm != OID_EC_PUBLIC_KEY {
        return Err(Error::UnsupportedAlgorithm(format!(
            "key algorithm {key_algorithm}"
        )));
    }
    let tbs = cert.tbs_der();
    let digest: Vec<u8> = match cert.signature_algorithm() {
        OID_ECDSA_SHA256 => sha2::Sha256::digest(tbs).to_vec(),
        OID_ECDSA_SHA384 => sha2::Sha384::digest(tbs).to_vec(),
        other => {
            return Err(Error::UnsupportedAlgorithm(format!(
                "signature algorithm {other}"
            )));
        }
    };
    let signature = cert.signature();
    let spki_der = cert.spki_der();
    let valid = match curve {
        Some(OID_P256) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|e| Error::UnsupportedAlgorithm(format!("P-256 key: {e}")))?;
            p256::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok())
        }
        Some(OID_P384) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|e| Error::UnsupportedAlgorithm(format!("P-384 key: {e}")))?;
            p384::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok())
        }
        other => {
            return Err(Error::UnsupportedAlgorithm(format!(
                "curve {}",
                other.map(|oid| oid.to_string()).unwrap_or_default()
            )));
        }
    };
    if valid {
        Ok(())
    } else {
        Err(Error::BadCertificateSignature)
    }
}

#[cfg(feature = "server")]
pub use issue::{AttestedCertificate, IssueParams, issue_certificate, issue_certificate_with_key};

#[cfg(feature = "server")]
mod issue {
    use std::time::Duration;

    use rcgen::{
        CertificateParams, CustomExtension, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData,
        SerialNumber,
    };
    use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer, UnixTime};

    use crate::Error;
    use crate::attest::Attester;
    use crate::claims::Claims;

    /// What to put into a freshly issued certificate.
    #[derive(Debug, Clone)]
    pub struct IssueParams {
        /// Subject alternative names: DNS names or IP addresses.
        pub subject_alt_names: Vec<String>,
        /// The issuer's clock.
        pub now: UnixTime,
        /// How long the certificate is valid after `now` (DESIGN §3: 24 h).
        pub lifetime: Duration,
        /// How far before `now` validity starts, for clients with slow clocks (DESIGN §3: 5 min).
        pub backdate: Duration,
        /// The `application/ohttp-keys` bytes to bind, when the gateway serves OHTTP.
        pub ohttp_keys: Option<Vec<u8>>,
        /// A verifier's nonce, for per-request evidence.
        pub nonce: Option<Vec<u8>>,
        /// The endorsements extension value (collateral), when the platform needs one.
        pub endorsements: Option<Vec<u8>>,
    }

    impl IssueParams {
        /// DESIGN §3 defaults: valid from 5 minutes ago for 24 hours.
        pub fn new(subject_alt_names: Vec<String>, now: UnixTime) -> Self {
            Self {
                subject_alt_names,
                now,
                lifetime: Duration::from_secs(24 * 3600),
                backdate: Duration::from_secs(5 * 60),
                ohttp_keys: None,
                nonce: None,
                endorsements: None,
            }
        }
    }

    /// A certificate with its key. The key never leaves the process.
    pub struct AttestedCertificate {
        /// The certificate DER.
        pub certificate: CertificateDer<'static>,
        /// The private key (PKCS#8). Deliberately not `Debug`.
        pub key: PrivatePkcs8KeyDer<'static>,
        /// The claims bound by the evidence.
        pub claims: Claims,
        /// notAfter, unix seconds.
        pub not_after: u64,
    }

    impl std::fmt::Debug for AttestedCertificate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("AttestedCertificate")
                .field("claims", &self.claims)
                .field("not_after", &self.not_after)
                .finish_non_exhaustive()
        }
    }

    /// Generates a P-256 key and issues a certificate for it ([`issue_certificate_with_key`]).
    pub fn issue_certificate(
        attester: &dyn Attester,
        params: &IssueParams,
    ) -> Result<AttestedCertificate, Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(build)?;
        issue_certificate_with_key(attester, params, &key)
    }

    fn build(e: rcgen::Error) -> Error {
        Error::Attestation(format!("building certificate: {e}"))
    }

    /// Asks `attester` for evidence over the claims that bind `key`, and self-signs a
    /// certificate carrying that evidence. A gateway issues every certificate of its life for
    /// one key, so that a rotation, a nonce-bound certificate and the publicly trusted
    /// certificate (DESIGN §4.4) all name the key the attestation vouches for. `key` must have
    /// been generated (or loaded) with its private part serializable.
    pub fn issue_certificate_with_key(
        attester: &dyn Attester,
        params: &IssueParams,
        key: &KeyPair,
    ) -> Result<AttestedCertificate, Error> {
        let mut claims = Claims::for_spki(&key.subject_public_key_info());
        claims.iat = Some(params.now.as_secs());
        claims.ohttp_keys.clone_from(&params.ohttp_keys);
        claims.nonce.clone_from(&params.nonce);
        let evidence = attester.attest(&claims.to_cbor())?;

        let mut cert_params =
            CertificateParams::new(params.subject_alt_names.clone()).map_err(build)?;
        let now = params.now.as_secs();
        let not_before = now.saturating_sub(params.backdate.as_secs());
        let not_after = now.saturating_add(params.lifetime.as_secs());
        cert_params.not_before = offset_time(not_before)?;
        cert_params.not_after = offset_time(not_after)?;
        cert_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Shroud RA-TLS");
        // Every certificate of one key has the same issuer name, so each needs its own serial
        // (RFC 5280 §4.1.2.2; browsers refuse a reused issuer and serial). rcgen's default is a
        // hash of the key, the same for all of them.
        cert_params.serial_number = Some(random_serial()?);
        let mut evidence_ext =
            CustomExtension::from_oid_content(&oid(super::OID_EVIDENCE), evidence.to_cbor());
        evidence_ext.set_criticality(false);
        cert_params.custom_extensions.push(evidence_ext);
        // The caller's collateral, else what the attester has at hand.
        if let Some(endorsements) = params
            .endorsements
            .clone()
            .or_else(|| attester.endorsements())
        {
            cert_params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &oid(super::OID_ENDORSEMENTS),
                    endorsements,
                ));
        }
        let cert = cert_params.self_signed(key).map_err(build)?;
        Ok(AttestedCertificate {
            certificate: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            claims,
            not_after,
        })
    }

    /// 16 random bytes, positive and without a leading zero byte (a minimal DER INTEGER).
    fn random_serial() -> Result<SerialNumber, Error> {
        let mut serial = [0_u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
            .map_err(|_| Error::Attestation("no randomness for a serial number".to_owned()))?;
        serial[0] = (serial[0] & 0x7f) | 0x40;
        Ok(SerialNumber::from_slice(&serial))
    }

    fn oid(dotted: &str) -> Vec<u64> {
        dotted
            .split('.')
            .filter_map(|arc| arc.parse().ok())
            .collect()
    }

    fn offset_time(unix: u64) -> Result<time::OffsetDateTime, Error> {
        i64::try_from(unix)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or_else(|| Error::Attestation(format!("time {unix} out of range")))
    }
}
