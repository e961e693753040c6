//! The client's error type.

use std::time::Duration;

/// Why a client could not be built, or why attesting or calling the gateway failed.
///
/// The variants follow the order in which a call can fail: the URL, the policy, the TCP
/// connection, the TLS handshake (where attestation runs, before any request byte is written),
/// then HTTP and JSON-RPC. Only [`ClientError::Http`], [`ClientError::InvalidResponse`],
/// [`ClientError::JsonRpc`], [`ClientError::WebSocketClosed`] and possibly
/// [`ClientError::Transport`] and [`ClientError::Timeout`] can happen after the request was sent. [`ClientError::kind`] sorts the variants into the
/// coarse [`ErrorKind`]s a caller usually branches on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The gateway URL is not of the form `https://HOST[:PORT]/CHAIN`.
    #[error("invalid gateway URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The measurement policy is unusable (empty, or a pin or policy file is invalid).
    #[error("{0}")]
    Policy(shroud_ra_tls::Error),
    /// A [`ClientBuilder`](crate::ClientBuilder) option is out of range or contradicts another.
    #[error("invalid client option {option}: {reason}")]
    InvalidOption {
        /// The builder method, e.g. `timeout`.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The TCP connection to the gateway could not be made.
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        /// `host:port` of the gateway.
        authority: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The gateway's evidence was refused: the TLS handshake was aborted and no request byte
    /// was sent. The inner error names the check that failed.
    #[error("gateway not trusted, nothing was sent: attestation failed: {0}")]
    Attestation(shroud_ra_tls::Error),
    /// The gateway's evidence is authentic, but its measurements are not the pinned ones (a
    /// different build, or the wrong pin): the TLS handshake was aborted and no request byte was
    /// sent. Wraps [`shroud_ra_tls::Error::MeasurementMismatch`], which names both sides, or
    /// [`shroud_ra_tls::Error::RuleNotMet`], which names the condition a matching rule lacks.
    #[error("gateway not trusted, nothing was sent: pin mismatch: {0}")]
    PinMismatch(shroud_ra_tls::Error),
    /// The attestation bundle verified, but its OHTTP keys cannot be trusted or used (served
    /// keys that differ from the attested ones, no keys attested, none usable): nothing was
    /// sealed to them. Only the OHTTP channel ([`ObliviousClient`](crate::ObliviousClient)).
    #[error("gateway not trusted, nothing was sent: {0}")]
    Bundle(crate::bundle::BundleError),
    /// Sealing a call or opening its answer failed; an answer that does not open was tampered
    /// with or is not for this call. Only the OHTTP channel.
    #[error("oblivious HTTP: {0}")]
    Ohttp(#[from] crate::ohttp::OhttpError),
    /// The TLS handshake failed for a reason other than attestation.
    #[error("TLS handshake with {authority} failed: {source}")]
    Tls {
        /// `host:port` of the gateway.
        authority: String,
        /// The handshake error (usually wrapping a `rustls::Error`).
        #[source]
        source: std::io::Error,
    },
    /// The attested connection failed after the handshake (HTTP protocol error, connection
    /// closed before the response).
    #[error("connection to the gateway failed: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The gateway closed a WebSocket connection ([`Client::subscribe`](crate::Client::subscribe)),
    /// with the close code and reason it sent: 1013 when this client read its notifications too
    /// slowly, 1001 when the gateway shuts down, 1005 when it sent no code.
    #[error("the gateway closed the WebSocket connection: code {code}{}", body_suffix(.reason))]
    WebSocketClosed {
        /// The close code (RFC 6455 §7.4).
        code: u16,
        /// The close reason, possibly empty.
        reason: String,
    },
    /// The gateway answered with an HTTP error status and no JSON-RPC error.
    #[error("gateway answered HTTP {status}{}", body_suffix(.body))]
    Http {
        /// The HTTP status.
        status: http::StatusCode,
        /// The start of the response body, for the message.
        body: String,
    },
    /// The response is not a JSON-RPC 2.0 response to our request.
    #[error("invalid response from the gateway: {0}")]
    InvalidResponse(String),
    /// The call reached the node (or the gateway's policy) and returned a JSON-RPC error.
    #[error("JSON-RPC error {code}: {message}{}", data_suffix(.data))]
    JsonRpc {
        /// The error code.
        code: i64,
        /// The error message.
        message: String,
        /// The optional `data` member.
        data: Option<serde_json::Value>,
    },
    /// The operation did not finish within the client's timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Fresh evidence ([`Client::attest_fresh`](crate::Client::attest_fresh)) was refused (the
    /// nonce or the key is not bound) or could not be had (HTTP 400, 429, ...).
    #[cfg(feature = "transport")]
    #[error("fresh evidence: {0}")]
    Fresh(FreshError),
}

/// The coarse class of a [`ClientError`]: what failed, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client's own configuration: URL, policy, builder options.
    Config,
    /// TCP: connection refused, unreachable, reset before the handshake.
    Network,
    /// The TLS handshake failed for a reason other than attestation.
    Tls,
    /// The gateway's evidence did not verify (simulated, debug, TCB, forged, not RA-TLS, ...).
    Attestation,
    /// The evidence verified but reports measurements other than the pinned ones.
    PinMismatch,
    /// The attested connection broke, or the answer was not HTTP/JSON-RPC as expected.
    Transport,
    /// The gateway answered with an HTTP error status.
    Http,
    /// The node (or the gateway's policy) answered with a JSON-RPC error.
    JsonRpc,
    /// The operation ran out of time.
    Timeout,
}

