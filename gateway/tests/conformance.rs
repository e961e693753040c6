//! JSON-RPC 2.0 conformance through the real gateway (RA-TLS on loopback, a recording upstream):
//! every case of issue 3 scope 2, each asserting the exact HTTP status and the exact answer
//! bytes. Request-size, batch-length and response-size limits are here; rate limits and slow
//! clients are in `limits.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use bytes::Bytes;
use common::{StartGateway, TestGateway, dev_config, post_json};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use shroud_gateway::Config;
use shroud_gateway::config::{UpstreamConfig, UpstreamTable};
use shroud_testkit::upstream::{RecordingUpstream, default_response};

/// The error the upstream gives to `eth_call` (keys in serde_json's sorted order, as it sends
/// them).
const REVERT: &str = r#"{"code":3,"data":"0x08c379a0","message":"execution reverted"}"#;

/// A node: `eth_call` reverts, unknown methods are -32601, `eth_big` answers 4 KiB, the rest
/// as [`default_response`].
fn node(request: &Value) -> Value {
    let one = |call: &Value| {
        let id = call.get("id").cloned().unwrap_or(Value::Null);
        match call["method"].as_str().unwrap_or_default() {
            "eth_call" => {
                json!({"jsonrpc": "2.0", "id": id, "error": serde_json::from_str::<Value>(REVERT).unwrap()})
            }
            "eth_big" => json!({"jsonrpc": "2.0", "id": id, "result": "a".repeat(4096)}),
            "eth_blockNumber" | "eth_chainId" | "eth_getBalance" | "net_version" => {
                default_response(call)
            }
            other => json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": -32601, "message": format!("the method {other} does not exist/is not available")
            }}),
        }
    };
    match request {
        Value::Array(calls) => Value::Array(calls.iter().map(one).collect()),
        call => one(call),
    }
}

/// Two upstreams (so batches are really split and re-assembled) behind chain `eth`, and a chain
/// `strict` with an allow list; small limits.
async fn gateway(upstreams: &[&RecordingUpstream]) -> TestGateway {
    let mut config = dev_config(
        upstreams
            .iter()
            .map(|u| ("eth".to_owned(), u.url()))
            .chain([("strict".to_owned(), upstreams[0].url())])
            .collect(),
    );
    config.limits.max_batch_len = 5;
    config.limits.max_request_bytes = 2048;
    config.limits.max_response_bytes = 1024;
    config.limits.rate_limit_per_second = 0;
    config.cache.enabled = false;
    config.chains[1].allow_methods = Some(vec!["eth_blockNumber".to_owned()]);
    TestGateway::start_config(config).await
}

async fn post(gateway: &TestGateway, path: &str, body: &str) -> (StatusCode, String) {
    let reply = gateway.http1(post_json(path, body)).await;
    if reply.status != StatusCode::NO_CONTENT {
        assert_eq!(reply.headers["content-type"], "application/json", "{body}");
    }
    (
        reply.status,
        String::from_utf8(reply.body.to_vec()).unwrap(),
    )
}

/// Sends every `(request, status, answer)` case and asserts the exact status and bytes.
async fn check(gateway: &TestGateway, path: &str, cases: &[(&str, StatusCode, &str)]) {
    for (request, status, answer) in cases {
        let got = post(gateway, path, request).await;
        assert_eq!(got, (*status, (*answer).to_owned()), "request: {request}");
    }
}

const OK: StatusCode = StatusCode::OK;

fn invalid(id: &str, reason: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32600,"message":"invalid request: {reason}"}}}}"#
    )
}

fn denied(id: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"method not found or not allowed by this gateway"}}}}"#
    )
}

fn upstream_error(id: &str, message: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32000,"message":"{message}"}}}}"#)
}

