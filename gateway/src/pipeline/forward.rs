//! `forward`: sends a group of [`SanitizedCall`]s, under gateway-chosen ids, to one upstream in
//! a request built from scratch, and fails over to the chain's other upstreams.
//!
//! Failover rules: a connection that cannot be established is always retried elsewhere (nothing
//! was sent); a timeout, a broken exchange, a 5xx/429 or a non-JSON answer is retried elsewhere
//! only when every call in the group is retry-safe ([`select::retry_safe`]). Each attempt is
//! bounded by the upstream's timeout and its concurrency cap; the whole request by the caller's
//! deadline. `eth_sendRawTransaction` is not failed over but [`broadcast`] to every usable
//! upstream at once.

use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use super::PipelineError;
use super::restore::{self, Answers};
use super::select;
use super::strip::SanitizedCall;
use crate::metrics::Metrics;
use crate::upstream::{Chain, HttpClient, Upstream};

/// What one exchange needs besides the calls.
pub(crate) struct Exchange<'a> {
    /// The pooled client.
    pub(crate) client: &'a HttpClient,
    /// Where outcomes are counted.
    pub(crate) metrics: &'a Metrics,
    /// The chain and its upstreams.
    pub(crate) chain: &'a Chain,
    /// Largest answer body accepted.
    pub(crate) max_response_bytes: usize,
}

/// The canonical upstream body of `calls`: one object for one call, else an array.
pub(crate) fn upstream_body(calls: &[(u64, &SanitizedCall)]) -> Bytes {
    let mut out = Vec::with_capacity(64 * calls.len());
    if let [(id, call)] = calls {
        call.write_upstream_json(*id, &mut out);
    } else {
        out.push(b'[');
        for (n, (id, call)) in calls.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            call.write_upstream_json(*id, &mut out);
        }
        out.push(b']');
    }
    Bytes::from(out)
}

/// How one attempt ended.
enum Attempt {
    Answered(Answers),
    /// Nothing was sent: always safe to try elsewhere.
    NotSent(PipelineError),
    /// Sent (or maybe sent) and failed: try elsewhere only when retry-safe. The answers, when
    /// the upstream sent a JSON-RPC body with its HTTP error, are relayed if nothing better
    /// comes.
    Failed(PipelineError, Option<Answers>),
    /// Final: no other upstream would do better.
    Fatal(PipelineError),
}

/// Sends `calls` to upstream `first`, then to the others in [`select::order`] as the failover
/// rules allow. Returns the answers of the first upstream that answered.
pub(crate) async fn forward(
    exchange: &Exchange<'_>,
    first: usize,
    calls: &[(u64, &SanitizedCall)],
) -> Result<Answers, PipelineError> {
    let body = upstream_body(calls);
    let retry_safe = calls.iter().all(|(_, c)| select::retry_safe(c.method()));
    let mut order = vec![first];
    order.extend(
        select::order(exchange.chain)
            .into_iter()
            .filter(|&i| i != first),
    );
    let mut last_error = PipelineError::UpstreamUnavailable;
    let mut fallback: Option<Answers> = None;
    for index in order {
        let Some(upstream) = exchange.chain.upstreams.get(index) else {
            continue;
        };
        match attempt(exchange, upstream, body.clone()).await {
            Attempt::Answered(answers) => return Ok(answers),
            Attempt::NotSent(error) => last_error = error,
            Attempt::Failed(error, answers) => {
                if answers.is_some() {
                    fallback = answers;
                }
                last_error = error;
                if !retry_safe {
                    break;
                }
            }
            Attempt::Fatal(error) => return Err(error),
        }
    }
    fallback.ok_or(last_error)
}

/// Sends one idempotent call (`eth_sendRawTransaction`, idempotent by transaction hash) to
/// every usable upstream of the chain at once, so that the transaction propagates even when
/// one provider drops it. Answers with the first `result`, else the first JSON-RPC error an
/// upstream gave (a transaction that is invalid everywhere), else the last transport error.
pub(crate) async fn broadcast(
    exchange: &Exchange<'_>,
    call: (u64, &SanitizedCall),
) -> Result<Answers, PipelineError> {
    let body = upstream_body(&[call]);
    let attempts = select::order(exchange.chain)
        .into_iter()
        .filter_map(|index| {
            let upstream = exchange.chain.upstreams.get(index)?;
            Some(attempt(exchange, upstream, body.clone()))
        });
    let mut error_answer: Option<Answers> = None;
    let mut last_error = PipelineError::UpstreamUnavailable;
    for outcome in futures_util::future::join_all(attempts).await {
        match outcome {
            Attempt::Answered(answers) if answers.has_result(call.0) => return Ok(answers),
            Attempt::Answered(answers) => {
                error_answer.get_or_insert(answers);
            }
            Attempt::Failed(error, Some(answers)) => {
                error_answer.get_or_insert(answers);
                last_error = error;
            }
            Attempt::NotSent(error) | Attempt::Failed(error, None) | Attempt::Fatal(error) => {
                last_error = error;
            }
        }
    }
    error_answer.ok_or(last_error)
}

async fn attempt(exchange: &Exchange<'_>, upstream: &Upstream, body: Bytes) -> Attempt {
    let chain = exchange.chain.name.as_str();
    let started = Instant::now();
    let count = |outcome: &str| {
        exchange
            .metrics
            .upstream_exchange(chain, &upstream.label, outcome, started.elapsed());
    };
    let run = async {
        let Ok(_permit) = upstream.permits.acquire().await else {
            return Attempt::NotSent(PipelineError::UpstreamUnavailable);
        };
        let response = match exchange.client.request(upstream.request(body)).await {
            Ok(response) => response,
            Err(error) if error.is_connect() => {
                count("connect_error");
                upstream.mark_failed(chain);
                return Attempt::NotSent(PipelineError::UpstreamUnavailable);
            }
            Err(_) => {
                count("failed");
                upstream.mark_failed(chain);
                return Attempt::Failed(PipelineError::UpstreamFailed, None);
            }
        };
        let status = response.status();
        let body = match Limited::new(response.into_body(), exchange.max_response_bytes)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                count("too_large");
                return Attempt::Fatal(PipelineError::UpstreamTooLarge {
                    max: exchange.max_response_bytes,
                });
            }
            Err(_) => {
                count("failed");
                return Attempt::Failed(PipelineError::UpstreamFailed, None);
            }
        };
        let answers = restore::parse_answers(&body);
        if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
            count("http_error");
            return Attempt::Failed(PipelineError::UpstreamStatus(status.as_u16()), answers);
        }
        match answers {
            Some(answers) => {
                count("ok");
                Attempt::Answered(answers)
            }
            None => {
                count("invalid_response");
                let error = if status.is_success() {
                    PipelineError::UpstreamInvalidResponse
                } else {
                    PipelineError::UpstreamStatus(status.as_u16())
                };
                Attempt::Failed(error, None)
            }
        }
    };
    if let Ok(attempt) = tokio::time::timeout(upstream.timeout, run).await {
        attempt
    } else {
        count("timeout");
        upstream.mark_failed(chain);
        Attempt::Failed(PipelineError::UpstreamTimeout, None)
    }
}
