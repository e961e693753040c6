//! Through `shroud-host ingress` and its PROXY v2 headers, two client addresses (127.0.0.2 and
//! 127.0.0.3) get separate rate-limit buckets in the gateway, and neither address appears in the
//! gateway's logs (captured at TRACE) or its `/metrics`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use shroud_gateway::{Config, Gateway};
use shroud_ra_tls::Policy;
use shroud_ra_tls::tls::{AttestedServerVerifier, client_config};
use shroud_testkit::upstream::RecordingUpstream;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const HOST: &str = env!("CARGO_BIN_EXE_shroud-host");

/// Everything the process logs, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn call_from(ingress: std::net::SocketAddr, ip: &str, measurement: &str) -> http::StatusCode {
    let pin = format!("simulated:measurement={measurement}");
    let verifier = Arc::new(
        AttestedServerVerifier::new(Policy::from_pins([pin]).unwrap()).danger_allow_simulated(true),
    );
    let tls = client_config(verifier, &[]).unwrap();
    let stream = shroud_testkit::gateway::connect_from(ingress, ip, tls, b"http/1.1").await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = http::Request::post("/eth")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#,
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test]
async fn two_clients_behind_ingress_get_their_own_buckets_and_stay_unnamed() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gateway.sock");
    let config = Config::from_toml_str(&format!(
        r#"
[listen]
https = "127.0.0.1:0"
metrics = "127.0.0.1:0"
unix = "{}"
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
        socket.display(),
        upstream.url()
    ))
    .unwrap();
    let gateway = Gateway::bind(config).await.unwrap();
    let measurement = gateway.measurement_hex();
    let metrics_addr = gateway.metrics_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ingress: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _ingress = tokio::process::Command::new(HOST)
        .args([
            "ingress",
            "--listen",
            &ingress.to_string(),
            "--unix",
            socket.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(ingress).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(call_from(ingress, "127.0.0.2", &measurement).await, 200);
    assert_eq!(call_from(ingress, "127.0.0.2", &measurement).await, 429);
    assert_eq!(call_from(ingress, "127.0.0.3", &measurement).await, 200);
    let relayed = upstream
        .requests()
        .iter()
        .filter(|r| r.json().is_some_and(|b| b["method"] == "eth_blockNumber"))
        .count();
    assert_eq!(relayed, 2, "the refused call never reached the upstream");

    let mut metrics = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
    metrics
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut exported = String::new();
    metrics.read_to_string(&mut exported).await.unwrap();
    assert!(exported.contains("shroud_requests_total"), "{exported}");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("TRACE"), "captured at TRACE");
    for address in ["127.0.0.2", "127.0.0.3"] {
        assert!(!logs.contains(address), "{address} in the gateway's logs");
        assert!(!exported.contains(address), "{address} in /metrics");
    }

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), serving).await;
}
