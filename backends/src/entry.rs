use std::time::Duration;

use crate::Timestamp;

/// What a tier stores under a key: a value and the times that say how long it may be served.
///
/// - fresh from `stored_at` until `fresh_until` (its time to live),
/// - then stale, but servable under a stale policy, until `stale_until`,
/// - then expired: a tier may drop it, and the engine treats it as absent.
///
/// Freshness is always computed from these fields and [`Timestamp::now`], never from a tier's
/// own expiry, so tiers of a composed stack agree on what "fresh" means and a refill from a
/// lower tier keeps the remaining time to live.
///
/// ```
/// use std::time::Duration;
/// use layercake_backends::{Entry, Freshness, Timestamp};
///
/// let t0 = Timestamp::from_millis(1_000_000);
/// let entry = Entry::new(7u32, t0, Duration::from_secs(60), Duration::from_secs(30));
/// assert_eq!(entry.freshness(t0), Freshness::Fresh(Duration::from_secs(60)));
/// assert_eq!(
///     entry.freshness(t0 + Duration::from_secs(70)),
///     Freshness::Stale(Duration::from_secs(10)),
/// );
/// assert_eq!(entry.freshness(t0 + Duration::from_secs(90)), Freshness::Expired);
/// ```
#[derive(Debug, Clone)]
pub struct Entry<V> {
    value: V,
    stored_at: Timestamp,
    fresh_until: Timestamp,
    stale_until: Timestamp,
    weight: usize,
}

/// Where an entry stands at a given moment; see [`Entry::freshness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Fresh, for this much longer.
    Fresh(Duration),
    /// Past its time to live by this much, but inside its stale window.
    Stale(Duration),
    /// Past its stale window: not to be served.
    Expired,
}

impl<V> Entry<V> {
    /// An entry stored at `stored_at`, fresh for `ttl`, then servable stale for `stale`.
    ///
    /// Its weight (what it costs a bounded in-memory tier) starts as `size_of::<V>()`; set a
    /// better estimate with [`Entry::with_weight`] when the value owns heap data.
    pub fn new(value: V, stored_at: Timestamp, ttl: Duration, stale: Duration) -> Self {
        let fresh_until = stored_at + ttl;
        Entry {
            value,
            stored_at,
            fresh_until,
            stale_until: fresh_until + stale,
            weight: std::mem::size_of::<V>(),
        }
    }

    /// An entry with explicit times, e.g. read back from a byte tier. `stale_until` earlier
    /// than `fresh_until` is raised to it.
    pub fn from_parts(
        value: V,
        stored_at: Timestamp,
        fresh_until: Timestamp,
        stale_until: Timestamp,
    ) -> Self {
        Entry {
            value,
            stored_at,
            fresh_until,
            stale_until: stale_until.max(fresh_until),
            weight: std::mem::size_of::<V>(),
        }
    }

    /// Sets the weight: the approximate number of bytes the entry occupies in memory.
    pub fn with_weight(mut self, bytes: usize) -> Self {
        self.weight = bytes;
        self
    }

    /// The stored value.
    pub fn value(&self) -> &V {
        &self.value
    }

    /// Takes the value out.
    pub fn into_value(self) -> V {
        self.value
    }

    /// When the entry was stored.
    pub fn stored_at(&self) -> Timestamp {
        self.stored_at
    }

    /// Until when the entry is fresh.
    pub fn fresh_until(&self) -> Timestamp {
        self.fresh_until
    }

    /// Until when the entry may be served stale.
    pub fn stale_until(&self) -> Timestamp {
        self.stale_until
    }

    /// The approximate number of bytes the entry occupies in memory.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// Where the entry stands at `now`.
    pub fn freshness(&self, now: Timestamp) -> Freshness {
        if now < self.fresh_until {
            Freshness::Fresh(self.fresh_until.saturating_duration_since(now))
        } else if now < self.stale_until {
            Freshness::Stale(now.saturating_duration_since(self.fresh_until))
        } else {
            Freshness::Expired
        }
    }

    /// How long ago the entry was stored.
    pub fn age(&self, now: Timestamp) -> Duration {
        now.saturating_duration_since(self.stored_at)
    }

    /// How long a tier should keep the entry from `now`: until the end of its stale window.
    pub fn time_to_live(&self, now: Timestamp) -> Duration {
        self.stale_until.saturating_duration_since(now)
    }
}
