//! What `#[cached_handler]` expands to calls. Not a public API: names and signatures change
//! with the macro.

use std::{
    any::Any,
    hash::{Hash, Hasher},
    sync::OnceLock,
};

pub use layercake_backends::{Key, KeyBuilder};

use crate::{Backend, Cache};

/// An argument on its way into the key: by its `Hash` when it has one, else by its serde form
/// (feature `codec`), else not at all. The macro calls
/// `key_part((&&&KeyArg(&arg)).push_key(..), &arg)`: method resolution tries [`ViaHash`] (on
/// `&&KeyArg`), then [`ViaSerde`] (on `&KeyArg`), then [`ViaNothing`] (on `KeyArg`), at
/// compile time; what the last one returns is refused by
/// [`cached_handler_key_part`](crate::cached_handler_key_part) with a message that says what
/// to do.
pub struct KeyArg<'a, T: ?Sized>(pub &'a T);

use crate::key_part::{NotHashable, Pushed};

/// Pushes an argument by its `Hash`.
pub trait ViaHash {
    /// Adds the argument to `key`.
    fn push_key(&self, key: &mut KeyBuilder) -> Pushed;
}

impl<T: Hash + ?Sized> ViaHash for &&KeyArg<'_, T> {
    fn push_key(&self, key: &mut KeyBuilder) -> Pushed {
        self.0.hash(&mut PartHasher(key));
        Pushed
    }
}

/// Pushes an argument by its serde form (postcard bytes: compact, deterministic).
pub trait ViaSerde {
    /// Adds the argument to `key`.
    fn push_key(&self, key: &mut KeyBuilder) -> Pushed;
}

#[cfg(feature = "codec")]
impl<T: serde::Serialize + ?Sized> ViaSerde for &KeyArg<'_, T> {
    fn push_key(&self, key: &mut KeyBuilder) -> Pushed {
        match postcard::to_stdvec(self.0) {
            Ok(bytes) => key.push(bytes),
            // A value serde cannot write still gets a key of its own kind: no collision with
            // any written value, as a written value is never this marker.
            Err(_) => key.push(b"\xffunserializable"),
        };
        Pushed
    }
}

/// The last resort: an argument that is neither `Hash` nor `Serialize` pushes nothing and
/// says so, for [`cached_handler_key_part`](crate::cached_handler_key_part) to refuse.
pub trait ViaNothing<T: ?Sized> {
    /// Pushes nothing.
    fn push_key(&self, key: &mut KeyBuilder) -> NotHashable<T>;
}

impl<T: ?Sized> ViaNothing<T> for KeyArg<'_, T> {
    fn push_key(&self, _key: &mut KeyBuilder) -> NotHashable<T> {
        NotHashable(std::marker::PhantomData)
    }
}

/// Records what `Hash` writes, byte for byte, into the key: each write a length-prefixed part.
/// Deterministic across processes (unlike std's randomized hasher), so keys are stable for
/// stores that instances share; unambiguous, as std's `Hash` implementations are prefix-free
/// and every write keeps its length. No allocation: the key builder's buffer is on the stack.
struct PartHasher<'a>(&'a mut KeyBuilder);

impl Hasher for PartHasher<'_> {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.push(bytes);
    }
}

/// A value a cached function returns (or, for `Result`/`Option`, its `Ok`/`Some` value).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached: a cached value must be `Clone + Send + Sync + 'static`",
    label = "the cached value type",
    note = "every caller gets a clone of the stored value; wrap it in an `Arc` if cloning is costly or impossible"
)]
pub trait CachedValue: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> CachedValue for T {}

/// Asserts, where the macro puts the span, that `T` can be cached.
pub fn assert_cached_value<T: CachedValue>() {}

/// The cache of one function, made on first use. `slot` is a static of the function's own;
/// the cache's type is inferred from `make`, so the backend may be any expression.
pub fn cache<V, B>(
    slot: &'static OnceLock<Box<dyn Any + Send + Sync>>,
    make: impl FnOnce() -> Cache<V, B>,
) -> &'static Cache<V, B>
where
    V: Clone + Send + Sync + 'static,
    B: Backend<V>,
{
    slot.get_or_init(|| Box::new(make()))
        .downcast_ref()
        .expect("one function, one cache type")
}

/// How a failed computation's error is copied for the callers waiting on it: by `Clone` when
/// the error has it ([`ViaClone`], found first by the macro's `(&&Share::<E>::new()).share()`),
/// else not at all ([`NoShare`]: the waiting callers compute on their own).
pub struct Share<E>(std::marker::PhantomData<fn() -> E>);

impl<E> Share<E> {
    /// The marker for error type `E`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Share(std::marker::PhantomData)
    }
}

/// Shares an error by cloning it.
pub trait ViaClone<E> {
    /// The function that copies an error.
    fn share(&self) -> fn(&E) -> Option<E>;
}

