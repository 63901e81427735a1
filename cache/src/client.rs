//! Caching an HTTP client (feature `reqwest`): [`CacheMiddleware`], a
//! [reqwest-middleware](https://docs.rs/reqwest-middleware) `Middleware` on the engine of the
//! tower [`CacheLayer`].
//!
//! Every rule of the layer holds for the client: freshness from `Cache-Control`, `Expires` and
//! heuristics; conditional requests (`If-None-Match`, `If-Modified-Since`) answered with `304`
//! updating the stored response; `Vary`; `stale-while-revalidate` and `stale-if-error`;
//! single-flight (concurrent requests for one URL make one request); invalidation by an unsafe
//! method's response; `Cache-Status` on every response. By default the cache is **private**
//! (the client's own: it stores `Cache-Control: private` responses and responses to requests
//! with `Authorization`, and ignores `s-maxage`), and keys hold the scheme and authority of the
//! URL, so two hosts never share an entry.
//!
//! The middleware sends the requests the cache makes (a miss, a revalidation) down the rest of
//! the chain, with the request's extensions. A revalidation that outlives the request that
//! started it (`stale-while-revalidate` in the background) is sent with a plain client (see
//! [`CacheMiddleware::background_client`]), since the chain belongs to that request.
//!
//! ```no_run
//! use layercake::{Moka, client::CacheMiddleware};
//! use reqwest_middleware::ClientBuilder;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(CacheMiddleware::new(Moka::default())?)
//!     .build();
//! let first = client.get("http://127.0.0.1:8080/report").send().await?;
//! let again = client.get("http://127.0.0.1:8080/report").send().await?; // from the cache while fresh
//! println!("{:?}", again.headers().get("cache-status"));
//! # drop(first); Ok(()) }
//! ```

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use tokio::sync::{mpsc, oneshot};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    Backend, BuildError, CacheLayer,
    layer::{CacheMode, CachedResponse, KeyExtractor, PathAndQuery},
    predicate::{
        Always, BodyUse, BufferBody, RequestPredicate, ResponsePredicate, response::DefaultStore,
    },
};

/// A reqwest-middleware `Middleware` that caches responses; see the [module docs](self).
/// Cheap to clone (clones share the cache).
///
/// ```
/// use layercake::{Moka, client::CacheMiddleware};
/// let cache = CacheMiddleware::new(Moka::default()).unwrap();
/// assert_eq!(cache.layer().stats().hits, 0);
/// ```
#[derive(Clone)]
pub struct CacheMiddleware<B, K = PathAndQuery, Q = Always, R = DefaultStore> {
    layer: CacheLayer<B, K, Q, R>,
    background: reqwest::Client,
}

impl<B: Backend<CachedResponse>> CacheMiddleware<B> {
    /// A private cache (a client's own; see [`CacheMode::Private`]) in `backend`, with the
    /// layer's defaults otherwise. For other settings build the layer and use
    /// [`from_layer`](CacheMiddleware::from_layer).
    ///
    /// ```
    /// use layercake::{Moka, client::CacheMiddleware};
    /// let cache = CacheMiddleware::new(Moka::builder().max_bytes(64 << 20).build()).unwrap();
    /// # drop(cache);
    /// ```
    pub fn new(backend: B) -> Result<Self, BuildError> {
        let layer = CacheLayer::builder(backend)
            .mode(CacheMode::Private)
            .build()?;
        Ok(CacheMiddleware::from_layer(layer))
    }
}

impl<B, K, Q, R> CacheMiddleware<B, K, Q, R> {
    /// The middleware on a layer built with every option of [`CacheLayer::builder`]. Keep the
    /// authority in the key (the default) and, for one user's cache, the private mode.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake::{CacheLayer, Moka, client::CacheMiddleware, layer::CacheMode};
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .mode(CacheMode::Private)
    ///     .stale(Duration::from_secs(30))
    ///     .build()
    ///     .unwrap();
    /// let cache = CacheMiddleware::from_layer(layer);
    /// # drop(cache);
    /// ```
    pub fn from_layer(layer: CacheLayer<B, K, Q, R>) -> Self {
        CacheMiddleware {
            layer,
            background: reqwest::Client::new(),
        }
    }

    /// The client that sends the revalidations that outlive their request (default:
    /// `reqwest::Client::new()`). Give it the settings of the client the middleware is on
    /// (TLS, proxies, timeouts): the rest of the middleware chain does not see these requests.
    ///
    /// ```
    /// use layercake::{Moka, client::CacheMiddleware};
    /// let client = reqwest::Client::builder().build().unwrap();
    /// let cache = CacheMiddleware::new(Moka::default()).unwrap().background_client(client);
    /// # drop(cache);
    /// ```
    #[must_use]
    pub fn background_client(mut self, client: reqwest::Client) -> Self {
        self.background = client;
        self
    }

