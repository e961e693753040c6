//! [`Client`]: the JSON-RPC client over pooled, attested connections, and its builder.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use shroud_ra_tls::Verdict;
use shroud_ra_tls::tls::AttestedServerVerifier;

use crate::attested_http::AttestedHttp;
use crate::connect::{AttestedConnector, GatewayUrl};
use crate::exchange::{self, Answer, Channel};
use crate::options::Options;
use crate::pool::{Pool, PoolStats};
use crate::quic::QuicConnector;
use crate::websocket::{self, GatewaySocket};
use crate::{ClientError, Policy};

/// How long an idle pooled connection is kept, unless [`ClientBuilder::pool_idle_timeout`] says
/// otherwise.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Configures a [`Client`]. Obtained from [`Client::builder`]; [`ClientBuilder::build`] checks
/// everything and reports the first problem as a [`ClientError`] of kind
/// [`ErrorKind::Config`](crate::ErrorKind::Config).
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    /// What every client shares: URL, trust, timeout, retries.
    options: Options,
    pool_idle_timeout: Duration,
    http3: bool,
}

impl ClientBuilder {
    /// The measurements to trust, as a policy (for example from
    /// [`load_policy_file`](crate::policy::load_policy_file)). A client must trust something:
    /// give a policy or [`pin`](Self::pin)s, not both.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.options.policy = policy;
        self
    }

    /// Trusts a build with this measurement, written as on the command line, e.g.
    /// `tdx:mrtd=HEX` or `simulated:measurement=HEX`. Pins of one platform form one build, which
    /// must be a complete identity of the code (TDX: `mrtd` and `rtmr0`..`rtmr2`), else
    /// [`build`](Self::build) refuses it naming what is missing.
    /// Checked by [`build`](Self::build).
    pub fn pin(mut self, pin: impl Into<String>) -> Self {
        self.options.pins.push(pin.into());
        self
    }

    /// Accepts the simulated TEE of `shroud-gateway --dev`. **Development only**: simulated
    /// evidence is signed by a key anyone can make, so it proves nothing.
    pub fn danger_allow_simulated(mut self, allow: bool) -> Self {
        self.options.danger_allow_simulated = allow;
        self
    }

    /// Bounds each attempt of a call (connect, handshake, request and response) and each
    /// [`Client::attest`]. Must be more than zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// How many times an idempotent read (`eth_call`, `eth_getBalance`, ...) is retried after a
    /// network failure, broken connection, timeout or HTTP 502/503/504, with a growing pause.
    /// Writes (`eth_sendRawTransaction`, ...) are never retried. At most
    /// [`MAX_RETRIES`](crate::MAX_RETRIES).
    pub fn retries(mut self, retries: u32) -> Self {
        self.options.retries = retries;
        self
    }

    /// Connects to `address` instead of resolving the URL's host; the host stays the name sent
    /// in the handshake (SNI) and in `Host`: curl's `--resolve HOST:PORT:ADDR`, for a name DNS
    /// does not (yet) resolve, or to pick one replica behind a name.
    pub fn connect_to(mut self, address: std::net::SocketAddr) -> Self {
        self.options.connect_to = Some(address);
        self
    }

    /// How long an unused pooled connection is kept for reuse. Zero disables reuse: every call
    /// opens, and attests, a new connection.
    pub fn pool_idle_timeout(mut self, idle: Duration) -> Self {
        self.pool_idle_timeout = idle;
        self
    }

    /// Sends calls over HTTP/3 (QUIC, UDP) to the URL's host and port, instead of HTTP/2 or
    /// HTTP/1.1 over TCP: the gateway's `[listen] h3` listener. The QUIC handshake runs the same
    /// verifier (nothing is sent on a stream before it accepted), with resumption, 0-RTT and
    /// address validation tokens off, and a new UDP socket per connection, so that nothing
    /// links two connections. Subscriptions ([`subscribe`](Client::subscribe)) still use a
    /// WebSocket over TCP to the same host and port, and
    /// [`attest_fresh`](Client::attest_fresh) is refused: serve `h3` on the `https` port for them.
    pub fn http3(mut self, http3: bool) -> Self {
        self.http3 = http3;
        self
    }

    /// Checks the URL, the policy and the options and builds the client. No connection is made
    /// yet.
    pub fn build(self) -> Result<Client, ClientError> {
        let checked = self.options.check()?;
        let verifier = Arc::new(
            AttestedServerVerifier::new(checked.policy)
                .danger_allow_simulated(checked.danger_allow_simulated),
        );
        Ok(Client {
            inner: Arc::new(Inner {
                http: AttestedHttp {
                    url: checked.url,
                    connector: AttestedConnector::new(Arc::clone(&verifier))?
                        .connect_to(checked.connect_to),
                    pool: Pool::new(self.pool_idle_timeout),
                    quic: if self.http3 {
                        Some(
                            QuicConnector::new(Arc::clone(&verifier))?
                                .connect_to(checked.connect_to),
                        )
                    } else {
                        None
                    },
                },
                websocket: AttestedConnector::with_alpn(Arc::clone(&verifier), &websocket::ALPN)?
                    .connect_to(checked.connect_to),
                verifier,
                timeout: checked.timeout,
                retries: checked.retries,
            }),
        })
    }
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
    /// The gateway URL, the attested connector and the pool.
    http: AttestedHttp,
    /// The same verifier, offering only HTTP/1.1 (which carries the WebSocket upgrade).
    websocket: AttestedConnector,
    verifier: Arc<AttestedServerVerifier>,
    timeout: Duration,
    retries: u32,
}

