//! The typed cache: `get_or_compute` for any `T: Clone + Send + Sync + 'static`.

use std::{convert::Infallible, fmt, future::Future, marker::PhantomData, pin::Pin, sync::Arc};

use layercake_backends::{
    Backend, CacheKey, Entry, Key, KeyBuilder, KeyRef, Selection, Timestamp, key::glob_escape,
};

use crate::{
    BuildError, CacheStats,
    engine::{Acquired, Engine, Plan, Policy, Purge, Refresh, policy_setters},
    flight::{Outcome, SharedError},
    offload::TaskError,
    refresh::{HotKeys, spawn_checker},
    weigh::{ByGetSize, Weigher},
};

/// Keeps `compute` to be run again: each run uses a fresh copy.
fn recompute<V, F, Fut, E>(compute: F) -> Recompute<V>
where
    F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<V, E>> + Send + 'static,
    E: Send + 'static,
{
    Arc::new(move || {
        let compute = compute.clone();
        Box::pin(async move {
            compute()
                .await
                .map_err(|_| TaskError::from("the computation failed"))
        })
    })
}

/// A caller's error, ready to be handed to the callers waiting on its computation.
fn shared<E: Send + 'static>(error: E) -> SharedError {
    Arc::new(std::sync::Mutex::new(error))
}

/// A copy of a leader's error, when it is of this caller's type and `share` can copy it.
fn unshare<E: 'static>(error: &SharedError, share: fn(&E) -> Option<E>) -> Option<E> {
    let error = error.downcast_ref::<std::sync::Mutex<E>>()?;
    let error = error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    share(&error)
}

/// What the key of every typed cache starts with, after the namespace: the kind of value and
/// the layout version of keys, so HTTP and typed entries never meet in a shared store.
const KEY_SCHEMA: &str = "value/1";

/// The slow half of the typed path, boxed: see `Cache::served_boxed`.
type ServedFuture<'a, V, E> = Pin<Box<dyn Future<Output = (Result<V, E>, Served)> + Send + 'a>>;

/// A cache of values of type `V`, on backend `B`, with single-flight.
///
/// `get_or_compute` answers from the backend when it holds a fresh entry; otherwise exactly one
/// caller per key runs its `compute` future and every concurrent caller for the same key gets
/// that result. If the computing caller panics or is cancelled, a waiting caller takes over
/// with its own `compute`, so nobody hangs; if it fails, the waiting callers get its error (see
/// [`try_get_or_compute`](Cache::try_get_or_compute)). `Cache` is a cheap handle: clones share
/// entries, flights and counters. Values are weighed for a memory tier's byte budget by what
/// they own (see [`weigh`](crate::weigh)).
///
/// ```
/// use std::time::Duration;
/// use layercake::{Cache, GetSize, Moka};
///
/// #[derive(Clone, GetSize)]
/// struct User { name: String }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let users: Cache<User, Moka> = Cache::builder(Moka::default())
///     .ttl(Duration::from_secs(60))
///     .build()
///     .unwrap();
///
/// let user = users
///     .get_or_compute("user:42", || async { User { name: "Ada".into() } })
///     .await;
/// assert_eq!(user.name, "Ada");
/// # }
/// ```
pub struct Cache<V, B> {
    engine: Arc<Engine<V, B>>,
    prefix: Key,
    weigher: fn(&V) -> usize,
    lifetime: fn(&V) -> Option<std::time::Duration>,
    tags: Option<Arc<[Arc<str>]>>,
    hot: Option<Arc<HotKeys<Recompute<V>>>>,
}

/// What a lookup gave a typed cache.
enum Looked<V> {
    /// A value to serve, how, and whether to refresh it in the background.
    Served(V, Served, bool),
    /// Nothing to serve: compute, falling back on this stale entry if that fails.
    Missing(Option<Arc<Entry<V>>>),
}

/// What a typed lookup found without waiting; see [`Cache::begin`].
#[doc(hidden)]
pub struct Begun<V> {
    now: Now<V>,
    /// The key, owned, when hot keys are tracked.
    hot: Option<Key>,
}

impl<V> Begun<V> {
    /// The value and how it was served, when a memory tier served it and nothing is left to
    /// do (no refresh, no hot key to track): then no other future is made. Else `self`, for
    /// [`Cache::try_get_or_compute_served`].
    // `Err` is the rarer path, and its `Begun` moves once more on its way to the cache's future.
    #[allow(clippy::result_large_err)]
    #[inline]
    pub fn into_ready<E>(self) -> Result<(Result<V, E>, Served), Self> {
        match self {
            Begun {
                now: Now::Served(value, served, None),
                hot: None,
            } => Ok((Ok(value), served)),
            begun => Err(begun),
        }
    }
}

/// What a memory tier said at once, with the key made owned where it is kept.
enum Now<V> {
    /// A value to serve, how, and the key when the value is to be refreshed in the background.
    Served(V, Served, Option<Key>),
    /// Nothing to serve: compute under the key, falling back on this stale entry.
    Missing(Key, Option<Arc<Entry<V>>>),
    /// No answer at once: read the lower tiers.
    Elsewhere(Key),
}

/// A kept computation, run again by auto-refresh.
type Recompute<V> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<V, TaskError>> + Send>> + Send + Sync>;

