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
    assert_eq!(cache_status(&parts), "layercake; hit; ttl=1; detail=moka");
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
    assert_eq!(cache_status(&parts), "layercake; hit; ttl=30; detail=moka");
    assert_eq!(origin.calls(), 1);
}

// The rest runs a real hyper origin behind the example reverse proxy.

mod over_http {
    use std::sync::{
        Arc,
        atomic::{AtomicU16, Ordering::SeqCst},
    };

    use http::{StatusCode, header};
    use layercake::{CacheLayer, Moka};
    use layercake_tests::{
        cache_status, fetch,
        http_origin::{HttpOrigin, date_in, get_with, respond, whole_second},
    };
    use tokio::time::advance;

    use super::secs;

    /// An origin answering `v<n>` with these headers.
    async fn origin(headers: &'static [(&'static str, &'static str)]) -> HttpOrigin {
        HttpOrigin::versions(headers).await
    }

    fn layer() -> CacheLayer<Moka> {
        CacheLayer::builder(Moka::default())
            .ttl(secs(3600))
            .build()
            .unwrap()
    }

    async fn text_of(
        proxy: &layercake_tests::http_origin::Proxy,
        headers: &[(&str, &str)],
    ) -> String {
        let (_, body) = fetch(proxy, get_with("/", headers)).await;
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_4_2_1_expires_minus_date_is_the_lifetime() {
        whole_second().await;
        let origin = HttpOrigin::start(|_, n| async move {
            let expires = date_in(30);
            respond(200, &[("expires", &expires)], format!("v{n}"))
        })
        .await;
        let proxy = origin.behind(&layer());
        assert_eq!(text_of(&proxy, &[]).await, "v1");
        advance(secs(29)).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=1; detail=moka");
        advance(secs(2)).await;
        assert_eq!(text_of(&proxy, &[]).await, "v2");
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9110_5_6_7_a_date_in_any_case_with_a_wrong_weekday_is_read() {
        whole_second().await;
        let origin = HttpOrigin::start(|_, n| async move {
            // `tue, 06 nov 1994 …  gmt` for a date that is not a Tuesday (or `mon, …`).
            let expires = date_in(30);
            let wrong = if expires.starts_with("Mon") {
                "Tue"
            } else {
                "Mon"
            };
            let odd = format!("{wrong}{}", &expires[3..]).to_lowercase();
            respond(200, &[("expires", &odd)], format!("v{n}"))
        })
        .await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=30; detail=moka");
        assert_eq!(origin.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9213_cdn_cache_control_replaces_cache_control_and_expires_for_a_shared_cache() {
        // Browsers may not keep it; this cache keeps it for a minute.
        let origin = origin(&[
            ("cache-control", "no-store"),
            ("expires", "0"),
            ("cdn-cache-control", "max-age=60"),
        ])
        .await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=60; detail=moka");
        assert_eq!(
            parts.headers["cdn-cache-control"], "max-age=60",
            "passed on"
        );
        // And the other way round: the targeted field forbids what Cache-Control allows.
        let origin = self::origin(&[
            ("cache-control", "max-age=60"),
            ("cdn-cache-control", "no-store"),
        ])
        .await;
        let proxy = origin.behind(&layer());
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200; detail=no-store"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9213_2_2_an_invalid_targeted_field_is_ignored_and_private_mode_ignores_all() {
        // Not a Dictionary (uppercase key): Cache-Control applies.
        let origin = origin(&[
            ("cache-control", "max-age=5"),
            ("cdn-cache-control", "MAX-AGE=60"),
        ])
        .await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=5; detail=moka");
        // A private cache is not one the field targets.
        let origin = self::origin(&[
            ("cache-control", "max-age=5"),
            ("cdn-cache-control", "max-age=60"),
        ])
        .await;
        let private = CacheLayer::builder(Moka::default())
            .mode(layercake::layer::CacheMode::Private)
            .build()
            .unwrap();
        let proxy = origin.behind(&private);
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=5; detail=moka");
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9213_2_1_the_first_field_of_the_target_list_wins_and_the_last_hop_hides_them() {
        let origin = origin(&[
            ("cdn-cache-control", "max-age=60"),
            ("layercake-cache-control", "max-age=30"),
        ])
        .await;
        let own = CacheLayer::builder(Moka::default())
            .targeted_cache_control([
                http::HeaderName::from_static("layercake-cache-control"),
                http::HeaderName::from_static("cdn-cache-control"),
            ])
            .last_targeted_hop(true)
            .build()
            .unwrap();
        let proxy = origin.behind(&own);
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=30; detail=moka");
        assert!(!parts.headers.contains_key("cdn-cache-control"));
        assert!(!parts.headers.contains_key("layercake-cache-control"));
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_4_2_1_a_repeated_max_age_counts_by_its_first_value() {
        let origin = origin(&[("cache-control", "max-age=5, max-age=1800")]).await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=5; detail=moka");
        // On two lines, the first line's value.
        let two_lines = self::origin(&[
            ("cache-control", "max-age=5"),
            ("cache-control", "max-age=1800"),
        ])
        .await;
        let proxy = two_lines.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=5; detail=moka");
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_5_1_a_list_valued_age_counts_by_its_first_member() {
        let origin = origin(&[("cache-control", "max-age=60"), ("age", "50, 0")]).await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=10; detail=moka");
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_4_2_2_heuristic_lifetime_is_a_tenth_of_the_time_since_last_modified() {
        whole_second().await;
        let origin = HttpOrigin::start(|_, n| async move {
            let modified = date_in(-1000);
            respond(200, &[("last-modified", &modified)], format!("v{n}"))
        })
        .await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=100; detail=moka");
        advance(secs(101)).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert!(cache_status(&parts).starts_with("layercake; fwd=stale"));
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_4_2_3_the_upstream_age_counts_and_age_is_sent_on_every_hit() {
        let origin = origin(&[("cache-control", "max-age=60"), ("age", "20")]).await;
        let proxy = origin.behind(&layer());
        let (miss, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(miss.headers[header::AGE], "20", "passed on from upstream");
        let (hit, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(hit.headers[header::AGE], "20");
        assert_eq!(cache_status(&hit), "layercake; hit; ttl=40; detail=moka");
        advance(secs(7)).await;
        let (hit, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(hit.headers[header::AGE], "27");
        advance(secs(34)).await; // age 61 > 60
        assert_eq!(text_of(&proxy, &[]).await, "v2");
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_4_2_3_a_date_in_the_past_makes_the_response_older() {
        whole_second().await;
        let origin = HttpOrigin::start(|_, n| async move {
            let date = date_in(-50);
            respond(
                200,
                &[("cache-control", "max-age=60"), ("date", &date)],
                format!("v{n}"),
            )
        })
        .await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        let (hit, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(hit.headers[header::AGE], "50");
        assert_eq!(cache_status(&hit), "layercake; hit; ttl=10; detail=moka");
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_5_2_1_1_request_max_age_refuses_an_older_response() {
        let origin = origin(&[("cache-control", "max-age=60")]).await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        advance(secs(10)).await;
        assert_eq!(
            text_of(&proxy, &[("cache-control", "max-age=20")]).await,
            "v1"
        );
        let (parts, body) = fetch(&proxy, get_with("/", &[("cache-control", "max-age=5")])).await;
        assert_eq!(body, "v2");
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=request; fwd-status=200; stored"
        );
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_5_2_1_3_request_min_fresh_refuses_a_response_about_to_expire() {
        let origin = origin(&[("cache-control", "max-age=60")]).await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        advance(secs(50)).await;
        assert_eq!(
            text_of(&proxy, &[("cache-control", "min-fresh=5")]).await,
            "v1"
        );
        assert_eq!(
            text_of(&proxy, &[("cache-control", "min-fresh=20")]).await,
            "v2"
        );
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_5_2_1_2_request_max_stale_accepts_a_stale_response() {
        // The ETag keeps the entry past its freshness (to revalidate it).
        let origin = origin(&[("cache-control", "max-age=10"), ("etag", "\"e\"")]).await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        advance(secs(15)).await;
        let (parts, body) =
            fetch(&proxy, get_with("/", &[("cache-control", "max-stale=10")])).await;
        assert_eq!(body, "v1");
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=-5; detail=moka");
        let (_, body) = fetch(&proxy, get_with("/", &[("cache-control", "max-stale")])).await;
        assert_eq!(
            body, "v1",
            "max-stale without a value accepts any staleness"
        );
        let (parts, _) = fetch(&proxy, get_with("/", &[("cache-control", "max-stale=2")])).await;
        assert!(cache_status(&parts).starts_with("layercake; fwd=stale"));
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_5_2_1_2_max_stale_also_limits_what_the_layers_stale_window_would_serve() {
        let origin = origin(&[("cache-control", "max-age=10")]).await;
        let layer = CacheLayer::builder(Moka::default())
            .stale(secs(300))
            .build()
            .unwrap();
        let proxy = origin.behind(&layer);
        fetch(&proxy, get_with("/", &[])).await;
        advance(secs(15)).await;
        let (parts, _) = fetch(&proxy, get_with("/", &[("cache-control", "max-stale=10")])).await;
        assert_eq!(cache_status(&parts), "layercake; hit; ttl=-5; detail=moka");
        let (parts, body) = fetch(&proxy, get_with("/", &[("cache-control", "max-stale=2")])).await;
        assert_eq!(body, "v2");
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=stale; fwd-status=200; stored"
        );
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_5_2_1_4_request_no_cache_and_pragma_go_to_the_origin() {
        let origin = origin(&[("cache-control", "max-age=60")]).await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, body) = fetch(&proxy, get_with("/", &[("cache-control", "no-cache")])).await;
        assert_eq!(body, "v2");
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=request; fwd-status=200; stored"
        );
        assert_eq!(text_of(&proxy, &[("pragma", "no-cache")]).await, "v3");
        // §5.4: Pragma is ignored when Cache-Control is present.
        assert_eq!(
            text_of(
                &proxy,
                &[("pragma", "no-cache"), ("cache-control", "max-stale=1")]
            )
            .await,
            "v3"
        );
        assert_eq!(
            text_of(&proxy, &[]).await,
            "v3",
            "the new response was stored"
        );
        assert_eq!(origin.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_5_2_1_7_only_if_cached_is_504_when_nothing_fits() {
        let origin = origin(&[("cache-control", "max-age=60")]).await;
        let proxy = origin.behind(&layer());
        let only = [("cache-control", "only-if-cached")];
        let (parts, body) = fetch(&proxy, get_with("/", &only)).await;
        assert_eq!(parts.status, StatusCode::GATEWAY_TIMEOUT);
        assert!(body.is_empty());
        assert_eq!(cache_status(&parts), "layercake; detail=only-if-cached");
        assert_eq!(origin.calls(), 0);
        fetch(&proxy, get_with("/", &[])).await;
        let (parts, body) = fetch(&proxy, get_with("/", &only)).await;
        assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"v1"[..]));
        assert_eq!(origin.calls(), 1);
    }

    /// An origin that answers `v<n>` with `cache_control`, or `status` once told to fail.
    async fn failing_origin(cache_control: &'static str) -> (HttpOrigin, Arc<AtomicU16>) {
        whole_second().await;
        let failing = Arc::new(AtomicU16::new(0));
        let fail = Arc::clone(&failing);
        let origin = HttpOrigin::start(move |_, n| {
            let status = fail.load(SeqCst);
            async move {
                match status {
                    0 => respond(200, &[("cache-control", cache_control)], format!("v{n}")),
                    status => respond(status, &[], "down"),
                }
            }
        })
        .await;
        (origin, failing)
    }

    #[tokio::test(start_paused = true)]
    async fn rfc9111_5_2_2_2_must_revalidate_and_proxy_revalidate_forbid_serving_stale() {
        for directive in [
            "max-age=10, must-revalidate",
            "max-age=10, proxy-revalidate",
        ] {
            let (origin, failing) = failing_origin(directive).await;
            // The layer would serve stale and stale-if-error; the origin forbids it.
            let layer = CacheLayer::builder(Moka::default())
                .stale(secs(300))
                .stale_if_error(secs(300))
                .build()
                .unwrap();
            let proxy = origin.behind(&layer);
            fetch(&proxy, get_with("/", &[])).await;
            advance(secs(11)).await;
            assert_eq!(
                text_of(&proxy, &[]).await,
                "v2",
                "{directive}: not served stale"
            );
            advance(secs(11)).await;
            failing.store(503, SeqCst);
            let (parts, body) = fetch(&proxy, get_with("/", &[])).await;
            assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE, "{directive}");
            assert_eq!(body, "down");
            assert_eq!(origin.calls(), 3);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rfc5861_3_the_origins_stale_while_revalidate_is_the_stale_window() {
        let origin = origin(&[("cache-control", "max-age=10, stale-while-revalidate=30")]).await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        advance(secs(25)).await;
        // Served stale at once, and revalidated in the background although the layer's own
        // policy (`Return`) would not have.
        let (parts, body) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(body, "v1");
        assert_eq!(
            cache_status(&parts),
            "layercake; hit; ttl=-15; fwd=stale; detail=moka"
        );
        layercake_tests::eventually("the background revalidation", || origin.calls() == 2).await;
        layercake_tests::settle().await;
        let (parts, body) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(body, "v2");
        assert!(cache_status(&parts).starts_with("layercake; hit; ttl="));
        advance(secs(45)).await; // past v2's 10 + 30
        let (parts, body) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(body, "v3");
        assert!(cache_status(&parts).starts_with("layercake; fwd=uri-miss"));
    }

    #[tokio::test(start_paused = true)]
    async fn rfc5861_4_the_origins_stale_if_error_serves_stale_when_the_origin_fails() {
        let (origin, failing) = failing_origin("max-age=10, stale-if-error=60").await;
        let proxy = origin.behind(&layer());
        fetch(&proxy, get_with("/", &[])).await;
        advance(secs(40)).await;
        failing.store(500, SeqCst);
        let (parts, body) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"v1"[..]));
        assert_eq!(
            cache_status(&parts),
            "layercake; hit; ttl=-30; fwd=stale; fwd-status=500; detail=stale-if-error"
        );
        advance(secs(40)).await; // 80 s: past 10 + 60
        let (parts, _) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(parts.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(origin.calls(), 3);
    }
}
