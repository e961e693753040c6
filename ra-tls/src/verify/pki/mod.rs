//! X.509 checks shared by the Nitro and SEV-SNP verifiers: parsing, validity at the verifier's
//! clock, names and CA flags, over [`crate::x509`]. The chain checks that only Nitro's
//! all-ECDSA chain uses (SEV-SNP's RSA chain is `sev`'s) are in [`chain`].

#[cfg(feature = "nitro")]
pub(crate) mod chain;

use rustls_pki_types::UnixTime;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::name::Name;

use crate::x509::Certificate;
use crate::{Error, Platform};

/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse<'a>(
    platform: Platform,
    what: &str,
    der: &'a [u8],
) -> Result<Certificate<'a>, Error> {
    Certificate::from_der(der)
        .map_err(|e| rejected(platform, format!("{what} does not parse: {e}")))
}

/// The certificate must be valid at `now` (notBefore <= now <= notAfter).
pub(crate) fn check_validity(
    platform: Platform,
    what: &str,
    cert: &Certificate<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    let now = now.as_secs();
    let (not_before, not_after) = (cert.not_before(), cert.not_after());
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

/// notAfter of `cert`, unix seconds.
pub(crate) fn not_after(cert: &Certificate<'_>) -> u64 {
    cert.not_after()
}

pub(crate) fn issuer<'c>(cert: &'c Certificate<'_>) -> &'c Name {
    cert.decoded.tbs_certificate().issuer()
}

pub(crate) fn subject<'c>(cert: &'c Certificate<'_>) -> &'c Name {
    cert.decoded.tbs_certificate().subject()
}

/// A certificate name for messages: its common name. Not `Name`'s `Display`, which links the
/// attribute names of `const-oid`'s database into the browser bundle.
pub(crate) fn name(name: &Name) -> String {
    match name.common_name() {
        Ok(Some(cn)) => format!("CN={}", String::from(cn)),
        _ => "(no common name)".to_owned(),
    }
}

/// Whether some basicConstraints extension of `cert` has `cA` set.
pub(crate) fn is_ca(cert: &Certificate<'_>) -> bool {
    cert.decoded
        .tbs_certificate()
        .filter_extensions::<BasicConstraints>()
        .any(|e| e.is_ok_and(|(_, constraints)| constraints.ca))
}

/// [`Error::EvidenceRejected`] for `platform`.
pub(crate) fn rejected(platform: Platform, reason: String) -> Error {
    Error::EvidenceRejected { platform, reason }
}
