//! `#[cached_handler]` on axum handlers, in a real axum server on a loopback port: responses
//! cached by the extracted values, `State` left out, error responses passed on uncached, and
//! `#[axum::debug_handler]` on top.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
};

use axum::{
    Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::IntoResponse,
    routing::get,
};
use layercake::{
    cached_handler,
    predicate::{ResponsePredicate, response},
};

#[derive(Clone, Default)]
struct App {
    calls: Arc<AtomicUsize>,
}

#[derive(Clone, Hash, serde::Deserialize)]
struct Lang {
    lang: String,
}

#[cached_handler(ttl = 60)]
async fn show_user(
    Path(id): Path<u64>,
    Query(query): Query<Lang>,
    State(app): State<App>,
) -> impl IntoResponse {
    app.calls.fetch_add(1, SeqCst);
    if id == 0 {
        return (
            StatusCode::NOT_FOUND,
            [("x-user", "none".to_owned())],
            "no such user".to_owned(),
        );
    }
    (
        StatusCode::OK,
        [("x-user", id.to_string())],
        format!("user {id} in {}", query.lang),
    )
}

#[axum::debug_handler]
#[cached_handler(ttl = 60)]
async fn checked(Path(name): Path<String>, State(app): State<App>) -> impl IntoResponse {
    app.calls.fetch_add(1, SeqCst);
    format!("hello {name}")
}

async fn serve(app: App) -> SocketAddr {
    let router = Router::new()
        .route("/users/{id}", get(show_user))
        .route("/hello/{name}", get(checked))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn get_text(addr: SocketAddr, path: &str) -> (StatusCode, String, String) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let uri = format!("http://{addr}{path}").parse().unwrap();
    let response = client.get(uri).await.unwrap();
    let status = response.status();
    let user = response
        .headers()
        .get("x-user")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, user, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_responses_are_cached_by_the_extracted_values() {
    let app = App::default();
    let addr = serve(app.clone()).await;

    let first = get_text(addr, "/users/7?lang=en").await;
    assert_eq!(
        first,
        (StatusCode::OK, "7".to_owned(), "user 7 in en".to_owned())
    );
    assert_eq!(
        get_text(addr, "/users/7?lang=en").await,
        first,
        "status, headers and body"
    );
    assert_eq!(app.calls.load(SeqCst), 1, "the second request was a hit");

    get_text(addr, "/users/7?lang=fr").await;
    get_text(addr, "/users/8?lang=en").await;
    assert_eq!(app.calls.load(SeqCst), 3, "path and query are the key");

    // An error response is passed on, not stored.
    for _ in 0..2 {
        let (status, _, body) = get_text(addr, "/users/0?lang=en").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_FOUND, "no such user")
        );
    }
    assert_eq!(app.calls.load(SeqCst), 5);

    // The generated invalidate takes the extracted values (State is not part of the key).
    show_user::invalidate(7, Lang { lang: "en".into() })
        .await
        .unwrap();
    get_text(addr, "/users/7?lang=en").await;
    assert_eq!(app.calls.load(SeqCst), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_handler_still_works_on_a_cached_handler() {
    let app = App::default();
    let addr = serve(app.clone()).await;
    for _ in 0..3 {
        assert_eq!(get_text(addr, "/hello/ada").await.2, "hello ada");
    }
    assert_eq!(app.calls.load(SeqCst), 1);
    assert_eq!(
        checked::key_for("ada".into()),
        checked::key_for("ada".into())
    );
}

static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 30)]
async fn slow_page(Path(page): Path<u32>) -> impl IntoResponse {
    SLOW_CALLS.fetch_add(1, SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    format!("page {page}")
}

async fn body_of(response: axum::response::Response) -> String {
    use http_body_util::BodyExt;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_handler_coalesces_concurrent_calls_and_expires_after_its_ttl() {
    // Called as a function, as axum calls it, with the extractors made by hand.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..64 {
        calls.spawn(async { body_of(slow_page(Path(3)).await.into_response()).await });
    }
    for body in calls.join_all().await {
        assert_eq!(body, "page 3");
    }
    assert_eq!(
        SLOW_CALLS.load(SeqCst),
        1,
        "64 concurrent calls, one execution"
    );

    tokio::time::advance(std::time::Duration::from_secs(29)).await;
    assert_eq!(
        body_of(slow_page(Path(3)).await.into_response()).await,
        "page 3"
    );
    assert_eq!(SLOW_CALLS.load(SeqCst), 1);
    tokio::time::advance(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        body_of(slow_page(Path(3)).await.into_response()).await,
        "page 3"
    );
    assert_eq!(SLOW_CALLS.load(SeqCst), 2, "expired after 30 s");
}

static LOOKUP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60, negative_ttl = 5)]
async fn lookup(Path(id): Path<u32>) -> impl IntoResponse {
    LOOKUP_CALLS.fetch_add(1, SeqCst);
    if id == 0 {
        return (StatusCode::NOT_FOUND, "not found".to_owned());
    }
    (StatusCode::OK, format!("item {id}"))
}

