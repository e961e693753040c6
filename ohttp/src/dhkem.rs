//! DHKEM(X25519, HKDF-SHA256) and DHKEM(P-256, HKDF-SHA256) (RFC 9180 §4.1) as `hpke` KEMs over
//! aws-lc's key agreement: the native build's KEMs (the browser's stay hpke's own, over
//! curve25519-dalek and p256: aws-lc has no wasm32 build).
//!
//! Two costs of hpke's own DHKEMs are gone (DESIGN §8: an OHTTP round trip < 100 µs, the gateway's
//! share < 50 µs):
//! * the scalar multiplications: curve25519-dalek's Montgomery ladder and p256's arithmetic are
//!   portable Rust; aws-lc's X25519 (s2n-bignum) and P-256 (nistz256) are assembly, already linked
//!   natively through rustls, and their fixed-base multiplications use precomputed tables;
//! * the recipient's public key: `kem_context = enc || pkRm`, and hpke's `decap` recomputes pkR
//!   from skR (a fixed-base multiplication) on every request; here a [`PrivateKey`] carries its
//!   public key, computed once when the key is made.
//!
//! Only the DH and the key pair are ours. The labeled HKDF steps are hpke's own
//! (`Kdf::extract_and_expand`, `Kdf::derive_*_sk_eph_bytes`, which hpke's DHKEMs call too), so
//! are the checks of P-256 keys (hpke's P-256 types decide what is a valid scalar and point, the
//! same decision as in the browser); the RFC 9180 and RFC 9458 vectors in `conformance_tests` pin
//! every byte, and the tests below check that these KEMs and hpke's interoperate both ways.

use std::marker::PhantomData;
use std::sync::Arc;

use aws_lc_rs::agreement;
use hpke::hybrid_array::typenum::{U32, U65, Unsigned as _};
use hpke::hybrid_array::{Array, ArraySize};
use hpke::kdf::{HkdfSha256, Kdf as _};
use hpke::kem::SharedSecret;
use hpke::rand_core::CryptoRng;
use hpke::{Deserializable, HpkeError, Kem, Serializable};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize as _, Zeroizing};

/// What differs between the two DHKEMs: the group, its encodings and its `DeriveKeyPair`. Both
/// have `Nsk` = `Ndh` = `Nsecret` = 32.
pub(crate) trait Curve: Clone + std::fmt::Debug + PartialEq + Eq + 'static {
    /// The IANA HPKE KEM id.
    const KEM_ID: u16;
    /// `Npk` = `Nenc`.
    type Npk: ArraySize;
    /// aws-lc's key agreement over this group.
    fn algorithm() -> &'static agreement::Algorithm;
    /// RFC 9180 §7.1.3 `DeriveKeyPair`: the private key of `ikm`, checked.
    fn derive_private(ikm: &[u8]) -> Option<Zeroizing<[u8; 32]>>;
    /// RFC 9180 §7.1.2 `DeserializePrivateKey`: X25519 clamps; P-256 refuses 0 and the order or
    /// more.
    fn check_private(bytes: &mut [u8; 32]) -> Result<(), HpkeError>;
    /// `DeserializePublicKey`: refuses what is not a point (the length is already checked).
    fn check_public(bytes: &[u8]) -> Result<(), HpkeError>;
}

/// `suite_id = "KEM" || I2OSP(kem_id, 2)`.
const fn suite_id(kem_id: u16) -> [u8; 5] {
    let [a, b] = kem_id.to_be_bytes();
    [b'K', b'E', b'M', a, b]
}

/// X25519 (RFC 7748): any 32 bytes are a public key; a point of small order fails at the DH,
/// whose output would be all zeros (aws-lc's `X25519` refuses it, RFC 9180 §7.1.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct X25519;

impl Curve for X25519 {
    const KEM_ID: u16 = 0x0020;
    type Npk = U32;

