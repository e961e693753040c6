#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]
//! The attestation bundle: a bundle is trusted only when the certificate verifies against the
//! pins AND the served OHTTP keys are byte for byte the ones the evidence binds.

use std::time::Duration;

use base64::Engine as _;
use shroud_client::bundle::{AttestationBundle, BundleError};
use shroud_client::ohttp::{Kem, KeyConfig, ServerKey};
use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{IssueParams, issue_certificate};
use shroud_ra_tls::{Policy, UnixTime, VerifyOptions};

const NOW: u64 = 1_800_000_000;
const MEASUREMENT: [u8; 48] = [0x5a; 48];

fn key_list(key_id: u8) -> Vec<u8> {
    let x = ServerKey::generate(key_id, Kem::X25519Sha256).unwrap();
    let p = ServerKey::generate(key_id + 1, Kem::P256Sha256).unwrap();
    KeyConfig::encode_list(&[x.config().clone(), p.config().clone()])
}

fn bundle_json(attested: Option<&[u8]>, served: Option<&[u8]>) -> Vec<u8> {
    let attester = SimulatedAttester::with_measurement(MEASUREMENT).unwrap();
    let mut params = IssueParams::new(
        vec!["localhost".into()],
        UnixTime::since_unix_epoch(Duration::from_secs(NOW)),
    );
    params.ohttp_keys = attested.map(<[u8]>::to_vec);
    let cert = issue_certificate(&attester, &params).unwrap().certificate;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    serde_json::to_vec(&serde_json::json!({
        "certificate": b64(cert.as_ref()),
        "endorsements": null,
        "ohttp_keys": served.map(b64),
    }))
    .unwrap()
}

fn policy() -> Policy {
    Policy::from_pins([format!(
        "simulated:measurement={}",
        hex::encode(MEASUREMENT)
    )])
    .unwrap()
}

fn options() -> VerifyOptions<'static> {
    VerifyOptions {
        danger_allow_simulated: true,
        ..VerifyOptions::at(UnixTime::since_unix_epoch(Duration::from_secs(NOW)))
    }
}

#[test]
fn attested_keys_are_accepted_and_decoded() {
    let keys = key_list(1);
    let bundle = AttestationBundle::from_json(&bundle_json(Some(&keys), Some(&keys))).unwrap();
    let verified = bundle.verify(&policy(), &options()).unwrap();
    assert_eq!(verified.ohttp_keys(), keys);
    assert_eq!(
        verified
            .key_configs()
            .iter()
            .map(|c| (c.key_id, c.kem))
            .collect::<Vec<_>>(),
        vec![(1, Kem::X25519Sha256), (2, Kem::P256Sha256)]
    );
    verified.check_served_keys(&keys).unwrap();
    assert!(matches!(
        verified.check_served_keys(&key_list(1)),
        Err(BundleError::OhttpKeysMismatch)
    ));
}

#[test]
fn served_keys_that_differ_from_the_attested_claim_are_refused() {
    let attested = key_list(1);
    let substituted = key_list(1);
    let bundle =
        AttestationBundle::from_json(&bundle_json(Some(&attested), Some(&substituted))).unwrap();
    assert!(matches!(
        bundle.verify(&policy(), &options()),
        Err(BundleError::OhttpKeysMismatch)
    ));
    // Keys missing from the bundle are refused the same way.
    let bundle = AttestationBundle::from_json(&bundle_json(Some(&attested), None)).unwrap();
    assert!(matches!(
        bundle.verify(&policy(), &options()),
        Err(BundleError::OhttpKeysMismatch)
    ));
}

#[test]
fn a_certificate_binding_no_keys_or_failing_the_pins_is_refused() {
    let keys = key_list(1);
    let bundle = AttestationBundle::from_json(&bundle_json(None, Some(&keys))).unwrap();
    assert!(matches!(
        bundle.verify(&policy(), &options()),
        Err(BundleError::NoOhttpKeysClaim)
    ));
    let bundle = AttestationBundle::from_json(&bundle_json(Some(&keys), Some(&keys))).unwrap();
    let wrong =
        Policy::from_pins([format!("simulated:measurement={}", hex::encode([0x11; 48]))]).unwrap();
    assert!(matches!(
        bundle.verify(&wrong, &options()),
        Err(BundleError::Attestation(_))
    ));
    assert!(matches!(
        AttestationBundle::from_json(b"{\"certificate\": 7}"),
        Err(BundleError::Malformed(_))
    ));
}
