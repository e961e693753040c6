//! `strip`: a [`ClientCall`] becomes a [`SanitizedCall`], the only type `cache`, `select` and
//! `forward` accept. Its fields are private to this module, so the only way to build one is
//! [`strip`], which keeps the method and the canonical params and nothing else: not the
//! client's id, not extra members, not the client's formatting.

use serde_json::value::RawValue;

use super::parse::ClientCall;

/// A call with nothing of the client left but what the upstream needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SanitizedCall {
    method: String,
    /// The params, re-serialised canonically (sorted keys, no whitespace).
    params: String,
}

impl SanitizedCall {
    /// The method name.
    pub(crate) fn method(&self) -> &str {
        &self.method
    }

    /// Appends the upstream form `{"jsonrpc":"2.0","id":ID,"method":M,"params":P}` with the
    /// gateway-chosen `id`.
    pub(crate) fn write_upstream_json(&self, id: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        out.extend_from_slice(id.to_string().as_bytes());
        out.extend_from_slice(br#","method":"#);
        // Serialising a string cannot fail.
        out.extend_from_slice(
            serde_json::to_string(&self.method)
                .unwrap_or_default()
                .as_bytes(),
        );
        out.extend_from_slice(br#","params":"#);
        out.extend_from_slice(self.params.as_bytes());
        out.push(b'}');
    }
}

/// Splits a call into the client's id (kept by the gateway, `None` for a notification) and the
/// sanitised call.
pub(crate) fn strip(call: ClientCall) -> (Option<Box<RawValue>>, SanitizedCall) {
    let ClientCall { id, method, params } = call;
    (id, SanitizedCall { method, params })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse::{Entry, parse};

    #[test]
    fn upstream_form_is_canonical_with_the_gateway_id() {
        let parsed = parse(
            br#"{ "x-extra": 1, "params" : [ {"b":1, "a":2} ], "id" : "client" , "method":"eth_call", "jsonrpc":"2.0" }"#,
            1,
        )
        .unwrap();
        let Some(Entry::Call(call)) = parsed.entries.into_iter().next() else {
            panic!("a call");
        };
        let (id, call) = strip(call);
        assert_eq!(id.unwrap().get(), "\"client\"");
        let mut out = Vec::new();
        call.write_upstream_json(99, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"jsonrpc":"2.0","id":99,"method":"eth_call","params":[{"a":2,"b":1}]}"#
        );
    }
}
