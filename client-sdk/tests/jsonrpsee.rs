//! The jsonrpsee client built by the SDK: jsonrpsee's `ClientT` API over the attested rustls
//! config, against the in-process gateway; a wrong pin relays nothing.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: a failed setup or assumption is a failed test"
)]

mod common;

use shroud_client::Client;
use shroud_client::jsonrpsee::core::client::ClientT;
use shroud_client::jsonrpsee::core::params::BatchRequestBuilder;
use shroud_client::jsonrpsee::rpc_params;
use shroud_testkit::upstream::RecordingUpstream;

use common::{StartGateway, TestGateway};

#[tokio::test]
async fn jsonrpsee_calls_through_the_attested_connection() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let client = Client::builder(gateway.url())
        .pin(gateway.pin())
        .danger_allow_simulated(true)
        .build()
        .unwrap();
    let rpc = client.jsonrpsee_client().unwrap();

    let block: String = rpc.request("eth_blockNumber", rpc_params![]).await.unwrap();
    assert_eq!(block, "0x10");

    let mut batch = BatchRequestBuilder::new();
    batch.insert("eth_blockNumber", rpc_params![]).unwrap();
    batch
        .insert("eth_getBalance", rpc_params!["0x00", "latest"])
        .unwrap();
    let answers = rpc.batch_request::<String>(batch).await.unwrap();
    let answers: Vec<String> = answers.into_ok().unwrap().collect();
    assert_eq!(answers, ["0x10", "0x0"]);

    let methods: Vec<String> = upstream
        .calls()
        .iter()
        .flat_map(|call| match call {
            serde_json::Value::Array(calls) => calls.clone(),
            call => vec![call.clone()],
        })
        .filter_map(|call| call["method"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        methods,
        ["eth_blockNumber", "eth_blockNumber", "eth_getBalance"]
    );
}

#[tokio::test]
async fn jsonrpsee_refuses_a_gateway_with_the_wrong_pin() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let client = Client::builder(gateway.url())
        .policy(common::policy(&[9; 48]))
        .danger_allow_simulated(true)
        .build()
        .unwrap();
    let rpc = client.jsonrpsee_client().unwrap();

    let err = rpc
        .request::<String, _>("eth_blockNumber", rpc_params![])
        .await
        .unwrap_err();

    let message = format!("{err:?}");
    assert!(message.contains("MeasurementMismatch"), "{message}");
    assert!(upstream.calls().is_empty(), "{:?}", upstream.calls());
}
