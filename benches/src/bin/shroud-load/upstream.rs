//! The node behind every target: a JSON-RPC server on loopback that answers each call at once
//! with a fixed, realistic result. It is deliberately cheap, so that the figures measure what
//! sits in front of it, and it runs on its own runtime, so that the load generator's tasks do
//! not queue behind it. It speaks HTTP/1.1 (what every proxy's upstream side speaks) and, on a
//! second port, HTTP/2 with prior knowledge (h2c, for `direct-h2`), so that the HTTP/1.1 port
//! never pays for telling the two apart.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use shroud_benches::harness::error::LoadError;

/// `eth_getBalance` of a funded account: 1000 ETH.
const BALANCE: &str = r#""0x3635c9adc5dea00000""#;
/// `eth_chainId` of mainnet, also what the gateway's health checks ask.
const CHAIN_ID: &str = r#""0x1""#;

/// A running upstream; stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    h2c_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Binds 127.0.0.1 on two ports the kernel picks (HTTP/1.1, h2c) and serves on `threads`
    /// worker threads.
    pub fn start(threads: usize) -> Result<Self, LoadError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("upstream")
            .enable_all()
            .build()
            .map_err(|e| LoadError::io("starting the upstream's runtime", e))?;
        // Bound here, served on the upstream's own runtime (this may run inside another one).
        let (listener, addr) = bind()?;
        let (h2c_listener, h2c_addr) = bind()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("upstream".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let (Ok(listener), Ok(h2c_listener)) = (
                        TcpListener::from_std(listener),
                        TcpListener::from_std(h2c_listener),
                    ) else {
                        return;
                    };
                    tokio::select! {
                        () = accept_loop(listener, false) => {}
                        () = accept_loop(h2c_listener, true) => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(|e| LoadError::io("spawning the upstream thread", e))?;
        Ok(Self {
            addr,
            h2c_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it serves HTTP/1.1.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it serves HTTP/2 with prior knowledge.
    pub fn h2c_addr(&self) -> SocketAddr {
        self.h2c_addr
    }
}

fn bind() -> Result<(std::net::TcpListener, SocketAddr), LoadError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|e| LoadError::io("binding the upstream", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| LoadError::io("reading the upstream's address", e))?;
    Ok((listener, addr))
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, h2c: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        stream.set_nodelay(true).ok();
        let io = TokioIo::new(stream);
        tokio::spawn(async move {
            let _ = if h2c {
                http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service_fn(answer))
                    .await
            } else {
                http1::Builder::new()
                    .serve_connection(io, service_fn(answer))
                    .await
            };
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    let Some(json) = respond(&body) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let mut response = Response::new(Full::new(Bytes::from(json)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

/// The answer to a single call or a batch; `None` for anything that is not JSON-RPC.
fn respond(body: &[u8]) -> Option<String> {
    if let Ok(calls) = serde_json::from_slice::<Vec<Call<'_>>>(body) {
        let answers: Vec<String> = calls.iter().map(Call::answer).collect();
        return Some(format!("[{}]", answers.join(",")));
    }
    serde_json::from_slice::<Call<'_>>(body)
        .ok()
        .map(|call| call.answer())
}

/// What the upstream reads of a call: its id, echoed raw, and its method.
#[derive(serde::Deserialize)]
struct Call<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    method: &'a str,
}

impl Call<'_> {
    fn answer(&self) -> String {
        let result = match self.method {
            "eth_chainId" => CHAIN_ID,
            _ => BALANCE,
        };
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
            self.id.get()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::respond;

    #[test]
    fn answers_calls_and_batches_with_their_ids() {
        assert_eq!(
            respond(br#"{"jsonrpc":"2.0","id":"a","method":"eth_getBalance","params":[]}"#)
                .as_deref(),
            Some(r#"{"jsonrpc":"2.0","id":"a","result":"0x3635c9adc5dea00000"}"#)
        );
        assert_eq!(
            respond(br#"[{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}]"#).as_deref(),
            Some(r#"[{"jsonrpc":"2.0","id":7,"result":"0x1"}]"#)
        );
        assert_eq!(respond(b"not json"), None);
    }
}
