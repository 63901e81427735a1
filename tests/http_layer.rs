//! The HTTP layer on a tower service: what is stored, for how long, and what every response
//! says about it. Time-dependent cases run on tokio's paused clock.

use std::time::Duration;

use bytes::Bytes;
use http::{
    Method, StatusCode,
    header::{AGE, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE},
};
use layercake::{CacheLayer, Moka, layer::Path};
use layercake_tests::{Origin, cache_status, chunked, fetch, get, request, text};
use tokio::time::advance;
use tower::Layer;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Sends two identical `GET /` through `layer` in front of `origin`; returns the upstream calls.
async fn calls_for_two_gets(layer: CacheLayer<Moka>, origin: &Origin) -> usize {
    let svc = layer.layer(origin.clone());
    for _ in 0..2 {
        fetch(&svc, get("/")).await;
    }
    origin.calls()
}

#[tokio::test(start_paused = true)]
async fn fresh_entry_is_served_until_its_ttl_then_fetched_again() {
    let origin = Origin::new(|_, n| async move { Ok(text(StatusCode::OK, format!("v{n}"))) });
    let layer = CacheLayer::builder(Moka::default())
        .ttl(secs(60))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());

    let (parts, body) = fetch(&svc, get("/a")).await;
    assert_eq!(body, "v1");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );

    advance(secs(20)).await;
    let (parts, body) = fetch(&svc, get("/a")).await;
    assert_eq!(body, "v1");
    assert_eq!(cache_status(&parts), "layercake; hit; ttl=40; detail=moka");
    assert_eq!(parts.headers[AGE], "20");
    assert_eq!(origin.calls(), 1);

    advance(secs(41)).await;
    let (parts, body) = fetch(&svc, get("/a")).await;
    assert_eq!(body, "v2");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(origin.calls(), 2);
    let stats = layer.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 2, 2));
}

#[tokio::test(start_paused = true)]
async fn stale_entry_is_served_inside_its_window_and_not_after() {
    let origin = Origin::new(|_, n| async move { Ok(text(StatusCode::OK, format!("v{n}"))) });
    let layer = CacheLayer::builder(Moka::default())
        .ttl(secs(10))
        .stale(secs(30))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/")).await;

    advance(secs(15)).await;
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(body, "v1");
    // Stale by exactly 5 s: a remaining freshness of -5 s.
    assert_eq!(cache_status(&parts), "layercake; hit; ttl=-5; detail=moka");
    assert_eq!(origin.calls(), 1);
    assert_eq!(layer.stats().stale_hits, 1);

    advance(secs(30)).await; // 45 s: past ttl + stale
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(body, "v2");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn error_statuses_are_stored_only_with_a_negative_ttl_and_for_that_long() {
    let origin = Origin::new(|_, _| async { Ok(text(StatusCode::NOT_FOUND, "gone")) });

    let plain = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc = plain.layer(origin.clone());
    for _ in 0..2 {
        let (parts, _) = fetch(&svc, get("/x")).await;
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=404; detail=status"
        );
    }
    assert_eq!(origin.calls(), 2);

    let origin = Origin::new(|_, _| async { Ok(text(StatusCode::NOT_FOUND, "gone")) });
    let negative = CacheLayer::builder(Moka::default())
        .ttl(secs(60))
        .negative_ttl(secs(5))
        .build()
        .unwrap();
    let svc = negative.layer(origin.clone());
    fetch(&svc, get("/x")).await;
    let (parts, body) = fetch(&svc, get("/x")).await;
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
    assert_eq!(body, "gone");
    assert_eq!(cache_status(&parts), "layercake; hit; ttl=5; detail=moka");
    assert_eq!(origin.calls(), 1);
    advance(secs(6)).await;
    fetch(&svc, get("/x")).await;
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_not_stored_unless_listed() {
    let failing =
        || Origin::new(|_, _| async { Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "boom")) });
    let negative = || CacheLayer::builder(Moka::default()).negative_ttl(secs(5));

    let default_statuses = negative().build().unwrap();
    assert_eq!(calls_for_two_gets(default_statuses, &failing()).await, 2);

    let listed = negative()
        .statuses([StatusCode::OK, StatusCode::INTERNAL_SERVER_ERROR])
        .build()
        .unwrap();
    assert_eq!(calls_for_two_gets(listed, &failing()).await, 1);
}

