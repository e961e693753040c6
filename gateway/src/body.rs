//! [`Body`]: the response body of every route. A list of shared byte segments, so that a cached
//! or relayed result reaches the socket without being copied into one buffer first, and an
//! optional reservation of the gateway's answer memory that is released only when the body is
//! gone (sent, or dropped with its connection).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;

/// A response body of known length.
#[derive(Debug, Default)]
pub struct Body {
    segments: VecDeque<Bytes>,
    remaining: u64,
    _reservation: Option<OwnedSemaphorePermit>,
}

impl Body {
    /// A body of `segments`, sent in order.
    pub fn from_segments(segments: impl IntoIterator<Item = Bytes>) -> Self {
        let segments: VecDeque<Bytes> = segments.into_iter().filter(|s| !s.is_empty()).collect();
        let remaining = segments.iter().map(|s| s.len() as u64).sum();
        Self {
            segments,
            remaining,
            _reservation: None,
        }
    }

    /// Holds `reservation` until the body is dropped.
    pub(crate) fn with_reservation(mut self, reservation: Option<OwnedSemaphorePermit>) -> Self {
        self._reservation = reservation;
        self
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::from_segments([bytes])
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self::from(Bytes::from_static(text.as_bytes()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.segments.pop_front().map(|segment| {
            this.remaining = this.remaining.saturating_sub(segment.len() as u64);
            Ok(Frame::data(segment))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.segments.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[tokio::test]
    async fn segments_in_order_with_an_exact_length() {
        let body = Body::from_segments([
            Bytes::from_static(b"ab"),
            Bytes::new(),
            Bytes::from_static(b"cde"),
        ]);
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(5));
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abcde");
    }
}
