//! `shroud proxy`: a local plain-HTTP JSON-RPC endpoint for wallets and dapp libraries that only
//! take an RPC URL.
//!
//! The proxy listens on loopback and passes every request body (one call or a batch) unchanged to
//! the gateway over the attested [`Client`]: each gateway connection completes an attested
//! handshake before anything is written to it. When attestation fails, the proxy answers each
//! call with a JSON-RPC error that names the reason (for example the pin mismatch) and nothing is
//! forwarded.
//!
//! Plain HTTP is only acceptable on the user's own machine, so a non-loopback listen address
//! needs [`ProxyOptions::allow_non_loopback`]. When listening on loopback the proxy also refuses
//! requests whose `Host` is not a loopback name, which stops web pages from reaching it through
//! DNS rebinding.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

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

    /// Serves until `shutdown` completes; open connections are closed with it.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    // Accept errors (e.g. too many open files) concern one connection only.
                    let Ok((tcp, _)) = accepted else { continue };
                    let client = self.client.clone();
                    let loopback_only = self.loopback_only;
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            handle(request, client.clone(), loopback_only)
                        });
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tcp), service)
                            .await
                            .ok();
                    });
                }
                // Reap finished connection tasks so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    }
}

/// Answers one HTTP request.
async fn handle(
    request: http::Request<Incoming>,
    client: Client,
    loopback_only: bool,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    if loopback_only && !host_is_loopback(&request) {
        return Ok(plain(
            http::StatusCode::FORBIDDEN,
            "shroud proxy: the Host header must name a loopback address\n",
        ));
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
    let code = match error.kind() {
        ErrorKind::Attestation | ErrorKind::PinMismatch => CODE_UNTRUSTED_GATEWAY,
        _ => CODE_GATEWAY_UNAVAILABLE,
    };
    let message = format!("shroud proxy: {error}");
    let data = json!({"kind": error.kind().as_str(), "forwarded": !error.nothing_sent()});
    let answer = |call: &Value| {
        let id = call.get("id").unwrap_or(&Value::Null);
        error_object(id, code, message.clone(), Some(data.clone()))
    };
    match &request {
        Value::Array(calls) if !calls.is_empty() => {
            Value::Array(calls.iter().map(answer).collect())
        }
        call => answer(call),
    }
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
