//! The gateway configuration (DESIGN §6): a TOML file, or [`Config::dev`] for `--dev`.
//!
//! Every table rejects unknown keys, so a typo is a start-up error rather than a silently ignored
//! setting. [`Config::settings`] then parses, once, what serde cannot check (chain names,
//! upstream URLs and the plain-HTTP rule, credential headers, limits) into the typed values of
//! [`crate::settings`] that the gateway runs on; [`Config::validate`] is the same check.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Uri};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Deserialize;

use crate::settings::{
    AcmeSettings, ChainSettings, ClusterSettings, FollowerSettings, Limits, PeerAddress,
    PrivateTxSettings, UpstreamSettings,
};
use crate::transport::{EgressProxy, VsockAddr};

/// Default address of the RA-TLS listener.
pub const DEFAULT_HTTPS_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);
/// Default address of the metrics listener.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);
/// Longest chain name accepted; it is a URL path segment and a metric label.
pub const MAX_CHAIN_NAME_LEN: usize = 64;

/// The whole gateway configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener addresses.
    #[serde(default)]
    pub listen: ListenConfig,
    /// The trusted execution environment to attest with.
    #[serde(default)]
    pub tee: TeeConfig,
    /// The certificate's subject alternative names.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Request, connection and rate limits, and timeouts towards clients.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The response cache for immutable calls.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Oblivious HTTP: replay window and response padding.
    #[serde(default)]
    pub ohttp: OhttpConfig,
    /// Where outbound connections go (default: directly, over TCP).
    #[serde(default)]
    pub egress: EgressConfig,
    /// A publicly trusted certificate for wallets that take only a URL (DESIGN §4.4).
    #[serde(default)]
    pub acme: Option<AcmeConfig>,
    /// Replicas sharing one root secret, and so one set of OHTTP keys (DESIGN §10).
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// The chains served, each at `POST /{name}`.
    #[serde(default, rename = "chain")]
    pub chains: Vec<ChainConfig>,
}

/// `[limits]`: what one client may ask of the gateway. Sizes in bytes, times in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted; larger bodies get HTTP 413.
    pub max_request_bytes: usize,
    /// Most calls in one batch; longer batches get one -32600 error.
    pub max_batch_len: usize,
    /// Deepest nesting of arrays and objects in a request body (the request object and a batch
    /// array count as levels); deeper bodies get one -32600 error before anything else is done.
    pub max_json_depth: usize,
    /// Largest response to one client request, all its upstream exchanges together; answers
    /// past it become -32000 errors, one per call.
    pub max_response_bytes: usize,
    /// Upstream answer bytes the whole gateway holds in memory at once; calls past it get
    /// -32005 ("gateway busy") until memory is released.
    pub max_inflight_response_bytes: usize,
    /// Most client connections open at once. When full, the oldest connection that has not
    /// finished its TLS handshake is closed to make room; if there is none, the new one is.
    pub max_connections: usize,
    /// Most connections open at once from one client address (keyed hash, never logged).
    pub max_connections_per_client: usize,
    /// How long a TLS handshake may take, from accept.
    pub handshake_timeout_ms: u64,
    /// How long an HTTP/1.1 client may take to send its request headers (slowloris).
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send its request body; slower bodies get HTTP 408.
    pub body_read_timeout_ms: u64,
    /// Deadline of the whole upstream exchange of one request, all retries included.
    pub request_timeout_ms: u64,
    /// How long a pooled upstream connection may stay idle before it is closed.
    pub upstream_idle_timeout_ms: u64,
    /// JSON-RPC calls per second allowed per client IP (a batch counts each call); 0 disables
    /// rate limiting. Over the limit: HTTP 429 with a -32005 error.
    pub rate_limit_per_second: u32,
    /// Calls a client may burst above the steady rate.
    pub rate_limit_burst: u32,
    /// Nonce-bound attestation bundles (`?nonce=`) the whole gateway issues per minute: each
    /// costs fresh evidence from the TEE. Over it: HTTP 429. 0 turns the nonce off (429).
    pub fresh_evidence_per_minute: u32,
    /// Nonce-bound bundles that may be issued at once above the steady rate.
    pub fresh_evidence_burst: u32,
    /// Most WebSocket connections open at once (each also counts in `max_connections`); past
    /// it the upgrade is answered HTTP 503 with a -32005 error.
    pub max_websocket_connections: usize,
    /// Most `eth_subscribe` subscriptions one WebSocket connection holds; more get -32005.
    pub max_subscriptions_per_connection: usize,
    /// Messages (answers and notifications) queued to one WebSocket client; a client that lets
    /// its queue fill is closed with 1013 (try again later).
    pub websocket_queue_len: usize,
    /// Bytes queued to one WebSocket client, likewise (a single larger answer still goes out
    /// when the queue is empty).
    pub websocket_queue_bytes: usize,
    /// How often a WebSocket client is pinged.
    pub websocket_ping_interval_ms: u64,
    /// A WebSocket client that sends nothing for this long (not even a pong) is closed.
    pub websocket_idle_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 1024 * 1024,
            max_batch_len: 100,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_response_bytes: 32 * 1024 * 1024,
            max_inflight_response_bytes: 256 * 1024 * 1024,
            max_connections: 10_000,
            max_connections_per_client: 128,
            handshake_timeout_ms: 5_000,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            request_timeout_ms: 30_000,
            upstream_idle_timeout_ms: 90_000,
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            fresh_evidence_per_minute: 60,
            fresh_evidence_burst: 10,
            max_websocket_connections: 10_000,
            max_subscriptions_per_connection: 64,
            websocket_queue_len: 1024,
            websocket_queue_bytes: 8 * 1024 * 1024,
            websocket_ping_interval_ms: 30_000,
            websocket_idle_timeout_ms: 120_000,
        }
    }
}

/// Default of `[limits] max_json_depth`.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;
/// Largest accepted `[limits] max_json_depth`.
pub const MAX_JSON_DEPTH: usize = 256;

/// `[cache]`: answers to immutable calls (`eth_chainId`, `net_version`, lookups by block or
/// transaction hash) served without asking an upstream again.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Whether the cache is used.
    pub enabled: bool,
    /// Most answers kept (all chains together).
    pub max_entries: u64,
    /// Most bytes of keys and answers kept (all chains together); a single answer larger than a
    /// sixteenth of it is not kept.
    pub max_bytes: u64,
    /// How long an answer is kept, in seconds.
    pub ttl_seconds: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
            ttl_seconds: 600,
        }
    }
}

