//! What does a hit cost? The layer's hit (1 KiB and 128 KiB bodies) next to its floor — a raw
//! moka get of the same data plus rebuilding the response — and next to the same inner service
//! without the layer; then a miss that stores, and a pass-through.
//!
//! Run with `cargo bench -p layercake-benches`; results and ratios are in `benches/README.md`.

#![allow(missing_docs)]

use std::{
    hint::black_box,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body::Body;
use http_body_util::Full;
use layercake::{CacheLayer, Moka, layer::CacheService};
use layercake_benches::{Origin, poll_now};
use tower::{Layer, Service};

fn request(method: Method, uri: Uri) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::default());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    request
}

/// Calls the service and reads the first frame of the body, as a server would.
fn call_and_read<S, B>(svc: &mut S, req: Request<Full<Bytes>>) -> Option<Bytes>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(svc.poll_ready(&mut cx).is_ready());
    let response = poll_now(svc.call(req)).unwrap();
    let mut body = pin!(response.into_body());
    match body.as_mut().poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().ok(),
        _ => None,
    }
}

fn hit(c: &mut Criterion) {
    let mut group = c.benchmark_group("hit");
    for (label, size) in [("1KiB", 1024), ("128KiB", 128 * 1024)] {
        let body = Bytes::from(vec![b'x'; size]);
        let origin = Origin { body: body.clone() };

        // The layer, warmed with one stored entry.
        let layer = CacheLayer::builder(Moka::default()).build().unwrap();
        let mut svc: CacheService<Origin, Moka> = layer.layer(origin.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let uri = Uri::from_static("/bench");
            let response = tower::ServiceExt::oneshot(svc.clone(), request(Method::GET, uri))
                .await
                .unwrap();
            http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap();
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
        });
        assert_eq!(layer.stats().stores, 1, "the bench entry is stored");

        group.bench_function(BenchmarkId::new("layer", label), |b| {
            b.iter(|| {
                let req = request(Method::GET, Uri::from_static("/bench"));
                black_box(call_and_read(&mut svc, req))
            })
        });

        // The floor: a raw moka get of the same data, then rebuilding the response from it.
        let raw: moka::sync::Cache<String, Arc<(StatusCode, HeaderMap, Bytes)>> =
            moka::sync::Cache::new(10_000);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        raw.insert(
            "/bench".to_owned(),
            Arc::new((StatusCode::OK, headers, body.clone())),
        );
        group.bench_function(BenchmarkId::new("raw_moka_get_and_rebuild", label), |b| {
            b.iter(|| {
                let entry = raw.get(black_box("/bench")).unwrap();
                let mut response = Response::new(Full::new(entry.2.clone()));
                *response.status_mut() = entry.0;
                response.headers_mut().clone_from(&entry.1);
                black_box(response)
            })
        });

        // The same inner service without the layer.
        let mut bare = origin;
        group.bench_function(BenchmarkId::new("no_layer", label), |b| {
            b.iter(|| {
                let req = request(Method::GET, Uri::from_static("/bench"));
                black_box(call_and_read(&mut bare, req))
            })
        });
    }
    group.finish();
}

fn miss_and_pass(c: &mut Criterion) {
    let mut group = c.benchmark_group("miss");
    let body = Bytes::from(vec![b'x'; 1024]);
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc: CacheService<Origin, Moka> = layer.layer(Origin { body });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let n = AtomicU64::new(0);

    // A new key each time: lookup, single-flight, upstream, recording body, store.
    group.bench_function("miss_and_store_1KiB", |b| {
        b.iter(|| {
            let uri: Uri = format!("/miss/{}", n.fetch_add(1, Relaxed))
                .parse()
                .unwrap();
            rt.block_on(async {
                let response = tower::ServiceExt::oneshot(svc.clone(), request(Method::GET, uri))
                    .await
                    .unwrap();
                let body = http_body_util::BodyExt::collect(response.into_body()).await;
                // Let the store task run, as a server's runtime would.
                tokio::task::yield_now().await;
                black_box(body.unwrap())
            })
        })
    });

    // A method the cache does not handle: straight to the inner service (and, as POST is
    // unsafe, the invalidation of GET /bench when it succeeds: RFC 9111 §4.4).
    let _runtime = rt.enter();
    let mut svc = svc.clone();
    group.bench_function("pass_through_post", |b| {
        b.iter(|| {
            let req = request(Method::POST, Uri::from_static("/bench"));
            black_box(call_and_read(&mut svc, req))
        })
    });
    group.finish();
}

criterion_group!(benches, hit, miss_and_pass);
criterion_main!(benches);
