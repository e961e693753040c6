//! Every attesting path offers `shroud-ra-tls/1` in its ClientHello (DESIGN §4.1), so that a
//! gateway with a public certificate serves it the RA-TLS one, while HTTP itself is negotiated as
//! `h2` or `http/1.1`: the SDK `Client` (attest and calls), its jsonrpsee client, the proxy, the
//! `ObliviousClient` given an RA-TLS configuration, and the `shroud` CLI's `attest`, `call` and
//! `proxy`.
//! A stand-in RA-TLS server records each ClientHello's ALPN list and the protocol it negotiated.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed setup or assumption is a failed test"
)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::{Value, json};
use shroud_client::ObliviousClient;
use shroud_client::jsonrpsee::core::client::ClientT;
use shroud_client::jsonrpsee::rpc_params;
use shroud_client::proxy::{Proxy, ProxyOptions};
use shroud_ra_tls::tls::{
    AttestedServerVerifier, RA_TLS_ALPN, RotatingCertResolver, client_config, server_config,
};
use tokio::net::TcpListener;

/// One handshake as the stand-in saw it.
#[derive(Debug, Clone)]
struct Hello {
    offered: Vec<Vec<u8>>,
    negotiated: Option<Vec<u8>>,
}

/// Records the ALPN list of every ClientHello, then serves the RA-TLS certificate.
#[derive(Debug)]
struct Recording {
    inner: Arc<RotatingCertResolver>,
    offered: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
}

impl ResolvesServerCert for Recording {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offered = hello
            .alpn()
            .map(|list| list.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        self.offered.lock().unwrap().push(offered);
        self.inner.resolve(hello)
    }
}

struct StandIn {
    addr: SocketAddr,
    offered: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    negotiated: Arc<Mutex<Vec<Option<Vec<u8>>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// An RA-TLS JSON-RPC server negotiating one of `alpn` (it does not list `shroud-ra-tls/1`:
    /// that id selects a certificate, it is never the protocol spoken).
    async fn start(alpn: &[&[u8]]) -> StandIn {
        let offered = Arc::new(Mutex::new(Vec::new()));
        let resolver = Arc::new(Recording {
            inner: Arc::new(
                RotatingCertResolver::new(&common::simulated_cert(common::MEASUREMENT)).unwrap(),
            ),
            offered: Arc::clone(&offered),
        });
        let config = Arc::new(server_config(resolver, alpn).unwrap());
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let negotiated = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&negotiated);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    seen.lock()
                        .unwrap()
                        .push(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
                    let service = hyper::service::service_fn(answer);
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await
                        .ok();
                });
            }
        });
        StandIn {
            addr,
            offered,
            negotiated,
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://{}/eth", self.addr)
    }

    /// The handshakes so far: what was offered, what was negotiated (completed ones only).
    fn hellos(&self) -> Vec<Hello> {
        let offered = self.offered.lock().unwrap().clone();
        let negotiated = self.negotiated.lock().unwrap().clone();
        assert!(!offered.is_empty(), "no ClientHello reached the stand-in");
        assert_eq!(offered.len(), negotiated.len(), "a handshake failed");
        offered
            .into_iter()
            .zip(negotiated)
            .map(|(offered, negotiated)| Hello {
                offered,
                negotiated,
            })
            .collect()
    }

    /// Asserts every handshake offered `shroud-ra-tls/1` and negotiated `expected`.
    fn assert_attesting(&self, path: &str, expected: &[u8]) {
        for hello in self.hellos() {
            assert!(
                hello.offered.iter().any(|p| p == RA_TLS_ALPN),
                "{path}: shroud-ra-tls/1 not offered: {hello:?}"
            );
            assert_eq!(
                hello.negotiated.as_deref(),
                Some(expected),
                "{path}: {hello:?}"
            );
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let reply = json!({"jsonrpc": "2.0", "id": id, "result": "0x10"});
    Ok(http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(reply.to_string())))
        .unwrap())
}

const H2: &[u8] = b"h2";
const H1: &[u8] = b"http/1.1";

#[tokio::test]
async fn the_client_offers_ra_tls_and_speaks_h2_or_http1() {
    let server = StandIn::start(&[H2, H1]).await;
    let client = common::client(&server.url(), &common::MEASUREMENT, true);
    client.attest().await.unwrap();
    let block = client.request("eth_blockNumber", json!([])).await.unwrap();
    assert_eq!(block, "0x10");
    server.assert_attesting("Client", H2);

    let server = StandIn::start(&[H1]).await;
    let client = common::client(&server.url(), &common::MEASUREMENT, true);
    let block = client.request("eth_blockNumber", json!([])).await.unwrap();
    assert_eq!(block, "0x10");
    server.assert_attesting("Client over HTTP/1.1", H1);
}