/// `[ohttp]`: the Oblivious HTTP channel (DESIGN §4.3). Its keys are generated in the enclave
/// and rotated with the certificate, the previous generation staying valid until the next one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OhttpConfig {
    /// Accepted distance, in seconds, between a request's `date` header and the gateway's clock;
    /// encapsulated keys (`enc`) are remembered twice as long to refuse replays.
    pub replay_window_secs: u64,
    /// Most `enc` values remembered for replay detection.
    pub replay_cache_capacity: u64,
    /// Sizes, in bytes, that binary HTTP responses are padded up to (the smallest that fits);
    /// larger responses are sent unpadded. Empty: no padding.
    pub padding_buckets: Vec<usize>,
}

impl Default for OhttpConfig {
    fn default() -> Self {
        Self {
            replay_window_secs: 60,
            replay_cache_capacity: 1_000_000,
            padding_buckets: vec![512, 2048, 8192, 32_768, 131_072],
        }
    }
}

/// The methods denied on every chain unless `deny_methods` says otherwise (DESIGN §5): node
/// administration, debugging, key management, mining, mempool inspection, consensus engine.
pub const DEFAULT_DENY_METHODS: [&str; 6] = [
    "admin_*",
    "debug_*",
    "personal_*",
    "miner_*",
    "txpool_*",
    "engine_*",
];

fn default_deny_methods() -> Vec<String> {
    DEFAULT_DENY_METHODS
        .iter()
        .map(|m| (*m).to_owned())
        .collect()
}

fn default_health_check_interval_ms() -> u64 {
    10_000
}

/// Default per-upstream timeout of one exchange, in milliseconds.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 10_000;
/// Default cap on concurrent requests to one upstream.
pub const DEFAULT_UPSTREAM_MAX_CONCURRENT: usize = 256;

/// One entry of a chain's `upstreams`: a bare URL string, or a table with credentials and
/// limits. The URL and credentials are never logged, exported or echoed in errors.
#[derive(Clone, PartialEq, Eq)]
pub enum UpstreamConfig {
    /// `"https://node.example/v1/KEY"`.
    Url(String),
    /// `{ url = "...", name = "a", headers = { "x-api-key" = "..." }, ... }`.
    Table(UpstreamTable),
}

/// The table form of an upstream.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTable {
    /// The JSON-RPC endpoint.
    pub url: String,
    /// The `upstream` metric label and log name (`[a-z0-9_-]`, at most 64); default: the index.
    #[serde(default)]
    pub name: Option<String>,
    /// Extra headers sent to this upstream only (API keys).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as `authorization: Bearer TOKEN` to this upstream only.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Timeout of one exchange with this upstream, in milliseconds (default 10 000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Most requests in flight to this upstream at once (default 256).
    #[serde(default)]
    pub max_concurrent: Option<usize>,
    /// The upstream's WebSocket endpoint (`wss://`, or `ws://` to loopback): the chain follower
    /// then learns of new blocks from one `newHeads` subscription of its own there, besides
    /// polling. Upstreams only; relays ignore it.
    #[serde(default)]
    pub ws: Option<String>,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs and headers carry credentials.
        f.debug_struct("UpstreamConfig")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UpstreamTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTable")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<'de> Deserialize<'de> for UpstreamConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UpstreamConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an upstream URL string or a table with `url`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(UpstreamConfig::Url(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                UpstreamTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(UpstreamConfig::Table)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl From<String> for UpstreamConfig {
    fn from(url: String) -> Self {
        Self::Url(url)
    }
}

impl UpstreamConfig {
    /// The endpoint URL.
    pub fn url(&self) -> &str {
        match self {
            Self::Url(url) => url,
            Self::Table(table) => &table.url,
        }
    }

    /// The configured name, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Url(_) => None,
            Self::Table(table) => table.name.as_deref(),
        }
    }

    /// The credential headers sent to this upstream (`headers`, then `bearer_token`).
    pub fn credential_headers(&self) -> Vec<(String, String)> {
        match self {
            Self::Url(_) => Vec::new(),
            Self::Table(table) => {
                let mut headers: Vec<(String, String)> = table
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect();
                if let Some(token) = &table.bearer_token {
                    headers.push(("authorization".to_owned(), format!("Bearer {token}")));
                }
                headers
            }
        }
    }

    /// The timeout of one exchange.
    pub fn timeout_ms(&self) -> u64 {
        match self {
            Self::Table(UpstreamTable {
                timeout_ms: Some(ms),
                ..
            }) => *ms,
            _ => DEFAULT_UPSTREAM_TIMEOUT_MS,
        }
    }

    /// The WebSocket endpoint, if any.
    pub fn ws(&self) -> Option<&str> {
        match self {
            Self::Url(_) => None,
            Self::Table(table) => table.ws.as_deref(),
        }
    }

    /// The concurrency cap.
    pub fn max_concurrent(&self) -> usize {
        match self {
            Self::Table(UpstreamTable {
                max_concurrent: Some(n),
                ..
            }) => *n,
            _ => DEFAULT_UPSTREAM_MAX_CONCURRENT,
        }
    }
}

/// `[listen]`: where the gateway accepts connections.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// RA-TLS over TCP (HTTP/1.1 and HTTP/2).
    #[serde(default = "default_https", deserialize_with = "ip_port")]
    pub https: SocketAddr,
    /// RA-TLS over QUIC (HTTP/3), a UDP address: the same certificate, routes and limits as
    /// `https`, advertised to TCP clients with `Alt-Svc` (DESIGN §4.1).
    #[serde(default, deserialize_with = "optional_ip_port")]
    pub h3: Option<SocketAddr>,
    /// Prometheus metrics (plain HTTP; keep it on a private interface).
    #[serde(default = "default_metrics", deserialize_with = "ip_port")]
    pub metrics: SocketAddr,
    /// RA-TLS over vsock on this port (inside a Nitro enclave: the only way in, through
    /// `shroud-host ingress` on the parent instance). Linux only.
    #[serde(default)]
    pub vsock: Option<u32>,
    /// RA-TLS over a Unix socket at this path (sidecars, and tests standing in for vsock).
    #[serde(default)]
    pub unix: Option<PathBuf>,
    /// Every client connection, on every listener, starts with a PROXY protocol v2 header
    /// naming the client (from `shroud-host ingress` or an L4 balancer); a connection without
    /// a valid one is closed unanswered. The address keys rate and connection limits, in
    /// enclave memory only: never logged or exported.
    #[serde(default)]
    pub proxy_protocol: bool,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            https: DEFAULT_HTTPS_LISTEN,
            h3: None,
            metrics: DEFAULT_METRICS_LISTEN,
            vsock: None,
            unix: None,
            proxy_protocol: false,
        }
    }
}

