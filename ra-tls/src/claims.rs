//! The claims buffer: a deterministic CBOR map whose SHA-256 the platform evidence signs.
//!
//! `pubkey-hash` binds the TLS key, `ohttp-keys` the HPKE keys, `iat` the issue time and `nonce`
//! a verifier's challenge. Unknown claims are ignored (the CCC rule), duplicate keys are not.

use ciborium::Value;

use crate::Error;

/// Largest claims buffer the verifier decodes.
pub const MAX_CLAIMS_LEN: usize = 16 * 1024;

/// IANA "Named Information Hash Algorithm" identifiers accepted in `pubkey-hash`.
const HASH_ALG_SHA256: i128 = 1;

/// The claims an attested certificate makes about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// SHA-256 of the certificate's SubjectPublicKeyInfo DER.
    pub pubkey_sha256: [u8; 32],
    /// The exact `application/ohttp-keys` bytes the gateway serves, when it serves any.
    pub ohttp_keys: Option<Vec<u8>>,
    /// Issue time, unix seconds.
    pub iat: Option<u64>,
    /// A verifier's challenge, only in per-request evidence.
    pub nonce: Option<Vec<u8>>,
}

impl Claims {
    /// Claims that bind the key whose SubjectPublicKeyInfo DER is `spki_der`.
    pub fn for_spki(spki_der: &[u8]) -> Self {
        Self {
            pubkey_sha256: crate::sha256(spki_der),
            ohttp_keys: None,
            iat: None,
            nonce: None,
        }
    }

    /// Whether these claims bind the key whose SubjectPublicKeyInfo DER is `spki_der`.
    pub fn binds_spki(&self, spki_der: &[u8]) -> bool {
        // Not secret: both sides are public, a plain comparison is fine.
        self.pubkey_sha256 == crate::sha256(spki_der)
    }

    /// Deterministic CBOR (RFC 8949 §4.2.1): definite lengths, shortest forms, keys in bytewise
    /// order of their encodings, which for text keys is length first, then bytes.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut entries: Vec<(&str, Value)> = Vec::with_capacity(4);
        let hash = encode(&Value::Array(vec![
            Value::Integer(1.into()),
            Value::Bytes(self.pubkey_sha256.to_vec()),
        ]));
        entries.push(("pubkey-hash", Value::Bytes(hash)));
        if let Some(keys) = &self.ohttp_keys {
            entries.push(("ohttp-keys", Value::Bytes(keys.clone())));
        }
        if let Some(iat) = self.iat {
            entries.push(("iat", Value::Integer(iat.into())));
        }
        if let Some(nonce) = &self.nonce {
            entries.push(("nonce", Value::Bytes(nonce.clone())));
        }
        entries.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        encode(&Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::Text(k.to_owned()), v))
                .collect(),
        ))
    }

    /// Decodes a claims buffer, requiring `pubkey-hash` and ignoring unknown claims.
    pub fn from_cbor(buf: &[u8]) -> Result<Self, Error> {
        if buf.len() > MAX_CLAIMS_LEN {
            return Err(Error::TooLarge {
                what: "claims buffer",
                len: buf.len(),
                max: MAX_CLAIMS_LEN,
            });
        }
        let Value::Map(entries) = decode(buf)? else {
            return Err(malformed("not a CBOR map"));
        };
        // Each key once: sorted, a repeated key sits next to itself.
        let mut keys: Vec<&str> = entries.iter().filter_map(|(k, _)| k.as_text()).collect();
        keys.sort_unstable();
        if let Some([key, _]) = keys.windows(2).find(|pair| pair.first() == pair.get(1)) {
            return Err(malformed(&format!("claim {key:?} appears twice")));
        }
        let mut pubkey = None;
        let mut claims = Self {
            pubkey_sha256: [0; 32],
            ohttp_keys: None,
            iat: None,
            nonce: None,
        };
        for (key, value) in entries {
            let Value::Text(key) = key else {
                return Err(malformed("a claim key is not a text string"));
            };
            match (key.as_str(), value) {
                ("pubkey-hash", Value::Bytes(b)) => pubkey = Some(decode_pubkey_hash(&b)?),
                ("ohttp-keys", Value::Bytes(b)) => claims.ohttp_keys = Some(b),
                ("iat", Value::Integer(i)) => {
                    claims.iat = Some(
                        u64::try_from(i)
                            .map_err(|_| malformed("iat is not an unsigned integer"))?,
                    );
                }
                ("nonce", Value::Bytes(b)) => claims.nonce = Some(b),
                ("pubkey-hash" | "ohttp-keys" | "iat" | "nonce", _) => {
                    return Err(malformed(&format!("claim {key:?} has the wrong CBOR type")));
                }
                _ => {} // unknown claims are ignored (CCC interoperable RA-TLS)
            }
        }
        claims.pubkey_sha256 =
            pubkey.ok_or_else(|| malformed("required claim \"pubkey-hash\" is missing"))?;
        Ok(claims)
    }
}

