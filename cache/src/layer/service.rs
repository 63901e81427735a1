//! The cache service: one request through the layer.

use std::{
    future::poll_fn,
    pin::pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header, request};
use http_body::Body;
use layercake_backends::{Backend, Entry, Key, KeyBuilder, Timestamp};
use tokio::sync::mpsc;
use tower_service::Service;
use tracing::Instrument;

use super::{
    CacheBody, CachedResponse, KeyExtractor, PathAndQuery, ResponseFuture,
    body::{Pumped, pump},
    freshness::{Exchange, Verdict, judge},
    range::{Ranged, content_range, is_partial, ranged},
    response::{CacheControl, CacheMode, Lifetime, NotStored, RequestFacts, Rules, Vary},
    status::{CACHE_STATUS, CacheStatus, Forwarded, set_cache_status},
    validation::{
        if_range_holds, make_conditional, not_modified, not_modified_headers, updated_headers,
        validates,
    },
    vary,
};
use crate::{
    engine::{Acquired, Engine, Found, Plan, Refresh, ttl_seconds, whole_seconds},
    flight::{Leader, Outcome},
    offload::TaskError,
    predicate::{
        Always, BodyUse, BufferBody, CacheRequest, CacheResponse, RequestPredicate,
        ResponsePredicate, response::DefaultStore,
    },
    refresh::HotKeys,
    stats::Stats,
};

/// What the layer and its services share.
pub(crate) struct Shared<B, K, Q, R> {
    /// The event log, when it is on.
    pub(crate) events: Option<super::EventLog>,
    /// Which requests use the cache, besides the method.
    pub(crate) cache_if: Q,
    /// Which responses may be stored, besides the HTTP rules.
    pub(crate) store_if: R,
    pub(crate) engine: Arc<Engine<CachedResponse, B>>,
    /// Hot keys and the request heads to refresh them with, when auto-refresh is on.
    pub(crate) hot: Option<Arc<HotKeys<RequestHead>>>,
    pub(crate) rules: Rules,
    pub(crate) status: CacheStatus,
    pub(crate) key: K,
    /// Whether keys include the request's authority.
    pub(crate) authority: bool,
    /// Namespace and schema: the first parts of every key.
    pub(crate) prefix: Key,
}

/// Caches the responses of the inner service; made by [`CacheLayer`](super::CacheLayer).
pub struct CacheService<S, B, K = PathAndQuery, Q = Always, R = DefaultStore> {
    inner: S,
    shared: Arc<Shared<B, K, Q, R>>,
}

impl<S, B, K, Q, R> CacheService<S, B, K, Q, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<B, K, Q, R>>) -> Self {
        CacheService { inner, shared }
    }

    /// The cache's counters (shared with the layer and every service it made).
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    /// use tower::Layer;
    /// let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let service = layer.layer(tower::service_fn(|_: http::Request<String>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// }));
    /// assert_eq!(service.stats().hits, 0);
    /// ```
    pub fn stats(&self) -> crate::CacheStats {
        self.shared.engine.stats.snapshot()
    }
}

impl<S: Clone, B, K, Q, R> Clone for CacheService<S, B, K, Q, R> {
    fn clone(&self) -> Self {
        CacheService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: std::fmt::Debug, B, K, Q, R> std::fmt::Debug for CacheService<S, B, K, Q, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Whether the layer's request predicate or key extractor reads request bodies.
type ReadsBody<Q, K> = <<Q as RequestPredicate>::Body as BodyUse>::Or<<K as KeyExtractor>::Body>;

impl<S, B, K, Q, R, ReqBody, ResBody> Service<Request<ReqBody>> for CacheService<S, B, K, Q, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
    ReadsBody<Q, K>: BufferBody<ReqBody>,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send + 'static,
{
    type Response = Response<CacheBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        serve(&self.shared, &mut self.inner, request)
    }
}

/// One request through the layer whose state is `shared`, with `inner` behind it: what
/// [`CacheService::call`] does, also called by a [configured](crate::config) service with the
/// layer current at the time.
pub(crate) fn serve<S, B, K, Q, R, ReqBody, ResBody>(
    shared: &Arc<Shared<B, K, Q, R>>,
    inner: &mut S,
    request: Request<ReqBody>,
) -> ResponseFuture<S::Future, ResBody, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
    ReadsBody<Q, K>: BufferBody<ReqBody>,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send + 'static,
{
    let Some(log) = &shared.events else {
        return dispatch(shared, inner, request);
    };
    let Some(sampled) = log.start(request.uri(), request.headers()) else {
        return dispatch(shared, inner, request);
    };
    // A sampled request: its event is emitted once its response head is ready.
    let future = dispatch(shared, inner, request);
    let shared = Arc::clone(shared);
    ResponseFuture::miss(Box::pin(async move {
        let response = future.await?;
        if let Some(log) = &shared.events {
            let (status, headers) = (response.status(), response.headers());
            log.emit(&shared.engine.name, &sampled, status, headers);
        }
        Ok(response)
    }))
}

/// One request through the layer (see the [module docs](super)).
fn dispatch<S, B, K, Q, R, ReqBody, ResBody>(
    shared: &Arc<Shared<B, K, Q, R>>,
    inner: &mut S,
    request: Request<ReqBody>,
) -> ResponseFuture<S::Future, ResBody, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
    ReadsBody<Q, K>: BufferBody<ReqBody>,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send + 'static,
{
    let (parts, body) = request.into_parts();

    // 1. Request predicate: a method the cache does not handle, or a request the layer's
    // predicate refuses on its head, means no key, no lookup.
    if !shared.rules.caches_method(&parts.method) {
        let status = shared.status.method.clone();
        return pass(shared, inner, parts, body, status);
    }
    let verdict = shared.cache_if.test_head(&parts);
    if verdict == Some(false) {
        let status = shared.status.bypass_predicate.clone();
        return pass(shared, inner, parts, body, status);
    }

    // The predicate needs the body to decide, or the key is made from it: read it first
    // (at once when it is known to be empty).
    let needs_body = verdict.is_none() || <K::Body as BodyUse>::READS;
    if needs_body && !ReadsBody::<Q, K>::is_empty(&body) {
        let clone = inner.clone();
        let mut inner = std::mem::replace(inner, clone);
        let shared = Arc::clone(shared);
        let limit = shared.rules.max_request_body_size;
        let future = async move {
            let read = ReadsBody::<Q, K>::buffer(body, limit).await;
            let bytes = read.bytes.as_ref();
            admit(&shared, &mut inner, parts, read.body, bytes, verdict).await
        };
        return ResponseFuture::miss(Box::pin(future));
    }
    let empty = needs_body.then(Bytes::new);
    admit(shared, inner, parts, body, empty.as_ref(), verdict)
}

/// Passes a request the cache does not handle to `inner`; its response says `status` and,
/// for an unsafe method, invalidates what it changed (RFC 9111 §4.4).
fn pass<S, B, K, Q, R, ReqBody, ResBody>(
    shared: &Arc<Shared<B, K, Q, R>>,
    inner: &mut S,
    parts: request::Parts,
    body: ReqBody,
    status: HeaderValue,
) -> ResponseFuture<S::Future, ResBody, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    Stats::bump(&shared.engine.stats.passes);
    tracing::trace!(method = %parts.method, uri = %parts.uri, ?status, "cache pass-through");
    let invalidate = is_unsafe(&parts.method).then(|| invalidation(shared, &parts));
    let hidden = shared.rules.tagging.hidden();
    let future = inner.call(Request::from_parts(parts, body));
    ResponseFuture::passthrough(future, status, invalidate, hidden)
}

