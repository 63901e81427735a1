//! Many instances, one cache: memory tiers kept coherent across a fleet.
//!
//! Each instance of an application runs its own memory tier in front of a shared Redis
//! (`Compose<Moka, Redis>`). Without help, an instance goes on serving from memory what another
//! instance changed. A [`Fleet`] announces every change an instance makes (a store, and every
//! invalidation: key, URL, tag, pattern, soft or not) on a Redis Pub/Sub channel,
//! `<prefix>fleet`, and applies what the other instances announce to its own memory tiers
//! ([`Backend::forget`](crate::Backend::forget)): removed, marked stale, or let go of so that
//! the next read goes to the shared tier.
//!
//! ```no_run
//! use std::time::Duration;
//! use layercake::{CacheLayer, Moka, Redis, compose::Compose, fleet::Fleet};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = Redis::builder().prefix("shop:").build()?;
//! let fleet = Fleet::builder().start(&redis)?;
//! let cache = CacheLayer::builder(Compose::<Moka, Redis>::new(Moka::default(), redis))
//!     .ttl(Duration::from_secs(300))
//!     .fleet(fleet)
//!     .build()?;
//! # drop(cache); Ok(()) }
//! ```
//!
//! # When an instance cannot hear the fleet
//!
//! Pub/Sub forgets what it could not deliver: an instance whose subscription is down (its
//! connection killed, Redis restarted, a partition) misses announcements for good. So an
//! instance trusts its memory tiers only while it hears the fleet: its subscription is pinged
//! every [`heartbeat`](FleetBuilder::heartbeat); when the subscription ends or a ping goes
//! unanswered for two heartbeats, the instance empties its memory tiers, empties them again every
//! [`max_deaf`](FleetBuilder::max_deaf) while it cannot resubscribe, and once more when it has
//! resubscribed (what it stored meanwhile may have been changed elsewhere). Every announcement
//! carries its sender's sequence number: a gap (an announcement its sender could not publish)
//! empties them too. So a memory tier serves an entry that another instance changed for at
//! most about three heartbeats (the time to notice a silent connection; a closed one is
//! noticed at once) plus delivery, never for the rest of its ttl.
//!
//! A change reaching an instance also stops its own callers from storing what they computed
//! before it (the same fence as local invalidations), and the memory tier refuses for a few
//! seconds a write of an entry stored before the change (a refill from Redis read just before
//! the change reached it).

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::{BufMut, Bytes};
use futures_util::StreamExt;
use layercake_backends::{
    BackendError, BackendErrorKind, Entry, Forget, Key, Selection, Timestamp,
    codec::{Codec, Format, Postcard},
    redis::Redis,
};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use crate::{
    engine::{Announce, Purge},
    fence::Scope,
};

/// A handle on this instance's membership of a fleet; see the [module docs](self). Cheap to
/// clone; the subscription ends when the last handle (and every cache given one) is dropped.
///
/// ```no_run
/// use layercake::{Redis, fleet::Fleet};
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = Redis::builder().url("redis://127.0.0.1:6379").build()?;
/// let fleet: Fleet = Fleet::builder().start(&redis)?;
/// # drop(fleet); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Redis<Postcard>,
    channel: String,
    /// This instance's id in the fleet's announcements (random).
    id: u64,
    /// Announcements to publish, in order, by the publishing task.
    outbox: mpsc::UnboundedSender<Outgoing>,
    heard: broadcast::Sender<Arc<Heard>>,
    hearing: AtomicBool,
    counters: Arc<Counters>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    /// Whether a cold key is filled once per fleet (see [`FleetBuilder::leases`]).
    leases: bool,
    /// Callers waiting for another instance's fill of a key.
    waiting: Mutex<HashMap<Key, Arc<Notify>, layercake_backends::BuildKeyHasher>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

#[derive(Default)]
struct Counters {
    announced: AtomicU64,
    announce_errors: AtomicU64,
    heard: AtomicU64,
    flushes: AtomicU64,
    resubscriptions: AtomicU64,
    leases_taken: AtomicU64,
    lease_waits: AtomicU64,
    leases_voided: AtomicU64,
}

