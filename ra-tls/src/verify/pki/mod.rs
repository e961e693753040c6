//! X.509 checks shared by the Nitro and SEV-SNP verifiers: parsing, validity at the verifier's
//! clock, names and CA flags. ASN.1 is x509-parser's. The chain checks that only Nitro's
//! all-ECDSA chain uses (SEV-SNP's RSA chain is `sev`'s) are in [`chain`].

#[cfg(feature = "nitro")]
pub(crate) mod chain;

use rustls_pki_types::UnixTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{Error, Platform};

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

/// [`Error::EvidenceRejected`] for `platform`.
pub(crate) fn rejected(platform: Platform, reason: String) -> Error {
    Error::EvidenceRejected { platform, reason }
}
