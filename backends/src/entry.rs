use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use crate::Timestamp;

/// What a tier stores under a key: a value and the times that say how long it may be served.
///
/// - fresh from `stored_at` until `fresh_until` (its time to live),
/// - then stale, but servable under a stale policy, until `stale_until`,
/// - then, if it has a longer stale-if-error window (RFC 5861), servable only when the upstream
///   fails, until `error_until`,
/// - then, if it is retained for revalidation (an HTTP response with validators), kept until
///   `retain_until` but never served as it is: only its validators are used,
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
#[derive(Debug)]
pub struct Entry<V> {
    value: V,
    stored_at: Timestamp,
    fresh_until: Timestamp,
    stale_until: Timestamp,
    error_until: Timestamp,
    retain_until: Timestamp,
    weight: usize,
    tags: Option<Arc<[Arc<str>]>>,
    /// Milliseconds from which the entry is stale whatever its windows say (a soft purge of a
    /// shared entry, see [`Entry::mark_stale`]); `u64::MAX` when it was never marked.
    stale_mark: AtomicU64,
}

impl<V: Clone> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Entry {
            value: self.value.clone(),
            stored_at: self.stored_at,
            fresh_until: self.fresh_until,
            stale_until: self.stale_until,
            error_until: self.error_until,
            retain_until: self.retain_until,
            weight: self.weight,
            tags: self.tags.clone(),
            stale_mark: AtomicU64::new(self.stale_mark.load(Relaxed)),
        }
    }
}

/// Where an entry stands at a given moment; see [`Entry::freshness`].
///
/// ```
/// use std::time::Duration;
/// use layercake_backends::{Entry, Freshness, Timestamp};
/// let at = Timestamp::from_millis(1_000_000);
/// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
/// let later = at + Duration::from_secs(70);
/// assert_eq!(entry.freshness(later), Freshness::Stale(Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Freshness {
    /// Fresh, for this much longer.
    Fresh(Duration),
    /// Past its time to live by this much, but inside its stale window.
    Stale(Duration),
    /// Past its stale window by this much, but inside its stale-if-error window: servable only
    /// when the upstream fails.
    StaleIfError(Duration),
    /// Past every serving window by this much, but retained so that it can be revalidated
    /// (see [`Entry::with_retention`]): never served as it is.
    Retained(Duration),
    /// Past every window: not to be served.
    Expired,
}

impl<V> Entry<V> {
    /// An entry stored at `stored_at`, fresh for `ttl`, then servable stale for `stale`.
    ///
    /// Its weight (what it costs a bounded in-memory tier) starts as `size_of::<V>()`; set a
    /// better estimate with [`Entry::with_weight`] when the value owns heap data.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.fresh_until(), at + Duration::from_secs(60));
    /// ```
    pub fn new(value: V, stored_at: Timestamp, ttl: Duration, stale: Duration) -> Self {
        let fresh_until = stored_at + ttl;
        let stale_until = fresh_until + stale;
        Entry {
            value,
            stored_at,
            fresh_until,
            stale_until,
            error_until: stale_until,
            retain_until: stale_until,
            weight: std::mem::size_of::<V>(),
            tags: None,
            stale_mark: AtomicU64::new(u64::MAX),
        }
    }

    /// Lets the entry be served for `window` past its ttl when the upstream fails
    /// (RFC 5861 `stale-if-error`). A window shorter than the stale window changes nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    ///
    /// let t0 = Timestamp::from_millis(0);
    /// let entry = Entry::new((), t0, Duration::from_secs(10), Duration::from_secs(5))
    ///     .with_stale_if_error(Duration::from_secs(60));
    /// let at = |s| t0 + Duration::from_secs(s);
    /// assert_eq!(entry.freshness(at(12)), Freshness::Stale(Duration::from_secs(2)));
    /// assert_eq!(entry.freshness(at(20)), Freshness::StaleIfError(Duration::from_secs(5)));
    /// assert_eq!(entry.freshness(at(70)), Freshness::Expired);
    /// ```
    pub fn with_stale_if_error(mut self, window: Duration) -> Self {
        self.error_until = self.stale_until.max(self.fresh_until + window);
        self.retain_until = self.retain_until.max(self.error_until);
        self
    }

    /// Keeps the entry for `window` past its ttl even where no window lets it be served, so
    /// that its validators can be used to revalidate it (an HTTP `ETag`, say). A window shorter
    /// than the others changes nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    ///
    /// let t0 = Timestamp::from_millis(0);
    /// let entry = Entry::new((), t0, Duration::from_secs(10), Duration::ZERO)
    ///     .with_retention(Duration::from_secs(60));
    /// let at = |s| t0 + Duration::from_secs(s);
    /// assert_eq!(entry.freshness(at(15)), Freshness::Retained(Duration::from_secs(5)));
    /// assert_eq!(entry.freshness(at(70)), Freshness::Expired);
    /// assert_eq!(entry.time_to_live(at(10)), Duration::from_secs(60));
    /// ```
    pub fn with_retention(mut self, window: Duration) -> Self {
        self.retain_until = self.error_until.max(self.fresh_until + window);
        self
    }

