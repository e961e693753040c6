//! `shroud proxy`: a local plain-HTTP JSON-RPC endpoint for wallets and dapp libraries that only
//! take an RPC URL.
//!
//! The proxy listens on loopback and passes every request body (one call or a batch) unchanged to
//! the gateway over the attested [`Client`]: each gateway connection completes an attested
//! handshake before anything is written to it. When attestation fails, the proxy answers each
//! call with a JSON-RPC error that names the reason (for example the pin mismatch) and nothing is
//! forwarded.
//!
//! A `GET` with `Upgrade: websocket` (RFC 6455), on any path like a `POST`, is relayed to a
//! WebSocket on the gateway URL (`GET /{chain}`), for subscriptions (`eth_subscribe`): the proxy
//! opens a new attested connection for it and writes the upgrade request only once the gateway's
//! evidence verified; only then does it accept the local upgrade (101). When attestation fails
//! the local upgrade is refused with an HTTP error whose body is the JSON-RPC error a call would
//! get (code [`CODE_UNTRUSTED_GATEWAY`]), and nothing is sent to the gateway. Messages then pass
//! unchanged both ways, each side's pings are answered locally, and a close (code and reason) on
//! one side closes the other; see the relay's limits in the user guide.
//!
//! Plain HTTP is only acceptable on the user's own machine, so a non-loopback listen address
//! needs [`ProxyOptions::allow_non_loopback`]. When listening on loopback the proxy also refuses
//! requests whose `Host` is not a loopback name, which stops web pages from reaching it through
//! DNS rebinding. A WebSocket upgrade with an `Origin` other than a loopback one is refused too:
//! browsers let any page open a WebSocket to any address, without CORS, and the proxy is for
//! the user's own wallets, not for the pages they visit.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::websocket::{MAX_CLIENT_MESSAGE_LEN, MAX_GATEWAY_MESSAGE_LEN, socket_config};
use crate::websocket_relay::{self, Limits};
use crate::{Client, ClientError, ErrorKind};

/// The largest request body the proxy accepts.
pub const MAX_REQUEST_LEN: usize = 16 * 1024 * 1024;

/// JSON-RPC error code: the gateway failed attestation or the pins (nothing was forwarded).
pub const CODE_UNTRUSTED_GATEWAY: i64 = -32001;

/// JSON-RPC error code: the gateway could not be reached or answered nothing usable.
pub const CODE_GATEWAY_UNAVAILABLE: i64 = -32002;

/// JSON-RPC error code for a request the proxy cannot read (not JSON).
pub const CODE_PARSE_ERROR: i64 = -32700;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// A non-loopback listen address without [`ProxyOptions::allow_non_loopback`].
    #[error(
        "refusing to listen on {0}: it is not a loopback address, and the proxy serves plain HTTP; pass --allow-non-loopback if you really mean it"
    )]
    NonLoopback(SocketAddr),
    /// The listen socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
}

/// How the proxy listens.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ProxyOptions {
    /// Accepts a listen address other than loopback. Anyone who can reach it can use the
    /// proxy and read the answers in plain text.
    pub allow_non_loopback: bool,
}

impl ProxyOptions {
    /// Options that keep the proxy on loopback.
    pub fn new() -> Self {
        Self::default()
    }

    /// See [`ProxyOptions::allow_non_loopback`].
    #[must_use]
    pub fn allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }
}

/// A bound proxy, ready to [`run`](Proxy::run).
#[derive(Debug)]
pub struct Proxy {
    listener: TcpListener,
    addr: SocketAddr,
    client: Client,
    loopback_only: bool,
}

impl Proxy {
    /// Binds `listen` and relays to `client`'s gateway. Fails for a non-loopback address unless
    /// `options` allow it.
    pub async fn bind(
        listen: SocketAddr,
        client: Client,
        options: &ProxyOptions,
    ) -> Result<Self, ProxyError> {
        let loopback = listen.ip().is_loopback();
        if !loopback && !options.allow_non_loopback {
            return Err(ProxyError::NonLoopback(listen));
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ProxyError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ProxyError::Bind {
            addr: listen,
            source,
        })?;
        Ok(Self {
            listener,
            addr,
            client,
            loopback_only: loopback,
        })
    }

