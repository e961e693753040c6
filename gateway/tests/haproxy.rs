//! The gateway behind a real L4 balancer: Debian's `haproxy` in TCP mode with `send-proxy-v2`
//! (issue 15's balancer, DESIGN §7). Two clients at 127.0.0.2 and 127.0.0.3 reach the gateway
//! through the same haproxy, and each gets its own rate-limit bucket from its PROXY header.
//! Skips without haproxy, unless `SHROUD_REQUIRE_HAPROXY=1` (which `.ci/run` sets).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Haproxy, StartGateway as _, TestGateway, haproxy, post_json, verifier};
use http::StatusCode;
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use shroud_ra_tls::tls::client_config;
use shroud_testkit::upstream::RecordingUpstream;

async fn call_from(front: SocketAddr, ip: &str, pin: &str) -> StatusCode {
    let tls = client_config(verifier(pin), &[]).unwrap();
    let stream = shroud_testkit::gateway::connect_from(front, ip, tls, b"http/1.1").await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender
        .send_request(post_json(
            "/eth",
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#,
        ))
        .await
        .unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test]
async fn behind_haproxy_send_proxy_v2_each_client_has_its_own_bucket() {
    let Some(haproxy) = haproxy() else { return };
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::spawn_binary(
        &format!(
            r#"
[listen]
https = "127.0.0.1:0"
metrics = "127.0.0.1:0"
proxy_protocol = true
[tee]
platform = "simulated"
[limits]
rate_limit_per_second = 1
rate_limit_burst = 1
[cache]
enabled = false
[[chain]]
name = "eth"
upstreams = ["{}"]
"#,
            upstream.url()
        ),
        "export RUST_LOG=trace",
    )
    .await;

    let haproxy = Haproxy::start(&haproxy, &[gateway.addr]).await;
    let front = haproxy.front;

    let pin = gateway.pin();
    assert_eq!(call_from(front, "127.0.0.2", &pin).await, StatusCode::OK);
    assert_eq!(
        call_from(front, "127.0.0.2", &pin).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(call_from(front, "127.0.0.3", &pin).await, StatusCode::OK);

    // A client straight to the gateway, without haproxy's header, is closed unanswered.
    let mut tls = client_config(verifier(&pin), &[]).unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let direct = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls)).connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        ),
    )
    .await
    .unwrap();
    assert!(direct.is_err(), "no TLS without a PROXY header");

    let logs = gateway.stderr();
    let metrics = gateway.metrics_text().await;
    for address in ["127.0.0.2", "127.0.0.3"] {
        assert!(!logs.contains(address), "{address} in the TRACE logs");
        assert!(!metrics.contains(address), "{address} in /metrics");
    }
}
