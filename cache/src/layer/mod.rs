//! The tower layer that caches HTTP responses.
//!
//! Put [`CacheLayer`] in front of any tower service that answers `http::Request`s (an axum
//! `Router`, a hyper client, a `service_fn`): responses to `GET` (and `HEAD`, answered from the
//! stored `GET`) are stored in a [`Backend`] and served from it while fresh.
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use layercake::prelude::*;
//!
//! # #[tokio::main] async fn main() {
//! let cache = CacheLayer::builder(Moka::default())
//!     .ttl(Duration::from_secs(60))
//!     .build()
//!     .expect("valid cache configuration");
//!
//! let app = Router::new()
//!     .route("/", get(|| async { "expensive" }))
//!     .layer(cache);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! # One request through the layer
//!
//! 1. **Request predicate.** Only the configured methods (GET and HEAD by default) use the
//!    cache. Anything else goes straight to the inner service: no key, no lookup, no
//!    allocation.
//! 2. **Key.** The namespace, the method (HEAD counts as GET), the authority (`Host`) and what
//!    the [`KeyExtractor`] adds (path and query by default). When the URL's responses carry
//!    `Vary`, the key of the request's variant follows from the headers `Vary` names.
//! 3. **Lookup.** A fresh entry is served (a client's matching `If-None-Match` or
//!    `If-Modified-Since` gets `304`, a single `Range` gets `206`); a stale one inside its stale
//!    window follows the [`StalePolicy`](crate::StalePolicy), unless the response said
//!    `must-revalidate` (or `no-cache`) or the request's own directives (`max-age`,
//!    `min-fresh`, `max-stale`, `no-cache`, `only-if-cached`) say otherwise. A stale entry with
//!    a validator is revalidated with a conditional request; a `304` refreshes it without its
//!    body. On a miss, one request per key goes upstream (single-flight); the others wait and
//!    are served its response (`collapsed`) as soon as its body is complete, whatever the
//!    leader's client does. If the leader's call panics or is cancelled, a waiting request
//!    takes over; if it fails, the waiting requests go upstream at once. Nobody waits longer
//!    than the [lock timeout](CacheLayerBuilder::lock_timeout) in all.
//! 4. **Response predicate.** A response is stored when its status is allowed (errors only with
//!    a [negative ttl](CacheLayerBuilder::negative_ttl)), it has no `Set-Cookie`, no
//!    `Cache-Control: no-store` (nor had its request), no `private` in shared
//!    [mode](CacheLayerBuilder::mode), no `Vary: *`, is not a response to `Authorization` a
//!    shared cache may not keep (RFC 9111 §3.5) nor to a `Cookie` (the same rule, unless it
//!    varies on `Cookie`; see [`allow_cookies`](CacheLayerBuilder::allow_cookies)), and its
//!    body fits the size limits. Its
//!    freshness is the origin's (`s-maxage`, `max-age`, `Expires`, or a tenth of the time since
//!    `Last-Modified`), minus the age it already has (RFC 9111 §4.2.3), else the layer's ttl.
//!    Its body streams to the client as it arrives and is recorded on the way; a body that
//!    outgrows [`max_body_size`](CacheLayerBuilder::max_body_size) is simply streamed on,
//!    complete, and not stored.
//!
//! Every response carries a `Cache-Status` header (RFC 9211) saying what the cache did:
//!
//! | `Cache-Status` | meaning |
//! |---|---|
//! | `layercake; hit; ttl=42; detail=moka` | served from the cache (its `moka` tier), fresh for 42 more seconds |
//! | `layercake; hit; ttl=42; detail=redis` | served from the second tier of a `Compose<Moka, Redis>` |
//! | `layercake; hit; ttl=-3; detail=moka` | served stale, 3 seconds past its ttl |
//! | `layercake; hit; ttl=-3; fwd=stale; detail=moka` | served stale at once, refreshed in the background |
//! | `layercake; fwd=stale; fwd-status=200; stored` | stale, so fetched again and stored |
//! | `layercake; fwd=stale; fwd-status=304; stored` | stale, revalidated: the origin said it had not changed |
//! | `layercake; hit; ttl=-70; fwd=stale; fwd-status=503; detail=stale-if-error` | upstream failed; the stale entry served instead |
//! | `layercake; fwd=uri-miss; fwd-status=200; stored` | fetched from upstream and stored |
//! | `layercake; fwd=vary-miss; fwd-status=200; stored` | the URL is stored, not this request's variant |
//! | `layercake; fwd=request; fwd-status=200; stored` | the request's `no-cache`/`max-age`/`min-fresh` refused a fresh response |
//! | `layercake; fwd=miss; fwd-status=200; detail=authorization` | a response is stored, but not one a request with credentials may have |
//! | `layercake; fwd=uri-miss; fwd-status=200; collapsed` | waited for another request's upstream call |
//! | `layercake; fwd=uri-miss; fwd-status=200; detail=set-cookie` | fetched, not stored (the detail says why) |
//! | `layercake; fwd=method; fwd-status=201` | method not cached: passed through |
//! | `layercake; fwd=bypass; fwd-status=200; detail=key` | the key extractor declined the request |
//! | `layercake; detail=only-if-cached` | `504`: the request said `only-if-cached` and nothing fits |
//!
//! Responses from the cache also carry `Age` (RFC 9111 §4.2.3): the age the response had when
//! it arrived plus the time it has been stored.
//!
//! A non-error response to an unsafe request (POST, PUT, DELETE, PATCH) invalidates the stored
//! responses for its target URI, and for the URIs in its `Location` and `Content-Location` when
//! they are on the same origin (RFC 9111 §4.4); counted in
//! [`CacheStats::invalidations`](crate::CacheStats::invalidations).
//!
//! # Staleness
//!
//! A stale window, [`refresh_before`](CacheLayerBuilder::refresh_before),
//! [`auto_refresh`](CacheLayerBuilder::auto_refresh) (started with
//! [`start_auto_refresh`](CacheLayer::start_auto_refresh)),
//! [`stale_if_error`](CacheLayerBuilder::stale_if_error) and the dogpile width
//! ([`concurrency`](CacheLayerBuilder::concurrency)) keep latency flat when entries expire.
//! Background refreshes send the request that found the entry stale (a `HEAD` as the `GET` it
//! stands for) to the inner service; they run on the layer's
//! [`OffloadManager`](crate::offload::OffloadManager).
//!
//! # Performance
//!
//! A hit in a tier that answers without waiting (memory: [`Moka`](crate::Moka)) is served
//! synchronously inside `call`: the response future is a ready value, the body a shared
//! `Bytes`; the only allocations are the response's own (its header map and the `Age` and
//! `Cache-Status` values) and the key. A pass-through wraps the inner future without boxing.
//! Only a miss, or a lookup in a tier that must be awaited, runs as one boxed future: the
//! futures of [`Backend`] methods cannot be named on stable Rust, and that allocation is small
//! next to an upstream call.

