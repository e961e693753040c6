//! `parse`: the client's body becomes a [`ParsedRequest`]: one entry per call, each either a
//! well-formed [`ClientCall`] or an [`Entry::Invalid`] that is answered with -32600.
//!
//! JSON-RPC 2.0 rules applied here: invalid JSON anywhere → -32700 for the whole request; an
//! empty batch or a top level that is neither object nor array → one -32600; in a batch every
//! member is judged on its own. The client's `id` is kept as the exact bytes it sent (any
//! string, any number however large or precise, or `null`), so it can be restored verbatim.
//!
//! Work is linear in the body and bounded before it starts: the nesting depth is checked first
//! ([`json::exceeds_depth`]), then serde_json validates the whole text without recursing, then
//! `params` are re-serialised canonically in one pass ([`json::canonicalize`]).

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::PipelineError;
use super::json;

/// The limits a body is parsed under.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Most calls in one batch.
    pub max_batch_len: usize,
    /// Deepest nesting of arrays and objects in the whole body.
    pub max_depth: usize,
}

/// A parsed request: a single call or a batch, and its entries in client order.
#[derive(Debug)]
pub struct ParsedRequest {
    batch: bool,
    entries: Vec<Entry>,
}

impl ParsedRequest {
    /// Whether the client sent an array (answered with an array) or one object.
    pub fn is_batch(&self) -> bool {
        self.batch
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never true: an empty batch is refused by [`parse`].
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in client order.
    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }
}

/// The exact bytes of a client's `id` (a string, a number or `null`), restored on its answer.
#[derive(Debug, Clone)]
pub struct ClientId(Box<RawValue>);

impl ClientId {
    /// `null`, the id of answers to requests whose id could not be read.
    pub fn null() -> Self {
        Self(Box::<RawValue>::default())
    }

    /// The JSON text of the id.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

/// One member of the request.
#[derive(Debug)]
pub enum Entry {
    /// A well-formed call.
    Call(ClientCall),
    /// Not a valid request object; answered with -32600 under `id` (`null` when unusable).
    Invalid {
        /// The client's id when it was a legal one, else `null`.
        id: ClientId,
        /// What is wrong, for the error message.
        reason: &'static str,
    },
}

/// A well-formed call as the client sent it, minus everything but `id`, `method`, `params`.
/// Only [`parse`] builds one.
#[derive(Debug)]
pub struct ClientCall {
    id: Option<ClientId>,
    method: String,
    params: Box<str>,
}

impl ClientCall {
    /// The method name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The client's id; `None` for a notification.
    pub fn id(&self) -> Option<&ClientId> {
        self.id.as_ref()
    }

    /// The JSON text of `params` (`[]` when absent), for the calls the gateway answers itself
    /// (`eth_subscribe`).
    pub fn params(&self) -> &str {
        &self.params
    }

