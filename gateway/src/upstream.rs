//! The upstream side: one pooled HTTP client shared by every client of the gateway, the
//! configured chains with their upstreams, each upstream's health, and the health checker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use prometheus::IntGauge;
use tokio::sync::{Semaphore, watch};

use crate::config::Settings;
use crate::egress::{HttpClient, https_client};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::pipeline::policy::MethodPolicy;
use crate::pipeline::strip::{GatewayId, UpstreamBody};
use crate::settings::{ChainSettings, UpstreamSettings};

/// The fixed `user-agent` of every upstream request; never the client's.
pub(crate) const USER_AGENT: &str = concat!("shroud-gateway/", env!("CARGO_PKG_VERSION"));
/// Largest health-check answer read.
const MAX_HEALTH_ANSWER: usize = 64 * 1024;

/// What the gateway currently believes about an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// Not probed yet; used, but it only counts as ready when the chain has no `chain_id`.
    Unknown = 0,
    /// The last probe (and the last exchange) succeeded.
    Healthy = 1,
    /// The last probe or exchange failed to connect or timed out; used only as a last resort.
    Unhealthy = 2,
    /// It reports another chain id; never used until a probe sees the right one.
    WrongChain = 3,
}

impl Health {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Healthy,
            2 => Self::Unhealthy,
            3 => Self::WrongChain,
            _ => Self::Unknown,
        }
    }
}

/// One configured upstream. The URI and the credential headers are secrets: never logged,
/// never exported; logs and metrics use `label`.
pub(crate) struct Upstream {
    /// The `upstream` metric label: the configured name, or the index.
    pub(crate) label: String,
    uri: Uri,
    credentials: HeaderMap,
    /// Timeout of one exchange.
    pub(crate) timeout: Duration,
    /// Caps the requests in flight to this upstream.
    pub(crate) permits: Semaphore,
    health: AtomicU8,
    /// `shroud_upstream_healthy` of this upstream, once the health checker has bound it.
    healthy_gauge: OnceLock<IntGauge>,
    /// The WebSocket endpoint, a secret like `uri`.
    ws: Option<Uri>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("label", &self.label)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The current health.
    pub(crate) fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Relaxed))
    }

    /// Sets the health and returns the previous one.
    pub(crate) fn set_health(&self, health: Health) -> Health {
        let previous = Health::from_u8(self.health.swap(health as u8, Ordering::Relaxed));
        self.publish_health();
        previous
    }

    /// Binds this upstream's `shroud_upstream_healthy` series, which from now on follows every
    /// change of the health.
    pub(crate) fn bind_healthy_gauge(&self, gauge: IntGauge) {
        let _ = self.healthy_gauge.set(gauge);
        self.publish_health();
    }

    /// Writes the current health to the gauge (1 only when healthy). It reads the state after
    /// the caller changed it, so a racing probe and exchange leave at worst a stale value that
    /// the next probe, which always publishes, corrects.
    fn publish_health(&self) {
        if let Some(gauge) = self.healthy_gauge.get() {
            gauge.set(i64::from(self.health() == Health::Healthy));
        }
    }

    /// Marks a failed exchange: a healthy or unknown upstream becomes unhealthy (a wrong-chain
    /// one stays so). The health checker brings it back.
    pub(crate) fn mark_failed(&self, chain: &str) {
        let _ = self
            .health
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                (h != Health::WrongChain as u8).then_some(Health::Unhealthy as u8)
            })
            .inspect(|previous| {
                if *previous != Health::Unhealthy as u8 {
                    tracing::warn!(chain, upstream = %self.label, "upstream marked unhealthy");
                }
            });
        self.publish_health();
    }

    /// The upstream request, from scratch: method, URI, body, the fixed headers and this
    /// upstream's own credentials. The client library adds `host` and `content-length`; nothing
    /// of the client's request is copied, and the body can only be sanitised calls.
    pub(crate) fn request(&self, body: UpstreamBody) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body.into_bytes()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        for (name, value) in &self.credentials {
            headers.insert(name.clone(), value.clone());
        }
        request
    }
}

impl Upstream {
    /// The WebSocket handshake request to this upstream's `ws` endpoint, built like the HTTP
    /// requests: the fixed user agent and this upstream's credentials, nothing else.
    pub(crate) fn websocket_request(&self) -> Option<Request<()>> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request = self.ws.clone()?.into_client_request().ok()?;
        let headers = request.headers_mut();
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        for (name, value) in &self.credentials {
            headers.insert(name.clone(), value.clone());
        }
        Some(request)
    }

    /// Whether the upstream has a WebSocket endpoint.
    pub(crate) fn has_websocket(&self) -> bool {
        self.ws.is_some()
    }
}

