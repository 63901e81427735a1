//! The engine shared by the HTTP layer and the typed cache: lookups that turn backend errors
//! into counted misses, stores, and the single-flight protocol around an upstream call.

use std::{sync::Arc, time::Duration};

use layercake_backends::{Backend, Entry, Freshness, Key, Lookup, Timestamp};

use crate::{
    BuildError,
    flight::{Flights, Join, Leader, Outcome, follow},
    stats::Stats,
};

/// What to do with an entry that is past its time to live but inside its stale window.
///
/// ```
/// use std::time::Duration;
/// use layercake::{Cache, Moka, StalePolicy};
///
/// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
///     .ttl(Duration::from_secs(60))
///     .stale(Duration::from_secs(300))
///     .stale_policy(StalePolicy::Return)
///     .build()
///     .unwrap();
/// # drop(cache);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StalePolicy {
    /// Serve the stale entry as it is; it is replaced once it expires.
    #[default]
    Return,
    /// Treat the stale entry as a miss: wait for a fresh one from upstream.
    Revalidate,
}

/// Settings common to every cache on the engine.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) ttl: Duration,
    pub(crate) stale: Duration,
    pub(crate) stale_policy: StalePolicy,
    pub(crate) lock_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            ttl: Duration::from_secs(60),
            stale: Duration::ZERO,
            stale_policy: StalePolicy::default(),
            lock_timeout: Duration::from_secs(30),
        }
    }
}

/// The setters every builder on the engine shares; `$who` names the caller in the docs
/// ("request", "caller"). The builder has `policy: Policy` and `namespace: String` fields.
macro_rules! policy_setters {
    ($who:literal) => {
        /// How long an entry is fresh. Default: 60 s.
        pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
            self.policy.ttl = ttl;
            self
        }

        /// How long after its ttl an entry may still be served stale (see
        /// [`stale_policy`](Self::stale_policy)). Default: none.
        pub fn stale(mut self, stale: std::time::Duration) -> Self {
            self.policy.stale = stale;
            self
        }

        /// What to do with a stale entry. Default: [`StalePolicy::Return`](crate::StalePolicy).
        pub fn stale_policy(mut self, policy: crate::StalePolicy) -> Self {
            self.policy.stale_policy = policy;
            self
        }

        #[doc = concat!("How long a ", $who, " waits for another ", $who, "'s upstream call (single-flight) before going upstream itself. Default: 30 s.")]
        pub fn lock_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.policy.lock_timeout = timeout;
            self
        }

        /// The first part of every key, so that caches sharing a store keep apart.
        /// Default: `"layercake"`.
        pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
            self.namespace = namespace.into();
            self
        }
    };
}
pub(crate) use policy_setters;

impl Policy {
    /// Checks the settings and makes the key prefix: `namespace`, then the `schema` tag.
    pub(crate) fn validate(&self, namespace: &str, schema: &str) -> Result<Key, BuildError> {
        if self.ttl.is_zero() {
            return Err(BuildError::ZeroTtl);
        }
        if self.lock_timeout.is_zero() {
            return Err(BuildError::ZeroLockTimeout);
        }
        if namespace.is_empty() {
            return Err(BuildError::EmptyNamespace);
        }
        Ok(Key::from_parts([namespace, schema]))
    }
}

/// What a lookup found, classified against the clock and the stale policy.
pub(crate) enum Found<V> {
    /// Serve it: fresh for this much longer.
    Fresh(Arc<Entry<V>>, Duration),
    /// Serve it: stale by this much, and the policy allows it.
    Stale(Arc<Entry<V>>, Duration),
    /// Nothing usable: go upstream.
    Miss,
}

impl<V> Found<V> {
    /// The entry to serve and its remaining freshness in whole seconds (negative when stale:
    /// stale by 0.4 s is a remaining freshness of -0.4 s, rounded down to -1), or `None` on a
    /// miss.
    pub(crate) fn servable(&self) -> Option<(&Arc<Entry<V>>, i64)> {
        match self {
            Found::Fresh(entry, ttl) => Some((entry, ttl.as_secs() as i64)),
            Found::Stale(entry, by) => Some((entry, -(by.as_secs() as i64) - 1)),
            Found::Miss => None,
        }
    }
}