/// What a [`Fleet`] has done; see [`Fleet::stats`].
///
/// ```no_run
/// use layercake::{Redis, fleet::Fleet};
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = Redis::builder().url("redis://127.0.0.1:6379").build()?;
/// let fleet = Fleet::builder().start(&redis)?;
/// let stats = fleet.stats();
/// println!("{} heard, {} flushes", stats.heard, stats.flushes);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FleetStats {
    /// Changes this instance announced.
    pub announced: u64,
    /// Announcements that could not be published (Redis down): the others see a gap.
    pub announce_errors: u64,
    /// Changes heard from other instances.
    pub heard: u64,
    /// Times the memory tiers were emptied because this instance could not hear the fleet
    /// (or heard a gap).
    pub flushes: u64,
    /// Times the subscription was made again after it was lost.
    pub resubscriptions: u64,
    /// Leases this instance took to fill a key.
    pub leases_taken: u64,
    /// Times a caller on this instance waited for another instance's fill.
    pub lease_waits: u64,
    /// Results not stored because an invalidation voided their lease meanwhile.
    pub leases_voided: u64,
    /// Whether the instance hears the fleet now.
    pub hearing: bool,
}

/// Configures a [`Fleet`]; see [`Fleet::builder`].
///
/// ```no_run
/// use layercake::{Redis, fleet::Fleet};
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = Redis::builder().url("redis://127.0.0.1:6379").build()?;
/// let fleet = Fleet::builder().heartbeat(std::time::Duration::from_secs(1)).leases(true).start(&redis)?;
/// # drop(fleet); Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct FleetBuilder {
    heartbeat: Duration,
    max_deaf: Duration,
    leases: bool,
}

/// What a change was, as announced and heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The entry under this key was stored anew (the new entry's `stored_at`): others let go
    /// of their copy.
    Written(Key, Timestamp),
    /// The entry under this key was invalidated (removed or marked stale), at this time.
    Invalidated(Key, Timestamp),
    /// Entries with these tags were removed or marked stale.
    Tags(Box<[Arc<str>]>, Purge, Timestamp),
    /// Entries whose readable key matches this glob were removed or marked stale.
    Pattern(Box<str>, Purge, Timestamp),
    /// The lease on this key was given back without a result: its waiters try again.
    Released(Key),
    /// The entry under this key was stored anew, and here it is (encoded, see [`Updates`]):
    /// others holding the key replace their copy with it.
    Replaced(Key, Timestamp, Bytes),
}

/// How a cache puts the entries it stores in its announcements, so that the other instances
/// replace their memory copy instead of dropping it (see `fleet_updates` on the builders).
pub(crate) struct Updates<V> {
    encode: fn(&Key, &Entry<V>) -> Option<Vec<u8>>,
    decode: fn(&Key, Bytes) -> Option<Entry<V>>,
    max_bytes: usize,
}

impl<V> Clone for Updates<V> {
    fn clone(&self) -> Self {
        Updates { ..*self }
    }
}

impl<V> fmt::Debug for Updates<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Updates")
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl<V> Updates<V> {
    /// Entries in postcard, in the checked envelope, when they take at most `max_bytes`.
    pub(crate) fn postcard(max_bytes: usize) -> Self
    where
        Postcard: Format<V>,
    {
        Updates {
            encode: |key, entry| Codec::new(Postcard).encode(key, entry).ok(),
            decode: |key, bytes| Codec::new(Postcard).decode(key, bytes).ok(),
            max_bytes,
        }
    }

    /// The announcement of `entry`, stored under `key`: its value when it is small enough.
    pub(crate) fn announce<'a>(&self, key: &'a Key, entry: &Entry<V>) -> Announce<'a> {
        match (self.encode)(key, entry) {
            Some(bytes) if bytes.len() <= self.max_bytes => {
                Announce::Replaced(key, entry.stored_at(), bytes)
            }
            _ => Announce::Written(key, entry.stored_at()),
        }
    }

    /// The entry an announcement carries, if it reads as one of this cache's.
    pub(crate) fn entry(&self, key: &Key, bytes: &Bytes) -> Option<Entry<V>> {
        (self.decode)(key, bytes.clone())
    }
}

/// What reaches a cache from its fleet.
#[derive(Debug)]
pub(crate) enum Heard {
    /// Another instance changed this.
    Change(Change),
    /// Anything may have changed: empty the memory tiers.
    Flush,
}

