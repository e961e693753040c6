#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]
//! The native SDK over Oblivious HTTP: an in-process `--dev` gateway relaying to a recording
//! upstream, reached directly and through a recording OHTTP relay on loopback, all real TLS.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use shroud_client::ohttp::OhttpError;
use shroud_client::{ClientError, ErrorKind, ObliviousClient, Platform};
use shroud_ra_tls::UnixTime;
use shroud_ra_tls::tls::{AttestedServerVerifier, client_config};
use shroud_testkit::upstream::RecordingUpstream;
use tokio::net::TcpListener;

use common::{StartGateway, TestGateway};

/// The account the calls ask about: it must never be visible to the relay.
const ACCOUNT: &str = "0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1";

/// TLS to the dev gateway itself: its certificate is RA-TLS, so the RA-TLS verifier (simulated
/// allowed, pinned) is what checks it. The OHTTP layer verifies the bundle on its own. The
/// config offers `shroud-ra-tls/1`, which the `ObliviousClient` keeps.
fn ra_tls(gateway: &TestGateway) -> rustls::ClientConfig {
    let policy = common::policy(&gateway.measurement_bytes());
    let verifier = Arc::new(AttestedServerVerifier::new(policy).danger_allow_simulated(true));
    client_config(verifier, &[]).unwrap()
}

/// The same for the relay stand-in's hyper-rustls client, without ALPN: hyper-rustls' builder
/// sets its own and refuses a config with some.
fn ra_tls_without_alpn(gateway: &TestGateway) -> rustls::ClientConfig {
    let mut config = ra_tls(gateway);
    config.alpn_protocols.clear();
    config
}

fn builder(gateway: &TestGateway) -> shroud_client::ObliviousClientBuilder {
    ObliviousClient::builder(gateway.url())
        .pin(gateway.pin())
        .danger_allow_simulated(true)
        .timeout(Duration::from_secs(10))
        .tls_config(ra_tls(gateway))
}

/// What the relay saw of one exchange.
#[derive(Debug, Clone)]
struct Seen {
    content_type: Option<String>,
    request: Bytes,
    response: Bytes,
}

/// An OHTTP relay stand-in: plain HTTP on loopback, forwards each body to the gateway's
/// `POST /ohttp` and the answer back, recording both; can flip a bit of the answer.
struct Relay {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    tamper: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(gateway: &TestGateway) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(ra_tls_without_alpn(gateway))
            .https_only()
            .enable_http1()
            .build();
        let client: HttpClient<_, Full<Bytes>> =
            HttpClient::builder(TokioExecutor::new()).build(connector);
        let target: http::Uri = format!("https://{}/ohttp", gateway.addr).parse().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tamper = Arc::new(AtomicBool::new(false));
        let (seen2, tamper2) = (Arc::clone(&seen), Arc::clone(&tamper));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (client, target) = (client.clone(), target.clone());
                let (seen, tamper) = (Arc::clone(&seen2), Arc::clone(&tamper2));
                let service =
                    hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let (client, target) = (client.clone(), target.clone());
                        let (seen, tamper) = (Arc::clone(&seen), Arc::clone(&tamper));
                        async move {
                            let content_type = request
                                .headers()
                                .get(http::header::CONTENT_TYPE)
                                .map(|v| v.to_str().unwrap().to_owned());
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let forward = http::Request::post(target)
                                .header(http::header::CONTENT_TYPE, "message/ohttp-req")
                                .body(Full::new(body.clone()))
                                .unwrap();
                            let answer = client.request(forward).await.unwrap();
                            let status = answer.status();
                            let media = answer.headers().get(http::header::CONTENT_TYPE).cloned();
                            let mut bytes = answer.into_body().collect().await.unwrap().to_bytes();
                            if tamper.load(Ordering::SeqCst) {
                                let mut flipped = bytes.to_vec();
                                *flipped.last_mut().unwrap() ^= 1;
                                bytes = Bytes::from(flipped);
                            }
                            seen.lock().unwrap().push(Seen {
                                content_type,
                                request: body,
                                response: bytes.clone(),
                            });
                            let mut reply = http::Response::builder().status(status);
                            if let Some(media) = media {
                                reply = reply.header(http::header::CONTENT_TYPE, media);
                            }
                            Ok::<_, Infallible>(reply.body(Full::new(bytes)).unwrap())
                        }
                    });
                tokio::spawn(async move {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                        .ok();
                });
            }
        });
        Relay {
            addr,
            seen,
            tamper,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[tokio::test]
async fn calls_through_a_relay_carry_only_ciphertext() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let relay = Relay::start(&gateway).await;
    let client = builder(&gateway)
        .relay(relay.url())
        .connect()
        .await
        .unwrap();
    assert_eq!(client.verdict().platform(), Platform::Simulated);
    assert_eq!(
        client.verdict().measurements().get("measurement"),
        Some(&gateway.measurement_bytes()[..])
    );

    assert_eq!(
        client.request("eth_blockNumber", json!([])).await.unwrap(),
        json!("0x10")
    );
    let results = client
        .batch([
            ("eth_getBalance", json!([ACCOUNT, "latest"])),
            ("eth_blockNumber", json!([])),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].as_ref().unwrap(), &json!("0x0"));
    assert_eq!(results[1].as_ref().unwrap(), &json!("0x10"));

    // The node got the calls ...
    let methods: Vec<String> = upstream
        .calls()
        .iter()
        .flat_map(|c| match c {
            serde_json::Value::Array(calls) => calls.clone(),
            call => vec![call.clone()],
        })
        .filter_map(|c| c["method"].as_str().map(str::to_owned))
        .collect();
    assert!(
        methods.contains(&"eth_getBalance".to_owned()),
        "{methods:?}"
    );
    assert_eq!(
        methods.iter().filter(|m| *m == "eth_blockNumber").count(),
        2,
        "{methods:?}"
    );
    // ... the relay saw two sealed requests and nothing readable in either direction.
    let seen = relay.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for exchange in &seen {
        assert_eq!(exchange.content_type.as_deref(), Some("message/ohttp-req"));
        for bytes in [&exchange.request, &exchange.response] {
            for word in [
                "eth_",
                "jsonrpc",
                "latest",
                &ACCOUNT[2..],
                "0x10",
                "POST",
                "/eth",
            ] {
                assert!(!contains(bytes, word), "{word:?} visible to the relay");
            }
        }
    }
}

