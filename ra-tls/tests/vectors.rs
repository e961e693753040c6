//! The platform verifiers against real hardware evidence (`../shared/attestation-vectors`, see
//! its README): every positive vector verifies at its pinned instant with the measurements and
//! TCB status asserted; the same vector is refused at the real current time; negative vectors
//! and tampered copies are refused for the right reason.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption is a failed test"
)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use shroud_ra_tls::verify::{PlatformReport, verify_raw_evidence};
use shroud_ra_tls::{Error, Platform, Policy, TcbStatus, UnixTime};
use shroud_testkit::vectors::{
    NITRO_MEASUREMENTS, SGX_MEASUREMENTS, SNP_MEASUREMENTS, TDX_MEASUREMENTS, measurement,
};

fn at(unix_secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(unix_secs))
}

fn real_now() -> UnixTime {
    UnixTime::since_unix_epoch(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap(),
    )
}

/// 2025-07-04T00:00:00Z, inside the Intel sample collateral's windows.
const INTEL_AT: u64 = 1_751_587_200;

fn vectors() -> Option<PathBuf> {
    shroud_testkit::vectors::attestation_vectors()
}

fn read(dir: &std::path::Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn show(report: &PlatformReport) {
    println!(
        "{} tcb={} debug={} report_data={}",
        report.platform,
        report.tcb_status,
        report.debug,
        hex::encode(&report.report_data)
    );
    for (field, value) in report.measurements.iter() {
        println!("  {field} = {}", hex::encode(value));
    }
}

fn assert_measurements(report: &PlatformReport, expected: &[(&str, &str)]) {
    let fields: Vec<&str> = report.measurements.iter().map(|(f, _)| f).collect();
    let mut names: Vec<&str> = expected.iter().map(|(f, _)| *f).collect();
    names.sort_unstable();
    assert_eq!(fields, names, "measurement fields");
    for (field, hex_value) in expected {
        assert_eq!(
            hex::encode(report.measurements.get(field).unwrap()),
            *hex_value,
            "{field}"
        );
    }
    for (field, len) in report.platform.measurement_fields() {
        assert_eq!(
            report.measurements.get(field).unwrap().len(),
            *len,
            "{field} length"
        );
    }
}

fn rejected_because(result: Result<PlatformReport, Error>, platform: Platform, needle: &str) {
    match result {
        Err(Error::EvidenceRejected {
            platform: p,
            reason,
        }) => {
            println!("{platform} rejected: {reason}");
            assert_eq!(p, platform);
            assert!(
                reason.to_lowercase().contains(&needle.to_lowercase()),
                "reason {reason:?} does not mention {needle:?}"
            );
        }
        other => panic!("expected EvidenceRejected({needle}), got {other:?}"),
    }
}

fn flip(bytes: &[u8], offset: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[offset] ^= 0x01;
    out
}

// ---------------------------------------------------------------------------------------------
// Intel SGX and TDX

/// Offsets in a DCAP quote: header 48 bytes, then the report body; SGX (v3) `mr_enclave` at
/// body+64 and `report_data` at body+320 (body 384); TDX (v4, TD 1.0) `mr_td` at body+136 and
/// `report_data` at body+520 (body 584); then a u32 signature-data length and the ECDSA
/// signature.
const QUOTE_HEADER: usize = 48;
const SGX_BODY: usize = 384;
const TDX_BODY: usize = 584;

fn sgx_vector() -> Option<(Vec<u8>, Vec<u8>)> {
    let dir = vectors()?;
    Some((
        read(&dir, "intel/sgx_quote.bin"),
        read(&dir, "intel/sgx_quote_collateral.json"),
    ))
}

fn tdx_vector() -> Option<(Vec<u8>, Vec<u8>)> {
    let dir = vectors()?;
    Some((
        read(&dir, "intel/tdx_quote.bin"),
        read(&dir, "intel/tdx_quote_collateral.json"),
    ))
}

#[test]
fn sgx_quote_verifies_to_the_intel_root_at_its_instant() {
    let Some((quote, collateral)) = sgx_vector() else {
        return;
    };
    let report =
        verify_raw_evidence(Platform::Sgx, &quote, Some(&collateral), at(INTEL_AT)).unwrap();
    show(&report);
    assert_eq!(report.platform, Platform::Sgx);
    assert!(!report.debug);
    assert_eq!(
        report.tcb_status,
        TcbStatus::ConfigurationAndSwHardeningNeeded
    );
    assert_eq!(report.report_data.len(), 64);
    assert_measurements(&report, SGX_MEASUREMENTS);
    assert_eq!(hex::encode(&report.report_data), SGX_REPORT_DATA);

    // A strict policy refuses the status; one that allows it accepts.
    let mrenclave = SGX_MEASUREMENTS[0].1;
    let strict = Policy::from_pins([format!("sgx:mrenclave={mrenclave}")]).unwrap();
    assert!(matches!(
        strict.check_tcb(Platform::Sgx, report.tcb_status),
        Err(Error::TcbNotAllowed { .. })
    ));
    let lenient = Policy::from_toml(&format!(
        "[[accept]]\nplatform = \"sgx\"\nmrenclave = \"{mrenclave}\"\nallow_tcb = [\"ConfigurationAndSWHardeningNeeded\"]\n"
    ))
    .unwrap();
    lenient.check_tcb(Platform::Sgx, report.tcb_status).unwrap();
    lenient
        .check_measurements(&report.observed(None), at(INTEL_AT))
        .unwrap();
}

/// Issue: a signer-only SGX pin accepts every product and every older, vulnerable version of
/// that signer; `mrsigner` + `isvprodid` + `min_isvsvn` identifies the code.
#[test]
fn sgx_signer_pins_need_product_and_minimum_svn() {
    let Some((quote, collateral)) = sgx_vector() else {
        return;
    };
    let report =
        verify_raw_evidence(Platform::Sgx, &quote, Some(&collateral), at(INTEL_AT)).unwrap();
    let mrsigner = SGX_MEASUREMENTS[1].1;
    let allowance = "allow_tcb = [\"ConfigurationAndSWHardeningNeeded\"]";
    let signer_only = Policy::from_toml(&format!(
        "[[accept]]\nplatform = \"sgx\"\nmrsigner = \"{mrsigner}\"\n{allowance}\n"
    ));
    let Err(Error::InvalidPolicy(message)) = signer_only else {
        panic!("a signer-only rule must be refused: {signer_only:?}");
    };
    assert!(
        message.contains("missing: isvprodid, min_isvsvn"),
        "{message}"
    );
    // The vector's ISV SVN is 0: a minimum of 0 accepts it, a minimum of 1 refuses it.
    for (min, accepted) in [(0, true), (1, false)] {
        let policy = Policy::from_toml(&format!(
            "[[accept]]\nplatform = \"sgx\"\nmrsigner = \"{mrsigner}\"\nisvprodid = \"0000\"\nmin_isvsvn = {min}\n{allowance}\n"
        ))
        .unwrap();
        let result = policy.check_measurements(&report.observed(None), at(INTEL_AT));
        match (accepted, result) {
            (true, Ok(())) => {}
            (false, Err(Error::RuleNotMet { reason, .. })) => {
                assert!(reason.contains("below min_isvsvn 1"), "{reason}");
            }
            (_, other) => panic!("min_isvsvn {min}: {other:?}"),
        }
    }
}

/// Issue: `tdx:mrtd=` alone is the TD firmware every tenant of a cloud's VM type shares.
#[test]
fn tdx_pins_need_the_rtmrs() {
    let Some((quote, collateral)) = tdx_vector() else {
        return;
    };
    let report =
        verify_raw_evidence(Platform::Tdx, &quote, Some(&collateral), at(INTEL_AT)).unwrap();
    let pin = |field: &str| {
        let value = TDX_MEASUREMENTS
            .iter()
            .find(|(f, _)| *f == field)
            .unwrap()
            .1;
        format!("tdx:{field}={value}")
    };
    let Err(Error::InvalidPolicy(message)) = Policy::from_pins([pin("mrtd")]) else {
        panic!("an mrtd-only pin must be refused");
    };
    assert!(
        message.contains("missing: rtmr0, rtmr1, rtmr2"),
        "{message}"
    );
    let complete = Policy::from_pins(["mrtd", "rtmr0", "rtmr1", "rtmr2"].map(pin)).unwrap();
    complete
        .check_measurements(&report.observed(None), at(INTEL_AT))
        .unwrap();
    // The collateral's evaluation data number is what min_tcb_eval_data_number compares.
    let number = report.tcb_eval_data_number.unwrap();
    println!("tdx collateral tcbEvaluationDataNumber {number}");
    let rule = |min: u32| {
        let pins: String = ["mrtd", "rtmr0", "rtmr1", "rtmr2"]
            .iter()
            .map(|f| format!("{f} = \"{}\"\n", measurement(TDX_MEASUREMENTS, f)))
            .collect();
        Policy::from_toml(&format!(
            "[[accept]]\nplatform = \"tdx\"\n{pins}min_tcb_eval_data_number = {min}\n"
        ))
        .unwrap()
    };
    rule(number)
        .check_measurements(&report.observed(None), at(INTEL_AT))
        .unwrap();
    assert!(matches!(
        rule(number + 1).check_measurements(&report.observed(None), at(INTEL_AT)),
        Err(Error::RuleNotMet { reason, .. }) if reason.contains("tcbEvaluationDataNumber")
    ));
}

/// "Hello, world!" padded with zeros.
const SGX_REPORT_DATA: &str = "48656c6c6f2c20776f726c6421000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn tdx_quote_verifies_up_to_date_at_its_instant() {
    let Some((quote, collateral)) = tdx_vector() else {
        return;
    };
    let report =
        verify_raw_evidence(Platform::Tdx, &quote, Some(&collateral), at(INTEL_AT)).unwrap();
    show(&report);
    assert_eq!(report.platform, Platform::Tdx);
    assert!(!report.debug);
    assert_eq!(report.tcb_status, TcbStatus::UpToDate);
    assert_measurements(&report, TDX_MEASUREMENTS);
    assert_eq!(hex::encode(&report.report_data), TDX_REPORT_DATA);
}