impl Change {
    /// What the change is for the fence: nothing for a store (a newer store is not an
    /// invalidation of what a local caller computes).
    pub(crate) fn scope(&self) -> Option<Scope> {
        match self {
            Change::Written(..) | Change::Released(_) | Change::Replaced(..) => None,
            Change::Invalidated(key, _) => Some(Scope::Key(key.clone())),
            Change::Tags(tags, ..) => Some(Scope::Tags(tags.clone())),
            Change::Pattern(pattern, ..) => Some(Scope::Pattern(pattern.clone())),
        }
    }

    /// Applies the change to memory tiers through `forget`.
    pub(crate) fn forget(&self, forget: impl FnOnce(Forget<'_>)) {
        let selected = |selection, purge, at| match purge {
            Purge::Remove => Forget::Selected(selection, at),
            Purge::MarkStale => Forget::MarkedStale(selection, at),
        };
        match self {
            Change::Written(key, at)
            | Change::Invalidated(key, at)
            | Change::Replaced(key, at, _) => {
                forget(Forget::Key(key, *at));
            }
            Change::Tags(tags, purge, at) => forget(selected(Selection::Tags(tags), *purge, *at)),
            Change::Pattern(pattern, purge, at) => {
                forget(selected(Selection::Pattern(pattern), *purge, *at));
            }
            Change::Released(_) => {}
        }
    }

    /// The key whose fill this change may end a wait for.
    fn key(&self) -> Option<&Key> {
        match self {
            Change::Written(key, _)
            | Change::Invalidated(key, _)
            | Change::Released(key)
            | Change::Replaced(key, ..) => Some(key),
            _ => None,
        }
    }

    /// The change an engine announces.
    pub(crate) fn from(what: Announce<'_>) -> Change {
        match what {
            Announce::Written(key, at) => Change::Written(key.clone(), at),
            Announce::Invalidated(key, at) => Change::Invalidated(key.clone(), at),
            Announce::Replaced(key, at, bytes) => {
                Change::Replaced(key.clone(), at, Bytes::from(bytes))
            }
            Announce::Selected(selection, purge, at) => Change::of(selection, purge, at),
        }
    }

    /// The change made by an invalidation of `selection`.
    fn of(selection: Selection<'_>, purge: Purge, at: Timestamp) -> Change {
        match selection {
            Selection::Tags(tags) => Change::Tags(tags.into(), purge, at),
            Selection::Pattern(pattern) => Change::Pattern(pattern.into(), purge, at),
            // `Selection` may grow: anything else is taken as everything.
            #[allow(unreachable_patterns)]
            _ => Change::Pattern("*".into(), purge, at),
        }
    }
}

/// The layout version of announcements.
const VERSION: u8 = 1;

const WRITTEN: u8 = 1;
const INVALIDATED: u8 = 2;
const TAGS: u8 = 3;
const PATTERN: u8 = 4;
const RELEASED: u8 = 5;
const REPLACED: u8 = 6;

/// An announcement: version, sender, sequence number, then the change.
fn encode(id: u64, sequence: u64, change: &Change) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.put_u8(VERSION);
    out.put_u64_le(id);
    out.put_u64_le(sequence);
    let (kind, purge, at) = match change {
        Change::Written(_, at) => (WRITTEN, Purge::Remove, *at),
        Change::Invalidated(_, at) => (INVALIDATED, Purge::Remove, *at),
        Change::Tags(_, purge, at) => (TAGS, *purge, *at),
        Change::Pattern(_, purge, at) => (PATTERN, *purge, *at),
        Change::Released(_) => (RELEASED, Purge::Remove, Timestamp::from_millis(0)),
        Change::Replaced(_, at, _) => (REPLACED, Purge::Remove, *at),
    };
    out.put_u8(kind);
    out.put_u8(u8::from(purge == Purge::MarkStale));
    out.put_u64_le(at.as_millis());
    match change {
        Change::Written(key, _) | Change::Invalidated(key, _) | Change::Released(key) => {
            out.put_slice(key.as_bytes());
        }
        Change::Tags(tags, ..) => {
            for tag in tags.iter() {
                let tag = &tag.as_bytes()[..tag.len().min(u16::MAX as usize)];
                out.put_u16_le(tag.len() as u16);
                out.put_slice(tag);
            }
        }
        Change::Pattern(pattern, ..) => out.put_slice(pattern.as_bytes()),
        Change::Replaced(key, _, entry) => {
            let key = key.as_bytes();
            out.put_u32_le(key.len() as u32);
            out.put_slice(key);
            out.put_slice(entry);
        }
    }
    out
}

