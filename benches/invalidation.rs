//! What does an invalidation cost? One key; a pattern over 10,000 keys in memory and in Redis
//! (`SCAN … MATCH` and pipelined `DEL`s); a tag carried by 10,000 entries, and one carried by
//! 10 entries among 100,000 (an index, not a scan); and what the tag index adds to a store and
//! to a hit. The floor of a key is a raw moka `invalidate`.
//!
//! Starts its own `redis-server` on a free loopback port. Run with
//! `cargo bench -p layercake-benches --bench invalidation`.

#![allow(missing_docs)]

use std::{hint::black_box, time::Duration};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use layercake::{Cache, Moka, redis::Redis};
use layercake_tests::redis_server::RedisServer;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn one_key(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("invalidate_key");
    let cache: Cache<u64, Moka> = Cache::builder(Moka::default()).build().unwrap();
    group.bench_function("cache_invalidate", |b| {
        b.iter_batched(
            || rt.block_on(cache.insert("user:42", 42)),
            |()| black_box(rt.block_on(cache.invalidate("user:42")).unwrap()),
            BatchSize::SmallInput,
        );
    });
    let raw: moka::sync::Cache<String, u64> = moka::sync::Cache::new(100_000);
    group.bench_function("raw_moka_invalidate", |b| {
        b.iter_batched(
            || raw.insert("user:42".to_owned(), 42),
            |()| raw.invalidate("user:42"),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn pattern(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(RedisServer::start(&[]));
    let _runtime = rt.enter();
    let redis = Redis::builder()
        .url(server.url())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let in_redis: Cache<u64, Redis> = Cache::builder(redis).build().unwrap();
    let in_memory: Cache<u64, Moka> = Cache::builder(Moka::default()).build().unwrap();
    let fill = |cache: &Cache<u64, Redis>, memory: &Cache<u64, Moka>| {
        rt.block_on(async {
            for i in 0..10_000u64 {
                cache.insert(format!("users:{i}"), i).await;
                memory.insert(format!("users:{i}"), i).await;
            }
        })
    };
    let mut group = c.benchmark_group("invalidate_pattern_10000");
    group.sample_size(10);
    group.bench_function("moka", |b| {
        b.iter_batched(
            || fill(&in_redis, &in_memory),
            |()| {
                let done = rt
                    .block_on(in_memory.invalidate_pattern("users:*"))
                    .unwrap();
                assert_eq!(done.entries, Some(10_000));
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("redis", |b| {
        b.iter_batched(
            || fill(&in_redis, &in_memory),
            |()| {
                let done = rt.block_on(in_redis.invalidate_pattern("users:*")).unwrap();
                assert_eq!(done.entries, Some(10_000));
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    drop(server);
}

fn tags(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(RedisServer::start(&[]));
    let _runtime = rt.enter();
    let redis = Redis::builder()
        .url(server.url())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let in_redis: Cache<u64, Redis> = Cache::builder(redis).build().unwrap();
    let in_memory: Cache<u64, Moka> = Cache::builder(Moka::default()).build().unwrap();
    let fill = |tagged: u64, others: u64| {
        rt.block_on(async {
            let users = in_memory.with_tags(["users"]);
            let users_in_redis = in_redis.with_tags(["users"]);
            for i in 0..tagged {
                users.insert(format!("users:{i}"), i).await;
                if others == 0 {
                    users_in_redis.insert(format!("users:{i}"), i).await;
                }
            }
            for i in 0..others {
                in_memory.insert(format!("other:{i}"), i).await;
            }
        })
    };
    let mut group = c.benchmark_group("invalidate_tag");
    group.sample_size(10);
    group.bench_function("moka_10000_tagged", |b| {
        b.iter_batched(
            || fill(10_000, 0),
            |()| {
                let done = rt.block_on(in_memory.invalidate_tag("users")).unwrap();
                assert_eq!(done.entries, Some(10_000));
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("redis_10000_tagged", |b| {
        b.iter_batched(
            || fill(10_000, 0),
            |()| {
                let done = rt.block_on(in_redis.invalidate_tag("users")).unwrap();
                assert_eq!(done.entries, Some(10_000));
            },
            BatchSize::PerIteration,
        );
    });
    rt.block_on(in_memory.clear()).unwrap();
    fill(0, 99_990);
    group.bench_function("moka_10_tagged_of_100000", |b| {
        b.iter_batched(
            || fill(10, 0),
            |()| {
                let done = rt.block_on(in_memory.invalidate_tag("users")).unwrap();
                assert_eq!(done.entries, Some(10));
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    drop(server);
}

/// What tags cost where it matters: storing an entry (its listings in the index) and a hit
/// (nothing: the index is not read on a hit).
fn tag_cost(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("tag_cost");
    let plain: Cache<u64, Moka> = Cache::builder(Moka::default()).build().unwrap();
    let tagged: Cache<u64, Moka> = Cache::builder(Moka::default())
        .tags(["users", "accounts"])
        .build()
        .unwrap();
    for (name, cache) in [("untagged", &plain), ("two_tags", &tagged)] {
        group.bench_function(format!("store/{name}"), |b| {
            b.iter(|| rt.block_on(cache.insert("user:42", 42)));
        });
        rt.block_on(cache.insert("user:42", 42));
        group.bench_function(format!("hit/{name}"), |b| {
            b.iter(|| black_box(rt.block_on(cache.get_or_compute("user:42", || async { 0 }))));
        });
    }
    group.finish();
}

criterion_group!(benches, one_key, pattern, tags, tag_cost);
criterion_main!(benches);
