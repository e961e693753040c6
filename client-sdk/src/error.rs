//! The client's error type.

use std::time::Duration;

/// Why a client could not be built, or why attesting or calling the gateway failed.
///
/// The variants follow the order in which a call can fail: the URL, the policy, the TCP
/// connection, the TLS handshake (where attestation runs, before any request byte is written),
/// then HTTP and JSON-RPC. Only [`ClientError::Http`], [`ClientError::InvalidResponse`],
/// [`ClientError::JsonRpc`] and possibly [`ClientError::Transport`] and [`ClientError::Timeout`]
/// can happen after the request was sent.
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
}

impl ClientError {
    /// The attestation error, when the gateway's evidence was refused.
    pub fn attestation(&self) -> Option<&shroud_ra_tls::Error> {
        match self {
            Self::Attestation(e) => Some(e),
            _ => None,
        }
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
