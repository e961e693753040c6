//! `shroud verify`, run as a process over the real attestation vectors
//! (`../shared/attestation-vectors`): the DESIGN §6 JSON object, and exit 0 only when trusted
//! (1 rejected, 2 usage).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use shroud_testkit::vectors::{
    NITRO_MEASUREMENTS, SGX_MEASUREMENTS, SNP_MEASUREMENTS, TDX_MEASUREMENTS, measurement,
};

const INTEL_AT: &str = "2025-07-04T00:00:00Z";
const SNP_AT: &str = "2025-01-01T00:00:00Z";
const NITRO_AT: &str = "2025-12-25T13:15:37Z";

const SNP_REPORT_DATA: &str = "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd";

fn vectors() -> Option<PathBuf> {
    shroud_testkit::vectors::attestation_vectors()
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).to_str().unwrap().to_owned()
}

fn shroud(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shroud"))
        .arg("verify")
        .args(args)
        .output()
        .expect("running the shroud binary")
}

/// Runs `shroud verify --json ARGS`, checks the exit code and the object's exact key set.
fn verify_json(args: &[&str], exit: i32) -> Value {
    let out = shroud(&[args, &["--json"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(exit),
        "args {args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    let value: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("stdout is not one JSON object ({e}): {stdout}");
    });
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "debug",
            "measurements",
            "platform",
            "reason",
            "report_data",
            "tcb_status",
            "verdict"
        ]
    );
    let verdict = if exit == 0 { "trusted" } else { "rejected" };
    assert_eq!(value["verdict"], verdict, "{value}");
    if exit == 0 {
        assert!(value["reason"].is_null(), "{value}");
    } else {
        eprintln!("{stderr}");
        assert!(stderr.contains("error:"), "{stderr}");
    }
    value
}

fn reason(value: &Value) -> String {
    value["reason"].as_str().unwrap().to_owned()
}

#[test]
fn snp_report_is_trusted_at_its_instant_with_its_vcek() {
    let Some(dir) = vectors() else {
        return;
    };
    let report = path(&dir, "sev-snp/report_milan.bin");
    let vcek = path(&dir, "sev-snp/vcek_milan.der");
    let base = [
        "--evidence",
        &report,
        "--platform",
        "sev-snp",
        "--vcek",
        &vcek,
        "--at",
        SNP_AT,
    ];
    // Issue: the 2022 Milan report (SNP firmware 8) is below AMD's bulletin minimum: OutOfDate,
    // trusted only with the explicit allowance.
    let value = verify_json(&base, 1);
    assert_eq!(value["tcb_status"], "OutOfDate");
    assert!(reason(&value).contains("TCB status OutOfDate"), "{value}");
    let base = [&base[..], &["--allow-tcb", "OutOfDate"]].concat();
    let value = verify_json(&base, 0);
    assert_eq!(value["platform"], "sev-snp");
    assert_eq!(value["debug"], false);
    assert_eq!(value["tcb_status"], "OutOfDate");
    assert_eq!(
        value["measurements"]["measurement"],
        measurement(SNP_MEASUREMENTS, "measurement")
    );
    assert_eq!(value["measurements"]["host_data"], "00".repeat(32));
    assert_eq!(value["measurements"]["policy"], "0000030000000000");
    assert_eq!(value["report_data"], SNP_REPORT_DATA);

    // The right pin is trusted, a wrong one is rejected with the measurements still shown.
    let pin = format!(
        "sev-snp:measurement={}",
        measurement(SNP_MEASUREMENTS, "measurement")
    );
    verify_json(&[&base[..], &["--pin", &pin]].concat(), 0);
    let wrong = format!("sev-snp:measurement={}", "ab".repeat(48));
    let value = verify_json(&[&base[..], &["--pin", &wrong]].concat(), 1);
    assert!(reason(&value).contains("measurement mismatch"), "{value}");
    assert_eq!(
        value["measurements"]["measurement"],
        measurement(SNP_MEASUREMENTS, "measurement")
    );

    // Without the VCEK nothing can be checked; after the VCEK expired the chain is refused.
    let value = verify_json(&[&base[..4], &["--at", SNP_AT]].concat(), 1);
    assert!(reason(&value).contains("no collateral"), "{value}");
    assert_eq!(value["platform"], "sev-snp");
    assert!(value["tcb_status"].is_null() && value["report_data"].is_null());
    let expired = [&base[..6], &["--at", "2030-04-04T00:00:00Z"]].concat();
    let value = verify_json(&expired, 1);
    assert!(reason(&value).contains("expired"), "{value}");
}