#[tokio::test(start_paused = true)]
async fn head_is_answered_from_a_stored_get_without_calling_upstream() {
    let origin = Origin::ok("hello world");
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/page")).await;

    let (parts, body) = fetch(&svc, request("HEAD", "/page")).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(parts.headers[CONTENT_LENGTH], "11");
    assert_eq!(cache_status(&parts), "layercake; hit; ttl=60; detail=moka");
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_head_response_never_becomes_the_stored_get() {
    // The origin answers HEAD with no body, as it should.
    let origin = Origin::new(|req, _| async move {
        let body = if req.method() == Method::HEAD {
            ""
        } else {
            "full body"
        };
        Ok(text(StatusCode::OK, body))
    });
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc = layer.layer(origin.clone());

    let (parts, _) = fetch(&svc, request("HEAD", "/p")).await;
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; detail=head"
    );
    let (parts, body) = fetch(&svc, get("/p")).await;
    assert_eq!(body, "full body");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn post_passes_through_untouched_every_time() {
    let origin = Origin::new(|req, n| async move {
        let body = http_body_util::BodyExt::collect(req.into_body())
            .await?
            .to_bytes();
        let mut echo = text(
            StatusCode::CREATED,
            format!("{n}:{}", String::from_utf8_lossy(&body)),
        );
        echo.headers_mut()
            .insert("x-origin", "yes".parse().unwrap());
        Ok(echo)
    });
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc = layer.layer(origin.clone());

    for n in 1..=2 {
        let mut post = request("POST", "/items");
        *post.body_mut() = http_body_util::Full::new(Bytes::from_static(b"payload"));
        let (parts, body) = fetch(&svc, post).await;
        assert_eq!(parts.status, StatusCode::CREATED);
        assert_eq!(body, format!("{n}:payload"));
        assert_eq!(parts.headers["x-origin"], "yes");
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=method; fwd-status=201"
        );
    }
    assert_eq!(origin.calls(), 2);
    let stats = layer.stats();
    assert_eq!((stats.passes, stats.misses, stats.stores), (2, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn oversize_body_streams_through_complete_and_is_not_stored() {
    const CHUNK: usize = 16 * 1024;
    let origin = Origin::new(|_, _| async {
        // 8 chunks of 16 KiB, length unknown in advance: the limit is found while streaming.
        let chunks = (0..8u8).map(|i| Bytes::from(vec![b'a' + i; CHUNK]));
        Ok(http::Response::new(chunked(chunks)))
    });
    let layer = CacheLayer::builder(Moka::default())
        .max_body_size(64 * 1024)
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());

    for _ in 0..2 {
        let (parts, body) = fetch(&svc, get("/big")).await;
        assert_eq!(body.len(), 8 * CHUNK);
        for (i, chunk) in body.chunks(CHUNK).enumerate() {
            assert!(
                chunk.iter().all(|&b| b == b'a' + i as u8),
                "chunk {i} intact"
            );
        }
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200"
        );
    }
    assert_eq!(origin.calls(), 2);
    let stats = layer.stats();
    assert_eq!((stats.stores, stats.uncacheable), (0, 2));
}

#[tokio::test(start_paused = true)]
async fn body_of_known_oversize_length_is_not_stored_and_says_so() {
    let origin = Origin::new(|_, _| async { Ok(text(StatusCode::OK, vec![b'x'; 2048])) });
    let layer = CacheLayer::builder(Moka::default())
        .max_body_size(1024)
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    let (parts, body) = fetch(&svc, get("/")).await;
    assert_eq!(body.len(), 2048);
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; detail=too-large"
    );
    fetch(&svc, get("/")).await;
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn body_below_the_minimum_is_not_stored() {
    let origin = Origin::ok("tiny");
    let layer = CacheLayer::builder(Moka::default())
        .min_body_size(100)
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    for _ in 0..2 {
        let (parts, _) = fetch(&svc, get("/")).await;
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200; detail=too-small"
        );
    }
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn responses_to_requests_with_authorization_are_not_shared_unless_allowed() {
    let origin = Origin::new(|req, _| async move {
        let who = req.headers()[AUTHORIZATION].to_str().unwrap().to_owned();
        Ok(text(StatusCode::OK, format!("hello {who}")))
    });
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc = layer.layer(origin.clone());
    for who in ["Bearer alice", "Bearer bob"] {
        let mut req = get("/me");
        req.headers_mut()
            .insert(AUTHORIZATION, who.parse().unwrap());
        let (parts, body) = fetch(&svc, req).await;
        assert_eq!(body, format!("hello {who}"));
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200; detail=authorization"
        );
    }
    assert_eq!(origin.calls(), 2);
    assert_eq!(layer.stats().uncacheable, 2);

    // Opted in (the key must then carry the credentials, or the resource must be public).
    let origin = Origin::ok("public");
    let layer = CacheLayer::builder(Moka::default())
        .allow_authorization(true)
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    for _ in 0..2 {
        let mut req = get("/doc");
        req.headers_mut()
            .insert(AUTHORIZATION, "Bearer x".parse().unwrap());
        fetch(&svc, req).await;
    }
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn set_cookie_responses_are_not_stored_unless_allowed() {
    let with_cookie = || {
        Origin::new(|_, n| async move {
            let mut res = text(StatusCode::OK, "hi");
            res.headers_mut()
                .insert(SET_COOKIE, format!("session={n}").parse().unwrap());
            Ok(res)
        })
    };
    let origin = with_cookie();
    let svc = CacheLayer::builder(Moka::default())
        .build()
        .unwrap()
        .layer(origin.clone());
    for n in 1..=2 {
        let (parts, _) = fetch(&svc, get("/")).await;
        assert_eq!(parts.headers[SET_COOKIE], format!("session={n}").as_str());
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200; detail=set-cookie"
        );
    }
    assert_eq!(origin.calls(), 2);

    let allowed = CacheLayer::builder(Moka::default())
        .allow_set_cookie(true)
        .build()
        .unwrap();
    assert_eq!(calls_for_two_gets(allowed, &with_cookie()).await, 1);
}

