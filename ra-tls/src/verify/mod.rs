//! The verification sequence of DESIGN §3 as one function, [`verify_certificate`].
//!
//! Each hardware verifier is behind the feature named like its platform
//! ([`Platform::has_verifier`]); evidence of a platform whose verifier is not compiled in is
//! refused with [`Error::UnsupportedPlatform`].

#[cfg(any(feature = "tdx", feature = "sgx"))]
mod intel;
#[cfg(feature = "nitro")]
mod nitro;
#[cfg(any(feature = "nitro", feature = "sev-snp"))]
mod pki;
mod report;
#[cfg(feature = "sev-snp")]
mod sev_snp;
pub mod simulated;

pub use report::PlatformReport;

#[cfg(any(feature = "tdx", feature = "sgx"))]
pub use intel::INTEL_SGX_ROOT_CA_DER;
#[cfg(feature = "nitro")]
pub use nitro::{AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256};

/// What evidence states about itself, unverified: for attesters to print their own measurements
/// (feature `attest` turns on every platform).
#[cfg(feature = "attest")]
pub(crate) mod unverified {
    pub(crate) use super::intel::unverified_measurements as intel_quote;
    pub(crate) use super::nitro::unverified_measurements as nitro_document;
    pub(crate) use super::sev_snp::unverified_measurements as sev_snp_report;
}

use rustls_pki_types::UnixTime;

use crate::cert::ParsedCertificate;
use crate::claims::Claims;
use crate::cmw::{Endorsements, Evidence};
use crate::{Error, Measurements, Platform, Policy, TcbStatus};

/// What the caller allows beyond the policy, and the clock.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The verifier's clock; never read inside the verifier.
    pub now: UnixTime,
    /// Accept simulated evidence. Development only: simulated evidence proves nothing.
    pub danger_allow_simulated: bool,
    /// Collateral supplied by the caller; used instead of the certificate's endorsements.
    pub collateral: Option<&'a [u8]>,
}

impl VerifyOptions<'_> {
    /// Strict options at `now`: simulated evidence refused, no extra collateral.
    pub fn at(now: UnixTime) -> Self {
        Self {
            now,
            danger_allow_simulated: false,
            collateral: None,
        }
    }
}

/// A verified, policy-accepted RA-TLS certificate. Only [`verify_certificate`] makes one: its
/// fields are private, so a `Verdict` in hand is proof that the checks ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    platform: Platform,
    measurements: Measurements,
    tcb_status: TcbStatus,
    claims: Claims,
    spki_sha256: [u8; 32],
    cert_sha256: [u8; 32],
    not_before: u64,
    not_after: u64,
    expires_at: u64,
}

impl Verdict {
    /// The platform of the evidence.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The measurements the policy accepted.
    pub fn measurements(&self) -> &Measurements {
        &self.measurements
    }

    /// The TCB status the policy accepted.
    pub fn tcb_status(&self) -> TcbStatus {
        self.tcb_status
    }

    /// The claims, bound to the evidence and to the certificate key.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// SHA-256 of the certificate's SubjectPublicKeyInfo: what connections are bound to.
    pub fn spki_sha256(&self) -> [u8; 32] {
        self.spki_sha256
    }

    /// SHA-256 of the certificate DER: the verification cache key.
    pub fn cert_sha256(&self) -> [u8; 32] {
        self.cert_sha256
    }

