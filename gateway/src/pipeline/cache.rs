//! `cache`: answers to calls whose result can never change, keyed by the [`SanitizedCall`]
//! (never by anything of the client). Only non-`null` results are kept: a block that is not
//! known yet may be known later, and errors are not answers.
//!
//! The cache is bounded by bytes, not only entries, and a hit shares the stored bytes instead of
//! copying them: a batch of a hundred hits on one large result costs one copy of it, not a
//! hundred.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::strip::SanitizedCall;
use crate::config::CacheConfig;

/// Methods whose non-null result is immutable: the chain's identity, and lookups by hash.
const CACHEABLE: [&str; 6] = [
    "eth_chainId",
    "net_version",
    "eth_getBlockByHash",
    "eth_getBlockTransactionCountByHash",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getUncleCountByBlockHash",
];

/// What an entry costs besides its key and value (moka's own bookkeeping, roughly).
const ENTRY_OVERHEAD: usize = 128;

/// A cache key: the chain and the sanitised call. Built only from a [`SanitizedCall`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    chain: Arc<str>,
    call: SanitizedCall,
}

/// The key of `call` on `chain`, when its method is cacheable.
pub(crate) fn key(chain: &Arc<str>, call: &SanitizedCall) -> Option<CacheKey> {
    CACHEABLE.contains(&call.method()).then(|| CacheKey {
        chain: Arc::clone(chain),
        call: call.clone(),
    })
}

/// The response cache (a no-op when disabled).
#[derive(Debug, Clone)]
pub(crate) struct ResponseCache {
    inner: Option<moka::future::Cache<CacheKey, Bytes>>,
    /// Larger results are not kept: one of them must not evict everything else.
    max_result_bytes: usize,
}

impl ResponseCache {
    /// A cache as configured: at most `max_bytes` of keys and results, and at most
    /// `max_entries` entries (every entry weighs at least `max_bytes / max_entries`).
    pub(crate) fn new(config: &CacheConfig) -> Self {
        let min_weight = usize::try_from(config.max_bytes / config.max_entries.max(1))
            .unwrap_or(usize::MAX)
            .max(1);
        let inner = config.enabled.then(|| {
            moka::future::Cache::builder()
                .max_capacity(config.max_bytes)
                .weigher(move |key: &CacheKey, value: &Bytes| {
                    let weight =
                        (key.chain.len() + key.call.weight() + value.len() + ENTRY_OVERHEAD)
                            .max(min_weight);
                    u32::try_from(weight).unwrap_or(u32::MAX)
                })
                .time_to_live(Duration::from_secs(config.ttl_seconds))
                .build()
        });
        Self {
            inner,
            max_result_bytes: usize::try_from(config.max_bytes / 16).unwrap_or(usize::MAX),
        }
    }

    /// The cached result for `key`, sharing the stored bytes.
    pub(crate) async fn get(&self, key: &CacheKey) -> Option<Bytes> {
        match &self.inner {
            Some(cache) => cache.get(key).await,
            None => None,
        }
    }

    /// Keeps a copy of `result` for `key` unless it is `null` or too large. A copy, because
    /// `result` usually shares the buffer of a whole upstream answer.
    pub(crate) async fn insert(&self, key: CacheKey, result: &[u8]) {
        if let Some(cache) = &self.inner
            && result != b"null"
            && result.len() <= self.max_result_bytes
        {
            cache.insert(key, Bytes::copy_from_slice(result)).await;
        }
    }
}
