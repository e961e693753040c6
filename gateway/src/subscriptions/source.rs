//! The chain follower's exchanges with upstreams: its own calls only (the latest block, blocks
//! by hash, one block's logs, its pending-transaction filter), built by the gateway over the
//! shared pool, never carrying anything of a client's. The follower keeps to one upstream
//! while it answers (one consistent view of the chain) and fails over to the next on the
//! first error.

use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt as _, Limited};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::egress::HttpClient;
use crate::metrics::Metrics;
use crate::pipeline::select;
use crate::pipeline::strip::{GatewayId, UpstreamBody};
use crate::upstream::{Chain, Health};

/// Why one exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// The chain has no upstream that may be used.
    #[error("no usable upstream")]
    NoUpstream,
    /// Connecting, sending or reading failed.
    #[error("the upstream could not be reached")]
    Unreachable,
    /// Nothing came in time.
    #[error("the upstream timed out")]
    Timeout,
    /// An HTTP error, or an answer that is not JSON-RPC or too large.
    #[error("the upstream's answer is unusable: {0}")]
    Answer(&'static str),
    /// A JSON-RPC error.
    #[error("the upstream answered error {0}")]
    Rpc(i64),
}

/// The upstreams of one chain, as the follower uses them.
pub(crate) struct Source {
    pub(crate) client: HttpClient,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) chain: Arc<Chain>,
    /// Largest answer read (the relay's response limit).
    pub(crate) max_answer: usize,
    /// The upstream used while it answers.
    current: Option<usize>,
}

impl Source {
    /// The follower's view of `chain`.
    pub(crate) fn new(
        client: HttpClient,
        metrics: Arc<Metrics>,
        chain: Arc<Chain>,
        max_answer: usize,
    ) -> Self {
        Self {
            client,
            metrics,
            chain,
            max_answer,
            current: None,
        }
    }

    /// The upstream in use, by label, for logs.
    pub(crate) fn current_label(&self) -> &str {
        self.current
            .and_then(|n| self.chain.upstreams.get(n))
            .map_or("none", |u| u.label.as_str())
    }

    /// `method(params)` on the current upstream, else on the next usable ones in turn (each
    /// failure marks its upstream failed, as relayed calls do); the first answer wins.
    pub(crate) async fn call(
        &mut self,
        method: &'static str,
        params: &Value,
    ) -> Result<Box<RawValue>, SourceError> {
        let mut order = select::order(&self.chain);
        if let Some(current) = self.current {
            let usable = self
                .chain
                .upstreams
                .get(current)
                .is_some_and(|u| matches!(u.health(), Health::Healthy | Health::Unknown));
            order.retain(|&n| n != current);
            if usable {
                order.insert(0, current);
            } else {
                order.push(current);
            }
        }
        let mut last = SourceError::NoUpstream;
        for upstream in order {
            match self.call_one(upstream, method, params).await {
                Ok(result) => {
                    if self.current != Some(upstream) {
                        tracing::info!(
                            chain = %self.chain.name,
                            upstream = %self.chain.upstreams.get(upstream).map_or("", |u| u.label.as_str()),
                            "chain follower reading from this upstream"
                        );
                    }
                    self.current = Some(upstream);
                    return Ok(result);
                }
                Err(error) => {
                    if let Some(u) = self.chain.upstreams.get(upstream) {
                        tracing::debug!(chain = %self.chain.name, upstream = %u.label, method, %error, "chain follower exchange failed");
                        // An error answer is the upstream's word, not a failure to reach it.
                        if !matches!(error, SourceError::Rpc(_)) {
                            u.mark_failed(&self.chain.name);
                        }
                    }
                    last = error;
                }
            }
        }
        Err(last)
    }

    /// One exchange with upstream `index`.
    async fn call_one(
        &self,
        index: usize,
        method: &'static str,
        params: &Value,
    ) -> Result<Box<RawValue>, SourceError> {
        #[derive(Deserialize)]
        struct Answer {
            result: Option<Box<RawValue>>,
            error: Option<ErrorObject>,
        }
        #[derive(Deserialize)]
        struct ErrorObject {
            code: i64,
        }
        let upstream = self
            .chain
            .upstreams
            .get(index)
            .ok_or(SourceError::NoUpstream)?;
        let id = GatewayId::random();
        let request = upstream.request(UpstreamBody::own_call(id, method, params));
        let started = Instant::now();
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|_| SourceError::Unreachable)?;
            if !response.status().is_success() {
                return Err(SourceError::Answer("HTTP error"));
            }
            let body = Limited::new(response.into_body(), self.max_answer)
                .collect()
                .await
                .map_err(|_| SourceError::Answer("unreadable or too large"))?
                .to_bytes();
            let answer: Answer =
                serde_json::from_slice(&body).map_err(|_| SourceError::Answer("not JSON-RPC"))?;
            match (answer.result, answer.error) {
                (Some(result), None) => Ok(result),
                (_, Some(error)) => Err(SourceError::Rpc(error.code)),
                (None, None) => Ok(RawValue::NULL.to_owned()),
            }
        };
        let result = match tokio::time::timeout(upstream.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::Timeout),
        };
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics.upstream_exchange(
            &self.chain.name,
            &upstream.label,
            outcome,
            started.elapsed(),
        );
        result
    }
}