impl<E: Clone> ViaClone<E> for &Share<E> {
    fn share(&self) -> fn(&E) -> Option<E> {
        |error| Some(error.clone())
    }
}

/// Does not share an error.
pub trait NoShare<E> {
    /// The function that says an error cannot be copied.
    fn share(&self) -> fn(&E) -> Option<E>;
}

impl<E> NoShare<E> for Share<E> {
    fn share(&self) -> fn(&E) -> Option<E> {
        |_| None
    }
}

/// How the macro weighs a function's values for a memory tier's byte budget, the best way the
/// value type allows, found by `(&&&WeighAs::<T>::new()).weigher()`: [`GetSize`](crate::GetSize)
/// ([`WeighByGetSize`]), else the size of its serde encoding ([`WeighBySerde`], feature
/// `codec`), else `size_of` ([`WeighBySize`]).
pub struct WeighAs<T>(std::marker::PhantomData<fn() -> T>);

impl<T> WeighAs<T> {
    /// The marker for value type `T`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        WeighAs(std::marker::PhantomData)
    }
}

/// Weighs by `GetSize`.
pub trait WeighByGetSize<T> {
    /// The weigher.
    fn weigher(&self) -> fn(&T) -> usize;
}

impl<T: crate::GetSize> WeighByGetSize<T> for &&WeighAs<T> {
    fn weigher(&self) -> fn(&T) -> usize {
        |value| value.get_size()
    }
}

/// Weighs by the size of the value's serde encoding (what it owns, about), and its own size.
pub trait WeighBySerde<T> {
    /// The weigher.
    fn weigher(&self) -> fn(&T) -> usize;
}

#[cfg(feature = "codec")]
impl<T: serde::Serialize> WeighBySerde<T> for &WeighAs<T> {
    fn weigher(&self) -> fn(&T) -> usize {
        |value| {
            std::mem::size_of::<T>() + postcard::experimental::serialized_size(value).unwrap_or(0)
        }
    }
}

/// Weighs by `size_of` alone: for values that own no heap, or say nothing of it.
pub trait WeighBySize<T> {
    /// The weigher.
    fn weigher(&self) -> fn(&T) -> usize;
}

impl<T> WeighBySize<T> for WeighAs<T> {
    fn weigher(&self) -> fn(&T) -> usize {
        |_| std::mem::size_of::<T>()
    }
}

/// A `None` result, kept out of the cache.
#[derive(Debug, Clone, Copy)]
pub struct NotCached;

/// Responses of axum handlers, as the cache keeps them.
#[cfg(feature = "axum")]
pub mod handler {
    use std::{
        collections::VecDeque,
        pin::Pin,
        task::{Context, Poll},
    };

    use axum_core::{
        body::Body,
        response::{IntoResponse, Response},
    };
    use bytes::{Bytes, BytesMut};
    use http::header;
    use http_body::{Body as _, Frame};

    use crate::layer::CachedResponse;

    /// The most a cached handler response may weigh; larger ones are passed on, not stored.
    pub const MAX_BODY: usize = 4 * 1024 * 1024;

    /// A handler's response that is not stored.
    pub enum Passed {
        /// An error response that may be handed to every request waiting on the same
        /// computation (read whole: no `Set-Cookie`, not `private` or `no-store`).
        Shared(CachedResponse),
        /// A response for its own request only, passed on as it is.
        Own(Response),
    }

    impl Passed {
        /// The response to send.
        pub fn into_response(self) -> Response {
            let mut response = match self {
                Passed::Shared(cached) => from_cached_alone(cached),
                Passed::Own(response) => response,
            };
            // Computed, not stored (an error, `Set-Cookie`, `private` …).
            let status = format!(
                "layercake; fwd=uri-miss; fwd-status={}",
                response.status().as_u16()
            );
            set_status(&mut response, status);
            response
        }
    }

    /// A copy of `passed` for a request that waited on the same computation, when it may have
    /// one.
    pub fn share(passed: &Passed) -> Option<Passed> {
        match passed {
            Passed::Shared(cached) => Some(Passed::Shared(cached.clone())),
            Passed::Own(_) => None,
        }
    }

