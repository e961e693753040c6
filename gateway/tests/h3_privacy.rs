//! DESIGN §5 over HTTP/3 (issue 17): the privacy test's assertions hold on the `[listen] h3`
//! listener too. Client headers never reach an upstream, ids are the gateway's, bodies are
//! canonical, and neither logs nor metrics hold the client's address or anything it sent.
//!
//! One test in this binary: it installs the process-wide tracing subscriber that captures every
//! log line (TRACE, every crate, quinn and h3 included) into a buffer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;
mod h3_client;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::TestGateway;
use h3_client::{Knobs, bind_h3, connect, h3, h3_config, send};
use http::{Request, StatusCode};
use serde_json::Value;
use shroud_testkit::gateway::{Started, simulated_pin};
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

fn nosy(body: &str) -> Request<Bytes> {
    Request::post("https://localhost/eth")
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "NosyWallet/1.0 (fingerprint)")
        .header("cookie", "session=secret-cookie")
        .header("authorization", "Bearer secret-token")
        .header("origin", "https://dapp.example")
        .header("referer", "https://dapp.example/page")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-real-ip", "198.51.100.9")
        .body(Bytes::from(body.to_owned()))
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
async fn over_h3_the_upstream_sees_only_canonical_calls_and_logs_never_hold_the_client() {
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
    let (gateway, addr) = bind_h3(h3_config(vec![
        ("eth".into(), upstream_a.url()),
        ("eth".into(), upstream_b.url()),
    ]))
    .await;
    let started = Started {
        addr: gateway.https_addr(),
        metrics_addr: gateway.metrics_addr(),
        measurement: gateway.measurement_hex(),
        resolver: Some(gateway.resolver()),
        client_tls: |measurement| {
            let verifier = common::verifier(&simulated_pin(measurement));
            shroud_ra_tls::tls::client_config(verifier, &[]).unwrap()
        },
    };
    let gateway = TestGateway::in_process(started, |stop| gateway.run(stop));
    let knobs = Knobs {
        local_ip: Some(CLIENT_IP),
        ..Knobs::default()
    };

    // Singly, each on a new QUIC connection from 127.0.0.77, then several on one connection.
    for _ in 0..2 {
        let mut sender = h3(connect(addr, &gateway.pin(), &knobs).await).await;
        let reply = send(&mut sender, nosy(SINGLE)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.text(),
            r#"{"jsonrpc":"2.0","id":"client-id-1","result":"0x0"}"#
        );
        assert_only_our_headers(&reply.headers);
    }
    let mut sender = h3(connect(addr, &gateway.pin(), &knobs).await).await;
    let reply = send(&mut sender, nosy(SINGLE)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_only_our_headers(&reply.headers);
    // Batches: the client's ids come back exactly, in order, the notification unanswered.
    for _ in 0..4 {
        let reply = send(&mut sender, nosy(BATCH)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_only_our_headers(&reply.headers);
        assert_eq!(
            reply.text(),
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
            assert_eq!(
                (request.method.as_str(), request.path.as_str()),
                ("POST", "/")
            );
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
            let calls = match request.json().unwrap() {
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
            if body.contains("eth_call") {
                assert!(body.contains(
                    r#""params":[{"data":"0x01","from":"0x00000000000000000000000000000000000b0b0b","to":"0x00000000000000000000000000000000000b0b0b"},"latest"]"#
                ), "{body}");
            }
        }
    }
    // 3 singles + 4 batches of 5 (the notification too, under a gateway id).
    assert_eq!(seen_calls, 3 + 4 * 5);

    // Neither logs nor metrics hold the client's address or anything it sent.
    let metrics = gateway.metrics_text().await;
    assert!(metrics.contains("protocol=\"quic\""), "{metrics}");
    let captured = logs.text();
    assert!(!captured.is_empty(), "the log capture works");
    // quinn's own TRACE lines name the peer's address; the gateway runs quinn's tasks with
    // logging off (`quic::Unlogged`), which is what keeps CLIENT_IP out of this capture.
    for secret in SECRETS {
        let lines: Vec<&str> = captured
            .lines()
            .filter(|l| l.contains(secret))
            .take(5)
            .collect();
        assert!(lines.is_empty(), "{secret} appears in the logs: {lines:#?}");
        assert!(
            !metrics.contains(secret),
            "{secret} appears in the metrics:\n{metrics}"
        );
    }
    println!(
        "h3 privacy: {seen_calls} canonical calls upstream, {} bytes of TRACE logs and {} of metrics without the client",
        captured.len(),
        metrics.len()
    );
}

fn assert_only_our_headers(headers: &http::HeaderMap) {
    for name in headers.keys() {
        assert!(
            ["content-type", "content-length", "date"].contains(&name.as_str()),
            "unexpected response header {name}"
        );
    }
}
