//! The engine shared by the HTTP layer and the typed cache: lookups that turn backend errors
//! into counted misses, the decision of what to do with what was found (serve, serve and
//! refresh in the background, fetch with a stale fallback), stores, and the single-flight
//! protocol around an upstream call.

use std::{future::Future, sync::Arc, time::Duration};

use layercake_backends::{
    Backend, BackendError, Entry, Forget, Freshness, Key, KeyRef, Lookup, Selection, Timestamp,
};

use crate::{
    BuildError, Invalidated,
    fence::{Epoch, Fence, Scope},
    flight::{Flights, Join, Leader, Outcome, SharedError, follow},
    offload::OffloadManager,
    stats::Stats,
};

/// What to do with an entry that is past its time to live but inside its stale window.
///
/// | policy | the caller gets | upstream | `Cache-Status` |
/// |---|---|---|---|
/// | `Return` | the stale entry, at once | not called | `hit; ttl=-N` |
/// | `Revalidate` | a fresh response, after waiting for it | called now | `fwd=stale; stored` |
/// | `OffloadRevalidate` | the stale entry, at once | refreshed in the background | `hit; ttl=-N; fwd=stale` |
///
/// `ttl=-N` is the entry's remaining freshness (negative: stale by N seconds, RFC 9211 §2.2).
/// With `OffloadRevalidate` the response is still a `hit` (nobody waited for upstream), and
/// `fwd=stale` says the cache did forward a request upstream, in the background, because the
/// entry was stale. Past its stale window, an entry is not served under any policy.
///
/// ```
/// use std::time::Duration;
/// use layercake::{Cache, Moka, StalePolicy};
///
/// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
///     .ttl(Duration::from_secs(60))
///     .stale(Duration::from_secs(300))
///     .stale_policy(StalePolicy::OffloadRevalidate)
///     .build()
///     .unwrap();
/// # drop(cache);
/// ```
#[cfg_attr(
    feature = "config",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StalePolicy {
    /// Serve the stale entry as it is; it is replaced once it expires.
    #[default]
    Return,
    /// Treat the stale entry as a miss: wait for a fresh one from upstream (the stale entry is
    /// still served if upstream fails inside the stale-if-error window).
    Revalidate,
    /// Serve the stale entry at once and refresh it in the background
    /// (stale-while-revalidate, RFC 5861): one refresh per key, however many hits.
    OffloadRevalidate,
}

/// Named lifetimes for common kinds of data: a ttl, and a stale window served while the entry
/// is refreshed in the background (stale-while-revalidate), so that a key in steady use never
/// makes a caller wait for its refresh. The stale window is a fraction of the ttl: long enough
/// to cover a slow refresh, short enough that nobody is served data much older than its ttl.
///
/// | preset | ttl | stale (served while refreshed) | for |
/// |---|---|---|---|
/// | `RealTime` | 10 s | none | prices, stock, anything a user acts on at once |
/// | `Short` | 5 min | 1 min | feeds, search results, dashboards |
/// | `Medium` | 1 h | 10 min | profiles, product pages |
/// | `Long` | 3 h | 1 h | catalogues, configuration, reference data |
///
/// A preset sets the ttl, the stale window and the stale policy; a `ttl`, `stale` or
/// `stale_policy` given after it overrides that part.
///
/// ```
/// use std::time::Duration;
/// use layercake::{Cache, Moka, Preset};
///
/// let profiles: Cache<String, Moka> = Cache::builder(Moka::default())
///     .preset(Preset::Medium)
///     .build()
///     .unwrap();
/// assert_eq!(Preset::Medium.ttl(), Duration::from_secs(3600));
/// # drop(profiles);
/// ```
#[cfg_attr(
    feature = "config",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Preset {
    /// 10 s, nothing stale.
    RealTime,
    /// 5 min, then 1 min served while refreshed.
    Short,
    /// 1 h, then 10 min served while refreshed.
    Medium,
    /// 3 h, then 1 h served while refreshed.
    Long,
}

impl Preset {
    /// The preset's time to live.
    pub const fn ttl(self) -> Duration {
        Duration::from_secs(match self {
            Preset::RealTime => 10,
            Preset::Short => 5 * 60,
            Preset::Medium => 3600,
            Preset::Long => 3 * 3600,
        })
    }

    /// The preset's stale window: served while the entry is refreshed in the background.
    pub const fn stale(self) -> Duration {
        Duration::from_secs(match self {
            Preset::RealTime => 0,
            Preset::Short => 60,
            Preset::Medium => 10 * 60,
            Preset::Long => 3600,
        })
    }
}

