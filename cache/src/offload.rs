//! Background work: refreshes that keep entries fresh while callers are served at once.
//!
//! An [`OffloadManager`] runs tasks keyed by cache key on the tokio runtime, with per-key
//! deduplication (one refresh per key at a time, however many stale hits ask for one), a bound on
//! the number of tasks running at once (tasks past it are rejected, not queued: the entry is
//! still served, and the next hit asks again), a [timeout policy](OffloadTimeout), graceful or
//! cancelling shutdown, and [counters](OffloadStats). Every cache has one; share one between
//! caches with `.offload(manager.clone())` on their builders to bound them together.
//!
//! ```
//! use std::time::Duration;
//! use layercake::{Key, offload::{OffloadManager, OffloadTimeout, Offloaded}};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let offload = OffloadManager::builder()
//!     .max_concurrent_tasks(16)
//!     .timeout(OffloadTimeout::Cancel(Duration::from_secs(30)))
//!     .build();
//! let key = Key::from_parts(["report"]);
//! assert_eq!(offload.spawn(key.clone(), async { Ok(()) }), Offloaded::Started);
//! assert_eq!(offload.spawn(key, async { Ok(()) }), Offloaded::Deduplicated);
//! offload.shutdown(layercake::offload::Shutdown::Graceful).await;
//! assert_eq!(offload.stats().completed, 1);
//! # }
//! ```

use std::{
    collections::{HashMap, HashSet},
    fmt,
    future::Future,
    panic::AssertUnwindSafe,
    pin::pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use futures_util::FutureExt;
use layercake_backends::{BuildKeyHasher, Key};
use tokio::{sync::Notify, task::AbortHandle};

/// The error a background task reports.
///
/// ```
/// use layercake::offload::TaskError;
/// let error: TaskError = "the origin said 503".into();
/// assert_eq!(error.to_string(), "the origin said 503");
/// ```
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// What happens to a background task that runs too long.
///
/// ```
/// use std::time::Duration;
/// use layercake::offload::{OffloadManager, OffloadTimeout};
/// let offload = OffloadManager::builder()
///     .timeout(OffloadTimeout::Warn(Duration::from_secs(10)))
///     .build();
/// # drop(offload);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffloadTimeout {
    /// Let it run.
    #[default]
    None,
    /// Cancel it after this long (counted as timed out).
    Cancel(Duration),
    /// Log a warning after this long (counted as timed out) and let it finish.
    Warn(Duration),
}

/// What [`OffloadManager::spawn`] did with a task.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use layercake::{Key, offload::{OffloadManager, Offloaded}};
/// let offload = OffloadManager::new();
/// assert_eq!(offload.spawn(Key::from_parts(["a"]), async { Ok(()) }), Offloaded::Started);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offloaded {
    /// It is running.
    Started,
    /// A task for the same key is running already; this one was dropped.
    Deduplicated,
    /// The manager is at its bound on concurrent tasks, or shut down; this one was dropped.
    Rejected,
}

/// How [`OffloadManager::shutdown`] treats the tasks still running.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use layercake::offload::{OffloadManager, Shutdown};
/// OffloadManager::new().shutdown(Shutdown::Cancel).await;
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Let them finish.
    Graceful,
    /// Cancel them.
    Cancel,
}

/// Counters of an [`OffloadManager`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use layercake::offload::OffloadManager;
/// let stats = OffloadManager::new().stats();
/// assert_eq!((stats.completed, stats.failed), (0, 0));
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffloadStats {
    /// Tasks started.
    pub spawned: u64,
    /// Tasks that finished with `Ok`.
    pub completed: u64,
    /// Tasks dropped because one for the same key was running.
    pub deduplicated: u64,
    /// Tasks dropped because the manager was at its bound or shut down.
    pub rejected: u64,
    /// Tasks running now.
    pub active: u64,
    /// Tasks that ran past their timeout (cancelled, or warned about).
    pub timed_out: u64,
    /// Tasks that returned an error or panicked.
    pub failed: u64,
}

/// Runs background refreshes; see the [module docs](self). Cheap to clone: clones share tasks,
/// bounds and counters.
///
/// ```
/// use std::time::Duration;
/// use layercake::{Key, offload::{OffloadManager, OffloadTimeout, Offloaded, Shutdown}};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let refreshes = OffloadManager::builder()
///     .max_concurrent_tasks(32)
///     .timeout(OffloadTimeout::Cancel(Duration::from_secs(10)))
///     .build();
/// let key = Key::from_parts(["report"]);
/// let started = refreshes.spawn(key.clone(), async { Ok(()) });
/// assert_eq!(started, Offloaded::Started);
/// // One task per key at a time: a second one for the same key is dropped.
/// let again = refreshes.spawn(key, std::future::pending());
/// assert!(matches!(again, Offloaded::Started | Offloaded::Deduplicated));
/// refreshes.shutdown(Shutdown::Cancel).await;
/// assert_eq!(refreshes.stats().active, 0);
/// # }
/// ```
#[derive(Clone)]
pub struct OffloadManager {
    inner: Arc<Inner>,
}