    /// The address the proxy listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's URL, `http://ADDR`, for a wallet's "custom RPC URL".
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until `shutdown` completes; open connections are closed with it (WebSocket
    /// relays with a close frame to both sides, code 1001).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut connections = JoinSet::new();
        // Relays outlive the HTTP connection they came from; each holds a receiver, so that
        // `closed()` tells when the last one has finished closing.
        let (stop, stopping) = watch::channel(false);
        let limits = Limits::default();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    // Accept errors (e.g. too many open files) concern one connection only.
                    let Ok((tcp, _)) = accepted else { continue };
                    let local = Local {
                        client: self.client.clone(),
                        loopback_only: self.loopback_only,
                        stopping: stopping.clone(),
                        limits,
                    };
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            handle(request, local.clone())
                        });
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                            .await
                            .ok();
                    });
                }
                // Reap finished connection tasks so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        stop.send_replace(true);
        drop(stopping);
        connections.shutdown().await;
        tokio::time::timeout(limits.close_grace, stop.closed())
            .await
            .ok();
    }
}

/// What answering a request on the local port needs.
#[derive(Debug, Clone)]
struct Local {
    client: Client,
    loopback_only: bool,
    /// Turns true when the proxy shuts down.
    stopping: watch::Receiver<bool>,
    limits: Limits,
}

/// Answers one HTTP request.
async fn handle(
    request: http::Request<Incoming>,
    local: Local,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let Local {
        client,
        loopback_only,
        ..
    } = &local;
    if *loopback_only && !host_is_loopback(&request) {
        return Ok(plain(
            http::StatusCode::FORBIDDEN,
            "shroud proxy: the Host header must name a loopback address\n",
        ));
    }
    if is_websocket_upgrade(&request) {
        return Ok(upgrade(request, local).await);
    }
    if request.method() != http::Method::POST {
        return Ok(plain(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "shroud proxy: send JSON-RPC with POST\n",
        ));
    }
    let body = match Limited::new(request.into_body(), MAX_REQUEST_LEN)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return Ok(plain(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "shroud proxy: request body unreadable or too large\n",
            ));
        }
    };
    Ok(match client.request_raw(body.clone()).await {
        Ok((status, answer)) => json_response(status, answer),
        Err(error) => json_response(
            http::StatusCode::OK,
            Bytes::from(error_answer(&body, &error).to_string()),
        ),
    })
}

/// The JSON-RPC error answer to `body` when relaying failed: one error per call (a batch gets
/// an array), each with the call's id.
pub fn error_answer(body: &[u8], error: &ClientError) -> Value {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error_object(
            &Value::Null,
            CODE_PARSE_ERROR,
            "shroud proxy: the request is not JSON".into(),
            None,
        );
    };
    let answer = |call: &Value| relay_error(call.get("id").unwrap_or(&Value::Null), error);
    match &request {
        Value::Array(calls) if !calls.is_empty() => {
            Value::Array(calls.iter().map(answer).collect())
        }
        call => answer(call),
    }
}

/// The JSON-RPC error for the call with `id` that could not be relayed because of `error`.
fn relay_error(id: &Value, error: &ClientError) -> Value {
    let code = match error.kind() {
        ErrorKind::Attestation | ErrorKind::PinMismatch => CODE_UNTRUSTED_GATEWAY,
        _ => CODE_GATEWAY_UNAVAILABLE,
    };
    let message = format!("shroud proxy: {error}");
    let data = json!({"kind": error.kind().as_str(), "forwarded": !error.nothing_sent()});
    error_object(id, code, message, Some(data))
}

/// Whether `request` asks to become a WebSocket (RFC 6455 §4.2.1: `GET`, `Upgrade: websocket`).
fn is_websocket_upgrade<B>(request: &http::Request<B>) -> bool {
    request.method() == http::Method::GET
        && has_token(request.headers(), http::header::UPGRADE, "websocket")
}

/// Whether the comma-separated header `name` holds `token` (case-insensitive).
fn has_token(headers: &http::HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// The `Sec-WebSocket-Accept` value for a well-formed upgrade request, or why it is not one.
fn accept_key<B>(request: &http::Request<B>) -> Result<String, &'static str> {
    if request.version() != http::Version::HTTP_11 {
        return Err("shroud proxy: WebSocket upgrades need HTTP/1.1\n");
    }
    if !has_token(request.headers(), http::header::CONNECTION, "upgrade") {
        return Err("shroud proxy: a WebSocket upgrade needs Connection: upgrade\n");
    }
    let headers = request.headers();
    if headers
        .get(http::header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return Err("shroud proxy: only WebSocket version 13 is supported\n");
    }
    match headers.get(http::header::SEC_WEBSOCKET_KEY) {
        Some(key) if !key.is_empty() => Ok(derive_accept_key(key.as_bytes())),
        _ => Err("shroud proxy: a WebSocket upgrade needs Sec-WebSocket-Key\n"),
    }
}

