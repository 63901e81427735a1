//! Auto-refresh of hot keys: keys in steady demand are refreshed in the background before they
//! expire; keys that cool down simply expire.
//!
//! Hits are counted in a count-min sketch (fixed memory: a few atomic counters per row, two
//! one-minute windows), so tracking costs the same whatever the number of keys. Only keys whose
//! estimated rate reaches [`min_hits_per_minute`](AutoRefresh::min_hits_per_minute) are kept
//! in a bounded table, with what is needed to fetch them again (the request head for HTTP, the
//! computation for typed caches). Every [`check_interval`](AutoRefresh::check_interval) a task
//! goes through that table: keys that cooled down are dropped, and hot keys whose entry would
//! expire before the next check are refreshed, at most
//! [`max_concurrent_refreshes`](AutoRefresh::max_concurrent_refreshes) at once.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use layercake_backends::{BuildKeyHasher, Key, Timestamp};

use crate::offload::OffloadManager;

/// How auto-refresh picks and refreshes hot keys; see the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use layercake::{Cache, Moka, refresh::AutoRefresh};
///
/// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
///     .ttl(Duration::from_secs(60))
///     .auto_refresh(AutoRefresh {
///         min_hits_per_minute: 30,
///         check_interval: Duration::from_secs(10),
///         ..AutoRefresh::default()
///     })
///     .build()
///     .unwrap();
/// # drop(cache);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRefresh {
    /// A key is hot when requested at least this often (in the last full minute, or so far
    /// in the current one). Default: 10.
    pub min_hits_per_minute: u32,
    /// How often hot keys are checked; a hot key whose entry would expire before the next
    /// check is refreshed. Default: 10 s.
    pub check_interval: Duration,
    /// At most this many auto-refreshes run at once. Default: 4.
    pub max_concurrent_refreshes: usize,
    /// At most this many hot keys are tracked; the sketch is sized from it. Default: 10 000.
    pub max_tracked_keys: usize,
}

impl Default for AutoRefresh {
    fn default() -> Self {
        AutoRefresh {
            min_hits_per_minute: 10,
            check_interval: Duration::from_secs(10),
            max_concurrent_refreshes: 4,
            max_tracked_keys: 10_000,
        }
    }
}

const DEPTH: usize = 4;
const WINDOW: Duration = Duration::from_secs(60);
const SHARDS: usize = 16;

/// Counts hits per key in two one-minute windows, in fixed memory.
struct Sketch {
    width: usize,
    windows: [Box<[AtomicU32]>; 2],
    /// Which window is current; the other is the last full minute.
    current: AtomicUsize,
    /// When the current window started, in milliseconds since the epoch.
    started: AtomicU64,
}

impl Sketch {
    fn new(width: usize) -> Self {
        let window = || (0..DEPTH * width).map(|_| AtomicU32::new(0)).collect();
        Sketch {
            width,
            windows: [window(), window()],
            current: AtomicUsize::new(0),
            started: AtomicU64::new(Timestamp::now().as_millis()),
        }
    }

    fn slots(&self, key: &Key) -> impl Iterator<Item = usize> + '_ {
        let hash = key.hash128();
        (0..DEPTH)
            .map(move |row| row * self.width + ((hash >> (32 * row)) as u32 as usize % self.width))
    }

    fn add(&self, key: &Key) -> u32 {
        let window = &self.windows[self.current.load(Relaxed)];
        self.slots(key)
            .map(|slot| window[slot].fetch_add(1, Relaxed).saturating_add(1))
            .min()
            .unwrap_or(0)
    }

    /// The estimated hits in the current and the last full minute, whichever is higher.
    fn estimate(&self, key: &Key) -> u32 {
        let count = |window: &[AtomicU32]| {
            self.slots(key)
                .map(|slot| window[slot].load(Relaxed))
                .min()
                .unwrap_or(0)
        };
        count(&self.windows[0]).max(count(&self.windows[1]))
    }

    /// Starts a new window once a minute: the older one is cleared and becomes current.
    fn rotate(&self, now: Timestamp) {
        let started = Timestamp::from_millis(self.started.load(Relaxed));
        if now.saturating_duration_since(started) < WINDOW {
            return;
        }
        let next = 1 - self.current.load(Relaxed);
        for counter in self.windows[next].iter() {
            counter.store(0, Relaxed);
        }
        self.current.store(next, Relaxed);
        self.started.store(now.as_millis(), Relaxed);
    }
}

/// The hot keys of one cache and what refreshes them (`R`: a request head, a computation).
pub(crate) struct HotKeys<R> {
    pub(crate) config: AutoRefresh,
    sketch: Sketch,
    tracked: Box<[Mutex<HashMap<Key, R, BuildKeyHasher>>]>,
    tracked_len: AtomicUsize,
    pub(crate) offload: OffloadManager,
    checker_started: std::sync::atomic::AtomicBool,
}

