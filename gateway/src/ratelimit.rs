//! Per-client rate limiting without keeping who the client is.
//!
//! The client's IP address is turned into a [`ClientKey`] at accept time: SipHash with random
//! keys drawn at start (`RandomState`), so the key cannot be reversed or correlated across
//! restarts, and the address itself never leaves the accept loop. The token buckets live in
//! memory only, in a moka cache that forgets idle clients.

use std::hash::BuildHasher as _;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::settings::Limits;

/// The part of an IPv6 address that names the client: its /64.
const IPV6_PREFIX_MASK: u128 = !0 << 64;

/// An opaque per-client key: a keyed hash of the client's IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey(u64);

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: f64) -> Self {
        Self {
            tokens: burst,
            updated: Instant::now(),
        }
    }

    /// Refills at `rate` per second up to `burst`, then takes `cost` (at most `burst`) tokens;
    /// `false` when there are not enough (and then takes none).
    fn take(&mut self, rate: f64, burst: f64, cost: f64) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
        let cost = cost.min(burst);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

/// One token bucket for the whole gateway, for work whose cost does not depend on who asks
/// (fresh evidence from the TEE): a client spread over many addresses gets no more of it.
#[derive(Debug)]
pub(crate) struct SharedBucket {
    /// Tokens per second; 0: nothing is ever allowed.
    rate: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

impl SharedBucket {
    /// `per_minute` tokens a minute, `burst` at once.
    pub(crate) fn per_minute(per_minute: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(per_minute) / 60.0,
            burst,
            bucket: Mutex::new(Bucket::full(if per_minute == 0 { 0.0 } else { burst })),
        }
    }

    /// Takes one token; `false` when there is none.
    pub(crate) fn allow(&self) -> bool {
        self.rate > 0.0
            && self
                .bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(self.rate, self.burst, 1.0)
    }

    /// Whole seconds until a token is back (at least 1): the `Retry-After` of a refusal.
    pub(crate) fn retry_after_secs(&self) -> u64 {
        if self.rate <= 0.0 {
            return 3600;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive number of seconds, at most 60"
        )]
        let secs = (1.0 / self.rate).ceil() as u64;
        secs.max(1)
    }
}

/// The rate limiter (a no-op when the rate is 0).
pub(crate) struct RateLimiter {
    hasher: std::collections::hash_map::RandomState,
    buckets: moka::future::Cache<ClientKey, Arc<Mutex<Bucket>>>,
    rate: f64,
    burst: f64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter as configured.
    pub(crate) fn new(limits: &Limits) -> Self {
        let rate = f64::from(limits.rate_limit_per_second);
        let burst = f64::from(limits.rate_limit_burst.max(1));
        // A bucket idle for the time it takes to refill is full again: forget it.
        let idle = Duration::from_secs_f64((burst / rate.max(1.0)).clamp(1.0, 3600.0));
        Self {
            hasher: std::collections::hash_map::RandomState::new(),
            buckets: moka::future::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(idle)
                .build(),
            rate,
            burst,
        }
    }

    /// The key of a client address.
    pub(crate) fn key(&self, ip: IpAddr) -> ClientKey {
        // An IPv4 client over a dual-stack socket counts as its IPv4 address. An IPv6 client
        // counts as its /64: one subscriber usually holds a whole /64, so keying on /128 would
        // give it 2^64 buckets.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or_else(
                || IpAddr::V6(Ipv6Addr::from(u128::from(v6) & IPV6_PREFIX_MASK)),
                IpAddr::V4,
            ),
            v4 @ IpAddr::V4(_) => v4,
        };
        ClientKey(self.hasher.hash_one(ip))
    }

    /// Whole seconds for an empty bucket to refill `cost` tokens (at least 1): what a refused
    /// client is told to wait (`Retry-After`).
    pub(crate) fn refill_secs(&self, cost: usize) -> u64 {
        if self.rate <= 0.0 {
            return 1;
        }
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "costs are batch lengths and the result a few seconds, far from the limits"
        )]
        let secs = ((cost.max(1) as f64).min(self.burst) / self.rate).ceil() as u64;
        secs.max(1)
    }

    /// The key shared by the clients nothing names: connections of a local forwarder that sends
    /// no PROXY header, and a PROXY header's `LOCAL` command.
    pub(crate) fn local_key(&self) -> ClientKey {
        self.key(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    }

    /// Takes `cost` tokens (at most a full bucket) from the client's bucket; `false` when there
    /// are not enough (and then takes none).
    pub(crate) async fn allow(&self, client: ClientKey, cost: usize) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let burst = self.burst;
        let bucket = self
            .buckets
            .get_with(
                client,
                async move { Arc::new(Mutex::new(Bucket::full(burst))) },
            )
            .await;
        #[expect(
            clippy::cast_precision_loss,
            reason = "costs are batch lengths, far below 2^52"
        )]
        let cost = cost as f64;
        bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(self.rate, self.burst, cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_bucket_allows_its_burst_then_refuses() {
        let bucket = SharedBucket::per_minute(60, 3);
        assert!((0..3).all(|_| bucket.allow()));
        assert!(!bucket.allow());
        assert_eq!(bucket.retry_after_secs(), 1);
        // Turned off: nothing, ever.
        let off = SharedBucket::per_minute(0, 3);
        assert!(!off.allow());
        assert_eq!(off.retry_after_secs(), 3600);
        assert_eq!(SharedBucket::per_minute(2, 1).retry_after_secs(), 30);
    }

    #[tokio::test]
    async fn buckets_per_key() {
        let limits = crate::config::LimitsConfig {
            rate_limit_per_second: 1,
            rate_limit_burst: 2,
            ..crate::config::LimitsConfig::default()
        }
        .settings()
        .unwrap();
        let limiter = RateLimiter::new(&limits);
        let a = limiter.key("127.0.0.1".parse().unwrap());
        let b = limiter.key("127.0.0.2".parse().unwrap());
        assert_ne!(a, b);
        assert_eq!(a, limiter.key("::ffff:127.0.0.1".parse().unwrap()));
        assert!(limiter.allow(a, 2).await);
        assert!(!limiter.allow(a, 1).await);
        assert!(limiter.allow(b, 1).await);
        // IPv6 clients are keyed on their /64.
        assert_eq!(
            limiter.key("2001:db8:1:2::1".parse().unwrap()),
            limiter.key("2001:db8:1:2:ffff:0:0:7".parse().unwrap())
        );
        assert_ne!(
            limiter.key("2001:db8:1:2::1".parse().unwrap()),
            limiter.key("2001:db8:1:3::1".parse().unwrap())
        );
        // Keyed: another limiter hashes the same address differently.
        let other = RateLimiter::new(&limits);
        assert_ne!(a, other.key("127.0.0.1".parse().unwrap()));
    }
}
