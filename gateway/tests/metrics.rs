//! The metrics listener as an operator's `curl` sees it: `GET /metrics` over a plain TCP socket
//! shows every metric family of DESIGN §6, and every label is from a bounded set (configured
//! chain names, upstream indexes, allow-listed methods or `other`, fixed outcomes). Nothing the
//! client sent or is (its address, ids, odd method names) shows up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{StartGateway, TestGateway, dev_config, post_json};
use http::StatusCode;
use shroud_testkit::upstream::RecordingUpstream;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// DESIGN §6: every family, its type and its label names.
const FAMILIES: [(&str, &str, &[&str]); 20] = [
    (
        "shroud_requests_total",
        "counter",
        &["chain", "method", "outcome"],
    ),
    ("shroud_request_duration_seconds", "histogram", &["chain"]),
    (
        "shroud_upstream_requests_total",
        "counter",
        &["chain", "upstream", "outcome"],
    ),
    (
        "shroud_upstream_duration_seconds",
        "histogram",
        &["chain", "upstream"],
    ),
    ("shroud_upstream_healthy", "gauge", &["chain", "upstream"]),
    ("shroud_cache_hits_total", "counter", &["chain"]),
    ("shroud_cache_misses_total", "counter", &["chain"]),
    ("shroud_rate_limited_total", "counter", &[]),
    ("shroud_connections_active", "gauge", &["protocol"]),
    (
        "shroud_tls_handshakes_total",
        "counter",
        &["protocol", "outcome"],
    ),
    ("shroud_ohttp_requests_total", "counter", &["outcome"]),
    ("shroud_attestation_age_seconds", "gauge", &[]),
    ("shroud_build_info", "gauge", &["version", "platform"]),
    // [acme]'s families are exported without it too (0, and outcomes at 0).
    (
        "shroud_acme_certificate_expiry_timestamp_seconds",
        "gauge",
        &[],
    ),
    ("shroud_acme_renewals_total", "counter", &["outcome"]),
    // Subscriptions (WebSocket): exported at 0 before any.
    ("shroud_subscriptions_active", "gauge", &["chain", "kind"]),
    (
        "shroud_subscription_notifications_total",
        "counter",
        &["chain", "kind"],
    ),
    ("shroud_websocket_connections_active", "gauge", &[]),
    // [chain.private_tx]: series only once a chain with relays submitted (none here).
    (
        "shroud_private_tx_total",
        "counter",
        &["chain", "relay", "outcome"],
    ),
    ("shroud_private_tx_fallbacks_total", "counter", &["chain"]),
];