impl<R: Clone> HotKeys<R> {
    pub(crate) fn new(config: AutoRefresh) -> Self {
        let width = (config.max_tracked_keys.max(1) * 2)
            .next_power_of_two()
            .clamp(1024, 1 << 16);
        let offload = OffloadManager::builder()
            .max_concurrent_tasks(config.max_concurrent_refreshes.max(1))
            .build();
        HotKeys {
            sketch: Sketch::new(width),
            tracked: (0..SHARDS).map(|_| Mutex::default()).collect(),
            tracked_len: AtomicUsize::new(0),
            offload,
            checker_started: std::sync::atomic::AtomicBool::new(false),
            config,
        }
    }

    fn shard(&self, key: &Key) -> &Mutex<HashMap<Key, R, BuildKeyHasher>> {
        &self.tracked[(key.hash128() as usize) % SHARDS]
    }

    /// Counts a request for `key`; once the key is hot, keeps `recipe()` to refresh it.
    pub(crate) fn record(&self, key: &Key, recipe: impl FnOnce() -> R) {
        if self.sketch.add(key) < self.config.min_hits_per_minute {
            return;
        }
        // Best effort: a busy shard means somebody else is recording; the next hit will do.
        let Ok(mut shard) = self.shard(key).try_lock() else {
            return;
        };
        if shard.contains_key(key) || self.tracked_len.load(Relaxed) >= self.config.max_tracked_keys
        {
            return;
        }
        shard.insert(key.clone(), recipe());
        self.tracked_len.fetch_add(1, Relaxed);
        tracing::debug!(%key, "hot key: refreshed in the background from now on");
    }

    /// Whether the checker task still has to be started (true once).
    pub(crate) fn claim_checker(&self) -> bool {
        !self.checker_started.swap(true, Relaxed)
    }

    /// The tracked keys that are still hot; the ones that cooled down are forgotten.
    pub(crate) fn hot_keys(&self) -> Vec<(Key, R)> {
        self.sketch.rotate(Timestamp::now());
        let mut hot = Vec::new();
        for shard in self.tracked.iter() {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.retain(|key, recipe| {
                let keep = self.sketch.estimate(key) >= self.config.min_hits_per_minute;
                if keep {
                    hot.push((key.clone(), recipe.clone()));
                } else {
                    self.tracked_len.fetch_sub(1, Relaxed);
                    tracing::debug!(%key, "key cooled down: left to expire");
                }
                keep
            });
        }
        hot
    }

    /// How many keys are tracked.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.tracked_len.load(Relaxed)
    }
}

/// Runs `check` every `interval` while `hot` is alive.
pub(crate) fn spawn_checker<R, F, Fut>(hot: &Arc<HotKeys<R>>, check: F)
where
    R: Clone + Send + 'static,
    F: Fn(Arc<HotKeys<R>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let weak: Weak<HotKeys<R>> = Arc::downgrade(hot);
    let interval = hot.config.check_interval;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // The cache is gone: so is its auto-refresh.
            let Some(hot) = weak.upgrade() else { return };
            check(hot).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sketch_counts_per_key_and_forgets_after_two_minutes() {
        let sketch = Sketch::new(1024);
        let (a, b) = (Key::from_parts(["a"]), Key::from_parts(["b"]));
        for _ in 0..12 {
            sketch.add(&a);
        }
        sketch.add(&b);
        assert_eq!(sketch.estimate(&a), 12);
        assert_eq!(sketch.estimate(&b), 1);
        let start = Timestamp::from_millis(sketch.started.load(Relaxed));
        sketch.rotate(start + Duration::from_secs(61));
        assert_eq!(sketch.estimate(&a), 12, "the last full minute still counts");
        sketch.rotate(start + Duration::from_secs(122));
        assert_eq!(sketch.estimate(&a), 0);
    }

    #[test]
    fn only_hot_keys_are_tracked_and_the_table_is_bounded() {
        let hot = HotKeys::<u8>::new(AutoRefresh {
            min_hits_per_minute: 3,
            max_tracked_keys: 2,
            ..AutoRefresh::default()
        });
        for name in ["a", "b", "c"] {
            for _ in 0..3 {
                hot.record(&Key::from_parts([name]), || 0);
            }
        }
        hot.record(&Key::from_parts(["cold"]), || 0);
        assert_eq!(hot.tracked(), 2, "bounded at max_tracked_keys");
        assert_eq!(hot.hot_keys().len(), 2);
    }
}