/// A request whose method the cache handles, with its body when it was read: the rest of the
/// layer's predicate, the key, then the lookup.
fn admit<S, B, K, Q, R, ReqBody, ResBody>(
    shared: &Arc<Shared<B, K, Q, R>>,
    inner: &mut S,
    parts: request::Parts,
    body: ReqBody,
    bytes: Option<&Bytes>,
    verdict: Option<bool>,
) -> ResponseFuture<S::Future, ResBody, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send + 'static,
{
    let request = CacheRequest::new(&parts, bytes);
    if verdict.is_none() && !shared.cache_if.test(&request) {
        let status = shared.status.bypass_predicate.clone();
        return pass(shared, inner, parts, body, status);
    }

    // 2. Key, built on the stack: a memory hit looks it up there and never copies it.
    let Some(built) = shared.key_for(&request) else {
        let status = shared.status.bypass_key.clone();
        return pass(shared, inner, parts, body, status);
    };
    let key = built.as_key();

    // Auto-refresh sends a request again from its head, with an empty body: not one whose
    // body made it cacheable.
    if let Some(hot) = shared
        .hot
        .as_ref()
        .filter(|_| bytes.is_none_or(Bytes::is_empty))
    {
        hot.record(&key.to_key(), || RequestHead::of(&parts));
    }

    // 3. Lookup, at once when the tier can answer at once.
    let facts = RequestFacts::of(&parts.headers, &shared.rules);
    let now = Timestamp::now();
    let mut found = shared.engine.peek(key, now);
    let mut variant = None;
    if let Some(list) = found.as_ref().and_then(variants_list) {
        let route = shared.route_to_variant(key.to_key(), list, &parts.headers);
        found = shared.engine.peek(route.key.as_key_ref(), now);
        variant = Some(route);
    }
    let route = move || variant.unwrap_or_else(|| Route::plain(key.to_key()));
    let asking = Asking::new(&parts.method, &parts.headers, facts);
    let plan = found.map(|found| shared.plan(found, &asking, now));
    let plan = match plan {
        Some((
            Plan::Serve {
                entry,
                ttl,
                refresh,
            },
            _,
        )) => {
            let tier = Some(shared.engine.peek_tier);
            let response = shared.serve(&entry, ttl, refresh, &asking, now, tier);
            if refresh != Refresh::No {
                let request = Request::from_parts(parts, body);
                spawn_refresh(shared, inner.clone(), request, route(), Some(entry));
            }
            return ResponseFuture::ready(response);
        }
        Some((Plan::Fetch { .. }, _)) if facts.only_if_cached() => {
            return ResponseFuture::ready(shared.gateway_timeout());
        }
        plan => plan,
    };

    // A miss, or a tier that must be waited for: the inner service goes with the future
    // (the one that was made ready), a clone stays behind.
    let route = route();
    let clone = inner.clone();
    let inner = std::mem::replace(inner, clone);
    let shared = Arc::clone(shared);
    let span = tracing::debug_span!("layercake_miss", key = %route.key);
    let request = Request::from_parts(parts, body);
    let future = miss(shared, inner, request, route, plan, facts);
    ResponseFuture::miss(Box::pin(future.instrument(span)))
}