    fn algorithm() -> &'static agreement::Algorithm {
        &agreement::X25519
    }

    fn derive_private(ikm: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        let mut sk = Zeroizing::new(HkdfSha256::derive_x25519_sk_eph_bytes(
            &suite_id(Self::KEM_ID),
            ikm,
        ));
        X25519::check_private(&mut sk).ok()?;
        Some(sk)
    }

    /// RFC 7748 §5 `decodeScalar25519`, in place.
    fn check_private(bytes: &mut [u8; 32]) -> Result<(), HpkeError> {
        if let Some(first) = bytes.first_mut() {
            *first &= 248;
        }
        if let Some(last) = bytes.last_mut() {
            *last &= 127;
            *last |= 64;
        }
        Ok(())
    }

    fn check_public(_: &[u8]) -> Result<(), HpkeError> {
        Ok(())
    }
}

/// NIST P-256, public keys as uncompressed points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct P256;

/// hpke's P-256 KEM, whose key types check scalars and points for [`P256`].
type HpkeP256 = hpke::kem::DhP256HkdfSha256;

impl Curve for P256 {
    const KEM_ID: u16 = 0x0010;
    type Npk = U65;

    fn algorithm() -> &'static agreement::Algorithm {
        &agreement::ECDH_P256
    }

    /// The first of up to 256 candidates that is a scalar in [1, n) (the bitmask of P-256 is
    /// 0xff); `None` after 256 rejections, a probability of 2^-8192.
    fn derive_private(ikm: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        (0..=u8::MAX).find_map(|counter| {
            let mut candidate =
                HkdfSha256::derive_nistp_sk_eph_bytes::<U32>(&suite_id(Self::KEM_ID), ikm, counter);
            let mut sk = Zeroizing::new([0_u8; 32]);
            sk.copy_from_slice(&candidate);
            candidate.zeroize();
            P256::check_private(&mut sk).ok().map(|()| sk)
        })
    }

    fn check_private(bytes: &mut [u8; 32]) -> Result<(), HpkeError> {
        <HpkeP256 as Kem>::PrivateKey::from_bytes(&*bytes).map(|_| ())
    }

    fn check_public(bytes: &[u8]) -> Result<(), HpkeError> {
        <HpkeP256 as Kem>::PublicKey::from_bytes(bytes).map(|_| ())
    }
}

/// DHKEM(`C`, HKDF-SHA256), base mode only (what OHTTP uses): the authenticated modes are
/// refused with `EncapError`/`DecapError`.
pub(crate) struct DhKem<C>(PhantomData<C>);

/// DHKEM(X25519, HKDF-SHA256), KEM id 0x0020.
pub(crate) type X25519HkdfSha256 = DhKem<X25519>;
/// DHKEM(P-256, HKDF-SHA256), KEM id 0x0010.
pub(crate) type DhP256HkdfSha256 = DhKem<P256>;

/// A public key of `C`, also the encapsulated key, as its `Npk` bytes.
#[derive(Clone, Debug)]
pub(crate) struct PublicKey<C: Curve>(Array<u8, C::Npk>, PhantomData<C>);

impl<C: Curve> PartialEq for PublicKey<C> {
    fn eq(&self, other: &PublicKey<C>) -> bool {
        self.0.as_slice() == other.0.as_slice()
    }
}

impl<C: Curve> Eq for PublicKey<C> {}

/// A private key of `C`, checked, with aws-lc's parsed form and the public key, both made once.
#[derive(Clone)]
pub(crate) struct PrivateKey<C: Curve> {
    bytes: Zeroizing<[u8; 32]>,
    // aws-lc's key has no `Clone`; the gateway clones its keys per request.
    parsed: Arc<agreement::PrivateKey>,
    public: PublicKey<C>,
}

impl<C: Curve> PrivateKey<C> {
    /// A private key of checked `bytes`; `None` only when aws-lc cannot allocate.
    fn new(bytes: Zeroizing<[u8; 32]>) -> Option<PrivateKey<C>> {
        let parsed = agreement::PrivateKey::from_private_key(C::algorithm(), &*bytes).ok()?;
        let public = Array::try_from(parsed.compute_public_key().ok()?.as_ref()).ok()?;
        Some(PrivateKey {
            bytes,
            parsed: Arc::new(parsed),
            public: PublicKey(public, PhantomData),
        })
    }

