//! `assemble`: the answers of one request, in client order, become the response body. Pure: no
//! I/O, no clock, so batches are tested without sockets.
//!
//! The response size limit is checked while assembling, before any answer is copied: an answer
//! that would take the body past the limit is replaced by a -32000 error for that call alone,
//! so a batch still gets a proper array with one answer per call. Results are not copied when
//! large: the body refers to the upstream's (or the cache's) bytes.

use bytes::Bytes;

use super::PipelineError;
use super::envelope;
use super::parse::ClientId;
use super::respond;
use super::restore::Answer;

/// Results at least this large go into the body as their own shared segment; smaller ones are
/// copied, which is cheaper than a segment.
const SHARE_AT: usize = 4096;

/// How one call ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// An upstream answered it.
    Answered(Answer),
    /// The cache answered it.
    Cached(Bytes),
    /// The gateway answers it with an error.
    Failed(PipelineError),
}

impl Outcome {
    /// The `outcome` metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Answered(Answer::Result(_)) => "ok",
            Self::Answered(Answer::Error(_)) => "error",
            Self::Cached(_) => "cached",
            Self::Failed(error) => error.class().outcome,
        }
    }
}

/// One call of the request, in client order, with how it ended.
#[derive(Debug)]
pub struct Slot<'a> {
    /// The client's id; `None` for a notification, which gets no answer.
    pub id: Option<ClientId>,
    /// The `method` metric label.
    pub label: &'a str,
    /// How the call ended.
    pub outcome: Outcome,
}

/// The assembled body: `None` when nothing is answered (only notifications).
pub type Assembled = Option<Vec<Bytes>>;