/// Reads an announcement: its sender, its sequence number and the change; `None` for bytes
/// that are not one (of this version).
fn decode(bytes: &[u8]) -> Option<(u64, u64, Change)> {
    let (&version, rest) = bytes.split_first()?;
    if version != VERSION {
        return None;
    }
    let (id, rest) = rest.split_first_chunk::<8>()?;
    let (sequence, rest) = rest.split_first_chunk::<8>()?;
    let (&kind, rest) = rest.split_first()?;
    let (&soft, rest) = rest.split_first()?;
    let (at, payload) = rest.split_first_chunk::<8>()?;
    let purge = if soft == 1 {
        Purge::MarkStale
    } else {
        Purge::Remove
    };
    let at = Timestamp::from_millis(u64::from_le_bytes(*at));
    let key = || Key::from_encoded(payload);
    let change = match kind {
        WRITTEN => Change::Written(key()?, at),
        INVALIDATED => Change::Invalidated(key()?, at),
        TAGS => {
            let mut tags = Vec::new();
            let mut rest = payload;
            while !rest.is_empty() {
                let (len, tail) = rest.split_first_chunk::<2>()?;
                let len = u16::from_le_bytes(*len) as usize;
                let tag = std::str::from_utf8(tail.get(..len)?).ok()?;
                tags.push(Arc::from(tag));
                rest = &tail[len..];
            }
            Change::Tags(tags.into(), purge, at)
        }
        PATTERN => Change::Pattern(std::str::from_utf8(payload).ok()?.into(), purge, at),
        RELEASED => Change::Released(key()?),
        REPLACED => {
            let (len, rest) = payload.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let key = Key::from_encoded(rest.get(..len)?)?;
            Change::Replaced(key, at, Bytes::copy_from_slice(&rest[len..]))
        }
        _ => return None,
    };
    Some((
        u64::from_le_bytes(*id),
        u64::from_le_bytes(*sequence),
        change,
    ))
}

impl Fleet {
    /// A builder with the defaults: a heartbeat of 250 ms, memory tiers emptied every second
    /// while the fleet cannot be heard.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use layercake::{Redis, fleet::Fleet};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// let fleet = Fleet::builder().start(&redis)?;
    /// # drop(fleet);
    /// # Ok(()) }
    /// ```
    pub fn builder() -> FleetBuilder {
        FleetBuilder {
            heartbeat: Duration::from_millis(250),
            max_deaf: Duration::from_secs(1),
            leases: true,
        }
    }