    /// DH(sk, pk): aws-lc refuses an invalid point and, for X25519, an all-zero result.
    fn dh(&self, pk: &PublicKey<C>) -> Option<Zeroizing<[u8; 32]>> {
        agreement::agree(
            &self.parsed,
            agreement::UnparsedPublicKey::new(C::algorithm(), pk.0.as_slice()),
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

/// `ExtractAndExpand(dh, enc || pkRm)` (RFC 9180 §4.1).
fn shared_secret<C: Curve>(
    dh: &[u8; 32],
    enc: &PublicKey<C>,
    pk_recipient: &PublicKey<C>,
) -> Result<SharedSecret<DhKem<C>>, HpkeError> {
    let mut kem_context = Vec::with_capacity(2 * enc.0.len());
    kem_context.extend_from_slice(&enc.0);
    kem_context.extend_from_slice(&pk_recipient.0);
    let mut secret = SharedSecret::<DhKem<C>>::default();
    HkdfSha256::extract_and_expand(dh, &suite_id(C::KEM_ID), &kem_context, &mut secret.0)?;
    Ok(secret)
}

impl<C: Curve> Kem for DhKem<C> {
    type PublicKey = PublicKey<C>;
    type PrivateKey = PrivateKey<C>;
    type EncappedKey = PublicKey<C>;
    type NSecret = U32;
    const KEM_ID: u16 = C::KEM_ID;

    fn sk_to_pk(sk: &PrivateKey<C>) -> PublicKey<C> {
        sk.public.clone()
    }

    #[expect(
        clippy::expect_used,
        reason = "DeriveKeyPair fails after 256 rejected P-256 candidates (probability 2^-8192, \
                  where hpke panics too) or when aws-lc cannot allocate (where Rust aborts)"
    )]
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey<C>, PublicKey<C>) {
        let sk = C::derive_private(ikm)
            .and_then(PrivateKey::new)
            .expect("a key pair derived from ikm");
        let pk = sk.public.clone();
        (sk, pk)
    }

    fn decap(
        sk_recipient: &PrivateKey<C>,
        pk_sender_id: Option<&PublicKey<C>>,
        enc: &PublicKey<C>,
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
        pk_recipient: &PublicKey<C>,
        sender_id_keypair: Option<(&PrivateKey<C>, &PublicKey<C>)>,
        csprng: &mut impl CryptoRng,
    ) -> Result<(SharedSecret<Self>, PublicKey<C>), HpkeError> {
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

impl<C: Curve> Serializable for PublicKey<C> {
    type OutputSize = C::Npk;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0);
    }
}

impl<C: Curve> Deserializable for PublicKey<C> {
    fn from_bytes(encoded: &[u8]) -> Result<PublicKey<C>, HpkeError> {
        let bytes = Array::try_from(encoded)
            .map_err(|_| HpkeError::IncorrectInputLength(C::Npk::USIZE, encoded.len()))?;
        C::check_public(encoded)?;
        Ok(PublicKey(bytes, PhantomData))
    }
}

impl<C: Curve> Serializable for PrivateKey<C> {
    type OutputSize = U32;

    /// The checked key (RFC 9180 §7.1.2: for X25519, SerializePrivateKey MUST clamp).
    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&*self.bytes);
    }
}

impl<C: Curve> Deserializable for PrivateKey<C> {
    fn from_bytes(encoded: &[u8]) -> Result<PrivateKey<C>, HpkeError> {
        let mut bytes = Zeroizing::new(
            <[u8; 32]>::try_from(encoded)
                .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))?,
        );
        C::check_private(&mut bytes)?;
        PrivateKey::new(bytes).ok_or(HpkeError::ValidationError)
    }
}

