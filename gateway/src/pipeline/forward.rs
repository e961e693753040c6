//! `forward`: sends a [`SanitizedCall`] to one of the chain's upstreams in a request built from
//! scratch, and reads back a bounded JSON answer.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use rand::Rng;

use super::PipelineError;
use super::parse::SanitizedCall;
use crate::upstream::{self, Chain, HttpClient};

/// The whole exchange with the upstreams (all connection attempts, the request and reading the
/// answer) must finish within this long.
pub(crate) const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest upstream answer relayed (`eth_getLogs` answers can be large).
pub(crate) const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Sends `call` to a random upstream of `chain`, trying the next one when a connection cannot be
/// established (the request has not been sent then, so retrying is safe). Returns the upstream's
/// JSON answer.
pub(crate) async fn forward(
    client: &HttpClient,
    chain: &Chain,
    call: &SanitizedCall,
    timeout: Duration,
) -> Result<Bytes, PipelineError> {
    match tokio::time::timeout(timeout, forward_inner(client, chain, call)).await {
        Ok(result) => result,
        Err(_) => Err(PipelineError::UpstreamTimeout),
    }
}

async fn forward_inner(
    client: &HttpClient,
    chain: &Chain,
    call: &SanitizedCall,
) -> Result<Bytes, PipelineError> {
    let count = chain.upstreams.len();
    if count == 0 {
        return Err(PipelineError::UpstreamUnavailable);
    }
    let start = rand::thread_rng().gen_range(0..count);
    let mut last_error = PipelineError::UpstreamUnavailable;
    for attempt in 0..count {
        let index = (start + attempt) % count;
        let Some(uri) = chain.upstreams.get(index) else {
            continue;
        };
        let request = upstream_request(uri, call.body().clone());
        match client.request(request).await {
            Ok(response) => return read_answer(response).await,
            Err(e) if e.is_connect() => {
                tracing::debug!(chain = %chain.name, upstream = index, "upstream connect failed");
                last_error = PipelineError::UpstreamUnavailable;
            }
            Err(_) => {
                tracing::debug!(chain = %chain.name, upstream = index, "upstream request failed");
                return Err(PipelineError::UpstreamFailed);
            }
        }
    }
    Err(last_error)
}

/// The upstream request, from scratch: method, URI, body and three fixed headers. The client
/// library adds `host` and `content-length`; nothing of the client's request is copied.
fn upstream_request(uri: &http::Uri, body: Bytes) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri.clone();
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(upstream::USER_AGENT));
    request
}

async fn read_answer(
    response: http::Response<hyper::body::Incoming>,
) -> Result<Bytes, PipelineError> {
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                PipelineError::UpstreamInvalidResponse
            } else {
                PipelineError::UpstreamFailed
            }
        })?
        .to_bytes();
    // A JSON answer is relayed whatever the status (JSON-RPC servers put errors in 4xx/5xx
    // bodies too); anything else is an upstream failure, never an empty 200.
    if !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
        return Ok(body);
    }
    if status.is_success() {
        Err(PipelineError::UpstreamInvalidResponse)
    } else {
        Err(PipelineError::UpstreamStatus(status.as_u16()))
    }
}
