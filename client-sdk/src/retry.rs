//! Which calls may be sent twice, and which failures are worth a second attempt.
//!
//! A retry repeats a request that may already have reached the node, so only reads are retried:
//! sending a transaction twice is at best a wasted call and at worst a second payment (with a
//! fresh nonce from a wallet that saw the first one fail). Everything not known to be a pure read
//! is treated as a write.

use std::time::Duration;

use serde_json::Value;

use crate::ClientError;

/// The first back-off delay; it doubles with each further attempt.
const BACKOFF_START: Duration = Duration::from_millis(100);

/// The longest back-off delay.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Methods that only read state and return the same answer when asked twice.
const IDEMPOTENT_METHODS: [&str; 16] = [
    "eth_blockNumber",
    "eth_call",
    "eth_chainId",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_blobBaseFee",
    "eth_syncing",
    "eth_protocolVersion",
    "eth_accounts",
    "eth_createAccessList",
    "net_version",
    "net_listening",
    "net_peerCount",
    "web3_clientVersion",
];

/// `eth_get*` methods that are *not* pure reads: filter polling consumes the changes it returns.
const STATEFUL_GETTERS: [&str; 2] = ["eth_getFilterChanges", "eth_getWork"];

/// Whether `method` may be retried: a known read, or an `eth_get*` getter other than filter
/// polling. `eth_sendRawTransaction`, `eth_sendTransaction`, signing, filters and subscriptions
/// never are.
pub fn is_idempotent(method: &str) -> bool {
    if IDEMPOTENT_METHODS.contains(&method) {
        return true;
    }
    method.starts_with("eth_get") && !STATEFUL_GETTERS.contains(&method)
}

/// Whether a raw JSON-RPC body (one call or a batch) consists of idempotent calls only. A body
/// that does not parse, or an empty batch, is not retried.
pub fn body_is_idempotent(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let method_ok = |call: &Value| {
        call.get("method")
            .and_then(Value::as_str)
            .is_some_and(is_idempotent)
    };
    match &value {
        Value::Array(calls) => !calls.is_empty() && calls.iter().all(method_ok),
        call => method_ok(call),
    }
}

/// Whether a failed attempt of an idempotent call is worth repeating: network trouble, a broken
/// connection, a timeout, or a gateway that is briefly unavailable. Refusals (attestation, pins,
/// configuration) and answers (JSON-RPC errors, other HTTP statuses) are final.
pub fn is_retryable(error: &ClientError) -> bool {
    match error {
        ClientError::Connect { .. }
        | ClientError::Tls { .. }
        | ClientError::Transport(_)
        | ClientError::Timeout(_) => true,
        ClientError::Http { status, .. } => is_unavailable(*status),
        _ => false,
    }
}

/// Whether an HTTP status says the gateway (or what is in front of it) is briefly unavailable.
pub fn is_unavailable(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

/// The pause before retry number `retry` (0-based).
pub fn backoff(retry: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(2u32.saturating_pow(retry))
        .min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_are_idempotent() {
        for read in [
            "eth_blockNumber",
            "eth_getBalance",
            "eth_getTransactionReceipt",
            "eth_call",
            "eth_chainId",
        ] {
            assert!(is_idempotent(read), "{read}");
        }
        for write in [
            "eth_sendRawTransaction",
            "eth_sendTransaction",
            "eth_sign",
            "eth_newFilter",
            "eth_getFilterChanges",
            "eth_subscribe",
            "personal_sign",
            "",
        ] {
            assert!(!is_idempotent(write), "{write}");
        }
    }

    #[test]
    fn bodies_are_idempotent_only_when_every_call_is() {
        assert!(body_is_idempotent(
            br#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        ));
        assert!(body_is_idempotent(
            br#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["0x00","latest"]}]"#
        ));
        assert!(!body_is_idempotent(
            br#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["0x00"]}]"#
        ));
        assert!(!body_is_idempotent(b"[]"));
        assert!(!body_is_idempotent(b"not json"));
        assert!(!body_is_idempotent(br#"{"jsonrpc":"2.0","id":1}"#));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(10), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
