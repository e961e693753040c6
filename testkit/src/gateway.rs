//! A Shroud gateway under test, and a real RA-TLS client to talk to it.
//!
//! [`TestGateway`] is one harness for the gateway's and the SDK's integration tests: a gateway
//! running in this process ([`TestGateway::in_process`]) or the `shroud-gateway` binary
//! ([`TestGateway::spawn`]), with HTTP/1.1, HTTP/2 and metrics requests over fresh connections.
//!
//! It knows no Shroud type: `shroud-ra-tls` and `shroud-gateway` dev-depend on this crate, so
//! depending on either would make a crate dev-depend on one that depends on it. What is
//! gateway-specific comes from the caller instead: the address and measurement the gateway
//! reports, its certificate resolver (`R`, kept for the tests that rotate certificates), the
//! RA-TLS client configuration pinned to its measurement, and the future that runs it. Each
//! crate's `tests/common` turns a `Gateway` into a [`Started`] in a few lines.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness: a failed setup is a failed test"
)]

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncBufReadExt as _;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// What an in-process gateway reports once bound, for [`TestGateway::in_process`].
pub struct Started<R> {
    /// The HTTPS listener's address.
    pub addr: SocketAddr,
    /// The metrics listener's address.
    pub metrics_addr: SocketAddr,
    /// The simulated measurement, in hex.
    pub measurement: String,
    /// The gateway's certificate resolver.
    pub resolver: R,
    /// Makes the RA-TLS client configuration pinned to a measurement (hex).
    pub client_tls: ClientTls,
}

/// Makes the RA-TLS client configuration pinned to a measurement (hex), without ALPN. Called for
/// every connection, so each gets a fresh verifier (an empty verdict cache), as a client
/// connecting for the first time would.
pub type ClientTls = fn(&str) -> ClientConfig;

/// A running gateway (in this process, or the `shroud-gateway` binary) and what a test needs
/// to talk to it. Dropping it asks an in-process gateway to stop and abandons its task; a
/// spawned binary is killed.
pub struct TestGateway<R = ()> {
    /// The HTTPS listener's address.
    pub addr: SocketAddr,
    /// The metrics listener's address.
    pub metrics_addr: SocketAddr,
    /// The simulated measurement, in hex.
    pub measurement: String,
    /// The in-process gateway's certificate resolver (`R::default()` for the binary).
    pub resolver: R,
    client_tls: ClientTls,
    running: Running,
}

/// How the gateway runs.
enum Running {
    /// In this process: the shutdown signal and the task of the gateway's `run` future.
    InProcess {
        shutdown: Option<oneshot::Sender<()>>,
        task: Option<JoinHandle<Result<(), String>>>,
    },
    /// The binary, with its configuration and stderr in a temporary directory.
    Process {
        child: tokio::process::Child,
        dir: tempfile::TempDir,
    },
}

/// The shutdown future an in-process gateway's `run` gets: resolves when the test calls
/// [`TestGateway::stop`] or drops the gateway.
pub struct Stop(oneshot::Receiver<()>);

impl Future for Stop {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A dropped sender (the harness is gone) is a shutdown too.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl<R> TestGateway<R> {
    /// Runs a bound gateway in this process: spawns `run(stop)`, where `stop` resolves at
    /// [`TestGateway::stop`] or on drop. Needs a Tokio runtime.
    pub fn in_process<Fut, E>(started: Started<R>, run: impl FnOnce(Stop) -> Fut) -> Self
    where
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let (tx, rx) = oneshot::channel();
        let run = run(Stop(rx));
        let task = tokio::spawn(async move { run.await.map_err(|e| e.to_string()) });
        Self {
            addr: started.addr,
            metrics_addr: started.metrics_addr,
            measurement: started.measurement,
            resolver: started.resolver,
            client_tls: started.client_tls,
            running: Running::InProcess {
                shutdown: Some(tx),
                task: Some(task),
            },
        }
    }

