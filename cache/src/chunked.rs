//! Large bodies stored in fixed-size chunks, and `Range` requests answered from them.
//!
//! [`ChunkedLayer`] is for large files served with ranges (video, downloads, disk images):
//! bodies too large to keep whole, of which clients read parts. A resource of
//! [`threshold`](ChunkedLayerBuilder::threshold) bytes or more is kept as chunks of
//! [`chunk_size`](ChunkedLayerBuilder::chunk_size) bytes, each its own entry in the store (so
//! the store's byte budget bounds them, and evicts the cold ones). A `Range` request is
//! answered from the chunks it covers; the chunks missing are fetched from the origin with
//! `Range` requests of their own, aligned to chunks (at most
//! [`max_fetch`](ChunkedLayerBuilder::max_fetch) bytes each), and kept. The response body is
//! produced chunk by chunk as the client reads it: a whole 64 MiB body never sits in memory.
//!
//! Chunks are keyed by the representation's validator (its strong `ETag`, else its
//! `Last-Modified`): a changed file never mixes old and new chunks. A fetch that finds another
//! validator ends the body being sent with an error (its head is gone already) and forgets the
//! resource; the next request starts afresh.
//!
//! What is not chunked passes through untouched: methods other than `GET`, requests with
//! `Authorization` or `Cookie`, origins that answer ranges with `200` (no range support),
//! responses under the threshold, `no-store` or `private` ones, ones that set a cookie, ones
//! without a validator. Put
//! a [`CacheLayer`](crate::CacheLayer) behind it for those: what the chunked layer passes on,
//! the cache layer caches as usual. A resource seen for the first time through a request
//! without `Range` passes through whole (the chunked layer learns its length and validator
//! from the response head); its later requests are answered from chunks.
//!
//! Use it when clients read parts of bodies too large to cache whole (players seeking in a
//! video, resumable downloads). For bodies that fit the cache, the plain layer is simpler and
//! serves ranges of stored bodies too.
//!
//! ```
//! use layercake::{Moka, chunked::ChunkedLayer};
//! use tower::ServiceBuilder;
//!
//! let chunks = ChunkedLayer::builder(Moka::builder().max_bytes(512 << 20).build())
//!     .chunk_size(1 << 20)
//!     .threshold(8 << 20)
//!     .build()
//!     .unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(chunks)
//!     .service_fn(|_: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     });
//! # drop(service);
//! ```

use std::{
    collections::VecDeque,
    future::Future,
    marker::PhantomData,
    ops::RangeInclusive,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode,
    header::{self, HeaderName},
};
use http_body::{Body, Frame, SizeHint};
use layercake_backends::{Backend, Entry, Freshness, Key, KeyBuilder, Timestamp};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    BuildError,
    layer::{
        cache_control::ResponseDirectives,
        range::{Ranged, StoredPart, content_range, ranged},
        validation::{if_range_holds, not_modified},
    },
};

/// `Cache-Status` (RFC 9211).
const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// The error of a chunked body: a chunk the origin did not send as asked.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the chunked layer keeps in the store: a resource's description, or one of its chunks.
/// Opaque; any [`Backend`] of it works ([`Moka`](crate::Moka) keeps any value).
#[derive(Clone)]
pub struct Stored(Kept);

#[derive(Clone)]
enum Kept {
    Resource(Arc<Resource>),
    Chunk(Bytes),
}

/// What the layer knows of a resource.
struct Resource {
    /// `None`: not chunked (small, no range support, no validator): passed through.
    chunked: Option<Chunked>,
}

struct Chunked {
    len: u64,
    /// The strong `ETag` or the `Last-Modified` that names the representation (in chunk keys).
    validator: HeaderValue,
    /// The representation's headers a response from chunks carries.
    headers: HeaderMap,
}

/// The representation headers copied from the origin's response onto responses from chunks.
const KEPT: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
];

/// Stores bodies of large resources in chunks; see the [module docs](self).
pub struct ChunkedLayer<B> {
    shared: Arc<Shared<B>>,
}

