//! Storage tiers composed at the type level.
//!
//! `Compose<L1, L2, R, W, F>` is a [`Backend`] made of two backends, each of which may itself
//! be a composition, so stacks nest to any depth:
//!
//! ```
//! use layercake::compose::{Compose, Race, Sequential};
//! use layercake::Moka;
//!
//! // L1: a small Moka; L2: a larger Moka in front of a third tier (here another Moka).
//! type Tiers = Compose<Moka, Compose<Moka, Moka>, Race, Sequential>;
//! let tiers: Tiers = Compose::new(
//!     Moka::with_max_bytes(16 << 20),
//!     Compose::new(Moka::with_max_bytes(256 << 20), Moka::with_max_bytes(1 << 30)),
//! );
//! # drop(tiers);
//! ```
//!
//! The policies are zero-sized types chosen in the type, so dispatch is static and a
//! composition costs what its tiers cost: `size_of::<Compose<Moka, Moka>>()` is two `Moka`s,
//! and a hit in a memory L1 is answered synchronously through [`Backend::peek`], exactly as a
//! hit on that L1 alone.
//!
//! | slot | policies | default |
//! |---|---|---|
//! | read `R` | [`Sequential`] (L1, then L2 on a miss), [`Race`] (both at once, first hit wins), [`Parallel`] (both, the fresher entry wins) | `Sequential` |
//! | write `W` | [`Sequential`] (L1, then L2), [`OptimisticParallel`] (both at once, succeeds if either does), [`Race`] (both at once, the first success answers, the other write finishes in the background) | `OptimisticParallel` |
//! | refill `F` | [`Always`] (an L2 hit is written into L1, with its remaining time to live), [`Never`] | `Always` |
//!
//! The defaults fit the common `Compose<Moka, Redis>`: read the local tier first, write both
//! tiers without letting a slow or failing one fail the write, and warm the local tier from the
//! shared one. Freshness always comes from the entry's own times, so a refilled entry expires
//! in L1 when it expires in L2, never a full ttl later.

use std::{future::Future, marker::PhantomData, pin::pin, sync::Arc};

use futures_util::future::{Either, join, select};
use layercake_backends::{
    Backend, BackendError, Entry, Forget, Freshness, Key, KeyRef, Lookup, Selection, Tier,
    Timestamp,
};

/// Two storage tiers as one [`Backend`]; see the [module docs](self).
///
/// ```
/// use layercake::{Cache, Moka, compose::{Compose, Never, Race, Sequential}};
///
/// // Two memory tiers: a small hot one in front of a larger one, read one after the other
/// // (the defaults), and a stack whose L2 is itself a composition.
/// type Two = Compose<Moka, Moka>;
/// type Three = Compose<Moka, Compose<Moka, Moka>, Race, Sequential, Never>;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tiers: Two = Compose::new(Moka::with_max_bytes(1 << 20), Moka::with_max_bytes(64 << 20));
/// let cache: Cache<u32, Two> = Cache::builder(tiers).build().unwrap();
/// cache.insert("k", 1).await;
/// assert_eq!(cache.get("k").await, Some(1));
/// let _three: Option<Three> = None;
/// # }
/// ```
pub struct Compose<L1, L2, R = Sequential, W = OptimisticParallel, F = Always>
where
    L1: Tier,
    L2: Tier,
    R: ReadPolicy,
    W: WritePolicy,
    F: RefillPolicy,
{
    l1: L1,
    l2: L2,
    _policies: PhantomData<Policies<R, W, F>>,
}

impl<L1, L2, R, W, F> Compose<L1, L2, R, W, F>
where
    L1: Tier,
    L2: Tier,
    R: ReadPolicy,
    W: WritePolicy,
    F: RefillPolicy,
{
    /// `l1` in front of `l2`, with the policies of the type.
    ///
    /// ```
    /// use layercake::{Moka, compose::Compose};
    ///
    /// let tiers: Compose<Moka, Moka> = Compose::new(Moka::default(), Moka::default());
    /// assert_eq!(tiers.l1().max_bytes(), Moka::DEFAULT_MAX_BYTES);
    /// # let _ = tiers.l2();
    /// ```
    pub fn new(l1: L1, l2: L2) -> Self {
        Compose {
            l1,
            l2,
            _policies: PhantomData,
        }
    }

    /// The first tier.
    ///
    /// ```
    /// use layercake::{Moka, compose::Compose};
    /// let tiers: Compose<Moka, Moka> = Compose::new(Moka::with_max_bytes(1 << 20), Moka::default());
    /// assert_eq!(tiers.l1().max_bytes(), 1 << 20);
    /// ```
    pub fn l1(&self) -> &L1 {
        &self.l1
    }

    /// The second tier.
    ///
    /// ```
    /// use layercake::{Moka, compose::Compose};
    /// let tiers: Compose<Moka, Moka> = Compose::new(Moka::default(), Moka::with_max_bytes(8 << 20));
    /// assert_eq!(tiers.l2().max_bytes(), 8 << 20);
    /// ```
    pub fn l2(&self) -> &L2 {
        &self.l2
    }
}

