//! The load generator: closed loop, a fixed number of keep-alive connections (HTTP/1.1, or
//! HTTP/2 with several streams on each, or HTTP/3 over QUIC for `gateway-h3`); each stream
//! sends one JSON-RPC call, waits for the whole answer, checks it, sends the next. The same code
//! drives every target; only how a connection is opened differs. Connections are opened (and,
//! for the gateway, attested) before the clock starts, and a warm-up precedes the measured
//! window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use shroud_benches::harness::error::LoadError;

/// Largest latency the histograms hold: 60 s, in nanoseconds.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// One connection's sending half.
pub enum Sender {
    /// HTTP/1.1 over TCP (plain or TLS).
    Http1(http1::SendRequest<Full<Bytes>>),
    /// HTTP/2 over TCP (TLS with ALPN `h2`, or cleartext with prior knowledge); clones share
    /// the connection, each with its own streams.
    Http2(http2::SendRequest<Full<Bytes>>),
    /// HTTP/3 over QUIC; the connection is held so that it stays open.
    H3 {
        sender: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
        _connection: quinn::Connection,
    },
}

/// The HTTP version spoken over a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    /// HTTP/1.1, one request at a time per connection.
    One,
    /// HTTP/2, requests multiplexed as streams of one connection.
    Two,
}

/// How to reach a target.
#[derive(Clone)]
pub enum Endpoint {
    /// Plain HTTP (the upstream itself); HTTP/2 with prior knowledge (h2c).
    Plain {
        /// Its address.
        addr: SocketAddr,
        /// The version it speaks there.
        http: Http,
    },
    /// TLS: with the attested verifier for the gateway (the handshake completes only when the
    /// attestation satisfies the pins), with an ordinary root store for nginx and HAProxy.
    Tls {
        /// Its address.
        addr: SocketAddr,
        /// A connector that trusts what the target must prove, offering `http`'s ALPN id.
        connector: tokio_rustls::TlsConnector,
        /// The name sent in SNI.
        server_name: ServerName<'static>,
        /// The version asked for in ALPN, and checked in the server's choice.
        http: Http,
    },
    /// QUIC with the attested verifier inside its handshake, then HTTP/3.
    Quic {
        /// The gateway's `[listen] h3` address.
        addr: SocketAddr,
        /// The client's UDP endpoint, shared by every connection of the run.
        endpoint: quinn::Endpoint,
        /// TLS 1.3 with the attested verifier, ALPN `h3`.
        config: quinn::ClientConfig,
    },
}

/// One row of the benchmark: a target and the call sent to it.
#[derive(Clone)]
pub struct Target {
    /// Its name in the report.
    pub name: &'static str,
    /// How to reach it.
    pub endpoint: Endpoint,
    /// The request path (`/eth` for the gateway).
    pub path: &'static str,
    /// The JSON-RPC method and params every request carries.
    pub call: Call,
    /// The proxy process whose CPU time the phase is charged (none for `direct`).
    pub proxy: Option<u32>,
}

/// The call sent, over and over, with a new id each time.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The method.
    pub method: &'static str,
    /// The params, as JSON.
    pub params: &'static str,
}

/// How long and how wide to drive a target.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Concurrent connections.
    pub connections: usize,
    /// Streams on each connection, one request in flight on each: 1 except over HTTP/2.
    pub streams: usize,
    /// Load before the measured window (connections warm, caches and pools filled).
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
}

/// What one phase on one target measured.
pub struct Outcome {
    /// Latency of each successful request in the window, nanoseconds.
    pub latency: Histogram<u64>,
    /// Requests in the window that got a JSON-RPC result.
    pub ok: u64,
    /// Requests in the window that failed (HTTP error, JSON-RPC error, broken connection).
    pub failed: u64,
    /// Requests answered in the whole phase, warm-up included.
    pub total: u64,
    /// The window.
    pub window: Duration,
}

impl Outcome {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// Pools `other` (another round of the same target) into this outcome.
    pub fn merge(&mut self, other: &Outcome) -> Result<(), LoadError> {
        self.latency
            .add(&other.latency)
            .map_err(|e| LoadError::Usage(format!("merging latency histograms: {e}")))?;
        self.ok += other.ok;
        self.failed += other.failed;
        self.total += other.total;
        self.window += other.window;
        Ok(())
    }
}

