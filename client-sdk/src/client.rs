//! The JSON-RPC client over pooled, attested connections.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use shroud_ra_tls::tls::AttestedServerVerifier;
use shroud_ra_tls::{UnixTime, Verdict};

use crate::connect::{AttestedConnector, GatewayUrl, HttpVersion};
use crate::pool::{AbortOnDrop, Pool, PoolStats, PooledConnection, Sender};
use crate::{ClientError, ErrorKind, Policy, jsonrpc, retry};

/// How long one attempt of [`Client::attest`], [`Client::request`] or [`Client::batch`] may take
/// (connect, handshake, request, response) unless [`ClientBuilder::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times an idempotent read is retried after a network failure, unless
/// [`ClientBuilder::retries`] says otherwise.
pub const DEFAULT_RETRIES: u32 = 2;

/// The most retries [`ClientBuilder::retries`] accepts.
pub const MAX_RETRIES: u32 = 10;

/// How long an idle pooled connection is kept, unless [`ClientBuilder::pool_idle_timeout`] says
/// otherwise.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The largest response body the client reads.
const MAX_RESPONSE_LEN: usize = 64 * 1024 * 1024;

/// How many closed pooled connections one attempt skips before it opens a fresh one.
const MAX_STALE: u32 = 4;

/// The id of every single call; each HTTP exchange carries one call, so ids never need to differ.
const CALL_ID: u64 = 1;

/// Configures a [`Client`]. Obtained from [`Client::builder`]; [`ClientBuilder::build`] checks
/// everything and reports the first problem as a [`ClientError`] of kind
/// [`ErrorKind::Config`](crate::ErrorKind::Config).
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    url: String,
    policy: Policy,
    pins: Vec<String>,
    danger_allow_simulated: bool,
    timeout: Duration,
    retries: u32,
    pool_idle_timeout: Duration,
}

impl ClientBuilder {
    /// The measurements to trust, as a policy (for example from
    /// [`load_policy_file`](crate::policy::load_policy_file)). A client must trust something:
    /// give a policy or [`pin`](Self::pin)s, not both.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Trusts a build with this measurement, written as on the command line, e.g.
    /// `tdx:mrtd=HEX` or `simulated:measurement=HEX`. Pins of one platform form one build, which
    /// must be a complete identity of the code (TDX: `mrtd` and `rtmr0`..`rtmr2`), else
    /// [`build`](Self::build) refuses it naming what is missing.
    /// Checked by [`build`](Self::build).
    pub fn pin(mut self, pin: impl Into<String>) -> Self {
        self.pins.push(pin.into());
        self
    }

    /// Accepts the simulated TEE of `shroud-gateway --dev`. **Development only**: simulated
    /// evidence is signed by a key anyone can make, so it proves nothing.
    pub fn danger_allow_simulated(mut self, allow: bool) -> Self {
        self.danger_allow_simulated = allow;
        self
    }

    /// Bounds each attempt of a call (connect, handshake, request and response) and each
    /// [`Client::attest`]. Must be more than zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times an idempotent read (`eth_call`, `eth_getBalance`, ...) is retried after a
    /// network failure, broken connection, timeout or HTTP 502/503/504, with a growing pause.
    /// Writes (`eth_sendRawTransaction`, ...) are never retried. At most [`MAX_RETRIES`].
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// How long an unused pooled connection is kept for reuse. Zero disables reuse: every call
    /// opens, and attests, a new connection.
    pub fn pool_idle_timeout(mut self, idle: Duration) -> Self {
        self.pool_idle_timeout = idle;
        self
    }

    /// Checks the URL, the policy and the options and builds the client. No connection is made
    /// yet.
    pub fn build(self) -> Result<Client, ClientError> {
        let pool_idle_timeout = self.pool_idle_timeout;
        let checked = self.check()?;
        let verifier = Arc::new(
            AttestedServerVerifier::new(checked.policy)
                .danger_allow_simulated(checked.danger_allow_simulated),
        );
        Ok(Client {
            inner: Arc::new(Inner {
                url: checked.url,
                connector: AttestedConnector::new(Arc::clone(&verifier))?,
                verifier,
                timeout: checked.timeout,
                retries: checked.retries,
                pool: Pool::new(pool_idle_timeout),
            }),
        })
    }

