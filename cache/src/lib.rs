//! Caching for tower/axum services and async functions.
//!
//! layercake stops you paying twice for the same work:
//!
//! - [`CacheLayer`]: a tower middleware that caches HTTP responses (GET/HEAD by default), with
//!   a ttl, a stale window, negative caching, single-flight on misses, key extractors, size
//!   limits, header allowlists and an RFC 9211 `Cache-Status` on every response.
//! - [`Cache`]: the same engine for typed values, `cache.get_or_compute(key, || async { … })`.
//! - Storage in a [`Backend`]: [`Moka`] in memory is the embedded default (no server needed).
//!
//! ```
//! use std::time::Duration;
//! use layercake::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let prices: Cache<u64, Moka> = Cache::builder(Moka::default())
//!     .ttl(Duration::from_secs(30))
//!     .build()
//!     .unwrap();
//!
//! let price = prices.get_or_compute("BTC", || async { 97_000 }).await;
//! assert_eq!(price, 97_000);
//! assert_eq!(prices.stats().misses, 1);
//! # }
//! ```
//!
//! `layercake` re-exports its storage crate, so depending on `layercake` alone is enough.
//! A tokio runtime is required: the layer stores responses from a task once their body has
//! streamed to the client.

#![cfg_attr(docsrs, feature(doc_cfg))]
#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
#[cfg(feature = "chunked")]
#[cfg_attr(docsrs, doc(cfg(feature = "chunked")))]
pub mod chunked;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod client;
pub mod compose;
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub mod config;
mod engine;
mod error;
mod fence;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod fleet;
mod flight;
pub mod invalidate;
pub mod layer;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod offload;
pub mod predicate;
#[doc(hidden)]
pub mod __private {
    pub use crate::{
        private::*,
        typed::{Begun, Served},
    };
}
mod private;
pub mod refresh;
mod stats;
mod typed;
pub mod weigh;

/// The storage crate, `layercake-backends`.
pub use layercake_backends as backends;
#[cfg(feature = "moka")]
pub use layercake_backends::Moka;
#[cfg(feature = "codec")]
pub use layercake_backends::codec;
#[cfg(feature = "disk")]
pub use layercake_backends::disk::{self, Disk};
#[cfg(feature = "memcached")]
pub use layercake_backends::memcached::{self, Memcached};
#[cfg(feature = "redis")]
pub use layercake_backends::redis::{self, Redis};
pub use layercake_backends::{
    Backend, BackendError, BackendErrorKind, CacheKey, DynBackend, Entry, Forget, Freshness, Key,
    KeyBuilder, KeyRef, Selection, Tier, TierHealth, Timestamp,
};

