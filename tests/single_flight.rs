//! Single-flight through the HTTP layer: one upstream call per cold key, and no waiter left
//! hanging whatever happens to the request that went upstream.

use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, header::SET_COOKIE};
use layercake::{CacheLayer, Moka};
use layercake_tests::{Error, Origin, cache_status, chunked, get, read, settle, text};
use tokio::{task::JoinSet, time::sleep};
use tower::{Layer, ServiceExt};

type Svc = layercake::layer::CacheService<Origin, Moka>;

fn layered(origin: &Origin) -> (CacheLayer<Moka>, Svc) {
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc = layer.layer(origin.clone());
    (layer, svc)
}

/// Starts `n` requests for `/` and returns their handles, in order of arrival.
fn spawn_requests(svc: &Svc, n: usize) -> JoinSet<Result<(String, Bytes), Error>> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let svc = svc.clone();
        set.spawn(async move {
            let response = svc.oneshot(get("/")).await?;
            let (parts, body) = read(response).await;
            Ok((cache_status(&parts).to_owned(), body))
        });
    }
    set
}

#[tokio::test(start_paused = true)]
async fn sixty_four_concurrent_requests_for_a_cold_key_make_one_upstream_call() {
    let origin = Origin::new(|_, n| async move {
        sleep(Duration::from_millis(200)).await;
        Ok(text(StatusCode::OK, format!("computed {n}")))
    });
    let (layer, svc) = layered(&origin);

    let results = spawn_requests(&svc, 64).join_all().await;
    assert_eq!(origin.calls(), 1);
    let mut stored = 0;
    let mut collapsed = 0;
    for result in results {
        let (status, body) = result.expect("every request is served");
        assert_eq!(body, "computed 1");
        match status.as_str() {
            "layercake; fwd=uri-miss; fwd-status=200; stored" => stored += 1,
            "layercake; fwd=uri-miss; fwd-status=200; collapsed" => collapsed += 1,
            other => panic!("unexpected Cache-Status {other}"),
        }
    }
    assert_eq!((stored, collapsed), (1, 63));
    settle().await;
    let stats = layer.stats();
    assert_eq!(
        (stats.misses, stats.coalesced, stats.stores, stats.in_flight),
        (64, 63, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_leader_hands_over_to_a_waiting_request() {
    let origin = Origin::new(|_, n| async move {
        sleep(Duration::from_millis(100)).await;
        if n == 1 {
            return Err("upstream exploded".into());
        }
        Ok(text(StatusCode::OK, format!("v{n}")))
    });
    let (_, svc) = layered(&origin);

    let results = spawn_requests(&svc, 10).join_all().await;
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors, ["upstream exploded"]);
    for (_, body) in results.iter().filter_map(|r| r.as_ref().ok()) {
        assert_eq!(body, "v2");
    }
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_leader_hands_over_to_a_waiting_request() {
    let origin = Origin::new(|_, n| async move {
        sleep(Duration::from_millis(100)).await;
        assert!(n != 1, "the first upstream call panics");
        Ok(text(StatusCode::OK, format!("v{n}")))
    });
    let (layer, svc) = layered(&origin);

    let mut set = spawn_requests(&svc, 10);
    let mut panics = 0;
    let mut served = 0;
    while let Some(joined) = set.join_next().await {
        match joined {
            Err(e) if e.is_panic() => panics += 1,
            Err(e) => panic!("unexpected join error {e}"),
            Ok(result) => {
                assert_eq!(result.expect("served").1, "v2");
                served += 1;
            }
        }
    }
    assert_eq!((panics, served), (1, 9));
    assert_eq!(origin.calls(), 2);
    settle().await;
    assert_eq!(layer.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_leader_hands_over_to_a_waiting_request() {
    let origin = Origin::new(|_, n| async move {
        // The first call would take a minute; its client gives up long before.
        let delay = if n == 1 { 60_000 } else { 100 };
        sleep(Duration::from_millis(delay)).await;
        Ok(text(StatusCode::OK, format!("v{n}")))
    });
    let (_, svc) = layered(&origin);

    let leader = tokio::spawn(svc.clone().oneshot(get("/")));
    sleep(Duration::from_millis(10)).await;
    assert_eq!(origin.calls(), 1);
    let followers = spawn_requests(&svc, 9);
    sleep(Duration::from_millis(10)).await;
    leader.abort();

    let started = tokio::time::Instant::now();
    for result in followers.join_all().await {
        assert_eq!(result.expect("served").1, "v2");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "followers did not wait for the dead leader"
    );
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_client_drops_the_body_hands_over() {
    let origin = Origin::new(|_, n| async move {
        sleep(Duration::from_millis(100)).await;
        let chunks = [format!("v{n}-a"), format!("v{n}-b")].map(Bytes::from);
        Ok(http::Response::new(chunked(chunks)))
    });
    let (_, svc) = layered(&origin);

    let leader = tokio::spawn(svc.clone().oneshot(get("/")));
    sleep(Duration::from_millis(10)).await;
    let followers = spawn_requests(&svc, 5);
    // The leader's client reads the head, then goes away without reading the body.
    let response = leader.await.unwrap().unwrap();
    drop(response);

    for result in followers.join_all().await {
        assert_eq!(result.expect("served").1, "v2-av2-b");
    }
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn waiters_go_upstream_in_parallel_when_the_response_cannot_be_shared() {
    let origin = Origin::new(|_, n| async move {
        sleep(Duration::from_millis(100)).await;
        let mut res = text(StatusCode::OK, format!("for you {n}"));
        res.headers_mut()
            .insert(SET_COOKIE, format!("id={n}").parse().unwrap());
        Ok(res)
    });
    let (layer, svc) = layered(&origin);

    let started = tokio::time::Instant::now();
    let results = spawn_requests(&svc, 10).join_all().await;
    // One round trip for the leader, one for everybody else at once, not ten in a row.
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(origin.calls(), 10);
    let mut bodies: Vec<Bytes> = results.into_iter().map(|r| r.unwrap().1).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(
        bodies.len(),
        10,
        "nobody received somebody else's private response"
    );
    assert_eq!(layer.stats().stores, 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_stops_waiting_after_the_lock_timeout() {
    let origin = Origin::new(|_, n| async move {
        let delay = if n == 1 { 60 } else { 1 };
        sleep(Duration::from_secs(delay)).await;
        Ok(text(StatusCode::OK, format!("v{n}")))
    });
    let layer = CacheLayer::builder(Moka::default())
        .lock_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());

    let _leader = tokio::spawn(svc.clone().oneshot(get("/")));
    sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    let (parts, body) = read(svc.clone().oneshot(get("/")).await.unwrap()).await;
    assert_eq!(body, "v2");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(origin.calls(), 2);
}
