//! RFC 9111 §3: what a shared (and a private) cache may store, and whose responses it may
//! serve to whom. Every case runs a real hyper origin with the reverse proxy of
//! `examples/reverse_proxy.rs` in front, on tokio's paused clock.

use http::{Method, StatusCode, header};
use layercake::{CacheLayer, Moka, layer::CacheMode};
use layercake_tests::{
    cache_status, fetch,
    http_origin::{HttpOrigin, get_with, respond},
    request,
};

/// An origin that answers `hello <Authorization>` with `cache_control`.
async fn greeting(cache_control: &'static str) -> HttpOrigin {
    HttpOrigin::start(move |req, _| async move {
        let who = req
            .headers()
            .get(header::AUTHORIZATION)
            .map_or("anonymous", |v| v.to_str().unwrap())
            .to_owned();
        respond(
            200,
            &[("cache-control", cache_control)],
            format!("hello {who}"),
        )
    })
    .await
}

fn layer() -> CacheLayer<Moka> {
    CacheLayer::builder(Moka::default()).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_5_a_response_for_alice_is_never_served_to_bob_or_to_anyone() {
    let origin = greeting("max-age=60").await;
    let proxy = origin.behind(&layer());
    let as_alice = || get_with("/me", &[("authorization", "Bearer alice")]);

    let (parts, body) = fetch(&proxy, as_alice()).await;
    assert_eq!(body, "hello Bearer alice");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; detail=authorization"
    );
    let (_, body) = fetch(&proxy, get_with("/me", &[("authorization", "Bearer bob")])).await;
    assert_eq!(body, "hello Bearer bob");
    let (_, body) = fetch(&proxy, get_with("/me", &[])).await;
    assert_eq!(body, "hello anonymous");
    assert_eq!(origin.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_5_an_anonymous_entry_is_not_served_to_a_request_with_credentials() {
    let origin = greeting("max-age=60").await;
    let proxy = origin.behind(&layer());
    fetch(&proxy, get_with("/me", &[])).await;
    let (parts, body) = fetch(&proxy, get_with("/me", &[("authorization", "Bearer bob")])).await;
    assert_eq!(body, "hello Bearer bob", "the origin decides what bob sees");
    // RFC 9211 `fwd=miss`: a response is stored for the URL, but not one for this request.
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=miss; fwd-status=200; detail=authorization"
    );
    let (parts, body) = fetch(&proxy, get_with("/me", &[])).await;
    assert_eq!(body, "hello anonymous");
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_5_public_s_maxage_or_must_revalidate_let_a_shared_cache_store_it() {
    for directive in [
        "public, max-age=60",
        "s-maxage=60",
        "must-revalidate, max-age=60",
    ] {
        let origin = greeting(directive).await;
        let proxy = origin.behind(&layer());
        let (parts, body) = fetch(
            &proxy,
            get_with("/doc", &[("authorization", "Bearer alice")]),
        )
        .await;
        assert_eq!(body, "hello Bearer alice");
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200; stored",
            "{directive}"
        );
        // The origin said anyone may have it: bob, and an anonymous client, get the hit.
        let (parts, body) =
            fetch(&proxy, get_with("/doc", &[("authorization", "Bearer bob")])).await;
        assert_eq!(body, "hello Bearer alice", "{directive}");
        assert!(cache_status(&parts).starts_with("layercake; hit"));
        let (_, body) = fetch(&proxy, get_with("/doc", &[])).await;
        assert_eq!(body, "hello Bearer alice", "{directive}");
        assert_eq!(origin.calls(), 1, "{directive}");
    }
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_private_is_never_stored_by_a_shared_cache() {
    let origin = greeting("private, max-age=60").await;
    let proxy = origin.behind(&layer());
    for _ in 0..2 {
        let (parts, _) = fetch(&proxy, get_with("/me", &[])).await;
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200; detail=private"
        );
    }
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn private_mode_keeps_private_and_authorized_responses_of_its_one_user() {
    let origin = greeting("private, max-age=60").await;
    let layer = CacheLayer::builder(Moka::default())
        .mode(CacheMode::Private)
        .build()
        .unwrap();
    let proxy = origin.behind(&layer);
    let as_alice = || get_with("/me", &[("authorization", "Bearer alice")]);
    fetch(&proxy, as_alice()).await;
    let (parts, body) = fetch(&proxy, as_alice()).await;
    assert_eq!(body, "hello Bearer alice");
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn private_mode_ignores_s_maxage() {
    let origin = greeting("max-age=10, s-maxage=100").await;
    let layer = CacheLayer::builder(Moka::default())
        .mode(CacheMode::Private)
        .build()
        .unwrap();
    let proxy = origin.behind(&layer);
    let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
    assert!(cache_status(&parts).ends_with("stored"));
    let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
    // 10 s from the origin's `Date`, which is whole seconds: 9 or 10 left, not 99.
    let status = cache_status(&parts);
    assert!(
        [
            "layercake; hit; ttl=9; detail=moka",
            "layercake; hit; ttl=10; detail=moka"
        ]
        .contains(&status),
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_set_cookie_is_never_replayed_to_another_client() {
    let origin = HttpOrigin::start(|_, n| async move {
        let cookie = format!("session=client{n}");
        respond(
            200,
            &[("cache-control", "max-age=60"), ("set-cookie", &cookie)],
            "page",
        )
    })
    .await;
    let proxy = origin.behind(&layer());
    let (first, _) = fetch(&proxy, get_with("/", &[])).await;
    assert_eq!(first.headers[header::SET_COOKIE], "session=client1");
    assert_eq!(
        cache_status(&first),
        "layercake; fwd=uri-miss; fwd-status=200; detail=set-cookie"
    );
    let (second, _) = fetch(&proxy, get_with("/", &[])).await;
    assert_eq!(second.headers[header::SET_COOKIE], "session=client2");
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_no_store_in_the_response_or_the_request_is_never_stored() {
    let origin = greeting("no-store").await;
    let proxy = origin.behind(&layer());
    for _ in 0..2 {
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200; detail=no-store"
        );
    }
    assert_eq!(origin.calls(), 2);

    let origin = greeting("max-age=60").await;
    let proxy = origin.behind(&layer());
    let no_store = || get_with("/", &[("cache-control", "no-store")]);
    let (parts, _) = fetch(&proxy, no_store()).await;
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; detail=no-store"
    );
    let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
    assert!(cache_status(&parts).ends_with("stored"), "nothing was kept");
    // A stored response may still answer a `no-store` request (§5.2.1.5 forbids storing).
    let (parts, _) = fetch(&proxy, no_store()).await;
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_5_2_2_3_must_understand_with_a_known_status_overrides_no_store() {
    let origin = greeting("max-age=60, must-understand, no-store").await;
    let proxy = origin.behind(&layer());
    fetch(&proxy, get_with("/", &[])).await;
    let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
    assert!(
        cache_status(&parts).starts_with("layercake; hit"),
        "{}",
        cache_status(&parts)
    );
    assert_eq!(origin.calls(), 1);

    // A status whose caching rules the cache does not know is not stored.
    let origin = HttpOrigin::start(|_, _| async move {
        respond(
            299,
            &[("cache-control", "max-age=60, must-understand, no-store")],
            "?",
        )
    })
    .await;
    let layer = CacheLayer::builder(Moka::default())
        .statuses([StatusCode::from_u16(299).unwrap()])
        .build()
        .unwrap();
    let proxy = origin.behind(&layer);
    let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=299; detail=must-understand"
    );
}

#[tokio::test(start_paused = true)]
async fn rfc9110_7_6_1_hop_by_hop_headers_are_not_stored_end_to_end_ones_are() {
    let origin = HttpOrigin::start(|_, _| async move {
        respond(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("keep-alive", "timeout=5"),
                ("x-end-to-end", "kept"),
            ],
            "page",
        )
    })
    .await;
    let proxy = origin.behind(&layer());
    fetch(&proxy, get_with("/", &[])).await;
    let (hit, _) = fetch(&proxy, get_with("/", &[])).await;
    assert!(cache_status(&hit).starts_with("layercake; hit"));
    assert_eq!(hit.headers["x-end-to-end"], "kept");
    for hop in ["connection", "x-hop", "keep-alive", "transfer-encoding"] {
        assert!(!hit.headers.contains_key(hop), "{hop} was stored");
    }
}

#[tokio::test(start_paused = true)]
async fn rfc9110_9_3_2_a_head_response_never_becomes_the_body_of_a_get() {
    let origin = HttpOrigin::start(|req, _| async move {
        let body = if req.method() == Method::HEAD {
            ""
        } else {
            "the body"
        };
        respond(200, &[("cache-control", "max-age=60")], body)
    })
    .await;
    let proxy = origin.behind(&layer());
    let (parts, body) = fetch(&proxy, request("HEAD", "/doc")).await;
    assert!(body.is_empty());
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; detail=head"
    );
    let (_, body) = fetch(&proxy, get_with("/doc", &[])).await;
    assert_eq!(body, "the body");
    // And HEAD is then answered from the stored GET, without a body.
    let (parts, body) = fetch(&proxy, request("HEAD", "/doc")).await;
    assert!(body.is_empty());
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(parts.headers[header::CONTENT_LENGTH], "8");
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_2_the_query_is_part_of_the_key() {
    let origin = HttpOrigin::start(|req, _| async move {
        let query = req.uri().query().unwrap_or("").to_owned();
        respond(200, &[("cache-control", "max-age=60")], query)
    })
    .await;
    let proxy = origin.behind(&layer());
    for page in ["page=1", "page=2", "page=1"] {
        let (_, body) = fetch(&proxy, get_with(&format!("/list?{page}"), &[])).await;
        assert_eq!(body, page);
    }
    assert_eq!(origin.calls(), 2);
}

/// An origin answering `status` with `headers`; the proxy in front of it has `layer`. Returns
/// the `Cache-Status` of the first request and whether the second was a hit.
async fn stored_as(
    layer: &CacheLayer<Moka>,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
) -> (String, bool) {
    // A path of its own: a layer may be shared by several calls.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let path = format!(
        "/{}",
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let origin = HttpOrigin::start(move |_, _| async move { respond(status, headers, "x") }).await;
    let proxy = origin.behind(layer);
    let (parts, _) = fetch(&proxy, get_with(&path, &[])).await;
    assert_eq!(parts.status.as_u16(), status);
    let first = cache_status(&parts).to_owned();
    let (parts, _) = fetch(&proxy, get_with(&path, &[])).await;
    (first, cache_status(&parts).starts_with("layercake; hit"))
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_any_final_status_with_explicit_freshness_is_stored() {
    for status in [201, 204, 302, 307, 400, 404, 500, 503, 599] {
        for freshness in [
            &[("cache-control", "max-age=60")][..],
            &[("cache-control", "public, s-maxage=60")][..],
        ] {
            let (first, hit) = stored_as(&layer(), status, freshness).await;
            assert!(first.ends_with("stored"), "{status}: {first}");
            assert!(hit, "{status} {freshness:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn rfc9110_15_1_without_freshness_information_only_heuristically_cacheable_statuses_get_the_layer_ttl()
 {
    for (status, stored) in [
        (200, true),
        (204, true),
        (301, true),
        (201, false),
        (302, false),
    ] {
        let (first, hit) = stored_as(&layer(), status, &[]).await;
        assert_eq!(hit, stored, "{status}: {first}");
    }
    // Error statuses, heuristically cacheable or not, only with a negative ttl.
    let (first, hit) = stored_as(&layer(), 404, &[]).await;
    assert_eq!(
        (first.as_str(), hit),
        (
            "layercake; fwd=uri-miss; fwd-status=404; detail=status",
            false
        )
    );
    let negative = CacheLayer::builder(Moka::default())
        .negative_ttl(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(stored_as(&negative, 404, &[]).await.1);
    assert!(stored_as(&negative, 410, &[]).await.1);
    assert!(
        !stored_as(&negative, 500, &[]).await.1,
        "500 is not heuristically cacheable"
    );
    // `public` makes a heuristic lifetime from `Last-Modified` allowed for any status.
    let headers: &'static [(&'static str, &'static str)] = &[
        ("cache-control", "public"),
        ("last-modified", "Sat, 01 Jan 2000 00:00:00 GMT"),
    ];
    assert!(stored_as(&layer(), 302, headers).await.1);
    // Partial content and 304 are never stored as responses, even with freshness.
    for status in [206, 304] {
        let (_, hit) = stored_as(&layer(), status, &[("cache-control", "max-age=60")]).await;
        assert!(!hit, "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn statuses_the_user_lists_are_the_only_ones_and_take_the_layer_ttl() {
    let listed = CacheLayer::builder(Moka::default())
        .statuses([StatusCode::CREATED, StatusCode::IM_A_TEAPOT])
        .negative_ttl(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(stored_as(&listed, 201, &[]).await.1);
    assert!(stored_as(&listed, 418, &[]).await.1);
    let (first, hit) = stored_as(&listed, 200, &[("cache-control", "max-age=60")]).await;
    assert_eq!(
        (first.as_str(), hit),
        (
            "layercake; fwd=uri-miss; fwd-status=200; detail=status",
            false
        )
    );
}

#[tokio::test(start_paused = true)]
async fn the_reverse_proxy_never_invents_a_lifetime() {
    use layercake_tests::reverse_proxy::cache;
    let strict = cache();
    let (first, hit) = stored_as(&strict, 200, &[]).await;
    assert_eq!(
        (first.as_str(), hit),
        (
            "layercake; fwd=uri-miss; fwd-status=200; detail=no-freshness",
            false
        )
    );
    assert!(
        stored_as(&strict, 200, &[("cache-control", "max-age=60")])
            .await
            .1
    );
    let heuristic: &'static [(&'static str, &'static str)] =
        &[("last-modified", "Sat, 01 Jan 2000 00:00:00 GMT")];
    assert!(
        stored_as(&strict, 200, heuristic).await.1,
        "a heuristic lifetime is the origin's"
    );
    assert!(
        !stored_as(&strict, 302, heuristic).await.1,
        "302 is not heuristically cacheable"
    );
}

#[tokio::test(start_paused = true)]
async fn methods_the_cache_does_not_store_pass_through_with_their_bodies() {
    let origin = HttpOrigin::start(|req, _| async move {
        let echo = format!("{} {}", req.method(), String::from_utf8_lossy(req.body()));
        respond(200, &[("cache-control", "max-age=60")], echo)
    })
    .await;
    let proxy = origin.behind(&layer());
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let mut req = request(method, "/thing");
        *req.body_mut() = http_body_util::Full::from("payload");
        let (parts, body) = fetch(&proxy, req).await;
        assert_eq!(body, format!("{method} payload"));
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=method; fwd-status=200"
        );
    }
    assert_eq!(origin.calls(), 5);
}

/// Two clients, each on its own connection to the proxy served over TCP (real time: real
/// sockets on both sides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_on_their_own_connections_never_get_each_others_private_responses() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    use layercake_tests::reverse_proxy::{Upstream, cache, serve};
    use tower::Layer;

    let origin = HttpOrigin::start(|req, n| async move {
        let who = req
            .headers()
            .get(header::AUTHORIZATION)
            .map_or("anonymous", |v| v.to_str().unwrap())
            .to_owned();
        let cookie = format!("session={n}");
        match req.uri().path() {
            "/me" => respond(
                200,
                &[("cache-control", "max-age=60")],
                format!("hello {who}"),
            ),
            _ => respond(
                200,
                &[("cache-control", "max-age=60"), ("set-cookie", &cookie)],
                "welcome",
            ),
        }
    })
    .await;
    let proxy = cache().layer(Upstream::<hyper::body::Incoming>::new(origin.uri()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, proxy));

    let client = || Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let (alice, bob) = (client(), client());
    let ask = |client: &Client<_, Empty<bytes::Bytes>>, path: &str, who: Option<&str>| {
        let mut request = http::Request::get(format!("http://{address}{path}"));
        if let Some(who) = who {
            request = request.header(header::AUTHORIZATION, who);
        }
        let response = client.request(request.body(Empty::new()).unwrap());
        async move {
            let (parts, body) = response.await.unwrap().into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            (parts, String::from_utf8(body.to_vec()).unwrap())
        }
    };

    assert_eq!(
        ask(&alice, "/me", Some("Bearer alice")).await.1,
        "hello Bearer alice"
    );
    assert_eq!(
        ask(&bob, "/me", Some("Bearer bob")).await.1,
        "hello Bearer bob"
    );
    assert_eq!(ask(&bob, "/me", None).await.1, "hello anonymous");
    assert_eq!(
        ask(&alice, "/me", Some("Bearer alice")).await.1,
        "hello Bearer alice"
    );

    let (first, _) = ask(&alice, "/welcome", None).await;
    let (second, _) = ask(&bob, "/welcome", None).await;
    let cookie = |parts: &http::response::Parts| parts.headers[header::SET_COOKIE].clone();
    assert_ne!(
        cookie(&first),
        cookie(&second),
        "bob never gets alice's cookie"
    );
    assert_eq!(
        origin.calls(),
        6,
        "nothing private was served from the cache"
    );
    server.abort();
}

/// An origin that answers `hello <Cookie>` with `headers`.
async fn cookie_greeting(headers: &'static [(&'static str, &'static str)]) -> HttpOrigin {
    HttpOrigin::start(move |req, _| async move {
        let who = req
            .headers()
            .get(header::COOKIE)
            .map_or("anonymous", |v| v.to_str().unwrap())
            .to_owned();
        respond(200, headers, format!("hello {who}"))
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn shared_cache_treats_a_cookie_as_credentials_by_default() {
    let origin = cookie_greeting(&[("cache-control", "max-age=60")]).await;
    let proxy = origin.behind(&layer());
    let (parts, body) = fetch(&proxy, get_with("/me", &[("cookie", "session=alice")])).await;
    assert_eq!(body, "hello session=alice");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; detail=cookie"
    );
    let (_, body) = fetch(&proxy, get_with("/me", &[("cookie", "session=bob")])).await;
    assert_eq!(body, "hello session=bob", "alice's page never reaches bob");
    // An anonymous entry is not served to a request with a cookie either.
    fetch(&proxy, get_with("/me", &[])).await;
    let (parts, body) = fetch(&proxy, get_with("/me", &[("cookie", "session=carol")])).await;
    assert_eq!(body, "hello session=carol");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=miss; fwd-status=200; detail=cookie"
    );
    assert_eq!(origin.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_response_that_varies_on_cookie_or_is_public_is_shared_by_cookie() {
    let origin = cookie_greeting(&[("cache-control", "max-age=60"), ("vary", "Cookie")]).await;
    let proxy = origin.behind(&layer());
    fetch(&proxy, get_with("/me", &[("cookie", "session=alice")])).await;
    let (parts, body) = fetch(&proxy, get_with("/me", &[("cookie", "session=alice")])).await;
    assert_eq!(body, "hello session=alice");
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    let (_, body) = fetch(&proxy, get_with("/me", &[("cookie", "session=bob")])).await;
    assert_eq!(body, "hello session=bob");
    assert_eq!(origin.calls(), 2);

    let origin = cookie_greeting(&[("cache-control", "public, max-age=60")]).await;
    let proxy = origin.behind(&layer());
    fetch(&proxy, get_with("/doc", &[("cookie", "session=alice")])).await;
    let (parts, _) = fetch(&proxy, get_with("/doc", &[("cookie", "session=bob")])).await;
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn ignored_cookies_and_the_opt_in_let_cookie_requests_share_entries() {
    let origin = cookie_greeting(&[("cache-control", "max-age=60")]).await;
    let analytics = CacheLayer::builder(Moka::default())
        .ignore_cookies(["_ga*", "consent"])
        .build()
        .unwrap();
    let proxy = origin.behind(&analytics);
    fetch(
        &proxy,
        get_with("/page", &[("cookie", "_ga=1; _ga_X=2; consent=yes")]),
    )
    .await;
    let (parts, _) = fetch(&proxy, get_with("/page", &[])).await;
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    let (parts, _) = fetch(&proxy, get_with("/page", &[("cookie", "_gid=3")])).await;
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=miss; fwd-status=200; detail=cookie",
        "a cookie not on the list counts"
    );
    assert_eq!(origin.calls(), 2);

    let origin = cookie_greeting(&[("cache-control", "max-age=60")]).await;
    let allowing = CacheLayer::builder(Moka::default())
        .allow_cookies(true)
        .build()
        .unwrap();
    let proxy = origin.behind(&allowing);
    fetch(&proxy, get_with("/page", &[("cookie", "session=alice")])).await;
    let (_, body) = fetch(&proxy, get_with("/page", &[("cookie", "session=bob")])).await;
    assert_eq!(
        body, "hello session=alice",
        "opted in: cookies do not split entries"
    );
    assert_eq!(origin.calls(), 1);
}
