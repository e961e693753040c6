//! The client's central promise: a gateway that fails attestation never receives a byte of the
//! request. Each test serves a real TLS endpoint on loopback that counts every application byte
//! it receives after a completed handshake; the counter is proven to work by a positive control.

mod common;

use std::time::Duration;

use serde_json::json;
use shroud_client::ClientError;
use shroud_testkit::tls_counter::CountingTlsServer;

use common::{
    ALPN_BOTH, MEASUREMENT, SETTLE, client, plain_tls_config, ra_tls_config, simulated_cert,
};

/// Waits for the single connection of a test to end, then returns the byte count.
async fn bytes_after_close(server: &CountingTlsServer) -> usize {
    assert!(
        server.wait_until_closed(1, SETTLE).await,
        "the connection did not end: accepted {}, closed {}",
        server.connections_accepted(),
        server.connections_closed()
    );
    server.app_bytes_received()
}

#[tokio::test]
async fn wrong_pin_sends_zero_bytes() {
    let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
        .await
        .unwrap();
    let client = client(&format!("https://{}/eth", server.addr()), &[2; 48], true);

    let err = client
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap_err();

    let Some(shroud_ra_tls::Error::MeasurementMismatch { actual, expected }) = err.attestation()
    else {
        panic!("expected a measurement mismatch, got {err:?}");
    };
    assert!(actual.contains(&hex::encode(MEASUREMENT)), "{actual}");
    assert!(expected.contains(&hex::encode([2u8; 48])), "{expected}");
    // The message a user sees names both values.
    let message = err.to_string();
    assert!(message.contains("measurement mismatch"), "{message}");
    assert!(
        message.contains(&hex::encode(MEASUREMENT)) && message.contains(&hex::encode([2u8; 48])),
        "{message}"
    );

    assert_eq!(bytes_after_close(&server).await, 0);
    assert_eq!(server.handshakes_completed(), 0);
    assert_eq!(server.handshakes_failed(), 1);
}

#[tokio::test]
async fn simulated_evidence_without_opt_in_sends_zero_bytes() {
    let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
        .await
        .unwrap();
    let client = client(
        &format!("https://{}/eth", server.addr()),
        &MEASUREMENT,
        false,
    );

    let err = client
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            ClientError::Attestation(shroud_ra_tls::Error::SimulatedRefused)
        ),
        "expected the simulated TEE to be refused, got {err:?}"
    );
    assert!(err.to_string().contains("SIMULATED"), "{err}");
    assert_eq!(bytes_after_close(&server).await, 0);
    assert_eq!(server.handshakes_completed(), 0);
}

#[tokio::test]
async fn certificate_without_evidence_sends_zero_bytes() {
    let server = CountingTlsServer::start(plain_tls_config(&ALPN_BOTH))
        .await
        .unwrap();
    let client = client(
        &format!("https://{}/eth", server.addr()),
        &MEASUREMENT,
        true,
    );

    let err = client
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            ClientError::Attestation(shroud_ra_tls::Error::MissingEvidence)
        ),
        "expected the plain certificate to be refused, got {err:?}"
    );
    assert_eq!(bytes_after_close(&server).await, 0);
    assert_eq!(server.handshakes_completed(), 0);
}

#[tokio::test]
async fn attest_alone_sends_zero_bytes() {
    let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
        .await
        .unwrap();
    let client = client(
        &format!("https://{}/eth", server.addr()),
        &MEASUREMENT,
        true,
    );

    let verdict = client.attest().await.unwrap();

    assert_eq!(verdict.platform(), shroud_client::Platform::Simulated);
    assert_eq!(bytes_after_close(&server).await, 0);
    assert_eq!(server.handshakes_completed(), 1);
}

/// Positive control: with the right pin the same server does receive the request, so the zeros
/// above are the verifier's doing and not a counter that never counts.
#[tokio::test]
async fn right_pin_writes_the_request() {
    for alpn in [&ALPN_BOTH[..], &[b"http/1.1"], &[]] {
        let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), alpn))
            .await
            .unwrap();
        let client = shroud_client::Client::builder(format!("https://{}/eth", server.addr()))
            .policy(common::policy(&MEASUREMENT))
            .danger_allow_simulated(true)
            .timeout(Duration::from_millis(500))
            // One attempt: a retried read would open (and count) more connections.
            .retries(0)
            .build()
            .unwrap();

        // The server never answers, so the call times out; what matters is what it received.
        let err = client
            .request("eth_blockNumber", json!([]))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");

        let received = bytes_after_close(&server).await;
        assert!(
            received > 0,
            "ALPN {alpn:?}: the counter saw no request bytes"
        );
        assert_eq!(server.handshakes_completed(), 1);
    }
}
