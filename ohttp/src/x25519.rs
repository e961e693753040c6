//! DHKEM(X25519, HKDF-SHA256) (RFC 9180 §4.1) as an `hpke` KEM over aws-lc's X25519: the native
//! build's X25519 (the browser's stays `hpke::kem::X25519HkdfSha256`: aws-lc has no wasm32 build).
//!
//! Two costs of hpke's own DHKEM are gone (DESIGN §8: an OHTTP round trip < 100 µs, the gateway's
//! share < 50 µs):
//! * the scalar multiplications: curve25519-dalek's Montgomery ladder is portable Rust, aws-lc's
//!   X25519 is s2n-bignum's assembly (with the gateway already linked through rustls), about
//!   half the time per DH, and its fixed-base multiplication uses precomputed tables;
//! * the recipient's public key: `kem_context = enc || pkRm`, and hpke's `decap` recomputes pkR
//!   from skR (a fixed-base multiplication) on every request; here a [`PrivateKey`] carries its
//!   public key, computed once when the key is made.
//!
//! Only the DH and the key pair are ours; the labeled HKDF steps are hpke's own
//! (`Kdf::extract_and_expand`, `Kdf::derive_x25519_sk_eph_bytes`, which hpke's DHKEMs call
//! too), and the RFC 9180 and RFC 9458 vectors in `conformance_tests` pin every byte, besides a
//! test that this KEM and hpke's interoperate both ways.

use std::sync::Arc;

use aws_lc_rs::agreement;
use hpke::hybrid_array::typenum::U32;
use hpke::kdf::{HkdfSha256, Kdf as _};
use hpke::kem::SharedSecret;
use hpke::rand_core::CryptoRng;
use hpke::{Deserializable, HpkeError, Kem, Serializable};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

/// `suite_id = "KEM" || I2OSP(kem_id, 2)` of DHKEM(X25519, HKDF-SHA256).
const SUITE_ID: [u8; 5] = *b"KEM\x00\x20";

/// DHKEM(X25519, HKDF-SHA256), KEM id 0x0020, base mode only (what OHTTP uses): the
/// authenticated modes are refused with `EncapError`/`DecapError`.
pub(crate) struct X25519HkdfSha256;

/// An X25519 public key, also the encapsulated key (`Npk` = `Nenc` = 32). Any 32 bytes are one
/// (RFC 7748 §5); a point of small order fails at the DH, whose output would be all zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PublicKey([u8; 32]);

/// An X25519 private key, clamped, with aws-lc's parsed form and the public key, both made once.
#[derive(Clone)]
pub(crate) struct PrivateKey {
    clamped: Zeroizing<[u8; 32]>,
    // aws-lc's key has no `Clone`; the gateway clones its keys per request.
    parsed: Arc<agreement::PrivateKey>,
    public: PublicKey,
}

impl PrivateKey {
    /// Clamps `bytes` (RFC 9180 §7.1.2: DeserializePrivateKey MUST clamp) and computes the
    /// public key.
    fn from_array(bytes: &[u8; 32]) -> PrivateKey {
        let mut clamped = Zeroizing::new(*bytes);
        clamp(&mut clamped);
        #[expect(
            clippy::expect_used,
            reason = "aws-lc takes any 32 bytes as an X25519 private key; it fails only when it \
                      cannot allocate, where Rust aborts as well"
        )]
        let parsed = agreement::PrivateKey::from_private_key(&agreement::X25519, &*clamped)
            .expect("an X25519 private key from 32 bytes");
        #[expect(
            clippy::expect_used,
            reason = "aws-lc computed the public key when it parsed the private one; this copies \
                      its 32 bytes out"
        )]
        let public = parsed
            .compute_public_key()
            .ok()
            .and_then(|pk| <[u8; 32]>::try_from(pk.as_ref()).ok())
            .map(PublicKey)
            .expect("the 32-byte public key of an X25519 private key");
        PrivateKey {
            clamped,
            parsed: Arc::new(parsed),
            public,
        }
    }

    /// DH(sk, pk): refused when the result is all zeros (RFC 9180 §7.1.4, `pk` of small order),
    /// which aws-lc's `X25519` checks.
    fn dh(&self, pk: &PublicKey) -> Option<Zeroizing<[u8; 32]>> {
        agreement::agree(
            &self.parsed,
            agreement::UnparsedPublicKey::new(&agreement::X25519, &pk.0),
            (),
            |secret| {
                <[u8; 32]>::try_from(secret)
                    .map(Zeroizing::new)
                    .map_err(|_| ())
            },
        )
        .ok()
    }
}

