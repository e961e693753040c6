//! The gateway's start-up and serving errors.

use std::net::SocketAddr;

use crate::config::ConfigError;

/// Why the gateway could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Producing evidence or issuing the RA-TLS certificate failed.
    #[error("attestation: {0}")]
    Attestation(#[from] shroud_ra_tls::Error),
    /// A key, CSR or certificate of the gateway's own could not be built.
    #[error("certificate: {0}")]
    Certificate(String),
    /// Collateral for the endorsements extension could not be fetched or does not verify.
    #[error("collateral: {0}")]
    Collateral(String),
    /// Building the upstream HTTP client failed.
    #[error("upstream client: {0}")]
    UpstreamClient(String),
    /// A listener could not be bound.
    #[error("binding the {what} listener on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A Unix socket or vsock listener could not be bound.
    #[error("binding the {what} listener at {path}: {source}")]
    BindPath {
        /// Which listener.
        what: &'static str,
        /// The socket path or port.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Any other I/O error while serving.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Generating the OHTTP keys failed (no randomness).
    #[error("OHTTP keys: {0}")]
    Ohttp(String),
    /// The `[cluster]` part could not start (its listener, or this replica's own identity).
    #[error("[cluster]: {0}")]
    Cluster(String),
    /// The `[listen] h3` (QUIC) listener could not be configured.
    #[error("[listen] h3: {0}")]
    Quic(String),
    /// A start-up task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl GatewayError {
    /// Whether the operator has to fix the configuration or the command line (exit code 64,
    /// `EX_USAGE`), as opposed to a runtime failure.
    pub fn is_usage_error(&self) -> bool {
        matches!(self, Self::Config(_))
    }
}

/// `error` and its sources, `: `-separated: the reason behind "client error (Connect)", such as
/// a TLS alert. Upstream errors name no URL, so this is safe to log.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
