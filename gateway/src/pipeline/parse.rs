//! `parse`: the client's body becomes a [`ParsedRequest`]: one entry per call, each either a
//! well-formed [`ClientCall`] or an [`Entry::Invalid`] that is answered with -32600.
//!
//! JSON-RPC 2.0 rules applied here: invalid JSON anywhere → -32700 for the whole request; an
//! empty batch or a top level that is neither object nor array → one -32600; in a batch every
//! member is judged on its own. The client's `id` is kept as the exact bytes it sent (any
//! string, any number however large or precise, or `null`), so it can be restored verbatim.
//!
//! `params` are re-serialised canonically ([`canonical`]): no whitespace, object keys sorted at
//! every depth, strings re-escaped. Numbers keep their digits, because a JSON number read into
//! an `f64` or `u64` would silently change a large or precise value on its way upstream.

use serde_json::value::RawValue;
use std::collections::BTreeMap;

use super::PipelineError;

/// A parsed request: a single call or a batch, and its entries in client order.
#[derive(Debug)]
pub(crate) struct ParsedRequest {
    /// Whether the client sent an array (answered with an array) or one object.
    pub(crate) batch: bool,
    /// One entry per call, in client order.
    pub(crate) entries: Vec<Entry>,
}

/// One member of the request.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A well-formed call.
    Call(ClientCall),
    /// Not a valid request object; answered with -32600 under `id` (`null` when unusable).
    Invalid {
        /// The client's id when it was a legal one, else `null`.
        id: Box<RawValue>,
        /// What is wrong, for the error message.
        reason: &'static str,
    },
}

/// A well-formed call as the client sent it, minus everything but `id`, `method`, `params`.
#[derive(Debug)]
pub(crate) struct ClientCall {
    /// The exact id bytes; `None` for a notification (no `id` member at all).
    pub(crate) id: Option<Box<RawValue>>,
    /// The method name.
    pub(crate) method: String,
    /// The parameters (an array or an object) in canonical form; `[]` when absent.
    pub(crate) params: String,
}

/// `null` (the default raw value).
fn null() -> Box<RawValue> {
    Box::<RawValue>::default()
}

/// Parses a request body as JSON-RPC 2.0.
pub(crate) fn parse(body: &[u8], max_batch_len: usize) -> Result<ParsedRequest, PipelineError> {
    // Validate the whole text first: invalid JSON anywhere is a parse error for everything.
    let top: &RawValue = serde_json::from_slice(body).map_err(|_| PipelineError::Parse)?;
    let text = top.get();
    match text.as_bytes().first() {
        Some(b'[') => {
            let members: Vec<&RawValue> =
                serde_json::from_str(text).map_err(|_| PipelineError::Parse)?;
            if members.is_empty() {
                return Err(PipelineError::InvalidRequest("empty batch"));
            }
            if members.len() > max_batch_len {
                return Err(PipelineError::BatchTooLarge {
                    len: members.len(),
                    max: max_batch_len,
                });
            }
            Ok(ParsedRequest {
                batch: true,
                entries: members.into_iter().map(entry).collect(),
            })
        }
        Some(b'{') => Ok(ParsedRequest {
            batch: false,
            entries: vec![entry(top)],
        }),
        _ => Err(PipelineError::InvalidRequest(
            "expected a request object or a batch array",
        )),
    }
}

fn entry(member: &RawValue) -> Entry {
    let Ok(object) = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(member.get()) else {
        return Entry::Invalid {
            id: null(),
            reason: "a request must be an object",
        };
    };
    let id = match object.get("id") {
        None => None,
        Some(id) if is_legal_id(id) => Some(id.clone()),
        Some(_) => {
            return Entry::Invalid {
                id: null(),
                reason: "id must be a string, a number or null",
            };
        }
    };
    let invalid = |reason| Entry::Invalid {
        id: id.clone().unwrap_or_else(null),
        reason,
    };
    let version_ok = object
        .get("jsonrpc")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
        .is_some_and(|v| v == "2.0");
    if !version_ok {
        return invalid("jsonrpc must be \"2.0\"");
    }
    let Some(method) = object
        .get("method")
        .and_then(|m| serde_json::from_str::<String>(m.get()).ok())
    else {
        return invalid("method must be a string");
    };
    let params = match object.get("params") {
        None => "[]".to_owned(),
        Some(raw) if matches!(raw.get().as_bytes().first(), Some(b'[' | b'{')) => {
            let mut out = String::with_capacity(raw.get().len());
            if canonical(raw, &mut out).is_err() {
                return invalid("params are not valid JSON");
            }
            out
        }
        Some(_) => return invalid("params must be an array or an object"),
    };
    Entry::Call(ClientCall { id, method, params })
}