/// How long a caller waits, in all, for other callers' upstream call before going upstream
/// itself: 5 s.
///
/// Long enough for any upstream call that should be cached in front of, short enough that a
/// hung upstream stalls its waiters for seconds, not half a minute; nginx's
/// `proxy_cache_lock_timeout` is 5 s for the same reason. Raise it for computations that take
/// longer: past it, every waiting caller goes upstream at once.
///
/// ```
/// assert_eq!(layercake::DEFAULT_LOCK_TIMEOUT, std::time::Duration::from_secs(5));
/// ```
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings common to every cache on the engine.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) ttl: Duration,
    pub(crate) stale: Duration,
    pub(crate) stale_policy: StalePolicy,
    pub(crate) lock_timeout: Duration,
    pub(crate) concurrency: usize,
    pub(crate) refresh_before: Option<Duration>,
    pub(crate) stale_if_error: Duration,
    pub(crate) upstream_timeout: Option<Duration>,
    pub(crate) offload: Option<OffloadManager>,
    pub(crate) auto_refresh: Option<crate::refresh::AutoRefresh>,
    /// The fleet this cache's memory tiers are kept coherent with.
    #[cfg(feature = "redis")]
    pub(crate) fleet: Option<crate::fleet::Fleet>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            ttl: Duration::from_secs(60),
            stale: Duration::ZERO,
            stale_policy: StalePolicy::default(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            concurrency: 1,
            refresh_before: None,
            stale_if_error: Duration::ZERO,
            upstream_timeout: None,
            offload: None,
            auto_refresh: None,
            #[cfg(feature = "redis")]
            fleet: None,
        }
    }
}

/// The setters every builder on the engine shares; `$who` names the caller in the docs
/// ("request", "caller"). The builder has `policy: Policy` and `namespace: String` fields.
macro_rules! policy_setters {
    ($who:literal) => {
        /// How long an entry is fresh. Default: 60 s.
        ///
        /// ```
        /// use std::time::Duration;
        /// use layercake::{Cache, Moka};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .ttl(Duration::from_secs(300))
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
            self.policy.ttl = ttl;
            self
        }

        /// How long after its ttl an entry may still be served stale (see
        /// [`stale_policy`](Self::stale_policy)). Default: none.
        ///
        /// ```
        /// use std::time::Duration;
        /// use layercake::{Cache, Moka, StalePolicy};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .ttl(Duration::from_secs(60))
        ///     .stale(Duration::from_secs(600))
        ///     .stale_policy(StalePolicy::OffloadRevalidate)
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn stale(mut self, stale: std::time::Duration) -> Self {
            self.policy.stale = stale;
            self
        }

        /// What to do with a stale entry. Default: [`StalePolicy::Return`](crate::StalePolicy).
        ///
        /// ```
        /// use std::time::Duration;
        /// use layercake::{Cache, Moka, StalePolicy};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .stale(Duration::from_secs(30))
        ///     .stale_policy(StalePolicy::Revalidate)
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn stale_policy(mut self, policy: crate::StalePolicy) -> Self {
            self.policy.stale_policy = policy;
            self
        }

        /// Refreshes an entry in the background when it is served within `window` of the end
        /// of its ttl, so a key in steady use never expires (one refresh per key at a time).
        /// Must be shorter than the ttl. Default: off.
        ///
        /// ```
        /// use std::time::Duration;
        /// use layercake::{Cache, Moka};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .ttl(Duration::from_secs(60))
        ///     .refresh_before(Duration::from_secs(10))
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn refresh_before(mut self, window: std::time::Duration) -> Self {
            self.policy.refresh_before = Some(window);
            self
        }

        /// Keeps entries for `window` past their ttl to serve them when upstream fails
        /// (RFC 5861 `stale-if-error`): an error, a configured 5xx, or an
        /// [upstream timeout](Self::upstream_timeout). Default: none.
        ///
        /// ```
        /// use std::time::Duration;
        /// use layercake::{Cache, Moka};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .stale_if_error(Duration::from_secs(3600))
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn stale_if_error(mut self, window: std::time::Duration) -> Self {
            self.policy.stale_if_error = window;
            self
        }

        /// With a stale entry to fall back on, an upstream call slower than this is abandoned
        /// and the stale entry served. Without one, the call is awaited. Default: none.
        ///
        /// ```
        /// use std::time::Duration;
        /// use layercake::{Cache, Moka};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .stale_if_error(Duration::from_secs(3600))
        ///     .upstream_timeout(Duration::from_millis(250))
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn upstream_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.policy.upstream_timeout = Some(timeout);
            self
        }

        #[doc = concat!("How many ", $who, "s for one missing key go upstream at once (dogpile width); the others wait, and the first result is shared with all and stored once. Default: 1.")]
        ///
        /// ```
        /// use layercake::{Cache, Moka};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .concurrency(2)
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn concurrency(mut self, width: usize) -> Self {
            self.policy.concurrency = width;
            self
        }

        /// Sets the ttl, the stale window and the stale policy from a [`Preset`](crate::Preset)
        /// (a stale window is served while refreshed in the background); settings given after
        /// it override those parts.
        ///
        /// ```
        /// use std::time::Duration;
        /// use layercake::{Cache, Moka};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .preset(layercake::Preset::Short)
        ///     .stale_if_error(Duration::from_secs(3600))
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn preset(mut self, preset: crate::Preset) -> Self {
            self.policy.ttl = preset.ttl();
            self.policy.stale = preset.stale();
            self.policy.stale_policy = if preset.stale().is_zero() {
                crate::StalePolicy::default()
            } else {
                crate::StalePolicy::OffloadRevalidate
            };
            self
        }

        #[doc = concat!("How long a ", $who, " waits, in all, for other ", $who, "s' upstream call before going upstream itself (when a leader goes away and another takes over, the time already waited counts). Default: [`DEFAULT_LOCK_TIMEOUT`](crate::DEFAULT_LOCK_TIMEOUT), 5 s.")]
        ///
        /// ```
        /// use std::time::Duration;
        /// use layercake::{Cache, Moka};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .lock_timeout(Duration::from_secs(30))
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn lock_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.policy.lock_timeout = timeout;
            self
        }

        /// Runs background refreshes on `offload`, e.g. one manager shared by several caches
        /// to bound them together. Default: a manager of the cache's own, with the defaults of
        /// [`OffloadManager::new`](crate::offload::OffloadManager::new).
        ///
        /// ```
        /// use layercake::{Cache, CacheLayer, Moka, offload::OffloadManager};
        /// // One manager bounds the refreshes of both caches together.
        /// let refreshes = OffloadManager::builder().max_concurrent_tasks(16).build();
        /// let layer = CacheLayer::builder(Moka::default()).offload(refreshes.clone()).build().unwrap();
        /// let typed: Cache<u8, Moka> = Cache::builder(Moka::default()).offload(refreshes).build().unwrap();
        /// # drop((layer, typed));
        /// ```
        pub fn offload(mut self, offload: crate::offload::OffloadManager) -> Self {
            self.policy.offload = Some(offload);
            self
        }

        /// Refreshes hot keys in the background before they expire; see
        /// [`refresh`](crate::refresh). Default: off.
        ///
        /// ```
        /// use layercake::{Cache, Moka, refresh::AutoRefresh};
        /// let cache: Cache<u8, Moka> = Cache::builder(Moka::default())
        ///     .auto_refresh(AutoRefresh::default())
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
        pub fn auto_refresh(mut self, config: crate::refresh::AutoRefresh) -> Self {
            self.policy.auto_refresh = Some(config);
            self
        }

        /// Keeps this cache's memory tiers coherent with the other instances of the `fleet`
        /// (see [`fleet`](crate::fleet)): every change it makes is announced, every change
        /// announced by another instance is applied to its memory tiers. Default: none (an
        /// instance alone).
        ///
        /// ```no_run
        /// use layercake::{Cache, Moka, Redis, compose::Compose, fleet::Fleet};
        /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// let redis = Redis::builder().url("redis://127.0.0.1:6379").build()?;
        /// let fleet = Fleet::builder().start(&redis)?;
        /// let cache: Cache<String, Compose<Moka, Redis>> =
        ///     Cache::builder(Compose::new(Moka::default(), redis)).fleet(fleet).build()?;
        /// # drop(cache); Ok(()) }
        /// ```
        #[cfg(feature = "redis")]
        #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
        pub fn fleet(mut self, fleet: crate::fleet::Fleet) -> Self {
            self.policy.fleet = Some(fleet);
            self
        }

        /// The first part of every key, so that caches sharing a store keep apart.
        /// Default: `"layercake"`.
        ///
        /// ```
        /// use layercake::{Cache, Moka};
        ///
        /// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
        ///     .namespace("users")
        ///     .build()
        ///     .unwrap();
        /// # drop(cache);
        /// ```
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
        if self.concurrency == 0 {
            return Err(BuildError::ZeroConcurrency);
        }
        if let Some(window) = self.refresh_before {
            if window.is_zero() || window >= self.ttl {
                return Err(BuildError::RefreshBeforeOutOfRange {
                    refresh_before: window,
                    ttl: self.ttl,
                });
            }
        }
        if namespace.is_empty() {
            return Err(BuildError::EmptyNamespace);
        }
        Ok(Key::from_parts([namespace, schema]))
    }

    /// A new entry under this policy, fresh for `ttl` and stale for `stale`.
    pub(crate) fn entry<V>(&self, value: V, ttl: Duration, stale: Duration) -> Entry<V> {
        Entry::new(value, Timestamp::now(), ttl, stale).with_stale_if_error(self.stale_if_error)
    }
}