impl<B> Clone for ChunkedLayer<B> {
    fn clone(&self) -> Self {
        ChunkedLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<B> std::fmt::Debug for ChunkedLayer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedLayer")
            .field("chunk_size", &self.shared.chunk_size)
            .field("threshold", &self.shared.threshold)
            .finish_non_exhaustive()
    }
}

impl<S: std::fmt::Debug, B> std::fmt::Debug for ChunkedService<S, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<B> std::fmt::Debug for ChunkedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedBody").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kept::Resource(_) => f.write_str("Stored(resource)"),
            Kept::Chunk(bytes) => write!(f, "Stored(chunk of {} bytes)", bytes.len()),
        }
    }
}

struct Shared<B> {
    backend: B,
    chunk_size: u64,
    threshold: u64,
    max_fetch: u64,
    ttl: Duration,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    partial: AtomicU64,
    passed: AtomicU64,
    origin_bytes: AtomicU64,
    origin_fetches: AtomicU64,
    chunks_stored: AtomicU64,
    changed: AtomicU64,
}

/// The chunked layer's counters.
///
/// ```
/// use layercake::{Moka, chunked::ChunkedLayer};
/// let layer = ChunkedLayer::builder(Moka::default()).build().unwrap();
/// assert_eq!(layer.stats().origin_bytes, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChunkedStats {
    /// Requests answered from chunks alone.
    pub hits: u64,
    /// Requests answered from chunks and chunks fetched for them.
    pub partial: u64,
    /// Requests passed through to the inner service as they were.
    pub passed: u64,
    /// Body bytes the layer's own range requests read from the origin.
    pub origin_bytes: u64,
    /// Range requests the layer sent to the origin.
    pub origin_fetches: u64,
    /// Chunks stored.
    pub chunks_stored: u64,
    /// Fetches that found the representation changed (the resource was forgotten).
    pub changed: u64,
}

/// Builds a [`ChunkedLayer`].
///
/// ```
/// use std::time::Duration;
/// use layercake::{Moka, chunked::ChunkedLayer};
/// let layer = ChunkedLayer::builder(Moka::default())
///     .chunk_size(256 * 1024)
///     .threshold(4 << 20)
///     .max_fetch(4 << 20)
///     .ttl(Duration::from_secs(3600))
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[must_use]
pub struct ChunkedLayerBuilder<B> {
    backend: B,
    chunk_size: u64,
    threshold: u64,
    max_fetch: u64,
    ttl: Duration,
}

impl<B: Backend<Stored>> ChunkedLayer<B> {
    /// A builder storing in `backend`, with the defaults: 1 MiB chunks, resources of 8 MiB or
    /// more chunked, up to 8 MiB per fetch, kept an hour (or as long as the origin's `max-age`
    /// says, if shorter).
    ///
    /// ```
    /// let builder = layercake::chunked::ChunkedLayer::builder(layercake::Moka::default());
    /// # drop(builder);
    /// ```
    pub fn builder(backend: B) -> ChunkedLayerBuilder<B> {
        ChunkedLayerBuilder {
            backend,
            chunk_size: 1 << 20,
            threshold: 8 << 20,
            max_fetch: 8 << 20,
            ttl: Duration::from_secs(3600),
        }
    }

    /// The layer's counters.
    ///
    /// ```
    /// let layer = layercake::chunked::ChunkedLayer::builder(layercake::Moka::default()).build().unwrap();
    /// assert_eq!(layer.stats().hits, 0);
    /// ```
    pub fn stats(&self) -> ChunkedStats {
        let c = &self.shared.counters;
        ChunkedStats {
            hits: c.hits.load(Relaxed),
            partial: c.partial.load(Relaxed),
            passed: c.passed.load(Relaxed),
            origin_bytes: c.origin_bytes.load(Relaxed),
            origin_fetches: c.origin_fetches.load(Relaxed),
            chunks_stored: c.chunks_stored.load(Relaxed),
            changed: c.changed.load(Relaxed),
        }
    }

    /// The store.
    ///
    /// ```
    /// let layer = layercake::chunked::ChunkedLayer::builder(layercake::Moka::default()).build().unwrap();
    /// assert!(layer.backend().weighted_size() == 0);
    /// ```
    pub fn backend(&self) -> &B {
        &self.shared.backend
    }
}

