//! One encapsulated request: open, check, relay through the pipeline, seal the answer.
//!
//! Refusals before the request is opened (unknown key, undecryptable, replayed) are plain
//! `application/problem+json` answers: whoever sent them cannot read a sealed one anyway. Once
//! opened, every answer, errors included, is sealed to the client.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::json;
use shroud_ohttp::message::{self, BinaryRequest};
use shroud_ohttp::{OhttpError, PROBLEM_KEY, RESPONSE_MEDIA_TYPE, ResponseSealer, request_key_id};

use super::cors;
use crate::pipeline::respond::Body;
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
        Err(refusal) => (refusal.outcome(), refusal.response()),
    };
    state.relay.metrics.ohttp(outcome);
    cors::allow_any_origin(response)
}

/// Why a request got no sealed answer.
enum Refusal {
    Body(PipelineError),
    UnknownKey,
    Invalid,
    Replayed,
    Seal,
}

impl Refusal {
    fn outcome(&self) -> &'static str {
        match self {
            Refusal::Body(_) => "bad_body",
            Refusal::UnknownKey => "unknown_key",
            Refusal::Invalid => "invalid",
            Refusal::Replayed => "replayed",
            Refusal::Seal => "error",
        }
    }

    fn response(&self) -> Response<Body> {
        let (status, kind, title) = match self {
            Refusal::Body(error) => return crate::pipeline::respond::error_response(error),
            Refusal::UnknownKey => (
                StatusCode::UNPROCESSABLE_ENTITY,
                PROBLEM_KEY,
                "unknown OHTTP key id: fetch /.well-known/ohttp-gateway again",
            ),
            Refusal::Invalid => (
                StatusCode::BAD_REQUEST,
                "about:blank",
                "undecryptable OHTTP request",
            ),
            Refusal::Replayed => (
                StatusCode::BAD_REQUEST,
                "about:blank",
                "replayed OHTTP request",
            ),
            Refusal::Seal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "about:blank",
                "internal error",
            ),
        };
        problem(status, kind, title)
    }
}

fn problem(status: StatusCode, kind: &str, title: &str) -> Response<Body> {
    let body = json!({ "type": kind, "title": title, "status": status.as_u16() });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

async fn exchange<B>(
    state: &AppState,
    client: ClientKey,
    outer: Option<Arc<Chain>>,
    request: Request<B>,
) -> Result<Response<Body>, Refusal>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let ohttp = &state.ohttp;
    let body = read_body(&state.limits, request)
        .await
        .map_err(Refusal::Body)?;
    let key_id = request_key_id(&body).ok_or(Refusal::Invalid)?;
    let key = ohttp.key(key_id).ok_or(Refusal::UnknownKey)?;
    let opened = key.open_request(&body).map_err(|e| match e {
        OhttpError::UnknownKey(_) => Refusal::UnknownKey,
        _ => Refusal::Invalid,
    })?;
    drop(body);
    // Replays are checked once the request proved authentic, so junk cannot fill the cache.
    if !ohttp.first_use(&opened.enc).await {
        return Err(Refusal::Replayed);
    }
    let sealer = opened.sealer;
    let inner = match message::decode_request(&opened.bhttp) {
        Ok(inner) => inner,
        Err(_) => {
            return sealed_problem(
                state,
                &sealer,
                StatusCode::BAD_REQUEST,
                "malformed binary HTTP request",
            )
            .await;
        }
    };
    let now = unix_now();
    let window = ohttp.config.replay_window_secs;
    match inner.date {
        Some(date) if date.abs_diff(now) <= window => {}
        _ => {
            return sealed_problem(
                state,
                &sealer,
                StatusCode::BAD_REQUEST,
                "the date header is missing or outside the accepted window",
            )
            .await;
        }
    }
    let chain = match target(state, outer.as_ref(), &inner) {
        Ok(chain) => chain,
        Err(error) => {
            error.log();
            let response = crate::pipeline::respond::error_response(&error);
            return seal_response(state, &sealer, response).await;
        }
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
    let name = inner
        .path
        .strip_prefix('/')
        .filter(|p| !p.contains('/'))
        .ok_or(PipelineError::NotFound)?;
    let chain = state
        .chains
        .get(name)
        .cloned()
        .ok_or(PipelineError::UnknownChain)?;
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
) -> Result<Response<Body>, Refusal> {
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
        .map_err(|_| Refusal::Seal)?;
    let sealed = sealer.seal(&bhttp).map_err(|_| Refusal::Seal)?;
    let mut response = Response::new(Body::from(sealed));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(RESPONSE_MEDIA_TYPE));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn sealed_problem(
    state: &AppState,
    sealer: &ResponseSealer,
    status: StatusCode,
    title: &str,
) -> Result<Response<Body>, Refusal> {
    seal_response(state, sealer, problem(status, "about:blank", title)).await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
