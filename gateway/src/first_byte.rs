//! An accepted connection costs its HTTP state only once its client speaks.
//!
//! hyper reserves its 8 KiB read buffer (and HTTP/2 its frame buffers) as soon as a connection
//! is served, before a byte arrives; at 10 000 idle connections that alone is 80 MiB. So the
//! gateway first reads the request's first byte itself, through a one-byte buffer, and hands
//! hyper a stream that gives that byte back before the rest ([`Replay`]). The wait is bounded
//! by the caller (the header read timeout), like hyper's own wait for a request.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};

/// Reads the first byte the client sends: `Ok(None)` when it closes without sending any.
pub(crate) async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<u8>> {
    let mut byte = [0_u8; 1];
    match stream.read(&mut byte).await? {
        0 => Ok(None),
        _ => Ok(Some(byte[0])),
    }
}

/// `inner`, with one byte already read from it given back first.
#[derive(Debug)]
pub(crate) struct Replay<S> {
    first: Option<u8>,
    inner: S,
}

impl<S> Replay<S> {
    /// `inner` whose next read starts with `first`.
    pub(crate) fn new(first: u8, inner: S) -> Self {
        Self {
            first: Some(first),
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() > 0
            && let Some(first) = this.first.take()
        {
            buf.put_slice(&[first]);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn the_first_byte_comes_back_before_the_rest() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let first = read(&mut server).await.unwrap().unwrap();
        assert_eq!(first, b'G');
        let mut replay = Replay::new(first, server);
        let mut all = vec![0_u8; 16];
        replay.read_exact(&mut all).await.unwrap();
        assert_eq!(&all, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_client_that_closes_silently_has_no_first_byte() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert_eq!(read(&mut server).await.unwrap(), None);
    }
}