impl<V, B: Clone> Clone for Cache<V, B> {
    fn clone(&self) -> Self {
        Cache {
            engine: Arc::clone(&self.engine),
            prefix: self.prefix.clone(),
            weigher: self.weigher,
            lifetime: self.lifetime,
            tags: self.tags.clone(),
            hot: self.hot.clone(),
        }
    }
}

impl<V, B> fmt::Debug for Cache<V, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("prefix", &self.prefix)
            .field("policy", &self.engine.policy)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Cache`]; see [`Cache::builder`]. `W` is how values are weighed (see
/// [`weigh`](crate::weigh)): [`ByGetSize`] until [`weigher`](CacheBuilder::weigher) is called.
///
/// ```
/// use std::time::Duration;
/// use layercake::{Cache, Moka};
/// let cache: Cache<String, Moka> = Cache::builder(Moka::default()).ttl(Duration::from_secs(30)).build().unwrap();
/// # drop(cache);
/// ```
#[must_use]
pub struct CacheBuilder<V, B, W = ByGetSize> {
    backend: B,
    policy: Policy,
    namespace: String,
    weigher: W,
    lifetime: fn(&V) -> Option<std::time::Duration>,
    tags: Vec<Arc<str>>,
    updates: crate::engine::Updates<V>,
    _value: PhantomData<fn() -> V>,
}

impl<V, B> Cache<V, B> {
    /// A builder for a cache on `backend`. Values are weighed with [`GetSize`](crate::GetSize)
    /// (see [`weigh`](crate::weigh)) unless a [`weigher`](CacheBuilder::weigher) is given.
    /// Defaults: ttl 60 s, no stale window,
    /// [`StalePolicy::Return`](crate::StalePolicy::Return), namespace `"layercake"`, lock timeout 5 s ([`DEFAULT_LOCK_TIMEOUT`](crate::DEFAULT_LOCK_TIMEOUT)).
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let users: Cache<String, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// # drop(users);
    /// # }
    /// ```
    pub fn builder(backend: B) -> CacheBuilder<V, B, ByGetSize> {
        CacheBuilder {
            backend,
            policy: Policy::default(),
            namespace: "layercake".to_owned(),
            weigher: ByGetSize,
            lifetime: |_| None,
            tags: Vec::new(),
            updates: Default::default(),
            _value: PhantomData,
        }
    }
}

