//! The embedded in-memory store, built on [moka](https://docs.rs/moka).
//!
//! [`Moka`] is the default tier: no server, no serialization. Entries are kept behind `Arc`, so
//! a hit hands out a reference count, never a copy of the value. It is bounded both by a byte
//! budget (each entry weighs what [`Entry::weight`] and its key say) and by a number of
//! entries, and each entry leaves the store when its stale window ends.
//!
//! ```
//! use layercake_backends::Moka;
//!
//! // 256 MiB and at most 100 000 entries.
//! let store = Moka::builder()
//!     .max_bytes(256 * 1024 * 1024)
//!     .max_entries(100_000)
//!     .build();
//! # drop(store);
//! ```

use std::{
    any::Any,
    collections::HashMap,
    fmt,
    future::{Future, ready},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use crate::{
    Backend, BackendError, BackendErrorKind, BuildKeyHasher, Entry, Forget, Key, KeyRef, Lookup,
    Selection, Timestamp,
};

/// What one entry costs beyond its value's weight and its key's bytes: the entry's times and
/// the `Arc` around it, the key's handle, and moka's bookkeeping (its hash table, the access
/// and write order queues, the timer wheel, the entry's atomics). Measured: 486 bytes a
/// `u64` entry under a 33-byte key, live heap by a counting allocator
/// (`cargo bench -p layercake-benches --bench memory -- overhead`).
const ENTRY_OVERHEAD: usize = 448;

/// What each tag of a tagged entry adds: the entry's place in the tag's index (a handle on its
/// key and the insertion id, in a hash map) and its share of the list the slot keeps.
const TAG_OVERHEAD: usize = 96;

/// The longest a slot is kept (about 68 years): moka's timer wheel works with `Instant`s, which
/// must never be pushed past what they can represent, whatever an entry's windows say.
const MAX_TIME_TO_LIVE: Duration = Duration::from_secs(1 << 31);

/// The in-memory store; see the [module docs](self).
///
/// A `Moka` is a handle: clones share the same entries. It implements [`Backend<V>`] for every
/// `V: Send + Sync + 'static`; reading a key with a value type other than the one stored under
/// it is an error of kind [`TypeMismatch`](BackendErrorKind::TypeMismatch), which the engine
/// counts and treats as a miss.
///
/// ```
/// use layercake_backends::Moka;
/// let store = Moka::with_max_bytes(256 << 20);
/// # drop(store);
/// ```
#[derive(Clone)]
pub struct Moka {
    cache: moka::sync::Cache<Key, Slot, BuildKeyHasher>,
    max_bytes: u64,
    max_entries: u64,
    /// The weight written since moka last caught up with its evictions.
    unsettled: Arc<AtomicU64>,
    /// Which keys carry which tag.
    index: Arc<TagIndex>,
    /// What the fleet said changed lately.
    graves: Arc<Graves>,
    /// The longest an entry is kept, whatever its windows say.
    max_time_to_live: Duration,
    /// Entries pushed out to keep the budget.
    evictions: Arc<AtomicU64>,
    /// Its name in `Cache-Status`, health and metrics.
    name: &'static str,
}

/// How long the store remembers what the fleet said changed.
const GRAVE_TIME: Duration = Duration::from_secs(5);

/// What the fleet said changed in the last [`GRAVE_TIME`], so that a write of an entry stored
/// before the change (a refill from a shared tier, read just before the change reached it)
/// cannot bring back what the change took out.
#[derive(Default)]
struct Graves {
    /// Whether anything is remembered: the only thing a write reads when nothing is.
    any: std::sync::atomic::AtomicBool,
    graves: Mutex<GraveList>,
}

#[derive(Default)]
struct GraveList {
    keys: HashMap<Key, Timestamp, BuildKeyHasher>,
    tags: HashMap<Arc<str>, Timestamp>,
    patterns: Vec<(Box<str>, Timestamp)>,
}

impl GraveList {
    fn forget_before(&mut self, horizon: Timestamp) {
        self.keys.retain(|_, at| *at >= horizon);
        self.tags.retain(|_, at| *at >= horizon);
        self.patterns.retain(|(_, at)| *at >= horizon);
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.tags.is_empty() && self.patterns.is_empty()
    }
}

impl Graves {
    fn list(&self) -> std::sync::MutexGuard<'_, GraveList> {
        self.graves.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers what changed, and when. Forgetting everything (an instance that could not
    /// hear the fleet) remembers nothing: the shared tier is right, only this one may not be.
    fn bury(&self, what: Forget<'_>) {
        let mut list = self.list();
        list.forget_before(Timestamp::now() - GRAVE_TIME);
        let later = |old: Option<Timestamp>, at: Timestamp| old.map_or(at, |old| old.max(at));
        match what {
            Forget::Key(key, at) => {
                let old = list.keys.get(key).copied();
                list.keys.insert(key.clone(), later(old, at));
            }
            Forget::Selected(selection, at) | Forget::MarkedStale(selection, at) => match selection
            {
                Selection::Tags(tags) => {
                    for tag in tags {
                        let old = list.tags.get(tag).copied();
                        list.tags.insert(Arc::clone(tag), later(old, at));
                    }
                }
                Selection::Pattern(pattern) => list.patterns.push((pattern.into(), at)),
            },
            _ => return,
        }
        self.any.store(true, Relaxed);
    }

    /// Whether `entry`, to be written under `key`, was stored before a change that covers it.
    fn refuse<V>(&self, key: &Key, entry: &Entry<V>) -> bool {
        if !self.any.load(Relaxed) {
            return false;
        }
        let now = Timestamp::now();
        let mut list = self.list();
        list.forget_before(now - GRAVE_TIME);
        if list.is_empty() {
            self.any.store(false, Relaxed);
            return false;
        }
        let stored_at = entry.stored_at();
        let older = |at: &Timestamp| stored_at < *at;
        list.keys.get(key).is_some_and(older)
            || entry
                .tags()
                .iter()
                .any(|tag| list.tags.get(tag).is_some_and(older))
            || (!list.patterns.is_empty() && {
                let readable = key.readable();
                list.patterns
                    .iter()
                    .any(|(pattern, at)| older(at) && crate::key::glob_matches(pattern, &readable))
            })
    }
}

#[derive(Clone)]
struct Slot {
    entry: Arc<dyn Any + Send + Sync>,
    weight: u32,
    time_to_live: Duration,
    /// The entry's tags, when it has some, and the id under which the index lists it.
    tagged: Option<Arc<Tagged>>,
}

struct Tagged {
    id: u64,
    tags: Arc<[Arc<str>]>,
}

/// Which keys carry which tag, so that removing a tag's entries visits those entries only.
///
/// Each listing holds the id of the slot that put it there: when a slot leaves the cache
/// (evicted, expired, replaced, removed) its listings go with it, unless a newer slot for the
/// same key has listed itself since.
#[derive(Default)]
struct TagIndex {
    shards: [Mutex<Listings>; 16],
    next_id: AtomicU64,
}

/// Each tag's keys, with the id of the slot that listed each.
type Listings = HashMap<Arc<str>, HashMap<Key, u64, BuildKeyHasher>>;

impl TagIndex {
    fn shard(&self, tag: &str) -> std::sync::MutexGuard<'_, Listings> {
        let at = xxhash_rust::xxh3::xxh3_64(tag.as_bytes()) as usize % self.shards.len();
        self.shards[at]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists `key` under each of `tags`; the id to unlist it with.
    fn link(&self, key: &Key, tags: &Arc<[Arc<str>]>) -> Arc<Tagged> {
        let id = self.next_id.fetch_add(1, Relaxed);
        for tag in tags.iter() {
            self.shard(tag)
                .entry(Arc::clone(tag))
                .or_default()
                .insert(key.clone(), id);
        }
        Arc::new(Tagged {
            id,
            tags: Arc::clone(tags),
        })
    }

    /// Takes the listings of a slot that left the cache out of the index.
    fn unlink(&self, key: &Key, tagged: &Tagged) {
        for tag in tagged.tags.iter() {
            let mut shard = self.shard(tag);
            if let Some(keys) = shard.get_mut(tag) {
                if keys.get(key) == Some(&tagged.id) {
                    keys.remove(key);
                }
                if keys.is_empty() {
                    shard.remove(tag);
                }
            }
        }
    }

    /// The keys listed under any of `tags`.
    fn keys(&self, tags: &[Arc<str>]) -> Vec<Key> {
        let mut keys = Vec::new();
        for tag in tags {
            if let Some(listed) = self.shard(tag).get(tag) {
                keys.extend(listed.keys().cloned());
            }
        }
        keys
    }

    fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }
}

/// Builds a [`Moka`] store; see [`Moka::builder`].
///
/// ```
/// use layercake_backends::Moka;
/// let store = Moka::builder().max_bytes(64 << 20).name("l1").build();
/// # drop(store);
/// ```
#[derive(Debug, Clone)]
pub struct MokaBuilder {
    max_bytes: u64,
    max_entries: u64,
    max_time_to_live: Duration,
    name: &'static str,
}

impl Moka {
    /// The default byte budget: 64 MiB.
    ///
    /// ```
    /// assert_eq!(layercake_backends::Moka::DEFAULT_MAX_BYTES, 64 << 20);
    /// ```
    pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
    /// The default bound on the number of entries: 100 000.
    ///
    /// ```
    /// assert_eq!(layercake_backends::Moka::DEFAULT_MAX_ENTRIES, 100_000);
    /// ```
    pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

    /// A store with room for `max_bytes` bytes and the default number of entries.
    ///
    /// ```
    /// let store = layercake_backends::Moka::with_max_bytes(32 * 1024 * 1024);
    /// # drop(store);
    /// ```
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        Moka::builder().max_bytes(max_bytes).build()
    }

    /// A store with room for `max_bytes` bytes: moka's own `new` takes a number of entries,
    /// so this name was easy to misread.
    #[deprecated(
        since = "0.1.1",
        note = "takes bytes, not entries: use `Moka::with_max_bytes`"
    )]
    pub fn new(max_bytes: u64) -> Self {
        Moka::with_max_bytes(max_bytes)
    }

    /// A builder with the default bounds ([`Moka::DEFAULT_MAX_BYTES`],
    /// [`Moka::DEFAULT_MAX_ENTRIES`]).
    ///
    /// ```
    /// use layercake_backends::Moka;
    /// let store = Moka::builder().max_bytes(256 << 20).max_entries(50_000).build();
    /// assert_eq!(store.max_entries(), 50_000);
    /// ```
    pub fn builder() -> MokaBuilder {
        MokaBuilder {
            max_bytes: Moka::DEFAULT_MAX_BYTES,
            max_entries: Moka::DEFAULT_MAX_ENTRIES,
            max_time_to_live: MAX_TIME_TO_LIVE,
            name: "moka",
        }
    }

    /// How many entries the store holds (after pending evictions, see
    /// [`Moka::run_pending_tasks`]).
    ///
    /// ```
    /// use layercake_backends::{Key, Moka};
    /// let store = Moka::default();
    /// store.run_pending_tasks();
    /// assert_eq!(store.entry_count(), 0);
    /// ```
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// The bytes charged to the budget by the entries held now. Every entry is charged at least
    /// `max_bytes / max_entries`, which is how one weigher enforces both bounds.
    ///
    /// ```
    /// use layercake_backends::Moka;
    /// let store = Moka::default();
    /// assert!(store.weighted_size() <= store.max_bytes());
    /// ```
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// The byte budget.
    ///
    /// ```
    /// use layercake_backends::Moka;
    /// assert_eq!(Moka::with_max_bytes(1 << 20).max_bytes(), 1 << 20);
    /// ```
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The bound on the number of entries.
    ///
    /// ```
    /// use layercake_backends::Moka;
    /// assert_eq!(Moka::default().max_entries(), Moka::DEFAULT_MAX_ENTRIES);
    /// ```
    pub fn max_entries(&self) -> u64 {
        self.max_entries
    }

    /// Runs moka's pending maintenance now (evictions, expirations). Moka does this on its own
    /// as it is used; call it to observe the bounds at an exact moment, e.g. in tests.
    ///
    /// ```
    /// use layercake_backends::Moka;
    /// let store = Moka::default();
    /// store.run_pending_tasks();
    /// assert_eq!(store.entry_count(), 0);
    /// ```
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }

    /// Removes the entry under `key`, whatever its value type.
    ///
    /// ```
    /// use layercake_backends::{Key, Moka};
    /// let store = Moka::default();
    /// store.invalidate(&Key::from_parts(["gone"]));
    /// assert_eq!(store.entry_count(), 0);
    /// ```
    pub fn invalidate(&self, key: &Key) {
        self.cache.invalidate(key);
    }

    /// Removes every entry.
    ///
    /// ```
    /// use layercake_backends::Moka;
    /// let store = Moka::default();
    /// store.invalidate_all();
    /// assert_eq!(store.entry_count(), 0);
    /// ```
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
        self.index.clear();
    }

    fn read<V: Send + Sync + 'static>(&self, key: KeyRef<'_>) -> Lookup<V> {
        let Some(slot) = self.cache.get(&key) else {
            return Ok(None);
        };
        match slot.entry.downcast::<Entry<V>>() {
            Ok(entry) => Ok(Some(entry)),
            Err(_) => Err(BackendError::new(
                BackendErrorKind::TypeMismatch,
                format!(
                    "the entry under `{key}` does not hold a `{}`",
                    std::any::type_name::<V>()
                ),
            )),
        }
    }

    fn write<V: Send + Sync + 'static>(&self, key: &Key, entry: Arc<Entry<V>>) {
        let time_to_live = entry
            .time_to_live(Timestamp::now())
            .min(self.max_time_to_live);
        if time_to_live.is_zero() {
            self.cache.invalidate(key);
            return;
        }
        // Every entry weighs at least budget/max_entries, so the byte budget also caps the count.
        let floor = self.max_bytes / self.max_entries.max(1);
        let tags = entry.tags();
        let bytes =
            entry.weight() + key.as_bytes().len() + ENTRY_OVERHEAD + tags.len() * TAG_OVERHEAD;
        let weight = (bytes as u64).max(floor).min(u32::MAX as u64) as u32;
        let tagged = entry.tag_list().map(|tags| self.index.link(key, tags));
        let slot = Slot {
            entry,
            weight,
            time_to_live,
            tagged,
        };
        self.cache.insert(key.clone(), slot);
        self.settle_evictions(u64::from(weight));
    }

    /// The keys `selection` selects: from the index for tags, by a scan for a pattern.
    fn selected(&self, selection: Selection<'_>) -> Vec<Key> {
        match selection {
            Selection::Tags(tags) => self.index.keys(tags),
            Selection::Pattern(_) => {
                let mut readable = String::new();
                self.cache
                    .iter()
                    .filter_map(|(key, slot)| {
                        key.write_readable(&mut readable);
                        let tags = slot.tagged.as_ref().map_or(&[][..], |t| &t.tags[..]);
                        selection.selects(&readable, tags).then(|| Key::clone(&key))
                    })
                    .collect()
            }
        }
    }

    /// Whether the slot under `key` is one `selection` selects (an index listing may be older
    /// than the slot now there).
    fn still_selected(selection: Selection<'_>, slot: &Slot) -> bool {
        match selection {
            Selection::Tags(_) => {
                let tags = slot.tagged.as_ref().map_or(&[][..], |t| &t.tags[..]);
                selection.selects("", tags)
            }
            Selection::Pattern(_) => true,
        }
    }

    fn remove_selected_now(&self, selection: Selection<'_>) -> u64 {
        let mut removed = 0;
        for key in self.selected(selection) {
            let result = self.cache.entry(key).and_compute_with(|found| match found {
                Some(found) if Moka::still_selected(selection, found.value()) => {
                    moka::ops::compute::Op::Remove
                }
                _ => moka::ops::compute::Op::Nop,
            });
            if matches!(result, moka::ops::compute::CompResult::Removed(_)) {
                removed += 1;
            }
        }
        removed
    }

    fn mark_stale_now<V: Send + Sync + 'static>(
        &self,
        selection: Selection<'_>,
        now: Timestamp,
    ) -> u64 {
        let mut marked = 0;
        for key in self.selected(selection) {
            let Some(slot) = self.cache.get(&key) else {
                continue;
            };
            if !Moka::still_selected(selection, &slot) {
                continue;
            }
            if let Ok(entry) = slot.entry.downcast::<Entry<V>>() {
                entry.mark_stale(now);
                marked += 1;
            }
        }
        marked
    }

    /// Moka applies writes, and evicts what they push over the budget, in batches: until it
    /// does, the entries written are held on top of the budget. Large values would make that
    /// a multiple of the budget, so once a sixteenth of the budget has been written since the
    /// last batch, the batch runs now.
    fn settle_evictions(&self, weight: u64) {
        let unsettled = self.unsettled.fetch_add(weight, Relaxed) + weight;
        if unsettled > self.max_bytes / 16 {
            self.unsettled.store(0, Relaxed);
            self.cache.run_pending_tasks();
        }
    }
}

