//! Upstream failover (issue 3 acceptance): with one of two upstreams killed mid-test, requests
//! keep succeeding, `/readyz` stays ready and the upstream metrics show the failures; with both
//! killed, every call gets a clear JSON-RPC error at once and `/readyz` turns 503.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use common::{StartGateway, TestGateway, dev_config, eventually, get, post_json};
use http::StatusCode;
use shroud_testkit::upstream::RecordingUpstream;

const CALL: &str = r#"{"jsonrpc":"2.0","id":"q","method":"eth_blockNumber"}"#;
const BATCH: &str = r#"[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":3,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":4,"method":"eth_blockNumber"}]"#;
const BATCH_OK: &str = r#"[{"jsonrpc":"2.0","id":1,"result":"0x10"},{"jsonrpc":"2.0","id":2,"result":"0x10"},{"jsonrpc":"2.0","id":3,"result":"0x10"},{"jsonrpc":"2.0","id":4,"result":"0x10"}]"#;
const DOWN: &str = r#"{"jsonrpc":"2.0","id":"q","error":{"code":-32000,"message":"upstream unavailable: no upstream of this chain could be reached"}}"#;

/// The sum of `shroud_upstream_requests_total` samples of `upstream` whose outcome is not `ok`.
fn upstream_failures(metrics: &str, upstream: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("shroud_upstream_requests_total{"))
        .filter(|l| l.contains(&format!("upstream=\"{upstream}\"")))
        .filter(|l| !l.contains("outcome=\"ok\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

async fn body(gateway: &TestGateway, request: &str) -> String {
    // Bounded: a hang is a failure, not a slow test.
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        gateway.http1(post_json("/eth", request)),
    )
    .await
    .expect("the gateway answers without hanging");
    assert_eq!(reply.status, StatusCode::OK);
    String::from_utf8(reply.body.to_vec()).unwrap()
}

async fn readyz(gateway: &TestGateway) -> (StatusCode, StatusCode) {
    let metrics_listener = gateway.metrics_get("/readyz").await.status;
    let ra_tls_listener = gateway.http1(get("/readyz")).await.status;
    (metrics_listener, ra_tls_listener)
}

#[tokio::test]
async fn killing_one_upstream_keeps_serving_killing_both_fails_clearly() {
    let a = RecordingUpstream::start().await;
    let b = RecordingUpstream::start().await;
    let mut config = dev_config(vec![("eth".into(), a.url()), ("eth".into(), b.url())]);
    config.chains[0].health_check_interval_ms = 100;
    config.limits.rate_limit_per_second = 0;
    config.cache.enabled = false;
    let gateway = TestGateway::start_config(config).await;

    // Both serve, and the health checker has seen both healthy.
    for _ in 0..4 {
        assert_eq!(body(&gateway, BATCH).await, BATCH_OK);
    }
    assert!(!a.calls().is_empty() && !b.calls().is_empty());
    assert!(
        eventually(Duration::from_secs(5), || async {
            let m = gateway.metrics_text().await;
            m.contains(r#"shroud_upstream_requests_total{chain="eth",outcome="ok",upstream="0"}"#)
                && m.contains(
                    r#"shroud_upstream_requests_total{chain="eth",outcome="ok",upstream="1"}"#,
                )
        })
        .await
    );
    let before = upstream_failures(&gateway.metrics_text().await, "0");

    // Kill upstream 0 mid-test: every call still succeeds, through upstream 1.
    a.kill();
    let served_by_b = b.calls().len();
    for _ in 0..10 {
        assert_eq!(
            body(&gateway, CALL).await,
            r#"{"jsonrpc":"2.0","id":"q","result":"0x10"}"#
        );
        assert_eq!(body(&gateway, BATCH).await, BATCH_OK);
    }
    // At least the 20 relayed requests (the health checker may probe upstream 1 meanwhile).
    assert!(b.calls().len() >= served_by_b + 20, "{}", b.calls().len());
    assert_eq!(readyz(&gateway).await, (StatusCode::OK, StatusCode::OK));
    // The failures are counted against upstream 0 (relayed calls or health probes).
    assert!(
        eventually(Duration::from_secs(5), || async {
            upstream_failures(&gateway.metrics_text().await, "0") > before
        })
        .await,
        "{}",
        gateway.metrics_text().await
    );
    assert_eq!(upstream_failures(&gateway.metrics_text().await, "1"), 0);

    // Kill both: clear errors, no hang, and not ready.
    b.kill();
    for _ in 0..3 {
        assert_eq!(body(&gateway, CALL).await, DOWN);
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            readyz(&gateway).await
                == (
                    StatusCode::SERVICE_UNAVAILABLE,
                    StatusCode::SERVICE_UNAVAILABLE,
                )
        })
        .await
    );
    let reply = gateway.metrics_get("/readyz").await;
    assert_eq!(reply.body, "not ready: a chain has no healthy upstream");
    assert!(upstream_failures(&gateway.metrics_text().await, "1") > 0);
}

