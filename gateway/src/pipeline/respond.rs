//! `respond`: the one place that turns pipeline results and errors into HTTP responses,
//! JSON-RPC error objects and log levels. Responses carry only the headers chosen here.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::parse::CallShape;

/// The response body type of every route.
pub(crate) type Body = Full<Bytes>;

/// JSON-RPC: invalid JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request object.
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: internal error.
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined server error: the upstream could not answer.
pub(crate) const UPSTREAM_ERROR: i64 = -32000;

/// Everything that can go wrong between accepting a request and answering it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PipelineError {
    /// No such route.
    #[error("not found")]
    NotFound,
    /// The path names no configured chain.
    #[error("unknown chain")]
    UnknownChain,
    /// Known path, wrong HTTP method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `content-type` is not `application/json`.
    #[error("content-type must be application/json")]
    UnsupportedMediaType,
    /// The body exceeds the limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body could not be read (client went away or sent a malformed body).
    #[error("could not read the request body")]
    BodyRead,
    /// The body is not JSON.
    #[error("parse error")]
    Parse,
    /// JSON, but not a JSON-RPC request or batch.
    #[error("invalid request")]
    InvalidRequest,
    /// No upstream accepted a connection.
    #[error("upstream unavailable")]
    UpstreamUnavailable,
    /// The upstream did not answer in time.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The upstream connection failed after the request was sent.
    #[error("upstream connection failed")]
    UpstreamFailed,
    /// The upstream answered something that is not JSON (or too large).
    #[error("upstream returned an invalid response")]
    UpstreamInvalidResponse,
    /// The upstream answered a non-JSON HTTP error.
    #[error("upstream returned HTTP {0}")]
    UpstreamStatus(u16),
    /// A gateway bug.
    #[error("internal error")]
    Internal,
}

impl PipelineError {
    /// The HTTP status of the response.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NotFound | Self::UnknownChain => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead => StatusCode::BAD_REQUEST,
            // JSON-RPC level failures travel in a 200, as wallets expect.
            Self::Parse
            | Self::InvalidRequest
            | Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::UpstreamFailed
            | Self::UpstreamInvalidResponse
            | Self::UpstreamStatus(_)
            | Self::Internal => StatusCode::OK,
        }
    }

    /// The JSON-RPC error code.
    pub(crate) fn code(&self) -> i64 {
        match self {
            Self::Parse => PARSE_ERROR,
            Self::NotFound
            | Self::UnknownChain
            | Self::MethodNotAllowed
            | Self::UnsupportedMediaType
            | Self::PayloadTooLarge
            | Self::BodyRead
            | Self::InvalidRequest => INVALID_REQUEST,
            Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::UpstreamFailed
            | Self::UpstreamInvalidResponse
            | Self::UpstreamStatus(_) => UPSTREAM_ERROR,
            Self::Internal => INTERNAL_ERROR,
        }
    }

    /// Logs the error at its level. Never with anything that identifies the client.
    pub(crate) fn log(&self) {
        match self {
            Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::UpstreamFailed
            | Self::UpstreamInvalidResponse
            | Self::UpstreamStatus(_) => tracing::warn!(error = %self, "relay failed"),
            Self::Internal => tracing::error!(error = %self, "relay failed"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
    }
}

/// A JSON-RPC error object with `id`.
fn error_object(error: &PipelineError, id: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": error.code(), "message": error.to_string() },
    })
}

/// The response for `error` when the request's ids are unknown (before or during parsing).
pub(crate) fn error_response(error: &PipelineError) -> Response<Body> {
    error.log();
    json_response(error.status(), &error_object(error, Value::Null))
}

/// The response for `error` after parsing: one error per call, in the client's shape.
pub(crate) fn call_error_response(error: &PipelineError, shape: &CallShape) -> Response<Body> {
    error.log();
    let body = match shape {
        CallShape::Single { id } => error_object(error, id.clone()),
        CallShape::Batch { ids } => {
            let errors: Vec<Value> = ids
                .iter()
                .flatten()
                .map(|id| error_object(error, id.clone()))
                .collect();
            if errors.is_empty() {
                // A batch of notifications expects nothing, but an empty 200 would hide the
                // failure: answer one error under id null.
                error_object(error, Value::Null)
            } else {
                Value::Array(errors)
            }
        }
    };
    json_response(error.status(), &body)
}

/// `200 application/json` with bytes that are already JSON.
pub(crate) fn json_bytes_response(body: Bytes) -> Response<Body> {
    with_content_type(StatusCode::OK, "application/json", body)
}

/// `status` with `value` serialised as JSON.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    // Serialising a `Value` cannot fail (its keys are strings).
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_content_type(status, "application/json", Bytes::from(body))
}

/// `200 text/plain`.
pub(crate) fn text_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    with_content_type(status, content_type, body.into())
}

fn with_content_type(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_errors_skip_notifications() {
        let shape = CallShape::Batch {
            ids: vec![Some(json!(1)), None, Some(json!("x"))],
        };
        let response = call_error_response(&PipelineError::UpstreamTimeout, &shape);
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn codes() {
        assert_eq!(PipelineError::Parse.code(), -32700);
        assert_eq!(PipelineError::Parse.status(), StatusCode::OK);
        assert_eq!(
            PipelineError::UnsupportedMediaType.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