/// A listen address: `IP:PORT`, with a message that says so (serde's would only say "invalid
/// socket address syntax").
fn ip_port<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "expected IP:PORT, e.g. \"0.0.0.0:8443\" or \"[::]:8443\" (not a host name), got {text:?}"
        ))
    })
}

fn optional_ip_port<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    ip_port(deserializer).map(Some)
}

fn default_https() -> SocketAddr {
    DEFAULT_HTTPS_LISTEN
}

fn default_metrics() -> SocketAddr {
    DEFAULT_METRICS_LISTEN
}

/// `[tee]`: which attester produces the certificate's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeeConfig {
    /// The platform; `auto` detects it at start.
    #[serde(default)]
    pub platform: TeePlatform,
    /// Where SGX and TDX collateral is fetched: Intel's PCS, or a PCCS (`https://`, or `http://`
    /// to loopback).
    #[serde(default = "default_intel_collateral_url")]
    pub intel_collateral_url: String,
    /// Where the SEV-SNP VCEK is fetched: AMD's KDS (`https://`, or `http://` to loopback).
    #[serde(default = "default_amd_kds_url")]
    pub amd_kds_url: String,
    /// The AMD product (`Milan`, `Genoa`, `Turin`) for reports that do not name it (version 2).
    #[serde(default)]
    pub amd_product: Option<String>,
}

impl Default for TeeConfig {
    fn default() -> Self {
        Self {
            platform: TeePlatform::default(),
            intel_collateral_url: default_intel_collateral_url(),
            amd_kds_url: default_amd_kds_url(),
            amd_product: None,
        }
    }
}

fn default_intel_collateral_url() -> String {
    shroud_ra_tls::attest::collateral::INTEL_PCS_URL.to_owned()
}

fn default_amd_kds_url() -> String {
    shroud_ra_tls::attest::collateral::AMD_KDS_URL.to_owned()
}

impl TeeConfig {
    /// Checks the collateral service URLs: `https://`, or plain `http://` to a loopback host
    /// (a PCCS on the same machine); and the AMD product name.
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("intel_collateral_url", &self.intel_collateral_url),
            ("amd_kds_url", &self.amd_kds_url),
        ] {
            let invalid =
                |reason: &str| ConfigError::Invalid(format!("[tee] {key} {url:?}: {reason}"));
            let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
            let host = uri.host().ok_or_else(|| invalid("the URL has no host"))?;
            match uri.scheme_str() {
                Some("https") => {}
                Some("http") if is_loopback_host(host) => {}
                Some("http") => {
                    return Err(invalid("plain http:// is allowed to loopback hosts only"));
                }
                _ => return Err(invalid("the scheme must be https")),
            }
        }
        if let Some(product) = &self.amd_product
            && !["Milan", "Genoa", "Turin"].contains(&product.as_str())
        {
            return Err(ConfigError::Invalid(format!(
                "[tee] amd_product {product:?}: expected Milan, Genoa or Turin"
            )));
        }
        Ok(())
    }
}

/// The `[tee] platform` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeePlatform {
    /// Detect the platform at start.
    #[default]
    Auto,
    /// AWS Nitro Enclaves.
    Nitro,
    /// Intel TDX.
    Tdx,
    /// AMD SEV-SNP.
    SevSnp,
    /// Intel SGX (Gramine).
    Sgx,
    /// Development only: evidence signed by a per-process key, which proves nothing.
    Simulated,
}

impl TeePlatform {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Nitro => "nitro",
            Self::Tdx => "tdx",
            Self::SevSnp => "sev-snp",
            Self::Sgx => "sgx",
            Self::Simulated => "simulated",
        }
    }
}

impl std::fmt::Display for TeePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[tls]`: what the RA-TLS certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Subject alternative names: DNS names or IP addresses. RA-TLS clients do not check them,
    /// but browsers and generic tools want to see the host they asked for.
    #[serde(default = "default_hosts")]
    pub hosts: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            hosts: default_hosts(),
        }
    }
}

fn default_hosts() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

/// One `[[chain]]`: a name served at `POST /{name}` and the upstreams behind it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// URL-path-safe name (`[a-z0-9_-]`), also the `chain` metric label.
    pub name: String,
    /// The chain id every upstream must report to `eth_chainId`: checked at start and by every
    /// health check (so on recovery too); an upstream reporting another id is not used. `None`
    /// (the default, and `--dev`) skips the check.
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// Upstream JSON-RPC endpoints (`https://`, or `http://` to loopback), as URL strings or
    /// tables. They may carry credentials, so they are never logged or exported.
    pub upstreams: Vec<UpstreamConfig>,
    /// Allows plain `http://` upstreams on non-loopback hosts for this chain.
    #[serde(default)]
    pub allow_insecure_upstream: bool,
    /// When set, only these methods are relayed (`name` or `prefix_*`); the deny list still
    /// applies. It is also the set of method names used as metric labels.
    #[serde(default)]
    pub allow_methods: Option<Vec<String>>,
    /// Methods never relayed (`name` or `prefix_*`); replaces [`DEFAULT_DENY_METHODS`] when set.
    #[serde(default = "default_deny_methods")]
    pub deny_methods: Vec<String>,
    /// How often every upstream is probed with `eth_chainId`, in milliseconds.
    #[serde(default = "default_health_check_interval_ms")]
    pub health_check_interval_ms: u64,
    /// The chain follower behind `eth_subscribe` (WebSocket).
    #[serde(default)]
    pub subscriptions: SubscriptionsConfig,
    /// Private transaction submission: `eth_sendRawTransaction` only to these relays.
    #[serde(default)]
    pub private_tx: Option<PrivateTxConfig>,
}

/// `[chain.private_tx]`: signed transactions go only to private relays (no public mempool),
/// unless every relay fails and `fallback = "public"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateTxConfig {
    /// The relays (`https://`, or `http://` to loopback), URL strings or tables like upstreams.
    pub relays: Vec<UpstreamConfig>,
    /// What happens when no relay could be reached.
    #[serde(default)]
    pub fallback: PrivateTxFallback,
}

pub use crate::settings::PrivateTxFallback;