impl<V, B> Cache<V, B>
where
    V: Clone + Send + Sync + 'static,
    B: Backend<V>,
{
    /// The full key under which `key` is stored (namespace, schema, then `key`).
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// let cache: Cache<u8, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// assert_eq!(cache.key("user:1").to_string(), "layercake:value/1:user:1");
    /// ```
    pub fn key(&self, key: impl CacheKey) -> Key {
        self.with_key(key, |key| key.to_key())
    }

    /// `f` of the full key of `key`, built on the stack in this frame (a builder is a few
    /// hundred bytes: returned by value, it would be copied) and lent as it is.
    #[inline]
    fn with_key<T>(&self, key: impl CacheKey, f: impl FnOnce(KeyRef<'_>) -> T) -> T {
        let mut builder = KeyBuilder::default();
        builder.push_key(&self.prefix);
        key.write_key(&mut builder);
        f(builder.as_key())
    }

    /// [`begin`](Self::begin) for the full key of `key`.
    #[inline]
    fn begin_with(&self, key: impl CacheKey) -> Begun<V> {
        self.with_key(key, |key| self.begin_at(key))
    }

    /// The value under `key`, computed by `compute` when the cache has no usable entry.
    ///
    /// Concurrent callers for one key share one `compute`: see the [type docs](Cache). The
    /// computation may run in the background (stale-while-revalidate, refresh before expiry),
    /// after this call has returned, so it owns what it uses (`move`, and clone an `Arc` in);
    /// with [auto-refresh](CacheBuilder::auto_refresh) a copy of it is kept to refresh a hot
    /// key, hence `Clone`.
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let users: Cache<String, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// let id = 42u64;
    /// let name = users
    ///     .get_or_compute(("user", id), move || async move { format!("user {id}") })
    ///     .await;
    /// assert_eq!(name, "user 42");
    /// # }
    /// ```
    pub async fn get_or_compute<F, Fut>(&self, key: impl CacheKey, compute: F) -> V
    where
        F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = V> + Send + 'static,
    {
        // `served` straight away, not through `try_get_or_compute`: every layer of futures
        // is one more copy of the state on a hit.
        let begun = self.begin_with(key);
        if let Begun {
            now: Now::Served(value, _, None),
            hot: None,
        } = begun
        {
            return value;
        }
        let compute = move || async move { Ok::<V, Infallible>(compute().await) };
        match self
            .served_boxed(begun, compute, |never| match *never {})
            .await
            .0
        {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_compute`](Cache::get_or_compute) for a fallible `compute`: an `Ok` value
    /// is cached and shared; an `Err` is not stored, and is handed to every caller waiting on
    /// that computation (a clone each: wrap an error that is not `Clone` in an `Arc`), so a
    /// failing computation costs its waiters one computation's time, not one each. If the cache
    /// holds an entry inside its stale-if-error window, the `Err` (or an
    /// [upstream timeout](CacheBuilder::upstream_timeout)) is answered, to the computing caller
    /// and those waiting on it, with that entry's value instead.
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// let failed = cache.try_get_or_compute("k", || async { Err::<u32, _>("db down") }).await;
    /// assert_eq!(failed, Err("db down"));
    /// let ok = cache.try_get_or_compute("k", || async { Ok::<u32, &str>(1) }).await;
    /// assert_eq!(ok, Ok(1));
    /// # }
    /// ```
    pub async fn try_get_or_compute<F, Fut, E>(
        &self,
        key: impl CacheKey,
        compute: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Clone + Send + 'static,
    {
        let begun = self.begin_with(key);
        if let Begun {
            now: Now::Served(value, _, None),
            hot: None,
        } = begun
        {
            return Ok(value);
        }
        self.served_boxed(begun, compute, |error: &E| Some(error.clone()))
            .await
            .0
    }

    /// What every full key starts with: this cache's namespace and schema. For code generated
    /// by `#[cached_handler]`, which pushes it into a builder, then the function and its
    /// arguments.
    #[doc(hidden)]
    pub fn key_prefix(&self) -> &Key {
        &self.prefix
    }

    /// [`try_get_or_compute`](Cache::try_get_or_compute) with what [`begin`](Cache::begin)
    /// found for a full key (made by [`key_prefix`](Cache::key_prefix)), and `share`, which
    /// copies an error for a waiting caller (`None`: it cannot be shared, and the waiting
    /// callers compute on their own, all at once); and how the value was served (for the
    /// `Cache-Status` of `#[cached_handler]` responses). For code generated by
    /// `#[cached_handler]`.
    #[doc(hidden)]
    pub fn try_get_or_compute_served<F, Fut, E>(
        &self,
        begun: Begun<V>,
        compute: F,
        share: fn(&E) -> Option<E>,
    ) -> impl Future<Output = (Result<V, E>, Served)> + Send + '_
    where
        F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + 'static,
    {
        // Not an `async fn`: the caller's future holds the box alone, not `begun` and
        // `compute` beside it.
        self.served_boxed(begun, compute, share)
    }

    /// The first half of the typed path, without waiting: `key` is looked up where it was
    /// built when a memory tier can answer at once, so a memory hit never copies it (and no
    /// future holds it); it is copied to the heap only to be kept (to read a lower tier,
    /// refresh, compute and store, or track a hot key). For code generated by
    /// `#[cached_handler]`, which hands the result to
    /// [`try_get_or_compute_served`](Cache::try_get_or_compute_served).
    #[doc(hidden)]
    pub fn begin(&self, key: &KeyBuilder) -> Begun<V> {
        self.begin_at(key.as_key())
    }

    fn begin_at(&self, key: KeyRef<'_>) -> Begun<V> {
        Begun {
            hot: self.hot.as_ref().map(|_| key.to_key()),
            now: self.look_now(key),
        }
    }

    /// [`served`](Cache::served) on the heap. Its state (a lower tier's read, a computation,
    /// a store) is large, and the future of every caller that awaits it in place holds that
    /// much room, copied in full whenever the caller's future is moved, on a hit too; boxed,
    /// a hit's future is a few words, and only what goes past the memory tier allocates.
    fn served_boxed<F, Fut, E>(
        &self,
        begun: Begun<V>,
        compute: F,
        share: fn(&E) -> Option<E>,
    ) -> ServedFuture<'_, V, E>
    where
        F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + 'static,
    {
        Box::pin(self.served(begun, compute, share))
    }

    /// The second half of the typed path: serves what [`begin`](Self::begin) found, or reads
    /// the lower tiers, or computes.
    async fn served<F, Fut, E>(
        &self,
        begun: Begun<V>,
        compute: F,
        share: fn(&E) -> Option<E>,
    ) -> (Result<V, E>, Served)
    where
        F: FnOnce() -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + 'static,
    {
        if let (Some(hot), Some(key)) = (&self.hot, &begun.hot) {
            hot.record(key, || recompute(compute.clone()));
            self.start_checker(hot);
        }
        let (key, looked) = match begun.now {
            Now::Served(value, served, None) => return (Ok(value), served),
            Now::Served(value, served, Some(key)) => {
                self.refresh_in_background(key, compute);
                return (Ok(value), served);
            }
            Now::Missing(key, fallback) => (key, Looked::Missing(fallback)),
            Now::Elsewhere(key) => {
                let looked = self.look_later(&key).await;
                (key, looked)
            }
        };
        match looked {
            Looked::Served(value, served, refresh) => {
                if refresh {
                    self.refresh_in_background(key, compute);
                }
                (Ok(value), served)
            }
            // Boxed: the computation's state (the wait, the upstream call, the store) is most
            // of this future's size, and a hit would otherwise move it around unused.
            Looked::Missing(fallback) => {
                Box::pin(self.compute_and_store(key, fallback, compute, share)).await
            }
        }
    }

    /// Looks `key` up where a memory tier can answer at once (as of one clock read): a value
    /// to serve, what to fall back on while computing, or `Elsewhere` when the lower tiers
    /// must be read. The key is copied only in the last two cases, and for a refresh.
    fn look_now(&self, key: KeyRef<'_>) -> Now<V> {
        let engine = &self.engine;
        let now = Timestamp::now();
        let Some(found) = engine.peek(key, now) else {
            return Now::Elsewhere(key.to_key());
        };
        match self.looked(found, now, engine.peek_tier) {
            Looked::Served(value, served, refresh) => {
                Now::Served(value, served, refresh.then(|| key.to_key()))
            }
            Looked::Missing(fallback) => Now::Missing(key.to_key(), fallback),
        }
    }

    /// Looks `key` up in the tiers that must be waited for, as of when they answer.
    async fn look_later(&self, key: &Key) -> Looked<V> {
        let (found, now, tier) = self.engine.fetch_traced(key).await;
        self.looked(found, now, tier)
    }

    /// What to do with what `tier` held for a key as of `now`: a value to serve (and whether
    /// to refresh it in the background), or what to fall back on while computing.
    fn looked(
        &self,
        found: crate::engine::Found<V>,
        now: Timestamp,
        tier: &'static str,
    ) -> Looked<V> {
        let engine = &self.engine;
        match engine.plan(found, now) {
            Plan::Serve {
                entry,
                refresh,
                ttl,
            } => {
                engine.tier_hit(tier);
                let served = match refresh {
                    Refresh::Stale => Served::StaleRefreshing(ttl, tier),
                    _ => Served::Hit(ttl, Some(tier)),
                };
                Looked::Served(entry.value().clone(), served, refresh != Refresh::No)
            }
            Plan::Fetch { fallback, .. } => Looked::Missing(fallback),
        }
    }

    /// A missing (or stale, to be recomputed) value: waits for another caller's computation,
    /// or runs `compute`, stores what it gives and hands it to the callers waiting on it.
    async fn compute_and_store<F, Fut, E>(
        &self,
        key: Key,
        fallback: Option<Arc<Entry<V>>>,
        compute: F,
        share: fn(&E) -> Option<E>,
    ) -> (Result<V, E>, Served)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + 'static,
    {
        let engine = &self.engine;
        // A caller that computes alone (the wait for a leader timed out) is fenced from here.
        let since = engine.fence.epoch();
        let leader = match engine.acquire(&key, true).await {
            Acquired::Collapsed(entry) => return (Ok(entry.value().clone()), Served::Collapsed),
            Acquired::Found(entry, ttl) => {
                let served = Served::Hit(crate::engine::whole_seconds(ttl), None);
                return (Ok(entry.value().clone()), served);
            }
            Acquired::Failed(Some(error)) => match unshare(&error, share) {
                Some(error) => return (Err(error), Served::Computed),
                None => None,
            },
            Acquired::Lead(leader) => Some(leader),
            Acquired::Alone | Acquired::Failed(None) => None,
        };
        // Only the caller that computes gets here. A failure is handed to the waiting callers;
        // a panic or a cancellation drops the guard, which releases one of them to take over.
        let settle = |outcome| {
            if let Some(leader) = &leader {
                leader.settle(outcome);
            }
        };
        let on_error = |stale: &Arc<Entry<V>>| {
            settle(Outcome::Entry(Arc::clone(stale)));
            let ttl = crate::engine::ttl_seconds(stale, Timestamp::now());
            (Ok(stale.value().clone()), Served::StaleOnError(ttl))
        };
        let value = match engine.call_upstream(fallback.as_ref(), compute()).await {
            Ok(Ok(value)) => value,
            Ok(Err(error)) => match &fallback {
                None => {
                    settle(Outcome::Failed(share(&error).map(shared)));
                    return (Err(error), Served::Computed);
                }
                Some(stale) => {
                    engine.served_stale_on_error(&key, &"the computation failed");
                    return on_error(stale);
                }
            },
            Err(stale) => {
                engine.served_stale_on_error(&key, &"the computation timed out");
                return on_error(stale);
            }
        };
        let entry = Arc::new(self.entry(value.clone()));
        match &leader {
            Some(leader) => engine.settle_and_store(&key, leader, entry).await,
            None => engine.store(&key, entry, since).await,
        }
        (Ok(value), Served::Computed)
    }

    /// Starts the auto-refresh task once.
    fn start_checker(&self, hot: &Arc<HotKeys<Recompute<V>>>) {
        if !hot.claim_checker() {
            return;
        }
        let cache = self.clone();
        spawn_checker(hot, move |hot| {
            let cache = cache.clone();
            async move {
                let interval = hot.config.check_interval;
                for (key, recompute) in hot.hot_keys() {
                    if !cache.engine.due_within(&key, interval).await {
                        continue;
                    }
                    let (task_cache, task_key) = (cache.clone(), key.clone());
                    cache
                        .engine
                        .refresh_on(&hot.offload, key, move |leader| async move {
                            let entry = Arc::new(task_cache.entry(recompute().await?));
                            let engine = &task_cache.engine;
                            engine.settle_and_store(&task_key, &leader, entry).await;
                            Ok(())
                        });
                }
            }
        });
    }

    /// Refreshes `key` with `compute` in the background.
    fn refresh_in_background<F, Fut, E>(&self, key: Key, compute: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Send + 'static,
    {
        let cache = self.clone();
        let task_key = key.clone();
        self.engine.refresh(key, move |leader| async move {
            match compute().await {
                Ok(value) => {
                    let entry = Arc::new(cache.entry(value));
                    cache
                        .engine
                        .settle_and_store(&task_key, &leader, entry)
                        .await;
                    Ok(())
                }
                Err(_) => Err("the computation failed".into()),
            }
        });
    }

    /// The value under `key`, if the cache holds a servable one; never computes.
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// assert_eq!(cache.get("k").await, None, "never computes");
    /// cache.insert("k", 1).await;
    /// assert_eq!(cache.get("k").await, Some(1));
    /// # }
    /// ```
    pub async fn get(&self, key: impl CacheKey) -> Option<V> {
        let looked = self.with_key(key, |key| self.look_now(key));
        match looked {
            Now::Served(value, ..) => Some(value),
            Now::Missing(..) => None,
            Now::Elsewhere(key) => match self.look_later(&key).await {
                Looked::Served(value, ..) => Some(value),
                Looked::Missing(_) => None,
            },
        }
    }

    /// Stores `value` under `key` with the cache's ttl and stale window.
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// cache.insert(("answer", 1u8), 42).await;
    /// assert_eq!(cache.get(("answer", 1u8)).await, Some(42));
    /// # }
    /// ```
    pub async fn insert(&self, key: impl CacheKey, value: V) {
        let key = self.key(key);
        let since = self.engine.fence.epoch();
        self.engine
            .store(&key, Arc::new(self.entry(value)), since)
            .await;
    }

    /// Removes the entry under `key` from every tier of the backend; see
    /// [`invalidate`](crate::invalidate). Counted in [`stats`](Cache::stats); a tier's failure
    /// is returned (and counted, and logged).
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// cache.insert("k", 1).await;
    /// assert_eq!(cache.invalidate("k").await.unwrap().entries, Some(1));
    /// assert_eq!(cache.get("k").await, None);
    /// # }
    /// ```
    pub async fn invalidate(
        &self,
        key: impl CacheKey,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        self.invalidate_key(&self.key(key)).await
    }

    /// Marks the entry under `key` stale in every tier instead of removing it (a soft purge, as
    /// Fastly's): the next caller computes it again, while callers whose computation fails
    /// inside the [stale-if-error](CacheBuilder::stale_if_error) window are still answered
    /// with it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default())
    ///     .stale_if_error(Duration::from_secs(300))
    ///     .build()
    ///     .unwrap();
    /// cache.insert("k", 1).await;
    /// assert_eq!(cache.soft_invalidate("k").await.unwrap().entries, Some(1));
    /// assert_eq!(cache.get("k").await, None, "no longer served as it is");
    /// let down = cache.try_get_or_compute("k", || async { Err::<u32, _>("db down") }).await;
    /// assert_eq!(down, Ok(1), "but still when the computation fails");
    /// # }
    /// ```
    pub async fn soft_invalidate(
        &self,
        key: impl CacheKey,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        self.soft_invalidate_key(&self.key(key)).await
    }

    /// Marks the entry under a full key stale. For code generated by `#[cached_handler]`.
    #[doc(hidden)]
    pub async fn soft_invalidate_key(
        &self,
        key: &Key,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        self.engine.soft_invalidate(key).await
    }

    /// Removes every entry of this cache whose key matches `pattern`, a glob (`*`, `?`,
    /// `[a-z]`, `\` as in Redis's `SCAN … MATCH`) over the key as given to
    /// [`get_or_compute`](Cache::get_or_compute) and friends, from every tier: memory tiers scan
    /// their entries, Redis scans its keys (see `Redis::redis_key`,
    /// feature `redis`). A tier that cannot enumerate its keys is an error of kind
    /// [`Unsupported`](crate::BackendErrorKind::Unsupported). Long or binary key parts are
    /// matched by a hash (see [`Key::readable`]), so patterns are for readable keys.
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// for (key, value) in [("users:1", 1), ("users:2", 2), ("teams:1", 3)] {
    ///     cache.insert(key, value).await;
    /// }
    /// assert_eq!(cache.invalidate_pattern("users:*").await.unwrap().entries, Some(2));
    /// assert_eq!(cache.get("teams:1").await, Some(3));
    /// # }
    /// ```
    pub async fn invalidate_pattern(
        &self,
        pattern: &str,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        let full = self.pattern(pattern);
        self.engine
            .purge(Selection::Pattern(&full), Purge::Remove)
            .await
    }

    /// Removes every entry of this cache (its namespace and kind of value) from every tier that
    /// can enumerate its keys; entries of other caches sharing the store stay.
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// cache.insert("a", 1).await;
    /// cache.insert("b", 2).await;
    /// assert_eq!(cache.clear().await.unwrap().entries, Some(2));
    /// # }
    /// ```
    pub async fn clear(&self) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        self.invalidate_pattern("*").await
    }

    /// A handle on this cache that tags every entry it stores with `tags`, besides the
    /// builder's [`tags`](CacheBuilder::tags): per-call tags, for
    /// [`invalidate_tags`](Cache::invalidate_tags). Cheap (a few reference counts); it shares
    /// everything else with this handle.
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pages: Cache<String, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// for (user, page) in [(1, "home"), (1, "posts"), (2, "home")] {
    ///     pages
    ///         .with_tags([format!("user:{user}")])
    ///         .get_or_compute(format!("{user}/{page}"), move || async move { format!("{page} of {user}") })
    ///         .await;
    /// }
    /// assert_eq!(pages.invalidate_tags(["user:1"]).await.unwrap().entries, Some(2));
    /// assert_eq!(pages.get("2/home").await.as_deref(), Some("home of 2"));
    /// # }
    /// ```
    pub fn with_tags<T: Into<Arc<str>>>(&self, tags: impl IntoIterator<Item = T>) -> Cache<V, B> {
        let mut all: Vec<Arc<str>> = self.tags.as_deref().unwrap_or(&[]).to_vec();
        all.extend(tags.into_iter().map(Into::into));
        Cache {
            tags: (!all.is_empty()).then(|| Arc::from(all)),
            ..self.clone()
        }
    }

    /// Removes every entry carrying any of `tags` from every tier: an index per tag in each
    /// store, so the cost is the tagged entries', not the store's size. Tags name data, not a
    /// cache: every cache sharing the store loses its entries with these tags (an HTTP layer's
    /// and a typed cache's alike). A computation under way when this runs does not store its
    /// result. Counted in [`stats`](Cache::stats).
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let users: Cache<String, Moka> = Cache::builder(Moka::default()).tags(["users"]).build().unwrap();
    /// users.insert("42", "Ada".to_owned()).await;
    /// assert_eq!(users.invalidate_tags(["users"]).await.unwrap().entries, Some(1));
    /// assert_eq!(users.get("42").await, None);
    /// # }
    /// ```
    pub async fn invalidate_tags<T: Into<Arc<str>>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        self.engine.purge_tags(tags, Purge::Remove).await
    }

    /// [`invalidate_tags`](Cache::invalidate_tags) for one tag.
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u8, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// assert_eq!(cache.invalidate_tag("users").await.unwrap().entries, Some(0));
    /// # }
    /// ```
    pub async fn invalidate_tag(
        &self,
        tag: &str,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        self.invalidate_tags([tag]).await
    }

    /// Marks every entry carrying any of `tags` stale in every tier instead of removing it (a
    /// soft purge; see [`soft_invalidate`](Cache::soft_invalidate)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default())
    ///     .stale_if_error(Duration::from_secs(300))
    ///     .build()
    ///     .unwrap();
    /// cache.with_tags(["t"]).insert("k", 1).await;
    /// assert_eq!(cache.soft_invalidate_tags(["t"]).await.unwrap().entries, Some(1));
    /// assert_eq!(cache.get("k").await, None);
    /// let down = cache.try_get_or_compute("k", || async { Err::<u32, _>("db down") }).await;
    /// assert_eq!(down, Ok(1));
    /// # }
    /// ```
    pub async fn soft_invalidate_tags<T: Into<Arc<str>>>(
        &self,
        tags: impl IntoIterator<Item = T>,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        self.engine.purge_tags(tags, Purge::MarkStale).await
    }

    /// Marks every entry of this cache whose key matches `pattern` stale in every tier instead
    /// of removing it (a soft purge; the pattern as for
    /// [`invalidate_pattern`](Cache::invalidate_pattern)).
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// cache.insert("users:1", 1).await;
    /// assert_eq!(cache.soft_invalidate_pattern("users:*").await.unwrap().entries, Some(1));
    /// assert_eq!(cache.get("users:1").await, None);
    /// # }
    /// ```
    pub async fn soft_invalidate_pattern(
        &self,
        pattern: &str,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        let full = self.pattern(pattern);
        self.engine
            .purge(Selection::Pattern(&full), Purge::MarkStale)
            .await
    }

    /// `pattern` over this cache's keys, as a glob over full readable keys.
    fn pattern(&self, pattern: &str) -> String {
        format!("{}:{pattern}", glob_escape(&self.prefix.readable()))
    }

    /// Removes the entry under a full key. For code generated by `#[cached_handler]`.
    #[doc(hidden)]
    pub async fn invalidate_key(
        &self,
        key: &Key,
    ) -> Result<crate::Invalidated, layercake_backends::BackendError> {
        self.engine.invalidate(key).await
    }

    /// The cache's counters.
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// cache.get_or_compute("k", || async { 1 }).await;
    /// cache.get_or_compute("k", || async { 1 }).await;
    /// let stats = cache.stats();
    /// assert_eq!((stats.misses, stats.hits, stats.stores), (1, 1, 1));
    /// # }
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.engine.stats.snapshot()
    }

    /// How many requests each storage tier answered (fresh or stale), the memory tier first.
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u64, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// cache.get_or_compute("k", || async { 1 }).await;
    /// cache.get_or_compute("k", || async { 1 }).await;
    /// let tiers = cache.tier_hits();
    /// assert_eq!((tiers[0].tier, tiers[0].hits), ("moka", 1));
    /// # }
    /// ```
    pub fn tier_hits(&self) -> Vec<crate::TierHits> {
        self.engine.stats.tier_hits(self.engine.peek_tier)
    }

    /// Hands the cache's counters to the `metrics` recorder, labelled with its namespace
    /// (feature `metrics`; see [`metrics`](crate::metrics)).
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u64, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// cache.publish_metrics().await;
    /// # }
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub async fn publish_metrics(&self)
    where
        B: Backend<V>,
    {
        let health = self.health().await;
        crate::metrics::publish(&self.engine.name, &self.stats(), &self.tier_hits(), &health);
    }

    /// How the cache's storage tiers are doing (see [`Backend::health`]).
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// let health = cache.health().await;
    /// assert!(health.up);
    /// assert_eq!(health.tiers[0].name, "moka");
    /// # }
    /// ```
    pub async fn health(&self) -> crate::Health {
        crate::Health::of(self.engine.backend.health().await)
    }

    /// The backend this cache stores in.
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<u32, Moka> = Cache::builder(Moka::with_max_bytes(1 << 20)).build().unwrap();
    /// assert_eq!(cache.backend().max_bytes(), 1 << 20);
    /// # }
    /// ```
    pub fn backend(&self) -> &B {
        &self.engine.backend
    }

    fn entry(&self, value: V) -> Entry<V> {
        let weight = (self.weigher)(&value);
        let policy = &self.engine.policy;
        let entry = match (self.lifetime)(&value) {
            // A value with a lifetime of its own (a negative entry): that ttl, no stale window.
            Some(ttl) => Entry::new(value, Timestamp::now(), ttl, std::time::Duration::ZERO),
            None => policy.entry(value, policy.ttl, policy.stale),
        };
        let entry = match &self.tags {
            Some(tags) => entry.with_tags(Arc::clone(tags)),
            None => entry,
        };
        entry.with_weight(weight)
    }

    /// The manager of this cache's background refreshes.
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    /// let cache: Cache<u8, Moka> = Cache::builder(Moka::default()).build().unwrap();
    /// assert_eq!(cache.offload().stats().completed, 0);
    /// ```
    pub fn offload(&self) -> &crate::offload::OffloadManager {
        &self.engine.offload
    }
}

// No bounds here: a backend that cannot hold `V` (a byte tier without a codec for it) is
// refused by `build`, with the trait's own message, not by every setter.
impl<V, B, W> CacheBuilder<V, B, W> {
    policy_setters!("caller");

    /// How many bytes a value occupies, for the byte budget of in-memory stores: its own size
    /// and the heap it owns. Default: [`GetSize::get_size`](crate::GetSize::get_size); types
    /// without `GetSize` need one (see [`weigh`](crate::weigh)).
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// #[derive(Clone)]
    /// struct Page { html: std::sync::Arc<str> }
    ///
    /// let cache: Cache<Page, Moka> = Cache::builder(Moka::default())
    ///     .weigher(|page: &Page| std::mem::size_of::<Page>() + 16 + page.html.len())
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn weigher(self, weigher: fn(&V) -> usize) -> CacheBuilder<V, B, fn(&V) -> usize> {
        CacheBuilder {
            backend: self.backend,
            policy: self.policy,
            namespace: self.namespace,
            weigher,
            lifetime: self.lifetime,
            tags: self.tags,
            updates: self.updates,
            _value: PhantomData,
        }
    }

    /// Stores `tags` with every entry, for invalidation by tag (the list is shared by the
    /// entries, not copied). Default: none.
    ///
    /// ```
    /// # use layercake::{Cache, Moka};
    /// let users: Cache<String, Moka> = Cache::builder(Moka::default())
    ///     .tags(["users", "accounts"])
    ///     .build()
    ///     .unwrap();
    /// # drop(users);
    /// ```
    pub fn tags<T: Into<Arc<str>>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// In a [fleet](crate::fleet), announces each value this cache stores with the value itself
    /// (postcard, in the checked envelope: about 150 bytes plus the key and the value) when
    /// that takes at most `max_bytes`: the other
    /// instances that hold the key replace their memory copy with it instead of dropping it,
    /// and keep serving it from memory. For small hot values; larger ones are announced as
    /// usual. Default: off (announcements name the key only).
    ///
    /// ```no_run
    /// # use layercake::{Cache, Moka, Redis, compose::Compose, fleet::Fleet};
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// let fleet = Fleet::builder().start(&redis)?;
    /// let rates: Cache<f64, Compose<Moka, Redis>> =
    ///     Cache::builder(Compose::new(Moka::default(), redis))
    ///         .fleet(fleet)
    ///         .fleet_updates(1024)
    ///         .build()?;
    /// # drop(rates); Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn fleet_updates(mut self, max_bytes: usize) -> Self
    where
        crate::codec::Postcard: crate::codec::Format<V>,
    {
        self.updates = Some(crate::fleet::Updates::postcard(max_bytes));
        self
    }

    /// Gives some values a ttl of their own (no stale window), e.g. error responses cached
    /// briefly. For code generated by `#[cached_handler]` (`negative_ttl`).
    #[doc(hidden)]
    pub fn lifetime(mut self, lifetime: fn(&V) -> Option<std::time::Duration>) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Builds the cache, or says what is wrong with the configuration.
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// let zero = Cache::<u32, Moka>::builder(Moka::default()).ttl(Duration::ZERO).build();
    /// assert!(matches!(zero, Err(layercake::BuildError::ZeroTtl)));
    /// # }
    /// ```
    pub fn build(self) -> Result<Cache<V, B>, BuildError>
    where
        V: Clone + Send + Sync + 'static,
        B: Backend<V>,
        W: Weigher<V>,
    {
        let prefix = self.policy.validate(&self.namespace, KEY_SCHEMA)?;
        let hot = self
            .policy
            .auto_refresh
            .clone()
            .map(|c| Arc::new(HotKeys::new(c)));
        Ok(Cache {
            engine: Engine::start(self.backend, self.policy, self.updates, &self.namespace)?,
            prefix,
            weigher: self.weigher.into_fn(),
            lifetime: self.lifetime,
            tags: (!self.tags.is_empty()).then(|| Arc::from(self.tags)),
            hot,
        })
    }

    /// Builds an [`InlineCache`]: one whose computations may borrow, because it never runs
    /// them in the background. A setting that would (`stale_policy(Offload…)`,
    /// `refresh_before`, `auto_refresh`) is an error that names it.
    ///
    /// ```
    /// use layercake::{BuildError, Cache, Moka, StalePolicy};
    ///
    /// let inline = Cache::<u32, Moka>::builder(Moka::default()).build_inline();
    /// assert!(inline.is_ok());
    /// let refreshing = Cache::<u32, Moka>::builder(Moka::default())
    ///     .stale(std::time::Duration::from_secs(60))
    ///     .stale_policy(StalePolicy::OffloadRevalidate)
    ///     .build_inline();
    /// assert_eq!(refreshing.unwrap_err(), BuildError::BackgroundRefresh("stale_policy"));
    /// ```
    pub fn build_inline(self) -> Result<InlineCache<V, B>, BuildError>
    where
        V: Clone + Send + Sync + 'static,
        B: Backend<V>,
        W: Weigher<V>,
    {
        let policy = &self.policy;
        if policy.stale_policy != crate::StalePolicy::Return
            && policy.stale_policy != crate::StalePolicy::Revalidate
        {
            return Err(BuildError::BackgroundRefresh("stale_policy"));
        }
        if policy.refresh_before.is_some() {
            return Err(BuildError::BackgroundRefresh("refresh_before"));
        }
        if policy.auto_refresh.is_some() {
            return Err(BuildError::BackgroundRefresh("auto_refresh"));
        }
        self.build().map(InlineCache)
    }
}

/// A typed cache that never computes in the background, so its computations may borrow:
/// [`get_with`](InlineCache::get_with) takes a future, as moka's `get_with` does, where
/// [`Cache::get_or_compute`] takes a `'static` closure it may run again to refresh a value. Made
/// by [`CacheBuilder::build_inline`], which refuses the settings that recompute in the
/// background (`stale_policy(Offload…)`, `refresh_before`, `auto_refresh`); everything else is a
/// [`Cache`]'s (it derefs to one): single-flight, stale windows served or recomputed inline,
/// stale-if-error, tiers, invalidation.
///
/// ```
/// use layercake::{Cache, InlineCache, Moka};
///
/// struct Db { rows: Vec<String> }
///
/// impl Db {
///     async fn load(&self, id: usize) -> String { self.rows[id].clone() }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let db = Db { rows: vec!["Ada".into(), "Grace".into()] };
/// let names: InlineCache<String, Moka> = Cache::builder(Moka::default()).build_inline().unwrap();
/// // The future borrows `db`: no `Arc`, no `'static`.
/// let name = names.get_with(1u64, db.load(1)).await;
/// assert_eq!(name, "Grace");
/// assert_eq!(names.get_with(1u64, db.load(0)).await, "Grace", "from the cache");
/// # }
/// ```
pub struct InlineCache<V, B>(Cache<V, B>);

impl<V, B> std::ops::Deref for InlineCache<V, B> {
    type Target = Cache<V, B>;

    fn deref(&self) -> &Cache<V, B> {
        &self.0
    }
}

impl<V, B: Clone> Clone for InlineCache<V, B> {
    fn clone(&self) -> Self {
        InlineCache(self.0.clone())
    }
}

impl<V, B> fmt::Debug for InlineCache<V, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InlineCache").field(&self.0).finish()
    }
}

