//! The response future of [`CacheService`](super::CacheService).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{HeaderName, HeaderValue, Response};
use pin_project_lite::pin_project;

use super::{
    CacheBody,
    status::{set_cache_status, with_fwd_status},
};

/// The future of a cache miss: lookups in byte tiers, waiting for another caller, the upstream
/// call. It is boxed because the futures of [`Backend`](crate::Backend) methods cannot be named
/// on stable Rust; a miss pays one allocation next to an upstream call. Hits and pass-throughs
/// never take this path.
/// What an unsafe request's response triggers: invalidation of the stored responses it
/// affects (RFC 9111 §4.4), given the response's status and headers.
pub(crate) type Invalidation = Box<dyn FnOnce(http::StatusCode, &http::HeaderMap) + Send>;

pub(crate) type MissFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<CacheBody<B>>, E>> + Send>>;

pin_project! {
    /// The response future of [`CacheService`](super::CacheService).
    ///
    /// A hit from a tier that answers at once (memory) is ready when the service returns it;
    /// a request the cache does not handle is the inner service's future, unboxed; only a miss
    /// is a boxed future (see the [module docs](super#performance)).
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Ready { response: Option<Response<CacheBody<B>>> },
        Passthrough {
            #[pin] future: F,
            status: Option<HeaderValue>,
            invalidate: Option<Invalidation>,
            hidden: Option<Arc<[HeaderName]>>,
        },
        Miss { future: MissFuture<B, E> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn ready(response: Response<CacheBody<B>>) -> Self {
        ResponseFuture {
            state: State::Ready {
                response: Some(response),
            },
        }
    }

    /// The inner service's future for a request the cache does not handle: its response
    /// gets `status` (and the service's status code) as its `Cache-Status`, loses the `hidden`
    /// headers (the cache's tag headers), and may `invalidate` stored responses.
    pub(crate) fn passthrough(
        future: F,
        status: HeaderValue,
        invalidate: Option<Invalidation>,
        hidden: Option<Arc<[HeaderName]>>,
    ) -> Self {
        ResponseFuture {
            state: State::Passthrough {
                future,
                status: Some(status),
                invalidate,
                hidden,
            },
        }
    }

    pub(crate) fn miss(future: MissFuture<B, E>) -> Self {
        ResponseFuture {
            state: State::Miss { future },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CacheBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Ready { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
            StateProj::Passthrough {
                future,
                status,
                invalidate,
                hidden,
            } => {
                let response = ready!(future.poll(cx))?;
                let (mut parts, body) = response.into_parts();
                if let Some(invalidate) = invalidate.take() {
                    invalidate(parts.status, &parts.headers);
                }
                if let Some(hidden) = hidden.take() {
                    super::tags::strip(&hidden, &mut parts.headers);
                }
                if let Some(status) = status.take() {
                    // Every pass-through was forwarded: say what upstream answered.
                    set_cache_status(&mut parts.headers, with_fwd_status(&status, parts.status));
                }
                Poll::Ready(Ok(Response::from_parts(parts, CacheBody::upstream(body))))
            }
            StateProj::Miss { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> std::fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
