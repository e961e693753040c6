//! The verification sequence against certificates made to fail one check each.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption is a failed test"
)]

use std::time::Duration;

use rcgen::{CertificateParams, CustomExtension, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData};
use shroud_ra_tls::attest::Attester;
use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{
    IssueParams, OID_EVIDENCE, issue_certificate, issue_certificate_with_key,
};
use shroud_ra_tls::claims::Claims;
use shroud_ra_tls::cmw::Evidence;
use shroud_ra_tls::verify::simulated::SimulatedReport;
use shroud_ra_tls::{
    Error, Platform, Policy, TcbStatus, UnixTime, VerifyOptions, verify_certificate,
};

const MEASUREMENT: [u8; 48] = [0x5a; 48];

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(1_790_000_000))
}

fn attester() -> SimulatedAttester {
    SimulatedAttester::with_measurement(MEASUREMENT).unwrap()
}

fn pinned() -> Policy {
    Policy::from_pins([format!(
        "simulated:measurement={}",
        hex::encode(MEASUREMENT)
    )])
    .unwrap()
}

fn dev_options() -> VerifyOptions<'static> {
    VerifyOptions {
        danger_allow_simulated: true,
        ..VerifyOptions::at(now())
    }
}

fn oid(dotted: &str) -> Vec<u64> {
    dotted.split('.').map(|a| a.parse().unwrap()).collect()
}

/// A self-signed certificate for `key`, valid around `now()`, with the given extensions.
fn cert_with(key: &KeyPair, extensions: Vec<Vec<u8>>) -> Vec<u8> {
    let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(now().as_secs() as i64).unwrap();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::hours(24);
    for value in extensions {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(&oid(OID_EVIDENCE), value));
    }
    params.self_signed(key).unwrap().der().to_vec()
}

/// Simulated evidence made for the claims of `claims_for_spki`'s key.
fn evidence_for(spki: &[u8]) -> Evidence {
    attester()
        .attest(&Claims::for_spki(spki).to_cbor())
        .unwrap()
}

#[test]
fn accepts_a_pinned_simulated_certificate() {
    let cert = issue_certificate(
        &attester(),
        &IssueParams::new(vec!["localhost".into()], now()),
    )
    .unwrap();
    let verdict = verify_certificate(&cert.certificate, &pinned(), &dev_options()).unwrap();
    assert_eq!(verdict.platform(), Platform::Simulated);
    assert_eq!(
        verdict.measurements().get("measurement"),
        Some(&MEASUREMENT[..])
    );
    assert_eq!(verdict.tcb_status(), TcbStatus::NotApplicable);
    assert_eq!(verdict.claims(), &cert.claims);
    assert_eq!(verdict.claims().iat, Some(now().as_secs()));
}

/// Certificates issued for one key (rotations, nonce-bound bundles) all bind that key, each with
/// its own evidence.
#[test]
fn certificates_issued_for_one_key_bind_it() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = IssueParams::new(vec!["localhost".into()], now());
    let first = issue_certificate_with_key(&attester(), &params, &key).unwrap();
    params.nonce = Some(vec![7; 16]);
    let second = issue_certificate_with_key(&attester(), &params, &key).unwrap();
    assert_ne!(first.certificate, second.certificate);
    for cert in [&first, &second] {
        let verdict = verify_certificate(&cert.certificate, &pinned(), &dev_options()).unwrap();
        assert!(verdict.claims().binds_spki(&key.subject_public_key_info()));
    }
    assert_eq!(second.claims.nonce.as_deref(), Some(&[7; 16][..]));
    assert_eq!(first.key, second.key);
    // One issuer name, so each certificate needs its own serial (RFC 5280 §4.1.2.2).
    let serial = |der: &[u8]| {
        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        cert.raw_serial().to_vec()
    };
    assert_ne!(serial(&first.certificate), serial(&second.certificate));
    assert_eq!(serial(&first.certificate).len(), 16);
}

