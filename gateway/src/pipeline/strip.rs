//! `strip`: a [`PermittedCall`] becomes a [`SanitizedCall`], the only type `cache`, `select` and
//! `forward` accept. Its fields are private to this module, so the only way to build one is
//! [`strip`], which keeps the method and the canonical params and nothing else: not the
//! client's id, not extra members, not the client's formatting.

use std::collections::HashSet;

use bytes::Bytes;
use rand::Rng as _;

use super::envelope;
use super::parse::ClientId;
use super::policy::PermittedCall;

/// A call with nothing of the client left but what the upstream needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SanitizedCall {
    method: Box<str>,
    /// The params, re-serialised canonically (sorted keys, no whitespace).
    params: Box<str>,
}

impl SanitizedCall {
    /// The method name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The canonical params' JSON text (the private relay path reads the transaction from it).
    pub(crate) fn params(&self) -> &str {
        &self.params
    }

    /// Bytes this call holds, for cache weights.
    pub(crate) fn weight(&self) -> usize {
        self.method.len() + self.params.len()
    }

    /// Appends the upstream form `{"jsonrpc":"2.0","id":ID,"method":M,"params":P}` with the
    /// gateway-chosen `id`.
    fn write_upstream_json(&self, id: u64, out: &mut Vec<u8>) {
        envelope::open(out, id.to_string().as_bytes(), "method");
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &*self.method);
        out.extend_from_slice(br#","params":"#);
        out.extend_from_slice(self.params.as_bytes());
        out.extend_from_slice(envelope::CLOSE);
    }
}

/// A gateway-chosen request id: random, below 2^53 so that upstreams reading JSON numbers as
/// doubles keep it exact, and never derived from anything of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GatewayId(u64);

impl GatewayId {
    /// A random id not in `used` (which it joins).
    pub fn fresh(used: &mut HashSet<GatewayId>) -> Self {
        loop {
            let id = Self::random();
            if used.insert(id) {
                return id;
            }
        }
    }

    /// A random id.
    pub fn random() -> Self {
        GatewayId(rand::thread_rng().gen_range(1..(1_u64 << 53)))
    }

    /// The id as sent upstream.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// The body of an upstream request: sanitised calls under gateway ids, canonical JSON, built
/// only here. It is the only body the upstream request function accepts, so no client bytes can
/// reach an upstream any other way.
///
/// Neither raw bytes nor a call straight from the parser become one:
///
/// ```compile_fail
/// use shroud_gateway::pipeline::strip::UpstreamBody;
/// let body = UpstreamBody(bytes::Bytes::from_static(b"{}"));
/// ```
///
/// ```compile_fail
/// # fn call() -> shroud_gateway::pipeline::parse::ClientCall { todo!() }
/// use shroud_gateway::pipeline::strip::{GatewayId, UpstreamBody};
/// let mut used = Default::default();
/// let body = UpstreamBody::new(&[(GatewayId::fresh(&mut used), &call())]);
/// ```
///
/// ```compile_fail
/// # fn call() -> shroud_gateway::pipeline::policy::PermittedCall { todo!() }
/// use shroud_gateway::pipeline::strip::{GatewayId, UpstreamBody};
/// let mut used = Default::default();
/// let body = UpstreamBody::new(&[(GatewayId::fresh(&mut used), &call())]);
/// ```
///
/// What compiles is the order of the stages:
///
/// ```
/// use shroud_gateway::pipeline::parse::{parse, Entry, ParseLimits};
/// use shroud_gateway::pipeline::policy::MethodPolicy;
/// use shroud_gateway::pipeline::strip::{strip, GatewayId, UpstreamBody};
/// let limits = ParseLimits { max_batch_len: 1, max_depth: 8 };
/// let parsed = parse(br#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#, limits).unwrap();
/// let Some(Entry::Call(call)) = parsed.into_entries().pop() else { unreachable!() };
/// let (_client_id, call) = strip(MethodPolicy::default().permit(call).unwrap());
/// let mut used = Default::default();
/// let body = UpstreamBody::new(&[(GatewayId::fresh(&mut used), &call)]);
/// assert!(body.as_bytes().starts_with(br#"{"jsonrpc":"2.0","id":"#));
/// ```
#[derive(Debug, Clone)]
pub struct UpstreamBody(Bytes);

impl UpstreamBody {
    /// The canonical upstream body of `calls`: one object for one call, else an array.
    pub fn new(calls: &[(GatewayId, &SanitizedCall)]) -> Self {
        let mut out = Vec::with_capacity(64 * calls.len());
        if let [(id, call)] = calls {
            call.write_upstream_json(id.get(), &mut out);
        } else {
            out.push(b'[');
            for (n, (id, call)) in calls.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                call.write_upstream_json(id.get(), &mut out);
            }
            out.push(b']');
        }
        Self(Bytes::from(out))
    }

    /// The gateway's own health probe: `eth_chainId` under `id`.
    pub fn chain_id_probe(id: GatewayId) -> Self {
        Self(Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"eth_chainId","params":[]}}"#,
            id.get()
        )))
    }

    /// One of the gateway's own calls (the chain follower's): `method` with `params`, which
    /// hold only what the gateway chose (block numbers and hashes read from an upstream, its
    /// own filter ids), never anything of a client's.
    pub(crate) fn own_call(
        id: GatewayId,
        method: &'static str,
        params: &serde_json::Value,
    ) -> Self {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id.get(),
            "method": method,
            "params": params,
        });
        Self(Bytes::from(body.to_string()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, for the HTTP request.
    pub(crate) fn into_bytes(self) -> Bytes {
        self.0
    }
}

/// Splits a permitted call into the client's id (kept by the gateway, `None` for a
/// notification) and the sanitised call.
pub fn strip(call: PermittedCall) -> (Option<ClientId>, SanitizedCall) {
    let (id, method, params) = call.into_parts();
    (
        id,
        SanitizedCall {
            method: method.into_boxed_str(),
            params,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse::{Entry, ParseLimits, parse};
    use crate::pipeline::policy::MethodPolicy;

    #[test]
    fn upstream_form_is_canonical_with_the_gateway_id() {
        let parsed = parse(
            br#"{ "x-extra": 1, "params" : [ {"b":1, "a":2} ], "id" : "client" , "method":"eth_call", "jsonrpc":"2.0" }"#,
            ParseLimits {
                max_batch_len: 1,
                max_depth: 8,
            },
        )
        .unwrap();
        let Some(Entry::Call(call)) = parsed.into_entries().into_iter().next() else {
            panic!("a call");
        };
        let permitted = MethodPolicy::new(None, Vec::new()).permit(call).unwrap();
        let (id, call) = strip(permitted);
        assert_eq!(id.unwrap().as_str(), "\"client\"");
        let mut out = Vec::new();
        call.write_upstream_json(99, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"jsonrpc":"2.0","id":99,"method":"eth_call","params":[{"a":2,"b":1}]}"#
        );
    }
}
