//! The cluster protocol inside the mutual RA-TLS channel: one request, one answer, then the
//! connection closes. Fixed, tiny sizes, so every read is exact and bounded.
//!
//! ```text
//! request: version (1) | kind (1: send me the secret, 2: probe)
//! answer:  version (1) | status (0: I hold no secret,
//!                               1: I hold one   + fingerprint (16),
//!                               2: here it is   + fingerprint (16) + secret (32))
//! ```
//!
//! The TLS channel is the encryption: it ends in the two enclaves, each of which has verified
//! the other's evidence before a byte of this is written.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::secret::{FINGERPRINT_LEN, RootSecret, SECRET_LEN};

/// The protocol version, first byte of every message.
const VERSION: u8 = 1;
/// The ALPN protocol id of the cluster channel: a peer's port that is not a cluster listener
/// refuses it at once.
pub(crate) const ALPN: &[u8] = b"shroud-cluster/1";
/// Length of a request.
pub(crate) const REQUEST_LEN: usize = 2;
/// Length of an answer's head.
pub(crate) const ANSWER_HEAD_LEN: usize = 2;

/// What a replica asks a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// Send me the root secret (a replica that has none yet).
    Secret,
    /// Say whether you hold one and which (a replica that holds one, keeping the peer gauge and
    /// noticing two founders).
    Probe,
}

impl Request {
    /// The request's bytes.
    pub(crate) fn encode(self) -> [u8; REQUEST_LEN] {
        let kind = match self {
            Self::Secret => 1,
            Self::Probe => 2,
        };
        [VERSION, kind]
    }

    /// Parses a request.
    pub(crate) fn decode(bytes: [u8; REQUEST_LEN]) -> Result<Request, &'static str> {
        match bytes {
            [VERSION, 1] => Ok(Self::Secret),
            [VERSION, 2] => Ok(Self::Probe),
            [VERSION, _] => Err("unknown request"),
            _ => Err("unknown protocol version"),
        }
    }
}

/// A peer's answer.
#[derive(Debug)]
pub(crate) enum Answer {
    /// It holds no secret yet.
    NotHolding,
    /// It holds the secret of this fingerprint (the answer to a probe).
    Holding([u8; FINGERPRINT_LEN]),
    /// The secret itself (the answer to a request for it).
    Secret(Arc<RootSecret>),
}

const NOT_HOLDING: u8 = 0;
const HOLDING: u8 = 1;
const SECRET: u8 = 2;

impl Answer {
    /// The answer's bytes, wiped when dropped (they may hold the secret).
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            ANSWER_HEAD_LEN + FINGERPRINT_LEN + SECRET_LEN,
        ));
        match self {
            Self::NotHolding => out.extend_from_slice(&[VERSION, NOT_HOLDING]),
            Self::Holding(fingerprint) => {
                out.extend_from_slice(&[VERSION, HOLDING]);
                out.extend_from_slice(fingerprint);
            }
            Self::Secret(secret) => {
                out.extend_from_slice(&[VERSION, SECRET]);
                out.extend_from_slice(&secret.fingerprint());
                out.extend_from_slice(secret.expose());
            }
        }
        out
    }

    /// How many bytes follow an answer's head, or why the head is refused.
    pub(crate) fn body_len(head: [u8; ANSWER_HEAD_LEN]) -> Result<usize, &'static str> {
        match head {
            [VERSION, NOT_HOLDING] => Ok(0),
            [VERSION, HOLDING] => Ok(FINGERPRINT_LEN),
            [VERSION, SECRET] => Ok(FINGERPRINT_LEN + SECRET_LEN),
            [VERSION, _] => Err("unknown status"),
            _ => Err("unknown protocol version"),
        }
    }

    /// Parses an answer from its head and the [`Answer::body_len`] bytes after it. A secret
    /// whose fingerprint does not match it is refused (a corrupted or confused answer).
    pub(crate) fn decode(head: [u8; ANSWER_HEAD_LEN], body: &[u8]) -> Result<Answer, &'static str> {
        if body.len() != Self::body_len(head)? {
            return Err("wrong length");
        }
        let fingerprint = |bytes: &[u8]| -> Result<[u8; FINGERPRINT_LEN], &'static str> {
            bytes
                .get(..FINGERPRINT_LEN)
                .and_then(|f| f.try_into().ok())
                .ok_or("wrong length")
        };
        match head {
            [_, HOLDING] => Ok(Self::Holding(fingerprint(body)?)),
            [_, SECRET] => {
                let claimed = fingerprint(body)?;
                let mut bytes = Zeroizing::new([0_u8; SECRET_LEN]);
                bytes.copy_from_slice(body.get(FINGERPRINT_LEN..).ok_or("wrong length")?);
                let secret = RootSecret::from_bytes(bytes);
                if secret.fingerprint() != claimed {
                    return Err("the secret does not match its fingerprint");
                }
                Ok(Self::Secret(Arc::new(secret)))
            }
            _ => Ok(Self::NotHolding),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_strangers_are_refused() {
        for request in [Request::Secret, Request::Probe] {
            assert_eq!(Request::decode(request.encode()), Ok(request));
        }
        assert!(Request::decode([VERSION, 9]).is_err());
        assert!(Request::decode([b'G', b'E']).is_err());
    }

    fn round_trip(answer: &Answer) -> Answer {
        let bytes = answer.encode();
        let head = [bytes[0], bytes[1]];
        assert_eq!(Answer::body_len(head).unwrap(), bytes.len() - 2);
        Answer::decode(head, &bytes[2..]).unwrap()
    }

    #[test]
    fn answers_round_trip_and_a_damaged_secret_is_refused() {
        assert!(matches!(
            round_trip(&Answer::NotHolding),
            Answer::NotHolding
        ));
        assert!(matches!(
            round_trip(&Answer::Holding([7; FINGERPRINT_LEN])),
            Answer::Holding([7, ..])
        ));
        let secret = RootSecret::generate().unwrap();
        let fingerprint = secret.fingerprint();
        let Answer::Secret(back) = round_trip(&Answer::Secret(Arc::new(secret))) else {
            panic!("a secret");
        };
        assert_eq!(back.fingerprint(), fingerprint);

        let mut bytes = Answer::Secret(back).encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(Answer::decode([bytes[0], bytes[1]], &bytes[2..]).is_err());
        assert!(Answer::decode([VERSION, SECRET], &[0; 3]).is_err());
        assert!(Answer::body_len([VERSION, 3]).is_err());
        assert!(Answer::body_len([2, NOT_HOLDING]).is_err());
    }
}
