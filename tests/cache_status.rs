//! RFC 9211: every response says, in `Cache-Status`, what the cache did with it: `hit` and
//! `ttl`, or `fwd` with its reason, `fwd-status`, `stored`, `collapsed` and a `detail`. A real
//! hyper origin behind the example reverse proxy.

use std::time::Duration;

use http::{StatusCode, request::Parts};
use layercake::{CacheLayer, Moka, StalePolicy};
use layercake_tests::{
    cache_status, fetch,
    http_origin::{HttpOrigin, get_with, respond},
    request,
};
use tokio::{task::JoinSet, time::advance};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

async fn origin(headers: &'static [(&'static str, &'static str)]) -> HttpOrigin {
    HttpOrigin::versions(headers).await
}

async fn status_of<S, B>(
    proxy: &S,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> String
where
    S: tower::Service<
            http::Request<http_body_util::Full<bytes::Bytes>>,
            Response = http::Response<B>,
        > + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (parts, _) = fetch(proxy, request).await;
    cache_status(&parts).to_owned()
}

#[tokio::test(start_paused = true)]
async fn rfc9211_2_1_hit_and_2_2_ttl_count_down_and_go_negative_when_stale() {
    let origin = origin(&[("cache-control", "max-age=30")]).await;
    let layer = CacheLayer::builder(Moka::default())
        .stale(secs(60))
        .build()
        .unwrap();
    let proxy = origin.behind(&layer);
    let get = || get_with("/", &[]);
    assert_eq!(
        status_of(&proxy, get()).await,
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(
        status_of(&proxy, get()).await,
        "layercake; hit; ttl=30; detail=moka"
    );
    advance(secs(12)).await;
    assert_eq!(
        status_of(&proxy, get()).await,
        "layercake; hit; ttl=18; detail=moka"
    );
    advance(secs(20)).await;
    assert_eq!(
        status_of(&proxy, get()).await,
        "layercake; hit; ttl=-2; detail=moka"
    );
}

#[tokio::test(start_paused = true)]
async fn rfc9211_2_2_fwd_says_why_the_request_went_forward() {
    let origin = origin(&[
        ("cache-control", "max-age=10"),
        ("vary", "accept"),
        ("etag", "\"e\""),
    ])
    .await;
    let layer = CacheLayer::builder(Moka::default())
        .stale_policy(StalePolicy::Revalidate)
        .build()
        .unwrap();
    let proxy = origin.behind(&layer);
    let html = || get_with("/", &[("accept", "text/html")]);
    assert_eq!(
        status_of(&proxy, html()).await,
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(
        status_of(&proxy, get_with("/", &[("accept", "text/plain")])).await,
        "layercake; fwd=vary-miss; fwd-status=200; stored"
    );
    assert_eq!(
        status_of(
            &proxy,
            get_with(
                "/",
                &[("accept", "text/html"), ("cache-control", "no-cache")]
            )
        )
        .await,
        "layercake; fwd=request; fwd-status=200; stored"
    );
    advance(secs(11)).await;
    assert_eq!(
        status_of(&proxy, html()).await,
        "layercake; fwd=stale; fwd-status=200; stored"
    );
    assert_eq!(
        status_of(&proxy, request("DELETE", "/")).await,
        "layercake; fwd=method; fwd-status=200"
    );
}

#[tokio::test(start_paused = true)]
async fn rfc9211_2_2_fwd_bypass_when_the_key_extractor_declines() {
    let origin = origin(&[("cache-control", "max-age=10")]).await;
    let layer = CacheLayer::builder(Moka::default())
        .key(|parts: &Parts| parts.uri.path().strip_prefix("/cached/").map(str::to_owned))
        .build()
        .unwrap();
    let proxy = origin.behind(&layer);
    assert_eq!(
        status_of(&proxy, get_with("/elsewhere", &[])).await,
        "layercake; fwd=bypass; fwd-status=200; detail=key"
    );
    assert_eq!(
        status_of(&proxy, get_with("/cached/a", &[])).await,
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
}

#[tokio::test(start_paused = true)]
async fn rfc9211_2_4_fwd_status_is_what_the_origin_answered() {
    let origin = HttpOrigin::start(|_, _| async move { respond(503, &[], "down") }).await;
    let proxy = origin.behind(&CacheLayer::builder(Moka::default()).build().unwrap());
    let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=503; detail=status"
    );
}

#[tokio::test(start_paused = true)]
async fn rfc9211_2_7_detail_says_why_a_response_was_not_stored() {
    for (headers, detail) in [
        (&[("cache-control", "no-store")][..], "no-store"),
        (&[("cache-control", "private")][..], "private"),
        (&[("set-cookie", "a=b")][..], "set-cookie"),
        (&[("vary", "*")][..], "vary-star"),
        (&[("cache-control", "max-age=0")][..], "stale-on-arrival"),
    ] {
        let origin = origin(headers).await;
        let proxy = origin.behind(&CacheLayer::builder(Moka::default()).build().unwrap());
        assert_eq!(
            status_of(&proxy, get_with("/", &[])).await,
            format!("layercake; fwd=uri-miss; fwd-status=200; detail={detail}")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9211_2_5_stored_and_2_6_collapsed() {
    let origin = HttpOrigin::start(|_, n| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        respond(200, &[("cache-control", "max-age=60")], format!("v{n}"))
    })
    .await;
    let proxy = origin.behind(&CacheLayer::builder(Moka::default()).build().unwrap());
    let mut requests = JoinSet::new();
    for _ in 0..8 {
        let proxy = proxy.clone();
        requests.spawn(async move { status_of(&proxy, get_with("/", &[])).await });
    }
    let statuses = requests.join_all().await;
    let stored = statuses.iter().filter(|s| s.ends_with("; stored")).count();
    let collapsed = statuses
        .iter()
        .filter(|s| s.ends_with("; collapsed"))
        .count();
    assert_eq!((stored, collapsed), (1, 7), "{statuses:?}");
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn rfc9211_2_the_cache_name_is_configurable_and_follows_upstream_caches() {
    let origin = origin(&[
        ("cache-control", "max-age=60"),
        ("cache-status", "origin-cache; hit"),
    ])
    .await;
    let layer = CacheLayer::builder(Moka::default())
        .name("edge-1")
        .build()
        .unwrap();
    let proxy = origin.behind(&layer);
    assert_eq!(
        status_of(&proxy, get_with("/", &[])).await,
        "origin-cache; hit, edge-1; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(
        status_of(&proxy, get_with("/", &[])).await,
        "edge-1; hit; ttl=60; detail=moka"
    );
}
