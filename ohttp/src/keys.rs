//! Key configurations (RFC 9458 §3) and their list form `application/ohttp-keys` (RFC 9540 §3),
//! and the gateway's private half, [`ServerKey`].

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::OhttpError;
use crate::algorithms::{Aead, KDF_HKDF_SHA256, Kem};
use crate::suite;

/// One key configuration: a key id, a KEM public key and the symmetric suites offered with it
/// (always HKDF-SHA256 here, so only the AEADs are kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfig {
    /// The key id the client puts in the request header.
    pub key_id: u8,
    /// The KEM of `public_key`.
    pub kem: Kem,
    /// The encoded KEM public key (`Npk` bytes).
    pub public_key: Vec<u8>,
    /// The AEADs offered with HKDF-SHA256, in the server's order of preference.
    pub aeads: Vec<Aead>,
}

impl KeyConfig {
    /// The RFC 9458 §3 encoding of this one configuration.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(7 + self.public_key.len() + 4 * self.aeads.len());
        out.push(self.key_id);
        out.extend_from_slice(&self.kem.id().to_be_bytes());
        out.extend_from_slice(&self.public_key);
        let suites_len = u16::try_from(4 * self.aeads.len()).unwrap_or(0);
        out.extend_from_slice(&suites_len.to_be_bytes());
        for aead in &self.aeads {
            out.extend_from_slice(&KDF_HKDF_SHA256.to_be_bytes());
            out.extend_from_slice(&aead.id().to_be_bytes());
        }
        out
    }

    /// The `application/ohttp-keys` encoding of a list (RFC 9540 §3): each configuration
    /// preceded by its length as a 2-byte integer.
    pub fn encode_list(configs: &[KeyConfig]) -> Vec<u8> {
        let mut out = Vec::new();
        for config in configs {
            let one = config.encode();
            out.extend_from_slice(&u16::try_from(one.len()).unwrap_or(0).to_be_bytes());
            out.extend_from_slice(&one);
        }
        out
    }

    /// Decodes one RFC 9458 §3 configuration. Unsupported KEMs are
    /// [`OhttpError::NoSupportedConfig`]; unsupported symmetric suites are skipped.
    pub fn decode(bytes: &[u8]) -> Result<KeyConfig, OhttpError> {
        let mut r = Reader(bytes);
        let key_id = r.u8().ok_or(OhttpError::KeyConfig("truncated header"))?;
        let kem_id = r.u16().ok_or(OhttpError::KeyConfig("truncated header"))?;
        let kem = Kem::from_id(kem_id).ok_or(OhttpError::NoSupportedConfig)?;
        let public_key = r
            .take(kem.public_key_len())
            .ok_or(OhttpError::KeyConfig("truncated public key"))?
            .to_vec();
        let suites_len = r.u16().ok_or(OhttpError::KeyConfig("truncated suites"))?;
        if suites_len == 0 || suites_len % 4 != 0 {
            return Err(OhttpError::KeyConfig("symmetric suites length"));
        }
        let mut suites = Reader(
            r.take(usize::from(suites_len))
                .ok_or(OhttpError::KeyConfig("truncated suites"))?,
        );
        if !r.0.is_empty() {
            return Err(OhttpError::KeyConfig("trailing bytes"));
        }
        let mut aeads = Vec::new();
        while let (Some(kdf), Some(aead)) = (suites.u16(), suites.u16()) {
            if let (KDF_HKDF_SHA256, Some(aead)) = (kdf, Aead::from_id(aead)) {
                aeads.push(aead);
            }
        }
        if aeads.is_empty() {
            return Err(OhttpError::NoSupportedConfig);
        }
        suite::check_public_key(kem, &public_key)?;
        Ok(KeyConfig {
            key_id,
            kem,
            public_key,
            aeads,
        })
    }

    /// Decodes an `application/ohttp-keys` list, keeping the configurations this client supports
    /// (in the server's order); refuses a malformed list and a list with none supported.
    pub fn decode_list(bytes: &[u8]) -> Result<Vec<KeyConfig>, OhttpError> {
        let mut r = Reader(bytes);
        let mut configs = Vec::new();
        while !r.0.is_empty() {
            let len = r.u16().ok_or(OhttpError::KeyConfig("truncated length"))?;
            let one = r
                .take(usize::from(len))
                .ok_or(OhttpError::KeyConfig("truncated configuration"))?;
            match KeyConfig::decode(one) {
                Ok(config) => configs.push(config),
                Err(OhttpError::NoSupportedConfig) => {}
                Err(e) => return Err(e),
            }
        }
        if configs.is_empty() {
            return Err(OhttpError::NoSupportedConfig);
        }
        Ok(configs)
    }
}

/// The gateway's half of a key configuration: the configuration and its private key, parsed
/// once (the gateway clones a key per request: an `Arc`).
#[derive(Clone)]
pub struct ServerKey(Arc<ServerKeyInner>);

struct ServerKeyInner {
    config: KeyConfig,
    secret: suite::PrivateKey,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl ServerKey {
    /// A fresh key pair from the operating system's randomness, offering every AEAD.
    pub fn generate(key_id: u8, kem: Kem) -> Result<ServerKey, OhttpError> {
        let mut ikm = Zeroizing::new(vec![0_u8; kem.secret_key_len()]);
        getrandom::fill(&mut ikm).map_err(|e| OhttpError::Random(e.to_string()))?;
        Ok(ServerKey::derive(key_id, kem, &ikm))
    }

    /// The key pair RFC 9180 `DeriveKeyPair` makes of `ikm` (at least `Nsk` bytes of secret
    /// input), offering every AEAD: the same `ikm` gives the same key on every machine, which
    /// is how replicas sharing a secret serve the same keys.
    pub fn derive(key_id: u8, kem: Kem, ikm: &[u8]) -> ServerKey {
        let (secret, public_key) = suite::derive_key_pair(kem, ikm);
        ServerKey::new(
            KeyConfig {
                key_id,
                kem,
                public_key,
                aeads: vec![Aead::Aes128Gcm, Aead::ChaCha20Poly1305],
            },
            secret,
        )
    }

    /// A key from a serialized private key (`Nsk` bytes), offering `aeads`. Used to load the RFC
    /// test vectors; a gateway generates its keys.
    pub fn from_secret(
        key_id: u8,
        kem: Kem,
        secret: &[u8],
        aeads: Vec<Aead>,
    ) -> Result<ServerKey, OhttpError> {
        let (secret, public_key) = suite::private_key(kem, secret)?;
        Ok(ServerKey::new(
            KeyConfig {
                key_id,
                kem,
                public_key,
                aeads,
            },
            secret,
        ))
    }

    fn new(config: KeyConfig, secret: suite::PrivateKey) -> ServerKey {
        ServerKey(Arc::new(ServerKeyInner { config, secret }))
    }

    /// The public configuration.
    pub fn config(&self) -> &KeyConfig {
        &self.0.config
    }

    pub(crate) fn secret(&self) -> &suite::PrivateKey {
        &self.0.secret
    }
}

/// A bounds-checked reader over a byte slice.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes(b.try_into().ok()?))
    }
}