impl Default for Moka {
    /// A store with the default bounds.
    fn default() -> Self {
        Moka::builder().build()
    }
}

impl fmt::Debug for Moka {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Moka")
            .field("max_bytes", &self.max_bytes)
            .field("max_entries", &self.max_entries)
            .field("entry_count", &self.cache.entry_count())
            .field("weighted_size", &self.cache.weighted_size())
            .finish()
    }
}

impl MokaBuilder {
    /// The byte budget: the sum of the entries' weights (value, key, bookkeeping) stays under it.
    ///
    /// ```
    /// let store = layercake_backends::Moka::builder().max_bytes(128 << 20).build();
    /// assert_eq!(store.max_bytes(), 128 << 20);
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The most entries the store keeps.
    ///
    /// ```
    /// let store = layercake_backends::Moka::builder().max_entries(1_000).build();
    /// assert_eq!(store.max_entries(), 1_000);
    /// ```
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    /// The longest the store keeps an entry, however long it stays fresh: in front of a shared
    /// tier, it bounds how long this instance can serve an entry another instance changed
    /// while this one could not hear about it. Default: as long as the entry's windows say.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::Moka;
    ///
    /// let l1 = Moka::builder().max_time_to_live(Duration::from_secs(30)).build();
    /// # drop(l1);
    /// ```
    pub fn max_time_to_live(mut self, cap: Duration) -> Self {
        self.max_time_to_live = cap.min(MAX_TIME_TO_LIVE);
        self
    }

