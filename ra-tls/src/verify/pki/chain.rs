//! Chain checks for an all-ECDSA P-384 certificate chain (Nitro's cabundle): issuer
//! signatures (p384), CA and path-length constraints, and the signing leaf.

use x509_parser::prelude::X509Certificate;

use super::{is_ca, name, rejected};
use crate::{Error, Platform};

const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";

/// `cert` must name `issuer` as its issuer and carry an ECDSA P-384/SHA-384 signature by
/// `issuer`'s key; `issuer` must be a CA.
pub(crate) fn check_issued_by_p384(
    platform: Platform,
    what: &str,
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), Error> {
    use p384::ecdsa::signature::hazmat::PrehashVerifier;
    use p384::pkcs8::DecodePublicKey;
    use sha2::Digest;

    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(rejected(
            platform,
            format!(
                "{what}: issuer {} is not the subject {} of the next certificate up",
                name(cert.issuer()),
                name(issuer.subject())
            ),
        ));
    }
    if !is_ca(issuer) {
        return Err(rejected(
            platform,
            format!("{what}: issuer {} is not a CA", name(issuer.subject())),
        ));
    }
    let algorithm = cert.signature_algorithm.algorithm.to_id_string();
    if algorithm != OID_ECDSA_SHA384 {
        return Err(rejected(
            platform,
            format!("{what}: signature algorithm {algorithm}, expected ecdsa-with-SHA384"),
        ));
    }
    let key = p384::ecdsa::VerifyingKey::from_public_key_der(issuer.public_key().raw)
        .map_err(|e| rejected(platform, format!("{what}: issuer key is not P-384: {e}")))?;
    let digest = sha2::Sha384::digest(cert.tbs_certificate.as_ref());
    let valid = p384::ecdsa::DerSignature::try_from(cert.signature_value.data.as_ref())
        .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok());
    if valid {
        Ok(())
    } else {
        Err(rejected(
            platform,
            format!(
                "{what}: signature by {} does not verify",
                name(issuer.subject())
            ),
        ))
    }
}

/// `cert` is a CA (basicConstraints cA, keyUsage keyCertSign when present) whose path length
/// allows `below` more CA certificates under it.
pub(crate) fn check_ca_for(
    platform: Platform,
    what: &str,
    cert: &X509Certificate<'_>,
    below: usize,
) -> Result<(), Error> {
    let constraints = cert
        .basic_constraints()
        .map_err(|e| rejected(platform, format!("{what}: basicConstraints: {e}")))?
        .map(|c| c.value);
    let Some(constraints) = constraints.filter(|c| c.ca) else {
        return Err(rejected(
            platform,
            format!("{what} issues certificates but is not a CA (basicConstraints)"),
        ));
    };
    if let Some(max) = constraints.path_len_constraint
        && usize::try_from(max).is_ok_and(|max| max < below)
    {
        return Err(rejected(
            platform,
            format!("{what} allows {max} CA certificates below it, the chain has {below}"),
        ));
    }
    let usage = cert
        .key_usage()
        .map_err(|e| rejected(platform, format!("{what}: keyUsage: {e}")))?;
    if usage.is_some_and(|u| !u.value.key_cert_sign()) {
        return Err(rejected(
            platform,
            format!("{what} is not allowed to sign certificates (keyUsage)"),
        ));
    }
    Ok(())
}

/// `cert` is an end entity whose key may sign (not a CA; keyUsage digitalSignature when present).
pub(crate) fn check_signing_leaf(
    platform: Platform,
    what: &str,
    cert: &X509Certificate<'_>,
) -> Result<(), Error> {
    if is_ca(cert) {
        return Err(rejected(
            platform,
            format!("{what} is a CA, not an end entity"),
        ));
    }
    let usage = cert
        .key_usage()
        .map_err(|e| rejected(platform, format!("{what}: keyUsage: {e}")))?;
    if usage.is_some_and(|u| !u.value.digital_signature()) {
        return Err(rejected(
            platform,
            format!("{what} is not allowed to sign (keyUsage lacks digitalSignature)"),
        ));
    }
    Ok(())
}