impl<B, K, Q, R> Shared<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    fn key_for(&self, request: &CacheRequest<'_>) -> Option<KeyBuilder> {
        let mut key = KeyBuilder::default();
        key.push_key(&self.prefix);
        // HEAD is keyed as GET, so it is answered from the stored GET.
        let method = if request.method() == Method::HEAD {
            &Method::GET
        } else {
            request.method()
        };
        key.push(method.as_str());
        if self.authority {
            push_authority(request.parts(), &mut key);
        }
        self.key.extract(request, &mut key).then_some(key)
    }

    /// The keys of every response stored for `target` (with request `headers`, for the `Host`
    /// and any header the key extractor reads): one per cached method, `HEAD` being keyed as
    /// `GET`. A varying URL's variants hang off its key (see [`vary`]): removing it makes
    /// every variant unreachable.
    pub(crate) fn keys_of_url(&self, target: http::Uri, headers: &HeaderMap) -> Vec<Key> {
        let mut keys = Vec::with_capacity(1);
        for method in self.rules.methods.iter().filter(|m| **m != Method::HEAD) {
            let mut request = Request::new(());
            *request.method_mut() = method.clone();
            *request.uri_mut() = target.clone();
            *request.headers_mut() = headers.clone();
            let (parts, ()) = request.into_parts();
            if let Some(key) = self.key_for(&CacheRequest::new(&parts, None)) {
                keys.push(key.build());
            }
        }
        keys
    }

    /// Removes `keys` from every tier: what they held, or the first failure (the others are
    /// still removed).
    pub(crate) async fn invalidate_keys(
        &self,
        keys: Vec<Key>,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        each_key(
            keys,
            |key| async move { self.engine.invalidate(&key).await },
        )
        .await
    }

    /// Marks the responses under `keys` stale in every tier (a soft purge); a varying URL's
    /// list of variants is removed instead (its variants cannot be found one by one), which
    /// makes them unreachable.
    pub(crate) async fn soft_invalidate_keys(
        &self,
        keys: Vec<Key>,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        each_key(keys, |key| async move {
            if variants_list(&self.engine.lookup(&key).await).is_some() {
                self.engine.invalidate(&key).await
            } else {
                self.engine.soft_invalidate(&key).await
            }
        })
        .await
    }

    /// The route to the variant of a varying URL that `request` selects.
    fn route_to_variant(
        &self,
        primary: Key,
        list: Arc<Entry<CachedResponse>>,
        request: &HeaderMap,
    ) -> Route {
        let Some(Vary::Variants { names, generation }) = list.value().vary() else {
            return Route::plain(primary);
        };
        let key = vary::variant_key(&primary, *generation, &vary::selection(names, request));
        Route {
            key,
            varies: Some((primary, list)),
        }
    }

    /// Looks `route` up, through the URL's list of variants when it has one.
    /// And the tier that answered.
    async fn lookup(
        &self,
        route: &mut Route,
        request: &HeaderMap,
    ) -> (Found<CachedResponse>, &'static str) {
        let (found, _, tier) = self
            .engine
            .lookup_traced(&route.key, Timestamp::now())
            .await;
        if route.varies.is_some() {
            return (found, tier);
        }
        match variants_list(&found) {
            Some(list) => {
                let primary = route.key.clone();
                *route = self.route_to_variant(primary, list, request);
                let (found, _, tier) = self
                    .engine
                    .lookup_traced(&route.key, Timestamp::now())
                    .await;
                (found, tier)
            }
            None => (found, tier),
        }
    }

    /// Whether the response to `head` under `key` should be refreshed by a check that runs
    /// again in `interval`: it is missing, stale, or fresh for at most `interval`. For a
    /// varying URL, the variant `head` selects is the one checked.
    pub(crate) async fn due_within(
        &self,
        key: &Key,
        head: &RequestHead,
        interval: Duration,
    ) -> bool {
        let mut route = Route::plain(key.clone());
        let (found, _) = self.lookup(&mut route, &head.headers).await;
        found.is_due_within(interval)
    }

    /// Whether a stored response answers `request`: a response stored with `Vary` only a
    /// request whose selecting headers match those of the request it answered (§4.1).
    fn answers(&self, entry: &Entry<CachedResponse>, asking: &Asking<'_>) -> bool {
        let cached = entry.value();
        let variant = match cached.vary() {
            None => true,
            Some(Vary::Selected { selection }) => {
                let names = vary::names(cached.headers()).unwrap_or_default();
                **selection == *vary::selection(&names, asking.headers)
            }
            Some(Vary::Variants { .. }) => false,
        };
        variant && (!is_partial(entry) || self.part_for(entry, asking).is_some())
    }

    /// Where a response to `request`, found by `route`, is stored: under the URL's key when
    /// it does not vary; else under its variant's key, with the URL's list of variants
    /// written too when it is new, lists other names, or would expire before this variant.
    fn placement(
        &self,
        route: &Route,
        response: &HeaderMap,
        request: &HeaderMap,
        lifetime: &Lifetime,
    ) -> Placement {
        let primary = route.primary();
        let names = vary::names(response).unwrap_or_default();
        if names.is_empty() {
            return Placement {
                key: primary.clone(),
                vary: None,
                list: None,
            };
        }
        let horizon = lifetime.horizon();
        // The list found on the way in, when it lists these names: keep its generation, and
        // write it again only to make it live longer.
        let current = route
            .varies
            .as_ref()
            .and_then(|(_, list)| match list.value().vary() {
                Some(Vary::Variants {
                    names: listed,
                    generation,
                }) if **listed == *names => Some((
                    Arc::clone(listed),
                    *generation,
                    list.retain_until() < horizon,
                )),
                _ => None,
            });
        let (names, generation, list) =
            current.unwrap_or_else(|| (names.into(), vary::new_generation(), true));
        let selection = vary::selection(&names, request);
        let key = vary::variant_key(primary, generation, &selection);
        let list = list.then(|| {
            let now = Timestamp::now();
            let value = CachedResponse::variants(names, generation);
            let weight = value.weight();
            let entry = Entry::new(
                value,
                now,
                horizon.saturating_duration_since(now),
                Duration::ZERO,
            );
            (primary.clone(), Arc::new(entry.with_weight(weight)))
        });
        Placement {
            key,
            vary: Some(Arc::new(Vary::Selected {
                selection: selection.into(),
            })),
            list,
        }
    }

    /// Settles the flight with `entry` and stores it where `placement` says.
    async fn settle_and_store(
        &self,
        placement: Placement,
        leader: &Leader<CachedResponse>,
        entry: Arc<Entry<CachedResponse>>,
    ) {
        self.engine
            .settle_and_store(&placement.key, leader, entry)
            .await;
        if let Some((primary, list)) = placement.list {
            self.engine.store(&primary, list, leader.since).await;
        }
    }

    /// What to do with what a lookup found, for this request: the layer's policy, unless the
    /// request's credentials or directives say otherwise.
    fn plan(
        &self,
        found: Found<CachedResponse>,
        asking: &Asking<'_>,
        now: Timestamp,
    ) -> (Plan<CachedResponse>, Forward) {
        let (mut plan, forward) = self.plan_for_request(found, asking, now);
        // RFC 5861: the origin's `stale-while-revalidate` lets a stale response be served
        // *while* it is revalidated, whatever the layer's own stale policy.
        if let Plan::Serve {
            entry,
            ttl,
            refresh,
        } = &mut plan
        {
            if *ttl < 0 && *refresh == Refresh::No && self.origin_allows_revalidating(entry) {
                *refresh = Refresh::Stale;
            }
        }
        (plan, forward)
    }

    /// Whether the origin said `stale-while-revalidate` for a stored response (and the layer
    /// respects the origin's freshness information).
    fn origin_allows_revalidating(&self, entry: &Entry<CachedResponse>) -> bool {
        self.rules.cache_control != CacheControl::Override
            && self
                .rules
                .directives(entry.value().headers())
                .0
                .stale_while_revalidate
                .is_some()
    }

    /// The plan before the origin's `stale-while-revalidate` is applied.
    fn plan_for_request(
        &self,
        found: Found<CachedResponse>,
        asking: &Asking<'_>,
        now: Timestamp,
    ) -> (Plan<CachedResponse>, Forward) {
        let engine = &self.engine;
        let facts = &asking.facts;
        let entry = match found.entry() {
            Some(entry)
                if facts.credentials() || facts.directives.is_some() || is_partial(entry) =>
            {
                Arc::clone(entry)
            }
            _ => return (engine.plan(found, now), None),
        };
        if !self.rules.may_serve(entry.value(), facts) {
            // Stored, but not for a request with credentials (§3.5).
            return (engine.plan(Found::Miss, now), Some("miss"));
        }
        if is_partial(&entry) && self.part_for(&entry, asking).is_none() {
            // Stored, but only a part of it, not the part this request wants (§3.3).
            return (engine.plan(Found::Miss, now), Some("miss"));
        }
        let Some(directives) = &facts.directives else {
            return (engine.plan(found, now), None);
        };
        let shared = self.rules.mode == CacheMode::Shared;
        // A fresh entry the request refused: RFC 9211 `fwd=request`.
        let refused = matches!(found, Found::Fresh(..)).then_some("request");
        let stored = || self.rules.directives(entry.value().headers()).0;
        match judge(directives, &entry, stored, now, shared) {
            Verdict::AsStored => (engine.plan(found, now), None),
            Verdict::Serve => (engine.plan_as_is(entry, now), None),
            Verdict::Revalidate if !matches!(found, Found::Retained(_)) => {
                (engine.plan(Found::ErrorOnly(entry), now), refused)
            }
            Verdict::Revalidate | Verdict::MustRevalidate => {
                (engine.plan(Found::Retained(entry), now), refused)
            }
        }
    }

    /// A response from an entry the plan says to serve.
    fn serve<ResBody>(
        &self,
        entry: &Entry<CachedResponse>,
        ttl: i64,
        refresh: Refresh,
        asking: &Asking<'_>,
        now: Timestamp,
        tier: Option<&'static str>,
    ) -> Response<CacheBody<ResBody>> {
        tracing::trace!(ttl, ?refresh, tier, "cache hit");
        if let Some(tier) = tier {
            self.engine.tier_hit(tier);
        }
        let status = match refresh {
            Refresh::Stale => self.status.stale_revalidating(ttl, tier),
            Refresh::No | Refresh::Early => self.status.hit(ttl, tier),
        };
        self.respond(entry, asking, status, now)
    }

    /// A stale entry served because upstream failed (RFC 5861 `stale-if-error`).
    fn serve_on_error<ResBody>(
        &self,
        key: &Key,
        entry: &Entry<CachedResponse>,
        asking: &Asking<'_>,
        upstream_status: Option<StatusCode>,
        why: &dyn std::fmt::Display,
    ) -> Response<CacheBody<ResBody>> {
        self.engine.served_stale_on_error(key, why);
        let now = Timestamp::now();
        let status = self
            .status
            .stale_if_error(ttl_seconds(entry, now), upstream_status);
        self.respond(entry, asking, status, now)
    }

    /// `504 Gateway Timeout`: the request said `only-if-cached` and nothing stored fits.
    fn gateway_timeout<ResBody>(&self) -> Response<CacheBody<ResBody>> {
        let mut response = Response::new(CacheBody::empty());
        *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        headers.insert(CACHE_STATUS, self.status.only_if_cached.clone());
        response
    }

    /// Rebuilds a response from a stored one: status, the stored headers, `Age`, `Cache-Status`,
    /// and the body as a shared `Bytes` (none for `HEAD`). A matching conditional request gets
    /// `304`, a `Range` request a `206` or `416`.
    fn respond<ResBody>(
        &self,
        entry: &Entry<CachedResponse>,
        asking: &Asking<'_>,
        status: HeaderValue,
        now: Timestamp,
    ) -> Response<CacheBody<ResBody>> {
        let cached = entry.value();
        let age = super::status::age(entry.age(now).as_secs());
        let (method, request) = (asking.method, asking.headers);
        let fetch = method == Method::GET || method == Method::HEAD;
        if asking.facts.conditional
            && fetch
            && cached.status().is_success()
            && not_modified(request, cached.headers())
        {
            let mut response = Response::new(CacheBody::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            let headers = response.headers_mut();
            *headers = not_modified_headers(cached.headers());
            headers.insert(header::AGE, age);
            headers.insert(CACHE_STATUS, status);
            return response;
        }
        let mut response = Response::new(CacheBody::empty());
        let headers = response.headers_mut();
        *headers = super::response::hit_headers(cached.headers());
        headers.insert(header::AGE, age);
        headers.insert(CACHE_STATUS, status);
        self.rules.hide_targeted(headers);
        if is_partial(entry) {
            // Planned only for a request whose range the part holds.
            if let Some((wanted, len, bytes)) = self.part_for(entry, asking) {
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_RANGE, content_range(Some(&wanted), len));
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
                *response.body_mut() = CacheBody::cached(bytes);
            }
            return response;
        }
        *response.status_mut() = cached.status();
        let body = cached.body();
        if asking.facts.range
            && method == Method::GET
            && cached.status() == StatusCode::OK
            && if_range_holds(request, cached.headers())
        {
            let len = body.len() as u64;
            match ranged(request, len) {
                Ranged::Whole => {}
                Ranged::Part(part) => {
                    let (start, end) = (*part.start() as usize, *part.end() as usize);
                    let headers = response.headers_mut();
                    headers.insert(header::CONTENT_RANGE, content_range(Some(&part), len));
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end + 1 - start));
                    *response.status_mut() = StatusCode::PARTIAL_CONTENT;
                    *response.body_mut() = CacheBody::cached(body.slice(start..=end));
                    return response;
                }
                Ranged::Unsatisfiable => {
                    let headers = response.headers_mut();
                    headers.insert(header::CONTENT_RANGE, content_range(None, len));
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                    *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                    return response;
                }
            }
        }
        if method != Method::HEAD {
            *response.body_mut() = CacheBody::cached(body.clone());
        }
        response
    }

    /// Passes an upstream response on, saying what the cache did with it.
    fn forwarded<ResBody>(
        &self,
        response: Response<ResBody>,
        fwd: &'static str,
        outcome: Forwarded,
    ) -> Response<CacheBody<ResBody>> {
        let (mut parts, body) = response.into_parts();
        self.rules.tagging.strip(&mut parts.headers);
        let status = self.status.forward(fwd, outcome, parts.status);
        set_cache_status(&mut parts.headers, status);
        Response::from_parts(parts, CacheBody::upstream(body))
    }

    /// What tagging needs to keep of a request before it goes upstream: its method and target,
    /// when a tagging function reads them.
    fn tag_target<ReqBody>(&self, request: &Request<ReqBody>) -> Option<(Method, http::Uri)> {
        self.rules
            .tagging
            .reads_request()
            .then(|| (request.method().clone(), request.uri().clone()))
    }

    /// The tags of a response to the request kept as `target` and `headers`.
    fn tags(
        &self,
        target: Option<&(Method, http::Uri)>,
        headers: &HeaderMap,
        response: &http::response::Parts,
    ) -> Option<Arc<[Arc<str>]>> {
        let request = target.map(|(method, uri)| super::TagRequest {
            method,
            uri,
            headers,
        });
        self.rules.tagging.tags(request.as_ref(), response)
    }

    /// The entry for a complete upstream response.
    fn entry(
        &self,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
        lifetime: Lifetime,
        vary: Option<Arc<Vary>>,
        tags: Option<Arc<[Arc<str>]>>,
    ) -> Arc<Entry<CachedResponse>> {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let cached = CachedResponse::new(status, headers, body).with_vary(vary);
        let weight = cached.weight();
        let mut entry = Entry::new(cached, lifetime.stored_at, lifetime.ttl, lifetime.stale)
            .with_stale_if_error(lifetime.stale_if_error)
            .with_retention(lifetime.retention)
            .with_weight(weight);
        if let Some(tags) = tags {
            entry = entry.with_tags(tags);
        }
        Arc::new(entry)
    }

    /// The entry a `304` makes of the stale entry it validated (RFC 9111 §4.3.4): the stored
    /// body (shared, not copied) under the updated headers, with a new lifetime. The reason
    /// when the updated response may not be stored; the entry to answer with either way.
    pub(crate) fn refreshed(
        &self,
        stale: &Entry<CachedResponse>,
        not_modified: &HeaderMap,
        facts: &RequestFacts,
        exchange: Exchange,
    ) -> (Arc<Entry<CachedResponse>>, Result<(), NotStored>) {
        let cached = stale.value();
        let merged = updated_headers(cached.headers(), not_modified);
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = cached.status();
        parts.headers = merged;
        let size = http_body::SizeHint::with_exact(cached.body().len() as u64);
        let verdict = if validates(not_modified, cached.headers()) {
            self.rules
                .response(&parts, &size, &self.engine.policy, facts, exchange)
        } else {
            Err("304-mismatch")
        };
        let headers = self.rules.stored_headers(&parts.headers, 0);
        let body = cached.body().clone();
        let vary = cached.vary_arc();
        let tags = stale.tag_list().cloned();
        match verdict {
            Ok(lifetime) => (
                self.entry(parts.status, headers, body, lifetime, vary, tags),
                Ok(()),
            ),
            Err(why) => {
                // Served once to this request as the origin just validated it; not stored.
                let lifetime = Lifetime {
                    stored_at: exchange.response_time,
                    ttl: Duration::ZERO,
                    stale: Duration::ZERO,
                    stale_if_error: Duration::ZERO,
                    retention: Duration::ZERO,
                };
                (
                    self.entry(parts.status, headers, body, lifetime, vary, tags),
                    Err(why),
                )
            }
        }
    }
}