/// Derives [`CacheKey`](trait@CacheKey): the type keys cache entries by its fields, in order (an
/// enum by its variant's name, then its fields).
///
/// ```
/// use layercake::{Cache, CacheKey, Moka};
///
/// #[derive(CacheKey)]
/// struct Report { team: String, year: u16 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let reports: Cache<String, Moka> = Cache::builder(Moka::default()).build().unwrap();
/// let key = Report { team: "core".into(), year: 2026 };
/// reports.insert(&key, "…".to_owned()).await;
/// assert_eq!(reports.key(&key), reports.key(("core", 2026u16)));
/// # }
/// ```
pub use layercake_macros::CacheKey;
/// Caches an async function: its result is computed once per distinct arguments and shared,
/// with single-flight, on the same engine as [`Cache::get_or_compute`].
///
/// ```
/// use layercake::cached_handler;
///
/// #[derive(Clone)]
/// struct User { id: u64, name: String }
///
/// #[cached_handler(ttl = 60, stale = "5m")]
/// async fn user(id: u64) -> Result<User, String> {
///     // … a database query …
///     Ok(User { id, name: "Ada".into() })
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ada = user(7).await.unwrap();          // computed
/// let again = user(7).await.unwrap();        // from the cache
/// assert_eq!(again.name, ada.name);
/// user::invalidate(7).await.unwrap();        // next call computes again
/// assert_eq!(user::cache().stats().hits, 1);
/// # }
/// ```
///
/// The key is the function's path, its `version` and the arguments (their `Hash`, byte for byte,
/// deterministic across processes). Arguments must be `Hash` (or skipped) and `Clone + Send +
/// Sync + 'static` (the computation may run in the background); the cached value must be
/// `Clone + Send + Sync + 'static`. A `Result<T, E>` caches `Ok(T)` only and an `Option<T>`
/// `Some(T)` only, unless told otherwise. Next to the function, a module of the same name gives
/// `cache()`, `key_for(args…)` and `invalidate(args…)`.
///
/// | attribute | meaning | example |
/// |---|---|---|
/// | `ttl` | how long a result is fresh (seconds, or `"500ms"`, `"90s"`, `"5m"`, `"2h"`, `"1d"`) | `ttl = 60` |
/// | `stale` | how long after its ttl it may be served stale (needs `ttl`) | `stale = "5m"` |
/// | `stale_policy` | `return`, `revalidate` or `offload` (serve stale, refresh in the background) | `stale_policy = offload` |
/// | `negative_ttl` | handlers only: cache 404, 405, 410, 414 and 501 responses for this long | `negative_ttl = 5` |
/// | `store_if` | handlers only: a [response predicate](crate::predicate::ResponsePredicate) a response must pass to be stored | `store_if = response::content_type("application/json")` |
/// | `tags` | stored with every entry, for invalidation by tag | `tags = ["users"]` |
/// | `key` | an expression over the arguments that replaces them in the key | `key = email.to_lowercase()` |
/// | `skip` | arguments left out of the key | `skip(request_id)` |
/// | `backend` | the store (any [`Backend`]: a shared `Moka`, a `Compose`, `Redis` …); default: a `Moka` of the function's own | `backend = STORE.clone()` |
/// | `concurrency` | how many callers of a missing key compute at once | `concurrency = 2` |
/// | `lock_timeout` | how long, in all, a caller waits for another's computation (default [`DEFAULT_LOCK_TIMEOUT`], 5 s) | `lock_timeout = "10s"` |
/// | `upstream_timeout` | with a stale entry to fall back on, a computation slower than this is abandoned for it | `upstream_timeout = "500ms"` |
/// | `namespace` | the first part of every key | `namespace = "billing"` |
/// | `version` | part of every key: change it and old entries are no longer read | `version = 2` |
/// | `cache_err` | also cache `Err` results | `cache_err` |
/// | `cache_none` | also cache `None` results | `cache_none = true` |
///
/// Concurrent calls for one key run the body once. When it fails, its `Err` is handed to every
/// call waiting on it if the error type is `Clone` (else they run the body themselves, at once);
/// an axum handler's error response is handed to them when it has no `Set-Cookie` and is not
/// `private`.
///
/// ```
/// use std::sync::LazyLock;
/// use layercake::{Moka, cached_handler};
///
/// static STORE: LazyLock<Moka> = LazyLock::new(|| Moka::with_max_bytes(64 << 20));
///
/// #[cached_handler(ttl = "10m", backend = STORE.clone(), namespace = "billing", version = 2,
///                  skip(trace_id), key = sku.to_uppercase(), concurrency = 2)]
/// async fn price(sku: String, trace_id: u64) -> Option<u64> {
///     let _ = trace_id;
///     Some(sku.len() as u64 * 100)
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(price("ab".into(), 1).await, Some(200));
/// assert_eq!(price::key_for("AB".into(), 9), price::key_for("ab".into(), 1));
/// # }
/// ```
///
/// On an axum handler (feature `axum`), the response is what is cached: a handler returning
/// `impl IntoResponse` (or a `Response`) is keyed by the values its extractors bind
/// (`Path(id): Path<u64>`, `Query(q): Query<Params>` …; `State` is left out), its status,
/// headers and body are stored, and error statuses, `Set-Cookie` and `Cache-Control:
/// private`/`no-store` responses are passed on without being stored. The handler's signature is
/// unchanged, so it goes into a `Router` as before, under `#[axum::debug_handler]` too.
///
#[cfg_attr(
    feature = "axum",
    doc = r#"
