//! HPKE base mode for the offered suites, dispatched at run time over the `hpke` crate's types.

use hpke::aead::{AesGcm128, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
// Natively the KEMs over aws-lc (`dhkem.rs`); in the browser hpke's own.
#[cfg(target_arch = "wasm32")]
pub(crate) use hpke::kem::{DhP256HkdfSha256, X25519HkdfSha256};
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem as KemTrait, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::OhttpError;
use crate::algorithms::{Aead, Kem};
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::dhkem::{DhP256HkdfSha256, X25519HkdfSha256};

/// The exporter label of the response secret (RFC 9458 §4.4).
const RESPONSE_LABEL: &[u8] = b"message/bhttp response";

/// What sealing produced: the encapsulated key, the ciphertext and the exported response secret.
pub(crate) struct Sealed {
    pub(crate) enc: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) secret: Zeroizing<Vec<u8>>,
}

/// What opening produced: the plaintext and the exported response secret.
pub(crate) struct Opened {
    pub(crate) plaintext: Vec<u8>,
    pub(crate) secret: Zeroizing<Vec<u8>>,
}

/// A KEM private key, parsed once (natively with its public key computed once: every
/// decapsulation needs it for `kem_context`).
#[derive(Clone)]
pub(crate) enum PrivateKey {
    X25519(<X25519HkdfSha256 as KemTrait>::PrivateKey),
    P256(<DhP256HkdfSha256 as KemTrait>::PrivateKey),
}

/// Runs `$body` with `K` and `A` bound to the hpke types of `$kem` and `$aead`.
macro_rules! with_suite {
    ($kem:expr, $aead:expr, $f:ident ( $($arg:expr),* )) => {
        match ($kem, $aead) {
            (Kem::X25519Sha256, Aead::Aes128Gcm) => $f::<X25519HkdfSha256, AesGcm128>($($arg),*),
            (Kem::X25519Sha256, Aead::ChaCha20Poly1305) => {
                $f::<X25519HkdfSha256, ChaCha20Poly1305>($($arg),*)
            }
            (Kem::P256Sha256, Aead::Aes128Gcm) => $f::<DhP256HkdfSha256, AesGcm128>($($arg),*),
            (Kem::P256Sha256, Aead::ChaCha20Poly1305) => {
                $f::<DhP256HkdfSha256, ChaCha20Poly1305>($($arg),*)
            }
        }
    };
}

/// SetupBaseS to `public_key` with `info`, the ephemeral key derived from `ikm` (RFC 9180
/// DeriveKeyPair, exactly what the RFC's `ikmE` test inputs feed), then one Seal.
pub(crate) fn seal(
    kem: Kem,
    aead: Aead,
    public_key: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    ikm: &[u8],
) -> Result<Sealed, OhttpError> {
    with_suite!(
        kem,
        aead,
        seal_with(
            public_key,
            info,
            aad,
            plaintext,
            ikm,
            aead.response_nonce_len()
        )
    )
}

