//! The connection pool: reuse on one verified key, re-attestation of every new connection, and
//! a gateway that rotates its certificate during the client's life (same build: verified, then
//! used; another build: refused, nothing relayed).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: a failed setup or assumption is a failed test"
)]

mod common;

use serde_json::json;
use shroud_client::{Client, ClientError, ErrorKind};
use shroud_testkit::upstream::RecordingUpstream;

use common::{
    ALPN_BOTH, JsonRpcServer, MEASUREMENT, StartGateway, TestGateway, cert_sha256, client,
};

fn gateway_client(gateway: &TestGateway) -> Client {
    Client::builder(gateway.url())
        .pin(gateway.pin())
        .danger_allow_simulated(true)
        .build()
        .unwrap()
}

#[tokio::test]
async fn sequential_calls_share_one_attested_connection() {
    for alpn in [&ALPN_BOTH[..], &[b"http/1.1"]] {
        let server = JsonRpcServer::start(alpn).await;
        let client = client(&server.url("eth"), &MEASUREMENT, true);

        for _ in 0..3 {
            assert_eq!(
                client.request("eth_blockNumber", json!([])).await.unwrap(),
                json!("0x10")
            );
        }
        assert_eq!(
            client.request("echo", json!([1])).await.unwrap(),
            json!([1])
        );

        // The server saw one TLS handshake for four HTTP requests.
        assert_eq!(server.handshakes(), 1, "ALPN {alpn:?}");
        assert_eq!(server.versions().len(), 4);
        let stats = client.pool_stats();
        assert_eq!(stats.connections_opened, 1);
        let verdict = client.verdict().unwrap();
        assert_eq!(stats.bound_spki_sha256, Some(verdict.spki_sha256()));
    }
}

#[tokio::test]
async fn concurrent_calls_over_http2_share_the_connection() {
    let server = JsonRpcServer::start(&ALPN_BOTH).await;
    let client = client(&server.url("eth"), &MEASUREMENT, true);
    // Open the connection first, so the concurrent calls find it in the pool.
    client.request("eth_blockNumber", json!([])).await.unwrap();

    let calls = (0..8).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { client.request("echo", json!([i])).await })
    });
    for (i, call) in calls.enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), json!([i]));
    }
    assert_eq!(server.handshakes(), 1);
}

#[tokio::test]
async fn a_new_connection_is_attested_again() {
    let server = JsonRpcServer::start(&ALPN_BOTH).await;
    let client = client(&server.url("eth"), &MEASUREMENT, true);
    client.request("eth_blockNumber", json!([])).await.unwrap();

    client.close_idle_connections();
    client.request("eth_blockNumber", json!([])).await.unwrap();

    assert_eq!(server.handshakes(), 2);
    assert_eq!(client.pool_stats().connections_opened, 2);
}

#[tokio::test]
async fn zero_idle_timeout_disables_reuse() {
    let server = JsonRpcServer::start(&ALPN_BOTH).await;
    let client = Client::builder(server.url("eth"))
        .policy(common::policy(&MEASUREMENT))
        .danger_allow_simulated(true)
        .pool_idle_timeout(std::time::Duration::ZERO)
        .build()
        .unwrap();
    for _ in 0..2 {
        client.request("eth_blockNumber", json!([])).await.unwrap();
    }
    assert_eq!(server.handshakes(), 2);
}

#[tokio::test]
async fn a_rotated_certificate_is_verified_before_use() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let client = gateway_client(&gateway);

    client.request("eth_blockNumber", json!([])).await.unwrap();
    let first = client.verdict().unwrap();
    assert_eq!(first.cert_sha256(), gateway.current_cert_sha256());

    // The gateway rotates to a fresh certificate and key with the same measurement.
    gateway.rotate(gateway.measurement_array());
    let rotated_der = gateway.resolver.current_certificate().unwrap();
    let rotated = cert_sha256(&rotated_der);
    assert_ne!(rotated, first.cert_sha256());
    // Not verified yet: the verifier caches every verdict it reaches.
    assert!(client.verifier().verdict_for(&rotated_der).is_none());

    // The pooled connection still talks to the old (verified) key.
    client.request("eth_blockNumber", json!([])).await.unwrap();
    assert_eq!(client.pool_stats().connections_opened, 1);

    // The next connection sees the new certificate: it is verified, and the pool rebinds.
    client.close_idle_connections();
    client.request("eth_blockNumber", json!([])).await.unwrap();
    let second = client.verdict().unwrap();
    assert_eq!(second.cert_sha256(), rotated);
    assert_ne!(second.spki_sha256(), first.spki_sha256());
    assert_eq!(second.measurements(), first.measurements());
    assert!(client.verifier().verdict_for(&rotated_der).is_some());
    let stats = client.pool_stats();
    assert_eq!(stats.connections_opened, 2);
    assert_eq!(stats.bound_spki_sha256, Some(second.spki_sha256()));
    assert_eq!(upstream.calls().len(), 3);
}

#[tokio::test]
async fn a_rotated_certificate_with_another_measurement_is_refused() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let client = gateway_client(&gateway);
    client.request("eth_blockNumber", json!([])).await.unwrap();
    let before = client.verdict().unwrap();
    assert_eq!(upstream.calls().len(), 1);

    // Another build takes over the gateway's address and key rotation.
    let other = [0x5a; 48];
    gateway.rotate(other);
    client.close_idle_connections();

    for _ in 0..2 {
        let err = client
            .request("eth_blockNumber", json!([]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PinMismatch, "{err:?}");
        let Some(shroud_ra_tls::Error::MeasurementMismatch { actual, .. }) = err.attestation()
        else {
            panic!("expected a measurement mismatch, got {err:?}");
        };
        assert!(actual.contains(&hex::encode(other)), "{actual}");
        assert!(err.to_string().contains("pin mismatch"), "{err}");
        assert!(matches!(err, ClientError::PinMismatch(_)));
    }
    // Nothing reached the upstream, and the pool stays bound to what it last verified.
    assert_eq!(upstream.calls().len(), 1);
    assert_eq!(
        client.verdict().unwrap().cert_sha256(),
        before.cert_sha256()
    );
    assert_eq!(client.pool_stats().idle, 0);
}