/// The request a response is made for: its method, the headers a stored response is matched
/// against (preconditions, `Range`), and what was read of them.
pub(crate) struct Asking<'a> {
    pub(crate) method: &'a Method,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) facts: RequestFacts,
}

impl<'a> Asking<'a> {
    pub(crate) fn new(method: &'a Method, headers: &'a HeaderMap, facts: RequestFacts) -> Self {
        Asking {
            method,
            headers,
            facts,
        }
    }
}

/// The parts of a request kept for answering it after it went upstream.
struct Kept {
    method: Method,
    headers: HeaderMap,
    facts: RequestFacts,
}

impl Kept {
    /// Keeps the method and the headers: those a stored response is matched against
    /// (preconditions, `Range`, any a `Vary` may name).
    fn of(method: &Method, request: &HeaderMap, facts: RequestFacts) -> Self {
        Kept {
            method: method.clone(),
            headers: request.clone(),
            facts,
        }
    }

    fn asking(&self) -> Asking<'_> {
        Asking::new(&self.method, &self.headers, self.facts)
    }
}

/// The request's authority as a key part (RFC 9111 §2: the target URI, authority included, is
/// the primary key): an absolute-form target's, else the `Host` header's (RFC 9112 §3.2.2),
/// lowercased (hosts are case-insensitive); empty when the request names none. An
/// absolute-form target of a scheme other than `http` (a client's `https://` request) has its
/// scheme in front (`https://host`), so `http` and `https` never share an entry; an authority
/// never holds `://`, so the two forms never meet.
fn push_authority(parts: &request::Parts, key: &mut layercake_backends::KeyBuilder) {
    let authority = match parts.uri.authority() {
        Some(authority) => authority.as_str().as_bytes(),
        None => parts
            .headers
            .get(header::HOST)
            .map_or(&b""[..], HeaderValue::as_bytes),
    };
    let scheme = match parts.uri.scheme_str() {
        None | Some("http") => None,
        Some(scheme) => Some(scheme),
    };
    match scheme {
        Some(scheme) => {
            let mut part = Vec::with_capacity(scheme.len() + 3 + authority.len());
            part.extend_from_slice(scheme.as_bytes());
            part.extend_from_slice(b"://");
            part.extend_from_slice(authority);
            part.make_ascii_lowercase();
            key.push(part);
        }
        None if authority.iter().any(u8::is_ascii_uppercase) => {
            key.push(authority.to_ascii_lowercase());
        }
        None => {
            key.push(authority);
        }
    }
}

