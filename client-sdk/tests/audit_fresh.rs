//! `shroud audit` and `shroud attest --fresh` (DESIGN §4.1, §4.2, §6) against stand-in gateways
//! that serve the RA-TLS certificate to ClientHellos offering `shroud-ra-tls/1` and a "public"
//! certificate signed by a test CA to the others, and answer
//! `GET /.well-known/shroud/attestation?nonce=` honestly or not; and `--fresh` against the real
//! in-process gateway. The stand-ins are reached as `rpc.shroud.test` through `--resolve`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed setup or assumption is a failed test"
)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use shroud_client::bundle::AttestationBundle;
use shroud_ra_tls::UnixTime;
use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{AttestedCertificate, IssueParams, issue_certificate_with_key};
use shroud_ra_tls::tls::{RA_TLS_ALPN, crypto_provider, server_config};
use shroud_testkit::upstream::RecordingUpstream;
use tokio::net::TcpListener;

use common::{StartGateway, TestGateway};

const HOST: &str = "rpc.shroud.test";

/// How the stand-in answers a request for fresh evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// A certificate issued now for the serving key, with the nonce in its claims.
    Bind,
    /// The serving certificate, as if there were no nonce.
    Ignore,
    /// A certificate with the nonce, but for another key.
    OtherKey,
    /// HTTP 429 with `Retry-After: 7`.
    RateLimited,
}

/// A test CA (rcgen) and its root as a PEM file.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem_file: tempfile::NamedTempFile,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pem_file.path(), issuer.pem()).unwrap();
        TestCa { issuer, pem_file }
    }

    fn path(&self) -> PathBuf {
        self.pem_file.path().to_owned()
    }

    /// A leaf for `HOST` with `key`'s public key.
    fn issue(&self, key: &KeyPair) -> CertifiedKey {
        let params = CertificateParams::new(vec![HOST.to_owned()]).unwrap();
        let cert = params.signed_by(key, &self.issuer).unwrap();
        certified(cert.der().clone(), key)
    }
}

fn certified(cert: CertificateDer<'static>, key: &KeyPair) -> CertifiedKey {
    let private = crypto_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .unwrap();
    CertifiedKey::new(vec![cert], private)
}

fn ra_tls_cert(key: &KeyPair, nonce: Option<Vec<u8>>) -> AttestedCertificate {
    let attester = SimulatedAttester::with_measurement(common::MEASUREMENT).unwrap();
    let mut params = IssueParams::new(vec![HOST.to_owned()], UnixTime::now());
    params.nonce = nonce;
    issue_certificate_with_key(&attester, &params, key).unwrap()
}

/// The RA-TLS certificate to hellos offering `shroud-ra-tls/1`, the public one to the others.
#[derive(Debug)]
struct BySelection {
    ra_tls: Arc<CertifiedKey>,
    public: Arc<CertifiedKey>,
}

impl ResolvesServerCert for BySelection {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let attesting = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == RA_TLS_ALPN));
        Some(Arc::clone(if attesting {
            &self.ra_tls
        } else {
            &self.public
        }))
    }
}

