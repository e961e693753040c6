//! [`OhttpError`]: why a key configuration, a request or a response was refused.

/// Why an OHTTP operation failed. Decryption failures say nothing more than that, on purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OhttpError {
    /// The key configuration list is malformed.
    #[error("malformed OHTTP key configuration: {0}")]
    KeyConfig(&'static str),
    /// No configuration in the list uses a KEM and symmetric suite this client supports.
    #[error(
        "no supported OHTTP key configuration (need X25519 or P-256, HKDF-SHA256, AES-128-GCM or ChaCha20Poly1305)"
    )]
    NoSupportedConfig,
    /// The encapsulated message is truncated or its header is malformed.
    #[error("malformed OHTTP message")]
    Malformed,
    /// The request names a key id the gateway does not hold.
    #[error("unknown OHTTP key id {0}")]
    UnknownKey(u8),
    /// The request names a KEM, KDF or AEAD the key does not offer.
    #[error("unsupported OHTTP suite")]
    UnsupportedSuite,
    /// A public or private key is not a valid point or scalar.
    #[error("invalid HPKE key")]
    InvalidKey,
    /// Authenticated decryption failed: the message was tampered with or is not for this key.
    #[error("OHTTP decryption failed")]
    Decrypt,
    /// Sealing failed (an HPKE or AEAD error that valid inputs do not produce).
    #[error("OHTTP encryption failed")]
    Encrypt,
    /// The operating system's random number generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The binary HTTP message inside is malformed or not what this channel carries.
    #[error("binary HTTP: {0}")]
    Message(String),
}
