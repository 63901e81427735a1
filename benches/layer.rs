//! What does a hit cost? The layer's hit (1 KiB and 128 KiB bodies) next to its floor — a raw
//! moka get of the same data plus rebuilding the response — and next to the same inner service
//! without the layer; then a miss that stores, and a pass-through.
//!
//! Run with `cargo bench -p layercake-benches`; results and ratios are in `benches/README.md`.

#![allow(missing_docs)]

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body::Body;
use http_body_util::Full;
use layercake::{CacheLayer, Moka, layer::CacheService};
use layercake_benches::{Origin, call_and_read};
use tower::{Layer, Service};

fn request(method: Method, uri: Uri) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::default());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    request
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
        warm(&rt, &svc, request(Method::GET, Uri::from_static("/bench")));
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

/// An origin whose responses carry `headers`, that answers any `If-None-Match` with `304`.
#[derive(Clone)]
struct Validating {
    body: Bytes,
    headers: HeaderMap,
}

impl Service<Request<Full<Bytes>>> for Validating {
    type Response = Response<Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let conditional = request.headers().contains_key(header::IF_NONE_MATCH);
        let mut response = Response::new(Full::new(if conditional {
            Bytes::new()
        } else {
            self.body.clone()
        }));
        if conditional {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
        }
        response.headers_mut().clone_from(&self.headers);
        std::future::ready(Ok(response))
    }
}

/// Stores the response to `request` through `svc` on `rt`.
fn warm<S, B>(rt: &tokio::runtime::Runtime, svc: &S, request: Request<Full<Bytes>>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: Body,
    B::Error: std::fmt::Debug,
{
    rt.block_on(async {
        let response = tower::ServiceExt::oneshot(svc.clone(), request)
            .await
            .unwrap();
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    });
}

/// RFC 9111 on the hit path and around it: a hit on a URL that varies (two lookups), a
/// client's conditional request answered `304` from the cache, and a stale entry revalidated
/// upstream with a `304` (the stored body kept, not re-sent).
fn http_semantics(c: &mut Criterion) {
    let mut group = c.benchmark_group("rfc9111");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    let with_accept_encoding = || {
        let mut request = request(Method::GET, Uri::from_static("/bench"));
        request.headers_mut().insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br"),
        );
        request
    };

    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let mut svc = layer.layer(Validating {
        body: body.clone(),
        headers,
    });
    warm(&rt, &svc, with_accept_encoding());
    assert_eq!(layer.stats().stores, 2, "the variant and the URL's list");
    group.bench_function("hit_with_vary_1KiB", |b| {
        b.iter(|| black_box(call_and_read(&mut svc, with_accept_encoding())))
    });

    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let mut svc = layer.layer(Validating {
        body: body.clone(),
        headers: headers.clone(),
    });
    warm(&rt, &svc, request(Method::GET, Uri::from_static("/bench")));
    group.bench_function("client_304_from_the_cache", |b| {
        b.iter(|| {
            let mut req = request(Method::GET, Uri::from_static("/bench"));
            req.headers_mut()
                .insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"v1\""));
            black_box(call_and_read(&mut svc, req))
        })
    });

    // `no-cache`: every use is a revalidation; the origin answers 304 each time.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc = layer.layer(Validating { body, headers });
    warm(&rt, &svc, request(Method::GET, Uri::from_static("/bench")));
    group.bench_function("revalidation_304_1KiB", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = request(Method::GET, Uri::from_static("/bench"));
                let response = tower::ServiceExt::oneshot(svc.clone(), req).await.unwrap();
                debug_assert_eq!(response.status(), StatusCode::OK);
                black_box(http_body_util::BodyExt::collect(response.into_body()).await)
            })
        })
    });
    group.finish();
}

/// A hit through a layer with three combined request predicates and a three-part key
/// extractor, next to the default layer's hit on the same request.
fn predicates(c: &mut Criterion) {
    use layercake::{
        layer::{Headers, Path, key::Query},
        predicate::{RequestPredicate, request},
    };

    let mut group = c.benchmark_group("predicates");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let uri = Uri::from_static("/products/7?page=2&utm_source=mail");
    let origin = Origin {
        body: Bytes::from(vec![b'x'; 1024]),
    };

    let plain = CacheLayer::builder(Moka::default()).build().unwrap();
    let mut plain = plain.layer(origin.clone());
    warm(&rt, &plain, request(Method::GET, uri.clone()));
    group.bench_function("default_layer_hit_1KiB", |b| {
        b.iter(|| black_box(call_and_read(&mut plain, request(Method::GET, uri.clone()))))
    });

    let layer = CacheLayer::builder(Moka::default())
        .cache_if(
            request::method(Method::GET)
                .and(request::path_prefix("/products"))
                .and(request::header("x-no-cache").not()),
        )
        .key((
            Path,
            Query::only(["page"]),
            Headers::new([header::ACCEPT_LANGUAGE]),
        ))
        .build()
        .unwrap();
    let mut svc = layer.layer(origin);
    warm(&rt, &svc, request(Method::GET, uri.clone()));
    assert_eq!(layer.stats().stores, 1, "the bench entry is stored");
    group.bench_function("three_predicates_three_part_key_hit_1KiB", |b| {
        b.iter(|| black_box(call_and_read(&mut svc, request(Method::GET, uri.clone()))))
    });
    group.finish();
}

criterion_group!(benches, hit, miss_and_pass, http_semantics, predicates);
criterion_main!(benches);