    /// The handler's response as it may be stored, or as it is when it may not: an error
    /// status (but for the heuristically cacheable 404, 405, 410, 414 and 501 when `negative`
    /// caching is on), `Set-Cookie`, `Cache-Control: private` or `no-store`, a body over 4 MiB,
    /// a body that fails, a response `store_if` refuses. An error response without `Set-Cookie` that is not private is read
    /// whole, so that the requests waiting on it get it too.
    pub async fn to_cached(
        response: impl IntoResponse,
        negative: bool,
        store_if: &impl crate::predicate::ResponsePredicate,
    ) -> Result<CachedResponse, Passed> {
        let response = response.into_response();
        let (parts, body) = response.into_parts();
        let headers = &parts.headers;
        let private = headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|d| {
                let d = d.trim();
                d.eq_ignore_ascii_case("private") || d.eq_ignore_ascii_case("no-store")
            });
        let status = parts.status.as_u16();
        let storable_error = negative && matches!(status, 404 | 405 | 410 | 414 | 501);
        if headers.contains_key(header::SET_COOKIE) || private {
            return Err(Passed::Own(Response::from_parts(parts, body)));
        }
        let error = status >= 400 && !storable_error;
        match read_whole(body, MAX_BODY).await {
            Ok(bytes) => {
                let response = crate::predicate::CacheResponse::new(&parts, &bytes);
                let refused = !store_if.test(&response);
                let mut headers = parts.headers;
                headers.remove(header::CONTENT_LENGTH);
                headers.remove(header::TRANSFER_ENCODING);
                headers.insert(header::CONTENT_LENGTH, http::HeaderValue::from(bytes.len()));
                let cached = CachedResponse::new(parts.status, headers, bytes);
                if error || refused {
                    return Err(Passed::Shared(cached));
                }
                Ok(cached)
            }
            // Too long to keep, or it has trailers or fails: passed on as the handler made it.
            Err(body) => Err(Passed::Own(Response::from_parts(parts, body))),
        }
    }

    /// Reads a whole body of at most `max` bytes. A body that is longer, has trailers or fails
    /// is given back whole instead: the frames read so far, then the rest of it (or its error),
    /// so that nothing the handler made is lost.
    async fn read_whole(mut body: Body, max: usize) -> Result<Bytes, Body> {
        let mut read = VecDeque::new();
        let mut len = 0;
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            let frame = match frame {
                None => break,
                Some(Ok(frame)) => frame,
                Some(Err(error)) => return Err(Body::new(Resumed::failed(read, error))),
            };
            len += frame.data_ref().map_or(0, Bytes::len);
            let done = len > max || !frame.is_data();
            read.push_back(frame);
            if done {
                return Err(Body::new(Resumed::rest(read, body)));
            }
        }
        let mut whole = BytesMut::with_capacity(len);
        for frame in read {
            if let Ok(data) = frame.into_data() {
                whole.extend_from_slice(&data);
            }
        }
        Ok(whole.freeze())
    }

    /// A body given back after some of it was read: those frames, then the rest, or an error.
    struct Resumed {
        read: VecDeque<Frame<Bytes>>,
        rest: Option<Body>,
        error: Option<axum_core::Error>,
    }

    impl Resumed {
        fn rest(read: VecDeque<Frame<Bytes>>, rest: Body) -> Self {
            Resumed {
                read,
                rest: Some(rest),
                error: None,
            }
        }

        fn failed(read: VecDeque<Frame<Bytes>>, error: axum_core::Error) -> Self {
            Resumed {
                read,
                rest: None,
                error: Some(error),
            }
        }
    }

    impl http_body::Body for Resumed {
        type Data = Bytes;
        type Error = axum_core::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, axum_core::Error>>> {
            if let Some(frame) = self.read.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if let Some(error) = self.error.take() {
                return Poll::Ready(Some(Err(error)));
            }
            match &mut self.rest {
                Some(rest) => Pin::new(rest).poll_frame(cx),
                None => Poll::Ready(None),
            }
        }
    }

    /// A response rebuilt from a stored one: the body is shared, not copied.
    pub fn from_cached(cached: CachedResponse, served: crate::typed::Served) -> Response {
        use crate::typed::Served;
        let mut response = from_cached_alone(cached);
        let status = match served {
            Served::Hit(ttl, Some(tier)) => format!("layercake; hit; ttl={ttl}; detail={tier}"),
            Served::Hit(ttl, None) => format!("layercake; hit; ttl={ttl}"),
            Served::StaleRefreshing(ttl, tier) => {
                format!("layercake; hit; ttl={ttl}; fwd=stale; detail={tier}")
            }
            Served::StaleOnError(ttl) => {
                format!("layercake; hit; ttl={ttl}; fwd=stale; detail=stale-if-error")
            }
            Served::Collapsed => format!(
                "layercake; fwd=uri-miss; fwd-status={}; collapsed",
                response.status().as_u16()
            ),
            Served::Computed => format!(
                "layercake; fwd=uri-miss; fwd-status={}; stored",
                response.status().as_u16()
            ),
        };
        set_status(&mut response, status);
        response
    }

    /// The stored response as a response, without a `Cache-Status` of its own.
    fn from_cached_alone(cached: CachedResponse) -> Response {
        let mut response = Response::new(Body::from(cached.body().clone()));
        *response.status_mut() = cached.status();
        // With room for the `Cache-Status` a hit adds: the copy never grows.
        *response.headers_mut() = crate::layer::hit_headers(cached.headers());
        response
    }

    /// Adds `status` to the response's `Cache-Status` (RFC 9211), after what caches nearer the
    /// origin said.
    fn set_status(response: &mut Response, status: String) {
        if let Ok(value) = http::HeaderValue::try_from(status) {
            crate::layer::set_cache_status(response.headers_mut(), value);
        }
    }
}