struct StandIn {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// `public_key`: the key of the public certificate (the RA-TLS key when `None`).
    async fn start(ca: &TestCa, public_key: Option<&KeyPair>, fresh: Fresh) -> StandIn {
        let key = Arc::new(KeyPair::generate().unwrap());
        let serving = ra_tls_cert(&key, None);
        let resolver = Arc::new(BySelection {
            ra_tls: Arc::new(certified(serving.certificate.clone(), &key)),
            public: Arc::new(ca.issue(public_key.unwrap_or(&key))),
        });
        let config = Arc::new(server_config(resolver, &[b"h2", b"http/1.1"]).unwrap());
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = serving.certificate.to_vec();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, key, serving) =
                    (acceptor.clone(), Arc::clone(&key), serving.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, fresh, Arc::clone(&key), serving.clone())
                    });
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await
                        .ok();
                });
            }
        });
        StandIn { addr, task }
    }

    fn url(&self) -> String {
        format!("https://{HOST}:{}/eth", self.addr.port())
    }

    fn resolve(&self) -> String {
        format!("{HOST}:{}:127.0.0.1", self.addr.port())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    request: http::Request<hyper::body::Incoming>,
    fresh: Fresh,
    key: Arc<KeyPair>,
    serving: Vec<u8>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let nonce = request
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("nonce="))
        .map(|hex_nonce| hex::decode(hex_nonce).unwrap());
    assert_eq!(request.uri().path(), "/.well-known/shroud/attestation");
    let certificate = match (fresh, nonce) {
        (Fresh::RateLimited, _) => {
            return Ok(http::Response::builder()
                .status(429)
                .header(http::header::RETRY_AFTER, "7")
                .body(Full::new(Bytes::new()))
                .unwrap());
        }
        (Fresh::Bind, Some(nonce)) => ra_tls_cert(&key, Some(nonce)).certificate.to_vec(),
        (Fresh::OtherKey, Some(nonce)) => ra_tls_cert(&KeyPair::generate().unwrap(), Some(nonce))
            .certificate
            .to_vec(),
        _ => serving,
    };
    let bundle = AttestationBundle {
        certificate,
        endorsements: None,
        ohttp_keys: None,
    };
    Ok(http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bundle.to_json().to_string())))
        .unwrap())
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn shroud(args: Vec<String>) -> Run {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shroud"))
            .args(args)
            .output()
            .expect("running the shroud binary")
    })
    .await
    .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn audit(server: &StandIn, ca: &TestCa, extra: &[&str]) -> Run {
    let mut args = vec![
        "audit".to_owned(),
        server.url(),
        "--pin".to_owned(),
        common::pin(&common::MEASUREMENT),
        "--allow-simulated".to_owned(),
        "--ca".to_owned(),
        ca.path().display().to_string(),
        "--resolve".to_owned(),
        server.resolve(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    shroud(args).await
}

async fn attest_fresh(server: &StandIn) -> Run {
    shroud(vec![
        "attest".to_owned(),
        server.url(),
        "--fresh".to_owned(),
        "--pin".to_owned(),
        common::pin(&common::MEASUREMENT),
        "--allow-simulated".to_owned(),
        "--resolve".to_owned(),
        server.resolve(),
    ])
    .await
}

#[tokio::test]
async fn audit_passes_when_the_public_certificate_has_the_attested_key() {
    let ca = TestCa::new("Test Public CA");
    let server = StandIn::start(&ca, None, Fresh::Bind).await;

    let run = audit(&server, &ca, &[]).await;
    assert!(run.ok, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.contains("CN=Test Public CA"), "{}", run.stdout);
    assert!(run.stdout.contains("CN=Shroud RA-TLS"), "{}", run.stdout);
    assert!(run.stdout.contains(HOST), "{}", run.stdout);
    assert!(run.stdout.contains("audit        ok"), "{}", run.stdout);

    let run = audit(&server, &ca, &["--json"]).await;
    assert!(run.ok, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verdict"], "ok");
    assert_eq!(report["keys_match"], true);
    assert_eq!(
        report["public"]["spki_sha256"],
        report["attestation"]["certificate"]["spki_sha256"]
    );
    assert_eq!(report["public"]["names"][0], HOST);
}

#[tokio::test]
async fn audit_names_a_key_mismatch() {
    let ca = TestCa::new("Test Public CA");
    let other = KeyPair::generate().unwrap();
    let server = StandIn::start(&ca, Some(&other), Fresh::Bind).await;

    let run = audit(&server, &ca, &[]).await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("key mismatch: the public certificate's key"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("is not the attested key"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn audit_fails_when_the_public_chain_is_not_trusted() {
    let ca = TestCa::new("Test Public CA");
    let stranger = TestCa::new("Another CA");
    let server = StandIn::start(&ca, None, Fresh::Bind).await;

    let run = audit(&server, &stranger, &[]).await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(run.stderr.contains("web PKI"), "{}", run.stderr);
    assert!(run.stderr.contains("UnknownIssuer"), "{}", run.stderr);
}

#[tokio::test]
async fn audit_refuses_an_unpinned_enclave_before_the_public_side() {
    let ca = TestCa::new("Test Public CA");
    let server = StandIn::start(&ca, None, Fresh::Bind).await;
    let run = shroud(vec![
        "audit".to_owned(),
        server.url(),
        "--pin".to_owned(),
        common::pin(&[9; 48]),
        "--allow-simulated".to_owned(),
        "--ca".to_owned(),
        ca.path().display().to_string(),
        "--resolve".to_owned(),
        server.resolve(),
    ])
    .await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(run.stderr.contains("pin mismatch"), "{}", run.stderr);
}

#[tokio::test]
async fn attest_fresh_passes_when_the_nonce_is_bound() {
    let ca = TestCa::new("Test Public CA");
    let server = StandIn::start(&ca, None, Fresh::Bind).await;
    let run = attest_fresh(&server).await;
    assert!(run.ok, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.contains("fresh        nonce"), "{}", run.stdout);
    assert!(run.stdout.contains("bound"), "{}", run.stdout);
}

#[tokio::test]
async fn attest_fresh_fails_when_the_nonce_is_ignored() {
    let ca = TestCa::new("Test Public CA");
    let server = StandIn::start(&ca, None, Fresh::Ignore).await;
    let run = attest_fresh(&server).await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains("nonce not bound") && run.stderr.contains("carry no nonce"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn attest_fresh_fails_when_the_nonce_is_bound_to_another_key() {
    let ca = TestCa::new("Test Public CA");
    let server = StandIn::start(&ca, None, Fresh::OtherKey).await;
    let run = attest_fresh(&server).await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(run.stderr.contains("key mismatch"), "{}", run.stderr);
}

#[tokio::test]
async fn attest_fresh_reports_rate_limiting() {
    let ca = TestCa::new("Test Public CA");
    let server = StandIn::start(&ca, None, Fresh::RateLimited).await;
    let run = attest_fresh(&server).await;
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains("rate limited") && run.stderr.contains("retry after 7 s"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn attest_fresh_against_the_gateway() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;

    let port = gateway.addr.port();
    let run = shroud(vec![
        "attest".to_owned(),
        format!("https://{HOST}:{port}/eth"),
        "--fresh".to_owned(),
        "--json".to_owned(),
        "--pin".to_owned(),
        gateway.pin(),
        "--allow-simulated".to_owned(),
        "--resolve".to_owned(),
        format!("{HOST}:{port}:127.0.0.1"),
    ])
    .await;
    assert!(run.ok, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["fresh"]["nonce_bound"], true);
    assert_eq!(report["fresh"]["spki_sha256"], report["spki_sha256"]);
    assert_eq!(report["fresh"]["nonce"].as_str().unwrap().len(), 64);

    // The library call: the nonce in the verified claims is the one sent.
    let client = shroud_client::Client::builder(gateway.url())
        .pin(gateway.pin())
        .danger_allow_simulated(true)
        .build()
        .unwrap();
    let nonce = [7u8; 16];
    let fresh = client.attest_with_nonce(&nonce).await.unwrap();
    assert_eq!(fresh.fresh.claims().nonce.as_deref(), Some(&nonce[..]));
    assert_eq!(fresh.fresh.spki_sha256(), fresh.connection.spki_sha256());

    // A nonce the gateway refuses (too short) is reported as its 400.
    let err = client.attest_with_nonce(&[1; 4]).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 400"), "{err}");
}

#[tokio::test]
async fn resolve_must_name_the_urls_host_and_port() {
    for spec in [
        "other.test:8443:127.0.0.1",
        "rpc.shroud.test:1:127.0.0.1",
        "rpc.shroud.test:8443:nowhere",
        "rpc.shroud.test",
    ] {
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_shroud"))
                .args([
                    "attest",
                    "https://rpc.shroud.test:8443/eth",
                    "--pin",
                    &common::pin(&common::MEASUREMENT),
                    "--resolve",
                    spec,
                ])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(out.status.code(), Some(2), "{spec}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--resolve"), "{spec}: {stderr}");
    }
}
