//! The `shroud-gateway` binary: start-up lines, exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use shroud_testkit::upstream::RecordingUpstream;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_shroud-gateway");

#[tokio::test]
async fn dev_mode_prints_address_and_measurement_then_serves() {
    let upstream = RecordingUpstream::start().await;
    let mut child = Command::new(BIN)
        .args(["--dev", "--upstream"])
        .arg(format!("eth={}", upstream.url()))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--rate-limit", "1"])
        .env_remove("SHROUD_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let read = async {
        let first = lines.next_line().await.unwrap().expect("first line");
        let second = lines.next_line().await.unwrap().expect("second line");
        let third = lines.next_line().await.unwrap().expect("third line");
        (first, second, third)
    };
    let (first, second, third) = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("start-up lines within 60 s");

    let addr = first
        .strip_prefix("shroud-gateway listening on https://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0, "the real port is printed");

    let measurement = second
        .strip_prefix("measurement: simulated ")
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"));
    // The third line is ready to paste into shroud attest|call|proxy.
    assert_eq!(
        third,
        format!("pin: --pin simulated:measurement={measurement}")
    );
    assert_eq!(measurement.len(), 96, "SHA-384 in hex");
    assert!(
        measurement
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    // The printed pin works against the printed address.
    let pin = format!("simulated:measurement={measurement}");
    let tls = common::connect(addr, &pin, b"http/1.1").await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let response = sender
        .send_request(common::post_json(
            "/eth",
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
        ))
        .await
        .unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["result"],
        "0x10"
    );

    // --rate-limit 1: bursts of 2, then 429 with the seconds to wait.
    let mut last = None;
    for _ in 0..2 {
        let response = sender
            .send_request(common::post_json(
                "/eth",
                r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
            ))
            .await
            .unwrap();
        last = Some((
            response.status(),
            response.headers().get("retry-after").cloned(),
        ));
        let _ = http_body_util::BodyExt::collect(response.into_body()).await;
    }
    let (status, retry_after) = last.unwrap();
    assert_eq!(status, http::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.unwrap(), "1");

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("INSECURE"), "{stderr}");
    assert!(stderr.contains("DEVELOPMENT ONLY"), "{stderr}");
    assert!(
        !stderr.contains(&upstream.url()),
        "upstream URLs are never logged: {stderr}"
    );
}

async fn exit_code(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("SHROUD_CONFIG");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_bad_config_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, "[listen]\nhttps = \"127.0.0.1:0\"\nbogus = true\n").unwrap();
    let path = path.to_str().unwrap();

    let (code, stderr) = exit_code(&["--config", path], &[]).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("unknown field"), "{stderr}");

    let (code, stderr) = exit_code(&[], &[("SHROUD_CONFIG", path)]).await;
    assert_eq!(code, 64, "{stderr}");
}

#[tokio::test]
async fn bad_arguments_exit_64() {
    for args in [
        &[][..],
        &["--no-such-flag"][..],
        &["--upstream", "eth=http://127.0.0.1:1"][..],
        &["--dev", "--upstream", "no-equals-sign"][..],
        &["--dev", "--upstream", "eth=http://node.example/"][..],
        &["--dev", "--listen", "not-an-address"][..],
        &["--config", "/nonexistent/shroud.toml"][..],
    ] {
        let (code, stderr) = exit_code(args, &[]).await;
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(!stderr.is_empty(), "{args:?}");
    }
}

/// Off TEE hardware, a hardware platform refuses to start (exit 1) and says what it looked for.
#[tokio::test]
async fn without_a_tee_the_gateway_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        "[listen]\nhttps = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n[tee]\nplatform = \"nitro\"\n",
    )
    .unwrap();
    let (code, stderr) = exit_code(&["--config", path.to_str().unwrap()], &[]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("shroud-gateway: attestation: attestation failed: cannot open /dev/nsm"),
        "{stderr}"
    );
}

#[tokio::test]
async fn rough_edges_say_what_to_do() {
    // No arguments: the error mentions --dev.
    let (code, stderr) = exit_code(&[], &[]).await;
    assert_eq!(code, 64);
    assert!(stderr.contains("--dev"), "{stderr}");

    // A host name where IP:PORT belongs, on the command line and in the file.
    let (code, stderr) = exit_code(&["--dev", "--listen", "localhost:8443"], &[]).await;
    assert_eq!(code, 64);
    assert!(stderr.contains("expected IP:PORT"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, "[listen]\nhttps = \"localhost:8443\"\n").unwrap();
    let (code, stderr) = exit_code(&["--config", path.to_str().unwrap()], &[]).await;
    assert_eq!(code, 64);
    assert!(stderr.contains("expected IP:PORT"), "{stderr}");

    // --dev takes a rate limit (it must be a number).
    let (code, stderr) = exit_code(&["--dev", "--rate-limit", "many"], &[]).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("--rate-limit"), "{stderr}");
}

#[tokio::test]
async fn help_exits_0() {
    let (code, _) = exit_code(&["--help"], &[]).await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_0() {
    // Slow enough that the request is in flight when SIGTERM arrives.
    let upstream = RecordingUpstream::start().await;
    upstream.set_delay(Some(Duration::from_millis(700)));
    let mut child = Command::new(BIN)
        .args(["--dev", "--upstream"])
        .arg(format!("eth={}", upstream.url()))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .env_remove("SHROUD_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("start-up line")
        .unwrap()
        .unwrap();
    let second = lines.next_line().await.unwrap().unwrap();
    let addr: std::net::SocketAddr = first
        .strip_prefix("shroud-gateway listening on https://")
        .unwrap()
        .parse()
        .unwrap();
    let pin = format!(
        "simulated:measurement={}",
        second.strip_prefix("measurement: simulated ").unwrap()
    );
    let tls = common::connect(addr, &pin, b"http/1.1").await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let in_flight = tokio::spawn(sender.send_request(common::post_json(
        "/eth",
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
    )));
    // Wait until the upstream has the call, then ask the gateway to stop.
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            !upstream.calls().is_empty()
        })
        .await
    );
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body, r#"{"jsonrpc":"2.0","id":1,"result":"0x10"}"#);
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
