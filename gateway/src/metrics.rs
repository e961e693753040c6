//! The metrics of DESIGN §6: the registry and its families. The listener that serves them is
//! `admin.rs`; this module imports nothing above the error type, so everything may count.
//!
//! Every label value is bounded: chain names and upstream labels come from the configuration,
//! methods are the allow-listed names or `other`, outcomes and protocols are fixed strings.
//! Nothing that identifies a client is ever a label.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder as _, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::error::GatewayError;

/// Buckets of the duration histograms, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Every metric family of DESIGN §6, in one registry per gateway.
pub(crate) struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    upstream_requests: IntCounterVec,
    upstream_duration: HistogramVec,
    upstream_healthy: IntGaugeVec,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    rate_limited: IntCounter,
    connections_active: IntGaugeVec,
    tls_handshakes: IntCounterVec,
    ohttp_requests: IntCounterVec,
    attestation_age: Gauge,
    certificate_issued_at: AtomicU64,
    acme_expiry: IntGauge,
    acme_renewals: IntCounterVec,
    subscriptions_active: IntGaugeVec,
    subscription_notifications: IntCounterVec,
    websocket_connections: IntGauge,
    private_tx: IntCounterVec,
    private_tx_fallbacks: IntCounterVec,
    /// With `[cluster]` only: peers by the state of their last exchange, and whether this
    /// replica holds the root secret.
    cluster: Option<ClusterFamilies>,
}

/// The `[cluster]` families.
struct ClusterFamilies {
    peers: IntGaugeVec,
    secret_held: IntGauge,
}

/// The kinds of `shroud_subscriptions_active{kind}`: the `eth_subscribe` kinds served.
pub(crate) const SUBSCRIPTION_KINDS: [&str; 3] = ["newHeads", "logs", "newPendingTransactions"];

/// The states of `shroud_cluster_peers{state}`: a bounded set.
pub(crate) const CLUSTER_PEER_STATES: [&str; 4] =
    ["verified", "refused", "unreachable", "conflict"];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn metric_error(e: prometheus::Error) -> GatewayError {
    GatewayError::Task(format!("metrics: {e}"))
}