    /// Checks what every channel shares: the URL, the pins or policy, the timeout and retries.
    pub(crate) fn check(self) -> Result<Checked, ClientError> {
        let url = GatewayUrl::parse(&self.url)?;
        let policy = match (self.pins.is_empty(), self.policy.is_empty()) {
            (true, _) => self.policy,
            (false, true) => Policy::from_pins(&self.pins).map_err(ClientError::Policy)?,
            (false, false) => {
                return Err(ClientError::InvalidOption {
                    option: "pin",
                    reason: "pins and a policy cannot be combined; put every acceptable build in the policy".into(),
                });
            }
        };
        let policy = crate::policy::require_non_empty(policy)?;
        if self.timeout.is_zero() {
            return Err(ClientError::InvalidOption {
                option: "timeout",
                reason: "must be more than zero".into(),
            });
        }
        if self.retries > MAX_RETRIES {
            return Err(ClientError::InvalidOption {
                option: "retries",
                reason: format!("{} is more than the maximum {MAX_RETRIES}", self.retries),
            });
        }
        Ok(Checked {
            url,
            policy,
            danger_allow_simulated: self.danger_allow_simulated,
            timeout: self.timeout,
            retries: self.retries,
        })
    }
}

/// The options of a [`ClientBuilder`] after [`ClientBuilder::check`].
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) url: GatewayUrl,
    pub(crate) policy: Policy,
    pub(crate) danger_allow_simulated: bool,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
}

/// A JSON-RPC client for one chain of one Shroud gateway. Cheap to clone; clones share the
/// connection pool.
///
/// Every connection is attested in its TLS handshake before a request byte is written. The
/// connections are pooled and the pool is bound to the key (SPKI) of the last verified
/// certificate: a rotated certificate is verified on the first new connection that sees it, and
/// connections are only reused for the key the pool is bound to. Verdicts are cached per
/// certificate hash, so a new connection to an already verified certificate costs only the
/// handshake.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: GatewayUrl,
    connector: AttestedConnector,
    verifier: Arc<AttestedServerVerifier>,
    timeout: Duration,
    retries: u32,
    pool: Pool,
}

