//! `CacheMiddleware` on a real reqwest client in front of a real local hyper origin: fresh
//! responses come from the cache, validation with `304`, `Vary`, private responses kept (the
//! client's own cache), hosts kept apart, unsafe methods invalidating, the rest of the
//! middleware chain seeing the cache's requests, revalidation in the background after the
//! request is over, and an origin that is down.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use http::Extensions;
use layercake::{CacheLayer, Moka, StalePolicy, client::CacheMiddleware, layer::CacheMode};
use layercake_tests::{
    eventually,
    http_origin::{HttpOrigin, respond},
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

/// An origin answering `v<n>` (n: the call's number) with `headers`, on the real clock.
async fn versions(headers: &'static [(&'static str, &'static str)]) -> HttpOrigin {
    HttpOrigin::start(move |_, n| async move { respond(200, headers, format!("v{n}")) }).await
}

fn client(cache: &CacheMiddleware<Moka>) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(cache.clone())
        .build()
}

fn cache_status(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// GETs `url` with `headers`: the `Cache-Status` and the body.
async fn get(
    client: &ClientWithMiddleware,
    url: &str,
    headers: &[(&str, &str)],
) -> (String, String) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.url().as_str(), url, "the response knows its URL");
    let status = cache_status(&response);
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_responses_come_from_the_cache() {
    let origin = versions(&[("cache-control", "max-age=60")]).await;
    let cache = CacheMiddleware::new(Moka::default()).unwrap();
    let client = client(&cache);
    let url = format!("{}report", origin.uri());
    let (status, body) = get(&client, &url, &[]).await;
    assert_eq!(body, "v1");
    assert!(status.contains("fwd=uri-miss"), "{status}");
    let (status, body) = get(&client, &url, &[]).await;
    assert_eq!(body, "v1");
    assert!(status.starts_with("layercake; hit"), "{status}");
    assert_eq!(origin.calls(), 1);
    assert_eq!(cache.layer().stats().hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_is_the_clients_own_cache_by_default() {
    let origin = versions(&[("cache-control", "private, max-age=60")]).await;
    let cache = CacheMiddleware::new(Moka::default()).unwrap();
    let client = client(&cache);
    let url = format!("{}me", origin.uri());
    let credentials = [("authorization", "Bearer secret")];
    get(&client, &url, &credentials).await;
    let (status, body) = get(&client, &url, &credentials).await;
    assert_eq!(body, "v1");
    assert!(status.starts_with("layercake; hit"), "{status}");
    assert_eq!(origin.calls(), 1);

    // A shared cache (the layer's default mode) keeps neither.
    let shared = CacheMiddleware::from_layer(CacheLayer::builder(Moka::default()).build().unwrap());
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(shared)
        .build();
    get(&client, &url, &credentials).await;
    let (status, _) = get(&client, &url, &credentials).await;
    assert!(!status.contains("hit"), "{status}");
    assert_eq!(origin.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_responses_are_validated_with_304() {
    let origin = HttpOrigin::start(|request, _| async move {
        let tag = "\"v1\"";
        let headers = [("etag", tag), ("cache-control", "no-cache")];
        match request.headers().get("if-none-match") {
            Some(asked) if asked == tag => respond(304, &headers, ""),
            _ => respond(200, &headers, "the body"),
        }
    })
    .await;
    let cache = CacheMiddleware::new(Moka::default()).unwrap();
    let client = client(&cache);
    let url = format!("{}doc", origin.uri());
    let (_, body) = get(&client, &url, &[]).await;
    assert_eq!(body, "the body");
    // `no-cache`: asked again each time, conditionally; the 304 serves the stored body.
    let (status, body) = get(&client, &url, &[]).await;
    assert_eq!(body, "the body");
    assert!(status.contains("fwd-status=304"), "{status}");
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_vary_on_the_request_headers_they_name() {
    let origin = HttpOrigin::start(|request, _| async move {
        let language = request
            .headers()
            .get("accept-language")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        respond(
            200,
            &[("cache-control", "max-age=60"), ("vary", "accept-language")],
            language,
        )
    })
    .await;
    let cache = CacheMiddleware::new(Moka::default()).unwrap();
    let client = client(&cache);
    let url = format!("{}hello", origin.uri());
    assert_eq!(
        get(&client, &url, &[("accept-language", "en")]).await.1,
        "en"
    );
    assert_eq!(
        get(&client, &url, &[("accept-language", "fr")]).await.1,
        "fr"
    );
    let (status, body) = get(&client, &url, &[("accept-language", "en")]).await;
    assert_eq!(body, "en");
    assert!(status.starts_with("layercake; hit"), "{status}");
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_never_share_an_entry_and_unsafe_methods_invalidate() {
    let (a, b) = (
        HttpOrigin::start(|_, n| async move {
            respond(200, &[("cache-control", "max-age=60")], format!("a{n}"))
        })
        .await,
        HttpOrigin::start(|_, n| async move {
            respond(200, &[("cache-control", "max-age=60")], format!("b{n}"))
        })
        .await,
    );
    let cache = CacheMiddleware::new(Moka::default()).unwrap();
    let client = client(&cache);
    let (url_a, url_b) = (format!("{}same", a.uri()), format!("{}same", b.uri()));
    assert_eq!(get(&client, &url_a, &[]).await.1, "a1");
    assert_eq!(get(&client, &url_b, &[]).await.1, "b1");
    assert_eq!(get(&client, &url_a, &[]).await.1, "a1");
    // A POST goes to the origin and makes the stored GET of its URL stale (RFC 9111 §4.4).
    let posted = client.post(&url_a).body("change").send().await.unwrap();
    assert_eq!(posted.text().await.unwrap(), "a2");
    eventually("the entry invalidated", || {
        cache.layer().stats().invalidations >= 1
    })
    .await;
    assert_eq!(get(&client, &url_a, &[]).await.1, "a3");
    assert_eq!(get(&client, &url_b, &[]).await.1, "b1");
}

/// A middleware after the cache's: it marks every request it sees.
struct Mark(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Middleware for Mark {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.0.fetch_add(1, SeqCst);
        let seen: Option<&&str> = extensions.get();
        let mark = format!("seen with {}", seen.copied().unwrap_or("nothing"));
        request
            .headers_mut()
            .insert("x-mark", mark.parse().unwrap());
        next.run(request, extensions).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_the_chain_sees_the_caches_requests_with_their_extensions() {
    let origin = HttpOrigin::start(|request, _| async move {
        let mark = request
            .headers()
            .get("x-mark")
            .map(|v| v.to_str().unwrap().to_owned());
        respond(
            200,
            &[("cache-control", "max-age=60")],
            mark.unwrap_or_default(),
        )
    })
    .await;
    let cache = CacheMiddleware::new(Moka::default()).unwrap();
    let marks = Arc::new(AtomicUsize::new(0));
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(cache)
        .with(Mark(Arc::clone(&marks)))
        .build();
    let url = format!("{}chain", origin.uri());
    let response = client
        .get(&url)
        .with_extension("an extension")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "seen with an extension");
    // A hit does not reach the rest of the chain.
    assert_eq!(get(&client, &url, &[]).await.1, "seen with an extension");
    assert_eq!(marks.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_responses_are_revalidated_in_the_background_after_the_request() {
    let origin = versions(&[("cache-control", "max-age=1, stale-while-revalidate=60")]).await;
    let layer = CacheLayer::builder(Moka::default())
        .mode(CacheMode::Private)
        .stale_policy(StalePolicy::OffloadRevalidate)
        .build()
        .unwrap();
    let cache = CacheMiddleware::from_layer(layer);
    let client = client(&cache);
    let url = format!("{}slow", origin.uri());
    assert_eq!(get(&client, &url, &[]).await.1, "v1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Stale: served at once, refreshed after the request is over (by the background client).
    let (status, body) = get(&client, &url, &[]).await;
    assert_eq!(body, "v1");
    assert!(
        status.contains("stale") || status.contains("hit"),
        "{status}"
    );
    eventually("refreshed in the background", || origin.calls() == 2).await;
    eventually("the refresh stored", || cache.layer().stats().stores == 2).await;
    let (status, body) = get(&client, &url, &[]).await;
    assert_eq!(body, "v2");
    assert!(status.starts_with("layercake; hit"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_is_down_is_an_error_or_the_stale_copy_never_a_panic() {
    let origin = versions(&[("cache-control", "max-age=1, stale-if-error=60")]).await;
    let cache = CacheMiddleware::new(Moka::default()).unwrap();
    // No kept-alive connections: once the origin stops listening, it is down.
    let client = ClientBuilder::new(
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
    )
    .with(cache)
    .build();
    let url = format!("{}fragile", origin.uri());
    assert_eq!(get(&client, &url, &[]).await.1, "v1");
    drop(origin);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Expired, the origin gone: the stale copy, within its stale-if-error window.
    let (status, body) = get(&client, &url, &[]).await;
    assert_eq!(body, "v1");
    assert!(status.contains("stale"), "{status}");
    // Nothing stored for it: the connection error, as reqwest reports it.
    let error = client
        .get(format!("{url}-never-stored"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, reqwest_middleware::Error::Reqwest(e) if e.is_connect()),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_never_leaves_the_others_for_its_url_waiting() {
    let origin = HttpOrigin::start(|_, n| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        respond(200, &[("cache-control", "max-age=60")], format!("v{n}"))
    })
    .await;
    let cache = CacheMiddleware::new(Moka::default()).unwrap();
    let client = client(&cache);
    let url = format!("{}slow", origin.uri());
    // The first asks the origin and is dropped while it waits; the second waited on it.
    let first = tokio::time::timeout(Duration::from_millis(100), client.get(&url).send());
    let second = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        get(&client, &url, &[]).await
    };
    let (first, (_, body)) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(first, second)
    })
    .await
    .expect("the second is answered within its bound");
    assert!(first.is_err(), "the first was cancelled");
    assert!(body.starts_with('v'), "{body}");
    let (status, again) = get(&client, &url, &[]).await;
    assert_eq!(again, body);
    assert!(status.starts_with("layercake; hit"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_own_timeout_still_holds() {
    let origin = HttpOrigin::start(|_, n| async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        respond(200, &[("cache-control", "max-age=60")], format!("v{n}"))
    })
    .await;
    let cache = CacheMiddleware::new(Moka::default()).unwrap();
    let client = client(&cache);
    let url = format!("{}slow", origin.uri());
    let error = client
        .get(&url)
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, reqwest_middleware::Error::Reqwest(e) if e.is_timeout()),
        "{error:?}"
    );
}
