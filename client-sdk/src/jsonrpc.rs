//! JSON-RPC 2.0 framing: the request body the client sends and the reading of the answer.
//!
//! Pure functions over bytes, with no transport, so that the wasm client can share them.

use serde_json::{Map, Value};

use crate::ClientError;

/// How much of an unexpected body an error message quotes.
const QUOTE_CHARS: usize = 200;

/// The body of a JSON-RPC 2.0 call. `Value::Null` params are left out (the spec allows it).
pub fn request_body(id: u64, method: &str, params: Value) -> Vec<u8> {
    let mut call = Map::new();
    call.insert("jsonrpc".into(), Value::from("2.0"));
    call.insert("id".into(), Value::from(id));
    call.insert("method".into(), Value::from(method));
    if !params.is_null() {
        call.insert("params".into(), params);
    }
    Value::Object(call).to_string().into_bytes()
}

/// The body of a JSON-RPC 2.0 batch: the calls get ids `1..=n` in order.
pub fn batch_body<'a>(calls: impl IntoIterator<Item = (&'a str, Value)>) -> Vec<u8> {
    let calls: Vec<Value> = calls
        .into_iter()
        .zip(1u64..)
        .map(|((method, params), id)| {
            let mut call = Map::new();
            call.insert("jsonrpc".into(), Value::from("2.0"));
            call.insert("id".into(), Value::from(id));
            call.insert("method".into(), Value::from(method));
            if !params.is_null() {
                call.insert("params".into(), params);
            }
            Value::Object(call)
        })
        .collect();
    Value::Array(calls).to_string().into_bytes()
}

/// Reads the answer to a batch of `len` calls made by [`batch_body`]: one result per call, in
/// call order, whatever order the answers came in. A missing, duplicated or unknown id, or a
/// body that is not a batch answer, fails the whole batch.
pub fn parse_batch_response(
    len: usize,
    status: http::StatusCode,
    body: &[u8],
) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
    let answers = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(answers)) => answers,
        // A single error object answers a batch the gateway refused as a whole.
        Ok(Value::Object(mut object)) if object.contains_key("error") => {
            let error = object.remove("error").unwrap_or(Value::Null);
            return Err(json_rpc_error(error));
        }
        _ if !status.is_success() => {
            return Err(ClientError::Http {
                status,
                body: quote(body),
            });
        }
        _ => {
            return Err(ClientError::InvalidResponse(format!(
                "expected a JSON-RPC batch answer (an array), got {}",
                quote(body)
            )));
        }
    };
    let mut results: Vec<Option<Result<Value, ClientError>>> =
        std::iter::repeat_with(|| None).take(len).collect();
    for answer in answers {
        let id = answer.get("id").and_then(Value::as_u64);
        let slot = id
            .and_then(|id| usize::try_from(id).ok())
            .and_then(|id| id.checked_sub(1))
            .and_then(|index| results.get_mut(index));
        let Some(slot) = slot else {
            return Err(ClientError::InvalidResponse(format!(
                "batch answer has an unknown id: {}",
                answer.get("id").unwrap_or(&Value::Null)
            )));
        };
        if slot.is_some() {
            return Err(ClientError::InvalidResponse(format!(
                "batch answer repeats id {}",
                id.unwrap_or_default()
            )));
        }
        let id = id.unwrap_or_default();
        let text = answer.to_string();
        *slot = Some(parse_response(id, http::StatusCode::OK, text.as_bytes()));
    }
    results
        .into_iter()
        .zip(1u64..)
        .map(|(result, id)| {
            result.ok_or_else(|| {
                ClientError::InvalidResponse(format!("batch answer lacks the call with id {id}"))
            })
        })
        .collect()
}

/// Reads the answer to the call with `id`: its `result`, or its `error` as
/// [`ClientError::JsonRpc`]. An HTTP error status without a JSON-RPC error is
/// [`ClientError::Http`].
pub fn parse_response(
    id: u64,
    status: http::StatusCode,
    body: &[u8],
) -> Result<Value, ClientError> {
    let http_error = || ClientError::Http {
        status,
        body: quote(body),
    };
    let response: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) if !status.is_success() => return Err(http_error()),
        Err(e) => {
            return Err(ClientError::InvalidResponse(format!(
                "body is not JSON ({e}): {}",
                quote(body)
            )));
        }
    };
    let Value::Object(mut response) = response else {
        if !status.is_success() {
            return Err(http_error());
        }
        return Err(ClientError::InvalidResponse(format!(
            "expected a JSON-RPC response object, got {}",
            quote(body)
        )));
    };
    if let Some(error) = response.remove("error") {
        return Err(json_rpc_error(error));
    }
    if !status.is_success() {
        return Err(http_error());
    }
    if let Some(version) = response.get("jsonrpc")
        && version != "2.0"
    {
        return Err(ClientError::InvalidResponse(format!(
            "jsonrpc version is {version}, expected \"2.0\""
        )));
    }
    match response.get("id") {
        Some(got) if got.as_u64() == Some(id) => {}
        Some(got) => {
            return Err(ClientError::InvalidResponse(format!(
                "response id {got} does not match the request id {id}"
            )));
        }
        None => return Err(ClientError::InvalidResponse("response has no id".into())),
    }
    response
        .remove("result")
        .ok_or_else(|| ClientError::InvalidResponse("response has neither result nor error".into()))
}