    /// What this instance announced and heard.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use layercake::{Redis, fleet::Fleet};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// let fleet = Fleet::builder().start(&redis)?;
    /// let stats = fleet.stats();
    /// println!("hearing: {}, heard: {}, flushes: {}", stats.hearing, stats.heard, stats.flushes);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> FleetStats {
        let c = &self.inner.counters;
        FleetStats {
            announced: c.announced.load(Relaxed),
            announce_errors: c.announce_errors.load(Relaxed),
            heard: c.heard.load(Relaxed),
            flushes: c.flushes.load(Relaxed),
            resubscriptions: c.resubscriptions.load(Relaxed),
            leases_taken: c.leases_taken.load(Relaxed),
            lease_waits: c.lease_waits.load(Relaxed),
            leases_voided: c.leases_voided.load(Relaxed),
            hearing: self.inner.hearing.load(Relaxed),
        }
    }

    /// Announces `change` to the other instances, after every change announced before it;
    /// with `wait`, returns once it is published. A failure is counted and logged (the others
    /// see a gap in this instance's sequence numbers, and empty their memory tiers).
    pub(crate) async fn announce(&self, change: Change, wait: bool) {
        let (done, published) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        if self.inner.outbox.send(Outgoing { change, done }).is_err() {
            return;
        }
        if let Some(published) = published {
            let _ = published.await;
        }
    }

    /// What this instance hears from the fleet, for a cache to apply.
    pub(crate) fn listen(&self) -> broadcast::Receiver<Arc<Heard>> {
        self.inner.heard.subscribe()
    }

    /// Whether cold keys are filled once per fleet.
    pub(crate) fn leases(&self) -> bool {
        self.inner.leases
    }

    /// What wakes a caller waiting for another instance's fill of `key`: its result stored,
    /// the key invalidated, or the lease given back.
    pub(crate) fn waiter(&self, key: &Key) -> Arc<Notify> {
        let mut waiting = self
            .inner
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(waiting.entry(key.clone()).or_default())
    }

    /// Wakes the callers waiting for another instance's fill of the key `change` names, once
    /// the cache has applied it (so that a caller that then fills the key starts after it).
    pub(crate) fn wake(&self, change: &Change) {
        let Some(key) = change.key() else { return };
        let waiting = self
            .inner
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        if let Some(waiting) = waiting {
            waiting.notify_waiters();
        }
    }

    /// Counts a wait for another instance's fill.
    pub(crate) fn waited(&self) {
        self.inner.counters.lease_waits.fetch_add(1, Relaxed);
    }

    /// Takes the lease on `key` for `ttl`: the lease, or how long another instance still holds
    /// it; `None` when Redis cannot say (the caller fills the key without one).
    pub(crate) async fn lease(&self, key: &Key, ttl: Duration) -> Option<Result<Lease, Duration>> {
        let inner = &self.inner;
        let token = rand_id();
        match inner.redis.try_lease(key, token, ttl).await {
            Ok(Ok(())) => {
                inner.counters.leases_taken.fetch_add(1, Relaxed);
                Some(Ok(Lease {
                    fleet: self.clone(),
                    key: key.clone(),
                    token,
                    settled: AtomicBool::new(false),
                }))
            }
            Ok(Err(remaining)) => Some(Err(remaining)),
            Err(error) => {
                tracing::warn!(%key, %error, "cannot take the fleet's lease; filling without one");
                None
            }
        }
    }

    /// Voids the lease on `key` (an invalidation): its holder's result is not stored.
    pub(crate) async fn void(&self, key: &Key) {
        if let Err(error) = self.inner.redis.void_lease(key).await {
            tracing::warn!(%key, %error, "cannot void the fleet's lease");
        }
    }
}

/// This instance's lease on a key: it fills the key for the fleet. Given back when the result
/// is stored ([`Lease::release`]) or, if the filler goes away first, when dropped (the other
/// instances then try again at once rather than wait for it to expire).
pub(crate) struct Lease {
    fleet: Fleet,
    key: Key,
    token: u64,
    settled: AtomicBool,
}

impl Lease {
    /// Gives the lease back before the result is stored: `false` when it was voided by an
    /// invalidation (or expired) meanwhile, and the result must not be stored. A Redis that
    /// cannot answer does not stop the store.
    pub(crate) async fn release(&self) -> bool {
        self.settled.store(true, Relaxed);
        let inner = &self.fleet.inner;
        match inner.redis.release_lease(&self.key, self.token).await {
            Ok(true) | Err(_) => true,
            Ok(false) => {
                inner.counters.leases_voided.fetch_add(1, Relaxed);
                tracing::debug!(key = %self.key, "the lease was voided: the result is not stored");
                false
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.settled.load(Relaxed) {
            return;
        }
        let (fleet, key, token) = (self.fleet.clone(), self.key.clone(), self.token);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = fleet.inner.redis.release_lease(&key, token).await;
                fleet.announce(Change::Released(key), false).await;
            });
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("channel", &self.inner.channel)
            .field("id", &self.inner.id)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inner {
    fn flush(&self, why: &str) {
        self.counters.flushes.fetch_add(1, Relaxed);
        tracing::info!(
            why,
            "emptying the memory tiers: the fleet's announcements may have been missed"
        );
        let _ = self.heard.send(Arc::new(Heard::Flush));
    }

    /// Handles one announcement; `sequences` holds the last number heard from each sender.
    fn hear(&self, bytes: &[u8], sequences: &mut HashMap<u64, u64>) {
        let Some((id, sequence, change)) = decode(bytes) else {
            tracing::warn!("an announcement this version cannot read; ignored");
            return;
        };
        if id == self.id {
            return;
        }
        if let Some(last) = sequences.insert(id, sequence) {
            if sequence != last + 1 {
                self.flush("an instance's announcements have a gap");
            }
        }
        self.counters.heard.fetch_add(1, Relaxed);
        let _ = self.heard.send(Arc::new(Heard::Change(change)));
    }
}

impl FleetBuilder {
    /// How often the subscription is checked (a `PING` on it, to be answered within twice this
    /// time): about how long, at most, before this instance notices it cannot hear the fleet
    /// when its connection does not simply close (a connection that closes is noticed at
    /// once). Default: 250 ms.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use layercake::{Redis, fleet::Fleet};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// let fleet = Fleet::builder().heartbeat(Duration::from_millis(100)).start(&redis)?;
    /// # drop(fleet);
    /// # Ok(()) }
    /// ```
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(1));
        self
    }

