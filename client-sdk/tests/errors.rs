//! Every error kind of the client, each produced by a real loopback peer (or a real bad input),
//! and the retry rule: reads are retried after a failure, writes never.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: a failed setup or assumption is a failed test"
)]

mod common;

use std::time::Duration;

use serde_json::json;
use shroud_client::{Client, ClientError, ErrorKind, MAX_RETRIES, Policy};
use shroud_testkit::tls_counter::CountingTlsServer;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use common::{
    ALPN_BOTH, JsonRpcServer, MEASUREMENT, SETTLE, client, pin, plain_tls_config, policy,
    ra_tls_config, simulated_cert,
};

const URL: &str = "https://127.0.0.1:8443/eth";

fn builder_error(builder: shroud_client::ClientBuilder) -> ClientError {
    builder.build().unwrap_err()
}

#[test]
fn builder_errors_name_the_option() {
    let cases = [
        (
            builder_error(Client::builder("http://127.0.0.1:8443/eth").pin(pin(&MEASUREMENT))),
            "use https://",
        ),
        (builder_error(Client::builder(URL)), "pins no measurements"),
        (
            builder_error(Client::builder(URL).pin("simulated:measurement=zz")),
            "invalid policy",
        ),
        (
            builder_error(Client::builder(URL).pin("nitro:pcr9=00")),
            "invalid policy",
        ),
        // Issue: a pin of part of an identity is refused, naming what is missing.
        (
            builder_error(Client::builder(URL).pin(format!("tdx:mrtd={}", "ab".repeat(48)))),
            "missing: rtmr0, rtmr1, rtmr2",
        ),
        (
            builder_error(Client::builder(URL).pin(format!("sgx:mrsigner={}", "ab".repeat(32)))),
            "missing: isvprodid, min_isvsvn",
        ),
        (
            builder_error(
                Client::builder(URL)
                    .pin(pin(&MEASUREMENT))
                    .policy(policy(&MEASUREMENT)),
            ),
            "cannot be combined",
        ),
        (
            builder_error(
                Client::builder(URL)
                    .pin(pin(&MEASUREMENT))
                    .timeout(Duration::ZERO),
            ),
            "timeout",
        ),
        (
            builder_error(
                Client::builder(URL)
                    .pin(pin(&MEASUREMENT))
                    .retries(MAX_RETRIES + 1),
            ),
            "retries",
        ),
    ];
    for (err, needle) in cases {
        assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
        assert!(err.nothing_sent());
        assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
    }
    // Pins alone, or a policy alone, build.
    Client::builder(URL).pin(pin(&MEASUREMENT)).build().unwrap();
    Client::builder(URL)
        .policy(Policy::from_pins([pin(&MEASUREMENT)]).unwrap())
        .retries(MAX_RETRIES)
        .build()
        .unwrap();
}

#[tokio::test]
async fn network_error() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let client = client(&format!("https://{addr}/eth"), &MEASUREMENT, true);
    let err = client.request("eth_chainId", json!([])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err:?}");
    assert!(err.nothing_sent());
}

#[tokio::test]
async fn tls_error_from_a_peer_that_does_not_speak_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await
                .ok();
        }
    });
    let client = client(&format!("https://{addr}/eth"), &MEASUREMENT, true);
    let err = client.request("eth_chainId", json!([])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    server.abort();
}

