//! Reading a request body for the predicates and key extractors that need it, and handing it
//! on unchanged.

use std::{
    fmt,
    future::{Future, poll_fn},
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NoBody {}
    impl Sealed for super::ReadsBody {}
}

/// Whether a predicate or key extractor reads the request body: [`NoBody`] or [`ReadsBody`],
/// known at compile time, so a layer whose parts never read bodies pays nothing for them.
///
/// ```
/// use layercake::predicate::{BodyUse, NoBody, ReadsBody};
/// assert!(!NoBody::READS && ReadsBody::READS);
/// assert!(<NoBody as BodyUse>::Or::<ReadsBody>::READS);
/// ```
pub trait BodyUse: sealed::Sealed + Send + Sync + 'static {
    /// `true` for [`ReadsBody`].
    const READS: bool;
    /// What two parts read together: [`ReadsBody`] when either does.
    type Or<U: BodyUse>: BodyUse;
}

/// Reads the request head only.
///
/// ```
/// use layercake::predicate::{NoBody, RequestPredicate, request};
/// fn reads_nothing<P: RequestPredicate<Body = NoBody>>(_: P) {}
/// reads_nothing(request::path("/a"));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum NoBody {}

/// Reads the request body: the layer buffers it (up to
/// [`max_request_body_size`](crate::layer::CacheLayerBuilder::max_request_body_size)) before
/// the predicate or extractor runs, then hands it on unchanged.
///
/// ```
/// use layercake::predicate::{ReadsBody, RequestPredicate, request};
/// fn reads_the_body<P: RequestPredicate<Body = ReadsBody>>(_: P) {}
/// reads_the_body(request::body_size(..100));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum ReadsBody {}

impl BodyUse for NoBody {
    const READS: bool = false;
    type Or<U: BodyUse> = U;
}

impl BodyUse for ReadsBody {
    const READS: bool = true;
    type Or<U: BodyUse> = ReadsBody;
}

/// A request body type that can be read by the layer and handed on to the inner service, the
/// same bytes in the same order: what predicates and key extractors that read bodies need.
///
/// Implemented for axum's `Body` (feature `axum`), `http_body_util::Full<Bytes>`,
/// `http_body_util::combinators::BoxBody<Bytes, E>` and `UnsyncBoxBody<Bytes, E>`, and
/// `String`. A hyper server's `Incoming` cannot be rebuilt: map it into a `BoxBody` first
/// (`request.map(BodyExt::boxed)`), as axum does.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use layercake::predicate::{ReplayBody, Tail};
///
/// let body = Full::<Bytes>::replay(Bytes::from_static(b"{\"query\":\"{ me }\"}"), Tail::End);
/// # drop(body);
/// ```
#[diagnostic::on_unimplemented(
    message = "a predicate or key extractor reads the request body, and `{Self}` cannot be handed on after it is read",
    label = "request bodies of this type cannot be read and replayed",
    note = "body predicates and extractors work with axum's `Body` (feature `axum`), `Full<Bytes>`, `BoxBody<Bytes, E>`, `UnsyncBoxBody<Bytes, E>` and `String`; map other bodies into one of them"
)]
pub trait ReplayBody: Body<Data = Bytes> + Unpin + Sized + Send + 'static {
    /// The body again: `read`, the bytes already read from it, then `tail`, what it had not
    /// yet given.
    fn replay(read: Bytes, tail: Tail<Self>) -> Self;
}

/// What follows the bytes read from a request body (see [`ReplayBody`]).
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use layercake::predicate::{ReplayBody, Tail};
/// let whole = Full::<Bytes>::replay(Bytes::from_static(b"abc"), Tail::End);
/// # drop(whole);
/// ```
pub enum Tail<B: Body> {
    /// Nothing: the whole body was read.
    End,
    /// The body, for the rest of its frames.
    Rest(B),
    /// The body's trailers, which ended it.
    Trailers(HeaderMap),
    /// The error the body failed with.
    Failed(B::Error),
}

impl<B: Body> fmt::Debug for Tail<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tail::End => "End",
            Tail::Rest(_) => "Rest",
            Tail::Trailers(_) => "Trailers",
            Tail::Failed(_) => "Failed",
        })
    }
}