/// `[chain.subscriptions]`: the chain follower, one per chain, that serves every client's
/// `eth_subscribe` from one view of the chain (DESIGN §4.5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionsConfig {
    /// How often the follower asks an upstream for the latest block, in milliseconds.
    pub poll_interval_ms: u64,
    /// Serve `newPendingTransactions` (the follower then keeps one pending-transaction filter
    /// on its upstream). Off by default: the pending pool is a firehose on busy chains.
    pub new_pending_transactions: bool,
    /// Blocks the follower remembers, with their logs: the deepest reorganisation it can undo
    /// with `"removed": true` logs.
    pub reorg_depth: usize,
    /// Most missed blocks fetched to catch up after a pause or an upstream failover; a longer
    /// gap is skipped (logged), and delivery resumes at the new head.
    pub max_catch_up_blocks: usize,
    /// The follower stops this long after the chain's last subscription ends.
    pub idle_stop_ms: u64,
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1_000,
            new_pending_transactions: false,
            reorg_depth: 64,
            max_catch_up_blocks: 128,
            idle_stop_ms: 60_000,
        }
    }
}

/// `--dev`'s follower poll interval, in milliseconds.
const DEV_POLL_INTERVAL_MS: u64 = 250;

/// Largest `[chain.subscriptions] reorg_depth` and `max_catch_up_blocks`.
pub const MAX_FOLLOWED_BLOCKS: usize = 4096;

impl SubscriptionsConfig {
    /// The checked settings of chain `chain`.
    fn settings(&self, chain: &str) -> Result<FollowerSettings, ConfigError> {
        if self.poll_interval_ms == 0 || self.idle_stop_ms == 0 {
            return Err(ConfigError::Invalid(format!(
                "chain {chain:?}: [chain.subscriptions] poll_interval_ms and idle_stop_ms must be positive"
            )));
        }
        for (key, value) in [
            ("reorg_depth", self.reorg_depth),
            ("max_catch_up_blocks", self.max_catch_up_blocks),
        ] {
            if !(1..=MAX_FOLLOWED_BLOCKS).contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "chain {chain:?}: [chain.subscriptions] {key} must be between 1 and {MAX_FOLLOWED_BLOCKS}"
                )));
            }
        }
        Ok(FollowerSettings {
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            new_pending_transactions: self.new_pending_transactions,
            reorg_depth: self.reorg_depth,
            max_catch_up: self.max_catch_up_blocks,
            idle_stop: Duration::from_millis(self.idle_stop_ms),
        })
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A chain name is empty, too long, reserved or not URL-path-safe.
    #[error(
        "chain name {0:?} is invalid: use 1 to {MAX_CHAIN_NAME_LEN} characters of [a-z0-9_-], not healthz, readyz, ohttp or metrics"
    )]
    InvalidChainName(String),
    /// Two chains share a name.
    #[error("chain {0:?} is configured twice")]
    DuplicateChain(String),
    /// A chain has no upstream.
    #[error("chain {0:?} has no upstreams")]
    NoUpstreams(String),
    /// An upstream URL is not a usable `http(s)://` URL. The URL itself is not repeated (it may
    /// hold credentials).
    #[error("chain {chain:?}: upstream #{index} is invalid: {reason}")]
    InvalidUpstream {
        /// The chain.
        chain: String,
        /// The upstream's position in the chain's list, from 0.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A plain `http://` upstream on a non-loopback host without `allow_insecure_upstream`.
    #[error(
        "chain {chain:?}: upstream #{index} (host {host}) uses plain http:// to a non-loopback host; use https:// or set allow_insecure_upstream = true for this chain"
    )]
    InsecureUpstream {
        /// The chain.
        chain: String,
        /// The upstream's position in the chain's list, from 0.
        index: usize,
        /// The upstream's host.
        host: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// A `--upstream` argument is not `NAME=URL`.
    #[error("--upstream {0:?}: expected NAME=URL")]
    InvalidDevUpstream(String),
}

impl Config {
    /// Parses a TOML configuration and checks it ([`Config::validate`]).
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// The `--dev` configuration: simulated TEE, default TLS hosts, one chain per distinct name
    /// in `upstreams` (`(name, url)` pairs, several URLs per name allowed), chain ids unknown.
    /// Checked, like a file, by [`Config::settings`] when [`crate::Gateway::bind`] takes it.
    pub fn dev(upstreams: Vec<(String, String)>, listen: SocketAddr, metrics: SocketAddr) -> Self {
        let mut chains: Vec<ChainConfig> = Vec::new();
        for (name, url) in upstreams {
            match chains.iter_mut().find(|c| c.name == name) {
                Some(chain) => chain.upstreams.push(UpstreamConfig::Url(url)),
                None => chains.push(ChainConfig {
                    name,
                    chain_id: None,
                    upstreams: vec![UpstreamConfig::Url(url)],
                    allow_insecure_upstream: false,
                    allow_methods: None,
                    deny_methods: default_deny_methods(),
                    health_check_interval_ms: default_health_check_interval_ms(),
                    // A development node is local: following it closely costs nothing.
                    subscriptions: SubscriptionsConfig {
                        poll_interval_ms: DEV_POLL_INTERVAL_MS,
                        ..SubscriptionsConfig::default()
                    },
                    private_tx: None,
                }),
            }
        }
        Self {
            listen: ListenConfig {
                https: listen,
                metrics,
                ..ListenConfig::default()
            },
            tee: TeeConfig {
                platform: TeePlatform::Simulated,
                ..TeeConfig::default()
            },
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            cache: CacheConfig::default(),
            ohttp: OhttpConfig::default(),
            egress: EgressConfig::default(),
            acme: None,
            cluster: None,
            chains,
        }
    }

    /// Parses one `--upstream NAME=URL` argument.
    pub fn parse_dev_upstream(arg: &str) -> Result<(String, String), ConfigError> {
        match arg.split_once('=') {
            Some((name, url)) if !name.is_empty() && !url.is_empty() => {
                Ok((name.to_owned(), url.to_owned()))
            }
            _ => Err(ConfigError::InvalidDevUpstream(arg.to_owned())),
        }
    }

