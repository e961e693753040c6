//! The one call, batch and retry path of both clients, over any [`Channel`].
//!
//! A channel knows how to carry one JSON-RPC body to the gateway and bring the answer back:
//! [`Client`](crate::Client) over its pooled, attested connections,
//! [`ObliviousClient`](crate::ObliviousClient) sealed with Oblivious HTTP. What a call means
//! (its body, which calls may be sent twice, how the answer is read) does not depend on the
//! channel, so it is written once, here.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::{ClientError, ErrorKind, jsonrpc, retry};

/// The id of every single call; each HTTP exchange carries one call, so ids never need to differ.
const CALL_ID: u64 = 1;

/// The HTTP status and body of the gateway's answer, unparsed.
pub(crate) type Answer = (http::StatusCode, Bytes);

/// How a client carries a JSON-RPC body to the gateway.
pub(crate) trait Channel {
    /// One attempt: posts `body` and returns the answer. Bounded by [`timeout`](Self::timeout)
    /// from outside; it may be dropped at any await point.
    fn attempt(&self, body: Bytes) -> impl Future<Output = Result<Answer, ClientError>> + Send;

    /// Runs after an attempt that failed in transport or timed out, to drop whatever it may
    /// have left behind before the next attempt.
    fn broken(&self);

    /// The bound on each attempt.
    fn timeout(&self) -> Duration;

    /// How many times an idempotent body is retried.
    fn retries(&self) -> u32;
}

/// One call: its `result`, or the JSON-RPC error as [`ClientError::JsonRpc`]. Retried only when
/// `method` is an idempotent read.
pub(crate) async fn request(
    channel: &impl Channel,
    method: &str,
    params: Value,
) -> Result<Value, ClientError> {
    let body = Bytes::from(jsonrpc::request_body(CALL_ID, method, params));
    let (status, body) = exchange(channel, body, retry::is_idempotent(method)).await?;
    jsonrpc::parse_response(CALL_ID, status, &body)
}

/// One batch: one result per call, in call order; an empty batch sends nothing. Retried only
/// when every call in it is an idempotent read.
pub(crate) async fn batch<'a>(
    channel: &impl Channel,
    calls: impl IntoIterator<Item = (&'a str, Value)>,
) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
    let calls: Vec<(&str, Value)> = calls.into_iter().collect();
    if calls.is_empty() {
        return Ok(Vec::new());
    }
    let idempotent = calls.iter().all(|(method, _)| retry::is_idempotent(method));
    let len = calls.len();
    let body = Bytes::from(jsonrpc::batch_body(calls));
    let (status, body) = exchange(channel, body, idempotent).await?;
    jsonrpc::parse_batch_response(len, status, &body)
}

/// A body as it is (one call or a batch), the answer unparsed. Retried only when every call in
/// the body is an idempotent read.
pub(crate) async fn request_raw(
    channel: &impl Channel,
    body: Bytes,
) -> Result<Answer, ClientError> {
    let idempotent = retry::body_is_idempotent(&body);
    exchange(channel, body, idempotent).await
}

/// One logical exchange: attempts, each bounded by the channel's timeout, until one answers.
/// For an idempotent body with retries left, a retryable failure or a briefly-unavailable status
/// is tried again after a back-off, and the last attempt's outcome is the result. A write is
/// attempted once: it may have reached the node even when the answer was lost.
async fn exchange(
    channel: &impl Channel,
    body: Bytes,
    idempotent: bool,
) -> Result<Answer, ClientError> {
    let retries = if idempotent { channel.retries() } else { 0 };
    let timeout = channel.timeout();
    let mut tried = 0;
    loop {
        let outcome = tokio::time::timeout(timeout, channel.attempt(body.clone()))
            .await
            .unwrap_or_else(|_| Err(ClientError::Timeout(timeout)));
        if let Err(error) = &outcome
            && matches!(error.kind(), ErrorKind::Transport | ErrorKind::Timeout)
        {
            channel.broken();
        }
        match outcome {
            // Briefly unavailable: try again; the last attempt's answer becomes the error.
            Ok((status, _)) if tried < retries && retry::is_unavailable(status) => {}
            Ok(answer) => return Ok(answer),
            Err(error) if tried < retries && retry::is_retryable(&error) => {}
            Err(error) => return Err(error),
        }
        tokio::time::sleep(retry::backoff(tried)).await;
        tried += 1;
    }
}
