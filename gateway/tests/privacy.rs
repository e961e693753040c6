//! DESIGN §5 acceptance: the upstream learns what was asked and nothing about who asked, and
//! the gateway's logs and metrics never hold the client's address.
//!
//! This binary holds one test, because it installs the process-wide tracing subscriber that
//! captures every log line (TRACE, every crate) into a buffer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{StartGateway, TestGateway, dev_config};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use shroud_testkit::upstream::RecordingUpstream;

/// Where the captured log lines go.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

const CLIENT_IP: &str = "127.0.0.77";
const SECRETS: [&str; 9] = [
    "NosyWallet",
    "secret-cookie",
    "secret-token",
    "dapp.example",
    "203.0.113.7",
    "198.51.100.9",
    "client-id-",
    "0x00000000000000000000000000000000000b0b0b",
    CLIENT_IP,
];

fn nosy(body: &str) -> Request<Full<Bytes>> {
    Request::post("/eth")
        .header("host", "localhost")
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "NosyWallet/1.0 (fingerprint)")
        .header("cookie", "session=secret-cookie")
        .header("authorization", "Bearer secret-token")
        .header("origin", "https://dapp.example")
        .header("referer", "https://dapp.example/page")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-real-ip", "198.51.100.9")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// A single call with odd whitespace, reordered and extra members and a client id.
const SINGLE: &str = "{ \"params\" :[ \"0x00000000000000000000000000000000000b0b0b\" ,\t\"latest\"],\n  \"x-extra\": {\"tracking\": \"client-id-x\"}, \"id\" : \"client-id-1\",\r\n \"method\":\"eth_getBalance\", \"jsonrpc\" : \"2.0\" }";

/// A batch: client ids of every type, a notification, nested params with reordered keys.
const BATCH: &str = r#"[
  {"id": "client-id-a", "method": "eth_blockNumber", "jsonrpc": "2.0"},
  {"jsonrpc": "2.0", "method": "eth_blockNumber"},
  {"method": "eth_call", "jsonrpc": "2.0", "id": 123456789012345678901234567890,
   "params": [{"to": "0x00000000000000000000000000000000000b0b0b", "data": "0x01", "from": "0x00000000000000000000000000000000000b0b0b"}, "latest"]},
  {"jsonrpc": "2.0", "id": null, "method": "eth_gasPrice", "params": []},
  {"jsonrpc": "2.0", "id": -1.50, "method": "eth_getBalance", "params": ["0x00000000000000000000000000000000000b0b0b", "latest"]}
]"#;

#[tokio::test]
async fn upstream_sees_only_canonical_calls_and_logs_never_hold_the_client() {
    let logs = Buffer::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let upstream_a = RecordingUpstream::start().await;
    let upstream_b = RecordingUpstream::start().await;
    let gateway = TestGateway::start_config(dev_config(vec![
        ("eth".into(), upstream_a.url()),
        ("eth".into(), upstream_b.url()),
    ]))
    .await;

    // Singly, over HTTP/1.1 and HTTP/2, from 127.0.0.77.
    for _ in 0..3 {
        let reply = gateway.http1_from(CLIENT_IP, nosy(SINGLE)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            std::str::from_utf8(&reply.body).unwrap(),
            r#"{"jsonrpc":"2.0","id":"client-id-1","result":"0x0"}"#
        );
        assert_only_our_headers(&reply.headers);
    }
    let tls = gateway.connect_from(CLIENT_IP, b"h2").await;
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = nosy(SINGLE);
    *request.uri_mut() = "https://localhost/eth".parse().unwrap();
    request.headers_mut().remove("host");
    let response = h2.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_only_our_headers(response.headers());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        r#"{"jsonrpc":"2.0","id":"client-id-1","result":"0x0"}"#
    );

    // In batches: the client's ids come back exactly, in order, the notification unanswered.
    for _ in 0..4 {
        let reply = gateway.http1_from(CLIENT_IP, nosy(BATCH)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            std::str::from_utf8(&reply.body).unwrap(),
            concat!(
                r#"[{"jsonrpc":"2.0","id":"client-id-a","result":"0x10"},"#,
                r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"result":"0x0"},"#,
                r#"{"jsonrpc":"2.0","id":null,"result":"0x0"},"#,
                r#"{"jsonrpc":"2.0","id":-1.50,"result":"0x0"}]"#
            )
        );
    }

    // What the upstreams saw.
    let mut seen_calls = 0;
    let mut gateway_ids = std::collections::HashSet::new();
    for upstream in [&upstream_a, &upstream_b] {
        for request in upstream.requests() {
            assert_eq!(request.method, "POST");
            assert_eq!(request.path, "/");
            let mut names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            assert_eq!(
                names,
                [
                    "accept",
                    "content-length",
                    "content-type",
                    "host",
                    "user-agent"
                ],
                "{:?}",
                request.headers
            );
            assert_eq!(
                request.header("user-agent"),
                Some(concat!("shroud-gateway/", env!("CARGO_PKG_VERSION")))
            );
            for (_, value) in &request.headers {
                for secret in SECRETS {
                    assert!(
                        !value.contains(secret),
                        "{secret} reached an upstream header"
                    );
                }
            }
            let body = String::from_utf8(request.body.clone()).unwrap();
            assert!(
                !body.contains("client-id"),
                "a client id reached the upstream: {body}"
            );
            assert!(
                !body.contains("x-extra") && !body.contains("tracking"),
                "{body}"
            );
            assert!(!body.contains("123456789012345678901234567890"), "{body}");
            assert!(
                !body.contains(' ') && !body.contains('\n') && !body.contains('\t'),
                "{body}"
            );
            let parsed = request.json().unwrap();
            let calls = match parsed {
                Value::Array(calls) => calls,
                call => vec![call],
            };
            for call in calls {
                let id = call["id"].as_u64().expect("a gateway id: a number");
                assert!(id < 1 << 53);
                assert!(gateway_ids.insert(id), "gateway ids are never reused");
                let expected = format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":{},"params":{}}}"#,
                    call["method"], call["params"]
                );
                assert!(body.contains(&expected), "not canonical: {body}");
                seen_calls += 1;
            }
            // Nested keys sorted, whatever order the client used.
            if body.contains("eth_call") {
                assert!(body.contains(
                    r#""params":[{"data":"0x01","from":"0x00000000000000000000000000000000000b0b0b","to":"0x00000000000000000000000000000000000b0b0b"},"latest"]"#
                ), "{body}");
            }
        }
    }
    // 4 singles + 4 batches of 5 (the notification too, under a gateway id).
    assert_eq!(seen_calls, 4 + 4 * 5);

    // Neither logs nor metrics hold the client's address or anything it sent.
    let metrics = gateway.metrics_text().await;
    let captured = logs.text();
    assert!(!captured.is_empty(), "the log capture works");
    for secret in SECRETS {
        assert!(
            !captured.contains(secret),
            "{secret} appears in the logs:\n{captured}"
        );
        assert!(
            !metrics.contains(secret),
            "{secret} appears in the metrics:\n{metrics}"
        );
    }
    for upstream in [&upstream_a, &upstream_b] {
        assert!(
            !metrics.contains(&upstream.addr().port().to_string()),
            "an upstream URL appears in the metrics"
        );
    }
}

fn assert_only_our_headers(headers: &http::HeaderMap) {
    for name in headers.keys() {
        assert!(
            ["content-type", "content-length", "date"].contains(&name.as_str()),
            "unexpected response header {name}"
        );
    }
}
