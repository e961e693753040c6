//! `shroud-ohttp`: Oblivious HTTP (RFC 9458) with binary HTTP (RFC 9292) inside, the channel of
//! clients that cannot see the gateway's TLS certificate, browsers first (DESIGN §4.3), and the
//! attestation bundle that carries the attested keys (DESIGN §4.2, [`bundle`]).
//!
//! A crate of its own because both sides of a trust boundary use it: the gateway (inside the
//! measured enclave) takes the server role, the SDK and the wasm client the client role, and
//! neither should carry the other's code. No I/O; it builds for `wasm32-unknown-unknown`.
//!
//! Both roles live here, as pure functions over bytes (no I/O, no clock, no tokio), so that the
//! native SDK, the wasm client and the gateway share one implementation of the wire format:
//!
//! * [`KeyConfig`]: the `application/ohttp-keys` format (RFC 9458 §3, RFC 9540 §3);
//! * the client: [`seal_request`] → [`SealedRequest`], whose [`ResponseOpener`] opens the answer;
//! * the gateway: [`ServerKey::open_request`] → [`OpenedRequest`], whose [`ResponseSealer`]
//!   encapsulates the answer;
//! * [`message`]: the binary HTTP request and response that travel inside;
//! * [`Session`]: a verified bundle's keys, choosing the suite, sealing dated calls to a chain.
//!
//! HPKE (RFC 9180) comes from the `hpke` crate with pure-Rust primitives, except natively the
//! DH of its DHKEMs, which is aws-lc's (`dhkem.rs`: two to four times as fast, and the gateway's
//! public key is not recomputed per request). Suites: DHKEM(X25519, HKDF-SHA256) or
//! DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM or ChaCha20Poly1305.
//! Randomness is drawn by the callers of the `*_with_*` functions, which is what the RFC 9458
//! Appendix A and RFC 9180 conformance tests use to reproduce the published bytes.

#![forbid(unsafe_code)]

mod algorithms;
pub mod bundle;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod conformance_tests;
#[cfg(not(target_arch = "wasm32"))]
mod dhkem;
mod error;
mod keys;
pub mod message;
mod request;
mod response;
mod session;
mod suite;

pub use algorithms::{Aead, KDF_HKDF_SHA256, Kem};
pub use error::OhttpError;
pub use keys::{KeyConfig, ServerKey};
pub use request::{
    OpenedRequest, SealedRequest, request_enc, request_key_id, seal_request, seal_request_with_ikm,
};
pub use response::{ResponseOpener, ResponseSealer};
pub use session::{SealedCall, Session};

/// Media type of an encapsulated request.
pub const REQUEST_MEDIA_TYPE: &str = "message/ohttp-req";
/// Media type of an encapsulated response.
pub const RESPONSE_MEDIA_TYPE: &str = "message/ohttp-res";
/// Media type of a key configuration list (RFC 9540).
pub const KEYS_MEDIA_TYPE: &str = "application/ohttp-keys";
/// Whether a `content-type` value is `media_type`, parameters and case aside: the one check of
/// the gateway (is this an encapsulated request?) and the clients (is this an answer?).
pub fn media_type_is(content_type: &str, media_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(media_type))
}

/// The problem type of a request to an unknown key (RFC 9458 §5.3).
pub const PROBLEM_KEY: &str = "https://iana.org/assignments/http-problem-types#ohttp-key";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_compare_without_parameters_or_case() {
        assert!(media_type_is("message/ohttp-req", REQUEST_MEDIA_TYPE));
        assert!(media_type_is(
            "Message/OHTTP-Req; charset=x",
            REQUEST_MEDIA_TYPE
        ));
        assert!(media_type_is(" message/ohttp-res ", RESPONSE_MEDIA_TYPE));
        assert!(!media_type_is("message/ohttp-reqx", REQUEST_MEDIA_TYPE));
        assert!(!media_type_is("application/json", REQUEST_MEDIA_TYPE));
        assert!(!media_type_is("", REQUEST_MEDIA_TYPE));
    }
}
