//! Many instances, one cache: how long until an invalidation on one instance is seen in
//! another's memory tier (p50 and p99 on loopback), what coherence costs a memory hit and a
//! store, and what the fleet's lease costs a miss. Two instances in one process, each with its own connections and its own
//! fleet membership, over a `redis-server` started on a free loopback port.
//!
//! Run with `cargo bench -p layercake-benches --bench fleet`.

#![allow(missing_docs)]

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use layercake::{Backend, Cache, Moka, compose::Compose, fleet::Fleet, redis::Redis};
use layercake_tests::redis_server::RedisServer;

type Tiers = Compose<Moka, Redis>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

struct Instance {
    memory: Moka,
    cache: Cache<u64, Tiers>,
}

fn instance(server: &RedisServer, fleet: Option<&Fleet>) -> Instance {
    let memory = Moka::default();
    let builder = Cache::builder(Compose::new(memory.clone(), server.store("bench:")))
        .ttl(Duration::from_secs(300));
    let builder = match fleet {
        Some(fleet) => builder.fleet(fleet.clone()),
        None => builder,
    };
    Instance {
        memory,
        cache: builder.build().unwrap(),
    }
}

impl Instance {
    fn remembers(&self, key: &str) -> bool {
        let key = self.cache.key(key);
        matches!(
            <Moka as Backend<u64>>::peek(&self.memory, key.as_key_ref()),
            Some(Ok(Some(_)))
        )
    }
}

/// One invalidation on A, timed until B's memory tier no longer holds the key.
async fn propagation(a: &Instance, b: &Instance, key: &str) -> Duration {
    // (A flush, should the fleet go quiet for a heartbeat, would empty B: store again.)
    while !b.remembers(key) {
        b.cache.insert(key, 1).await;
    }
    let started = Instant::now();
    a.cache.invalidate(key).await.unwrap();
    while b.remembers(key) {
        tokio::task::yield_now().await;
    }
    started.elapsed()
}

fn coherence(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(RedisServer::start(&[]));
    let _guard = rt.enter();
    let fleet_a = Fleet::builder().start(&server.store("bench:")).unwrap();
    let fleet_b = Fleet::builder().start(&server.store("bench:")).unwrap();
    rt.block_on(async {
        while !(fleet_a.stats().hearing && fleet_b.stats().hearing) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let a = instance(&server, Some(&fleet_a));
    let b = instance(&server, Some(&fleet_b));
    let alone = instance(&server, None);

    // Percentiles, printed: criterion reports the median and its spread.
    let mut samples: Vec<Duration> = rt.block_on(async {
        let mut samples = Vec::with_capacity(2000);
        for i in 0..2000 {
            samples.push(propagation(&a, &b, &format!("p{i}")).await);
        }
        samples
    });
    let slow: Vec<(usize, Duration)> = samples
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, d)| *d > Duration::from_millis(20))
        .collect();
    println!("fleet/propagation: runs over 20 ms: {slow:?}");
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "fleet/propagation over 2000 invalidations: p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );

    let mut group = c.benchmark_group("fleet");
    group.bench_function("propagation", |bench| {
        bench.iter_custom(|iterations| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iterations {
                    total += propagation(&a, &b, &format!("c{}", i % 64)).await;
                }
                total
            })
        });
    });

    // A memory hit, with and without a fleet.
    for (name, instance) in [("hit/alone", &alone), ("hit/in_a_fleet", &a)] {
        rt.block_on(instance.cache.insert("hot", 7));
        group.bench_function(name, |bench| {
            bench.iter(|| {
                black_box(rt.block_on(instance.cache.get_or_compute("hot", || async { 0 })))
            });
        });
    }
    // A store (both tiers), with and without the announcement.
    for (name, instance) in [("store/alone", &alone), ("store/in_a_fleet", &a)] {
        group.bench_function(name, |bench| {
            bench.iter(|| rt.block_on(instance.cache.insert("written", 7)));
        });
    }
    // A miss that computes and stores a new key: without a fleet, in a fleet without leases,
    // with the lease (taken and given back: two round trips).
    let no_leases = Fleet::builder()
        .leases(false)
        .start(&server.store("bench:"))
        .unwrap();
    let plain = instance(&server, Some(&no_leases));
    let mut n = 0u64;
    for (name, instance) in [
        ("miss/alone", &alone),
        ("miss/in_a_fleet_without_leases", &plain),
        ("miss/with_the_lease", &a),
    ] {
        group.bench_function(name, |bench| {
            bench.iter(|| {
                n += 1;
                let key = format!("miss:{name}:{n}");
                black_box(rt.block_on(instance.cache.get_or_compute(key, || async { 7 })))
            });
        });
    }
    group.finish();
    drop(server);
}

criterion_group!(benches, coherence);
criterion_main!(benches);
