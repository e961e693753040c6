//! One WebSocket connection (`GET /{chain}` with `Upgrade: websocket`, RFC 6455): the upgrade,
//! then one task that reads calls, answers them through the same relay pipeline as HTTP (policy,
//! strip, limits, metrics), serves `eth_subscribe`/`eth_unsubscribe` from the chain's feed, and
//! writes answers and notifications from the connection's bounded queue. Pings keep it alive;
//! silence, a full queue or shutdown close it with a code and a reason.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::feed::Feed;
use super::filter;
use super::outbox::{self, Outbox, Outgoing, Slow, SubscriptionId};
use crate::pipeline::envelope;
use crate::pipeline::parse::{self, ClientId, Entry};
use crate::pipeline::respond::{self, Body, error_answer};
use crate::pipeline::{self, PipelineError};
use crate::ratelimit::ClientKey;
use crate::shutdown::stopped;
use crate::state::AppState;
use crate::upstream::Chain;

/// Calls of one connection answered at once; reading waits while this many are in flight.
const MAX_IN_FLIGHT: usize = 16;
/// How long one frame may take to write before the client counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Read buffer of one connection: small, as a subscriber mostly listens (tungstenite's default
/// of 128 KiB would cost 1.3 GB at 10 000 subscribers).
const READ_BUFFER: usize = 4 * 1024;

/// What an upgraded connection keeps alive and watches: the connection's slot in the
/// gateway's limits (and the shutdown's count of open connections), and the stop signal.
#[derive(Clone)]
pub(crate) struct Upgrades {
    /// Dropped when the WebSocket ends.
    pub(crate) hold: Arc<dyn std::any::Any + Send + Sync>,
    /// Shutdown.
    pub(crate) stop: watch::Receiver<bool>,
}

/// Whether the request asks for a WebSocket.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
        })
}

