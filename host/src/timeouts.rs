//! The timeouts of both sides, in one place.

use std::time::Duration;

/// Dialing: the enclave (ingress) or an allowed destination (egress).
const CONNECT: Duration = Duration::from_secs(5);
/// The egress preamble, from the accepted connection to its blank line.
const PREAMBLE: Duration = Duration::from_secs(10);
/// How long open connections may go on after a stop was asked.
const GRACE: Duration = Duration::from_secs(10);

/// The timeouts of one side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) preamble: Duration,
    /// Neither end of a pipe sent a byte (`--idle-timeout`).
    pub(crate) idle: Duration,
    pub(crate) grace: Duration,
}

impl Timeouts {
    pub(crate) fn with_idle(idle: Duration) -> Self {
        Self {
            connect: CONNECT,
            preamble: PREAMBLE,
            idle,
            grace: GRACE,
        }
    }
}
