//! RA-TLS for Shroud: attested TLS certificates in the CCC interoperable format.
//!
//! The crate is split along the trust boundary it serves:
//!
//! * the **verify side** ([`verify_certificate`], [`Policy`], [`cmw`], [`claims`], [`cert`]) is pure
//!   functions over bytes and an injected clock. It has no tokio, no sockets and builds for
//!   `wasm32-unknown-unknown` with `--no-default-features`;
//! * feature `rustls` adds [`tls::AttestedServerVerifier`], a rustls `ServerCertVerifier` that runs
//!   the verification and still checks the handshake signature;
//! * feature `server` adds certificate issuing ([`cert::issue_certificate`]), the rotating
//!   certificate resolver and the [`attest::simulated`] attester used by `--dev`.
//!
//! Verification order (DESIGN §3), failing closed at the first failed step: parse the certificate
//! (exactly one bounded evidence extension, validity, self-signature); verify the platform evidence
//! to a pinned vendor root; reject debug builds and TCB statuses the policy does not allow; bind
//! the claims buffer to the report data and the `pubkey-hash` claim to the certificate key; compare
//! measurements with the pins.
#![forbid(unsafe_code)]

pub mod attest;
mod cbor;
pub mod cert;
pub mod claims;
pub mod cmw;
mod error;
mod pem;
mod platform;
pub mod policy;
mod policy_file;
#[cfg(feature = "rustls")]
pub mod tls;
pub mod verify;
mod x509;

pub use error::Error;
pub use platform::{Measurements, Platform, TcbStatus, UnknownName};
pub use policy::Policy;
pub use rustls_pki_types::UnixTime;
pub use verify::{Verdict, VerifyOptions, verify_certificate, verify_certificate_evidence};

/// SHA-256 of `data`, the hash every binding in the format uses.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