impl<B: Backend<Stored>> ChunkedLayerBuilder<B> {
    /// The size of a chunk. Default 1 MiB.
    ///
    /// ```
    /// let builder = layercake::chunked::ChunkedLayer::builder(layercake::Moka::default()).chunk_size(512 * 1024);
    /// # drop(builder);
    /// ```
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// The size from which a resource is chunked; smaller ones pass through. Default 8 MiB.
    ///
    /// ```
    /// let builder = layercake::chunked::ChunkedLayer::builder(layercake::Moka::default()).threshold(1 << 30);
    /// # drop(builder);
    /// ```
    pub fn threshold(mut self, bytes: u64) -> Self {
        self.threshold = bytes;
        self
    }

    /// The most the layer asks the origin for at once (rounded down to whole chunks, at least
    /// one): a longer run of missing chunks is fetched in several requests, as the body is
    /// read. Default 8 MiB.
    ///
    /// ```
    /// let builder = layercake::chunked::ChunkedLayer::builder(layercake::Moka::default()).max_fetch(2 << 20);
    /// # drop(builder);
    /// ```
    pub fn max_fetch(mut self, bytes: u64) -> Self {
        self.max_fetch = bytes;
        self
    }

    /// How long chunks and what is known of a resource are kept (shorter when the origin's
    /// `max-age` says so). Default one hour.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = layercake::chunked::ChunkedLayer::builder(layercake::Moka::default()).ttl(Duration::from_secs(600));
    /// # drop(builder);
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The layer. Fails on a zero chunk size or ttl, or a chunk larger than `max_fetch`.
    ///
    /// ```
    /// use layercake::{BuildError, Moka, chunked::ChunkedLayer};
    /// let error = ChunkedLayer::builder(Moka::default()).chunk_size(0).build().unwrap_err();
    /// assert!(matches!(error, BuildError::ChunkSize { .. }));
    /// ```
    pub fn build(self) -> Result<ChunkedLayer<B>, BuildError> {
        if self.ttl.is_zero() {
            return Err(BuildError::ZeroTtl);
        }
        if self.chunk_size == 0 || self.chunk_size > self.max_fetch {
            return Err(BuildError::ChunkSize {
                chunk_size: self.chunk_size,
                max_fetch: self.max_fetch,
            });
        }
        Ok(ChunkedLayer {
            shared: Arc::new(Shared {
                backend: self.backend,
                chunk_size: self.chunk_size,
                threshold: self.threshold,
                max_fetch: self.max_fetch - self.max_fetch % self.chunk_size,
                ttl: self.ttl,
                counters: Counters::default(),
            }),
        })
    }
}

impl<S, B> Layer<S> for ChunkedLayer<B> {
    type Service = ChunkedService<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        ChunkedService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of a [`ChunkedLayer`].
pub struct ChunkedService<S, B> {
    inner: S,
    shared: Arc<Shared<B>>,
}

impl<S: Clone, B> Clone for ChunkedService<S, B> {
    fn clone(&self) -> Self {
        ChunkedService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The body of a response through the chunked layer: the inner service's, or chunks.
pub struct ChunkedBody<B> {
    kind: BodyKind<B>,
}

enum BodyKind<B> {
    Inner(B),
    Chunks(Box<Reader>),
    Empty,
}

type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, ReqBody, ResBody> Service<Request<ReqBody>> for ChunkedService<S, B>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Backend<Stored>,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + Unpin + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ChunkedBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The ready service answers this request; a clone (made ready when used) the rest.
        let inner = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, inner);
        let shared = Arc::clone(&self.shared);
        Box::pin(answer(shared, ready, request))
    }
}

/// Whether a request may be answered from chunks at all.
fn eligible<T>(request: &Request<T>) -> bool {
    request.method() == Method::GET
        && !request.headers().contains_key(header::AUTHORIZATION)
        && !request.headers().contains_key(header::COOKIE)
}

