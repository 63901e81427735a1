//! Keeps an invalidation from being undone by a store that raced it.
//!
//! A caller that computes a value (or fetches a response) and then stores it may have started
//! before an invalidation of that key, tag or pattern and finish after it: stored as it is, its
//! result, made from the old data, would bring back what the invalidation took out. So every
//! invalidation is recorded, with a number (its epoch), before it removes anything, and every
//! store says at which epoch its computation started: a store that an invalidation recorded
//! since then covers is dropped.
//!
//! The check and the write happen under a shared lock that an invalidation takes exclusively
//! only to record itself; so a store either checked before the record, and its write is done
//! before the invalidation removes anything (which removes it), or checks after, and sees the
//! record. Stores do not wait for each other, and wait for an invalidation only while it
//! records itself; an invalidation waits for the stores being written at that moment.
//!
//! The log keeps the last [`REMEMBERED`] invalidations: a computation that started before the
//! oldest of them is not stored (it may have been covered by one forgotten since), which only
//! costs a miss, under a storm of invalidations, for computations slower than the storm.

use std::{
    collections::VecDeque,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use layercake_backends::{Key, Selection};
use tokio::sync::RwLock;

/// How many invalidations the log keeps.
const REMEMBERED: usize = 1024;

/// The number of invalidations recorded so far; a computation notes it when it starts.
pub(crate) type Epoch = u64;

/// What an invalidation covers.
#[derive(Debug)]
pub(crate) enum Scope {
    /// One key.
    Key(Key),
    /// Every entry carrying one of these tags.
    Tags(Box<[Arc<str>]>),
    /// Every key whose readable form matches this glob.
    Pattern(Box<str>),
}

impl Scope {
    /// The scope of an invalidation of `selection`.
    pub(crate) fn of(selection: Selection<'_>) -> Scope {
        match selection {
            Selection::Tags(tags) => Scope::Tags(tags.into()),
            Selection::Pattern(pattern) => Scope::Pattern(pattern.into()),
            // `Selection` may grow: anything else is taken to cover everything.
            #[allow(unreachable_patterns)]
            _ => Scope::Pattern("*".into()),
        }
    }

    /// Whether this invalidation covers the entry under `key` carrying `tags`; `readable` is
    /// a buffer for the key's readable form, written once when a pattern needs it.
    fn covers(&self, key: &Key, tags: &[Arc<str>], readable: &mut Option<String>) -> bool {
        match self {
            Scope::Key(covered) => covered == key,
            Scope::Tags(covered) => Selection::Tags(covered).selects("", tags),
            Scope::Pattern(pattern) => {
                let readable = readable.get_or_insert_with(|| key.readable());
                Selection::Pattern(pattern).selects(readable, tags)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Log {
    records: VecDeque<(Epoch, Scope)>,
    /// The latest epoch no longer in `records`.
    forgotten: Epoch,
}

impl Log {
    /// Whether an invalidation recorded after `since` covers the entry under `key` with
    /// `tags` (or may have, having been forgotten).
    fn voids(&self, key: &Key, tags: &[Arc<str>], since: Epoch) -> bool {
        if since < self.forgotten {
            return true;
        }
        let mut readable = None;
        self.records
            .iter()
            .rev()
            .take_while(|(epoch, _)| *epoch > since)
            .any(|(_, scope)| scope.covers(key, tags, &mut readable))
    }
}

/// The record of invalidations that stores are checked against; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct Fence {
    epoch: AtomicU64,
    log: RwLock<Log>,
}

impl Fence {
    /// The current epoch: what a computation that starts now notes.
    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch.load(Ordering::Acquire)
    }

    /// Runs `write` (the store of the entry under `key` carrying `tags`, computed from data
    /// read at `since` or later) unless an invalidation recorded since covers it; `None` when
    /// it was dropped. `write` is called under the lock, not only awaited there: a memory
    /// store writes as it is called.
    pub(crate) async fn write<F: Future>(
        &self,
        key: &Key,
        tags: &[Arc<str>],
        since: Epoch,
        write: impl FnOnce() -> F,
    ) -> Option<F::Output> {
        let log = self.log.read().await;
        // Epochs move only under the exclusive lock: none moves while the write runs.
        if since < self.epoch() && log.voids(key, tags, since) {
            return None;
        }
        let written = write().await;
        drop(log);
        Some(written)
    }

    /// Records an invalidation of `scope`, once the stores being written have finished; what
    /// it covers is to be removed after this returns.
    pub(crate) async fn record(&self, scope: Scope) {
        let mut log = self.log.write().await;
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        if log.records.len() == REMEMBERED {
            if let Some((oldest, _)) = log.records.pop_front() {
                log.forgotten = oldest;
            }
        }
        log.records.push_back((epoch, scope));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|&n| Arc::from(n)).collect()
    }

    #[tokio::test]
    async fn a_store_started_before_a_covering_invalidation_is_dropped() {
        let fence = Fence::default();
        let key = Key::from_parts(["app", "users", "42"]);
        let since = fence.epoch();
        fence.record(Scope::Tags(tags(&["user:42"]).into())).await;
        let written = fence
            .write(&key, &tags(&["user:42"]), since, || async { 1 })
            .await;
        assert_eq!(written, None, "covered by the tag");
        let other = fence
            .write(&key, &tags(&["user:7"]), since, || async { 2 })
            .await;
        assert_eq!(other, Some(2), "another tag does not cover it");
        let later = fence.epoch();
        let after = fence
            .write(&key, &tags(&["user:42"]), later, || async { 3 })
            .await;
        assert_eq!(after, Some(3), "started after the invalidation");
    }

    #[tokio::test]
    async fn keys_and_patterns_cover_what_they_name() {
        let fence = Fence::default();
        let key = Key::from_parts(["app", "users", "42"]);
        let since = fence.epoch();
        fence
            .record(Scope::Key(Key::from_parts(["app", "users", "7"])))
            .await;
        fence.record(Scope::Pattern("app:posts:*".into())).await;
        assert_eq!(fence.write(&key, &[], since, || async {}).await, Some(()));
        fence.record(Scope::Pattern("app:users:4*".into())).await;
        assert_eq!(fence.write(&key, &[], since, || async {}).await, None);
        fence.record(Scope::Key(key.clone())).await;
        let since = fence.epoch() - 1;
        assert_eq!(fence.write(&key, &[], since, || async {}).await, None);
    }

    #[tokio::test]
    async fn a_computation_older_than_the_log_is_not_stored() {
        let fence = Fence::default();
        let key = Key::from_parts(["k"]);
        let since = fence.epoch();
        for n in 0..=REMEMBERED {
            fence
                .record(Scope::Key(Key::from_parts([n.to_string()])))
                .await;
        }
        assert_eq!(fence.write(&key, &[], since, || async {}).await, None);
        let recent = fence.epoch();
        assert_eq!(fence.write(&key, &[], recent, || async {}).await, Some(()));
    }

    #[tokio::test]
    async fn an_invalidation_waits_for_the_write_in_progress() {
        let fence = Arc::new(Fence::default());
        let key = Key::from_parts(["k"]);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
        let writer = {
            let (fence, key) = (Arc::clone(&fence), key.clone());
            tokio::spawn(async move {
                fence
                    .write(&key, &[], 0, || async move {
                        started_tx.send(()).unwrap();
                        finish_rx.await.unwrap();
                    })
                    .await
            })
        };
        started_rx.await.unwrap();
        let record = tokio::spawn({
            let fence = Arc::clone(&fence);
            async move { fence.record(Scope::Key(key)).await }
        });
        tokio::task::yield_now().await;
        assert!(!record.is_finished(), "the record waits for the write");
        assert_eq!(fence.epoch(), 0);
        finish_tx.send(()).unwrap();
        assert_eq!(writer.await.unwrap(), Some(()));
        record.await.unwrap();
        assert_eq!(fence.epoch(), 1);
    }
}
