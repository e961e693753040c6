//! [`ObliviousClient`]: the native SDK over Oblivious HTTP (DESIGN §4.3), for programs that
//! reach the gateway through TLS-terminating infrastructure (a CDN, a load balancer) that hides
//! the RA-TLS certificate, or through an OHTTP relay so that the enclave never sees their
//! address.
//!
//! [`ObliviousClientBuilder::connect`] fetches the attestation bundle, verifies the
//! certificate's evidence against the pins and checks that the served OHTTP keys are the
//! attested ones, all before anything is sealed. Every call is then sealed to those keys
//! ([`ohttp::Session`]), so whatever carries it (TLS, a CDN, the relay) sees only
//! `message/ohttp-req` ciphertext. TLS to the front end checks the WebPKI roots unless
//! [`ObliviousClientBuilder::tls_config`] says otherwise; the trust in the enclave does not
//! rest on it.
//!
//! A verdict holds until its [`expires_at`](Verdict::expires_at), the earlier of the
//! certificate's expiry and the evidence's (its chain and collateral). Before sealing a call
//! past that instant the client fetches and verifies the bundle again, and seals nothing when
//! the new one is refused.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use shroud_ra_tls::{UnixTime, Verdict, VerifyOptions};

use crate::bundle::{AttestationBundle, BUNDLE_PATH};
use crate::connect::{GatewayUrl, is_loopback_host};
use crate::exchange::{self, Answer, Channel};
use crate::ohttp::{self, REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE};
use crate::options::{Checked, Options};
use crate::{ClientError, Policy, jsonrpc};

/// The largest attestation bundle read (a certificate with evidence, collateral and keys).
const MAX_BUNDLE_LEN: usize = 1024 * 1024;
/// The largest encapsulated answer read.
const MAX_RESPONSE_LEN: usize = 64 * 1024 * 1024;

type Connector = HttpsConnector<HttpConnector>;

/// The client's clock: the system's, or one injected for tests.
type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// Configures an [`ObliviousClient`]: the options of a [`ClientBuilder`](crate::ClientBuilder)
/// (pins or policy, simulated opt-in, timeout, retries) plus the relay and the TLS
/// configuration of the front end. Obtained from [`ObliviousClient::builder`].
#[derive(Clone)]
#[must_use]
pub struct ObliviousClientBuilder {
    /// What every client shares: URL, trust, timeout, retries.
    options: Options,
    relay: Option<String>,
    tls: Option<rustls::ClientConfig>,
    clock: Clock,
}

