//! [`PipelineError`]: everything that can go wrong between accepting a request and answering
//! it, and its one classification ([`PipelineError::class`]) into HTTP status, JSON-RPC code,
//! metric label and log level.

use http::StatusCode;

/// JSON-RPC: invalid JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request object.
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: internal error.
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined server error: the upstream could not answer.
pub(crate) const UPSTREAM_ERROR: i64 = -32000;

/// JSON-RPC: invalid method parameters.
pub(crate) const INVALID_PARAMS: i64 = -32602;

/// JSON-RPC: the method does not exist or is not available (denied by policy).
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// EIP-1474 "limit exceeded": the client's rate limit.
pub(crate) const LIMIT_EXCEEDED: i64 = -32005;

/// Everything that can go wrong between accepting a request and answering it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// No such route.
    #[error("not found")]
    NotFound,
    /// The path names no configured chain.
    #[error("unknown chain {asked}; this gateway serves {served}")]
    UnknownChain {
        /// The name asked for, quoted (or a note when it is no chain name at all).
        asked: String,
        /// The chains served, as `/name` paths.
        served: String,
    },
    /// Known path, wrong HTTP method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `content-type` is not `application/json`.
    #[error("content-type must be application/json")]
    UnsupportedMediaType,
    /// The body exceeds the limit.
    #[error("request body too large: the limit is {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body could not be read (client went away or sent a malformed body).
    #[error("could not read the request body")]
    BodyRead,
    /// The body did not arrive within the body read timeout.
    #[error("request body not received in time")]
    BodyTimeout,
    /// The body is not JSON.
    #[error("parse error")]
    Parse,
    /// JSON, but not a valid JSON-RPC request.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Arrays and objects nested deeper than the limit.
    #[error("invalid request: JSON nested deeper than {max} levels")]
    TooDeep {
        /// The configured limit.
        max: usize,
    },
    /// A batch longer than the limit.
    #[error("invalid request: batch of {len} calls exceeds the limit of {max}")]
    BatchTooLarge {
        /// The batch length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The method is unknown or denied by the chain's policy.
    #[error("method not found or not allowed by this gateway")]
    MethodDenied,
    /// A subscription method over HTTP, where it has no meaning.
    #[error(
        "eth_subscribe and eth_unsubscribe need a WebSocket connection (GET /{{chain}} with Upgrade: websocket), each call on its own; they are not available over HTTP or in a batch"
    )]
    SubscriptionOverHttp,
    /// `eth_subscribe` parameters this gateway does not accept.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// `newPendingTransactions` on a chain that does not serve it.
    #[error(
        "newPendingTransactions is not enabled on this chain (subscriptions.new_pending_transactions)"
    )]
    PendingTransactionsDisabled,
    /// The connection holds as many subscriptions as it may.
    #[error("subscription limit reached: a connection may hold {max} subscriptions")]
    TooManySubscriptions {
        /// The configured limit.
        max: usize,
    },
    /// No private relay could be reached, and the chain's fallback is `none`.
    #[error(
        "no private relay could be reached; the transaction was not sent anywhere else (this chain's private_tx fallback is \"none\"); retry later"
    )]
    PrivateRelaysUnavailable,
    /// A private relay answered another transaction hash than the transaction's own.
    #[error(
        "a private relay answered another transaction hash than the signed transaction's; not trusting it"
    )]
    PrivateRelayHashMismatch,
    /// Every WebSocket slot of the gateway is taken.
    #[error("too many WebSocket connections; retry later")]
    WebSocketLimit,
    /// `GET /{chain}` without a WebSocket upgrade.
    #[error(
        "GET /{{chain}} is for WebSocket (Upgrade: websocket); send JSON-RPC over HTTP with POST"
    )]
    UpgradeRequired,
    /// The client exceeded its rate limit.
    #[error("rate limit exceeded, retry later")]
    RateLimited,
    /// The gateway holds as many upstream answers in memory as it allows.
    #[error("gateway busy: too many large answers in flight, retry later")]
    Overloaded,
    /// No upstream accepted a connection.
    #[error("upstream unavailable: no upstream of this chain could be reached")]
    UpstreamUnavailable,
    /// Every upstream of the chain reports another chain id than the configured `chain_id`.
    #[error("upstream misconfigured: no upstream of this chain serves the configured chain id")]
    UpstreamWrongChain,
    /// The upstream did not answer in time.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The upstream connection failed after the request was sent.
    #[error("upstream connection failed")]
    UpstreamFailed,
    /// The upstream answered something that is not JSON-RPC.
    #[error("upstream returned an invalid response")]
    UpstreamInvalidResponse,
    /// The upstream's answer exceeds the response size limit.
    #[error("upstream response too large: the limit is {max} bytes")]
    UpstreamTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// The upstream answered an HTTP error without a JSON-RPC body.
    #[error("upstream returned HTTP {0}")]
    UpstreamStatus(u16),
    /// The upstream answered the exchange but not this call.
    #[error("upstream returned no answer for this call")]
    UpstreamNoAnswer,
    /// A gateway bug.
    #[error("internal error")]
    Internal,
    /// OHTTP: the request's key id names no key of this gateway (refused before opening).
    #[error("unknown OHTTP key id: fetch /.well-known/ohttp-gateway again")]
    OhttpUnknownKey,
    /// OHTTP: the request is not an encapsulated request this gateway can open.
    #[error("undecryptable OHTTP request")]
    OhttpUndecryptable,
    /// OHTTP: the request was opened before (its encapsulated key was seen in the window).
    #[error("replayed OHTTP request")]
    OhttpReplayed,
    /// OHTTP: the opened request is not binary HTTP (answered sealed).
    #[error("malformed binary HTTP request")]
    OhttpMalformed,
    /// OHTTP: the inner request's date is missing or outside the replay window (answered
    /// sealed).
    #[error("the date header is missing or outside the accepted window")]
    OhttpDate,
    /// OHTTP: sealing the answer failed (a gateway bug).
    #[error("internal error")]
    OhttpSeal,
    /// `GET /.well-known/shroud/attestation?nonce=`: the query is not one nonce of 16 to 64
    /// bytes in hex.
    #[error("invalid nonce: {0}")]
    InvalidNonce(&'static str),
    /// Nonce-bound bundles are issued faster than `[limits] fresh_evidence_per_minute`.
    #[error("too many fresh attestations asked for; retry later")]
    FreshEvidenceLimited,
    /// The TEE did not produce fresh evidence.
    #[error("fresh evidence could not be produced; retry later")]
    FreshEvidenceFailed,
}

