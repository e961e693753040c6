//! Reading a client's request body: within the size limit (declared and actual) and the body
//! read timeout, for the JSON-RPC routes and the OHTTP handler alike.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Limited};

use crate::pipeline::PipelineError;
use crate::settings::Limits;

/// Reads the body within the size limit and the body read timeout.
pub(crate) async fn read_body<B>(
    limits: &Limits,
    request: Request<B>,
) -> Result<Bytes, PipelineError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let limit = limits.max_request_bytes;
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(PipelineError::PayloadTooLarge { limit });
    }
    let read = Limited::new(request.into_body(), limit).collect();
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Err(_) => Err(PipelineError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(PipelineError::PayloadTooLarge { limit })
        }
        Ok(Err(_)) => Err(PipelineError::BodyRead),
    }
}
