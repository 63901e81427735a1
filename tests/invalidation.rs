//! RFC 9111 §4.4: a non-error response to an unsafe request (POST, PUT, DELETE, PATCH)
//! invalidates the stored responses for its target URI, and for the URIs in its `Location` and
//! `Content-Location` when they are on the same origin.

use http::{StatusCode, header};
use layercake::{CacheLayer, Moka, layer::CacheService};
use layercake_tests::{Origin, cache_status, fetch, get, request, text};
use tower::Layer;

/// An origin that answers GETs with `v<n>`, and unsafe requests with the status and headers
/// the test asks for through `x-answer-status` / `x-answer-location` request headers.
fn origin() -> Origin {
    Origin::new(|req, n| async move {
        let mut response = text(StatusCode::OK, format!("v{n}"));
        if let Some(status) = req.headers().get("x-answer-status") {
            *response.status_mut() = status.to_str().unwrap().parse().unwrap();
        }
        for (ask, answer) in [
            ("x-answer-location", header::LOCATION),
            ("x-answer-content-location", header::CONTENT_LOCATION),
        ] {
            if let Some(value) = req.headers().get(ask) {
                response.headers_mut().insert(answer, value.clone());
            }
        }
        Ok(response)
    })
}

fn layered(origin: &Origin) -> CacheService<Origin, Moka> {
    CacheLayer::builder(Moka::default())
        .build()
        .unwrap()
        .layer(origin.clone())
}

