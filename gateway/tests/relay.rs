//! The RA-TLS listener end to end: real sockets on loopback, real TLS, a recording upstream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::{StartGateway, TestGateway, get, peer_certificate, post_json};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{IssueParams, issue_certificate};
use shroud_ra_tls::{Policy, UnixTime, VerifyOptions, verify_certificate};
use shroud_testkit::upstream::RecordingUpstream;

/// A request as a nosy client would send it: formatting, extra members, identifying headers.
fn nosy_request(path: &str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "NosyWallet/1.0 (fingerprint)")
        .header("cookie", "session=secret-cookie")
        .header("authorization", "Bearer secret-token")
        .header("x-forwarded-for", "203.0.113.7")
        .header("origin", "https://dapp.example")
        .header("referer", "https://dapp.example/page")
        .body(Full::new(Bytes::from_static(
            b"{ \"method\" : \"eth_blockNumber\",\n  \"params\":[], \"id\": 42, \"jsonrpc\":\"2.0\" }",
        )))
        .unwrap()
}

/// The canonical upstream form of the nosy request, under the gateway's id `id`.
fn canonical(id: u64) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_blockNumber","params":[]}}"#)
}

fn assert_upstream_saw_only_the_canonical_call(upstream: &RecordingUpstream) {
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let seen = &requests[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/");
    let gateway_id = seen.json().unwrap()["id"].as_u64().unwrap();
    assert_ne!(gateway_id, 42, "the client's id reached the upstream");
    assert_eq!(String::from_utf8_lossy(&seen.body), canonical(gateway_id));
    let mut names: Vec<&str> = seen.headers.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "content-length",
            "content-type",
            "host",
            "user-agent"
        ],
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert_eq!(
        seen.header("user-agent"),
        Some(concat!("shroud-gateway/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(
        seen.header("host"),
        Some(upstream.addr().to_string().as_str())
    );
    for (_, value) in &seen.headers {
        for secret in ["Nosy", "secret", "203.0.113.7", "dapp.example"] {
            assert!(!value.contains(secret), "{secret} leaked upstream: {value}");
        }
    }
}

fn assert_client_reply(reply: &common::Reply) {
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "id": 42, "result": "0x10"})
    );
    let names: Vec<&str> = reply.headers.keys().map(http::HeaderName::as_str).collect();
    assert_eq!(reply.headers["content-type"], "application/json");
    for name in &names {
        assert!(
            ["content-type", "content-length", "date"].contains(name),
            "unexpected response header {name}: {:?}",
            reply.headers
        );
    }
}

#[tokio::test]
async fn http1_relay_builds_the_upstream_request_from_scratch() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let reply = gateway.http1(nosy_request("/eth")).await;
    assert_client_reply(&reply);
    assert_upstream_saw_only_the_canonical_call(&upstream);
}

#[tokio::test]
async fn http2_relay_builds_the_upstream_request_from_scratch() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let reply = gateway.http2(nosy_request("/eth")).await;
    assert_client_reply(&reply);
    assert_upstream_saw_only_the_canonical_call(&upstream);
}

#[tokio::test]
async fn batches_are_relayed() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let reply = gateway
        .http2(post_json(
            "/eth",
            r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":"b","method":"eth_blockNumber"}]"#,
        ))
        .await;
    assert_eq!(
        reply.json(),
        json!([
            {"jsonrpc": "2.0", "id": 1, "result": "0x1"},
            {"jsonrpc": "2.0", "id": "b", "result": "0x10"}
        ])
    );
}

#[tokio::test]
async fn several_requests_share_one_connection() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let tls = gateway.connect(b"http/1.1").await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for id in 0..3 {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_blockNumber"}}"#);
        let response = sender.send_request(post_json("/eth", &body)).await.unwrap();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["id"], id);
    }
    assert_eq!(upstream.requests().len(), 3);
}