    /// The layer: its stats, health, invalidation.
    ///
    /// ```
    /// use layercake::{Moka, client::CacheMiddleware};
    /// let cache = CacheMiddleware::new(Moka::default()).unwrap();
    /// assert_eq!(cache.layer().stats().misses, 0);
    /// ```
    pub fn layer(&self) -> &CacheLayer<B, K, Q, R> {
        &self.layer
    }
}

impl<B, K, Q, R> std::fmt::Debug for CacheMiddleware<B, K, Q, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheMiddleware").finish_non_exhaustive()
    }
}

type Answer = Result<reqwest::Response, reqwest_middleware::Error>;

/// A request the cache makes, for the `handle` that owns the rest of the chain, and where its
/// answer goes: the origin's, or the request back when `handle` ended before sending it (the
/// caller then sends it with the background client).
type Call = (
    http::Request<reqwest::Body>,
    oneshot::Sender<Result<Answer, http::Request<reqwest::Body>>>,
);

/// The receiving end of the calls; when dropped (the request answered, or cancelled), the
/// calls still waiting are handed back to be sent in the background.
struct Calls(mpsc::UnboundedReceiver<Call>);

impl Drop for Calls {
    fn drop(&mut self) {
        self.0.close();
        while let Ok((request, reply)) = self.0.try_recv() {
            let _ = reply.send(Err(request));
        }
    }
}

/// The service behind the layer: it hands each request to the `handle` call that made it,
/// which sends it down the rest of the chain; once that call is over, to the background client.
#[derive(Clone)]
struct Forward {
    chain: mpsc::UnboundedSender<Call>,
    background: reqwest::Client,
}

type Forwarded = Pin<
    Box<
        dyn Future<Output = Result<http::Response<reqwest::Body>, reqwest_middleware::Error>>
            + Send,
    >,
>;

impl Service<http::Request<reqwest::Body>> for Forward {
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest_middleware::Error;
    type Future = Forwarded;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<reqwest::Body>) -> Self::Future {
        let (reply, answer) = oneshot::channel();
        let sent = self.chain.send((request, reply));
        let background = self.background.clone();
        Box::pin(async move {
            let unsent = match sent {
                Ok(()) => match answer.await {
                    Ok(Ok(answer)) => return answer.map(http::Response::from),
                    Ok(Err(unsent)) => unsent,
                    // Dropped while it was being sent: cancelled with its request.
                    Err(_) => return Err(ended()),
                },
                Err(mpsc::error::SendError((request, _))) => request,
            };
            // The request that started this one is over: background work.
            let request = reqwest::Request::try_from(unsent)?;
            let response = background.execute(request).await?;
            Ok(http::Response::from(response))
        })
    }
}

/// What driving a request through the cache came to next.
#[allow(
    clippy::large_enum_variant,
    reason = "one value on the stack of each step, moved at once"
)]
enum Step<T> {
    /// The cache answered.
    Answered(T),
    /// The cache asks the origin.
    Call(Call),
}

/// The error of a request whose `handle` call ended before answering it (it was dropped).
fn ended() -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(std::io::Error::other(
        "layercake: the request was cancelled before the cache's call to the origin was sent",
    ))
}

#[async_trait::async_trait]
impl<B, K, Q, R> Middleware for CacheMiddleware<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
    <Q::Body as BodyUse>::Or<K::Body>: BufferBody<reqwest::Body>,
{
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let url = request.url().clone();
        let request = http::Request::try_from(request)?;
        let (chain, calls) = mpsc::unbounded_channel();
        let mut calls = Calls(calls);
        let mut service = self.layer.layer(Forward {
            chain,
            background: self.background.clone(),
        });
        let mut response = std::pin::pin!(service.call(request));
        // Drive the cache's answer, and send the requests it makes down the chain meanwhile
        // (they need this call's `next` and `extensions`).
        let response = loop {
            let step = std::future::poll_fn(|cx| {
                if let Poll::Ready(response) = response.as_mut().poll(cx) {
                    return Poll::Ready(Step::Answered(response));
                }
                match calls.0.poll_recv(cx) {
                    Poll::Ready(Some(call)) => Poll::Ready(Step::Call(call)),
                    // The service holds a sender: never `None` while `response` runs.
                    Poll::Ready(None) | Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match step {
                Step::Answered(response) => break response?,
                Step::Call((request, reply)) => {
                    let answer = match reqwest::Request::try_from(request) {
                        Ok(request) => next.clone().run(request, extensions).await,
                        Err(error) => Err(error.into()),
                    };
                    let _ = reply.send(Ok(answer));
                }
            }
        };
        let (parts, body) = response.into_parts();
        let mut builder = http::Response::builder()
            .status(parts.status)
            .version(parts.version);
        builder = reqwest::ResponseBuilderExt::url(builder, url);
        if let Some(headers) = builder.headers_mut() {
            *headers = parts.headers;
        }
        let response = builder
            .body(reqwest::Body::wrap(body))
            .map_err(reqwest_middleware::Error::middleware)?;
        Ok(reqwest::Response::from(response))
    }
}