impl Endpoint {
    /// Opens a connection ready for requests.
    pub async fn connect(&self, target: &str) -> Result<Sender, LoadError> {
        let error = |reason: String| LoadError::Connect {
            target: target.to_owned(),
            reason,
        };
        match self {
            Self::Plain { addr, http } => {
                let tcp = tcp(*addr).await.map_err(|e| error(e.to_string()))?;
                handshake(tcp, *http).await.map_err(error)
            }
            Self::Tls {
                addr,
                connector,
                server_name,
                http,
            } => {
                let tcp = tcp(*addr).await.map_err(|e| error(e.to_string()))?;
                let tls = connector
                    .connect(server_name.clone(), tcp)
                    .await
                    .map_err(|e| error(e.to_string()))?;
                // A server that picked HTTP/1.1 would read the HTTP/2 preface as garbage.
                let chosen = tls.get_ref().1.alpn_protocol();
                if *http == Http::Two && chosen != Some(b"h2") {
                    return Err(error(format!(
                        "the server chose ALPN {:?}, not h2",
                        chosen.map(String::from_utf8_lossy)
                    )));
                }
                handshake(tls, *http).await.map_err(error)
            }
            Self::Quic {
                addr,
                endpoint,
                config,
            } => {
                let connecting = endpoint
                    .connect_with(config.clone(), *addr, &addr.ip().to_string())
                    .map_err(|e| error(e.to_string()))?;
                let connection = connecting.await.map_err(|e| error(e.to_string()))?;
                let (mut driver, sender) =
                    h3::client::new(h3_quinn::Connection::new(connection.clone()))
                        .await
                        .map_err(|e| error(e.to_string()))?;
                tokio::spawn(async move {
                    let _ = driver.wait_idle().await;
                });
                Ok(Sender::H3 {
                    sender,
                    _connection: connection,
                })
            }
        }
    }

    /// The address requests name in `Host` / `:authority`.
    fn addr(&self) -> SocketAddr {
        match self {
            Self::Plain { addr, .. } | Self::Tls { addr, .. } | Self::Quic { addr, .. } => *addr,
        }
    }

    /// The URI scheme of `:scheme`.
    fn scheme(&self) -> &'static str {
        match self {
            Self::Plain { .. } => "http",
            Self::Tls { .. } | Self::Quic { .. } => "https",
        }
    }
}

impl Sender {
    /// Another handle on the same connection, for another stream: over HTTP/2 only.
    fn share(&self) -> Option<Self> {
        match self {
            Self::Http2(sender) => Some(Self::Http2(sender.clone())),
            Self::Http1(_) | Self::H3 { .. } => None,
        }
    }
}

async fn tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let tcp = TcpStream::connect(addr).await?;
    // One small write per request, like every JSON-RPC client; Nagle would only add delay.
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

async fn handshake<S>(io: S, http: Http) -> Result<Sender, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match http {
        Http::One => {
            let (sender, connection) = http1::handshake(TokioIo::new(io))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Sender::Http1(sender))
        }
        Http::Two => {
            // hyper's defaults: flow-control windows far above one small call and answer.
            let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Sender::Http2(sender))
        }
    }
}

/// Drives `target` through `phase` and measures the window.
pub async fn run(target: &Target, phase: Phase) -> Result<Outcome, LoadError> {
    let mut senders = Vec::with_capacity(phase.connections);
    for _ in 0..phase.connections {
        senders.push(target.endpoint.connect(target.name).await?);
    }
    let start = Instant::now();
    let window = Window {
        from: start + phase.warmup,
        until: start + phase.warmup + phase.measure,
    };
    let shared = Arc::new(target.clone());
    let mut workers = JoinSet::new();
    for sender in senders {
        for _ in 1..phase.streams {
            let stream = sender.share().ok_or_else(|| {
                LoadError::Usage(format!(
                    "{}: several streams per connection need HTTP/2",
                    target.name
                ))
            })?;
            workers.spawn(worker(Arc::clone(&shared), stream, window, histogram()?));
        }
        workers.spawn(worker(Arc::clone(&shared), sender, window, histogram()?));
    }
    let mut outcome = Outcome {
        latency: histogram()?,
        ok: 0,
        failed: 0,
        total: 0,
        window: phase.measure,
    };
    while let Some(done) = workers.join_next().await {
        let part = done.map_err(|e| LoadError::Usage(format!("a load worker failed: {e}")))?;
        outcome
            .latency
            .add(&part.latency)
            .map_err(|e| LoadError::Usage(format!("merging latency histograms: {e}")))?;
        outcome.ok += part.ok;
        outcome.failed += part.failed;
        outcome.total += part.total;
    }
    Ok(outcome)
}

