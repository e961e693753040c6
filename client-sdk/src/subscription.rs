//! [`Subscription`]: `eth_subscribe` over an attested WebSocket, read as a `Stream` of
//! notifications.
//!
//! Each subscription has a WebSocket connection of its own (a new attested TLS connection,
//! verified before the upgrade request is written). One connection per subscription keeps them
//! independent: a subscription whose consumer falls behind is closed by the gateway without
//! touching the others, dropping one closes exactly its connection, and the gateway's limit on
//! subscriptions per connection never applies. The cost is one TLS handshake per subscription;
//! the verdict is cached per certificate, so the evidence is not verified again.
//!
//! A task per subscription owns the connection: it answers the gateway's pings, pings the
//! gateway every [`KEEPALIVE_INTERVAL`] and gives up when the gateway has said nothing for that
//! long plus the client's timeout, and moves notifications into a queue of
//! [`QUEUE_LEN`] that the [`Subscription`] reads. When the queue is full the task stops reading
//! the connection, so a consumer that falls behind slows the gateway's sending rather than
//! growing memory here; the gateway then closes the connection (code 1013), which the stream
//! reports as its last item.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::ClientError;
use crate::jsonrpc;
use crate::websocket::{self, GatewaySocket};

/// How many notifications wait for the consumer before the connection is no longer read.
pub const QUEUE_LEN: usize = 64;

/// How often the gateway is pinged while a subscription is open.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// The id of the `eth_subscribe` call on a subscription's connection.
const SUBSCRIBE_ID: u64 = 1;

/// The id of the `eth_unsubscribe` call.
const UNSUBSCRIBE_ID: u64 = 2;

/// What the stream yields: a notification's `result`, or the error that ended the subscription.
type Item = Result<Value, ClientError>;

/// An `eth_subscribe` subscription: a [`Stream`] of the `result` of each notification the
/// gateway sends for it, in order, made by [`Client::subscribe`](crate::Client::subscribe).
///
/// The stream ends after an `Err` item saying why the subscription ended: the gateway closed
/// the connection ([`ClientError::WebSocketClosed`], with its code and reason: 1013 when this
/// consumer read too slowly), the connection broke ([`ClientError::Transport`]), or the gateway
/// stopped answering pings ([`ClientError::Timeout`]). Dropping the subscription closes its
/// connection, which ends it at the gateway too; [`unsubscribe`](Self::unsubscribe) asks the
/// gateway first.
#[derive(Debug)]
#[must_use = "a subscription delivers nothing unless its stream is read"]
pub struct Subscription {
    id: String,
    items: mpsc::Receiver<Item>,
    commands: mpsc::Sender<Command>,
    timeout: Duration,
}

#[derive(Debug)]
enum Command {
    Unsubscribe(oneshot::Sender<Result<(), ClientError>>),
}

impl Subscription {
    /// The subscription id the gateway gave (the gateway's own, not the node's).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends `eth_unsubscribe` and waits for the gateway's answer (within the client's timeout),
    /// then closes the connection. Notifications not read yet are dropped. `Ok` when the
    /// gateway confirmed, or when the connection had already ended (which ends the
    /// subscription at the gateway too); a JSON-RPC error or an answer other than `true` is an
    /// error.
    pub async fn unsubscribe(self) -> Result<(), ClientError> {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Unsubscribe(reply))
            .await
            .is_err()
        {
            return Ok(());
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            // The task ended without answering: the connection is gone.
            Ok(Err(_)) => Ok(()),
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }
}

impl Stream for Subscription {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.items.poll_recv(cx)
    }
}

/// Subscribes on `socket` to `kind` (`newHeads`, `logs`, ...) with `filter` as the second
/// parameter (`Value::Null` for none) and starts the task that feeds the subscription. The
/// caller bounds the time this takes; `timeout` bounds each later wait (a ping's write, the
/// unsubscribe answer, silence beyond the keep-alive interval).
pub(crate) async fn subscribe(
    mut socket: GatewaySocket,
    kind: &str,
    filter: Value,
    timeout: Duration,
) -> Result<Subscription, ClientError> {
    let params = if filter.is_null() {
        json!([kind])
    } else {
        json!([kind, filter])
    };
    let call = jsonrpc::request_body(SUBSCRIBE_ID, "eth_subscribe", params);
    let call = String::from_utf8(call)
        .map_err(|e| ClientError::InvalidResponse(format!("eth_subscribe call: {e}")))?;
    socket
        .send(Message::text(call))
        .await
        .map_err(websocket::transport)?;
    // Notifications may follow the answer closely; any that come before it cannot be matched
    // yet and are kept (up to the queue's length) to be matched once the id is known.
    let mut early = Vec::new();
    let id = loop {
        let text = match next_text(&mut socket).await? {
            Received::Text(text) => text,
            Received::Other => continue,
        };
        let message: Value = serde_json::from_str(&text).map_err(|e| {
            ClientError::InvalidResponse(format!(
                "not JSON ({e}): {}",
                jsonrpc::quote(text.as_bytes())
            ))
        })?;
        if message.get("method").is_some() {
            if early.len() < QUEUE_LEN {
                early.push(message);
            }
            continue;
        }
        let result = jsonrpc::parse_response(SUBSCRIBE_ID, http::StatusCode::OK, text.as_bytes())?;
        match result {
            Value::String(id) => break id,
            other => {
                return Err(ClientError::InvalidResponse(format!(
                    "eth_subscribe answered {other}, not a subscription id"
                )));
            }
        }
    };
    let (items, receiver) = mpsc::channel(QUEUE_LEN);
    for message in early {
        if let Some(result) = notification(&message, &id) {
            // Room for all: `early` holds at most QUEUE_LEN and the queue is empty.
            items.try_send(Ok(result)).ok();
        }
    }
    let (commands, command_receiver) = mpsc::channel(1);
    let feed = Feed {
        link: Link { socket, timeout },
        id: id.clone(),
        items,
        commands: command_receiver,
    };
    tokio::spawn(feed.run());
    Ok(Subscription {
        id,
        items: receiver,
        commands,
        timeout,
    })
}