#[tokio::test]
async fn single_calls_and_ids_of_every_legal_type() {
    let a = RecordingUpstream::start_with(node).await;
    let b = RecordingUpstream::start_with(node).await;
    let gateway = gateway(&[&a, &b]).await;
    let mut cases = Vec::new();
    let ids = [
        "1",
        "0",
        "-7",
        "1.5",
        "1.50",
        "-0.25e-3",
        "1e3",
        "123456789012345678901234567890",
        "\"abc\"",
        "\"\"",
        "\"\\u00e9\\\"q\"",
        "null",
    ];
    let requests: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_blockNumber"}}"#))
        .collect();
    let answers: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"0x10"}}"#))
        .collect();
    for (request, answer) in requests.iter().zip(&answers) {
        cases.push((request.as_str(), OK, answer.as_str()));
    }
    check(&gateway, "/eth", &cases).await;

    // Illegal ids: answered under null, never relayed.
    let bad_id = invalid("null", "id must be a string, a number or null");
    check(
        &gateway,
        "/eth",
        &[
            (
                r#"{"jsonrpc":"2.0","id":true,"method":"eth_blockNumber"}"#,
                OK,
                &bad_id,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"eth_blockNumber"}"#,
                OK,
                &bad_id,
            ),
            (
                r#"{"jsonrpc":"2.0","id":[1],"method":"eth_blockNumber"}"#,
                OK,
                &bad_id,
            ),
        ],
    )
    .await;
    assert_eq!(a.calls().len() + b.calls().len(), ids.len());
}