impl<C: Curve> ConstantTimeEq for PrivateKey<C> {
    fn ct_eq(&self, other: &PrivateKey<C>) -> Choice {
        self.bytes.ct_eq(&*other.bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use hpke::aead::AesGcm128;
    use hpke::{OpModeR, OpModeS};

    use super::*;

    const INFO: &[u8] = b"interop";

    /// Seals with `S`'s KEM to a key pair of `R`'s derived from the same bytes, opens with `R`'s.
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
    fn interoperates_with_hpkes_own_kems_both_ways() {
        for n in 0..8_u8 {
            let ikm_r = [n; 32];
            let ikm_e = [n.wrapping_add(100); 32];
            interop::<X25519HkdfSha256, hpke::kem::X25519HkdfSha256>(&ikm_r, &ikm_e);
            interop::<hpke::kem::X25519HkdfSha256, X25519HkdfSha256>(&ikm_r, &ikm_e);
            interop::<DhP256HkdfSha256, HpkeP256>(&ikm_r, &ikm_e);
            interop::<HpkeP256, DhP256HkdfSha256>(&ikm_r, &ikm_e);
        }
    }

    #[test]
    fn x25519_private_keys_are_clamped_both_ways() {
        let sk = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(&[0xff; 32]).unwrap();
        let mut expected = [0xff; 32];
        expected[0] = 0xf8;
        expected[31] = 0x7f;
        assert_eq!(&sk.to_bytes()[..], &expected[..]);
        let theirs =
            <hpke::kem::X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(&[0xff; 32]).unwrap();
        assert_eq!(
            &X25519HkdfSha256::sk_to_pk(&sk).to_bytes()[..],
            &hpke::kem::X25519HkdfSha256::sk_to_pk(&theirs).to_bytes()[..]
        );
    }

    #[test]
    fn x25519_small_order_points_are_refused() {
        let (sk, _) = X25519HkdfSha256::derive_keypair(&[1; 32]);
        // u = 0 and u = 1 are of small order: DH gives all zeros.
        let mut one = [0_u8; 32];
        one[0] = 1;
        for u in [[0_u8; 32], one] {
            let point = PublicKey::<X25519>::from_bytes(&u).unwrap();
            assert!(matches!(
                X25519HkdfSha256::decap(&sk, None, &point),
                Err(HpkeError::DecapError)
            ));
            let mut rng = crate::suite::IkmRng(&[2; 32]);
            assert!(matches!(
                X25519HkdfSha256::encap_with_rng(&point, None, &mut rng),
                Err(HpkeError::EncapError)
            ));
        }
    }

    #[test]
    fn p256_scalars_out_of_range_and_points_off_the_curve_are_refused() {
        type K = DhP256HkdfSha256;
        for bad in [[0_u8; 32], [0xff; 32]] {
            assert!(<K as Kem>::PrivateKey::from_bytes(&bad).is_err());
        }
        let (_, pk) = K::derive_keypair(&[3; 32]);
        let mut off = pk.to_bytes();
        off[64] ^= 1;
        assert!(PublicKey::<P256>::from_bytes(&off).is_err());
        let mut compressed = pk.to_bytes();
        compressed[0] = 0x02;
        assert!(PublicKey::<P256>::from_bytes(&compressed).is_err());
        assert!(matches!(
            PublicKey::<P256>::from_bytes(&off[..33]),
            Err(HpkeError::IncorrectInputLength(65, 33))
        ));
    }

    #[test]
    fn authenticated_modes_are_refused() {
        let (sk, pk) = X25519HkdfSha256::derive_keypair(&[1; 32]);
        assert!(matches!(
            X25519HkdfSha256::decap(&sk, Some(&pk), &pk),
            Err(HpkeError::DecapError)
        ));
        let mut rng = crate::suite::IkmRng(&[2; 32]);
        assert!(matches!(
            X25519HkdfSha256::encap_with_rng(&pk, Some((&sk, &pk)), &mut rng),
            Err(HpkeError::EncapError)
        ));
    }
}