/// RFC 7748 §5 `decodeScalar25519`, in place.
fn clamp(k: &mut [u8; 32]) {
    if let Some(first) = k.first_mut() {
        *first &= 248;
    }
    if let Some(last) = k.last_mut() {
        *last &= 127;
        *last |= 64;
    }
}

/// `ExtractAndExpand(dh, enc || pkRm)` (RFC 9180 §4.1).
fn shared_secret(
    dh: &[u8; 32],
    enc: &PublicKey,
    pk_recipient: &PublicKey,
) -> Result<SharedSecret<X25519HkdfSha256>, HpkeError> {
    let mut kem_context = [0_u8; 64];
    let (first, second) = kem_context.split_at_mut(32);
    first.copy_from_slice(&enc.0);
    second.copy_from_slice(&pk_recipient.0);
    let mut secret = SharedSecret::<X25519HkdfSha256>::default();
    HkdfSha256::extract_and_expand(dh, &SUITE_ID, &kem_context, &mut secret.0)?;
    Ok(secret)
}

impl Kem for X25519HkdfSha256 {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = PublicKey;
    type NSecret = U32;
    const KEM_ID: u16 = 0x0020;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        sk.public.clone()
    }

    /// RFC 9180 §7.1.3: `sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", 32)`.
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let bytes = Zeroizing::new(HkdfSha256::derive_x25519_sk_eph_bytes(&SUITE_ID, ikm));
        let sk = PrivateKey::from_array(&bytes);
        let pk = sk.public.clone();
        (sk, pk)
    }

    fn decap(
        sk_recipient: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        enc: &PublicKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            return Err(HpkeError::DecapError);
        }
        let dh = sk_recipient.dh(enc).ok_or(HpkeError::DecapError)?;
        shared_secret(&dh, enc, &sk_recipient.public)
    }

    /// The ephemeral key is `DeriveKeyPair` of `Nsk` bytes from `csprng`, as hpke's DHKEMs
    /// draw it (which the RFC vectors' `ikmE` relies on).
    fn encap_with_rng(
        pk_recipient: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        csprng: &mut impl CryptoRng,
    ) -> Result<(SharedSecret<Self>, PublicKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let mut ikm = Zeroizing::new([0_u8; 32]);
        csprng.fill_bytes(&mut *ikm);
        let (sk_ephemeral, enc) = Self::derive_keypair(&*ikm);
        let dh = sk_ephemeral.dh(pk_recipient).ok_or(HpkeError::EncapError)?;
        Ok((shared_secret(&dh, &enc, pk_recipient)?, enc))
    }
}

impl Serializable for PublicKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0);
    }
}

impl Deserializable for PublicKey {
    fn from_bytes(encoded: &[u8]) -> Result<PublicKey, HpkeError> {
        <[u8; 32]>::try_from(encoded)
            .map(PublicKey)
            .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))
    }
}

impl Serializable for PrivateKey {
    type OutputSize = U32;

    /// The clamped key (RFC 9180 §7.1.2: SerializePrivateKey MUST clamp).
    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&*self.clamped);
    }
}

impl Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<PrivateKey, HpkeError> {
        let bytes = Zeroizing::new(
            <[u8; 32]>::try_from(encoded)
                .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))?,
        );
        Ok(PrivateKey::from_array(&bytes))
    }
}