/// What [`next_text`] read.
enum Received {
    Text(String),
    /// A ping, pong or binary message: nothing for a JSON-RPC reader (pings are answered by
    /// tungstenite itself).
    Other,
}

/// The next message, as text, while subscribing.
async fn next_text(socket: &mut GatewaySocket) -> Result<Received, ClientError> {
    match socket.next().await {
        Some(Ok(Message::Text(text))) => Ok(Received::Text(text.as_str().to_owned())),
        Some(Ok(Message::Close(frame))) => Err(closed(frame.as_ref())),
        Some(Ok(_)) => Ok(Received::Other),
        Some(Err(error)) => Err(websocket::transport(error)),
        None => Err(gone()),
    }
}

/// The `result` of `message` when it is an `eth_subscription` notification for `id`.
fn notification(message: &Value, id: &str) -> Option<Value> {
    if message.get("method")? != "eth_subscription" {
        return None;
    }
    let params = message.get("params")?;
    if params.get("subscription")? != id {
        return None;
    }
    params.get("result").cloned()
}

/// The error a close frame stands for (1005 when it carried no code).
fn closed(frame: Option<&CloseFrame>) -> ClientError {
    match frame {
        Some(frame) => ClientError::WebSocketClosed {
            code: frame.code.into(),
            reason: frame.reason.as_str().to_owned(),
        },
        None => ClientError::WebSocketClosed {
            code: CloseCode::Status.into(),
            reason: String::new(),
        },
    }
}

fn gone() -> ClientError {
    ClientError::Transport("the gateway closed the connection without a close frame".into())
}

/// The task behind a [`Subscription`].
struct Feed {
    link: Link,
    id: String,
    items: mpsc::Sender<Item>,
    commands: mpsc::Receiver<Command>,
}

impl Feed {
    async fn run(self) {
        // Apart, so that the queue's permit and the connection can be borrowed at once.
        let Self {
            mut link,
            id,
            items,
            mut commands,
        } = self;
        let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: the connection has just proved alive.
        keepalive.tick().await;
        let silence = KEEPALIVE_INTERVAL.saturating_add(link.timeout);
        let mut heard = Instant::now();
        // A notification (or the final error) waiting for room in the queue; while there is
        // one, the connection is not read.
        let mut pending: Option<Item> = None;
        let mut finished = false;
        let mut unsubscribing: Option<oneshot::Sender<Result<(), ClientError>>> = None;
        loop {
            tokio::select! {
                biased;
                command = commands.recv(), if unsubscribing.is_none() => match command {
                    Some(Command::Unsubscribe(reply)) => {
                        if finished {
                            reply.send(Ok(())).ok();
                            return;
                        }
                        pending = None;
                        let call = jsonrpc::request_body(
                            UNSUBSCRIBE_ID,
                            "eth_unsubscribe",
                            json!([id]),
                        );
                        match String::from_utf8(call) {
                            Ok(call) => match link.send(Message::text(call)).await {
                                Ok(()) => unsubscribing = Some(reply),
                                Err(error) => {
                                    reply.send(Err(error)).ok();
                                    return;
                                }
                            },
                            Err(e) => {
                                reply.send(Err(ClientError::InvalidResponse(e.to_string()))).ok();
                                link.close().await;
                                return;
                            }
                        }
                    }
                    // The subscription was dropped: close the connection, which ends it at the
                    // gateway.
                    None => {
                        link.close().await;
                        return;
                    }
                },
                permit = items.reserve(), if pending.is_some() => {
                    let Ok(permit) = permit else {
                        link.close().await;
                        return;
                    };
                    if let Some(item) = pending.take() {
                        permit.send(item);
                    }
                    // The connection was not read while the item waited; silence since then
                    // is ours, not the gateway's.
                    heard = Instant::now();
                    if finished {
                        return;
                    }
                }
                message = link.socket.next(), if pending.is_none() && !finished => {
                    heard = Instant::now();
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            match read(text.as_str(), &id, &mut unsubscribing) {
                                Read::Nothing => {}
                                Read::Notification(result) => pending = Some(Ok(result)),
                                Read::Unsubscribed => {
                                    link.close().await;
                                    return;
                                }
                                Read::Failed(error) => {
                                    pending = Some(Err(error));
                                    finished = true;
                                }
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let error = closed(frame.as_ref());
                            if let Some(reply) = unsubscribing.take() {
                                reply.send(Ok(())).ok();
                                return;
                            }
                            // Let tungstenite send its reply to the close, briefly.
                            tokio::time::timeout(link.timeout, link.socket.next()).await.ok();
                            pending = Some(Err(error));
                            finished = true;
                        }
                        // Pings are answered by tungstenite on the next read; pongs and binary
                        // messages carry nothing for us.
                        Some(Ok(_)) => {}
                        Some(Err(error)) => {
                            pending = Some(Err(websocket::transport(error)));
                            finished = true;
                        }
                        None => {
                            pending = Some(Err(gone()));
                            finished = true;
                        }
                    }
                    if finished && let Some(reply) = unsubscribing.take() {
                        reply.send(Ok(())).ok();
                        return;
                    }
                }
                _ = keepalive.tick(), if !finished => {
                    if let Err(error) = link.send(Message::Ping(Default::default())).await {
                        pending = Some(Err(error));
                        finished = true;
                    }
                }
                () = tokio::time::sleep_until(heard + silence), if !finished && pending.is_none() => {
                    if let Some(reply) = unsubscribing.take() {
                        reply.send(Err(ClientError::Timeout(link.timeout))).ok();
                        return;
                    }
                    pending = Some(Err(ClientError::Timeout(silence)));
                    finished = true;
                    link.close().await;
                }
            }
        }
    }
}