impl ErrorKind {
    /// A short lower-case name, e.g. `pin-mismatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Network => "network",
            Self::Tls => "tls",
            Self::Attestation => "attestation",
            Self::PinMismatch => "pin-mismatch",
            Self::Transport => "transport",
            Self::Http => "http",
            Self::JsonRpc => "json-rpc",
            Self::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ClientError {
    /// The attestation error, when the gateway's evidence was refused (including a pin
    /// mismatch).
    pub fn attestation(&self) -> Option<&shroud_ra_tls::Error> {
        match self {
            Self::Attestation(e) | Self::PinMismatch(e) => Some(e),
            _ => None,
        }
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidUrl { .. } | Self::Policy(_) | Self::InvalidOption { .. } => {
                ErrorKind::Config
            }
            Self::Connect { .. } => ErrorKind::Network,
            Self::Tls { .. } => ErrorKind::Tls,
            Self::Attestation(_) | Self::Bundle(_) => ErrorKind::Attestation,
            Self::PinMismatch(_) => ErrorKind::PinMismatch,
            Self::Transport(_)
            | Self::InvalidResponse(_)
            | Self::Ohttp(_)
            | Self::WebSocketClosed { .. } => ErrorKind::Transport,
            Self::Http { .. } => ErrorKind::Http,
            Self::JsonRpc { .. } => ErrorKind::JsonRpc,
            Self::Timeout(_) => ErrorKind::Timeout,
            #[cfg(feature = "transport")]
            Self::Fresh(error) => match error {
                FreshError::NonceMissing { .. }
                | FreshError::NonceMismatch { .. }
                | FreshError::KeyMismatch { .. } => ErrorKind::Attestation,
                _ => ErrorKind::Http,
            },
        }
    }

    /// Sorts a refused attestation bundle like a refused handshake: the certificate's refusal
    /// by [`ClientError::from_refusal`], a bundle that is not JSON as
    /// [`ClientError::InvalidResponse`], untrusted or unusable keys as [`ClientError::Bundle`].
    pub fn from_bundle(error: crate::bundle::BundleError) -> Self {
        use crate::bundle::BundleError;
        match error {
            BundleError::Attestation(refusal) => Self::from_refusal(refusal),
            BundleError::Malformed(reason) => Self::InvalidResponse(reason),
            other => Self::Bundle(other),
        }
    }

    /// Sorts a refusal by the verifier: a measurement mismatch, or a match that fails one of its
    /// rule's conditions, is a [`ClientError::PinMismatch`],
    /// anything else a [`ClientError::Attestation`].
    pub fn from_refusal(refusal: shroud_ra_tls::Error) -> Self {
        match refusal {
            shroud_ra_tls::Error::MeasurementMismatch { .. }
            | shroud_ra_tls::Error::RuleNotMet { .. } => Self::PinMismatch(refusal),
            other => Self::Attestation(other),
        }
    }

    /// Whether nothing of the request can have reached the gateway: the failure happened before
    /// an attested connection existed.
    pub fn nothing_sent(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Config
                | ErrorKind::Network
                | ErrorKind::Tls
                | ErrorKind::Attestation
                | ErrorKind::PinMismatch
        )
    }
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

fn data_suffix(data: &Option<serde_json::Value>) -> String {
    match data {
        Some(data) => format!(" (data: {data})"),
        None => String::new(),
    }
}

/// Why fresh evidence was refused or could not be had.
#[cfg(feature = "transport")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FreshError {
    /// The fresh certificate's claims carry no nonce: the gateway ignored the nonce (an old or
    /// replayed bundle, or a gateway without fresh evidence).
    #[error(
        "nonce not bound: the fresh certificate's claims carry no nonce (sent {sent}); the gateway ignored it"
    )]
    NonceMissing {
        /// The nonce sent, hex.
        sent: String,
    },
    /// The fresh certificate's claims carry a nonce other than the one sent.
    #[error(
        "nonce not bound: the fresh certificate's claims carry nonce {got}, not the nonce sent {sent}"
    )]
    NonceMismatch {
        /// The nonce sent, hex.
        sent: String,
        /// The nonce in the claims, hex.
        got: String,
    },
    /// The fresh certificate is for another key than the one the TLS connection was verified
    /// with.
    #[error(
        "key mismatch: the fresh certificate's key {fresh} is not the key {connection} of the attested TLS connection"
    )]
    KeyMismatch {
        /// SHA-256 of the connection certificate's SPKI, hex.
        connection: String,
        /// SHA-256 of the fresh certificate's SPKI, hex.
        fresh: String,
    },
    /// The gateway refused the request for fresh evidence as malformed (HTTP 400).
    #[error("the gateway refused the nonce request (HTTP 400){}", suffix(.0))]
    BadRequest(String),
    /// Too many requests for fresh evidence (HTTP 429); try again later.
    #[error("rate limited: the gateway answered HTTP 429{}", match .retry_after {
        Some(secs) => format!(", retry after {secs} s"),
        None => String::new(),
    })]
    RateLimited {
        /// The `Retry-After` header, when the gateway sent one.
        retry_after: Option<String>,
    },
    /// Any other HTTP status.
    #[error("the gateway answered HTTP {status} to the nonce request{}", suffix(.detail))]
    Status {
        /// The status.
        status: http::StatusCode,
        /// The start of the body.
        detail: String,
    },
}

#[cfg(feature = "transport")]
fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}