impl Metrics {
    /// Registers every family and creates the series known at start (so every family shows up
    /// in the first scrape): `chains` names each chain with its upstreams' labels; `clustered`
    /// adds the `[cluster]` families.
    pub(crate) fn new(
        platform: shroud_ra_tls::Platform,
        chains: &[(&str, Vec<&str>)],
        clustered: bool,
    ) -> Result<Self, GatewayError> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).map_err(metric_error)?;
            registry
                .register(Box::new(c.clone()))
                .map_err(metric_error)?;
            Ok::<_, GatewayError>(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                labels,
            )
            .map_err(metric_error)?;
            registry
                .register(Box::new(h.clone()))
                .map_err(metric_error)?;
            Ok::<_, GatewayError>(h)
        };
        let requests = counter(
            "shroud_requests_total",
            "JSON-RPC calls answered, by chain, method (allow-listed name or other) and outcome.",
            &["chain", "method", "outcome"],
        )?;
        let request_duration = histogram(
            "shroud_request_duration_seconds",
            "Time from a parsed request to its answer.",
            &["chain"],
        )?;
        let upstream_requests = counter(
            "shroud_upstream_requests_total",
            "Exchanges with upstreams (relayed calls and health probes), by outcome.",
            &["chain", "upstream", "outcome"],
        )?;
        let upstream_duration = histogram(
            "shroud_upstream_duration_seconds",
            "Duration of exchanges with upstreams.",
            &["chain", "upstream"],
        )?;
        let upstream_healthy = IntGaugeVec::new(
            Opts::new(
                "shroud_upstream_healthy",
                "1 while the upstream's last health probe or exchange succeeded, else 0 \
                 (not probed yet, failing, or serving another chain).",
            ),
            &["chain", "upstream"],
        )
        .map_err(metric_error)?;
        registry
            .register(Box::new(upstream_healthy.clone()))
            .map_err(metric_error)?;
        let cache_hits = counter(
            "shroud_cache_hits_total",
            "Calls answered from the cache.",
            &["chain"],
        )?;
        let cache_misses = counter(
            "shroud_cache_misses_total",
            "Cacheable calls not found in the cache.",
            &["chain"],
        )?;
        let rate_limited = IntCounter::new(
            "shroud_rate_limited_total",
            "Requests refused by the per-client rate limit.",
        )
        .map_err(metric_error)?;
        registry
            .register(Box::new(rate_limited.clone()))
            .map_err(metric_error)?;
        let connections_active = IntGaugeVec::new(
            Opts::new(
                "shroud_connections_active",
                "Client connections open, by protocol.",
            ),
            &["protocol"],
        )
        .map_err(metric_error)?;
        registry
            .register(Box::new(connections_active.clone()))
            .map_err(metric_error)?;
        let tls_handshakes = counter(
            "shroud_tls_handshakes_total",
            "RA-TLS handshakes, by transport and outcome.",
            &["protocol", "outcome"],
        )?;
        let ohttp_requests = counter(
            "shroud_ohttp_requests_total",
            "Oblivious HTTP requests, by outcome.",
            &["outcome"],
        )?;
        let attestation_age = Gauge::new(
            "shroud_attestation_age_seconds",
            "Age of the evidence in the certificate currently served.",
        )
        .map_err(metric_error)?;
        registry
            .register(Box::new(attestation_age.clone()))
            .map_err(metric_error)?;
        let acme_expiry = IntGauge::new(
            "shroud_acme_certificate_expiry_timestamp_seconds",
            "notAfter of the publicly trusted certificate served ([acme]), unix seconds; 0 \
             before the first is installed.",
        )
        .map_err(metric_error)?;
        registry
            .register(Box::new(acme_expiry.clone()))
            .map_err(metric_error)?;
        let acme_renewals = counter(
            "shroud_acme_renewals_total",
            "ACME orders of the publicly trusted certificate (the first included), by outcome.",
            &["outcome"],
        )?;
        for outcome in ["ok", "error"] {
            acme_renewals.with_label_values(&[outcome]);
        }
        let subscriptions_active = IntGaugeVec::new(
            Opts::new(
                "shroud_subscriptions_active",
                "eth_subscribe subscriptions open on WebSocket connections, by chain and kind.",
            ),
            &["chain", "kind"],
        )
        .map_err(metric_error)?;
        registry
            .register(Box::new(subscriptions_active.clone()))
            .map_err(metric_error)?;
        let subscription_notifications = counter(
            "shroud_subscription_notifications_total",
            "eth_subscription notifications queued to clients, by chain and kind.",
            &["chain", "kind"],
        )?;
        let private_tx = counter(
            "shroud_private_tx_total",
            "Signed transactions submitted to private relays ([chain.private_tx]), by chain, relay \
             (its name or index) and outcome: accepted, already_known, rejected, hash_mismatch, \
             unreachable, timeout, http_error.",
            &["chain", "relay", "outcome"],
        )?;
        let private_tx_fallbacks = counter(
            "shroud_private_tx_fallbacks_total",
            "Signed transactions sent to the public upstreams because no private relay could be \
             reached (fallback = \"public\").",
            &["chain"],
        )?;
        let websocket_connections = IntGauge::new(
            "shroud_websocket_connections_active",
            "WebSocket connections open (upgraded from HTTP/1.1 on the RA-TLS listener).",
        )
        .map_err(metric_error)?;
        registry
            .register(Box::new(websocket_connections.clone()))
            .map_err(metric_error)?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "shroud_build_info",
                "Build information of the running gateway.",
            ),
            &["version", "platform"],
        )
        .map_err(metric_error)?;
        registry
            .register(Box::new(build_info.clone()))
            .map_err(metric_error)?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), platform.as_str()])
            .set(1);

        let cluster = if clustered {
            let peers = IntGaugeVec::new(
                Opts::new(
                    "shroud_cluster_peers",
                    "[cluster] peer addresses by the outcome of this replica's last exchange with \
                     each: verified (mutual RA-TLS succeeded), refused (attestation refused either \
                     way), unreachable (no answer in time), conflict (verified, but holding another \
                     root secret).",
                ),
                &["state"],
            )
            .map_err(metric_error)?;
            registry
                .register(Box::new(peers.clone()))
                .map_err(metric_error)?;
            for state in CLUSTER_PEER_STATES {
                peers.with_label_values(&[state]).set(0);
            }
            let secret_held = IntGauge::new(
                "shroud_cluster_secret_held",
                "1 once this replica holds the cluster's root secret and serves the keys derived \
                 from it, else 0 (it is then not ready).",
            )
            .map_err(metric_error)?;
            registry
                .register(Box::new(secret_held.clone()))
                .map_err(metric_error)?;
            Some(ClusterFamilies { peers, secret_held })
        } else {
            None
        };

        for (chain, upstreams) in chains {
            requests.with_label_values(&[chain, "other", "ok"]);
            request_duration.with_label_values(&[chain]);
            for kind in SUBSCRIPTION_KINDS {
                subscriptions_active.with_label_values(&[chain, kind]);
                subscription_notifications.with_label_values(&[chain, kind]);
            }
            cache_hits.with_label_values(&[chain]);
            cache_misses.with_label_values(&[chain]);
            for upstream in upstreams {
                upstream_requests.with_label_values(&[chain, upstream, "ok"]);
                upstream_duration.with_label_values(&[chain, upstream]);
                upstream_healthy
                    .with_label_values(&[chain, upstream])
                    .set(0);
            }
        }
        for protocol in ["http1", "h2", "h3"] {
            connections_active.with_label_values(&[protocol]);
        }
        tls_handshakes.with_label_values(&["tcp", "ok"]);
        ohttp_requests.with_label_values(&["ok"]);

        Ok(Self {
            registry,
            requests,
            request_duration,
            upstream_requests,
            upstream_duration,
            upstream_healthy,
            cache_hits,
            cache_misses,
            rate_limited,
            connections_active,
            tls_handshakes,
            ohttp_requests,
            attestation_age,
            certificate_issued_at: AtomicU64::new(unix_now()),
            acme_expiry,
            acme_renewals,
            subscriptions_active,
            subscription_notifications,
            websocket_connections,
            private_tx,
            private_tx_fallbacks,
            cluster,
        })
    }

    /// Sets `shroud_cluster_peers` to `counts`, one per state of [`CLUSTER_PEER_STATES`].
    pub(crate) fn cluster_peers(&self, counts: [i64; CLUSTER_PEER_STATES.len()]) {
        if let Some(cluster) = &self.cluster {
            for (state, count) in CLUSTER_PEER_STATES.iter().zip(counts) {
                cluster.peers.with_label_values(&[state]).set(count);
            }
        }
    }

    /// Sets `shroud_cluster_secret_held`.
    pub(crate) fn cluster_secret_held(&self, held: bool) {
        if let Some(cluster) = &self.cluster {
            cluster.secret_held.set(i64::from(held));
        }
    }

    /// One answered call.
    pub(crate) fn call(&self, chain: &str, method_label: &str, outcome: &str) {
        self.requests
            .with_label_values(&[chain, method_label, outcome])
            .inc();
    }

    /// One answered HTTP request to a chain.
    pub(crate) fn request_duration(&self, chain: &str, elapsed: Duration) {
        self.request_duration
            .with_label_values(&[chain])
            .observe(elapsed.as_secs_f64());
    }

    /// One exchange with an upstream.
    pub(crate) fn upstream_exchange(
        &self,
        chain: &str,
        upstream: &str,
        outcome: &str,
        elapsed: Duration,
    ) {
        self.upstream_requests
            .with_label_values(&[chain, upstream, outcome])
            .inc();
        self.upstream_duration
            .with_label_values(&[chain, upstream])
            .observe(elapsed.as_secs_f64());
    }

    /// The `shroud_upstream_healthy` series of one upstream, for the upstream to set wherever
    /// its health changes.
    pub(crate) fn upstream_healthy(&self, chain: &str, upstream: &str) -> IntGauge {
        self.upstream_healthy.with_label_values(&[chain, upstream])
    }

    /// A cache lookup.
    pub(crate) fn cache(&self, chain: &str, hit: bool) {
        let family = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        family.with_label_values(&[chain]).inc();
    }

    /// A refused request.
    pub(crate) fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// A TLS handshake's outcome (`ok`, `failed`, `timeout`).
    pub(crate) fn handshake(&self, outcome: &str) {
        self.tls_handshakes
            .with_label_values(&["tcp", outcome])
            .inc();
    }

    /// A QUIC handshake's outcome (`[listen] h3`), counted apart from TCP's.
    pub(crate) fn quic_handshake(&self, outcome: &str) {
        self.tls_handshakes
            .with_label_values(&["quic", outcome])
            .inc();
    }

    /// An OHTTP request's outcome (`ok`, `unknown_key`, `invalid`, `replayed`, `bad_body`,
    /// `error`).
    pub(crate) fn ohttp(&self, outcome: &str) {
        self.ohttp_requests.with_label_values(&[outcome]).inc();
    }

    /// Counts a connection as open until the guard is dropped.
    pub(crate) fn connection(self: &Arc<Self>, protocol: &'static str) -> ConnectionGuard {
        self.connections_active.with_label_values(&[protocol]).inc();
        ConnectionGuard {
            metrics: Arc::clone(self),
            protocol,
        }
    }

    /// The `shroud_subscriptions_active` gauge of `chain` and `kind` (one of
    /// [`SUBSCRIPTION_KINDS`]).
    pub(crate) fn subscriptions_active(&self, chain: &str, kind: &'static str) -> IntGauge {
        self.subscriptions_active.with_label_values(&[chain, kind])
    }

    /// The `shroud_subscription_notifications_total` counter of `chain` and `kind`.
    pub(crate) fn subscription_notifications(&self, chain: &str, kind: &'static str) -> IntCounter {
        self.subscription_notifications
            .with_label_values(&[chain, kind])
    }

    /// One private relay's outcome for a submitted transaction.
    pub(crate) fn private_tx(&self, chain: &str, relay: &str, outcome: &str) {
        self.private_tx
            .with_label_values(&[chain, relay, outcome])
            .inc();
    }

    /// A transaction sent to the public upstreams after every private relay failed.
    pub(crate) fn private_tx_fallback(&self, chain: &str) {
        self.private_tx_fallbacks.with_label_values(&[chain]).inc();
    }

    /// Counts a WebSocket connection as open until the guard is dropped.
    pub(crate) fn websocket(self: &Arc<Self>) -> WebSocketGuard {
        self.websocket_connections.inc();
        WebSocketGuard(self.websocket_connections.clone())
    }

    /// Records that a certificate with fresh evidence was issued now.
    pub(crate) fn certificate_issued(&self) {
        self.certificate_issued_at
            .store(unix_now(), Ordering::Relaxed);
    }

    /// An ACME order's outcome (`ok`, `error`).
    pub(crate) fn acme_renewal(&self, outcome: &'static str) {
        self.acme_renewals.with_label_values(&[outcome]).inc();
    }

    /// The notAfter of the public certificate now served.
    pub(crate) fn acme_expiry(&self, not_after: u64) {
        self.acme_expiry
            .set(i64::try_from(not_after).unwrap_or(i64::MAX));
    }

    /// The exposition text.
    pub(crate) fn render(&self) -> String {
        let age = unix_now().saturating_sub(self.certificate_issued_at.load(Ordering::Relaxed));
        #[expect(
            clippy::cast_precision_loss,
            reason = "an age in seconds is far below 2^52"
        )]
        self.attestation_age.set(age as f64);
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            tracing::error!("encoding the metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Decrements `shroud_connections_active` when dropped.
pub(crate) struct ConnectionGuard {
    metrics: Arc<Metrics>,
    protocol: &'static str,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics
            .connections_active
            .with_label_values(&[self.protocol])
            .dec();
    }
}

/// Decrements `shroud_websocket_connections_active` when dropped.
pub(crate) struct WebSocketGuard(IntGauge);

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