fn unsafe_request(
    method: &str,
    uri: &str,
    headers: &[(&'static str, &str)],
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut req = request(method, uri);
    req.headers_mut()
        .insert(header::HOST, "shop.example".parse().unwrap());
    for (name, value) in headers {
        req.headers_mut().insert(*name, value.parse().unwrap());
    }
    req
}

/// A GET of `uri` on the same host as the unsafe requests (the host is part of the key).
fn get_on_shop(uri: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut req = get(uri);
    req.headers_mut()
        .insert(header::HOST, "shop.example".parse().unwrap());
    req
}

/// Whether `GET uri` is answered from the cache.
async fn is_cached(svc: &CacheService<Origin, Moka>, uri: &str) -> bool {
    let (parts, _) = fetch(svc, get_on_shop(uri)).await;
    cache_status(&parts).starts_with("layercake; hit")
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_4_a_successful_post_invalidates_its_target_uri() {
    let origin = origin();
    let svc = layered(&origin);
    fetch(&svc, get_on_shop("/items")).await;
    assert!(is_cached(&svc, "/items").await);

    let (parts, _) = fetch(
        &svc,
        unsafe_request("POST", "/items", &[("x-answer-status", "201")]),
    )
    .await;
    assert_eq!(parts.status, StatusCode::CREATED);
    assert!(
        !is_cached(&svc, "/items").await,
        "the POST invalidated GET /items"
    );
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_4_location_and_content_location_on_the_same_origin_are_invalidated() {
    let origin = origin();
    let svc = layered(&origin);
    for uri in ["/items/1", "/items/2", "/items/3", "/items/4"] {
        fetch(&svc, get_on_shop(uri)).await;
    }
    fetch(
        &svc,
        unsafe_request(
            "PUT",
            "/items/1",
            &[
                ("x-answer-location", "/items/2"),
                ("x-answer-content-location", "http://shop.example/items/3"),
            ],
        ),
    )
    .await;
    assert!(!is_cached(&svc, "/items/1").await, "target URI");
    assert!(!is_cached(&svc, "/items/2").await, "Location, relative");
    assert!(
        !is_cached(&svc, "/items/3").await,
        "Content-Location, absolute, same origin"
    );
    assert!(is_cached(&svc, "/items/4").await, "untouched");
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_4_another_origin_in_location_is_not_invalidated() {
    let origin = origin();
    let svc = layered(&origin);
    fetch(&svc, get_on_shop("/items/9")).await;
    fetch(
        &svc,
        unsafe_request(
            "POST",
            "/orders",
            &[("x-answer-location", "http://evil.example/items/9")],
        ),
    )
    .await;
    assert!(
        is_cached(&svc, "/items/9").await,
        "a foreign origin cannot invalidate our entries"
    );
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_4_an_error_response_invalidates_nothing() {
    let origin = origin();
    let svc = layered(&origin);
    fetch(&svc, get_on_shop("/items/1")).await;
    for status in ["404", "500"] {
        fetch(
            &svc,
            unsafe_request("DELETE", "/items/1", &[("x-answer-status", status)]),
        )
        .await;
        assert!(
            is_cached(&svc, "/items/1").await,
            "DELETE answered {status}"
        );
    }
    fetch(
        &svc,
        unsafe_request("DELETE", "/items/1", &[("x-answer-status", "204")]),
    )
    .await;
    assert!(!is_cached(&svc, "/items/1").await);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_4_the_query_string_is_part_of_the_uri_invalidated() {
    let origin = origin();
    let svc = layered(&origin);
    fetch(&svc, get_on_shop("/search?q=a")).await;
    fetch(&svc, get_on_shop("/search?q=b")).await;
    fetch(&svc, unsafe_request("PATCH", "/search?q=a", &[])).await;
    assert!(!is_cached(&svc, "/search?q=a").await);
    assert!(is_cached(&svc, "/search?q=b").await);
}

#[tokio::test(start_paused = true)]
async fn safe_methods_invalidate_nothing() {
    let origin = origin();
    let layer = CacheLayer::builder(Moka::default())
        .methods([http::Method::GET])
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get_on_shop("/items")).await;
    fetch(&svc, request("OPTIONS", "/items")).await;
    fetch(&svc, request("HEAD", "/items")).await;
    assert!(is_cached(&svc, "/items").await);
    assert_eq!(layer.stats().invalidations, 0);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_4_a_method_not_known_to_be_safe_invalidates_like_post() {
    let origin = origin();
    let svc = layered(&origin);
    for method in ["PROPFIND", "M-SEARCH", "PUT", "DELETE", "PATCH"] {
        fetch(&svc, get_on_shop("/items")).await;
        assert!(is_cached(&svc, "/items").await, "{method}");
        fetch(&svc, unsafe_request(method, "/items", &[])).await;
        assert!(
            !is_cached(&svc, "/items").await,
            "{method} invalidated GET /items"
        );
    }
}

/// The same rules through the example reverse proxy and a real hyper origin.
mod over_http {
    use http::Method;
    use layercake::{CacheLayer, Moka};
    use layercake_tests::{
        cache_status, fetch,
        http_origin::{HttpOrigin, get_with, respond},
        request, settle,
    };

    #[tokio::test(start_paused = true)]
    async fn rfc9111_4_4_a_put_through_the_proxy_invalidates_its_uri_and_its_location() {
        let origin = HttpOrigin::start(|req, n| async move {
            match *req.method() {
                Method::GET => respond(200, &[("cache-control", "max-age=60")], format!("v{n}")),
                _ => respond(
                    201,
                    &[
                        ("location", "/items/7"),
                        ("content-location", "http://elsewhere.example/items"),
                    ],
                    "",
                ),
            }
        })
        .await;
        let proxy = origin.behind(&CacheLayer::builder(Moka::default()).build().unwrap());
        for uri in ["/items", "/items/7", "/other"] {
            fetch(&proxy, get_with(uri, &[])).await;
        }
        let (parts, _) = fetch(&proxy, request("PUT", "/items")).await;
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=method; fwd-status=201"
        );
        settle().await;
        for (uri, invalidated) in [("/items", true), ("/items/7", true), ("/other", false)] {
            let (parts, _) = fetch(&proxy, get_with(uri, &[])).await;
            assert_eq!(
                cache_status(&parts).starts_with("layercake; fwd=uri-miss"),
                invalidated,
                "{uri}: {}",
                cache_status(&parts)
            );
        }
        assert_eq!(origin.calls(), 6);
    }
}

/// Invalidation from code: `CacheLayer::invalidate_url`.
mod from_code {
    use http::{StatusCode, header};
    use layercake::{CacheLayer, InvalidateError, Moka};
    use layercake_tests::{Origin, cache_status, fetch, get, text};
    use tower::Layer;

    fn on_host(
        uri: &str,
        language: Option<&str>,
    ) -> http::Request<http_body_util::Full<bytes::Bytes>> {
        let mut req = get(uri);
        req.headers_mut()
            .insert(header::HOST, "shop.example".parse().unwrap());
        if let Some(language) = language {
            req.headers_mut()
                .insert(header::ACCEPT_LANGUAGE, language.parse().unwrap());
        }
        req
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_url_removes_a_url_with_every_variant_and_is_counted() {
        let origin = Origin::new(|req, n| async move {
            let mut response = text(StatusCode::OK, format!("v{n}"));
            if req.uri().path() == "/greet" {
                response
                    .headers_mut()
                    .insert(header::VARY, "accept-language".parse().unwrap());
            }
            Ok(response)
        });
        let layer = CacheLayer::builder(Moka::default()).build().unwrap();
        let svc = layer.layer(origin.clone());
        fetch(&svc, on_host("/items/1", None)).await;
        for language in ["en", "fr"] {
            fetch(&svc, on_host("/greet", Some(language))).await;
        }
        assert_eq!(origin.calls(), 3);

        let done = layer
            .invalidate_url("http://shop.example/items/1")
            .await
            .unwrap();
        assert_eq!(done.entries, Some(1));
        let again = layer
            .invalidate_url("http://shop.example/items/1")
            .await
            .unwrap();
        assert_eq!(again.entries, Some(0), "nothing left to remove");
        let (parts, _) = fetch(&svc, on_host("/items/1", None)).await;
        assert!(
            cache_status(&parts).ends_with("stored"),
            "{}",
            cache_status(&parts)
        );

        // The URL's list of variants goes, and every variant with it.
        let done = layer
            .invalidate_url("http://shop.example/greet")
            .await
            .unwrap();
        assert_eq!(done.entries, Some(1));
        let calls = origin.calls();
        for language in ["en", "fr"] {
            let (parts, _) = fetch(&svc, on_host("/greet", Some(language))).await;
            assert!(
                cache_status(&parts).ends_with("stored"),
                "{language}: {}",
                cache_status(&parts)
            );
        }
        assert_eq!(origin.calls(), calls + 2, "both variants fetched again");
        assert_eq!(layer.stats().invalidations, 2);
    }

    #[tokio::test]
    async fn a_path_without_a_host_is_a_clear_error_unless_keys_leave_the_host_out() {
        let layer = CacheLayer::builder(Moka::default()).build().unwrap();
        let error = layer.invalidate_url("/items/1").await.unwrap_err();
        assert!(matches!(error, InvalidateError::Url(_)));
        assert!(error.to_string().contains("names no host"), "{error}");
        assert!(matches!(
            layer.invalidate_url("http://[").await,
            Err(InvalidateError::Url(_))
        ));

        let origin = layercake_tests::Origin::ok("x");
        let single_host = CacheLayer::builder(Moka::default())
            .authority_in_key(false)
            .build()
            .unwrap();
        let svc = single_host.layer(origin.clone());
        fetch(&svc, on_host("/items/1", None)).await;
        let done = single_host.invalidate_url("/items/1").await.unwrap();
        assert_eq!(done.entries, Some(1));
    }
}

mod by_pattern {
    use http::header;
    use layercake::{CacheLayer, Moka};
    use layercake_tests::{Origin, cache_status, fetch, get};
    use tower::Layer;

    fn on_host(uri: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
        let mut req = get(uri);
        req.headers_mut()
            .insert(header::HOST, "shop.example".parse().unwrap());
        req
    }

    #[tokio::test(start_paused = true)]
    async fn a_glob_over_the_path_removes_the_matching_urls_on_any_host() {
        let origin = Origin::ok("x");
        let layer = CacheLayer::builder(Moka::default()).build().unwrap();
        let svc = layer.layer(origin.clone());
        for uri in ["/items/1", "/items/12", "/items/2", "/items/1?page=2"] {
            fetch(&svc, on_host(uri)).await;
        }
        let done = layer.invalidate_pattern("/items/1*").await.unwrap();
        assert_eq!(done.entries, Some(3));
        let (parts, _) = fetch(&svc, on_host("/items/2")).await;
        assert!(cache_status(&parts).starts_with("layercake; hit"));
        let (parts, _) = fetch(&svc, on_host("/items/12")).await;
        assert!(cache_status(&parts).ends_with("stored"));
        // Clear: everything this layer stored, and only that.
        let other = layercake::Cache::<u32, Moka>::builder(layer.backend().clone())
            .build()
            .unwrap();
        other.insert("kept", 1).await;
        let cleared = layer.clear().await.unwrap();
        assert_eq!(cleared.entries, Some(2));
        assert_eq!(other.get("kept").await, Some(1));
        assert_eq!(layer.stats().invalidations, 5);
    }
}
