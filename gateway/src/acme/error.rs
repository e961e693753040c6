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

impl AcmeError {
    /// Whether the CA refused the account itself (RFC 8555 §6.7 `accountDoesNotExist`,
    /// `unauthorized`), so that only a new account can go on.
    pub(crate) fn is_account_problem(&self) -> bool {
        match self {
            Self::Protocol(instant_acme::Error::Api(problem)) => {
                problem.r#type.as_deref().is_some_and(|kind| {
                    kind.ends_with(":accountDoesNotExist") || kind.ends_with(":unauthorized")
                })
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(kind: &str) -> AcmeError {
        let problem: instant_acme::Problem =
            serde_json::from_value(serde_json::json!({ "type": kind, "detail": "x" })).unwrap();
        AcmeError::Protocol(instant_acme::Error::Api(problem))
    }

    #[test]
    fn only_an_account_refusal_makes_a_new_account() {
        assert!(problem("urn:ietf:params:acme:error:accountDoesNotExist").is_account_problem());
        assert!(problem("urn:ietf:params:acme:error:unauthorized").is_account_problem());
        assert!(!problem("urn:ietf:params:acme:error:rateLimited").is_account_problem());
        assert!(!problem("urn:ietf:params:acme:error:connection").is_account_problem());
        assert!(!AcmeError::Timeout.is_account_problem());
        assert!(!AcmeError::Protocol(instant_acme::Error::Str("network")).is_account_problem());
    }
}