#[tokio::test(start_paused = true)]
async fn private_and_no_store_responses_are_not_stored() {
    for (directive, detail) in [
        ("private, max-age=60", "private"),
        ("no-store", "no-store"),
        ("public, No-Store", "no-store"),
    ] {
        let origin = Origin::new(move |_, _| async move {
            let mut res = text(StatusCode::OK, "mine");
            res.headers_mut()
                .insert(CACHE_CONTROL, directive.parse().unwrap());
            Ok(res)
        });
        let svc = CacheLayer::builder(Moka::default())
            .build()
            .unwrap()
            .layer(origin.clone());
        for _ in 0..2 {
            let (parts, _) = fetch(&svc, get("/")).await;
            assert_eq!(
                cache_status(&parts),
                format!("layercake; fwd=uri-miss; fwd-status=200; detail={detail}")
            );
        }
        assert_eq!(origin.calls(), 2, "{directive}");
    }

    // A private cache serves one user: it stores `private`.
    let origin = Origin::new(|_, _| async {
        let mut res = text(StatusCode::OK, "mine");
        res.headers_mut()
            .insert(CACHE_CONTROL, "private".parse().unwrap());
        Ok(res)
    });
    let allowed = CacheLayer::builder(Moka::default())
        .mode(layercake::layer::CacheMode::Private)
        .build()
        .unwrap();
    assert_eq!(calls_for_two_gets(allowed, &origin).await, 1);
}

#[tokio::test(start_paused = true)]
async fn header_allowlist_keeps_only_listed_headers_on_hits() {
    let origin = Origin::new(|_, _| async {
        let mut res = text(StatusCode::OK, "{}");
        res.headers_mut()
            .insert(CONTENT_TYPE, "application/json".parse().unwrap());
        res.headers_mut()
            .insert("x-internal-trace", "abc".parse().unwrap());
        Ok(res)
    });
    let layer = CacheLayer::builder(Moka::default())
        .header_allowlist([CONTENT_TYPE])
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    let (miss, _) = fetch(&svc, get("/")).await;
    assert_eq!(
        miss.headers["x-internal-trace"], "abc",
        "the miss is passed on as is"
    );

    let (hit, body) = fetch(&svc, get("/")).await;
    assert_eq!(body, "{}");
    assert_eq!(hit.headers[CONTENT_TYPE], "application/json");
    assert_eq!(hit.headers[CONTENT_LENGTH], "2");
    assert!(hit.headers.get("x-internal-trace").is_none());
    let mut names: Vec<&str> = hit.headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["age", "cache-status", "content-length", "content-type"]
    );
}