impl std::fmt::Debug for ObliviousClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObliviousClientBuilder")
            .field("options", &self.options)
            .field("relay", &self.relay)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl ObliviousClientBuilder {
    /// Accept exactly the builds `policy` describes. See
    /// [`ClientBuilder::policy`](crate::ClientBuilder::policy).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.options.policy = policy;
        self
    }

    /// Adds one pin, e.g. `tdx:mrtd=HEX` (with `tdx:rtmr0..2`: a rule must pin a complete
    /// identity). See [`ClientBuilder::pin`](crate::ClientBuilder::pin).
    pub fn pin(mut self, pin: impl Into<String>) -> Self {
        self.options.pins.push(pin.into());
        self
    }

    /// Accepts the simulated TEE (development only). See
    /// [`ClientBuilder::danger_allow_simulated`](crate::ClientBuilder::danger_allow_simulated).
    pub fn danger_allow_simulated(mut self, allow: bool) -> Self {
        self.options.danger_allow_simulated = allow;
        self
    }

    /// Bounds every attempt (the bundle fetch, each call). See
    /// [`ClientBuilder::timeout`](crate::ClientBuilder::timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// Retries of idempotent reads. See
    /// [`ClientBuilder::retries`](crate::ClientBuilder::retries). A retry is sealed afresh, so
    /// the gateway's replay protection never refuses it.
    pub fn retries(mut self, retries: u32) -> Self {
        self.options.retries = retries;
        self
    }

    /// Posts the sealed calls to this OHTTP relay (RFC 9458 §2) instead of to the gateway, so
    /// that the gateway never sees this client's address. The bundle is still fetched from the
    /// gateway itself, once, at [`connect`](Self::connect). `https://`, or `http://` to a
    /// loopback address.
    pub fn relay(mut self, url: impl Into<String>) -> Self {
        self.relay = Some(url.into());
        self
    }

    /// The TLS configuration towards the gateway's front end and the relay, instead of the
    /// WebPKI roots: your own roots, or (to reach a gateway directly) the RA-TLS verifier of
    /// [`shroud_ra_tls::tls::client_config`]. ALPN is set by the client: `h2` and `http/1.1`,
    /// plus `shroud-ra-tls/1` when `config` offers it (as `client_config` does), so that a
    /// gateway with a public certificate serves the RA-TLS one.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Checks the options, fetches and verifies the attestation bundle, and returns a client
    /// whose calls are sealed to the attested keys. A refused bundle is an error of kind
    /// [`Attestation`](crate::ErrorKind::Attestation) or
    /// [`PinMismatch`](crate::ErrorKind::PinMismatch), and no call is ever sealed.
    pub async fn connect(self) -> Result<ObliviousClient, ClientError> {
        let checked = self.options.check()?;
        let target = match &self.relay {
            Some(relay) => relay_uri(relay)?,
            None => uri(&checked.url, checked.url.path_and_query())?,
        };
        let http = http_client(self.tls)?;
        let session = verified_session(&http, &checked, (self.clock)()).await?;
        Ok(ObliviousClient {
            inner: Arc::new(Inner {
                http,
                target,
                session: RwLock::new(Arc::new(session)),
                refresh: tokio::sync::Mutex::new(()),
                checked,
                clock: self.clock,
            }),
        })
    }

    /// Replaces the system clock, by which verdicts are checked and expire. For tests, and for
    /// programs with a clock of their own.
    pub fn clock(mut self, clock: impl Fn() -> UnixTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

/// Fetches the bundle, verifies it at `now` against the policy and makes the session that seals
/// calls to its keys.
async fn verified_session(
    http: &HttpClient<Connector, Full<Bytes>>,
    checked: &Checked,
    now: UnixTime,
) -> Result<ohttp::Session, ClientError> {
    let bundle = fetch_bundle(http, checked).await?;
    let options = VerifyOptions {
        danger_allow_simulated: checked.danger_allow_simulated,
        ..VerifyOptions::at(now)
    };
    let verified = AttestationBundle::from_json(&bundle)
        .and_then(|b| b.verify(&checked.policy, &options))
        .map_err(ClientError::from_bundle)?;
    let chain = checked.url.path_and_query().trim_start_matches('/');
    Ok(ohttp::Session::new(verified, chain)?)
}

/// A JSON-RPC client for one chain of one Shroud gateway over Oblivious HTTP. Cheap to clone;
/// clones share the connection pool and the verified keys.
///
/// ```no_run
/// # async fn example() -> Result<(), shroud_client::ClientError> {
/// use shroud_client::ObliviousClient;
///
/// let client = ObliviousClient::builder("https://gateway.example/eth")
///     .pin("tdx:mrtd=…96 hex digits…")
///     .pin("tdx:rtmr0=…")
///     .pin("tdx:rtmr1=…")
///     .pin("tdx:rtmr2=…")
///     .relay("https://relay.example/shroud")
///     .connect()
///     .await?;
/// let block = client.request("eth_blockNumber", serde_json::json!([])).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ObliviousClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient<Connector, Full<Bytes>>,
    /// Where sealed calls are posted: the relay, or the gateway's chain URL.
    target: http::Uri,
    /// The verified keys; replaced when its verdict has expired.
    session: RwLock<Arc<ohttp::Session>>,
    /// Held while the bundle is fetched again, so that one expiry causes one re-verification.
    refresh: tokio::sync::Mutex<()>,
    checked: Checked,
    clock: Clock,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("target", &self.target)
            .field("checked", &self.checked)
            .finish_non_exhaustive()
    }
}

impl ObliviousClient {
    /// Starts configuring a client for `url`, of the form `https://HOST[:PORT]/CHAIN`.
    pub fn builder(url: impl Into<String>) -> ObliviousClientBuilder {
        ObliviousClientBuilder {
            options: Options::new(url.into()),
            relay: None,
            tls: None,
            clock: Arc::new(UnixTime::now),
        }
    }

    /// What the gateway's attestation established (the latest verification).
    pub fn verdict(&self) -> Verdict {
        self.session().verified().verdict().clone()
    }

