//! The typed values the gateway runs on, built once from the TOML form by
//! [`Config::settings`](crate::config::Config::settings): URIs parsed, credential headers as
//! sensitive [`HeaderValue`]s, times as [`Duration`]s. Nothing downstream parses or checks a
//! configuration string again, and nothing can hold one of these that was not checked.

use std::time::Duration;

use http::{HeaderMap, Uri};
use serde::Deserialize;

/// `[limits]`, checked: every size and count positive, the JSON depth in range, times as
/// durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Largest request body accepted.
    pub(crate) max_request_bytes: usize,
    /// Most calls in one batch.
    pub(crate) max_batch_len: usize,
    /// Deepest nesting of arrays and objects in a request body.
    pub(crate) max_json_depth: usize,
    /// Largest response to one client request.
    pub(crate) max_response_bytes: usize,
    /// Upstream answer bytes the whole gateway holds at once (at least `max_response_bytes`).
    pub(crate) max_inflight_response_bytes: usize,
    /// Most client connections open at once.
    pub(crate) max_connections: usize,
    /// Most connections open at once from one client.
    pub(crate) max_connections_per_client: usize,
    /// How long a TLS handshake may take, from accept.
    pub(crate) handshake_timeout: Duration,
    /// How long an HTTP/1.1 client may take to send its request headers.
    pub(crate) header_read_timeout: Duration,
    /// How long a client may take to send its request body.
    pub(crate) body_read_timeout: Duration,
    /// Deadline of the whole upstream exchange of one request.
    pub(crate) request_timeout: Duration,
    /// How long a pooled upstream connection may stay idle.
    pub(crate) upstream_idle_timeout: Duration,
    /// Calls per second per client; 0: no rate limiting.
    pub(crate) rate_limit_per_second: u32,
    /// Calls a client may burst above the steady rate (positive when rate limiting is on).
    pub(crate) rate_limit_burst: u32,
    /// Nonce-bound attestation bundles per minute, gateway-wide; 0: none.
    pub(crate) fresh_evidence_per_minute: u32,
    /// Nonce-bound bundles issued at once above the steady rate (positive).
    pub(crate) fresh_evidence_burst: u32,
    /// Most WebSocket connections open at once.
    pub(crate) max_websocket_connections: usize,
    /// Most subscriptions on one WebSocket connection.
    pub(crate) max_subscriptions_per_connection: usize,
    /// Messages queued to one WebSocket client.
    pub(crate) websocket_queue_len: usize,
    /// Bytes queued to one WebSocket client.
    pub(crate) websocket_queue_bytes: usize,
    /// How often a WebSocket client is pinged.
    pub(crate) websocket_ping_interval: Duration,
    /// How long a WebSocket client may stay silent (pongs included).
    pub(crate) websocket_idle_timeout: Duration,
}

/// `[acme]`, checked: an `https://` directory, a `mailto:` contact if any, distinct lower-case
/// DNS names, and the extra roots read from `ca`.
#[derive(Debug, Clone)]
pub(crate) struct AcmeSettings {
    /// The CA's directory URL.
    pub(crate) directory: String,
    /// The account's contact.
    pub(crate) contact: Option<String>,
    /// The certificate's DNS names.
    pub(crate) hosts: Vec<String>,
    /// Roots trusted for the CA's HTTPS besides the web PKI's.
    pub(crate) extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// One `[[chain]]`, checked: a valid, unique name and at least one usable upstream.
#[derive(Debug, Clone)]
pub(crate) struct ChainSettings {
    /// URL-path-safe name, also the `chain` metric label.
    pub(crate) name: String,
    /// The chain id every upstream must report, if checked.
    pub(crate) chain_id: Option<u64>,
    /// The upstreams, in configured order.
    pub(crate) upstreams: Vec<UpstreamSettings>,
    /// Only these methods are relayed, when set.
    pub(crate) allow_methods: Option<Vec<String>>,
    /// Methods never relayed.
    pub(crate) deny_methods: Vec<String>,
    /// How often every upstream is probed.
    pub(crate) health_interval: Duration,
    /// The chain follower behind `eth_subscribe`.
    pub(crate) follower: FollowerSettings,
    /// `[chain.private_tx]`: the relays signed transactions go to instead of the upstreams.
    pub(crate) private_tx: Option<PrivateTxSettings>,
}

/// `[chain.private_tx]`, checked: at least one relay, each like an upstream.
#[derive(Debug, Clone)]
pub(crate) struct PrivateTxSettings {
    /// The relays, in configured order (their labels: name or index).
    pub(crate) relays: Vec<UpstreamSettings>,
    /// What happens when no relay could be reached.
    pub(crate) fallback: PrivateTxFallback,
}

/// `[chain.private_tx] fallback`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrivateTxFallback {
    /// The transaction goes nowhere else; the client gets an error.
    #[default]
    None,
    /// The transaction is broadcast to the chain's public upstreams.
    Public,
}