/// Every method not known to be safe (RFC 9110 §9.2.1: GET, HEAD, OPTIONS and TRACE are):
/// POST, PUT, DELETE, PATCH, and any other, `PROPFIND` or `M-SEARCH` alike (RFC 9111 §4.4).
fn is_unsafe(method: &Method) -> bool {
    !method.is_safe()
}

/// RFC 9111 §4.4: a non-error response to an unsafe request invalidates the stored responses
/// for its target URI, and for the URIs in its `Location` and `Content-Location` when they are
/// on the same origin. The removal runs in a task; the response is not held up.
fn invalidation<B, K, Q, R>(
    shared: &Arc<Shared<B, K, Q, R>>,
    request: &request::Parts,
) -> super::future::Invalidation
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    let shared = Arc::clone(shared);
    let (uri, headers) = (request.uri.clone(), request.headers.clone());
    Box::new(move |status, response_headers| {
        if !(status.is_success() || status.is_redirection()) {
            return;
        }
        let origin = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| headers.get(header::HOST)?.to_str().ok().map(str::to_owned));
        let mut targets = vec![uri];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(location) = response_headers.get(name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            let Ok(location) = location.parse::<http::Uri>() else {
                continue;
            };
            let same_origin = match location.authority() {
                None => location.path().starts_with('/'),
                Some(authority) => origin.as_deref() == Some(authority.as_str()),
            };
            if same_origin {
                targets.push(location);
            }
        }
        let keys: Vec<Key> = targets
            .into_iter()
            .flat_map(|target| shared.keys_of_url(target, &headers))
            // A memory tier says at once when nothing is stored: then there is nothing to do.
            .filter(|key| !matches!(shared.engine.backend.peek(key.as_key_ref()), Some(Ok(None))))
            .collect();
        if keys.is_empty() {
            return;
        }
        // Outside a tokio runtime there is nowhere to run the removal: say so, never panic.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime: stored responses were not invalidated");
            return;
        };
        runtime.spawn(async move {
            tracing::debug!(?keys, "invalidated by an unsafe request");
            // A failure is counted and logged; the stored responses age out.
            let _ = shared.invalidate_keys(keys).await;
        });
    })
}