/// Opens `count` attested connections to `endpoint`, `parallel` handshakes at a time, and
/// returns them open and idle.
pub async fn open_idle(
    endpoint: &Endpoint,
    count: usize,
    parallel: usize,
) -> Result<Vec<Sender>, LoadError> {
    let mut open = Vec::with_capacity(count);
    let mut pending = JoinSet::new();
    for _ in 0..count {
        if pending.len() >= parallel
            && let Some(done) = pending.join_next().await
        {
            open.push(joined(done)?);
        }
        let endpoint = endpoint.clone();
        pending.spawn(async move { endpoint.connect("gateway (idle)").await });
    }
    while let Some(done) = pending.join_next().await {
        open.push(joined(done)?);
    }
    Ok(open)
}

/// Makes one `call` on each of `senders`, one after the other, so that the connections are
/// idle *after* a request, as a wallet's keep-alive connection is between its calls.
pub async fn call_each(
    endpoint: &Endpoint,
    call: Call,
    senders: &mut [Sender],
) -> Result<(), LoadError> {
    let target = Target {
        name: "gateway (idle)",
        endpoint: endpoint.clone(),
        path: "/eth",
        call,
        proxy: None,
    };
    let head = Head::new(&target);
    for (id, sender) in (1..).zip(senders.iter_mut()) {
        exchange(sender, head.request(&call, id, false))
            .await
            .map_err(|()| LoadError::Usage("a call on an idle connection failed".to_owned()))?;
    }
    Ok(())
}

fn joined(
    done: Result<Result<Sender, LoadError>, tokio::task::JoinError>,
) -> Result<Sender, LoadError> {
    done.map_err(|e| LoadError::Usage(format!("a connecting task failed: {e}")))?
}

#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

async fn worker(
    target: Arc<Target>,
    mut sender: Sender,
    window: Window,
    latency: Histogram<u64>,
) -> Outcome {
    let mut outcome = Outcome {
        latency,
        ok: 0,
        failed: 0,
        total: 0,
        window: window.until - window.from,
    };
    let head = Head::new(&target);
    let mut id = 0_u64;
    while Instant::now() < window.until {
        id += 1;
        let request = head.request(&target.call, id, matches!(sender, Sender::Http2(_)));
        let sent = Instant::now();
        let answer = exchange(&mut sender, request).await;
        let done = Instant::now();
        let counted = sent >= window.from && done <= window.until;
        if answer.is_ok() {
            outcome.total += 1;
        }
        match answer {
            Ok(()) if counted => {
                let nanos = u64::try_from((done - sent).as_nanos()).unwrap_or(MAX_LATENCY_NS);
                outcome.latency.saturating_record(nanos);
                outcome.ok += 1;
            }
            Ok(()) => {}
            Err(()) => {
                if counted {
                    outcome.failed += 1;
                }
                // The connection may be gone: open another (over HTTP/2, one for this stream
                // alone), or stop this worker.
                match target.endpoint.connect(target.name).await {
                    Ok(fresh) => sender = fresh,
                    Err(_) => break,
                }
            }
        }
    }
    outcome
}

/// What every request of a worker shares, built once: the path with `Host` for HTTP/1.1
/// (and HTTP/3, which turns it into `:authority`), the absolute URI HTTP/2's pseudo-headers
/// come from.
struct Head {
    path: http::Uri,
    host: Option<http::HeaderValue>,
    absolute: Option<http::Uri>,
}

impl Head {
    fn new(target: &Target) -> Self {
        let authority = target.endpoint.addr().to_string();
        let absolute = format!("{}://{authority}{}", target.endpoint.scheme(), target.path);
        Self {
            path: http::Uri::from_static(target.path),
            host: http::HeaderValue::from_str(&authority).ok(),
            absolute: absolute.parse().ok(),
        }
    }