mod body;
pub(crate) mod cache_control;
mod events;
mod freshness;
mod future;
pub mod key;
pub(crate) mod range;
pub(crate) mod response;
pub(crate) mod service;
mod status;
mod tags;
pub(crate) mod validation;
mod vary;
#[cfg(feature = "codec")]
mod wire;
#[cfg(feature = "rkyv")]
mod zero_copy;

use std::{fmt, sync::Arc, time::Duration};

use http::{HeaderName, Method, StatusCode};
use layercake_backends::{Backend, Selection};
use tower_layer::Layer;

pub(crate) use self::response::StatusSet;
#[cfg(feature = "axum")]
pub(crate) use self::response::hit_headers;
#[cfg(feature = "axum")]
pub(crate) use self::status::set_cache_status;
pub use self::{
    body::CacheBody,
    events::EventLog,
    future::ResponseFuture,
    key::{Headers, KeyExtractor, KeyParts, Path, PathAndQuery},
    response::ClientDirectives,
    response::{
        CacheControl, CacheMode, CachedResponse, StoredHeaders, StoredHeadersIter,
        remove_hop_by_hop,
    },
    service::CacheService,
    tags::TagRequest,
};
use self::{
    response::Rules,
    service::Shared,
    status::{CacheStatus, is_token},
};
use crate::{
    BuildError, CacheStats,
    engine::{Engine, Policy, Purge, policy_setters},
    predicate::{Always, RequestPredicate, ResponsePredicate, response::DefaultStore},
    refresh::{HotKeys, spawn_checker},
};

/// What every HTTP key starts with after the namespace: the kind of entry and the layout
/// version of keys.
const KEY_SCHEMA: &str = "http/3";

/// A tower layer that caches HTTP responses; see the [module docs](self).
///
/// Made with [`CacheLayer::builder`]. Cheap to clone; every service it makes shares one engine:
/// the same entries, in-flight requests and [counters](CacheLayer::stats).
///
/// ```
/// use layercake::{CacheLayer, Moka};
/// let layer: CacheLayer<Moka> = CacheLayer::builder(Moka::default()).build().unwrap();
/// let app: axum::Router = axum::Router::new().layer(layer.clone());
/// # drop(app);
/// ```
pub struct CacheLayer<B, K = PathAndQuery, Q = Always, R = DefaultStore> {
    pub(crate) shared: Arc<Shared<B, K, Q, R>>,
}

impl<B> CacheLayer<B, PathAndQuery>
where
    B: Backend<CachedResponse>,
{
    /// A builder for a layer that stores in `backend`.
    ///
    /// Defaults: ttl 60 s, no stale window, no negative caching, methods GET and HEAD, statuses
    /// 200, 203, 300, 301, 308 (and 404, 410 once a negative ttl is set), key = authority, path
    /// and query,
    /// bodies up to 4 MiB, every end-to-end header stored, requests with `Authorization` and
    /// responses with `Set-Cookie` or `Cache-Control: private` not stored, cache name and key
    /// namespace `layercake`, lock timeout 5 s ([`DEFAULT_LOCK_TIMEOUT`](crate::DEFAULT_LOCK_TIMEOUT)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::{Method, StatusCode, header::CONTENT_TYPE};
    /// use layercake::{CacheLayer, Moka, layer::Path};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .ttl(Duration::from_secs(30))
    ///     .stale(Duration::from_secs(300))
    ///     .negative_ttl(Duration::from_secs(5))
    ///     .key(Path)
    ///     .methods([Method::GET, Method::HEAD])
    ///     .statuses([StatusCode::OK, StatusCode::NOT_FOUND])
    ///     .max_body_size(256 * 1024)
    ///     .header_allowlist([CONTENT_TYPE])
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn builder(backend: B) -> CacheLayerBuilder<B, PathAndQuery> {
        CacheLayerBuilder {
            backend,
            key: PathAndQuery,
            cache_if: Always,
            store_if: DefaultStore,
            policy: Policy::default(),
            rules: Rules::default(),
            name: "layercake".to_owned(),
            namespace: "layercake".to_owned(),
            authority: true,
            updates: Default::default(),
            events: None,
        }
    }
}

