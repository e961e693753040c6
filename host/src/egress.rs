//! `shroud-host egress`: the enclave's only way out. Each connection from the enclave names its
//! destination in a `CONNECT host:port` preamble; only destinations on the allow list are
//! dialed, everything else is refused and logged (a destination is an upstream's name, never a
//! client's). TLS to the destination is made inside the enclave: this side sees the name it
//! dials and ciphertext.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::io::{Listener, Stream};
use crate::pipe::pipe;
use crate::preamble::{self, Destination, PreambleError};
use crate::slots::Slots;
use crate::{Shutdown, Timeouts};

/// Serves `listener` until `shutdown`, dialing only `allow`.
pub(crate) async fn run(
    listener: Listener,
    allow: Vec<Destination>,
    slots: Slots,
    timeouts: Timeouts,
    mut shutdown: Shutdown,
) {
    let allow: std::sync::Arc<[Destination]> = allow.into();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.requested() => break,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = slots.take() else {
            tracing::warn!("connection limit reached; closing a new connection from the enclave");
            continue;
        };
        let allow = std::sync::Arc::clone(&allow);
        tokio::spawn(async move {
            if let Err(error) = carry(stream, &allow, timeouts).await {
                tracing::debug!(%error, "an egress connection ended early");
            }
            drop(slot);
        });
    }
    tracing::info!("egress stopping: no longer accepting");
    if !slots.drain(timeouts.grace).await {
        tracing::warn!("grace period over; closing the remaining connections");
    }
}

async fn carry(mut inside: Stream, allow: &[Destination], timeouts: Timeouts) -> io::Result<()> {
    let head = match tokio::time::timeout(timeouts.connect, preamble::read(&mut inside)).await {
        Ok(Ok(head)) => head,
        Ok(Err(PreambleError::Io(error))) => return Err(error),
        Ok(Err(error)) => return answer(&mut inside, "400 Bad Request", &error.to_string()).await,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no preamble in time",
            ));
        }
    };
    let destination = match preamble::parse(&head) {
        Ok(destination) => destination,
        Err(error) => {
            tracing::warn!(%error, "malformed preamble");
            return answer(&mut inside, "400 Bad Request", &error.to_string()).await;
        }
    };
    if !allow.contains(&destination) {
        tracing::warn!(%destination, "destination refused: not on the allow list");
        return answer(&mut inside, "403 Forbidden", "not on the allow list").await;
    }
    let dialing = TcpStream::connect((
        destination
            .host
            .trim_start_matches('[')
            .trim_end_matches(']'),
        destination.port,
    ));
    let outside = match tokio::time::timeout(timeouts.connect, dialing).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => {
            tracing::warn!(%destination, %error, "dialing an allowed destination failed");
            return answer(
                &mut inside,
                "502 Bad Gateway",
                "the destination could not be reached",
            )
            .await;
        }
        Err(_) => {
            tracing::warn!(%destination, "dialing an allowed destination timed out");
            return answer(
                &mut inside,
                "504 Gateway Timeout",
                "the destination did not answer in time",
            )
            .await;
        }
    };
    let _ = outside.set_nodelay(true);
    inside
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    pipe(inside, Box::new(outside), timeouts.idle).await;
    Ok(())
}

/// A refusal: the status line, a short reason, and the connection closed.
async fn answer(inside: &mut Stream, status: &str, reason: &str) -> io::Result<()> {
    let body = format!("{reason}\n");
    let text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    inside.write_all(text.as_bytes()).await?;
    inside.shutdown().await
}