```no_run
use axum::{Router, extract::Path, response::IntoResponse, routing::get};
use layercake::cached_handler;

#[cached_handler(ttl = 30)]
async fn product(Path(id): Path<u64>) -> impl IntoResponse {
    format!("product {id}")
}

let app: Router = Router::new().route("/products/{id}", get(product));
# drop(app);
```
"#
)]
///
/// A handler's responses can be filtered further with a [response
/// predicate](crate::predicate::response), as the layer's
/// [`store_if`](crate::layer::CacheLayerBuilder::store_if) does; a response it refuses is
/// passed on (and handed to the requests waiting on it) without being stored. Request
/// predicates have no place here: the router already chose the handler, and the key is made
/// of its arguments; to cache some requests of a route and not others, put a
/// [`CacheLayer`] with [`cache_if`](crate::layer::CacheLayerBuilder::cache_if)
/// on the route instead.
///
#[cfg_attr(
    feature = "axum",
    doc = r#"
```no_run
use axum::{Json, extract::Path, response::IntoResponse};
use layercake::{cached_handler, predicate::{ResponsePredicate, response}};

// Only a report that is complete is kept.
#[cached_handler(ttl = 60, store_if = response::header("x-partial").not())]
async fn report(Path(id): Path<u64>) -> impl IntoResponse {
    Json(vec![id])
}
```
"#
)]
///
/// Misuse is a compile error at the offending token: an unknown or repeated attribute, `stale`
/// without `ttl`, a zero or negative `ttl`, a malformed duration, an unknown `stale_policy`,
/// `skip`/`key` naming an argument that does not exist, a function that is not `async`, an
/// argument that is not `Hash`, a result that is not `Clone`, a value a byte store cannot
/// encode.
pub use layercake_macros::cached_handler;

/// Checks, for code generated by `#[cached_handler]`, that an argument went into the key.
#[doc(hidden)]
pub fn cached_handler_key_part<T: ?Sized>(_pushed: impl key_part::CanBeKeyed<T>, _argument: &T) {}

/// What `#[cached_handler]` learns of an argument it puts in a key; its names appear in the
/// error for an argument that cannot be keyed, so they live outside the macro's private module.
#[doc(hidden)]
pub mod key_part {
    /// An argument went into the key.
    pub struct Pushed;

    /// An argument could not go into the key: its type is neither `Hash` nor `Serialize`.
    pub struct NotHashable<T: ?Sized>(pub(crate) std::marker::PhantomData<fn(&T)>);

    /// Whether an argument of type `T` went into the key.
    #[diagnostic::on_unimplemented(
        message = "`{T}` cannot be part of a cache key",
        label = "this argument is neither `Hash` nor `Serialize`",
        note = "derive `Hash` for `{T}`, or leave the argument out of the key with `skip(name)`, or give the key yourself with `key = …`"
    )]
    pub trait CanBeKeyed<T: ?Sized> {}

    impl<T: ?Sized> CanBeKeyed<T> for Pushed {}
}

pub use crate::{
    engine::{DEFAULT_LOCK_TIMEOUT, Preset, StalePolicy},
    error::BuildError,
    invalidate::{InvalidateError, Invalidated},
    layer::{CacheLayer, CacheLayerBuilder},
    stats::{CacheStats, Health, TierHits},
    typed::{Cache, CacheBuilder, InlineCache},
    weigh::GetSize,
};

/// The README's examples, compiled and run as doc tests (they use the Redis store, JSON and
/// regex predicates).
#[doc = include_str!("../README.md")]
#[cfg(all(
    doctest,
    feature = "redis",
    feature = "json",
    feature = "regex",
    feature = "config",
    feature = "memcached",
    feature = "disk",
    feature = "reqwest",
    feature = "chunked"
))]
pub struct ReadmeDoctests;

/// The everyday names: `use layercake::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "moka")]
    pub use crate::Moka;
    #[cfg(feature = "redis")]
    pub use crate::Redis;
    pub use crate::cached_handler;
    // The key extractors (`Path`, `PathAndQuery`, `Headers`) stay out: `Path` would be
    // ambiguous next to `use axum::extract::*`. Name them as `layercake::layer::Path`.
    pub use crate::{
        Backend, Cache, CacheKey, CacheLayer, CacheStats, GetSize, Invalidated, Key, Preset,
        StalePolicy,
        compose::{Always, Compose, Never, OptimisticParallel, Parallel, Race, Sequential},
        layer::{CacheControl, CacheMode, KeyExtractor},
    };
}