/// What a lookup found, classified against the clock.
pub(crate) enum Found<V> {
    /// Fresh for this much longer.
    Fresh(Arc<Entry<V>>, Duration),
    /// Inside its stale window.
    Stale(Arc<Entry<V>>),
    /// Past its stale window, inside its stale-if-error window.
    ErrorOnly(Arc<Entry<V>>),
    /// Past every serving window, kept only to be revalidated (see
    /// [`Entry::with_retention`]).
    Retained(Arc<Entry<V>>),
    /// Nothing usable.
    Miss,
}

impl<V> Found<V> {
    /// The entry found, whatever its freshness.
    pub(crate) fn entry(&self) -> Option<&Arc<Entry<V>>> {
        match self {
            Found::Fresh(entry, _)
            | Found::Stale(entry)
            | Found::ErrorOnly(entry)
            | Found::Retained(entry) => Some(entry),
            Found::Miss => None,
        }
    }

    /// Whether what was found should be refreshed by a check that runs again in `interval`:
    /// nothing, or nothing fresh for longer than that.
    pub(crate) fn is_due_within(&self, interval: Duration) -> bool {
        !matches!(self, Found::Fresh(_, remaining) if *remaining > interval)
    }
}

/// Why an entry is served with a background refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// No refresh.
    No,
    /// Stale, under [`StalePolicy::OffloadRevalidate`].
    Stale,
    /// Fresh, but within `refresh_before` of its end.
    Early,
}

