//! [`Session`]: a verified gateway's OHTTP keys, ready to seal calls. Transport-free: the
//! native `ObliviousClient` of `shroud-client` and the wasm client drive the same code.

use crate::bundle::VerifiedBundle;
use crate::message::{BinaryResponse, decode_response, encode_request};
use crate::{Aead, Kem, KeyConfig, OhttpError, ResponseOpener, seal_request};

/// What every call to one chain of one verified gateway is sealed with: the first attested
/// X25519 configuration (the cheaper KEM), else the first one, and its first AEAD.
#[derive(Debug, Clone)]
pub struct Session {
    verified: VerifiedBundle,
    path: String,
    config: KeyConfig,
    aead: Aead,
}

/// One sealed call, and what opens its answer (and nothing else's).
#[derive(Debug)]
pub struct SealedCall {
    /// The `message/ohttp-req` body.
    pub body: Vec<u8>,
    opener: ResponseOpener,
}

impl Session {
    /// Calls to `chain` (`POST /{chain}` inside the encapsulation) sealed to `verified`'s keys.
    pub fn new(verified: VerifiedBundle, chain: &str) -> Result<Session, OhttpError> {
        let config = verified
            .key_configs()
            .iter()
            .find(|c| c.kem == Kem::X25519Sha256)
            .or_else(|| verified.key_configs().first())
            .cloned()
            .ok_or(OhttpError::NoSupportedConfig)?;
        let aead = config
            .aeads
            .first()
            .copied()
            .ok_or(OhttpError::NoSupportedConfig)?;
        Ok(Session {
            verified,
            path: format!("/{chain}"),
            config,
            aead,
        })
    }

    /// The bundle this session trusts: the verdict and the attested keys.
    pub fn verified(&self) -> &VerifiedBundle {
        &self.verified
    }

    /// Seals one JSON-RPC body, dated `now_unix_secs` (the gateway refuses dates outside its
    /// replay window).
    pub fn seal(&self, json_body: &[u8], now_unix_secs: u64) -> Result<SealedCall, OhttpError> {
        let bhttp = encode_request(&self.path, json_body, now_unix_secs)?;
        let sealed = seal_request(&self.config, self.aead, &bhttp)?;
        Ok(SealedCall {
            body: sealed.bytes,
            opener: sealed.opener,
        })
    }
}

impl SealedCall {
    /// Opens the gateway's `message/ohttp-res` answer to this call: the inner HTTP response.
    /// A tampered or foreign answer is [`OhttpError::Decrypt`].
    pub fn open(&self, answer: &[u8]) -> Result<BinaryResponse, OhttpError> {
        decode_response(&self.opener.open(answer)?)
    }
}

impl BinaryResponse {
    /// Whether the body is JSON-RPC to hand to the caller: a 200, or any status with a JSON
    /// body (a JSON-RPC error the gateway answered with 4xx, e.g. a rate limit).
    pub fn is_json_rpc(&self) -> bool {
        self.status == 200
            || self
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("application/json"))
    }
}
