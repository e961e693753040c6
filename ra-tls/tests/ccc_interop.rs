//! The CCC interoperable RA-TLS certificates of Gramine, the Intel SGX SDK and rats-tls: they
//! parse, their `pubkey-hash` claims match their keys, and full verification refuses them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption is a failed test"
)]

use std::path::Path;
use std::time::Duration;

use shroud_ra_tls::cert::ParsedCertificate;
use shroud_ra_tls::claims::Claims;
use shroud_ra_tls::cmw::Evidence;
use shroud_ra_tls::{Error, Platform, Policy, UnixTime, VerifyOptions, verify_certificate};

const CERTS: [&str; 3] = [
    "ccc-gramine-cert.pem",
    "ccc-intel-sgxsdk-cert.pem",
    "ccc-rats-tls-cert.pem",
];

fn pem_to_der(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes()).unwrap();
    assert_eq!(pem.label, "CERTIFICATE");
    pem.contents
}

fn certs() -> Option<Vec<(&'static str, Vec<u8>)>> {
    let dir = shroud_testkit::vectors::attestation_vectors()?.join("ra-tls-certs");
    Some(
        CERTS
            .iter()
            .map(|name| (*name, pem_to_der(&dir.join(name))))
            .collect(),
    )
}

#[test]
fn ccc_certificates_parse_and_bind_their_keys() {
    let Some(certs) = certs() else { return };
    for (name, der) in certs {
        let parsed = ParsedCertificate::parse(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
        let evidence =
            Evidence::from_cbor(&parsed.evidence).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(evidence.platform().unwrap(), Platform::Sgx, "{name}");
        let claims =
            Claims::from_cbor(evidence.claims_buffer()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            claims.binds_spki(&parsed.spki_der),
            "{name}: pubkey-hash does not match the SPKI"
        );
        // The quote's report data is SHA-256(claims) || zeros (SGX report body at 48, report
        // data at offset 320 of the body).
        let report_data = &evidence.platform_evidence()[48 + 320..48 + 384];
        assert_eq!(
            &report_data[..32],
            shroud_ra_tls::sha256(evidence.claims_buffer()),
            "{name}"
        );
    }
}

#[test]
fn ccc_certificates_fail_full_verification_with_a_reason() {
    let Some(certs) = certs() else { return };
    let policy = Policy::from_pins([format!("sgx:mrenclave={}", "00".repeat(32))]).unwrap();
    // Inside every certificate's validity except rats-tls's, which expired in 2024.
    let at = |secs| VerifyOptions::at(UnixTime::since_unix_epoch(Duration::from_secs(secs)));
    for (name, der) in certs {
        let err = verify_certificate(&der, &policy, &at(1_700_000_000)).unwrap_err();
        let reason = err.to_string();
        match name {
            "ccc-rats-tls-cert.pem" => {
                assert!(
                    matches!(
                        err,
                        Error::MissingCollateral {
                            platform: Platform::Sgx
                        }
                    ),
                    "{name}: {reason}"
                );
                // At the real current time it is refused for its expiry first.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                let expired = verify_certificate(&der, &policy, &at(now.as_secs())).unwrap_err();
                assert!(
                    matches!(expired, Error::CertificateExpired { .. }),
                    "{name}: {expired}"
                );
            }
            _ => assert!(
                matches!(
                    err,
                    Error::MissingCollateral {
                        platform: Platform::Sgx
                    }
                ),
                "{name}: {reason}"
            ),
        }
        assert!(reason.contains("no collateral"), "{name}: {reason}");
    }
}