impl<B, K, Q, R> CacheLayer<B, K, Q, R> {
    /// The cache's counters.
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    /// assert_eq!(layer.stats().hits, 0);
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.shared.engine.stats.snapshot()
    }

    /// Hands the layer's counters and its tiers' health to the `metrics` recorder (feature
    /// `metrics`; see [`metrics`](crate::metrics) for the names): await it where the exporter
    /// renders.
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    /// layer.publish_metrics().await;
    /// # }
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub async fn publish_metrics(&self)
    where
        B: Backend<CachedResponse>,
    {
        let health = self.health().await;
        let name = &self.shared.engine.name;
        crate::metrics::publish(name, &self.stats(), &self.tier_hits(), &health);
    }

    /// How many requests each storage tier answered (fresh or stale), the memory tier first;
    /// the tier is in each hit's `Cache-Status` too (`hit; ttl=42; detail=moka`).
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    /// assert_eq!(layer.tier_hits()[0].tier, "moka");
    /// ```
    pub fn tier_hits(&self) -> Vec<crate::TierHits> {
        let engine = &self.shared.engine;
        engine.stats.tier_hits(engine.peek_tier)
    }

    /// The backend the layer stores in.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    /// let layer = CacheLayer::builder(Moka::with_max_bytes(1 << 20)).build().unwrap();
    /// assert_eq!(layer.backend().max_bytes(), 1 << 20);
    /// ```
    pub fn backend(&self) -> &B {
        &self.shared.engine.backend
    }

    /// How the layer's storage tiers are doing (see [`Backend::health`]): for a readiness
    /// probe, say.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    /// assert!(layer.health().await.up);
    /// # }
    /// ```
    pub async fn health(&self) -> crate::Health
    where
        B: Backend<CachedResponse>,
    {
        crate::Health::of(self.shared.engine.backend.health().await)
    }

    /// The manager of the layer's background refreshes (its counters, its shutdown).
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    /// let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    /// assert_eq!(layer.offload().stats().completed, 0);
    /// ```
    pub fn offload(&self) -> &crate::offload::OffloadManager {
        &self.shared.engine.offload
    }
}

