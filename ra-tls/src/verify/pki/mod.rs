//! X.509 checks shared by the Nitro and SEV-SNP verifiers: parsing, validity at the verifier's
//! clock, and ECDSA P-384 issuer signatures. ASN.1 is x509-parser's; signatures are p384's.

use rustls_pki_types::UnixTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{Error, Platform};

const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";

/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse<'a>(
    platform: Platform,
    what: &str,
    der: &'a [u8],
) -> Result<X509Certificate<'a>, Error> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(rejected(
            platform,
            format!("{what}: trailing bytes after the certificate"),
        )),
        Err(e) => Err(rejected(platform, format!("{what} does not parse: {e}"))),
    }
}

/// The certificate must be valid at `now` (notBefore <= now <= notAfter).
pub(crate) fn check_validity(
    platform: Platform,
    what: &str,
    cert: &X509Certificate<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    if now < not_before {
        return Err(rejected(
            platform,
            format!(
                "{what} is not valid before {not_before} (unix seconds), verifier clock is {now}"
            ),
        ));
    }
    if now > not_after {
        return Err(rejected(
            platform,
            format!("{what} expired at {not_after} (unix seconds), verifier clock is {now}"),
        ));
    }
    Ok(())
}

/// notAfter of `cert`, unix seconds (0 for a date before 1970, which nothing accepts anyway).
pub(crate) fn not_after(cert: &X509Certificate<'_>) -> u64 {
    u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0)
}

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

/// A certificate name for messages: its common name. Not `X509Name`'s `Display`, which links
/// x509-parser's OID registry and hex encoder (about 30 KB) into the browser bundle.
pub(crate) fn name(name: &x509_parser::x509::X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map_or_else(|| "(no common name)".to_owned(), |cn| format!("CN={cn}"))
}

/// Whether `cert` carries basicConstraints with `cA` set.
pub(crate) fn is_ca(cert: &X509Certificate<'_>) -> bool {
    cert.extensions()
        .iter()
        .filter(|e| e.oid.to_id_string() == OID_BASIC_CONSTRAINTS)
        .any(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::BasicConstraints(bc) => bc.ca,
            _ => false,
        })
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

/// [`Error::EvidenceRejected`] for `platform`.
pub(crate) fn rejected(platform: Platform, reason: String) -> Error {
    Error::EvidenceRejected { platform, reason }
}