    /// Checks everything [`Config::settings`] checks, keeping nothing.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.clone().settings().map(drop)
    }

    /// Parses the file's form into the typed values the gateway runs on, checking what serde
    /// cannot: chain names, upstream URLs and the plain-HTTP rule, credential headers, limits.
    /// The one place a configuration is checked; `--dev` goes through it too.
    pub(crate) fn settings(self) -> Result<Settings, ConfigError> {
        self.tee.validate()?;
        let mut seen = HashSet::new();
        let mut chains = Vec::with_capacity(self.chains.len());
        for chain in self.chains {
            chains.push(chain.settings(&mut seen)?);
        }
        let limits = self.limits.settings()?;
        if self.cache.enabled && (self.cache.max_bytes == 0 || self.cache.max_entries == 0) {
            return Err(ConfigError::Invalid(
                "[cache] max_bytes and max_entries must be positive (or set enabled = false)"
                    .to_owned(),
            ));
        }
        let egress = self.egress.settings()?.map(Arc::new);
        let acme = self.acme.map(AcmeConfig::settings).transpose()?;
        let cluster = self
            .cluster
            .map(|cluster| cluster.settings(self.tee.platform))
            .transpose()?;
        // The RA-TLS certificate names the public host names too, for tools that look.
        let mut tls_hosts = self.tls.hosts;
        for host in acme.iter().flat_map(|acme| acme.hosts.iter()) {
            if !tls_hosts.contains(host) {
                tls_hosts.push(host.clone());
            }
        }
        Ok(Settings {
            egress,
            acme,
            cluster,
            listen: self.listen,
            tee: self.tee,
            tls_hosts,
            limits,
            cache: self.cache,
            ohttp: self.ohttp,
            chains,
        })
    }
}

/// A checked configuration: what [`Config::settings`] made of the file.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Listener addresses.
    pub(crate) listen: ListenConfig,
    /// The TEE and its collateral services (URLs checked).
    pub(crate) tee: TeeConfig,
    /// The certificate's subject alternative names.
    pub(crate) tls_hosts: Vec<String>,
    /// Request, connection and rate limits.
    pub(crate) limits: Limits,
    /// The response cache.
    pub(crate) cache: CacheConfig,
    /// Oblivious HTTP.
    pub(crate) ohttp: OhttpConfig,
    /// The chains, in configured order.
    pub(crate) chains: Vec<ChainSettings>,
    /// The egress proxy every outbound connection goes through, if any.
    pub(crate) egress: Option<Arc<EgressProxy>>,
    /// The publicly trusted certificate to obtain, if any.
    pub(crate) acme: Option<AcmeSettings>,
    /// The replicas this one shares its root secret with, if any.
    pub(crate) cluster: Option<ClusterSettings>,
}

/// `[acme]`: obtain a publicly trusted certificate for `hosts` from the ACME CA at `directory`,
/// for the enclave's own key, answering TLS-ALPN-01 on the https listener (DESIGN §4.4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's directory URL (`https://`).
    pub directory: String,
    /// The account's contact, `mailto:...`; optional.
    #[serde(default)]
    pub contact: Option<String>,
    /// The DNS names the certificate is for; each must resolve to this gateway's https
    /// listener on port 443 (TLS-ALPN-01 is validated there).
    pub hosts: Vec<String>,
    /// A PEM file of extra roots to trust for the CA's own HTTPS (test CAs); the web PKI roots
    /// are trusted either way.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

/// Most host names in one certificate (Let's Encrypt allows 100).
pub const MAX_ACME_HOSTS: usize = 100;

impl AcmeConfig {
    fn settings(self) -> Result<AcmeSettings, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid(format!("[acme] {reason}"));
        let directory: Uri = self
            .directory
            .parse()
            .map_err(|e| invalid(format!("directory is not a URL: {e}")))?;
        if directory.scheme_str() != Some("https") || directory.host().is_none() {
            return Err(invalid(format!(
                "directory must be an https:// URL, not {:?}",
                self.directory
            )));
        }
        if let Some(contact) = &self.contact
            && !(contact.starts_with("mailto:") && contact.len() > "mailto:".len())
        {
            return Err(invalid(format!(
                "contact must be a mailto: URL, not {contact:?}"
            )));
        }
        if self.hosts.is_empty() {
            return Err(invalid(
                "hosts is empty: name the certificate's DNS names".to_owned(),
            ));
        }
        if self.hosts.len() > MAX_ACME_HOSTS {
            return Err(invalid(format!(
                "hosts has {} names; a certificate holds at most {MAX_ACME_HOSTS}",
                self.hosts.len()
            )));
        }
        let mut hosts = Vec::with_capacity(self.hosts.len());
        for host in &self.hosts {
            let host = host.to_ascii_lowercase();
            if !is_dns_name(&host) {
                return Err(invalid(format!(
                    "host {host:?} is not a DNS name (TLS-ALPN-01 validates DNS names only; no \
                     IP addresses or wildcards)"
                )));
            }
            if hosts.contains(&host) {
                return Err(invalid(format!("host {host:?} is listed twice")));
            }
            hosts.push(host);
        }
        let extra_roots = match &self.ca {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| invalid(format!("ca {}: {e}", path.display())))?;
                parse_roots(&pem)
                    .map_err(|reason| invalid(format!("ca {}: {reason}", path.display())))?
            }
        };
        Ok(AcmeSettings {
            directory: self.directory,
            contact: self.contact,
            hosts,
            extra_roots,
        })
    }
}

/// `[cluster]`: replicas of one build sharing a root secret over mutual RA-TLS, from which every
/// replica derives the same OHTTP keys per epoch (DESIGN §10). Without it, every gateway makes
/// keys of its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Where other replicas reach this one (mutual RA-TLS), `IP:PORT`.
    #[serde(deserialize_with = "ip_port")]
    pub listen: SocketAddr,
    /// The other replicas, `HOST:PORT` each; a DNS name may resolve to many addresses (a
    /// Kubernetes headless Service), and is resolved again on every attempt.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Whether this replica creates the root secret at start (when no peer already holds
    /// one). Exactly one replica of a cluster should; the others wait for it, never making a
    /// secret of their own.
    #[serde(default)]
    pub found: bool,
    /// Builds besides this one's that may join, for rolling upgrades: each entry is one build,
    /// its pins separated by spaces, in the CLI's `platform:field=hex` form (e.g. `"nitro:pcr0=..
    /// nitro:pcr1=.. nitro:pcr2=.."`), pinning a complete identity.
    #[serde(default)]
    pub allow_measurements: Vec<String>,
    /// Development only: simulated replicas may share the secret (with simulated replicas of
    /// the same or an allowed measurement only). Required with `[tee] platform = "simulated"`.
    #[serde(default)]
    pub danger_allow_simulated: bool,
    /// The OHTTP key epoch, in seconds (default: the certificate rotation interval, 12 h, or
    /// 1 h on Nitro). Every replica must use the same length.
    #[serde(default)]
    pub key_epoch_secs: Option<u64>,
    /// How long one exchange with a peer may take (resolving, connecting, the handshake and
    /// the answer), in milliseconds.
    #[serde(default = "default_cluster_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_cluster_timeout_ms() -> u64 {
    5_000
}

