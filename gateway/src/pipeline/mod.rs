//! The relay pipeline (DESIGN §5):
//! `parse → policy → strip → cache → select → forward → restore → respond → metrics`.
//!
//! The order is enforced by types: [`strip::SanitizedCall`] can only be built by
//! [`strip::strip`], from a call that [`parse`] checked and canonicalised and [`policy`]
//! permitted; [`cache`] keys and [`forward`] take nothing else. No client byte reaches an
//! upstream any other way, and the client's ids stay in this module until [`restore`] puts them
//! back on the answers.

pub(crate) mod cache;
pub(crate) mod forward;
pub(crate) mod parse;
pub(crate) mod policy;
pub(crate) mod respond;
pub(crate) mod restore;
pub(crate) mod select;
pub(crate) mod strip;

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use bytes::Bytes;
use http::Response;
use rand::Rng;
use serde_json::value::RawValue;

pub(crate) use respond::PipelineError;

use self::parse::Entry;
use self::respond::Body;
use self::restore::Answer;
use self::strip::SanitizedCall;
use crate::ratelimit::ClientKey;
use crate::routes::AppState;
use crate::upstream::Chain;

/// How one call ended.
enum Outcome {
    Answered(Answer),
    Cached(Answer),
    Failed(PipelineError),
}

/// One call of the request, in client order.
struct Slot<'a> {
    /// The client's id; `None` for a notification, which gets no answer.
    id: Option<Box<RawValue>>,
    /// The `method` metric label.
    label: &'a str,
    outcome: Option<Outcome>,
}

/// A call waiting for an upstream.
struct Pending {
    slot: usize,
    call: SanitizedCall,
    cache_key: Option<cache::CacheKey>,
    gateway_id: u64,
}

/// Relays one JSON-RPC request body of `client` to `chain` and answers it.
pub(crate) async fn relay(
    state: &AppState,
    chain: &Chain,
    client: ClientKey,
    body: Bytes,
) -> Response<Body> {
    let started = Instant::now();
    let metrics = &state.metrics;
    let parsed = match parse::parse(&body, state.limits.max_batch_len) {
        Ok(parsed) => parsed,
        Err(error) => {
            metrics.call(&chain.name, "other", error.outcome());
            if !state.limiter.allow(client, 1).await {
                return rate_limited(state);
            }
            return respond::error_response(&error);
        }
    };
    drop(body);
    if !state.limiter.allow(client, parsed.entries.len()).await {
        return rate_limited(state);
    }

    // policy, strip, cache
    let mut slots: Vec<Slot<'_>> = Vec::with_capacity(parsed.entries.len());
    let mut pending: Vec<Pending> = Vec::new();
    let mut used_ids = HashSet::new();
    for entry in parsed.entries {
        let slot = slots.len();
        match entry {
            Entry::Invalid { id, reason } => slots.push(Slot {
                id: Some(id),
                label: "other",
                outcome: Some(Outcome::Failed(PipelineError::InvalidRequest(reason))),
            }),
            Entry::Call(call) => {
                let label = chain.policy.label(&call.method);
                if !chain.policy.permits(&call.method) {
                    slots.push(Slot {
                        id: call.id,
                        label,
                        outcome: Some(Outcome::Failed(PipelineError::MethodDenied)),
                    });
                    continue;
                }
                let (id, call) = strip::strip(call);
                let cache_key = cache::key(&chain.name_arc, &call);
                let mut outcome = None;
                if let Some(key) = &cache_key {
                    let hit = state.cache.get(key).await;
                    metrics.cache(&chain.name, hit.is_some());
                    outcome =
                        hit.map(|raw| Outcome::Cached(Answer::Result(raw.as_ref().to_owned())));
                }
                if outcome.is_none() {
                    pending.push(Pending {
                        slot,
                        call,
                        cache_key,
                        gateway_id: fresh_id(&mut used_ids),
                    });
                }
                slots.push(Slot { id, label, outcome });
            }
        }
    }

    // select, forward, restore
    if !pending.is_empty() {
        let answered =
            tokio::time::timeout(state.request_timeout, dispatch(state, chain, &pending)).await;
        let mut answered =
            answered.unwrap_or_else(|_| vec![Err(PipelineError::UpstreamTimeout); pending.len()]);
        for (pending, result) in pending.iter().zip(answered.drain(..)) {
            let outcome = match result {
                Ok(answer) => {
                    if let (Some(key), Answer::Result(raw)) = (&pending.cache_key, &answer) {
                        state.cache.insert(key.clone(), raw).await;
                    }
                    Outcome::Answered(answer)
                }
                Err(error) => Outcome::Failed(error),
            };
            if let Some(slot) = slots.get_mut(pending.slot) {
                slot.outcome = Some(outcome);
            }
        }
    }

    // respond, metrics
    let mut answers = Vec::with_capacity(slots.len());
    let mut logged: Vec<PipelineError> = Vec::new();
    for slot in &slots {
        let outcome = slot
            .outcome
            .as_ref()
            .unwrap_or(&Outcome::Failed(PipelineError::Internal));
        let label = match outcome {
            Outcome::Answered(Answer::Result(_)) => "ok",
            Outcome::Answered(Answer::Error(_)) => "error",
            Outcome::Cached(_) => "cached",
            Outcome::Failed(error) => {
                if !logged.contains(error) {
                    error.log();
                    logged.push(error.clone());
                }
                error.outcome()
            }
        };
        metrics.call(&chain.name, slot.label, label);
        let Some(id) = &slot.id else { continue };
        answers.push(match outcome {
            Outcome::Answered(answer) | Outcome::Cached(answer) => {
                restore::client_answer(id, answer)
            }
            Outcome::Failed(error) => respond::error_answer(error, id),
        });
    }
    metrics.request_duration(&chain.name, started.elapsed());
    let response = respond::answers_response(parsed.batch, answers);
    if response_too_large(&response, state.limits.max_response_bytes) {
        return respond::error_response(&PipelineError::UpstreamTooLarge {
            max: state.limits.max_response_bytes,
        });
    }
    response
}

