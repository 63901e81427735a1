//! One erased backend for stacks chosen at run time (from a configuration file, say).
//!
//! [`Backend`]'s methods return `impl Future`, which keeps a stack built in code free of boxes
//! and virtual calls, and makes the trait unusable as `dyn Backend`. [`DynBackend`] is the one
//! place where that is given up on purpose: any backend goes in, and the result is a backend
//! again, so a configured stack composes, caches and invalidates like a typed one.

use std::{fmt, future::Future, pin::Pin, sync::Arc};

use crate::{
    Backend, BackendError, Entry, Forget, Key, KeyRef, Lookup, Selection, Tier, TierHealth,
    Timestamp,
};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Backend`] with its futures boxed: what a [`DynBackend`] calls through.
trait Erased<V>: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Lookup<V>>;
    fn set<'a>(
        &'a self,
        key: &'a Key,
        entry: Arc<Entry<V>>,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
    fn refill<'a>(
        &'a self,
        key: &'a Key,
        entry: Arc<Entry<V>>,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
    fn remove<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<(), BackendError>>;
    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>>;
    fn remove_counted<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<u64>, BackendError>>;
    fn remove_selected<'a>(
        &'a self,
        selection: Selection<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, BackendError>>;
    fn mark_stale_selected<'a>(
        &'a self,
        selection: Selection<'a>,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Option<u64>, BackendError>>;
    fn forget(&self, what: Forget<'_>);
    fn replace_local(&self, key: &Key, entry: Arc<Entry<V>>);
    fn peek(&self, key: KeyRef<'_>) -> Option<Lookup<V>>;
    fn name(&self) -> &'static str;
    fn get_traced<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, (Lookup<V>, &'static str)>;
    fn peek_tier(&self) -> &'static str;
    fn health(&self) -> BoxFuture<'_, Vec<TierHealth>>;
    fn tags(&self, limit: usize) -> BoxFuture<'_, Result<Vec<(String, u64)>, BackendError>>;
}

impl<V: Send + Sync + 'static, B: Backend<V>> Erased<V> for B {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Lookup<V>> {
        Box::pin(Backend::get(self, key))
    }

    fn set<'a>(
        &'a self,
        key: &'a Key,
        entry: Arc<Entry<V>>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(Backend::set(self, key, entry))
    }

    fn refill<'a>(
        &'a self,
        key: &'a Key,
        entry: Arc<Entry<V>>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(Backend::refill(self, key, entry))
    }

    fn remove<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(Backend::remove(self, key))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(Backend::clear(self))
    }

    fn remove_counted<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<u64>, BackendError>> {
        Box::pin(Backend::remove_counted(self, key))
    }

    fn remove_selected<'a>(
        &'a self,
        selection: Selection<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, BackendError>> {
        Box::pin(Backend::remove_selected(self, selection))
    }

    fn mark_stale_selected<'a>(
        &'a self,
        selection: Selection<'a>,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Option<u64>, BackendError>> {
        Box::pin(Backend::mark_stale_selected(self, selection, now))
    }

    fn forget(&self, what: Forget<'_>) {
        Backend::forget(self, what);
    }

    fn replace_local(&self, key: &Key, entry: Arc<Entry<V>>) {
        Backend::replace_local(self, key, entry);
    }

    fn peek(&self, key: KeyRef<'_>) -> Option<Lookup<V>> {
        Backend::peek(self, key)
    }

    fn name(&self) -> &'static str {
        Backend::name(self)
    }

    fn get_traced<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, (Lookup<V>, &'static str)> {
        Box::pin(Backend::get_traced(self, key))
    }

    fn peek_tier(&self) -> &'static str {
        Backend::peek_tier(self)
    }

    fn health(&self) -> BoxFuture<'_, Vec<TierHealth>> {
        Box::pin(Backend::health(self))
    }

    fn tags(&self, limit: usize) -> BoxFuture<'_, Result<Vec<(String, u64)>, BackendError>> {
        Box::pin(Backend::tags(self, limit))
    }
}

/// Any [`Backend<V>`] behind one type: for stacks whose shape is known only at run time, such
/// as those built from a configuration file.
///
/// Every call goes through a virtual call, and every call that awaits boxes its future; a
/// memory hit ([`Backend::peek`]) is one virtual call and no allocation. A stack built in code
/// (`Compose<Moka, Redis>`) pays none of this: use a `DynBackend` only where the stack is not
/// known when the program is compiled. Cloning is cheap (one `Arc`), and clones share the
/// backend, as the clones of any store do.
///
/// ```
/// use layercake_backends::{Backend, DynBackend, Entry, Key, Moka, Timestamp};
/// use std::{sync::Arc, time::Duration};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tier: DynBackend<String> = DynBackend::new(Moka::default());
/// let key = Key::from_parts(["users", "42"]);
/// let entry = Entry::new("Ada".to_owned(), Timestamp::now(), Duration::from_secs(60), Duration::ZERO);
/// tier.set(&key, Arc::new(entry)).await.unwrap();
/// let found = tier.get(&key).await.unwrap().unwrap();
/// assert_eq!(found.value(), "Ada");
/// assert_eq!(Backend::<String>::name(&tier), "moka");
/// # }
/// ```
pub struct DynBackend<V> {
    inner: Arc<dyn Erased<V>>,
}