/// Most `[cluster] peers` entries.
pub const MAX_CLUSTER_PEERS: usize = 64;
/// Shortest `[cluster] key_epoch_secs`: every epoch costs a certificate with fresh evidence.
pub const MIN_KEY_EPOCH_SECS: u64 = 2;
/// Longest `[cluster] key_epoch_secs` (30 days).
pub const MAX_KEY_EPOCH_SECS: u64 = 30 * 86_400;

impl ClusterConfig {
    fn settings(self, platform: TeePlatform) -> Result<ClusterSettings, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid(format!("[cluster] {reason}"));
        if platform == TeePlatform::Simulated && !self.danger_allow_simulated {
            return Err(invalid(
                "with the simulated TEE replicas prove nothing to each other; set \
                 danger_allow_simulated = true to share the secret anyway (development only)"
                    .to_owned(),
            ));
        }
        if self.peers.len() > MAX_CLUSTER_PEERS {
            return Err(invalid(format!(
                "peers has {} entries; at most {MAX_CLUSTER_PEERS} (a DNS name may stand for many)",
                self.peers.len()
            )));
        }
        let mut peers = Vec::with_capacity(self.peers.len());
        for peer in &self.peers {
            let parsed =
                parse_peer(peer).map_err(|reason| invalid(format!("peer {peer:?}: {reason}")))?;
            if peers.contains(&parsed) {
                return Err(invalid(format!("peer {peer:?} is listed twice")));
            }
            peers.push(parsed);
        }
        if !self.found && peers.is_empty() {
            return Err(invalid(
                "a replica that does not found the cluster (found = false) needs peers to get \
                 the secret from"
                    .to_owned(),
            ));
        }
        let mut allow = Vec::with_capacity(self.allow_measurements.len());
        for entry in &self.allow_measurements {
            let policy = shroud_ra_tls::Policy::from_pins(entry.split_whitespace())
                .map_err(|e| invalid(format!("allow_measurements {entry:?}: {e}")))?;
            let [rule] = policy.rules() else {
                return Err(invalid(format!(
                    "allow_measurements {entry:?}: one entry names one build (pins of one \
                     platform); give each build its own entry"
                )));
            };
            if rule.platform() == shroud_ra_tls::Platform::Simulated && !self.danger_allow_simulated
            {
                return Err(invalid(format!(
                    "allow_measurements {entry:?}: a simulated build needs danger_allow_simulated = true"
                )));
            }
            allow.push(rule.clone());
        }
        let key_epoch = match self.key_epoch_secs {
            None => None,
            Some(secs) if (MIN_KEY_EPOCH_SECS..=MAX_KEY_EPOCH_SECS).contains(&secs) => {
                Some(Duration::from_secs(secs))
            }
            Some(secs) => {
                return Err(invalid(format!(
                    "key_epoch_secs {secs} must be between {MIN_KEY_EPOCH_SECS} and {MAX_KEY_EPOCH_SECS}"
                )));
            }
        };
        if self.timeout_ms == 0 {
            return Err(invalid("timeout_ms must be positive".to_owned()));
        }
        Ok(ClusterSettings {
            listen: self.listen,
            peers,
            found: self.found,
            allow,
            danger_allow_simulated: self.danger_allow_simulated,
            key_epoch,
            timeout: Duration::from_millis(self.timeout_ms),
        })
    }
}

/// `HOST:PORT`: an IPv4 address, a bracketed IPv6 address or a DNS name (one label allowed, as
/// in-cluster names are), and a non-zero port.
fn parse_peer(text: &str) -> Result<PeerAddress, String> {
    const EXPECTED: &str = "expected HOST:PORT, e.g. \"shroud-peers:7443\" or \"[fd00::1]:7443\"";
    let (host, port) = text.rsplit_once(':').ok_or(EXPECTED)?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|port| *port != 0)
        .ok_or(EXPECTED)?;
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: std::net::Ipv6Addr = v6.parse().map_err(|_| EXPECTED)?;
        return Ok(PeerAddress {
            host: ip.to_string(),
            port,
        });
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(PeerAddress {
            host: ip.to_string(),
            port,
        });
    }
    let host = host.to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(EXPECTED.to_owned());
    }
    Ok(PeerAddress { host, port })
}

/// The roots in a PEM file (`[acme] ca`).
fn parse_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let roots = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if roots.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(roots)
}

/// A DNS host name of at least two labels, each 1..=63 characters of `[a-z0-9-]` not starting
/// or ending with `-`, 253 characters at most.
fn is_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        // A name of digits and dots only is an IPv4 address.
        && !labels.iter().all(|label| label.bytes().all(|b| b.is_ascii_digit()))
}

/// `[egress]`: every outbound connection (upstreams, health checks, collateral) through the
/// host's egress proxy (`shroud-host egress`) instead of TCP. Inside a Nitro enclave, which has
/// no network, one of the two is required for anything to leave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// The proxy's vsock address, `"CID:PORT"` (the parent instance is CID 3).
    #[serde(default)]
    pub vsock: Option<String>,
    /// The proxy's Unix socket.
    #[serde(default)]
    pub unix: Option<PathBuf>,
}

impl EgressConfig {
    /// The proxy, if one is configured.
    fn settings(&self) -> Result<Option<EgressProxy>, ConfigError> {
        match (&self.vsock, &self.unix) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(ConfigError::Invalid(
                "[egress] vsock and unix name two proxies; set one".to_owned(),
            )),
            (Some(vsock), None) => vsock
                .parse::<VsockAddr>()
                .map(|addr| Some(EgressProxy::Vsock(addr)))
                .map_err(|reason| ConfigError::Invalid(format!("[egress] vsock: {reason}"))),
            (None, Some(path)) => Ok(Some(EgressProxy::Unix(path.clone()))),
        }
    }
}