#[tokio::test]
async fn attestation_bundle_is_the_served_certificate_and_verifies() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let tls = gateway.connect(b"http/1.1").await;
    let served = peer_certificate(&tls);
    drop(tls);

    for reply in [
        gateway.http1(get("/.well-known/shroud/attestation")).await,
        gateway.http2(get("/.well-known/shroud/attestation")).await,
    ] {
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers["content-type"], "application/json");
        let bundle = reply.json();
        assert_eq!(bundle["endorsements"], Value::Null);
        // The OHTTP keys the certificate binds (checked in tests/ohttp.rs).
        assert!(bundle["ohttp_keys"].is_string());
        let der = base64::engine::general_purpose::STANDARD
            .decode(bundle["certificate"].as_str().unwrap())
            .unwrap();
        assert_eq!(der, served.as_ref());

        let policy = Policy::from_pins([gateway.pin()]).unwrap();
        let options = VerifyOptions {
            danger_allow_simulated: true,
            ..VerifyOptions::at(UnixTime::now())
        };
        let verdict = verify_certificate(&der, &policy, &options).unwrap();
        assert_eq!(
            hex::encode(verdict.measurements().get("measurement").unwrap()),
            gateway.measurement
        );
        // Without the opt-in, simulated evidence is refused.
        assert!(verify_certificate(&der, &policy, &VerifyOptions::at(UnixTime::now())).is_err());
    }
}

#[tokio::test]
async fn rotation_changes_the_served_and_published_certificate() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let before = peer_certificate(&gateway.connect(b"h2").await);

    // Same executable, so the same simulated measurement as the gateway's.
    let attester = SimulatedAttester::for_current_executable().unwrap();
    let fresh = issue_certificate(
        &attester,
        &IssueParams::new(vec!["localhost".into()], UnixTime::now()),
    )
    .unwrap();
    gateway.resolver.as_ref().unwrap().rotate(&fresh).unwrap();

    let after = peer_certificate(&gateway.connect(b"h2").await);
    assert_ne!(before, after);
    assert_eq!(after, fresh.certificate);
    let bundle = gateway
        .http1(get("/.well-known/shroud/attestation"))
        .await
        .json();
    let published = base64::engine::general_purpose::STANDARD
        .decode(bundle["certificate"].as_str().unwrap())
        .unwrap();
    assert_eq!(published, fresh.certificate.as_ref());
}

#[tokio::test]
async fn a_wrong_pin_fails_the_handshake() {
    let gateway = TestGateway::start(Vec::new()).await;
    let wrong = format!("simulated:measurement={}", "00".repeat(48));
    let config = shroud_ra_tls::tls::client_config(common::verifier(&wrong), &[b"h2"]).unwrap();
    let tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let result = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn healthz() {
    let gateway = TestGateway::start(Vec::new()).await;
    for reply in [
        gateway.http1(get("/healthz")).await,
        gateway.http2(get("/healthz")).await,
    ] {
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "ok");
    }
}

#[tokio::test]
async fn wrong_content_type_is_415_with_a_json_rpc_error() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = Request::post("/eth").header("host", "localhost");
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let request = request
            .body(Full::new(Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#,
            )))
            .unwrap();
        let reply = gateway.http1(request).await;
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(reply.headers["content-type"], "application/json");
        assert!(reply.json()["error"]["code"].is_i64());
    }
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn invalid_json_is_a_parse_error() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    for body in [r#"{"jsonrpc":"2.0","id":1,"#, "", "not json"] {
        let reply = gateway.http2(post_json("/eth", body)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let value = reply.json();
        assert_eq!(value["error"]["code"], -32700, "{value}");
        assert_eq!(value["id"], Value::Null);
    }
    let reply = gateway.http1(post_json("/eth", "[]")).await;
    assert_eq!(reply.json()["error"]["code"], -32600);
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":["{}"]}}"#,
        "a".repeat(1024 * 1024)
    );
    let reply = gateway.http1(post_json("/eth", &big)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let reply = gateway.http2(post_json("/eth", &big)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn unknown_chain_and_path_are_404() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    for path in ["/base", "/eth/extra", "/", "/ETH"] {
        let reply = gateway
            .http1(post_json(
                path,
                r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#,
            ))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.json()["error"]["code"].is_i64(), "{path}");
    }
    let reply = gateway.http1(get("/eth")).await;
    assert_eq!(reply.status, StatusCode::UPGRADE_REQUIRED);
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn upstream_down_is_a_json_rpc_error_not_a_hang() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let gateway = TestGateway::with_eth(format!("http://127.0.0.1:{port}")).await;
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        gateway.http1(post_json(
            "/eth",
            r#"{"jsonrpc":"2.0","id":"x","method":"eth_chainId"}"#,
        )),
    )
    .await
    .expect("answers promptly");
    assert_eq!(reply.status, StatusCode::OK);
    let value = reply.json();
    assert_eq!(value["id"], "x");
    assert_eq!(value["error"]["code"], -32000, "{value}");
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream")
    );
    assert!(
        !value.to_string().contains(&port.to_string()),
        "the upstream URL leaked: {value}"
    );

    // A batch gets one error per call, notifications excepted.
    let reply = gateway
        .http2(post_json(
            "/eth",
            r#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"notify"},{"jsonrpc":"2.0","id":2,"method":"b"}]"#,
        ))
        .await;
    let value = reply.json();
    let ids: Vec<&Value> = value.as_array().unwrap().iter().map(|e| &e["id"]).collect();
    assert_eq!(ids, [&json!(1), &json!(2)]);
}

