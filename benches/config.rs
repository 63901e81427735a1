//! What does a configured cache cost? A hit through a layer built from a configuration file
//! (the erased `DynBackend` stack, boxed predicates and key) next to the same layer built in
//! code (generic, nothing boxed); and through the reloadable `ConfiguredLayer`, which loads the
//! current configuration on every request.
//!
//! Run with `cargo bench -p layercake-benches --bench config`; results are in `benches/README.md`.

#![allow(missing_docs)]

use std::{
    hint::black_box,
    task::{Context, Waker},
};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Method, Request, Response, Uri, header};
use http_body::Body;
use http_body_util::Full;
use layercake::{
    CacheLayer, Moka,
    compose::Compose,
    config::{Config, ConfiguredLayer},
    layer::{Headers, Path, key::Query},
    predicate::{RequestPredicate, request},
};
use layercake_benches::{Origin, call_and_read, poll_now};
use tower::{Layer, Service};

fn get(uri: &Uri) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::default());
    *request.uri_mut() = uri.clone();
    request
}

/// Stores the response to `uri` through `svc`, and checks the next call is a hit.
fn warm<S, B>(rt: &tokio::runtime::Runtime, svc: &mut S, uri: &Uri)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: Body,
    B::Error: std::fmt::Debug,
{
    rt.block_on(async {
        let response = tower::ServiceExt::oneshot(svc.clone(), get(uri))
            .await
            .unwrap();
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    });
    let mut cx = Context::from_waker(Waker::noop());
    assert!(svc.poll_ready(&mut cx).is_ready());
    let response = poll_now(svc.call(get(uri))).unwrap();
    let status = response.headers()["cache-status"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(status.contains("; hit"), "a hit: {status}");
}

/// Two Moka tiers, a three-part request rule and a three-part key, written once in code and
/// once in YAML.
const RULES: &str = r#"
backend: { compose: { l1: { moka: {} }, l2: { moka: {} } } }
request:
  all:
    - { method: [GET] }
    - { path_prefix: /products }
    - not: { header: { name: x-no-cache } }
key: [path, { query: { only: [page] } }, { headers: [accept-language] }]
"#;

fn configured(c: &mut Criterion) {
    let mut group = c.benchmark_group("configured");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let uri = Uri::from_static("/products/7?page=2&utm_source=mail");
    let origin = Origin {
        body: Bytes::from(vec![b'x'; 1024]),
    };

    // One Moka tier, the default rules.
    let mut code = CacheLayer::builder(Moka::default())
        .build()
        .unwrap()
        .layer(origin.clone());
    warm(&rt, &mut code, &uri);
    group.bench_function("moka/code", |b| {
        b.iter(|| black_box(call_and_read(&mut code, get(&uri))))
    });
    let built = rt.block_on(Config::default().build()).unwrap();
    let mut file = built.layer(origin.clone());
    warm(&rt, &mut file, &uri);
    group.bench_function("moka/configured", |b| {
        b.iter(|| black_box(call_and_read(&mut file, get(&uri))))
    });
    let reloadable = rt
        .block_on(ConfiguredLayer::new(Config::default()))
        .unwrap();
    let mut reloadable = reloadable.layer(origin.clone());
    warm(&rt, &mut reloadable, &uri);
    group.bench_function("moka/configured_reloadable", |b| {
        b.iter(|| black_box(call_and_read(&mut reloadable, get(&uri))))
    });

    // Two tiers and three-part rules.
    let tiers: Compose<Moka, Moka> = Compose::new(Moka::default(), Moka::default());
    let mut code = CacheLayer::builder(tiers)
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
        .unwrap()
        .layer(origin.clone());
    warm(&rt, &mut code, &uri);
    group.bench_function("tiers_and_rules/code", |b| {
        b.iter(|| black_box(call_and_read(&mut code, get(&uri))))
    });
    let config = Config::from_yaml(RULES).unwrap();
    let built = rt.block_on(config.build()).unwrap();
    let mut file = built.layer(origin.clone());
    warm(&rt, &mut file, &uri);
    group.bench_function("tiers_and_rules/configured", |b| {
        b.iter(|| black_box(call_and_read(&mut file, get(&uri))))
    });
    let reloadable = rt.block_on(ConfiguredLayer::new(config)).unwrap();
    let mut reloadable = reloadable.layer(origin);
    warm(&rt, &mut reloadable, &uri);
    group.bench_function("tiers_and_rules/configured_reloadable", |b| {
        b.iter(|| black_box(call_and_read(&mut reloadable, get(&uri))))
    });
    group.finish();
}

criterion_group!(benches, configured);
criterion_main!(benches);