#[tokio::test(start_paused = true)]
async fn query_strings_and_paths_key_separately() {
    let origin =
        Origin::new(|req, _| async move { Ok(text(StatusCode::OK, req.uri().to_string())) });
    let layer = CacheLayer::builder(Moka::default()).build().unwrap();
    let svc = layer.layer(origin.clone());
    for uri in ["/list?page=1", "/list?page=2", "/list", "/list?page=1"] {
        let (_, body) = fetch(&svc, get(uri)).await;
        assert_eq!(body, uri);
    }
    assert_eq!(origin.calls(), 3);

    // With `Path`, the query string is ignored.
    let origin =
        Origin::new(|req, _| async move { Ok(text(StatusCode::OK, req.uri().to_string())) });
    let svc = CacheLayer::builder(Moka::default())
        .key(Path)
        .build()
        .unwrap()
        .layer(origin.clone());
    for uri in ["/list?page=1", "/list?page=2"] {
        let (_, body) = fetch(&svc, get(uri)).await;
        assert_eq!(body, "/list?page=1");
    }
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn header_and_closure_extractors_key_on_what_they_name() {
    use http::header::ACCEPT_LANGUAGE;
    use layercake::layer::{Headers, PathAndQuery};

    let origin = Origin::new(|req, _| async move {
        let lang = req
            .headers()
            .get(ACCEPT_LANGUAGE)
            .map_or("none", |v| v.to_str().unwrap())
            .to_owned();
        Ok(text(StatusCode::OK, lang))
    });
    let svc = CacheLayer::builder(Moka::default())
        .key((PathAndQuery, Headers::new([ACCEPT_LANGUAGE])))
        .build()
        .unwrap()
        .layer(origin.clone());
    for (lang, expect) in [
        (Some("fr"), "fr"),
        (Some("de"), "de"),
        (None, "none"),
        (Some("fr"), "fr"),
    ] {
        let mut req = get("/");
        if let Some(lang) = lang {
            req.headers_mut()
                .insert(ACCEPT_LANGUAGE, lang.parse().unwrap());
        }
        let (_, body) = fetch(&svc, req).await;
        assert_eq!(body, expect);
    }
    assert_eq!(origin.calls(), 3);

    // A closure that declines: those requests pass through uncached.
    let origin = Origin::ok("x");
    let layer = CacheLayer::builder(Moka::default())
        .key(|req: &http::request::Parts| {
            req.uri.path().strip_prefix("/cached/").map(str::to_owned)
        })
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    for uri in ["/cached/a", "/cached/a", "/other", "/other"] {
        fetch(&svc, get(uri)).await;
    }
    assert_eq!(origin.calls(), 3);
    let (parts, _) = fetch(&svc, get("/other")).await;
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=bypass; fwd-status=200; detail=key"
    );
}

#[tokio::test(start_paused = true)]
async fn cache_status_appends_to_an_upstream_caches_entry_and_uses_the_configured_name() {
    let origin = Origin::new(|_, _| async {
        let mut res = text(StatusCode::OK, "x");
        res.headers_mut()
            .insert("cache-status", "origin-cdn; hit".parse().unwrap());
        Ok(res)
    });
    let layer = CacheLayer::builder(Moka::default())
        .name("edge")
        .build()
        .unwrap();
    let svc = layer.layer(origin);
    let (parts, _) = fetch(&svc, get("/")).await;
    assert_eq!(
        cache_status(&parts),
        "origin-cdn; hit, edge; fwd=uri-miss; fwd-status=200; stored"
    );
    let (parts, _) = fetch(&svc, get("/")).await;
    assert_eq!(cache_status(&parts), "edge; hit; ttl=60; detail=moka");

    assert!(matches!(
        CacheLayer::builder(Moka::default())
            .name("bad name")
            .build(),
        Err(layercake::BuildError::InvalidName(_))
    ));
}

