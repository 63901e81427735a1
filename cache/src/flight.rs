//! Single-flight: one caller per key goes upstream, the others wait for its result.
//!
//! A sharded map holds, per key in flight, the receiving end of a `watch` channel. The first
//! caller becomes the leader and holds a [`Leader`] guard; later callers subscribe. The guard's
//! `Drop` always settles the flight: it removes the key from the map and drops the sender, so a
//! leader that returns, errors, panics or is cancelled (its future dropped) never leaves
//! followers hanging. Followers that see the sender gone without a result start over, and one
//! of them becomes the next leader. No lock is held across an `.await`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, atomic::Ordering::Relaxed},
};

use layercake_backends::{BuildKeyHasher, Entry, Key};
use tokio::sync::watch;

use crate::stats::Stats;

const SHARDS: usize = 64;

/// What a leader hands its followers.
pub(crate) enum Outcome<V> {
    /// The entry it fetched (and is storing): serve it.
    Entry(Arc<Entry<V>>),
    /// What it fetched cannot be shared (not cacheable): go upstream yourselves.
    Uncacheable,
}

impl<V> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Entry(entry) => Outcome::Entry(Arc::clone(entry)),
            Outcome::Uncacheable => Outcome::Uncacheable,
        }
    }
}

type Slot<V> = Option<Outcome<V>>;
type Shard<V> = Mutex<HashMap<Key, watch::Receiver<Slot<V>>, BuildKeyHasher>>;

pub(crate) struct Flights<V> {
    shards: Box<[Shard<V>]>,
    stats: Arc<Stats>,
}

pub(crate) enum Join<V> {
    Leader(Leader<V>),
    Follower(watch::Receiver<Slot<V>>),
}

/// The leader's guard; see the module docs.
pub(crate) struct Leader<V> {
    flights: Arc<Flights<V>>,
    key: Key,
    tx: watch::Sender<Slot<V>>,
    rx: watch::Receiver<Slot<V>>,
}

impl<V> Flights<V> {
    pub(crate) fn new(stats: Arc<Stats>) -> Self {
        Flights {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            stats,
        }
    }

    fn shard(&self, key: &Key) -> &Shard<V> {
        &self.shards[(key.hash128() as usize) % SHARDS]
    }

    /// Becomes the leader for `key`, or a follower of the flight already under way.
    pub(crate) fn join(self: &Arc<Self>, key: &Key) -> Join<V> {
        let mut map = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = map.get(key) {
            return Join::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), rx.clone());
        drop(map);
        self.stats.in_flight.fetch_add(1, Relaxed);
        Join::Leader(Leader {
            flights: Arc::clone(self),
            key: key.clone(),
            tx,
            rx,
        })
    }

    /// Whether a flight for `key` is under way.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(key)
    }
}

impl<V> Leader<V> {
    /// Hands `outcome` to every follower, now and until the guard is dropped (late arrivals
    /// that find the flight still registered get it too).
    pub(crate) fn settle(&self, outcome: Outcome<V>) {
        self.tx.send_replace(Some(outcome));
    }
}

impl<V> Drop for Leader<V> {
    fn drop(&mut self) {
        let mut map = self
            .flights
            .shard(&self.key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.rx))
        {
            map.remove(&self.key);
        }
        drop(map);
        self.flights.stats.in_flight.fetch_sub(1, Relaxed);
        // The sender drops after this: followers still waiting see the channel close.
    }
}

/// Waits for the leader's outcome; `None` when the leader went away without one.
pub(crate) async fn follow<V>(mut rx: watch::Receiver<Slot<V>>) -> Option<Outcome<V>> {
    let slot = rx.wait_for(Option::is_some).await.ok()?;
    slot.clone()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use layercake_backends::Timestamp;

    use super::*;

    fn entry(v: u32) -> Arc<Entry<u32>> {
        Arc::new(Entry::new(
            v,
            Timestamp::now(),
            Duration::from_secs(1),
            Duration::ZERO,
        ))
    }

    #[tokio::test]
    async fn second_caller_follows_and_gets_the_leaders_outcome() {
        let flights = Arc::new(Flights::new(Arc::default()));
        let key = Key::from_parts(["k"]);
        let Join::Leader(leader) = flights.join(&key) else {
            panic!("first caller must lead")
        };
        let Join::Follower(rx) = flights.join(&key) else {
            panic!("second caller must follow")
        };
        leader.settle(Outcome::Entry(entry(7)));
        drop(leader);
        match follow(rx).await {
            Some(Outcome::Entry(e)) => assert_eq!(*e.value(), 7),
            _ => panic!("follower must receive the entry"),
        }
        assert!(!flights.contains(&key));
        assert_eq!(flights.stats.in_flight.load(Relaxed), 0);
    }

    #[tokio::test]
    async fn leader_dropped_without_outcome_releases_followers() {
        let flights = Arc::new(Flights::<u32>::new(Arc::default()));
        let key = Key::from_parts(["k"]);
        let leader = flights.join(&key);
        let Join::Follower(rx) = flights.join(&key) else {
            panic!("second caller must follow")
        };
        drop(leader);
        assert!(follow(rx).await.is_none());
        assert!(matches!(flights.join(&key), Join::Leader(_)));
    }
}
