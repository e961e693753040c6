//! The metrics of DESIGN §6 and the metrics listener (`GET /metrics`, `/healthz`, `/readyz`).
//!
//! Every label value is bounded: chain names and upstream labels come from the configuration,
//! methods are the allow-listed names or `other`, outcomes and protocols are fixed strings.
//! Nothing that identifies a client is ever a label.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{
    Encoder as _, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::error::GatewayError;
use crate::pipeline::PipelineError;
use crate::pipeline::respond::{self, Body};
use crate::upstream::Chain;

/// Most connections the metrics listener serves at once; more are closed at accept. A scraper
/// needs one or two, and the rest of the gateway needs the descriptors.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// How long a metrics client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one metrics connection may stay open.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// The Prometheus text exposition content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
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
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    rate_limited: IntCounter,
    connections_active: IntGaugeVec,
    tls_handshakes: IntCounterVec,
    ohttp_requests: IntCounterVec,
    attestation_age: Gauge,
    certificate_issued_at: AtomicU64,
}

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
    /// in the first scrape).
    pub(crate) fn new(
        platform: shroud_ra_tls::Platform,
        chains: &[Arc<Chain>],
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

        for chain in chains {
            requests.with_label_values(&[chain.name.as_str(), "other", "ok"]);
            request_duration.with_label_values(&[chain.name.as_str()]);
            cache_hits.with_label_values(&[chain.name.as_str()]);
            cache_misses.with_label_values(&[chain.name.as_str()]);
            for upstream in &chain.upstreams {
                let labels = [chain.name.as_str(), upstream.label.as_str()];
                upstream_requests.with_label_values(&[labels[0], labels[1], "ok"]);
                upstream_duration.with_label_values(&labels);
            }
        }
        for protocol in ["http1", "h2"] {
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
            cache_hits,
            cache_misses,
            rate_limited,
            connections_active,
            tls_handshakes,
            ohttp_requests,
            attestation_age,
            certificate_issued_at: AtomicU64::new(unix_now()),
        })
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

    /// Records that a certificate with fresh evidence was issued now.
    pub(crate) fn certificate_issued(&self) {
        self.certificate_issued_at
            .store(unix_now(), Ordering::Relaxed);
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `/readyz`: 200 when every chain has a usable upstream, else 503.
pub(crate) fn readiness(chains: &[Arc<Chain>]) -> Response<Body> {
    if chains.iter().all(|chain| chain.is_ready()) {
        respond::text_response(StatusCode::OK, "text/plain; charset=utf-8", "ready")
    } else {
        respond::text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "not ready: a chain has no healthy upstream",
        )
    }
}

fn route<B>(metrics: &Metrics, chains: &[Arc<Chain>], request: &Request<B>) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            respond::text_response(StatusCode::OK, CONTENT_TYPE, metrics.render())
        }
        (&Method::GET, "/healthz") => {
            respond::text_response(StatusCode::OK, "text/plain; charset=utf-8", "ok")
        }
        (&Method::GET, "/readyz") => readiness(chains),
        (_, "/metrics" | "/healthz" | "/readyz") => {
            respond::error_response(&PipelineError::MethodNotAllowed)
        }
        _ => respond::error_response(&PipelineError::NotFound),
    }
}

/// Serves the metrics listener (plain HTTP/1.1) until `shutdown` turns true: at most
/// [`MAX_CONNECTIONS`] at once, each with a header timeout and a bounded lifetime.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    chains: Arc<[Arc<Chain>]>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = crate::gateway::AcceptBackoff::default();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    backoff.reset();
                    stream
                }
                Err(error) => {
                    backoff.wait("metrics", &error).await;
                    continue;
                }
            },
            () = crate::gateway::stopped(&mut shutdown) => return,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("metrics connection limit reached; closing a new connection");
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let chains = Arc::clone(&chains);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request| {
                let response = route(&metrics, &chains, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "metrics connection ended with an error");
                    }
                }
                () = tokio::time::sleep(CONNECTION_LIFETIME) => {
                    tracing::debug!("metrics connection open too long; closing it");
                }
                () = crate::gateway::stopped(&mut shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
