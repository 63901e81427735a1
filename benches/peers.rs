//! layercake next to a published peer in the same harness: `tower-http-cache` 0.6 on its
//! in-memory (moka) backend, in front of the same origin, measured the same way.
//!
//! Run with `cargo bench -p layercake-benches --bench peers`.

#![allow(missing_docs)]

use std::{
    convert::Infallible,
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, Uri, header};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use layercake::{CacheLayer, Moka};
use tower::{Layer, Service, ServiceExt};

/// An origin answering 1 KiB of text, counting its calls.
fn origin(
    calls: Arc<AtomicUsize>,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    let body = Bytes::from(vec![b'x'; 1024]);
    tower::service_fn(move |_: Request<Full<Bytes>>| {
        calls.fetch_add(1, Relaxed);
        let mut response = Response::new(Full::new(body.clone()));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        std::future::ready(Ok::<_, Infallible>(response))
    })
}

/// One request through `svc`, its body read whole, then one yield so that work a cache hands
/// to a task of its own (the store) runs, as on a server's runtime.
async fn exchange<S, B>(svc: &S, uri: Uri) -> Bytes
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut request = Request::new(Full::default());
    *request.uri_mut() = uri;
    let response = svc.clone().oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    tokio::task::yield_now().await;
    body
}

fn miss_and_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (ours_calls, peer_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let ours = CacheLayer::builder(Moka::default())
        .ttl(Duration::from_secs(600))
        .build()
        .unwrap()
        .layer(origin(Arc::clone(&ours_calls)));
    let peer = tower_http_cache::CacheLayer::builder(
        tower_http_cache::backend::memory::InMemoryBackend::new(1_000_000),
    )
    .ttl(Duration::from_secs(600))
    .build()
    .layer(origin(Arc::clone(&peer_calls)));

    // Both cache: a second request for a URL does not reach the origin.
    rt.block_on(async {
        for _ in 0..2 {
            exchange(&ours, Uri::from_static("/hot")).await;
            exchange(&peer, Uri::from_static("/hot")).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        exchange(&ours, Uri::from_static("/hot")).await;
        exchange(&peer, Uri::from_static("/hot")).await;
    });
    assert_eq!(ours_calls.load(Relaxed), 1, "layercake did not cache");
    assert_eq!(
        peer_calls.load(Relaxed),
        1,
        "tower-http-cache did not cache"
    );

    let mut group = c.benchmark_group("peers");
    let n = AtomicU64::new(0);
    let fresh = || -> Uri {
        format!("/miss/{}", n.fetch_add(1, Relaxed))
            .parse()
            .unwrap()
    };
    group.bench_function("miss_and_store_1KiB/layercake", |b| {
        b.iter(|| black_box(rt.block_on(exchange(&ours, fresh()))))
    });
    group.bench_function("miss_and_store_1KiB/tower_http_cache", |b| {
        b.iter(|| black_box(rt.block_on(exchange(&peer, fresh()))))
    });
    group.bench_function("hit_1KiB/layercake", |b| {
        b.iter(|| black_box(rt.block_on(exchange(&ours, Uri::from_static("/hot")))))
    });
    group.bench_function("hit_1KiB/tower_http_cache", |b| {
        b.iter(|| black_box(rt.block_on(exchange(&peer, Uri::from_static("/hot")))))
    });
    group.finish();
}

criterion_group!(benches, miss_and_hit);
criterion_main!(benches);