#[tokio::test]
async fn a_recovered_upstream_is_used_again() {
    let a = RecordingUpstream::start().await;
    let mut config = dev_config(vec![("eth".into(), a.url())]);
    config.chains[0].health_check_interval_ms = 100;
    config.limits.rate_limit_per_second = 0;
    let gateway = TestGateway::start_config(config).await;
    a.set_garbage(true);
    assert_eq!(
        body(&gateway, CALL).await,
        r#"{"jsonrpc":"2.0","id":"q","error":{"code":-32000,"message":"upstream returned an invalid response"}}"#
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            readyz(&gateway).await.0 == StatusCode::SERVICE_UNAVAILABLE
        })
        .await
    );
    a.set_garbage(false);
    assert!(
        eventually(Duration::from_secs(5), || async {
            readyz(&gateway).await.0 == StatusCode::OK
        })
        .await
    );
    assert_eq!(
        body(&gateway, CALL).await,
        r#"{"jsonrpc":"2.0","id":"q","result":"0x10"}"#
    );
}

#[tokio::test]
async fn the_chain_id_is_checked_at_start_and_on_every_probe() {
    // Upstream 0 serves chain 1 (the testkit default), upstream 1 claims chain 5.
    let right = RecordingUpstream::start().await;
    let wrong = RecordingUpstream::start_with(|request| {
        let mut answer = shroud_testkit::upstream::default_response(request);
        if request["method"] == "eth_chainId" {
            answer["result"] = "0x5".into();
        }
        answer
    })
    .await;
    let mut config = dev_config(vec![
        ("eth".into(), wrong.url()),
        ("eth".into(), right.url()),
    ]);
    config.chains[0].chain_id = Some(1);
    config.limits.rate_limit_per_second = 0;
    let gateway = TestGateway::start_config(config).await;
    // Ready once the start-up probe has seen the right upstream.
    assert!(
        eventually(Duration::from_secs(5), || async {
            readyz(&gateway).await.0 == StatusCode::OK
        })
        .await
    );
    for _ in 0..10 {
        assert_eq!(
            body(&gateway, CALL).await,
            r#"{"jsonrpc":"2.0","id":"q","result":"0x10"}"#
        );
    }
    assert!(
        wrong.calls().is_empty(),
        "the wrong chain's upstream was used"
    );
    assert_eq!(right.calls().len(), 10);
}

#[tokio::test]
async fn a_chain_whose_only_upstream_is_on_another_chain_says_so() {
    let wrong = RecordingUpstream::start_with(|request| {
        let mut answer = shroud_testkit::upstream::default_response(request);
        if request["method"] == "eth_chainId" {
            answer["result"] = "0x5".into();
        }
        answer
    })
    .await;
    let mut config = dev_config(vec![("eth".into(), wrong.url())]);
    config.chains[0].chain_id = Some(1);
    config.limits.rate_limit_per_second = 0;
    let gateway = TestGateway::start_config(config).await;
    // Once the start-up probe has seen the wrong chain id, calls are refused as such, not as
    // an unreachable upstream.
    assert!(
        eventually(Duration::from_secs(5), || async {
            body(&gateway, CALL).await.contains("misconfigured")
        })
        .await,
        "{}",
        body(&gateway, CALL).await
    );
    assert!(wrong.calls().is_empty());
}

#[tokio::test]
async fn a_signed_transaction_reaches_every_upstream() {
    let a = RecordingUpstream::start().await;
    let b = RecordingUpstream::start().await;
    let mut config = dev_config(vec![("eth".into(), a.url()), ("eth".into(), b.url())]);
    config.limits.rate_limit_per_second = 0;
    let gateway = TestGateway::start_config(config).await;
    let send = r#"{"jsonrpc":"2.0","id":9,"method":"eth_sendRawTransaction","params":["0x02f8"]}"#;
    assert_eq!(
        body(&gateway, send).await,
        r#"{"jsonrpc":"2.0","id":9,"result":"0x0"}"#
    );
    for upstream in [&a, &b] {
        let calls = upstream.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0]["method"], "eth_sendRawTransaction");
        assert_eq!(calls[0]["params"][0], "0x02f8");
    }
    // With one of them down, the other still takes it.
    a.kill();
    assert_eq!(
        body(&gateway, send).await,
        r#"{"jsonrpc":"2.0","id":9,"result":"0x0"}"#
    );
    assert_eq!(b.calls().len(), 2);
}
