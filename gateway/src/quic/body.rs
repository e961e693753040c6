//! [`RequestBody`]: the receiving half of an HTTP/3 request stream as a hyper body, so that
//! `routes::handle` and `request_body::read_body` (its size limit and timeout) read an HTTP/3
//! request exactly as they read an HTTP/1.1 or HTTP/2 one.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use h3::server::RequestStream;
use hyper::body::{Frame, SizeHint};

/// The request stream's receiving half. Each DATA frame becomes one body frame; nothing is
/// buffered here beyond what QUIC's flow control (the stream receive window) lets in.
pub(crate) struct RequestBody {
    recv: RequestStream<h3_quinn::RecvStream, Bytes>,
    done: bool,
}

impl RequestBody {
    pub(crate) fn new(recv: RequestStream<h3_quinn::RecvStream, Bytes>) -> Self {
        Self { recv, done: false }
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = h3::error::StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(this.recv.poll_recv_data(cx)) {
            Ok(Some(mut data)) => {
                let len = data.remaining();
                Poll::Ready(Some(Ok(Frame::data(data.copy_to_bytes(len)))))
            }
            Ok(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Err(error) => {
                this.done = true;
                Poll::Ready(Some(Err(error)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