impl<V, B> InlineCache<V, B>
where
    V: Clone + Send + Sync + 'static,
    B: Backend<V>,
{
    /// The value under `key`, or what `init` gives (then stored and shared with the callers
    /// that asked for it meanwhile; `init` runs only when this caller computes, and may borrow
    /// anything).
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let config = String::from("v2");
    /// let cache = Cache::<String, Moka>::builder(Moka::default()).build_inline().unwrap();
    /// let value = cache.get_with("config", async { config.clone() }).await;
    /// assert_eq!(value, "v2");
    /// # }
    /// ```
    pub async fn get_with(&self, key: impl CacheKey, init: impl Future<Output = V>) -> V {
        let result = self
            .try_get_with(key, async { Ok::<V, Infallible>(init.await) })
            .await;
        match result {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`get_with`](Self::get_with) for a fallible `init`: an `Err` is not stored, and is
    /// handed to the callers waiting on it (a clone each); a stale entry inside its
    /// stale-if-error window answers instead, as for [`Cache::try_get_or_compute`].
    ///
    /// ```
    /// use layercake::{Cache, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = Cache::<u32, Moka>::builder(Moka::default()).build_inline().unwrap();
    /// let failed = cache.try_get_with("k", async { Err::<u32, _>("down") }).await;
    /// assert_eq!(failed, Err("down"));
    /// # }
    /// ```
    pub async fn try_get_with<E>(
        &self,
        key: impl CacheKey,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E>
    where
        E: Clone + Send + 'static,
    {
        let cache = &self.0;
        let looked = cache.with_key(key, |key| cache.look_now(key));
        // Nothing refreshes in the background here: `build_inline` refused what would.
        let (key, fallback) = match looked {
            Now::Served(value, ..) => return Ok(value),
            Now::Missing(key, fallback) => (key, fallback),
            Now::Elsewhere(key) => match cache.look_later(&key).await {
                Looked::Served(value, ..) => return Ok(value),
                Looked::Missing(fallback) => (key, fallback),
            },
        };
        let share = |error: &E| Some(error.clone());
        Box::pin(cache.compute_and_store(key, fallback, move || init, share))
            .await
            .0
    }
}

/// How a value was served, for the `Cache-Status` of `#[cached_handler]` responses.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// From the cache, this many seconds fresh (negative: stale by that much), from this tier
    /// when known.
    Hit(i64, Option<&'static str>),
    /// Stale, served at once while it is refreshed in the background, from this tier.
    StaleRefreshing(i64, &'static str),
    /// Stale, served because the computation failed or timed out.
    StaleOnError(i64),
    /// Another caller's computation, waited for.
    Collapsed,
    /// Computed by this caller.
    Computed,
}