/// How a caller that found nothing ends up being served.
pub(crate) enum Acquired<V> {
    /// Go upstream and settle the flight through the guard.
    Lead(Leader<V>),
    /// Another caller's result (`collapsed`).
    Collapsed(Arc<Entry<V>>),
    /// A fresh entry appeared while becoming the leader (a previous leader just stored it).
    Found(Arc<Entry<V>>, Duration),
    /// Go upstream on your own and store nothing: the leader's response could not be shared,
    /// or waiting for it took longer than the lock timeout.
    Alone,
}

pub(crate) struct Engine<V, B> {
    pub(crate) backend: B,
    pub(crate) flights: Arc<Flights<V>>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) policy: Policy,
}

impl<V, B> Engine<V, B>
where
    V: Send + Sync + 'static,
    B: Backend<V>,
{
    pub(crate) fn new(backend: B, policy: Policy) -> Self {
        let stats = Arc::new(Stats::default());
        Engine {
            backend,
            flights: Arc::new(Flights::new(Arc::clone(&stats))),
            stats,
            policy,
        }
    }

    /// Classifies what the backend returned; errors are counted and read as a miss.
    pub(crate) fn classify(&self, key: &Key, lookup: Lookup<V>, now: Timestamp) -> Found<V> {
        let entry = match lookup {
            Ok(Some(entry)) => entry,
            Ok(None) => return Found::Miss,
            Err(error) => {
                Stats::bump(&self.stats.errors);
                tracing::warn!(%key, backend = self.backend.name(), %error, "cache read failed; treated as a miss");
                return Found::Miss;
            }
        };
        match entry.freshness(now) {
            Freshness::Fresh(ttl) => Found::Fresh(entry, ttl),
            Freshness::Stale(by) if self.policy.stale_policy == StalePolicy::Return => {
                Found::Stale(entry, by)
            }
            Freshness::Stale(_) | Freshness::Expired => Found::Miss,
        }
    }

    /// Looks `key` up without waiting when the backend can answer at once, as of `now`.
    pub(crate) fn peek(&self, key: &Key, now: Timestamp) -> Option<Found<V>> {
        let lookup = self.backend.peek(key)?;
        Some(self.classify(key, lookup, now))
    }

    /// Looks `key` up.
    pub(crate) async fn lookup(&self, key: &Key) -> Found<V> {
        if let Some(found) = self.peek(key, Timestamp::now()) {
            return found;
        }
        let lookup = self.backend.get(key).await;
        self.classify(key, lookup, Timestamp::now())
    }

    /// Counts how a lookup was answered.
    pub(crate) fn record(&self, found: &Found<V>) {
        let counter = match found {
            Found::Fresh(..) => &self.stats.hits,
            Found::Stale(..) => &self.stats.stale_hits,
            Found::Miss => &self.stats.misses,
        };
        Stats::bump(counter);
    }

    /// Writes `entry` under `key`; a failure is counted and logged, never returned.
    pub(crate) async fn store(&self, key: &Key, entry: Arc<Entry<V>>) {
        match self.backend.set(key, entry).await {
            Ok(()) => {
                Stats::bump(&self.stats.stores);
                tracing::debug!(%key, "stored");
            }
            Err(error) => {
                Stats::bump(&self.stats.errors);
                tracing::warn!(%key, backend = self.backend.name(), %error, "cache write failed");
            }
        }
    }

    /// The single-flight protocol for a caller that found nothing usable under `key`.
    pub(crate) async fn acquire(&self, key: &Key) -> Acquired<V> {
        loop {
            match self.flights.join(key) {
                Join::Leader(leader) => {
                    // The previous leader removes its flight only after storing, so a fresh
                    // entry may have landed between our lookup and now: check once more.
                    if let Found::Fresh(entry, ttl) = self.lookup(key).await {
                        leader.settle(Outcome::Entry(Arc::clone(&entry)));
                        return Acquired::Found(entry, ttl);
                    }
                    return Acquired::Lead(leader);
                }
                Join::Follower(rx) => {
                    match tokio::time::timeout(self.policy.lock_timeout, follow(rx)).await {
                        Ok(Some(Outcome::Entry(entry))) => {
                            Stats::bump(&self.stats.coalesced);
                            return Acquired::Collapsed(entry);
                        }
                        Ok(Some(Outcome::Uncacheable)) => return Acquired::Alone,
                        // The leader went away without a result: try to take over.
                        Ok(None) => continue,
                        Err(_elapsed) => {
                            tracing::warn!(%key, timeout = ?self.policy.lock_timeout, "gave up waiting for the leader; going upstream alone");
                            return Acquired::Alone;
                        }
                    }
                }
            }
        }
    }
}
