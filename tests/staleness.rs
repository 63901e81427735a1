//! Keeping latency flat when entries expire: stale-while-revalidate, refresh before expiry,
//! stale-if-error and the dogpile width, on tokio's paused clock with exact upstream counts.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use http::StatusCode;
use layercake::{
    Cache, CacheLayer, Moka, StalePolicy,
    offload::{OffloadManager, OffloadTimeout},
};
use layercake_tests::{Origin, cache_status, fetch, get, settle, text};
use tokio::{
    task::JoinSet,
    time::{advance, sleep},
};
use tower::Layer;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// An origin that answers `v1`, `v2`, … after `delay`.
fn versions(delay: Duration) -> Origin {
    Origin::new(move |_, n| async move {
        sleep(delay).await;
        Ok(text(StatusCode::OK, format!("v{n}")))
    })
}

/// An origin that answers `v1` once, then `503` with `v<n>`.
fn ok_once_then_unavailable() -> Origin {
    Origin::new(|_, n| async move {
        let status = if n == 1 {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        Ok(text(status, format!("v{n}")))
    })
}

#[tokio::test(start_paused = true)]
async fn hundred_stale_hits_trigger_exactly_one_background_refresh() {
    let origin = versions(Duration::from_millis(500));
    let layer = CacheLayer::builder(Moka::default())
        .ttl(secs(10))
        .stale(secs(60))
        .stale_policy(StalePolicy::OffloadRevalidate)
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/")).await;
    advance(secs(15)).await;

    let started = tokio::time::Instant::now();
    let mut hits = JoinSet::new();
    for _ in 0..100 {
        let svc = svc.clone();
        hits.spawn(async move { fetch(&svc, get("/")).await });
    }
    for (parts, body) in hits.join_all().await {
        assert_eq!(body, "v1", "served the stale entry");
        // Stale by 5.5 s: the 0.5 s the origin took counts in the entry's age (RFC 9111
        // §4.2.3), and ttl is rounded down.
        assert_eq!(
            cache_status(&parts),
            "layercake; hit; ttl=-6; fwd=stale; detail=moka"
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "nobody waited for the refresh"
    );

    sleep(Duration::from_secs(1)).await; // the refresh takes 500 ms
    assert_eq!(origin.calls(), 2, "one initial fetch, one refresh");
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(body, "v2");
    assert!(
        cache_status(&parts).starts_with("layercake; hit; ttl=9; detail=moka"),
        "{}",
        cache_status(&parts)
    );
    let offload = layer.offload().stats();
    assert_eq!(
        (offload.spawned, offload.completed, offload.deduplicated),
        (1, 1, 99)
    );
    let stats = layer.stats();
    assert_eq!(
        (stats.stale_hits, stats.refreshes, stats.stores),
        (100, 1, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_refresh_keeps_serving_stale_until_the_window_ends_then_misses() {
    let origin = ok_once_then_unavailable();
    let layer = CacheLayer::builder(Moka::default())
        .ttl(secs(10))
        .stale(secs(30))
        .stale_policy(StalePolicy::OffloadRevalidate)
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/")).await;

    for at in [15, 25, 35] {
        advance(secs(10)).await;
        let (parts, body) = fetch(&svc, get("/")).await;
        assert_eq!(body, "v1", "stale at {at} s");
        assert!(cache_status(&parts).ends_with("fwd=stale; detail=moka"));
        settle().await;
    }
    // Each stale hit after a failed refresh tried once more: three refreshes, all failed.
    assert_eq!(origin.calls(), 4);
    assert_eq!(layer.offload().stats().failed, 3);

    advance(secs(10)).await; // 45 s: past ttl + stale
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "v5");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=503; detail=status"
    );
    assert_eq!(origin.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_cancel_timeout_stops_a_hung_refresh() {
    let origin = Origin::new(|_, n| async move {
        if n == 2 {
            sleep(Duration::from_secs(3600)).await; // the refresh hangs
        }
        Ok(text(StatusCode::OK, format!("v{n}")))
    });
    let offload = OffloadManager::builder()
        .timeout(OffloadTimeout::Cancel(secs(5)))
        .build();
    let layer = CacheLayer::builder(Moka::default())
        .ttl(secs(10))
        .stale(secs(60))
        .stale_policy(StalePolicy::OffloadRevalidate)
        .offload(offload.clone())
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/")).await;
    advance(secs(15)).await;

    fetch(&svc, get("/")).await;
    settle().await;
    assert_eq!(offload.stats().active, 1);
    sleep(secs(6)).await;
    let stats = offload.stats();
    assert_eq!((stats.active, stats.timed_out, stats.completed), (0, 1, 0));

    // The hung refresh no longer blocks the key: the next stale hit refreshes it.
    fetch(&svc, get("/")).await;
    sleep(secs(1)).await;
    assert_eq!(origin.calls(), 3);
    assert_eq!(fetch(&svc, get("/")).await.1, "v3");
    assert_eq!(offload.stats().completed, 1);
}

#[tokio::test(start_paused = true)]
async fn refresh_before_keeps_a_key_fresh_under_steady_load_with_one_refresh_per_period() {
    let origin = versions(Duration::ZERO);
    let layer = CacheLayer::builder(Moka::default())
        .ttl(secs(10))
        .refresh_before(secs(2))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/")).await;

    // One request a second for a minute. An entry is refreshed when served with 2 s or less
    // left, i.e. 8 s after it was stored: at 8, 16, 24, 32, 40, 48 and 56 s.
    for second in 1..=60 {
        advance(secs(1)).await;
        let (parts, _) = fetch(&svc, get("/")).await;
        assert!(
            cache_status(&parts).starts_with("layercake; hit; ttl="),
            "second {second}: {}",
            cache_status(&parts)
        );
    }
    assert_eq!(origin.calls(), 1 + 7);
    let stats = layer.stats();
    assert_eq!((stats.misses, stats.hits, stats.refreshes), (1, 60, 7));
}

#[tokio::test(start_paused = true)]
async fn width_two_runs_exactly_two_upstream_calls_for_fifty_waiters() {
    // The second call answers first: its result is the one shared and stored.
    let origin = Origin::new(|_, n| async move {
        sleep(Duration::from_millis(if n == 1 { 200 } else { 100 })).await;
        Ok(text(StatusCode::OK, format!("v{n}")))
    });
    let layer = CacheLayer::builder(Moka::default())
        .concurrency(2)
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());

    let mut requests = JoinSet::new();
    for _ in 0..50 {
        let svc = svc.clone();
        requests.spawn(async move { fetch(&svc, get("/")).await.1 });
    }
    let mut bodies = requests.join_all().await;
    bodies.sort();
    assert_eq!(origin.calls(), 2);
    assert_eq!(bodies.iter().filter(|b| *b == "v2").count(), 49);
    assert_eq!(
        bodies.iter().filter(|b| *b == "v1").count(),
        1,
        "the slower leader's own client"
    );
    let stats = layer.stats();
    assert_eq!((stats.stores, stats.coalesced), (1, 48));
    assert_eq!(fetch(&svc, get("/")).await.1, "v2");
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_serves_stale_on_503_and_not_after_its_window() {
    let origin = ok_once_then_unavailable();
    let layer = CacheLayer::builder(Moka::default())
        .ttl(secs(10))
        .stale_if_error(secs(60))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/")).await;

    advance(secs(15)).await;
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "v1");
    assert_eq!(
        cache_status(&parts),
        "layercake; hit; ttl=-5; fwd=stale; fwd-status=503; detail=stale-if-error"
    );
    assert_eq!(origin.calls(), 2, "upstream was asked first");
    assert_eq!(layer.stats().stale_if_error, 1);

    advance(secs(60)).await; // 75 s: past ttl + stale-if-error
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "v3");
    assert_eq!(origin.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_covers_upstream_errors_and_timeouts() {
    let origin = Origin::new(|_, n| async move {
        match n {
            1 => Ok(text(StatusCode::OK, "v1")),
            2 => Err("connection refused".into()),
            _ => {
                sleep(Duration::from_secs(3600)).await;
                Ok(text(StatusCode::OK, "too late"))
            }
        }
    });
    let layer = CacheLayer::builder(Moka::default())
        .ttl(secs(10))
        .stale_if_error(secs(60))
        .upstream_timeout(secs(2))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/")).await;
    advance(secs(15)).await;

    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(body, "v1");
    assert_eq!(
        cache_status(&parts),
        "layercake; hit; ttl=-5; fwd=stale; detail=stale-if-error"
    );

    let started = tokio::time::Instant::now();
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(body, "v1");
    assert_eq!(
        started.elapsed(),
        secs(2),
        "the slow upstream was given up after 2 s"
    );
    assert!(cache_status(&parts).ends_with("detail=stale-if-error"));
    assert_eq!(origin.calls(), 3);
    assert_eq!(layer.stats().stale_if_error, 2);
}

#[tokio::test(start_paused = true)]
async fn revalidate_waits_for_a_fresh_entry_and_says_stale() {
    let origin = versions(Duration::from_millis(100));
    let layer = CacheLayer::builder(Moka::default())
        .ttl(secs(10))
        .stale(secs(30))
        .stale_policy(StalePolicy::Revalidate)
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/")).await;
    advance(secs(15)).await;
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(body, "v2");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=stale; fwd-status=200; stored"
    );
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn typed_cache_revalidates_in_the_background_once_for_many_stale_reads() {
    let values: Cache<String, Moka> = Cache::builder(Moka::default())
        .ttl(secs(10))
        .stale(secs(60))
        .stale_policy(StalePolicy::OffloadRevalidate)
        .build()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let compute = || {
        let calls = Arc::clone(&calls);
        move || async move {
            let n = calls.fetch_add(1, SeqCst) + 1;
            sleep(Duration::from_millis(500)).await;
            format!("v{n}")
        }
    };
    assert_eq!(values.get_or_compute("k", compute()).await, "v1");
    advance(secs(15)).await;
    for _ in 0..100 {
        assert_eq!(values.get_or_compute("k", compute()).await, "v1");
    }
    sleep(secs(1)).await;
    assert_eq!(calls.load(SeqCst), 2);
    assert_eq!(values.get_or_compute("k", compute()).await, "v2");
    assert_eq!(values.offload().stats().deduplicated, 99);
}

#[tokio::test(start_paused = true)]
async fn typed_cache_serves_stale_when_the_computation_fails() {
    let values: Cache<u32, Moka> = Cache::builder(Moka::default())
        .ttl(secs(10))
        .stale_if_error(secs(60))
        .build()
        .unwrap();
    values
        .try_get_or_compute("k", || async { Ok::<_, String>(1) })
        .await
        .unwrap();
    advance(secs(15)).await;
    let failed = || async { Err::<u32, String>("db down".into()) };
    assert_eq!(values.try_get_or_compute("k", failed).await, Ok(1));
    assert_eq!(values.stats().stale_if_error, 1);
    advance(secs(60)).await;
    assert_eq!(
        values.try_get_or_compute("k", failed).await,
        Err("db down".into())
    );
}

#[test]
fn refresh_before_must_be_shorter_than_the_ttl() {
    let err = CacheLayer::builder(Moka::default())
        .ttl(secs(10))
        .refresh_before(secs(10))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "refresh_before (10s) must be greater than zero and shorter than the ttl (10s)"
    );
    let err = CacheLayer::builder(Moka::default())
        .concurrency(0)
        .build()
        .unwrap_err();
    assert_eq!(err, layercake::BuildError::ZeroConcurrency);
}
