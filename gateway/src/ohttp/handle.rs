//! One encapsulated request: open, check, relay through the pipeline, seal the answer.
//!
//! Refusals before the request is opened (unknown key, undecryptable, replayed) are plain
//! `application/problem+json` answers: whoever sent them cannot read a sealed one anyway. Once
//! opened, every answer, errors included, is sealed to the client. Every error is a
//! [`PipelineError`], classified, answered and logged by the pipeline's one table.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use shroud_ohttp::message::{self, BinaryRequest};
use shroud_ohttp::{OhttpError, RESPONSE_MEDIA_TYPE, ResponseSealer, request_key_id};

use super::cors;
use crate::pipeline::respond::{self, Body};
use crate::pipeline::{self, PipelineError};
use crate::ratelimit::ClientKey;
use crate::request_body::read_body;
use crate::state::AppState;
use crate::upstream::Chain;

/// `content-type: message/ohttp-req`, parameters allowed.
pub(crate) fn is_ohttp_request(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| shroud_ohttp::media_type_is(v, shroud_ohttp::REQUEST_MEDIA_TYPE))
}

/// Handles `POST /ohttp` (`outer` = `None`) or `POST /{chain}` with an encapsulated request.
pub(crate) async fn handle<B>(
    state: &AppState,
    client: ClientKey,
    outer: Option<Arc<Chain>>,
    request: Request<B>,
) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (outcome, response) = match exchange(state, client, outer, request).await {
        Ok(response) => ("ok", response),
        Err(error) => (error.class().ohttp, respond::error_response(&error)),
    };
    state.relay.metrics.ohttp(outcome);
    cors::allow_any_origin(response)
}

async fn exchange<B>(
    state: &AppState,
    client: ClientKey,
    outer: Option<Arc<Chain>>,
    request: Request<B>,
) -> Result<Response<Body>, PipelineError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let ohttp = &state.ohttp;
    let body = read_body(&state.limits, request).await?;
    let key_id = request_key_id(&body).ok_or(PipelineError::OhttpUndecryptable)?;
    let key = ohttp.key(key_id).ok_or(PipelineError::OhttpUnknownKey)?;
    let opened = key.open_request(&body).map_err(|e| match e {
        OhttpError::UnknownKey(_) => PipelineError::OhttpUnknownKey,
        _ => PipelineError::OhttpUndecryptable,
    })?;
    drop(body);
    // Replays are checked once the request proved authentic, so junk cannot fill the cache.
    if !ohttp.first_use(&opened.enc).await {
        return Err(PipelineError::OhttpReplayed);
    }
    let sealer = opened.sealer;
    let Ok(inner) = message::decode_request(&opened.bhttp) else {
        return sealed_error(state, &sealer, &PipelineError::OhttpMalformed).await;
    };
    let now = unix_now();
    let window = ohttp.config.replay_window_secs;
    match inner.date {
        Some(date) if date.abs_diff(now) <= window => {}
        _ => return sealed_error(state, &sealer, &PipelineError::OhttpDate).await,
    }
    let chain = match target(state, outer.as_ref(), &inner) {
        Ok(chain) => chain,
        Err(error) => return sealed_error(state, &sealer, &error).await,
    };
    let response = pipeline::relay(&state.relay, &chain, client, Bytes::from(inner.body)).await;
    seal_response(state, &sealer, response).await
}

/// The chain the inner request names; its method, type and size checked like a plain request's.
fn target(
    state: &AppState,
    outer: Option<&Arc<Chain>>,
    inner: &BinaryRequest,
) -> Result<Arc<Chain>, PipelineError> {
    let chain = state.chain_at(&inner.path)?;
    if outer.is_some_and(|outer| outer.name != chain.name) {
        return Err(PipelineError::NotFound);
    }
    if !inner.method.eq_ignore_ascii_case("POST") {
        return Err(PipelineError::MethodNotAllowed);
    }
    let json = inner
        .content_type
        .as_deref()
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(PipelineError::UnsupportedMediaType);
    }
    if inner.body.len() > state.limits.max_request_bytes {
        return Err(PipelineError::PayloadTooLarge {
            limit: state.limits.max_request_bytes,
        });
    }
    Ok(chain)
}

/// Seals a pipeline answer (status, content type, body) as a padded binary HTTP response.
async fn seal_response(
    state: &AppState,
    sealer: &ResponseSealer,
    response: Response<Body>,
) -> Result<Response<Body>, PipelineError> {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let body = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let buckets = &state.ohttp.config.padding_buckets;
    let bhttp = message::encode_response(status, &content_type, &body, buckets)
        .map_err(|_| PipelineError::OhttpSeal)?;
    let sealed = sealer.seal(&bhttp).map_err(|_| PipelineError::OhttpSeal)?;
    let mut response = Response::new(Body::from(sealed));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(RESPONSE_MEDIA_TYPE));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `error` answered sealed to the client who opened the request.
async fn sealed_error(
    state: &AppState,
    sealer: &ResponseSealer,
    error: &PipelineError,
) -> Result<Response<Body>, PipelineError> {
    seal_response(state, sealer, respond::error_response(error)).await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
