//! The transport under [`Client::jsonrpsee_client`](crate::Client::jsonrpsee_client): jsonrpsee's
//! HTTP client with its hyper-rustls backend replaced by the SDK's attested, pooled connections.
//!
//! jsonrpsee builds its requests, ids and batches itself and hands each HTTP request to a tower
//! service. hyper-rustls, which jsonrpsee would otherwise use, sets the ALPN list itself and
//! refuses a TLS config that has one, so it cannot offer `shroud-ra-tls/1` (DESIGN §4.1). The
//! [`AttestedLayer`] put in jsonrpsee's HTTP middleware slot therefore discards the backend it
//! wraps and posts every body through the [`Client`](crate::Client)'s own connector: the same ALPN list
//! (`h2`, `http/1.1`, `shroud-ra-tls/1`), the same attestation in the handshake before a byte is
//! written, and the same pool bound to the verified key.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use jsonrpsee::core::http_helpers::HttpError;
use jsonrpsee::http_client::transport::{Error as TransportError, HttpBackend};
use jsonrpsee::http_client::{HttpRequest, HttpResponse, RpcLogger, RpcService};

use crate::ClientError;

/// The largest request body passed on: jsonrpsee's own default limit (10 MiB).
const MAX_REQUEST_LEN: usize = 10 * 1024 * 1024;

/// The jsonrpsee client [`Client::jsonrpsee_client`](crate::Client::jsonrpsee_client) returns:
/// jsonrpsee's `HttpClient` (with its default request logger) over [`AttestedTransport`].
pub type JsonrpseeClient =
    jsonrpsee::http_client::HttpClient<RpcLogger<RpcService<AttestedTransport>>>;

/// One attempt of posting a JSON-RPC body over attested connections, bounded by a timeout:
/// the [`Client`](crate::Client) (which implements it), named here as a trait so that this
/// module sits below the client and does not import it.
pub(crate) trait PostOnce: Send + Sync + 'static {
    /// The answer's HTTP status and body.
    fn post_once(&self, body: Bytes) -> Posting<'_>;
}

/// The answer of [`PostOnce::post_once`]: HTTP status and body.
pub(crate) type Posting<'a> =
    Pin<Box<dyn Future<Output = Result<(http::StatusCode, Bytes), ClientError>> + Send + 'a>>;

/// The tower layer that puts [`AttestedTransport`] in place of jsonrpsee's HTTP backend.
#[derive(Clone)]
pub struct AttestedLayer {
    client: Arc<dyn PostOnce>,
}

impl std::fmt::Debug for AttestedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestedLayer").finish_non_exhaustive()
    }
}

impl AttestedLayer {
    /// A layer posting through `client`'s attested connections.
    pub(crate) fn new(client: Arc<dyn PostOnce>) -> Self {
        Self { client }
    }
}

impl tower::Layer<HttpBackend> for AttestedLayer {
    type Service = AttestedTransport;

    fn layer(&self, _unused: HttpBackend) -> AttestedTransport {
        // The backend jsonrpsee built is dropped unused: nothing goes through hyper-rustls.
        AttestedTransport {
            client: Arc::clone(&self.client),
        }
    }
}

/// jsonrpsee's HTTP service, posting each request body to the [`Client`](crate::Client)'s gateway URL over an
/// attested connection (pooled, bound to the verified key) and bounded by its timeout. The
/// request's own URI and headers are those jsonrpsee derived from the same URL; the SDK writes
/// its own.
#[derive(Clone)]
pub struct AttestedTransport {
    client: Arc<dyn PostOnce>,
}

impl std::fmt::Debug for AttestedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestedTransport").finish_non_exhaustive()
    }
}

type Responding =
    Pin<Box<dyn Future<Output = Result<HttpResponse<Full<Bytes>>, TransportError>> + Send>>;

impl tower::Service<HttpRequest> for AttestedTransport {
    type Response = HttpResponse<Full<Bytes>>;
    type Error = TransportError;
    type Future = Responding;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequest) -> Responding {
        let client = Arc::clone(&self.client);
        Box::pin(async move {
            let body = Limited::new(request.into_body(), MAX_REQUEST_LEN)
                .collect()
                .await
                .map_err(|e| TransportError::Http(HttpError::Stream(e)))?
                .to_bytes();
            let (status, body) = client.post_once(body).await.map_err(stream_error)?;
            http::Response::builder()
                .status(status)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body))
                .map_err(|e| stream_error(ClientError::InvalidResponse(e.to_string())))
        })
    }
}

fn stream_error(error: ClientError) -> TransportError {
    TransportError::Http(HttpError::Stream(Box::new(error)))
}