/// Answers the upgrade (`101`, or the refusal) and starts the connection's task.
pub(crate) fn upgrade<B>(
    state: &Arc<AppState>,
    chain: Arc<Chain>,
    client: ClientKey,
    mut request: Request<B>,
    upgrades: &Upgrades,
) -> Response<Body> {
    let headers = request.headers();
    if request.version() != Version::HTTP_11 {
        return respond::error_response(&PipelineError::InvalidRequest(
            "WebSocket needs HTTP/1.1 (RFC 6455)",
        ));
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut response = respond::error_response(&PipelineError::UpgradeRequired);
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY) else {
        return respond::error_response(&PipelineError::InvalidRequest(
            "a WebSocket upgrade needs Sec-WebSocket-Key",
        ));
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return respond::error_response(&PipelineError::Internal);
    };
    let Some(feed) = state.subscriptions.feed(&chain.name) else {
        return respond::error_response(&PipelineError::Internal);
    };
    let Ok(slot) = Arc::clone(&state.subscriptions.slots).try_acquire_owned() else {
        return respond::error_response(&PipelineError::WebSocketLimit);
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let session = Session {
        state: Arc::clone(state),
        chain,
        feed,
        client,
        upgrades: upgrades.clone(),
        _slot: slot,
    };
    tokio::spawn(async move {
        let upgraded = match tokio::time::timeout(
            session.state.limits.header_read_timeout,
            on_upgrade,
        )
        .await
        {
            Ok(Ok(upgraded)) => upgraded,
            _ => {
                tracing::debug!("WebSocket upgrade did not complete");
                return;
            }
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_write_buffer_size(session.state.limits.max_response_bytes.saturating_mul(2))
            .max_message_size(Some(session.state.limits.max_request_bytes))
            .max_frame_size(Some(session.state.limits.max_request_bytes));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        session.run(ws).await;
    });
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// One connection's context.
struct Session {
    state: Arc<AppState>,
    chain: Arc<Chain>,
    feed: Arc<Feed>,
    client: ClientKey,
    upgrades: Upgrades,
    /// This connection's WebSocket slot.
    _slot: OwnedSemaphorePermit,
}

/// What an answered call leaves to the connection.
enum Done {
    /// An answer to queue (`None`: only notifications, nothing to answer).
    Answer(Option<Bytes>),
    /// A subscription was made; its answer is queued already (before any notification).
    Subscribed(SubscriptionId),
    /// A subscribe failed or a subscription ended: give its reserved place back.
    Released(Option<Bytes>),
}

type Call = Pin<Box<dyn Future<Output = Done> + Send>>;

impl Session {
    async fn run<S>(self, ws: WebSocketStream<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let limits = &self.state.limits;
        let _open = self.state.relay.metrics.websocket();
        let (mut sink, mut stream) = ws.split();
        let (outbox, mut inbox) =
            outbox::queue(limits.websocket_queue_len, limits.websocket_queue_bytes);
        let mut subscriptions: HashSet<SubscriptionId> = HashSet::new();
        let mut reserved = 0usize;
        let mut calls: FuturesUnordered<Call> = FuturesUnordered::new();
        let mut ping = tokio::time::interval(limits.websocket_ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let idle = tokio::time::sleep(limits.websocket_idle_timeout);
        tokio::pin!(idle);
        let mut stop = self.upgrades.stop.clone();

        let close: Option<CloseFrame> = loop {
            tokio::select! {
                biased;
                () = stopped(&mut stop) => break Some(frame(CloseCode::Away, "the gateway is shutting down")),
                why = outbox.slow() => {
                    let reason = match why {
                        Slow::Messages(n) => format!("slow consumer: {n} messages queued unread"),
                        Slow::Bytes(n) => format!("slow consumer: {n} bytes queued unread"),
                    };
                    break Some(frame(CloseCode::Again, &reason));
                }
                message = inbox.recv() => {
                    let Some(message) = message else { break None };
                    let text = message.into_text();
                    let message = match tokio_tungstenite::tungstenite::Utf8Bytes::try_from(text) {
                        Ok(text) => Message::Text(text),
                        Err(_) => continue,
                    };
                    if !matches!(tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await, Ok(Ok(()))) {
                        break None;
                    }
                }
                Some(done) = calls.next(), if !calls.is_empty() => match done {
                    Done::Answer(answer) => { queue(&outbox, answer); }
                    Done::Subscribed(id) => {
                        reserved = reserved.saturating_sub(1);
                        subscriptions.insert(id);
                    }
                    Done::Released(answer) => {
                        reserved = reserved.saturating_sub(1);
                        queue(&outbox, answer);
                    }
                },
                received = stream.next(), if calls.len() < MAX_IN_FLIGHT => {
                    idle.as_mut().reset(tokio::time::Instant::now() + limits.websocket_idle_timeout);
                    let bytes = match received {
                        None => break None,
                        Some(Ok(Message::Text(text))) => Bytes::from(text),
                        Some(Ok(Message::Binary(bytes))) => bytes,
                        Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                        Some(Err(WsError::Capacity(_))) => break Some(frame(
                            CloseCode::Size,
                            &format!("message larger than {} bytes", limits.max_request_bytes),
                        )),
                        Some(Err(WsError::Protocol(_))) => break Some(frame(CloseCode::Protocol, "WebSocket protocol error")),
                        Some(Err(_)) => break None,
                    };
                    match self.call(bytes, &outbox, &mut subscriptions, &mut reserved) {
                        Ok(call) => calls.push(call),
                        Err(answer) => queue(&outbox, answer),
                    }
                }
                _ = ping.tick() => {
                    let ping = sink.send(Message::Ping(Bytes::new()));
                    if !matches!(tokio::time::timeout(WRITE_TIMEOUT, ping).await, Ok(Ok(()))) {
                        break None;
                    }
                }
                () = &mut idle => break Some(frame(CloseCode::Away, "idle: nothing received, not even a pong")),
            }
        };
        drop(calls);
        for id in &subscriptions {
            self.feed.unsubscribe(id);
        }
        if let Some(close) = close {
            tracing::debug!(code = u16::from(close.code), reason = %close.reason, "closing a WebSocket connection");
            let _ =
                tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(close)))).await;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
        drop(self.upgrades.hold);
    }

    /// Starts answering one message: a lone `eth_subscribe`/`eth_unsubscribe` is served here,
    /// anything else goes through the relay pipeline like an HTTP body. `Err`: an answer ready
    /// at once.
    fn call(
        &self,
        message: Bytes,
        outbox: &Outbox,
        subscriptions: &mut HashSet<SubscriptionId>,
        reserved: &mut usize,
    ) -> Result<Call, Option<Bytes>> {
        let state = Arc::clone(&self.state);
        let chain = Arc::clone(&self.chain);
        let client = self.client;
        let relay = move |message: Bytes| -> Call {
            Box::pin(async move {
                let response = pipeline::relay(&state.relay, &chain, client, message).await;
                if response.status() == StatusCode::NO_CONTENT {
                    return Done::Answer(None);
                }
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
                Done::Answer(body.ok())
            })
        };
        if !mentions_subscription(&message) {
            return Ok(relay(message));
        }
        let limits = parse::ParseLimits {
            max_batch_len: self.state.limits.max_batch_len,
            max_depth: self.state.limits.max_json_depth,
        };
        let call = match parse::parse(&message, limits) {
            Ok(parsed) if !parsed.is_batch() => match parsed.into_entries().pop() {
                Some(Entry::Call(call)) => call,
                _ => return Ok(relay(message)),
            },
            _ => return Ok(relay(message)),
        };
        let method = call.method();
        let subscribe = method == "eth_subscribe";
        if !subscribe && method != "eth_unsubscribe" {
            return Ok(relay(message));
        }
        let id = call.id().cloned();
        let label = self.chain.policy.label(method).to_owned();
        let metrics = Arc::clone(&self.state.relay.metrics);
        let chain_name = self.chain.name.clone();
        let answered = move |outcome: &str| metrics.call(&chain_name, &label, outcome);
        if !self.chain.policy.permits(method) {
            answered("denied");
            return Err(id.map(|id| Bytes::from(error_answer(&PipelineError::MethodDenied, &id))));
        }
        if !subscribe {
            let removed = serde_json::from_str::<(String,)>(call.params())
                .ok()
                .is_some_and(|(sub,)| {
                    let sub: SubscriptionId = Arc::from(sub);
                    subscriptions.remove(&sub) && self.feed.unsubscribe(&sub)
                });
            answered("ok");
            return Err(id.map(|id| {
                Bytes::from(result_answer(&id, if removed { "true" } else { "false" }))
            }));
        }
        let request = match filter::parse_request(call.params()) {
            Ok(request) => request,
            Err(error) => {
                answered(error.outcome());
                return Err(id.map(|id| Bytes::from(error_answer(&error, &id))));
            }
        };
        let max = self.state.limits.max_subscriptions_per_connection;
        if subscriptions.len() + *reserved >= max {
            let error = PipelineError::TooManySubscriptions { max };
            answered(error.outcome());
            return Err(id.map(|id| Bytes::from(error_answer(&error, &id))));
        }
        *reserved += 1;
        let feed = Arc::clone(&self.feed);
        let outbox = outbox.clone();
        let state = Arc::clone(&self.state);
        Ok(Box::pin(async move {
            if !state.relay.limiter.allow(client, 1).await {
                answered(PipelineError::RateLimited.outcome());
                return Done::Released(
                    id.map(|id| Bytes::from(error_answer(&PipelineError::RateLimited, &id))),
                );
            }
            let id = id.unwrap_or_else(ClientId::null);
            match super::subscribe(&feed, request, &outbox, |sub| {
                Bytes::from(result_answer(&id, &format!("\"{sub}\"")))
            })
            .await
            {
                Ok(sub) => {
                    answered("ok");
                    Done::Subscribed(sub)
                }
                Err(error) => {
                    answered(error.outcome());
                    Done::Released(Some(Bytes::from(error_answer(&error, &id))))
                }
            }
        }))
    }
}

/// Queues an answer, if there is one. A full queue marks the client slow; the connection's
/// loop then closes it.
fn queue(outbox: &Outbox, answer: Option<Bytes>) {
    if let Some(answer) = answer {
        outbox.push(Outgoing::Text(answer));
    }
}

/// `{"jsonrpc":"2.0","id":ID,"result":RESULT}` with `result` as JSON text.
fn result_answer(id: &ClientId, result: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + result.len());
    envelope::open(&mut out, id.as_str().as_bytes(), "result");
    out.extend_from_slice(result.as_bytes());
    out.extend_from_slice(envelope::CLOSE);
    out
}

/// Whether a message may hold a subscription call (cheap: most calls do not, and go straight
/// to the relay without a second parse).
fn mentions_subscription(message: &[u8]) -> bool {
    message
        .windows(b"subscribe".len())
        .any(|w| w.eq_ignore_ascii_case(b"subscribe"))
}

fn frame(code: CloseCode, reason: &str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}