#[tokio::test(start_paused = true)]
async fn negative_ttl_caches_not_found_briefly() {
    for _ in 0..2 {
        let response = lookup(Path(0)).await.into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_of(response).await, "not found");
    }
    assert_eq!(LOOKUP_CALLS.load(SeqCst), 1, "the 404 was cached");
    lookup(Path(1)).await;
    tokio::time::advance(std::time::Duration::from_secs(6)).await;
    lookup(Path(0)).await;
    assert_eq!(
        LOOKUP_CALLS.load(SeqCst),
        3,
        "the 404 expired after its negative ttl"
    );
    lookup(Path(1)).await;
    assert_eq!(
        LOOKUP_CALLS.load(SeqCst),
        3,
        "the 200 keeps its ttl of 60 s"
    );
}

static REPORT_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Stores only complete, JSON reports.
#[cached_handler(
    ttl = 60,
    store_if = response::content_type("application/json").and(response::json("/partial").not())
)]
async fn report(Path(id): Path<u32>) -> impl IntoResponse {
    REPORT_CALLS.fetch_add(1, SeqCst);
    if id == 0 {
        return axum::Json(serde_json::json!({ "id": id, "partial": true }));
    }
    axum::Json(serde_json::json!({ "id": id }))
}

#[tokio::test]
async fn a_response_predicate_decides_what_a_handler_stores() {
    for _ in 0..2 {
        let response = report(Path(1)).await.into_response();
        assert_eq!(body_of(response).await, r#"{"id":1}"#);
    }
    assert_eq!(
        REPORT_CALLS.load(SeqCst),
        1,
        "the complete report was stored"
    );
    for _ in 0..2 {
        let response = report(Path(0)).await.into_response();
        assert_eq!(body_of(response).await, r#"{"id":0,"partial":true}"#);
    }
    assert_eq!(REPORT_CALLS.load(SeqCst), 3, "the partial one was not");
}

static BROKEN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60, lock_timeout = 2)]
async fn broken(Path(id): Path<u32>) -> impl IntoResponse {
    BROKEN_CALLS.fetch_add(1, SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    if id == 7 {
        // Personal: never handed to another request.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("set-cookie", "retry=1".to_owned())],
            "down for you".to_owned(),
        );
    }
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("x-id", id.to_string())],
        format!("{id} is broken"),
    )
}

#[tokio::test(start_paused = true)]
async fn eight_requests_to_a_failing_handler_all_have_its_error_after_one_call() {
    let started = tokio::time::Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        calls.spawn(async {
            let response = broken(Path(5)).await.into_response();
            let id = response.headers()["x-id"].to_str().unwrap().to_owned();
            (response.status(), id, body_of(response).await)
        });
    }
    for (status, id, body) in calls.join_all().await {
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!((id.as_str(), body.as_str()), ("5", "5 is broken"));
    }
    assert_eq!(BROKEN_CALLS.load(SeqCst), 1);
    assert_eq!(started.elapsed(), std::time::Duration::from_millis(100));
    // Not cached: the next request calls the handler again.
    broken(Path(5)).await;
    assert_eq!(BROKEN_CALLS.load(SeqCst), 2);

    // A response with `Set-Cookie` is its request's own: the waiters call the handler
    // themselves, together.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..4 {
        calls.spawn(async { broken(Path(7)).await.into_response().status() });
    }
    for status in calls.join_all().await {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(BROKEN_CALLS.load(SeqCst), 6);
}

static HUGE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60)]
async fn huge(Path(id): Path<u8>) -> impl IntoResponse {
    HUGE_CALLS.fetch_add(1, SeqCst);
    // Over the 4 MiB a cached handler response may weigh.
    vec![id; 5 * 1024 * 1024]
}

#[tokio::test]
async fn a_response_too_large_to_cache_is_passed_on_whole() {
    for _ in 0..2 {
        let response = huge(Path(7)).await.into_response();
        assert_eq!(response.status(), StatusCode::OK);
        use http_body_util::BodyExt;
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 5 * 1024 * 1024);
        assert!(
            body.iter().all(|&b| b == 7),
            "every byte as the handler made it"
        );
    }
    assert_eq!(HUGE_CALLS.load(SeqCst), 2, "not cached");
}

#[cached_handler(ttl = 60)]
async fn greeted(Path(name): Path<String>) -> impl IntoResponse {
    if name == "nobody" {
        return (StatusCode::NOT_FOUND, "who?".to_owned());
    }
    (StatusCode::OK, format!("hi {name}"))
}

/// A cached handler's responses say what the cache did, as the layer's do (RFC 9211).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_responses_carry_cache_status() {
    let router = Router::new().route("/greet/{name}", get(greeted));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let status_of = |path: &'static str| async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let response = client
            .get(format!("http://{addr}{path}").parse().unwrap())
            .await
            .unwrap();
        response.headers()["cache-status"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        status_of("/greet/ada").await,
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
    let hit = status_of("/greet/ada").await;
    assert!(
        hit == "layercake; hit; ttl=60; detail=moka"
            || hit == "layercake; hit; ttl=59; detail=moka",
        "{hit}"
    );
    assert_eq!(
        status_of("/greet/nobody").await,
        "layercake; fwd=uri-miss; fwd-status=404",
        "not stored"
    );
}
