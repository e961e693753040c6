//! `policy`: which methods a chain relays (DESIGN §5), and which method names may be metric
//! labels. Patterns are a method name or a prefix followed by `*`.
//!
//! A [`ClientCall`] becomes a [`PermittedCall`] only through [`MethodPolicy::permit`]; `strip`
//! takes nothing else.

use super::error::PipelineError;
use super::parse::{ClientCall, ClientId};

/// Standard execution-API methods: the metric labels used when a chain has no `allow_methods`
/// (anything else is counted as `other`, so clients cannot blow up the label set).
const KNOWN_METHODS: [&str; 48] = [
    "eth_accounts",
    "eth_blobBaseFee",
    "eth_blockNumber",
    "eth_call",
    "eth_chainId",
    "eth_coinbase",
    "eth_createAccessList",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_getBalance",
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getCode",
    "eth_getFilterChanges",
    "eth_getFilterLogs",
    "eth_getLogs",
    "eth_getProof",
    "eth_getStorageAt",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByHash",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_getUncleCountByBlockHash",
    "eth_getUncleCountByBlockNumber",
    "eth_maxPriorityFeePerGas",
    "eth_newBlockFilter",
    "eth_newFilter",
    "eth_newPendingTransactionFilter",
    "eth_sendRawTransaction",
    "eth_simulateV1",
    "eth_syncing",
    "eth_uninstallFilter",
    "eth_baseFee",
    "eth_getHeaderByHash",
    "eth_getHeaderByNumber",
    "eth_sendTransaction",
    "eth_sign",
    "eth_signTransaction",
    "net_listening",
    "net_peerCount",
    "net_version",
    "web3_clientVersion",
    "web3_sha3",
];

/// A chain's method policy. The default denies nothing but JSON-RPC's reserved `rpc.` methods.
#[derive(Debug, Clone, Default)]
pub struct MethodPolicy {
    allow: Option<Vec<String>>,
    deny: Vec<String>,
}

/// A call the chain's policy permits. Only [`MethodPolicy::permit`] builds one.
#[derive(Debug)]
pub struct PermittedCall {
    id: Option<ClientId>,
    method: String,
    params: Box<str>,
}

impl PermittedCall {
    /// The method name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Takes the call apart for `strip`.
    pub(super) fn into_parts(self) -> (Option<ClientId>, String, Box<str>) {
        (self.id, self.method, self.params)
    }
}

/// Whether `method` matches `pattern` exactly (allow lists: what is relayed is what was listed).
fn matches(pattern: &str, method: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => method.starts_with(prefix),
        None => pattern == method,
    }
}

/// Whether `method` matches `pattern` in any ASCII case (deny lists: some nodes resolve method
/// names without regard to case, so `Admin_peers` must be denied like `admin_peers`).
fn matches_any_case(pattern: &str, method: &str) -> bool {
    let method = method.as_bytes();
    match pattern.strip_suffix('*') {
        Some(prefix) => method
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes())),
        None => method.eq_ignore_ascii_case(pattern.as_bytes()),
    }
}

/// Methods that only make sense on a connection that stays open (WebSocket).
const SUBSCRIPTION_METHODS: [&str; 2] = ["eth_subscribe", "eth_unsubscribe"];

/// A call the policy does not let through: the client's id (`None` for a notification) and
/// the error it is answered with.
#[derive(Debug)]
pub struct Denied {
    /// The client's id.
    pub id: Option<ClientId>,
    /// Why.
    pub error: PipelineError,
}

impl MethodPolicy {
    /// A policy from the chain's `allow_methods` and `deny_methods`.
    pub(crate) fn new(allow: Option<Vec<String>>, deny: Vec<String>) -> Self {
        Self { allow, deny }
    }

    /// Lets `call` through when [`permits`](Self::permits) its method; else gives back the
    /// client's id and why, for the -32601 answer.
    pub fn permit(&self, call: ClientCall) -> Result<PermittedCall, Denied> {
        let (id, method, params) = call.into_parts();
        if SUBSCRIPTION_METHODS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&method))
        {
            // Relayed, they would come back as the node's error (with its stack trace); a
            // subscription has no meaning on one HTTP request.
            return Err(Denied {
                id,
                error: PipelineError::SubscriptionOverHttp,
            });
        }
        if self.permits(&method) {
            Ok(PermittedCall { id, method, params })
        } else {
            Err(Denied {
                id,
                error: PipelineError::MethodDenied,
            })
        }
    }

    /// Whether `method` is relayed: on the allow list (when there is one), not on the deny list
    /// in any case, and not one of JSON-RPC's reserved `rpc.` methods.
    pub fn permits(&self, method: &str) -> bool {
        let allowed = self
            .allow
            .as_ref()
            .is_none_or(|allow| allow.iter().any(|p| matches(p, method)));
        allowed
            && !matches_any_case("rpc.*", method)
            && !self.deny.iter().any(|p| matches_any_case(p, method))
    }

    /// The `method` metric label: the name when it is permitted and on the allow list (an exact
    /// entry, or a standard method matched by a pattern or by the absence of an allow list),
    /// else `other`.
    pub fn label(&self, method: &str) -> &str {
        if !self.permits(method) {
            return "other";
        }
        if let Some(known) = KNOWN_METHODS.iter().find(|known| **known == method) {
            return known;
        }
        self.allow
            .iter()
            .flatten()
            .find(|allowed| *allowed == method)
            .map_or("other", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_DENY_METHODS;

    fn default_policy() -> MethodPolicy {
        MethodPolicy::new(
            None,
            DEFAULT_DENY_METHODS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        )
    }

    #[test]
    fn default_denies_design_prefixes() {
        let policy = default_policy();
        for method in [
            "admin_peers",
            "debug_traceTransaction",
            "personal_sign",
            "miner_start",
            "txpool_content",
            "engine_newPayloadV3",
            "rpc.discover",
        ] {
            assert!(!policy.permits(method), "{method}");
            assert_eq!(policy.label(method), "other");
        }
        assert!(policy.permits("eth_call"));
        assert_eq!(policy.label("eth_call"), "eth_call");
        // Nodes that resolve names in any case must not be reachable through another spelling.
        for method in [
            "Admin_peers",
            "DEBUG_traceTransaction",
            "Personal_Sign",
            "RPC.discover",
        ] {
            assert!(!policy.permits(method), "{method}");
        }
        assert!(policy.permits("eth_someFutureMethod"));
        assert_eq!(policy.label("eth_someFutureMethod"), "other");
    }

    #[test]
    fn allow_list() {
        let policy = MethodPolicy::new(
            Some(vec!["eth_call".into(), "net_*".into(), "debug_x".into()]),
            vec!["debug_*".into()],
        );
        assert!(policy.permits("eth_call"));
        assert!(policy.permits("net_version"));
        assert!(policy.permits("net_whatever"));
        assert_eq!(policy.label("net_whatever"), "other");
        assert_eq!(policy.label("net_version"), "net_version");
        assert!(!policy.permits("eth_blockNumber"));
        assert!(!policy.permits("debug_x"), "deny wins");
    }
}
