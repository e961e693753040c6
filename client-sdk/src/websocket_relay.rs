//! The proxy's WebSocket relay: a local client's WebSocket (a wallet on `ws://127.0.0.1:PORT`)
//! joined to an attested WebSocket to the gateway, message by message.
//!
//! Text and binary messages pass unchanged in both directions, each at most the bound of its
//! direction ([`websocket::MAX_CLIENT_MESSAGE_LEN`] towards the gateway,
//! [`websocket::MAX_GATEWAY_MESSAGE_LEN`] back). Pings are answered on each side by the socket
//! itself and not passed on. A message is read from one side only once the previous one was
//! written to the other, so a side that does not read holds up its sender (and, through TCP,
//! the peer) instead of filling a buffer here. The relay pings each side every
//! [`Limits::keepalive`]; a side that sends nothing, not even a pong, for [`Limits::idle`] is
//! taken for dead. When one side closes (with a code and reason, passed on to the other side),
//! breaks or goes silent, or the proxy shuts down, both sides are closed, each within
//! [`Limits::close_grace`].

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// The relay's timing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// How often each side is pinged.
    pub(crate) keepalive: Duration,
    /// How long a side may send nothing at all (pongs count) before it is taken for dead.
    pub(crate) idle: Duration,
    /// How long closing each side may take (the close frame out, the peer's reply in).
    pub(crate) close_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(30),
            // Two pings unanswered, and then some: a peer busy for a moment is not dead.
            idle: Duration::from_secs(75),
            close_grace: Duration::from_secs(5),
        }
    }
}

/// Which side of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The local client of the proxy.
    Local,
    /// The gateway.
    Gateway,
}

/// Why one direction stopped.
#[derive(Debug)]
enum End {
    /// Its source sent a close frame (passed on to the other side).
    Closed(Option<CloseFrame>),
    /// Its source ended without a close frame, or failed.
    Gone,
    /// Its source sent a message over the bound.
    TooBig,
    /// Its source sent nothing for the idle time.
    Idle,
    /// Writing to the other side failed.
    SinkGone,
}

/// Relays between `local` and `gateway` until one side closes, fails or goes silent, or
/// `shutdown` turns true; then closes both.
pub(crate) async fn relay<L, G>(
    local: WebSocketStream<L>,
    gateway: WebSocketStream<G>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    L: AsyncRead + AsyncWrite + Unpin,
    G: AsyncRead + AsyncWrite + Unpin,
{
    let (mut local_out, mut local_in) = local.split();
    let (mut gateway_out, mut gateway_in) = gateway.split();
    let ended = tokio::select! {
        end = pump(&mut local_in, &mut gateway_out, limits) => Some((Side::Local, end)),
        end = pump(&mut gateway_in, &mut local_out, limits) => Some((Side::Gateway, end)),
        _ = shutdown.wait_for(|stop| *stop) => None,
    };
    let (to_local, to_gateway) = farewells(ended);
    // Both closes at once, so that a side that does not answer costs the grace time only once.
    tokio::join!(
        close(&mut local_out, &mut local_in, to_local, limits.close_grace),
        close(
            &mut gateway_out,
            &mut gateway_in,
            to_gateway,
            limits.close_grace
        ),
    );
}

/// Moves messages from `from` to `to` until `from` ends; pings the other side every
/// keep-alive interval (its pong comes back through the other direction).
async fn pump<F, T>(
    from: &mut SplitStream<WebSocketStream<F>>,
    to: &mut SplitSink<WebSocketStream<T>, Message>,
    limits: Limits,
) -> End
where
    F: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut keepalive = tokio::time::interval(limits.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.tick().await;
    let mut heard = Instant::now();
    loop {
        let message = tokio::select! {
            message = from.next() => message,
            _ = keepalive.tick() => {
                if to.send(Message::Ping(Default::default())).await.is_err() {
                    return End::SinkGone;
                }
                continue;
            }
            () = tokio::time::sleep_until(heard + limits.idle) => return End::Idle,
        };
        heard = Instant::now();
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(tungstenite::Error::Capacity(_))) => return End::TooBig,
            Some(Err(_)) | None => return End::Gone,
        };
        match message {
            Message::Text(_) | Message::Binary(_) => {
                if to.send(message).await.is_err() {
                    return End::SinkGone;
                }
            }
            Message::Close(frame) => return End::Closed(frame),
            // Answered (pings) or consumed (pongs) by the socket; raw frames are never read.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

/// What to tell each side, `(local, gateway)`: a close frame, or `None` where that side closed
/// itself (the socket has already answered its close).
fn farewells(ended: Option<(Side, End)>) -> (Option<CloseFrame>, Option<CloseFrame>) {
    let frame = |code: CloseCode, reason: &'static str| {
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    };
    let away = |reason| frame(CloseCode::Away, reason);
    let (side, end) = match ended {
        Some(ended) => ended,
        None => {
            let reason = "shroud proxy: shutting down";
            return (away(reason), away(reason));
        }
    };
    let other_gone = |side| match side {
        Side::Local => (None, away("shroud proxy: the local client went away")),
        Side::Gateway => (
            frame(
                CloseCode::Error,
                "shroud proxy: the gateway connection was lost",
            ),
            None,
        ),
    };
    match (side, end) {
        // The close frame, code and reason, goes on as it came; a close without one stays so.
        (Side::Local, End::Closed(close)) => (None, Some(passed_on(close))),
        (Side::Gateway, End::Closed(close)) => (Some(passed_on(close)), None),
        (side, End::Gone) => other_gone(side),
        (Side::Local, End::SinkGone) => other_gone(Side::Gateway),
        (Side::Gateway, End::SinkGone) => other_gone(Side::Local),
        (Side::Local, End::TooBig) => (
            frame(CloseCode::Size, "shroud proxy: message too big"),
            away("shroud proxy: the local client went away"),
        ),
        (Side::Gateway, End::TooBig) => (
            frame(
                CloseCode::Error,
                "shroud proxy: the gateway sent a message too big",
            ),
            frame(CloseCode::Size, "shroud proxy: message too big"),
        ),
        (Side::Local, End::Idle) => (
            away("shroud proxy: no answer to pings"),
            away("shroud proxy: the local client went away"),
        ),
        (Side::Gateway, End::Idle) => (
            frame(
                CloseCode::Error,
                "shroud proxy: the gateway stopped answering",
            ),
            away("shroud proxy: no answer to pings"),
        ),
    }
}

/// A close frame to pass on: as received, or a normal close when there was none.
fn passed_on(close: Option<CloseFrame>) -> CloseFrame {
    close.unwrap_or(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    })
}