    /// Takes the call apart for the next stage.
    pub(super) fn into_parts(self) -> (Option<ClientId>, String, Box<str>) {
        (self.id, self.method, self.params)
    }
}

/// Parses a request body as JSON-RPC 2.0.
pub fn parse(body: &[u8], limits: ParseLimits) -> Result<ParsedRequest, PipelineError> {
    // Before anything else reads it: no amount of nesting costs more than this scan.
    if json::exceeds_depth(body, limits.max_depth) {
        return Err(PipelineError::TooDeep {
            max: limits.max_depth,
        });
    }
    // Validate the whole text first: invalid JSON anywhere is a parse error for everything.
    let top: &RawValue = serde_json::from_slice(body).map_err(|_| PipelineError::Parse)?;
    let text = top.get();
    let entry = |member: &RawValue| entry(member, limits.max_depth);
    match text.as_bytes().first() {
        Some(b'[') => {
            let members: Vec<&RawValue> =
                serde_json::from_str(text).map_err(|_| PipelineError::Parse)?;
            if members.is_empty() {
                return Err(PipelineError::InvalidRequest("empty batch"));
            }
            if members.len() > limits.max_batch_len {
                return Err(PipelineError::BatchTooLarge {
                    len: members.len(),
                    max: limits.max_batch_len,
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

fn entry(member: &RawValue, max_depth: usize) -> Entry {
    let Ok(object) = serde_json::from_str::<BTreeMap<String, &RawValue>>(member.get()) else {
        return Entry::Invalid {
            id: ClientId::null(),
            reason: "a request must be an object",
        };
    };
    let id = match object.get("id") {
        None => None,
        Some(id) if is_legal_id(id) => Some(ClientId((*id).to_owned())),
        Some(_) => {
            return Entry::Invalid {
                id: ClientId::null(),
                reason: "id must be a string, a number or null",
            };
        }
    };
    let invalid = |reason| Entry::Invalid {
        id: id.clone().unwrap_or_else(ClientId::null),
        reason,
    };
    let version_ok = object
        .get("jsonrpc")
        .and_then(|v| serde_json::from_str::<&str>(v.get()).ok())
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
        None => "[]".into(),
        Some(raw) if matches!(raw.get().as_bytes().first(), Some(b'[' | b'{')) => {
            let mut out = Vec::with_capacity(raw.get().len());
            let canonical = json::canonicalize(raw.get(), max_depth, &mut out)
                .ok()
                .and_then(|()| String::from_utf8(out).ok());
            match canonical {
                Some(params) => params.into_boxed_str(),
                None => return invalid("params are not valid JSON"),
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParseLimits = ParseLimits {
        max_batch_len: 10,
        max_depth: 64,
    };

    fn call(entry: &Entry) -> &ClientCall {
        match entry {
            Entry::Call(call) => call,
            Entry::Invalid { reason, .. } => panic!("invalid: {reason}"),
        }
    }

    fn first(parsed: &ParsedRequest) -> &ClientCall {
        call(&parsed.entries[0])
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
            let parsed = parse(body.as_bytes(), LIMITS).unwrap();
            assert!(!parsed.is_batch());
            assert_eq!(first(&parsed).id().unwrap().as_str(), id);
        }
    }

    #[test]
    fn notifications_have_no_id() {
        let parsed = parse(br#"{"jsonrpc":"2.0","method":"m"}"#, LIMITS).unwrap();
        assert!(first(&parsed).id().is_none());
    }

    #[test]
    fn params_are_canonical() {
        let parsed = parse(
            br#" { "params" : [{"z":1,"a":{"y":2,"b":3}}], "id" : 7 ,"method":"m", "jsonrpc":"2.0" } "#,
            LIMITS,
        )
        .unwrap();
        assert_eq!(&*first(&parsed).params, r#"[{"a":{"b":3,"y":2},"z":1}]"#);
    }

    #[test]
    fn params_keep_numbers_and_lose_formatting() {
        let parsed = parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{ "n" : [ 123456789012345678901234567890 , 1.50, -0, 1e400 ], "s" : "\u0041\n", "a" : {"k":1,"k":2}, "t":true, "z":null }}"#,
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            &*first(&parsed).params,
            r#"{"a":{"k":2},"n":[123456789012345678901234567890,1.50,-0,1e400],"s":"A\n","t":true,"z":null}"#
        );
    }

    #[test]
    fn invalid_members() {
        let parsed = parse(
            br#"[1,{"jsonrpc":"2.0","id":{},"method":"m"},{"jsonrpc":"1.0","id":3,"method":"m"},{"jsonrpc":"2.0","id":4,"method":5},{"jsonrpc":"2.0","id":5,"method":"m","params":"x"},{"jsonrpc":"2.0","id":6,"method":"m"}]"#,
            LIMITS,
        )
        .unwrap();
        assert!(parsed.is_batch());
        let ids: Vec<String> = parsed
            .entries
            .iter()
            .map(|e| match e {
                Entry::Invalid { id, .. } => format!("invalid {}", id.as_str()),
                Entry::Call(c) => format!("call {}", c.id().unwrap().as_str()),
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
        let limits = |max_batch_len| ParseLimits {
            max_batch_len,
            max_depth: 64,
        };
        assert!(matches!(parse(b"{", LIMITS), Err(PipelineError::Parse)));
        assert!(matches!(parse(b"", LIMITS), Err(PipelineError::Parse)));
        assert!(matches!(parse(b"[{},", LIMITS), Err(PipelineError::Parse)));
        assert!(matches!(
            parse(b"[]", LIMITS),
            Err(PipelineError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse(b" 42", LIMITS),
            Err(PipelineError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse(b"[1,2,3]", limits(2)),
            Err(PipelineError::BatchTooLarge { len: 3, max: 2 })
        ));
    }

    /// The crash of the adversarial test: 10 000 levels of `params` overflowed the stack.
    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(
            parse(body.as_bytes(), LIMITS).unwrap_err(),
            PipelineError::TooDeep { max: 64 }
        );
        // The limit counts the whole body: the request object is one level, params another.
        let at_limit = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{}{}}}"#,
            "[".repeat(63),
            "]".repeat(63)
        );
        assert_eq!(
            first(&parse(at_limit.as_bytes(), LIMITS).unwrap())
                .params
                .len(),
            126
        );
    }
}