    /// While the fleet cannot be heard, the memory tiers are emptied this often (and once more
    /// when it can be heard again). Default: 1 s.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use layercake::{Redis, fleet::Fleet};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// let fleet = Fleet::builder().max_deaf(Duration::from_millis(500)).start(&redis)?;
    /// # drop(fleet);
    /// # Ok(()) }
    /// ```
    pub fn max_deaf(mut self, every: Duration) -> Self {
        self.max_deaf = every.max(Duration::from_millis(1));
        self
    }

    /// Fills a cold key once per fleet: the instance that goes upstream for it takes a lease in
    /// Redis (`SET … NX PX`, for the cache's lock timeout); callers on other instances wait
    /// for its result (woken by its announcement, with the lease's expiry as the fallback,
    /// never longer than their lock timeout) instead of going upstream too. An invalidation of
    /// the key voids the lease, and the result computed from the old data is not stored.
    /// Costs a miss two round trips to Redis. Default: on.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use layercake::{Redis, fleet::Fleet};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// // Every instance computes a cold key itself: no lease round trips on a miss.
    /// let fleet = Fleet::builder().leases(false).start(&redis)?;
    /// # drop(fleet);
    /// # Ok(()) }
    /// ```
    pub fn leases(mut self, on: bool) -> Self {
        self.leases = on;
        self
    }

    /// Joins the fleet of instances sharing `redis` (its prefix names the channel): starts the
    /// task that listens to it. Must run inside a tokio runtime.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use layercake::{Redis, fleet::Fleet};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// let fleet = Fleet::builder().start(&redis)?;
    /// # drop(fleet);
    /// # Ok(()) }
    /// ```
    pub fn start<F>(self, redis: &Redis<F>) -> Result<Fleet, BackendError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            BackendError::new(
                BackendErrorKind::Other,
                "a fleet listens in a task of its own: start it inside a tokio runtime",
            )
        })?;
        let redis = redis.with_format(Postcard);
        let channel = format!("{}fleet", redis.prefix());
        let (heard, _) = broadcast::channel(4096);
        let (outbox, outgoing) = mpsc::unbounded_channel();
        let (id, counters) = (rand_id(), Arc::new(Counters::default()));
        runtime.spawn(publish(
            redis.clone(),
            channel.clone(),
            id,
            Arc::clone(&counters),
            outgoing,
        ));
        let inner = Arc::new(Inner {
            redis: redis.clone(),
            channel: channel.clone(),
            id,
            outbox,
            heard,
            hearing: AtomicBool::new(false),
            counters,
            task: Mutex::new(None),
            leases: self.leases,
            waiting: Mutex::default(),
        });
        let task = runtime.spawn(listen(Arc::downgrade(&inner), redis, channel, self));
        *inner.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        Ok(Fleet { inner })
    }
}

/// A random id for this instance: std's randomly keyed hasher over the time.
fn rand_id() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

/// An announcement waiting to be published, and who waits for it.
struct Outgoing {
    change: Change,
    done: Option<oneshot::Sender<()>>,
}