const TDX_REPORT_DATA: &str = "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20";

#[test]
fn intel_quotes_are_refused_at_the_real_current_time() {
    let (Some((sgx, sgx_collateral)), Some((tdx, tdx_collateral))) = (sgx_vector(), tdx_vector())
    else {
        return;
    };
    let now = real_now();
    rejected_because(
        verify_raw_evidence(Platform::Sgx, &sgx, Some(&sgx_collateral), now),
        Platform::Sgx,
        "CrlExpired",
    );
    rejected_because(
        verify_raw_evidence(Platform::Tdx, &tdx, Some(&tdx_collateral), now),
        Platform::Tdx,
        "CrlExpired",
    );
}

#[test]
fn intel_quotes_need_collateral() {
    let Some((quote, _)) = tdx_vector() else {
        return;
    };
    assert_eq!(
        verify_raw_evidence(Platform::Tdx, &quote, None, at(INTEL_AT)),
        Err(Error::MissingCollateral {
            platform: Platform::Tdx
        })
    );
    assert!(matches!(
        verify_raw_evidence(Platform::Tdx, &quote, Some(b"{}"), at(INTEL_AT)),
        Err(Error::MalformedCollateral {
            platform: Platform::Tdx,
            ..
        })
    ));
    // The header decides the platform: a TDX quote is not SGX evidence.
    assert!(matches!(
        verify_raw_evidence(Platform::Sgx, &quote, Some(b"{}"), at(INTEL_AT)),
        Err(Error::MalformedEvidence(_))
    ));
}