impl<L1: Tier, L2: Tier, R: ReadPolicy, W: WritePolicy, F: RefillPolicy> Tier
    for Compose<L1, L2, R, W, F>
{
}

impl<L1: Tier, L2: Tier, R: ReadPolicy, W: WritePolicy, F: RefillPolicy> Clone
    for Compose<L1, L2, R, W, F>
{
    fn clone(&self) -> Self {
        Compose::new(self.l1.clone(), self.l2.clone())
    }
}

impl<L1, L2, R, W, F> Default for Compose<L1, L2, R, W, F>
where
    L1: Tier + Default,
    L2: Tier + Default,
    R: ReadPolicy,
    W: WritePolicy,
    F: RefillPolicy,
{
    fn default() -> Self {
        Compose::new(L1::default(), L2::default())
    }
}

impl<L1, L2, R, W, F> std::fmt::Debug for Compose<L1, L2, R, W, F>
where
    L1: Tier + std::fmt::Debug,
    L2: Tier + std::fmt::Debug,
    R: ReadPolicy,
    W: WritePolicy,
    F: RefillPolicy,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compose")
            .field("l1", &self.l1)
            .field("l2", &self.l2)
            .field("read", &std::any::type_name::<R>())
            .field("write", &std::any::type_name::<W>())
            .field("refill", &std::any::type_name::<F>())
            .finish()
    }
}

/// The policies of a composition, as a type: zero-sized.
type Policies<R, W, F> = fn() -> (R, W, F);

/// What a read policy found, and where.
pub type Read<V> = Result<(Option<Arc<Entry<V>>>, Source), BackendError>;

/// Where a read found its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The first tier (or nowhere).
    L1,
    /// The second tier: a candidate for a refill of L1.
    L2,
}

/// How a [`Compose`] reads: [`Sequential`], [`Race`] or [`Parallel`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a read policy",
    label = "not a read policy",
    note = "the read slot (third parameter of `Compose`) takes `Sequential`, `Race` or `Parallel`"
)]
pub trait ReadPolicy: Default + Send + Sync + 'static {
    /// Reads `key` from the tiers; says which tier the entry came from.
    fn read<V, L1, L2>(l1: &L1, l2: &L2, key: &Key) -> impl Future<Output = Read<V>> + Send
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>;

    /// Answers without waiting when that is the policy's answer: an L1 hit for policies that
    /// serve L1 first. `None`: read asynchronously. A peeked entry past all its windows is
    /// read again asynchronously by the engine.
    fn peek<V, L1, L2>(l1: &L1, l2: &L2, key: KeyRef<'_>) -> Option<Lookup<V>>
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>,
    {
        let _ = (l1, l2, key);
        None
    }
}

/// How a [`Compose`] writes: [`Sequential`], [`OptimisticParallel`] or [`Race`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a write policy",
    label = "not a write policy",
    note = "the write slot (fourth parameter of `Compose`) takes `Sequential`, `OptimisticParallel` or `Race`"
)]
pub trait WritePolicy: Default + Send + Sync + 'static {
    /// Writes `entry` under `key` to the tiers.
    fn write<V, L1, L2>(
        l1: &L1,
        l2: &L2,
        key: &Key,
        entry: Arc<Entry<V>>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>;
}

/// What a [`Compose`] does with an L2 hit: [`Always`] or [`Never`] copy it into L1.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a refill policy",
    label = "not a refill policy",
    note = "the refill slot (fifth parameter of `Compose`) takes `Always` or `Never`"
)]
pub trait RefillPolicy: Default + Send + Sync + 'static {
    /// Called with an entry found in L2.
    fn refill<V, L1>(l1: &L1, key: &Key, entry: &Arc<Entry<V>>) -> impl Future<Output = ()> + Send
    where
        V: Send + Sync + 'static,
        L1: Backend<V>;
}

