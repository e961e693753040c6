//! End to end: the client library against an in-process `--dev` gateway relaying
//! to a recording upstream, all on loopback.

mod common;

use serde_json::{Value, json};
use shroud_client::{Client, ClientError, Platform, Policy};
use shroud_testkit::upstream::RecordingUpstream;

use common::{StartGateway, TestGateway};

#[expect(clippy::unwrap_used, reason = "test helper")]
fn gateway_client(gateway: &TestGateway, allow_simulated: bool) -> Client {
    Client::builder(gateway.url())
        .policy(Policy::from_pins([gateway.pin()]).unwrap())
        .danger_allow_simulated(allow_simulated)
        .build()
        .unwrap()
}

#[tokio::test]
async fn client_calls_through_the_gateway() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let client = gateway_client(&gateway, true);

    assert_eq!(
        client.request("eth_blockNumber", json!([])).await.unwrap(),
        json!("0x10")
    );
    let calls: Vec<Value> = upstream
        .requests()
        .iter()
        .filter_map(|r| r.json())
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["method"], "eth_blockNumber");

    let verdict = client.attest().await.unwrap();
    assert_eq!(verdict.platform(), Platform::Simulated);
    assert_eq!(
        verdict.measurements().get("measurement"),
        Some(&gateway.measurement_bytes()[..])
    );
    // Attesting sent nothing upstream.
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn client_refuses_the_gateway_without_the_right_pin() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;

    let wrong = Client::builder(gateway.url())
        .policy(common::policy(&[7; 48]))
        .danger_allow_simulated(true)
        .build()
        .unwrap();
    let err = wrong
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::PinMismatch(shroud_ra_tls::Error::MeasurementMismatch { .. })
        ),
        "{err:?}"
    );

    let strict = gateway_client(&gateway, false);
    let err = strict
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Attestation(shroud_ra_tls::Error::SimulatedRefused)
        ),
        "{err:?}"
    );

    assert!(
        upstream.requests().is_empty(),
        "a refused gateway relayed a call"
    );
}

#[tokio::test]
async fn batches_come_back_in_call_order() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let client = gateway_client(&gateway, true);

    let results = client
        .batch([
            ("eth_blockNumber", json!([])),
            ("admin_peers", json!([])),
            (
                "eth_getBalance",
                json!(["0x0000000000000000000000000000000000000001", "latest"]),
            ),
        ])
        .await
        .unwrap();

    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap(), &json!("0x10"));
    // Denied by the gateway's method policy: a typed JSON-RPC error for that call only.
    assert!(
        matches!(&results[1], Err(ClientError::JsonRpc { code: -32601, .. })),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().unwrap(), &json!("0x0"));
    assert!(client.batch([]).await.unwrap().is_empty());
}