#[tokio::test]
async fn a_dead_upstream_is_skipped_for_a_live_one() {
    let upstream = RecordingUpstream::start().await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let gateway = TestGateway::start(vec![
        ("eth".into(), format!("http://127.0.0.1:{dead}")),
        ("eth".into(), upstream.url()),
    ])
    .await;
    // Whichever the random pick, every call ends at the live upstream.
    for id in 0..6 {
        let reply = gateway
            .http1(post_json(
                "/eth",
                &format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_blockNumber"}}"#),
            ))
            .await;
        assert_eq!(reply.json()["result"], "0x10");
    }
    assert_eq!(upstream.requests().len(), 6);
}

#[tokio::test]
async fn an_upstream_that_hangs_up_is_a_json_rpc_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let gateway = TestGateway::with_eth(format!("http://{addr}")).await;
    let reply = gateway
        .http1(post_json(
            "/eth",
            r#"{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}"#,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let value = reply.json();
    assert_eq!(value["id"], 7);
    assert_eq!(value["error"]["code"], -32000, "{value}");
}

#[tokio::test]
async fn an_upstream_answering_garbage_is_a_json_rpc_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 9\r\n\r\n<h1>x</h1")
                    .await;
            });
        }
    });
    let gateway = TestGateway::with_eth(format!("http://{addr}")).await;
    let reply = gateway
        .http1(post_json(
            "/eth",
            r#"{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}"#,
        ))
        .await;
    let value = reply.json();
    assert_eq!(value["error"]["code"], -32000, "{value}");
    assert!(!reply.body.is_empty());
}

#[tokio::test]
async fn metrics_listener_serves_build_info() {
    let gateway = TestGateway::start(Vec::new()).await;
    let tcp = tokio::net::TcpStream::connect(gateway.metrics_addr)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(get("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains(&format!(
            "shroud_build_info{{platform=\"simulated\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    // An upstream that takes a moment, so the request is in flight when shutdown starts.
    let upstream = RecordingUpstream::start_with(|request| {
        std::thread::sleep(Duration::from_millis(300));
        shroud_testkit::upstream::default_response(request)
    })
    .await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let addr = gateway.addr;
    let tls = gateway.connect(b"h2").await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut request = post_json(
        "/eth",
        r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
    );
    *request.uri_mut() = "https://localhost/eth".parse().unwrap();
    request.headers_mut().remove("host");
    let in_flight = tokio::spawn(sender.send_request(request));
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(10), gateway.stop())
        .await
        .expect("run returns after shutdown")
        .unwrap();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn subscriptions_over_http_get_a_clear_error_and_never_reach_the_upstream() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    for method in ["eth_subscribe", "eth_unsubscribe"] {
        let answer = gateway
            .call(&format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":["newHeads"]}}"#
            ))
            .await;
        assert_eq!(answer["id"], 7);
        assert_eq!(answer["error"]["code"], -32601, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("WebSocket"),
            "{answer}"
        );
    }
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn an_upstream_error_reaches_the_client_without_the_nodes_own_members() {
    let upstream = RecordingUpstream::start_with(|call| {
        json!({
            "jsonrpc": "2.0",
            "id": call["id"],
            "error": {
                "code": -32000,
                "message": "boom",
                "data": "0x08",
                "stack": "Error: boom\n    at /home/node/ganache/lib/index.js:1:2"
            }
        })
    })
    .await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let answer = gateway
        .call(r#"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]}"#)
        .await;
    assert_eq!(
        answer["error"],
        json!({"code": -32000, "message": "boom", "data": "0x08"}),
        "{answer}"
    );
}

#[tokio::test]
async fn an_unknown_chain_is_named_with_the_chains_served() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let reply = gateway
        .http1(post_json(
            "/base",
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.json()["error"]["message"],
        r#"unknown chain "base"; this gateway serves /eth"#
    );
}
