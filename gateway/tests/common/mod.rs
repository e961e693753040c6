//! Helpers shared by the gateway's integration tests: a gateway on loopback, and a real RA-TLS
//! client that pins the gateway's simulated measurement.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use shroud_gateway::{Config, Gateway, GatewayError};
use shroud_ra_tls::Policy;
use shroud_ra_tls::tls::{AttestedServerVerifier, RotatingCertResolver, client_config};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A running gateway (in this process, or the `shroud-gateway` binary) and what a test needs
/// to talk to it.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub measurement: String,
    /// The in-process gateway's resolver (`None` for the binary).
    pub resolver: Option<Arc<RotatingCertResolver>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), GatewayError>>>,
    process: Option<Process>,
}

/// The binary's process, with its configuration and stderr in a temporary directory.
struct Process {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

/// `shroud-gateway`, built by Cargo for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_shroud-gateway");

impl TestGateway {
    /// Starts a `--dev` gateway on loopback port 0 with `upstreams` (`(chain, url)`).
    pub async fn start(upstreams: Vec<(String, String)>) -> Self {
        Self::start_config(dev_config(upstreams)).await
    }

    /// Starts a gateway with `config` (whose listeners should be on loopback port 0).
    pub async fn start_config(config: Config) -> Self {
        let gateway = Gateway::bind(config).await.expect("gateway binds");
        let (tx, rx) = oneshot::channel::<()>();
        let addr = gateway.https_addr();
        let metrics_addr = gateway.metrics_addr();
        let measurement = gateway.measurement_hex();
        let resolver = gateway.resolver();
        let task = tokio::spawn(gateway.run(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            metrics_addr,
            measurement,
            resolver: Some(resolver),
            shutdown: Some(tx),
            task: Some(task),
            process: None,
        }
    }

    /// Starts the binary with the TOML `config` (listeners on loopback port 0), through `sh -c`
    /// with `shell` run first (e.g. `ulimit -n 256`). Panics when it does not print its
    /// start-up lines within 60 s.
    pub async fn spawn(config: &str, shell: &str) -> Self {
        use tokio::io::AsyncBufReadExt as _;
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, config).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{shell}\nexec \"$0\" --config \"$1\""))
            .arg(BIN)
            .arg(&config_path)
            .env_remove("SHROUD_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let read = async {
            let first = lines.next_line().await.unwrap();
            let second = lines.next_line().await.unwrap();
            (first, second)
        };
        let (first, second) = tokio::time::timeout(std::time::Duration::from_secs(60), read)
            .await
            .expect("start-up lines within 60 s");
        let stderr_path = dir.path().join("stderr");
        let (Some(first), Some(second)) = (first, second) else {
            panic!(
                "the gateway exited: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        };
        let addr = first
            .strip_prefix("shroud-gateway listening on https://")
            .unwrap()
            .parse()
            .unwrap();
        let measurement = second
            .strip_prefix("measurement: simulated ")
            .unwrap()
            .to_owned();
        // The metrics address is logged just after the start-up lines.
        let mut metrics_addr = None;
        for _ in 0..500 {
            let text = strip_ansi(&std::fs::read_to_string(&stderr_path).unwrap_or_default());
            metrics_addr = text
                .split("metrics=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|addr| {
                    addr.trim_end_matches(|c: char| !c.is_ascii_digit())
                        .parse()
                        .ok()
                });
            if metrics_addr.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Self {
            addr,
            metrics_addr: metrics_addr.expect("the metrics address is logged"),
            measurement,
            resolver: None,
            shutdown: None,
            task: None,
            process: Some(Process { child, dir }),
        }
    }

    /// The binary's stderr so far, without terminal colours.
    pub fn stderr(&self) -> String {
        let process = self.process.as_ref().expect("a spawned gateway");
        strip_ansi(&std::fs::read_to_string(process.dir.path().join("stderr")).unwrap_or_default())
    }

    /// The binary's process id.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().unwrap().child.id().unwrap()
    }

    /// Whether the binary is still running.
    pub fn is_running(&mut self) -> bool {
        let process = self.process.as_mut().expect("a spawned gateway");
        matches!(process.child.try_wait(), Ok(None))
    }

