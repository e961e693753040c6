//! [`RootSecret`]: the 32 bytes every replica of a cluster shares (DESIGN §10), and what is
//! derived from it: each epoch's OHTTP keys and a fingerprint that tells two secrets apart
//! without revealing either.
//!
//! The secret lives in enclave memory only, wiped on drop; it cannot be printed, and it leaves
//! the process only inside the mutual RA-TLS channel to a verified peer (`serve.rs`).

use hkdf::Hkdf;
use sha2::Sha256;
use shroud_ohttp::{Kem, ServerKey};
use zeroize::Zeroizing;

use super::epoch::key_ids;
use super::error::ClusterError;

/// Length of the root secret, in bytes.
pub(crate) const SECRET_LEN: usize = 32;
/// Length of a secret's fingerprint, in bytes.
pub(crate) const FINGERPRINT_LEN: usize = 16;

/// HKDF-Extract's salt: names the protocol and its version, so that no other use of the same
/// bytes could derive the same keys.
const SALT: &[u8] = b"shroud cluster root secret v1";

/// The cluster's root secret.
pub(crate) struct RootSecret {
    bytes: Zeroizing<[u8; SECRET_LEN]>,
}

impl std::fmt::Debug for RootSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootSecret")
            .field("fingerprint", &hex::encode(self.fingerprint()))
            .finish_non_exhaustive()
    }
}

impl RootSecret {
    /// A new secret from the crypto provider's randomness (in a TEE, the hardware's).
    pub(crate) fn generate() -> Result<RootSecret, ClusterError> {
        let mut bytes = Zeroizing::new([0_u8; SECRET_LEN]);
        shroud_ra_tls::tls::crypto_provider()
            .secure_random
            .fill(bytes.as_mut())
            .map_err(|_| ClusterError::Random)?;
        Ok(RootSecret { bytes })
    }

    /// The secret received from a peer.
    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; SECRET_LEN]>) -> RootSecret {
        RootSecret { bytes }
    }

    /// The bytes, for the one place that sends them to a verified peer.
    pub(crate) fn expose(&self) -> &[u8; SECRET_LEN] {
        &self.bytes
    }

    fn prk(&self) -> Hkdf<Sha256> {
        Hkdf::<Sha256>::new(Some(SALT), self.bytes.as_ref())
    }

    /// A public digest of the secret: equal fingerprints, equal secrets. Peers compare them to
    /// notice two founders; logs may show it.
    pub(crate) fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        let mut out = [0_u8; FINGERPRINT_LEN];
        // 16 bytes are far below HKDF-SHA256's limit of 255 * 32.
        let _ = self.prk().expand(b"fingerprint", &mut out);
        out
    }

    /// The OHTTP keys of `epoch`, in the order served: X25519 then P-256, with the key ids of
    /// [`key_ids`]. Each KEM's key pair is RFC 9180 `DeriveKeyPair` of 32 bytes of
    /// HKDF-SHA256 output whose info names the KEM and the epoch.
    pub(crate) fn epoch_keys(&self, epoch: u64) -> Vec<ServerKey> {
        let prk = self.prk();
        let (x25519_id, p256_id) = key_ids(epoch);
        [(x25519_id, Kem::X25519Sha256), (p256_id, Kem::P256Sha256)]
            .into_iter()
            .map(|(key_id, kem)| {
                let mut info = Vec::with_capacity(32);
                info.extend_from_slice(b"ohttp key ");
                info.extend_from_slice(&kem.id().to_be_bytes());
                info.extend_from_slice(&epoch.to_be_bytes());
                let mut ikm = Zeroizing::new([0_u8; 32]);
                // 32 bytes are far below HKDF-SHA256's limit.
                let _ = prk.expand(&info, ikm.as_mut());
                ServerKey::derive(key_id, kem, ikm.as_ref())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> RootSecret {
        RootSecret::from_bytes(Zeroizing::new([byte; SECRET_LEN]))
    }

    #[test]
    fn the_same_secret_gives_the_same_keys_and_each_epoch_its_own() {
        let list = |secret: &RootSecret, epoch| {
            let configs: Vec<_> = secret
                .epoch_keys(epoch)
                .iter()
                .map(|k| k.config().clone())
                .collect();
            shroud_ohttp::KeyConfig::encode_list(&configs)
        };
        assert_eq!(list(&secret(1), 7), list(&secret(1), 7));
        assert_ne!(list(&secret(1), 7), list(&secret(1), 8));
        assert_ne!(list(&secret(1), 7), list(&secret(2), 7));
        let keys = secret(1).epoch_keys(7);
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().any(|k| k.config().kem == Kem::X25519Sha256));
        assert!(keys.iter().any(|k| k.config().kem == Kem::P256Sha256));
    }

    #[test]
    fn fingerprints_tell_secrets_apart_and_debug_shows_nothing_else() {
        assert_eq!(secret(1).fingerprint(), secret(1).fingerprint());
        assert_ne!(secret(1).fingerprint(), secret(2).fingerprint());
        let shown = format!("{:?}", secret(0xab));
        assert!(!shown.contains(&"ab".repeat(SECRET_LEN)), "{shown}");
        assert!(RootSecret::generate().is_ok());
        assert_ne!(
            RootSecret::generate().unwrap().expose(),
            RootSecret::generate().unwrap().expose()
        );
    }
}
