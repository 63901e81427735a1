//! Counters of what the cache did.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a cache's counters, from `stats()` on a [`Cache`](crate::Cache) or a
/// [`CacheLayer`](crate::CacheLayer).
///
/// Counters only grow, except `in_flight`, which is the number of upstream calls under way now.
/// Reading them is a handful of relaxed atomic loads; nothing on the request path takes a lock
/// to count.
///
/// ```
/// use layercake::{Cache, Moka};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache: Cache<u64, Moka> = Cache::builder(Moka::default()).build().unwrap();
/// cache.get_or_compute("answer", || async { 42 }).await;
/// cache.get_or_compute("answer", || async { 42 }).await;
/// let stats = cache.stats();
/// assert_eq!((stats.misses, stats.stores, stats.hits), (1, 1, 1));
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[non_exhaustive]
pub struct CacheStats {
    /// Requests answered from a fresh entry.
    pub hits: u64,
    /// Requests answered from a stale entry (inside its stale window).
    pub stale_hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Entries written to the backend.
    pub stores: u64,
    /// Requests that went straight through, with no lookup (method, `Authorization`, key).
    pub passes: u64,
    /// Upstream responses that were fetched but could not be stored (status, `Set-Cookie`,
    /// `Cache-Control`, size …).
    pub uncacheable: u64,
    /// Backend errors (unreachable, timed out, corrupt or mistyped entries), each read as a miss.
    pub errors: u64,
    /// Upstream calls under way now on behalf of the cache (single-flight leaders).
    pub in_flight: u64,
    /// Callers that waited for another caller's upstream call and were served its result.
    pub coalesced: u64,
    /// Background refreshes that went upstream (stale-while-revalidate, refresh before
    /// expiry, auto-refresh).
    pub refreshes: u64,
    /// Stale entries served because upstream failed (stale-if-error).
    pub stale_if_error: u64,
    /// Entries removed by invalidation: from code (`invalidate…`), by unsafe requests (RFC
    /// 9111 §4.4), by `HEAD` responses that no longer match (§4.3.5). One per removal where
    /// a tier cannot count.
    pub invalidations: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) hits: AtomicU64,
    pub(crate) stale_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) stores: AtomicU64,
    pub(crate) passes: AtomicU64,
    pub(crate) uncacheable: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) stale_if_error: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    /// Requests served from the tier that answers without waiting (memory).
    pub(crate) peek_tier_hits: AtomicU64,
    /// Requests served from the other tiers, by name (a slow path: a lock is fine).
    pub(crate) other_tier_hits: std::sync::Mutex<Vec<(&'static str, u64)>>,
}

/// How many requests one storage tier answered (fresh or stale); see
/// [`CacheLayer::tier_hits`](crate::CacheLayer::tier_hits).
///
/// ```
/// use layercake::{CacheLayer, Moka};
/// let layer = CacheLayer::builder(Moka::default()).build().unwrap();
/// let tiers = layer.tier_hits();
/// assert_eq!((tiers[0].tier, tiers[0].hits), ("moka", 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TierHits {
    /// The tier's name (`moka`, `redis` …).
    pub tier: &'static str,
    /// Requests it answered.
    pub hits: u64,
}

impl Stats {
    /// Counts a request served from `tier`, `peek_tier` being the one that answers at once.
    pub(crate) fn tier_hit(&self, tier: &'static str, peek_tier: &'static str) {
        // The same `&'static str` when it is the peek tier: compared by address first.
        if std::ptr::eq(tier, peek_tier) || tier == peek_tier {
            Stats::bump(&self.peek_tier_hits);
            return;
        }
        let mut others = self
            .other_tier_hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match others.iter_mut().find(|(name, _)| *name == tier) {
            Some((_, hits)) => *hits += 1,
            None => others.push((tier, 1)),
        }
    }

    /// Requests served per tier, the one that answers at once first.
    pub(crate) fn tier_hits(&self, peek_tier: &'static str) -> Vec<TierHits> {
        let mut tiers = vec![TierHits {
            tier: peek_tier,
            hits: self.peek_tier_hits.load(Relaxed),
        }];
        let others = self
            .other_tier_hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tiers.extend(others.iter().map(|&(tier, hits)| TierHits { tier, hits }));
        tiers
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            stale_hits: self.stale_hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            stores: self.stores.load(Relaxed),
            passes: self.passes.load(Relaxed),
            uncacheable: self.uncacheable.load(Relaxed),
            errors: self.errors.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            coalesced: self.coalesced.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
            stale_if_error: self.stale_if_error.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
        }
    }
}

/// How a cache's storage tiers are doing: each tier's report (see
/// [`Backend::health`](crate::Backend::health)), and whether all of them are up.
///
/// ```
/// use layercake::{CacheLayer, Moka};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let health = CacheLayer::builder(Moka::default()).build().unwrap().health().await;
/// assert!(health.up && health.tiers[0].entries == Some(0));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Health {
    /// Whether every tier is up.
    pub up: bool,
    /// Each tier's report, first tier first.
    pub tiers: Vec<layercake_backends::TierHealth>,
}

impl Health {
    pub(crate) fn of(tiers: Vec<layercake_backends::TierHealth>) -> Self {
        Health {
            up: tiers.iter().all(|tier| tier.up),
            tiers,
        }
    }
}