/// What to do for a caller, given what was found.
pub(crate) enum Plan<V> {
    /// Serve `entry` (its remaining freshness is `ttl` whole seconds, negative when stale),
    /// and maybe refresh it in the background.
    Serve {
        entry: Arc<Entry<V>>,
        ttl: i64,
        refresh: Refresh,
    },
    /// Go upstream. If upstream fails, `fallback` may be served instead. `stale` is the entry
    /// that was found but may not be served as it is: it is why the call is made (`fwd=stale`
    /// rather than `fwd=uri-miss`), and its validators may make the call a revalidation.
    Fetch {
        fallback: Option<Arc<Entry<V>>>,
        stale: Option<Arc<Entry<V>>>,
    },
}

/// How a caller that has to go upstream ends up being served.
pub(crate) enum Acquired<V> {
    /// Go upstream and settle the flight through the guard.
    Lead(Leader<V>),
    /// Another caller's result (`collapsed`).
    Collapsed(Arc<Entry<V>>),
    /// A fresh entry appeared while becoming a leader (a previous leader just stored it).
    Found(Arc<Entry<V>>, Duration),
    /// Go upstream on your own and store nothing: the leader's response could not be shared,
    /// or waiting for it took longer than the lock timeout.
    Alone,
    /// The leader's upstream call failed: answer with its error where it can be shared, else
    /// go upstream on your own (as [`Acquired::Alone`]).
    Failed(Option<SharedError>),
}