impl Client {
    /// Starts configuring a client for `url`, of the form `https://HOST:PORT/CHAIN`.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            policy: Policy::default(),
            pins: Vec::new(),
            danger_allow_simulated: false,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
        }
    }

    /// The gateway URL.
    pub fn url(&self) -> &GatewayUrl {
        &self.inner.url
    }

    /// The verifier enforcing this client's policy (and caching its verdicts).
    pub fn verifier(&self) -> &Arc<AttestedServerVerifier> {
        &self.inner.verifier
    }

    /// The verdict the connection pool is bound to: that of the last verified handshake of a
    /// call. `None` before the first call.
    pub fn verdict(&self) -> Option<Verdict> {
        self.inner.pool.bound().map(|v| Verdict::clone(&v))
    }

    /// A snapshot of the connection pool.
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// Closes the idle pooled connections; the next call opens, and attests, a new one.
    pub fn close_idle_connections(&self) {
        self.inner.pool.clear();
    }

    /// Connects and completes an attested TLS handshake without sending anything, and returns
    /// what the verification established. The connection is closed, not pooled: an HTTP/2
    /// connection would start with a preface, and this call promises to send nothing.
    pub async fn attest(&self) -> Result<Verdict, ClientError> {
        self.with_timeout(async {
            let connection = self.inner.connector.connect(&self.inner.url).await?;
            let verdict = connection.verdict.clone();
            let mut stream = connection.stream;
            // close_notify, politely; the verdict stands whether or not the peer hears it.
            tokio::io::AsyncWriteExt::shutdown(&mut stream).await.ok();
            Ok(verdict)
        })
        .await
    }

    /// Calls `method` with `params` (`Value::Null` for none) and returns the JSON-RPC `result`.
    ///
    /// The request is written only on an attested connection. A JSON-RPC error answer is
    /// [`ClientError::JsonRpc`]. Idempotent reads are retried on network failures.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        call(method, params, |body, idempotent| {
            self.exchange(body, idempotent)
        })
        .await
    }

    /// Sends `calls` as one JSON-RPC batch and returns one result per call, in call order. An
    /// empty batch sends nothing and returns nothing. The batch is retried only when every call
    /// in it is an idempotent read.
    pub async fn batch<'a>(
        &self,
        calls: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
        batch(calls, |body, idempotent| self.exchange(body, idempotent)).await
    }

    /// Posts a JSON-RPC body as it is (one call or a batch) and returns the HTTP status and
    /// body of the answer, unparsed: what a proxy passes through. Retried only when every call
    /// in the body is an idempotent read.
    pub async fn request_raw(&self, body: Bytes) -> Result<(http::StatusCode, Bytes), ClientError> {
        let idempotent = retry::body_is_idempotent(&body);
        self.exchange(body, idempotent).await
    }

    /// A [jsonrpsee](https://docs.rs/jsonrpsee) HTTP client for the same URL, policy and timeout,
    /// for code that already uses jsonrpsee's `ClientT` API.
    ///
    /// It runs on this client's attested rustls configuration: each of its connections is
    /// attested in the handshake before a byte is written, and verdicts are shared with this
    /// client. Pooling and retries are jsonrpsee's own (hyper-util's pool); the SPKI binding and
    /// retry rules of [`Client`] do not apply to it.
    #[cfg(feature = "jsonrpsee")]
    pub fn jsonrpsee_client(&self) -> Result<jsonrpsee::http_client::HttpClient, ClientError> {
        // hyper-rustls sets the ALPN protocols itself and refuses a config that has some.
        let tls = shroud_ra_tls::tls::client_config(Arc::clone(&self.inner.verifier), &[])
            .map_err(ClientError::Policy)?;
        jsonrpsee::http_client::HttpClientBuilder::default()
            .with_custom_cert_store(tls)
            .request_timeout(self.inner.timeout)
            .build(self.inner.url.as_str())
            .map_err(|e| ClientError::InvalidUrl {
                url: self.inner.url.as_str().to_owned(),
                reason: format!("jsonrpsee refuses it: {e}"),
            })
    }

    /// One logical exchange: attempts (each bounded by the timeout) and, for idempotent bodies,
    /// retries with back-off.
    async fn exchange(
        &self,
        body: Bytes,
        idempotent: bool,
    ) -> Result<(http::StatusCode, Bytes), ClientError> {
        let retries = if idempotent { self.inner.retries } else { 0 };
        with_retries(
            retries,
            self.inner.timeout,
            || self.attempt(body.clone()),
            // The connection that failed may still sit in the pool (HTTP/2 stays there while in
            // use); start over from a fresh, freshly attested one.
            || self.inner.pool.clear(),
        )
        .await
    }

    /// One attempt: a pooled connection bound to the verified key, or a freshly attested one.
    async fn attempt(&self, body: Bytes) -> Result<(http::StatusCode, Bytes), ClientError> {
        let mut stale = 0;
        loop {
            let now = UnixTime::now().as_secs();
            let pooled = if stale < MAX_STALE {
                self.inner.pool.checkout(now)
            } else {
                None
            };
            let connection = match pooled {
                Some(connection) => connection,
                None => self.open().await?,
            };
            match self.send(connection, body.clone()).await {
                Outcome::Answer(answer) => return Ok(answer),
                // A pooled connection closed under us before the request went out: nothing was
                // sent, so trying another connection is safe even for a write.
                Outcome::NotSent => stale += 1,
                Outcome::Failed(error) => return Err(error),
            }
        }
    }

    /// Opens and attests a new connection and binds the pool to its key.
    async fn open(&self) -> Result<PooledConnection, ClientError> {
        let connection = self.inner.connector.connect(&self.inner.url).await?;
        let verdict = Arc::new(connection.verdict);
        let io = TokioIo::new(connection.stream);
        let (sender, driver) = match connection.http_version {
            HttpVersion::Http1 => {
                let (sender, driver) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(transport)?;
                let driver = tokio::spawn(async move {
                    driver.await.ok();
                });
                (Sender::Http1(sender), driver)
            }
            HttpVersion::Http2 => {
                let (sender, driver) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .map_err(transport)?;
                let driver = tokio::spawn(async move {
                    driver.await.ok();
                });
                (Sender::Http2(sender), driver)
            }
        };
        Ok(self.inner.pool.opened(PooledConnection {
            sender,
            verdict,
            driver: Arc::new(AbortOnDrop(driver)),
            reused: false,
        }))
    }

    /// Posts `body` on `connection`, reads the answer and returns an HTTP/1.1 connection to the
    /// pool.
    async fn send(&self, mut connection: PooledConnection, body: Bytes) -> Outcome {
        let url = &self.inner.url;
        let builder = http::Request::post(url.path_and_query())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json");
        let reused = connection.reused;
        let response = match &mut connection.sender {
            Sender::Http1(sender) => {
                if sender.ready().await.is_err() {
                    return not_sent(reused);
                }
                let request = match builder
                    .header(http::header::HOST, url.authority())
                    .body(Full::new(body))
                {
                    Ok(request) => request,
                    Err(e) => return Outcome::Failed(invalid_request(url, e)),
                };
                sender.try_send_request(request).await
            }
            Sender::Http2(sender) => {
                if sender.ready().await.is_err() {
                    return not_sent(reused);
                }
                // HTTP/2 takes :scheme and :authority from an absolute URI.
                let uri = format!("https://{}{}", url.authority(), url.path_and_query());
                let request = match builder.uri(uri).body(Full::new(body)) {
                    Ok(request) => request,
                    Err(e) => return Outcome::Failed(invalid_request(url, e)),
                };
                sender.try_send_request(request).await
            }
        };
        let response = match response {
            Ok(response) => response,
            Err(mut error) => {
                let unsent = error.take_message().is_some();
                return if unsent && reused {
                    Outcome::NotSent
                } else {
                    Outcome::Failed(transport(error.into_error()))
                };
            }
        };
        let status = response.status();
        let body = match Limited::new(response.into_body(), MAX_RESPONSE_LEN)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(e) => return Outcome::Failed(ClientError::Transport(e)),
        };
        self.inner.pool.checkin(connection);
        Outcome::Answer((status, body))
    }

    async fn with_timeout<T>(
        &self,
        operation: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.inner.timeout, operation)
            .await
            .map_err(|_| ClientError::Timeout(self.inner.timeout))?
    }
}

