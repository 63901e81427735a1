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

pub mod compose;
mod engine;
mod error;
mod flight;
pub mod layer;
pub mod offload;
#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}
mod private;
pub mod refresh;
mod stats;
mod typed;

/// The storage crate, `layercake-backends`.
pub use layercake_backends as backends;
#[cfg(feature = "moka")]
pub use layercake_backends::Moka;
#[cfg(feature = "codec")]
pub use layercake_backends::codec;
#[cfg(feature = "redis")]
pub use layercake_backends::redis::{self, Redis};
pub use layercake_backends::{
    Backend, BackendError, BackendErrorKind, Entry, Freshness, Key, KeyBuilder, Tier, Timestamp,
};

pub use layercake_macros::cached_handler;

pub use crate::{
    engine::StalePolicy,
    error::BuildError,
    layer::{CacheLayer, CacheLayerBuilder},
    stats::CacheStats,
    typed::{Cache, CacheBuilder},
};

/// The README's examples, compiled and run as doc tests (they use the Redis store).
#[doc = include_str!("../../README.md")]
#[cfg(all(doctest, feature = "redis"))]
pub struct ReadmeDoctests;

/// The everyday names: `use layercake::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "moka")]
    pub use crate::Moka;
    #[cfg(feature = "redis")]
    pub use crate::Redis;
    pub use crate::{
        Backend, Cache, CacheLayer, CacheStats, Key, StalePolicy,
        compose::{Always, Compose, Never, OptimisticParallel, Parallel, Race, Sequential},
        layer::{Headers, KeyExtractor, Path, PathAndQuery},
    };
}