/// How an error is reported: every field derives from the one classification in
/// [`PipelineError::class`], so status, code, metric and log level cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// The HTTP status of a response that carries only this error.
    pub status: StatusCode,
    /// The JSON-RPC error code.
    pub code: i64,
    /// The `outcome` metric label.
    pub outcome: &'static str,
    /// The log level.
    pub level: Level,
    /// The `type` of an `application/problem+json` answer (RFC 9457), for the refusals
    /// answered outside JSON-RPC (OHTTP, the attestation endpoint); `None`: a JSON-RPC error
    /// object.
    pub problem: Option<&'static str>,
    /// The `shroud_ohttp_requests_total` outcome when this error ends an OHTTP request before
    /// it is opened.
    pub ohttp: &'static str,
}

/// The log level of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The client's doing: logged at debug.
    Debug,
    /// An upstream's or the load's doing: warn.
    Warn,
    /// A gateway bug: error.
    Error,
    /// Logged where it happened, with what only that place knows (the upstream and the
    /// reason); not again for the request.
    AtSource,
}

impl PipelineError {
    /// The classification of this error: the one table every answer, metric and log line of an
    /// error derives from.
    pub fn class(&self) -> Class {
        use Level::{AtSource, Debug, Error, Warn};
        use StatusCode as S;
        match self {
            Self::NotFound | Self::UnknownChain { .. } => {
                rpc(S::NOT_FOUND, INVALID_REQUEST, "invalid", Debug)
            }
            Self::MethodNotAllowed => rpc(S::METHOD_NOT_ALLOWED, INVALID_REQUEST, "invalid", Debug),
            Self::UnsupportedMediaType => {
                rpc(S::UNSUPPORTED_MEDIA_TYPE, INVALID_REQUEST, "invalid", Debug)
            }
            Self::PayloadTooLarge { .. } => {
                rpc(S::PAYLOAD_TOO_LARGE, INVALID_REQUEST, "limit", Debug)
            }
            Self::BodyRead => rpc(S::BAD_REQUEST, INVALID_REQUEST, "invalid", Debug),
            Self::BodyTimeout => rpc(S::REQUEST_TIMEOUT, INVALID_REQUEST, "limit", Debug),
            Self::RateLimited => rpc(S::TOO_MANY_REQUESTS, LIMIT_EXCEEDED, "rate_limited", Debug),
            // JSON-RPC level failures travel in a 200, as wallets expect.
            Self::Parse => rpc(S::OK, PARSE_ERROR, "invalid", Debug),
            Self::InvalidRequest(_) => rpc(S::OK, INVALID_REQUEST, "invalid", Debug),
            Self::TooDeep { .. } | Self::BatchTooLarge { .. } => {
                rpc(S::OK, INVALID_REQUEST, "limit", Debug)
            }
            Self::MethodDenied | Self::SubscriptionOverHttp => {
                rpc(S::OK, METHOD_NOT_FOUND, "denied", Debug)
            }
            Self::Overloaded => rpc(S::OK, LIMIT_EXCEEDED, "overloaded", Warn),
            Self::InvalidParams(_) | Self::PendingTransactionsDisabled => {
                rpc(S::OK, INVALID_PARAMS, "invalid", Debug)
            }
            Self::TooManySubscriptions { .. } => rpc(S::OK, LIMIT_EXCEEDED, "limit", Debug),
            // Logged per relay where the exchange failed, with the relay's label.
            Self::PrivateRelaysUnavailable | Self::PrivateRelayHashMismatch => {
                rpc(S::OK, UPSTREAM_ERROR, "upstream_error", AtSource)
            }
            Self::WebSocketLimit => rpc(S::SERVICE_UNAVAILABLE, LIMIT_EXCEEDED, "limit", Debug),
            Self::UpgradeRequired => rpc(S::UPGRADE_REQUIRED, INVALID_REQUEST, "invalid", Debug),
            // The transport failure was logged by the exchange that saw it, with its reason.
            Self::UpstreamFailed => rpc(S::OK, UPSTREAM_ERROR, "upstream_error", AtSource),
            Self::UpstreamUnavailable
            | Self::UpstreamWrongChain
            | Self::UpstreamTimeout
            | Self::UpstreamInvalidResponse
            | Self::UpstreamTooLarge { .. }
            | Self::UpstreamStatus(_)
            | Self::UpstreamNoAnswer => rpc(S::OK, UPSTREAM_ERROR, "upstream_error", Warn),
            Self::Internal => rpc(S::OK, INTERNAL_ERROR, "internal_error", Error),
            // Refused before opening: whoever sent them cannot read a sealed answer.
            Self::OhttpUnknownKey => problem(
                S::UNPROCESSABLE_ENTITY,
                shroud_ohttp::PROBLEM_KEY,
                "unknown_key",
                Debug,
            ),
            Self::OhttpUndecryptable => problem(S::BAD_REQUEST, ABOUT_BLANK, "invalid", Debug),
            Self::OhttpReplayed => problem(S::BAD_REQUEST, ABOUT_BLANK, "replayed", Debug),
            // Opened: answered sealed to the client, counted as an answered OHTTP request.
            Self::OhttpMalformed | Self::OhttpDate => {
                problem(S::BAD_REQUEST, ABOUT_BLANK, "ok", Debug)
            }
            Self::OhttpSeal => problem(S::INTERNAL_SERVER_ERROR, ABOUT_BLANK, "error", Error),
            // The attestation endpoint answers outside JSON-RPC too.
            Self::InvalidNonce(_) => problem(S::BAD_REQUEST, ABOUT_BLANK, OHTTP_BAD_BODY, Debug),
            Self::FreshEvidenceLimited => {
                problem(S::TOO_MANY_REQUESTS, ABOUT_BLANK, OHTTP_BAD_BODY, Debug)
            }
            Self::FreshEvidenceFailed => problem(
                S::SERVICE_UNAVAILABLE,
                ABOUT_BLANK,
                OHTTP_BAD_BODY,
                AtSource,
            ),
        }
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.class().status
    }

    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        self.class().code
    }

    /// The `outcome` metric label.
    pub fn outcome(&self) -> &'static str {
        self.class().outcome
    }

    /// Logs the error at its level. Never with anything that identifies the client.
    pub(crate) fn log(&self) {
        match self.class().level {
            Level::Debug => tracing::debug!(error = %self, "request refused"),
            Level::Warn => tracing::warn!(error = %self, "relay failed"),
            Level::Error => tracing::error!(error = %self, "relay failed"),
            Level::AtSource => {}
        }
    }
}

/// The problem type of a refusal that needs no more than its status and title (RFC 9457 §4.2.1).
const ABOUT_BLANK: &str = "about:blank";

/// The outcome of an OHTTP request ended by an error that is not OHTTP's own: its outer body
/// could not be read.
const OHTTP_BAD_BODY: &str = "bad_body";

/// An error answered as a JSON-RPC error object.
const fn rpc(status: StatusCode, code: i64, outcome: &'static str, level: Level) -> Class {
    Class {
        status,
        code,
        outcome,
        level,
        problem: None,
        ohttp: OHTTP_BAD_BODY,
    }
}

/// An OHTTP refusal answered as `application/problem+json` of type `kind`.
const fn problem(
    status: StatusCode,
    kind: &'static str,
    ohttp: &'static str,
    level: Level,
) -> Class {
    Class {
        status,
        code: INVALID_REQUEST,
        outcome: "invalid",
        level,
        problem: Some(kind),
        ohttp,
    }
}
