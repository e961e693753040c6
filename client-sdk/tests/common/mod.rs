//! Helpers shared by the client's integration tests: attested and plain TLS server configs, a
//! small RA-TLS JSON-RPC server with a choice of ALPN, and the SDK's half of the gateway harness
//! (`shroud_testkit::gateway`): an in-process `--dev` gateway.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed setup is a failed test"
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use shroud_client::proxy::{Proxy, ProxyOptions};
use shroud_client::{Client, Policy};
use shroud_gateway::{Config, Gateway};
use shroud_ra_tls::UnixTime;
use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{AttestedCertificate, IssueParams, issue_certificate};
use shroud_ra_tls::tls::{
    AttestedServerVerifier, RotatingCertResolver, client_config, server_config,
};
use shroud_testkit::gateway::Started;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod dev_node;
pub mod ws_stand_in;

/// The measurement the test servers' simulated attester reports.
pub const MEASUREMENT: [u8; 48] = [1; 48];

/// Both HTTP versions, HTTP/2 first, as the client and gateway offer them.
pub const ALPN_BOTH: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// How long a test waits for a server to see a connection end.
pub const SETTLE: Duration = Duration::from_secs(5);

/// The pin for `measurement`.
pub fn pin(measurement: &[u8]) -> String {
    format!("simulated:measurement={}", hex::encode(measurement))
}

/// A policy pinning `measurement`.
pub fn policy(measurement: &[u8]) -> Policy {
    Policy::from_pins([pin(measurement)]).unwrap()
}

/// A simulated RA-TLS certificate reporting `measurement`, for `localhost`.
pub fn simulated_cert(measurement: [u8; 48]) -> AttestedCertificate {
    let attester = SimulatedAttester::with_measurement(measurement).unwrap();
    issue_certificate(
        &attester,
        &IssueParams::new(vec!["localhost".into()], UnixTime::now()),
    )
    .unwrap()
}

/// The RA-TLS server config serving `cert` with `alpn`.
pub fn ra_tls_config(cert: &AttestedCertificate, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let resolver = Arc::new(RotatingCertResolver::new(cert).unwrap());
    Arc::new(server_config(resolver, alpn).unwrap())
}

/// SHA-256 of a certificate's DER, as in `Verdict::cert_sha256`.
pub fn cert_sha256(cert: &[u8]) -> [u8; 32] {
    shroud_ra_tls::sha256(cert)
}

/// A TLS 1.3 server config with an ordinary self-signed certificate: no evidence extension.
pub fn plain_tls_config(alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(shroud_ra_tls::tls::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A client for `url` trusting `measurement`, simulated allowed, with a short timeout.
pub fn client(url: &str, measurement: &[u8], allow_simulated: bool) -> Client {
    Client::builder(url)
        .policy(policy(measurement))
        .danger_allow_simulated(allow_simulated)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// An RA-TLS JSON-RPC server with the simulated attester: `eth_blockNumber` → `"0x10"`,
/// `echo` → its params, `fail` → a JSON-RPC error, `http_500` → a plain HTTP 500.
pub struct JsonRpcServer {
    pub addr: SocketAddr,
    versions: Arc<Mutex<Vec<http::Version>>>,
    handshakes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl JsonRpcServer {
    pub async fn start(alpn: &[&[u8]]) -> Self {
        let config = ra_tls_config(&simulated_cert(MEASUREMENT), alpn);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let versions = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&versions);
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&handshakes);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let seen = Arc::clone(&seen);
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, Arc::clone(&seen))
                    });
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await
                        .ok();
                });
            }
        });
        Self {
            addr,
            versions,
            handshakes,
            task,
        }
    }

    pub fn url(&self, chain: &str) -> String {
        format!("https://{}/{chain}", self.addr)
    }

    /// TLS handshakes completed so far (one per connection).
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// The HTTP versions of the requests served so far.
    pub fn versions(&self) -> Vec<http::Version> {
        self.versions.lock().unwrap().clone()
    }
}

