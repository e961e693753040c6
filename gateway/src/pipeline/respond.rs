//! `respond`: the one place that turns pipeline results and errors into HTTP responses,
//! JSON-RPC error objects and log levels. Responses carry only the headers chosen here.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::envelope;
use super::error::PipelineError;
use super::parse::ClientId;

pub(crate) use crate::body::Body;

/// The response for `error` when the request's ids are unknown (before or during parsing), in
/// the form its [class](PipelineError::class) says: a JSON-RPC error object under a `null` id,
/// or `application/problem+json` for the OHTTP refusals. Logs the error: the one place an
/// error answered on its own is logged.
pub(crate) fn error_response(error: &PipelineError) -> Response<Body> {
    error.log();
    let class = error.class();
    match class.problem {
        None => {
            let body = error_answer(error, &ClientId::null());
            with_content_type(class.status, "application/json", Bytes::from(body))
        }
        Some(kind) => {
            let body = json!({ "type": kind, "title": error.to_string(), "status": class.status.as_u16() });
            with_content_type(
                class.status,
                "application/problem+json",
                Bytes::from(body.to_string()),
            )
        }
    }
}

/// The JSON bytes of a gateway error answer under the client's exact `id`.
pub(crate) fn error_answer(error: &PipelineError, id: &ClientId) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + id.as_str().len());
    envelope::open(&mut out, id.as_str().as_bytes(), "error");
    let object = json!({ "code": error.code(), "message": error.to_string() });
    out.extend_from_slice(object.to_string().as_bytes());
    out.extend_from_slice(envelope::CLOSE);
    out
}

/// The response to a parsed request, from its [assembled](super::assemble) body: `200` with
/// the JSON, or `204 No Content` with an empty body when nothing is answered (only
/// notifications), as JSON-RPC 2.0 says "nothing at all" and HTTP says 204.
pub(crate) fn answers_response(body: Option<Vec<Bytes>>) -> Response<Body> {
    match body {
        Some(segments) => {
            let mut response = Response::new(Body::from_segments(segments));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        None => {
            let mut response = Response::new(Body::default());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
    }
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
    let mut response = Response::new(Body::from(body));
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
        let parsed = crate::pipeline::parse::parse(
            br#"{"jsonrpc":"2.0","id":1.50,"method":"m"}"#,
            crate::pipeline::parse::ParseLimits {
                max_batch_len: 1,
                max_depth: 4,
            },
        )
        .unwrap();
        let Some(crate::pipeline::parse::Entry::Call(call)) = parsed.into_entries().pop() else {
            panic!("a call");
        };
        let answer = error_answer(&PipelineError::MethodDenied, call.id().unwrap());
        assert_eq!(
            String::from_utf8(answer).unwrap(),
            r#"{"jsonrpc":"2.0","id":1.50,"error":{"code":-32601,"message":"method not found or not allowed by this gateway"}}"#
        );
    }

    #[test]
    fn errors_without_an_id_answer_under_null() {
        let body = error_answer(&PipelineError::Parse, &ClientId::null());
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#
        );
    }

    #[test]
    fn ohttp_refusals_are_problem_json_from_the_same_table() {
        let response = error_response(&PipelineError::OhttpUnknownKey);
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            response.headers().get(CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        let class = PipelineError::OhttpReplayed.class();
        assert_eq!(
            (class.status, class.problem, class.ohttp),
            (StatusCode::BAD_REQUEST, Some("about:blank"), "replayed")
        );
        // An outer body that could not be read ends the OHTTP request as a bad body, answered
        // as JSON-RPC like any unread body.
        let class = PipelineError::BodyTimeout.class();
        assert_eq!((class.problem, class.ohttp), (None, "bad_body"));
    }

    #[test]
    fn only_notifications_is_204() {
        let response = answers_response(None);
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}