/// Refreshes `key` in the background with `request` (a HEAD is sent as the GET it stands for),
/// revalidating `stale` when it has validators.
fn spawn_refresh<S, B, K, Q, R, ReqBody, ResBody>(
    shared: &Arc<Shared<B, K, Q, R>>,
    inner: S,
    mut request: Request<ReqBody>,
    route: Route,
    stale: Option<Arc<Entry<CachedResponse>>>,
) where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
{
    if request.method() == Method::HEAD {
        *request.method_mut() = Method::GET;
    }
    let task_shared = Arc::clone(shared);
    let key = route.key.clone();
    shared.engine.refresh(key, move |leader| {
        refresh(task_shared, inner, request, route, leader, stale)
    });
}

/// What auto-refresh keeps of a request to send it again: its head, without extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    method: Method,
    uri: http::Uri,
    version: http::Version,
    headers: HeaderMap,
}

impl RequestHead {
    fn of(parts: &request::Parts) -> Self {
        // HEAD is refreshed as the GET it is answered from.
        let method = if parts.method == Method::HEAD {
            Method::GET
        } else {
            parts.method.clone()
        };
        RequestHead {
            method,
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
        }
    }

    /// The method and target it was made for.
    #[cfg(feature = "admin")]
    pub(crate) fn target(&self) -> (&Method, &http::Uri) {
        (&self.method, &self.uri)
    }

    pub(crate) fn to_request<ReqBody>(&self, body: ReqBody) -> Request<ReqBody> {
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// A background refresh: fetch (a revalidation when `stale` has validators), and store if the
/// response may be stored.
pub(crate) async fn refresh<S, B, K, Q, R, ReqBody, ResBody>(
    shared: Arc<Shared<B, K, Q, R>>,
    mut inner: S,
    mut request: Request<ReqBody>,
    mut route: Route,
    leader: Leader<CachedResponse>,
    stale: Option<Arc<Entry<CachedResponse>>>,
) -> Result<(), TaskError>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
    ResBody: Body,
{
    tracing::debug!(key = %route.key, "refreshing in the background");
    let facts = RequestFacts::of(request.headers(), &shared.rules);
    let request_headers = request.headers().clone();
    let target = shared.tag_target(&request);
    let stale =
        stale.filter(|stale| make_conditional(request.headers_mut(), stale.value().headers()));
    poll_fn(|cx| inner.poll_ready(cx))
        .await
        .map_err(|_| "the upstream service failed")?;
    let request_time = Timestamp::now();
    let response = inner
        .call(request)
        .await
        .map_err(|_| "the upstream service failed")?;
    let exchange = Exchange {
        request_time,
        response_time: Timestamp::now(),
    };
    let (parts, body) = response.into_parts();
    if let Some(stale) = stale.filter(|_| parts.status == StatusCode::NOT_MODIFIED) {
        let (entry, stored) = shared.refreshed(&stale, &parts.headers, &facts, exchange);
        stored.map_err(|why| format!("the revalidated response may not be stored: {why}"))?;
        let key = &route.key;
        shared.engine.settle_and_store(key, &leader, entry).await;
        return Ok(());
    }
    if shared.rules.is_upstream_failure(parts.status) {
        return Err(format!("the upstream answered {}", parts.status).into());
    }
    let lifetime = shared
        .rules
        .response(
            &parts,
            &body.size_hint(),
            &shared.engine.policy,
            &facts,
            exchange,
        )
        .map_err(|why| format!("the response may not be stored: {why}"))?;
    let refused = || TaskError::from("the response may not be stored: predicate");
    let check_body = match shared.store_if.test_head(&parts) {
        Some(false) => return Err(refused()),
        Some(true) => false,
        None => true,
    };
    let body = collect(body, shared.rules.max_body_size).await?;
    if body.len() < shared.rules.min_body_size {
        return Err("the response may not be stored: too-small".into());
    }
    if check_body && !shared.store_if.test(&CacheResponse::new(&parts, &body)) {
        return Err(refused());
    }
    if route.varies.is_none() && parts.headers.contains_key(header::VARY) {
        // A refresh of a URL's own key (a hot key): its variants are listed there.
        let _ = shared.lookup(&mut route, &request_headers).await;
    }
    let placement = shared.placement(&route, &parts.headers, &request_headers, &lifetime);
    let headers = shared.rules.stored_headers(&parts.headers, 0);
    let tags = shared.tags(target.as_ref(), &request_headers, &parts);
    let entry = shared.entry(
        parts.status,
        headers,
        body,
        lifetime,
        placement.vary.clone(),
        tags,
    );
    shared.settle_and_store(placement, &leader, entry).await;
    Ok(())
}

/// Reads a whole body of at most `max` bytes.
pub(crate) async fn collect<B: Body>(body: B, max: usize) -> Result<Bytes, TaskError> {
    let mut body = pin!(body);
    let mut collected = BytesMut::new();
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|_| "the upstream body failed")?;
        let Ok(mut data) = frame.into_data() else {
            return Err("the response may not be stored: trailers".into());
        };
        if collected.len() + bytes::Buf::remaining(&data) > max {
            return Err("the response may not be stored: too-large".into());
        }
        while bytes::Buf::has_remaining(&data) {
            let chunk = bytes::Buf::chunk(&data);
            collected.extend_from_slice(chunk);
            let n = chunk.len();
            bytes::Buf::advance(&mut data, n);
        }
    }
    Ok(collected.freeze())
}

