//! What do metrics cost? (feature `metrics`, on for every bench through the test crate.) A hit
//! has no metrics code at all: counters are published at scrape time. A miss records the
//! upstream call's duration (and, for tiers that must be awaited, the read's and the write's):
//! here a miss that stores, with no recorder installed and with a Prometheus recorder.
//!
//! Run with `cargo bench -p layercake-benches --bench metrics`; results in `benches/README.md`.

#![allow(missing_docs)]

use std::{
    hint::black_box,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Uri};
use http_body_util::Full;
use layercake::{CacheLayer, Moka};
use layercake_benches::Origin;
use tower::Layer;

fn miss_with_and_without_a_recorder(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics");
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc = layer.layer(Origin::new(1024));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let n = AtomicU64::new(0);
    let miss = || {
        let uri: Uri = format!("/miss/{}", n.fetch_add(1, Relaxed))
            .parse()
            .unwrap();
        let mut request = Request::new(Full::<Bytes>::default());
        *request.uri_mut() = uri;
        rt.block_on(async {
            let response = tower::ServiceExt::oneshot(svc.clone(), request)
                .await
                .unwrap();
            let body = http_body_util::BodyExt::collect(response.into_body()).await;
            tokio::task::yield_now().await;
            black_box(body.unwrap())
        })
    };
    group.bench_function("miss_and_store_1KiB_no_recorder", |b| b.iter(miss));
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    group.bench_function("miss_and_store_1KiB_prometheus", |b| {
        b.iter(|| metrics::with_local_recorder(&recorder, miss))
    });
    group.finish();
}

criterion_group!(benches, miss_with_and_without_a_recorder);
criterion_main!(benches);