/// One call over `exchange` (the body, whether it may be retried): its `result`, or the
/// JSON-RPC error as [`ClientError::JsonRpc`]. Shared by both channels.
pub(crate) async fn call<A>(
    method: &str,
    params: Value,
    exchange: impl FnOnce(Bytes, bool) -> A,
) -> Result<Value, ClientError>
where
    A: Future<Output = Result<(http::StatusCode, Bytes), ClientError>>,
{
    let body = Bytes::from(jsonrpc::request_body(CALL_ID, method, params));
    let (status, body) = exchange(body, retry::is_idempotent(method)).await?;
    jsonrpc::parse_response(CALL_ID, status, &body)
}

/// One batch over `exchange`: one result per call, in call order; an empty batch sends
/// nothing. Retried only when every call in it is an idempotent read. Shared by both channels.
pub(crate) async fn batch<'a, A>(
    calls: impl IntoIterator<Item = (&'a str, Value)>,
    exchange: impl FnOnce(Bytes, bool) -> A,
) -> Result<Vec<Result<Value, ClientError>>, ClientError>
where
    A: Future<Output = Result<(http::StatusCode, Bytes), ClientError>>,
{
    let calls: Vec<(&str, Value)> = calls.into_iter().collect();
    if calls.is_empty() {
        return Ok(Vec::new());
    }
    let idempotent = calls.iter().all(|(method, _)| retry::is_idempotent(method));
    let len = calls.len();
    let body = Bytes::from(jsonrpc::batch_body(calls));
    let (status, body) = exchange(body, idempotent).await?;
    jsonrpc::parse_batch_response(len, status, &body)
}

/// Runs `attempt`, each run bounded by `timeout`, until it answers; with `retries` left, a
/// retryable failure or a briefly-unavailable status is tried again after a back-off, and the
/// last attempt's outcome is the result. `broken` runs after each attempt that failed in
/// transport or timed out, to drop what it may have left behind.
pub(crate) async fn with_retries<A>(
    retries: u32,
    timeout: Duration,
    mut attempt: impl FnMut() -> A,
    broken: impl Fn(),
) -> Result<(http::StatusCode, Bytes), ClientError>
where
    A: Future<Output = Result<(http::StatusCode, Bytes), ClientError>>,
{
    let mut tried = 0;
    loop {
        let outcome = tokio::time::timeout(timeout, attempt())
            .await
            .unwrap_or_else(|_| Err(ClientError::Timeout(timeout)));
        if let Err(error) = &outcome
            && matches!(error.kind(), ErrorKind::Transport | ErrorKind::Timeout)
        {
            broken();
        }
        match outcome {
            // Briefly unavailable: try again; the last attempt's answer becomes the error.
            Ok((status, _)) if tried < retries && retry::is_unavailable(status) => {}
            Ok(answer) => return Ok(answer),
            Err(error) if tried < retries && retry::is_retryable(&error) => {}
            Err(error) => return Err(error),
        }
        tokio::time::sleep(retry::backoff(tried)).await;
        tried += 1;
    }
}

/// What became of one request on one connection.
enum Outcome {
    /// The gateway answered.
    Answer((http::StatusCode, Bytes)),
    /// A reused connection turned out closed before the request was written.
    NotSent,
    /// The request failed, possibly after (part of) it was written.
    Failed(ClientError),
}

/// A connection that fails before anything was written: another one may be tried if this one
/// came from the pool; a fresh one failing this way is a real failure.
fn not_sent(reused: bool) -> Outcome {
    if reused {
        Outcome::NotSent
    } else {
        Outcome::Failed(ClientError::Transport(
            "the connection closed before the request was sent".into(),
        ))
    }
}

fn transport(error: hyper::Error) -> ClientError {
    ClientError::Transport(Box::new(error))
}

fn invalid_request(url: &GatewayUrl, error: http::Error) -> ClientError {
    ClientError::InvalidUrl {
        url: url.as_str().to_owned(),
        reason: format!("cannot form an HTTP request: {error}"),
    }
}