/// A configured chain: its name, chain id, method policy and upstreams.
#[derive(Debug)]
pub(crate) struct Chain {
    /// The chain name (the route and the metric label).
    pub(crate) name: String,
    /// The same, shared by cache keys.
    pub(crate) name_arc: Arc<str>,
    /// The chain id every upstream must report, when configured.
    pub(crate) chain_id: Option<u64>,
    /// Which methods are relayed, and which are metric labels.
    pub(crate) policy: MethodPolicy,
    /// The upstreams, in configuration order.
    pub(crate) upstreams: Vec<Upstream>,
    /// How often the health checker probes.
    pub(crate) health_interval: Duration,
    /// `[chain.private_tx]`: where signed transactions go instead of the upstreams.
    pub(crate) private: Option<PrivateRelays>,
}

/// The private relays of a chain (`[chain.private_tx]`).
#[derive(Debug)]
pub(crate) struct PrivateRelays {
    /// The relays; shared with the submissions still running after the client was answered.
    pub(crate) relays: Vec<Arc<Upstream>>,
    /// What happens when no relay could be reached.
    pub(crate) fallback: crate::settings::PrivateTxFallback,
}

impl Chain {
    /// Ready: some upstream is healthy (or, without a configured chain id, not yet probed and
    /// not failed).
    pub(crate) fn is_ready(&self) -> bool {
        self.upstreams.iter().any(|u| match u.health() {
            Health::Healthy => true,
            Health::Unknown => self.chain_id.is_none(),
            Health::Unhealthy | Health::WrongChain => false,
        })
    }
}

/// Builds the chains of a checked configuration, by name.
pub(crate) fn chains(settings: &Settings) -> HashMap<String, Arc<Chain>> {
    settings
        .chains
        .iter()
        .map(|chain| (chain.name.clone(), Arc::new(build_chain(chain))))
        .collect()
}

fn build_upstream(upstream: &UpstreamSettings) -> Upstream {
    Upstream {
        label: upstream.label.clone(),
        uri: upstream.uri.clone(),
        credentials: upstream.credentials.clone(),
        timeout: upstream.timeout,
        permits: Semaphore::new(upstream.max_concurrent),
        health: AtomicU8::new(Health::Unknown as u8),
        healthy_gauge: OnceLock::new(),
        ws: upstream.ws.clone(),
    }
}

fn build_chain(chain: &ChainSettings) -> Chain {
    let upstreams = chain.upstreams.iter().map(build_upstream).collect();
    let private = chain.private_tx.as_ref().map(|private| PrivateRelays {
        relays: private
            .relays
            .iter()
            .map(|relay| Arc::new(build_upstream(relay)))
            .collect(),
        fallback: private.fallback,
    });
    Chain {
        private,
        name: chain.name.clone(),
        name_arc: Arc::from(chain.name.as_str()),
        chain_id: chain.chain_id,
        policy: MethodPolicy::new(chain.allow_methods.clone(), chain.deny_methods.clone()),
        upstreams,
        health_interval: chain.health_interval,
    }
}

/// The shared, pooled upstream client: HTTPS with the web PKI roots (aws-lc-rs, post-quantum
/// key exchange preferred), HTTP/1.1 and HTTP/2 by ALPN. Plain `http://` is enabled only when
/// the configuration has such an upstream (which its check allowed: loopback, or
/// `allow_insecure_upstream`).
pub(crate) fn http_client(settings: &Settings) -> Result<HttpClient, GatewayError> {
    let any_plain_http = settings
        .chains
        .iter()
        .flat_map(|c| {
            c.upstreams
                .iter()
                .chain(c.private_tx.iter().flat_map(|p| p.relays.iter()))
        })
        .any(|upstream| upstream.is_plain_http());
    https_client(
        any_plain_http,
        settings.limits.upstream_idle_timeout,
        settings.egress.as_ref(),
    )
}