/// A request that must go upstream, or whose lookup must be awaited (`plan` is `None`).
async fn miss<S, B, K, Q, R, ReqBody, ResBody>(
    shared: Arc<Shared<B, K, Q, R>>,
    mut inner: S,
    mut request: Request<ReqBody>,
    mut route: Route,
    plan: Option<(Plan<CachedResponse>, Forward)>,
    facts: RequestFacts,
) -> Result<Response<CacheBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send + 'static,
{
    let engine = &shared.engine;
    let (plan, tier) = match plan {
        Some(plan) => (plan, engine.peek_tier),
        None => {
            let (found, tier) = shared.lookup(&mut route, request.headers()).await;
            let asking = Asking::new(request.method(), request.headers(), facts);
            (shared.plan(found, &asking, Timestamp::now()), tier)
        }
    };
    let (plan, forward) = plan;
    let (fallback, stale, fwd) = match plan {
        Plan::Serve {
            entry,
            ttl,
            refresh,
        } => {
            let (parts, body) = request.into_parts();
            let asking = Asking::new(&parts.method, &parts.headers, facts);
            let now = Timestamp::now();
            let response = shared.serve(&entry, ttl, refresh, &asking, now, Some(tier));
            if refresh != Refresh::No {
                let request = Request::from_parts(parts, body);
                spawn_refresh(&shared, inner, request, route, Some(entry));
            }
            return Ok(response);
        }
        Plan::Fetch { .. } if facts.only_if_cached() => return Ok(shared.gateway_timeout()),
        Plan::Fetch { fallback, stale } => {
            let fwd = match forward {
                Some(fwd) => fwd,
                None if stale.is_some() => "stale",
                None if route.varies.is_some() => "vary-miss",
                None => "uri-miss",
            };
            (fallback, stale, fwd)
        }
    };
    let key = &route.key;
    tracing::trace!(%key, fwd, "going upstream");

    if request.method() == Method::HEAD {
        // A response to HEAD has no body: it must never become the stored GET, but it may
        // update it (RFC 9111 §4.3.5).
        let (since, request_time) = (engine.fence.epoch(), Timestamp::now());
        let response = inner.call(request).await?;
        if let Some(stored) = stale.filter(|_| response.status() == StatusCode::OK) {
            let exchange = Exchange {
                request_time,
                response_time: Timestamp::now(),
            };
            shared
                .update_from_head(key, &stored, response.headers(), &facts, exchange, since)
                .await;
        }
        return Ok(shared.forwarded(response, fwd, Forwarded::NotStored("head")));
    }

    let kept = Kept::of(request.method(), request.headers(), facts);
    let acquired = if facts.no_store() {
        // Its response will not be stored: nobody should wait for it.
        Acquired::Alone
    } else {
        // A request that could not use, or refused, the stored response must not be handed it
        // back by the leader's re-check.
        engine.acquire(key, forward.is_none()).await
    };
    let leader = match acquired {
        Acquired::Collapsed(entry)
            if shared.rules.may_serve(entry.value(), &facts)
                && shared.answers(&entry, &kept.asking()) =>
        {
            tracing::trace!(%key, "served by another request's upstream call");
            let status = shared
                .status
                .forward(fwd, Forwarded::Collapsed, entry.value().status());
            return Ok(shared.respond(&entry, &kept.asking(), status, Timestamp::now()));
        }
        Acquired::Found(entry, ttl)
            if shared.rules.may_serve(entry.value(), &facts)
                && shared.answers(&entry, &kept.asking()) =>
        {
            let ttl = whole_seconds(ttl);
            let now = Timestamp::now();
            return Ok(shared.serve(&entry, ttl, Refresh::No, &kept.asking(), now, None));
        }
        Acquired::Lead(leader) => Some(leader),
        // An upstream error cannot be shared (the service's error type is not `Clone`): the
        // waiting requests go upstream themselves, all at once.
        Acquired::Collapsed(_) | Acquired::Found(..) | Acquired::Alone | Acquired::Failed(_) => {
            None
        }
    };

    // A leader with a stored response that has validators asks the origin whether it changed.
    let revalidating = match (&leader, stale) {
        (Some(_), Some(stale)) => {
            make_conditional(request.headers_mut(), stale.value().headers()).then_some(stale)
        }
        _ => None,
    };

    // Upstream. If the call fails, panics or is cancelled, `leader` is dropped on the way out
    // and the waiting requests take over; with a stale entry at hand, a failure serves it.
    let stale_on_error = |why: &dyn std::fmt::Display, status, stale: &Arc<Entry<_>>| {
        if let Some(leader) = &leader {
            leader.settle(Outcome::Entry(Arc::clone(stale)));
        }
        shared.serve_on_error(key, stale, &kept.asking(), status, why)
    };
    let target = shared.tag_target(&request);
    let request_time = Timestamp::now();
    let response = match engine
        .call_upstream(fallback.as_ref(), inner.call(request))
        .await
    {
        Ok(Ok(response)) => match &fallback {
            Some(stale) if shared.rules.is_upstream_failure(response.status()) => {
                let status = response.status();
                return Ok(stale_on_error(&status, Some(status), stale));
            }
            _ => response,
        },
        Ok(Err(error)) => match &fallback {
            Some(stale) => return Ok(stale_on_error(&"the upstream service failed", None, stale)),
            None => {
                if let Some(leader) = &leader {
                    leader.settle(Outcome::Failed(None));
                }
                return Err(error);
            }
        },
        Err(stale) => return Ok(stale_on_error(&"the upstream timed out", None, stale)),
    };
    let exchange = Exchange {
        request_time,
        response_time: Timestamp::now(),
    };
    let Some(leader) = leader else {
        let outcome = if facts.no_store() {
            Forwarded::NotStored("no-store")
        } else {
            Forwarded::Plain
        };
        return Ok(shared.forwarded(response, fwd, outcome));
    };

    let (parts, body) = response.into_parts();
    if let Some(stale) = revalidating.filter(|_| parts.status == StatusCode::NOT_MODIFIED) {
        // RFC 9111 §4.3.4: the stored body, with the headers and freshness of the 304.
        let (entry, stored) = shared.refreshed(&stale, &parts.headers, &facts, exchange);
        let outcome = match stored {
            Ok(()) => {
                engine
                    .settle_and_store(key, &leader, Arc::clone(&entry))
                    .await;
                Forwarded::Stored
            }
            Err(why) => {
                Stats::bump(&engine.stats.uncacheable);
                leader.settle(Outcome::Uncacheable);
                Forwarded::NotStored(why)
            }
        };
        let status = shared.status.forward(fwd, outcome, parts.status);
        return Ok(shared.respond(&entry, &kept.asking(), status, Timestamp::now()));
    }

    let size = body.size_hint();
    let lifetime = match shared
        .rules
        .response(&parts, &size, &engine.policy, &facts, exchange)
    {
        Ok(lifetime) => lifetime,
        Err(why) => {
            tracing::debug!(%key, status = %parts.status, why, "response not stored");
            Stats::bump(&engine.stats.uncacheable);
            leader.settle(Outcome::Uncacheable);
            let response = Response::from_parts(parts, body);
            return Ok(shared.forwarded(response, fwd, Forwarded::NotStored(why)));
        }
    };
    // The layer's response predicate, on the head; when it needs the body, once it is read.
    let check_body = match shared.store_if.test_head(&parts) {
        Some(false) => {
            tracing::debug!(%key, status = %parts.status, "response predicate refused it");
            Stats::bump(&engine.stats.uncacheable);
            leader.settle(Outcome::Uncacheable);
            let response = Response::from_parts(parts, body);
            let outcome = Forwarded::NotStored("predicate");
            return Ok(shared.forwarded(response, fwd, outcome));
        }
        Some(true) => None,
        None => Some(parts.clone()),
    };

    // Another leader settled first (a dogpile width over 1): its result is the one stored;
    // this response is only passed on.
    if leader.is_settled() {
        let response = Response::from_parts(parts, body);
        return Ok(shared.forwarded(response, fwd, Forwarded::Plain));
    }
    // A task reads the body, records it for the store and passes it to the client as it
    // arrives; the waiting requests are served when the body is complete, not when this
    // request's client has read it.
    let fits = check_body.is_none()
        && size
            .upper()
            .is_some_and(|upper| upper <= shared.rules.max_body_size as u64);
    let outcome = if fits {
        Forwarded::Stored
    } else {
        Forwarded::Plain
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let placement = shared.placement(&route, &parts.headers, &kept.headers, &lifetime);
    let pending = PendingStore {
        shared: Arc::clone(&shared),
        placement,
        leader,
        status: parts.status,
        headers: shared.rules.stored_headers(&parts.headers, 0),
        lifetime,
        tags: shared.tags(target.as_ref(), &kept.headers, &parts),
        check_body,
    };
    let mut parts = parts;
    shared.rules.tagging.strip(&mut parts.headers);
    let max = shared.rules.max_body_size;
    run_or_spawn(pending.store_when_read(Box::pin(body), tx, max)).await;
    let mut response = Response::from_parts(parts, CacheBody::pumped(rx, size));
    let status = shared.status.forward(fwd, outcome, response.status());
    set_cache_status(response.headers_mut(), status);
    Ok(response)
}

/// A response whose body is being read; stored once the body is complete.
struct PendingStore<B, K, Q, R> {
    shared: Arc<Shared<B, K, Q, R>>,
    placement: Placement,
    leader: Leader<CachedResponse>,
    status: StatusCode,
    headers: HeaderMap,
    lifetime: Lifetime,
    tags: Option<Arc<[Arc<str>]>>,
    /// The response's head, when the response predicate needs the body to decide.
    check_body: Option<http::response::Parts>,
}

impl<B, K, Q, R> PendingStore<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    /// Reads `body` (see [`pump`]) and stores it when it is complete and may be stored.
    async fn store_when_read<ResBody>(
        self,
        body: std::pin::Pin<Box<ResBody>>,
        tx: mpsc::UnboundedSender<Pumped<ResBody>>,
        max: usize,
    ) where
        ResBody: Body,
        ResBody::Error: Send + 'static,
    {
        // Room in the body's buffer for the values it stores with it (`Content-Length` is
        // counted by the recorder: it is only known at the end).
        let room = self
            .headers
            .iter()
            .filter(|(name, _)| *name != header::CONTENT_LENGTH)
            .map(|(_, value)| value.len())
            .sum();
        let body = match pump(body, tx, max, room).await {
            Ok(body) if body.len() >= self.shared.rules.min_body_size => body,
            Ok(_) => return self.give_up("too-small"),
            Err(why) => return self.give_up(why),
        };
        let shared = &self.shared;
        if let Some(head) = &self.check_body {
            if !shared.store_if.test(&CacheResponse::new(head, &body)) {
                return self.give_up("predicate");
            }
        }
        let (status, headers, body) = shared
            .combined(&self.placement.key, self.status, self.headers, body)
            .await;
        let vary = self.placement.vary.clone();
        let entry = shared.entry(status, headers, body, self.lifetime, vary, self.tags);
        // Waiting requests are served now; the flight stays registered until the entry is
        // stored, so nobody arriving meanwhile goes upstream again.
        shared
            .settle_and_store(self.placement, &self.leader, entry)
            .await;
    }

    /// The response may not be stored after all: the waiting requests go upstream themselves,
    /// all at once.
    fn give_up(self, why: &'static str) {
        tracing::debug!(key = %self.placement.key, why, "response not stored");
        Stats::bump(&self.shared.engine.stats.uncacheable);
        self.leader.settle(Outcome::Uncacheable);
    }
}