#[test]
fn tdx_debug_td_is_refused() {
    let Some(dir) = vectors() else {
        return;
    };
    let quote = read(&dir, "intel/tdx_quote_debug_td.bin");
    // The vector comes without collateral; without any, that is what is said first.
    assert_eq!(
        verify_raw_evidence(Platform::Tdx, &quote, None, at(INTEL_AT)),
        Err(Error::MissingCollateral {
            platform: Platform::Tdx
        })
    );
    // With collateral (any: the debug bit is refused before the collateral is used), the quote
    // parses and is refused as a debug TD.
    let collateral = read(&dir, "intel/tdx_quote_collateral.json");
    assert_eq!(
        verify_raw_evidence(Platform::Tdx, &quote, Some(&collateral), at(INTEL_AT)),
        Err(Error::DebugEnclave {
            platform: Platform::Tdx
        })
    );
}

#[test]
fn outdated_tdx_quote_is_refused() {
    let Some(dir) = vectors() else {
        return;
    };
    let quote = read(&dir, "intel/tdx_quote_outdated.bin");
    let collateral = read(&dir, "intel/tdx_quote_outdated_collateral.json");
    // 2026-03-01T00:00:00Z, inside the collateral window 2026-02-18..2026-03-20.
    let result = verify_raw_evidence(Platform::Tdx, &quote, Some(&collateral), at(1_772_323_200));
    println!("outdated TDX: {result:?}");
    // The quote's TCB (its CPU SVN / TDX module SVN) is below every level the TCB info lists.
    rejected_because(result, Platform::Tdx, "No matching TCB level");
}

