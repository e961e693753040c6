//! `shroud-host egress`: the enclave's only way out. Each connection from the enclave names its
//! destination in a `CONNECT host:port` preamble; only destinations on the allow list are
//! dialed, everything else is refused and logged (a destination is an upstream's name, never a
//! client's). TLS to the destination is made inside the enclave: this side sees the name it
//! dials and ciphertext.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::io::{Listener, Stream};
use crate::pipe::{Ended, pipe};
use crate::preamble::{self, BLANK_LINE, Destination, MAX_PREAMBLE};
use crate::shutdown::Shutdown;
use crate::slots::Slots;
use crate::timeouts::Timeouts;

/// The answers, in full: a status line and the blank line, then the pipe or the close.
const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";
const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\r\n";
const FORBIDDEN: &[u8] = b"HTTP/1.1 403 Forbidden\r\n\r\n";
const BAD_GATEWAY: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\n\r\n";

/// Serves `listener` until `shutdown`, dialing only `allow`.
pub(crate) async fn run(
    listener: Listener,
    allow: Vec<Destination>,
    slots: Slots,
    timeouts: Timeouts,
    mut shutdown: Shutdown,
) {
    let allow: Arc<[Destination]> = allow.into();
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
            // Over the limit (logged by `Slots`): closed by the drop.
            continue;
        };
        let allow = Arc::clone(&allow);
        tokio::spawn(async move {
            carry(stream, &allow, timeouts).await;
            drop(slot);
        });
    }
    // Closing the listener (and removing its socket file) before the grace period.
    drop(listener);
    tracing::info!("egress stopping: no longer accepting");
    if !slots.drain(timeouts.grace).await {
        tracing::warn!("grace period over; closing the remaining connections");
    }
}

/// One connection from the enclave: its preamble, the allow list, the dial, then the pipe.
async fn carry(mut inside: Stream, allow: &[Destination], timeouts: Timeouts) {
    let head = match tokio::time::timeout(timeouts.preamble, read_preamble(&mut inside)).await {
        Ok(Ok(head)) => head,
        Ok(Err(error)) => {
            tracing::debug!(%error, "no preamble: the connection ended before its blank line");
            return;
        }
        Err(_) => {
            tracing::warn!("no preamble in time; closing");
            return;
        }
    };
    let destination = match preamble::parse(&head) {
        Ok(destination) => destination,
        Err(error) => {
            tracing::warn!(%error, "malformed preamble");
            return answer(&mut inside, BAD_REQUEST).await;
        }
    };
    if !allow.contains(&destination) {
        tracing::warn!("destination refused: {destination} not on the allow list");
        return answer(&mut inside, FORBIDDEN).await;
    }
    // `connect` resolves the name with tokio's lookup and tries each address in turn; the
    // timeout covers both.
    let dialing = TcpStream::connect((destination.dial_host(), destination.port()));
    let outside = match tokio::time::timeout(timeouts.connect, dialing).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => {
            tracing::warn!(%destination, %error, "dialing an allowed destination failed");
            return answer(&mut inside, BAD_GATEWAY).await;
        }
        Err(_) => {
            tracing::warn!(%destination, "dialing an allowed destination timed out");
            return answer(&mut inside, BAD_GATEWAY).await;
        }
    };
    let _ = outside.set_nodelay(true);
    if let Err(error) = inside.write_all(ESTABLISHED).await {
        tracing::debug!(%destination, %error, "the enclave left before the pipe");
        return;
    }
    match pipe(inside, Box::new(outside), timeouts.idle).await {
        Ended::Closed { a_to_b, b_to_a } => {
            tracing::debug!(%destination, sent = a_to_b, received = b_to_a, "connection closed");
        }
        Ended::Idle => tracing::debug!(%destination, "connection closed: idle"),
        Ended::Failed(error) => tracing::debug!(%destination, %error, "connection failed"),
    }
}

/// A refusal: the status line, then the connection closed.
async fn answer(inside: &mut Stream, status: &[u8]) {
    if inside.write_all(status).await.is_ok() {
        let _ = inside.shutdown().await;
    }
}

/// Reads a preamble up to its blank line, one byte at a time so that nothing after it is taken
/// (the TLS bytes that follow belong to the destination), and at most [`MAX_PREAMBLE`] bytes
/// plus one (so that [`preamble::parse`] sees it is too long). An error only when the
/// connection ended or failed first.
async fn read_preamble(stream: &mut Stream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(128);
    while !head.ends_with(BLANK_LINE) && head.len() <= MAX_PREAMBLE {
        head.push(stream.read_u8().await?);
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_up_to_the_blank_line_and_not_a_byte_further() {
        let (mut enclave, host) = tokio::io::duplex(8192);
        let mut host: Stream = Box::new(host);
        enclave
            .write_all(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n\x16\x03\x01")
            .await
            .unwrap();
        let head = read_preamble(&mut host).await.unwrap();
        assert_eq!(preamble::parse(&head).unwrap().to_string(), "a.example:443");
        let mut rest = [0_u8; 3];
        host.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"\x16\x03\x01");
    }

    #[tokio::test]
    async fn stops_reading_past_the_bound() {
        let (mut enclave, host) = tokio::io::duplex(2 * MAX_PREAMBLE);
        let mut host: Stream = Box::new(host);
        enclave.write_all(&[b'a'; 2 * MAX_PREAMBLE]).await.unwrap();
        let head = read_preamble(&mut host).await.unwrap();
        assert_eq!(head.len(), MAX_PREAMBLE + 1);
        assert_eq!(
            preamble::parse(&head),
            Err(preamble::PreambleError::TooLong)
        );
    }

    #[tokio::test]
    async fn a_connection_that_ends_before_the_blank_line_is_an_error() {
        let (mut enclave, host) = tokio::io::duplex(8192);
        let mut host: Stream = Box::new(host);
        enclave
            .write_all(b"CONNECT a.example:443 HTTP/1.1\r\n")
            .await
            .unwrap();
        drop(enclave);
        assert!(read_preamble(&mut host).await.is_err());
    }
}
