//! `select`: which upstream serves a call. Calls are spread at random over the chain's usable
//! upstreams (healthy or not yet probed); unhealthy ones are a last resort, and upstreams that
//! report the wrong chain id are never used.

use rand::Rng;
use rand::seq::SliceRandom;

use super::error::PipelineError;
use crate::upstream::{Chain, Health};

/// Upstream indexes in the order to try them: usable ones shuffled, then unhealthy ones
/// shuffled. Upstreams on the wrong chain are left out.
pub(crate) fn order(chain: &Chain) -> Vec<usize> {
    let mut rng = rand::thread_rng();
    let mut preferred = Vec::new();
    let mut last_resort = Vec::new();
    for (index, upstream) in chain.upstreams.iter().enumerate() {
        match upstream.health() {
            Health::Healthy | Health::Unknown => preferred.push(index),
            Health::Unhealthy => last_resort.push(index),
            Health::WrongChain => {}
        }
    }
    preferred.shuffle(&mut rng);
    last_resort.shuffle(&mut rng);
    preferred.extend(last_resort);
    preferred
}

/// A random upstream for one call: any usable one, else any unhealthy one, else `None`.
pub(crate) fn pick(chain: &Chain) -> Option<usize> {
    let mut rng = rand::thread_rng();
    let tier = |wanted: &[Health]| -> Vec<usize> {
        chain
            .upstreams
            .iter()
            .enumerate()
            .filter(|(_, u)| wanted.contains(&u.health()))
            .map(|(i, _)| i)
            .collect()
    };
    let preferred = tier(&[Health::Healthy, Health::Unknown]);
    let candidates = if preferred.is_empty() {
        tier(&[Health::Unhealthy])
    } else {
        preferred
    };
    if candidates.is_empty() {
        return None;
    }
    candidates.get(rng.gen_range(0..candidates.len())).copied()
}

/// Why a call found no upstream to try: every one reports another chain id (said as such, so a
/// misconfigured upstream is not taken for a network failure), or none is usable.
pub(crate) fn none_usable(chain: &Chain) -> PipelineError {
    let all_wrong = !chain.upstreams.is_empty()
        && chain
            .upstreams
            .iter()
            .all(|upstream| upstream.health() == Health::WrongChain);
    if all_wrong {
        PipelineError::UpstreamWrongChain
    } else {
        PipelineError::UpstreamUnavailable
    }
}

/// Whether a call is sent to every usable upstream at once rather than to one: a signed
/// transaction, idempotent by its hash, propagates best when several providers relay it.
pub(crate) fn broadcast(method: &str) -> bool {
    method == "eth_sendRawTransaction"
}

/// Whether a call may be sent again after a timeout or a failure mid-exchange: everything but
/// the methods that act with node-held keys or are not idempotent. `eth_sendRawTransaction` is
/// idempotent (by transaction hash), so it may reach several upstreams.
pub(crate) fn retry_safe(method: &str) -> bool {
    !matches!(
        method,
        "eth_sendTransaction" | "eth_submitWork" | "eth_submitHashrate" | "eth_sign"
    )
}