#[tokio::test]
async fn the_jsonrpsee_client_offers_ra_tls() {
    let server = StandIn::start(&[H2, H1]).await;
    let client = common::client(&server.url(), &common::MEASUREMENT, true);
    let rpc = client.jsonrpsee_client().unwrap();
    let block: String = rpc.request("eth_blockNumber", rpc_params![]).await.unwrap();
    assert_eq!(block, "0x10");
    server.assert_attesting("jsonrpsee", H2);
}

#[tokio::test]
async fn the_proxy_offers_ra_tls() {
    let server = StandIn::start(&[H2, H1]).await;
    let client = common::client(&server.url(), &common::MEASUREMENT, true);
    let proxy = Proxy::bind("127.0.0.1:0".parse().unwrap(), client, &ProxyOptions::new())
        .await
        .unwrap();
    let url = proxy.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(proxy.run(async {
        stopped.await.ok();
    }));
    let (status, body) = common::post_plain(
        &format!("{url}/"),
        None,
        r#"{"jsonrpc":"2.0","id":7,"method":"eth_blockNumber","params":[]}"#,
    )
    .await;
    assert_eq!(status, 200, "{body:?}");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .unwrap()
        .unwrap();
    server.assert_attesting("proxy", H2);
}

/// The `ObliviousClient` given an RA-TLS configuration (to reach a gateway directly, not
/// through a front end) keeps its `shroud-ra-tls/1`, so that a gateway with a public
/// certificate serves the one the verifier can check; a configuration without the id (a
/// WebPKI front end) does not ask for the RA-TLS certificate. The stand-in serves no bundle, so
/// each connect fails after its handshake.
#[tokio::test]
async fn the_oblivious_client_offers_ra_tls_when_its_config_does() {
    let attesting = || {
        let verifier = AttestedServerVerifier::new(common::policy(&common::MEASUREMENT))
            .danger_allow_simulated(true);
        client_config(Arc::new(verifier), &[]).unwrap()
    };
    let connect = |url: String, config: rustls::ClientConfig| {
        ObliviousClient::builder(url)
            .pin(common::pin(&common::MEASUREMENT))
            .danger_allow_simulated(true)
            .timeout(Duration::from_secs(10))
            .tls_config(config)
            .connect()
    };

    let server = StandIn::start(&[H2, H1]).await;
    assert!(connect(server.url(), attesting()).await.is_err());
    server.assert_attesting("ObliviousClient", H2);

    let server = StandIn::start(&[H2, H1]).await;
    let mut front_end = attesting();
    front_end.alpn_protocols.clear();
    assert!(connect(server.url(), front_end).await.is_err());
    for hello in server.hellos() {
        assert_eq!(hello.offered, [H2.to_vec(), H1.to_vec()], "{hello:?}");
        assert_eq!(hello.negotiated.as_deref(), Some(H2), "{hello:?}");
    }
}

async fn shroud(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shroud"))
            .args(args)
            .output()
            .expect("running the shroud binary")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_cli_attest_and_call_offer_ra_tls() {
    for command in ["attest", "call"] {
        let server = StandIn::start(&[H2, H1]).await;
        let url = server.url();
        let pin = common::pin(&common::MEASUREMENT);
        let mut args = vec![command, url.as_str()];
        if command == "call" {
            args.push("eth_blockNumber");
        }
        args.extend(["--pin", pin.as_str(), "--allow-simulated"]);
        let out = shroud(args.iter().map(|s| (*s).to_owned()).collect()).await;
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hellos = server.hellos();
        for hello in hellos {
            assert!(
                hello.offered.iter().any(|p| p == RA_TLS_ALPN),
                "shroud {command}: {hello:?}"
            );
            assert!(
                matches!(hello.negotiated.as_deref(), Some(H2 | H1)),
                "shroud {command}: {hello:?}"
            );
        }
    }
}

/// A `shroud proxy` child, killed (by its handle) when dropped.
struct ProxyProcess(std::process::Child);

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[tokio::test]
async fn the_cli_proxy_offers_ra_tls() {
    use std::io::BufRead as _;

    let server = StandIn::start(&[H2, H1]).await;
    let url = server.url();
    let pin = common::pin(&common::MEASUREMENT);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shroud"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--gateway",
            url.as_str(),
        ])
        .args(["--pin", pin.as_str(), "--allow-simulated"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running shroud proxy");
    let stdout = child.stdout.take().unwrap();
    let guard = ProxyProcess(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    let listening = line
        .trim()
        .strip_prefix("shroud proxy listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    let (status, body) = common::post_plain(
        &format!("{listening}/"),
        None,
        r#"{"jsonrpc":"2.0","id":7,"method":"eth_blockNumber","params":[]}"#,
    )
    .await;
    assert_eq!(status, 200, "{body:?}");
    drop(guard);
    server.assert_attesting("shroud proxy", H2);
}
