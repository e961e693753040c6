//! Why a load run stopped.

use std::io;

/// Everything that ends a run early. A failed request is not one of them: it is counted, and
/// the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A system call of the harness itself failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// A target (gateway, nginx) could not be started or did not become ready.
    #[error("{target}: {reason}")]
    Target {
        /// `gateway` or `nginx`.
        target: &'static str,
        /// What went wrong, with what to do about it where the harness knows.
        reason: String,
    },
    /// A connection to a target could not be opened.
    #[error("connecting to {target}: {reason}")]
    Connect {
        /// The target's name.
        target: String,
        /// The TLS, attestation or socket error.
        reason: String,
    },
    /// Invalid command-line values.
    #[error("{0}")]
    Usage(String),
}

impl LoadError {
    /// An [`LoadError::Io`] with its context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
