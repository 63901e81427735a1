//! The cache service: one request through the layer.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderValue, Method, Request, Response, StatusCode, header, request};
use http_body::Body;
use layercake_backends::{Backend, Entry, Key, Timestamp};
use tokio::sync::oneshot;
use tower_service::Service;
use tracing::Instrument;

use super::{
    CacheBody, CachedResponse, KeyExtractor, PathAndQuery, ResponseFuture,
    body::{Recorded, Recorder},
    response::{Lifetime, Rules},
    status::{CacheStatus, Forwarded, set_cache_status},
};
use crate::{
    engine::{Acquired, Engine, Found},
    flight::{Leader, Outcome},
    stats::Stats,
};

/// What the layer and its services share.
pub(crate) struct Shared<B, K> {
    pub(crate) engine: Engine<CachedResponse, B>,
    pub(crate) rules: Rules,
    pub(crate) status: CacheStatus,
    pub(crate) key: K,
    /// Namespace and schema: the first parts of every key.
    pub(crate) prefix: Key,
}

/// Caches the responses of the inner service; made by [`CacheLayer`](super::CacheLayer).
pub struct CacheService<S, B, K = PathAndQuery> {
    inner: S,
    shared: Arc<Shared<B, K>>,
}

impl<S, B, K> CacheService<S, B, K> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<B, K>>) -> Self {
        CacheService { inner, shared }
    }

    /// The cache's counters (shared with the layer and every service it made).
    pub fn stats(&self) -> crate::CacheStats {
        self.shared.engine.stats.snapshot()
    }
}

impl<S: Clone, B, K> Clone for CacheService<S, B, K> {
    fn clone(&self) -> Self {
        CacheService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: std::fmt::Debug, B, K> std::fmt::Debug for CacheService<S, B, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B, K, ReqBody, ResBody> Service<Request<ReqBody>> for CacheService<S, B, K>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
{
    type Response = Response<CacheBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let shared = &*self.shared;
        let (parts, body) = request.into_parts();

        // 1. Request predicate: not cacheable means no key, no lookup.
        if let Err(why) = shared.rules.request(&parts) {
            Stats::bump(&shared.engine.stats.passes);
            tracing::trace!(method = %parts.method, uri = %parts.uri, why, "cache pass-through");
            let status = match why {
                "method" => shared.status.method.clone(),
                _ => shared.status.bypass_authorization.clone(),
            };
            let future = self.inner.call(Request::from_parts(parts, body));
            return ResponseFuture::passthrough(future, status);
        }

        // 2. Key.
        let Some(key) = shared.key_for(&parts) else {
            Stats::bump(&shared.engine.stats.passes);
            tracing::trace!(uri = %parts.uri, "key extractor declined; cache pass-through");
            let future = self.inner.call(Request::from_parts(parts, body));
            return ResponseFuture::passthrough(future, shared.status.bypass_key.clone());
        };

        // 3. Lookup, at once when the tier can answer at once.
        let now = Timestamp::now();
        let peeked = shared.engine.peek(&key, now);
        if let Some(found) = &peeked {
            if let Some(servable) = found.servable() {
                shared.engine.record(found);
                let response = shared.serve_found(servable, &key, &parts.method, now);
                return ResponseFuture::ready(response);
            }
        }

        // A miss, or a tier that must be waited for: the inner service goes with the future
        // (the one that was made ready), a clone stays behind.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        let span = tracing::debug_span!("layercake_miss", key = %key);
        let request = Request::from_parts(parts, body);
        let future = miss(shared, inner, request, key, peeked.is_some());
        ResponseFuture::miss(Box::pin(future.instrument(span)))
    }
}

impl<B, K> Shared<B, K>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
{
    fn key_for(&self, parts: &request::Parts) -> Option<Key> {
        let mut key = self.prefix.to_builder();
        // HEAD is keyed as GET, so it is answered from the stored GET.
        let method = if parts.method == Method::HEAD {
            &Method::GET
        } else {
            &parts.method
        };
        key.push(method.as_str());
        self.key.extract(parts, &mut key).then(|| key.build())
    }

    /// A response from a fresh or (allowed) stale entry; `ttl` as [`Found::servable`] gives it.
    fn serve_found<ResBody>(
        &self,
        (entry, ttl): (&Arc<Entry<CachedResponse>>, i64),
        key: &Key,
        method: &Method,
        now: Timestamp,
    ) -> Response<CacheBody<ResBody>> {
        tracing::trace!(%key, ttl, "cache hit");
        self.respond(entry, method, self.status.hit(ttl), now)
    }

    /// Rebuilds a response from a stored one: status, the stored headers, `Age`, `Cache-Status`,
    /// and the body as a shared `Bytes` (none for `HEAD`).
    fn respond<ResBody>(
        &self,
        entry: &Entry<CachedResponse>,
        method: &Method,
        status: HeaderValue,
        now: Timestamp,
    ) -> Response<CacheBody<ResBody>> {
        let cached = entry.value();
        let body = if method == Method::HEAD {
            CacheBody::empty()
        } else {
            CacheBody::cached(cached.body().clone())
        };
        let mut response = Response::new(body);
        *response.status_mut() = cached.status();
        let headers = response.headers_mut();
        headers.clone_from(cached.headers());
        let age = entry.age(now).as_secs();
        headers.insert(header::AGE, super::status::age(age));
        headers.insert(super::status::CACHE_STATUS, status);
        response
    }