#[tokio::test]
async fn calls_straight_to_the_gateway_and_errors_come_through() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let client = builder(&gateway).connect().await.unwrap();

    assert_eq!(
        client.request("eth_blockNumber", json!([])).await.unwrap(),
        json!("0x10")
    );
    // A method the gateway's policy denies: its JSON-RPC error, opened from inside the
    // encapsulation.
    let err = client.request("admin_peers", json!([])).await.unwrap_err();
    assert!(
        matches!(err, ClientError::JsonRpc { code: -32601, .. }),
        "{err:?}"
    );
    assert_eq!(
        upstream.calls().len(),
        1,
        "the denied call reached the node"
    );
}

#[tokio::test]
async fn a_tampered_answer_is_refused() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let relay = Relay::start(&gateway).await;
    let client = builder(&gateway)
        .relay(relay.url())
        .connect()
        .await
        .unwrap();

    relay.tamper.store(true, Ordering::SeqCst);
    // eth_sendRawTransaction is never retried: exactly one exchange, refused.
    let err = client
        .request("eth_sendRawTransaction", json!(["0x00"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Ohttp(OhttpError::Decrypt)),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(relay.seen().len(), 1);
}

#[tokio::test]
async fn an_untrusted_gateway_gets_nothing_sealed() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;

    let err = ObliviousClient::builder(gateway.url())
        .policy(common::policy(&[7; 48]))
        .danger_allow_simulated(true)
        .tls_config(ra_tls(&gateway))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::PinMismatch(shroud_ra_tls::Error::MeasurementMismatch { .. })
        ),
        "{err:?}"
    );
    // The simulated TEE is refused unless the caller opts in.
    let err = builder(&gateway)
        .danger_allow_simulated(false)
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Attestation(shroud_ra_tls::Error::SimulatedRefused)
        ),
        "{err:?}"
    );
    assert!(err.nothing_sent());
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn options_are_checked_before_anything_is_fetched() {
    // Plain HTTP to a relay off loopback is refused; so are pins combined with a policy.
    let err = ObliviousClient::builder("https://gateway.invalid/eth")
        .pin(format!("simulated:measurement={}", "00".repeat(48)))
        .relay("http://relay.example/ohttp")
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::InvalidOption {
                option: "relay",
                ..
            }
        ),
        "{err:?}"
    );
    let err = ObliviousClient::builder("http://gateway.example/eth")
        .pin(format!("simulated:measurement={}", "00".repeat(48)))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidUrl { .. }), "{err:?}");
    // Nothing listens here: a network error, not a hang.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let err = ObliviousClient::builder(format!("https://{addr}/eth"))
        .pin(format!("simulated:measurement={}", "00".repeat(48)))
        .retries(0)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Network);
}

/// Issue: a session never expired; now, past its verdict's expiry, the client fetches and
/// verifies the bundle again before sealing, and seals nothing when that fails.
#[tokio::test]
async fn an_expired_verdict_is_verified_again_before_sealing() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let ahead = Arc::new(AtomicU64::new(0));
    let clock_ahead = Arc::clone(&ahead);
    let client = builder(&gateway)
        .clock(move || {
            let now = UnixTime::now().as_secs() + clock_ahead.load(Ordering::SeqCst);
            UnixTime::since_unix_epoch(Duration::from_secs(now))
        })
        .connect()
        .await
        .unwrap();
    let verdict = client.verdict();
    assert!(verdict.expires_at() <= verdict.not_after());

    // Within the verdict the verified keys seal the call.
    assert_eq!(
        client.request("eth_blockNumber", json!([])).await.unwrap(),
        json!("0x10")
    );
    let answered = upstream.calls().len();
    assert_eq!(answered, 1);

    // One second past it: the bundle is fetched and verified again at the client's clock, the
    // gateway's certificate has expired by then, and the call is refused unsealed.
    ahead.store(
        verdict.expires_at() + 1 - UnixTime::now().as_secs(),
        Ordering::SeqCst,
    );
    let err = client
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Attestation, "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
    assert!(err.nothing_sent(), "{err}");
    assert_eq!(upstream.calls().len(), answered);

    // Back within the verdict, the session that was never replaced still works.
    ahead.store(0, Ordering::SeqCst);
    assert_eq!(
        client.request("eth_blockNumber", json!([])).await.unwrap(),
        json!("0x10")
    );
}