impl LimitsConfig {
    /// The checked limits: sizes and counts positive, the JSON depth in range, times as
    /// durations.
    pub(crate) fn settings(&self) -> Result<Limits, ConfigError> {
        let l = self;
        for (key, value) in [
            ("max_request_bytes", l.max_request_bytes as u64),
            ("max_batch_len", l.max_batch_len as u64),
            ("max_response_bytes", l.max_response_bytes as u64),
            (
                "max_inflight_response_bytes",
                l.max_inflight_response_bytes as u64,
            ),
            ("max_connections", l.max_connections as u64),
            (
                "max_connections_per_client",
                l.max_connections_per_client as u64,
            ),
            ("handshake_timeout_ms", l.handshake_timeout_ms),
            ("header_read_timeout_ms", l.header_read_timeout_ms),
            ("body_read_timeout_ms", l.body_read_timeout_ms),
            ("request_timeout_ms", l.request_timeout_ms),
            ("upstream_idle_timeout_ms", l.upstream_idle_timeout_ms),
            (
                "max_websocket_connections",
                l.max_websocket_connections as u64,
            ),
            (
                "max_subscriptions_per_connection",
                l.max_subscriptions_per_connection as u64,
            ),
            ("websocket_queue_len", l.websocket_queue_len as u64),
            ("websocket_queue_bytes", l.websocket_queue_bytes as u64),
            ("websocket_ping_interval_ms", l.websocket_ping_interval_ms),
            ("websocket_idle_timeout_ms", l.websocket_idle_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "[limits] {key} must be positive"
                )));
            }
        }
        if !(3..=MAX_JSON_DEPTH).contains(&l.max_json_depth) {
            return Err(ConfigError::Invalid(format!(
                "[limits] max_json_depth must be between 3 (a batch of calls with params) and {MAX_JSON_DEPTH}"
            )));
        }
        if l.max_inflight_response_bytes < l.max_response_bytes {
            return Err(ConfigError::Invalid(
                "[limits] max_inflight_response_bytes must be at least max_response_bytes"
                    .to_owned(),
            ));
        }
        if l.websocket_idle_timeout_ms <= l.websocket_ping_interval_ms {
            return Err(ConfigError::Invalid(
                "[limits] websocket_idle_timeout_ms must be longer than websocket_ping_interval_ms (a client answering every ping would be closed)".to_owned(),
            ));
        }
        if l.rate_limit_per_second > 0 && l.rate_limit_burst == 0 {
            return Err(ConfigError::Invalid(
                "[limits] rate_limit_burst must be positive when rate limiting is on".to_owned(),
            ));
        }
        Ok(Limits {
            max_request_bytes: l.max_request_bytes,
            max_batch_len: l.max_batch_len,
            max_json_depth: l.max_json_depth,
            max_response_bytes: l.max_response_bytes,
            max_inflight_response_bytes: l.max_inflight_response_bytes,
            max_connections: l.max_connections,
            max_connections_per_client: l.max_connections_per_client,
            handshake_timeout: Duration::from_millis(l.handshake_timeout_ms),
            header_read_timeout: Duration::from_millis(l.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(l.body_read_timeout_ms),
            request_timeout: Duration::from_millis(l.request_timeout_ms),
            upstream_idle_timeout: Duration::from_millis(l.upstream_idle_timeout_ms),
            rate_limit_per_second: l.rate_limit_per_second,
            rate_limit_burst: l.rate_limit_burst,
            fresh_evidence_per_minute: l.fresh_evidence_per_minute,
            fresh_evidence_burst: l.fresh_evidence_burst.max(1),
            max_websocket_connections: l.max_websocket_connections,
            max_subscriptions_per_connection: l.max_subscriptions_per_connection,
            websocket_queue_len: l.websocket_queue_len,
            websocket_queue_bytes: l.websocket_queue_bytes,
            websocket_ping_interval: Duration::from_millis(l.websocket_ping_interval_ms),
            websocket_idle_timeout: Duration::from_millis(l.websocket_idle_timeout_ms),
        })
    }
}