impl<B, K, Q, R> CacheLayer<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    /// Removes every response stored for `url` from every tier of the backend: the one for each
    /// cached method (`HEAD` is answered from `GET`'s), and every `Vary` variant (they hang off
    /// the URL's entry and become unreachable with it). Counted in [`stats`](Self::stats); see
    /// [`invalidate`](crate::invalidate).
    ///
    /// Keys include the request's host unless the layer was built with
    /// [`authority_in_key(false)`](CacheLayerBuilder::authority_in_key), so the URL is then a
    /// full one, `http://example.com/users/42`; a path alone is an error that says so. Keys
    /// are made from the URL alone: a [key extractor](KeyExtractor) that reads request headers
    /// cannot be matched this way.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use layercake::{CacheLayer, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let app: Router = Router::new()
    ///     .route("/users/{id}", get(|| async { "Ada" }))
    ///     .layer(cache.clone());
    /// // … after `PUT /users/42` changed the user, from the code that changed it:
    /// let done = cache.invalidate_url("http://example.com/users/42").await.unwrap();
    /// assert_eq!(done.entries, Some(0), "nothing was stored yet");
    /// # drop(app);
    /// # }
    /// ```
    pub async fn invalidate_url(
        &self,
        url: &str,
    ) -> Result<crate::Invalidated, crate::InvalidateError> {
        let keys = self.keys_of_url(url)?;
        Ok(self.shared.invalidate_keys(keys).await?)
    }

    /// Marks the responses stored for `url` stale in every tier instead of removing them (a
    /// soft purge, as Fastly's): the next request revalidates them with the origin (a `304`
    /// keeps the body), and while the origin fails they are still served inside their
    /// stale-if-error window. A URL whose responses vary is removed instead (its variants
    /// cannot be found one by one). The URL is given as to
    /// [`invalidate_url`](Self::invalidate_url).
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let done = cache.soft_invalidate_url("http://example.com/news").await.unwrap();
    /// assert_eq!(done.entries, Some(0));
    /// # }
    /// ```
    pub async fn soft_invalidate_url(
        &self,
        url: &str,
    ) -> Result<crate::Invalidated, crate::InvalidateError> {
        let keys = self.keys_of_url(url)?;
        Ok(self.shared.soft_invalidate_keys(keys).await?)
    }

    /// `pattern` over the key after the method and host, as a glob over full readable keys:
    /// namespace and schema, the method, the host (when keyed on), then the extractor's.
    fn url_glob(&self, pattern: &str) -> String {
        let host = if self.shared.authority { "*:" } else { "" };
        format!("{}:*:{host}{pattern}", self.prefix_glob())
    }

    /// The glob that matches this layer's namespace and schema, literally.
    fn prefix_glob(&self) -> String {
        layercake_backends::key::glob_escape(&self.shared.prefix.readable())
    }

    /// The keys of the responses stored for `url` (see [`invalidate_url`](Self::invalidate_url)).
    pub(crate) fn keys_of_url(
        &self,
        url: &str,
    ) -> Result<Vec<layercake_backends::Key>, crate::InvalidateError> {
        let target: http::Uri = url
            .parse()
            .map_err(|e| crate::InvalidateError::Url(format!("{url:?}: {e}")))?;
        if self.shared.authority && target.authority().is_none() {
            return Err(crate::InvalidateError::Url(format!(
                "{url:?} names no host, and the layer's keys include the request's host: give \
                 the full URL (`http://example.com/users/42`), or build the layer with \
                 `authority_in_key(false)`"
            )));
        }
        Ok(self.shared.keys_of_url(target, &http::HeaderMap::new()))
    }

    /// Removes every stored response whose URL matches `pattern`, a glob (`*`, `?`, `[a-z]`,
    /// `\` as in Redis's `SCAN … MATCH`) over the key after the method and the host: with the
    /// default key, the path and query (`/api/products/*`), whatever the method and host. From
    /// every tier: memory tiers scan their entries, Redis scans its keys. A tier that cannot
    /// enumerate its keys is an error of kind
    /// [`Unsupported`](crate::BackendErrorKind::Unsupported).
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let done = cache.invalidate_pattern("/items/1*").await.unwrap();
    /// assert_eq!(done.entries, Some(0));
    /// # }
    /// ```
    pub async fn invalidate_pattern(
        &self,
        pattern: &str,
    ) -> Result<crate::Invalidated, crate::BackendError> {
        self.purge_urls(pattern, Purge::Remove).await
    }

    /// Removes or marks stale the stored responses whose URL matches `pattern`.
    async fn purge_urls(
        &self,
        pattern: &str,
        purge: Purge,
    ) -> Result<crate::Invalidated, crate::BackendError> {
        let full = self.url_glob(pattern);
        self.shared
            .engine
            .purge(Selection::Pattern(&full), purge)
            .await
    }

    /// Marks every stored response whose URL matches `pattern` stale in every tier instead of
    /// removing it (a soft purge; the pattern as for
    /// [`invalidate_pattern`](Self::invalidate_pattern), the effect as for
    /// [`soft_invalidate_url`](Self::soft_invalidate_url)).
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let done = cache.soft_invalidate_pattern("/news/*").await.unwrap();
    /// assert_eq!(done.entries, Some(0));
    /// # }
    /// ```
    pub async fn soft_invalidate_pattern(
        &self,
        pattern: &str,
    ) -> Result<crate::Invalidated, crate::BackendError> {
        self.purge_urls(pattern, Purge::MarkStale).await
    }

    /// Removes every stored response carrying any of `tags` (from the layer's
    /// [`tags`](CacheLayerBuilder::tags), its [`tags_with`](CacheLayerBuilder::tags_with)
    /// function, or the origin's `Surrogate-Key`/`Cache-Tag` headers) from every tier. Each
    /// store keeps an index per tag, so this visits the tagged entries only, never the whole
    /// store; a response being fetched when this runs is not stored. Tags name data, not a
    /// cache: entries of other caches on the same store with these tags go too.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use layercake::{CacheLayer, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// let app: Router = Router::new()
    ///     .route("/items/1", get(|| async { ([("surrogate-key", "item:1 items")], "one") }))
    ///     .layer(cache.clone());
    /// // … once item 1 changed:
    /// let done = cache.invalidate_tags(["item:1"]).await.unwrap();
    /// assert_eq!(done.entries, Some(0), "nothing was stored yet");
    /// # drop(app);
    /// # }
    /// ```
    pub async fn invalidate_tags<T: Into<std::sync::Arc<str>>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<crate::Invalidated, crate::BackendError> {
        self.shared.engine.purge_tags(tags, Purge::Remove).await
    }

    /// [`invalidate_tags`](Self::invalidate_tags) for one tag.
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// assert_eq!(cache.invalidate_tag("items").await.unwrap().entries, Some(0));
    /// # }
    /// ```
    pub async fn invalidate_tag(
        &self,
        tag: &str,
    ) -> Result<crate::Invalidated, crate::BackendError> {
        self.invalidate_tags([tag]).await
    }

    /// Marks every stored response carrying any of `tags` stale in every tier instead of
    /// removing it (a soft purge, as for [`soft_invalidate_url`](Self::soft_invalidate_url)).
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// assert_eq!(cache.soft_invalidate_tags(["items"]).await.unwrap().entries, Some(0));
    /// # }
    /// ```
    pub async fn soft_invalidate_tags<T: Into<std::sync::Arc<str>>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<crate::Invalidated, crate::BackendError> {
        self.shared.engine.purge_tags(tags, Purge::MarkStale).await
    }

    /// Removes every response this layer stored (its namespace) from every tier that can
    /// enumerate its keys; entries of other caches sharing the store stay.
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = CacheLayer::builder(Moka::default()).build().unwrap();
    /// assert_eq!(cache.clear().await.unwrap().entries, Some(0));
    /// # }
    /// ```
    pub async fn clear(&self) -> Result<crate::Invalidated, crate::BackendError> {
        let full = format!("{}:*", self.prefix_glob());
        self.shared
            .engine
            .purge(Selection::Pattern(&full), Purge::Remove)
            .await
    }

    /// Starts refreshing hot keys in the background (see [`refresh`](crate::refresh)), by
    /// sending their requests again to `service`: the service the layer wraps, without the
    /// layer. Returns `false` when the layer has no [`auto_refresh`](CacheLayerBuilder::auto_refresh)
    /// configuration or it was started already.
    ///
    /// The layer keeps the head of a hot key's request (method, URI, version, headers); a
    /// refresh sends it with an empty (`Default`) body of type `ReqBody`. Services that take
    /// any body type, like axum's `Router`, need it named: `start_auto_refresh::<Body>(…)`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use axum::{Router, routing::get};
    /// use layercake::{CacheLayer, Moka, refresh::AutoRefresh};
    ///
    /// # #[tokio::main] async fn main() {
    /// let routes = Router::new().route("/", get(|| async { "hot" }));
    /// let cache = CacheLayer::builder(Moka::default())
    ///     .ttl(Duration::from_secs(60))
    ///     .auto_refresh(AutoRefresh::default())
    ///     .build()
    ///     .unwrap();
    /// cache.start_auto_refresh::<axum::body::Body>(routes.clone());
    /// let app = routes.layer(cache);
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
    /// # axum::serve(listener, app).await.unwrap();
    /// # }
    /// ```
    pub fn start_auto_refresh<ReqBody>(
        &self,
        service: impl tower_service::Service<
            http::Request<ReqBody>,
            Response = http::Response<impl http_body::Body + Send + 'static>,
            Future: Send,
        > + Clone
        + Send
        + 'static,
    ) -> bool
    where
        ReqBody: Default + Send + 'static,
    {
        let Some(hot) = &self.shared.hot else {
            return false;
        };
        if !hot.claim_checker() {
            return false;
        }
        let shared = Arc::clone(&self.shared);
        spawn_checker(hot, move |hot| {
            let (shared, service) = (Arc::clone(&shared), service.clone());
            async move {
                let interval = hot.config.check_interval;
                for (key, head) in hot.hot_keys() {
                    if !shared.due_within(&key, &head, interval).await {
                        continue;
                    }
                    let request = head.to_request(ReqBody::default());
                    let task = (Arc::clone(&shared), service.clone(), key.clone());
                    shared.engine.refresh_on(&hot.offload, key, move |leader| {
                        service::refresh(
                            task.0,
                            task.1,
                            request,
                            service::Route::plain(task.2),
                            leader,
                            None,
                        )
                    });
                }
            }
        });
        true
    }
}