    /// The attested `application/ohttp-keys` every call is sealed to.
    pub fn ohttp_keys(&self) -> Vec<u8> {
        self.session().verified().ohttp_keys().to_vec()
    }

    fn session(&self) -> Arc<ohttp::Session> {
        // A panic while the lock was held cannot leave the Arc half written: use it.
        Arc::clone(
            &self
                .inner
                .session
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The session to seal with at `now`: the current one while its verdict holds, else a
    /// freshly fetched and verified one. Nothing is sealed to keys whose verdict has expired.
    async fn session_at(&self, now: UnixTime) -> Result<Arc<ohttp::Session>, ClientError> {
        let current = self.session();
        if now.as_secs() <= current.verified().verdict().expires_at() {
            return Ok(current);
        }
        let _refreshing = self.inner.refresh.lock().await;
        // Another call may have refreshed it while this one waited.
        let current = self.session();
        if now.as_secs() <= current.verified().verdict().expires_at() {
            return Ok(current);
        }
        let fresh = Arc::new(verified_session(&self.inner.http, &self.inner.checked, now).await?);
        *self
            .inner
            .session
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }

    /// Calls `method` with `params` (`Value::Null` for none) and returns the JSON-RPC `result`.
    /// Idempotent reads are retried on network failures, each time sealed afresh.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        exchange::request(self, method, params).await
    }

    /// Sends `calls` as one JSON-RPC batch in one sealed request and returns one result per
    /// call, in call order. An empty batch sends nothing.
    pub async fn batch<'a>(
        &self,
        calls: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
        exchange::batch(self, calls).await
    }

    /// Seals a JSON-RPC body as it is and returns the inner HTTP status and body of the
    /// answer, unparsed.
    pub async fn request_raw(&self, body: Bytes) -> Result<(http::StatusCode, Bytes), ClientError> {
        exchange::request_raw(self, body).await
    }
}

impl Channel for ObliviousClient {
    /// Seals `body`, posts it, opens the answer: the inner status and body.
    async fn attempt(&self, body: Bytes) -> Result<Answer, ClientError> {
        let now = (self.inner.clock)();
        let mut sealed = self.session_at(now).await?.seal(&body, now.as_secs())?;
        let request = http::Request::post(self.inner.target.clone())
            .header(http::header::CONTENT_TYPE, REQUEST_MEDIA_TYPE)
            .header(http::header::ACCEPT, RESPONSE_MEDIA_TYPE)
            .body(Full::new(Bytes::from(std::mem::take(&mut sealed.body))));
        let answer = fetch(
            &self.inner.http,
            request,
            Some(RESPONSE_MEDIA_TYPE),
            MAX_RESPONSE_LEN,
        )
        .await?;
        let inner = sealed.open(&answer)?;
        let status = http::StatusCode::from_u16(inner.status).map_err(|_| {
            ClientError::InvalidResponse(format!("inner HTTP status {}", inner.status))
        })?;
        Ok((status, Bytes::from(inner.body)))
    }

    fn broken(&self) {
        // Nothing to drop: hyper-util's pool discards broken connections itself, and the
        // verified session stays valid after a network failure.
    }

    fn timeout(&self) -> Duration {
        self.inner.checked.timeout
    }

    fn retries(&self) -> u32 {
        self.inner.checked.retries
    }
}

/// `GET /.well-known/shroud/attestation` from the gateway's origin, bounded by the timeout.
async fn fetch_bundle(
    http: &HttpClient<Connector, Full<Bytes>>,
    checked: &Checked,
) -> Result<Bytes, ClientError> {
    let request = http::Request::get(uri(&checked.url, BUNDLE_PATH)?)
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()));
    tokio::time::timeout(checked.timeout, fetch(http, request, None, MAX_BUNDLE_LEN))
        .await
        .unwrap_or_else(|_| Err(ClientError::Timeout(checked.timeout)))
}

/// Sends `request` and reads its answer, at most `limit` bytes. Anything but a 200 (of
/// `media_type`, when given) is [`ClientError::Http`] quoting the start of the body.
async fn fetch(
    http: &HttpClient<Connector, Full<Bytes>>,
    request: Result<http::Request<Full<Bytes>>, http::Error>,
    media_type: Option<&str>,
    limit: usize,
) -> Result<Bytes, ClientError> {
    let request = request.map_err(|e| ClientError::Transport(Box::new(e)))?;
    let uri = request.uri().clone();
    let response = http
        .request(request)
        .await
        .map_err(|e| send_error(&uri, e))?;
    let status = response.status();
    let expected_type = media_type.is_none_or(|t| has_media_type(&response, t));
    let body = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(ClientError::Transport)?
        .to_bytes();
    if status == http::StatusCode::OK && expected_type {
        Ok(body)
    } else {
        Err(ClientError::Http {
            status,
            body: jsonrpc::quote(&body),
        })
    }
}