async fn answer<S, B, ReqBody, ResBody>(
    shared: Arc<Shared<B>>,
    inner: S,
    request: Request<ReqBody>,
) -> Result<Response<ChunkedBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Backend<Stored>,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + Unpin + 'static,
    ResBody::Error: Into<BoxError>,
{
    if !eligible(&request) {
        return pass(&shared, inner, request).await;
    }
    // A GET's body means nothing (RFC 9110 §9.3.1): the head is all that is sent on.
    let request: Request<()> = request.map(drop);
    let resource_key = resource_key(&request);
    let known = match shared.backend.get(&resource_key).await {
        Ok(Some(entry)) if matches!(entry.freshness(Timestamp::now()), Freshness::Fresh(_)) => {
            match entry.value() {
                Stored(Kept::Resource(resource)) => Some(Arc::clone(resource)),
                Stored(Kept::Chunk(_)) => None,
            }
        }
        _ => None,
    };
    let resource = match known {
        Some(resource) => resource,
        None => match learn(&shared, inner.clone(), &request, &resource_key).await? {
            Learned::Resource(resource) => resource,
            Learned::Answered(response) => return Ok(response),
        },
    };
    let Some(chunked) = &resource.chunked else {
        return pass(&shared, inner, clone_head(&request)).await;
    };
    if not_modified(request.headers(), &chunked.headers) {
        let mut response = Response::new(ChunkedBody::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        let headers = response.headers_mut();
        for (name, value) in &chunked.headers {
            headers.append(name, value.clone());
        }
        headers.insert(
            CACHE_STATUS,
            HeaderValue::from_static("layercake; hit; detail=chunks"),
        );
        shared.counters.hits.fetch_add(1, Relaxed);
        return Ok(response);
    }
    let wanted = if if_range_holds(request.headers(), &chunked.headers) {
        ranged(request.headers(), chunked.len)
    } else {
        Ranged::Whole
    };
    let range = match &wanted {
        Ranged::Whole if chunked.len > 0 => 0..=chunked.len - 1,
        Ranged::Part(range) => range.clone(),
        Ranged::Whole => return pass(&shared, inner, clone_head(&request)).await,
        Ranged::Unsatisfiable => {
            let mut response = Response::new(ChunkedBody::empty());
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_RANGE, content_range(None, chunked.len));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            return Ok(response);
        }
    };
    // Whether every chunk is there now (the body reads them again, and fetches any gone since).
    let (first, last) = (
        range.start() / shared.chunk_size,
        range.end() / shared.chunk_size,
    );
    let mut all_there = true;
    for index in first..=last {
        let key = chunk_key(&resource_key, &chunked.validator, shared.chunk_size, index);
        if Chunks::get(&*shared, &key).await.is_none() {
            all_there = false;
            break;
        }
    }
    let (counter, status) = if all_there {
        (&shared.counters.hits, "layercake; hit; detail=chunks")
    } else {
        (
            &shared.counters.partial,
            "layercake; fwd=partial; stored; detail=chunks",
        )
    };
    counter.fetch_add(1, Relaxed);
    let mut response = Response::new(ChunkedBody {
        kind: BodyKind::Chunks(Box::new(Reader {
            chunks: Arc::clone(&shared) as Arc<dyn Chunks>,
            fetch: Arc::new(Fetcher(inner, PhantomData)),
            template: Arc::new(request),
            resource_key,
            resource: Arc::clone(&resource),
            next: *range.start(),
            end: *range.end(),
            ready: VecDeque::new(),
            pending: None,
        })),
    });
    let part = matches!(wanted, Ranged::Part(_));
    if part {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    let headers = response.headers_mut();
    for (name, value) in &chunked.headers {
        headers.append(name, value.clone());
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let length = range.end() - range.start() + 1;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(CACHE_STATUS, HeaderValue::from_static(status));
    if part {
        headers.insert(
            header::CONTENT_RANGE,
            content_range(Some(&range), chunked.len),
        );
    }
    Ok(response)
}

/// `request` sent on as it came; its response as it is.
async fn pass<S, B, ReqBody, ResBody>(
    shared: &Shared<B>,
    mut inner: S,
    request: Request<ReqBody>,
) -> Result<Response<ChunkedBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    shared.counters.passed.fetch_add(1, Relaxed);
    std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
    let response = inner.call(request).await?;
    Ok(response.map(|body| ChunkedBody {
        kind: BodyKind::Inner(body),
    }))
}

enum Learned<T> {
    Resource(Arc<Resource>),
    Answered(T),
}

/// Learns what a resource is (its length, its validator, whether it is chunked): from a range
/// request for the chunk holding the first byte the request wants, or, when it names no first
/// byte (no `Range`, a suffix, several ranges), from the response to the request itself,
/// passed on as it came.
async fn learn<S, B, ReqBody, ResBody>(
    shared: &Arc<Shared<B>>,
    mut inner: S,
    request: &Request<()>,
    resource_key: &Key,
) -> Result<Learned<Response<ChunkedBody<ResBody>>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Backend<Stored>,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + Unpin + 'static,
    ResBody::Error: Into<BoxError>,
{
    let first = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .filter(|spec| !spec.contains(','))
        .and_then(|spec| spec.split_once('-'))
        .and_then(|(first, _)| first.trim().parse::<u64>().ok());
    let Some(first) = first else {
        let response = pass(shared, inner, clone_head(request)).await?;
        if let Some(resource) = describe(shared, response.status(), response.headers()) {
            shared
                .remember(resource_key, resource, response.headers())
                .await;
        }
        return Ok(Learned::Answered(response));
    };
    let index = first / shared.chunk_size;
    let start = index * shared.chunk_size;
    let asked: Request<ReqBody> = range_request(request, start, start + shared.chunk_size - 1);
    shared.counters.origin_fetches.fetch_add(1, Relaxed);
    std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
    let response = inner.call(asked).await?;
    let (parts, body) = response.into_parts();
    let described = if parts.status == StatusCode::OK {
        // The origin answers a range with the whole body: it has no ranges to chunk by.
        Some(Arc::new(Resource { chunked: None }))
    } else {
        describe(shared, parts.status, &parts.headers)
    };
    if let Some(resource) = described {
        shared
            .remember(resource_key, Arc::clone(&resource), &parts.headers)
            .await;
        let part = part_of(&parts.headers);
        let starts_here = part
            .as_ref()
            .is_some_and(|(range, _)| *range.start() == start);
        if let (Some(chunked), Some((range, _)), true) = (&resource.chunked, part, starts_here) {
            let expected = range.end() - range.start() + 1;
            if let Ok(chunk) = collect(body, expected).await {
                shared.counters.origin_bytes.fetch_add(expected, Relaxed);
                let key = chunk_key(resource_key, &chunked.validator, shared.chunk_size, index);
                shared.store_chunk(&key, chunk).await;
                return Ok(Learned::Resource(resource));
            }
        }
    }
    // Not chunked, or not known (an error, a 416): the request goes on as it came, and its
    // answer is the inner service's.
    pass(shared, inner, clone_head(request))
        .await
        .map(Learned::Answered)
}

/// A copy of `request`'s head with an empty body (the layer only sends GETs on).
fn clone_head<T, U: Default>(request: &Request<T>) -> Request<U> {
    let mut copy = Request::new(U::default());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// A range request for `start..=end` of the resource `request` names: its head, without the
/// client's own range and preconditions (the layer asks for bytes, not for a decision).
fn range_request<T, U: Default>(request: &Request<T>, start: u64, end: u64) -> Request<U> {
    let mut asked = clone_head(request);
    let headers = asked.headers_mut();
    for name in [
        header::IF_RANGE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
    ] {
        headers.remove(name);
    }
    headers.insert(header::RANGE, range_header(start, end));
    asked
}

/// A response's single part and the length of its representation (`Content-Range`).
fn part_of(headers: &HeaderMap) -> Option<(RangeInclusive<u64>, u64)> {
    StoredPart::of(headers).map(|part| (part.range, part.len))
}

/// What a response (a `206` to a range request, or a `200` passed through) says of its
/// resource; `None` when it says nothing for sure (any other status).
fn describe<B>(
    shared: &Shared<B>,
    status: StatusCode,
    headers: &HeaderMap,
) -> Option<Arc<Resource>> {
    let len = match status {
        StatusCode::PARTIAL_CONTENT => part_of(headers).map(|(_, len)| len),
        StatusCode::OK => headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|_| {
                headers
                    .get(header::ACCEPT_RANGES)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bytes"))
            }),
        _ => return None,
    };
    let directives = ResponseDirectives::parse(headers);
    // What is one user's (`private`, or setting a cookie) is never kept for everyone.
    let storable =
        !directives.no_store && !directives.private && !headers.contains_key(header::SET_COOKIE);
    // Copied: kept as they came, values parsed by hyper would keep its read buffer.
    let mut kept = HeaderMap::new();
    for name in &KEPT {
        for value in headers.get_all(name) {
            let copy = HeaderValue::from_bytes(value.as_bytes());
            kept.append(name, copy.unwrap_or_else(|_| value.clone()));
        }
    }
    let validator = kept
        .get(header::ETAG)
        .filter(|etag| etag.as_bytes().starts_with(b"\""))
        .or_else(|| kept.get(header::LAST_MODIFIED))
        .cloned();
    let chunked = match (len, validator) {
        (Some(len), Some(validator)) if storable && len >= shared.threshold => Some(Chunked {
            len,
            validator,
            headers: kept,
        }),
        _ => None,
    };
    Some(Arc::new(Resource { chunked }))
}

impl<B: Backend<Stored>> Shared<B> {
    /// Keeps what is now known of a resource, for the layer's ttl or less if the origin's
    /// `max-age` says so.
    async fn remember(&self, key: &Key, resource: Arc<Resource>, headers: &HeaderMap) {
        let max_age = ResponseDirectives::parse(headers).max_age;
        let ttl = max_age.map_or(self.ttl, |age| self.ttl.min(Duration::from_secs(age)));
        if ttl.is_zero() {
            return;
        }
        let entry = Entry::new(
            Stored(Kept::Resource(resource)),
            Timestamp::now(),
            ttl,
            Duration::ZERO,
        )
        .with_weight(512);
        let _ = self.backend.set(key, Arc::new(entry)).await;
    }

    async fn store_chunk(&self, key: &Key, chunk: Bytes) {
        let weight = chunk.len() + 64;
        let entry = Entry::new(
            Stored(Kept::Chunk(chunk)),
            Timestamp::now(),
            self.ttl,
            Duration::ZERO,
        )
        .with_weight(weight);
        if self.backend.set(key, Arc::new(entry)).await.is_ok() {
            self.counters.chunks_stored.fetch_add(1, Relaxed);
        }
    }
}

/// The key of what is known of the resource a request names: its authority and target.
fn resource_key<T>(request: &Request<T>) -> Key {
    let mut key = KeyBuilder::default();
    key.push("chunked");
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .map(HeaderValue::as_bytes)
        })
        .unwrap_or_default();
    key.push(authority.to_ascii_lowercase());
    key.push(request.uri().path_and_query().map_or("/", |p| p.as_str()));
    key.build()
}