impl ConstantTimeEq for PrivateKey {
    fn ct_eq(&self, other: &PrivateKey) -> Choice {
        self.clamped.ct_eq(&*other.clamped)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use hpke::aead::AesGcm128;
    use hpke::{OpModeR, OpModeS};

    use super::*;

    type Theirs = hpke::kem::X25519HkdfSha256;

    const INFO: &[u8] = b"interop";

    /// Seals with `S`'s KEM to a key pair of `R`'s made from the same bytes, opens with `R`'s.
    fn interop<S: Kem, R: Kem>(ikm_r: &[u8; 32], ikm_e: &[u8; 32]) {
        let (sk_r, pk_r) = R::derive_keypair(ikm_r);
        let (sk_s, pk_s) = S::derive_keypair(ikm_r);
        assert_eq!(&pk_r.to_bytes()[..], &pk_s.to_bytes()[..]);
        assert_eq!(&sk_r.to_bytes()[..], &sk_s.to_bytes()[..]);
        let mut rng = crate::suite::IkmRng(ikm_e);
        let (enc, mut sender) = hpke::setup_sender_with_rng::<AesGcm128, HkdfSha256, S>(
            &OpModeS::Base,
            &pk_s,
            INFO,
            &mut rng,
        )
        .unwrap();
        let ciphertext = sender.seal(b"both ways", b"").unwrap();
        let enc = R::EncappedKey::from_bytes(&enc.to_bytes()).unwrap();
        let mut receiver =
            hpke::setup_receiver::<AesGcm128, HkdfSha256, R>(&OpModeR::Base, &sk_r, &enc, INFO)
                .unwrap();
        assert_eq!(receiver.open(&ciphertext, b"").unwrap(), b"both ways");
    }

    #[test]
    fn interoperates_with_hpkes_own_x25519_kem_both_ways() {
        for n in 0..8_u8 {
            let ikm_r = [n; 32];
            let ikm_e = [n.wrapping_add(100); 32];
            interop::<X25519HkdfSha256, Theirs>(&ikm_r, &ikm_e);
            interop::<Theirs, X25519HkdfSha256>(&ikm_r, &ikm_e);
        }
    }

    #[test]
    fn private_keys_are_clamped_both_ways() {
        let sk = PrivateKey::from_bytes(&[0xff; 32]).unwrap();
        let mut expected = [0xff; 32];
        expected[0] = 0xf8;
        expected[31] = 0x7f;
        assert_eq!(&sk.to_bytes()[..], &expected[..]);
        let theirs = <Theirs as Kem>::PrivateKey::from_bytes(&[0xff; 32]).unwrap();
        assert_eq!(
            &X25519HkdfSha256::sk_to_pk(&sk).to_bytes()[..],
            &Theirs::sk_to_pk(&theirs).to_bytes()[..]
        );
    }

    #[test]
    fn small_order_points_and_auth_mode_are_refused() {
        let (sk, pk) = X25519HkdfSha256::derive_keypair(&[1; 32]);
        // u = 0 and u = 1 are of small order: DH gives all zeros.
        for u in [[0_u8; 32], {
            let mut one = [0_u8; 32];
            one[0] = 1;
            one
        }] {
            assert!(matches!(
                X25519HkdfSha256::decap(&sk, None, &PublicKey(u)),
                Err(HpkeError::DecapError)
            ));
            let mut rng = crate::suite::IkmRng(&[2; 32]);
            assert!(matches!(
                X25519HkdfSha256::encap_with_rng(&PublicKey(u), None, &mut rng),
                Err(HpkeError::EncapError)
            ));
        }
        assert!(matches!(
            X25519HkdfSha256::decap(&sk, Some(&pk), &pk),
            Err(HpkeError::DecapError)
        ));
        let mut rng = crate::suite::IkmRng(&[2; 32]);
        assert!(matches!(
            X25519HkdfSha256::encap_with_rng(&pk, Some((&sk, &pk)), &mut rng),
            Err(HpkeError::EncapError)
        ));
        assert!(matches!(
            PublicKey::from_bytes(&[0; 31]),
            Err(HpkeError::IncorrectInputLength(32, 31))
        ));
    }
}
