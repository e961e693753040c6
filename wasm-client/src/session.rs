//! The platform-independent half of [`crate::ShroudClient`]: verify a bundle, seal calls to the
//! attested keys, open the answers. Pure functions over bytes and a clock, so tests run them
//! natively too.

use std::time::Duration;

use shroud_ohttp as ohttp;
use shroud_ohttp::bundle::{AttestationBundle, BundleError, VerifiedBundle};

use shroud_ra_tls::{Policy, UnixTime, VerifyOptions};

/// Why a session could not be opened or a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The gateway URL is not `http(s)://host[:port]/{chain}`.
    #[error("gateway URL must look like https://host[:port]/CHAIN, got {0:?}")]
    Url(String),
    /// The clock passed in is not usable.
    #[error("invalid clock: {}", clock_kind(.0))]
    Clock(f64),
    /// The policy does not parse.
    #[error("policy: {0}")]
    Policy(shroud_ra_tls::Error),
    /// The bundle was refused: nothing is sent to this gateway.
    #[error("gateway refused, nothing was sent: {0}")]
    Bundle(#[from] BundleError),
    /// Sealing or opening failed.
    #[error(transparent)]
    Ohttp(#[from] ohttp::OhttpError),
    /// The gateway answered with an HTTP error inside the encapsulation.
    #[error("gateway answered HTTP {status}: {body}")]
    Http {
        /// The inner status.
        status: u16,
        /// The inner body, as text.
        body: String,
    },
    /// Fresh evidence was asked for (`?nonce=`), but the bundle's claims carry no nonce: the
    /// gateway ignored the request and served evidence that may be of any age.
    #[error(
        "fresh evidence refused, nothing was sent: the bundle's claims carry no nonce (the gateway ignored ?nonce=)"
    )]
    NonceMissing,
    /// The bundle's claims carry a nonce, but not the one this client sent: evidence made for
    /// someone else's request, or replayed.
    #[error(
        "fresh evidence refused, nothing was sent: the bundle's claims carry another nonce than the one sent"
    )]
    NonceMismatch,
    /// No random nonce could be made for fresh evidence.
    #[error("no random nonce for fresh evidence: {0}")]
    Random(String),
    /// The verdict has expired: nothing is sealed before the bundle is verified again.
    #[error(
        "the gateway's verdict expired at {expires_at} (unix seconds); its attestation must be verified again"
    )]
    Expired {
        /// The verdict's expiry, unix seconds.
        expires_at: u64,
    },
    /// A network or JavaScript error.
    #[error("{0}")]
    Transport(String),
}

/// What is wrong with a clock value, in words: printing the number itself would link the
/// float formatter (about 17 KB) into the browser bundle for one error message.
pub fn clock_kind(value: &f64) -> &'static str {
    if value.is_nan() {
        "NaN"
    } else if value.is_infinite() {
        "an infinite value"
    } else if *value < 0.0 {
        "a negative value"
    } else {
        "a value out of range"
    }
}

/// How many random bytes a fresh-evidence nonce has (the gateway accepts 16 to 64).
pub const NONCE_LEN: usize = 32;

/// The nonce a client sends with `?nonce=` to get evidence made for this request (DESIGN §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    /// A nonce from the platform's random source (Web Crypto in a JavaScript host).
    pub fn random() -> Result<Nonce, SessionError> {
        let mut bytes = [0; NONCE_LEN];
        getrandom::fill(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
        Ok(Nonce(bytes))
    }

    /// A nonce of the caller's bytes (tests).
    pub fn from_bytes(bytes: [u8; NONCE_LEN]) -> Nonce {
        Nonce(bytes)
    }

    /// The nonce's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Where a gateway serves a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`.
    pub origin: String,
    /// The chain name, e.g. `eth`.
    pub chain: String,
}

impl Endpoint {
    /// Parses `https://host[:port]/chain` (a trailing slash allowed).
    pub fn parse(url: &str) -> Result<Endpoint, SessionError> {
        let bad = || SessionError::Url(url.to_owned());
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let scheme_len = url.len() - rest.len();
        let (host, path) = rest.split_once('/').ok_or_else(bad)?;
        let chain = path.trim_end_matches('/');
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        };
        if host.is_empty() || !valid(chain) {
            return Err(bad());
        }
        Ok(Endpoint {
            origin: format!("{}{host}", url.get(..scheme_len).unwrap_or("https://")),
            chain: chain.to_owned(),
        })
    }

    /// The attestation bundle URL.
    pub fn bundle_url(&self) -> String {
        format!("{}{}", self.origin, shroud_ohttp::bundle::BUNDLE_PATH)
    }

    /// The attestation bundle URL asking for evidence bound to `nonce` (lower-case hex).
    pub fn fresh_bundle_url(&self, nonce: &Nonce) -> String {
        format!(
            "{}?nonce={}",
            self.bundle_url(),
            hex::encode(nonce.as_bytes())
        )
    }

    /// The URL encapsulated requests are posted to.
    pub fn ohttp_url(&self) -> String {
        format!("{}/{}", self.origin, self.chain)
    }
}