/// The key of chunk `index` of the representation `validator` names.
fn chunk_key(resource: &Key, validator: &HeaderValue, chunk_size: u64, index: u64) -> Key {
    let mut key = resource.to_builder();
    key.push(validator.as_bytes());
    key.push(chunk_size.to_le_bytes());
    key.push(index.to_le_bytes());
    key.build()
}

fn range_header(start: u64, end: u64) -> HeaderValue {
    HeaderValue::try_from(format!("bytes={start}-{end}")).expect("digits are a valid value")
}

/// Reads a whole body of `expected` bytes; more or fewer is an error.
async fn collect<B>(mut body: B, expected: u64) -> Result<Bytes, BoxError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut pieces = Vec::new();
    let mut read = 0u64;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.map_err(Into::into)?.into_data() {
            read += data.len() as u64;
            if read > expected {
                return Err("the origin sent more than the range it was asked".into());
            }
            pieces.push(data);
        }
    }
    if read != expected {
        return Err(format!("the origin sent {read} bytes of a range of {expected}").into());
    }
    if pieces.len() == 1 {
        // A slice of the connection's read buffer, maybe: kept, it would keep that alive.
        return Ok(Bytes::copy_from_slice(&pieces[0]));
    }
    let mut whole = bytes::BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
    for piece in pieces {
        whole.extend_from_slice(&piece);
    }
    Ok(whole.freeze())
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The store, for the body (erased: a body type names neither the store nor the service).
trait Chunks: Send + Sync {
    fn chunk_size(&self) -> u64;
    fn max_fetch(&self) -> u64;
    fn counters(&self) -> &Counters;
    fn get<'a>(&'a self, key: &'a Key) -> Boxed<'a, Option<Bytes>>;
    fn put<'a>(&'a self, key: &'a Key, chunk: Bytes) -> Boxed<'a, ()>;
    fn forget<'a>(&'a self, key: &'a Key) -> Boxed<'a, ()>;
}