/// Probes every upstream of every chain with `eth_chainId`, at once for chains with a
/// configured `chain_id` (the start-up check) and then every `health_interval`; runs until
/// `stop` turns true. Binds every upstream's `shroud_upstream_healthy` first.
pub(crate) async fn health_checks(
    client: HttpClient,
    chains: Vec<Arc<Chain>>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    for chain in &chains {
        for upstream in &chain.upstreams {
            upstream.bind_healthy_gauge(metrics.upstream_healthy(&chain.name, &upstream.label));
        }
    }
    let mut tasks = Vec::new();
    for chain in chains {
        let client = client.clone();
        let metrics = Arc::clone(&metrics);
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut first = chain.chain_id.is_some();
            loop {
                if !first {
                    tokio::select! {
                        () = tokio::time::sleep(chain.health_interval) => {}
                        () = crate::shutdown::stopped(&mut stop) => return,
                    }
                }
                first = false;
                let probes = chain
                    .upstreams
                    .iter()
                    .map(|upstream| probe(&client, &chain, upstream, &metrics));
                futures_util::future::join_all(probes).await;
            }
        }));
    }
    let mut stop = stop;
    crate::shutdown::stopped(&mut stop).await;
    for task in tasks {
        task.abort();
    }
}

/// One probe: `eth_chainId`, compared with the configured chain id.
async fn probe(client: &HttpClient, chain: &Chain, upstream: &Upstream, metrics: &Metrics) {
    let body = UpstreamBody::chain_id_probe(GatewayId::random());
    let started = Instant::now();
    let exchange = async {
        let response = client
            .request(upstream.request(body))
            .await
            .map_err(|error| {
                tracing::debug!(
                    chain = %chain.name,
                    upstream = %upstream.label,
                    reason = %crate::error::chain(&error),
                    "health probe could not reach the upstream"
                );
                "unreachable"
            })?;
        if !response.status().is_success() {
            return Err("HTTP error");
        }
        let body = Limited::new(response.into_body(), MAX_HEALTH_ANSWER)
            .collect()
            .await
            .map_err(|_| "unreadable answer")?
            .to_bytes();
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| "answer is not JSON")?;
        let reported = answer
            .get("result")
            .and_then(serde_json::Value::as_str)
            .and_then(|hex| hex.strip_prefix("0x"))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .ok_or("answer has no chain id")?;
        Ok(reported)
    };
    let result = match tokio::time::timeout(upstream.timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err("timed out"),
    };
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics.upstream_exchange(&chain.name, &upstream.label, outcome, started.elapsed());
    let (health, reason, reported) = match result {
        Ok(reported) if chain.chain_id.is_some_and(|want| want != reported) => {
            (Health::WrongChain, "chain id mismatch", Some(reported))
        }
        Ok(_) => (Health::Healthy, "ok", None),
        Err(reason) => (Health::Unhealthy, reason, None),
    };
    let previous = upstream.set_health(health);
    if previous == health {
        return;
    }
    match health {
        Health::Healthy => {
            tracing::info!(chain = %chain.name, upstream = %upstream.label, "upstream healthy");
        }
        Health::WrongChain => tracing::error!(
            chain = %chain.name,
            upstream = %upstream.label,
            expected = chain.chain_id,
            reported,
            "{reason}: upstream serves another chain; not using it"
        ),
        Health::Unhealthy | Health::Unknown => tracing::warn!(
            chain = %chain.name,
            upstream = %upstream.label,
            reason,
            "upstream health check failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> Upstream {
        Upstream {
            label: "0".into(),
            uri: Uri::from_static("http://127.0.0.1:1/"),
            credentials: HeaderMap::new(),
            timeout: Duration::from_secs(1),
            permits: Semaphore::new(1),
            health: AtomicU8::new(Health::Unknown as u8),
            healthy_gauge: OnceLock::new(),
            ws: None,
        }
    }

    #[test]
    fn the_healthy_gauge_follows_every_change_of_health() {
        let metrics = Metrics::new(
            shroud_ra_tls::Platform::Simulated,
            &[("eth", vec!["0"])],
            false,
        )
        .unwrap();
        let gauge = metrics.upstream_healthy("eth", "0");
        let upstream = upstream();
        upstream.set_health(Health::Healthy);
        assert_eq!(gauge.get(), 0, "not bound yet");
        upstream.bind_healthy_gauge(metrics.upstream_healthy("eth", "0"));
        assert_eq!(gauge.get(), 1, "binding publishes the current health");
        upstream.mark_failed("eth");
        assert_eq!(gauge.get(), 0);
        upstream.set_health(Health::Healthy);
        assert_eq!(gauge.get(), 1);
        upstream.set_health(Health::WrongChain);
        assert_eq!(gauge.get(), 0);
        upstream.mark_failed("eth");
        assert_eq!((upstream.health(), gauge.get()), (Health::WrongChain, 0));
        assert!(
            metrics
                .render()
                .contains("shroud_upstream_healthy{chain=\"eth\",upstream=\"0\"} 0\n")
        );
    }
}
