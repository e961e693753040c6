//! The options both clients share (URL, what to trust, timeout, retries) and their one check.
//!
//! [`ClientBuilder`](crate::ClientBuilder) and
//! [`ObliviousClientBuilder`](crate::ObliviousClientBuilder) each hold an [`Options`] plus their
//! own extras, so a pin, a timeout or a retry count means the same thing, and is refused for the
//! same reason, whichever way the calls travel.

use std::time::Duration;

use crate::connect::GatewayUrl;
use crate::{ClientError, Policy};

/// How long one attempt of [`Client::attest`](crate::Client::attest),
/// [`Client::request`](crate::Client::request) or [`Client::batch`](crate::Client::batch) may
/// take (connect, handshake, request, response) unless
/// [`ClientBuilder::timeout`](crate::ClientBuilder::timeout) says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times an idempotent read is retried after a network failure, unless
/// [`ClientBuilder::retries`](crate::ClientBuilder::retries) says otherwise.
pub const DEFAULT_RETRIES: u32 = 2;

/// The most retries [`ClientBuilder::retries`](crate::ClientBuilder::retries) accepts.
pub const MAX_RETRIES: u32 = 10;

/// The options as the builders' setters left them, unchecked.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The gateway URL as given, parsed by [`check`](Self::check).
    pub(crate) url: String,
    /// The measurements to trust as a policy; empty when pins are given instead.
    pub(crate) policy: Policy,
    /// Pins as written on the command line; turned into a policy by [`check`](Self::check).
    pub(crate) pins: Vec<String>,
    /// Whether the simulated TEE is accepted (development only).
    pub(crate) danger_allow_simulated: bool,
    /// Bounds each attempt.
    pub(crate) timeout: Duration,
    /// Retries of idempotent reads.
    pub(crate) retries: u32,
    /// Where to connect instead of resolving the URL's host.
    pub(crate) connect_to: Option<std::net::SocketAddr>,
}

impl Options {
    /// The defaults for `url`: nothing trusted yet, [`DEFAULT_TIMEOUT`], [`DEFAULT_RETRIES`].
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            policy: Policy::default(),
            pins: Vec::new(),
            danger_allow_simulated: false,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            connect_to: None,
        }
    }

    /// Checks the URL, the pins or policy, the timeout and retries, reporting the first problem.
    pub(crate) fn check(self) -> Result<Checked, ClientError> {
        let url = GatewayUrl::parse(&self.url)?;
        let policy = match (self.pins.is_empty(), self.policy.is_empty()) {
            (true, _) => self.policy,
            (false, true) => Policy::from_pins(&self.pins).map_err(ClientError::Policy)?,
            (false, false) => {
                return Err(ClientError::InvalidOption {
                    option: "pin",
                    reason: "pins and a policy cannot be combined; put every acceptable build in the policy".into(),
                });
            }
        };
        let policy = crate::policy::require_non_empty(policy)?;
        if self.timeout.is_zero() {
            return Err(ClientError::InvalidOption {
                option: "timeout",
                reason: "must be more than zero".into(),
            });
        }
        if self.retries > MAX_RETRIES {
            return Err(ClientError::InvalidOption {
                option: "retries",
                reason: format!("{} is more than the maximum {MAX_RETRIES}", self.retries),
            });
        }
        Ok(Checked {
            url,
            policy,
            danger_allow_simulated: self.danger_allow_simulated,
            timeout: self.timeout,
            retries: self.retries,
            connect_to: self.connect_to,
        })
    }
}

/// [`Options`] after [`Options::check`]: the parsed URL and a non-empty policy.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) url: GatewayUrl,
    pub(crate) policy: Policy,
    pub(crate) danger_allow_simulated: bool,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) connect_to: Option<std::net::SocketAddr>,
}