impl<V: Send + Sync + 'static> DynBackend<V> {
    /// Erases `backend`'s type.
    ///
    /// ```
    /// use layercake_backends::{DynBackend, Moka};
    /// let tier: DynBackend<Vec<u8>> = DynBackend::new(Moka::with_max_bytes(1 << 20));
    /// # drop(tier);
    /// ```
    pub fn new<B: Backend<V>>(backend: B) -> Self {
        DynBackend {
            inner: Arc::new(backend),
        }
    }
}

impl<V> Clone for DynBackend<V> {
    fn clone(&self) -> Self {
        DynBackend {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V: 'static> fmt::Debug for DynBackend<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DynBackend")
            .field(&self.inner.name())
            .finish()
    }
}

impl<V: Send + Sync + 'static> Tier for DynBackend<V> {}

impl<V: Send + Sync + 'static> Backend<V> for DynBackend<V> {
    async fn get(&self, key: &Key) -> Lookup<V> {
        self.inner.get(key).await
    }

    async fn set(&self, key: &Key, entry: Arc<Entry<V>>) -> Result<(), BackendError> {
        self.inner.set(key, entry).await
    }

    async fn refill(&self, key: &Key, entry: Arc<Entry<V>>) -> Result<(), BackendError> {
        self.inner.refill(key, entry).await
    }

    async fn remove(&self, key: &Key) -> Result<(), BackendError> {
        self.inner.remove(key).await
    }

    async fn clear(&self) -> Result<(), BackendError> {
        self.inner.clear().await
    }

    async fn remove_counted(&self, key: &Key) -> Result<Option<u64>, BackendError> {
        self.inner.remove_counted(key).await
    }

    async fn remove_selected(&self, selection: Selection<'_>) -> Result<Option<u64>, BackendError> {
        self.inner.remove_selected(selection).await
    }

    async fn mark_stale_selected(
        &self,
        selection: Selection<'_>,
        now: Timestamp,
    ) -> Result<Option<u64>, BackendError> {
        self.inner.mark_stale_selected(selection, now).await
    }

    fn forget(&self, what: Forget<'_>) {
        self.inner.forget(what);
    }

    fn replace_local(&self, key: &Key, entry: Arc<Entry<V>>) {
        self.inner.replace_local(key, entry);
    }

    fn peek(&self, key: KeyRef<'_>) -> Option<Lookup<V>> {
        self.inner.peek(key)
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn get_traced(&self, key: &Key) -> (Lookup<V>, &'static str) {
        self.inner.get_traced(key).await
    }

    fn peek_tier(&self) -> &'static str {
        self.inner.peek_tier()
    }

    async fn health(&self) -> Vec<TierHealth> {
        self.inner.health().await
    }

    async fn tags(&self, limit: usize) -> Result<Vec<(String, u64)>, BackendError> {
        self.inner.tags(limit).await
    }
}
