//! Replays `fuzz/regressions/<target>/` (inputs that once failed a fuzz target) through the
//! function the target calls, `fuzz/src/ra_tls.rs` included as it is: no input may panic. Also
//! checks that the fuzz targets' fixed clock and policy still let the committed seed
//! certificates (`fuzz/seeds/ratls_certificate/`) verify to the end, so that fuzzing starts
//! deep. Run `fuzz/run.sh` for the fuzzing itself (docs/security.md, "Fuzzing").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code, and the fuzz entry points assert by panicking"
)]

#[path = "../../fuzz/src/ra_tls.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::Duration;

use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{IssueParams, issue_certificate};
use shroud_ra_tls::cmw::Endorsements;
use shroud_ra_tls::verify::verify_raw_evidence;
use shroud_ra_tls::{Error, Platform, UnixTime};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The inputs of `target`. The regression folder must exist and hold something, so that
/// moving it fails this test instead of replaying nothing.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = fuzz_dir().join("regressions");
    let entries = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .count();
    assert!(entries > 0, "{} is empty", root.display());
    files(&root.join(target))
}

#[test]
fn certificate_regressions() {
    for (_, bytes) in inputs("ratls_certificate") {
        let _ = targets::ratls_certificate(&bytes);
    }
}

#[test]
fn claims_and_cmw_regressions() {
    for (_, bytes) in inputs("claims_cbor") {
        let _ = targets::claims_cbor(&bytes);
    }
    for (_, bytes) in inputs("cmw") {
        let _ = targets::cmw(&bytes);
    }
}

#[test]
fn evidence_regressions() {
    for (_, bytes) in inputs("nitro_evidence") {
        let _ = targets::nitro_evidence(&bytes);
    }
    for (_, bytes) in inputs("dcap_quote") {
        let _ = targets::dcap_quote(&bytes);
    }
    for (_, bytes) in inputs("snp_report") {
        let _ = targets::snp_report(&bytes);
    }
}

#[test]
fn endorsements_regressions() {
    for (_, bytes) in inputs("endorsements") {
        let _ = targets::endorsements(&bytes);
    }
}

/// The seeds verify at the targets' clock under their policy (else the certificate target only
/// ever reaches the first failed check); the variants fail where they were made to.
#[test]
fn seed_certificates_verify_under_the_fuzz_policy() {
    let seeds = files(&fuzz_dir().join("seeds/ratls_certificate"));
    assert_eq!(
        seeds.len(),
        4,
        "run `cargo test -p shroud-ra-tls --test fuzz_regressions -- --ignored` to write them"
    );
    for (name, der) in seeds {
        let result = targets::ratls_certificate(&der);
        match name.as_str() {
            "simulated.der" | "simulated-ohttp-nonce.der" => {
                assert!(result.is_ok(), "{name}: {result:?}");
            }
            "simulated-sev-endorsements.der" => assert!(
                matches!(result, Err(Error::MalformedCollateral { .. })),
                "{name}: {result:?}"
            ),
            "simulated-other-measurement.der" => assert!(
                matches!(result, Err(Error::MeasurementMismatch { .. })),
                "{name}: {result:?}"
            ),
            other => panic!("unexpected seed {other}"),
        }
    }
}

/// The unsigned report of the endorsements target gets past report parsing, so the target's
/// bytes reach the SEV-SNP verifier's certificate parsing.
#[test]
fn unsigned_report_reaches_the_endorsements() {
    let result = verify_raw_evidence(
        Platform::SevSnp,
        targets::unsigned_snp_report(),
        Some(b"not a certificate"),
        UnixTime::since_unix_epoch(Duration::from_secs(targets::SNP_AT)),
    );
    assert!(
        matches!(result, Err(Error::MalformedCollateral { .. })),
        "{result:?}"
    );
}

/// Writes the seed certificates of the `ratls_certificate` target (simulated evidence, valid at
/// the target's clock): `cargo test -p shroud-ra-tls --test fuzz_regressions -- --ignored`.
#[test]
#[ignore = "writes fuzz/seeds/ratls_certificate/"]
fn write_certificate_seeds() {
    let dir = fuzz_dir().join("seeds/ratls_certificate");
    std::fs::create_dir_all(&dir).unwrap();
    let issued_at = UnixTime::since_unix_epoch(Duration::from_secs(targets::CERTIFICATE_AT - 3600));
    let pinned = SimulatedAttester::with_measurement(targets::SIMULATED_MEASUREMENT).unwrap();
    let other = SimulatedAttester::with_measurement([0; 48]).unwrap();
    let params = || IssueParams::new(vec!["localhost".into(), "127.0.0.1".into()], issued_at);

    let mut with_claims = params();
    with_claims.ohttp_keys = Some(vec![0x01, 0x00, 0x20]);
    with_claims.nonce = Some(vec![0x6e; 32]);
    let mut with_endorsements = params();
    with_endorsements.endorsements = Some(
        Endorsements::SevSnp {
            certificates: vec![vec![0x30, 0x00]],
        }
        .to_cbor(),
    );
    for (name, attester, params) in [
        ("simulated.der", &pinned, params()),
        ("simulated-ohttp-nonce.der", &pinned, with_claims),
        ("simulated-sev-endorsements.der", &pinned, with_endorsements),
        ("simulated-other-measurement.der", &other, params()),
    ] {
        let issued = issue_certificate(attester, &params).unwrap();
        std::fs::write(dir.join(name), issued.certificate.as_ref()).unwrap();
    }
}