impl Client {
    /// Starts configuring a client for `url`, of the form `https://HOST:PORT/CHAIN`.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            options: Options::new(url.into()),
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            http3: false,
        }
    }

    /// The gateway URL.
    pub fn url(&self) -> &GatewayUrl {
        &self.inner.http.url
    }

    /// The verifier enforcing this client's policy (and caching its verdicts).
    pub fn verifier(&self) -> &Arc<AttestedServerVerifier> {
        &self.inner.verifier
    }

    /// The verdict the connection pool is bound to: that of the last verified handshake of a
    /// call. `None` before the first call.
    pub fn verdict(&self) -> Option<Verdict> {
        self.inner.http.pool.bound().map(|v| Verdict::clone(&v))
    }

    /// A snapshot of the connection pool.
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.http.pool.stats()
    }

    /// Closes the idle pooled connections; the next call opens, and attests, a new one.
    pub fn close_idle_connections(&self) {
        self.inner.http.pool.clear();
    }

    /// Connects and completes an attested TLS handshake without sending anything, and returns
    /// what the verification established. The connection is closed, not pooled: an HTTP/2
    /// connection would start with a preface, and this call promises to send nothing.
    pub async fn attest(&self) -> Result<Verdict, ClientError> {
        self.with_timeout(async {
            let http = &self.inner.http;
            if let Some(quic) = &http.quic {
                // No stream is opened: the connection is closed right after the handshake.
                let connection = quic.connect(&http.url).await?;
                connection.connection.close(0u32.into(), b"");
                connection.endpoint.wait_idle().await;
                return Ok(connection.verdict);
            }
            let connection = http.connector.connect(&http.url).await?;
            let verdict = connection.verdict.clone();
            let mut stream = connection.stream;
            // close_notify, politely; the verdict stands whether or not the peer hears it.
            tokio::io::AsyncWriteExt::shutdown(&mut stream).await.ok();
            Ok(verdict)
        })
        .await
    }

    /// Attests as [`attest`](Self::attest) does, then asks the gateway on the same connection
    /// for fresh evidence bound to a random nonce of [`NONCE_LEN`](crate::fresh::NONCE_LEN)
    /// bytes (`GET /.well-known/shroud/attestation?nonce=`, DESIGN §4.2) and checks that its
    /// certificate verifies under the policy, that its claims carry exactly that nonce and that
    /// its key is the connection's. Each failed check is its own
    /// [`FreshError`](crate::fresh::FreshError).
    pub async fn attest_fresh(&self) -> Result<crate::fresh::FreshAttestation, ClientError> {
        let nonce = crate::fresh::random_nonce()?;
        self.attest_with_nonce(&nonce).await
    }

    /// [`attest_fresh`](Self::attest_fresh) with a nonce of the caller's (16 to 64 bytes).
    pub async fn attest_with_nonce(
        &self,
        nonce: &[u8],
    ) -> Result<crate::fresh::FreshAttestation, ClientError> {
        self.with_timeout(async {
            let http = &self.inner.http;
            if http.quic.is_some() {
                return Err(ClientError::InvalidOption {
                    option: "http3",
                    reason: "fresh evidence is fetched over TCP (HTTP/1.1 or HTTP/2) only".into(),
                });
            }
            let connection = http.connector.connect(&http.url).await?;
            crate::fresh::fetch_and_check(connection, &http.url, &self.inner.verifier, nonce).await
        })
        .await
    }

    /// Calls `method` with `params` (`Value::Null` for none) and returns the JSON-RPC `result`.
    ///
    /// The request is written only on an attested connection. A JSON-RPC error answer is
    /// [`ClientError::JsonRpc`]. Idempotent reads are retried on network failures.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        exchange::request(self, method, params).await
    }

    /// Sends `calls` as one JSON-RPC batch and returns one result per call, in call order. An
    /// empty batch sends nothing and returns nothing. The batch is retried only when every call
    /// in it is an idempotent read.
    pub async fn batch<'a>(
        &self,
        calls: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
        exchange::batch(self, calls).await
    }

    /// Posts a JSON-RPC body as it is (one call or a batch) and returns the HTTP status and
    /// body of the answer, unparsed: what a proxy passes through. Retried only when every call
    /// in the body is an idempotent read.
    pub async fn request_raw(&self, body: Bytes) -> Result<(http::StatusCode, Bytes), ClientError> {
        exchange::request_raw(self, body).await
    }

    /// Subscribes with `eth_subscribe` to `kind` (`"newHeads"`, `"logs"`, ...) and returns the
    /// stream of the notifications' `result`s. `filter` is the call's second parameter, the
    /// `logs` filter (`{"address": ..., "topics": [...]}`), or `Value::Null` for none.
    ///
    /// Each subscription opens a WebSocket of its own to the gateway's `GET /{chain}`: a new TLS
    /// connection, attested in its handshake with this client's policy before the upgrade
    /// request is written (a refused attestation is the same error as for a call, and nothing
    /// is sent). Opening and the `eth_subscribe` answer are bounded by the client's timeout. A
    /// JSON-RPC error answer (an unknown kind, the gateway's limits) is
    /// [`ClientError::JsonRpc`]; a refused upgrade is [`ClientError::Http`].
    pub async fn subscribe(
        &self,
        kind: &str,
        filter: Value,
    ) -> Result<crate::Subscription, ClientError> {
        let timeout = self.inner.timeout;
        self.with_timeout(async {
            let socket = self.open_websocket_unbounded().await?;
            crate::subscription::subscribe(socket, kind, filter, timeout).await
        })
        .await
    }

    /// Opens a WebSocket to the gateway URL over a new attested connection (verified before the
    /// upgrade request is written), within the client's timeout: what the proxy relays to.
    pub(crate) async fn open_websocket(&self) -> Result<GatewaySocket, ClientError> {
        self.with_timeout(self.open_websocket_unbounded()).await
    }

    async fn open_websocket_unbounded(&self) -> Result<GatewaySocket, ClientError> {
        websocket::open(&self.inner.websocket, &self.inner.http.url).await
    }

    /// A [jsonrpsee](https://docs.rs/jsonrpsee) HTTP client for the same URL, policy and timeout,
    /// for code that already uses jsonrpsee's `ClientT` API.
    ///
    /// jsonrpsee forms the requests; every one is posted through this client's own attested
    /// connections ([`jsonrpsee_transport`](crate::jsonrpsee_transport)): each new connection
    /// offers `shroud-ra-tls/1` and is attested in the handshake before a byte is written, the
    /// connections are pooled with this client's and bound to the same verified key. Retries
    /// are not made for it (jsonrpsee's requests are sent once).
    #[cfg(feature = "jsonrpsee")]
    pub fn jsonrpsee_client(
        &self,
    ) -> Result<crate::jsonrpsee_transport::JsonrpseeClient, ClientError> {
        // jsonrpsee still builds a hyper-rustls backend before the layer replaces it; give it a
        // config that trusts no server at all, so that even by mistake it could reach nothing.
        let unused =
            rustls::ClientConfig::builder_with_provider(shroud_ra_tls::tls::crypto_provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| ClientError::InvalidOption {
                    option: "jsonrpsee",
                    reason: e.to_string(),
                })?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
        jsonrpsee::http_client::HttpClientBuilder::default()
            .with_custom_cert_store(unused)
            .set_http_middleware(tower::ServiceBuilder::new().layer(
                crate::jsonrpsee_transport::AttestedLayer::new(Arc::new(self.clone())),
            ))
            .request_timeout(self.inner.timeout)
            .build(self.inner.http.url.as_str())
            .map_err(|e| ClientError::InvalidUrl {
                url: self.inner.http.url.as_str().to_owned(),
                reason: format!("jsonrpsee refuses it: {e}"),
            })
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

/// One attempt of posting `body`, bounded by the timeout, without retries; a failed attempt
/// drops the pooled connections as a failed call does.
#[cfg(feature = "jsonrpsee")]
impl crate::jsonrpsee_transport::PostOnce for Client {
    fn post_once(&self, body: Bytes) -> crate::jsonrpsee_transport::Posting<'_> {
        Box::pin(async move {
            let answer = self.with_timeout(self.inner.http.attempt(body)).await;
            if answer.is_err() {
                Channel::broken(self);
            }
            answer
        })
    }
}

impl Channel for Client {
    fn attempt(&self, body: Bytes) -> impl Future<Output = Result<Answer, ClientError>> + Send {
        self.inner.http.attempt(body)
    }

    fn broken(&self) {
        // The connection that failed may still sit in the pool (HTTP/2 stays there while in
        // use); start over from a fresh, freshly attested one.
        self.inner.http.pool.clear();
    }

    fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    fn retries(&self) -> u32 {
        self.inner.retries
    }
}