impl<B: Backend<Stored>> Chunks for Shared<B> {
    fn chunk_size(&self) -> u64 {
        self.chunk_size
    }
    fn max_fetch(&self) -> u64 {
        self.max_fetch
    }
    fn counters(&self) -> &Counters {
        &self.counters
    }
    fn get<'a>(&'a self, key: &'a Key) -> Boxed<'a, Option<Bytes>> {
        Box::pin(async move {
            match self.backend.get(key).await {
                Ok(Some(entry)) => match entry.value() {
                    Stored(Kept::Chunk(bytes)) => Some(bytes.clone()),
                    Stored(Kept::Resource(_)) => None,
                },
                _ => None,
            }
        })
    }
    fn put<'a>(&'a self, key: &'a Key, chunk: Bytes) -> Boxed<'a, ()> {
        Box::pin(self.store_chunk(key, chunk))
    }
    fn forget<'a>(&'a self, key: &'a Key) -> Boxed<'a, ()> {
        Box::pin(async move {
            let _ = self.backend.remove(key).await;
        })
    }
}

/// What a range request to the origin brought: its headers and body.
type Fetched = Result<(HeaderMap, Bytes), BoxError>;

/// The inner service, for the body's range requests (erased, as [`Chunks`]).
trait Fetch: Send + Sync {
    fn fetch(&self, template: &Request<()>, start: u64, end: u64) -> Boxed<'static, Fetched>;
}

