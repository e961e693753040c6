//! The JSON-RPC client over attested connections.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use shroud_ra_tls::Verdict;
use shroud_ra_tls::tls::AttestedServerVerifier;
use tokio::task::JoinHandle;

use crate::connect::{AttestedConnection, AttestedConnector, GatewayUrl, HttpVersion};
use crate::{ClientError, Policy, jsonrpc};

/// How long [`Client::attest`] and [`Client::request`] may take in all (connect, handshake,
/// request, response) unless [`ClientBuilder::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response body the client reads.
const MAX_RESPONSE_LEN: usize = 64 * 1024 * 1024;

/// The id of every call; each call has its own connection, so ids never need to differ.
const CALL_ID: u64 = 1;

/// Configures a [`Client`]. Obtained from [`Client::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    url: String,
    policy: Policy,
    danger_allow_simulated: bool,
    timeout: Duration,
}

impl ClientBuilder {
    /// The measurements to trust. Required: a client without pins trusts nothing.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Accepts the simulated TEE of `shroud-gateway --dev`. **Development only**: simulated
    /// evidence is signed by a key anyone can make, so it proves nothing.
    pub fn danger_allow_simulated(mut self, allow: bool) -> Self {
        self.danger_allow_simulated = allow;
        self
    }

    /// Bounds each [`Client::attest`] and [`Client::request`] as a whole.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the URL and the policy and builds the client. No connection is made yet.
    pub fn build(self) -> Result<Client, ClientError> {
        let url = GatewayUrl::parse(&self.url)?;
        let policy = crate::policy::require_non_empty(self.policy)?;
        let verifier = Arc::new(
            AttestedServerVerifier::new(policy).danger_allow_simulated(self.danger_allow_simulated),
        );
        Ok(Client {
            inner: Arc::new(Inner {
                url,
                connector: AttestedConnector::new(verifier)?,
                timeout: self.timeout,
            }),
        })
    }
}

/// A JSON-RPC client for one chain of one Shroud gateway. Cheap to clone.
///
/// Every call opens a fresh attested connection (verdicts are cached per certificate, so only
/// the first handshake pays for verification); pooling comes with the full SDK.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: GatewayUrl,
    connector: AttestedConnector,
    timeout: Duration,
}

impl Client {
    /// Starts configuring a client for `url`, of the form `https://HOST:PORT/CHAIN`.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            policy: Policy::default(),
            danger_allow_simulated: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The gateway URL.
    pub fn url(&self) -> &GatewayUrl {
        &self.inner.url
    }

    /// Connects and completes an attested TLS handshake without sending anything, and returns
    /// what the verification established.
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
    /// The request is written only after the gateway passed attestation. A JSON-RPC error
    /// answer is [`ClientError::JsonRpc`].
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let body = Bytes::from(jsonrpc::request_body(CALL_ID, method, params));
        self.with_timeout(async {
            let connection = self.inner.connector.connect(&self.inner.url).await?;
            let (status, body) = post(connection, &self.inner.url, body).await?;
            jsonrpc::parse_response(CALL_ID, status, &body)
        })
        .await
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

/// Sends one `POST` on the attested connection, in the negotiated HTTP version.
async fn post(
    connection: AttestedConnection,
    url: &GatewayUrl,
    body: Bytes,
) -> Result<(http::StatusCode, Bytes), ClientError> {
    let io = TokioIo::new(connection.stream);
    let builder = http::Request::post(url.path_and_query())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json");
    let response = match connection.http_version {
        HttpVersion::Http1 => {
            let (mut sender, driver) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(transport)?;
            let _driver = AbortOnDrop(tokio::spawn(async move {
                driver.await.ok();
            }));
            let request = builder
                .header(http::header::HOST, url.authority())
                .body(Full::new(body))
                .map_err(|e| invalid_request(url, e))?;
            sender.send_request(request).await.map_err(transport)?
        }
        HttpVersion::Http2 => {
            let (mut sender, driver) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(transport)?;
            let _driver = AbortOnDrop(tokio::spawn(async move {
                driver.await.ok();
            }));
            // HTTP/2 takes :scheme and :authority from an absolute URI.
            let uri = format!("https://{}{}", url.authority(), url.path_and_query());
            let request = builder
                .uri(uri)
                .body(Full::new(body))
                .map_err(|e| invalid_request(url, e))?;
            sender.send_request(request).await.map_err(transport)?
        }
    };
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_LEN)
        .collect()
        .await
        .map_err(ClientError::Transport)?
        .to_bytes();
    Ok((status, body))
}

/// Stops a connection driver when the call is over (or cancelled by the timeout).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