    /// Sets until when the entry is retained (an entry read back from a byte tier); earlier
    /// than `error_until` is raised to it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// let kept = entry.with_retain_until(at + Duration::from_secs(600));
    /// assert_eq!(kept.retain_until(), at + Duration::from_secs(600));
    /// ```
    pub fn with_retain_until(mut self, retain_until: Timestamp) -> Self {
        self.retain_until = retain_until.max(self.error_until);
        self
    }

    /// A copy of the entry that is stale from `now` on (a soft purge): no longer fresh, nor
    /// servable in its stale window, so it is revalidated before it is served again; still
    /// servable when the upstream fails inside its stale-if-error window, and still kept for
    /// its validators. An entry already past those points keeps them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    ///
    /// let t0 = Timestamp::from_millis(0);
    /// let entry = Entry::new("v", t0, Duration::from_secs(60), Duration::from_secs(30))
    ///     .with_stale_if_error(Duration::from_secs(600));
    /// let now = t0 + Duration::from_secs(10);
    /// let purged = entry.stale_from(now);
    /// assert_eq!(purged.freshness(now), Freshness::StaleIfError(Duration::ZERO));
    /// assert_eq!(purged.error_until(), entry.error_until());
    /// ```
    pub fn stale_from(&self, now: Timestamp) -> Entry<V>
    where
        V: Clone,
    {
        let purged = self.clone();
        purged.mark_stale(now);
        purged
    }

    /// Marks the entry stale from `now` on, in place: what [`stale_from`](Entry::stale_from)
    /// returns a copy of, for every holder of this entry at once. This is how a memory tier
    /// soft-purges the entries it shares (behind `Arc`) without copying their values. Marking
    /// again with a later time changes nothing.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    ///
    /// let t0 = Timestamp::from_millis(0);
    /// let entry = Arc::new(Entry::new("v", t0, Duration::from_secs(60), Duration::ZERO));
    /// let held_elsewhere = Arc::clone(&entry);
    /// entry.mark_stale(t0 + Duration::from_secs(5));
    /// // No longer fresh; still there for when the upstream fails, until its window ends.
    /// assert_eq!(
    ///     held_elsewhere.freshness(t0 + Duration::from_secs(5)),
    ///     Freshness::StaleIfError(Duration::ZERO),
    /// );
    /// assert_eq!(held_elsewhere.fresh_until(), t0 + Duration::from_secs(5));
    /// ```
    pub fn mark_stale(&self, now: Timestamp) {
        self.stale_mark.fetch_min(now.as_millis(), Relaxed);
    }

    /// The mark set by [`mark_stale`](Entry::mark_stale), as a time.
    fn stale_mark(&self) -> Timestamp {
        Timestamp::from_millis(self.stale_mark.load(Relaxed))
    }

    /// Until when the entry is kept (at least `error_until`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.retain_until(), entry.stale_until());
    /// ```
    pub fn retain_until(&self) -> Timestamp {
        self.retain_until
    }

    /// An entry with explicit times, e.g. read back from a byte tier. `stale_until` earlier
    /// than `fresh_until` is raised to it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Timestamp};
    /// let at = Timestamp::from_millis(5_000);
    /// let entry = Entry::from_parts(1u8, at, at + Duration::from_secs(1), at);
    /// assert_eq!(entry.stale_until(), entry.fresh_until(), "raised to fresh_until");
    /// ```
    pub fn from_parts(
        value: V,
        stored_at: Timestamp,
        fresh_until: Timestamp,
        stale_until: Timestamp,
    ) -> Self {
        let stale_until = stale_until.max(fresh_until);
        Entry {
            value,
            stored_at,
            fresh_until,
            stale_until,
            error_until: stale_until,
            retain_until: stale_until,
            weight: std::mem::size_of::<V>(),
            tags: None,
            stale_mark: AtomicU64::new(u64::MAX),
        }
    }

    /// Sets the weight: the approximate number of bytes the entry occupies in memory.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.with_weight(4096).weight(), 4096);
    /// ```
    pub fn with_weight(mut self, bytes: usize) -> Self {
        self.weight = bytes;
        self
    }

    /// The stored value.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(*entry.value(), "v");
    /// ```
    pub fn value(&self) -> &V {
        &self.value
    }

    /// Takes the value out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.into_value(), "v");
    /// ```
    pub fn into_value(self) -> V {
        self.value
    }

