//! Shroud in the browser: a thin wasm-bindgen wrapper over the verify side of `shroud-ra-tls`
//! and the transport-free core of `shroud-client`.
//!
//! [`ShroudClient::connect`] fetches `GET /.well-known/shroud/attestation`, verifies the
//! certificate in wasm (real platform verifiers, pinned roots, the caller's policy), checks that
//! the served OHTTP keys are the attested ones, and then seals every call with Oblivious HTTP;
//! [`ShroudClient::provider`] is an EIP-1193 provider for viem (`custom`) and ethers
//! (`BrowserProvider`). [`verify_certificate`] runs the verification sequence of DESIGN §3 alone
//! and returns a JSON summary. The pure parts (`session`) take the clock from the caller, so the
//! same code runs natively in tests.
//!
//! ```js
//! import init, { verify_certificate } from "./shroud_wasm.js";
//! await init();
//! // The JSON form of a policy file; the npm package makes it from the dapp's TOML.
//! const policy = JSON.stringify({ accept: [{ platform: "nitro", pcr0: "…96 hex digits…", pcr1: "…", pcr2: "…" }] });
//! const verdict = JSON.parse(verify_certificate(certDer, policy, Date.now() / 1000, false));
//! // throws an Error saying which check failed when the gateway is not trusted
//! ```
#![forbid(unsafe_code)]

mod client;
mod fetch;
mod provider;
mod rpc;
pub mod session;

use std::time::Duration;

use shroud_ra_tls::{Policy, UnixTime, Verdict, VerifyOptions};
use wasm_bindgen::prelude::*;

pub use client::ShroudClient;
pub use provider::Eip1193Provider;

/// Why [`verify_certificate_summary`] refused a certificate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The clock passed in is not a usable number of seconds since the Unix epoch.
    #[error(
        "now_unix_secs must be a finite, non-negative number of seconds since 1970, got {}",
        session::clock_kind(.0)
    )]
    InvalidClock(f64),
    /// The policy, the certificate or the evidence failed a check; the inner error says which.
    #[error(transparent)]
    Verification(#[from] shroud_ra_tls::Error),
}

/// Verifies an RA-TLS certificate against a policy and returns a JSON summary of the verdict.
///
/// * `cert_der`: the certificate, DER.
/// * `policy_json`: a policy file (the TOML of `shroud attest --policy`, one `[[accept]]` table
///   per acceptable build) as its JSON document, `{"accept": [{…}, …]}`: the modules link no TOML
///   parser, the npm package converts the dapp's TOML. An empty policy trusts nothing.
/// * `now_unix_secs`: the verifier's clock, in seconds since the Unix epoch (`Date.now() / 1000`).
///   The verifier never reads a clock itself.
/// * `allow_simulated`: accept simulated (development) evidence, which proves nothing. Leave it
///   `false` for anything but a local `shroud-gateway --dev`.
///
/// On success, returns one JSON object:
/// `{"verdict": "trusted", "platform", "measurements": {field: hex}, "tcb_status", "spki_sha256",
/// "not_before", "not_after", "nonce"}` (`nonce`: the hex of the claims' nonce, `null` when the
/// evidence was not made for a verifier's nonce). On failure, throws a JavaScript `Error` whose message names the
/// check that failed.
#[wasm_bindgen]
pub fn verify_certificate(
    cert_der: &[u8],
    policy_json: &str,
    now_unix_secs: f64,
    allow_simulated: bool,
) -> Result<String, JsValue> {
    verify_certificate_summary(cert_der, policy_json, now_unix_secs, allow_simulated)
        .map_err(|e| JsError::new(&e.to_string()).into())
}

/// The platform-independent core of [`verify_certificate`], with a Rust error type (usable and
/// tested natively: `JsValue` only exists inside a JavaScript host).
pub fn verify_certificate_summary(
    cert_der: &[u8],
    policy_json: &str,
    now_unix_secs: f64,
    allow_simulated: bool,
) -> Result<String, VerifyError> {
    let now = Duration::try_from_secs_f64(now_unix_secs)
        .map_err(|_| VerifyError::InvalidClock(now_unix_secs))?;
    let policy = Policy::from_json(policy_json)?;
    let options = VerifyOptions {
        danger_allow_simulated: allow_simulated,
        ..VerifyOptions::at(UnixTime::since_unix_epoch(now))
    };
    let verdict = shroud_ra_tls::verify_certificate(cert_der, &policy, &options)?;
    Ok(summary(&verdict).to_string())
}

/// The JSON shape of an accepted verdict; names follow `shroud verify --json` (DESIGN §6).
fn summary(verdict: &Verdict) -> serde_json::Value {
    let measurements: serde_json::Map<String, serde_json::Value> = verdict
        .measurements()
        .iter()
        .map(|(field, value)| (field.to_owned(), hex::encode(value).into()))
        .collect();
    serde_json::json!({
        "verdict": "trusted",
        "platform": verdict.platform().as_str(),
        "measurements": measurements,
        "tcb_status": verdict.tcb_status().as_str(),
        "spki_sha256": hex::encode(verdict.spki_sha256()),
        "not_before": verdict.not_before(),
        "not_after": verdict.not_after(),
        "nonce": verdict.claims().nonce.as_deref().map(hex::encode),
    })
}

#[cfg(test)]
mod tests {
    use shroud_ra_tls::attest::simulated::SimulatedAttester;
    use shroud_ra_tls::cert::{IssueParams, issue_certificate};