/// `pubkey-hash` = bstr(cbor [hash-alg-id, hash]); only SHA-256 (id 1) is accepted.
fn decode_pubkey_hash(buf: &[u8]) -> Result<[u8; 32], Error> {
    let Value::Array(items) = decode(buf)? else {
        return Err(malformed("pubkey-hash is not a CBOR array"));
    };
    match items.as_slice() {
        [Value::Integer(alg), Value::Bytes(hash)] => {
            if i128::from(*alg) != HASH_ALG_SHA256 {
                return Err(malformed(&format!(
                    "pubkey-hash uses hash algorithm {}, only SHA-256 (1) is accepted",
                    i128::from(*alg)
                )));
            }
            <[u8; 32]>::try_from(hash.as_slice())
                .map_err(|_| malformed("pubkey-hash is not 32 bytes"))
        }
        _ => Err(malformed("pubkey-hash is not [alg, hash]")),
    }
}

fn malformed(what: &str) -> Error {
    Error::MalformedClaims(what.to_owned())
}

pub(crate) fn encode(value: &Value) -> Vec<u8> {
    crate::cbor::encode(value)
}

/// Decodes exactly one CBOR item, rejecting trailing bytes.
pub(crate) fn decode(buf: &[u8]) -> Result<Value, Error> {
    crate::cbor::decode(buf, 16).map_err(|e| Error::MalformedEvidence(format!("invalid CBOR: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_deterministic() {
        let mut claims = Claims::for_spki(b"spki");
        claims.iat = Some(1_700_000_000);
        claims.nonce = Some(vec![7; 16]);
        claims.ohttp_keys = Some(vec![1, 2, 3]);
        let cbor = claims.to_cbor();
        assert_eq!(Claims::from_cbor(&cbor), Ok(claims.clone()));
        assert_eq!(cbor, claims.to_cbor());
        // Keys in deterministic order: iat, nonce, ohttp-keys, pubkey-hash.
        let Value::Map(entries) = decode(&cbor).unwrap() else {
            panic!("not a map")
        };
        let keys: Vec<_> = entries
            .iter()
            .map(|(k, _)| k.as_text().unwrap().to_owned())
            .collect();
        assert_eq!(keys, ["iat", "nonce", "ohttp-keys", "pubkey-hash"]);
    }

    #[test]
    fn ignores_unknown_claims_but_requires_pubkey_hash() {
        let with_unknown = encode(&Value::Map(vec![
            (
                Value::Text("key_0".into()),
                Value::Bytes(b"value_0".to_vec()),
            ),
            (
                Value::Text("pubkey-hash".into()),
                Value::Bytes(encode(&Value::Array(vec![
                    Value::Integer(1.into()),
                    Value::Bytes(vec![9; 32]),
                ]))),
            ),
        ]));
        assert_eq!(
            Claims::from_cbor(&with_unknown).unwrap().pubkey_sha256,
            [9; 32]
        );
        let without = encode(&Value::Map(vec![(
            Value::Text("iat".into()),
            Value::Integer(1.into()),
        )]));
        assert!(matches!(
            Claims::from_cbor(&without),
            Err(Error::MalformedClaims(_))
        ));
    }

    #[test]
    fn rejects_duplicate_keys_other_hashes_and_trailing_bytes() {
        let hash = encode(&Value::Array(vec![
            Value::Integer(1.into()),
            Value::Bytes(vec![0; 32]),
        ]));
        let dup = encode(&Value::Map(vec![
            (
                Value::Text("pubkey-hash".into()),
                Value::Bytes(hash.clone()),
            ),
            (
                Value::Text("pubkey-hash".into()),
                Value::Bytes(hash.clone()),
            ),
        ]));
        assert!(Claims::from_cbor(&dup).is_err());
        let sha384 = encode(&Value::Array(vec![
            Value::Integer(7.into()),
            Value::Bytes(vec![0; 48]),
        ]));
        let other = encode(&Value::Map(vec![(
            Value::Text("pubkey-hash".into()),
            Value::Bytes(sha384),
        )]));
        assert!(Claims::from_cbor(&other).is_err());
        let mut trailing = Claims::for_spki(b"k").to_cbor();
        trailing.push(0);
        assert!(Claims::from_cbor(&trailing).is_err());
    }
}
