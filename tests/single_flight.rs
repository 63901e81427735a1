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
async fn a_failing_leaders_waiters_go_upstream_at_once_not_one_after_another() {
    let origin = Origin::new(|_, n| async move {
        sleep(Duration::from_millis(100)).await;
        if n == 1 {
            return Err("upstream exploded".into());
        }
        Ok(text(StatusCode::OK, "ok"))
    });
    let (_, svc) = layered(&origin);

    let started = tokio::time::Instant::now();
    let results = spawn_requests(&svc, 10).join_all().await;
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors, ["upstream exploded"]);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 9);
    // The service's error cannot be shared: the nine waiters went upstream together, as soon
    // as the leader failed (one call's time after it), not one after another.
    assert_eq!(origin.calls(), 10);
    assert_eq!(started.elapsed(), Duration::from_millis(200));
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
async fn a_leader_whose_client_drops_the_body_still_fills_the_cache() {
    let origin = Origin::new(|_, n| async move {
        sleep(Duration::from_millis(100)).await;
        let chunks = [format!("v{n}-a"), format!("v{n}-b")].map(Bytes::from);
        Ok(http::Response::new(chunked(chunks)))
    });
    let (_, svc) = layered(&origin);

    let leader = tokio::spawn(svc.clone().oneshot(get("/")));
    sleep(Duration::from_millis(10)).await;
    let followers = spawn_requests(&svc, 5);
    // The leader's client reads the head, then goes away without reading the body: the layer
    // reads it on, stores it, and serves the waiters from it.
    let response = leader.await.unwrap().unwrap();
    drop(response);

    for result in followers.join_all().await {
        assert_eq!(result.expect("served").1, "v1-av1-b");
    }
    assert_eq!(origin.calls(), 1);
}

/// A body whose frames are released one by one, by the test.
struct Gated(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl http_body::Body for Gated {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(http_body::Frame::data(c))))
    }
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_when_the_upstream_body_ends_not_when_the_leaders_client_reads_it() {
    let origin = Origin::new(|_, _| async move {
        sleep(Duration::from_millis(100)).await;
        let body =
            http_body_util::BodyExt::boxed(http_body_util::Full::new(Bytes::from("a whole body")));
        Ok(http::Response::new(body))
    });
    let (_, svc) = layered(&origin);

    // The leader's client takes the response head and then reads nothing.
    let leader = tokio::spawn(svc.clone().oneshot(get("/")));
    sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    let followers = spawn_requests(&svc, 5);
    let stalled = leader.await.unwrap().unwrap();
    for result in followers.join_all().await {
        let (status, body) = result.expect("served");
        assert_eq!(body, "a whole body");
        assert_eq!(status, "layercake; fwd=uri-miss; fwd-status=200; collapsed");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the waiters did not wait for the leader's client: {:?}",
        started.elapsed()
    );
    // The leader's client still gets its whole body when it reads at last.
    assert_eq!(read(stalled).await.1, "a whole body");
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_client_of_a_body_over_the_size_limit_reads_the_rest_at_its_own_pace() {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let rx = std::sync::Mutex::new(Some(rx));
    let origin = Origin::new(move |_, _| {
        let body = Gated(rx.lock().unwrap().take().expect("one call"));
        async move { Ok(http::Response::new(http_body_util::BodyExt::boxed(body))) }
    });
    let layer = CacheLayer::builder(Moka::default())
        .max_body_size(4)
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    let response = svc.oneshot(get("/")).await.unwrap();
    for chunk in ["ab", "cd", "ef", "gh"] {
        tx.send(Bytes::from(chunk)).unwrap();
    }
    drop(tx);
    let (parts, body) = read(response).await;
    assert_eq!(body, "abcdefgh", "every byte reaches the client, in order");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200"
    );
    settle().await;
    assert_eq!(layer.stats().stores, 0);
    assert_eq!(layer.stats().uncacheable, 1);
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

#[tokio::test(start_paused = true)]
async fn a_waiters_total_wait_is_bounded_by_the_lock_timeout_across_takeovers() {
    // Every upstream call hangs.
    let origin = Origin::new(|_, _| async move {
        sleep(Duration::from_secs(3600)).await;
        Ok(text(StatusCode::OK, "late"))
    });
    let layer = CacheLayer::builder(Moka::default())
        .lock_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());

    let first = tokio::spawn(svc.clone().oneshot(get("/")));
    sleep(Duration::from_millis(10)).await;
    let _waiters = spawn_requests(&svc, 2);
    sleep(Duration::from_secs(4)).await;
    // The leader's client goes away after 4 s: one waiter takes over, the other waits on.
    first.abort();
    sleep(Duration::from_millis(10)).await;
    assert_eq!(origin.calls(), 2);
    // The other has waited 5 s in all a moment later, not 5 s more: it goes upstream alone.
    sleep(Duration::from_millis(1100)).await;
    assert_eq!(origin.calls(), 3);
}