    use super::*;

    const NOW: u64 = 1_800_000_000;
    const MEASUREMENT: [u8; 48] = [0x5a; 48];

    fn simulated_certificate() -> Vec<u8> {
        let attester = SimulatedAttester::with_measurement(MEASUREMENT).unwrap();
        let params = IssueParams::new(
            vec!["localhost".into()],
            UnixTime::since_unix_epoch(Duration::from_secs(NOW)),
        );
        issue_certificate(&attester, &params)
            .unwrap()
            .certificate
            .to_vec()
    }

    fn policy(measurement: &[u8]) -> String {
        serde_json::json!({"accept": [
            {"platform": "simulated", "measurement": hex::encode(measurement)}
        ]})
        .to_string()
    }

    #[test]
    fn summarises_an_accepted_simulated_certificate() {
        let cert = simulated_certificate();
        let json =
            verify_certificate_summary(&cert, &policy(&MEASUREMENT), NOW as f64, true).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["verdict"], "trusted");
        assert_eq!(value["platform"], "simulated");
        assert_eq!(value["tcb_status"], "NotApplicable");
        assert_eq!(
            value["measurements"]["measurement"],
            hex::encode(MEASUREMENT)
        );
        assert_eq!(value["not_after"], NOW + 24 * 3600);
    }

    #[test]
    fn a_policy_pinning_a_platform_without_its_verifier_is_refused_naming_it() {
        // Under the default features (the all-platform module) a hardware rule loads and the
        // simulated certificate does not match it; in a single-platform module
        // (`--no-default-features --features tdx`) the other platforms' rules are refused.
        let cert = simulated_certificate();
        for (platform, fields) in [
            (
                shroud_ra_tls::Platform::Nitro,
                &["pcr0", "pcr1", "pcr2"][..],
            ),
            (
                shroud_ra_tls::Platform::Tdx,
                &["mrtd", "rtmr0", "rtmr1", "rtmr2"][..],
            ),
            (shroud_ra_tls::Platform::Sgx, &["mrenclave"][..]),
            (shroud_ra_tls::Platform::SevSnp, &["measurement"][..]),
        ] {
            let mut rule = serde_json::Map::new();
            rule.insert("platform".into(), platform.to_string().into());
            for field in fields {
                let (_, len) = platform
                    .measurement_fields()
                    .iter()
                    .find(|(f, _)| f == field)
                    .unwrap();
                rule.insert((*field).into(), "ab".repeat(*len).into());
            }
            let policy = serde_json::json!({ "accept": [rule] }).to_string();
            let result = verify_certificate_summary(&cert, &policy, NOW as f64, true);
            if platform.has_verifier() {
                assert!(
                    matches!(
                        result,
                        Err(VerifyError::Verification(
                            shroud_ra_tls::Error::MeasurementMismatch { .. }
                        ))
                    ),
                    "{platform}: {result:?}"
                );
            } else {
                let message = result.unwrap_err().to_string();
                assert!(
                    message.contains(&format!("no verifier for {platform} evidence")),
                    "{platform}: {message}"
                );
            }
        }
    }

    #[test]
    fn refuses_simulated_evidence_unless_opted_in() {
        let cert = simulated_certificate();
        assert_eq!(
            verify_certificate_summary(&cert, &policy(&MEASUREMENT), NOW as f64, false),
            Err(VerifyError::Verification(
                shroud_ra_tls::Error::SimulatedRefused
            ))
        );
    }

    #[test]
    fn refuses_other_measurements_empty_policies_and_bad_clocks() {
        let cert = simulated_certificate();
        assert!(matches!(
            verify_certificate_summary(&cert, &policy(&[0; 48]), NOW as f64, true),
            Err(VerifyError::Verification(
                shroud_ra_tls::Error::MeasurementMismatch { .. }
            ))
        ));
        assert_eq!(
            verify_certificate_summary(&cert, "{}", NOW as f64, true),
            Err(VerifyError::Verification(shroud_ra_tls::Error::EmptyPolicy))
        );
        for bad in [f64::NAN, -1.0, f64::INFINITY] {
            assert!(matches!(
                verify_certificate_summary(&cert, &policy(&MEASUREMENT), bad, true),
                Err(VerifyError::InvalidClock(_))
            ));
        }
        // Issue: a policy that pins part of an identity is refused before anything is checked,
        // naming what is missing.
        let partial =
            serde_json::json!({"accept": [{"platform": "nitro", "pcr0": "ab".repeat(48)}]})
                .to_string();
        let refused = verify_certificate_summary(&cert, &partial, NOW as f64, true);
        // (A module without Nitro's verifier refuses any Nitro rule before that.)
        assert!(
            matches!(
                &refused,
                Err(VerifyError::Verification(shroud_ra_tls::Error::InvalidPolicy(m)))
                    if m.contains("missing: pcr1, pcr2")
            ) || !shroud_ra_tls::Platform::Nitro.has_verifier(),
            "{refused:?}"
        );
        // Expired: the clock is injected, so time travel is a parameter.
        assert!(matches!(
            verify_certificate_summary(
                &cert,
                &policy(&MEASUREMENT),
                (NOW + 25 * 3600) as f64,
                true
            ),
            Err(VerifyError::Verification(
                shroud_ra_tls::Error::CertificateExpired { .. }
            ))
        ));
    }
}
