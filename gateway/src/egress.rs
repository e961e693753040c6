//! Every outbound connection of the gateway (upstreams, health checks, collateral, ACME): the one
//! pooled HTTPS client, dialing either directly over TCP or, inside an enclave that has no
//! network of its own, through the host's egress proxy ([`EgressProxy`], `[egress]`). TLS to
//! the destination is made here, inside the enclave, either way.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::GatewayError;
use crate::transport::{EgressProxy, Stream};

/// How long dialing a destination may take (TCP connect, or the proxy's dial and answer).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The shared outbound client.
pub(crate) type HttpClient = Client<HttpsConnector<Dialer>, Full<Bytes>>;

/// How the client reaches a destination: TCP, or the egress proxy.
#[derive(Debug, Clone)]
pub(crate) enum Dialer {
    /// TCP, with the system resolver.
    Direct(HttpConnector),
    /// Through the egress proxy.
    Proxy(Arc<EgressProxy>),
}

type Dialing = Pin<Box<dyn Future<Output = Result<TokioIo<Stream>, io::Error>> + Send>>;

impl tower_service::Service<Uri> for Dialer {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Dialing;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Self::Direct(http) => http.poll_ready(cx).map_err(io::Error::other),
            Self::Proxy(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        match self {
            Self::Direct(http) => {
                let dialing = http.call(uri);
                Box::pin(async move {
                    let tcp = dialing.await.map_err(io::Error::other)?;
                    Ok(TokioIo::new(Stream::Tcp(tcp.into_inner())))
                })
            }
            Self::Proxy(proxy) => {
                let proxy = Arc::clone(proxy);
                Box::pin(async move {
                    let host = uri
                        .host()
                        .ok_or_else(|| io::Error::other("the URL has no host"))?;
                    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                        Some("http") => 80,
                        _ => 443,
                    });
                    let stream = tokio::time::timeout(CONNECT_TIMEOUT, proxy.connect(host, port))
                        .await
                        .map_err(|_| {
                            io::Error::new(io::ErrorKind::TimedOut, "the egress proxy timed out")
                        })??;
                    Ok(TokioIo::new(stream))
                })
            }
        }
    }
}

/// TCP, or the egress proxy when there is one.
fn dialer(proxy: Option<&Arc<EgressProxy>>) -> Dialer {
    match proxy {
        Some(proxy) => Dialer::Proxy(Arc::clone(proxy)),
        None => {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(CONNECT_TIMEOUT));
            http.set_nodelay(true);
            Dialer::Direct(http)
        }
    }
}

/// What opens the chain follower's WebSocket to an upstream: dialed like the pooled client
/// (TCP, or the egress proxy), TLS with the web PKI roots offering only HTTP/1.1, since a
/// WebSocket upgrade exists only there. Called with the endpoint's `https://`/`http://` form.
pub(crate) type WebSocketConnector = HttpsConnector<Dialer>;

/// The [`WebSocketConnector`]; plain `ws://` only with `allow_plain` (which the configuration
/// allowed).
pub(crate) fn websocket_connector(
    allow_plain: bool,
    proxy: Option<&Arc<EgressProxy>>,
) -> Result<WebSocketConnector, GatewayError> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(Arc::unwrap_or_clone(shroud_ra_tls::tls::crypto_provider()))
        .map_err(|e| GatewayError::UpstreamClient(e.to_string()))?;
    let builder = if allow_plain {
        builder.https_or_http()
    } else {
        builder.https_only()
    };
    Ok(builder.enable_http1().wrap_connector(dialer(proxy)))
}

/// A pooled HTTPS client with the web PKI roots (aws-lc-rs, post-quantum key exchange
/// preferred), HTTP/1.1 and HTTP/2 by ALPN, dialing through `proxy` when there is one; plain
/// `http://` only with `allow_plain_http` (which the configuration allowed).
pub(crate) fn https_client(
    allow_plain_http: bool,
    idle_timeout: Duration,
    proxy: Option<&Arc<EgressProxy>>,
) -> Result<HttpClient, GatewayError> {
    https_client_with_roots(allow_plain_http, idle_timeout, proxy, &[])
}

/// [`https_client`] for any request body type, trusting `extra_roots` besides the web PKI's
/// (a test CA's, `[acme] ca`).
pub(crate) fn https_client_with_roots<B>(
    allow_plain_http: bool,
    idle_timeout: Duration,
    proxy: Option<&Arc<EgressProxy>>,
    extra_roots: &[CertificateDer<'static>],
) -> Result<Client<HttpsConnector<Dialer>, B>, GatewayError>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    let dialer = dialer(proxy);
    let failed = |e: &dyn std::fmt::Display| GatewayError::UpstreamClient(e.to_string());
    let builder = if extra_roots.is_empty() {
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::unwrap_or_clone(
                shroud_ra_tls::tls::crypto_provider(),
            ))
            .map_err(|e| failed(&e))?
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for root in extra_roots {
            roots.add(root.clone()).map_err(|e| failed(&e))?;
        }
        let config = ClientConfig::builder_with_provider(shroud_ra_tls::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| failed(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
    };
    let builder = if allow_plain_http {
        builder.https_or_http()
    } else {
        builder.https_only()
    };
    let connector = builder.enable_http1().enable_http2().wrap_connector(dialer);
    // The idle timeout needs a timer: without one, idle pooled sockets are never closed.
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(idle_timeout)
        .build(connector))
}