    /// notBefore of the certificate, unix seconds.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// notAfter of the certificate, unix seconds.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// Until when this verdict holds: the earlier of the certificate's notAfter and the
    /// evidence's own expiry (its chain and collateral). A client re-verifies after it.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// Verifies an RA-TLS certificate and checks it against `policy`, failing closed.
pub fn verify_certificate(
    cert_der: &[u8],
    policy: &Policy,
    options: &VerifyOptions<'_>,
) -> Result<Verdict, Error> {
    if policy.is_empty() {
        return Err(Error::EmptyPolicy);
    }
    // 1. and 2. Evidence of a platform whose verifier this build lacks is of a platform the
    // policy cannot pin either (such rules are refused when loaded): say that the gateway is
    // not what the policy accepts, as the all-platform build would.
    let (cert, evidence, report) = authenticate(cert_der, options).map_err(|e| match e {
        Error::UnsupportedPlatform { platform } => Error::MeasurementMismatch {
            actual: format!("[{platform} evidence, which this build has no verifier for]"),
            expected: policy.describe(),
        },
        e => e,
    })?;
    // 3. debug and TCB status.
    if report.debug {
        return Err(Error::DebugEnclave {
            platform: report.platform,
        });
    }
    policy.check_tcb(report.platform, report.tcb_status)?;
    // 4. the claims are what the evidence signed, and they bind this certificate's key.
    let claims = bind(&cert, &evidence, &report)?;
    // 5. the pins.
    let observed = report.observed(claims.iat);
    let rule = policy.accepting_rule(&observed, options.now)?;
    // The verdict holds while the certificate, the evidence's chain and collateral, and the
    // rule's maximum evidence age all do.
    let expires_at = [
        Some(cert.not_after),
        report.valid_until,
        rule.evidence_deadline(observed.issued_at),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(cert.not_after);
    Ok(Verdict {
        platform: report.platform,
        measurements: report.measurements,
        tcb_status: report.tcb_status,
        claims,
        spki_sha256: crate::sha256(&cert.spki_der),
        cert_sha256: cert.cert_sha256,
        not_before: cert.not_before,
        not_after: cert.not_after,
        expires_at,
    })
}

/// Steps 1, 2 and 4 of [`verify_certificate`] without a policy: the certificate is well formed
/// and valid at `options.now`, its evidence is authentic (debug builds refused), and the evidence
/// binds the claims and the claims the certificate key. The caller applies the TCB policy and
/// the pins to the returned report (`shroud verify --cert`, which reports what it found).
pub fn verify_certificate_evidence(
    cert_der: &[u8],
    options: &VerifyOptions<'_>,
) -> Result<(PlatformReport, Claims), Error> {
    let (cert, evidence, report) = authenticate(cert_der, options)?;
    if report.debug {
        return Err(Error::DebugEnclave {
            platform: report.platform,
        });
    }
    let claims = bind(&cert, &evidence, &report)?;
    Ok((report, claims))
}

/// Steps 1 and 2: structure, one bounded evidence extension, validity, self-signature; then the
/// platform evidence to its vendor root at the verifier's clock.
fn authenticate(
    cert_der: &[u8],
    options: &VerifyOptions<'_>,
) -> Result<(ParsedCertificate, Evidence, PlatformReport), Error> {
    let cert = ParsedCertificate::parse(cert_der)?;
    cert.check_validity(options.now)?;
    let evidence = Evidence::from_cbor(&cert.evidence)?;
    let endorsements = certificate_collateral(cert.endorsements.as_deref(), &evidence)?;
    // The caller's collateral wins over what the gateway chose to send: a gateway could keep
    // serving old TCB info (from before a TCB recovery) that still rates its platform UpToDate.
    let endorsements = options.collateral.or(endorsements.as_deref());
    let report = verify_platform_evidence(&evidence, endorsements, options)?;
    Ok((cert, evidence, report))
}

/// Step 4: the report data is SHA-256(claims buffer), and the claims bind the certificate key.
fn bind(
    cert: &ParsedCertificate,
    evidence: &Evidence,
    report: &PlatformReport,
) -> Result<Claims, Error> {
    check_report_data(&report.report_data, evidence.claims_buffer())?;
    let claims = Claims::from_cbor(evidence.claims_buffer())?;
    if claims.binds_spki(&cert.spki_der) {
        Ok(claims)
    } else {
        Err(Error::PubkeyHashMismatch)
    }
}

/// The collateral the certificate's endorsements extension carries for its evidence, in the
/// form the platform verifier takes ([`Endorsements::verifier_collateral`]).
fn certificate_collateral(
    extension: Option<&[u8]>,
    evidence: &Evidence,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(extension) = extension else {
        return Ok(None);
    };
    let platform = evidence.platform()?;
    let endorsements =
        Endorsements::from_cbor(extension).map_err(|e| Error::MalformedCollateral {
            platform,
            reason: format!("endorsements extension: {e}"),
        })?;
    if !endorsements.is_for(platform) {
        return Err(Error::MalformedCollateral {
            platform,
            reason: "the endorsements extension carries collateral for another platform".into(),
        });
    }
    Ok(Some(endorsements.verifier_collateral()))
}

/// Step 2 alone: checks the evidence to its vendor root and returns what it reports.
///
/// Debug enclaves, TDs and guests are refused here already ([`Error::DebugEnclave`]), so a
/// returned report is never a debug build; TCB status and measurements are for the caller's
/// policy.
pub fn verify_platform_evidence(
    evidence: &Evidence,
    endorsements: Option<&[u8]>,
    options: &VerifyOptions<'_>,
) -> Result<PlatformReport, Error> {
    let platform = evidence.platform()?;
    match platform {
        Platform::Simulated if !options.danger_allow_simulated => Err(Error::SimulatedRefused),
        Platform::Simulated => simulated::verify(evidence.platform_evidence()),
        _ => verify_hardware_evidence(
            platform,
            evidence.platform_evidence(),
            endorsements,
            options.now,
        ),
    }
}

/// Verifies raw platform evidence without a certificate (`shroud verify --evidence`): a DCAP
/// quote (sgx, tdx), a Nitro COSE_Sign1 attestation document, or an SEV-SNP report, to the
/// pinned vendor root at `now`.
///
/// `collateral` is what the platform needs besides the evidence: for sgx and tdx dcap-qvl's
/// `QuoteCollateralV3` JSON; for sev-snp the VCEK or VLEK (DER, or PEM possibly followed by its
/// ASK/ASVK) or the certificate list of [`Endorsements::SevSnp`] as CBOR; nothing for nitro. Like [`verify_platform_evidence`] it refuses debug builds;
/// the caller applies [`Policy::check_tcb`] and the measurement pins to the returned report.
/// Simulated evidence proves nothing and is refused.
pub fn verify_raw_evidence(
    platform: Platform,
    evidence: &[u8],
    collateral: Option<&[u8]>,
    now: UnixTime,
) -> Result<PlatformReport, Error> {
    match platform {
        Platform::Simulated => Err(Error::SimulatedRefused),
        _ => verify_hardware_evidence(platform, evidence, collateral, now),
    }
}

fn verify_hardware_evidence(
    platform: Platform,
    evidence: &[u8],
    endorsements: Option<&[u8]>,
    now: UnixTime,
) -> Result<PlatformReport, Error> {
    let (_, verify) = HARDWARE_VERIFIERS
        .iter()
        .find(|(p, _)| *p == platform)
        .ok_or(Error::UnsupportedPlatform { platform })?;
    verify(evidence, endorsements, now)
}

/// A hardware verifier: the evidence, its collateral (endorsements) and the verifier's clock.
type HardwareVerifier = fn(&[u8], Option<&[u8]>, UnixTime) -> Result<PlatformReport, Error>;

/// The hardware verifiers compiled into this build, one per platform feature
/// ([`Platform::has_verifier`]). Intel and AMD evidence is authentic only together with
/// collateral (TCB info, CRLs, the VCEK); Nitro needs none: the cabundle is in the document and
/// the root is pinned.
const HARDWARE_VERIFIERS: &[(Platform, HardwareVerifier)] = &[
    #[cfg(feature = "sgx")]
    (Platform::Sgx, |quote, collateral, now| {
        intel::verify(Platform::Sgx, quote, collateral, now)
    }),
    #[cfg(feature = "tdx")]
    (Platform::Tdx, |quote, collateral, now| {
        intel::verify(Platform::Tdx, quote, collateral, now)
    }),
    #[cfg(feature = "sev-snp")]
    (Platform::SevSnp, sev_snp::verify),
    #[cfg(feature = "nitro")]
    (Platform::Nitro, |document, _, now| {
        nitro::verify(document, now)
    }),
];

/// `report_data` must be SHA-256(claims) followed only by zero bytes.
fn check_report_data(report_data: &[u8], claims: &[u8]) -> Result<(), Error> {
    let expected = crate::sha256(claims);
    match report_data.split_at_checked(expected.len()) {
        Some((hash, rest)) if hash == expected && rest.iter().all(|b| *b == 0) => Ok(()),
        _ => Err(Error::ReportDataMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_verifiers_are_the_platforms_that_say_so() {
        for platform in Platform::ALL {
            let compiled = HARDWARE_VERIFIERS.iter().any(|(p, _)| *p == platform);
            assert_eq!(
                compiled || platform == Platform::Simulated,
                platform.has_verifier(),
                "{platform}"
            );
        }
    }

    #[test]
    fn evidence_of_a_platform_without_its_verifier_is_refused_as_such() {
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
        for platform in Platform::ALL {
            let result = verify_raw_evidence(platform, b"not evidence", Some(b"{}"), now);
            match result {
                Err(Error::UnsupportedPlatform { platform: refused }) => {
                    assert_eq!(refused, platform);
                    assert!(!platform.has_verifier(), "{platform}");
                }
                Err(Error::SimulatedRefused) => assert_eq!(platform, Platform::Simulated),
                other => assert!(
                    platform.has_verifier() && other.is_err(),
                    "{platform}: {other:?}"
                ),
            }
        }
    }
}