#[test]
fn invalid_configurations_are_build_errors() {
    use layercake::BuildError;
    let err = CacheLayer::builder(Moka::default())
        .min_body_size(10)
        .max_body_size(5)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::BodySizeRange { min: 10, max: 5 });
    assert_eq!(
        err.to_string(),
        "min_body_size (10 bytes) is larger than max_body_size (5 bytes)"
    );
    let err = CacheLayer::builder(Moka::default())
        .methods([])
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::NoMethods);
    let err = CacheLayer::builder(Moka::default())
        .ttl(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::ZeroTtl);
}

/// A request for `uri` with `Host: host` (when given).
fn get_on(host: Option<&str>, uri: &str) -> http::Request<http_body_util::Full<Bytes>> {
    let mut req = get(uri);
    if let Some(host) = host {
        req.headers_mut()
            .insert(http::header::HOST, host.parse().unwrap());
    }
    req
}

#[tokio::test(start_paused = true)]
async fn rfc9111_2_the_authority_is_part_of_the_key() {
    let origin = Origin::new(|req, _| async move {
        let host = req
            .headers()
            .get("host")
            .map(|h| h.to_str().unwrap().to_owned());
        let authority = req.uri().authority().map(|a| a.to_string());
        Ok(text(StatusCode::OK, format!("{:?}", authority.or(host))))
    });
    let svc = CacheLayer::builder(Moka::default())
        .build()
        .unwrap()
        .layer(origin.clone());
    let (_, a) = fetch(&svc, get_on(Some("a.example"), "/page")).await;
    let (_, b) = fetch(&svc, get_on(Some("b.example"), "/page")).await;
    assert_eq!(
        (&a[..], &b[..]),
        (&b"Some(\"a.example\")"[..], &b"Some(\"b.example\")"[..])
    );
    // Hosts are case-insensitive; an absolute-form target's authority is the request's.
    let (parts, a_again) = fetch(&svc, get_on(Some("A.Example"), "/page")).await;
    assert_eq!(a_again, a);
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    let (_, absolute) = fetch(&svc, get_on(None, "http://b.example/page")).await;
    assert_eq!(absolute, b);
    assert_eq!(origin.calls(), 2);
    // The scheme is part of the target URI: `https://b.example/page` is another resource (a
    // client's cache sees both), and its scheme is case-insensitive too.
    let (parts, _) = fetch(&svc, get_on(None, "https://b.example/page")).await;
    assert!(cache_status(&parts).contains("fwd=uri-miss"), "{parts:?}");
    let (parts, _) = fetch(&svc, get_on(None, "HTTPS://B.example/page")).await;
    assert!(
        cache_status(&parts).starts_with("layercake; hit"),
        "{parts:?}"
    );
    assert_eq!(origin.calls(), 3);

    // Opted out, for a service that answers one host: every host shares the entry.
    let origin = Origin::ok("one host");
    let svc = CacheLayer::builder(Moka::default())
        .authority_in_key(false)
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&svc, get_on(Some("a.example"), "/page")).await;
    let (parts, _) = fetch(&svc, get_on(Some("www.a.example"), "/page")).await;
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_closures_key_parts_never_run_into_each_other() {
    let origin = Origin::new(|req, _| async move {
        let tenant = req.headers()["x-tenant"].to_str().unwrap().to_owned();
        Ok(text(
            StatusCode::OK,
            format!("{tenant} {}", req.uri().path()),
        ))
    });
    let svc = CacheLayer::builder(Moka::default())
        .key(|req: &http::request::Parts| {
            let tenant = req.headers.get("x-tenant")?.clone();
            Some((tenant, req.uri.path().to_owned()))
        })
        .build()
        .unwrap()
        .layer(origin.clone());
    let as_tenant = |tenant: &str, path: &str| {
        let mut req = get(path);
        req.headers_mut()
            .insert("x-tenant", tenant.parse().unwrap());
        req
    };
    let (_, first) = fetch(&svc, as_tenant("a", "/b/secret")).await;
    let (_, second) = fetch(&svc, as_tenant("a/b", "/secret")).await;
    assert_eq!(first, "a /b/secret");
    assert_eq!(second, "a/b /secret");
    assert_eq!(origin.calls(), 2);
}