/// Whether the layer can read bodies of type `ReqBody` for the predicates and key extractors
/// of a layer: always for [`NoBody`] (it reads none), for [`ReadsBody`] when the body is a
/// [`ReplayBody`].
#[diagnostic::on_unimplemented(
    message = "a predicate or key extractor reads the request body, and `{ReqBody}` cannot be handed on after it is read",
    note = "body predicates and extractors work with axum's `Body` (feature `axum`), `Full<Bytes>`, `BoxBody<Bytes, E>`, `UnsyncBoxBody<Bytes, E>` and `String`"
)]
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use layercake::predicate::{BufferBody, NoBody, ReadsBody};
/// fn can_read<U: BufferBody<Full<Bytes>>>() {}
/// can_read::<NoBody>();
/// can_read::<ReadsBody>();
/// ```
pub trait BufferBody<ReqBody>: BodyUse {
    /// Whether `body` is known to be empty (then nothing needs to be awaited).
    #[doc(hidden)]
    fn is_empty(body: &ReqBody) -> bool;

    /// Reads `body` up to `limit` bytes.
    #[doc(hidden)]
    fn buffer(body: ReqBody, limit: usize) -> impl Future<Output = Buffered<ReqBody>> + Send;
}

/// A request body after the layer read it: the body to hand on, and its bytes when it was read
/// whole within the limit.
#[doc(hidden)]
#[derive(Debug)]
pub struct Buffered<B> {
    pub(crate) body: B,
    pub(crate) bytes: Option<Bytes>,
}

impl<B: Send> BufferBody<B> for NoBody {
    fn is_empty(_: &B) -> bool {
        true
    }

    #[allow(clippy::manual_async_fn)]
    fn buffer(body: B, _: usize) -> impl Future<Output = Buffered<B>> + Send {
        async move { Buffered { body, bytes: None } }
    }
}

impl<B: ReplayBody> BufferBody<B> for ReadsBody
where
    B::Error: Send,
{
    fn is_empty(body: &B) -> bool {
        body.is_end_stream()
    }

    #[allow(clippy::manual_async_fn)]
    fn buffer(body: B, limit: usize) -> impl Future<Output = Buffered<B>> + Send {
        read(body, limit)
    }
}

/// Reads `body` up to `limit` bytes; a longer body, one with trailers or one that fails is
/// handed on whole (what was read, then the rest) without its bytes.
async fn read<B: ReplayBody>(mut body: B, limit: usize) -> Buffered<B>
where
    B::Error: Send,
{
    let mut read = BytesMut::new();
    let partial = |read: BytesMut, tail| Buffered {
        body: B::replay(read.freeze(), tail),
        bytes: None,
    };
    loop {
        let frame = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return partial(read, Tail::Failed(error)),
        };
        match frame.into_data() {
            Ok(mut data) => {
                if read.is_empty() && data.len() > limit {
                    return partial(BytesMut::from(data), Tail::Rest(body));
                }
                while data.has_remaining() {
                    let chunk = data.chunk();
                    read.extend_from_slice(chunk);
                    let n = chunk.len();
                    data.advance(n);
                }
                if read.len() > limit {
                    return partial(read, Tail::Rest(body));
                }
            }
            Err(frame) => {
                let trailers = frame.into_trailers().unwrap_or_default();
                return partial(read, Tail::Trailers(trailers));
            }
        }
    }
    let bytes = read.freeze();
    Buffered {
        body: B::replay(bytes.clone(), Tail::End),
        bytes: Some(bytes),
    }
}

/// A body that gives `read` first, then what its tail holds.
struct Prefixed<B: Body> {
    read: Option<Bytes>,
    tail: Option<Tail<B>>,
}

// Only the body is ever polled, through `Pin::new` (it is `Unpin`); nothing is pinned in place.
impl<B: Body + Unpin> Unpin for Prefixed<B> {}

