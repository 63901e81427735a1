use std::{future::Future, sync::Arc};

use crate::{BackendError, BackendErrorKind, Entry, Key, KeyRef, Timestamp};

/// The result of reading a key: the entry, if there is one, or the tier's error.
///
/// ```
/// use layercake_backends::{Backend, Key, Lookup, Moka};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let found: Lookup<u8> = Moka::default().get(&Key::from_parts(["k"])).await;
/// assert!(matches!(found, Ok(None)));
/// # }
/// ```
pub type Lookup<V> = Result<Option<Arc<Entry<V>>>, BackendError>;

/// A storage tier: a store, or a composition of stores. [`Backend`] requires it; on its own it
/// lets a composition name its tiers in its type, so that `Compose<Moka, String>` is an error
/// where it is written.
///
/// ```
/// use layercake_backends::{Moka, Tier};
///
/// fn assert_tier<T: Tier>() {}
/// assert_tier::<Moka>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a storage tier",
    label = "not a storage tier",
    note = "a tier is a store such as `Moka` or `Redis`, or a `Compose` of tiers; a store of your own implements `Tier` and `Backend<V>`"
)]
pub trait Tier: Clone + Send + Sync + 'static {}

/// A storage tier for entries holding values of type `V`.
///
/// Methods are `async` in effect and return `impl Future + Send`: no `async_trait`, no boxing,
/// static dispatch. A tier holds entries behind `Arc` (in-memory tiers keep the `Arc` itself,
/// so a hit is a reference-count increment) and keeps each one for its
/// [`time_to_live`](Entry::time_to_live); whether an entry is fresh is the engine's call, made
/// from the entry's own times.
///
/// A backend is a cheap handle (`Clone`, an `Arc` inside), so the engine can hand it to
/// background work. One store may implement `Backend<V>` for many `V`: [`Moka`](crate::Moka)
/// does for every `V: Send + Sync + 'static`, so one memory budget can serve an HTTP layer and
/// typed caches side by side.
///
/// # Implementing a store
///
/// ```
/// use std::{collections::HashMap, future::{ready, Future}, sync::{Arc, Mutex}};
/// use layercake_backends::{Backend, BackendError, Entry, Key, KeyRef, Lookup, Tier};
///
/// /// A toy store: one `HashMap` behind a lock.
/// #[derive(Clone, Default)]
/// struct MapStore(Arc<Mutex<HashMap<Key, Arc<Entry<String>>>>>);
///
/// impl Tier for MapStore {}
///
/// impl Backend<String> for MapStore {
///     fn get(&self, key: &Key) -> impl Future<Output = Lookup<String>> + Send {
///         ready(Ok(self.0.lock().unwrap().get(key).cloned()))
///     }
///     fn set(&self, key: &Key, entry: Arc<Entry<String>>)
///         -> impl Future<Output = Result<(), BackendError>> + Send {
///         self.0.lock().unwrap().insert(key.clone(), entry);
///         ready(Ok(()))
///     }
///     fn remove(&self, key: &Key) -> impl Future<Output = Result<(), BackendError>> + Send {
///         self.0.lock().unwrap().remove(key);
///         ready(Ok(()))
///     }
///     fn clear(&self) -> impl Future<Output = Result<(), BackendError>> + Send {
///         self.0.lock().unwrap().clear();
///         ready(Ok(()))
///     }
///     // An in-memory store can answer at once: the HTTP layer then serves a hit
///     // without any future at all. (A map keyed by `Key` makes the borrowed key one to
///     // look it up; moka and hashbrown take a `KeyRef` as it is.)
///     fn peek(&self, key: KeyRef<'_>) -> Option<Lookup<String>> {
///         Some(Ok(self.0.lock().unwrap().get(&key.to_key()).cloned()))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a layercake backend for values of type `{V}`",
    label = "this is not a `Backend<{V}>`",
    note = "a backend is a store such as `Moka`, or a stack of stores composed with `Compose`; byte stores also need a codec for `{V}`"
)]
pub trait Backend<V>: Tier {
    /// Reads the entry stored under `key`.
    fn get(&self, key: &Key) -> impl Future<Output = Lookup<V>> + Send;