    /// Starts a gateway with one chain `eth` served by `url`.
    pub async fn with_eth(url: String) -> Self {
        Self::start(vec![("eth".to_owned(), url)]).await
    }

    /// Asks the gateway to stop and waits for `run` to return (in-process gateways only).
    pub async fn stop(mut self) -> Result<(), GatewayError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }

    /// A call over a fresh HTTP/1.1 connection; the parsed JSON answer.
    pub async fn call(&self, body: &str) -> serde_json::Value {
        self.http1(post_json("/eth", body)).await.json()
    }

    /// The pin for this gateway.
    pub fn pin(&self) -> String {
        format!("simulated:measurement={}", self.measurement)
    }

    /// An RA-TLS connection with `alpn`, verified against the pin.
    pub async fn connect(&self, alpn: &[u8]) -> TlsStream<TcpStream> {
        connect(self.addr, &self.pin(), alpn).await
    }

    /// One request over a fresh HTTP/1.1 connection.
    pub async fn http1(&self, request: Request<Full<Bytes>>) -> Reply {
        let tls = self.connect(b"http/1.1").await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        Reply::from(sender.send_request(request).await.unwrap()).await
    }

    /// One request over a fresh HTTP/1.1 connection from the local address `local_ip`.
    pub async fn http1_from(&self, local_ip: &str, request: Request<Full<Bytes>>) -> Reply {
        let tls = connect_from(self.addr, local_ip, &self.pin(), b"http/1.1").await;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        Reply::from(sender.send_request(request).await.unwrap()).await
    }

    /// `GET path` on the metrics listener.
    pub async fn metrics_get(&self, path: &str) -> Reply {
        let tcp = TcpStream::connect(self.metrics_addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        Reply::from(sender.send_request(get(path)).await.unwrap()).await
    }

    /// The metrics exposition text.
    pub async fn metrics_text(&self) -> String {
        let reply = self.metrics_get("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK);
        String::from_utf8(reply.body.to_vec()).unwrap()
    }

    /// One request over a fresh HTTP/2 connection.
    pub async fn http2(&self, mut request: Request<Full<Bytes>>) -> Reply {
        // HTTP/2 carries :scheme and :authority instead of a host header.
        let path = request.uri().path_and_query().unwrap().as_str().to_owned();
        *request.uri_mut() = format!("https://localhost{path}").parse().unwrap();
        request.headers_mut().remove("host");
        let tls = self.connect(b"h2").await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        Reply::from(sender.send_request(request).await.unwrap()).await
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A collected response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    async fn from(response: http::Response<hyper::body::Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// The `--dev` configuration on loopback port 0.
pub fn dev_config(upstreams: Vec<(String, String)>) -> Config {
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Config::dev(upstreams, loopback, loopback)
}

/// Polls `check` every 20 ms until it holds or `deadline` passes.
pub async fn eventually<F, Fut>(deadline: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > until {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Connects to `addr` over RA-TLS from the local address `local_ip` (port 0).
pub async fn connect_from(
    addr: SocketAddr,
    local_ip: &str,
    pin: &str,
    alpn: &[u8],
) -> TlsStream<TcpStream> {
    let config = client_config(verifier(pin), &[alpn]).unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(local_ip.parse().unwrap(), 0))
        .unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("RA-TLS handshake")
}

/// The RA-TLS verifier pinned to `pin`, simulated evidence allowed.
pub fn verifier(pin: &str) -> Arc<AttestedServerVerifier> {
    Arc::new(
        AttestedServerVerifier::new(Policy::from_pins([pin]).unwrap()).danger_allow_simulated(true),
    )
}

/// Connects to `addr` over RA-TLS.
pub async fn connect(addr: SocketAddr, pin: &str, alpn: &[u8]) -> TlsStream<TcpStream> {
    let config = client_config(verifier(pin), &[alpn]).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("RA-TLS handshake")
}

/// The certificate the server presented on `tls`.
pub fn peer_certificate(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// `POST path` with a JSON content type and `body`.
pub fn post_json(path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// `GET path`.
pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
