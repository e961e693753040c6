//! Oblivious HTTP end to end: a client seals to the attested keys, the gateway opens, relays
//! through the same pipeline to a recording upstream, and seals the answer. Real sockets on
//! loopback, real RA-TLS, a plain-HTTP recording relay in front of the gateway.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{StartGateway, TestGateway, get};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use shroud_ohttp::bundle::AttestationBundle;
use shroud_ohttp::message::{decode_response, encode_request};
use shroud_ohttp::{Aead, Kem, KeyConfig, SealedRequest, seal_request};
use shroud_ra_tls::{Policy, UnixTime, VerifyOptions};
use shroud_testkit::upstream::RecordingUpstream;

const ADDRESS: &str = "0x00000000219ab540356cbb839cbe05303d7705fa";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Fetches and verifies the attestation bundle; returns the attested key configurations.
async fn attested_keys(gateway: &TestGateway) -> Vec<KeyConfig> {
    let reply = gateway.http1(get("/.well-known/shroud/attestation")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["access-control-allow-origin"], "*");
    let bundle = AttestationBundle::from_json(&reply.body).unwrap();
    let policy = Policy::from_pins([gateway.pin()]).unwrap();
    let options = VerifyOptions {
        danger_allow_simulated: true,
        ..VerifyOptions::at(UnixTime::now())
    };
    let verified = bundle.verify(&policy, &options).unwrap();

    // The RFC 9540 route serves the same bytes.
    let keys = gateway.http1(get("/.well-known/ohttp-gateway")).await;
    assert_eq!(keys.status, StatusCode::OK);
    assert_eq!(keys.headers["content-type"], "application/ohttp-keys");
    verified.check_served_keys(&keys.body).unwrap();
    verified.key_configs().to_vec()
}

fn config(configs: &[KeyConfig], kem: Kem) -> &KeyConfig {
    configs.iter().find(|c| c.kem == kem).unwrap()
}

fn seal(config: &KeyConfig, aead: Aead, path: &str, body: &Value, date: u64) -> SealedRequest {
    let bhttp = encode_request(path, body.to_string().as_bytes(), date).unwrap();
    seal_request(config, aead, &bhttp).unwrap()
}

fn ohttp_post(path: &str, sealed: &[u8]) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "message/ohttp-req")
        .body(Full::new(Bytes::copy_from_slice(sealed)))
        .unwrap()
}

fn balance_call() -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "eth_getBalance", "params": [ADDRESS, "latest"]})
}

