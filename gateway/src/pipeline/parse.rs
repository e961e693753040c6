//! `parse`: the client's body becomes a [`SanitizedCall`], the only thing `forward` accepts.

use bytes::Bytes;
use serde_json::Value;

use super::PipelineError;

/// A JSON-RPC call re-serialised canonically: no client whitespace, no client key order, no
/// duplicate members. It remembers the ids so that errors can answer in the client's shape.
#[derive(Debug, Clone)]
pub(crate) struct SanitizedCall {
    body: Bytes,
    shape: CallShape,
}

/// Whether the client sent one call or a batch, and the ids to answer with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallShape {
    /// One call; `id` is `null` for a notification or a missing id.
    Single {
        /// The client's id.
        id: Value,
    },
    /// A batch; `None` marks a notification, which gets no answer.
    Batch {
        /// The client's ids, in order.
        ids: Vec<Option<Value>>,
    },
}

impl SanitizedCall {
    /// The canonical body sent upstream.
    pub(crate) fn body(&self) -> &Bytes {
        &self.body
    }

    /// The call's shape and ids.
    pub(crate) fn shape(&self) -> &CallShape {
        &self.shape
    }
}

/// Parses a request body as JSON-RPC and re-serialises it canonically.
///
/// Not JSON → [`PipelineError::Parse`] (-32700). JSON that is neither an object nor a non-empty
/// array → [`PipelineError::InvalidRequest`] (-32600).
pub(crate) fn parse(body: &[u8]) -> Result<SanitizedCall, PipelineError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|_| PipelineError::Parse)?;
    sort_keys(&mut value);
    let shape = match &value {
        Value::Object(call) => CallShape::Single {
            id: call.get("id").cloned().unwrap_or(Value::Null),
        },
        Value::Array(calls) if !calls.is_empty() => CallShape::Batch {
            ids: calls
                .iter()
                .map(|call| {
                    call.as_object()
                        .map(|c| c.get("id").cloned().unwrap_or(Value::Null))
                })
                .map(|id| match id {
                    // A batch element without an id is a notification; a non-object element is
                    // still answered (with an error, by the upstream), under id null.
                    None => Some(Value::Null),
                    Some(Value::Null) => None,
                    Some(id) => Some(id),
                })
                .collect(),
        },
        _ => return Err(PipelineError::InvalidRequest),
    };
    // Keys sorted at every level and no whitespace (`to_vec`): the canonical form.
    let body = serde_json::to_vec(&value).map_err(|_| PipelineError::Internal)?;
    Ok(SanitizedCall {
        body: Bytes::from(body),
        shape,
    })
}

/// Sorts object keys at every depth, so the client's key order never reaches an upstream even
/// when some crate in the build turns on serde_json's `preserve_order`.
fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_whitespace_and_key_order() {
        let call = parse(
            br#" { "params" : [ ], "id" : 7 ,"method":"eth_blockNumber", "jsonrpc":"2.0" } "#,
        )
        .unwrap();
        assert_eq!(
            call.body().as_ref(),
            br#"{"id":7,"jsonrpc":"2.0","method":"eth_blockNumber","params":[]}"#
        );
        assert_eq!(call.shape(), &CallShape::Single { id: Value::from(7) });
    }

    #[test]
    fn nested_keys_are_sorted() {
        let call = parse(br#"{"params":[{"z":1,"a":{"y":2,"b":3}}],"method":"m","id":1}"#).unwrap();
        assert_eq!(
            call.body().as_ref(),
            br#"{"id":1,"method":"m","params":[{"a":{"b":3,"y":2},"z":1}]}"#
        );
    }

    #[test]
    fn duplicate_members_collapse() {
        let call = parse(br#"{"id":1,"id":2,"method":"m"}"#).unwrap();
        assert_eq!(call.body().as_ref(), br#"{"id":2,"method":"m"}"#);
    }

    #[test]
    fn batch_ids() {
        let call = parse(br#"[{"id":"a","method":"m"},{"method":"n"},{"id":null,"method":"o"},5]"#)
            .unwrap();
        assert_eq!(
            call.shape(),
            &CallShape::Batch {
                ids: vec![Some(Value::from("a")), None, None, Some(Value::Null)]
            }
        );
    }

    #[test]
    fn rejects() {
        assert!(matches!(parse(b"{"), Err(PipelineError::Parse)));
        assert!(matches!(parse(b""), Err(PipelineError::Parse)));
        assert!(matches!(parse(b"[]"), Err(PipelineError::InvalidRequest)));
        assert!(matches!(parse(b"42"), Err(PipelineError::InvalidRequest)));
    }
}