    /// Starts the gateway binary `bin` with the TOML `config_toml` (listeners on loopback port
    /// 0), through `sh -c` with `shell` run first (e.g. `ulimit -n 256`), talking to it with
    /// `client_tls` for the measurement it prints. Panics when it does not
    /// print its start-up lines within 60 s.
    pub async fn spawn(bin: &str, config_toml: &str, shell: &str, client_tls: ClientTls) -> Self
    where
        R: Default,
    {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, config_toml).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{shell}\nexec \"$0\" --config \"$1\""))
            .arg(bin)
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
        let (first, second) = tokio::time::timeout(Duration::from_secs(60), read)
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
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            addr,
            metrics_addr: metrics_addr.expect("the metrics address is logged"),
            measurement,
            resolver: R::default(),
            client_tls,
            running: Running::Process { child, dir },
        }
    }

    /// The binary's stderr so far, without terminal colours.
    pub fn stderr(&self) -> String {
        strip_ansi(&std::fs::read_to_string(self.stderr_path()).unwrap_or_default())
    }

    fn stderr_path(&self) -> PathBuf {
        let Running::Process { dir, .. } = &self.running else {
            panic!("a spawned gateway");
        };
        dir.path().join("stderr")
    }

    /// The binary's process id.
    pub fn pid(&self) -> u32 {
        let Running::Process { child, .. } = &self.running else {
            panic!("a spawned gateway");
        };
        child.id().unwrap()
    }

    /// Whether the binary is still running.
    pub fn is_running(&mut self) -> bool {
        let Running::Process { child, .. } = &mut self.running else {
            panic!("a spawned gateway");
        };
        matches!(child.try_wait(), Ok(None))
    }

    /// Asks the gateway to stop and waits for `run` to return, with its error as text
    /// (in-process gateways only).
    pub async fn stop(mut self) -> Result<(), String> {
        let Running::InProcess { shutdown, task } = &mut self.running else {
            panic!("an in-process gateway");
        };
        if let Some(tx) = shutdown.take() {
            let _ = tx.send(());
        }
        task.take().unwrap().await.unwrap()
    }

    /// A call to chain `eth` over a fresh HTTP/1.1 connection; the parsed JSON answer.
    pub async fn call(&self, body: &str) -> serde_json::Value {
        self.http1(post_json("/eth", body)).await.json()
    }

    /// The pin for this gateway.
    pub fn pin(&self) -> String {
        simulated_pin(&self.measurement)
    }

    /// The URL of chain `eth`.
    pub fn url(&self) -> String {
        format!("https://{}/eth", self.addr)
    }

    /// The measurement as bytes.
    pub fn measurement_bytes(&self) -> Vec<u8> {
        hex::decode(&self.measurement).unwrap()
    }

    /// The measurement as the simulated attester takes it.
    pub fn measurement_array(&self) -> [u8; 48] {
        self.measurement_bytes().try_into().unwrap()
    }

    /// An RA-TLS connection with `alpn`, verified against the pin.
    pub async fn connect(&self, alpn: &[u8]) -> TlsStream<TcpStream> {
        connect(self.addr, (self.client_tls)(&self.measurement), alpn).await
    }

    /// An RA-TLS connection with `alpn` from the local address `local_ip`, verified against the
    /// pin.
    pub async fn connect_from(&self, local_ip: &str, alpn: &[u8]) -> TlsStream<TcpStream> {
        let tls = (self.client_tls)(&self.measurement);
        connect_from(self.addr, local_ip, tls, alpn).await
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
        let tls = self.connect_from(local_ip, b"http/1.1").await;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        Reply::from(sender.send_request(request).await.unwrap()).await
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
}

impl<R> Drop for TestGateway<R> {
    fn drop(&mut self) {
        if let Running::InProcess { shutdown, task } = &mut self.running {
            if let Some(tx) = shutdown.take() {
                let _ = tx.send(());
            }
            if let Some(task) = task.take() {
                task.abort();
            }
        }
    }
}

/// A collected response.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
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

    /// The body as JSON; panics, showing the body, when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// The pin for a simulated `measurement` (hex).
pub fn simulated_pin(measurement: &str) -> String {
    format!("simulated:measurement={measurement}")
}

/// Polls `check` every 20 ms until it holds or `deadline` passes.
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connects to `addr` with `tls` (its ALPN replaced by `alpn`), as `localhost`.
pub async fn connect(addr: SocketAddr, tls: ClientConfig, alpn: &[u8]) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    handshake(tcp, tls, alpn).await
}

/// Connects to `addr` from the local address `local_ip` (port 0) with `tls` (its ALPN replaced
/// by `alpn`), as `localhost`.
pub async fn connect_from(
    addr: SocketAddr,
    local_ip: &str,
    tls: ClientConfig,
    alpn: &[u8],
) -> TlsStream<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(local_ip.parse().unwrap(), 0))
        .unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    handshake(tcp, tls, alpn).await
}

async fn handshake(tcp: TcpStream, mut tls: ClientConfig, alpn: &[u8]) -> TlsStream<TcpStream> {
    tls.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("RA-TLS handshake")
}

/// The certificate the server presented on `tls`.
pub fn peer_certificate(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("a peer certificate")
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