/// `GET /metrics` the way `curl` does it: one HTTP/1.1 request on a fresh TCP connection.
async fn curl_metrics(gateway: &TestGateway) -> String {
    let mut tcp = tokio::net::TcpStream::connect(gateway.metrics_addr)
        .await
        .unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nUser-Agent: curl/8\r\nAccept: */*\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_owned()
}

/// `name{k="v",...} value` → (name, labels).
fn sample(line: &str) -> (String, BTreeMap<String, String>) {
    let (series, _value) = line.rsplit_once(' ').unwrap();
    let Some((name, labels)) = series.split_once('{') else {
        return (series.to_owned(), BTreeMap::new());
    };
    let labels = labels.strip_suffix('}').unwrap();
    let mut map = BTreeMap::new();
    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once("=\"").unwrap();
        map.insert(key.to_owned(), value.trim_end_matches('"').to_owned());
    }
    (name.to_owned(), map)
}

#[tokio::test]
async fn every_design_family_with_bounded_labels_only() {
    let a = RecordingUpstream::start().await;
    let b = RecordingUpstream::start().await;
    let mut config = dev_config(vec![("eth".into(), a.url()), ("eth".into(), b.url())]);
    config.limits.rate_limit_per_second = 1;
    config.limits.rate_limit_burst = 8;
    let gateway = TestGateway::start_config(config).await;

    // Traffic that touches every family: relayed calls, a cache miss then hit, an odd method
    // name, a denied method, an invalid request, a failed handshake, a rate-limited client.
    let client_ids = r#"[{"jsonrpc":"2.0","id":"client-id-777","method":"eth_chainId"},{"jsonrpc":"2.0","id":31337,"method":"eth_chainId"}]"#;
    for body in [
        client_ids,
        r#"{"jsonrpc":"2.0","id":5,"method":"eth_chainId"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_zzCustomTracker_0xabc"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"debug_traceCall"}"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
    ] {
        assert_eq!(
            gateway.http1(post_json("/eth", body)).await.status,
            StatusCode::OK
        );
    }
    let refused = tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        shroud_ra_tls::tls::client_config(
            common::verifier(&format!("simulated:measurement={}", "00".repeat(48))),
            &[b"h2"],
        )
        .unwrap(),
    ))
    .connect(
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        tokio::net::TcpStream::connect(gateway.addr).await.unwrap(),
    )
    .await;
    assert!(refused.is_err(), "a wrong pin is refused");
    let limited = loop {
        let reply = gateway
            .http1(post_json("/eth", r#"[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}]"#))
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            break reply;
        }
    };
    assert_eq!(
        limited.body,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"rate limit exceeded, retry later"}}"#
    );

    let text = curl_metrics(&gateway).await;

    // Every family, with its type.
    // The private-transaction families have no series before a chain with relays submits.
    for (name, kind, _) in FAMILIES
        .iter()
        .filter(|(n, ..)| !n.starts_with("shroud_private_tx"))
    {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} ({kind}) missing:\n{text}"
        );
    }
    // Every sample: a known family, exactly its label names, values from bounded sets.
    let upstream_outcomes = [
        "ok",
        "error",
        "connect_error",
        "failed",
        "timeout",
        "too_large",
        "http_error",
        "invalid_response",
    ];
    let call_outcomes = [
        "ok",
        "error",
        "cached",
        "invalid",
        "limit",
        "denied",
        "rate_limited",
        "upstream_error",
        "internal_error",
    ];
    let mut methods = BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, labels) = sample(line);
        let family = FAMILIES
            .iter()
            .find(|(f, kind, _)| {
                name == *f
                    || (*kind == "histogram"
                        && [
                            format!("{f}_bucket"),
                            format!("{f}_sum"),
                            format!("{f}_count"),
                        ]
                        .contains(&name))
            })
            .unwrap_or_else(|| panic!("a family DESIGN §6 does not name: {line}"));
        let mut names: Vec<&str> = labels
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "le")
            .collect();
        names.sort_unstable();
        let mut expected: Vec<&str> = family.2.to_vec();
        expected.sort_unstable();
        assert_eq!(names, expected, "{line}");
        for (key, value) in &labels {
            let bounded = match key.as_str() {
                "chain" => value == "eth",
                "upstream" => value == "0" || value == "1",
                "method" => {
                    methods.insert(value.clone());
                    ["eth_chainId", "eth_blockNumber", "other"].contains(&value.as_str())
                }
                "outcome" if name == "shroud_upstream_requests_total" => {
                    upstream_outcomes.contains(&value.as_str())
                }
                "outcome" if name == "shroud_requests_total" => {
                    call_outcomes.contains(&value.as_str())
                }
                "outcome" => {
                    value.len() <= 32 && value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }
                "protocol" => {
                    ["tcp", "quic", "http1", "h2", "h3", "vsock"].contains(&value.as_str())
                }
                "kind" => ["newHeads", "logs", "newPendingTransactions"].contains(&value.as_str()),
                "version" => value == env!("CARGO_PKG_VERSION"),
                "platform" => value == "simulated",
                "le" => value.parse::<f64>().is_ok() || value == "+Inf",
                _ => false,
            };
            assert!(bounded, "unbounded label {key}={value:?}: {line}");
        }
    }
    assert!(methods.contains("eth_chainId") && methods.contains("other"));

    // The traffic was counted...
    for needle in [
        r#"shroud_cache_hits_total{chain="eth"} 1"#,
        // Both calls of the first batch missed: neither was answered yet.
        r#"shroud_cache_misses_total{chain="eth"} 2"#,
        r#"shroud_requests_total{chain="eth",method="eth_chainId",outcome="cached"} 1"#,
        r#"shroud_requests_total{chain="eth",method="other",outcome="denied"} 1"#,
        r#"shroud_requests_total{chain="eth",method="other",outcome="invalid"} 1"#,
        r#"shroud_tls_handshakes_total{outcome="failed",protocol="tcp"} 1"#,
        "shroud_rate_limited_total 1\n",
        r#"shroud_build_info{platform="simulated",version=""#,
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    // ...and nothing of the client is in it.
    for secret in [
        "client-id-777",
        "31337",
        "zzCustomTracker",
        "debug_traceCall",
        "127.0.0.1",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} is in the metrics:\n{text}"
        );
    }
    for port in [a.addr().port(), b.addr().port(), gateway.addr.port()] {
        assert!(
            !text.contains(&format!(":{port}")),
            "an address is in the metrics"
        );
    }
}