/// Read: L1, then L2 on a miss. Write: L1, then L2.
///
/// ```
/// use layercake::{Moka, compose::*};
///
/// let tiers: Compose<Moka, Moka, Sequential, Sequential> = Compose::new(Moka::default(), Moka::default());
/// # drop(tiers);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sequential;

/// Read: both tiers at once, the first hit wins. Write: both at once, the first success
/// answers and the other write finishes in the background (needs a tokio runtime).
///
/// ```
/// use layercake::{Moka, compose::*};
///
/// let tiers: Compose<Moka, Moka, Race, Race> = Compose::new(Moka::default(), Moka::default());
/// # drop(tiers);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Race;

/// Read: both tiers at once; when both hold the key, the entry fresh for longer wins.
///
/// ```
/// use layercake::{Moka, compose::*};
///
/// let tiers: Compose<Moka, Moka, Parallel> = Compose::new(Moka::default(), Moka::default());
/// # drop(tiers);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parallel;

/// Write: both tiers at once; succeeds when either does (the other's error is logged).
///
/// ```
/// use layercake::{Moka, compose::*};
///
/// let tiers: Compose<Moka, Moka, Sequential, OptimisticParallel> = Compose::new(Moka::default(), Moka::default());
/// # drop(tiers);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptimisticParallel;

/// Refill: an L2 hit is written into L1, with the entry's own (remaining) time to live.
///
/// ```
/// use layercake::{Moka, compose::*};
///
/// let tiers: Compose<Moka, Moka, Sequential, OptimisticParallel, Always> = Compose::new(Moka::default(), Moka::default());
/// # drop(tiers);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Always;

/// Refill: L1 is filled by writes only.
///
/// ```
/// use layercake::{Moka, compose::*};
///
/// let tiers: Compose<Moka, Moka, Sequential, OptimisticParallel, Never> = Compose::new(Moka::default(), Moka::default());
/// # drop(tiers);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Never;

/// An L1 lookup, with entries past all their windows read as absent (a tier's own expiry may
/// lag the engine's clock). An entry kept only to be revalidated is set aside: L2 may hold a
/// servable one (another instance stored it), and it is the answer only when L2 has nothing.
fn usable<V>(lookup: Lookup<V>) -> (Lookup<V>, Option<Arc<Entry<V>>>) {
    match lookup {
        Ok(Some(entry)) => match entry.freshness(Timestamp::now()) {
            Freshness::Expired => (Ok(None), None),
            Freshness::Retained(_) => (Ok(None), Some(entry)),
            _ => (Ok(Some(entry)), None),
        },
        lookup => (lookup, None),
    }
}

/// An L1 read that missed or failed, then the L2 read: L2's answer; else L1's retained entry;
/// else L1's error when L2 found nothing either.
fn second<V>(first: Lookup<V>, retained: Option<Arc<Entry<V>>>, l2: Lookup<V>) -> Read<V> {
    match (first, l2) {
        (_, Ok(Some(entry))) => Ok((Some(entry), Source::L2)),
        _ if retained.is_some() => Ok((retained, Source::L1)),
        (Err(error), Ok(None)) => Err(error),
        (_, Err(error)) => Err(error),
        (Ok(_), Ok(None)) => Ok((None, Source::L1)),
    }
}

impl ReadPolicy for Sequential {
    async fn read<V, L1, L2>(l1: &L1, l2: &L2, key: &Key) -> Read<V>
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>,
    {
        let (first, retained) = usable(l1.get(key).await);
        if let Ok(Some(entry)) = first {
            return Ok((Some(entry), Source::L1));
        }
        second(first, retained, l2.get(key).await)
    }

    fn peek<V, L1, L2>(l1: &L1, _l2: &L2, key: KeyRef<'_>) -> Option<Lookup<V>>
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>,
    {
        // An L1 hit, as it is: the engine, which has the clock at hand, sends an entry past
        // its windows to the asynchronous read (which then asks L2).
        match l1.peek(key)? {
            Ok(Some(entry)) => Some(Ok(Some(entry))),
            _ => None,
        }
    }
}

impl ReadPolicy for Race {
    async fn read<V, L1, L2>(l1: &L1, l2: &L2, key: &Key) -> Read<V>
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>,
    {
        let (a, b) = (pin!(l1.get(key)), pin!(l2.get(key)));
        match select(a, b).await {
            Either::Left((first, rest)) => {
                let (first, retained) = usable(first);
                if let Ok(Some(entry)) = first {
                    return Ok((Some(entry), Source::L1));
                }
                second(first, retained, rest.await)
            }
            Either::Right((found, rest)) => {
                if let Ok(Some(entry)) = found {
                    return Ok((Some(entry), Source::L2));
                }
                match usable(rest.await) {
                    (Ok(Some(entry)), _) => Ok((Some(entry), Source::L1)),
                    (first, retained) => second(first, retained, found),
                }
            }
        }
    }

