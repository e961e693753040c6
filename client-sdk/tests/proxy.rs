//! `shroud proxy`: the plain-HTTP endpoint for wallets. Bodies (single and batch) pass through
//! to the gateway over attested connections; with a wrong pin every call is answered with a
//! JSON-RPC error naming the pin mismatch and the gateway stand-in receives zero application
//! bytes; non-loopback addresses and foreign Host headers are refused.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: a failed setup or assumption is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use shroud_client::Client;
use shroud_client::proxy::{CODE_UNTRUSTED_GATEWAY, Proxy, ProxyError, ProxyOptions};
use shroud_testkit::tls_counter::CountingTlsServer;
use shroud_testkit::upstream::RecordingUpstream;

use common::{
    ALPN_BOTH, MEASUREMENT, RunningProxy, SETTLE, StartGateway, TestGateway, post_plain,
    ra_tls_config, simulated_cert,
};

const SINGLE: &str = r#"{"jsonrpc":"2.0","id":7,"method":"eth_blockNumber","params":[]}"#;
const BATCH: &str = r#"[{"jsonrpc":"2.0","id":"a","method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000001","latest"]}]"#;

#[tokio::test]
async fn single_calls_and_batches_pass_through() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let client = Client::builder(gateway.url())
        .pin(gateway.pin())
        .danger_allow_simulated(true)
        .build()
        .unwrap();
    let proxy = RunningProxy::start(client.clone()).await;

    let (status, answer) = proxy.post(SINGLE).await;
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 7, "result": "0x10"}));

    let (status, answer) = proxy.post(BATCH).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!([
            {"jsonrpc": "2.0", "id": "a", "result": "0x10"},
            {"jsonrpc": "2.0", "id": 2, "result": "0x0"}
        ])
    );
    // The gateway's own answers come back as they are, errors included.
    let (_, answer) = proxy
        .post(r#"{"jsonrpc":"2.0","id":1,"method":"admin_peers","params":[]}"#)
        .await;
    assert_eq!(answer["error"]["code"], -32601, "{answer}");

    let calls = upstream.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    // One attested connection carried all of it.
    assert_eq!(client.pool_stats().connections_opened, 1);
}

#[tokio::test]
async fn wrong_pin_answers_errors_and_sends_zero_bytes() {
    let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
        .await
        .unwrap();
    let client = Client::builder(format!("https://{}/eth", server.addr()))
        .policy(common::policy(&[4; 48]))
        .danger_allow_simulated(true)
        .build()
        .unwrap();
    let proxy = RunningProxy::start(client).await;

    let (status, answer) = proxy.post(SINGLE).await;
    assert_eq!(status, 200);
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["error"]["code"], CODE_UNTRUSTED_GATEWAY);
    assert_eq!(answer["error"]["data"]["kind"], "pin-mismatch");
    assert_eq!(answer["error"]["data"]["forwarded"], false);
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("pin mismatch"), "{message}");
    assert!(message.contains(&hex::encode(MEASUREMENT)), "{message}");

    let (_, answer) = proxy.post(BATCH).await;
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["id"], "a");
    assert_eq!(answers[1]["id"], 2);
    for answer in answers {
        assert_eq!(answer["error"]["code"], CODE_UNTRUSTED_GATEWAY);
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("pin mismatch")
        );
    }

    // Two requests, two refused handshakes, not one application byte.
    assert!(server.wait_until_closed(2, SETTLE).await);
    assert_eq!(server.handshakes_failed(), 2);
    assert_eq!(server.handshakes_completed(), 0);
    assert_eq!(server.app_bytes_received(), 0);
}

#[tokio::test]
async fn non_loopback_needs_the_explicit_flag() {
    let client = common::client("https://127.0.0.1:1/eth", &MEASUREMENT, true);
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();

    let err = Proxy::bind(any, client.clone(), &ProxyOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::NonLoopback(_)), "{err:?}");
    assert!(err.to_string().contains("--allow-non-loopback"), "{err}");

    let proxy = Proxy::bind(any, client, &ProxyOptions::new().allow_non_loopback(true))
        .await
        .unwrap();
    assert!(proxy.local_addr().ip().is_unspecified());
}

#[tokio::test]
async fn foreign_host_headers_and_other_methods_are_refused() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let client = Client::builder(gateway.url())
        .pin(gateway.pin())
        .danger_allow_simulated(true)
        .build()
        .unwrap();
    let proxy = RunningProxy::start(client).await;

    // DNS rebinding: a web page's request carries its own host name.
    let (status, _) = post_plain(&proxy.url, Some("evil.example:8545"), SINGLE).await;
    assert_eq!(status, 403);
    let (status, _) = post_plain(&proxy.url, Some("localhost:8545"), SINGLE).await;
    assert_eq!(status, 200);
    assert_eq!(upstream.calls().len(), 1);
}

/// Kills the child process when the test ends, whatever happens.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[tokio::test]
async fn cli_proxy_prints_its_address_and_relays() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_shroud"))
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--gateway",
                &gateway.url(),
                "--allow-simulated",
                "--pin",
                &gateway.pin(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("shroud proxy listening on ")
        .unwrap_or_else(|| panic!("unexpected start-up line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "{url}");

    let (status, body) = post_plain(&url, None, SINGLE).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["result"], "0x10");
    assert_eq!(upstream.calls().len(), 1);
}

#[tokio::test]
async fn cli_proxy_refuses_a_non_loopback_listen_address() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_shroud"))
            .args([
                "proxy",
                "--listen",
                "0.0.0.0:0",
                "--gateway",
                "https://127.0.0.1:1/eth",
                "--pin",
                &common::pin(&MEASUREMENT),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-non-loopback"), "{stderr}");
}

#[tokio::test]
async fn cli_proxy_warns_when_the_gateway_url_names_no_chain() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let no_chain = format!("https://{}", gateway.addr);
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_shroud"))
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--gateway",
                &no_chain,
                "--allow-simulated",
                "--pin",
                &gateway.pin(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stderr);
        let mut all = String::new();
        for _ in 0..5 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let found = line.contains("names no chain");
            all.push_str(&line);
            if found {
                break;
            }
        }
        all
    })
    .await
    .unwrap();
    assert!(line.contains("names no chain"), "{line}");
    assert!(line.contains("/eth"), "{line}");
}
