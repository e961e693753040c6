//! Chain checks for an all-ECDSA P-384 certificate chain (Nitro's cabundle): issuer
//! signatures (p384), CA and path-length constraints, and the signing leaf.

use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

use super::{is_ca, issuer as issuer_of, name, rejected, subject};
use crate::x509::Certificate;
use crate::{Error, Platform};

const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// `cert` must name `issuer` as its issuer and carry an ECDSA P-384/SHA-384 signature by
/// `issuer`'s key; `issuer` must be a CA.
pub(crate) fn check_issued_by_p384(
    platform: Platform,
    what: &str,
    cert: &Certificate<'_>,
    issuer: &Certificate<'_>,
) -> Result<(), Error> {
    use p384::ecdsa::signature::hazmat::PrehashVerifier;
    use p384::pkcs8::DecodePublicKey;
    use sha2::Digest;

    if issuer_of(cert) != subject(issuer) {
        return Err(rejected(
            platform,
            format!(
                "{what}: issuer {} is not the subject {} of the next certificate up",
                name(issuer_of(cert)),
                name(subject(issuer))
            ),
        ));
    }
    if !is_ca(issuer) {
        return Err(rejected(
            platform,
            format!("{what}: issuer {} is not a CA", name(subject(issuer))),
        ));
    }
    let algorithm = cert.signature_algorithm();
    if algorithm != OID_ECDSA_SHA384 {
        return Err(rejected(
            platform,
            format!("{what}: signature algorithm {algorithm}, expected ecdsa-with-SHA384"),
        ));
    }
    let key = p384::ecdsa::VerifyingKey::from_public_key_der(issuer.spki_der())
        .map_err(|e| rejected(platform, format!("{what}: issuer key is not P-384: {e}")))?;
    let digest = sha2::Sha384::digest(cert.tbs_der());
    let valid = p384::ecdsa::DerSignature::try_from(cert.signature())
        .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok());
    if valid {
        Ok(())
    } else {
        Err(rejected(
            platform,
            format!(
                "{what}: signature by {} does not verify",
                name(subject(issuer))
            ),
        ))
    }
}

/// `cert` is a CA (basicConstraints cA, keyUsage keyCertSign when present) whose path length
/// allows `below` more CA certificates under it.
pub(crate) fn check_ca_for(
    platform: Platform,
    what: &str,
    cert: &Certificate<'_>,
    below: usize,
) -> Result<(), Error> {
    let constraints = extension::<BasicConstraints>(cert)
        .map_err(|e| rejected(platform, format!("{what}: basicConstraints: {e}")))?;
    let Some(constraints) = constraints.filter(|c| c.ca) else {
        return Err(rejected(
            platform,
            format!("{what} issues certificates but is not a CA (basicConstraints)"),
        ));
    };
    if let Some(max) = constraints.path_len_constraint
        && usize::from(max) < below
    {
        return Err(rejected(
            platform,
            format!("{what} allows {max} CA certificates below it, the chain has {below}"),
        ));
    }
    let usage = extension::<KeyUsage>(cert)
        .map_err(|e| rejected(platform, format!("{what}: keyUsage: {e}")))?;
    if usage.is_some_and(|u| !u.key_cert_sign()) {
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
    cert: &Certificate<'_>,
) -> Result<(), Error> {
    if is_ca(cert) {
        return Err(rejected(
            platform,
            format!("{what} is a CA, not an end entity"),
        ));
    }
    let usage = extension::<KeyUsage>(cert)
        .map_err(|e| rejected(platform, format!("{what}: keyUsage: {e}")))?;
    if usage.is_some_and(|u| !u.digital_signature()) {
        return Err(rejected(
            platform,
            format!("{what} is not allowed to sign (keyUsage lacks digitalSignature)"),
        ));
    }
    Ok(())
}

/// The extension `T`, when present once; an error when it does not decode or appears twice.
fn extension<'c, T>(cert: &'c Certificate<'_>) -> Result<Option<T>, x509_cert::der::Error>
where
    T: x509_cert::der::Decode<'c, Error = x509_cert::der::Error>
        + x509_cert::der::oid::AssociatedOid,
{
    let found = cert.decoded.tbs_certificate().get_extension::<T>()?;
    Ok(found.map(|(_, value)| value))
}
