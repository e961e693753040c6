//! Shroud's benchmarks: shared fixtures for the criterion micro benchmarks in `benches/`.
//!
//! * `benches/ra_tls.rs` (`cargo bench -p shroud-benches --bench ra_tls`) measures the RA-TLS
//!   certificate path: issuing a simulated certificate, verifying it (fresh and cached), and the
//!   claims buffer's CBOR encoding and decoding.
//! * `benches/ohttp.rs` (`cargo bench -p shroud-benches --bench ohttp`) measures the Oblivious
//!   HTTP round trip per suite.
//! * `src/bin/shroud-load` is the end-to-end load harness of DESIGN §8: a loopback upstream, the
//!   release gateway over RA-TLS and nginx as a TLS reverse proxy, driven by one closed-loop
//!   generator; it reports latency percentiles, requests per second, the proxies' CPU per
//!   request and the gateway's memory with idle connections.
//!
//! Figures and the machine they were measured on are in `docs/BENCHMARKS.md`.
//!
//! Every fixture takes its clock as a parameter, like the verifier does, so runs are repeatable.
#![forbid(unsafe_code)]

pub mod harness;

use std::time::Duration;

use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{AttestedCertificate, IssueParams, issue_certificate};
use shroud_ra_tls::claims::Claims;
use shroud_ra_tls::{Error, Policy, UnixTime};

/// The clock every fixture uses: 2027-01-15T08:00:00Z, in unix seconds.
pub const NOW_UNIX_SECS: u64 = 1_800_000_000;

/// The measurement the simulated attester reports.
pub const SIMULATED_MEASUREMENT: [u8; 48] = [0x5a; 48];

/// [`NOW_UNIX_SECS`] as the verifier's clock type.
pub fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(NOW_UNIX_SECS))
}

/// A simulated attester reporting [`SIMULATED_MEASUREMENT`].
pub fn simulated_attester() -> Result<SimulatedAttester, Error> {
    SimulatedAttester::with_measurement(SIMULATED_MEASUREMENT)
}

/// What the gateway puts into its certificate in `--dev` mode, issued at [`now`].
pub fn issue_params() -> IssueParams {
    IssueParams::new(vec!["localhost".into(), "127.0.0.1".into()], now())
}

/// A freshly issued simulated RA-TLS certificate.
pub fn simulated_certificate(attester: &SimulatedAttester) -> Result<AttestedCertificate, Error> {
    issue_certificate(attester, &issue_params())
}

/// The policy pinning [`SIMULATED_MEASUREMENT`] (what `--pin simulated:measurement=HEX` builds).
pub fn simulated_policy() -> Result<Policy, Error> {
    Policy::from_pins([format!(
        "simulated:measurement={}",
        hex_lower(&SIMULATED_MEASUREMENT)
    )])
}

/// A claims buffer with every claim the format defines: the key hash, 41 bytes of OHTTP key
/// configuration (one X25519 key with one suite), the issue time and a 32-byte nonce.
pub fn full_claims() -> Claims {
    let mut claims = Claims::for_spki(b"a SubjectPublicKeyInfo stands in here");
    claims.ohttp_keys = Some(vec![0x01; 41]);
    claims.iat = Some(NOW_UNIX_SECS);
    claims.nonce = Some(vec![0x07; 32]);
    claims
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