impl Drop for JsonRpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    request: http::Request<Incoming>,
    seen: Arc<Mutex<Vec<http::Version>>>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    seen.lock().unwrap().push(request.version());
    let content_type_ok = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    let path = request.uri().path().to_owned();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let reply = |value: Value| {
        http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(value.to_string())))
            .unwrap()
    };
    if !content_type_ok || path != "/eth" || call.get("jsonrpc") != Some(&json!("2.0")) {
        return Ok(http::Response::builder()
            .status(400)
            .body(Full::new(Bytes::from(format!("bad request to {path}"))))
            .unwrap());
    }
    Ok(match call.get("method").and_then(Value::as_str) {
        Some("eth_blockNumber") => reply(json!({"jsonrpc": "2.0", "id": id, "result": "0x10"})),
        Some("echo") => reply(
            json!({"jsonrpc": "2.0", "id": id, "result": call.get("params").cloned().unwrap_or(Value::Null)}),
        ),
        Some("fail") => reply(
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": "execution reverted", "data": "0xdead"}}),
        ),
        _ => http::Response::builder()
            .status(500)
            .body(Full::new(Bytes::from_static(b"internal failure")))
            .unwrap(),
    })
}

/// A `--dev` gateway in process (`shroud_testkit::gateway`).
pub type TestGateway = shroud_testkit::gateway::TestGateway<Arc<RotatingCertResolver>>;

/// The SDK's tests' part of the gateway harness.
pub trait StartGateway: Sized {
    /// Starts a `--dev` gateway on loopback port 0, with chain `eth` relayed to `upstream_url`.
    async fn start(upstream_url: String) -> Self;
    /// SHA-256 of the certificate the gateway serves now.
    fn current_cert_sha256(&self) -> [u8; 32];
    /// Rotates the gateway to a fresh certificate reporting `measurement`.
    fn rotate(&self, measurement: [u8; 48]);
}

impl StartGateway for TestGateway {
    async fn start(upstream_url: String) -> Self {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let gateway = Gateway::bind(Config::dev(
            vec![("eth".to_owned(), upstream_url)],
            loopback,
            loopback,
        ))
        .await
        .unwrap();
        let started = Started {
            addr: gateway.https_addr(),
            metrics_addr: gateway.metrics_addr(),
            measurement: gateway.measurement_hex(),
            resolver: gateway.resolver(),
            client_tls,
        };
        Self::in_process(started, |stop| gateway.run(stop))
    }

    fn current_cert_sha256(&self) -> [u8; 32] {
        cert_sha256(&self.resolver.current_certificate().unwrap())
    }

    fn rotate(&self, measurement: [u8; 48]) {
        self.resolver.rotate(&simulated_cert(measurement)).unwrap();
    }
}

/// The RA-TLS client configuration pinned to the simulated `measurement` (hex).
fn client_tls(measurement: &str) -> rustls::ClientConfig {
    let verifier = AttestedServerVerifier::new(policy(&hex::decode(measurement).unwrap()))
        .danger_allow_simulated(true);
    client_config(Arc::new(verifier), &[]).unwrap()
}

/// POSTs `body` to a plain-HTTP `url` (the proxy) with `host` as the Host header; returns the
/// status and the body.
pub async fn post_plain(url: &str, host: Option<&str>, body: &str) -> (http::StatusCode, Bytes) {
    let uri: http::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().clone();
    let tcp = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .unwrap();
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let driver = tokio::spawn(driver);
    let request = http::Request::post(uri.path())
        .header(http::header::HOST, host.unwrap_or(authority.as_str()))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    driver.abort();
    (status, body)
}

/// A proxy running in process until dropped.
pub struct RunningProxy {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningProxy {
    pub async fn start(client: Client) -> Self {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let proxy = Proxy::bind(loopback, client, &ProxyOptions::new())
            .await
            .unwrap();
        let url = proxy.url();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(proxy.run(async {
            stopped.await.ok();
        }));
        Self {
            url,
            stop: Some(stop),
            task,
        }
    }

    /// `ws://ADDR/eth`, the proxy's WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws{}/eth", self.url.trim_start_matches("http"))
    }

    pub async fn post(&self, body: &str) -> (http::StatusCode, Value) {
        let (status, body) = post_plain(&self.url, None, body).await;
        (status, serde_json::from_slice(&body).unwrap())
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        self.task.abort();
    }
}
