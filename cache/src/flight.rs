//! Single-flight: one caller per key goes upstream, the others wait for its result.
//!
//! A sharded map holds, per key in flight, a `watch` channel. The first `width` callers become
//! leaders (each holds a [`Leader`] guard and goes upstream); later callers follow. The first
//! leader to settle hands its outcome to every follower; later leaders' results serve only their
//! own callers and are not stored again. A guard's `Drop` always does its part: the last leader
//! to go removes the key from the map and, with the last sender gone, closes the channel, so
//! leaders that return, error, panic or are cancelled (their futures dropped) never leave
//! followers hanging. Followers that see the channel closed without a result start over, and
//! one of them leads. A leader whose upstream call fails settles that too ([`Outcome::Failed`]),
//! with its error when it can be shared, so its followers do not retry one after another. No
//! lock is held across an `.await`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak, atomic::Ordering::Relaxed},
};

use layercake_backends::{BuildKeyHasher, Entry, Key};
use tokio::sync::watch;

use crate::stats::Stats;

const SHARDS: usize = 64;

/// What a leader hands its followers.
pub(crate) enum Outcome<V> {
    /// The entry it fetched (and is storing): serve it.
    Entry(Arc<Entry<V>>),
    /// What it fetched cannot be shared (not cacheable): go upstream yourselves, all at once.
    Uncacheable,
    /// Its upstream call failed: answer with this error when it can be shared (see
    /// [`SharedError`]), else go upstream yourselves, all at once.
    Failed(Option<SharedError>),
}

/// A leader's error, handed to its followers: the caller's error type `E` in a
/// `Mutex<E>` (so that `E` need only be `Send`), each follower taking a copy of its own.
pub(crate) type SharedError = Arc<dyn std::any::Any + Send + Sync>;

impl<V> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Entry(entry) => Outcome::Entry(Arc::clone(entry)),
            Outcome::Uncacheable => Outcome::Uncacheable,
            Outcome::Failed(error) => Outcome::Failed(error.clone()),
        }
    }
}

type Slot<V> = Option<Outcome<V>>;
type Shard<V> = Mutex<HashMap<Key, Flight<V>, BuildKeyHasher>>;

