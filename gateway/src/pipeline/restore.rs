//! `restore`: upstream answers, keyed by the gateway's ids, become the answers to the client's
//! calls (the client's ids are put back by [`super::assemble`]). Only `result` or `error` of an
//! upstream answer is kept, byte for byte and without copying: each is a slice of the upstream's
//! body. Everything else the upstream sent (its id, extra members, formatting around them) is
//! dropped.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde_json::value::RawValue;

/// What an upstream answered to one call.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `result`, verbatim.
    Result(Bytes),
    /// `error`: code, message and data as the upstream sent them, and nothing else (a node's
    /// `stack` or other members of its own are dropped: they describe the node, not the call).
    Error(Bytes),
}

/// An upstream's answers to one exchange.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    by_id: HashMap<u64, Answer>,
    /// An error under id `null` (the upstream refused the whole exchange): the answer to every
    /// call it did not answer otherwise.
    unkeyed_error: Option<Bytes>,
}

impl Answers {
    /// Whether the upstream answered the call sent with gateway id `id` with a `result`.
    pub(crate) fn has_result(&self, id: u64) -> bool {
        matches!(self.by_id.get(&id), Some(Answer::Result(_)))
    }

    /// Whether the upstream answered the call sent with gateway id `id` with an `error`.
    pub(crate) fn has_error(&self, id: u64) -> bool {
        matches!(self.by_id.get(&id), Some(Answer::Error(_)))
    }

    /// The answer to the call sent with gateway id `id`.
    pub(crate) fn take(&mut self, id: u64) -> Option<Answer> {
        self.by_id
            .remove(&id)
            .or_else(|| self.unkeyed_error.clone().map(Answer::Error))
    }
}

/// Parses an upstream body: one answer object or an array of them. `None` when it is not a
/// JSON-RPC answer at all. Nothing is recursed into: members are read as raw text.
pub(crate) fn parse_answers(body: &Bytes) -> Option<Answers> {
    let top: &RawValue = serde_json::from_slice(body).ok()?;
    let objects: Vec<&RawValue> = match top.get().as_bytes().first() {
        Some(b'[') => serde_json::from_str(top.get()).ok()?,
        Some(b'{') => vec![top],
        _ => return None,
    };
    let mut answers = Answers::default();
    for object in objects {
        let mut members: BTreeMap<String, &RawValue> = serde_json::from_str(object.get()).ok()?;
        let answer = match (members.remove("error"), members.remove("result")) {
            (Some(error), _) => Answer::Error(error_object(body, error)?),
            (None, Some(result)) => Answer::Result(slice_of(body, result.get())?),
            (None, None) => return None,
        };
        let id = members
            .get("id")
            .and_then(|id| serde_json::from_str::<Option<u64>>(id.get()).ok())
            .flatten();
        match (id, answer) {
            (Some(id), answer) => {
                answers.by_id.insert(id, answer);
            }
            (None, Answer::Error(error)) => answers.unkeyed_error = Some(error),
            (None, Answer::Result(_)) => {}
        }
    }
    Some(answers)
}

/// The members of a JSON-RPC error object (JSON-RPC 2.0 §5.1).
const ERROR_MEMBERS: [&str; 3] = ["code", "message", "data"];

/// An upstream's `error`: verbatim when it holds only `code`, `message` and `data` (the usual
/// case, not copied), else rebuilt from those three, so that nothing else a node adds (a stack
/// trace with its file paths, say) reaches clients. An `error` that is not an object is kept as
/// it is.
fn error_object(body: &Bytes, error: &RawValue) -> Option<Bytes> {
    let Ok(members) = serde_json::from_str::<BTreeMap<String, &RawValue>>(error.get()) else {
        return slice_of(body, error.get());
    };
    if members
        .keys()
        .all(|key| ERROR_MEMBERS.contains(&key.as_str()))
    {
        return slice_of(body, error.get());
    }
    let mut rebuilt = Vec::with_capacity(error.get().len());
    rebuilt.push(b'{');
    for key in ERROR_MEMBERS {
        if let Some(value) = members.get(key) {
            if rebuilt.len() > 1 {
                rebuilt.push(b',');
            }
            rebuilt.extend_from_slice(format!("\"{key}\":").as_bytes());
            rebuilt.extend_from_slice(value.get().as_bytes());
        }
    }
    rebuilt.push(b'}');
    Some(Bytes::from(rebuilt))
}

/// `part`, which serde_json borrowed from `body`, as a shared slice of it.
fn slice_of(body: &Bytes, part: &str) -> Option<Bytes> {
    let start = (part.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= body.len()).then(|| body.slice(start..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(answer: Option<Answer>) -> String {
        match answer {
            Some(Answer::Result(b)) => format!("result {}", std::str::from_utf8(&b).unwrap()),
            Some(Answer::Error(b)) => format!("error {}", std::str::from_utf8(&b).unwrap()),
            None => "none".to_owned(),
        }
    }

    #[test]
    fn answers_by_gateway_id_and_verbatim() {
        let body = Bytes::from_static(
            br#"[{"id":5,"jsonrpc":"2.0","result":{"b":1.50,"a":123456789012345678901234567890}},{"jsonrpc":"2.0","id":6,"error":{"code":3,"message":"reverted","data":"0x08c3"}}]"#,
        );
        let mut answers = parse_answers(&body).unwrap();
        assert_eq!(
            text(answers.take(5)),
            r#"result {"b":1.50,"a":123456789012345678901234567890}"#
        );
        assert_eq!(
            text(answers.take(6)),
            r#"error {"code":3,"message":"reverted","data":"0x08c3"}"#
        );
        assert!(answers.take(7).is_none());
    }

    #[test]
    fn results_share_the_upstream_buffer() {
        let body = Bytes::from(br#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#.to_vec());
        let Some(Answer::Result(result)) = parse_answers(&body).unwrap().take(1) else {
            panic!("a result");
        };
        assert_eq!(&result[..], b"\"0x1\"");
        let inside = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        assert!(inside.contains(&(result.as_ptr() as usize)), "not copied");
    }

    #[test]
    fn error_objects_keep_code_message_and_data_only() {
        let body = Bytes::from_static(
            br#"[{"jsonrpc":"2.0","id":1,"error":{"message":"boom","code":-32000,"stack":"Error: boom\n at /home/node/app.js:1","data":"0x08"}},{"jsonrpc":"2.0","id":2,"error":{"code":3, "message":"reverted","data":{"a":1.50}}}]"#,
        );
        let mut answers = parse_answers(&body).unwrap();
        assert_eq!(
            text(answers.take(1)),
            r#"error {"code":-32000,"message":"boom","data":"0x08"}"#
        );
        // Only standard members: kept byte for byte.
        assert_eq!(
            text(answers.take(2)),
            r#"error {"code":3, "message":"reverted","data":{"a":1.50}}"#
        );
    }

    #[test]
    fn an_unkeyed_error_answers_everything() {
        let body = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"slow down"}}"#,
        );
        let mut answers = parse_answers(&body).unwrap();
        assert!(matches!(answers.take(1), Some(Answer::Error(_))));
        assert!(parse_answers(&Bytes::from_static(b"not json")).is_none());
        assert!(parse_answers(&Bytes::from_static(b"[1]")).is_none());
    }
}