impl<B: Body<Data = Bytes> + Unpin> Body for Prefixed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(read) = this.read.take().filter(|r| !r.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(read))));
        }
        match this.tail.take() {
            None | Some(Tail::End) => Poll::Ready(None),
            Some(Tail::Trailers(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Some(Tail::Failed(error)) => Poll::Ready(Some(Err(error))),
            Some(Tail::Rest(mut body)) => {
                let polled = Pin::new(&mut body).poll_frame(cx);
                if !matches!(polled, Poll::Ready(None)) {
                    this.tail = Some(Tail::Rest(body));
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.as_ref().is_none_or(Bytes::is_empty)
            && match &self.tail {
                None | Some(Tail::End) => true,
                Some(Tail::Rest(body)) => body.is_end_stream(),
                Some(_) => false,
            }
    }

    fn size_hint(&self) -> SizeHint {
        let read = self.read.as_ref().map_or(0, |r| r.len() as u64);
        let mut hint = match &self.tail {
            Some(Tail::Rest(body)) => body.size_hint(),
            _ => SizeHint::with_exact(0),
        };
        hint.set_lower(hint.lower() + read);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + read);
        }
        hint
    }
}

/// A body that is always read whole in one frame: replayed from the bytes read.
macro_rules! whole_body {
    ($($ty:ty => $make:expr),+ $(,)?) => {$(
        impl ReplayBody for $ty {
            fn replay(read: Bytes, _: Tail<Self>) -> Self {
                ($make)(read)
            }
        }
    )+};
}

whole_body! {
    http_body_util::Full<Bytes> => http_body_util::Full::new,
    String => |read: Bytes| String::from_utf8_lossy(&read).into_owned(),
}

impl<E> ReplayBody for http_body_util::combinators::BoxBody<Bytes, E>
where
    E: Send + Sync + 'static,
{
    fn replay(read: Bytes, tail: Tail<Self>) -> Self {
        http_body_util::BodyExt::boxed(Prefixed {
            read: Some(read),
            tail: Some(tail),
        })
    }
}

impl<E> ReplayBody for http_body_util::combinators::UnsyncBoxBody<Bytes, E>
where
    E: Send + 'static,
{
    fn replay(read: Bytes, tail: Tail<Self>) -> Self {
        http_body_util::BodyExt::boxed_unsync(Prefixed {
            read: Some(read),
            tail: Some(tail),
        })
    }
}

#[cfg(feature = "axum")]
impl ReplayBody for axum_core::body::Body {
    fn replay(read: Bytes, tail: Tail<Self>) -> Self {
        match tail {
            Tail::End => axum_core::body::Body::from(read),
            tail => axum_core::body::Body::new(Prefixed {
                read: Some(read),
                tail: Some(tail),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};

    use super::*;

    fn chunked(chunks: &[&'static str]) -> BoxBody<Bytes, std::io::Error> {
        let frames = chunks
            .iter()
            .map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect::<Vec<_>>();
        StreamBody::new(futures_util::stream::iter(frames)).boxed()
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_and_handed_on() {
        let read = read(chunked(&["ab", "cd"]), 4).await;
        assert_eq!(read.bytes.as_deref(), Some(&b"abcd"[..]));
        let passed = read.body.collect().await.unwrap().to_bytes();
        assert_eq!(passed, "abcd");
    }

    #[tokio::test]
    async fn a_longer_body_is_handed_on_whole_without_its_bytes() {
        let read = read(chunked(&["ab", "cd", "ef"]), 3).await;
        assert_eq!(read.bytes, None);
        let passed = read.body.collect().await.unwrap().to_bytes();
        assert_eq!(passed, "abcdef");
    }

    #[tokio::test]
    async fn a_failing_body_fails_for_the_inner_service_too() {
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Err(std::io::Error::other("reset")),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
        let read = read(body, 100).await;
        assert_eq!(read.bytes, None);
        let mut body = read.body;
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "ab");
        assert!(body.frame().await.unwrap().is_err());
    }

    #[tokio::test]
    async fn trailers_are_handed_on() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "1".parse().unwrap());
        let frames = vec![
            Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"ab"))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
        let read = read(body, 100).await;
        assert_eq!(read.bytes, None, "a body with trailers is not cached");
        let collected = read.body.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-sum"], "1");
        assert_eq!(collected.to_bytes(), "ab");
    }

    #[tokio::test]
    async fn one_frame_bodies_replay_from_the_bytes() {
        let read = read(Full::new(Bytes::from_static(b"{}")), 10).await;
        assert_eq!(read.bytes.as_deref(), Some(&b"{}"[..]));
        assert_eq!(read.body.collect().await.unwrap().to_bytes(), "{}");
    }
}
