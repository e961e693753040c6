//! `restore`: upstream answers, keyed by the gateway's ids, become answers under the client's
//! own ids. Only `result` or `error` of an upstream answer is kept, byte for byte; everything
//! else the upstream sent (its id, extra members, formatting around them) is dropped.

use std::collections::{BTreeMap, HashMap};

use serde_json::value::RawValue;

/// What an upstream answered to one call.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// `result`, verbatim.
    Result(Box<RawValue>),
    /// `error`, verbatim (code, message and data as the upstream sent them).
    Error(Box<RawValue>),
}

/// An upstream's answers to one exchange.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    by_id: HashMap<u64, Answer>,
    /// An error under id `null` (the upstream refused the whole exchange): the answer to every
    /// call it did not answer otherwise.
    unkeyed_error: Option<Box<RawValue>>,
}

impl Answers {
    /// Whether the upstream answered the call sent with gateway id `id` with a `result`.
    pub(crate) fn has_result(&self, id: u64) -> bool {
        matches!(self.by_id.get(&id), Some(Answer::Result(_)))
    }

    /// The answer to the call sent with gateway id `id`.
    pub(crate) fn take(&mut self, id: u64) -> Option<Answer> {
        self.by_id
            .remove(&id)
            .or_else(|| self.unkeyed_error.clone().map(Answer::Error))
    }
}

/// Parses an upstream body: one answer object or an array of them. `None` when it is not a
/// JSON-RPC answer at all.
pub(crate) fn parse_answers(body: &[u8]) -> Option<Answers> {
    let top: &RawValue = serde_json::from_slice(body).ok()?;
    let objects: Vec<&RawValue> = match top.get().as_bytes().first() {
        Some(b'[') => serde_json::from_str(top.get()).ok()?,
        Some(b'{') => vec![top],
        _ => return None,
    };
    let mut answers = Answers::default();
    for object in objects {
        let mut members: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(object.get()).ok()?;
        let answer = match (members.remove("error"), members.remove("result")) {
            (Some(error), _) => Answer::Error(error),
            (None, Some(result)) => Answer::Result(result),
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

/// The answer object for the client: `{"jsonrpc":"2.0","id":ID,"result"|"error":...}` with the
/// client's exact id bytes.
pub(crate) fn client_answer(id: &RawValue, answer: &Answer) -> Vec<u8> {
    let (member, value) = match answer {
        Answer::Result(value) => ("result", value),
        Answer::Error(value) => ("error", value),
    };
    let mut out = Vec::with_capacity(40 + id.get().len() + value.get().len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(b",\"");
    out.extend_from_slice(member.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(value.get().as_bytes());
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_gateway_id_and_verbatim() {
        let mut answers = parse_answers(
            br#"[{"id":5,"jsonrpc":"2.0","result":{"b":1.50,"a":123456789012345678901234567890}},{"jsonrpc":"2.0","id":6,"error":{"code":3,"message":"reverted","data":"0x08c3"}}]"#,
        )
        .unwrap();
        let Some(Answer::Result(result)) = answers.take(5) else {
            panic!("result");
        };
        assert_eq!(
            result.get(),
            r#"{"b":1.50,"a":123456789012345678901234567890}"#
        );
        let id = RawValue::from_string("\"mine\"".to_owned()).unwrap();
        let answer = answers.take(6).unwrap();
        assert_eq!(
            String::from_utf8(client_answer(&id, &answer)).unwrap(),
            r#"{"jsonrpc":"2.0","id":"mine","error":{"code":3,"message":"reverted","data":"0x08c3"}}"#
        );
        assert!(answers.take(7).is_none());
    }

    #[test]
    fn an_unkeyed_error_answers_everything() {
        let mut answers = parse_answers(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"slow down"}}"#,
        )
        .unwrap();
        assert!(matches!(answers.take(1), Some(Answer::Error(_))));
        assert!(parse_answers(b"not json").is_none());
        assert!(parse_answers(b"[1]").is_none());
    }
}
