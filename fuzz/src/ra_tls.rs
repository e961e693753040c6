//! The verifier's parsers of a server's bytes: the RA-TLS certificate, its evidence extension
//! (the conceptual message wrapper), the claims buffer, each platform's evidence and the
//! endorsements (collateral).
//!
//! Shared with `ra-tls/tests/fuzz_regressions.rs` (see `lib.rs`): the replay calls exactly what
//! the fuzz target calls. Every verification runs at a fixed instant, the one at which the
//! real evidence of `$SHROUD_VECTORS_DIR` (the seeds, see `fuzz/seed.sh`) verifies, so that
//! the seeds reach the end of verification and mutations start from there.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use shroud_ra_tls::cert::{ParsedCertificate, certificate_der};
use shroud_ra_tls::claims::Claims;
use shroud_ra_tls::cmw::{Endorsements, Evidence};
use shroud_ra_tls::policy::AcceptRule;
use shroud_ra_tls::verify::simulated::SimulatedReport;
use shroud_ra_tls::verify::{PlatformReport, verify_platform_evidence, verify_raw_evidence};
use shroud_ra_tls::{
    Error, Platform, Policy, UnixTime, Verdict, VerifyOptions, verify_certificate,
    verify_certificate_evidence,
};

/// The clock of the certificate targets, 2026-01-01T00:00:00Z: inside the validity of the
/// simulated certificates in `fuzz/seeds/ratls_certificate/`.
pub const CERTIFICATE_AT: u64 = 1_767_225_600;
/// 2025-07-04T00:00:00Z, inside the Intel sample collateral's windows.
pub const INTEL_AT: u64 = 1_751_587_200;
/// 2025-12-25T13:15:37Z, the timestamp of the Nitro sample document.
pub const NITRO_AT: u64 = 1_766_668_537;
/// 2025-01-01T00:00:00Z, inside the validity of the Milan VCEK.
pub const SNP_AT: u64 = 1_735_689_600;
/// The measurement of the simulated seed certificates, the one the fuzz policy pins.
pub const SIMULATED_MEASUREMENT: [u8; 48] = [0x5a; 48];
/// The length of an SEV-SNP attestation report.
pub const SNP_REPORT_LEN: usize = 1184;

fn at(unix_secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(unix_secs))
}

/// What the certificate targets verify with: simulated evidence allowed (so that a certificate
/// the fuzzer did not break reaches the end of verification), at [`CERTIFICATE_AT`].
fn certificate_options() -> VerifyOptions<'static> {
    VerifyOptions {
        now: at(CERTIFICATE_AT),
        danger_allow_simulated: true,
        collateral: None,
    }
}

/// A policy that accepts the simulated seed certificates and nothing else.
fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let pins = BTreeMap::from([("measurement".to_owned(), SIMULATED_MEASUREMENT.to_vec())]);
        AcceptRule::new(Platform::Simulated, pins)
            .map(|rule| Policy::new(vec![rule]))
            .unwrap_or_default()
    })
}

/// `[u16 big-endian length][first part][second part]`: how the targets that take evidence and
/// collateral together split their input (`fuzz/seed.sh` writes its seeds that way).
pub fn split_framed(data: &[u8]) -> (&[u8], &[u8]) {
    match data {
        [high, low, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*high, *low]));
            rest.split_at_checked(len).unwrap_or((rest, &[]))
        }
        _ => (data, &[]),
    }
}

/// What a verified report may never be.
fn check_report(report: &PlatformReport, platform: Platform) {
    assert_eq!(report.platform, platform, "verified as another platform");
    assert!(!report.debug, "a debug build verified");
}

/// Target `ratls_certificate`: a server's certificate (DER, or PEM as `shroud verify --cert`
/// reads a file), verified against a policy that pins the simulated seed measurement.
pub fn ratls_certificate(data: &[u8]) -> Result<Verdict, Error> {
    let der = certificate_der(data)?;
    let verdict = verify_certificate(&der, policy(), &certificate_options());
    if let Ok(verdict) = &verdict {
        // Only the pinned build, and the same answer from every way of asking.
        assert_eq!(verdict.platform(), Platform::Simulated);
        assert_eq!(
            verdict.measurements().get("measurement"),
            Some(SIMULATED_MEASUREMENT.as_slice())
        );
        let parsed = ParsedCertificate::parse(&der);
        assert!(
            parsed.is_ok_and(|p| shroud_ra_tls::sha256(&p.spki_der) == verdict.spki_sha256()),
            "the verdict binds another key than the certificate's"
        );
        match verify_certificate_evidence(&der, &certificate_options()) {
            Ok((report, claims)) => {
                assert_eq!(&claims, verdict.claims());
                check_report(&report, Platform::Simulated);
            }
            Err(e) => panic!("verified with a policy, refused without: {e}"),
        }
    }
    verdict
}

/// Target `claims_cbor`: the claims buffer. A decoded buffer re-encodes to the same claims.
pub fn claims_cbor(data: &[u8]) -> Result<Claims, Error> {
    let claims = Claims::from_cbor(data)?;
    assert_eq!(
        Claims::from_cbor(&claims.to_cbor()).as_ref(),
        Ok(&claims),
        "claims changed through encoding"
    );
    Ok(claims)
}

