//! The gateway's other transports (issue 13): a Unix-socket listener standing in for vsock, with
//! PROXY protocol v2 headers naming the clients, and every outbound connection through an egress
//! proxy on a Unix socket. The `shroud-host` end-to-end runs are in `host/tests/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Reply, StartGateway as _, TestGateway, post_json, verifier};
use http::StatusCode;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use ppp::v2::{Builder, Command, Protocol, Version};
use rustls::pki_types::ServerName;
use shroud_ra_tls::tls::client_config;
use shroud_testkit::upstream::RecordingUpstream;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio_rustls::TlsConnector;

fn config(dir: &Path, upstream: &str, egress: bool) -> String {
    let egress = if egress {
        format!(
            "[egress]\nunix = \"{}\"\n",
            dir.join("egress.sock").display()
        )
    } else {
        String::new()
    };
    format!(
        r#"
{egress}
[listen]
https = "127.0.0.1:0"
metrics = "127.0.0.1:0"
unix = "{unix}"
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
upstreams = ["{upstream}"]
"#,
        unix = dir.join("gateway.sock").display(),
    )
}

/// The PROXY v2 header a forwarder sends for a TCP client at `source`.
fn proxy_header(source: &str) -> Vec<u8> {
    let source: SocketAddr = source.parse().unwrap();
    let destination: SocketAddr = "127.0.0.1:443".parse().unwrap();
    Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Stream,
        (source, destination),
    )
    .build()
    .unwrap()
}

/// One JSON-RPC call over the gateway's Unix socket, as a forwarder would pass it on for the
/// client at `source` (`None`: no PROXY header at all).
async fn call_as(gateway: &TestGateway, socket: &Path, source: Option<&str>) -> Reply {
    let mut unix = UnixStream::connect(socket).await.unwrap();
    if let Some(source) = source {
        unix.write_all(&proxy_header(source)).await.unwrap();
    }
    let config = client_config(verifier(&gateway.pin()), &[b"http/1.1"]).unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), unix)
        .await
        .expect("RA-TLS handshake over the Unix socket");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = post_json(
        "/eth",
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#,
    );
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

#[tokio::test]
async fn proxy_headers_give_each_client_its_own_bucket_and_no_address_is_logged_or_exported() {
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::spawn_binary(
        &config(dir.path(), &upstream.url(), false),
        "export RUST_LOG=trace",
    )
    .await;
    let socket = dir.path().join("gateway.sock");

    // One call per second, burst 1: the second call of 127.0.0.2 is refused, while 127.0.0.3,
    // behind the same forwarder, still has its own call.
    let first = call_as(&gateway, &socket, Some("127.0.0.2:40000")).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let again = call_as(&gateway, &socket, Some("127.0.0.2:40001")).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    let other = call_as(&gateway, &socket, Some("127.0.0.3:40000")).await;
    assert_eq!(other.status, StatusCode::OK, "{:?}", other.body);
    assert_eq!(upstream.requests().len(), 2);

    let metrics = gateway.metrics_text().await;
    let logs = gateway.stderr();
    assert!(logs.contains("TRACE"), "logs captured at TRACE");
    // The addresses, and the ports with them (a bare port number could be any number).
    for address in ["127.0.0.2", "127.0.0.3", ":40000", ":40001"] {
        assert!(!logs.contains(address), "{address} in the logs");
        assert!(!metrics.contains(address), "{address} in /metrics");
    }
}

#[tokio::test]
async fn a_connection_without_a_proxy_header_is_closed_unanswered() {
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestGateway::spawn_binary(&config(dir.path(), &upstream.url(), false), "").await;
    let socket = dir.path().join("gateway.sock");

    // A TLS client hello where the header belongs: closed, not a byte answered.
    let mut unix = UnixStream::connect(&socket).await.unwrap();
    let config = client_config(verifier(&gateway.pin()), &[b"http/1.1"]).unwrap();
    let handshake = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), unix)
        .await;
    assert!(handshake.is_err(), "no TLS without a PROXY header");

    // A plain HTTP request: closed (or reset, with its bytes unread), unanswered.
    unix = UnixStream::connect(&socket).await.unwrap();
    unix.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), unix.read_to_end(&mut answer)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    assert!(answer.is_empty(), "{answer:?}");
    assert!(upstream.requests().is_empty());

    // A proper header still works.
    let ok = call_as(&gateway, &socket, Some("127.0.0.2:40000")).await;
    assert_eq!(ok.status, StatusCode::OK);
}

/// A CONNECT proxy on a Unix socket that allows only `allowed` (a loopback `host:port`) and
/// records every destination asked for.
async fn egress_proxy(path: &Path, allowed: String) -> Arc<std::sync::Mutex<Vec<String>>> {
    let listener = UnixListener::bind(path).unwrap();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let allowed = allowed.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut stream = tokio::io::BufReader::new(stream);
                let mut request_line = String::new();
                stream.read_line(&mut request_line).await.unwrap();
                loop {
                    let mut line = String::new();
                    stream.read_line(&mut line).await.unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let target = request_line.split_whitespace().nth(1).unwrap().to_owned();
                seen.lock().unwrap().push(target.clone());
                let mut stream = stream.into_inner();
                if target != allowed {
                    stream
                        .write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                        .await
                        .unwrap();
                    return;
                }
                let mut upstream = tokio::net::TcpStream::connect(&target).await.unwrap();
                stream
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
            });
        }
    });
    asked
}

#[tokio::test]
async fn upstream_traffic_leaves_only_through_the_egress_proxy() {
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let asked = egress_proxy(&dir.path().join("egress.sock"), upstream.addr().to_string()).await;
    let gateway = TestGateway::spawn_binary(&config(dir.path(), &upstream.url(), true), "").await;
    let reply = call_as(
        &gateway,
        &dir.path().join("gateway.sock"),
        Some("127.0.0.2:1"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json()["result"], "0x10", "{:?}", reply.body);
    assert_eq!(upstream.requests().len(), 1);
    let asked = asked.lock().unwrap().clone();
    assert!(!asked.is_empty());
    assert!(
        asked
            .iter()
            .all(|target| *target == upstream.addr().to_string()),
        "{asked:?}"
    );
}

#[tokio::test]
async fn a_destination_the_egress_proxy_refuses_is_an_upstream_error() {
    let upstream = RecordingUpstream::start().await;
    // The proxy allows some other address: nothing may reach the upstream.
    let dir = tempfile::tempdir().unwrap();
    let asked = egress_proxy(&dir.path().join("egress.sock"), "127.0.0.1:9".to_owned()).await;
    let gateway = TestGateway::spawn_binary(&config(dir.path(), &upstream.url(), true), "").await;
    let reply = call_as(
        &gateway,
        &dir.path().join("gateway.sock"),
        Some("127.0.0.2:1"),
    )
    .await;
    assert_eq!(reply.json()["error"]["code"], -32000, "{:?}", reply.body);
    assert!(upstream.requests().is_empty());
    assert!(!asked.lock().unwrap().is_empty());
    assert!(
        gateway.stderr().contains("refused"),
        "the refusal is logged: {}",
        gateway.stderr()
    );
}
