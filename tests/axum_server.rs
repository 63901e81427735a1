//! The layer in a real axum server on a loopback port, spoken to over real HTTP/1.1.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use axum::{Router, routing::get};
use bytes::Bytes;
use http::{
    Request, StatusCode,
    header::{AGE, CONTENT_LENGTH},
};
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use layercake::{CacheLayer, Moka};
use tokio::task::JoinSet;

struct Server {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    layer: CacheLayer<Moka>,
}

async fn serve() -> Server {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::builder(Moka::default())
        .ttl(Duration::from_secs(60))
        .max_body_size(64 * 1024)
        .build()
        .unwrap();
    let (slow, big) = (Arc::clone(&calls), Arc::clone(&calls));
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                let n = slow.fetch_add(1, SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                format!("computed {n}")
            }),
        )
        .route(
            "/big",
            get(move || async move {
                big.fetch_add(1, SeqCst);
                vec![b'z'; 1024 * 1024]
            }),
        )
        .layer(layer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { addr, calls, layer }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

async fn fetch(client: &HttpClient, method: &str, url: String) -> (http::response::Parts, Bytes) {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .body(Empty::new())
        .unwrap();
    let (parts, body) = client.request(req).await.unwrap().into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

fn status(parts: &http::response::Parts) -> &str {
    parts.headers["cache-status"].to_str().unwrap()
}

/// Waits (boundedly) until the layer has stored `n` entries: the store follows the body.
async fn stored(layer: &CacheLayer<Moka>, n: u64) {
    for _ in 0..200 {
        if layer.stats().stores >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the entry was not stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit_over_http() {
    let server = serve().await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("http://{}/", server.addr);

    let (parts, body) = fetch(&client, "GET", url.clone()).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "computed 1");
    assert_eq!(
        status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
    stored(&server.layer, 1).await;

    let (parts, body) = fetch(&client, "GET", url.clone()).await;
    assert_eq!(body, "computed 1");
    assert!(
        status(&parts).starts_with("layercake; hit; ttl="),
        "{}",
        status(&parts)
    );
    let age: u64 = parts.headers[AGE].to_str().unwrap().parse().unwrap();
    assert!(age <= 2, "just stored: Age {age}");

    let (parts, body) = fetch(&client, "HEAD", url).await;
    assert!(body.is_empty());
    assert_eq!(parts.headers[CONTENT_LENGTH], "10");
    assert!(status(&parts).starts_with("layercake; hit"));
    assert_eq!(server.calls.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_clients_cause_one_handler_call() {
    let server = serve().await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut set = JoinSet::new();
    for _ in 0..64 {
        let (client, url) = (client.clone(), format!("http://{}/", server.addr));
        set.spawn(async move { fetch(&client, "GET", url).await.1 });
    }
    for body in set.join_all().await {
        assert_eq!(body, "computed 1");
    }
    assert_eq!(server.calls.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_reaches_the_client_whole_and_is_not_stored() {
    let server = serve().await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    for _ in 0..2 {
        let (parts, body) = fetch(&client, "GET", format!("http://{}/big", server.addr)).await;
        assert_eq!(body.len(), 1024 * 1024);
        assert!(body.iter().all(|&b| b == b'z'));
        assert_eq!(
            status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200; detail=too-large"
        );
    }
    assert_eq!(server.calls.load(SeqCst), 2);
    assert_eq!(server.layer.stats().stores, 0);
}

/// The prelude sits next to axum's extractors without ambiguity.
mod prelude_next_to_axum {
    #[allow(unused_imports)]
    use axum::extract::*;
    #[allow(unused_imports)]
    use layercake::prelude::*;

    #[test]
    fn path_is_axums_and_the_cache_types_are_layercakes() {
        fn handler(Path(id): Path<u32>) -> u32 {
            id
        }
        assert_eq!(handler(Path(7)), 7);
        let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
        drop(cache);
    }
}