    /// When the entry was stored.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.stored_at(), at);
    /// ```
    pub fn stored_at(&self) -> Timestamp {
        self.stored_at
    }

    /// Until when the entry is fresh (no later than a [stale mark](Entry::mark_stale)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.fresh_until(), at + Duration::from_secs(60));
    /// ```
    pub fn fresh_until(&self) -> Timestamp {
        self.fresh_until.min(self.stale_mark())
    }

    /// Until when the entry may be served stale (no later than a
    /// [stale mark](Entry::mark_stale), and not before it is no longer fresh).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.stale_until(), at + Duration::from_secs(90));
    /// ```
    pub fn stale_until(&self) -> Timestamp {
        self.stale_until
            .min(self.stale_mark())
            .max(self.fresh_until())
    }

    /// Sets until when the entry may be served because upstream fails (an entry read back from
    /// a byte tier); earlier than `stale_until` is raised to it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// let entry = entry.with_error_until(at + Duration::from_secs(3600));
    /// assert_eq!(entry.error_until(), at + Duration::from_secs(3600));
    /// ```
    pub fn with_error_until(mut self, error_until: Timestamp) -> Self {
        self.error_until = error_until.max(self.stale_until);
        self.retain_until = self.retain_until.max(self.error_until);
        self
    }

    /// Until when the entry may be served because the upstream fails (at least `stale_until`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.error_until(), entry.stale_until(), "no stale-if-error window");
    /// ```
    pub fn error_until(&self) -> Timestamp {
        self.error_until
    }

    /// Tags the entry, for invalidation by tag. The list is shared, not copied, between the
    /// entries of one cache.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use layercake_backends::{Entry, Timestamp};
    ///
    /// let tags: Arc<[Arc<str>]> = Arc::from([Arc::from("users")]);
    /// let entry = Entry::new(1, Timestamp::now(), Duration::from_secs(9), Duration::ZERO)
    ///     .with_tags(tags);
    /// assert_eq!(&*entry.tags()[0], "users");
    /// ```
    pub fn with_tags(mut self, tags: Arc<[Arc<str>]>) -> Self {
        self.tags = (!tags.is_empty()).then_some(tags);
        self
    }

    /// The entry's tags (none unless given).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// let tagged = entry.with_tags(std::sync::Arc::from([std::sync::Arc::from("users")]));
    /// assert_eq!(&*tagged.tags()[0], "users");
    /// ```
    pub fn tags(&self) -> &[Arc<str>] {
        self.tags.as_deref().unwrap_or(&[])
    }

    /// The entry's shared list of tags, if it has any: a store keeps a handle on it instead of
    /// a copy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert!(entry.tag_list().is_none());
    /// ```
    pub fn tag_list(&self) -> Option<&Arc<[Arc<str>]>> {
        self.tags.as_ref()
    }

    /// The approximate number of bytes the entry occupies in memory.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.weight(), std::mem::size_of::<&str>());
    /// ```
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// Where the entry stands at `now`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.freshness(at), Freshness::Fresh(Duration::from_secs(60)));
    /// assert_eq!(entry.freshness(at + Duration::from_secs(100)), Freshness::Expired);
    /// ```
    pub fn freshness(&self, now: Timestamp) -> Freshness {
        let (fresh_until, stale_until) = (self.fresh_until(), self.stale_until());
        if now < fresh_until {
            Freshness::Fresh(fresh_until.saturating_duration_since(now))
        } else if now < stale_until {
            Freshness::Stale(now.saturating_duration_since(fresh_until))
        } else if now < self.error_until {
            Freshness::StaleIfError(now.saturating_duration_since(stale_until))
        } else if now < self.retain_until {
            Freshness::Retained(now.saturating_duration_since(self.error_until))
        } else {
            Freshness::Expired
        }
    }

    /// How long ago the entry was stored.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.age(at + Duration::from_secs(5)), Duration::from_secs(5));
    /// ```
    pub fn age(&self, now: Timestamp) -> Duration {
        now.saturating_duration_since(self.stored_at)
    }

    /// How long past its ttl the entry has been, at `now` (zero while fresh).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.staleness(at + Duration::from_secs(75)), Duration::from_secs(15));
    /// ```
    pub fn staleness(&self, now: Timestamp) -> Duration {
        now.saturating_duration_since(self.fresh_until())
    }

    /// How long a tier should keep the entry from `now`: until the end of its last window.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Freshness, Timestamp};
    /// let at = Timestamp::from_millis(1_000_000);
    /// let entry = Entry::new("v", at, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(entry.time_to_live(at + Duration::from_secs(50)), Duration::from_secs(40), "till the stale window ends");
    /// ```
    pub fn time_to_live(&self, now: Timestamp) -> Duration {
        self.retain_until.saturating_duration_since(now)
    }
}