    /// The store's name in `Cache-Status` (`hit; ttl=42; detail=l1`), health and metrics, to
    /// tell two memory tiers apart. Default: `moka`.
    ///
    /// ```
    /// use layercake_backends::{Backend, Moka};
    ///
    /// let l1 = Moka::builder().name("l1").build();
    /// assert_eq!(<Moka as Backend<String>>::name(&l1), "l1");
    /// ```
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Builds the store.
    ///
    /// ```
    /// let store = layercake_backends::Moka::builder().build();
    /// # drop(store);
    /// ```
    pub fn build(self) -> Moka {
        let index = Arc::new(TagIndex::default());
        let listings = Arc::clone(&index);
        let evictions = Arc::new(AtomicU64::new(0));
        let evicted = Arc::clone(&evictions);
        let cache = moka::sync::Cache::builder()
            .max_capacity(self.max_bytes)
            .weigher(|_key: &Key, slot: &Slot| slot.weight)
            .expire_after(SlotExpiry)
            .eviction_listener(move |key: Arc<Key>, slot: Slot, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    evicted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if let Some(tagged) = &slot.tagged {
                    listings.unlink(&key, tagged);
                }
            })
            // Keys carry a strong 128-bit hash already: no need to hash them again.
            .build_with_hasher(BuildKeyHasher::default());
        Moka {
            cache,
            max_bytes: self.max_bytes,
            max_entries: self.max_entries.max(1),
            unsettled: Arc::default(),
            index,
            graves: Arc::default(),
            max_time_to_live: self.max_time_to_live,
            evictions,
            name: self.name,
        }
    }
}