#[test]
fn sgx_tcb_status_needs_an_explicit_allow_and_is_reported() {
    let Some(dir) = vectors() else {
        return;
    };
    let quote = path(&dir, "intel/sgx_quote.bin");
    let collateral = path(&dir, "intel/sgx_quote_collateral.json");
    let base = [
        "--evidence",
        &quote,
        "--platform",
        "sgx",
        "--collateral",
        &collateral,
        "--at",
        INTEL_AT,
    ];
    let value = verify_json(&base, 1);
    assert!(reason(&value).contains("TCB status"), "{value}");
    assert_eq!(value["tcb_status"], "ConfigurationAndSWHardeningNeeded");
    assert_eq!(
        value["measurements"]["mrenclave"],
        measurement(SGX_MEASUREMENTS, "mrenclave")
    );

    let allow = ["--allow-tcb", "ConfigurationAndSWHardeningNeeded"];
    let value = verify_json(&[&base[..], &allow].concat(), 0);
    assert_eq!(value["platform"], "sgx");
    assert_eq!(value["tcb_status"], "ConfigurationAndSWHardeningNeeded");
    assert_eq!(value["measurements"]["isvsvn"], "0000");

    // With pins, the allowance extends the pinned build.
    let pin = format!(
        "sgx:mrenclave={}",
        measurement(SGX_MEASUREMENTS, "mrenclave")
    );
    verify_json(&[&base[..], &allow, &["--pin", &pin]].concat(), 0);
    verify_json(&[&base[..], &["--pin", &pin]].concat(), 1);

    // Issue: a signer-only pin is refused; with the product and a minimum SVN it is a complete
    // identity, and a quote below the minimum (the vector's ISV SVN is 0) is refused.
    let signer = format!("sgx:mrsigner={}", measurement(SGX_MEASUREMENTS, "mrsigner"));
    let out = shroud(&[&base[..], &allow, &["--pin", &signer]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("missing: isvprodid, min_isvsvn"),
        "{stderr}"
    );
    let product = ["--pin", &signer, "--pin", "sgx:isvprodid=0000"];
    verify_json(
        &[&base[..], &allow, &product, &["--pin", "sgx:min_isvsvn=0"]].concat(),
        0,
    );
    let value = verify_json(
        &[&base[..], &allow, &product, &["--pin", "sgx:min_isvsvn=1"]].concat(),
        1,
    );
    assert!(reason(&value).contains("below min_isvsvn 1"), "{value}");
}

#[test]
fn tdx_quote_is_trusted_at_its_instant_and_rejected_now() {
    let Some(dir) = vectors() else {
        return;
    };
    let quote = path(&dir, "intel/tdx_quote.bin");
    let collateral = path(&dir, "intel/tdx_quote_collateral.json");
    let base = [
        "--evidence",
        &quote,
        "--platform",
        "tdx",
        "--collateral",
        &collateral,
    ];
    // Issue: mrtd alone is the firmware every tenant shares; the pin is refused, naming the
    // missing RTMRs, before anything is verified.
    let pin = format!("tdx:mrtd={}", measurement(TDX_MEASUREMENTS, "mrtd"));
    let out = shroud(&[&base[..], &["--at", INTEL_AT, "--pin", &pin]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing: rtmr0, rtmr1, rtmr2"), "{stderr}");
    let mut pins = vec!["--at".to_owned(), INTEL_AT.to_owned(), "--pin".into(), pin];
    for field in ["rtmr0", "rtmr1", "rtmr2"] {
        let value = measurement(TDX_MEASUREMENTS, field);
        pins.extend(["--pin".to_owned(), format!("tdx:{field}={value}")]);
    }
    let pins: Vec<&str> = pins.iter().map(String::as_str).collect();
    let value = verify_json(&[&base[..], &pins].concat(), 0);
    assert_eq!(value["tcb_status"], "UpToDate");
    assert_eq!(
        value["measurements"]["mrtd"],
        measurement(TDX_MEASUREMENTS, "mrtd")
    );
    assert_eq!(value["measurements"].as_object().unwrap().len(), 5);
    // The real current time: the collateral has expired.
    let value = verify_json(&base, 1);
    assert!(reason(&value).contains("CrlExpired"), "{value}");
    // The wrong kind of collateral is a usage error.
    let vcek = path(&dir, "sev-snp/vcek_milan.der");
    let out = shroud(&["--evidence", &quote, "--platform", "tdx", "--vcek", &vcek]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn negative_intel_vectors_are_rejected_for_the_right_reason() {
    let Some(dir) = vectors() else {
        return;
    };
    let debug = path(&dir, "intel/tdx_quote_debug_td.bin");
    let collateral = path(&dir, "intel/tdx_quote_collateral.json");
    let value = verify_json(
        &[
            "--evidence",
            &debug,
            "--platform",
            "tdx",
            "--collateral",
            &collateral,
            "--at",
            INTEL_AT,
        ],
        1,
    );
    assert_eq!(value["debug"], true);
    assert!(reason(&value).contains("DEBUG"), "{value}");

    let outdated = path(&dir, "intel/tdx_quote_outdated.bin");
    let outdated_collateral = path(&dir, "intel/tdx_quote_outdated_collateral.json");
    let value = verify_json(
        &[
            "--evidence",
            &outdated,
            "--platform",
            "tdx",
            "--collateral",
            &outdated_collateral,
            "--at",
            "2026-03-01T00:00:00Z",
            "--allow-tcb",
            "OutOfDate",
        ],
        1,
    );
    assert!(reason(&value).contains("No matching TCB level"), "{value}");
    assert_eq!(value["debug"], false);
}

#[test]
fn nitro_documents_at_their_timestamps() {
    let Some(dir) = vectors() else {
        return;
    };
    let doc = path(&dir, "nitro/attestation_doc.cose");
    let pin = format!("nitro:pcr0={}", measurement(NITRO_MEASUREMENTS, "pcr0"));
    let pcr1 = format!("nitro:pcr1={}", measurement(NITRO_MEASUREMENTS, "pcr1"));
    let pcr2 = format!("nitro:pcr2={}", measurement(NITRO_MEASUREMENTS, "pcr2"));
    let base = ["--evidence", &doc, "--platform", "nitro"];
    let pins = ["--pin", &pin, "--pin", &pcr1, "--pin", &pcr2];
    let value = verify_json(&[&base[..], &["--at", NITRO_AT], &pins].concat(), 0);
    assert_eq!(value["tcb_status"], "NotApplicable");
    assert_eq!(
        value["measurements"]["pcr0"],
        measurement(NITRO_MEASUREMENTS, "pcr0")
    );
    assert_eq!(value["report_data"], "00".repeat(64));
    let value = verify_json(&base, 1);
    assert!(reason(&value).contains("expired"), "{value}");

    let debug = path(&dir, "nitro/debug_pcrs_zero_doc.cose");
    let value = verify_json(
        &[
            "--evidence",
            &debug,
            "--platform",
            "nitro",
            "--at",
            "2025-12-25T08:20:46Z",
        ],
        1,
    );
    assert_eq!(value["debug"], true);
}

#[test]
fn foreign_ra_tls_certificates_are_parsed_and_rejected() {
    let Some(dir) = vectors() else {
        return;
    };
    let cert = path(&dir, "ra-tls-certs/ccc-gramine-cert.pem");
    let value = verify_json(&["--cert", &cert], 1);
    // An SGX quote without endorsements and without --collateral: nothing can be checked.
    assert_eq!(value["platform"], "sgx");
    assert!(reason(&value).contains("no collateral"), "{value}");
    // With collateral for another quote, the debug enclave is what is refused.
    let collateral = path(&dir, "intel/sgx_quote_collateral.json");
    let value = verify_json(
        &[
            "--cert",
            &cert,
            "--collateral",
            &collateral,
            "--at",
            INTEL_AT,
        ],
        1,
    );
    assert_eq!(value["debug"], true, "{value}");
}

#[test]
fn usage_errors_exit_2() {
    let Some(dir) = vectors() else {
        return;
    };
    let report = path(&dir, "sev-snp/report_milan.bin");
    for args in [
        vec![],
        vec!["--evidence", &report],
        vec!["--evidence", &report, "--platform", "simulated"],
        vec![
            "--evidence",
            &report,
            "--platform",
            "sev-snp",
            "--at",
            "yesterday",
        ],
        vec![
            "--evidence",
            &report,
            "--platform",
            "sev-snp",
            "--allow-tcb",
            "Revoked",
        ],
        vec![
            "--evidence",
            &report,
            "--platform",
            "sev-snp",
            "--pin",
            "sev-snp:measurement=00",
        ],
        vec![
            "--cert",
            &report,
            "--evidence",
            &report,
            "--platform",
            "sev-snp",
        ],
        vec!["--evidence", "/nonexistent", "--platform", "sev-snp"],
    ] {
        let out = shroud(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
