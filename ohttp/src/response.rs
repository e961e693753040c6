//! Encapsulated responses (RFC 9458 §4.4): an AEAD keyed from the request's exported secret and a
//! fresh response nonce.

use aes_gcm::aead::{Aead as _, KeyInit};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Aead, OhttpError};

/// The gateway's side of one exchange: seals the one response to the request it came from.
pub struct ResponseSealer {
    pub(crate) aead: Aead,
    pub(crate) enc: Vec<u8>,
    pub(crate) secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ResponseSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseSealer")
            .field("aead", &self.aead)
            .finish_non_exhaustive()
    }
}

impl ResponseSealer {
    /// Seals `response` (a binary HTTP response) with a fresh random response nonce.
    pub fn seal(&self, response: &[u8]) -> Result<Vec<u8>, OhttpError> {
        let mut nonce = vec![0_u8; self.aead.response_nonce_len()];
        getrandom::fill(&mut nonce).map_err(|e| OhttpError::Random(e.to_string()))?;
        self.seal_with_nonce(response, &nonce)
    }

    /// Seals `response` with the given response nonce (`max(Nn, Nk)` bytes), which must be fresh
    /// random bytes; fixed ones are for reproducing test vectors.
    pub fn seal_with_nonce(&self, response: &[u8], nonce: &[u8]) -> Result<Vec<u8>, OhttpError> {
        if nonce.len() != self.aead.response_nonce_len() {
            return Err(OhttpError::Encrypt);
        }
        let (key, aead_nonce) = response_key(self.aead, &self.secret, &self.enc, nonce)?;
        let ciphertext = aead_seal(self.aead, &key, &aead_nonce, response)?;
        let mut out = Vec::with_capacity(nonce.len() + ciphertext.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }
}

/// The client's side of one exchange: opens the response to the request it sealed.
pub struct ResponseOpener {
    pub(crate) aead: Aead,
    pub(crate) enc: Vec<u8>,
    pub(crate) secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ResponseOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseOpener")
            .field("aead", &self.aead)
            .finish_non_exhaustive()
    }
}

impl ResponseOpener {
    /// Opens an encapsulated response: the binary HTTP response, or [`OhttpError::Decrypt`].
    pub fn open(&self, encapsulated: &[u8]) -> Result<Vec<u8>, OhttpError> {
        let (nonce, ciphertext) = encapsulated
            .split_at_checked(self.aead.response_nonce_len())
            .ok_or(OhttpError::Malformed)?;
        let (key, aead_nonce) = response_key(self.aead, &self.secret, &self.enc, nonce)?;
        aead_open(self.aead, &key, &aead_nonce, ciphertext)
    }
}

/// `prk = Extract(enc || response_nonce, secret)`, `key = Expand(prk, "key", Nk)`,
/// `nonce = Expand(prk, "nonce", Nn)`.
fn response_key(
    aead: Aead,
    secret: &[u8],
    enc: &[u8],
    response_nonce: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), OhttpError> {
    let mut salt = Vec::with_capacity(enc.len() + response_nonce.len());
    salt.extend_from_slice(enc);
    salt.extend_from_slice(response_nonce);
    let prk = Hkdf::<Sha256>::new(Some(&salt), secret);
    let mut key = Zeroizing::new(vec![0_u8; aead.key_len()]);
    let mut nonce = vec![0_u8; aead.nonce_len()];
    prk.expand(b"key", &mut key)
        .and_then(|()| prk.expand(b"nonce", &mut nonce))
        .map_err(|_| OhttpError::Encrypt)?;
    Ok((key, nonce))
}

fn aead_seal(
    aead: Aead,
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, OhttpError> {
    let sealed = match aead {
        Aead::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(key)
            .map_err(|_| OhttpError::Encrypt)?
            .encrypt(
                nonce.try_into().map_err(|_| OhttpError::Encrypt)?,
                plaintext,
            ),
        Aead::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| OhttpError::Encrypt)?
            .encrypt(
                nonce.try_into().map_err(|_| OhttpError::Encrypt)?,
                plaintext,
            ),
    };
    sealed.map_err(|_| OhttpError::Encrypt)
}

fn aead_open(
    aead: Aead,
    key: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, OhttpError> {
    let opened = match aead {
        Aead::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(key)
            .map_err(|_| OhttpError::Decrypt)?
            .decrypt(
                nonce.try_into().map_err(|_| OhttpError::Decrypt)?,
                ciphertext,
            ),
        Aead::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| OhttpError::Decrypt)?
            .decrypt(
                nonce.try_into().map_err(|_| OhttpError::Decrypt)?,
                ciphertext,
            ),
    };
    opened.map_err(|_| OhttpError::Decrypt)
}