#[tokio::test]
async fn batches_keep_client_order_and_skip_notifications() {
    let a = RecordingUpstream::start_with(node).await;
    let b = RecordingUpstream::start_with(node).await;
    let gateway = gateway(&[&a, &b]).await;
    let batch = r#"[
        {"jsonrpc":"2.0","id":"first","method":"eth_chainId"},
        {"jsonrpc":"2.0","method":"eth_blockNumber"},
        {"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"},
        {"jsonrpc":"2.0","id":null,"method":"net_version"},
        {"jsonrpc":"2.0","id":-1.50,"method":"eth_call","params":[{"to":"0x00"},"latest"]}
    ]"#;
    let expected = format!(
        concat!(
            r#"[{{"jsonrpc":"2.0","id":"first","result":"0x1"}},"#,
            r#"{{"jsonrpc":"2.0","id":2,"result":"0x10"}},"#,
            r#"{{"jsonrpc":"2.0","id":null,"result":"0x0"}},"#,
            r#"{{"jsonrpc":"2.0","id":-1.50,"error":{}}}]"#
        ),
        REVERT
    );
    // Random dispatch spreads the calls; the order of answers never changes.
    for _ in 0..8 {
        check(&gateway, "/eth", &[(batch, OK, &expected)]).await;
    }
    assert!(!a.calls().is_empty() && !b.calls().is_empty());

    // A single notification, and a batch of notifications only: no answer at all.
    check(
        &gateway,
        "/eth",
        &[
            (r#"{"jsonrpc":"2.0","method":"eth_blockNumber"}"#, StatusCode::NO_CONTENT, ""),
            (
                r#"[{"jsonrpc":"2.0","method":"eth_blockNumber"},{"jsonrpc":"2.0","method":"net_version","params":[]}]"#,
                StatusCode::NO_CONTENT,
                "",
            ),
            // A denied notification gets no answer either.
            (r#"{"jsonrpc":"2.0","method":"debug_traceTransaction"}"#, StatusCode::NO_CONTENT, ""),
        ],
    )
    .await;
}

#[tokio::test]
async fn invalid_json_and_invalid_requests() {
    let a = RecordingUpstream::start_with(node).await;
    let gateway = gateway(&[&a]).await;
    let parse_error =
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#;
    let not_object = invalid("null", "a request must be an object");
    let mixed = format!(
        "[{},{},{},{},{}]",
        not_object,
        r#"{"jsonrpc":"2.0","id":2,"result":"0x10"}"#,
        invalid("3", "jsonrpc must be \\\"2.0\\\""),
        invalid("null", "jsonrpc must be \\\"2.0\\\""),
        invalid("5", "params must be an array or an object"),
    );
    let all_invalid = format!("[{not_object},{not_object},{not_object}]");
    check(
        &gateway,
        "/eth",
        &[
            // -32700: not JSON, anywhere in the body, single or batch.
            (r#"{"jsonrpc":"2.0","method":"foo","params":"bar","baz]"#, OK, parse_error),
            (
                r#"[{"jsonrpc":"2.0","method":"eth_blockNumber","id":1},{"jsonrpc":"2.0","method""#,
                OK,
                parse_error,
            ),
            ("", OK, parse_error),
            ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\"} trailing", OK, parse_error),
            // -32600: JSON but not a request.
            ("[]", OK, &invalid("null", "empty batch")),
            ("42", OK, &invalid("null", "expected a request object or a batch array")),
            ("\"eth_blockNumber\"", OK, &invalid("null", "expected a request object or a batch array")),
            ("[1,2,3]", OK, &all_invalid),
            (r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#, OK, &invalid("null", "method must be a string")),
            (r#"{"id":9,"method":"eth_blockNumber"}"#, OK, &invalid("9", "jsonrpc must be \\\"2.0\\\"")),
            (r#"{"jsonrpc":"2.0","id":9}"#, OK, &invalid("9", "method must be a string")),
            (r#"{"jsonrpc":"2.0","id":9,"method":"eth_getBalance","params":"0x1"}"#, OK, &invalid("9", "params must be an array or an object")),
            // Mixed valid and invalid members: each judged on its own, in order.
            (
                r#"[1,{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"},{"jsonrpc":"1.0","id":3,"method":"eth_blockNumber"},{"foo":"boo"},{"jsonrpc":"2.0","id":5,"method":"eth_getBalance","params":7}]"#,
                OK,
                &mixed,
            ),
        ],
    )
    .await;
    // Only the one valid call reached the upstream.
    assert_eq!(a.calls().len(), 1, "{:?}", a.calls());
}

#[tokio::test]
async fn unknown_and_denied_methods_are_32601() {
    let a = RecordingUpstream::start_with(node).await;
    let gateway = gateway(&[&a]).await;
    let upstream_unknown = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"the method eth_noSuchMethod does not exist/is not available"}}"#;
    let batch_answer = format!(
        "[{},{},{}]",
        denied("1"),
        r#"{"jsonrpc":"2.0","id":2,"result":"0x10"}"#,
        denied("\"x\"")
    );
    check(
        &gateway,
        "/eth",
        &[
            // The default deny list (DESIGN §5) and JSON-RPC's reserved rpc. methods.
            (r#"{"jsonrpc":"2.0","id":1,"method":"admin_peers"}"#, OK, &denied("1")),
            (r#"{"jsonrpc":"2.0","id":1,"method":"debug_traceTransaction","params":["0x00"]}"#, OK, &denied("1")),
            (r#"{"jsonrpc":"2.0","id":1,"method":"personal_sign"}"#, OK, &denied("1")),
            (r#"{"jsonrpc":"2.0","id":1,"method":"miner_start"}"#, OK, &denied("1")),
            (r#"{"jsonrpc":"2.0","id":1,"method":"txpool_content"}"#, OK, &denied("1")),
            (r#"{"jsonrpc":"2.0","id":1,"method":"engine_newPayloadV3"}"#, OK, &denied("1")),
            (r#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"#, OK, &denied("1")),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"admin_nodeInfo"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":"x","method":"debug_x"}]"#,
                OK,
                &batch_answer,
            ),
            // Not denied but unknown to the node: the node's own -32601, passed through.
            (r#"{"jsonrpc":"2.0","id":1,"method":"eth_noSuchMethod"}"#, OK, upstream_unknown),
        ],
    )
    .await;
    // A chain with an allow list answers -32601 itself for anything else.
    check(
        &gateway,
        "/strict",
        &[
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
                OK,
                r#"{"jsonrpc":"2.0","id":1,"result":"0x10"}"#,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"eth_noSuchMethod"}"#,
                OK,
                &denied("1"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#,
                OK,
                &denied("1"),
            ),
        ],
    )
    .await;
    // Neither a denied call nor an allow-list refusal reached the upstream.
    let methods: Vec<String> = a
        .calls()
        .iter()
        .flat_map(|c| match c {
            Value::Array(calls) => calls.clone(),
            call => vec![call.clone()],
        })
        .map(|c| c["method"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        methods,
        ["eth_blockNumber", "eth_noSuchMethod", "eth_blockNumber"]
    );
}

#[tokio::test]
async fn size_and_length_limits() {
    let a = RecordingUpstream::start_with(node).await;
    let gateway = gateway(&[&a]).await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#;
    let batch = |n: usize| format!("[{}]", vec![call; n].join(","));
    let five = format!(
        "[{}]",
        [r#"{"jsonrpc":"2.0","id":1,"result":"0x10"}"#; 5].join(",")
    );
    let too_big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["{}"]}}"#,
        "0".repeat(2048)
    );
    check(
        &gateway,
        "/eth",
        &[
            (&batch(5), OK, &five),
            (&batch(6), OK, &invalid("null", "batch of 6 calls exceeds the limit of 5")),
            (
                &too_big,
                StatusCode::PAYLOAD_TOO_LARGE,
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body too large: the limit is 2048 bytes"}}"#,
            ),
            // An upstream answer above max_response_bytes is not relayed.
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"eth_big"}"#,
                OK,
                &upstream_error("7", "upstream response too large: the limit is 1024 bytes"),
            ),
        ],
    )
    .await;
    assert_eq!(a.calls().len(), 2, "nothing over a limit was relayed");
}

#[tokio::test]
async fn content_type_and_http_method_are_checked() {
    let a = RecordingUpstream::start_with(node).await;
    let gateway = gateway(&[&a]).await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#;
    let unsupported = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"content-type must be application/json"}}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonp"),
        None,
    ] {
        let mut request = Request::post("/eth").header("host", "localhost");
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        let reply = gateway
            .http1(
                request
                    .body(Full::new(Bytes::from_static(call.as_bytes())))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(reply.body, unsupported);
    }
    let reply = gateway
        .http1(
            Request::post("/eth")
                .header("host", "localhost")
                .header("content-type", "Application/JSON; charset=UTF-8")
                .body(Full::new(Bytes::from_static(call.as_bytes())))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, r#"{"jsonrpc":"2.0","id":1,"result":"0x10"}"#);
    let reply = gateway.http1(common::get("/eth")).await;
    // GET on a chain is for WebSocket; without the upgrade it says so.
    assert_eq!(reply.status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(reply.json()["error"]["code"], -32600);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Upgrade: websocket") && m.contains("POST")),
        "{:?}",
        reply.body
    );
    assert_eq!(a.calls().len(), 1);
}

#[tokio::test]
async fn upstream_errors_pass_through_faithfully() {
    let a = RecordingUpstream::start_with(node).await;
    let gateway = gateway(&[&a]).await;
    let revert = format!(r#"{{"jsonrpc":"2.0","id":"c","error":{REVERT}}}"#);
    check(
        &gateway,
        "/eth",
        &[(
            r#"{"jsonrpc":"2.0","id":"c","method":"eth_call","params":[{"to":"0x00"},"latest"]}"#,
            OK,
            &revert,
        )],
    )
    .await;
    // An HTTP 500 carrying a JSON-RPC answer: the answer is what the client gets.
    a.set_status(Some(StatusCode::INTERNAL_SERVER_ERROR));
    check(
        &gateway,
        "/eth",
        &[(
            r#"{"jsonrpc":"2.0","id":"c","method":"eth_call","params":[{"to":"0x00"},"latest"]}"#,
            OK,
            &revert,
        )],
    )
    .await;
}

/// A config with one upstream whose exchange times out after 300 ms.
fn short_timeout_config(url: String) -> Config {
    let mut config = dev_config(vec![("eth".to_owned(), url.clone())]);
    config.limits.rate_limit_per_second = 0;
    config.chains[0].upstreams = vec![UpstreamConfig::Table(UpstreamTable {
        url,
        name: Some("solo".to_owned()),
        headers: Default::default(),
        bearer_token: None,
        timeout_ms: Some(300),
        max_concurrent: None,
        ws: None,
    })];
    config
}

#[tokio::test]
async fn transport_failures_are_clear_json_rpc_errors() {
    let a = RecordingUpstream::start_with(node).await;
    let gateway = TestGateway::start_config(short_timeout_config(a.url())).await;
    let single = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#;
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":"b","method":"net_version"}]"#;

    a.set_garbage(true);
    let garbage = upstream_error("1", "upstream returned an invalid response");
    let garbage_batch = format!(
        "[{},{}]",
        garbage,
        upstream_error("\"b\"", "upstream returned an invalid response")
    );
    check(
        &gateway,
        "/eth",
        &[(single, OK, &garbage), (batch, OK, &garbage_batch)],
    )
    .await;

    a.set_status(Some(StatusCode::BAD_GATEWAY));
    check(
        &gateway,
        "/eth",
        &[(
            single,
            OK,
            &upstream_error("1", "upstream returned HTTP 502"),
        )],
    )
    .await;
    a.set_status(None);
    a.set_garbage(false);

    a.set_delay(Some(std::time::Duration::from_secs(2)));
    check(
        &gateway,
        "/eth",
        &[(single, OK, &upstream_error("1", "upstream timed out"))],
    )
    .await;
    a.set_delay(None);

    a.kill();
    let down = upstream_error(
        "1",
        "upstream unavailable: no upstream of this chain could be reached",
    );
    let down_batch = format!(
        "[{},{}]",
        down,
        upstream_error(
            "\"b\"",
            "upstream unavailable: no upstream of this chain could be reached"
        )
    );
    check(
        &gateway,
        "/eth",
        &[(single, OK, &down), (batch, OK, &down_batch)],
    )
    .await;
}