/// Target `cmw`: the evidence extension's conceptual message wrapper, then what each platform's
/// verifier makes of the evidence inside (simulated evidence allowed, no collateral). A decoded
/// wrapper re-encodes to the same evidence.
pub fn cmw(data: &[u8]) -> Result<Evidence, Error> {
    let evidence = Evidence::from_cbor(data)?;
    assert_eq!(
        Evidence::from_cbor(&evidence.to_cbor()).as_ref(),
        Ok(&evidence),
        "evidence changed through encoding"
    );
    if let Ok(platform) = evidence.platform() {
        if platform == Platform::Simulated
            && let Ok(report) = SimulatedReport::from_cbor(evidence.platform_evidence())
        {
            assert_eq!(
                SimulatedReport::from_cbor(&report.to_cbor()).as_ref(),
                Ok(&report),
                "a simulated report changed through encoding"
            );
        }
        if let Ok(report) = verify_platform_evidence(&evidence, None, &certificate_options()) {
            check_report(&report, platform);
        }
    }
    Ok(evidence)
}

/// Target `nitro_evidence`: an AWS Nitro attestation document (COSE_Sign1), verified to the
/// pinned root at [`NITRO_AT`].
pub fn nitro_evidence(data: &[u8]) -> Result<PlatformReport, Error> {
    let report = verify_raw_evidence(Platform::Nitro, data, None, at(NITRO_AT))?;
    check_report(&report, Platform::Nitro);
    Ok(report)
}

/// Target `dcap_quote`: an Intel SGX or TDX quote and its collateral (dcap-qvl
/// `QuoteCollateralV3` JSON), framed as in [`split_framed`]; the quote header says which
/// platform, as in a certificate. Verified at [`INTEL_AT`].
pub fn dcap_quote(data: &[u8]) -> Result<PlatformReport, Error> {
    let (quote, collateral) = split_framed(data);
    let evidence = Evidence::Intel {
        quote: quote.to_vec(),
        claims: Vec::new(),
    };
    let collateral = Some(collateral).filter(|c| !c.is_empty());
    let options = VerifyOptions::at(at(INTEL_AT));
    let report = verify_platform_evidence(&evidence, collateral, &options)?;
    check_report(&report, evidence.platform()?);
    Ok(report)
}

/// Target `snp_report`: an AMD SEV-SNP report (its first 1184 bytes) and the VCEK/VLEK
/// endorsements after it (DER, PEM or the CBOR certificate list), verified at [`SNP_AT`].
pub fn snp_report(data: &[u8]) -> Result<PlatformReport, Error> {
    let (report, endorsements) = data.split_at_checked(SNP_REPORT_LEN).unwrap_or((data, &[]));
    let endorsements = Some(endorsements).filter(|e| !e.is_empty());
    let report = verify_raw_evidence(Platform::SevSnp, report, endorsements, at(SNP_AT))?;
    check_report(&report, Platform::SevSnp);
    Ok(report)
}

/// A well-formed, unsigned SEV-SNP report (version 2, not debug, a chip id): what lets arbitrary
/// endorsements reach the certificate parsing of the SEV-SNP verifier.
pub fn unsigned_snp_report() -> &'static [u8] {
    static REPORT: OnceLock<Vec<u8>> = OnceLock::new();
    REPORT.get_or_init(|| {
        let mut report = vec![0_u8; SNP_REPORT_LEN];
        let fields: [(usize, &[u8]); 4] = [
            // version 2
            (0x00, &[2, 0, 0, 0]),
            // policy: the reserved bit 17 set, debug (bit 19) clear
            (0x08, &[0, 0, 2, 0, 0, 0, 0, 0]),
            // signature algorithm 1: ECDSA P-384/SHA-384
            (0x34, &[1, 0, 0, 0]),
            // chip id (not masked, not Turin-like)
            (0x1a0, &[0x11; 64]),
        ];
        for (offset, bytes) in fields {
            if let Some(field) = report.get_mut(offset..offset + bytes.len()) {
                field.copy_from_slice(bytes);
            }
        }
        report
    })
}

/// Target `endorsements`: the endorsements extension (`[media-type, bstr]`), and the same bytes
/// as the SEV-SNP verifier's collateral (DER, PEM or a CBOR certificate list) for an unsigned
/// report, which must never verify. A decoded extension re-encodes to the same endorsements.
pub fn endorsements(data: &[u8]) -> Result<Endorsements, Error> {
    let unsigned = unsigned_snp_report();
    let as_collateral = verify_raw_evidence(Platform::SevSnp, unsigned, Some(data), at(SNP_AT));
    assert!(as_collateral.is_err(), "an unsigned report verified");
    let endorsements = Endorsements::from_cbor(data)?;
    assert_eq!(
        Endorsements::from_cbor(&endorsements.to_cbor()).as_ref(),
        Ok(&endorsements),
        "endorsements changed through encoding"
    );
    if endorsements.is_for(Platform::SevSnp) {
        let collateral = endorsements.verifier_collateral();
        let verified =
            verify_raw_evidence(Platform::SevSnp, unsigned, Some(&collateral), at(SNP_AT));
        assert!(verified.is_err(), "an unsigned report verified");
    }
    Ok(endorsements)
}