/// `[chain.subscriptions]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FollowerSettings {
    /// How often the latest block is asked for.
    pub(crate) poll_interval: Duration,
    /// Whether `newPendingTransactions` is served.
    pub(crate) new_pending_transactions: bool,
    /// Blocks remembered (the deepest reorganisation undone).
    pub(crate) reorg_depth: usize,
    /// Most missed blocks fetched to catch up.
    pub(crate) max_catch_up: usize,
    /// How long the follower outlives the chain's last subscription.
    pub(crate) idle_stop: Duration,
}

/// One upstream, checked: an `http(s)://` URI the chain's rules allow, and credential headers
/// the gateway does not set itself.
#[derive(Clone)]
pub(crate) struct UpstreamSettings {
    /// The `upstream` metric label and log name: the configured name, or the index.
    pub(crate) label: String,
    /// The JSON-RPC endpoint (may carry an API key in its path: never logged).
    pub(crate) uri: Uri,
    /// Headers sent to this upstream only, every value marked sensitive.
    pub(crate) credentials: HeaderMap,
    /// Timeout of one exchange.
    pub(crate) timeout: Duration,
    /// Most requests in flight at once (positive).
    pub(crate) max_concurrent: usize,
    /// The WebSocket endpoint (`wss://`, or `ws://` where plain HTTP is allowed), for the chain
    /// follower's own `newHeads` subscription.
    pub(crate) ws: Option<Uri>,
}

impl UpstreamSettings {
    /// Whether the endpoint is plain `http://` (loopback, or allowed for its chain).
    pub(crate) fn is_plain_http(&self) -> bool {
        self.uri.scheme_str() == Some("http")
            || self
                .ws
                .as_ref()
                .is_some_and(|ws| ws.scheme_str() == Some("ws"))
    }
}

impl std::fmt::Debug for UpstreamSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URI and the headers carry credentials.
        f.debug_struct("UpstreamSettings")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// `[cluster]`, checked: the listen address, the peers parsed, the allowed builds as policy
/// rules (each a complete identity), the epoch and the timeout as durations.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSettings {
    /// Where other replicas reach this one.
    pub(crate) listen: std::net::SocketAddr,
    /// The other replicas (DNS names resolved on every attempt).
    pub(crate) peers: Vec<PeerAddress>,
    /// Whether this replica creates the root secret when no peer holds one.
    pub(crate) found: bool,
    /// Builds besides this one's that may share the secret.
    pub(crate) allow: Vec<shroud_ra_tls::policy::AcceptRule>,
    /// Whether simulated replicas may share (development only).
    pub(crate) danger_allow_simulated: bool,
    /// The OHTTP key epoch; `None`: the certificate rotation interval of the platform.
    pub(crate) key_epoch: Option<Duration>,
    /// How long one exchange with a peer may take.
    pub(crate) timeout: Duration,
}

/// One `[cluster] peers` entry: an IP address or a lower-case DNS name, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerAddress {
    /// The IP address (without brackets) or DNS name.
    pub(crate) host: String,
    /// The port.
    pub(crate) port: u16,
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}
