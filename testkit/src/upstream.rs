//! A loopback JSON-RPC upstream that records every request it receives.
//!
//! [`RecordingUpstream`] is a plain HTTP/1.1 server on `127.0.0.1:0`. It keeps the method,
//! path, headers and body of every request, so tests can assert what a gateway sent upstream,
//! and answers JSON-RPC: by default `eth_blockNumber` → `"0x10"`, `eth_chainId` → `"0x1"` and
//! anything else → `"0x0"`, echoing each call's `id`, for single calls and batches alike.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Computes the whole response body from the whole parsed request body.
pub type Responder = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

/// One request as the upstream received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The request path (with the query, if any).
    pub path: String,
    /// Every header in received order, names lower case; non-UTF-8 values are lossily converted.
    pub headers: Vec<(String, String)>,
    /// The body bytes, exactly as received.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A recording JSON-RPC upstream on a loopback port. Stops serving when dropped.
pub struct RecordingUpstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RecordingUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingUpstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RecordingUpstream {
    /// Starts an upstream with the default answers ([`default_response`]).
    pub async fn start() -> Self {
        Self::start_with(default_response).await
    }

    /// Starts an upstream whose answer is `responder(parsed request body)`. A body that is not
    /// JSON is answered with a JSON-RPC parse error without calling the responder.
    ///
    /// # Panics
    /// When no loopback port can be bound (this is a test helper).
    #[expect(
        clippy::panic,
        reason = "a test helper without a loopback port cannot do its job"
    )]
    pub async fn start_with<F>(responder: F) -> Self
    where
        F: Fn(&Value) -> Value + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding the recording upstream: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("recording upstream address: {e}"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop, stop_rx) = watch::channel(false);
        let responder: Responder = Arc::new(responder);
        let task = tokio::spawn(serve(listener, Arc::clone(&requests), responder, stop_rx));
        Self {
            addr,
            requests,
            stop,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// The default answers: `eth_blockNumber` → `"0x10"`, `eth_chainId` → `"0x1"`, anything else →
/// `"0x0"`, each echoing the call's `id` (`null` when absent); a batch gets an array of answers
/// in order. Usable as a fallback inside custom responders.
pub fn default_response(request: &Value) -> Value {
    match request {
        Value::Array(calls) => Value::Array(calls.iter().map(answer_one).collect()),
        call => answer_one(call),
    }
}

fn answer_one(call: &Value) -> Value {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let result = match call.get("method").and_then(Value::as_str) {
        Some("eth_blockNumber") => "0x10",
        Some("eth_chainId") => "0x1",
        _ => "0x0",
    };
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

async fn serve(
    listener: TcpListener,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    responder: Responder,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = stop.changed() => return,
        };
        let requests = Arc::clone(&requests);
        let responder = Arc::clone(&responder);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let requests = Arc::clone(&requests);
                let responder = Arc::clone(&responder);
                async move { Ok::<_, Infallible>(handle(request, &requests, &responder).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {}
            }
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    requests: &Mutex<Vec<RecordedRequest>>,
    responder: &Responder,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(recorded);
    let answer = match serde_json::from_slice::<Value>(&body) {
        Ok(value) => responder(&value),
        Err(_) => json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": -32700, "message": "parse error" },
        }),
    };
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    // Provider-style headers the gateway must not relay to its clients.
    response
        .headers_mut()
        .insert("x-upstream-secret", http::HeaderValue::from_static("leak"));
    response.headers_mut().insert(
        http::header::SET_COOKIE,
        http::HeaderValue::from_static("upstream=1"),
    );
    response
}
