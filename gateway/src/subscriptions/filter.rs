//! What a client asks `eth_subscribe` for: the kind, and for `logs` the address and topic
//! filter. Parsed from the client's params and matched here, inside the enclave, against every
//! block's logs: no upstream ever sees a client's filter.

use serde_json::Value;

use super::block::{Address, Hash, Log, parse_hex};
use crate::pipeline::PipelineError;

/// Most addresses in one filter.
pub(crate) const MAX_ADDRESSES: usize = 1_000;
/// Most alternatives at one topic position.
pub(crate) const MAX_TOPIC_ALTERNATIVES: usize = 100;
/// Topic positions of a log (LOG0 to LOG4).
pub(crate) const MAX_TOPIC_POSITIONS: usize = 4;

/// The kinds of subscription served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Every new block's header.
    NewHeads,
    /// Logs of new blocks matching a filter; `"removed": true` when their block is orphaned.
    Logs,
    /// Hashes of transactions entering an upstream's pending pool (when the chain enables it).
    NewPendingTransactions,
}

impl Kind {
    /// The kind's name: the `eth_subscribe` parameter and the `kind` metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::NewHeads => "newHeads",
            Self::Logs => "logs",
            Self::NewPendingTransactions => "newPendingTransactions",
        }
    }
}

/// A parsed `eth_subscribe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// `["newHeads"]`.
    NewHeads,
    /// `["logs"]` or `["logs", {"address": ..., "topics": [...]}]`.
    Logs(LogFilter),
    /// `["newPendingTransactions"]`.
    NewPendingTransactions,
}

impl Request {
    /// The kind asked for.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Self::NewHeads => Kind::NewHeads,
            Self::Logs(_) => Kind::Logs,
            Self::NewPendingTransactions => Kind::NewPendingTransactions,
        }
    }
}

/// The filter of a `logs` subscription, with the execution API's semantics: any of the
/// addresses (none given: any address); per topic position, `None` matches anything and a list
/// matches any of its hashes (OR within a position, AND across positions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LogFilter {
    addresses: Option<Vec<Address>>,
    topics: Vec<Option<Vec<Hash>>>,
}

impl LogFilter {
    /// Whether `log` matches.
    pub(crate) fn matches(&self, log: &Log) -> bool {
        if let Some(addresses) = &self.addresses
            && !addresses.contains(&log.address)
        {
            return false;
        }
        self.topics
            .iter()
            .enumerate()
            .all(|(position, wanted)| match wanted {
                None => true,
                Some(alternatives) => log
                    .topics
                    .get(position)
                    .is_some_and(|topic| alternatives.contains(topic)),
            })
    }
}

/// Parses the params of an `eth_subscribe` (`params` is canonical JSON, depth-checked by the
/// parser). `-32602` for anything else.
pub(crate) fn parse_request(params: &str) -> Result<Request, PipelineError> {
    let params: Value = serde_json::from_str(params)
        .map_err(|_| invalid("params must be an array: [kind, options?]"))?;
    let Value::Array(params) = params else {
        return Err(invalid("params must be an array: [kind, options?]"));
    };
    let mut params = params.into_iter();
    let kind = params.next();
    let options = params.next();
    if params.next().is_some() {
        return Err(invalid("too many params: [kind, options?]"));
    }
    match (kind.as_ref().and_then(Value::as_str), options) {
        (Some("newHeads"), None) => Ok(Request::NewHeads),
        (Some("newHeads"), Some(_)) => Err(invalid("newHeads takes no options")),
        (Some("logs"), None | Some(Value::Null)) => Ok(Request::Logs(LogFilter::default())),
        (Some("logs"), Some(options)) => log_filter(options).map(Request::Logs),
        (Some("newPendingTransactions"), None | Some(Value::Bool(false))) => {
            Ok(Request::NewPendingTransactions)
        }
        (Some("newPendingTransactions"), Some(_)) => Err(invalid(
            "newPendingTransactions gives transaction hashes only (full transactions are not served)",
        )),
        (Some(other), _) => Err(PipelineError::InvalidParams(format!(
            "unsupported subscription kind {:?}; this gateway serves newHeads, logs and newPendingTransactions",
            truncate(other)
        ))),
        (None, _) => Err(invalid(
            "the first param must be the subscription kind, a string",
        )),
    }
}

/// `{"address": ..., "topics": [...]}`.
fn log_filter(options: Value) -> Result<LogFilter, PipelineError> {
    let Value::Object(options) = options else {
        return Err(invalid("logs options must be an object {address, topics}"));
    };
    let mut filter = LogFilter::default();
    for (key, value) in options {
        match key.as_str() {
            "address" => filter.addresses = addresses(value)?,
            "topics" => filter.topics = topics(value)?,
            "fromBlock" | "toBlock" | "blockHash" => {
                return Err(invalid(
                    "logs subscriptions follow new blocks; fromBlock, toBlock and blockHash are for eth_getLogs",
                ));
            }
            other => {
                return Err(PipelineError::InvalidParams(format!(
                    "unknown logs option {:?}; use address and topics",
                    truncate(other)
                )));
            }
        }
    }
    Ok(filter)
}

