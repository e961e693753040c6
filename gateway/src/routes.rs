//! The HTTP routes of the RA-TLS listener (DESIGN §6), independent of the transport so they can
//! be driven in-process.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request, Response, StatusCode};

use crate::admin;
use crate::attestation;
use crate::ohttp;
use crate::paths;
use crate::pipeline::respond::{self, Body};
use crate::pipeline::{self, PipelineError};
use crate::ratelimit::ClientKey;
use crate::request_body::read_body;
use crate::state::AppState;
use crate::subscriptions::session::{self, Upgrades};

/// Routes one request of the client known by `client`, on a connection whose WebSocket
/// upgrades keep `upgrades`.
pub(crate) async fn handle<B>(
    state: Arc<AppState>,
    client: ClientKey,
    upgrades: &Upgrades,
    request: Request<B>,
) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::GET, paths::HEALTHZ) => {
            respond::text_response(StatusCode::OK, "text/plain; charset=utf-8", "ok")
        }
        (&Method::GET, paths::READYZ) => {
            admin::readiness(&state.chain_list, state.cluster.as_deref())
        }
        (&Method::GET, paths::ATTESTATION) => ohttp::cors::allow_any_origin(
            attestation::bundle(&state, client, request.uri().query()).await,
        ),
        (&Method::GET, paths::OHTTP_KEYS) => ohttp::cors::allow_any_origin(served_keys(&state)),
        (&Method::OPTIONS, _) => ohttp::cors::preflight(),
        (&Method::POST, paths::OHTTP) if ohttp::handle::is_ohttp_request(request.headers()) => {
            ohttp::handle::handle(&state, client, None, request).await
        }
        (
            _,
            paths::HEALTHZ | paths::READYZ | paths::ATTESTATION | paths::OHTTP_KEYS | paths::OHTTP,
        ) => respond::error_response(&PipelineError::MethodNotAllowed),
        _ => {
            let chain = match state.chain_at(path) {
                Ok(chain) => chain,
                Err(error) => return respond::error_response(&error),
            };
            if request.method() == Method::GET {
                if !session::is_upgrade(request.headers()) {
                    return respond::error_response(&PipelineError::UpgradeRequired);
                }
                return session::upgrade(&state, chain, client, request, upgrades);
            }
            if request.method() != Method::POST {
                return respond::error_response(&PipelineError::MethodNotAllowed);
            }
            if ohttp::handle::is_ohttp_request(request.headers()) {
                return ohttp::handle::handle(&state, client, Some(chain), request).await;
            }
            if !is_json(request.headers()) {
                return respond::error_response(&PipelineError::UnsupportedMediaType);
            }
            let body = match read_body(&state.limits, request).await {
                Ok(body) => body,
                Err(e) => {
                    state.relay.metrics.call(&chain.name, "other", e.outcome());
                    return respond::error_response(&e);
                }
            };
            pipeline::relay(&state.relay, &chain, client, body).await
        }
    }
}

/// `/.well-known/ohttp-gateway`: the served key list; 503 while there is none (a clustered
/// replica that does not hold the cluster's secret yet).
fn served_keys(state: &AppState) -> Response<Body> {
    let keys = state.ohttp.served_keys();
    if keys.is_empty() {
        return respond::text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "no OHTTP keys yet: this replica does not hold the cluster's secret yet",
        );
    }
    respond::text_response(StatusCode::OK, shroud_ohttp::KEYS_MEDIA_TYPE, keys)
}

/// `content-type: application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
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
