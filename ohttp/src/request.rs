//! Encapsulated requests (RFC 9458 §4.3): `hdr || enc || ct`, with
//! `hdr = key_id || kem_id || kdf_id || aead_id` and
//! `info = "message/bhttp request" || 0x00 || hdr`.

use zeroize::Zeroizing;

use super::keys::Reader;
use super::{
    Aead, KDF_HKDF_SHA256, Kem, KeyConfig, OhttpError, ResponseOpener, ResponseSealer, ServerKey,
    suite,
};

/// The label that starts `info`, before its zero byte.
const REQUEST_LABEL: &[u8] = b"message/bhttp request";
/// Length of the request header.
const HEADER_LEN: usize = 7;

/// A sealed request, and what opens its response.
#[derive(Debug)]
pub struct SealedRequest {
    /// The encapsulated request: the body of a `message/ohttp-req` POST.
    pub bytes: Vec<u8>,
    /// Opens the gateway's `message/ohttp-res` answer to exactly this request.
    pub opener: ResponseOpener,
}

/// A request the gateway opened, and what seals its response.
#[derive(Debug)]
pub struct OpenedRequest {
    /// The binary HTTP request inside.
    pub bhttp: Vec<u8>,
    /// The encapsulated key: unique per request, the replay-cache key.
    pub enc: Vec<u8>,
    /// Seals the one response to this request.
    pub sealer: ResponseSealer,
}

/// Seals the binary HTTP request `bhttp` to `config` with `aead`, drawing the ephemeral key from
/// the operating system's randomness.
pub fn seal_request(
    config: &KeyConfig,
    aead: Aead,
    bhttp: &[u8],
) -> Result<SealedRequest, OhttpError> {
    let mut ikm = Zeroizing::new(vec![0_u8; config.kem.secret_key_len()]);
    getrandom::fill(&mut ikm).map_err(|e| OhttpError::Random(e.to_string()))?;
    seal_request_with_ikm(config, aead, bhttp, &ikm)
}

/// Seals like [`seal_request`] with the ephemeral key derived from `ikm` (RFC 9180
/// DeriveKeyPair). `ikm` must be fresh random bytes; fixed ones are for test vectors.
pub fn seal_request_with_ikm(
    config: &KeyConfig,
    aead: Aead,
    bhttp: &[u8],
    ikm: &[u8],
) -> Result<SealedRequest, OhttpError> {
    if !config.aeads.contains(&aead) {
        return Err(OhttpError::UnsupportedSuite);
    }
    let header = header(config.key_id, config.kem, aead);
    let sealed = suite::seal(
        config.kem,
        aead,
        &config.public_key,
        &info(&header),
        b"",
        bhttp,
        ikm,
    )?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + sealed.enc.len() + sealed.ciphertext.len());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&sealed.enc);
    bytes.extend_from_slice(&sealed.ciphertext);
    Ok(SealedRequest {
        bytes,
        opener: ResponseOpener {
            aead,
            enc: sealed.enc,
            secret: sealed.secret,
        },
    })
}

/// The key id of an encapsulated request, to pick the [`ServerKey`] before opening it.
pub fn request_key_id(encapsulated: &[u8]) -> Option<u8> {
    encapsulated.first().copied()
}

/// The encapsulated key of a request under `kem`, without opening it.
pub fn request_enc(encapsulated: &[u8], kem: Kem) -> Option<&[u8]> {
    encapsulated.get(HEADER_LEN..HEADER_LEN.checked_add(kem.public_key_len())?)
}

impl ServerKey {
    /// Opens an encapsulated request addressed to this key.
    pub fn open_request(&self, encapsulated: &[u8]) -> Result<OpenedRequest, OhttpError> {
        let config = self.config();
        let mut r = Reader(encapsulated);
        let header = r.take(HEADER_LEN).ok_or(OhttpError::Malformed)?;
        let mut h = Reader(header);
        let key_id = h.u8().ok_or(OhttpError::Malformed)?;
        if key_id != config.key_id {
            return Err(OhttpError::UnknownKey(key_id));
        }
        let (kem_id, kdf_id, aead_id) = (h.u16(), h.u16(), h.u16());
        let aead = aead_id
            .and_then(Aead::from_id)
            .filter(|a| config.aeads.contains(a));
        let (Some(aead), true, true) = (
            aead,
            kem_id == Some(config.kem.id()),
            kdf_id == Some(KDF_HKDF_SHA256),
        ) else {
            return Err(OhttpError::UnsupportedSuite);
        };
        let enc = r
            .take(config.kem.public_key_len())
            .ok_or(OhttpError::Malformed)?;
        let opened = suite::open(aead, self.secret(), enc, &info(header), b"", r.0)?;
        Ok(OpenedRequest {
            bhttp: opened.plaintext,
            enc: enc.to_vec(),
            sealer: ResponseSealer {
                aead,
                enc: enc.to_vec(),
                secret: opened.secret,
            },
        })
    }
}

fn header(key_id: u8, kem: Kem, aead: Aead) -> [u8; HEADER_LEN] {
    let [k0, k1] = kem.id().to_be_bytes();
    let [d0, d1] = KDF_HKDF_SHA256.to_be_bytes();
    let [a0, a1] = aead.id().to_be_bytes();
    [key_id, k0, k1, d0, d1, a0, a1]
}

fn info(header: &[u8]) -> Vec<u8> {
    let mut info = Vec::with_capacity(REQUEST_LABEL.len() + 1 + header.len());
    info.extend_from_slice(REQUEST_LABEL);
    info.push(0);
    info.extend_from_slice(header);
    info
}
