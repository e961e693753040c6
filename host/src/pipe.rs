//! Carrying bytes both ways between two streams with bounded buffers, until both ends have
//! closed, either fails, or neither sent a byte for the idle timeout.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::io::Stream;

/// The buffer of each direction: what one connection may hold in memory, twice.
const BUFFER: usize = 16 * 1024;

/// How a pipe ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Both ends closed; the bytes carried from `a` to `b` and from `b` to `a`.
    Closed { a_to_b: u64, b_to_a: u64 },
    /// Neither end sent anything for the idle timeout.
    Idle,
    /// Either end failed.
    Failed(std::io::Error),
}

/// Copies `a` to `b` and `b` to `a`. When one end closes its sending side, the other end's
/// sending side is shut down too and the other direction goes on (half-close), still under the
/// idle timeout.
pub(crate) async fn pipe(a: Stream, b: Stream, idle: Duration) -> Ended {
    let activity = Activity::new();
    let mut a = Watched {
        inner: a,
        activity: activity.clone(),
    };
    let mut b = Watched {
        inner: b,
        activity: activity.clone(),
    };
    tokio::select! {
        copied = tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, BUFFER, BUFFER) => {
            match copied {
                Ok((a_to_b, b_to_a)) => Ended::Closed { a_to_b, b_to_a },
                Err(error) => Ended::Failed(error),
            }
        }
        () = activity.idle_for(idle) => Ended::Idle,
    }
}

/// When either end last sent a byte, in milliseconds since the pipe started.
#[derive(Clone)]
struct Activity {
    started: Instant,
    last: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// Resolves once nothing was sent for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = self.started + last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A stream that stamps `activity` whenever it yields bytes. Every byte written was read from
/// the other end first, so reads alone tell whether the pipe is alive.
struct Watched {
    inner: Stream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

    use super::*;

    /// Two pipe ends, each with the far side of its stream for the test to drive.
    fn ends() -> (Stream, DuplexStream, Stream, DuplexStream) {
        let (a, a_far) = tokio::io::duplex(64);
        let (b, b_far) = tokio::io::duplex(64);
        (Box::new(a), a_far, Box::new(b), b_far)
    }

    #[tokio::test]
    async fn carries_both_ways_through_a_half_close() {
        let (a, mut client, b, mut server) = ends();
        let piped = tokio::spawn(pipe(a, b, Duration::from_secs(5)));
        // More than the duplex buffers and the pipe's: flow control, not memory, holds it.
        let request = vec![7_u8; 3 * BUFFER];
        let write = tokio::spawn(async move {
            client.write_all(&request).await.unwrap();
            client.shutdown().await.unwrap();
            client
        });
        let mut received = Vec::new();
        server.read_to_end(&mut received).await.unwrap();
        assert_eq!(received.len(), 3 * BUFFER);
        let mut client = write.await.unwrap();
        server
            .write_all(b"answer after the half-close")
            .await
            .unwrap();
        server.shutdown().await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"answer after the half-close");
        let Ended::Closed { a_to_b, b_to_a } = piped.await.unwrap() else {
            panic!("not closed");
        };
        assert_eq!((a_to_b, b_to_a), (3 * BUFFER as u64, 27));
    }

    #[tokio::test]
    async fn closes_when_neither_end_sends() {
        let (a, _client, b, _server) = ends();
        let started = Instant::now();
        assert!(matches!(
            pipe(a, b, Duration::from_millis(200)).await,
            Ended::Idle
        ));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }

    #[tokio::test]
    async fn one_busy_direction_keeps_the_pipe_open() {
        let (a, mut client, b, mut server) = ends();
        let idle = Duration::from_millis(300);
        let piped = tokio::spawn(pipe(a, b, idle));
        // The server streams for four idle periods; the client says nothing all along.
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            server.write_all(b"tick").await.unwrap();
            let mut tick = [0_u8; 4];
            client.read_exact(&mut tick).await.unwrap();
        }
        assert!(!piped.is_finished(), "closed while one way was busy");
        let started = Instant::now();
        assert!(matches!(piped.await.unwrap(), Ended::Idle));
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }
}