struct Fetcher<S, ReqBody, ResBody>(S, PhantomData<fn(ReqBody) -> ResBody>);

impl<S, ReqBody, ResBody> Fetch for Fetcher<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + Unpin + 'static,
    ResBody::Error: Into<BoxError>,
{
    fn fetch(&self, template: &Request<()>, start: u64, end: u64) -> Boxed<'static, Fetched> {
        let mut inner = self.0.clone();
        let request: Request<ReqBody> = range_request(template, start, end);
        Box::pin(async move {
            let failed = |_| BoxError::from("the origin's service failed");
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(failed)?;
            let response = inner.call(request).await.map_err(failed)?;
            let (parts, body) = response.into_parts();
            if parts.status != StatusCode::PARTIAL_CONTENT {
                return Err(format!("the origin answered a range with {}", parts.status).into());
            }
            let body = collect(body, end - start + 1).await?;
            Ok((parts.headers, body))
        })
    }
}

type Pieces = VecDeque<(u64, Bytes)>;

/// Produces a chunked response's body, chunk by chunk: from the store, else fetched (a run of
/// missing chunks, up to `max_fetch`, in one range request) and kept.
struct Reader {
    chunks: Arc<dyn Chunks>,
    fetch: Arc<dyn Fetch>,
    template: Arc<Request<()>>,
    resource_key: Key,
    resource: Arc<Resource>,
    /// The next byte to send, and the last.
    next: u64,
    end: u64,
    /// Chunks read and not yet sent: (index, bytes).
    ready: Pieces,
    pending: Option<Boxed<'static, Result<Pieces, BoxError>>>,
}