/// Whether the upgrade's `Origin`, if any, is a loopback one (a page served from this machine).
/// Non-browser clients send none.
fn origin_is_loopback<B>(request: &http::Request<B>) -> bool {
    let Some(origin) = request.headers().get(http::header::ORIGIN) else {
        return true;
    };
    origin
        .to_str()
        .ok()
        .and_then(|origin| origin.parse::<http::Uri>().ok())
        .is_some_and(|origin| {
            matches!(origin.scheme_str(), Some("http" | "https"))
                && origin.host().is_some_and(crate::connect::is_loopback_host)
        })
}

/// Answers a WebSocket upgrade: an attested WebSocket to the gateway first, then the local 101
/// and a relay between the two; or the refusal, when the gateway could not be had.
async fn upgrade(
    mut request: http::Request<Incoming>,
    local: Local,
) -> http::Response<Full<Bytes>> {
    let accept = match accept_key(&request) {
        Ok(accept) => accept,
        Err(reason) => return plain(http::StatusCode::BAD_REQUEST, reason),
    };
    if !origin_is_loopback(&request) {
        return plain(
            http::StatusCode::FORBIDDEN,
            "shroud proxy: WebSocket upgrades from web pages of other origins are refused\n",
        );
    }
    let upgraded = hyper::upgrade::on(&mut request);
    // Attested in the TLS handshake before the gateway's upgrade request is written.
    let gateway = match local.client.open_websocket().await {
        Ok(gateway) => gateway,
        Err(error) => return upgrade_refused(&error),
    };
    let Local {
        stopping, limits, ..
    } = local;
    // The relay can only start once hyper has sent the 101 below and handed the connection over.
    tokio::spawn(async move {
        let Ok(upgraded) = upgraded.await else {
            return;
        };
        let config = socket_config(MAX_CLIENT_MESSAGE_LEN, MAX_GATEWAY_MESSAGE_LEN);
        let local =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        websocket_relay::relay(local, gateway, limits, stopping).await;
    });
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("upgrade"),
    );
    headers.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    if let Ok(accept) = http::HeaderValue::from_str(&accept) {
        headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The refusal of a local upgrade whose gateway side failed: the gateway's own HTTP error
/// status when it refused the upgrade, 504 after a timeout, else 502; the body is the JSON-RPC
/// error a call would have got.
fn upgrade_refused(error: &ClientError) -> http::Response<Full<Bytes>> {
    let status = match error {
        ClientError::Http { status, .. }
            if status.is_client_error() || status.is_server_error() =>
        {
            *status
        }
        _ if error.kind() == ErrorKind::Timeout => http::StatusCode::GATEWAY_TIMEOUT,
        _ => http::StatusCode::BAD_GATEWAY,
    };
    json_response(
        status,
        Bytes::from(relay_error(&Value::Null, error).to_string()),
    )
}

fn error_object(id: &Value, code: i64, message: String, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let (Some(data), Some(object)) = (data, error.as_object_mut()) {
        object.insert("data".into(), data);
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// Whether the request's `Host` (or HTTP/2 `:authority`) names a loopback address.
fn host_is_loopback<B>(request: &http::Request<B>) -> bool {
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let Some(host) = host else {
        return false;
    };
    let Ok(authority) = host.parse::<http::uri::Authority>() else {
        return false;
    };
    crate::connect::is_loopback_host(authority.host())
}

fn json_response(status: http::StatusCode, body: Bytes) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn plain(status: http::StatusCode, text: &'static str) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with_host(host: &str) -> http::Request<()> {
        http::Request::post("/")
            .header(http::header::HOST, host)
            .body(())
            .unwrap()
    }

    #[test]
    fn only_loopback_hosts_pass() {
        for good in [
            "127.0.0.1:8545",
            "localhost:8545",
            "LOCALHOST",
            "[::1]:8545",
            "127.0.0.2",
        ] {
            assert!(host_is_loopback(&request_with_host(good)), "{good}");
        }
        for bad in [
            "evil.example:8545",
            "10.0.0.1:8545",
            "",
            "localhost.evil.example",
        ] {
            assert!(!host_is_loopback(&request_with_host(bad)), "{bad}");
        }
        let no_host = http::Request::post("/").body(()).unwrap();
        assert!(!host_is_loopback(&no_host));
    }

    fn upgrade_request() -> http::request::Builder {
        http::Request::get("/eth")
            .header(http::header::HOST, "127.0.0.1:8545")
            .header(http::header::UPGRADE, "WebSocket")
            .header(http::header::CONNECTION, "keep-alive, Upgrade")
            .header(http::header::SEC_WEBSOCKET_VERSION, "13")
            .header(http::header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
    }

    #[test]
    fn websocket_upgrades_are_recognised_and_checked() {
        let request = upgrade_request().body(()).unwrap();
        assert!(is_websocket_upgrade(&request));
        // RFC 6455 §1.3's example key and answer.
        assert_eq!(
            accept_key(&request).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let post = http::Request::post("/eth")
            .header(http::header::UPGRADE, "websocket")
            .body(())
            .unwrap();
        assert!(!is_websocket_upgrade(&post));
        let plain_get = http::Request::get("/eth").body(()).unwrap();
        assert!(!is_websocket_upgrade(&plain_get));

        let mut old_version = upgrade_request().body(()).unwrap();
        old_version.headers_mut().insert(
            http::header::SEC_WEBSOCKET_VERSION,
            http::HeaderValue::from_static("8"),
        );
        assert!(accept_key(&old_version).is_err());
        let mut no_key = upgrade_request().body(()).unwrap();
        no_key.headers_mut().remove(http::header::SEC_WEBSOCKET_KEY);
        assert!(accept_key(&no_key).is_err());
        let mut no_connection = upgrade_request().body(()).unwrap();
        no_connection.headers_mut().remove(http::header::CONNECTION);
        assert!(accept_key(&no_connection).is_err());
    }

    #[test]
    fn only_loopback_origins_may_upgrade() {
        assert!(origin_is_loopback(&upgrade_request().body(()).unwrap()));
        for good in [
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "https://[::1]",
        ] {
            let request = upgrade_request()
                .header(http::header::ORIGIN, good)
                .body(())
                .unwrap();
            assert!(origin_is_loopback(&request), "{good}");
        }
        for bad in [
            "https://evil.example",
            "http://localhost.evil.example",
            "null",
            "file://",
            "chrome-extension://abc",
        ] {
            let request = upgrade_request()
                .header(http::header::ORIGIN, bad)
                .body(())
                .unwrap();
            assert!(!origin_is_loopback(&request), "{bad}");
        }
    }

    #[test]
    fn a_refused_upgrade_answers_a_json_rpc_error() {
        let refused = ClientError::from_refusal(shroud_ra_tls::Error::MeasurementMismatch {
            actual: "simulated measurement=01".into(),
            expected: "simulated measurement=02".into(),
        });
        let response = upgrade_refused(&refused);
        assert_eq!(response.status(), http::StatusCode::BAD_GATEWAY);
        let unknown_chain = ClientError::Http {
            status: http::StatusCode::NOT_FOUND,
            body: "no chain".into(),
        };
        assert_eq!(
            upgrade_refused(&unknown_chain).status(),
            http::StatusCode::NOT_FOUND
        );
        let timeout = ClientError::Timeout(std::time::Duration::from_secs(1));
        assert_eq!(
            upgrade_refused(&timeout).status(),
            http::StatusCode::GATEWAY_TIMEOUT
        );
        let answer = relay_error(&Value::Null, &refused);
        assert_eq!(answer["error"]["code"], CODE_UNTRUSTED_GATEWAY);
        assert_eq!(answer["error"]["data"]["forwarded"], false);
        assert_eq!(answer["id"], Value::Null);
    }

    #[test]
    fn errors_answer_every_call_with_its_id() {
        let error = ClientError::from_refusal(shroud_ra_tls::Error::MeasurementMismatch {
            actual: "simulated measurement=01".into(),
            expected: "simulated measurement=02".into(),
        });
        let single = error_answer(
            br#"{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}"#,
            &error,
        );
        assert_eq!(single["id"], 7);
        assert_eq!(single["error"]["code"], CODE_UNTRUSTED_GATEWAY);
        assert_eq!(single["error"]["data"]["kind"], "pin-mismatch");
        assert_eq!(single["error"]["data"]["forwarded"], false);
        let message = single["error"]["message"].as_str().unwrap();
        assert!(message.contains("pin mismatch"), "{message}");

        let batch = error_answer(
            br#"[{"jsonrpc":"2.0","id":"a","method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}]"#,
            &error,
        );
        let ids: Vec<&Value> = batch.as_array().unwrap().iter().map(|a| &a["id"]).collect();
        assert_eq!(ids, [&json!("a"), &json!(2)]);

        let garbage = error_answer(b"{", &error);
        assert_eq!(garbage["error"]["code"], CODE_PARSE_ERROR);
        assert_eq!(garbage["id"], Value::Null);
    }
}
