//! RFC 9111 §4.2.1: the origin's freshness lifetime (`s-maxage`, then `max-age`) is the
//! entry's, unless the layer overrides it. On tokio's paused clock, with exact upstream counts.

use std::time::Duration;

use http::{StatusCode, header::CACHE_CONTROL};
use layercake::{CacheLayer, Moka, layer::CacheControl};
use layercake_tests::{Origin, cache_status, fetch, get, text};
use tokio::time::advance;
use tower::Layer;

fn saying(directives: &'static str) -> Origin {
    Origin::new(move |_, n| async move {
        let mut response = text(StatusCode::OK, format!("v{n}"));
        response
            .headers_mut()
            .insert(CACHE_CONTROL, directives.parse().unwrap());
        Ok(response)
    })
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_2_1_max_age_from_the_origin_is_the_freshness_lifetime() {
    let origin = saying("max-age=5");
    let svc = CacheLayer::builder(Moka::default())
        .ttl(secs(60))
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&svc, get("/")).await;
    advance(secs(4)).await;
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(body, "v1");
    assert_eq!(cache_status(&parts), "layercake; hit; ttl=1");
    advance(secs(2)).await;
    assert_eq!(
        fetch(&svc, get("/")).await.1,
        "v2",
        "stale after 5 s, not 60"
    );
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_2_1_s_maxage_wins_over_max_age_in_a_shared_cache() {
    let origin = saying("public, max-age=5, s-maxage=20");
    let svc = CacheLayer::builder(Moka::default())
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&svc, get("/")).await;
    advance(secs(10)).await;
    assert_eq!(fetch(&svc, get("/")).await.1, "v1", "fresh for 20 s");
    advance(secs(11)).await;
    assert_eq!(fetch(&svc, get("/")).await.1, "v2");
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_2_1_max_age_zero_without_a_validator_is_not_stored() {
    let origin = saying("max-age=0");
    let svc = CacheLayer::builder(Moka::default())
        .build()
        .unwrap()
        .layer(origin.clone());
    let (parts, _) = fetch(&svc, get("/")).await;
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; detail=stale-on-arrival"
    );
    fetch(&svc, get("/")).await;
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn without_freshness_information_the_layer_ttl_applies() {
    let origin = Origin::ok("plain");
    let svc = CacheLayer::builder(Moka::default())
        .ttl(secs(30))
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&svc, get("/")).await;
    advance(secs(29)).await;
    fetch(&svc, get("/")).await;
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn cache_control_override_keeps_the_layer_ttl() {
    let origin = saying("max-age=5");
    let svc = CacheLayer::builder(Moka::default())
        .ttl(secs(60))
        .cache_control(CacheControl::Override)
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&svc, get("/")).await;
    advance(secs(30)).await;
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(body, "v1");
    assert_eq!(cache_status(&parts), "layercake; hit; ttl=30");
    assert_eq!(origin.calls(), 1);
}
