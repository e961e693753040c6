//! The relay pipeline (DESIGN §5):
//! `parse → policy → strip → cache → select → forward → restore → respond → metrics`.
//!
//! The order is a chain of types, each built only by its stage: [`parse::ClientCall`] (only
//! [`parse::parse`]) → [`policy::PermittedCall`] (only [`policy::MethodPolicy::permit`]) →
//! [`strip::SanitizedCall`] (only [`strip::strip`]) → [`strip::UpstreamBody`] (only from
//! sanitised calls under [`strip::GatewayId`]s), which is the only body the upstream request
//! function accepts. Planning ([`plan`]) and answer assembly ([`assemble`]) are pure; [`relay`]
//! is the thin async driver that does the lookups and the I/O.
//!
//! The module is public (hidden from the docs) for the fuzz targets and the `compile_fail`
//! examples that show the order cannot be skipped; it is not a stable API.

pub mod assemble;
pub(crate) mod cache;
pub(crate) mod envelope;
pub mod error;
pub(crate) mod forward;
pub mod json;
pub mod parse;
pub mod plan;
pub mod policy;
pub(crate) mod private_tx;
pub(crate) mod respond;
pub mod restore;
pub(crate) mod select;
pub mod strip;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use tokio::sync::Semaphore;

use self::assemble::Outcome;
use self::cache::ResponseCache;
pub use self::error::PipelineError;
use self::forward::AnswerBudget;
use self::parse::ParseLimits;
use self::plan::Planned;
use self::respond::Body;
use self::restore::Answer;
use self::strip::{GatewayId, SanitizedCall};
use crate::egress::HttpClient;
use crate::metrics::Metrics;
use crate::ratelimit::{ClientKey, RateLimiter};
use crate::upstream::Chain;
use crate::workers::PerWorker;

/// Bytes of body that cost the client one call of its rate budget, charged before parsing: a
/// large body costs what parsing it costs, whatever it turns out to hold.
pub(crate) const PARSE_COST_UNIT: usize = 16 * 1024;

/// What the pipeline needs from the gateway: the shared upstream client, the cache, the rate
/// limiter, the metrics and the limits. Nothing of the router.
pub(crate) struct Relay {
    /// The pooled upstream clients: one per serving worker (and the main runtime's).
    pub(crate) clients: PerWorker<HttpClient>,
    /// Where outcomes are counted.
    pub(crate) metrics: Arc<Metrics>,
    /// The per-client rate limiter.
    pub(crate) limiter: RateLimiter,
    /// The response cache.
    pub(crate) cache: ResponseCache,
    /// Batch length and nesting depth.
    pub(crate) parse_limits: ParseLimits,
    /// Largest response to one client request (every upstream exchange of it together).
    pub(crate) max_response_bytes: usize,
    /// Deadline of the whole upstream exchange of one request.
    pub(crate) request_timeout: Duration,
    /// The gateway-wide memory for upstream answers, in [`forward::MEMORY_UNIT`]s.
    pub(crate) answer_memory: Arc<Semaphore>,
}

impl Relay {
    /// The upstream client of the calling thread's worker: a request is forwarded over a
    /// connection of the pool on its own thread.
    pub(crate) fn client(&self) -> &HttpClient {
        self.clients.current()
    }
}