impl ChainConfig {
    /// The checked chain; `seen` holds the names of the chains before it.
    fn settings(self, seen: &mut HashSet<String>) -> Result<ChainSettings, ConfigError> {
        if !is_valid_chain_name(&self.name) {
            return Err(ConfigError::InvalidChainName(self.name));
        }
        if !seen.insert(self.name.clone()) {
            return Err(ConfigError::DuplicateChain(self.name));
        }
        if self.upstreams.is_empty() {
            return Err(ConfigError::NoUpstreams(self.name));
        }
        for pattern in self
            .deny_methods
            .iter()
            .chain(self.allow_methods.iter().flatten())
        {
            if pattern.is_empty() || pattern.trim() != pattern {
                return Err(ConfigError::Invalid(format!(
                    "chain {:?}: method pattern {pattern:?} is empty or has spaces",
                    self.name
                )));
            }
        }
        if self.health_check_interval_ms == 0 {
            return Err(ConfigError::Invalid(format!(
                "chain {:?}: health_check_interval_ms must be positive",
                self.name
            )));
        }
        let upstreams = (0..self.upstreams.len())
            .map(|index| self.upstream(index))
            .collect::<Result<Vec<_>, _>>()?;
        let follower = self.subscriptions.settings(&self.name)?;
        let private_tx = match &self.private_tx {
            None => None,
            Some(private) => {
                if private.relays.is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "chain {:?}: [chain.private_tx] relays is empty; list at least one relay or remove the table",
                        self.name
                    )));
                }
                let what = format!("{} private_tx relays", self.name);
                let relays = (0..private.relays.len())
                    .map(|index| self.endpoint(&private.relays, &what, index))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(PrivateTxSettings {
                    relays,
                    fallback: private.fallback,
                })
            }
        };
        Ok(ChainSettings {
            follower,
            private_tx,
            name: self.name,
            chain_id: self.chain_id,
            upstreams,
            allow_methods: self.allow_methods,
            deny_methods: self.deny_methods,
            health_interval: Duration::from_millis(self.health_check_interval_ms),
        })
    }

    /// The checked upstream `index`.
    fn upstream(&self, index: usize) -> Result<UpstreamSettings, ConfigError> {
        self.endpoint(&self.upstreams, &self.name, index)
    }

    /// The checked endpoint `index` of `list` (the upstreams, or the private relays), `what`
    /// naming the list in errors.
    fn endpoint(
        &self,
        list: &[UpstreamConfig],
        what: &str,
        index: usize,
    ) -> Result<UpstreamSettings, ConfigError> {
        let uri = self.endpoint_uri(list, what, index)?;
        let credentials = self.endpoint_table(list, what, index)?;
        let config = list.get(index);
        Ok(UpstreamSettings {
            label: config
                .and_then(UpstreamConfig::name)
                .map_or_else(|| index.to_string(), str::to_owned),
            uri,
            credentials,
            timeout: Duration::from_millis(
                config.map_or(DEFAULT_UPSTREAM_TIMEOUT_MS, UpstreamConfig::timeout_ms),
            ),
            max_concurrent: config.map_or(
                DEFAULT_UPSTREAM_MAX_CONCURRENT,
                UpstreamConfig::max_concurrent,
            ),
            ws: self.endpoint_ws(list, what, index)?,
        })
    }

    /// The checked WebSocket URI of endpoint `index`: `wss://`, or `ws://` where plain `http://`
    /// would be allowed.
    fn endpoint_ws(
        &self,
        list: &[UpstreamConfig],
        what: &str,
        index: usize,
    ) -> Result<Option<Uri>, ConfigError> {
        let Some(url) = list.get(index).and_then(UpstreamConfig::ws) else {
            return Ok(None);
        };
        let invalid = |reason: &str| ConfigError::InvalidUpstream {
            chain: what.to_owned(),
            index,
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|_| invalid("ws is not a URL (expected wss:// or ws://)"))?;
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(invalid("the ws scheme must be wss or ws")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("ws has no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user:password@ in ws is not supported"));
        }
        if !secure && !self.allow_insecure_upstream && !is_loopback_host(authority.host()) {
            return Err(ConfigError::InsecureUpstream {
                chain: what.to_owned(),
                index,
                host: authority.host().to_owned(),
            });
        }
        Ok(Some(uri))
    }

    /// The parsed and checked URI of upstream `index`.
    pub fn upstream_uri(&self, index: usize) -> Result<Uri, ConfigError> {
        self.endpoint_uri(&self.upstreams, &self.name, index)
    }

    fn endpoint_uri(
        &self,
        list: &[UpstreamConfig],
        what: &str,
        index: usize,
    ) -> Result<Uri, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidUpstream {
            chain: what.to_owned(),
            index,
            reason: reason.to_owned(),
        };
        let url = list
            .get(index)
            .ok_or_else(|| invalid("no such upstream"))?
            .url();
        let uri: Uri = url
            .parse()
            .map_err(|_| invalid("not a URL (expected http:// or https://)"))?;
        let secure = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid(
                "user:password@ in the URL is not supported; put API keys in the path",
            ));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(invalid("the URL has no host"));
        }
        if !secure && !self.allow_insecure_upstream && !is_loopback_host(host) {
            return Err(ConfigError::InsecureUpstream {
                chain: what.to_owned(),
                index,
                host: host.to_owned(),
            });
        }
        Ok(uri)
    }

    /// Checks the table form of upstream `index` (name, credential headers, limits) and returns
    /// its credential headers, every value marked sensitive. Header values are secrets and are
    /// never part of an error.
    fn endpoint_table(
        &self,
        list: &[UpstreamConfig],
        what: &str,
        index: usize,
    ) -> Result<HeaderMap, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidUpstream {
            chain: what.to_owned(),
            index,
            reason,
        };
        let mut credentials = HeaderMap::new();
        let Some(UpstreamConfig::Table(table)) = list.get(index) else {
            return Ok(credentials);
        };
        if let Some(name) = &table.name
            && !is_valid_chain_name(name)
        {
            return Err(invalid(format!(
                "name {name:?} must be 1 to {MAX_CHAIN_NAME_LEN} characters of [a-z0-9_-]"
            )));
        }
        if table.name.is_some()
            && list
                .iter()
                .take(index)
                .any(|u| u.name() == table.name.as_deref())
        {
            return Err(invalid("the name is used twice in this chain".to_owned()));
        }
        for (name, value) in list
            .get(index)
            .map(UpstreamConfig::credential_headers)
            .unwrap_or_default()
        {
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("header name {name:?} is invalid")))?;
            if FIXED_UPSTREAM_HEADERS.contains(&header.as_str()) {
                return Err(invalid(format!(
                    "header {name:?} is set by the gateway and cannot be configured"
                )));
            }
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| invalid(format!("the value of header {name:?} is invalid")))?;
            value.set_sensitive(true);
            credentials.insert(header, value);
        }
        if table.timeout_ms == Some(0) || table.max_concurrent == Some(0) {
            return Err(invalid(
                "timeout_ms and max_concurrent must be positive".to_owned(),
            ));
        }
        Ok(credentials)
    }
}

/// Headers of every upstream request that only the gateway sets.
const FIXED_UPSTREAM_HEADERS: [&str; 8] = [
    "host",
    "content-type",
    "content-length",
    "accept",
    "user-agent",
    "connection",
    "transfer-encoding",
    "te",
];

/// `[a-z0-9_-]{1,64}`, and not the name of another route.
pub fn is_valid_chain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHAIN_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !crate::paths::is_reserved(name)
}

/// `localhost`, 127.0.0.0/8 or ::1 (with or without brackets).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acme_roots_must_be_pem_certificates() {
        assert!(parse_roots(b"").unwrap_err().contains("no PEM certificate"));
        assert!(parse_roots(b"not a certificate").is_err());
        let ca = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let pem = format!("{}{}", ca.pem(), ca.pem());
        assert_eq!(parse_roots(pem.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn loopback_hosts() {
        // The table the SDK's is_loopback_host is tested against too.
        for (host, loopback) in shroud_testkit::hosts::LOOPBACK_CASES {
            assert_eq!(is_loopback_host(host), *loopback, "{host:?}");
        }
    }

    #[test]
    fn chain_names() {
        for name in ["eth", "base-sepolia", "op_main", "1"] {
            assert!(is_valid_chain_name(name), "{name}");
        }
        for name in [
            "",
            "Eth",
            "eth/x",
            "eth.x",
            "healthz",
            "ohttp",
            "ä",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_chain_name(name), "{name}");
        }
    }

    #[test]
    fn dev_groups_upstreams_by_name() {
        let config = Config::dev(
            vec![
                ("eth".into(), "http://127.0.0.1:1".into()),
                ("base".into(), "http://127.0.0.1:2".into()),
                ("eth".into(), "http://127.0.0.1:3".into()),
            ],
            DEFAULT_HTTPS_LISTEN,
            DEFAULT_METRICS_LISTEN,
        );
        assert_eq!(config.chains.len(), 2);
        assert_eq!(config.chains[0].upstreams.len(), 2);
        assert_eq!(config.tee.platform, TeePlatform::Simulated);
        config.validate().unwrap();
    }

    #[test]
    fn dev_upstream_argument() {
        assert_eq!(
            Config::parse_dev_upstream("eth=http://127.0.0.1:8545").unwrap(),
            ("eth".to_owned(), "http://127.0.0.1:8545".to_owned())
        );
        assert!(Config::parse_dev_upstream("eth").is_err());
        assert!(Config::parse_dev_upstream("=http://x").is_err());
    }
}
