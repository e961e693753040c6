//! `respond`: the one place that turns pipeline results and errors into HTTP responses,
//! JSON-RPC error objects and log levels. Responses carry only the headers chosen here.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use serde_json::value::RawValue;

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

/// JSON-RPC: the method does not exist or is not available (denied by policy).
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// EIP-1474 "limit exceeded": the client's rate limit.
pub(crate) const LIMIT_EXCEEDED: i64 = -32005;

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
    #[error("request body too large: the limit is {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body could not be read (client went away or sent a malformed body).
    #[error("could not read the request body")]
    BodyRead,
    /// The body did not arrive within the body read timeout.
    #[error("request body not received in time")]
    BodyTimeout,
    /// The body is not JSON.
    #[error("parse error")]
    Parse,
    /// JSON, but not a valid JSON-RPC request.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// A batch longer than the limit.
    #[error("invalid request: batch of {len} calls exceeds the limit of {max}")]
    BatchTooLarge {
        /// The batch length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The method is unknown or denied by the chain's policy.
    #[error("method not found or not allowed by this gateway")]
    MethodDenied,
    /// The client exceeded its rate limit.
    #[error("rate limit exceeded, retry later")]
    RateLimited,
    /// No upstream accepted a connection.
    #[error("upstream unavailable: no upstream of this chain could be reached")]
    UpstreamUnavailable,
    /// The upstream did not answer in time.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The upstream connection failed after the request was sent.
    #[error("upstream connection failed")]
    UpstreamFailed,
    /// The upstream answered something that is not JSON-RPC.
    #[error("upstream returned an invalid response")]
    UpstreamInvalidResponse,
    /// The upstream's answer exceeds the response size limit.
    #[error("upstream response too large: the limit is {max} bytes")]
    UpstreamTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// The upstream answered an HTTP error without a JSON-RPC body.
    #[error("upstream returned HTTP {0}")]
    UpstreamStatus(u16),
    /// The upstream answered the exchange but not this call.
    #[error("upstream returned no answer for this call")]
    UpstreamNoAnswer,
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
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead => StatusCode::BAD_REQUEST,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            // JSON-RPC level failures travel in a 200, as wallets expect.
            Self::Parse
            | Self::InvalidRequest(_)
            | Self::BatchTooLarge { .. }
            | Self::MethodDenied
            | Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::UpstreamFailed
            | Self::UpstreamInvalidResponse
            | Self::UpstreamTooLarge { .. }
            | Self::UpstreamStatus(_)
            | Self::UpstreamNoAnswer
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
            | Self::PayloadTooLarge { .. }
            | Self::BodyRead
            | Self::BodyTimeout
            | Self::InvalidRequest(_)
            | Self::BatchTooLarge { .. } => INVALID_REQUEST,
            Self::MethodDenied => METHOD_NOT_FOUND,
            Self::RateLimited => LIMIT_EXCEEDED,
            Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::UpstreamFailed
            | Self::UpstreamInvalidResponse
            | Self::UpstreamTooLarge { .. }
            | Self::UpstreamStatus(_)
            | Self::UpstreamNoAnswer => UPSTREAM_ERROR,
            Self::Internal => INTERNAL_ERROR,
        }
    }

    /// The `outcome` metric label.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Self::NotFound
            | Self::UnknownChain
            | Self::MethodNotAllowed
            | Self::UnsupportedMediaType
            | Self::BodyRead
            | Self::Parse
            | Self::InvalidRequest(_) => "invalid",
            Self::PayloadTooLarge { .. } | Self::BatchTooLarge { .. } | Self::BodyTimeout => {
                "limit"
            }
            Self::MethodDenied => "denied",
            Self::RateLimited => "rate_limited",
            Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::UpstreamFailed
            | Self::UpstreamInvalidResponse
            | Self::UpstreamTooLarge { .. }
            | Self::UpstreamStatus(_)
            | Self::UpstreamNoAnswer => "upstream_error",
            Self::Internal => "internal_error",
        }
    }

    /// Logs the error at its level. Never with anything that identifies the client.
    pub(crate) fn log(&self) {
        match self {
            Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::UpstreamFailed
            | Self::UpstreamInvalidResponse
            | Self::UpstreamTooLarge { .. }
            | Self::UpstreamStatus(_)
            | Self::UpstreamNoAnswer => tracing::warn!(error = %self, "relay failed"),
            Self::Internal => tracing::error!(error = %self, "relay failed"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
    }
}

/// The response for `error` when the request's ids are unknown (before or during parsing).
pub(crate) fn error_response(error: &PipelineError) -> Response<Body> {
    error.log();
    let body = error_answer(error, &Box::<RawValue>::default());
    with_content_type(error.status(), "application/json", Bytes::from(body))
}

/// The JSON bytes of a gateway error answer under the client's exact `id`.
pub(crate) fn error_answer(error: &PipelineError, id: &RawValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + id.get().len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(br#","error":"#);
    let object = json!({ "code": error.code(), "message": error.to_string() });
    out.extend_from_slice(object.to_string().as_bytes());
    out.push(b'}');
    out
}

/// The response to a parsed request: the answers (already in client order, notifications left
/// out) as one object or an array. No answer at all (only notifications) is `204 No Content`
/// with an empty body, as JSON-RPC 2.0 says "nothing at all" and HTTP says 204.
pub(crate) fn answers_response(batch: bool, answers: Vec<Vec<u8>>) -> Response<Body> {
    if answers.is_empty() {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        return response;
    }
    let body = if batch {
        let mut out = Vec::with_capacity(answers.iter().map(|a| a.len() + 1).sum::<usize>() + 1);
        out.push(b'[');
        for (n, answer) in answers.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(answer);
        }
        out.push(b']');
        out
    } else {
        answers.into_iter().next().unwrap_or_default()
    };
    with_content_type(StatusCode::OK, "application/json", Bytes::from(body))
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
    fn codes() {
        assert_eq!(PipelineError::Parse.code(), -32700);
        assert_eq!(PipelineError::Parse.status(), StatusCode::OK);
        assert_eq!(PipelineError::MethodDenied.code(), -32601);
        assert_eq!(
            PipelineError::RateLimited.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            PipelineError::UnsupportedMediaType.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn error_answers_keep_the_id_bytes() {
        let id = RawValue::from_string("1.50".to_owned()).unwrap();
        let answer = error_answer(&PipelineError::MethodDenied, &id);
        assert_eq!(
            String::from_utf8(answer).unwrap(),
            r#"{"jsonrpc":"2.0","id":1.50,"error":{"code":-32601,"message":"method not found or not allowed by this gateway"}}"#
        );
    }

    #[test]
    fn errors_without_an_id_answer_under_null() {
        let body = error_answer(&PipelineError::Parse, &Box::<RawValue>::default());
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#
        );
    }

    #[test]
    fn only_notifications_is_204() {
        let response = answers_response(true, Vec::new());
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}