/// `null`, one address, or a list of them.
fn addresses(value: Value) -> Result<Option<Vec<Address>>, PipelineError> {
    let list = match value {
        Value::Null => return Ok(None),
        Value::String(one) => vec![Value::String(one)],
        Value::Array(list) => list,
        _ => return Err(invalid("address must be an address or a list of addresses")),
    };
    if list.len() > MAX_ADDRESSES {
        return Err(PipelineError::InvalidParams(format!(
            "at most {MAX_ADDRESSES} addresses in one filter"
        )));
    }
    list.iter()
        .map(|v| {
            v.as_str()
                .and_then(parse_hex::<20>)
                .ok_or_else(|| invalid("an address must be 0x and 40 hex digits"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Up to four positions, each `null`, one hash, or a list of hashes.
fn topics(value: Value) -> Result<Vec<Option<Vec<Hash>>>, PipelineError> {
    let positions = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(positions) => positions,
        _ => return Err(invalid("topics must be a list")),
    };
    if positions.len() > MAX_TOPIC_POSITIONS {
        return Err(invalid("topics has at most 4 positions"));
    }
    positions
        .into_iter()
        .map(|position| match position {
            Value::Null => Ok(None),
            Value::String(one) => topic(&one).map(|hash| Some(vec![hash])),
            Value::Array(alternatives) => {
                if alternatives.len() > MAX_TOPIC_ALTERNATIVES {
                    return Err(PipelineError::InvalidParams(format!(
                        "at most {MAX_TOPIC_ALTERNATIVES} alternatives at one topic position"
                    )));
                }
                // An empty list, like `null`, matches anything (geth's reading of the spec).
                if alternatives.is_empty() {
                    return Ok(None);
                }
                alternatives
                    .iter()
                    .map(|v| v.as_str().ok_or_else(topic_error).and_then(topic))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
            _ => Err(topic_error()),
        })
        .collect()
}

fn topic(text: &str) -> Result<Hash, PipelineError> {
    parse_hex::<32>(text).ok_or_else(topic_error)
}

fn topic_error() -> PipelineError {
    invalid("a topic must be null, 0x and 64 hex digits, or a list of those")
}

fn invalid(reason: &str) -> PipelineError {
    PipelineError::InvalidParams(reason.to_owned())
}

/// A client's string, echoed to it only, cut to a readable length.
fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn log(address: u8, topics: &[u8]) -> Log {
        Log {
            address: [address; 20],
            topics: topics.iter().map(|t| [*t; 32]).collect(),
            json: Bytes::from_static(b"{}"),
        }
    }

    fn hex(byte: u8, len: usize) -> String {
        format!("0x{}", format!("{byte:02x}").repeat(len))
    }

    fn filter(options: &str) -> LogFilter {
        match parse_request(&format!(r#"["logs",{options}]"#)).unwrap() {
            Request::Logs(filter) => filter,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(parse_request(r#"["newHeads"]"#).unwrap(), Request::NewHeads);
        assert_eq!(
            parse_request(r#"["logs"]"#).unwrap(),
            Request::Logs(LogFilter::default())
        );
        assert_eq!(
            parse_request(r#"["newPendingTransactions"]"#).unwrap(),
            Request::NewPendingTransactions
        );
        for bad in [
            r#"["syncing"]"#,
            r#"[]"#,
            r#"{}"#,
            r#"[1]"#,
            r#"["newHeads",{}]"#,
            r#"["newPendingTransactions",true]"#,
            r#"["logs",{},1]"#,
            r#"["logs",{"fromBlock":"0x1"}]"#,
            r#"["logs",{"adress":"0x00"}]"#,
        ] {
            let error = parse_request(bad).unwrap_err();
            assert_eq!(error.code(), -32602, "{bad}");
        }
    }

    #[test]
    fn addresses_any_of() {
        let one = filter(&format!(r#"{{"address":"{}"}}"#, hex(1, 20)));
        assert!(one.matches(&log(1, &[])));
        assert!(!one.matches(&log(2, &[])));
        let two = filter(&format!(
            r#"{{"address":["{}","{}"]}}"#,
            hex(1, 20),
            hex(2, 20)
        ));
        assert!(two.matches(&log(2, &[7])));
        assert!(!two.matches(&log(3, &[7])));
        // Upper-case hex is the same address.
        let upper = filter(&format!(r#"{{"address":"0x{}"}}"#, "AB".repeat(20)));
        assert!(upper.matches(&log(0xab, &[])));
        let any = filter(r#"{"address":null}"#);
        assert!(any.matches(&log(9, &[])));
    }

    #[test]
    fn topics_by_position_or_within_and_across() {
        let f = filter(&format!(
            r#"{{"topics":[null,["{}","{}"],"{}"]}}"#,
            hex(1, 32),
            hex(2, 32),
            hex(3, 32)
        ));
        assert!(f.matches(&log(0, &[9, 1, 3])));
        assert!(f.matches(&log(0, &[9, 2, 3, 4])));
        assert!(!f.matches(&log(0, &[9, 4, 3])), "position 1 is 1 or 2");
        assert!(!f.matches(&log(0, &[9, 1, 4])), "position 2 is 3");
        assert!(!f.matches(&log(0, &[9, 1])), "a log with fewer topics");
        let empty_position = filter(r#"{"topics":[[]]}"#);
        assert!(empty_position.matches(&log(0, &[])));
        assert!(filter(r#"{"topics":[]}"#).matches(&log(0, &[])));
    }

    #[test]
    fn bounds_and_bad_values() {
        let many: Vec<String> = (0..=MAX_ADDRESSES)
            .map(|_| format!("\"{}\"", hex(1, 20)))
            .collect();
        let error =
            parse_request(&format!(r#"["logs",{{"address":[{}]}}]"#, many.join(","))).unwrap_err();
        assert!(error.to_string().contains("at most 1000"), "{error}");
        for bad in [
            r#"{"address":"0x12"}"#,
            r#"{"address":1}"#,
            r#"{"topics":"0x00"}"#,
            r#"{"topics":[1]}"#,
            r#"{"topics":[null,null,null,null,null]}"#,
            r#"{"topics":[["0xzz"]]}"#,
        ] {
            assert!(
                parse_request(&format!(r#"["logs",{bad}]"#)).is_err(),
                "{bad}"
            );
        }
    }
}