impl<B, K, Q, R> Clone for CacheLayer<B, K, Q, R> {
    fn clone(&self) -> Self {
        CacheLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<B, K, Q, R> fmt::Debug for CacheLayer<B, K, Q, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("policy", &self.shared.engine.policy)
            .field("rules", &self.shared.rules)
            .finish_non_exhaustive()
    }
}

impl<S, B, K, Q, R> Layer<S> for CacheLayer<B, K, Q, R> {
    type Service = CacheService<S, B, K, Q, R>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService::new(inner, Arc::clone(&self.shared))
    }
}

/// Configures a [`CacheLayer`]; see [`CacheLayer::builder`].
///
/// ```
/// use std::time::Duration;
/// use layercake::{CacheLayer, Moka};
/// let layer = CacheLayer::builder(Moka::default()).ttl(Duration::from_secs(30)).build().unwrap();
/// # drop(layer);
/// ```
#[must_use]
pub struct CacheLayerBuilder<B, K = PathAndQuery, Q = Always, R = DefaultStore> {
    backend: B,
    key: K,
    cache_if: Q,
    store_if: R,
    policy: Policy,
    rules: Rules,
    name: String,
    namespace: String,
    authority: bool,
    updates: crate::engine::Updates<CachedResponse>,
    events: Option<EventLog>,
}

