use std::fmt;

/// A configuration error, reported by `build()` before any request is served.
///
/// ```
/// use std::time::Duration;
/// use layercake::{BuildError, CacheLayer, Moka};
///
/// let err = CacheLayer::builder(Moka::default())
///     .ttl(Duration::ZERO)
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, BuildError::ZeroTtl));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The time to live is zero: nothing would ever be served from the cache.
    ZeroTtl,
    /// `min_body_size` is larger than `max_body_size`: no body could be stored.
    BodySizeRange {
        /// The configured minimum.
        min: usize,
        /// The configured maximum.
        max: usize,
    },
    /// No method is cacheable.
    NoMethods,
    /// The lock timeout is zero: followers would never wait for a leader.
    ZeroLockTimeout,
    /// The cache name is not a valid RFC 9211 token (letters, digits and `!#$%&'*+-.^_`|~:/`,
    /// starting with a letter or `*`).
    InvalidName(String),
    /// The namespace is empty.
    EmptyNamespace,
    /// The dogpile width (`concurrency`) is zero: nobody would go upstream.
    ZeroConcurrency,
    /// The cache joins a fleet (feature `redis`) but is built outside a tokio runtime: it hears
    /// the fleet in a task of its own.
    FleetOutsideRuntime,
    /// `refresh_before` is zero or not shorter than the ttl: every hit would refresh.
    RefreshBeforeOutOfRange {
        /// The configured window.
        refresh_before: std::time::Duration,
        /// The configured ttl.
        ttl: std::time::Duration,
    },
    /// An [`InlineCache`](crate::InlineCache) was asked for, and this setting recomputes in
    /// the background (`stale_policy`, `refresh_before`, `auto_refresh`).
    BackgroundRefresh(&'static str),
    /// A chunked layer's chunk size is zero, or larger than what one fetch may ask.
    #[cfg(feature = "chunked")]
    ChunkSize {
        /// The chunk size asked.
        chunk_size: u64,
        /// The most one fetch may ask.
        max_fetch: u64,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroTtl => f.write_str("the cache's ttl must be greater than zero"),
            BuildError::BodySizeRange { min, max } => write!(
                f,
                "min_body_size ({min} bytes) is larger than max_body_size ({max} bytes)"
            ),
            BuildError::NoMethods => f.write_str("at least one method must be cacheable"),
            BuildError::ZeroLockTimeout => {
                f.write_str("the lock timeout must be greater than zero")
            }
            BuildError::InvalidName(name) => write!(
                f,
                "cache name {name:?} is not a valid Cache-Status token (RFC 9211): use letters, digits and !#$%&'*+-.^_`|~:/, starting with a letter"
            ),
            BuildError::EmptyNamespace => f.write_str("the key namespace must not be empty"),
            BuildError::FleetOutsideRuntime => f.write_str(
                "a cache that joins a fleet hears it in a task of its own: build it inside a tokio runtime",
            ),
            BuildError::ZeroConcurrency => {
                f.write_str("concurrency (the dogpile width) must be at least 1")
            }
            BuildError::RefreshBeforeOutOfRange {
                refresh_before,
                ttl,
            } => write!(
                f,
                "refresh_before ({refresh_before:?}) must be greater than zero and shorter than the ttl ({ttl:?})"
            ),
            #[cfg(feature = "chunked")]
            BuildError::ChunkSize {
                chunk_size,
                max_fetch,
            } => write!(
                f,
                "chunk_size ({chunk_size} bytes) must be greater than zero and at most max_fetch ({max_fetch} bytes)"
            ),
            BuildError::BackgroundRefresh(setting) => write!(
                f,
                "`{setting}` recomputes values in the background, which an inline cache never \
                 does (its computations may borrow): use `build()` and `get_or_compute`, or drop \
                 `{setting}`"
            ),
        }
    }
}

impl std::error::Error for BuildError {}
