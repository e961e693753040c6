//! A loopback JSON-RPC upstream that records every request it receives.
//!
//! [`RecordingUpstream`] is a plain HTTP/1.1 server on `127.0.0.1:0`. It keeps the method,
//! path, headers and body of every request, so tests can assert what a gateway sent upstream,
//! and answers JSON-RPC: by default `eth_blockNumber` → `"0x10"`, `eth_chainId` → `"0x1"` and
//! anything else → `"0x0"`, echoing each call's `id`, for single calls and batches alike.
//!
//! Fault injection (DESIGN §7): [`RecordingUpstream::kill`] stops it like a crashed node (the
//! port refuses connections, open connections are dropped), [`RecordingUpstream::set_delay`]
//! makes it slow, [`RecordingUpstream::set_garbage`] makes it answer non-JSON,
//! [`RecordingUpstream::set_status`] makes it answer an HTTP error, [`fixture_responder`] answers
//! recorded request/response pairs, and [`RecordingUpstream::start_raw`] answers exact bytes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

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

/// Computes the exact response bytes from the exact request bytes (for byte-for-byte replays).
pub type RawResponder = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

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
    faults: Arc<Faults>,
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

/// Faults switched on at run time, and what the test may want to count.
#[derive(Debug, Default)]
struct Faults {
    delay: Mutex<Option<Duration>>,
    garbage: AtomicBool,
    status: Mutex<Option<http::StatusCode>>,
    open_connections: AtomicUsize,
}

/// Counts a connection as open until dropped.
struct OpenConnection(Arc<Faults>);

impl OpenConnection {
    fn new(faults: &Arc<Faults>) -> Self {
        faults.open_connections.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(faults))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RecordingUpstream {
    /// Starts an upstream with the default answers ([`default_response`]).
    pub async fn start() -> Self {
        Self::start_with(default_response).await
    }

    /// Starts an upstream whose answer is `responder(parsed request body)`. A body that is not
    /// JSON is answered with a JSON-RPC parse error without calling the responder.
    pub async fn start_with<F>(responder: F) -> Self
    where
        F: Fn(&Value) -> Value + Send + Sync + 'static,
    {
        Self::start_raw(move |body: &[u8]| {
            let answer = match serde_json::from_slice::<Value>(body) {
                Ok(value) => responder(&value),
                Err(_) => json!({
                    "jsonrpc": "2.0",
                    "id": null,
                    "error": { "code": -32700, "message": "parse error" },
                }),
            };
            answer.to_string().into_bytes()
        })
        .await
    }

    /// Starts an upstream whose answer is exactly the bytes `responder(request body bytes)`,
    /// sent as `application/json`.
    ///
    /// # Panics
    /// When no loopback port can be bound (this is a test helper).
    #[expect(
        clippy::panic,
        reason = "a test helper without a loopback port cannot do its job"
    )]
    pub async fn start_raw<F>(responder: F) -> Self
    where
        F: Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding the recording upstream: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("recording upstream address: {e}"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop, stop_rx) = watch::channel(false);
        let responder: RawResponder = Arc::new(responder);
        let faults = Arc::new(Faults::default());
        let task = tokio::spawn(serve(
            listener,
            Arc::clone(&requests),
            responder,
            Arc::clone(&faults),
            stop_rx,
        ));
        Self {
            addr,
            requests,
            faults,
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

    /// Stops serving like a crashed node: the port refuses new connections and open ones are
    /// dropped.
    pub fn kill(&self) {
        let _ = self.stop.send(true);
    }

    /// Delays every answer by `delay` (`None`: answer at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        *self
            .faults
            .delay
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = delay;
    }

    /// Answers with HTTP `status` (and the usual body) instead of 200 (`None`: 200 again).
    pub fn set_status(&self, status: Option<http::StatusCode>) {
        *self
            .faults
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = status;
    }

    /// Connections from clients (the gateway's pool) open right now.
    pub fn open_connections(&self) -> usize {
        self.faults.open_connections.load(Ordering::Relaxed)
    }

    /// Answers `200 text/plain` garbage instead of JSON-RPC while `on`.
    pub fn set_garbage(&self, on: bool) {
        self.faults.garbage.store(on, Ordering::Relaxed);
    }

    /// The JSON bodies received so far that are not the gateway's health probes
    /// (`eth_chainId` sent on its own).
    pub fn calls(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter_map(RecordedRequest::json)
            .filter(|v| v.get("method").and_then(Value::as_str) != Some("eth_chainId"))
            .collect()
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
    responder: RawResponder,
    faults: Arc<Faults>,
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
        let faults = Arc::clone(&faults);
        let mut stop = stop.clone();
        let open = OpenConnection::new(&faults);
        tokio::spawn(async move {
            let _open = open;
            let service = service_fn(move |request| {
                let requests = Arc::clone(&requests);
                let responder = Arc::clone(&responder);
                let faults = Arc::clone(&faults);
                async move { Ok::<_, Infallible>(handle(request, &requests, &responder, &faults).await) }
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
    responder: &RawResponder,
    faults: &Faults,
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
    let delay = *faults.delay.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let status = *faults.status.lock().unwrap_or_else(PoisonError::into_inner);
    let mut response = if faults.garbage.load(Ordering::Relaxed) {
        Response::new(Full::new(Bytes::from_static(b"<html>502 garbage</html>")))
    } else {
        let mut response = Response::new(Full::new(Bytes::from(responder(&body))));
        response.headers_mut().insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    };
    if let Some(status) = status {
        *response.status_mut() = status;
    }
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

/// One recorded exchange: a request and the response a real node gave.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedExchange {
    /// The request (its `method` and `params` are what is matched).
    pub request: Value,
    /// The recorded response.
    pub response: Value,
}

/// A responder answering from `exchanges`: each call is matched on `method` and `params` (a
/// missing `params` counts as `[]`), and answered with the recorded response under the id the
/// call carried. Unmatched calls get a -32601 error; a batch gets an array in order.
pub fn fixture_responder(
    exchanges: Vec<RecordedExchange>,
) -> impl Fn(&Value) -> Value + Send + Sync + 'static {
    let params = |v: &Value| v.get("params").cloned().unwrap_or_else(|| json!([]));
    let table: Vec<(Value, Value, Value)> = exchanges
        .into_iter()
        .map(|e| {
            let method = e.request.get("method").cloned().unwrap_or(Value::Null);
            (method, params(&e.request), e.response)
        })
        .collect();
    move |request: &Value| {
        let answer = |call: &Value| {
            let id = call.get("id").cloned().unwrap_or(Value::Null);
            let method = call.get("method").cloned().unwrap_or(Value::Null);
            let wanted = params(call);
            let found = table
                .iter()
                .find(|(m, p, _)| *m == method && *p == wanted)
                .map(|(_, _, response)| response.clone());
            match found {
                Some(mut response) => {
                    if let Some(object) = response.as_object_mut() {
                        object.insert("id".to_owned(), id);
                    }
                    response
                }
                None => json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": { "code": -32601, "message": "no recorded exchange" },
                }),
            }
        };
        match request {
            Value::Array(calls) => Value::Array(calls.iter().map(answer).collect()),
            call => answer(call),
        }
    }
}
