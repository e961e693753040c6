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
        .check_measurements(Platform::Sgx, &report.measurements, report.tcb_status)
        .unwrap();
}

const SGX_MEASUREMENTS: &[(&str, &str)] = &[
    (
        "mrenclave",
        "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
    ),
    (
        "mrsigner",
        "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
    ),
    ("isvprodid", "0000"),
    ("isvsvn", "0000"),
];
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

const TDX_MEASUREMENTS: &[(&str, &str)] = &[
    (
        "mrtd",
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
    ),
    (
        "rtmr0",
        "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
    ),
    (
        "rtmr1",
        "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
    ),
    (
        "rtmr2",
        "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
    ),
    ("rtmr3", ZERO_48),
];
const TDX_REPORT_DATA: &str = "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20";
const ZERO_48: &str = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

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

const NITRO_MEASUREMENTS: &[(&str, &str)] = &[
    (
        "pcr0",
        "5cb702954321826d7939d6da829a940d787fcf32357beb8eae1ddf33c28c17d36f3ac3ba6828fdf7edeed02889702da6",
    ),
    (
        "pcr1",
        "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa",
    ),
    (
        "pcr2",
        "743ea12db9aba9440a8197f7ac9aeda43cfbb1587473ff7577415ac5be116bc026dfa836db6713930474d1aa0d06b049",
    ),
    ("pcr3", ZERO_48),
    (
        "pcr4",
        "7b3574ad9b7e88ec8335e8ce967315fac77218441e97eea9795de704d7f2678d0b298ecda39b544c1689669f48cba5e8",
    ),
    ("pcr8", ZERO_48),
];

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
