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

    /// The URL encapsulated requests are posted to.
    pub fn ohttp_url(&self) -> String {
        format!("{}/{}", self.origin, self.chain)
    }
}

/// A verified gateway: its verdict and the key configuration every call is sealed to, until
/// the verdict expires; then [`Session::reopen`] verifies a fresh bundle with the same policy.
#[derive(Debug, Clone)]
pub struct Session {
    /// The endpoint.
    pub endpoint: Endpoint,
    inner: ohttp::Session,
    policy: Policy,
    allow_simulated: bool,
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
    /// Verifies the bundle body against `policy_toml` at `now_unix_secs`; on success, every
    /// call will be sealed to the first attested X25519 (else P-256) configuration.
    pub fn open(
        endpoint: Endpoint,
        bundle_json: &[u8],
        policy_toml: &str,
        now_unix_secs: f64,
        allow_simulated: bool,
    ) -> Result<Session, SessionError> {
        let policy = Policy::from_toml(policy_toml).map_err(SessionError::Policy)?;
        Self::verify(
            endpoint,
            bundle_json,
            policy,
            now_unix_secs,
            allow_simulated,
        )
    }

    /// Verifies a freshly fetched bundle with this session's policy and options: the session
    /// to seal with once this one's verdict has expired.
    pub fn reopen(&self, bundle_json: &[u8], now_unix_secs: f64) -> Result<Session, SessionError> {
        Self::verify(
            self.endpoint.clone(),
            bundle_json,
            self.policy.clone(),
            now_unix_secs,
            self.allow_simulated,
        )
    }

    fn verify(
        endpoint: Endpoint,
        bundle_json: &[u8],
        policy: Policy,
        now_unix_secs: f64,
        allow_simulated: bool,
    ) -> Result<Session, SessionError> {
        let options = VerifyOptions {
            danger_allow_simulated: allow_simulated,
            ..VerifyOptions::at(unix_time(now_unix_secs)?)
        };
        let verified = AttestationBundle::from_json(bundle_json)?.verify(&policy, &options)?;
        let inner = ohttp::Session::new(verified, &endpoint.chain)?;
        Ok(Session {
            endpoint,
            inner,
            policy,
            allow_simulated,
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
