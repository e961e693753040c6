//! Reading a client's request body: within the size limit (declared and actual) and the body
//! read timeout, for the JSON-RPC routes and the OHTTP handler alike.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Limited};

use crate::pipeline::PipelineError;
use crate::settings::Limits;

/// The most of an oversized body read and dropped before its 413 goes out (see [`drain`]).
const MAX_DRAIN: u64 = 8 * 1024 * 1024;
/// The longest time spent on it.
const DRAIN_TIME: Duration = Duration::from_secs(1);

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
    let mut body = std::pin::pin!(request.into_body());
    if declared.is_some_and(|len| len > limit as u64) {
        drain(body.as_mut(), declared, limits.body_read_timeout).await;
        return Err(PipelineError::PayloadTooLarge { limit });
    }
    let read = Limited::new(body.as_mut(), limit).collect();
    let read = tokio::time::timeout(limits.body_read_timeout, read).await;
    match read {
        Err(_) => Err(PipelineError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            drain(body.as_mut(), declared, limits.body_read_timeout).await;
            Err(PipelineError::PayloadTooLarge { limit })
        }
        Ok(Err(_)) => Err(PipelineError::BodyRead),
    }
}

/// Reads and drops what is left of an oversized body (at most [`MAX_DRAIN`] bytes, within the
/// body read timeout and [`DRAIN_TIME`]), so that a client still sending it reads the 413
/// instead of a reset: over HTTP/1.1 the connection is closed after the answer, and closing a
/// socket with unread bytes resets it, which discards the answer on the client's side. A body
/// declared larger than that is not read at all.
async fn drain<B>(mut body: B, declared: Option<u64>, timeout: Duration)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    if declared.is_some_and(|len| len > MAX_DRAIN) {
        return;
    }
    let mut left = MAX_DRAIN;
    let discard = async {
        while left > 0
            && let Some(Ok(frame)) = body.frame().await
        {
            let read = frame.data_ref().map_or(0, |data| data.len() as u64);
            left = left.saturating_sub(read);
        }
    };
    let _ = tokio::time::timeout(timeout.min(DRAIN_TIME), discard).await;
}