fn response_too_large(response: &Response<Body>, max: usize) -> bool {
    use hyper::body::Body as _;
    response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|len| len > max as u64)
}

fn rate_limited(state: &AppState) -> Response<Body> {
    state.metrics.rate_limited();
    respond::error_response(&PipelineError::RateLimited)
}

/// A random gateway id, unique within the request, below 2^53 so that upstreams that read
/// JSON numbers as doubles keep it exact.
fn fresh_id(used: &mut HashSet<u64>) -> u64 {
    let mut rng = rand::thread_rng();
    loop {
        let id = rng.gen_range(1..(1_u64 << 53));
        if used.insert(id) {
            return id;
        }
    }
}

/// Spreads the pending calls at random over the chain's upstreams (one exchange per upstream
/// chosen), forwards the exchanges concurrently and restores the answers in `pending` order.
async fn dispatch(
    state: &AppState,
    chain: &Chain,
    pending: &[Pending],
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
        }
    }
    let exchange = forward::Exchange {
        client: &state.client,
        metrics: &state.metrics,
        chain,
        max_response_bytes: state.limits.max_response_bytes,
    };
    let exchanges = groups.into_iter().map(|(upstream, members)| {
        let exchange = &exchange;
        async move {
            let calls: Vec<(u64, &SanitizedCall)> = members
                .iter()
                .filter_map(|&n| pending.get(n).map(|p| (p.gateway_id, &p.call)))
                .collect();
            let result = forward::forward(exchange, upstream, &calls).await;
            (members, result)
        }
    });
    let broadcasts = broadcasts.into_iter().filter_map(|n| {
        let p = pending.get(n)?;
        let exchange = &exchange;
        Some(async move {
            let result = forward::broadcast(exchange, (p.gateway_id, &p.call)).await;
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
                            .take(p.gateway_id)
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