    fn peek<V, L1, L2>(l1: &L1, l2: &L2, key: KeyRef<'_>) -> Option<Lookup<V>>
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>,
    {
        Sequential::peek(l1, l2, key)
    }
}

impl ReadPolicy for Parallel {
    async fn read<V, L1, L2>(l1: &L1, l2: &L2, key: &Key) -> Read<V>
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>,
    {
        let (first, found) = join(l1.get(key), l2.get(key)).await;
        let (first, retained) = usable(first);
        match (first, found) {
            (Ok(Some(a)), Ok(Some(b))) if b.fresh_until() > a.fresh_until() => {
                Ok((Some(b), Source::L2))
            }
            (Ok(Some(a)), _) => Ok((Some(a), Source::L1)),
            (first, found) => second(first, retained, found),
        }
    }
}

impl WritePolicy for Sequential {
    async fn write<V, L1, L2>(
        l1: &L1,
        l2: &L2,
        key: &Key,
        entry: Arc<Entry<V>>,
    ) -> Result<(), BackendError>
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>,
    {
        let first = l1.set(key, Arc::clone(&entry)).await;
        let second = l2.set(key, entry).await;
        first.and(second)
    }
}

impl WritePolicy for OptimisticParallel {
    async fn write<V, L1, L2>(
        l1: &L1,
        l2: &L2,
        key: &Key,
        entry: Arc<Entry<V>>,
    ) -> Result<(), BackendError>
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>,
    {
        match join(l1.set(key, Arc::clone(&entry)), l2.set(key, entry)).await {
            (Ok(()), Ok(())) => Ok(()),
            (Err(error), Ok(())) | (Ok(()), Err(error)) => {
                tracing::warn!(%key, %error, "one tier failed to store the entry");
                Ok(())
            }
            (Err(error), Err(_)) => Err(error),
        }
    }
}

impl WritePolicy for Race {
    async fn write<V, L1, L2>(
        l1: &L1,
        l2: &L2,
        key: &Key,
        entry: Arc<Entry<V>>,
    ) -> Result<(), BackendError>
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
        L2: Backend<V>,
    {
        // Each write is a task of its own, so the slower one can finish after we answer.
        let spawn = |tier: Either<L1, L2>, key: Key, entry: Arc<Entry<V>>| {
            tokio::spawn(async move {
                match tier {
                    Either::Left(l1) => l1.set(&key, entry).await,
                    Either::Right(l2) => l2.set(&key, entry).await,
                }
            })
        };
        let a = spawn(Either::Left(l1.clone()), key.clone(), Arc::clone(&entry));
        let b = spawn(Either::Right(l2.clone()), key.clone(), entry);
        let joined = |result: Result<Result<(), BackendError>, tokio::task::JoinError>| {
            result.unwrap_or_else(|error| {
                Err(BackendError::new(
                    layercake_backends::BackendErrorKind::Other,
                    format!("the write task failed: {error}"),
                ))
            })
        };
        match select(a, b).await {
            Either::Left((first, rest)) | Either::Right((first, rest)) => match joined(first) {
                Ok(()) => Ok(()),
                Err(error) => joined(rest.await).map_err(|_| error),
            },
        }
    }
}

impl RefillPolicy for Always {
    async fn refill<V, L1>(l1: &L1, key: &Key, entry: &Arc<Entry<V>>)
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
    {
        // The entry keeps its own times: L1 keeps it for what remains of them.
        if let Err(error) = l1.refill(key, Arc::clone(entry)).await {
            tracing::warn!(%key, %error, "refill of the first tier failed");
        }
    }
}

impl RefillPolicy for Never {
    async fn refill<V, L1>(_l1: &L1, _key: &Key, _entry: &Arc<Entry<V>>)
    where
        V: Send + Sync + 'static,
        L1: Backend<V>,
    {
    }
}

impl<V, L1, L2, R, W, F> Backend<V> for Compose<L1, L2, R, W, F>
where
    V: Send + Sync + 'static,
    L1: Backend<V>,
    L2: Backend<V>,
    R: ReadPolicy,
    W: WritePolicy,
    F: RefillPolicy,
{
    async fn get(&self, key: &Key) -> Lookup<V> {
        self.get_traced(key).await.0
    }

    async fn get_traced(&self, key: &Key) -> (Lookup<V>, &'static str) {
        let (found, source) = match R::read(&self.l1, &self.l2, key).await {
            Ok(read) => read,
            Err(error) => return (Err(error), self.name()),
        };
        if let (Some(entry), Source::L2) = (&found, source) {
            F::refill(&self.l1, key, entry).await;
        }
        let tier = match (&found, source) {
            (Some(_), Source::L1) => self.l1.peek_tier(),
            (Some(_), Source::L2) => self.l2.name(),
            (None, _) => self.name(),
        };
        (Ok(found), tier)
    }

    fn peek_tier(&self) -> &'static str {
        self.l1.peek_tier()
    }