    /// Stores `entry` under `key`, replacing what was there, for the entry's
    /// [`time_to_live`](Entry::time_to_live).
    fn set(
        &self,
        key: &Key,
        entry: Arc<Entry<V>>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Stores `entry`, read from a lower tier of a composition, under `key` (a refill: see
    /// `layercake::compose`). Unlike [`set`](Backend::set), a memory tier refuses it when a
    /// change heard since (see [`forget`](Backend::forget)) covers the key and the entry was
    /// stored before that change: the lower tier was read just before the change reached it.
    /// The default is [`set`](Backend::set).
    fn refill(
        &self,
        key: &Key,
        entry: Arc<Entry<V>>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        self.set(key, entry)
    }

    /// Removes the entry under `key`, if any.
    fn remove(&self, key: &Key) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Removes every entry.
    fn clear(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Removes the entry under `key` and says how many entries the store held there (0 or 1;
    /// `None` when it cannot tell). The default removes and cannot tell; stores that can
    /// (Moka, Redis, a `Compose` of them) override it.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use layercake_backends::{Backend, Entry, Key, Moka, Timestamp};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = Moka::default();
    /// let key = Key::from_parts(["k"]);
    /// let entry = Entry::new(1u8, Timestamp::now(), Duration::from_secs(9), Duration::ZERO);
    /// store.set(&key, Arc::new(entry)).await.unwrap();
    /// let removed = <Moka as Backend<u8>>::remove_counted(&store, &key).await.unwrap();
    /// assert_eq!(removed, Some(1));
    /// let again = <Moka as Backend<u8>>::remove_counted(&store, &key).await.unwrap();
    /// assert_eq!(again, Some(0));
    /// # }
    /// ```
    fn remove_counted(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<Option<u64>, BackendError>> + Send {
        let removed = self.remove(key);
        async move { removed.await.map(|()| None) }
    }

    /// Removes every entry `selection` selects (by tag, or by a pattern over the readable
    /// key) and says how many it removed (`None` when it cannot tell). Stores implement what
    /// they can do without scanning more than they must: Moka keeps an index of its tagged
    /// entries and scans its keys for a pattern; Redis keeps a set per tag and `SCAN`s with
    /// `MATCH`. The default says it cannot.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use layercake_backends::{Backend, Entry, Key, Moka, Selection, Timestamp};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = Moka::default();
    /// let tags: Arc<[Arc<str>]> = Arc::from([Arc::from("user:42")]);
    /// for key in ["profile/42", "posts/42"] {
    ///     let entry = Entry::new(1u8, Timestamp::now(), Duration::from_secs(9), Duration::ZERO)
    ///         .with_tags(Arc::clone(&tags));
    ///     store.set(&Key::from_parts([key]), Arc::new(entry)).await.unwrap();
    /// }
    /// let removed = <Moka as Backend<u8>>::remove_selected(&store, Selection::Tags(&tags));
    /// assert_eq!(removed.await.unwrap(), Some(2));
    /// # }
    /// ```
    fn remove_selected(
        &self,
        selection: Selection<'_>,
    ) -> impl Future<Output = Result<Option<u64>, BackendError>> + Send {
        std::future::ready(Err(selection.unsupported(self.name(), "remove")))
    }

    /// Marks every entry `selection` selects stale from `now` on (a soft purge, see
    /// [`Entry::mark_stale`]) and says how many it marked (`None` when it cannot tell): they
    /// are revalidated before they are served again, and still served when the upstream fails
    /// inside their stale-if-error window. The default says it cannot.
    fn mark_stale_selected(
        &self,
        selection: Selection<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<u64>, BackendError>> + Send {
        let _ = now;
        std::future::ready(Err(selection.unsupported(self.name(), "mark stale")))
    }

    /// Lets go of what another instance changed, in the tiers private to this process (memory):
    /// what an instance does when the fleet announces a change (see `layercake::fleet`).
    /// Shared tiers (Redis) hold the change already and do nothing; a `Compose` passes it to
    /// both tiers. The default does nothing.
    ///
    /// A memory tier also remembers the change for a few seconds and refuses a
    /// [refill](Backend::refill) of an entry stored before it: a refill from the shared tier,
    /// read just before the change reached it, would otherwise bring back what the change took
    /// out.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use layercake_backends::{Backend, Entry, Forget, Key, Moka, Timestamp};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = Moka::default();
    /// let key = Key::from_parts(["k"]);
    /// let entry = Entry::new(1u8, Timestamp::now(), Duration::from_secs(9), Duration::ZERO);
    /// store.set(&key, Arc::new(entry)).await.unwrap();
    /// <Moka as Backend<u8>>::forget(&store, Forget::Key(&key, Timestamp::now()));
    /// assert!(<Moka as Backend<u8>>::get(&store, &key).await.unwrap().is_none());
    /// # }
    /// ```
    fn forget(&self, what: Forget<'_>) {
        let _ = what;
    }

    /// Replaces, in the tiers private to this process that hold an entry under `key`, that
    /// entry with `entry`, which another instance stored (the fleet's "update" announcements,
    /// for small hot values: the others keep serving from memory, the new value). Tiers that do
    /// not hold the key stay as they are. The default does nothing.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use layercake_backends::{Backend, Entry, Key, Moka, Timestamp};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = Moka::default();
    /// let key = Key::from_parts(["k"]);
    /// let entry = |v| Arc::new(Entry::new(v, Timestamp::now(), Duration::from_secs(9), Duration::ZERO));
    /// store.set(&key, entry(1u8)).await.unwrap();
    /// store.replace_local(&key, entry(2u8));
    /// let held: Option<Arc<Entry<u8>>> = store.get(&key).await.unwrap();
    /// assert_eq!(*held.unwrap().value(), 2);
    /// # }
    /// ```
    fn replace_local(&self, key: &Key, entry: Arc<Entry<V>>) {
        let _ = (key, entry);
    }

    /// Reads `key` without waiting, when the tier can (in-memory tiers); `None` when it would
    /// have to wait (network or disk), in which case the caller uses [`Backend::get`].
    ///
    /// This is what lets the HTTP layer answer a memory hit synchronously, with no future to
    /// allocate. The default says "I would have to wait".
    fn peek(&self, key: KeyRef<'_>) -> Option<Lookup<V>> {
        let _ = key;
        None
    }

    /// A short name for logs and metrics.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// [`get`](Backend::get), and the name of the tier that answered: for a composition, the
    /// inner tier that held the entry (its [`peek_tier`](Backend::peek_tier) for the first
    /// tier, its [`name`](Backend::name) for the second); else this backend's name. For
    /// `Cache-Status` and per-tier counts.
    fn get_traced(&self, key: &Key) -> impl Future<Output = (Lookup<V>, &'static str)> + Send {
        let name = self.name();
        let get = self.get(key);
        async move { (get.await, name) }
    }

    /// The name of the tier [`peek`](Backend::peek) answers from: this backend's, or for a
    /// composition its first tier's.
    fn peek_tier(&self) -> &'static str {
        self.name()
    }

    /// How each of the backend's tiers is doing: Moka reports its entries and weight, Redis
    /// answers a `PING` (its latency, its breakers), a `Compose` reports both of its tiers.
    /// The default says the tier is up and nothing more.
    ///
    /// ```
    /// use layercake_backends::{Backend, Moka};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let health = <Moka as Backend<u8>>::health(&Moka::default()).await;
    /// assert!(health[0].up);
    /// assert_eq!(health[0].name, "moka");
    /// # }
    /// ```
    fn health(&self) -> impl Future<Output = Vec<TierHealth>> + Send {
        std::future::ready(vec![TierHealth::new(self.name(), true, None, "")])
    }

    /// The tags the store indexes and how many entries each lists, most listed first, at most
    /// `limit` of them (for the admin API). A store that keeps no tag index says
    /// [`Unsupported`](BackendErrorKind::Unsupported), the default.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use layercake_backends::{Backend, Entry, Key, Moka, Timestamp};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = Moka::default();
    /// let tags: Arc<[Arc<str>]> = Arc::from([Arc::from("users")]);
    /// let entry = Entry::new(1u8, Timestamp::now(), std::time::Duration::from_secs(60), Default::default());
    /// store.set(&Key::from_parts(["a"]), Arc::new(entry.with_tags(tags))).await.unwrap();
    /// let listed = <Moka as Backend<u8>>::tags(&store, 10).await.unwrap();
    /// assert_eq!(listed, [("users".to_owned(), 1)]);
    /// # }
    /// ```
    fn tags(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, u64)>, BackendError>> + Send {
        let _ = limit;
        std::future::ready(Err(BackendError::new(
            BackendErrorKind::Unsupported,
            format!("{} keeps no tag index to list", self.name()),
        )))
    }
}

/// The `limit` most listed of `tags`, most listed first (then by name): how
/// [`Backend::tags`] answers, for stores of your own.
///
/// ```
/// use layercake_backends::most_listed;
///
/// let tags = vec![("b".to_owned(), 1), ("a".to_owned(), 3), ("c".to_owned(), 1)];
/// assert_eq!(most_listed(tags, 2), [("a".to_owned(), 3), ("b".to_owned(), 1)]);
/// ```
pub fn most_listed(mut tags: Vec<(String, u64)>, limit: usize) -> Vec<(String, u64)> {
    tags.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    tags.truncate(limit);
    tags
}

/// How one storage tier is doing; see [`Backend::health`].
///
/// ```
/// use layercake_backends::{Backend, Moka};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let health = <Moka as Backend<u8>>::health(&Moka::default()).await;
/// assert_eq!((health[0].name, health[0].up, health[0].entries), ("moka", true, Some(0)));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "codec", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TierHealth {
    /// The tier's [name](Backend::name).
    pub name: &'static str,
    /// Whether it answers.
    pub up: bool,
    /// How long it took to answer, for a tier that was asked (Redis: a `PING`).
    pub latency: Option<std::time::Duration>,
    /// What else it says (its size, its breakers, why it is down).
    pub detail: String,
    /// How many entries it holds, for a tier that knows (Moka).
    pub entries: Option<u64>,
    /// How many bytes of its budget those entries weigh, for a tier that knows (Moka).
    pub bytes: Option<u64>,
    /// How many entries it pushed out to stay within its budget, for a tier that counts (Moka).
    pub evictions: Option<u64>,
}

impl TierHealth {
    /// A tier's health, for stores of your own.
    ///
    /// ```
    /// use layercake_backends::TierHealth;
    ///
    /// let health = TierHealth::new("disk", true, None, "12 entries");
    /// assert!(health.up);
    /// ```
    pub fn new(
        name: &'static str,
        up: bool,
        latency: Option<std::time::Duration>,
        detail: impl Into<String>,
    ) -> Self {
        TierHealth {
            name,
            up,
            latency,
            detail: detail.into(),
            entries: None,
            bytes: None,
            evictions: None,
        }
    }
}

/// Which entries an invalidation selects, beyond a single key; see
/// [`Backend::remove_selected`].
///
/// ```
/// use std::sync::Arc;
/// use layercake_backends::{Backend, Moka, Selection};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tags: [Arc<str>; 1] = [Arc::from("users")];
/// let removed = <Moka as Backend<u8>>::remove_selected(&Moka::default(), Selection::Tags(&tags)).await;
/// assert_eq!(removed.unwrap(), Some(0));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Selection<'a> {
    /// Every entry carrying any of these tags (see [`Entry::with_tags`]).
    Tags(&'a [Arc<str>]),
    /// Every entry whose key's [readable form](Key::readable) matches this glob, in Redis's
    /// dialect ([`glob_matches`](crate::key::glob_matches)).
    Pattern(&'a str),
}

impl Selection<'_> {
    /// Whether an entry under `readable` (a key's readable form) carrying `tags` is selected.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use layercake_backends::Selection;
    ///
    /// let tags: [Arc<str>; 1] = [Arc::from("users")];
    /// assert!(Selection::Tags(&tags).selects("app:users:1", &tags));
    /// assert!(Selection::Pattern("app:users:*").selects("app:users:1", &[]));
    /// assert!(!Selection::Pattern("app:posts:*").selects("app:users:1", &tags));
    /// ```
    pub fn selects(&self, readable: &str, tags: &[Arc<str>]) -> bool {
        match self {
            Selection::Tags(wanted) => tags.iter().any(|tag| wanted.contains(tag)),
            Selection::Pattern(pattern) => crate::key::glob_matches(pattern, readable),
        }
    }

    /// The error of a store that cannot do `what` for this selection.
    fn unsupported(&self, store: &str, what: &str) -> BackendError {
        let by = match self {
            Selection::Tags(_) => "tag",
            Selection::Pattern(_) => "pattern",
        };
        BackendError::new(
            BackendErrorKind::Unsupported,
            format!("{store} cannot {what} entries by {by}"),
        )
    }
}

/// What another instance changed, for this process's private tiers to let go of; see
/// [`Backend::forget`].
///
/// ```
/// use layercake_backends::{Backend, Forget, Moka};
/// // After a long partition, a memory tier forgets what it cannot trust.
/// <Moka as Backend<u8>>::forget(&Moka::default(), Forget::Everything);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Forget<'a> {
    /// The entry under this key was removed or replaced, at this time (the time the new entry
    /// was stored, for a replacement).
    Key(&'a Key, Timestamp),
    /// These entries were removed at this time.
    Selected(Selection<'a>, Timestamp),
    /// These entries were marked stale at this time (a soft purge).
    MarkedStale(Selection<'a>, Timestamp),
    /// Anything may have changed (this instance could not hear the fleet for a while).
    Everything,
}
