//! The circuit breaker of the stores behind a network (Redis, Memcached): a store that keeps
//! failing is left alone for a cool-down, then probed by one call.

use std::{
    sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed},
    time::Duration,
};

use crate::Timestamp;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const PROBING: u8 = 2;

/// A circuit breaker: closed (calls go through, failures in a row are counted), open (calls
/// are refused until the cool-down ends), probing (one call goes through: its success closes
/// the breaker, its failure opens it again).
#[derive(Debug)]
pub(crate) struct Breaker {
    /// The store's name, for the log.
    store: &'static str,
    state: AtomicU8,
    failures: AtomicU32,
    open_until: AtomicU64,
    threshold: u32,
    cool_down: Duration,
}

impl Breaker {
    pub(crate) fn new(store: &'static str, threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            store,
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            threshold,
            cool_down,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Relaxed) != CLOSED
    }

    /// A permit to call the store, or `None` while the breaker is open (or another call probes).
    pub(crate) fn allow(&self) -> Option<Permit<'_>> {
        let probe = match self.state.load(Relaxed) {
            CLOSED => false,
            OPEN => {
                let now = Timestamp::now().as_millis();
                // After the cool-down, exactly one caller gets to probe.
                let due = now >= self.open_until.load(Relaxed)
                    && self
                        .state
                        .compare_exchange(OPEN, PROBING, Relaxed, Relaxed)
                        .is_ok();
                if !due {
                    return None;
                }
                true
            }
            _ => return None,
        };
        Some(Permit {
            breaker: self,
            probe,
            settled: false,
        })
    }

    fn success(&self) {
        self.failures.store(0, Relaxed);
        if self.state.swap(CLOSED, Relaxed) != CLOSED {
            tracing::info!(
                store = self.store,
                "the store answers again: circuit closed"
            );
        }
    }

    fn failure(&self) {
        let failures = self.failures.fetch_add(1, Relaxed) + 1;
        let probing = self.state.load(Relaxed) == PROBING;
        if probing || failures >= self.threshold {
            let until = Timestamp::now() + self.cool_down;
            self.open_until.store(until.as_millis(), Relaxed);
            if self.state.swap(OPEN, Relaxed) == CLOSED {
                tracing::warn!(store = self.store, failures, cool_down = ?self.cool_down, "the store keeps failing: circuit open");
            }
        }
    }

    /// A probe that was never answered (its caller went away): it says nothing of the store, so the
    /// breaker is open as before and the next call probes again at once.
    fn abandon_probe(&self) {
        let _ = self.state.compare_exchange(PROBING, OPEN, Relaxed, Relaxed);
    }
}

/// One call's permission to reach the store. Its outcome settles the breaker; dropped unsettled (the
/// call's future was dropped mid-flight: a caller's timeout, a client that went away), a probe
/// gives its turn back instead of leaving the breaker half-open for good.
#[must_use]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

impl Permit<'_> {
    pub(crate) fn success(mut self) {
        self.settled = true;
        self.breaker.success();
    }

    pub(crate) fn failure(mut self) {
        self.settled = true;
        self.breaker.failure();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.breaker.abandon_probe();
        }
    }
}
