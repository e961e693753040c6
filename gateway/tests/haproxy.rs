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
use std::process::Stdio;
use std::time::Duration;

use common::{StartGateway as _, TestGateway, post_json, verifier};
use http::StatusCode;
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use shroud_ra_tls::tls::client_config;
use shroud_testkit::upstream::RecordingUpstream;

fn haproxy() -> Option<String> {
    let found = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .map(str::to_owned);
    if found.is_none() {
        assert!(
            std::env::var("SHROUD_REQUIRE_HAPROXY").as_deref() != Ok("1"),
            "SHROUD_REQUIRE_HAPROXY=1 but haproxy is not installed"
        );
        println!("skipped: haproxy not installed (apt-get install haproxy)");
    }
    found
}

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

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let front: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend shroud\n  bind {front}\n  default_backend gateways\n\
             backend gateways\n  server gw0 {} send-proxy-v2\n",
            gateway.addr
        ),
    )
    .unwrap();
    let _haproxy = tokio::process::Command::new(haproxy)
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(front).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "haproxy listens on {front}");

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
