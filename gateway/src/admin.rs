//! The admin listener (DESIGN §6): `GET /metrics`, `/healthz` and `/readyz` on their own plain
//! HTTP port, bounded in connections, header time and lifetime. The registry it renders is
//! `metrics.rs`; this is only the listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::cluster::status::ClusterStatus;
use crate::metrics::Metrics;
use crate::paths;
use crate::pipeline::PipelineError;
use crate::pipeline::respond::{self, Body};
use crate::shutdown::{AcceptBackoff, stopped};
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

/// `/readyz`: 200 when every chain has a usable upstream and, with `[cluster]`, the replica
/// serves the keys of the cluster's secret; else 503, saying why.
pub(crate) fn readiness(chains: &[Arc<Chain>], cluster: Option<&ClusterStatus>) -> Response<Body> {
    if let Some(reason) = cluster.and_then(ClusterStatus::not_ready) {
        return respond::text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            format!("not ready: {reason}"),
        );
    }
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

fn route<B>(
    metrics: &Metrics,
    chains: &[Arc<Chain>],
    cluster: Option<&ClusterStatus>,
    request: &Request<B>,
) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, paths::METRICS) => {
            respond::text_response(StatusCode::OK, CONTENT_TYPE, metrics.render())
        }
        (&Method::GET, paths::HEALTHZ) => {
            respond::text_response(StatusCode::OK, "text/plain; charset=utf-8", "ok")
        }
        (&Method::GET, paths::READYZ) => readiness(chains, cluster),
        (_, paths::METRICS | paths::HEALTHZ | paths::READYZ) => {
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
    cluster: Option<Arc<ClusterStatus>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = AcceptBackoff::default();
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
            () = stopped(&mut shutdown) => return,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("metrics connection limit reached; closing a new connection");
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let chains = Arc::clone(&chains);
        let cluster = cluster.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request| {
                let response = route(&metrics, &chains, cluster.as_deref(), &request);
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
                () = stopped(&mut shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