/// Writes the answers of `slots` (notifications left out) as one object or, for a batch, an
/// array; answers that do not fit in `max_bytes` become errors, and their slot says so.
pub fn assemble(batch: bool, slots: &mut [Slot<'_>], max_bytes: usize) -> Assembled {
    let mut body = Segments::default();
    let mut answered = 0_usize;
    if batch {
        body.copy(b"[");
    }
    for slot in slots.iter_mut() {
        let Some(id) = &slot.id else { continue };
        let value = match &slot.outcome {
            Outcome::Answered(Answer::Result(value)) | Outcome::Cached(value) => {
                Some(("result", value))
            }
            Outcome::Answered(Answer::Error(value)) => Some(("error", value)),
            Outcome::Failed(_) => None,
        };
        let separator = usize::from(answered > 0);
        if let Some((member, value)) = value {
            let size = envelope::overhead(id.as_str().as_bytes(), member)
                + value.len()
                + separator
                + usize::from(batch);
            if body.len + size <= max_bytes {
                if separator == 1 {
                    body.copy(b",");
                }
                body.open(id, member);
                body.share(value);
                body.copy(envelope::CLOSE);
                answered += 1;
                continue;
            }
            slot.outcome = Outcome::Failed(PipelineError::UpstreamTooLarge { max: max_bytes });
        }
        if let Outcome::Failed(error) = &slot.outcome {
            if separator == 1 {
                body.copy(b",");
            }
            body.copy(&respond::error_answer(error, id));
            answered += 1;
        }
    }
    if answered == 0 {
        return None;
    }
    if batch {
        body.copy(b"]");
    }
    Some(body.finish())
}

/// A body under construction: small pieces copied into one buffer, large results shared.
#[derive(Default)]
struct Segments {
    done: Vec<Bytes>,
    current: Vec<u8>,
    len: usize,
}

impl Segments {
    /// `{"jsonrpc":"2.0","id":ID,"MEMBER":`.
    fn open(&mut self, id: &ClientId, member: &str) {
        let before = self.current.len();
        envelope::open(&mut self.current, id.as_str().as_bytes(), member);
        self.len += self.current.len() - before;
    }

    fn copy(&mut self, bytes: &[u8]) {
        self.current.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    fn share(&mut self, bytes: &Bytes) {
        if bytes.len() < SHARE_AT {
            self.copy(bytes);
            return;
        }
        if !self.current.is_empty() {
            self.done
                .push(Bytes::from(std::mem::take(&mut self.current)));
        }
        self.len += bytes.len();
        self.done.push(bytes.clone());
    }

    fn finish(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() {
            self.done.push(Bytes::from(self.current));
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> Option<ClientId> {
        let call = format!(r#"{{"jsonrpc":"2.0","id":{text},"method":"m"}}"#);
        let parsed = crate::pipeline::parse::parse(
            call.as_bytes(),
            crate::pipeline::parse::ParseLimits {
                max_batch_len: 1,
                max_depth: 4,
            },
        )
        .unwrap();
        match parsed.into_entries().pop() {
            Some(crate::pipeline::parse::Entry::Call(call)) => call.id().cloned(),
            _ => panic!("a call"),
        }
    }

    fn result(text: &str) -> Outcome {
        Outcome::Answered(Answer::Result(Bytes::from(text.to_owned())))
    }

    fn slot(id_text: Option<&str>, outcome: Outcome) -> Slot<'static> {
        Slot {
            id: id_text.and_then(id),
            label: "m",
            outcome,
        }
    }

    fn text(assembled: Assembled) -> String {
        String::from_utf8(assembled.unwrap().concat()).unwrap()
    }

    #[test]
    fn batch_in_client_order_without_notifications() {
        let mut slots = [
            slot(Some("\"b\""), result("2")),
            slot(None, result("\"ignored\"")),
            slot(
                Some("1.50"),
                Outcome::Answered(Answer::Error(Bytes::from_static(br#"{"code":3}"#))),
            ),
            slot(Some("7"), Outcome::Cached(Bytes::from_static(b"\"0x1\""))),
            slot(Some("null"), Outcome::Failed(PipelineError::MethodDenied)),
        ];
        assert_eq!(
            text(assemble(true, &mut slots, 1 << 20)),
            concat!(
                r#"[{"jsonrpc":"2.0","id":"b","result":2},"#,
                r#"{"jsonrpc":"2.0","id":1.50,"error":{"code":3}},"#,
                r#"{"jsonrpc":"2.0","id":7,"result":"0x1"},"#,
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"method not found or not allowed by this gateway"}}]"#
            )
        );
    }

    #[test]
    fn a_failed_upstream_exchange_fails_only_its_calls() {
        let mut slots = [
            slot(Some("1"), result("\"0x1\"")),
            slot(Some("2"), Outcome::Failed(PipelineError::UpstreamTimeout)),
            slot(Some("3"), Outcome::Cached(Bytes::from_static(b"\"0x3\""))),
        ];
        let body = text(assemble(true, &mut slots, 1 << 20));
        assert_eq!(
            body,
            concat!(
                r#"[{"jsonrpc":"2.0","id":1,"result":"0x1"},"#,
                r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"upstream timed out"}},"#,
                r#"{"jsonrpc":"2.0","id":3,"result":"0x3"}]"#
            )
        );
        let labels: Vec<&str> = slots.iter().map(|slot| slot.outcome.label()).collect();
        assert_eq!(labels, ["ok", "upstream_error", "cached"]);
    }

    #[test]
    fn duplicate_ids_are_each_answered() {
        let mut slots = [
            slot(Some("1"), result("\"a\"")),
            slot(Some("1"), result("\"b\"")),
        ];
        assert_eq!(
            text(assemble(true, &mut slots, 1 << 20)),
            r#"[{"jsonrpc":"2.0","id":1,"result":"a"},{"jsonrpc":"2.0","id":1,"result":"b"}]"#
        );
    }

    #[test]
    fn only_notifications_is_nothing() {
        let mut slots = [slot(None, result("1")), slot(None, result("2"))];
        assert!(assemble(true, &mut slots, 1 << 20).is_none());
    }

    #[test]
    fn a_single_call_is_an_object() {
        let mut slots = [slot(Some("1"), result("\"0x10\""))];
        assert_eq!(
            text(assemble(false, &mut slots, 1 << 20)),
            r#"{"jsonrpc":"2.0","id":1,"result":"0x10"}"#
        );
    }

    /// Regression (hardening finding 3): a batch of hits on one large cached result used to be
    /// built whole, every hit a copy, before its size was checked.
    #[test]
    fn answers_past_the_limit_become_errors_and_large_results_are_shared() {
        let large = Bytes::from(format!("\"{}\"", "a".repeat(100_000)));
        let mut slots: Vec<Slot<'static>> = (0..100)
            .map(|n| slot(Some(&n.to_string()), Outcome::Cached(large.clone())))
            .collect();
        let segments = assemble(true, &mut slots, 350_000).unwrap();
        let total: usize = segments.iter().map(Bytes::len).sum();
        assert!(total < 350_000 + 100 * 200, "{total}");
        let shared = segments
            .iter()
            .filter(|s| s.as_ptr() == large.as_ptr())
            .count();
        assert_eq!(shared, 3, "the fitting answers refer to the cached bytes");
        let answers: Vec<serde_json::Value> = serde_json::from_slice(&segments.concat()).unwrap();
        assert_eq!(answers.len(), 100, "one answer per call, in a proper array");
        assert_eq!(answers[3]["id"], 3);
        assert_eq!(answers[3]["error"]["code"], -32000);
        assert!(matches!(
            slots[99].outcome,
            Outcome::Failed(PipelineError::UpstreamTooLarge { max: 350_000 })
        ));
        assert!(matches!(slots[0].outcome, Outcome::Cached(_)));
    }

    #[test]
    fn a_single_answer_past_the_limit_is_an_error_under_its_id() {
        let mut slots = [slot(Some("\"x\""), result(&"1".repeat(1000)))];
        let body = text(assemble(false, &mut slots, 500));
        assert!(
            body.starts_with(r#"{"jsonrpc":"2.0","id":"x","error":{"code":-32000"#),
            "{body}"
        );
    }
}