/// A rule's maximum evidence age bounds how long its verdict may be reused (the verdict cache,
/// the connection pool and the OHTTP clients all stop at `expires_at`), and evidence older than
/// it is refused.
#[test]
fn a_maximum_evidence_age_bounds_the_verdict() {
    let cert = issue_certificate(&attester(), &IssueParams::new(vec![], now())).unwrap();
    let strict = verify_certificate(&cert.certificate, &pinned(), &dev_options()).unwrap();
    assert_eq!(strict.expires_at(), strict.not_after());
    let aged = Policy::from_toml(&format!(
        "[[accept]]\nplatform = \"simulated\"\nmeasurement = \"{}\"\nmax_evidence_age_secs = 60\n",
        hex::encode(MEASUREMENT)
    ))
    .unwrap();
    let verdict = verify_certificate(&cert.certificate, &aged, &dev_options()).unwrap();
    assert_eq!(verdict.expires_at(), now().as_secs() + 60);
    let later = VerifyOptions {
        now: UnixTime::since_unix_epoch(Duration::from_secs(now().as_secs() + 61)),
        ..dev_options()
    };
    assert!(matches!(
        verify_certificate(&cert.certificate, &aged, &later),
        Err(Error::RuleNotMet { reason, .. }) if reason.contains("61 s old")
    ));
}

#[test]
fn refuses_simulated_evidence_without_opt_in() {
    let cert = issue_certificate(&attester(), &IssueParams::new(vec![], now())).unwrap();
    assert_eq!(
        verify_certificate(&cert.certificate, &pinned(), &VerifyOptions::at(now())),
        Err(Error::SimulatedRefused)
    );
}

#[test]
fn rejects_a_certificate_without_evidence() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = cert_with(&key, vec![]);
    assert_eq!(
        verify_certificate(&der, &pinned(), &dev_options()),
        Err(Error::MissingEvidence)
    );
}

#[test]
fn rejects_two_evidence_extensions() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let evidence = evidence_for(&key.subject_public_key_info()).to_cbor();
    let der = cert_with(&key, vec![evidence.clone(), evidence]);
    let err = verify_certificate(&der, &pinned(), &dev_options()).unwrap_err();
    assert!(
        matches!(err, Error::DuplicateExtension { count: 2, .. }),
        "{err}"
    );
}

/// Issue: the CCC profile makes the evidence extension non-critical; a critical one is refused.
#[test]
fn rejects_a_critical_evidence_extension() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let evidence = evidence_for(&key.subject_public_key_info()).to_cbor();
    let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp(now().as_secs() as i64).unwrap();
    params.not_before = at - time::Duration::minutes(5);
    params.not_after = at + time::Duration::hours(24);
    let mut extension = CustomExtension::from_oid_content(&oid(OID_EVIDENCE), evidence.clone());
    extension.set_criticality(true);
    params.custom_extensions.push(extension);
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let err = verify_certificate(&der, &pinned(), &dev_options()).unwrap_err();
    assert!(
        matches!(&err, Error::CertificateParse(m) if m.contains("marked critical")),
        "{err}"
    );
    // The same evidence in a non-critical extension verifies.
    verify_certificate(&cert_with(&key, vec![evidence]), &pinned(), &dev_options()).unwrap();
}

#[test]
fn rejects_an_oversized_evidence_extension() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = cert_with(&key, vec![vec![0; 64 * 1024 + 1]]);
    assert!(matches!(
        verify_certificate(&der, &pinned(), &dev_options()),
        Err(Error::TooLarge {
            what: "evidence extension",
            len: 65537,
            ..
        })
    ));
}

#[test]
fn rejects_a_pubkey_hash_for_another_key() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = cert_with(
        &key,
        vec![evidence_for(&other.subject_public_key_info()).to_cbor()],
    );
    assert_eq!(
        verify_certificate(&der, &pinned(), &dev_options()),
        Err(Error::PubkeyHashMismatch)
    );
}

#[test]
fn rejects_claims_whose_hash_is_not_the_report_data() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let Evidence::Simulated { report, .. } = evidence_for(&key.subject_public_key_info()) else {
        panic!("simulated attester made other evidence")
    };
    // Same key, but the claims buffer now also claims a nonce the report never signed.
    let mut claims = Claims::for_spki(&key.subject_public_key_info());
    claims.nonce = Some(vec![1; 32]);
    let swapped = Evidence::Simulated {
        report,
        claims: claims.to_cbor(),
    };
    let der = cert_with(&key, vec![swapped.to_cbor()]);
    assert_eq!(
        verify_certificate(&der, &pinned(), &dev_options()),
        Err(Error::ReportDataMismatch)
    );
}

