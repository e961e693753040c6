//! The follower's ear on an upstream WebSocket: for a chain whose upstreams have a `ws`
//! endpoint, one `newHeads` subscription of the gateway's own (never a client's) whose
//! notifications wake the follower at once instead of at its next poll. The follower still
//! reads every block by polling and linking, so a lost or lying socket costs latency only,
//! never a block. Reconnects with backoff; every wait bounded.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::feed::Feed;
use crate::egress::WebSocketConnector;
use crate::upstream::{Health, Upstream};

/// Dialing, TLS and the WebSocket handshake together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence after which the socket is taken for dead (blocks come every few seconds; pings
/// keep a quiet one alive).
const SILENCE: Duration = Duration::from_secs(90);
/// How often the socket is pinged.
const PING: Duration = Duration::from_secs(30);
/// Largest message read: a block header.
const MAX_MESSAGE: usize = 1024 * 1024;
/// Longest pause between reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Keeps a `newHeads` subscription on the first usable upstream with a `ws` endpoint and
/// wakes `wake` on each notification, until aborted (the follower does when it stops).
pub(crate) async fn listen(feed: Arc<Feed>, connector: WebSocketConnector, wake: Arc<Notify>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let upstream = feed
            .chain
            .upstreams
            .iter()
            .filter(|u| u.has_websocket())
            .find(|u| matches!(u.health(), Health::Healthy | Health::Unknown))
            .or_else(|| feed.chain.upstreams.iter().find(|u| u.has_websocket()));
        let Some(upstream) = upstream else { return };
        match session(upstream, &connector, &wake).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(reason) => {
                tracing::debug!(chain = %feed.chain.name, upstream = %upstream.label, reason, "upstream newHeads socket ended");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: subscribe, then wake on every notification until it fails.
async fn session(
    upstream: &Upstream,
    connector: &WebSocketConnector,
    wake: &Notify,
) -> Result<(), &'static str> {
    let request = upstream.websocket_request().ok_or("no ws endpoint")?;
    let target = http_form(request.uri()).ok_or("ws endpoint without a host")?;
    let connect = async {
        let mut connector = connector.clone();
        let stream = tower_service::Service::call(&mut connector, target)
            .await
            .map_err(|_| "could not connect")?;
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        tokio_tungstenite::client_async_with_config(request, TokioIo::new(stream), Some(config))
            .await
            .map_err(|_| "WebSocket handshake failed")
    };
    let (mut ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| "connecting timed out")??;
    let subscribe = r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#;
    ws.send(Message::text(subscribe))
        .await
        .map_err(|_| "could not subscribe")?;
    let mut ping = tokio::time::interval(PING);
    ping.tick().await;
    loop {
        tokio::select! {
            message = tokio::time::timeout(SILENCE, ws.next()) => match message {
                Err(_) => return Err("silent for too long"),
                Ok(None | Some(Err(_))) => return Err("closed"),
                Ok(Some(Ok(Message::Text(text)))) => {
                    if text.contains("\"eth_subscription\"") {
                        wake.notify_one();
                    } else if text.contains("\"error\"") {
                        return Err("the upstream refused eth_subscribe");
                    }
                }
                Ok(Some(Ok(Message::Close(_)))) => return Err("closed by the upstream"),
                Ok(Some(Ok(_))) => {}
            },
            _ = ping.tick() => {
                if ws.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    return Err("ping failed");
                }
            }
        }
    }
}

/// `wss://h/p` as `https://h/p` (and `ws` as `http`): what the connector dials.
fn http_form(ws: &Uri) -> Option<Uri> {
    let scheme = match ws.scheme_str() {
        Some("wss") => "https",
        Some("ws") => "http",
        _ => return None,
    };
    let authority = ws.authority()?;
    Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str())
        .path_and_query("/")
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_endpoints_are_dialed_in_their_http_form() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            http_form(&uri("wss://node.example/v1/KEY")),
            Some(uri("https://node.example/"))
        );
        assert_eq!(
            http_form(&uri("ws://127.0.0.1:8546")),
            Some(uri("http://127.0.0.1:8546/"))
        );
        assert_eq!(http_form(&uri("https://node.example/")), None);
    }
}