/// A string, a number or `null` (JSON-RPC 2.0 §4).
fn is_legal_id(id: &RawValue) -> bool {
    matches!(
        id.get().as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9' | b'n')
    )
}

/// Appends the canonical form of `value`: objects with their keys sorted (a repeated key keeps
/// its last value), arrays in order, strings decoded and re-escaped, numbers and literals with
/// their exact text. No whitespace anywhere, so the client's formatting never reaches an
/// upstream. The depth is bounded by serde_json's recursion limit on the first parse.
fn canonical(value: &RawValue, out: &mut String) -> Result<(), serde_json::Error> {
    let text = value.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            let members: BTreeMap<String, &RawValue> = serde_json::from_str(text)?;
            out.push('{');
            for (n, (key, member)) in members.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key)?);
                out.push(':');
                canonical(member, out)?;
            }
            out.push('}');
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text)?;
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                canonical(item, out)?;
            }
            out.push(']');
        }
        Some(b'"') => {
            let string: String = serde_json::from_str(text)?;
            out.push_str(&serde_json::to_string(&string)?);
        }
        // Numbers, true, false, null: already one token without whitespace.
        _ => out.push_str(text),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(entry: &Entry) -> &ClientCall {
        match entry {
            Entry::Call(call) => call,
            Entry::Invalid { reason, .. } => panic!("invalid: {reason}"),
        }
    }

    #[test]
    fn ids_are_kept_verbatim() {
        for id in [
            "7",
            "\"a b\"",
            "null",
            "1.50",
            "123456789012345678901234567890",
            "-0",
            "1e400",
        ] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
            let parsed = parse(body.as_bytes(), 10).unwrap();
            assert!(!parsed.batch);
            assert_eq!(call(&parsed.entries[0]).id.as_ref().unwrap().get(), id);
        }
    }

    #[test]
    fn notifications_have_no_id() {
        let parsed = parse(br#"{"jsonrpc":"2.0","method":"m"}"#, 10).unwrap();
        assert!(call(&parsed.entries[0]).id.is_none());
    }

    #[test]
    fn params_are_canonical() {
        let parsed = parse(
            br#" { "params" : [{"z":1,"a":{"y":2,"b":3}}], "id" : 7 ,"method":"m", "jsonrpc":"2.0" } "#,
            10,
        )
        .unwrap();
        assert_eq!(
            call(&parsed.entries[0]).params,
            r#"[{"a":{"b":3,"y":2},"z":1}]"#
        );
    }

    #[test]
    fn params_keep_numbers_and_lose_formatting() {
        let parsed = parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{ "n" : [ 123456789012345678901234567890 , 1.50, -0, 1e400 ], "s" : "\u0041\n", "a" : {"k":1,"k":2}, "t":true, "z":null }}"#,
            10,
        )
        .unwrap();
        assert_eq!(
            call(&parsed.entries[0]).params,
            r#"{"a":{"k":2},"n":[123456789012345678901234567890,1.50,-0,1e400],"s":"A\n","t":true,"z":null}"#
        );
    }

    #[test]
    fn invalid_members() {
        let parsed = parse(
            br#"[1,{"jsonrpc":"2.0","id":{},"method":"m"},{"jsonrpc":"1.0","id":3,"method":"m"},{"jsonrpc":"2.0","id":4,"method":5},{"jsonrpc":"2.0","id":5,"method":"m","params":"x"},{"jsonrpc":"2.0","id":6,"method":"m"}]"#,
            10,
        )
        .unwrap();
        assert!(parsed.batch);
        let ids: Vec<String> = parsed
            .entries
            .iter()
            .map(|e| match e {
                Entry::Invalid { id, .. } => format!("invalid {}", id.get()),
                Entry::Call(c) => format!("call {}", c.id.as_ref().unwrap().get()),
            })
            .collect();
        assert_eq!(
            ids,
            [
                "invalid null",
                "invalid null",
                "invalid 3",
                "invalid 4",
                "invalid 5",
                "call 6"
            ]
        );
    }

    #[test]
    fn rejects() {
        assert!(matches!(parse(b"{", 10), Err(PipelineError::Parse)));
        assert!(matches!(parse(b"", 10), Err(PipelineError::Parse)));
        assert!(matches!(parse(b"[{},", 10), Err(PipelineError::Parse)));
        assert!(matches!(
            parse(b"[]", 10),
            Err(PipelineError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse(b" 42", 10),
            Err(PipelineError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse(b"[1,2,3]", 2),
            Err(PipelineError::BatchTooLarge { len: 3, max: 2 })
        ));
    }
}