/// Configures an [`OffloadManager`]; see [`OffloadManager::builder`].
///
/// ```
/// use layercake::offload::OffloadManager;
/// let offload = OffloadManager::builder().max_concurrent_tasks(8).deduplicate(true).build();
/// # drop(offload);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct OffloadBuilder {
    max_concurrent_tasks: usize,
    timeout: OffloadTimeout,
    deduplicate: bool,
}

struct Inner {
    max_concurrent_tasks: usize,
    timeout: OffloadTimeout,
    deduplicate: bool,
    state: Mutex<State>,
    closed: AtomicBool,
    idle: Notify,
    spawned: AtomicU64,
    completed: AtomicU64,
    deduplicated: AtomicU64,
    rejected: AtomicU64,
    timed_out: AtomicU64,
    failed: AtomicU64,
}

#[derive(Default)]
struct State {
    next_id: u64,
    running: HashMap<u64, AbortHandle>,
    keys: HashSet<Key, BuildKeyHasher>,
}

impl OffloadManager {
    /// The default bound on tasks running at once.
    ///
    /// ```
    /// use layercake::offload::OffloadManager;
    /// assert_eq!(OffloadManager::DEFAULT_MAX_CONCURRENT_TASKS, 256);
    /// ```
    pub const DEFAULT_MAX_CONCURRENT_TASKS: usize = 256;

    /// A manager with the defaults: at most 256 tasks at once, no timeout, deduplication on.
    ///
    /// ```
    /// use layercake::offload::OffloadManager;
    /// let offload = OffloadManager::new();
    /// # drop(offload);
    /// ```
    pub fn new() -> Self {
        OffloadManager::builder().build()
    }

    /// A builder with the defaults of [`OffloadManager::new`].
    ///
    /// ```
    /// use layercake::offload::OffloadManager;
    /// let offload = OffloadManager::builder().build();
    /// # drop(offload);
    /// ```
    pub fn builder() -> OffloadBuilder {
        OffloadBuilder {
            max_concurrent_tasks: OffloadManager::DEFAULT_MAX_CONCURRENT_TASKS,
            timeout: OffloadTimeout::None,
            deduplicate: true,
        }
    }

    /// Runs `task` in the background for `key`, unless a task for `key` is running (with
    /// deduplication on), the bound is reached, or the manager is shut down. Needs a tokio
    /// runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use layercake::{Key, offload::{OffloadManager, Offloaded}};
    /// let offload = OffloadManager::new();
    /// let refresh = async { /* fetch and store */ Ok(()) };
    /// assert_eq!(offload.spawn(Key::from_parts(["page"]), refresh), Offloaded::Started);
    /// # }
    /// ```
    pub fn spawn<F>(&self, key: Key, task: F) -> Offloaded
    where
        F: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        let inner = &self.inner;
        if inner.closed.load(Relaxed) {
            Inner::bump(&inner.rejected);
            return Offloaded::Rejected;
        }
        let mut state = inner.lock();
        if inner.deduplicate && state.keys.contains(&key) {
            drop(state);
            Inner::bump(&inner.deduplicated);
            return Offloaded::Deduplicated;
        }
        if state.running.len() >= inner.max_concurrent_tasks {
            drop(state);
            Inner::bump(&inner.rejected);
            tracing::debug!(%key, "background task rejected: at the bound");
            return Offloaded::Rejected;
        }
        let id = state.next_id;
        state.next_id += 1;
        if inner.deduplicate {
            state.keys.insert(key.clone());
        }
        // The guard unregisters the task however it ends, cancellation included.
        let guard = TaskGuard {
            inner: Arc::clone(inner),
            id,
            key,
        };
        let handle = tokio::spawn(supervise(guard, task));
        // Registered under the same lock, so the task cannot unregister before it is registered.
        state.running.insert(id, handle.abort_handle());
        drop(state);
        Inner::bump(&inner.spawned);
        Offloaded::Started
    }

    /// The counters.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use layercake::{Key, offload::{OffloadManager, Shutdown}};
    /// let offload = OffloadManager::new();
    /// offload.spawn(Key::from_parts(["a"]), async { Err("upstream down".into()) });
    /// offload.shutdown(Shutdown::Graceful).await;
    /// assert_eq!(offload.stats().failed, 1);
    /// # }
    /// ```
    pub fn stats(&self) -> OffloadStats {
        let inner = &self.inner;
        OffloadStats {
            spawned: inner.spawned.load(Relaxed),
            completed: inner.completed.load(Relaxed),
            deduplicated: inner.deduplicated.load(Relaxed),
            rejected: inner.rejected.load(Relaxed),
            active: inner.lock().running.len() as u64,
            timed_out: inner.timed_out.load(Relaxed),
            failed: inner.failed.load(Relaxed),
        }
    }

    /// Stops accepting tasks, then waits for the running ones to finish ([`Shutdown::Graceful`])
    /// or cancels them ([`Shutdown::Cancel`]). Returns once none is running.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use layercake::offload::{OffloadManager, Shutdown};
    /// let offload = OffloadManager::new();
    /// // On the way out: let running refreshes finish.
    /// offload.shutdown(Shutdown::Graceful).await;
    /// # }
    /// ```
    pub async fn shutdown(&self, mode: Shutdown) {
        self.inner.closed.store(true, Relaxed);
        if mode == Shutdown::Cancel {
            self.abort_all();
        }
        self.idle().await;
    }

    /// Graceful shutdown for at most `grace`; what still runs then is cancelled.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use layercake::offload::OffloadManager;
    /// OffloadManager::new().shutdown_timeout(Duration::from_secs(5)).await;
    /// # }
    /// ```
    pub async fn shutdown_timeout(&self, grace: Duration) {
        self.inner.closed.store(true, Relaxed);
        if tokio::time::timeout(grace, self.idle()).await.is_err() {
            self.abort_all();
            self.idle().await;
        }
    }

    fn abort_all(&self) {
        for handle in self.inner.lock().running.values() {
            handle.abort();
        }
    }

    async fn idle(&self) {
        loop {
            let mut notified = pin!(self.inner.idle.notified());
            notified.as_mut().enable();
            if self.inner.lock().running.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

impl Default for OffloadManager {
    fn default() -> Self {
        OffloadManager::new()
    }
}

impl fmt::Debug for OffloadManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OffloadManager")
            .field("max_concurrent_tasks", &self.inner.max_concurrent_tasks)
            .field("timeout", &self.inner.timeout)
            .field("deduplicate", &self.inner.deduplicate)
            .field("stats", &self.stats())
            .finish()
    }
}