#[test]
fn rejects_a_wrong_measurement_and_names_both_values() {
    let cert = issue_certificate(&attester(), &IssueParams::new(vec![], now())).unwrap();
    let wrong = Policy::from_pins([format!("simulated:measurement={}", "00".repeat(48))]).unwrap();
    let err = verify_certificate(&cert.certificate, &wrong, &dev_options()).unwrap_err();
    let Error::MeasurementMismatch { actual, expected } = &err else {
        panic!("{err}")
    };
    assert!(actual.contains(&hex::encode(MEASUREMENT)), "{actual}");
    assert!(expected.contains(&"00".repeat(48)), "{expected}");
    // A pin for another platform does not match either.
    let tdx = Policy::from_pins(
        ["mrtd", "rtmr0", "rtmr1", "rtmr2"]
            .map(|f| format!("tdx:{f}={}", hex::encode(MEASUREMENT))),
    )
    .unwrap();
    assert!(matches!(
        verify_certificate(&cert.certificate, &tdx, &dev_options()),
        Err(Error::MeasurementMismatch { .. })
    ));
}

#[test]
fn rejects_everything_under_an_empty_policy() {
    let cert = issue_certificate(&attester(), &IssueParams::new(vec![], now())).unwrap();
    assert_eq!(
        verify_certificate(&cert.certificate, &Policy::default(), &dev_options()),
        Err(Error::EmptyPolicy)
    );
}

#[test]
fn rejects_expired_and_not_yet_valid_certificates() {
    let two_days_ago =
        UnixTime::since_unix_epoch(Duration::from_secs(now().as_secs() - 2 * 86_400));
    let old = issue_certificate(&attester(), &IssueParams::new(vec![], two_days_ago)).unwrap();
    assert!(matches!(
        verify_certificate(&old.certificate, &pinned(), &dev_options()),
        Err(Error::CertificateExpired { .. })
    ));
    let tomorrow = UnixTime::since_unix_epoch(Duration::from_secs(now().as_secs() + 86_400));
    let future = issue_certificate(&attester(), &IssueParams::new(vec![], tomorrow)).unwrap();
    assert!(matches!(
        verify_certificate(&future.certificate, &pinned(), &dev_options()),
        Err(Error::CertificateNotYetValid { .. })
    ));
}

#[test]
fn rejects_a_tampered_certificate_signature() {
    let cert = issue_certificate(&attester(), &IssueParams::new(vec![], now())).unwrap();
    let mut der = cert.certificate.to_vec();
    // The signature BIT STRING is the last element: flip a byte inside it.
    let at = der.len() - 10;
    der[at] ^= 0x01;
    assert_eq!(
        verify_certificate(&der, &pinned(), &dev_options()),
        Err(Error::BadCertificateSignature)
    );
}

#[test]
fn rejects_a_tampered_evidence_signature() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let claims = Claims::for_spki(&key.subject_public_key_info()).to_cbor();
    let Evidence::Simulated { report, .. } = attester().attest(&claims).unwrap() else {
        panic!("simulated attester made other evidence")
    };
    let mut report = SimulatedReport::from_cbor(&report).unwrap();
    // Claim another measurement under the original signature.
    report.measurement[0] ^= 0xff;
    let forged = Evidence::Simulated {
        report: report.to_cbor(),
        claims,
    };
    let der = cert_with(&key, vec![forged.to_cbor()]);
    assert_eq!(
        verify_certificate(&der, &pinned(), &dev_options()),
        Err(Error::BadEvidenceSignature {
            platform: Platform::Simulated
        })
    );
}

#[test]
fn rejects_garbage_evidence_without_panicking() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    for value in [
        vec![],
        vec![0xff],
        vec![0x82, 0x01],
        b"not cbor at all".to_vec(),
        vec![0x9f; 1000],
    ] {
        let der = cert_with(&key, vec![value]);
        assert!(matches!(
            verify_certificate(&der, &pinned(), &dev_options()),
            Err(Error::MalformedEvidence(_))
        ));
    }
    assert!(matches!(
        verify_certificate(b"\x30\x03\x02\x01\x00", &pinned(), &dev_options()),
        Err(Error::CertificateParse(_))
    ));
}