/// SetupBaseR with `secret` and `enc`, then one Open.
pub(crate) fn open(
    aead: Aead,
    secret: &PrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Opened, OhttpError> {
    let secret_len = aead.response_nonce_len();
    match (secret, aead) {
        (PrivateKey::X25519(sk), Aead::Aes128Gcm) => {
            open_with::<X25519HkdfSha256, AesGcm128>(sk, enc, info, aad, ciphertext, secret_len)
        }
        (PrivateKey::X25519(sk), Aead::ChaCha20Poly1305) => {
            open_with::<X25519HkdfSha256, ChaCha20Poly1305>(
                sk, enc, info, aad, ciphertext, secret_len,
            )
        }
        (PrivateKey::P256(sk), Aead::Aes128Gcm) => {
            open_with::<DhP256HkdfSha256, AesGcm128>(sk, enc, info, aad, ciphertext, secret_len)
        }
        (PrivateKey::P256(sk), Aead::ChaCha20Poly1305) => {
            open_with::<DhP256HkdfSha256, ChaCha20Poly1305>(
                sk, enc, info, aad, ciphertext, secret_len,
            )
        }
    }
}

/// DeriveKeyPair(ikm): the private key and the serialized public key.
pub(crate) fn derive_key_pair(kem: Kem, ikm: &[u8]) -> (PrivateKey, Vec<u8>) {
    match kem {
        Kem::X25519Sha256 => {
            let (sk, pk) = X25519HkdfSha256::derive_keypair(ikm);
            (PrivateKey::X25519(sk), pk.to_bytes().to_vec())
        }
        Kem::P256Sha256 => {
            let (sk, pk) = DhP256HkdfSha256::derive_keypair(ikm);
            (PrivateKey::P256(sk), pk.to_bytes().to_vec())
        }
    }
}

/// A serialized private key, parsed, and its serialized public key.
pub(crate) fn private_key(kem: Kem, secret: &[u8]) -> Result<(PrivateKey, Vec<u8>), OhttpError> {
    fn parse<K: KemTrait>(secret: &[u8]) -> Result<(K::PrivateKey, Vec<u8>), OhttpError> {
        let sk = K::PrivateKey::from_bytes(secret).map_err(|_| OhttpError::InvalidKey)?;
        let pk = K::sk_to_pk(&sk).to_bytes().to_vec();
        Ok((sk, pk))
    }
    Ok(match kem {
        Kem::X25519Sha256 => {
            let (sk, pk) = parse::<X25519HkdfSha256>(secret)?;
            (PrivateKey::X25519(sk), pk)
        }
        Kem::P256Sha256 => {
            let (sk, pk) = parse::<DhP256HkdfSha256>(secret)?;
            (PrivateKey::P256(sk), pk)
        }
    })
}

/// Refuses a public key that is not a valid point of `kem`.
pub(crate) fn check_public_key(kem: Kem, public_key: &[u8]) -> Result<(), OhttpError> {
    fn check<K: KemTrait>(public_key: &[u8]) -> Result<(), OhttpError> {
        K::PublicKey::from_bytes(public_key)
            .map(|_| ())
            .map_err(|_| OhttpError::InvalidKey)
    }
    match kem {
        Kem::X25519Sha256 => check::<X25519HkdfSha256>(public_key),
        Kem::P256Sha256 => check::<DhP256HkdfSha256>(public_key),
    }
}

fn seal_with<K: KemTrait, A: hpke::aead::Aead>(
    public_key: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    ikm: &[u8],
    secret_len: usize,
) -> Result<Sealed, OhttpError> {
    let pk = K::PublicKey::from_bytes(public_key).map_err(|_| OhttpError::InvalidKey)?;
    let mut rng = IkmRng(ikm);
    let (enc, mut ctx) =
        hpke::setup_sender_with_rng::<A, HkdfSha256, K>(&OpModeS::Base, &pk, info, &mut rng)
            .map_err(|_| OhttpError::Encrypt)?;
    let ciphertext = ctx.seal(plaintext, aad).map_err(|_| OhttpError::Encrypt)?;
    let mut secret = Zeroizing::new(vec![0_u8; secret_len]);
    ctx.export(RESPONSE_LABEL, &mut secret)
        .map_err(|_| OhttpError::Encrypt)?;
    Ok(Sealed {
        enc: enc.to_bytes().to_vec(),
        ciphertext,
        secret,
    })
}

fn open_with<K: KemTrait, A: hpke::aead::Aead>(
    sk: &K::PrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    secret_len: usize,
) -> Result<Opened, OhttpError> {
    let enc = K::EncappedKey::from_bytes(enc).map_err(|_| OhttpError::Decrypt)?;
    let mut ctx = hpke::setup_receiver::<A, HkdfSha256, K>(&OpModeR::Base, sk, &enc, info)
        .map_err(|_| OhttpError::Decrypt)?;
    let plaintext = ctx.open(ciphertext, aad).map_err(|_| OhttpError::Decrypt)?;
    let mut secret = Zeroizing::new(vec![0_u8; secret_len]);
    ctx.export(RESPONSE_LABEL, &mut secret)
        .map_err(|_| OhttpError::Decrypt)?;
    Ok(Opened { plaintext, secret })
}

/// Serves the caller's ephemeral keying material to hpke's `gen_keypair_with_rng`, which draws
/// exactly `Nsk` bytes for the DHKEMs here. Should more ever be asked for, it continues with
/// SHA-256 of the material and a counter rather than repeating it.
pub(crate) struct IkmRng<'a>(pub(crate) &'a [u8]);

impl TryRng for IkmRng<'_> {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0_u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0_u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let n = dst.len().min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        let (now, rest) = dst.split_at_mut(n);
        now.copy_from_slice(head);
        self.0 = tail;
        let mut counter = 0_u32;
        for chunk in rest.chunks_mut(32) {
            use sha2::Digest as _;
            let block = sha2::Sha256::new()
                .chain_update(head)
                .chain_update(counter.to_be_bytes())
                .finalize();
            let len = chunk.len();
            chunk.copy_from_slice(block.get(..len).unwrap_or_default());
            counter = counter.wrapping_add(1);
        }
        Ok(())
    }
}

impl TryCryptoRng for IkmRng<'_> {}