/// Relays one JSON-RPC request body of `client` to `chain` and answers it.
pub(crate) async fn relay(
    relay: &Relay,
    chain: &Chain,
    client: ClientKey,
    body: Bytes,
) -> Response<Body> {
    let started = Instant::now();
    let metrics = &relay.metrics;
    let prepaid = body.len().div_ceil(PARSE_COST_UNIT).max(1);
    if !relay.limiter.allow(client, prepaid).await {
        return rate_limited(relay, prepaid);
    }
    let parsed = match parse::parse(&body, relay.parse_limits) {
        Ok(parsed) => parsed,
        Err(error) => {
            metrics.call(&chain.name, "other", error.outcome());
            return respond::error_response(&error);
        }
    };
    drop(body);
    let calls = parsed.len();
    if calls > prepaid && !relay.limiter.allow(client, calls - prepaid).await {
        return rate_limited(relay, calls - prepaid);
    }

    let plan::Plan {
        batch,
        mut slots,
        calls,
    } = plan::plan(parsed, &chain.policy, &chain.name_arc);

    // cache
    let mut pending: Vec<Planned> = Vec::with_capacity(calls.len());
    for planned in calls {
        if let Some(key) = &planned.cache_key {
            let hit = relay.cache.get(key).await;
            metrics.cache(&chain.name, hit.is_some());
            if let (Some(result), Some(slot)) = (hit, slots.get_mut(planned.slot)) {
                slot.outcome = Outcome::Cached(result);
                continue;
            }
        }
        pending.push(planned);
    }

    // select, forward, restore
    let budget = AnswerBudget::new(relay.max_response_bytes, Arc::clone(&relay.answer_memory));
    if !pending.is_empty() {
        let answered = tokio::time::timeout(
            relay.request_timeout,
            dispatch(relay, chain, &budget, &pending),
        )
        .await;
        let answered =
            answered.unwrap_or_else(|_| vec![Err(PipelineError::UpstreamTimeout); pending.len()]);
        for (planned, result) in pending.iter().zip(answered) {
            let outcome = match result {
                Ok(answer) => {
                    if let (Some(key), Answer::Result(result)) = (&planned.cache_key, &answer) {
                        relay.cache.insert(key.clone(), result).await;
                    }
                    Outcome::Answered(answer)
                }
                Err(error) => Outcome::Failed(error),
            };
            if let Some(slot) = slots.get_mut(planned.slot) {
                slot.outcome = outcome;
            }
        }
    }

    // respond, metrics
    let assembled = assemble::assemble(batch, &mut slots, relay.max_response_bytes);
    let mut logged: Vec<&PipelineError> = Vec::new();
    for slot in &slots {
        if let Outcome::Failed(error) = &slot.outcome
            && !logged.contains(&error)
        {
            error.log();
            logged.push(error);
        }
        metrics.call(&chain.name, slot.label, slot.outcome.label());
    }
    metrics.request_duration(&chain.name, started.elapsed());
    let mut response = respond::answers_response(assembled);
    let body = std::mem::take(response.body_mut());
    *response.body_mut() = body.with_reservation(budget.into_reservation());
    response
}

/// 429 with `Retry-After`: the whole seconds until the client's bucket holds `cost` again.
fn rate_limited(relay: &Relay, cost: usize) -> Response<Body> {
    relay.metrics.rate_limited();
    let mut response = respond::error_response(&PipelineError::RateLimited);
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from(relay.limiter.refill_secs(cost)),
    );
    response
}

/// Spreads the pending calls at random over the chain's upstreams (one exchange per upstream
/// chosen), forwards the exchanges concurrently and restores the answers in `pending` order.
async fn dispatch(
    relay: &Relay,
    chain: &Chain,
    budget: &AnswerBudget,
    pending: &[Planned],
) -> Vec<Result<Answer, PipelineError>> {
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut results: Vec<Result<Answer, PipelineError>> =
        vec![Err(PipelineError::UpstreamUnavailable); pending.len()];
    let mut broadcasts: Vec<usize> = Vec::new();
    for (n, p) in pending.iter().enumerate() {
        if select::broadcast(p.call.method()) {
            broadcasts.push(n);
        } else if let Some(upstream) = select::pick(chain) {
            groups.entry(upstream).or_default().push(n);
        } else if let Some(result) = results.get_mut(n) {
            *result = Err(select::none_usable(chain));
        }
    }
    let exchange = forward::Exchange {
        client: relay.client(),
        metrics: &relay.metrics,
        chain,
        budget,
    };
    let exchanges = groups.into_iter().map(|(upstream, members)| {
        let exchange = &exchange;
        async move {
            let calls: Vec<(GatewayId, &SanitizedCall)> = members
                .iter()
                .filter_map(|&n| pending.get(n).map(|p| (p.id, &p.call)))
                .collect();
            let result = forward::forward(exchange, upstream, &calls).await;
            (members, result)
        }
    });
    let broadcasts = broadcasts.into_iter().filter_map(|n| {
        let p = pending.get(n)?;
        let exchange = &exchange;
        Some(async move {
            let call = (p.id, &p.call);
            // With private relays, a signed transaction goes to them only (public upstreams
            // only as the configured fallback).
            let result = match &chain.private {
                Some(relays) => {
                    private_tx::submit(relay.client(), &relay.metrics, chain, relays, call, || {
                        forward::broadcast(exchange, call)
                    })
                    .await
                }
                None => forward::broadcast(exchange, call).await,
            };
            (vec![n], result)
        })
    });
    let (grouped, broadcast) = futures_util::future::join(
        futures_util::future::join_all(exchanges),
        futures_util::future::join_all(broadcasts),
    )
    .await;
    for (members, result) in grouped.into_iter().chain(broadcast) {
        match result {
            Ok(mut answers) => {
                for n in members {
                    let Some(p) = pending.get(n) else { continue };
                    if let Some(slot) = results.get_mut(n) {
                        *slot = answers
                            .take(p.id.get())
                            .ok_or(PipelineError::UpstreamNoAnswer);
                    }
                }
            }
            Err(error) => {
                for n in members {
                    if let Some(slot) = results.get_mut(n) {
                        *slot = Err(error.clone());
                    }
                }
            }
        }
    }
    results
}