    /// Passes an upstream response on, saying what the cache did with it.
    fn forwarded<ResBody>(
        &self,
        response: Response<ResBody>,
        outcome: Forwarded,
    ) -> Response<CacheBody<ResBody>> {
        let (mut parts, body) = response.into_parts();
        set_cache_status(&mut parts.headers, self.status.forward("uri-miss", outcome));
        Response::from_parts(parts, CacheBody::upstream(body))
    }
}

/// A request that found nothing in a tier that answers at once (or must wait for a tier).
async fn miss<S, B, K, ReqBody, ResBody>(
    shared: Arc<Shared<B, K>>,
    mut inner: S,
    request: Request<ReqBody>,
    key: Key,
    looked_up: bool,
) -> Result<Response<CacheBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    ResBody: Body + Send + 'static,
{
    let engine = &shared.engine;
    let found = if looked_up {
        Found::Miss
    } else {
        engine.lookup(&key).await
    };
    engine.record(&found);
    if let Some(servable) = found.servable() {
        return Ok(shared.serve_found(servable, &key, request.method(), Timestamp::now()));
    }
    tracing::trace!(%key, "cache miss");

    if request.method() == Method::HEAD {
        // A response to HEAD has no body: it must never become the stored GET.
        let response = inner.call(request).await?;
        return Ok(shared.forwarded(response, Forwarded::NotStored("head")));
    }

    let leader = match engine.acquire(&key).await {
        Acquired::Collapsed(entry) => {
            tracing::trace!(%key, "served by another request's upstream call");
            let status = shared.status.forward("uri-miss", Forwarded::Collapsed);
            return Ok(shared.respond(&entry, request.method(), status, Timestamp::now()));
        }
        Acquired::Found(entry, ttl) => {
            let servable = (&entry, ttl.as_secs() as i64);
            return Ok(shared.serve_found(servable, &key, request.method(), Timestamp::now()));
        }
        Acquired::Lead(leader) => leader,
        Acquired::Alone => {
            let response = inner.call(request).await?;
            return Ok(shared.forwarded(response, Forwarded::Plain));
        }
    };

    // The leader. If the call fails, panics or is cancelled, `leader` is dropped on the way
    // out and the waiting requests take over.
    let response = inner.call(request).await?;
    let (parts, body) = response.into_parts();
    let size = body.size_hint();
    let lifetime = match shared.rules.response(&parts, &size, &engine.policy) {
        Ok(lifetime) => lifetime,
        Err(why) => {
            tracing::debug!(%key, status = %parts.status, why, "response not stored");
            Stats::bump(&engine.stats.uncacheable);
            leader.settle(Outcome::Uncacheable);
            let response = Response::from_parts(parts, body);
            return Ok(shared.forwarded(response, Forwarded::NotStored(why)));
        }
    };

    // Stream the body to the client and record it on the way; the store happens when it ends.
    let (tx, rx) = oneshot::channel();
    let pending = PendingStore {
        shared: Arc::clone(&shared),
        key,
        leader,
        status: parts.status,
        headers: shared.rules.stored_headers(&parts.headers, 0),
        lifetime,
    };
    tokio::spawn(pending.store_when_recorded(rx));
    let fits = size
        .upper()
        .is_some_and(|upper| upper <= shared.rules.max_body_size as u64);
    let outcome = if fits {
        Forwarded::Stored
    } else {
        Forwarded::Plain
    };
    let body = CacheBody::recording(body, Recorder::new(tx, shared.rules.max_body_size));
    let mut response = Response::from_parts(parts, body);
    set_cache_status(
        response.headers_mut(),
        shared.status.forward("uri-miss", outcome),
    );
    Ok(response)
}

/// A response whose body is streaming to the client; stored once the body is complete.
struct PendingStore<B, K> {
    shared: Arc<Shared<B, K>>,
    key: Key,
    leader: Leader<CachedResponse>,
    status: StatusCode,
    headers: http::HeaderMap,
    lifetime: Lifetime,
}

impl<B, K> PendingStore<B, K>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
{
    async fn store_when_recorded(self, recorded: oneshot::Receiver<Recorded>) {
        let engine = &self.shared.engine;
        let body = match recorded.await {
            Ok(Recorded::Complete(body)) if body.len() >= self.shared.rules.min_body_size => body,
            Ok(Recorded::Complete(_)) => return self.give_up("too-small"),
            Ok(Recorded::Abandoned(why)) => return self.give_up(why),
            // The body was dropped before its end (client gone, upstream error): dropping the
            // leader lets a waiting request take over.
            Err(_) => return,
        };
        let mut headers = self.headers;
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        debug_assert!(headers.contains_key(header::AGE), "slots for hit headers");
        let cached = CachedResponse::new(self.status, headers, body);
        let weight = cached.weight();
        let lifetime = self.lifetime;
        let entry = Entry::new(cached, Timestamp::now(), lifetime.ttl, lifetime.stale);
        let entry = Arc::new(entry.with_weight(weight));
        // Waiting requests are served now; the flight stays registered until the entry is
        // stored, so nobody arriving meanwhile goes upstream again.
        self.leader.settle(Outcome::Entry(Arc::clone(&entry)));
        engine.store(&self.key, entry).await;
    }

    fn give_up(self, why: &'static str) {
        tracing::debug!(key = %self.key, why, "response not stored");
        Stats::bump(&self.shared.engine.stats.uncacheable);
        self.leader.settle(Outcome::Uncacheable);
    }
}
