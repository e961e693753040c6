//! The HTTP routes of the RA-TLS listener (DESIGN §6), independent of the transport so they can
//! be driven in-process.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::json;
use shroud_ra_tls::tls::RotatingCertResolver;

use crate::pipeline::respond::{self, Body};
use crate::pipeline::{PipelineError, forward, parse};
use crate::upstream::{Chain, HttpClient};

/// Largest request body accepted.
pub(crate) const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// The attestation bundle route (DESIGN §4.2).
pub(crate) const ATTESTATION_PATH: &str = "/.well-known/shroud/attestation";

/// What every connection shares.
pub(crate) struct AppState {
    /// The chains, by name.
    pub(crate) chains: HashMap<String, Chain>,
    /// The pooled upstream client.
    pub(crate) client: HttpClient,
    /// The certificate currently served, for the attestation bundle.
    pub(crate) resolver: Arc<RotatingCertResolver>,
    /// Deadline of the whole upstream exchange.
    pub(crate) upstream_timeout: Duration,
}

/// Routes one request.
pub(crate) async fn handle<B>(state: Arc<AppState>, request: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::GET, "/healthz") => {
            respond::text_response(StatusCode::OK, "text/plain; charset=utf-8", "ok")
        }
        (&Method::GET, ATTESTATION_PATH) => attestation(&state),
        (_, "/healthz" | ATTESTATION_PATH) => {
            respond::error_response(&PipelineError::MethodNotAllowed)
        }
        _ => {
            let Some(chain_name) = path.strip_prefix('/').filter(|p| !p.contains('/')) else {
                return respond::error_response(&PipelineError::NotFound);
            };
            let Some(chain) = state.chains.get(chain_name) else {
                return respond::error_response(&PipelineError::UnknownChain);
            };
            if request.method() != Method::POST {
                return respond::error_response(&PipelineError::MethodNotAllowed);
            }
            relay(&state, chain, request).await
        }
    }
}

/// `POST /{chain}`: parse, forward, respond.
async fn relay<B>(state: &AppState, chain: &Chain, request: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if !is_json(request.headers()) {
        return respond::error_response(&PipelineError::UnsupportedMediaType);
    }
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(e) => return respond::error_response(&e),
    };
    let call = match parse::parse(&body) {
        Ok(call) => call,
        Err(e) => return respond::error_response(&e),
    };
    drop(body);
    match forward::forward(&state.client, chain, &call, state.upstream_timeout).await {
        Ok(answer) => respond::json_bytes_response(answer),
        Err(e) => respond::call_error_response(&e, call.shape()),
    }
}

/// `content-type: application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

async fn read_body<B>(request: Request<B>) -> Result<Bytes, PipelineError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_REQUEST_BYTES as u64) {
        return Err(PipelineError::PayloadTooLarge);
    }
    Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                PipelineError::PayloadTooLarge
            } else {
                PipelineError::BodyRead
            }
        })
}

/// `GET /.well-known/shroud/attestation`: the certificate currently served. Endorsements and
/// OHTTP keys arrive with the hardware platforms and the OHTTP gateway.
fn attestation(state: &AppState) -> Response<Body> {
    let Some(certificate) = state.resolver.current_certificate() else {
        return respond::error_response(&PipelineError::Internal);
    };
    let certificate = base64::engine::general_purpose::STANDARD.encode(certificate.as_ref());
    respond::json_response(
        StatusCode::OK,
        &json!({ "certificate": certificate, "endorsements": null, "ohttp_keys": null }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("text/plain", false),
            ("application/jsonx", false),
            ("message/ohttp-req", false),
        ] {
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), ok, "{value}");
        }
    }
}
