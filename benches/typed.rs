//! What does a typed hit cost against a raw moka get of the same value?
//!
//! The value is a 1 KiB `String` behind an `Arc`, as a typed cache of something costly usually
//! holds it. The floor is a `moka::future::Cache<u64, Arc<String>>::get` of the same `Arc`; the
//! cases are `Cache::get_or_compute` on the default `Moka` store, and a `#[cached_handler]`
//! function on the same store. Every case is ready at once (a memory hit), so each is polled
//! once, without a runtime in the measurement.
//!
//! Run with `cargo bench -p layercake-benches --bench typed`.

#![allow(missing_docs)]

use std::{hint::black_box, sync::Arc, sync::LazyLock, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use layercake::{Cache, Moka, cached_handler};
use layercake_benches::poll_now;

fn value() -> Arc<String> {
    Arc::new("x".repeat(1024))
}

static CACHE: LazyLock<Cache<Arc<String>, Moka>> = LazyLock::new(|| {
    Cache::builder(Moka::default())
        .ttl(Duration::from_secs(3600))
        .build()
        .unwrap()
});

async fn typed(id: u64) -> Arc<String> {
    CACHE.get_or_compute(id, || async { value() }).await
}

#[cached_handler(ttl = 3600)]
async fn by_macro(id: u64) -> Arc<String> {
    let _ = id;
    value()
}

fn hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let raw: moka::future::Cache<u64, Arc<String>> = moka::future::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(3600))
        .build();
    rt.block_on(async {
        raw.insert(7, value()).await;
        typed(7).await;
        by_macro(7).await;
    });
    eprintln!(
        "future sizes: typed {} macro {}",
        std::mem::size_of_val(&typed(7)),
        std::mem::size_of_val(&by_macro(7))
    );
    let mut group = c.benchmark_group("typed_hit");
    group.bench_function("raw_moka_future_get", |b| {
        b.iter(|| black_box(poll_now(raw.get(black_box(&7))).map(|v| v.len())))
    });
    group.bench_function("get_or_compute", |b| {
        b.iter(|| black_box(poll_now(typed(black_box(7))).len()))
    });
    group.bench_function("macro", |b| {
        b.iter(|| black_box(poll_now(by_macro(black_box(7))).len()))
    });
    group.finish();
}

criterion_group!(benches, hit);
criterion_main!(benches);
