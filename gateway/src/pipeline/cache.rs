//! `cache`: answers to calls whose result can never change, keyed by the [`SanitizedCall`]
//! (never by anything of the client). Only non-`null` results are kept: a block that is not
//! known yet may be known later, and errors are not answers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;

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
    inner: Option<moka::future::Cache<CacheKey, Arc<RawValue>>>,
}

impl ResponseCache {
    /// A cache as configured.
    pub(crate) fn new(config: &CacheConfig) -> Self {
        let inner = config.enabled.then(|| {
            moka::future::Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(Duration::from_secs(config.ttl_seconds))
                .build()
        });
        Self { inner }
    }

    /// The cached result for `key`.
    pub(crate) async fn get(&self, key: &CacheKey) -> Option<Arc<RawValue>> {
        match &self.inner {
            Some(cache) => cache.get(key).await,
            None => None,
        }
    }

    /// Keeps `result` for `key` unless it is `null`.
    pub(crate) async fn insert(&self, key: CacheKey, result: &RawValue) {
        if let Some(cache) = &self.inner
            && result.get() != "null"
        {
            cache.insert(key, Arc::from(result.to_owned())).await;
        }
    }
}
