//! `plan`: a parsed request becomes its slots (one per call, in client order) and the sanitised
//! calls that need an answer, each under a fresh gateway id. Pure: policy, strip and cache keys
//! are applied here; lookups and I/O are the driver's.

use std::collections::HashSet;
use std::sync::Arc;

use super::assemble::{Outcome, Slot};
use super::cache::{self, CacheKey};
use super::error::PipelineError;
use super::parse::{Entry, ParsedRequest};
use super::policy::MethodPolicy;
use super::strip::{self, GatewayId, SanitizedCall};

/// A call that needs an answer.
#[derive(Debug)]
pub struct Planned {
    /// Its slot.
    pub slot: usize,
    /// The call.
    pub call: SanitizedCall,
    /// Its cache key, when cacheable.
    pub(crate) cache_key: Option<CacheKey>,
    /// The id it is sent under.
    pub id: GatewayId,
}

/// The plan of one request.
#[derive(Debug)]
pub struct Plan<'a> {
    /// Whether the answer is an array.
    pub batch: bool,
    /// One per call, in client order. Planned calls start as `Failed(Internal)`, which the
    /// driver replaces with their answer.
    pub slots: Vec<Slot<'a>>,
    /// The calls to answer from the cache or an upstream.
    pub calls: Vec<Planned>,
}

/// Plans `parsed` under `policy` on chain `chain`.
pub fn plan<'a>(parsed: ParsedRequest, policy: &'a MethodPolicy, chain: &Arc<str>) -> Plan<'a> {
    let batch = parsed.is_batch();
    let mut slots = Vec::with_capacity(parsed.len());
    let mut calls = Vec::new();
    let mut used = HashSet::new();
    for entry in parsed.into_entries() {
        let slot = slots.len();
        match entry {
            Entry::Invalid { id, reason } => slots.push(Slot {
                id: Some(id),
                label: "other",
                outcome: Outcome::Failed(PipelineError::InvalidRequest(reason)),
            }),
            Entry::Call(call) => {
                let label = policy.label(call.method());
                match policy.permit(call) {
                    Err(denied) => slots.push(Slot {
                        id: denied.id,
                        label,
                        outcome: Outcome::Failed(denied.error),
                    }),
                    Ok(permitted) => {
                        let (id, call) = strip::strip(permitted);
                        calls.push(Planned {
                            slot,
                            cache_key: cache::key(chain, &call),
                            call,
                            id: GatewayId::fresh(&mut used),
                        });
                        slots.push(Slot {
                            id,
                            label,
                            outcome: Outcome::Failed(PipelineError::Internal),
                        });
                    }
                }
            }
        }
    }
    Plan {
        batch,
        slots,
        calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse::{ParseLimits, parse};

    fn planned(body: &str) -> Plan<'static> {
        static POLICY: std::sync::LazyLock<MethodPolicy> =
            std::sync::LazyLock::new(|| MethodPolicy::new(None, vec!["admin_*".to_owned()]));
        let parsed = parse(
            body.as_bytes(),
            ParseLimits {
                max_batch_len: 100,
                max_depth: 16,
            },
        )
        .unwrap();
        plan(parsed, &POLICY, &Arc::from("eth"))
    }

    #[test]
    fn slots_in_client_order_with_notifications_denials_and_invalid_members() {
        let plan = planned(
            r#"[{"jsonrpc":"2.0","id":"a","method":"eth_chainId"},
                {"jsonrpc":"2.0","method":"eth_blockNumber"},
                {"jsonrpc":"2.0","id":2,"method":"admin_peers"},
                5,
                {"jsonrpc":"2.0","id":"a","method":"eth_blockNumber","params":[]}]"#,
        );
        assert!(plan.batch);
        let ids: Vec<Option<&str>> = plan
            .slots
            .iter()
            .map(|s| s.id.as_ref().map(|id| id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [Some("\"a\""), None, Some("2"), Some("null"), Some("\"a\"")]
        );
        assert!(matches!(
            plan.slots[2].outcome,
            Outcome::Failed(PipelineError::MethodDenied)
        ));
        assert_eq!(plan.slots[2].label, "other");
        assert!(matches!(
            plan.slots[3].outcome,
            Outcome::Failed(PipelineError::InvalidRequest(_))
        ));
        // The notification is relayed (its answer is dropped later); the duplicate id too.
        let relayed: Vec<usize> = plan.calls.iter().map(|c| c.slot).collect();
        assert_eq!(relayed, [0, 1, 4]);
        let unique: HashSet<GatewayId> = plan.calls.iter().map(|c| c.id).collect();
        assert_eq!(unique.len(), 3, "gateway ids are unique within a request");
        assert!(
            plan.calls[0].cache_key.is_some(),
            "eth_chainId is cacheable"
        );
        assert!(plan.calls[1].cache_key.is_none());
    }
}
