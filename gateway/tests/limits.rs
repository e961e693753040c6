//! Limits towards clients, each asserting the documented response: the per-client rate limit
//! (HTTP 429 and a -32005 error), the body limit for chunked bodies (HTTP 413), slow clients
//! (slowloris: headers or body too slow → the connection is closed or HTTP 408) and the
//! connection limit. The batch-length, body-size and response-size limits are asserted in
//! `conformance.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use common::{StartGateway, TestGateway, connect, dev_config, post_json};
use http::StatusCode;
use shroud_testkit::upstream::RecordingUpstream;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#;
const ANSWER: &str = r#"{"jsonrpc":"2.0","id":1,"result":"0x10"}"#;
const RATE_LIMITED: &str = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"rate limit exceeded, retry later"}}"#;

async fn gateway_with(
    upstream: &RecordingUpstream,
    edit: impl FnOnce(&mut shroud_gateway::Config),
) -> TestGateway {
    let mut config = dev_config(vec![("eth".into(), upstream.url())]);
    config.limits.rate_limit_per_second = 0;
    edit(&mut config);
    TestGateway::start_config(config).await
}

/// Reads until the gateway closes the connection (bounded, so a gateway that never does fails
/// the test instead of hanging it).
async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0_u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the gateway kept a slow connection open");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_a_json_rpc_error() {
    let upstream = RecordingUpstream::start().await;
    let gateway = gateway_with(&upstream, |c| {
        c.limits.rate_limit_per_second = 1;
        c.limits.rate_limit_burst = 3;
    })
    .await;
    // A batch counts each call: 3 calls use the whole burst.
    let batch = format!("[{CALL},{CALL},{CALL}]");
    let reply = gateway.http1(post_json("/eth", &batch)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, format!("[{ANSWER},{ANSWER},{ANSWER}]"));
    // The next batch of 3 is refused whole, before anything is relayed.
    let relayed = upstream.calls().len();
    let reply = gateway.http1(post_json("/eth", &batch)).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.body, RATE_LIMITED);
    assert_eq!(upstream.calls().len(), relayed);
    // Over HTTP/2 too.
    let reply = gateway.http2(post_json("/eth", &batch)).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.body, RATE_LIMITED);
    // Another client address has its own bucket.
    let reply = gateway
        .http1_from("127.0.0.2", post_json("/eth", CALL))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, ANSWER);
    let metrics = gateway.metrics_text().await;
    assert!(
        metrics.contains("shroud_rate_limited_total 2\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let upstream = RecordingUpstream::start().await;
    let gateway = gateway_with(&upstream, |c| c.limits.max_request_bytes = 256).await;
    let mut tls = connect(gateway.addr, &gateway.pin(), b"http/1.1").await;
    // No content-length: the limit has to hold while reading.
    tls.write_all(
        b"POST /eth HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 200, "a".repeat(200));
    tls.write_all(chunk.as_bytes()).await.unwrap();
    tls.write_all(chunk.as_bytes()).await.unwrap();
    tls.write_all(b"0\r\n\r\n").await.unwrap();
    let response = read_until_closed(&mut tls).await;
    assert!(
        response.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body too large: the limit is 256 bytes"}}"#)
            || response.contains(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body too large: the limit is 256 bytes"}}"#),
        "{response}"
    );
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn slow_headers_are_cut_off_after_the_header_timeout() {
    let upstream = RecordingUpstream::start().await;
    let gateway = gateway_with(&upstream, |c| c.limits.header_read_timeout_ms = 300).await;

    // Half a request head, then nothing (slowloris).
    let mut tls = connect(gateway.addr, &gateway.pin(), b"http/1.1").await;
    tls.write_all(b"POST /eth HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl")
        .await
        .unwrap();
    let response = read_until_closed(&mut tls).await;
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 408 "),
        "{response}"
    );

    // Nothing at all after the handshake.
    let mut tls = connect(gateway.addr, &gateway.pin(), b"http/1.1").await;
    let response = read_until_closed(&mut tls).await;
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 408 "),
        "{response}"
    );

    // A prompt client on the same gateway is served.
    let reply = gateway.http1(post_json("/eth", CALL)).await;
    assert_eq!(reply.body, ANSWER);
    assert!(upstream.calls().len() == 1);
}

#[tokio::test]
async fn a_slow_body_is_408_with_a_json_rpc_error() {
    let upstream = RecordingUpstream::start().await;
    let gateway = gateway_with(&upstream, |c| c.limits.body_read_timeout_ms = 300).await;
    let mut tls = connect(gateway.addr, &gateway.pin(), b"http/1.1").await;
    tls.write_all(
        b"POST /eth HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 52\r\n\r\n{\"jsonrpc\":",
    )
    .await
    .unwrap();
    let response = read_until_closed(&mut tls).await;
    assert!(
        response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{response}"
    );
    assert!(
        response.contains(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body not received in time"}}"#),
        "{response}"
    );
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_accept() {
    let upstream = RecordingUpstream::start().await;
    let gateway = gateway_with(&upstream, |c| c.limits.max_connections = 2).await;
    let first = connect(gateway.addr, &gateway.pin(), b"http/1.1").await;
    let _second = connect(gateway.addr, &gateway.pin(), b"http/1.1").await;
    // The client's handshake ends before the gateway has read its Finished; until the gateway
    // has, a connection still counts as an unfinished handshake, which a new one may shed.
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            gateway
                .metrics_text()
                .await
                .contains(r#"shroud_tls_handshakes_total{outcome="ok",protocol="tcp"} 2"#)
        })
        .await,
        "the gateway did not finish both handshakes"
    );
    // The third handshake never completes: the gateway closes the TCP connection.
    let config =
        shroud_ra_tls::tls::client_config(common::verifier(&gateway.pin()), &[b"http/1.1"])
            .unwrap();
    let third = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tokio::net::TcpStream::connect(gateway.addr).await.unwrap(),
        )
        .await;
    assert!(third.is_err(), "a third connection was accepted");
    // Closing one frees its slot.
    drop(first);
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            let config =
                shroud_ra_tls::tls::client_config(common::verifier(&gateway.pin()), &[b"http/1.1"])
                    .unwrap();
            tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                .connect(
                    rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                    tokio::net::TcpStream::connect(gateway.addr).await.unwrap(),
                )
                .await
                .is_ok()
        })
        .await
    );
}
