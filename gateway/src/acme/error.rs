//! [`AcmeError`]: why an order failed.

use crate::error::GatewayError;

use super::schedule::ORDER_TIMEOUT;

/// Why an order failed. The current certificate (if any) keeps being served; the order is
/// retried with backoff.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcmeError {
    /// The CA answered with a problem, or could not be reached.
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    /// An authorization is neither pending nor valid (revoked, expired, deactivated).
    #[error("the authorization of {host} is {status}")]
    Authorization {
        /// The name.
        host: String,
        /// Its status.
        status: String,
    },
    /// The CA offers no TLS-ALPN-01 challenge for a name.
    #[error("the CA offers no tls-alpn-01 challenge for {0}")]
    NoTlsAlpnChallenge(String),
    /// The CA asks to validate a name that is not configured.
    #[error("the CA asks to validate a name that is not in [acme] hosts: {0}")]
    UnexpectedName(String),
    /// The order did not become ready: a challenge failed.
    #[error("the order is {0} after validation (is port 443 of every host this listener?)")]
    NotReady(String),
    /// The certificate returned cannot be served.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The order took longer than [`ORDER_TIMEOUT`].
    #[error("the order took longer than {} s", ORDER_TIMEOUT.as_secs())]
    Timeout,
    /// Building the HTTP client or the CSR failed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}
