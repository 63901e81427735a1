//! The response body of the layer: a stored body, or the upstream body passed through
//! (and, on a cacheable miss, read by a task of its own that records it for the store and
//! hands it to the client as it arrives).

use std::{
    future::poll_fn,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::mpsc;

pin_project! {
    /// The body of a response from [`CacheService`](super::CacheService).
    ///
    /// A hit is one frame holding the stored `Bytes` (shared, not copied). A miss streams the
    /// upstream body frame by frame as it arrives. When the response is being stored, a task
    /// of the layer's reads the upstream body, keeps each frame for the store (a reference
    /// count, not a copy) and passes it on to this body: the upstream is read at its own pace,
    /// so requests waiting for the same response are served as soon as it is complete, however
    /// slowly this body's client reads. Once the body outgrows the size limit, the task hands
    /// the rest of the upstream body over and this body reads it directly, at the client's
    /// pace: what the layer holds for a slow client is bounded by the size limit.
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
        Pumped {
            rx: mpsc::UnboundedReceiver<Pumped<B>>,
            rest: Option<Pin<Box<B>>>,
            hint: SizeHint,
            done: bool,
        },
    }
}

/// What the task reading an upstream body sends its client's body.
pub(crate) enum Pumped<B> {
    /// The next frame.
    Frame(Frame<Bytes>),
    /// The upstream body failed with this error (the body's own error type, boxed on its way:
    /// a failing body is rare, and the box keeps `CacheBody` free of bounds on `B`).
    Error(Box<dyn std::any::Any + Send>),
    /// The rest of the upstream body, to be read directly.
    Rest(Pin<Box<B>>),
    /// The end of the body.
    End,
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

    /// The client's side of a body read by [`pump`]; `hint` is the upstream body's size hint.
    pub(crate) fn pumped(rx: mpsc::UnboundedReceiver<Pumped<B>>, hint: SizeHint) -> Self {
        CacheBody {
            kind: Kind::Pumped {
                rx,
                rest: None,
                hint,
                done: false,
            },
        }
    }
}

impl<B> Body for CacheBody<B>
where
    B: Body,
    B::Error: 'static,
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
            KindProj::Pumped {
                rx,
                rest,
                hint,
                done,
            } => loop {
                if let Some(rest) = rest {
                    let frame = ready!(rest.as_mut().poll_frame(cx));
                    return Poll::Ready(frame.map(|f| f.map(into_bytes_frame)));
                }
                if *done {
                    return Poll::Ready(None);
                }
                match ready!(rx.poll_recv(cx)) {
                    Some(Pumped::Frame(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            *hint = remaining(hint, data.len() as u64);
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Some(Pumped::Error(error)) => {
                        *done = true;
                        match error.downcast::<B::Error>() {
                            Ok(error) => return Poll::Ready(Some(Err(*error))),
                            // `pump` sends only `B::Error`s: unreachable, and harmless.
                            Err(_) => return Poll::Ready(None),
                        }
                    }
                    Some(Pumped::Rest(body)) => *rest = Some(body),
                    // Without `End`, the task ended early (a panic in the upstream body, a
                    // runtime shutting down): the body ends short, which a client that was
                    // told the length sees.
                    Some(Pumped::End) | None => {
                        *done = true;
                        return Poll::Ready(None);
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Cached { data } => data.is_none(),
            Kind::Upstream { inner } => inner.is_end_stream(),
            Kind::Pumped { rest, done, .. } => {
                *done || rest.as_ref().is_some_and(|rest| rest.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Cached { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Upstream { inner } => inner.size_hint(),
            Kind::Pumped {
                rest: Some(rest), ..
            } => rest.size_hint(),
            Kind::Pumped { hint, .. } => *hint,
        }
    }
}

/// What is left of `hint` after `sent` bytes.
fn remaining(hint: &SizeHint, sent: u64) -> SizeHint {
    let mut left = SizeHint::new();
    left.set_lower(hint.lower().saturating_sub(sent));
    if let Some(upper) = hint.upper() {
        left.set_upper(upper.saturating_sub(sent));
    }
    left
}

impl<B> std::fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Cached { .. } => "cached",
            Kind::Upstream { .. } => "upstream",
            Kind::Pumped { .. } => "recording",
        };
        f.debug_struct("CacheBody").field("kind", &kind).finish()
    }
}

fn into_bytes_frame<D: Buf>(frame: Frame<D>) -> Frame<Bytes> {
    // For `Bytes` data (hyper, axum) this is a move, not a copy.
    frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))
}

/// Reads `body` to its end, passing every frame to `tx` and recording it up to `max` bytes:
/// the whole body (in a buffer with `room` bytes to spare, see [`Recorder::finish`]), or why it
/// cannot be stored. A body that outgrows `max` (or has trailers) is
/// handed over to `tx` to be read by the client directly; one whose client went away is read
/// on while it can still be stored.
pub(crate) async fn pump<B>(
    mut body: Pin<Box<B>>,
    tx: mpsc::UnboundedSender<Pumped<B>>,
    max: usize,
    room: usize,
) -> Result<Bytes, &'static str>
where
    B: Body,
    B::Error: Send + 'static,
{
    let mut recorder = Recorder::new(max);
    loop {
        let frame = match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            None => break,
            Some(Err(error)) => {
                let _ = tx.send(Pumped::Error(Box::new(error)));
                return Err("upstream-error");
            }
            Some(Ok(frame)) => into_bytes_frame(frame),
        };
        let kept = match frame.data_ref() {
            Some(data) => recorder.push(data),
            None => Err("trailers"),
        };
        let _ = tx.send(Pumped::Frame(frame));
        if let Err(why) = kept {
            let _ = tx.send(Pumped::Rest(body));
            return Err(why);
        }
        // A body that says it has ended is not polled again (nor would a server poll it).
        if body.is_end_stream() {
            break;
        }
    }
    let _ = tx.send(Pumped::End);
    Ok(recorder.finish(room))
}

/// Keeps the frames of a body being stored, up to a size limit.
struct Recorder {
    chunks: Vec<Bytes>,
    len: usize,
    max: usize,
}

impl Recorder {
    fn new(max: usize) -> Self {
        Recorder {
            chunks: Vec::new(),
            len: 0,
            max,
        }
    }

    /// Keeps `data` (a reference count); an error once the body is over the limit.
    fn push(&mut self, data: &Bytes) -> Result<(), &'static str> {
        if data.is_empty() {
            return Ok(());
        }
        self.len += data.len();
        if self.len > self.max {
            self.chunks = Vec::new();
            return Err("too-large");
        }
        self.chunks.push(data.clone());
        Ok(())
    }

    /// The whole body in a buffer of its own, with room after it for `room` more bytes and the
    /// decimal digits of its length: the header values and the `Content-Length` a stored
    /// response keeps in its body's buffer (see `CachedResponse::new`). Always a copy, even of
    /// a body read in one piece: that may be a slice of a larger buffer (hyper's read buffer)
    /// that the store must not keep alive.
    fn finish(self, room: usize) -> Bytes {
        let digits = self.len.checked_ilog10().map_or(1, |log| log as usize + 1);
        let mut body = BytesMut::with_capacity(self.len + room + digits);
        for chunk in &self.chunks {
            body.extend_from_slice(chunk);
        }
        body.freeze()
    }
}