/// One key in flight.
struct Flight<V> {
    rx: watch::Receiver<Slot<V>>,
    /// Held strongly by the leaders only: when the last one goes, the channel closes.
    tx: Weak<watch::Sender<Slot<V>>>,
    leaders: usize,
}

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
    tx: Arc<watch::Sender<Slot<V>>>,
    rx: watch::Receiver<Slot<V>>,
    /// The invalidation epoch when the leader took over: its result is not stored if an
    /// invalidation since covers it (see [`Fence`](crate::fence::Fence)).
    pub(crate) since: crate::fence::Epoch,
    /// The fleet's lease on the key, when this leader fills it for the fleet.
    #[cfg(feature = "redis")]
    pub(crate) lease: Option<crate::fleet::Lease>,
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

    /// Becomes one of the (at most `width`) leaders for `key`, or a follower of the flight
    /// under way.
    pub(crate) fn join(self: &Arc<Self>, key: &Key, width: usize) -> Join<V> {
        let mut map = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (tx, rx) = match map.get_mut(key) {
            Some(flight) => {
                let open = flight.leaders < width && flight.rx.borrow().is_none();
                match flight.tx.upgrade().filter(|_| open) {
                    Some(tx) => {
                        flight.leaders += 1;
                        (tx, flight.rx.clone())
                    }
                    None => return Join::Follower(flight.rx.clone()),
                }
            }
            None => {
                let (tx, rx) = watch::channel(None);
                let tx = Arc::new(tx);
                let flight = Flight {
                    rx: rx.clone(),
                    tx: Arc::downgrade(&tx),
                    leaders: 1,
                };
                map.insert(key.clone(), flight);
                (tx, rx)
            }
        };
        drop(map);
        self.stats.in_flight.fetch_add(1, Relaxed);
        Join::Leader(Leader {
            flights: Arc::clone(self),
            key: key.clone(),
            tx,
            rx,
            since: 0,
            #[cfg(feature = "redis")]
            lease: None,
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
    /// Hands `outcome` to every follower, now and until the last leader is gone (late arrivals
    /// that find the flight still registered get it too). Returns `false`, changing nothing,
    /// when another leader settled an entry first: its result is the one shared and stored.
    /// An entry replaces a failure another leader settled (with a dogpile width over 1): the
    /// followers that took the failure are gone, the later ones get the entry.
    pub(crate) fn settle(&self, outcome: Outcome<V>) -> bool {
        self.tx.send_if_modified(|slot| {
            if matches!(slot, Some(Outcome::Entry(_))) {
                return false;
            }
            *slot = Some(outcome);
            true
        })
    }

    /// Whether a leader has settled the flight with an entry already.
    pub(crate) fn is_settled(&self) -> bool {
        matches!(*self.rx.borrow(), Some(Outcome::Entry(_)))
    }
}

impl<V> Drop for Leader<V> {
    fn drop(&mut self) {
        let mut map = self
            .flights
            .shard(&self.key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = map.get_mut(&self.key) {
            if flight.rx.same_channel(&self.rx) {
                flight.leaders -= 1;
                if flight.leaders == 0 {
                    map.remove(&self.key);
                }
            }
        }
        drop(map);
        self.flights.stats.in_flight.fetch_sub(1, Relaxed);
        // Our sender handle drops after this; with the last one, followers still waiting see
        // the channel close.
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
        let Join::Leader(leader) = flights.join(&key, 1) else {
            panic!("first caller must lead")
        };
        let Join::Follower(rx) = flights.join(&key, 1) else {
            panic!("second caller must follow")
        };
        assert!(leader.settle(Outcome::Entry(entry(7))));
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
        let leader = flights.join(&key, 1);
        let Join::Follower(rx) = flights.join(&key, 1) else {
            panic!("second caller must follow")
        };
        drop(leader);
        assert!(follow(rx).await.is_none());
        assert!(matches!(flights.join(&key, 1), Join::Leader(_)));
    }

    #[tokio::test]
    async fn width_two_admits_two_leaders_and_the_first_result_wins() {
        let flights = Arc::new(Flights::new(Arc::default()));
        let key = Key::from_parts(["k"]);
        let Join::Leader(first) = flights.join(&key, 2) else {
            panic!("first caller leads")
        };
        let Join::Leader(second) = flights.join(&key, 2) else {
            panic!("second caller leads too")
        };
        let Join::Follower(rx) = flights.join(&key, 2) else {
            panic!("third caller follows")
        };
        assert!(second.settle(Outcome::Entry(entry(2))));
        assert!(
            !first.settle(Outcome::Entry(entry(1))),
            "only the first result is kept"
        );
        // Once settled, nobody else leads.
        assert!(matches!(flights.join(&key, 2), Join::Follower(_)));
        drop(second);
        assert!(flights.contains(&key), "registered while a leader remains");
        drop(first);
        assert!(!flights.contains(&key));
        match follow(rx).await {
            Some(Outcome::Entry(e)) => assert_eq!(*e.value(), 2),
            _ => panic!("the follower gets the first result"),
        }
    }

    #[tokio::test]
    async fn followers_wait_while_any_leader_remains() {
        let flights = Arc::new(Flights::<u32>::new(Arc::default()));
        let key = Key::from_parts(["k"]);
        let first = flights.join(&key, 2);
        let Join::Leader(second) = flights.join(&key, 2) else {
            panic!("second caller leads")
        };
        let Join::Follower(rx) = flights.join(&key, 2) else {
            panic!("third caller follows")
        };
        drop(first);
        assert!(second.settle(Outcome::Uncacheable));
        assert!(matches!(follow(rx).await, Some(Outcome::Uncacheable)));
    }
}
