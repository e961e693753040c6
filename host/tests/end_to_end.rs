//! The Nitro wiring end to end over the Unix-socket stand-in for vsock (issue 13): an attested
//! client → `shroud-host ingress` (TCP → Unix socket, PROXY v2) → the gateway (`[listen] unix`,
//! `proxy_protocol = true`, `[egress] unix`) → `shroud-host egress` (allow list) → the upstream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use shroud_client::Client;
use shroud_gateway::{Config, Gateway};
use shroud_testkit::upstream::RecordingUpstream;
use tokio::process::{Child, Command};

const HOST: &str = env!("CARGO_BIN_EXE_shroud-host");

/// `shroud-host ARGS`, its stderr in `log`.
fn host(args: &[&str], log: &Path) -> Child {
    Command::new(HOST)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits until `check` holds (at most 10 s).
async fn until(mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out");
}

/// A free loopback TCP port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_call_crosses_ingress_gateway_and_egress_and_only_allowed_destinations_are_dialed() {
    let upstream = RecordingUpstream::start().await;
    let forbidden = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let egress_socket = dir.path().join("egress.sock");
    let gateway_socket = dir.path().join("gateway.sock");

    let _egress = host(
        &[
            "egress",
            "--unix",
            egress_socket.to_str().unwrap(),
            "--allow",
            &upstream.addr().to_string(),
        ],
        &dir.path().join("egress.log"),
    );
    until(|| egress_socket.exists()).await;

    let config = Config::from_toml_str(&format!(
        r#"
[listen]
https = "127.0.0.1:0"
metrics = "127.0.0.1:0"
unix = "{gateway}"
proxy_protocol = true
[egress]
unix = "{egress}"
[tee]
platform = "simulated"
[cache]
enabled = false
[[chain]]
name = "eth"
upstreams = ["{allowed}"]
[[chain]]
name = "other"
upstreams = ["{forbidden}"]
"#,
        gateway = gateway_socket.display(),
        egress = egress_socket.display(),
        allowed = upstream.url(),
        forbidden = forbidden.url(),
    ))
    .unwrap();
    let gateway = Gateway::bind(config).await.unwrap();
    let pin = format!("simulated:measurement={}", gateway.measurement_hex());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _ingress = host(
        &[
            "ingress",
            "--listen",
            &listen,
            "--unix",
            gateway_socket.to_str().unwrap(),
        ],
        &dir.path().join("ingress.log"),
    );
    until(|| std::net::TcpStream::connect(&listen).is_ok()).await;

    let client = |chain: &str| {
        Client::builder(format!("https://{listen}/{chain}"))
            .pin(pin.clone())
            .danger_allow_simulated(true)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let result = client("eth")
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap();
    assert_eq!(result, json!("0x10"));

    // The upstream saw the gateway's canonical request and nothing of the client.
    let seen: Vec<_> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.json().is_some_and(|b| b["method"] == "eth_blockNumber"))
        .collect();
    assert_eq!(seen.len(), 1);
    let body: Value = seen[0].json().unwrap();
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "jsonrpc", "method", "params"]);
    assert!(
        seen[0].body.starts_with(br#"{"jsonrpc":"2.0","id":"#),
        "the canonical form"
    );
    assert_ne!(body["id"], json!(1), "the client's id is replaced");
    assert_eq!(body["params"], json!([]));
    let names: Vec<&str> = seen[0].headers.iter().map(|(n, _)| n.as_str()).collect();
    for name in &names {
        assert!(
            [
                "host",
                "content-type",
                "content-length",
                "accept",
                "user-agent"
            ]
            .contains(name),
            "unexpected header {name}"
        );
    }

    // A destination egress does not allow: refused, logged, and never dialed.
    let refused = client("other").request("eth_blockNumber", json!([])).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(forbidden.requests().is_empty());
    let egress_log = std::fs::read_to_string(dir.path().join("egress.log")).unwrap();
    assert!(
        egress_log.contains(&forbidden.addr().to_string()),
        "egress names the refused destination: {egress_log}"
    );

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), serving).await;
}
