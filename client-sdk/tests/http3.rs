//! HTTP/3 (DESIGN §4.1, issue 17): `shroud call --http3` through the gateway's `[listen] h3`
//! listener, and the zero-bytes promise over QUIC: with a wrong pin, without
//! `--allow-simulated`, and against a certificate without evidence, the QUIC server receives
//! no stream byte at all (`shroud_testkit::quic_counter`), while a positive control shows the
//! counter does count.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shroud_client::{Client, ClientError};
use shroud_gateway::{Config, Gateway};
use shroud_testkit::gateway::Started;
use shroud_testkit::quic_counter::CountingQuicServer;
use shroud_testkit::upstream::RecordingUpstream;

use common::{
    MEASUREMENT, SETTLE, TestGateway, pin, plain_tls_config, ra_tls_config, simulated_cert,
};

const H3: [&[u8]; 1] = [b"h3"];

/// Runs the `shroud` binary off the runtime thread, so the in-process servers keep serving.
async fn shroud(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shroud"))
            .args(args)
            .output()
            .expect("running the shroud binary")
    })
    .await
    .expect("the blocking task")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `--dev` gateway in process with `[listen] h3` on a loopback UDP port; its h3 address.
async fn gateway_with_h3(upstream_url: String) -> (TestGateway, SocketAddr) {
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = Config::dev(vec![("eth".to_owned(), upstream_url)], loopback, loopback);
    config.listen.h3 = Some(loopback);
    let gateway = Gateway::bind(config).await.unwrap();
    let h3 = gateway.h3_addr().expect("the h3 listener is bound");
    let started = Started {
        addr: gateway.https_addr(),
        metrics_addr: gateway.metrics_addr(),
        measurement: gateway.measurement_hex(),
        resolver: gateway.resolver(),
        client_tls: |measurement| {
            let verifier = shroud_ra_tls::tls::AttestedServerVerifier::new(common::policy(
                &hex::decode(measurement).unwrap(),
            ))
            .danger_allow_simulated(true);
            shroud_ra_tls::tls::client_config(Arc::new(verifier), &[]).unwrap()
        },
    };
    (
        TestGateway::in_process(started, |stop| gateway.run(stop)),
        h3,
    )
}

#[tokio::test]
async fn shroud_call_http3_gets_the_upstream_answer_through_the_h3_listener() {
    let upstream = RecordingUpstream::start().await;
    let (gateway, h3) = gateway_with_h3(upstream.url()).await;
    let url = format!("https://{h3}/eth");

    let out = shroud(
        [
            "call",
            &url,
            "eth_blockNumber",
            "--http3",
            "--compact",
            "--allow-simulated",
            "--pin",
            &gateway.pin(),
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    println!(
        "shroud call --http3: exit {:?}, stdout {stdout}",
        out.status.code()
    );
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.trim(), "\"0x10\"");
    assert_eq!(
        upstream.calls().len(),
        1,
        "the call reached the upstream once"
    );

    // `attest --http3`: the verdict, from the QUIC handshake alone.
    let out = shroud(
        [
            "attest",
            &url,
            "--http3",
            "--json",
            "--allow-simulated",
            "--pin",
            &gateway.pin(),
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("\"trusted\"") || stdout.contains("simulated"),
        "{stdout}"
    );

    // The gateway counted the QUIC handshakes by protocol.
    let metrics = gateway.metrics_text().await;
    let quic_ok = metrics
        .lines()
        .find(|line| {
            line.starts_with("shroud_tls_handshakes_total")
                && line.contains("protocol=\"quic\"")
                && line.contains("outcome=\"ok\"")
        })
        .unwrap_or_else(|| panic!("no QUIC handshake series:\n{metrics}"));
    println!("{quic_ok}");
    // At least the call's: `attest` closes right after its handshake, which the gateway may
    // see as a closed connection before it counts the handshake.
    let count: f64 = quic_ok.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{quic_ok}");
    assert!(
        metrics.contains("shroud_connections_active{protocol=\"h3\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_sdk_pools_one_quic_connection_for_many_calls() {
    let upstream = RecordingUpstream::start().await;
    let (gateway, h3) = gateway_with_h3(upstream.url()).await;
    let client = Client::builder(format!("https://{h3}/eth"))
        .pin(gateway.pin())
        .danger_allow_simulated(true)
        .http3(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            client.request("eth_blockNumber", json!([])).await.unwrap(),
            json!("0x10")
        );
    }
    let results = client
        .batch([("eth_blockNumber", json!([])), ("eth_chainId", json!([]))])
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(client.pool_stats().connections_opened, 1);
    assert!(client.verdict().is_some());
    // Fresh evidence is a TCP feature: refused clearly, not attempted over QUIC.
    let err = client.attest_fresh().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::InvalidOption {
                option: "http3",
                ..
            }
        ),
        "{err:?}"
    );
}

/// Runs `shroud call --http3` against `server` trusting `measurement`; the failed output.
async fn refused_call(server: &CountingQuicServer, measurement: &[u8], simulated: bool) -> String {
    let mut args = vec![
        "call".to_owned(),
        format!("https://{}/eth", server.addr()),
        "eth_blockNumber".to_owned(),
        "--http3".to_owned(),
        "--timeout".to_owned(),
        "5".to_owned(),
        "--pin".to_owned(),
        pin(measurement),
    ];
    if simulated {
        args.push("--allow-simulated".to_owned());
    }
    let out = shroud(args).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        server.wait_until_closed(1, SETTLE).await,
        "the connection did not end: accepted {}, closed {}",
        server.connections_accepted(),
        server.connections_closed()
    );
    assert_eq!(
        server.stream_bytes_received(),
        0,
        "stream bytes reached the server"
    );
    assert_eq!(server.streams_opened(), 0, "a stream was opened");
    assert_eq!(server.handshakes_completed(), 0);
    stderr
}

