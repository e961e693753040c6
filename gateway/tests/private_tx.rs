//! `[chain.private_tx]`: signed transactions go to the private relays only, hedged, with the
//! hash computed in the gateway; the public upstreams never see them unless every relay is
//! unreachable and the chain says `fallback = "public"`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use common::{StartGateway as _, TestGateway, dev_config, eventually, post_json};
use serde_json::{Value, json};
use sha3::{Digest as _, Keccak256};
use shroud_gateway::config::{PrivateTxConfig, PrivateTxFallback, UpstreamConfig};
use shroud_testkit::upstream::{RecordingUpstream, default_response};

/// A signed transaction's bytes as a wallet sends them (any bytes do: the gateway hashes them,
/// it does not decode them).
const RAW: &str = "0x02f86c0180843b9aca00850ba43b7400825208940000000000000000000000000000000000000001880de0b6b3a764000080c001a0aa";

fn hash_of(raw: &str) -> String {
    let bytes = hex::decode(raw.trim_start_matches("0x")).unwrap();
    format!("0x{}", hex::encode(Keccak256::digest(&bytes)))
}

/// A node that accepts transactions like a relay would, answering their hash; `reply`
/// overrides the answer to `eth_sendRawTransaction`.
async fn node(reply: fn(&str) -> Value) -> RecordingUpstream {
    RecordingUpstream::start_with(move |call| {
        if call["method"] == "eth_sendRawTransaction" {
            let raw = call["params"][0].as_str().unwrap_or_default();
            let mut answer = json!({ "jsonrpc": "2.0", "id": call["id"] });
            let reply = reply(raw);
            let member = if reply.get("code").is_some() {
                "error"
            } else {
                "result"
            };
            answer[member] = reply;
            return answer;
        }
        default_response(call)
    })
    .await
}

fn accepts(raw: &str) -> Value {
    json!(hash_of(raw))
}

async fn gateway(
    public: &[&RecordingUpstream],
    relays: &[&RecordingUpstream],
    fallback: PrivateTxFallback,
) -> TestGateway {
    let mut config = dev_config(public.iter().map(|u| ("eth".to_owned(), u.url())).collect());
    config.chains[0].private_tx = Some(PrivateTxConfig {
        relays: relays
            .iter()
            .map(|r| UpstreamConfig::Url(r.url()))
            .collect(),
        fallback,
    });
    TestGateway::start_config(config).await
}

async fn send(gateway: &TestGateway) -> Value {
    let body = json!({"jsonrpc":"2.0","id":7,"method":"eth_sendRawTransaction","params":[RAW]})
        .to_string();
    gateway.http1(post_json("/eth", &body)).await.json()
}

fn submissions(node: &RecordingUpstream) -> usize {
    node.calls()
        .iter()
        .filter(|c| c["method"] == "eth_sendRawTransaction")
        .count()
}

/// Nothing of the transaction reached `node`: no submission, not its bytes in any request.
fn saw_nothing(node: &RecordingUpstream) -> bool {
    let bytes = RAW.trim_start_matches("0x");
    submissions(node) == 0
        && node
            .requests()
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains(bytes))
}

#[tokio::test]
async fn a_transaction_reaches_every_relay_once_and_no_public_upstream() {
    let (a, b) = (node(accepts).await, node(accepts).await);
    let (r1, r2) = (node(accepts).await, node(accepts).await);
    let gateway = gateway(&[&a, &b], &[&r1, &r2], PrivateTxFallback::None).await;
    let answer = send(&gateway).await;
    assert_eq!(
        answer,
        json!({"jsonrpc":"2.0","id":7,"result":hash_of(RAW)})
    );
    // The slower relay finishes in the background.
    assert!(
        eventually(Duration::from_secs(5), || async {
            submissions(&r1) == 1 && submissions(&r2) == 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        (submissions(&r1), submissions(&r2)),
        (1, 1),
        "exactly once each"
    );
    assert!(saw_nothing(&a) && saw_nothing(&b));
    // Other calls still go to the public upstreams.
    let reply = gateway
        .http1(post_json(
            "/eth",
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
        ))
        .await;
    assert_eq!(reply.json()["result"], "0x10");
    let metrics = gateway.metrics_text().await;
    assert!(
        metrics.contains(r#"shroud_private_tx_total{chain="eth",outcome="accepted",relay="0"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(&hash_of(RAW)[2..]) && !metrics.contains(&RAW[2..12]));
}

#[tokio::test]
async fn one_relay_down_is_enough_and_both_down_sends_it_nowhere() {
    let (a, b) = (node(accepts).await, node(accepts).await);
    let (r1, r2) = (node(accepts).await, node(accepts).await);
    let gateway = gateway(&[&a, &b], &[&r1, &r2], PrivateTxFallback::None).await;
    r1.kill();
    assert_eq!(send(&gateway).await["result"], json!(hash_of(RAW)));
    r2.kill();
    let answer = send(&gateway).await;
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("not sent anywhere else"), "{message}");
    assert!(saw_nothing(&a) && saw_nothing(&b));
}

#[tokio::test]
async fn with_fallback_public_an_unreachable_relay_set_sends_it_to_the_upstreams() {
    let (a, b) = (node(accepts).await, node(accepts).await);
    let r1 = node(accepts).await;
    let gateway = gateway(&[&a, &b], &[&r1], PrivateTxFallback::Public).await;
    r1.kill();
    let answer = send(&gateway).await;
    assert_eq!(
        answer,
        json!({"jsonrpc":"2.0","id":7,"result":hash_of(RAW)})
    );
    assert!(submissions(&a) + submissions(&b) >= 1);
    assert!(
        gateway
            .metrics_text()
            .await
            .contains(r#"shroud_private_tx_fallbacks_total{chain="eth"} 1"#)
    );
}

#[tokio::test]
async fn already_known_is_success_and_another_hash_is_an_error() {
    let a = node(accepts).await;
    let known = node(|_| json!({"code": -32000, "message": "already known"})).await;
    let gateway_known = gateway(&[&a], &[&known], PrivateTxFallback::None).await;
    assert_eq!(send(&gateway_known).await["result"], json!(hash_of(RAW)));

    let liar = node(|_| json!(format!("0x{}", "11".repeat(32)))).await;
    let gateway_liar = gateway(&[&a], &[&liar], PrivateTxFallback::Public).await;
    let answer = send(&gateway_liar).await;
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another transaction hash")
    );

    // A relay's refusal (the transaction is invalid) reaches the client, and does not make it
    // go public even with fallback = "public".
    let refuses =
        node(|_| json!({"code": -32000, "message": "insufficient funds for gas * price + value"}))
            .await;
    let gateway_refused = gateway(&[&a], &[&refuses], PrivateTxFallback::Public).await;
    let answer = send(&gateway_refused).await;
    assert_eq!(
        answer["error"]["message"],
        "insufficient funds for gas * price + value"
    );
    assert!(saw_nothing(&a));
}
