//! The HPKE algorithms Shroud offers and their registry ids: KEMs, the one KDF, AEADs. Below
//! both the key configurations (`keys.rs`) and the HPKE dispatch (`suite.rs`).

/// The only KDF offered: HKDF-SHA256 (HPKE KDF id 1).
pub const KDF_HKDF_SHA256: u16 = 0x0001;

/// The HPKE KEMs offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kem {
    /// DHKEM(X25519, HKDF-SHA256), id 0x0020.
    X25519Sha256,
    /// DHKEM(P-256, HKDF-SHA256), id 0x0010.
    P256Sha256,
}

impl Kem {
    /// The IANA HPKE KEM id.
    pub fn id(self) -> u16 {
        match self {
            Kem::X25519Sha256 => 0x0020,
            Kem::P256Sha256 => 0x0010,
        }
    }

    /// The KEM of an id, when offered.
    pub fn from_id(id: u16) -> Option<Kem> {
        match id {
            0x0020 => Some(Kem::X25519Sha256),
            0x0010 => Some(Kem::P256Sha256),
            _ => None,
        }
    }

    /// Length of a public key and of an encapsulated key (`Npk` = `Nenc`).
    pub fn public_key_len(self) -> usize {
        match self {
            Kem::X25519Sha256 => 32,
            Kem::P256Sha256 => 65,
        }
    }

    /// Length of a private key (`Nsk`), which is also how much randomness one encapsulation draws.
    pub fn secret_key_len(self) -> usize {
        32
    }
}

/// The AEADs offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Aead {
    /// AES-128-GCM, id 0x0001.
    Aes128Gcm,
    /// ChaCha20Poly1305, id 0x0003.
    ChaCha20Poly1305,
}

impl Aead {
    /// The IANA HPKE AEAD id.
    pub fn id(self) -> u16 {
        match self {
            Aead::Aes128Gcm => 0x0001,
            Aead::ChaCha20Poly1305 => 0x0003,
        }
    }

    /// The AEAD of an id, when offered.
    pub fn from_id(id: u16) -> Option<Aead> {
        match id {
            0x0001 => Some(Aead::Aes128Gcm),
            0x0003 => Some(Aead::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// Key length `Nk`.
    pub fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::ChaCha20Poly1305 => 32,
        }
    }

    /// Nonce length `Nn`.
    pub fn nonce_len(self) -> usize {
        12
    }

    /// Length of the response nonce and of the exported response secret: `max(Nn, Nk)`.
    pub fn response_nonce_len(self) -> usize {
        self.key_len().max(self.nonce_len())
    }
}