fn json_rpc_error(error: Value) -> ClientError {
    let Value::Object(mut error) = error else {
        return ClientError::InvalidResponse(format!("error member is not an object: {error}"));
    };
    let Some(code) = error.get("code").and_then(Value::as_i64) else {
        return ClientError::InvalidResponse(format!(
            "error member has no integer code: {}",
            Value::Object(error)
        ));
    };
    let message = match error.remove("message") {
        Some(Value::String(message)) => message,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    ClientError::JsonRpc {
        code,
        message,
        data: error.remove("data"),
    }
}

/// The start of a response body for an error message (at most 200 characters, `…` when cut).
pub(crate) fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut quoted: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().nth(QUOTE_CHARS).is_some() {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use serde_json::json;

    use super::*;

    #[test]
    fn builds_a_call() {
        let body: Value =
            serde_json::from_slice(&request_body(1, "eth_blockNumber", json!([]))).unwrap();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
        );
        let body: Value =
            serde_json::from_slice(&request_body(1, "net_version", Value::Null)).unwrap();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": 1, "method": "net_version"})
        );
    }

    #[test]
    fn returns_the_result() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":"0x10"}"#;
        assert_eq!(
            parse_response(1, StatusCode::OK, body).unwrap(),
            json!("0x10")
        );
        let body = br#"{"jsonrpc":"2.0","id":1,"result":null}"#;
        assert_eq!(
            parse_response(1, StatusCode::OK, body).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn json_rpc_errors_are_typed_even_with_an_http_error_status() {
        let body = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found","data":"admin_peers"}}"#;
        for status in [StatusCode::OK, StatusCode::FORBIDDEN] {
            match parse_response(1, status, body).unwrap_err() {
                ClientError::JsonRpc {
                    code,
                    message,
                    data,
                } => {
                    assert_eq!(code, -32601);
                    assert_eq!(message, "method not found");
                    assert_eq!(data, Some(json!("admin_peers")));
                }
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn http_errors_quote_the_body() {
        let err = parse_response(1, StatusCode::NOT_FOUND, b"no such chain").unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Http {
                    status: StatusCode::NOT_FOUND,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "gateway answered HTTP 404 Not Found: no such chain"
        );
    }

    #[test]
    fn batches_are_numbered_and_answers_reordered() {
        let body: Value = serde_json::from_slice(&batch_body([
            ("eth_chainId", Value::Null),
            ("eth_getBalance", json!(["0x01", "latest"])),
        ]))
        .unwrap();
        assert_eq!(
            body,
            json!([
                {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                {"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance", "params": ["0x01", "latest"]}
            ])
        );
        let answer = br#"[{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"no"}},{"jsonrpc":"2.0","id":1,"result":"0x1"}]"#;
        let results = parse_batch_response(2, StatusCode::OK, answer).unwrap();
        assert_eq!(results[0].as_ref().unwrap(), &json!("0x1"));
        assert!(matches!(
            results[1],
            Err(ClientError::JsonRpc { code: -32000, .. })
        ));
    }

    #[test]
    fn bad_batch_answers_are_refused() {
        for body in [
            &br#"[{"jsonrpc":"2.0","id":1,"result":1}]"#[..],
            br#"[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":1,"result":1}]"#,
            br#"[{"jsonrpc":"2.0","id":3,"result":1},{"jsonrpc":"2.0","id":1,"result":1}]"#,
            br#"{"jsonrpc":"2.0","id":1,"result":1}"#,
        ] {
            let err = parse_batch_response(2, StatusCode::OK, body).unwrap_err();
            assert!(matches!(err, ClientError::InvalidResponse(_)), "{err}");
        }
        let err = parse_batch_response(
            2,
            StatusCode::BAD_REQUEST,
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch too large"}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, ClientError::JsonRpc { code: -32600, .. }),
            "{err}"
        );
    }

    #[test]
    fn refuses_what_is_not_our_answer() {
        for body in [
            &b"not json"[..],
            br#"[{"jsonrpc":"2.0","id":1,"result":1}]"#,
            br#"{"jsonrpc":"2.0","id":2,"result":1}"#,
            br#"{"jsonrpc":"1.0","id":1,"result":1}"#,
            br#"{"jsonrpc":"2.0","result":1}"#,
            br#"{"jsonrpc":"2.0","id":1}"#,
            br#"{"jsonrpc":"2.0","id":1,"error":"boom"}"#,
        ] {
            let err = parse_response(1, StatusCode::OK, body).unwrap_err();
            assert!(matches!(err, ClientError::InvalidResponse(_)), "{err}");
        }
    }
}