/// Publishes announcements one after the other, numbered in that order, so that the others
/// never see them out of order (which would read as a gap); until the fleet is dropped.
async fn publish(
    redis: Redis<Postcard>,
    channel: String,
    id: u64,
    counters: Arc<Counters>,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut sequence = 0;
    while let Some(Outgoing { change, done }) = outgoing.recv().await {
        sequence += 1;
        match redis
            .publish(&channel, &encode(id, sequence, &change))
            .await
        {
            Ok(_) => {
                counters.announced.fetch_add(1, Relaxed);
            }
            Err(error) => {
                counters.announce_errors.fetch_add(1, Relaxed);
                tracing::warn!(%error, "could not announce a change to the fleet");
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

/// Subscribes, hears, and when the subscription is lost, empties the memory tiers and
/// subscribes again; until the fleet's last handle is dropped.
async fn listen(weak: Weak<Inner>, redis: Redis<Postcard>, channel: String, config: FleetBuilder) {
    let mut joined_before = false;
    let mut last_flush = tokio::time::Instant::now();
    loop {
        match redis.subscribe(&channel).await {
            Ok(pubsub) => {
                {
                    let Some(inner) = weak.upgrade() else { return };
                    if joined_before {
                        inner.counters.resubscriptions.fetch_add(1, Relaxed);
                    }
                    // What was stored while deaf may have been changed elsewhere.
                    inner.flush("joined the fleet");
                    inner.hearing.store(true, Relaxed);
                }
                joined_before = true;
                hear(&weak, pubsub, config.heartbeat).await;
                let Some(inner) = weak.upgrade() else { return };
                inner.hearing.store(false, Relaxed);
                inner.flush("lost the fleet");
                last_flush = tokio::time::Instant::now();
            }
            Err(error) => {
                let Some(inner) = weak.upgrade() else { return };
                tracing::warn!(%error, "cannot subscribe to the fleet; retrying");
                if last_flush.elapsed() >= config.max_deaf {
                    inner.flush("still cannot hear the fleet");
                    last_flush = tokio::time::Instant::now();
                }
            }
        }
        tokio::time::sleep(config.heartbeat.min(config.max_deaf)).await;
    }
}

/// Hears announcements until the subscription ends or a ping goes unanswered. Reading and
/// pinging are two tasks, so that an announcement is never held up behind a ping.
async fn hear(weak: &Weak<Inner>, pubsub: ::redis::aio::PubSub, heartbeat: Duration) {
    let (mut sink, mut stream) = pubsub.split();
    let (deaf_tx, mut deaf) = oneshot::channel::<()>();
    let pinger = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let ping = tokio::time::timeout(2 * heartbeat, sink.ping::<::redis::Value>()).await;
            if !matches!(ping, Ok(Ok(_))) {
                let _ = deaf_tx.send(());
                return;
            }
        }
    });
    let mut sequences = HashMap::new();
    loop {
        let message = match futures_util::future::select(stream.next(), &mut deaf).await {
            futures_util::future::Either::Left((message, _)) => message,
            futures_util::future::Either::Right(_) => None,
        };
        let Some(message) = message else { break };
        let Some(inner) = weak.upgrade() else { break };
        inner.hear(message.get_payload_bytes(), &mut sequences);
    }
    pinger.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_read_back_as_they_were_written() {
        let at = Timestamp::from_millis(1_700_000_000_000);
        let changes = [
            Change::Written(Key::from_parts(["app", "users", "42"]), at),
            Change::Invalidated(Key::from_parts(["k"]), at),
            Change::Tags(
                vec![Arc::from("item:1"), Arc::from("items")].into(),
                Purge::MarkStale,
                at,
            ),
            Change::Pattern("app:users:*".into(), Purge::Remove, at),
            Change::Released(Key::from_parts(["k"])),
            Change::Replaced(Key::from_parts(["k"]), at, Bytes::from_static(b"entry")),
        ];
        for change in changes {
            let bytes = encode(7, 9, &change);
            let (id, sequence, back) = decode(&bytes).unwrap();
            assert_eq!((id, sequence), (7, 9));
            assert_eq!(back, change);
        }
    }

    #[test]
    fn bytes_that_are_not_an_announcement_are_ignored() {
        for bytes in [&b""[..], b"\x02", b"\x01short", &[1; 30][..]] {
            assert!(decode(bytes).is_none(), "{bytes:?}");
        }
        let mut truncated = encode(
            1,
            1,
            &Change::Tags(
                vec![Arc::from("t")].into(),
                Purge::Remove,
                Timestamp::from_millis(0),
            ),
        );
        truncated.pop();
        assert!(decode(&truncated).is_none());
    }
}
