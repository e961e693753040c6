//! The upstreams of the soak: JSON-RPC servers on loopback whose behaviour the schedule
//! switches at run time, like the fault-injecting upstream of the adversarial test: healthy,
//! down (connections dropped without an answer), slow, garbage, or answering far more than the
//! gateway's response limit.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::value::RawValue;
use shroud_benches::harness::error::LoadError;
use tokio::net::TcpListener;

/// How an upstream behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers every call at once.
    Healthy = 0,
    /// Drops every connection without answering.
    Down = 1,
    /// Answers after [`SLOW`].
    Slow = 2,
    /// Answers `200 text/html` garbage.
    Garbage = 3,
    /// Answers a result of [`HUGE_BYTES`], past the gateway's response limit.
    Huge = 4,
}

impl Mode {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Down,
            2 => Self::Slow,
            3 => Self::Garbage,
            4 => Self::Huge,
            _ => Self::Healthy,
        }
    }
}

/// The delay of a slow upstream: well inside the gateway's per-upstream timeout.
const SLOW: Duration = Duration::from_secs(2);
/// The result size of a huge answer: past the default 32 MiB response limit.
const HUGE_BYTES: usize = 40 * 1024 * 1024;

/// A running upstream; stops with the runtime.
pub struct Upstream {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
}

impl Upstream {
    /// Binds 127.0.0.1 on a port the kernel picks.
    pub async fn start() -> Result<Self, LoadError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| LoadError::io("binding an upstream", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| LoadError::io("reading an upstream's address", e))?;
        let mode = Arc::new(AtomicU8::new(Mode::Healthy as u8));
        let huge = Bytes::from(format!("\"0x{}\"", "7".repeat(HUGE_BYTES)));
        tokio::spawn(accept_loop(listener, Arc::clone(&mode), huge));
        Ok(Self { addr, mode })
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Switches the behaviour.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }
}

async fn accept_loop(listener: TcpListener, mode: Arc<AtomicU8>, huge: Bytes) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if Mode::from_u8(mode.load(Ordering::Relaxed)) == Mode::Down {
            drop(stream);
            continue;
        }
        let mode = Arc::clone(&mode);
        let huge = huge.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let mode = Mode::from_u8(mode.load(Ordering::Relaxed));
                answer(request, mode, huge.clone())
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

async fn answer(
    request: Request<Incoming>,
    mode: Mode,
    huge: Bytes,
) -> Result<Response<Body>, std::io::Error> {
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(|_| std::io::Error::other("request body"))?
        .to_bytes();
    let result: Bytes = match mode {
        // An error from the service makes hyper close the connection without an answer.
        Mode::Down => return Err(std::io::Error::other("down")),
        Mode::Garbage => {
            let mut response = Response::new(full(Bytes::from_static(
                b"<html><body>502 Bad Gateway</body></html>",
            )));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html"),
            );
            return Ok(response);
        }
        Mode::Slow => {
            tokio::time::sleep(SLOW).await;
            Bytes::from_static(br#""0x3635c9adc5dea00000""#)
        }
        Mode::Huge => return Ok(json_response(huge_answer(&body, huge))),
        Mode::Healthy => Bytes::from_static(br#""0x3635c9adc5dea00000""#),
    };
    let Some(json) = respond(&body, &result) else {
        let mut response = Response::new(full(Bytes::new()));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(response);
    };
    Ok(json_response(full(json)))
}

/// One call answered with the shared huge result, streamed without copying it.
fn huge_answer(body: &[u8], huge: Bytes) -> Body {
    let id = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(serde_json::Value::Null);
    let frames = [
        Bytes::from(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"#)),
        huge,
        Bytes::from_static(b"}"),
    ]
    .map(|data| Ok::<_, Infallible>(Frame::data(data)));
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

fn json_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Answers every call of `body` (one object or a batch) with `result` under its id;
/// `eth_chainId` (the gateway's health probe) with `0x1`.
fn respond(body: &[u8], result: &[u8]) -> Option<Vec<u8>> {
    let top: &RawValue = serde_json::from_slice(body).ok()?;
    let calls: Vec<&RawValue> = match top.get().as_bytes().first() {
        Some(b'[') => serde_json::from_str(top.get()).ok()?,
        _ => vec![top],
    };
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        #[serde(borrow)]
        method: &'a str,
    }
    let mut out = Vec::with_capacity(result.len() + 64 * calls.len());
    let batch = calls.len() > 1 || top.get().starts_with('[');
    if batch {
        out.push(b'[');
    }
    for (n, call) in calls.iter().enumerate() {
        let call: Call<'_> = serde_json::from_str(call.get()).ok()?;
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        out.extend_from_slice(call.id.map_or("null", RawValue::get).as_bytes());
        out.extend_from_slice(br#","result":"#);
        if call.method == "eth_chainId" {
            out.extend_from_slice(br#""0x1""#);
        } else {
            out.extend_from_slice(result);
        }
        out.push(b'}');
    }
    if batch {
        out.push(b']');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_every_call_under_its_id() {
        let one = respond(
            br#"{"jsonrpc":"2.0","id":7,"method":"eth_getBalance"}"#,
            b"1",
        )
        .unwrap();
        assert_eq!(one, br#"{"jsonrpc":"2.0","id":7,"result":1}"#);
        let batch = respond(
            br#"[{"jsonrpc":"2.0","id":"a","method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"x"}]"#,
            b"2",
        )
        .unwrap();
        assert_eq!(
            batch,
            br#"[{"jsonrpc":"2.0","id":"a","result":"0x1"},{"jsonrpc":"2.0","id":2,"result":2}]"#
        );
    }
}