/// The remaining freshness of `entry` at `now`, in whole seconds rounded down (stale by 0.4 s
/// is -1).
pub(crate) fn ttl_seconds<V>(entry: &Entry<V>, now: Timestamp) -> i64 {
    let millis = i128::from(entry.fresh_until().as_millis()) - i128::from(now.as_millis());
    i64::try_from(millis.div_euclid(1000)).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

/// `duration` in whole seconds, as a `Cache-Status` ttl (saturating).
pub(crate) fn whole_seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// What an engine changed, for the other instances of its fleet to hear.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Announce<'a> {
    /// The entry under this key was stored (the entry's `stored_at`).
    Written(&'a Key, Timestamp),
    /// The entry under this key was invalidated, at this time.
    Invalidated(&'a Key, Timestamp),
    /// The entry under this key was stored (its `stored_at`), and here it is, encoded.
    Replaced(&'a Key, Timestamp, Vec<u8>),
    /// These entries were invalidated.
    Selected(Selection<'a>, Purge, Timestamp),
}

/// What an invalidation does to what it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purge {
    /// Removes it.
    Remove,
    /// Marks it stale (a soft purge).
    MarkStale,
}

/// How an engine announces its stores to its fleet: with their values, up to a size
/// (`fleet_updates`), or by key only (`None`); nothing without the `redis` feature.
#[cfg(feature = "redis")]
pub(crate) type Updates<V> = Option<crate::fleet::Updates<V>>;
/// How an engine announces its stores to its fleet: there is no fleet without `redis`.
#[cfg(not(feature = "redis"))]
pub(crate) type Updates<V> = std::marker::PhantomData<fn() -> V>;

pub(crate) struct Engine<V, B> {
    pub(crate) backend: B,
    pub(crate) flights: Arc<Flights<V>>,
    /// Invalidations, checked by every store (see [`Fence`]).
    pub(crate) fence: Fence,
    /// Whether stores are announced with their value (see `fleet_updates`).
    pub(crate) updates: Updates<V>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) policy: Policy,
    pub(crate) offload: OffloadManager,
    /// The cache's name, for metrics and the event log: the layer's `name`, a typed cache's
    /// namespace.
    pub(crate) name: Arc<str>,
    /// The tier that answers without waiting (see [`Backend::peek_tier`]).
    pub(crate) peek_tier: &'static str,
}

impl<V, B> Engine<V, B>
where
    V: Send + Sync + 'static,
    B: Backend<V>,
{
    /// The engine a builder makes: on `backend` under `policy`, announcing its stores to its
    /// fleet as `updates` says, and hearing the fleet (see [`join_fleet`](Engine::join_fleet)).
    pub(crate) fn start(
        backend: B,
        policy: Policy,
        updates: Updates<V>,
        name: &str,
    ) -> Result<Arc<Self>, crate::BuildError> {
        let mut engine = Engine::new(backend, policy);
        engine.updates = updates;
        engine.name = name.into();
        let engine = Arc::new(engine);
        engine.join_fleet()?;
        Ok(engine)
    }

    pub(crate) fn new(backend: B, policy: Policy) -> Self {
        let stats = Arc::new(Stats::default());
        let backend_peek_tier = backend.peek_tier();
        let offload = policy.offload.clone().unwrap_or_default();
        Engine {
            backend,
            flights: Arc::new(Flights::new(Arc::clone(&stats))),
            fence: Fence::default(),
            updates: Updates::default(),
            stats,
            policy,
            offload,
            name: "layercake".into(),
            peek_tier: backend_peek_tier,
        }
    }

    /// Classifies what the backend returned; errors are counted and read as a miss.
    pub(crate) fn classify(&self, key: KeyRef<'_>, lookup: Lookup<V>, now: Timestamp) -> Found<V> {
        let entry = match lookup {
            Ok(Some(entry)) => entry,
            Ok(None) => return Found::Miss,
            Err(error) => {
                Stats::bump(&self.stats.errors);
                tracing::warn!(%key, backend = self.backend.name(), %error, "cache read failed; treated as a miss");
                return Found::Miss;
            }
        };
        let freshness = entry.freshness(now);
        Self::found(entry, freshness)
    }

    /// What an entry is, given where it stands.
    fn found(entry: Arc<Entry<V>>, freshness: Freshness) -> Found<V> {
        match freshness {
            Freshness::Fresh(ttl) => Found::Fresh(entry, ttl),
            Freshness::Stale(_) => Found::Stale(entry),
            Freshness::StaleIfError(_) => Found::ErrorOnly(entry),
            Freshness::Retained(_) => Found::Retained(entry),
            _ => Found::Miss,
        }
    }

    /// Looks `key` up without waiting when the backend can answer at once, as of `now`. An
    /// entry the tier still holds past all its windows (a tier's own expiry may lag), or keeps
    /// only to revalidate it, is not an answer: `None` sends the caller to the asynchronous
    /// read, where a composition asks its next tier.
    pub(crate) fn peek(&self, key: KeyRef<'_>, now: Timestamp) -> Option<Found<V>> {
        match self.backend.peek(key)? {
            Ok(Some(entry)) => match entry.freshness(now) {
                Freshness::Expired | Freshness::Retained(_) => None,
                freshness => Some(Self::found(entry, freshness)),
            },
            lookup => Some(self.classify(key, lookup, now)),
        }
    }

    /// Looks `key` up.
    pub(crate) async fn lookup(&self, key: &Key) -> Found<V> {
        self.lookup_at(key, Timestamp::now()).await.0
    }

    /// Looks `key` up as of `now` when a memory tier answers at once, else as of when the
    /// lower tier answered; and that time, for the plan (one clock read on a memory hit).
    pub(crate) async fn lookup_at(&self, key: &Key, now: Timestamp) -> (Found<V>, Timestamp) {
        let (found, now, _) = self.lookup_traced(key, now).await;
        (found, now)
    }

    /// [`lookup_at`](Self::lookup_at), and the tier that answered.
    pub(crate) async fn lookup_traced(
        &self,
        key: &Key,
        now: Timestamp,
    ) -> (Found<V>, Timestamp, &'static str) {
        if let Some(found) = self.peek(key.as_key_ref(), now) {
            return (found, now, self.peek_tier);
        }
        self.fetch_traced(key).await
    }

    /// The asynchronous half of [`lookup_traced`](Self::lookup_traced), for a key the memory
    /// tier could not answer for: reads the backend, as of when it answers.
    pub(crate) async fn fetch_traced(&self, key: &Key) -> (Found<V>, Timestamp, &'static str) {
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let (lookup, tier) = self.backend.get_traced(key).await;
        #[cfg(feature = "metrics")]
        crate::metrics::backend_io(self, "get", started.elapsed());
        let now = Timestamp::now();
        (self.classify(key.as_key_ref(), lookup, now), now, tier)
    }

    /// Counts a request served from `tier`.
    pub(crate) fn tier_hit(&self, tier: &'static str) {
        self.stats.tier_hit(tier, self.peek_tier);
    }

    /// Decides what to do with what was found, and counts it.
    pub(crate) fn plan(&self, found: Found<V>, now: Timestamp) -> Plan<V> {
        let plan = match found {
            Found::Fresh(entry, remaining) => {
                let early = self
                    .policy
                    .refresh_before
                    .is_some_and(|window| remaining <= window);
                Plan::Serve {
                    ttl: whole_seconds(remaining),
                    entry,
                    refresh: if early { Refresh::Early } else { Refresh::No },
                }
            }
            Found::Stale(entry) => match self.policy.stale_policy {
                StalePolicy::Revalidate => Plan::Fetch {
                    stale: Some(Arc::clone(&entry)),
                    fallback: Some(entry),
                },
                policy => Plan::Serve {
                    ttl: ttl_seconds(&entry, now),
                    entry,
                    refresh: if policy == StalePolicy::OffloadRevalidate {
                        Refresh::Stale
                    } else {
                        Refresh::No
                    },
                },
            },
            Found::ErrorOnly(entry) => Plan::Fetch {
                stale: Some(Arc::clone(&entry)),
                fallback: Some(entry),
            },
            Found::Retained(entry) => Plan::Fetch {
                fallback: None,
                stale: Some(entry),
            },
            Found::Miss => Plan::Fetch {
                fallback: None,
                stale: None,
            },
        };
        self.counted(plan)
    }

    /// Counts a plan as a hit, a stale hit or a miss.
    fn counted(&self, plan: Plan<V>) -> Plan<V> {
        let counter = match &plan {
            Plan::Serve { ttl, .. } if *ttl >= 0 => &self.stats.hits,
            Plan::Serve { .. } => &self.stats.stale_hits,
            Plan::Fetch { .. } => &self.stats.misses,
        };
        Stats::bump(counter);
        plan
    }

    /// Serves `entry` as it is, stale or not, because the caller accepts it (HTTP `max-stale`).
    pub(crate) fn plan_as_is(&self, entry: Arc<Entry<V>>, now: Timestamp) -> Plan<V> {
        self.counted(Plan::Serve {
            ttl: ttl_seconds(&entry, now),
            entry,
            refresh: Refresh::No,
        })
    }

    /// Writes `entry` under `key`, unless an invalidation since `since` covers it (see
    /// [`Fence`]); a failure is counted and logged, never returned.
    pub(crate) async fn store(&self, key: &Key, entry: Arc<Entry<V>>, since: Epoch) {
        let stored = Arc::clone(&entry);
        let tags = stored.tags();
        let write = || self.backend.set(key, entry);
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let written = self.fence.write(key, tags, since, write).await;
        #[cfg(feature = "metrics")]
        crate::metrics::backend_io(self, "set", started.elapsed());
        match written {
            Some(Ok(())) => {
                Stats::bump(&self.stats.stores);
                tracing::debug!(%key, "stored");
                self.announce(self.stored(key, &stored)).await;
            }
            Some(Err(error)) => {
                Stats::bump(&self.stats.errors);
                tracing::warn!(%key, backend = self.backend.name(), %error, "cache write failed");
            }
            None => tracing::debug!(%key, "not stored: invalidated while it was computed"),
        }
    }

    /// The announcement of `entry`, stored under `key`: with its value when the cache pushes
    /// values to its fleet (encoded only then, and only once it is stored).
    fn stored<'a>(&self, key: &'a Key, entry: &Entry<V>) -> Announce<'a> {
        #[cfg(feature = "redis")]
        if let (Some(updates), Some(_)) = (&self.updates, &self.policy.fleet) {
            return updates.announce(key, entry);
        }
        Announce::Written(key, entry.stored_at())
    }

    /// Removes the entry under `key` from every tier, counts it, and says what it removed; a
    /// failure is counted and logged too.
    pub(crate) async fn invalidate(&self, key: &Key) -> Result<Invalidated, BackendError> {
        self.fence.record(Scope::Key(key.clone())).await;
        let at = Timestamp::now();
        let removed = self.backend.remove_counted(key).await;
        // A refill read from a lower tier before the removal must not bring the entry back
        // into memory (see `Backend::forget`).
        self.backend.forget(Forget::Key(key, at));
        self.void_lease(key).await;
        self.announce(Announce::Invalidated(key, at)).await;
        self.counted_removal(removed, &key)
    }

    /// Voids the fleet's lease on `key`, if the cache fills keys once per fleet: whoever
    /// computes it now computes from data this invalidation replaced.
    async fn void_lease(&self, key: &Key) {
        #[cfg(feature = "redis")]
        if let Some(fleet) = self.policy.fleet.as_ref().filter(|f| f.leases()) {
            fleet.void(key).await;
        }
        #[cfg(not(feature = "redis"))]
        let _ = key;
    }

    /// Fills `key` once per fleet, when the cache has a fleet with leases: takes the fleet's
    /// lease for `leader`, or waits for the instance that holds it and returns what it stored;
    /// `None` when this caller is to go upstream (with the lease, or without one when Redis
    /// cannot say or the wait reached `deadline`).
    #[cfg(feature = "redis")]
    async fn fill_once(
        &self,
        leader: &mut Leader<V>,
        key: &Key,
        deadline: tokio::time::Instant,
    ) -> Option<Acquired<V>> {
        let fleet = self.policy.fleet.as_ref().filter(|f| f.leases())?;
        loop {
            // Registered before asking, so that a result announced meanwhile is not missed.
            let waiter = fleet.waiter(key);
            let woken = waiter.notified();
            let mut woken = std::pin::pin!(woken);
            woken.as_mut().enable();
            let since = self.fence.epoch();
            let remaining = match fleet.lease(key, self.policy.lock_timeout).await? {
                Ok(lease) => {
                    // The computation starts now: invalidations heard while waiting are older.
                    leader.since = since;
                    leader.lease = Some(lease);
                    return None;
                }
                Err(remaining) => remaining,
            };
            fleet.waited();
            let expiry = tokio::time::Instant::now() + remaining;
            let _ = tokio::time::timeout_at(expiry.min(deadline), woken).await;
            let lookup = self.backend.get(key).await;
            if let Found::Fresh(entry, ttl) =
                self.classify(key.as_key_ref(), lookup, Timestamp::now())
            {
                Stats::bump(&self.stats.coalesced);
                leader.settle(Outcome::Entry(Arc::clone(&entry)));
                return Some(Acquired::Found(entry, ttl));
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(%key, "gave up waiting for another instance's fill; going upstream");
                return None;
            }
        }
    }

    /// Tells the fleet, if the cache has one, what this engine changed.
    async fn announce(&self, what: Announce<'_>) {
        #[cfg(feature = "redis")]
        if let Some(fleet) = &self.policy.fleet {
            // A store is announced in the background (a miss does not wait for it); an
            // invalidation returns once the fleet has been told.
            let wait = !matches!(what, Announce::Written(..) | Announce::Replaced(..));
            fleet.announce(crate::fleet::Change::from(what), wait).await;
        }
        #[cfg(not(feature = "redis"))]
        let _ = what;
    }

    /// Starts hearing the fleet, when the cache has one: a task applies what other instances
    /// announce to this engine's memory tiers, until the engine is dropped.
    pub(crate) fn join_fleet(self: &Arc<Self>) -> Result<(), crate::BuildError> {
        #[cfg(feature = "redis")]
        if let Some(fleet) = &self.policy.fleet {
            use crate::fleet::Heard;
            use tokio::sync::broadcast::error::RecvError;

            let runtime = tokio::runtime::Handle::try_current()
                .map_err(|_| crate::BuildError::FleetOutsideRuntime)?;
            let mut heard = fleet.listen();
            let engine = Arc::downgrade(self);
            runtime.spawn(async move {
                loop {
                    let news = match heard.recv().await {
                        Ok(news) => news,
                        // Fell behind: what was missed is unknown.
                        Err(RecvError::Lagged(_)) => Arc::new(Heard::Flush),
                        Err(RecvError::Closed) => return,
                    };
                    let Some(engine) = engine.upgrade() else {
                        return;
                    };
                    match &*news {
                        Heard::Flush => engine.backend.forget(Forget::Everything),
                        Heard::Change(change) => {
                            if let Some(scope) = change.scope() {
                                engine.fence.record(scope).await;
                            }
                            let replaced = match (change, &engine.updates) {
                                (crate::fleet::Change::Replaced(key, _, bytes), Some(updates)) => {
                                    updates.entry(key, bytes).map(|entry| (key, entry))
                                }
                                _ => None,
                            };
                            match replaced {
                                Some((key, entry)) => {
                                    engine.backend.replace_local(key, Arc::new(entry));
                                }
                                None => change.forget(|what| engine.backend.forget(what)),
                            }
                            if let Some(fleet) = &engine.policy.fleet {
                                fleet.wake(change);
                            }
                        }
                    }
                }
            });
        }
        Ok(())
    }

    /// Counts what a removal did (an invalidation per entry, one where the tier cannot count;
    /// an error otherwise) and logs it; `what` names the key or pattern.
    fn counted_removal(
        &self,
        removed: Result<Option<u64>, BackendError>,
        what: &dyn std::fmt::Debug,
    ) -> Result<Invalidated, BackendError> {
        match removed {
            Ok(count) => {
                Stats::add(&self.stats.invalidations, count.unwrap_or(1));
                tracing::debug!(?what, ?count, "invalidated");
                // The event log's record of it (see `layer::EventLog`).
                tracing::info!(
                    target: "layercake::events",
                    cache = &*self.name,
                    op = "invalidate",
                    entries = count,
                );
                Ok(Invalidated::of(count))
            }
            Err(error) => {
                Stats::bump(&self.stats.errors);
                tracing::warn!(?what, backend = self.backend.name(), %error, "cache invalidation failed");
                Err(error)
            }
        }
    }

    /// Marks the entry under `key` stale from now on, in every tier (a soft purge, see
    /// [`Entry::stale_from`]): what it found is written back, stale. Counted as an
    /// invalidation.
    pub(crate) async fn soft_invalidate(&self, key: &Key) -> Result<Invalidated, BackendError>
    where
        V: Clone,
    {
        self.fence.record(Scope::Key(key.clone())).await;
        let at = Timestamp::now();
        let found = match self.backend.get(key).await {
            Ok(found) => found,
            Err(error) => {
                Stats::bump(&self.stats.errors);
                tracing::warn!(%key, backend = self.backend.name(), %error, "cache read failed");
                return Err(error);
            }
        };
        let Some(entry) = found else {
            self.announce(Announce::Invalidated(key, at)).await;
            return Ok(Invalidated::of(Some(0)));
        };
        let stale = Arc::new(entry.stale_from(at));
        let written = self.backend.set(key, stale).await;
        self.announce(Announce::Invalidated(key, at)).await;
        if let Err(error) = written {
            Stats::bump(&self.stats.errors);
            tracing::warn!(%key, backend = self.backend.name(), %error, "cache write failed");
            return Err(error);
        }
        Stats::bump(&self.stats.invalidations);
        tracing::debug!(%key, "marked stale (soft purge)");
        Ok(Invalidated::of(Some(1)))
    }

    /// Removes, or marks stale, every entry `selection` selects (by tag, or by a pattern over
    /// readable keys) in every tier (see [`Backend::remove_selected`],
    /// [`Backend::mark_stale_selected`]), counts them, and says how many.
    pub(crate) async fn purge(
        &self,
        selection: Selection<'_>,
        purge: Purge,
    ) -> Result<Invalidated, BackendError> {
        self.fence.record(Scope::of(selection)).await;
        let now = Timestamp::now();
        let (done, forget) = match purge {
            Purge::Remove => (
                self.backend.remove_selected(selection).await,
                Forget::Selected(selection, now),
            ),
            Purge::MarkStale => (
                self.backend.mark_stale_selected(selection, now).await,
                Forget::MarkedStale(selection, now),
            ),
        };
        // As for a key: no refill racing the purge brings an old entry back into memory.
        self.backend.forget(forget);
        self.announce(Announce::Selected(selection, purge, now))
            .await;
        self.counted_removal(done, &selection)
    }

    /// [`purge`](Engine::purge) of every entry carrying any of `tags`.
    pub(crate) async fn purge_tags<T: Into<Arc<str>>>(
        &self,
        tags: impl IntoIterator<Item = T>,
        purge: Purge,
    ) -> Result<Invalidated, BackendError> {
        let tags: Vec<Arc<str>> = tags.into_iter().map(Into::into).collect();
        self.purge(Selection::Tags(&tags), purge).await
    }

    /// Settles the flight with `entry` and stores it, unless another leader's result was
    /// settled first (it is the one stored).
    pub(crate) async fn settle_and_store(
        &self,
        key: &Key,
        leader: &Leader<V>,
        entry: Arc<Entry<V>>,
    ) {
        if leader.settle(Outcome::Entry(Arc::clone(&entry))) {
            #[cfg(feature = "redis")]
            if let Some(lease) = &leader.lease {
                if !lease.release().await {
                    return;
                }
            }
            self.store(key, entry, leader.since).await;
        }
    }

    /// Runs `call`, under the upstream timeout when there is a stale entry to fall back on;
    /// that entry when the call timed out.
    pub(crate) async fn call_upstream<'f, F: Future>(
        &self,
        fallback: Option<&'f Arc<Entry<V>>>,
        call: F,
    ) -> Result<F::Output, &'f Arc<Entry<V>>> {
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let answer = match (self.policy.upstream_timeout, fallback) {
            (Some(limit), Some(stale)) => {
                tokio::time::timeout(limit, call).await.map_err(|_| stale)
            }
            _ => Ok(call.await),
        };
        #[cfg(feature = "metrics")]
        crate::metrics::upstream(&self.name, started.elapsed());
        answer
    }

    /// Counts a stale entry served because upstream failed.
    pub(crate) fn served_stale_on_error(&self, key: &Key, why: &dyn std::fmt::Display) {
        Stats::bump(&self.stats.stale_if_error);
        tracing::warn!(%key, %why, "upstream failed; serving the stale entry (stale-if-error)");
    }

    /// The single-flight protocol for a caller that has to go upstream for `key`. With
    /// `recheck`, a leader first looks once more for a fresh entry (see below); without, it
    /// goes upstream whatever is stored (the caller asked for the origin's answer).
    ///
    /// A caller waits for other callers at most the lock timeout in all: when a leader goes
    /// away without a result and a follower takes over, the time already waited counts.
    pub(crate) async fn acquire(&self, key: &Key, recheck: bool) -> Acquired<V> {
        let now = tokio::time::Instant::now();
        // A lock timeout too long to add (`Duration::MAX`: wait as long as it takes) is a year.
        let deadline = now
            .checked_add(self.policy.lock_timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        loop {
            match self.flights.join(key, self.policy.concurrency) {
                Join::Leader(mut leader) => {
                    leader.since = self.fence.epoch();
                    // A previous flight unregisters only after storing, so a fresh entry may
                    // have landed between our lookup and now: check once more where that is
                    // free (a memory tier, or a composition's memory L1, which every store
                    // writes). A remote tier is not asked twice per miss for this.
                    let found = recheck
                        .then(|| self.peek(key.as_key_ref(), Timestamp::now()))
                        .flatten();
                    if let Some(Found::Fresh(entry, ttl)) = found {
                        leader.settle(Outcome::Entry(Arc::clone(&entry)));
                        return Acquired::Found(entry, ttl);
                    }
                    #[cfg(feature = "redis")]
                    if recheck {
                        if let Some(found) = self.fill_once(&mut leader, key, deadline).await {
                            return found;
                        }
                    }
                    return Acquired::Lead(leader);
                }
                Join::Follower(rx) => {
                    match tokio::time::timeout_at(deadline, follow(rx)).await {
                        Ok(Some(Outcome::Entry(entry))) => {
                            Stats::bump(&self.stats.coalesced);
                            return Acquired::Collapsed(entry);
                        }
                        Ok(Some(Outcome::Uncacheable)) => return Acquired::Alone,
                        Ok(Some(Outcome::Failed(error))) => return Acquired::Failed(error),
                        // Every leader went away without a result: try to take over.
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

    /// A background refresh of `key` with `fetch` on the cache's offload manager; see
    /// [`Engine::refresh_on`].
    pub(crate) fn refresh<F, Fut>(self: &Arc<Self>, key: Key, fetch: F)
    where
        F: FnOnce(Leader<V>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), crate::offload::TaskError>> + Send + 'static,
    {
        self.refresh_on(&self.offload, key, fetch);
    }

    /// A background refresh of `key` with `fetch` on `offload`, deduplicated per key by the
    /// manager and, through the flight map, with callers fetching the key in the foreground.
    pub(crate) fn refresh_on<F, Fut>(self: &Arc<Self>, offload: &OffloadManager, key: Key, fetch: F)
    where
        F: FnOnce(Leader<V>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), crate::offload::TaskError>> + Send + 'static,
    {
        let engine = Arc::clone(self);
        let task_key = key.clone();
        let task = async move {
            // Somebody is fetching this key already: their result will do.
            let Join::Leader(mut leader) = engine.flights.join(&task_key, 1) else {
                return Ok(());
            };
            leader.since = engine.fence.epoch();
            Stats::bump(&engine.stats.refreshes);
            fetch(leader).await
        };
        offload.spawn(key, task);
    }

    /// Whether the entry under `key` should be refreshed by a check that runs again in
    /// `interval`: it is missing, stale, or fresh for at most `interval`.
    pub(crate) async fn due_within(&self, key: &Key, interval: Duration) -> bool {
        self.lookup(key).await.is_due_within(interval)
    }
}