#[tokio::test]
async fn attestation_errors_carry_the_reason() {
    let plain = CountingTlsServer::start(plain_tls_config(&ALPN_BOTH))
        .await
        .unwrap();
    let err = client(&format!("https://{}/eth", plain.addr()), &MEASUREMENT, true)
        .request("eth_chainId", json!([]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Attestation, "{err:?}");
    assert!(
        matches!(
            err.attestation(),
            Some(shroud_ra_tls::Error::MissingEvidence)
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("not an RA-TLS certificate"),
        "{err}"
    );

    let simulated =
        CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
            .await
            .unwrap();
    let err = client(
        &format!("https://{}/eth", simulated.addr()),
        &MEASUREMENT,
        false,
    )
    .request("eth_chainId", json!([]))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Attestation, "{err:?}");
    assert!(err.to_string().contains("SIMULATED"), "{err}");
}

#[tokio::test]
async fn pin_mismatch_is_its_own_kind() {
    let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
        .await
        .unwrap();
    let err = client(&format!("https://{}/eth", server.addr()), &[3; 48], true)
        .request("eth_chainId", json!([]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PinMismatch, "{err:?}");
    assert!(err.nothing_sent());
    let message = err.to_string();
    assert!(message.contains("pin mismatch"), "{message}");
    assert!(message.contains(&hex::encode(MEASUREMENT)), "{message}");
    assert!(message.contains(&hex::encode([3u8; 48])), "{message}");
}

#[tokio::test]
async fn transport_error_when_the_gateway_hangs_up() {
    // Completes the attested handshake, then closes without answering.
    let acceptor = tokio_rustls::TlsAcceptor::from(ra_tls_config(
        &simulated_cert(MEASUREMENT),
        &[b"http/1.1"],
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let mut buf = [0u8; 1024];
                tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await.ok();
                tls.shutdown().await.ok();
            }
        }
    });
    let client = Client::builder(format!("https://{addr}/eth"))
        .policy(policy(&MEASUREMENT))
        .danger_allow_simulated(true)
        .retries(0)
        .build()
        .unwrap();
    let err = client.request("eth_chainId", json!([])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert!(!err.nothing_sent());
    server.abort();
}

#[tokio::test]
async fn http_and_json_rpc_errors() {
    let server = JsonRpcServer::start(&ALPN_BOTH).await;
    let client = client(&server.url("eth"), &MEASUREMENT, true);

    let err = client.request("fail", json!([])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JsonRpc);
    let ClientError::JsonRpc {
        code,
        message,
        data,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        (*code, message.as_str(), data),
        (-32000, "execution reverted", &Some(json!("0xdead")))
    );
    assert_eq!(
        err.to_string(),
        "JSON-RPC error -32000: execution reverted (data: \"0xdead\")"
    );

    let err = client.request("http_500", json!([])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Http, "{err:?}");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
}

#[tokio::test]
async fn timeout_error() {
    let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
        .await
        .unwrap();
    let client = Client::builder(format!("https://{}/eth", server.addr()))
        .policy(policy(&MEASUREMENT))
        .danger_allow_simulated(true)
        .timeout(Duration::from_millis(300))
        .retries(0)
        .build()
        .unwrap();
    let err = client.request("eth_chainId", json!([])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(matches!(err, ClientError::Timeout(t) if t == Duration::from_millis(300)));
}

/// A server that completes handshakes and never answers: each attempt of a call is one
/// connection, so the handshake count is the attempt count.
async fn attempts(method: &str, retries: u32) -> usize {
    let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
        .await
        .unwrap();
    let client = Client::builder(format!("https://{}/eth", server.addr()))
        .policy(policy(&MEASUREMENT))
        .danger_allow_simulated(true)
        .timeout(Duration::from_millis(200))
        .retries(retries)
        .build()
        .unwrap();
    let err = client.request(method, json!(["0x00"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    let attempts = server.handshakes_completed();
    assert!(
        server.wait_until_closed(attempts, SETTLE).await,
        "connections left open"
    );
    attempts
}

#[tokio::test]
async fn reads_are_retried_and_writes_are_not() {
    assert_eq!(attempts("eth_getBalance", 2).await, 3);
    assert_eq!(attempts("eth_getBalance", 0).await, 1);
    assert_eq!(attempts("eth_sendRawTransaction", 2).await, 1);
    assert_eq!(attempts("eth_sendTransaction", 2).await, 1);
}