fn http_client(
    tls: Option<rustls::ClientConfig>,
) -> Result<HttpClient<Connector, Full<Bytes>>, ClientError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    // Plain HTTP only reaches loopback relays: `relay_uri` refuses anything else.
    let connector = match tls {
        Some(mut config) => {
            // hyper-rustls' builder insists on writing the ALPN list itself and would drop
            // `shroud-ra-tls/1`; the connector made directly keeps the list given here.
            config.alpn_protocols = front_end_alpn(&config.alpn_protocols);
            HttpsConnector::from((http, config))
        }
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(shroud_ra_tls::tls::crypto_provider())
            .map_err(|e| ClientError::InvalidOption {
                option: "tls_config",
                reason: format!("the default TLS configuration: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http),
    };
    Ok(HttpClient::builder(TokioExecutor::new()).build(connector))
}

/// The ALPN list offered to the front end: HTTP/2, HTTP/1.1, and `shroud-ra-tls/1` when the
/// caller's configuration offers it. That is an RA-TLS verifier
/// ([`shroud_ra_tls::tls::client_config`]) reaching the gateway directly: without the id, a
/// gateway with a public certificate (DESIGN §4.1, §4.4) would serve that one, which the
/// verifier refuses. A WebPKI configuration must not ask for the RA-TLS certificate.
fn front_end_alpn(offered: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let ra_tls = shroud_ra_tls::tls::RA_TLS_ALPN;
    let mut alpn = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if offered.iter().any(|p| p == ra_tls) {
        alpn.push(ra_tls.to_vec());
    }
    alpn
}

/// `https://{authority}{path}` of the gateway.
fn uri(url: &GatewayUrl, path: &str) -> Result<http::Uri, ClientError> {
    format!("https://{}{path}", url.authority())
        .parse()
        .map_err(|e: http::uri::InvalidUri| ClientError::InvalidUrl {
            url: url.as_str().to_owned(),
            reason: e.to_string(),
        })
}

/// A relay URL: `https://`, or `http://` to a loopback address (a local relay or a test).
fn relay_uri(relay: &str) -> Result<http::Uri, ClientError> {
    let invalid = |reason: String| ClientError::InvalidOption {
        option: "relay",
        reason: format!("{relay:?}: {reason}"),
    };
    let uri: http::Uri = relay.parse().map_err(|e| invalid(format!("{e}")))?;
    let host = uri.host().ok_or_else(|| invalid("no host".into()))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback_host(host) => Ok(uri),
        Some("http") => Err(invalid(
            "plain http:// is only allowed to a loopback relay; use https://".into(),
        )),
        _ => Err(invalid("expected https://HOST[:PORT]/PATH".into())),
    }
}

/// Whether `content-type` is `media_type`, parameters and case aside.
fn has_media_type<B>(response: &http::Response<B>, media_type: &str) -> bool {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| ohttp::media_type_is(v, media_type))
}

/// A failed exchange with `uri`: [`ClientError::Connect`] when no connection was made.
fn send_error(uri: &http::Uri, error: hyper_util::client::legacy::Error) -> ClientError {
    if error.is_connect() {
        ClientError::Connect {
            authority: uri.authority().map_or_else(String::new, |a| a.to_string()),
            source: std::io::Error::other(error),
        }
    } else {
        ClientError::Transport(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_ra_tls_to_the_front_end_only_when_the_caller_does() {
        let ra_tls = shroud_ra_tls::tls::RA_TLS_ALPN.to_vec();
        let http = [b"h2".to_vec(), b"http/1.1".to_vec()];
        assert_eq!(front_end_alpn(&[]), http);
        assert_eq!(front_end_alpn(&[b"http/1.1".to_vec()]), http);
        let attesting = front_end_alpn(&[b"http/1.1".to_vec(), ra_tls.clone()]);
        assert_eq!(attesting, [http[0].clone(), http[1].clone(), ra_tls]);
    }
}