#[tokio::test]
async fn sealed_requests_relay_through_the_pipeline_and_the_answers_open() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let configs = attested_keys(&gateway).await;
    assert_eq!(configs.len(), 2);

    for (kem, aead, path) in [
        (Kem::X25519Sha256, Aead::Aes128Gcm, "/ohttp"),
        (Kem::P256Sha256, Aead::ChaCha20Poly1305, "/eth"),
    ] {
        let call = json!({"jsonrpc": "2.0", "id": "a", "method": "eth_blockNumber", "params": []});
        let sealed = seal(config(&configs, kem), aead, "/eth", &call, now());
        let reply = gateway.http1(ohttp_post(path, &sealed.bytes)).await;
        assert_eq!(reply.status, StatusCode::OK, "{kem:?} {path}");
        assert_eq!(reply.headers["content-type"], "message/ohttp-res");
        assert_eq!(reply.headers["access-control-allow-origin"], "*");
        // Padded to the 512-byte bucket: response nonce + padded message + AEAD tag.
        assert_eq!(reply.body.len(), aead.response_nonce_len() + 512 + 16);
        let inner = decode_response(&sealed.opener.open(&reply.body).unwrap()).unwrap();
        assert_eq!(inner.status, 200);
        assert_eq!(inner.content_type.as_deref(), Some("application/json"));
        let answer: Value = serde_json::from_slice(&inner.body).unwrap();
        assert_eq!(
            answer,
            json!({"jsonrpc": "2.0", "id": "a", "result": "0x10"})
        );
    }
    let calls = upstream.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c["method"] == "eth_blockNumber"));

    let metrics = gateway.metrics_text().await;
    assert!(
        metrics.contains("shroud_ohttp_requests_total{outcome=\"ok\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_replayed_request_is_refused_and_not_relayed_again() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let configs = attested_keys(&gateway).await;
    let sealed = seal(
        config(&configs, Kem::X25519Sha256),
        Aead::Aes128Gcm,
        "/eth",
        &balance_call(),
        now(),
    );
    let first = gateway.http1(ohttp_post("/ohttp", &sealed.bytes)).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = gateway.http1(ohttp_post("/ohttp", &sealed.bytes)).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.headers["content-type"], "application/problem+json");
    assert!(String::from_utf8_lossy(&again.body).contains("replayed"));
    assert_eq!(upstream.calls().len(), 1);
    let metrics = gateway.metrics_text().await;
    assert!(
        metrics.contains("shroud_ohttp_requests_total{outcome=\"replayed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unknown_key_id_gets_422_problem_json() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let configs = attested_keys(&gateway).await;
    let mut other = config(&configs, Kem::X25519Sha256).clone();
    other.key_id = 200;
    let sealed = seal(&other, Aead::Aes128Gcm, "/eth", &balance_call(), now());
    let reply = gateway.http1(ohttp_post("/ohttp", &sealed.bytes)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(
        reply.json()["type"],
        "https://iana.org/assignments/http-problem-types#ohttp-key"
    );
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn a_tampered_ciphertext_is_refused() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let configs = attested_keys(&gateway).await;
    let sealed = seal(
        config(&configs, Kem::P256Sha256),
        Aead::Aes128Gcm,
        "/eth",
        &balance_call(),
        now(),
    );
    let mut tampered = sealed.bytes.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let reply = gateway.http1(ohttp_post("/eth", &tampered)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert!(upstream.calls().is_empty());
    // The untampered request still goes through: the refusal did not burn its `enc`.
    let reply = gateway.http1(ohttp_post("/eth", &sealed.bytes)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(upstream.calls().len(), 1);
}

#[tokio::test]
async fn a_stale_date_gets_a_sealed_400_and_is_not_relayed() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let configs = attested_keys(&gateway).await;
    let sealed = seal(
        config(&configs, Kem::X25519Sha256),
        Aead::Aes128Gcm,
        "/eth",
        &balance_call(),
        now() - 3600,
    );
    let reply = gateway.http1(ohttp_post("/ohttp", &sealed.bytes)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let inner = decode_response(&sealed.opener.open(&reply.body).unwrap()).unwrap();
    assert_eq!(inner.status, 400);
    assert!(upstream.calls().is_empty());
}

#[tokio::test]
async fn browsers_on_any_origin_get_a_cors_preflight() {
    let gateway = TestGateway::with_eth("http://127.0.0.1:9/".into()).await;
    let request = Request::options("/ohttp")
        .header("host", "localhost")
        .header("origin", "https://dapp.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = gateway.http1(request).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.headers["access-control-allow-origin"], "*");
    assert!(
        reply.headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        reply.headers["access-control-allow-headers"],
        "content-type"
    );
}

/// What the recording relay saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    content_type: String,
    body: Bytes,
}

/// A plain-HTTP OHTTP relay on loopback that records what passes through and forwards it to the
/// gateway over RA-TLS: what a CDN or a third-party relay would see.
async fn recording_relay(
    gateway: Arc<TestGateway>,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let gateway = Arc::clone(&gateway);
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let gateway = Arc::clone(&gateway);
                    let log = Arc::clone(&log);
                    async move {
                        let content_type = request.headers()["content-type"]
                            .to_str()
                            .unwrap()
                            .to_owned();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        log.lock().unwrap().push(Seen {
                            content_type: content_type.clone(),
                            body: body.clone(),
                        });
                        let reply = gateway.http1(ohttp_post("/ohttp", &body)).await;
                        log.lock().unwrap().push(Seen {
                            content_type: reply.headers["content-type"]
                                .to_str()
                                .unwrap()
                                .to_owned(),
                            body: reply.body.clone(),
                        });
                        let mut response = Response::new(Full::new(reply.body));
                        *response.status_mut() = reply.status;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn a_relay_in_between_sees_only_ciphertext() {
    let upstream = RecordingUpstream::start().await;
    let gateway = Arc::new(TestGateway::with_eth(upstream.url()).await);
    let configs = attested_keys(&gateway).await;
    let (relay, seen) = recording_relay(Arc::clone(&gateway)).await;

    let sealed = seal(
        config(&configs, Kem::X25519Sha256),
        Aead::Aes128Gcm,
        "/eth",
        &balance_call(),
        now(),
    );
    let tcp = tokio::net::TcpStream::connect(relay).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        sender.send_request(ohttp_post("/ohttp", &sealed.bytes)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let inner = decode_response(&sealed.opener.open(&body).unwrap()).unwrap();
    let answer: Value = serde_json::from_slice(&inner.body).unwrap();
    assert_eq!(answer["result"], "0x0");

    // The upstream got the call (so there was something to hide) ...
    let calls = upstream.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["method"], "eth_getBalance");
    // ... and the relay saw only the two OHTTP media types and bytes that contain neither the
    // method, nor the address, nor JSON-RPC at all.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].content_type, "message/ohttp-req");
    assert_eq!(seen[1].content_type, "message/ohttp-res");
    let address_bytes = hex::decode(ADDRESS.trim_start_matches("0x")).unwrap();
    for s in &seen {
        for needle in [
            &b"eth_getBalance"[..],
            ADDRESS.as_bytes(),
            &ADDRESS.as_bytes()[2..],
            &address_bytes,
            b"jsonrpc",
            b"POST",
            b"/eth",
        ] {
            assert!(
                !s.body.windows(needle.len()).any(|w| w == needle),
                "{:?} visible to the relay",
                String::from_utf8_lossy(needle)
            );
        }
    }
}
