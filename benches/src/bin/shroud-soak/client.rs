//! Clients of the soak: the steady ones whose every request must be answered, and the
//! flooders of the adversarial test, each from its own loopback address over real RA-TLS.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

type Sender = SendRequest<Full<Bytes>>;

/// How long a steady request may take before it counts as lost: longer than the gateway's
/// request deadline, so a gateway that keeps its promises never lets one run out.
const ANSWER_DEADLINE: Duration = Duration::from_secs(45);

/// How the gateway is reached: its address and an attested TLS connector.
#[derive(Clone)]
pub struct Gateway {
    /// The RA-TLS listener.
    pub addr: SocketAddr,
    /// Verifies the attestation against the pin.
    pub connector: tokio_rustls::TlsConnector,
}

impl Gateway {
    /// An attested HTTP/1.1 connection from `local` (a loopback address).
    pub async fn connect(&self, local: IpAddr) -> Result<Sender, String> {
        let tcp = tcp_from(local, self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let tls = self
            .connector
            .connect(ServerName::from(self.addr.ip()), tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

async fn tcp_from(local: IpAddr, remote: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local, 0))?;
    let tcp = socket.connect(remote).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// What the steady clients saw.
#[derive(Debug, Default)]
pub struct Counts {
    /// Answered with a `result`.
    pub ok: AtomicU64,
    /// Answered with a JSON-RPC error object (a clear error).
    pub error: AtomicU64,
    /// Refused with an HTTP error carrying a JSON-RPC error (a clear refusal).
    pub refused: AtomicU64,
    /// No answer, a broken connection, or an answer that is not JSON-RPC.
    pub lost: AtomicU64,
    /// Why requests were lost, counted.
    pub lost_reasons: Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    /// Every request sent so far.
    pub fn total(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.error.load(Ordering::Relaxed)
            + self.refused.load(Ordering::Relaxed)
            + self.lost.load(Ordering::Relaxed)
    }

    fn lose(&self, reason: String) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        *self
            .lost_reasons
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(reason)
            .or_default() += 1;
    }
}

/// What a request's answer was.
enum Verdict {
    Ok,
    Error,
    Refused,
    Lost(String),
}

fn request(body: impl Into<Bytes>) -> http::Request<Full<Bytes>> {
    let mut request = http::Request::new(Full::new(body.into()));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static("/eth");
    let headers = request.headers_mut();
    headers.insert(
        http::header::HOST,
        http::HeaderValue::from_static("localhost"),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    request
}

async fn exchange(sender: &mut Sender, body: impl Into<Bytes>) -> Verdict {
    let run = async {
        sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let response = sender
            .send_request(request(body))
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("answer body: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = match tokio::time::timeout(ANSWER_DEADLINE, run).await {
        Err(_) => return Verdict::Lost(format!("no answer within {ANSWER_DEADLINE:?}")),
        Ok(Err(reason)) => return Verdict::Lost(reason),
        Ok(Ok(answer)) => answer,
    };
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Verdict::Lost(format!("HTTP {status} with a body that is not JSON"));
    };
    let has_code = answer
        .get("error")
        .and_then(|e| e.get("code"))
        .is_some_and(serde_json::Value::is_i64);
    match (status.as_u16(), answer.get("result").is_some(), has_code) {
        (200, true, false) => Verdict::Ok,
        (200, false, true) => Verdict::Error,
        (400..=599, false, true) => Verdict::Refused,
        _ => Verdict::Lost(format!("HTTP {status} with an unexpected JSON body")),
    }
}

/// One steady client connection: a call every `interval` until `stop`, every answer judged.
pub async fn steady(
    gateway: Gateway,
    interval: Duration,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) {
    let local = IpAddr::from([127, 0, 0, 1]);
    let mut sender = None;
    let mut id = 0_u64;
    let mut next = Instant::now();
    while !*stop.borrow() {
        if sender.is_none() {
            match gateway.connect(local).await {
                Ok(fresh) => sender = Some(fresh),
                Err(reason) => {
                    counts.lose(format!("connect: {reason}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let Some(open) = sender.as_mut() else {
            continue;
        };
        id += 1;
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_getBalance","params":["0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1","latest"]}}"#
        );
        match exchange(open, body).await {
            Verdict::Ok => {
                counts.ok.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Error => {
                counts.error.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Refused => {
                counts.refused.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Lost(reason) => {
                counts.lose(reason);
                sender = None;
            }
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            tokio::select! {
                () = tokio::time::sleep(next - now) => {}
                _ = stop.changed() => {}
            }
        } else {
            next = now;
        }
    }
}

/// What the flooders saw (none of it counts as lost: they are the attack).
#[derive(Debug, Default)]
pub struct FloodCounts {
    /// Requests that got any JSON-RPC answer (mostly refusals).
    pub answered: AtomicU64,
    /// Requests or connections the gateway cut off.
    pub cut_off: AtomicU64,
    /// Idle sockets opened.
    pub idle_sockets: AtomicU64,
}

/// Floods the gateway while `active` is true: idle sockets that never send a byte from
/// 127.0.0.2, 10 000-level nested bodies from 127.0.0.3, batches of 100 calls from 127.0.0.4
/// (over the rate limit), 1 MB of invalid JSON from 127.0.0.5.
pub async fn flood(gateway: Gateway, counts: Arc<FloodCounts>, mut active: watch::Receiver<bool>) {
    loop {
        if active.wait_for(|on| *on).await.is_err() {
            return;
        }
        let mut idle = Vec::new();
        for _ in 0..300 {
            if let Ok(tcp) = tcp_from(IpAddr::from([127, 0, 0, 2]), gateway.addr).await {
                counts.idle_sockets.fetch_add(1, Ordering::Relaxed);
                idle.push(tcp);
            }
        }
        let deep = Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        ));
        let batch = Bytes::from(format!(
            "[{}]",
            (0..100)
                .map(|n| format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"eth_blockNumber"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        ));
        let junk = Bytes::from(format!("{{\"a\":{}", "1,".repeat(500_000)));
        let senders = [
            ([127, 0, 0, 3], deep),
            ([127, 0, 0, 4], batch.clone()),
            ([127, 0, 0, 4], batch),
            ([127, 0, 0, 5], junk),
        ]
        .map(|(local, body)| {
            let gateway = gateway.clone();
            let counts = Arc::clone(&counts);
            let active = active.clone();
            tokio::spawn(hammer(gateway, IpAddr::from(local), body, counts, active))
        });
        let _ = active.wait_for(|on| !*on).await;
        drop(idle);
        for sender in senders {
            let _ = sender.await;
        }
    }
}

async fn hammer(
    gateway: Gateway,
    local: IpAddr,
    body: Bytes,
    counts: Arc<FloodCounts>,
    active: watch::Receiver<bool>,
) {
    let mut sender = None;
    while *active.borrow() {
        if sender.is_none() {
            sender = gateway.connect(local).await.ok();
            if sender.is_none() {
                counts.cut_off.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        let Some(open) = sender.as_mut() else {
            continue;
        };
        match exchange(open, body.clone()).await {
            Verdict::Lost(_) => {
                counts.cut_off.fetch_add(1, Ordering::Relaxed);
                sender = None;
            }
            _ => {
                counts.answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