struct SlotExpiry;

impl moka::Expiry<Key, Slot> for SlotExpiry {
    fn expire_after_create(&self, _key: &Key, slot: &Slot, _now: Instant) -> Option<Duration> {
        Some(slot.time_to_live)
    }

    fn expire_after_update(
        &self,
        _key: &Key,
        slot: &Slot,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.time_to_live)
    }
}

impl crate::Tier for Moka {}

impl<V: Send + Sync + 'static> Backend<V> for Moka {
    fn get(&self, key: &Key) -> impl Future<Output = Lookup<V>> + Send {
        ready(self.read(key.as_key_ref()))
    }

    fn set(
        &self,
        key: &Key,
        entry: Arc<Entry<V>>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        self.write(key, entry);
        ready(Ok(()))
    }

    fn remove(&self, key: &Key) -> impl Future<Output = Result<(), BackendError>> + Send {
        self.cache.invalidate(key);
        ready(Ok(()))
    }

    fn remove_counted(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<Option<u64>, BackendError>> + Send {
        let held = self.cache.remove(key).is_some();
        ready(Ok(Some(u64::from(held))))
    }

    /// By tag, visits the tag's entries through the index; by pattern, scans every entry.
    fn remove_selected(
        &self,
        selection: Selection<'_>,
    ) -> impl Future<Output = Result<Option<u64>, BackendError>> + Send {
        ready(Ok(Some(self.remove_selected_now(selection))))
    }

    /// Marks the entries in place ([`Entry::mark_stale`]): no value is copied.
    fn mark_stale_selected(
        &self,
        selection: Selection<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<u64>, BackendError>> + Send {
        ready(Ok(Some(self.mark_stale_now::<V>(selection, now))))
    }

    fn clear(&self) -> impl Future<Output = Result<(), BackendError>> + Send {
        self.invalidate_all();
        ready(Ok(()))
    }

    /// Removes (or marks stale) what changed, and remembers the change for a few seconds so
    /// that a refill read before it cannot bring the old entry back.
    fn forget(&self, what: Forget<'_>) {
        self.graves.bury(what);
        match what {
            Forget::Key(key, _) => self.cache.invalidate(key),
            Forget::Selected(selection, _) => {
                self.remove_selected_now(selection);
            }
            Forget::MarkedStale(selection, at) => {
                self.mark_stale_now::<V>(selection, at);
            }
            _ => self.invalidate_all(),
        }
    }

    /// Refused when a change heard in the last few seconds covers `key` and `entry` was stored
    /// before it (see [`Backend::forget`]).
    fn refill(
        &self,
        key: &Key,
        entry: Arc<Entry<V>>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        if !self.graves.refuse(key, &entry) {
            self.write(key, entry);
        }
        ready(Ok(()))
    }

    fn replace_local(&self, key: &Key, entry: Arc<Entry<V>>) {
        self.graves.bury(Forget::Key(key, entry.stored_at()));
        if self.cache.contains_key(key) {
            self.write(key, entry);
        }
    }

    fn peek(&self, key: KeyRef<'_>) -> Option<Lookup<V>> {
        Some(self.read(key))
    }

    /// Always up; says how full it is (after its pending maintenance, so the counts are
    /// exact).
    fn health(&self) -> impl Future<Output = Vec<crate::TierHealth>> + Send {
        self.cache.run_pending_tasks();
        let (entries, bytes) = (self.cache.entry_count(), self.cache.weighted_size());
        let evictions = self.evictions.load(std::sync::atomic::Ordering::Relaxed);
        let detail = format!(
            "{entries} entries, {bytes} of {} bytes, {evictions} evicted",
            self.max_bytes
        );
        let mut health = crate::TierHealth::new(self.name, true, None, detail);
        health.entries = Some(entries);
        health.bytes = Some(bytes);
        health.evictions = Some(evictions);
        ready(vec![health])
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn tags(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, u64)>, BackendError>> + Send {
        let mut tags = Vec::new();
        for shard in &self.index.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            tags.extend(
                shard
                    .iter()
                    .filter(|(_, keys)| !keys.is_empty())
                    .map(|(tag, keys)| (tag.to_string(), keys.len() as u64)),
            );
        }
        ready(Ok(crate::backend::most_listed(tags, limit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl TagIndex {
        /// How many listings the index holds.
        fn listings(&self) -> usize {
            self.shards
                .iter()
                .map(|shard| {
                    shard
                        .lock()
                        .unwrap()
                        .values()
                        .map(HashMap::len)
                        .sum::<usize>()
                })
                .sum()
        }
    }

    fn tagged(tags: &[&str], ttl: Duration) -> Arc<Entry<u8>> {
        let tags: Arc<[Arc<str>]> = tags.iter().map(|&t| Arc::from(t)).collect();
        Arc::new(Entry::new(1u8, Timestamp::now(), ttl, Duration::ZERO).with_tags(tags))
    }

    #[test]
    fn listings_leave_with_their_entries_however_they_leave() {
        let store = Moka::default();
        let (a, b) = (Key::from_parts(["a"]), Key::from_parts(["b"]));
        let minute = Duration::from_secs(60);
        store.write(&a, tagged(&["x", "y"], minute));
        store.write(&b, tagged(&["x"], minute));
        assert_eq!(store.index.listings(), 3);

        // Replaced with other tags: the old listings go, the new ones stay.
        store.write(&a, tagged(&["z"], minute));
        store.run_pending_tasks();
        assert_eq!(store.index.listings(), 2);
        let selected = |tag: &str| {
            let tags = [Arc::from(tag)];
            let mut keys = store.selected(Selection::Tags(&tags));
            keys.sort_by_key(Key::readable);
            keys
        };
        assert_eq!(selected("x"), std::slice::from_ref(&b));
        assert_eq!(selected("z"), std::slice::from_ref(&a));

        // Removed.
        store.cache.invalidate(&b);
        store.run_pending_tasks();
        assert_eq!(store.index.listings(), 1);

        // Expired (moka's timer wheel turns in steps of about a second).
        store.write(&b, tagged(&["x"], Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(1500));
        store.run_pending_tasks();
        assert_eq!(store.index.listings(), 1, "only `a` under `z`");

        // Removed by tag.
        assert_eq!(
            store.remove_selected_now(Selection::Tags(&[Arc::from("z")])),
            1
        );
        store.run_pending_tasks();
        assert_eq!(store.index.listings(), 0);
    }

    #[test]
    fn max_time_to_live_caps_how_long_an_entry_is_kept() {
        let store = Moka::builder()
            .max_time_to_live(Duration::from_millis(1))
            .build();
        let key = Key::from_parts(["k"]);
        store.write(&key, tagged(&[], Duration::from_secs(3600)));
        assert!(store.read::<u8>(key.as_key_ref()).unwrap().is_some());
        // Moka's timer wheel turns in steps of about a second.
        std::thread::sleep(Duration::from_millis(1500));
        store.run_pending_tasks();
        assert!(
            store.read::<u8>(key.as_key_ref()).unwrap().is_none(),
            "gone long before its hour"
        );
    }

    #[test]
    fn a_refill_older_than_a_change_heard_from_the_fleet_is_refused() {
        let store = Moka::default();
        let refill = |key: &Key, entry: Entry<u8>| {
            let refilled = <Moka as Backend<u8>>::refill(&store, key, Arc::new(entry));
            // Moka answers at once: the future is ready when it is made.
            drop(refilled);
        };
        let held = |key: &Key| store.read::<u8>(key.as_key_ref()).unwrap().is_some();
        let key = Key::from_parts(["k"]);
        let hour = Duration::from_secs(3600);
        let now = Timestamp::now();
        let before = Timestamp::from_millis(now.as_millis() - 1000);
        <Moka as Backend<u8>>::forget(&store, Forget::Key(&key, now));
        refill(&key, Entry::new(1, before, hour, Duration::ZERO));
        assert!(!held(&key), "stored before the change");
        refill(&key, Entry::new(1, now, hour, Duration::ZERO));
        assert!(held(&key), "the change's own entry");
        // A store (not a refill) is the engine's, fenced there: never refused here.
        let other = Key::from_parts(["other"]);
        <Moka as Backend<u8>>::forget(&store, Forget::Key(&other, now));
        store.write(
            &other,
            Arc::new(Entry::new(1u8, before, hour, Duration::ZERO)),
        );
        assert!(held(&other));
        // Tags and patterns too.
        let users = Key::from_parts(["users", "1"]);
        let tags: Arc<[Arc<str>]> = Arc::from([Arc::from("t")]);
        <Moka as Backend<u8>>::forget(&store, Forget::Selected(Selection::Tags(&tags), now));
        <Moka as Backend<u8>>::forget(&store, Forget::Selected(Selection::Pattern("users:*"), now));
        refill(&users, Entry::new(1, before, hour, Duration::ZERO));
        assert!(!held(&users), "the pattern's grave");
        let x = Key::from_parts(["x"]);
        refill(
            &x,
            Entry::new(1, before, hour, Duration::ZERO).with_tags(tags),
        );
        assert!(!held(&x), "the tag's grave");
    }

    #[test]
    fn a_stale_listing_never_removes_an_entry_that_lost_the_tag() {
        let store = Moka::default();
        let key = Key::from_parts(["k"]);
        store.write(&key, tagged(&["old"], Duration::from_secs(60)));
        // The listing under `old` may still be there until the replaced slot is reported.
        store.write(&key, tagged(&["new"], Duration::from_secs(60)));
        assert_eq!(
            store.remove_selected_now(Selection::Tags(&[Arc::from("old")])),
            0
        );
        assert!(store.read::<u8>(key.as_key_ref()).unwrap().is_some());
    }
}