impl Reader {
    /// Reads the chunk holding byte `self.next`, or fetches the run of missing chunks from it.
    fn read_next(&self) -> Boxed<'static, Result<Pieces, BoxError>> {
        let (chunks, fetch) = (Arc::clone(&self.chunks), Arc::clone(&self.fetch));
        let (template, resource_key) = (Arc::clone(&self.template), self.resource_key.clone());
        let resource = Arc::clone(&self.resource);
        let (next, end) = (self.next, self.end);
        Box::pin(async move {
            let Some(chunked) = &resource.chunked else {
                return Err("not a chunked resource".into());
            };
            let size = chunks.chunk_size();
            let key = |index| chunk_key(&resource_key, &chunked.validator, size, index);
            let first = next / size;
            if let Some(bytes) = chunks.get(&key(first)).await {
                return Ok(VecDeque::from([(first, bytes)]));
            }
            // The run of missing chunks from here, within what is wanted and one fetch.
            let limit = (end / size).min(first + chunks.max_fetch() / size - 1);
            let mut last = first;
            while last < limit && chunks.get(&key(last + 1)).await.is_none() {
                last += 1;
            }
            let start = first * size;
            let stop = ((last + 1) * size).min(chunked.len) - 1;
            let counters = chunks.counters();
            let (headers, body) = match fetch.fetch(&template, start, stop).await {
                Ok(fetched) => fetched,
                Err(error) => {
                    // Whatever the origin does now, the next request learns it afresh.
                    chunks.forget(&resource_key).await;
                    return Err(error);
                }
            };
            counters.origin_fetches.fetch_add(1, Relaxed);
            counters.origin_bytes.fetch_add(body.len() as u64, Relaxed);
            let same = part_of(&headers) == Some((start..=stop, chunked.len))
                && headers
                    .get(header::ETAG)
                    .or_else(|| headers.get(header::LAST_MODIFIED))
                    .is_some_and(|v| v == chunked.validator);
            if !same {
                counters.changed.fetch_add(1, Relaxed);
                chunks.forget(&resource_key).await;
                return Err("the resource changed while it was being sent".into());
            }
            let mut pieces = VecDeque::with_capacity((last - first + 1) as usize);
            for index in first..=last {
                let from = ((index - first) * size) as usize;
                let to = (from + size as usize).min(body.len());
                let chunk = body.slice(from..to);
                chunks.put(&key(index), chunk.clone()).await;
                pieces.push_back((index, chunk));
            }
            Ok(pieces)
        })
    }
}

impl<B> ChunkedBody<B> {
    fn empty() -> Self {
        ChunkedBody {
            kind: BodyKind::Empty,
        }
    }
}

impl<B> Body for ChunkedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            BodyKind::Empty => Poll::Ready(None),
            BodyKind::Inner(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(Into::into))),
            BodyKind::Chunks(reader) => loop {
                if reader.next > reader.end {
                    return Poll::Ready(None);
                }
                if let Some((index, bytes)) = reader.ready.pop_front() {
                    let size = reader.chunks.chunk_size();
                    let from = (reader.next - index * size) as usize;
                    let to = ((reader.end - index * size) as usize + 1).min(bytes.len());
                    if from >= to {
                        // A chunk shorter than it should be: never sent as such.
                        reader.next = reader.end + 1;
                        return Poll::Ready(Some(Err("a stored chunk is short".into())));
                    }
                    reader.next += (to - from) as u64;
                    return Poll::Ready(Some(Ok(Frame::data(bytes.slice(from..to)))));
                }
                let pending = match &mut reader.pending {
                    Some(pending) => pending,
                    None => reader.pending.insert(reader.read_next()),
                };
                let read = ready!(pending.as_mut().poll(cx));
                reader.pending = None;
                match read {
                    Ok(pieces) => reader.ready = pieces,
                    Err(error) => {
                        reader.next = reader.end + 1;
                        return Poll::Ready(Some(Err(error)));
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Empty => true,
            BodyKind::Inner(body) => body.is_end_stream(),
            BodyKind::Chunks(reader) => reader.next > reader.end,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Empty => SizeHint::with_exact(0),
            BodyKind::Inner(body) => body.size_hint(),
            BodyKind::Chunks(reader) => {
                SizeHint::with_exact((reader.end + 1).saturating_sub(reader.next))
            }
        }
    }
}
