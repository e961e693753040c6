//! instant-acme's HTTP client: the gateway's own outbound client, so that the CA is reached
//! through the egress path like every other destination (DESIGN §4.4), with a deadline per
//! exchange and a bound on what an answer may hold.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Limited;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use instant_acme::{BodyWrapper, BytesResponse, Error};
use rustls::pki_types::CertificateDer;

use crate::egress::{Dialer, https_client_with_roots};
use crate::error::GatewayError;
use crate::transport::EgressProxy;

/// How long one exchange with the CA may take, answer body excluded (the whole order has its
/// own deadline, [`super::schedule::ORDER_TIMEOUT`]).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer accepted: directories, orders and certificate chains are a few KiB.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// How long an idle connection to the CA is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The client instant-acme talks to the CA with.
pub(super) struct AcmeHttp {
    client: Client<HttpsConnector<Dialer>, BodyWrapper<Bytes>>,
}

impl AcmeHttp {
    /// HTTPS only, the web PKI roots and `extra_roots`, through `egress` when configured.
    pub(super) fn new(
        egress: Option<&Arc<EgressProxy>>,
        extra_roots: &[CertificateDer<'static>],
    ) -> Result<Self, GatewayError> {
        Ok(Self {
            client: https_client_with_roots(false, IDLE_TIMEOUT, egress, extra_roots)?,
        })
    }
}

impl instant_acme::HttpClient for AcmeHttp {
    fn request(
        &self,
        request: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        let answer = self.client.request(request);
        Box::pin(async move {
            let response = tokio::time::timeout(EXCHANGE_TIMEOUT, answer)
                .await
                .map_err(|_| Error::Str("the ACME server did not answer in time"))?
                .map_err(|e| Error::Other(Box::new(e)))?;
            let (parts, body) = response.into_parts();
            Ok(BytesResponse::from(Response::from_parts(
                parts,
                Limited::new(body, MAX_ANSWER_BYTES),
            )))
        })
    }
}