    fn set(
        &self,
        key: &Key,
        entry: Arc<Entry<V>>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        W::write(&self.l1, &self.l2, key, entry)
    }

    async fn remove(&self, key: &Key) -> Result<(), BackendError> {
        let (a, b) = join(self.l1.remove(key), self.l2.remove(key)).await;
        a.and(b)
    }

    /// Removes from both tiers: the entries the tiers held count once (the larger count), and
    /// not at all when a tier cannot count.
    async fn remove_counted(&self, key: &Key) -> Result<Option<u64>, BackendError> {
        let (a, b) = join(self.l1.remove_counted(key), self.l2.remove_counted(key)).await;
        Ok(a?.zip(b?).map(|(a, b)| a.max(b)))
    }

    /// Removes from both tiers, counted as [`remove_counted`](Backend::remove_counted) counts.
    /// From both tiers at once; an entry held by both counts once (the larger count).
    async fn remove_selected(&self, selection: Selection<'_>) -> Result<Option<u64>, BackendError> {
        let (a, b) = join(
            self.l1.remove_selected(selection),
            self.l2.remove_selected(selection),
        )
        .await;
        Ok(a?.zip(b?).map(|(a, b)| a.max(b)))
    }

    /// In both tiers at once; an entry held by both counts once (the larger count).
    async fn mark_stale_selected(
        &self,
        selection: Selection<'_>,
        now: Timestamp,
    ) -> Result<Option<u64>, BackendError> {
        let (a, b) = join(
            self.l1.mark_stale_selected(selection, now),
            self.l2.mark_stale_selected(selection, now),
        )
        .await;
        Ok(a?.zip(b?).map(|(a, b)| a.max(b)))
    }

    async fn clear(&self) -> Result<(), BackendError> {
        let (a, b) = join(self.l1.clear(), self.l2.clear()).await;
        a.and(b)
    }

    fn peek(&self, key: KeyRef<'_>) -> Option<Lookup<V>> {
        R::peek(&self.l1, &self.l2, key)
    }

    async fn refill(&self, key: &Key, entry: Arc<Entry<V>>) -> Result<(), BackendError> {
        let (a, b) = join(
            self.l1.refill(key, Arc::clone(&entry)),
            self.l2.refill(key, entry),
        )
        .await;
        a.and(b)
    }

    fn forget(&self, what: Forget<'_>) {
        self.l1.forget(what);
        self.l2.forget(what);
    }

    /// Both tiers', first then second.
    /// Both tiers' tags, each with the larger of its two counts (an entry is often in both);
    /// what one tier lists when the other cannot.
    async fn tags(&self, limit: usize) -> Result<Vec<(String, u64)>, BackendError> {
        let (l1, l2) = join(self.l1.tags(usize::MAX), self.l2.tags(usize::MAX)).await;
        let tags: Vec<(String, u64)> = match (l1, l2) {
            (Ok(a), Ok(b)) => {
                let mut merged: std::collections::HashMap<String, u64> = a.into_iter().collect();
                for (tag, count) in b {
                    let known = merged.entry(tag).or_default();
                    *known = (*known).max(count);
                }
                merged.into_iter().collect()
            }
            (Ok(tags), Err(_)) | (Err(_), Ok(tags)) => tags,
            (Err(error), Err(_)) => return Err(error),
        };
        Ok(layercake_backends::most_listed(tags, limit))
    }

    async fn health(&self) -> Vec<layercake_backends::TierHealth> {
        let (mut first, second) = join(self.l1.health(), self.l2.health()).await;
        first.extend(second);
        first
    }

    fn replace_local(&self, key: &Key, entry: Arc<Entry<V>>) {
        self.l1.replace_local(key, Arc::clone(&entry));
        self.l2.replace_local(key, entry);
    }

    fn name(&self) -> &'static str {
        "compose"
    }
}
