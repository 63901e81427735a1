//! Invalidation you can call: take entries out of a cache from code.
//!
//! Every entry point — [`Cache::invalidate`](crate::Cache::invalidate),
//! [`CacheLayer::invalidate_url`](crate::CacheLayer::invalidate_url), the `invalidate` function
//! `#[cached_handler]` generates next to a function, and the layer's own RFC 9111 §4.4
//! invalidation by unsafe requests — goes through one engine call that removes the entry from
//! every tier of the backend (both tiers of a [`Compose`](crate::compose::Compose), Redis
//! included), counts it in [`CacheStats::invalidations`](crate::CacheStats::invalidations), and
//! says what it did.
//!
//! ```
//! use layercake::{Cache, Moka};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let users: Cache<String, Moka> = Cache::builder(Moka::default()).build().unwrap();
//! users.insert("user:42", "Ada".to_owned()).await;
//! let done = users.invalidate("user:42").await.unwrap();
//! assert_eq!(done.entries, Some(1));
//! assert_eq!(users.stats().invalidations, 1);
//! # }
//! ```

use std::fmt;

use crate::BackendError;

/// What an invalidation did.
///
/// ```
/// use layercake::{Cache, Moka};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache: Cache<u8, Moka> = Cache::builder(Moka::default()).build().unwrap();
/// cache.insert("k", 1).await;
/// assert_eq!(cache.invalidate("k").await.unwrap().entries, Some(1));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Invalidated {
    /// How many stored entries it removed; `None` where a tier cannot count (an entry stored
    /// in several tiers of a composition counts once).
    pub entries: Option<u64>,
}

impl Invalidated {
    /// `count` entries removed (`None`: not countable).
    pub(crate) fn of(count: Option<u64>) -> Self {
        Invalidated { entries: count }
    }

    /// This and `other` together: the sum, when both could count.
    pub(crate) fn and(self, other: Invalidated) -> Self {
        Invalidated {
            entries: self.entries.zip(other.entries).map(|(a, b)| a + b),
        }
    }
}

/// Why an invalidation by URL did not run, or did not complete.
///
/// ```
/// use layercake::{CacheLayer, InvalidateError, Moka};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let layer = CacheLayer::builder(Moka::default()).build().unwrap();
/// let error = layer.invalidate_url("/no/host").await.unwrap_err();
/// assert!(matches!(error, InvalidateError::Url(_)));
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum InvalidateError {
    /// The URL does not parse, or names no host where the layer's keys include one.
    Url(String),
    /// A tier failed; what the other tiers removed is gone.
    Backend(BackendError),
}

impl fmt::Display for InvalidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidateError::Url(why) => write!(f, "cannot invalidate this URL: {why}"),
            InvalidateError::Backend(error) => write!(f, "invalidation failed: {error}"),
        }
    }
}

impl std::error::Error for InvalidateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InvalidateError::Backend(error) => Some(error),
            InvalidateError::Url(_) => None,
        }
    }
}

impl From<BackendError> for InvalidateError {
    fn from(error: BackendError) -> Self {
        InvalidateError::Backend(error)
    }
}