impl<B, K, Q, R> CacheLayerBuilder<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: RequestPredicate,
    R: ResponsePredicate,
{
    policy_setters!("request");

    /// The ttl of error responses (statuses ≥ 400) that carry no freshness information of
    /// their own: the heuristically cacheable 404, 405, 410, 414 and 501, or those in
    /// [`statuses`](Self::statuses). Without it, such responses are not stored; an error
    /// response with its own `max-age` or `Expires` is stored by it either way.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .negative_ttl(std::time::Duration::from_secs(5))
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.rules.negative_ttl = Some(ttl);
        self
    }

    /// How the cache key is made from a request; see [the key extractors](self::key). Default:
    /// [`PathAndQuery`].
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka, layer::{Path, key::Query}};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .key((Path, Query::only(["page"])))
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn key<K2: KeyExtractor>(self, key: K2) -> CacheLayerBuilder<B, K2, Q, R> {
        self.reshape(|_, cache_if, store_if| (key, cache_if, store_if))
    }

    /// The same settings with another key extractor or other predicates.
    fn reshape<K2, Q2, R2>(
        self,
        parts: impl FnOnce(K, Q, R) -> (K2, Q2, R2),
    ) -> CacheLayerBuilder<B, K2, Q2, R2> {
        let (key, cache_if, store_if) = parts(self.key, self.cache_if, self.store_if);
        CacheLayerBuilder {
            backend: self.backend,
            key,
            cache_if,
            store_if,
            policy: self.policy,
            rules: self.rules,
            name: self.name,
            namespace: self.namespace,
            authority: self.authority,
            updates: self.updates,
            events: self.events,
        }
    }

    /// Which requests use the cache: a [`RequestPredicate`], checked after the
    /// [method](Self::methods). A request it refuses goes to the inner service untouched
    /// (`Cache-Status: …; fwd=bypass; detail=predicate`), invalidating stored responses as
    /// any unsafe request does (RFC 9111 §4.4). Default: [`Always`].
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka, predicate::{request, RequestPredicate}};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .cache_if(request::path("/health").not().and(request::path_prefix("/admin").not()))
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn cache_if<Q2: RequestPredicate>(self, predicate: Q2) -> CacheLayerBuilder<B, K, Q2, R> {
        self.reshape(|key, _, store_if| (key, predicate, store_if))
    }

    /// Which responses may be stored: a [`ResponsePredicate`], checked besides the layer's
    /// HTTP rules (status, `Cache-Control`, credentials, size). A response it refuses is passed
    /// on and not stored (`detail=predicate`). Default: [`DefaultStore`], every response but
    /// audio, video, PDFs and archives; it is replaced, not combined (keep it with
    /// `DefaultStore.and(…)`).
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    /// use layercake::predicate::{response::{self, StatusClass}, ResponsePredicate};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .store_if(response::status_class(StatusClass::Success)
    ///         .and(response::content_type("application/json")))
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn store_if<R2: ResponsePredicate>(self, predicate: R2) -> CacheLayerBuilder<B, K, Q, R2> {
        self.reshape(|key, cache_if, _| (key, cache_if, predicate))
    }

    /// The most bytes of a request body the layer reads for predicates and key extractors
    /// that need it ([reading the body](crate::predicate#reading-the-body)); a longer body is
    /// handed on whole and its request is not cached. Default: 64 KiB.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .max_request_body_size(16 * 1024)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn max_request_body_size(mut self, bytes: usize) -> Self {
        self.rules.max_request_body_size = bytes;
        self
    }

    /// Whether the client's own cache directives (`Cache-Control: no-cache`, `max-age=0`,
    /// `max-stale`, `min-fresh`, `only-if-cached`, `no-store`, `Pragma: no-cache`) are obeyed
    /// or ignored. Default: [`ClientDirectives::Obey`], as RFC 9111 asks of a cache that
    /// clients choose to use (a shared proxy, a client's own cache). A cache in front of its
    /// own application usually ignores them, as nginx and Varnish do by default: otherwise any
    /// client's reload (`no-cache`) reaches the application.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka, layer::ClientDirectives};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .client_directives(ClientDirectives::Ignore)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn client_directives(mut self, directives: ClientDirectives) -> Self {
        self.rules.obey_client = directives == ClientDirectives::Obey;
        self
    }

    /// Whether keys include the request's authority: the host (and port) of an absolute-form
    /// target, else its `Host` header, lowercased. RFC 9111 §2 makes the target URI, authority
    /// included, the primary cache key, so a layer in front of several virtual hosts never
    /// answers one host's request with another's response. Default: `true`. Set `false` only
    /// for a service that answers a single host, so that `Host: example.com` and
    /// `Host: www.example.com` share their entries.
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// let single_host = CacheLayer::builder(Moka::default())
    ///     .authority_in_key(false)
    ///     .build()
    ///     .unwrap();
    /// # drop(single_host);
    /// ```
    pub fn authority_in_key(mut self, include: bool) -> Self {
        self.authority = include;
        self
    }

    /// The methods whose responses are cached. Default: GET and HEAD. The method is always
    /// part of the key, so a stored GET is never served for another method.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .methods([http::Method::GET, http::Method::HEAD, http::Method::OPTIONS])
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.rules.methods = methods.into_iter().collect();
        self
    }

    /// The only statuses whose responses may be stored. Without it, any final status is stored
    /// by its freshness (RFC 9111 §3): a response whose origin gave it a lifetime (`max-age`,
    /// `s-maxage`, `Expires`, or `public` and `Last-Modified`) whatever its status, and one
    /// that gives none with the layer's ttl only for the heuristically cacheable statuses (RFC
    /// 9110 §15.1; error ones with a [negative ttl](Self::negative_ttl)). With it, the layer's
    /// ttl applies to every listed status (error ones with a negative ttl), and nothing else is
    /// stored. `206` and `304` are never stored as responses.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .statuses([http::StatusCode::OK, http::StatusCode::NOT_FOUND])
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.rules.statuses = Some(StatusSet::new(statuses));
        self
    }

    /// Bodies smaller than this are not stored. Default: 0.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .min_body_size(1)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn min_body_size(mut self, bytes: usize) -> Self {
        self.rules.min_body_size = bytes;
        self
    }

    /// Bodies larger than this are not stored; they stream through complete. Default: 4 MiB.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .max_body_size(256 * 1024)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.rules.max_body_size = bytes;
        self
    }

    /// The upstream statuses that count as a failure for
    /// [`stale_if_error`](Self::stale_if_error). Default: 500, 502, 503, 504.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .stale_if_error(std::time::Duration::from_secs(300))
    ///     .stale_if_error_statuses([http::StatusCode::BAD_GATEWAY, http::StatusCode::SERVICE_UNAVAILABLE])
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn stale_if_error_statuses(
        mut self,
        statuses: impl IntoIterator<Item = StatusCode>,
    ) -> Self {
        self.rules.error_statuses = StatusSet::new(statuses);
        self
    }

    /// Whose freshness lifetime a stored response gets: the origin's `s-maxage`/`max-age`
    /// ([`CacheControl::Respect`], the default), the origin's only, as a reverse proxy must
    /// ([`CacheControl::OriginOnly`]), or the layer's ttl ([`CacheControl::Override`]).
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka, layer::CacheControl};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .cache_control(CacheControl::OriginOnly)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn cache_control(mut self, policy: CacheControl) -> Self {
        self.rules.cache_control = policy;
        self
    }

    /// Stores only these response headers (besides `Content-Length`, and `Vary`, which selects
    /// variants). Default: every header except hop-by-hop ones.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .header_allowlist([http::header::CONTENT_TYPE, http::header::ETAG])
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn header_allowlist(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.rules.header_allowlist = Some(names.into_iter().collect());
        self
    }

    /// Lets a shared cache store and share responses to requests with `Authorization` even
    /// when the origin did not mark them `public`, `s-maxage` or `must-revalidate`. Only for
    /// caches whose responses do not depend on who asks, or whose key includes the
    /// credentials. Default: `false` (RFC 9111 §3.5).
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .allow_authorization(true)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn allow_authorization(mut self, allow: bool) -> Self {
        self.rules.allow_authorization = allow;
        self
    }

    /// Lets a shared cache store and share responses to requests with `Cookie` like any other.
    ///
    /// By default (`false`), a shared cache treats a request's `Cookie` as RFC 9111 §3.5 treats
    /// `Authorization`: its response is stored, and such a request is served from the cache,
    /// only when the response is marked `public`, `s-maxage` or `must-revalidate`, or varies on
    /// `Cookie` (`Vary: Cookie`). That is what the trusted server caches do (Varnish passes such
    /// requests), because an application that forgets `Vary: Cookie` would otherwise serve one
    /// user's page to another. Allow it for sites whose pages do not depend on cookies; to
    /// disregard only some cookies (analytics), see [`ignore_cookies`](Self::ignore_cookies).
    /// A private cache ignores this setting.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    /// // A site whose pages never depend on cookies.
    /// let layer = CacheLayer::builder(Moka::default()).allow_cookies(true).build().unwrap();
    /// # drop(layer);
    /// ```
    pub fn allow_cookies(mut self, allow: bool) -> Self {
        self.rules.allow_cookies = allow;
        self
    }

    /// Cookies that do not make a request personal: a request whose `Cookie` names only these
    /// is cached as if it had none (see [`allow_cookies`](Self::allow_cookies)). A name ending
    /// in `*` is a prefix (`_ga*` covers `_ga` and `_ga_XYZ`). Default: none.
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .ignore_cookies(["_ga*", "_gid", "consent"])
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn ignore_cookies<T: Into<Box<str>>>(mut self, names: impl IntoIterator<Item = T>) -> Self {
        self.rules.ignored_cookies = names.into_iter().map(Into::into).collect();
        self
    }

    /// Stores responses that carry `Set-Cookie` (and replays the cookie to everyone served
    /// from the entry). Default: `false`.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .allow_set_cookie(true)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn allow_set_cookie(mut self, allow: bool) -> Self {
        self.rules.allow_set_cookie = allow;
        self
    }

    /// Which of RFC 9111's caches the layer is: [`CacheMode::Shared`] (the default: a proxy,
    /// or a layer in front of a server) or [`CacheMode::Private`] (one user's, e.g. in front
    /// of an HTTP client).
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka, layer::CacheMode};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .mode(CacheMode::Private)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn mode(mut self, mode: CacheMode) -> Self {
        self.rules.mode = mode;
        self
    }

    /// The targeted cache-control fields (RFC 9213) this cache obeys, most specific first: in
    /// shared mode, the first of them a response carries with a valid value (an RFC 8941
    /// Dictionary: `max-age=60, stale-if-error=300`) replaces its `Cache-Control` and
    /// `Expires` for this cache, for storage and freshness (`max-age`, `s-maxage`, `no-store`,
    /// `private`, `no-cache`, `must-revalidate`, RFC 5861's windows …); an invalid one is
    /// ignored. Ignored in private mode. Default: `CDN-Cache-Control`, the field for every
    /// shared cache in front of an origin. A field of your own goes first:
    ///
    /// ```
    /// use http::HeaderName;
    /// # use layercake::{CacheLayer, Moka};
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .targeted_cache_control([
    ///         HeaderName::from_static("layercake-cache-control"),
    ///         HeaderName::from_static("cdn-cache-control"),
    ///     ])
    ///     .last_targeted_hop(true)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn targeted_cache_control(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.rules.targeted = names.into_iter().collect();
        self
    }

    /// This cache is the last hop the targeted fields are meant for (nothing that obeys them
    /// stands between it and its clients): responses served from the cache do not carry them.
    /// Default: `false`, they are passed on as the origin sent them.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .last_targeted_hop(true)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn last_targeted_hop(mut self, last: bool) -> Self {
        self.rules.last_targeted_hop = last;
        self
    }

    /// Tags every stored response with `tags`, for
    /// [`invalidate_tags`](CacheLayer::invalidate_tags). Default: none (see
    /// [`tags_with`](Self::tags_with) and [`tag_headers`](Self::tag_headers) for tags that
    /// depend on the response).
    ///
    /// ```
    /// # use layercake::{CacheLayer, Moka};
    /// let layer = CacheLayer::builder(Moka::default()).tags(["api"]).build().unwrap();
    /// # drop(layer);
    /// ```
    pub fn tags<T: Into<std::sync::Arc<str>>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.rules.tagging.fixed = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Tags every stored response with what `tags` makes of its request and the response
    /// (head only), besides the [fixed tags](Self::tags) and the origin's
    /// [tag headers](Self::tag_headers). It runs once per stored response, never on a hit.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka, layer::TagRequest};
    ///
    /// // `/users/42/posts` is tagged `user:42`.
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .tags_with(|request: &TagRequest<'_>, _response: &http::response::Parts| {
    ///         let mut path = request.uri.path().split('/').skip(1);
    ///         match (path.next(), path.next()) {
    ///             (Some("users"), Some(id)) => vec![format!("user:{id}")],
    ///             _ => vec![],
    ///         }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn tags_with<F, I>(mut self, tags: F) -> Self
    where
        F: Fn(&TagRequest<'_>, &http::response::Parts) -> I + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Into<std::sync::Arc<str>>,
    {
        self.rules.tagging.from = Some(std::sync::Arc::new(move |request, response| {
            tags(request, response)
                .into_iter()
                .map(Into::into)
                .collect()
        }));
        self
    }

    /// The response headers the origin tags responses with, tags separated by spaces or
    /// commas. Default: `Surrogate-Key` and `Cache-Tag`, as CDNs read them; none turns
    /// header tags off. They are taken out of responses on the way to the client unless
    /// [kept](Self::keep_tag_headers).
    ///
    /// ```
    /// use http::HeaderName;
    /// # use layercake::{CacheLayer, Moka};
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .tag_headers([HeaderName::from_static("x-cache-tags")])
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn tag_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.rules.tagging.headers = names.into_iter().collect::<Vec<_>>().into();
        self
    }

    /// Passes the [tag headers](Self::tag_headers) on to the client (and keeps them in stored
    /// responses), for a CDN in front of this layer that reads them too. Default: `false`.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .keep_tag_headers(true)
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn keep_tag_headers(mut self, keep: bool) -> Self {
        self.rules.tagging.keep_headers = keep;
        self
    }

    /// In a [fleet](crate::fleet), announces each response this layer stores with the
    /// response itself when its encoding takes at most `max_bytes`: the other instances that
    /// hold it replace their memory copy instead of dropping it. For small, hot responses.
    /// Default: off.
    ///
    /// ```no_run
    /// use layercake::{CacheLayer, Moka, Redis, compose::Compose, fleet::Fleet};
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().url("redis://127.0.0.1:6379").build()?;
    /// let fleet = Fleet::builder().start(&redis)?;
    /// let layer = CacheLayer::builder(Compose::<Moka, Redis>::new(Moka::default(), redis))
    ///     .fleet(fleet)
    ///     .fleet_updates(4096)
    ///     .build()?;
    /// # drop(layer); Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn fleet_updates(mut self, max_bytes: usize) -> Self {
        self.updates = Some(crate::fleet::Updates::postcard(max_bytes));
        self
    }

    /// Logs what the cache does with each request (sampled) as structured `tracing` events;
    /// see [`EventLog`]. Default: off.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka, layer::EventLog};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .event_log(EventLog::new().sample(0.05))
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn event_log(mut self, log: EventLog) -> Self {
        self.events = Some(log);
        self
    }

    /// The cache's name in `Cache-Status`. Default: `layercake`.
    ///
    /// ```
    /// use layercake::{CacheLayer, Moka};
    ///
    /// let layer = CacheLayer::builder(Moka::default())
    ///     .name("edge")
    ///     .build()
    ///     .unwrap();
    /// # drop(layer);
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Builds the layer, or says what is wrong with the configuration.
    ///
    /// ```
    /// use layercake::{BuildError, CacheLayer, Moka};
    /// let broken = CacheLayer::builder(Moka::default()).min_body_size(10).max_body_size(5).build();
    /// assert!(matches!(broken, Err(BuildError::BodySizeRange { .. })));
    /// ```
    pub fn build(self) -> Result<CacheLayer<B, K, Q, R>, BuildError> {
        let prefix = self.policy.validate(&self.namespace, KEY_SCHEMA)?;
        let rules = self.rules;
        if rules.min_body_size > rules.max_body_size {
            return Err(BuildError::BodySizeRange {
                min: rules.min_body_size,
                max: rules.max_body_size,
            });
        }
        if rules.methods.is_empty() {
            return Err(BuildError::NoMethods);
        }
        if !is_token(&self.name) {
            return Err(BuildError::InvalidName(self.name));
        }
        let max_ttl = self.policy.ttl.max(rules.negative_ttl.unwrap_or_default());
        let hot = self
            .policy
            .auto_refresh
            .clone()
            .map(|c| Arc::new(HotKeys::new(c)));
        let engine = Engine::start(self.backend, self.policy, self.updates, &self.name)?;
        let status = CacheStatus::new(self.name, max_ttl.as_secs(), engine.peek_tier);
        let shared = Shared {
            events: self.events,
            cache_if: self.cache_if,
            store_if: self.store_if,
            engine,
            hot,
            rules,
            status,
            key: self.key,
            authority: self.authority,
            prefix,
        };
        Ok(CacheLayer {
            shared: Arc::new(shared),
        })
    }
}