#[test]
fn tampered_intel_quotes_are_refused() {
    let (Some((sgx, sgx_collateral)), Some((tdx, tdx_collateral))) = (sgx_vector(), tdx_vector())
    else {
        return;
    };
    let cases = [
        (Platform::Sgx, &sgx, &sgx_collateral, SGX_BODY, 64, 320),
        (Platform::Tdx, &tdx, &tdx_collateral, TDX_BODY, 136, 520),
    ];
    for (platform, quote, collateral, body, measurement, report_data) in cases {
        let signature = QUOTE_HEADER + body + 4;
        for (what, offset) in [
            ("signature", signature + 5),
            ("measurement", QUOTE_HEADER + measurement + 3),
            ("report data", QUOTE_HEADER + report_data + 7),
        ] {
            let result = verify_raw_evidence(
                platform,
                &flip(quote, offset),
                Some(collateral),
                at(INTEL_AT),
            );
            println!("{platform} tampered {what}: {result:?}");
            rejected_because(result, platform, "signature is invalid");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AWS Nitro

/// 2025-12-25T13:15:37Z, the document's own timestamp.
const NITRO_AT: u64 = 1_766_668_537;

fn nitro_document() -> Option<Vec<u8>> {
    Some(read(&vectors()?, "nitro/attestation_doc.cose"))
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{} not found", hex::encode(needle)))
}

#[test]
fn nitro_document_verifies_to_the_pinned_root_at_its_timestamp() {
    let Some(doc) = nitro_document() else {
        return;
    };
    let report = verify_raw_evidence(Platform::Nitro, &doc, None, at(NITRO_AT)).unwrap();
    show(&report);
    assert_eq!(report.platform, Platform::Nitro);
    assert!(!report.debug);
    assert_eq!(report.tcb_status, TcbStatus::NotApplicable);
    assert_eq!(report.report_data, vec![0u8; 64]);
    assert_measurements(&report, NITRO_MEASUREMENTS);
}

#[test]
fn nitro_document_is_refused_at_the_real_current_time() {
    let Some(doc) = nitro_document() else {
        return;
    };
    rejected_because(
        verify_raw_evidence(Platform::Nitro, &doc, None, real_now()),
        Platform::Nitro,
        "expired",
    );
}

#[test]
fn nitro_debug_documents_are_refused() {
    let Some(dir) = vectors() else {
        return;
    };
    for (file, instant) in [
        // 2025-12-25T08:20:46Z
        ("nitro/debug_pcrs_zero_doc.cose", 1_766_650_846),
        // 2022-10-12T13:50:06Z
        ("nitro/debug_mode_doc.cose", 1_665_582_606),
    ] {
        let doc = read(&dir, file);
        let result = verify_raw_evidence(Platform::Nitro, &doc, None, at(instant));
        println!("{file}: {result:?}");
        assert_eq!(
            result,
            Err(Error::DebugEnclave {
                platform: Platform::Nitro
            }),
            "{file}"
        );
    }
}

#[test]
fn tampered_nitro_documents_are_refused() {
    let Some(doc) = nitro_document() else {
        return;
    };
    let pcr0 = hex::decode(NITRO_MEASUREMENTS[0].1).unwrap();
    let signature = doc.len() - 10; // the 96-byte ES384 signature ends the document
    let measurement = find(&doc, &pcr0) + 3;
    let user_data = find(&doc, b"user_data") + b"user_data".len() + 2 + 5;
    for (what, offset) in [
        ("signature", signature),
        ("measurement", measurement),
        ("report data", user_data),
    ] {
        let result = verify_raw_evidence(Platform::Nitro, &flip(&doc, offset), None, at(NITRO_AT));
        println!("nitro tampered {what}: {result:?}");
        assert_eq!(
            result,
            Err(Error::BadEvidenceSignature {
                platform: Platform::Nitro
            }),
            "{what}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// AMD SEV-SNP

/// 2025-01-01T00:00:00Z, the README's instant for the Milan report.
const SNP_AT: u64 = 1_735_689_600;
/// notBefore and notAfter of `vcek_milan.der` (2023-04-03T19:23:43Z, 2030-04-03T19:23:43Z).
const VCEK_NOT_BEFORE: u64 = 1_680_549_823;
const VCEK_NOT_AFTER: u64 = 1_901_474_623;

/// Offsets in an SEV-SNP report: policy at 0x08, report_data at 0x50, measurement at 0x90,
/// host_data at 0xc0, the signature at 0x2a0.
const SNP_POLICY: usize = 0x08;
const SNP_REPORT_DATA: usize = 0x50;
const SNP_MEASUREMENT: usize = 0x90;
const SNP_SIGNATURE: usize = 0x2a0;

const SNP_REPORT_DATA_HEX: &str = "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd";

fn snp_vector() -> Option<(Vec<u8>, Vec<u8>)> {
    let dir = vectors()?;
    Some((
        read(&dir, "sev-snp/report_milan.bin"),
        read(&dir, "sev-snp/vcek_milan.der"),
    ))
}

fn pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n").into_bytes()
}

#[test]
fn snp_report_verifies_to_the_pinned_milan_ark_at_its_instant() {
    let Some((report, vcek)) = snp_vector() else {
        return;
    };
    let dir = vectors().unwrap();
    let ask = read(&dir, "sev-snp/ask_milan.pem");
    let ask_der = x509_parser::pem::parse_x509_pem(&ask).unwrap().1.contents;
    let cbor = shroud_ra_tls::cmw::Endorsements::SevSnp {
        certificates: vec![vcek.clone(), ask_der],
    }
    .verifier_collateral();
    let pem_with_ask = [pem(&vcek), ask].concat();
    // The VCEK alone as DER or PEM, with its ASK as PEM, and as the endorsements' CBOR list.
    for (form, collateral) in [
        ("der", vcek.clone()),
        ("pem", pem(&vcek)),
        ("pem+ask", pem_with_ask),
        ("cbor", cbor),
    ] {
        let report = verify_raw_evidence(Platform::SevSnp, &report, Some(&collateral), at(SNP_AT))
            .unwrap_or_else(|e| panic!("{form}: {e}"));
        show(&report);
        assert_eq!(report.platform, Platform::SevSnp);
        assert!(!report.debug);
        // Issue: SNP firmware 8 (2022) is below the Milan minimum of AMD's bulletins.
        assert_eq!(report.tcb_status, TcbStatus::OutOfDate, "{form}");
        assert_measurements(&report, SNP_MEASUREMENTS);
        assert_eq!(hex::encode(&report.report_data), SNP_REPORT_DATA_HEX);
    }
    let measurement = SNP_MEASUREMENTS[0].1;
    let report = verify_raw_evidence(Platform::SevSnp, &report, Some(&vcek), at(SNP_AT)).unwrap();
    let snp_tcb = report.snp_tcb.unwrap();
    println!("reported TCB {snp_tcb:?}");
    assert_eq!((snp_tcb.snp, snp_tcb.microcode), (8, 115));
    // Trusted only with the explicit allowance.
    let strict = Policy::from_pins([format!("sev-snp:measurement={measurement}")]).unwrap();
    assert_eq!(
        strict.check_tcb(Platform::SevSnp, report.tcb_status),
        Err(Error::TcbNotAllowed {
            platform: Platform::SevSnp,
            status: TcbStatus::OutOfDate
        })
    );
    let allowing = Policy::from_toml(&format!(
        "[[accept]]\nplatform = \"sev-snp\"\nmeasurement = \"{measurement}\"\nallow_tcb = [\"OutOfDate\"]\n"
    ))
    .unwrap();
    allowing
        .check_tcb(Platform::SevSnp, report.tcb_status)
        .unwrap();
    allowing
        .check_measurements(&report.observed(None), at(SNP_AT))
        .unwrap();
}

/// The Milan VCEK is valid until 2030-04-03, so at today's date the chain has not expired yet
/// (AMD publishes no expiring collateral for SNP); the expiry is checked at the verifier's clock.
#[test]
fn snp_report_is_refused_outside_the_vcek_validity() {
    let Some((report, vcek)) = snp_vector() else {
        return;
    };
    rejected_because(
        verify_raw_evidence(
            Platform::SevSnp,
            &report,
            Some(&vcek),
            at(VCEK_NOT_AFTER + 1),
        ),
        Platform::SevSnp,
        "VCEK/VLEK expired",
    );
    rejected_because(
        verify_raw_evidence(
            Platform::SevSnp,
            &report,
            Some(&vcek),
            at(VCEK_NOT_BEFORE - 1),
        ),
        Platform::SevSnp,
        "VCEK/VLEK is not valid before",
    );
    let now = real_now();
    let result = verify_raw_evidence(Platform::SevSnp, &report, Some(&vcek), now);
    if now.as_secs() > VCEK_NOT_AFTER {
        rejected_because(result, Platform::SevSnp, "expired");
    } else {
        assert_eq!(result.unwrap().tcb_status, TcbStatus::OutOfDate);
    }
}

#[test]
fn snp_report_needs_its_vcek() {
    let Some((report, _)) = snp_vector() else {
        return;
    };
    let dir = vectors().unwrap();
    assert_eq!(
        verify_raw_evidence(Platform::SevSnp, &report, None, at(SNP_AT)),
        Err(Error::MissingCollateral {
            platform: Platform::SevSnp
        })
    );
    // The ASK alone is no VCEK.
    assert!(matches!(
        verify_raw_evidence(
            Platform::SevSnp,
            &report,
            Some(&read(&dir, "sev-snp/ask_milan.pem")),
            at(SNP_AT)
        ),
        Err(Error::MalformedCollateral {
            platform: Platform::SevSnp,
            ..
        })
    ));
    assert!(matches!(
        verify_raw_evidence(Platform::SevSnp, &report, Some(b"{}"), at(SNP_AT)),
        Err(Error::MalformedCollateral { .. })
    ));
    // A Nitro leaf is not an AMD key: no product, refused.
    let nitro_root = read(&dir, "nitro/aws_nitro_root_g1.pem");
    assert!(verify_raw_evidence(Platform::SevSnp, &report, Some(&nitro_root), at(SNP_AT)).is_err());
    // A truncated report does not parse.
    assert!(matches!(
        verify_raw_evidence(Platform::SevSnp, &report[..1000], None, at(SNP_AT)),
        Err(Error::MalformedEvidence(_))
    ));
}

#[test]
fn snp_debug_policy_is_refused() {
    let Some((report, vcek)) = snp_vector() else {
        return;
    };
    // Policy bit 19 (DEBUG) is bit 3 of the policy's third byte. No real debug report is in the
    // vectors; setting the bit shows the refusal comes before (and regardless of) the signature.
    let mut debug = report.clone();
    debug[SNP_POLICY + 2] |= 0x08;
    assert_eq!(
        verify_raw_evidence(Platform::SevSnp, &debug, Some(&vcek), at(SNP_AT)),
        Err(Error::DebugEnclave {
            platform: Platform::SevSnp
        })
    );
}

/// Issue: the report's own invariants. Reserved guest-policy bits and a report that no VCEK or
/// VLEK signed are refused before (and regardless of) the signature; MIGRATE_MA (bit 18) is
/// authentic evidence of a host choice and is refused at the policy step instead.
#[test]
fn snp_report_invariants_and_migration_agent() {
    let Some((report, vcek)) = snp_vector() else {
        return;
    };
    let verify =
        |bytes: &[u8]| verify_raw_evidence(Platform::SevSnp, bytes, Some(&vcek), at(SNP_AT));
    // Bit 26 of the policy (reserved, must be zero) is bit 2 of its fourth byte.
    let mut reserved = report.clone();
    reserved[SNP_POLICY + 3] |= 0x04;
    assert!(
        matches!(verify(&reserved), Err(Error::MalformedEvidence(m)) if m.contains("reserved")),
    );
    // Bit 17 (reserved, must be one) cleared.
    let mut cleared = report.clone();
    cleared[SNP_POLICY + 2] &= !0x02;
    let result = verify(&cleared);
    assert!(
        matches!(result, Err(Error::MalformedEvidence(_))),
        "{result:?}"
    );
    // KEY_INFO.SIGNING_KEY = 7 (none): bits 2..4 of the key info at 0x48.
    let mut unsigned = report.clone();
    unsigned[0x48] |= 0x1c;
    rejected_because(
        verify(&unsigned),
        Platform::SevSnp,
        "not signed by a VCEK or VLEK",
    );
    // MIGRATE_MA set: the signature no longer verifies over the crafted report, so the policy
    // step is shown on the authentic report's measurements with the bit set (as a report signed
    // with it would carry).
    let authentic = verify(&report).unwrap();
    let mut measurements = authentic.measurements.clone();
    let policy = u64::from_le_bytes(measurements.get("policy").unwrap().try_into().unwrap());
    measurements.insert("policy", (policy | (1 << 18)).to_le_bytes());
    let migrating = PlatformReport {
        measurements,
        ..authentic.clone()
    };
    let measurement = SNP_MEASUREMENTS[0].1;
    let rule = format!(
        "[[accept]]\nplatform = \"sev-snp\"\nmeasurement = \"{measurement}\"\nallow_tcb = [\"OutOfDate\"]\n"
    );
    let strict = Policy::from_toml(&rule).unwrap();
    strict
        .check_measurements(&authentic.observed(None), at(SNP_AT))
        .unwrap();
    assert!(matches!(
        strict.check_measurements(&migrating.observed(None), at(SNP_AT)),
        Err(Error::RuleNotMet { reason, .. }) if reason.contains("MIGRATE_MA")
    ));
    Policy::from_toml(&format!("{rule}allow_migration_agent = true\n"))
        .unwrap()
        .check_measurements(&migrating.observed(None), at(SNP_AT))
        .unwrap();
}

#[test]
fn tampered_snp_reports_are_refused() {
    let Some((report, vcek)) = snp_vector() else {
        return;
    };
    for (what, offset) in [
        ("signature", SNP_SIGNATURE + 5),
        ("measurement", SNP_MEASUREMENT + 3),
        ("report data", SNP_REPORT_DATA + 7),
        // reported_tcb.snp: the TCB the VCEK was issued for is signed too.
        ("reported TCB", 0x180 + 6),
    ] {
        let result = verify_raw_evidence(
            Platform::SevSnp,
            &flip(&report, offset),
            Some(&vcek),
            at(SNP_AT),
        );
        println!("sev-snp tampered {what}: {result:?}");
        assert_eq!(
            result,
            Err(Error::BadEvidenceSignature {
                platform: Platform::SevSnp
            }),
            "{what}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RA-TLS certificates carrying real evidence and its endorsements.
//
// A certificate whose evidence verifies end to end cannot be built from the vectors: their
// report data binds someone else's claims. These certificates carry the real evidence with our
// claims, so a verifier that got as far as step 4 (report data) has verified the evidence with
// the collateral from the certificate's endorsements extension, offline.

mod certificates {
    use shroud_ra_tls::attest::Attester;
    use shroud_ra_tls::cert::{IssueParams, issue_certificate};
    use shroud_ra_tls::cmw::{Endorsements, Evidence};
    use shroud_ra_tls::{Measurements, VerifyOptions, verify_certificate};

    use super::*;

    /// Replays a real piece of evidence with whatever claims it is asked to bind.
    struct Replay {
        platform: Platform,
        evidence: Vec<u8>,
    }

    impl Attester for Replay {
        fn platform(&self) -> Platform {
            self.platform
        }

        fn measurements(&self) -> Measurements {
            Measurements::new()
        }

        fn attest(&self, claims: &[u8]) -> Result<Evidence, Error> {
            let (evidence, claims) = (self.evidence.clone(), claims.to_vec());
            Ok(match self.platform {
                Platform::SevSnp => Evidence::SevSnp {
                    report: evidence,
                    claims,
                },
                Platform::Nitro => Evidence::Nitro {
                    document: evidence,
                    claims,
                },
                _ => Evidence::Intel {
                    quote: evidence,
                    claims,
                },
            })
        }
    }

    fn certificate(
        platform: Platform,
        evidence: &[u8],
        endorsements: Option<&Endorsements>,
        now: u64,
    ) -> Vec<u8> {
        let mut params = IssueParams::new(vec!["localhost".into()], at(now));
        params.endorsements = endorsements.map(Endorsements::to_cbor);
        let attester = Replay {
            platform,
            evidence: evidence.to_vec(),
        };
        issue_certificate(&attester, &params)
            .unwrap()
            .certificate
            .to_vec()
    }

    /// Pins that match none of the vectors: every test here fails before step 5.
    fn any_policy() -> Policy {
        let zeros = "00".repeat(48);
        let mut policy = Policy::from_pins(
            [
                "sev-snp:measurement",
                "tdx:mrtd",
                "tdx:rtmr0",
                "tdx:rtmr1",
                "tdx:rtmr2",
            ]
            .iter()
            .chain(&["nitro:pcr0", "nitro:pcr1", "nitro:pcr2"])
            .map(|pin| format!("{pin}={zeros}")),
        )
        .unwrap();
        // The Milan vector is out of date: let it through to the steps these tests are about.
        policy.allow_tcb(TcbStatus::OutOfDate).unwrap();
        policy
    }

    #[test]
    fn snp_certificate_is_verified_with_its_endorsements_offline() {
        let Some((report, vcek)) = snp_vector() else {
            return;
        };
        let options = VerifyOptions::at(at(SNP_AT));
        let snp = Endorsements::SevSnp {
            certificates: vec![vcek.clone()],
        };
        // With the VCEK in the endorsements, the report verifies and the claims binding is what
        // fails (the report signs another key's claims).
        let with = certificate(Platform::SevSnp, &report, Some(&snp), SNP_AT);
        assert_eq!(
            verify_certificate(&with, &any_policy(), &options),
            Err(Error::ReportDataMismatch)
        );
        // Without endorsements and without caller collateral nothing can be checked.
        let without = certificate(Platform::SevSnp, &report, None, SNP_AT);
        assert_eq!(
            verify_certificate(&without, &any_policy(), &options),
            Err(Error::MissingCollateral {
                platform: Platform::SevSnp
            })
        );
        // Collateral supplied by the caller stands in for the extension.
        let supplied = VerifyOptions {
            collateral: Some(&vcek),
            ..options
        };
        assert_eq!(
            verify_certificate(&without, &any_policy(), &supplied),
            Err(Error::ReportDataMismatch)
        );
        // Collateral for another platform is refused as such.
        let intel = Endorsements::Intel {
            collateral: b"{}".to_vec(),
        };
        let wrong = certificate(Platform::SevSnp, &report, Some(&intel), SNP_AT);
        assert!(matches!(
            verify_certificate(&wrong, &any_policy(), &options),
            Err(Error::MalformedCollateral {
                platform: Platform::SevSnp,
                ..
            })
        ));
        // The endorsements are checked at the verifier's clock like everything else: a tampered
        // report is refused even with its VCEK at hand.
        let tampered = certificate(
            Platform::SevSnp,
            &flip(&report, SNP_MEASUREMENT),
            Some(&snp),
            SNP_AT,
        );
        assert_eq!(
            verify_certificate(&tampered, &any_policy(), &options),
            Err(Error::BadEvidenceSignature {
                platform: Platform::SevSnp
            })
        );
    }

    #[test]
    fn intel_certificate_is_verified_with_its_endorsements_offline() {
        let Some((quote, collateral)) = tdx_vector() else {
            return;
        };
        let options = VerifyOptions::at(at(INTEL_AT));
        let intel = Endorsements::Intel { collateral };
        let with = certificate(Platform::Tdx, &quote, Some(&intel), INTEL_AT);
        assert_eq!(
            verify_certificate(&with, &any_policy(), &options),
            Err(Error::ReportDataMismatch)
        );
        // Issue: the caller's collateral wins over the certificate's. Broken collateral from
        // the caller is used (and refused) although the certificate carries good collateral...
        let broken = VerifyOptions {
            collateral: Some(b"{}"),
            ..options
        };
        assert!(matches!(
            verify_certificate(&with, &any_policy(), &broken),
            Err(Error::MalformedCollateral {
                platform: Platform::Tdx,
                ..
            })
        ));
        // ...and good collateral from the caller is used over broken collateral in the
        // certificate: the quote verifies, and the claims binding is what fails.
        let bad_endorsements = Endorsements::Intel {
            collateral: b"{}".to_vec(),
        };
        let bad = certificate(Platform::Tdx, &quote, Some(&bad_endorsements), INTEL_AT);
        let Endorsements::Intel { collateral } = &intel else {
            unreachable!()
        };
        let good = VerifyOptions {
            collateral: Some(collateral),
            ..options
        };
        assert_eq!(
            verify_certificate(&bad, &any_policy(), &good),
            Err(Error::ReportDataMismatch)
        );
        let without = certificate(Platform::Tdx, &quote, None, INTEL_AT);
        assert_eq!(
            verify_certificate(&without, &any_policy(), &options),
            Err(Error::MissingCollateral {
                platform: Platform::Tdx
            })
        );
        // Garbage in the extension is malformed collateral, not a pass.
        let mut params = IssueParams::new(vec!["localhost".into()], at(INTEL_AT));
        params.endorsements = Some(vec![0xff]);
        let garbage = issue_certificate(
            &Replay {
                platform: Platform::Tdx,
                evidence: quote.clone(),
            },
            &params,
        )
        .unwrap()
        .certificate;
        assert!(matches!(
            verify_certificate(&garbage, &any_policy(), &options),
            Err(Error::MalformedCollateral {
                platform: Platform::Tdx,
                ..
            })
        ));
    }

    #[test]
    fn nitro_certificate_needs_no_endorsements() {
        let Some(doc) = nitro_document() else {
            return;
        };
        let cert = certificate(Platform::Nitro, &doc, None, NITRO_AT);
        assert_eq!(
            verify_certificate(&cert, &any_policy(), &VerifyOptions::at(at(NITRO_AT))),
            Err(Error::ReportDataMismatch)
        );
    }
}