    fn request(&self, call: &Call, id: u64, http2: bool) -> http::Request<Full<Bytes>> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{}","params":{}}}"#,
            call.method, call.params
        );
        let mut request = http::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = http::Method::POST;
        match (&self.absolute, http2) {
            (Some(absolute), true) => {
                *request.version_mut() = http::Version::HTTP_2;
                *request.uri_mut() = absolute.clone();
            }
            _ => {
                *request.uri_mut() = self.path.clone();
                if let Some(host) = &self.host {
                    request
                        .headers_mut()
                        .insert(http::header::HOST, host.clone());
                }
            }
        }
        request.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        request
    }
}

/// One request and its whole answer: HTTP 200 with a JSON-RPC `result`.
async fn exchange(sender: &mut Sender, request: http::Request<Full<Bytes>>) -> Result<(), ()> {
    let (ok, body) = match sender {
        Sender::Http1(sender) => {
            sender.ready().await.map_err(|_| ())?;
            answer(sender.send_request(request).await).await?
        }
        Sender::Http2(sender) => {
            sender.ready().await.map_err(|_| ())?;
            answer(sender.send_request(request).await).await?
        }
        Sender::H3 { sender, .. } => h3_exchange(sender, request).await?,
    };
    if ok && body.windows(9).any(|w| w == br#""result":"#) {
        Ok(())
    } else {
        Err(())
    }
}

/// Whether a hyper response is 200, and its whole body.
async fn answer(
    response: hyper::Result<http::Response<hyper::body::Incoming>>,
) -> Result<(bool, Bytes), ()> {
    let response = response.map_err(|_| ())?;
    let ok = response.status() == http::StatusCode::OK;
    let body = response.into_body().collect().await.map_err(|_| ())?;
    Ok((ok, body.to_bytes()))
}

/// `request` over HTTP/3: `:authority` from its `Host`, the body in one DATA frame.
async fn h3_exchange(
    sender: &mut h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    request: http::Request<Full<Bytes>>,
) -> Result<(bool, Bytes), ()> {
    use bytes::Buf as _;
    let (mut parts, body) = request.into_parts();
    let authority = parts
        .headers
        .remove(http::header::HOST)
        .and_then(|host| host.to_str().ok().map(str::to_owned))
        .ok_or(())?;
    parts.uri = format!("https://{authority}{}", parts.uri.path())
        .parse()
        .map_err(|_| ())?;
    let body = body.collect().await.map_err(|_| ())?.to_bytes();
    let mut stream = sender
        .send_request(http::Request::from_parts(parts, ()))
        .await
        .map_err(|_| ())?;
    stream.send_data(body).await.map_err(|_| ())?;
    stream.finish().await.map_err(|_| ())?;
    let response = stream.recv_response().await.map_err(|_| ())?;
    let mut answer = Vec::new();
    while let Some(mut chunk) = stream.recv_data().await.map_err(|_| ())? {
        let len = chunk.remaining();
        answer.extend_from_slice(&chunk.copy_to_bytes(len));
    }
    Ok((
        response.status() == http::StatusCode::OK,
        Bytes::from(answer),
    ))
}

/// Opens `count` connections one after the other, each with an endpoint from `fresh()` (a new
/// verifier: no cached verdict, so each is a full handshake plus verification), and returns the
/// histogram of connect times (handshake, verification, and HTTP's own set-up: nothing for
/// HTTP/1.1, the control streams for HTTP/3).
pub async fn handshakes(
    target: &str,
    count: usize,
    fresh: impl Fn() -> Result<Endpoint, LoadError>,
) -> Result<Histogram<u64>, LoadError> {
    let mut times = histogram()?;
    for _ in 0..count {
        let endpoint = fresh()?;
        let started = Instant::now();
        let sender = endpoint.connect(target).await?;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(MAX_LATENCY_NS);
        times.saturating_record(nanos);
        drop(sender);
    }
    Ok(times)
}

/// Three significant figures from 1 ns to 60 s.
fn histogram() -> Result<Histogram<u64>, LoadError> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
        .map_err(|e| LoadError::Usage(format!("creating a latency histogram: {e}")))
}
