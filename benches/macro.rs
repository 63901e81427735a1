//! Does the macro add anything at run time? A hit on a `#[cached_handler]` function against
//! the same hit written by hand with `Cache::get_or_compute` on the same kind of store.
//!
//! Run with `cargo bench -p layercake-benches --bench macro`.

#![allow(missing_docs)]

use std::{hint::black_box, sync::LazyLock, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use layercake::{Cache, GetSize, Moka, cached_handler};
use layercake_benches::poll_now;

#[derive(Clone, GetSize)]
struct Report {
    rows: Vec<u64>,
}

#[cached_handler(ttl = 3600)]
async fn by_macro(id: u64) -> Report {
    Report { rows: vec![id; 16] }
}

static BY_HAND: LazyLock<Cache<Report, Moka>> = LazyLock::new(|| {
    Cache::builder(Moka::default())
        .ttl(Duration::from_secs(3600))
        .build()
        .unwrap()
});

/// The same call by hand, keyed on the same information as the macro's key (the function's
/// path, a version, the argument), built without allocating.
async fn by_hand(id: u64) -> Report {
    const NAME: &[u8] = concat!(module_path!(), "::by_hand:1:").as_bytes();
    let mut key = [0u8; NAME.len() + 8];
    key[..NAME.len()].copy_from_slice(NAME);
    key[NAME.len()..].copy_from_slice(&id.to_le_bytes());
    BY_HAND
        .get_or_compute(key, move || async move { Report { rows: vec![id; 16] } })
        .await
}

fn hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        by_macro(7).await;
        by_hand(7).await;
    });
    let mut group = c.benchmark_group("function_hit");
    // Both hits are ready at once (Moka answers synchronously): polled without a runtime.
    group.bench_function("macro", |b| {
        b.iter(|| black_box(poll_now(by_macro(black_box(7))).rows.len()))
    });
    group.bench_function("get_or_compute", |b| {
        b.iter(|| black_box(poll_now(by_hand(black_box(7))).rows.len()))
    });
    group.finish();
}

criterion_group!(benches, hit);
criterion_main!(benches);
