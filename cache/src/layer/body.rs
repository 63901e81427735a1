//! The response body of the layer: a stored body, or the upstream body passed through
//! (and, on a cacheable miss, recorded for the store as it streams).

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::oneshot;

pin_project! {
    /// The body of a response from [`CacheService`](super::CacheService).
    ///
    /// A hit is one frame holding the stored `Bytes` (shared, not copied). A miss streams the
    /// upstream body frame by frame as it arrives; when the response is being stored, each frame
    /// is also kept (a reference count, not a copy) until the end of the body, or dropped as soon
    /// as the body outgrows the size limit, after which the rest simply streams.
    pub struct CacheBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Cached { data: Option<Bytes> },
        Upstream { #[pin] inner: B },
        Recording { #[pin] inner: B, recorder: Recorder },
    }
}

impl<B> CacheBody<B> {
    pub(crate) fn cached(data: Bytes) -> Self {
        let data = (!data.is_empty()).then_some(data);
        CacheBody {
            kind: Kind::Cached { data },
        }
    }

    pub(crate) fn empty() -> Self {
        CacheBody {
            kind: Kind::Cached { data: None },
        }
    }

    pub(crate) fn upstream(inner: B) -> Self {
        CacheBody {
            kind: Kind::Upstream { inner },
        }
    }
}

impl<B: Body> CacheBody<B> {
    pub(crate) fn recording(inner: B, mut recorder: Recorder) -> Self {
        if inner.is_end_stream() {
            // Nobody will poll an empty body: it is complete now.
            recorder.finish();
        }
        CacheBody {
            kind: Kind::Recording { inner, recorder },
        }
    }
}

impl<B> Body for CacheBody<B>
where
    B: Body,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Cached { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Upstream { inner } => {
                let frame = ready!(inner.poll_frame(cx));
                Poll::Ready(frame.map(|f| f.map(into_bytes_frame)))
            }
            KindProj::Recording {
                mut inner,
                recorder,
            } => {
                let frame = match ready!(inner.as_mut().poll_frame(cx)) {
                    None => {
                        recorder.finish();
                        return Poll::Ready(None);
                    }
                    Some(Err(error)) => {
                        // An upstream body that fails is not stored; waiting callers take over.
                        recorder.abandon();
                        return Poll::Ready(Some(Err(error)));
                    }
                    Some(Ok(frame)) => into_bytes_frame(frame),
                };
                match frame.data_ref() {
                    Some(data) => recorder.push(data),
                    None => recorder.give_up("trailers"),
                }
                // The server stops polling once the body says it has ended.
                if inner.is_end_stream() {
                    recorder.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Cached { data } => data.is_none(),
            Kind::Upstream { inner } | Kind::Recording { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Cached { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Upstream { inner } | Kind::Recording { inner, .. } => inner.size_hint(),
        }
    }
}

impl<B> std::fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Cached { .. } => "cached",
            Kind::Upstream { .. } => "upstream",
            Kind::Recording { .. } => "recording",
        };
        f.debug_struct("CacheBody").field("kind", &kind).finish()
    }
}

fn into_bytes_frame<D: Buf>(frame: Frame<D>) -> Frame<Bytes> {
    // For `Bytes` data (hyper, axum) this is a move, not a copy.
    frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))
}

/// How a recorded body ended.
pub(crate) enum Recorded {
    /// The whole body.
    Complete(Bytes),
    /// Not storable after all, for this reason.
    Abandoned(&'static str),
}

/// Keeps the frames of a body being stored, up to a size limit, and hands the whole body (or
/// the reason it cannot be stored) to the task that stores it. Dropped before the end of the
/// body (the client went away), it hands over nothing and the store task gives up.
pub(crate) struct Recorder {
    tx: Option<oneshot::Sender<Recorded>>,
    chunks: Vec<Bytes>,
    len: usize,
    max: usize,
}

impl Recorder {
    pub(crate) fn new(tx: oneshot::Sender<Recorded>, max: usize) -> Self {
        Recorder {
            tx: Some(tx),
            chunks: Vec::new(),
            len: 0,
            max,
        }
    }

    fn push(&mut self, data: &Bytes) {
        if self.tx.is_none() || data.is_empty() {
            return;
        }
        self.len += data.len();
        if self.len > self.max {
            self.give_up("too-large");
        } else {
            self.chunks.push(data.clone());
        }
    }

    fn give_up(&mut self, why: &'static str) {
        self.chunks = Vec::new();
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Recorded::Abandoned(why));
        }
    }

    fn abandon(&mut self) {
        self.chunks = Vec::new();
        self.tx = None;
    }

    fn finish(&mut self) {
        let Some(tx) = self.tx.take() else {
            return;
        };
        let chunks = std::mem::take(&mut self.chunks);
        let body = match <[Bytes; 1]>::try_from(chunks) {
            Ok([single]) => single,
            Err(chunks) => {
                let mut body = BytesMut::with_capacity(self.len);
                for chunk in chunks {
                    body.extend_from_slice(&chunk);
                }
                body.freeze()
            }
        };
        let _ = tx.send(Recorded::Complete(body));
    }
}