/// Sorts one text message on the connection of subscription `id`.
fn read(
    text: &str,
    id: &str,
    unsubscribing: &mut Option<oneshot::Sender<Result<(), ClientError>>>,
) -> Read {
    let message: Value = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(e) => {
            return Read::Failed(ClientError::InvalidResponse(format!(
                "not JSON ({e}): {}",
                jsonrpc::quote(text.as_bytes())
            )));
        }
    };
    if unsubscribing.is_some() {
        if message.get("id").and_then(Value::as_u64) != Some(UNSUBSCRIBE_ID) {
            // Notifications still in flight: the consumer asked to stop.
            return Read::Nothing;
        }
        let outcome =
            match jsonrpc::parse_response(UNSUBSCRIBE_ID, http::StatusCode::OK, text.as_bytes()) {
                Ok(Value::Bool(true)) => Ok(()),
                Ok(other) => Err(ClientError::InvalidResponse(format!(
                    "eth_unsubscribe answered {other}, not true"
                ))),
                Err(error) => Err(error),
            };
        if let Some(reply) = unsubscribing.take() {
            reply.send(outcome).ok();
        }
        return Read::Unsubscribed;
    }
    match notification(&message, id) {
        Some(result) => Read::Notification(result),
        None => Read::Nothing,
    }
}

/// A subscription's connection and the bound on each wait on it.
struct Link {
    socket: GatewaySocket,
    timeout: Duration,
}

impl Link {
    /// Sends `message`, within the timeout.
    async fn send(&mut self, message: Message) -> Result<(), ClientError> {
        match tokio::time::timeout(self.timeout, self.socket.send(message)).await {
            Ok(sent) => sent.map_err(websocket::transport),
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }

    /// Closes the connection politely (1000), within the timeout, and waits (as long) for the
    /// gateway's reply so that the close handshake completes.
    async fn close(&mut self) {
        let normal = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let socket = &mut self.socket;
        tokio::time::timeout(self.timeout, async {
            if socket.close(Some(normal)).await.is_ok() {
                while let Some(Ok(_)) = socket.next().await {}
            }
        })
        .await
        .ok();
    }
}

/// What one text message meant.
enum Read {
    Nothing,
    Notification(Value),
    Unsubscribed,
    Failed(ClientError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_matched_by_subscription_id() {
        let message = json!({
            "jsonrpc": "2.0",
            "method": "eth_subscription",
            "params": {"subscription": "0xab", "result": {"number": "0x1"}}
        });
        assert_eq!(
            notification(&message, "0xab"),
            Some(json!({"number": "0x1"}))
        );
        assert_eq!(notification(&message, "0xcd"), None);
        let answer = json!({"jsonrpc": "2.0", "id": 1, "result": "0xab"});
        assert_eq!(notification(&answer, "0xab"), None);
    }

    #[test]
    fn close_frames_become_typed_errors() {
        let frame = CloseFrame {
            code: CloseCode::Again,
            reason: "slow consumer".into(),
        };
        let error = closed(Some(&frame));
        assert!(
            matches!(&error, ClientError::WebSocketClosed { code: 1013, reason } if reason == "slow consumer"),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "the gateway closed the WebSocket connection: code 1013: slow consumer"
        );
        assert!(matches!(
            closed(None),
            ClientError::WebSocketClosed { code: 1005, .. }
        ));
    }
}