#[tokio::test]
async fn wrong_pin_over_quic_sends_no_stream_byte() {
    let config = Arc::unwrap_or_clone(ra_tls_config(&simulated_cert(MEASUREMENT), &H3));
    let server = CountingQuicServer::start(config).await.unwrap();
    let stderr = refused_call(&server, &[2; 48], true).await;
    println!("wrong pin: {stderr}");
    assert!(stderr.contains("pin mismatch"), "{stderr}");
    assert!(stderr.contains(&hex::encode(MEASUREMENT)), "{stderr}");
}

#[tokio::test]
async fn simulated_evidence_without_opt_in_over_quic_sends_no_stream_byte() {
    let config = Arc::unwrap_or_clone(ra_tls_config(&simulated_cert(MEASUREMENT), &H3));
    let server = CountingQuicServer::start(config).await.unwrap();
    let stderr = refused_call(&server, &MEASUREMENT, false).await;
    println!("no --allow-simulated: {stderr}");
    assert!(
        stderr.contains("attestation failed") && stderr.contains("imulated"),
        "{stderr}"
    );
}

#[tokio::test]
async fn certificate_without_evidence_over_quic_sends_no_stream_byte() {
    let config = Arc::unwrap_or_clone(plain_tls_config(&H3));
    let server = CountingQuicServer::start(config).await.unwrap();
    let stderr = refused_call(&server, &MEASUREMENT, true).await;
    println!("no evidence: {stderr}");
    assert!(stderr.contains("attestation failed"), "{stderr}");
}

/// Positive control: with the right pin the same server does receive stream bytes (HTTP/3's
/// control stream, then the request), so the zeros above are the verifier's doing.
#[tokio::test]
async fn right_pin_over_quic_opens_streams() {
    let config = Arc::unwrap_or_clone(ra_tls_config(&simulated_cert(MEASUREMENT), &H3));
    let server = CountingQuicServer::start(config).await.unwrap();
    let client = Client::builder(format!("https://{}/eth", server.addr()))
        .policy(common::policy(&MEASUREMENT))
        .danger_allow_simulated(true)
        .http3(true)
        .timeout(Duration::from_millis(1500))
        .retries(0)
        .build()
        .unwrap();
    // The server never answers: the call times out; what matters is what it received.
    let err = client
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    assert_eq!(server.handshakes_completed(), 1);
    assert!(server.streams_opened() > 0);
    assert!(server.stream_bytes_received() > 0);
}