/// A verified gateway: its verdict and the key configuration every call is sealed to, until
/// the verdict expires; then [`Session::reopen`] verifies a fresh bundle with the same policy
/// (and, for a session opened with a nonce, a new nonce).
#[derive(Debug, Clone)]
pub struct Session {
    /// The endpoint.
    pub endpoint: Endpoint,
    inner: ohttp::Session,
    policy: Policy,
    allow_simulated: bool,
    fresh: bool,
}

/// A sealed call, and what opens its answer.
#[derive(Debug)]
pub struct SealedCall(ohttp::SealedCall);

/// Seconds since the epoch from a JavaScript clock value.
pub fn unix_time(now_unix_secs: f64) -> Result<UnixTime, SessionError> {
    Duration::try_from_secs_f64(now_unix_secs)
        .map(UnixTime::since_unix_epoch)
        .map_err(|_| SessionError::Clock(now_unix_secs))
}

impl Session {
    /// Verifies the bundle body against `policy_json` (a policy file's JSON document) at
    /// `now_unix_secs`; on success, every
    /// call will be sealed to the first attested X25519 (else P-256) configuration.
    ///
    /// With `nonce` (the one the bundle was fetched with, [`Endpoint::fresh_bundle_url`]), the
    /// certificate's claims must also carry exactly that nonce, and the session asks for a new
    /// nonce-bound bundle whenever it is verified again.
    pub fn open(
        endpoint: Endpoint,
        bundle_json: &[u8],
        policy_json: &str,
        now_unix_secs: f64,
        allow_simulated: bool,
        nonce: Option<&Nonce>,
    ) -> Result<Session, SessionError> {
        let policy = Policy::from_json(policy_json).map_err(SessionError::Policy)?;
        Self::verify(
            endpoint,
            bundle_json,
            policy,
            now_unix_secs,
            allow_simulated,
            nonce,
        )
    }

    /// Verifies a newly fetched bundle with this session's policy and options: the session to
    /// seal with once this one's verdict has expired. A session opened with a nonce must be
    /// given the new nonce the bundle was fetched with ([`Session::is_fresh`]); without one its
    /// bundle is refused as [`SessionError::NonceMissing`].
    pub fn reopen(
        &self,
        bundle_json: &[u8],
        now_unix_secs: f64,
        nonce: Option<&Nonce>,
    ) -> Result<Session, SessionError> {
        if self.fresh && nonce.is_none() {
            return Err(SessionError::NonceMissing);
        }
        Self::verify(
            self.endpoint.clone(),
            bundle_json,
            self.policy.clone(),
            now_unix_secs,
            self.allow_simulated,
            nonce,
        )
    }

    /// Whether this session was opened with fresh (nonce-bound) evidence, and so asks for it
    /// again when its verdict expires.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    fn verify(
        endpoint: Endpoint,
        bundle_json: &[u8],
        policy: Policy,
        now_unix_secs: f64,
        allow_simulated: bool,
        nonce: Option<&Nonce>,
    ) -> Result<Session, SessionError> {
        let options = VerifyOptions {
            danger_allow_simulated: allow_simulated,
            ..VerifyOptions::at(unix_time(now_unix_secs)?)
        };
        let verified = AttestationBundle::from_json(bundle_json)?.verify(&policy, &options)?;
        if let Some(sent) = nonce {
            match verified.verdict().claims().nonce.as_deref() {
                Some(bound) if bound == sent.as_bytes() => {}
                Some(_) => return Err(SessionError::NonceMismatch),
                None => return Err(SessionError::NonceMissing),
            }
        }
        let inner = ohttp::Session::new(verified, &endpoint.chain)?;
        Ok(Session {
            endpoint,
            inner,
            policy,
            allow_simulated,
            fresh: nonce.is_some(),
        })
    }

    /// Whether the verdict has expired at `now_unix_secs`.
    pub fn is_expired(&self, now_unix_secs: f64) -> Result<bool, SessionError> {
        Ok(unix_time(now_unix_secs)?.as_secs() > self.inner.verified().verdict().expires_at())
    }

    /// The verified bundle.
    pub fn verified(&self) -> &VerifiedBundle {
        self.inner.verified()
    }

    /// Seals one JSON-RPC body as `POST /{chain}` dated `now_unix_secs`; refused once the
    /// verdict has expired ([`SessionError::Expired`]).
    pub fn seal(&self, json_body: &[u8], now_unix_secs: f64) -> Result<SealedCall, SessionError> {
        let date = unix_time(now_unix_secs)?.as_secs();
        let expires_at = self.inner.verified().verdict().expires_at();
        if date > expires_at {
            return Err(SessionError::Expired { expires_at });
        }
        Ok(SealedCall(self.inner.seal(json_body, date)?))
    }
}

impl SealedCall {
    /// The `message/ohttp-req` body.
    pub fn body(&self) -> &[u8] {
        &self.0.body
    }

    /// Opens the gateway's `message/ohttp-res` answer: the JSON-RPC response body. An inner
    /// HTTP error without a JSON-RPC body is [`SessionError::Http`].
    pub fn open(&self, answer: &[u8]) -> Result<Vec<u8>, SessionError> {
        let inner = self.0.open(answer)?;
        if inner.is_json_rpc() {
            Ok(inner.body)
        } else {
            Err(SessionError::Http {
                status: inner.status,
                body: String::from_utf8_lossy(&inner.body).into_owned(),
            })
        }
    }
}
