use std::{future::Future, sync::Arc};

use crate::{BackendError, Entry, Key};

/// The result of reading a key: the entry, if there is one, or the tier's error.
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
/// use layercake_backends::{Backend, BackendError, Entry, Key, Lookup, Tier};
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
///     // without any future at all.
///     fn peek(&self, key: &Key) -> Option<Lookup<String>> {
///         Some(Ok(self.0.lock().unwrap().get(key).cloned()))
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

    /// Removes every entry whose key's [readable form](Key::readable) matches `pattern`, a glob
    /// in Redis's dialect ([`glob_matches`](crate::key::glob_matches)), and says how many it
    /// removed (`None` when it cannot tell). Stores that can enumerate their keys implement it
    /// (Moka scans its entries, Redis `SCAN`s with `MATCH`); the default says it cannot.
    fn remove_matching(
        &self,
        pattern: &str,
    ) -> impl Future<Output = Result<Option<u64>, BackendError>> + Send {
        let _ = pattern;
        std::future::ready(Err(BackendError::new(
            crate::BackendErrorKind::Unsupported,
            format!("{} cannot remove entries by pattern", self.name()),
        )))
    }

    /// Reads `key` without waiting, when the tier can (in-memory tiers); `None` when it would
    /// have to wait (network or disk), in which case the caller uses [`Backend::get`].
    ///
    /// This is what lets the HTTP layer answer a memory hit synchronously, with no future to
    /// allocate. The default says "I would have to wait".
    fn peek(&self, key: &Key) -> Option<Lookup<V>> {
        let _ = key;
        None
    }

    /// A short name for logs and metrics.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}