impl OffloadBuilder {
    /// At most this many tasks run at once; more are rejected. Default: 256.
    ///
    /// ```
    /// let offload = layercake::offload::OffloadManager::builder().max_concurrent_tasks(32).build();
    /// # drop(offload);
    /// ```
    pub fn max_concurrent_tasks(mut self, max: usize) -> Self {
        self.max_concurrent_tasks = max;
        self
    }

    /// What happens to a task that runs too long. Default: [`OffloadTimeout::None`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake::offload::{OffloadManager, OffloadTimeout};
    /// let offload = OffloadManager::builder().timeout(OffloadTimeout::Cancel(Duration::from_secs(30))).build();
    /// # drop(offload);
    /// ```
    pub fn timeout(mut self, timeout: OffloadTimeout) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether a task is dropped while one for the same key runs. Default: `true`.
    ///
    /// ```
    /// let offload = layercake::offload::OffloadManager::builder().deduplicate(false).build();
    /// # drop(offload);
    /// ```
    pub fn deduplicate(mut self, deduplicate: bool) -> Self {
        self.deduplicate = deduplicate;
        self
    }

    /// Builds the manager.
    ///
    /// ```
    /// let offload = layercake::offload::OffloadManager::builder().build();
    /// # drop(offload);
    /// ```
    pub fn build(self) -> OffloadManager {
        OffloadManager {
            inner: Arc::new(Inner {
                max_concurrent_tasks: self.max_concurrent_tasks,
                timeout: self.timeout,
                deduplicate: self.deduplicate,
                state: Mutex::default(),
                closed: AtomicBool::new(false),
                idle: Notify::new(),
                spawned: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                deduplicated: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                timed_out: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}

struct TaskGuard {
    inner: Arc<Inner>,
    id: u64,
    key: Key,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.running.remove(&self.id);
        if self.inner.deduplicate {
            state.keys.remove(&self.key);
        }
        let idle = state.running.is_empty();
        drop(state);
        if idle {
            self.inner.idle.notify_waiters();
        }
    }
}

/// Runs one task under the timeout policy and counts how it ended.
async fn supervise<F>(guard: TaskGuard, task: F)
where
    F: Future<Output = Result<(), TaskError>>,
{
    let inner = &guard.inner;
    let key = &guard.key;
    let mut task = pin!(AssertUnwindSafe(task).catch_unwind());
    let outcome = match inner.timeout {
        OffloadTimeout::None => task.await,
        OffloadTimeout::Cancel(limit) => match tokio::time::timeout(limit, task).await {
            Ok(outcome) => outcome,
            Err(_) => {
                Inner::bump(&inner.timed_out);
                tracing::warn!(%key, ?limit, "background task cancelled: timed out");
                return;
            }
        },
        OffloadTimeout::Warn(limit) => match tokio::time::timeout(limit, task.as_mut()).await {
            Ok(outcome) => outcome,
            Err(_) => {
                Inner::bump(&inner.timed_out);
                tracing::warn!(%key, ?limit, "background task is taking longer than its limit");
                task.await
            }
        },
    };
    match outcome {
        Ok(Ok(())) => Inner::bump(&inner.completed),
        Ok(Err(error)) => {
            Inner::bump(&inner.failed);
            tracing::warn!(%key, %error, "background task failed");
        }
        Err(_panic) => {
            Inner::bump(&inner.failed);
            tracing::error!(%key, "background task panicked");
        }
    }
}