/// Closes one side: sends `frame` (when that side did not close itself) and reads until the
/// peer ends the connection, all within `grace`.
async fn close<S>(
    out: &mut SplitSink<WebSocketStream<S>, Message>,
    input: &mut SplitStream<WebSocketStream<S>>,
    frame: Option<CloseFrame>,
    grace: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(grace, async {
        let sent = match frame {
            Some(frame) => out.send(Message::Close(Some(frame))).await,
            // The socket has queued its reply to the peer's close; reading flushes it.
            None => Ok(()),
        };
        if sent.is_ok() {
            while let Some(Ok(_)) = input.next().await {}
        }
    })
    .await
    .ok();
}

#[cfg(test)]
mod tests {
    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;

    /// Two connected sockets: `(client, server)`.
    async fn pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let client = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
        (client, server)
    }

    /// A relay between a local client and a gateway stand-in, both returned with the relay.
    async fn relayed(
        limits: Limits,
    ) -> (
        WebSocketStream<DuplexStream>,
        WebSocketStream<DuplexStream>,
        tokio::task::JoinHandle<()>,
        watch::Sender<bool>,
    ) {
        let (wallet, local) = pair().await;
        let (gateway_side, gateway) = pair().await;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(relay(local, gateway_side, limits, stopped));
        (wallet, gateway, task, stop)
    }

    fn quick() -> Limits {
        Limits {
            keepalive: Duration::from_millis(100),
            idle: Duration::from_millis(400),
            close_grace: Duration::from_millis(500),
        }
    }

    /// The next text or close message (pings and pongs skipped).
    async fn next_message(socket: &mut WebSocketStream<DuplexStream>) -> Option<Message> {
        loop {
            match socket.next().await? {
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(message) => return Some(message),
                Err(_) => return None,
            }
        }
    }

    /// Reads `socket` to its close frame and on to the end of the connection (which sends the
    /// close reply), then drops it, as a peer hanging up does; the frame.
    async fn close_frame(mut socket: WebSocketStream<DuplexStream>) -> CloseFrame {
        let Some(Message::Close(Some(frame))) = next_message(&mut socket).await else {
            panic!("no close frame");
        };
        while socket.next().await.is_some() {}
        frame
    }

    /// Waits for the relay to end.
    async fn ended(task: tokio::task::JoinHandle<()>) {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn messages_pass_both_ways_and_a_close_carries_its_code() {
        let (mut wallet, mut gateway, task, _stop) = relayed(Limits::default()).await;
        wallet.send(Message::text("{\"id\":1}")).await.unwrap();
        assert_eq!(
            next_message(&mut gateway).await,
            Some(Message::text("{\"id\":1}"))
        );
        gateway
            .send(Message::binary(vec![1u8, 2, 3]))
            .await
            .unwrap();
        assert_eq!(
            next_message(&mut wallet).await,
            Some(Message::binary(vec![1u8, 2, 3]))
        );
        gateway
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Again,
                reason: "slow consumer".into(),
            })))
            .await
            .unwrap();
        let (frame, ()) = tokio::join!(close_frame(wallet), async {
            while gateway.next().await.is_some() {}
            drop(gateway);
        });
        assert_eq!(frame.code, CloseCode::Again);
        assert_eq!(frame.reason.as_str(), "slow consumer");
        ended(task).await;
    }

    #[tokio::test]
    async fn a_local_close_reaches_the_gateway() {
        let (mut wallet, gateway, task, _stop) = relayed(Limits::default()).await;
        wallet
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            })))
            .await
            .unwrap();
        let (frame, ()) = tokio::join!(close_frame(gateway), async {
            while wallet.next().await.is_some() {}
            drop(wallet);
        });
        assert_eq!(frame.code, CloseCode::Normal);
        assert_eq!(frame.reason.as_str(), "bye");
        ended(task).await;
    }

    #[tokio::test]
    async fn a_silent_side_is_closed_and_so_is_the_other() {
        let (wallet, gateway, task, _stop) = relayed(quick()).await;
        // The wallet never reads, so it never answers a ping: after the idle time the relay
        // gives up on it and tells the gateway.
        let frame = close_frame(gateway).await;
        assert_eq!(frame.code, CloseCode::Away);
        assert_eq!(
            frame.reason.as_str(),
            "shroud proxy: the local client went away"
        );
        ended(task).await;
        drop(wallet);
    }

    /// Reads `socket` (answering pings) for `quiet`: true when only pings and pongs came.
    async fn only_pings_for(socket: &mut WebSocketStream<DuplexStream>, quiet: Duration) -> bool {
        let quiet = tokio::time::sleep(quiet);
        tokio::pin!(quiet);
        loop {
            tokio::select! {
                () = &mut quiet => return true,
                message = socket.next() => match message {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => return false,
                },
            }
        }
    }

    #[tokio::test]
    async fn pings_keep_a_quiet_but_live_connection_open() {
        let (mut wallet, mut gateway, task, _stop) = relayed(quick()).await;
        // Both sides read (and so answer pings) but send nothing for several idle times.
        let quiet = Duration::from_millis(1200);
        let (a, b) = tokio::join!(
            only_pings_for(&mut wallet, quiet),
            only_pings_for(&mut gateway, quiet)
        );
        assert!(a && b, "a side was closed although it answered pings");
        assert!(!task.is_finished());
        wallet.send(Message::text("still here")).await.unwrap();
        assert_eq!(
            next_message(&mut gateway).await,
            Some(Message::text("still here"))
        );
    }

    #[tokio::test]
    async fn shutdown_closes_both_sides_as_going_away() {
        let (wallet, gateway, task, stop) = relayed(Limits::default()).await;
        stop.send_replace(true);
        let (to_wallet, to_gateway) = tokio::join!(close_frame(wallet), close_frame(gateway));
        for frame in [to_wallet, to_gateway] {
            assert_eq!(frame.code, CloseCode::Away);
            assert_eq!(frame.reason.as_str(), "shroud proxy: shutting down");
        }
        ended(task).await;
    }

    #[tokio::test]
    async fn an_oversized_message_is_refused_with_1009() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut wallet = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let small = crate::websocket::socket_config(1024, 1024);
        let local = WebSocketStream::from_raw_socket(b, Role::Server, Some(small)).await;
        let (gateway_side, gateway) = pair().await;
        let (_stop, stopped) = watch::channel(false);
        let task = tokio::spawn(relay(local, gateway_side, Limits::default(), stopped));
        wallet.send(Message::text("x".repeat(4096))).await.unwrap();
        let (to_wallet, to_gateway) = tokio::join!(close_frame(wallet), close_frame(gateway));
        assert_eq!(to_wallet.code, CloseCode::Size);
        assert_eq!(to_gateway.code, CloseCode::Away);
        ended(task).await;
    }
}