/// Why a request goes forward when the plan alone does not say (RFC 9211 `fwd`): `miss` (a
/// response is stored, but not for this request) or `request` (a fresh response the request's
/// directives refused).
type Forward = Option<&'static str>;

/// Runs `task` here until it would wait, then in a task of its own. A body that is whole at
/// once (a `Full`, a buffered response) going to a store that answers at once (memory) is
/// recorded and stored here, before the response leaves, without a task; anything that waits
/// (a streaming body, a network store) goes on in the background as before.
async fn run_or_spawn<F>(task: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut task = Box::pin(task);
    // One poll with this request's context: a waker it registers only ever wakes this future
    // once more, which is harmless.
    if poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx)))
        .await
        .is_pending()
    {
        tokio::spawn(task);
    }
}

/// Where a request's response is looked up, and how its URL varies.
pub(crate) struct Route {
    /// The key looked up: the URL's, or its variant's.
    key: Key,
    /// For a varying URL: the URL's key and its list of variants.
    varies: Option<(Key, Arc<Entry<CachedResponse>>)>,
}

impl Route {
    pub(crate) fn plain(key: Key) -> Self {
        Route { key, varies: None }
    }

    /// The URL's key.
    fn primary(&self) -> &Key {
        self.varies
            .as_ref()
            .map_or(&self.key, |(primary, _)| primary)
    }
}

/// Runs `one` for each key, in turn: what they did together, or the first failure (the other
/// keys are still done).
async fn each_key<F, Fut>(
    keys: Vec<Key>,
    mut one: F,
) -> Result<crate::Invalidated, layercake_backends::BackendError>
where
    F: FnMut(Key) -> Fut,
    Fut: std::future::Future<Output = Result<crate::Invalidated, layercake_backends::BackendError>>,
{
    let mut done = crate::Invalidated::of(Some(0));
    let mut failed = None;
    for key in keys {
        match one(key).await {
            Ok(this) => done = done.and(this),
            Err(error) => failed = failed.or(Some(error)),
        }
    }
    failed.map_or(Ok(done), Err)
}

/// The list of variants, when that is what a lookup found.
fn variants_list(found: &Found<CachedResponse>) -> Option<Arc<Entry<CachedResponse>>> {
    let entry = found.entry()?;
    matches!(entry.value().vary(), Some(Vary::Variants { .. })).then(|| Arc::clone(entry))
}

/// Where a response is stored; see [`Shared::placement`].
struct Placement {
    key: Key,
    vary: Option<Arc<Vary>>,
    list: Option<(Key, Arc<Entry<CachedResponse>>)>,
}
