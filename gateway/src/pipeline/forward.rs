//! `forward`: sends a group of [`SanitizedCall`]s, under gateway-chosen ids, to one upstream in
//! a request built from scratch ([`UpstreamBody`]), and fails over to the chain's other
//! upstreams.
//!
//! Failover rules: a connection that cannot be established is always retried elsewhere (nothing
//! was sent); a timeout, a broken exchange, a 5xx/429 or a non-JSON answer is retried elsewhere
//! only when every call in the group is retry-safe ([`select::retry_safe`]). Each attempt is
//! bounded by the upstream's timeout and its concurrency cap; the whole request by the caller's
//! deadline. `eth_sendRawTransaction` is not failed over but [`broadcast`] to every usable
//! upstream at once.
//!
//! Answers are read into memory under an [`AnswerBudget`]: the response size limit counts every
//! byte of every exchange of one client request, and the gateway as a whole holds at most its
//! configured amount of answer bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::PipelineError;
use super::restore::{self, Answers};
use super::select;
use super::strip::{GatewayId, SanitizedCall, UpstreamBody};
use crate::egress::HttpClient;
use crate::metrics::Metrics;
use crate::upstream::{Chain, Upstream};

/// The unit of the gateway-wide answer memory semaphore.
pub(crate) const MEMORY_UNIT: usize = 1024;

/// What one client request may still read from upstreams, and the share of the gateway-wide
/// answer memory it holds (released when the response body is dropped).
#[derive(Debug)]
pub(crate) struct AnswerBudget {
    max: usize,
    remaining: AtomicUsize,
    memory: Arc<Semaphore>,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl AnswerBudget {
    /// A budget of `max` bytes for one request, drawing on the gateway's `memory` (permits of
    /// [`MEMORY_UNIT`] bytes).
    pub(crate) fn new(max: usize, memory: Arc<Semaphore>) -> Self {
        Self {
            max,
            remaining: AtomicUsize::new(max),
            memory,
            held: Mutex::new(Held::default()),
        }
    }

    /// Whether `len` more bytes fit in this request's allowance (without taking them).
    fn fits(&self, len: u64) -> bool {
        len <= self.remaining.load(Ordering::Relaxed) as u64
    }

    /// Takes `len` bytes: from this request's allowance, then from the gateway's memory.
    fn take(&self, len: usize) -> Result<(), PipelineError> {
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(len)
            })
            .map_err(|_| PipelineError::UpstreamTooLarge { max: self.max })?;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = held.bytes.saturating_add(len);
        let more = bytes
            .div_ceil(MEMORY_UNIT)
            .saturating_sub(held.bytes.div_ceil(MEMORY_UNIT));
        if more > 0 {
            let more = u32::try_from(more).map_err(|_| PipelineError::Overloaded)?;
            let permit = Arc::clone(&self.memory)
                .try_acquire_many_owned(more)
                .map_err(|_| PipelineError::Overloaded)?;
            match &mut held.permit {
                Some(all) => all.merge(permit),
                none => *none = Some(permit),
            }
        }
        held.bytes = bytes;
        Ok(())
    }

    /// The share of the gateway's answer memory taken, to be held by the response body.
    pub(crate) fn into_reservation(self) -> Option<OwnedSemaphorePermit> {
        self.held
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .permit
    }
}

/// What one exchange needs besides the calls.
pub(crate) struct Exchange<'a> {
    /// The pooled client.
    pub(crate) client: &'a HttpClient,
    /// Where outcomes are counted.
    pub(crate) metrics: &'a Metrics,
    /// The chain and its upstreams.
    pub(crate) chain: &'a Chain,
    /// The request's answer budget.
    pub(crate) budget: &'a AnswerBudget,
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
    calls: &[(GatewayId, &SanitizedCall)],
) -> Result<Answers, PipelineError> {
    let body = UpstreamBody::new(calls);
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
    call: (GatewayId, &SanitizedCall),
) -> Result<Answers, PipelineError> {
    let body = UpstreamBody::new(&[call]);
    let attempts = select::order(exchange.chain)
        .into_iter()
        .filter_map(|index| {
            let upstream = exchange.chain.upstreams.get(index)?;
            Some(attempt(exchange, upstream, body.clone()))
        });
    let mut error_answer: Option<Answers> = None;
    let mut last_error = select::none_usable(exchange.chain);
    for outcome in futures_util::future::join_all(attempts).await {
        match outcome {
            Attempt::Answered(answers) if answers.has_result(call.0.get()) => return Ok(answers),
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

async fn attempt(exchange: &Exchange<'_>, upstream: &Upstream, body: UpstreamBody) -> Attempt {
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
            Err(error) => {
                let connect = error.is_connect();
                tracing::warn!(
                    chain,
                    upstream = %upstream.label,
                    reason = %crate::error::chain(&error),
                    "upstream exchange failed"
                );
                upstream.mark_failed(chain);
                return if connect {
                    count("connect_error");
                    Attempt::NotSent(PipelineError::UpstreamUnavailable)
                } else {
                    count("failed");
                    Attempt::Failed(PipelineError::UpstreamFailed, None)
                };
            }
        };
        let status = response.status();
        let body = match read_answer(response.into_body(), exchange.budget).await {
            Ok(body) => body,
            Err(error @ (PipelineError::UpstreamTooLarge { .. } | PipelineError::Overloaded)) => {
                count("too_large");
                return Attempt::Fatal(error);
            }
            Err(error) => {
                count("failed");
                return Attempt::Failed(error, None);
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

/// Reads an answer body under the request's budget: refused as soon as it would not fit,
/// before the bytes are kept.
async fn read_answer(
    mut body: hyper::body::Incoming,
    budget: &AnswerBudget,
) -> Result<Bytes, PipelineError> {
    let declared = hyper::body::Body::size_hint(&body).exact();
    if declared.is_some_and(|len| !budget.fits(len)) {
        return Err(PipelineError::UpstreamTooLarge { max: budget.max });
    }
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            // `UpstreamFailed` is logged here, where the reason is known (its class says so).
            tracing::warn!(reason = %crate::error::chain(&error), "upstream answer broke off");
            PipelineError::UpstreamFailed
        })?;
        if let Ok(data) = frame.into_data() {
            budget.take(data.len())?;
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_every_exchange_of_a_request() {
        let memory = Arc::new(Semaphore::new(1000));
        let budget = AnswerBudget::new(10_000, Arc::clone(&memory));
        budget.take(6000).unwrap();
        assert!(!budget.fits(5000));
        assert_eq!(
            budget.take(5000),
            Err(PipelineError::UpstreamTooLarge { max: 10_000 })
        );
        budget.take(4000).unwrap();
        assert_eq!(memory.available_permits(), 1000 - 10);
        let reservation = budget.into_reservation();
        assert_eq!(memory.available_permits(), 990);
        drop(reservation);
        assert_eq!(memory.available_permits(), 1000);
    }

    #[test]
    fn the_gateway_wide_memory_is_shared_by_all_requests() {
        let memory = Arc::new(Semaphore::new(4));
        let first = AnswerBudget::new(1 << 20, Arc::clone(&memory));
        first.take(3 * MEMORY_UNIT).unwrap();
        let second = AnswerBudget::new(1 << 20, Arc::clone(&memory));
        assert_eq!(second.take(2 * MEMORY_UNIT), Err(PipelineError::Overloaded));
        drop(first);
        second.take(2 * MEMORY_UNIT).unwrap();
    }
}
