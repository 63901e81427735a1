//! RFC 9111 §4.1: a URL whose responses carry `Vary` keeps one stored response per variant,
//! selected by the request headers the origin named. A real hyper origin behind the example
//! reverse proxy.

use std::time::Duration;

use http::header;
use layercake::{CacheLayer, Moka};
use layercake_tests::{
    cache_status, fetch,
    http_origin::{HttpOrigin, Proxy, get_with, respond},
    request,
};
use tokio::task::JoinSet;

fn layer() -> CacheLayer<Moka> {
    CacheLayer::builder(Moka::default()).build().unwrap()
}

/// An origin greeting in the request's `Accept-Language`, varying on it, after `delay`.
async fn greeter(delay: Duration) -> HttpOrigin {
    HttpOrigin::start(move |req, n| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let language = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .map_or("none", |v| v.to_str().unwrap())
            .to_owned();
        respond(
            200,
            &[("cache-control", "max-age=60"), ("vary", "Accept-Language")],
            format!("hello in {language} #{n}"),
        )
    })
    .await
}

async fn in_language(proxy: &Proxy, language: &str) -> (String, String) {
    let headers: &[(&str, &str)] = if language.is_empty() {
        &[]
    } else {
        &[("accept-language", language)]
    };
    let (parts, body) = fetch(proxy, get_with("/page", headers)).await;
    (
        String::from_utf8(body.to_vec()).unwrap(),
        cache_status(&parts).to_owned(),
    )
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_1_variants_of_one_url_coexist_each_selected_by_the_named_header() {
    let origin = greeter(Duration::ZERO).await;
    let proxy = origin.behind(&layer());
    let (body, status) = in_language(&proxy, "en").await;
    assert_eq!(body, "hello in en #1");
    assert_eq!(status, "layercake; fwd=uri-miss; fwd-status=200; stored");
    let (body, status) = in_language(&proxy, "fr").await;
    assert_eq!(body, "hello in fr #2");
    assert_eq!(status, "layercake; fwd=vary-miss; fwd-status=200; stored");
    for _ in 0..2 {
        let (body, status) = in_language(&proxy, "en").await;
        assert_eq!(body, "hello in en #1");
        assert!(status.starts_with("layercake; hit"), "{status}");
        let (body, _) = in_language(&proxy, "fr").await;
        assert_eq!(body, "hello in fr #2");
    }
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_1_values_are_compared_after_normalizing_whitespace_and_lines() {
    let origin = greeter(Duration::ZERO).await;
    let proxy = origin.behind(&layer());
    in_language(&proxy, "en,  fr").await;
    let (body, status) = in_language(&proxy, "en, fr").await;
    assert_eq!(body, "hello in en,  fr #1");
    assert!(status.starts_with("layercake; hit"));
    // The same list sent as two header lines.
    let mut two_lines = get_with("/page", &[]);
    two_lines
        .headers_mut()
        .append(header::ACCEPT_LANGUAGE, "en".parse().unwrap());
    two_lines
        .headers_mut()
        .append(header::ACCEPT_LANGUAGE, "fr".parse().unwrap());
    let (parts, body) = fetch(&proxy, two_lines).await;
    assert_eq!(body, "hello in en,  fr #1");
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    // A value that differs is another variant.
    let (body, _) = in_language(&proxy, "en, fr, de").await;
    assert_eq!(body, "hello in en, fr, de #2");
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_1_language_ranges_select_regardless_of_order_and_case() {
    let origin = greeter(Duration::ZERO).await;
    let proxy = origin.behind(&layer());
    assert_eq!(in_language(&proxy, "de, en").await.0, "hello in de, en #1");
    let (body, status) = in_language(&proxy, "EN,de").await;
    assert_eq!(body, "hello in de, en #1");
    assert!(status.starts_with("layercake; hit"));
    // Weights are part of the value.
    assert_eq!(
        in_language(&proxy, "de;q=0.5, en").await.0,
        "hello in de;q=0.5, en #2"
    );
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_1_a_request_without_the_header_is_a_variant_of_its_own() {
    let origin = greeter(Duration::ZERO).await;
    let proxy = origin.behind(&layer());
    assert_eq!(in_language(&proxy, "en").await.0, "hello in en #1");
    assert_eq!(in_language(&proxy, "").await.0, "hello in none #2");
    assert_eq!(in_language(&proxy, "").await.0, "hello in none #2");
    assert_eq!(in_language(&proxy, "en").await.0, "hello in en #1");
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_1_vary_star_never_matches_so_it_is_not_stored() {
    let origin = HttpOrigin::start(|_, n| async move {
        respond(
            200,
            &[("cache-control", "max-age=60"), ("vary", "*")],
            format!("v{n}"),
        )
    })
    .await;
    let proxy = origin.behind(&layer());
    for n in 1..=2 {
        let (parts, body) = fetch(&proxy, get_with("/", &[])).await;
        assert_eq!(body, format!("v{n}"));
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=uri-miss; fwd-status=200; detail=vary-star"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_4_invalidating_a_varying_url_removes_every_variant() {
    let origin = greeter(Duration::ZERO).await;
    let proxy = origin.behind(&layer());
    in_language(&proxy, "en").await;
    in_language(&proxy, "fr").await;
    let (parts, _) = fetch(&proxy, request("POST", "/page")).await;
    assert!(parts.status.is_success());
    layercake_tests::settle().await;
    let (body, status) = in_language(&proxy, "en").await;
    assert_eq!(body, "hello in en #4");
    assert!(status.starts_with("layercake; fwd=uri-miss"), "{status}");
    let (body, status) = in_language(&proxy, "fr").await;
    assert_eq!(body, "hello in fr #5", "the old fr variant is unreachable");
    assert!(status.starts_with("layercake; fwd=vary-miss"), "{status}");
    assert_eq!(origin.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn rfc9110_9_3_2_head_is_answered_from_its_variant() {
    let origin = greeter(Duration::ZERO).await;
    let proxy = origin.behind(&layer());
    in_language(&proxy, "en").await;
    in_language(&proxy, "fr").await;
    let mut head = request("HEAD", "/page");
    head.headers_mut()
        .insert(header::ACCEPT_LANGUAGE, "fr".parse().unwrap());
    let (parts, body) = fetch(&proxy, head).await;
    assert!(body.is_empty());
    assert_eq!(
        parts.headers[header::CONTENT_LENGTH],
        "hello in fr #2".len().to_string()
    );
    assert_eq!(origin.calls(), 2);
}

/// Concurrent requests need real time here: the origin is a real server, and a paused clock
/// would jump while they wait on its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9111_4_1_coalescing_is_per_variant() {
    let origin = greeter(Duration::from_millis(300)).await;
    let layer = layer();
    let proxy = origin.behind(&layer);
    // The URL's list of variants exists: each language then has a flight of its own.
    in_language(&proxy, "de").await;
    layercake_tests::eventually("the variant and the list are stored", || {
        layer.stats().stores == 2
    })
    .await;
    let mut requests = JoinSet::new();
    for i in 0..16 {
        let proxy = proxy.clone();
        let language = if i % 2 == 0 { "en" } else { "fr" };
        requests.spawn(async move { (language, in_language(&proxy, language).await) });
    }
    for (language, (body, status)) in requests.join_all().await {
        assert!(
            body.starts_with(&format!("hello in {language} #")),
            "{language}: {body}"
        );
        assert!(
            status.ends_with("stored") || status.ends_with("collapsed"),
            "{status}"
        );
    }
    assert_eq!(origin.calls(), 3, "one call for de, one for en, one for fr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9111_4_1_a_request_waiting_on_a_cold_url_gets_only_its_own_variant() {
    let origin = greeter(Duration::from_millis(300)).await;
    let proxy = origin.behind(&layer());
    let mut requests = JoinSet::new();
    for language in ["en", "fr", "en", "fr"] {
        let proxy = proxy.clone();
        requests.spawn(async move { (language, in_language(&proxy, language).await) });
    }
    for (language, (body, _)) in requests.join_all().await {
        assert!(
            body.starts_with(&format!("hello in {language} #")),
            "{language} was served {body}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_stale_variant_is_refreshed_in_the_background_in_its_own_place() {
    let origin = HttpOrigin::start(|req, n| async move {
        let language = req.headers()[header::ACCEPT_LANGUAGE]
            .to_str()
            .unwrap()
            .to_owned();
        respond(
            200,
            &[("cache-control", "max-age=10"), ("vary", "accept-language")],
            format!("{language} #{n}"),
        )
    })
    .await;
    let layer = CacheLayer::builder(Moka::default())
        .stale(Duration::from_secs(60))
        .stale_policy(layercake::StalePolicy::OffloadRevalidate)
        .build()
        .unwrap();
    let proxy = origin.behind(&layer);
    in_language(&proxy, "en").await;
    in_language(&proxy, "fr").await;
    tokio::time::advance(Duration::from_secs(15)).await;
    let (body, status) = in_language(&proxy, "en").await;
    assert_eq!(body, "en #1");
    assert!(status.ends_with("fwd=stale; detail=moka"), "{status}");
    layercake_tests::eventually("the refresh is stored", || layer.stats().stores >= 3).await;
    let (body, status) = in_language(&proxy, "en").await;
    assert_eq!(body, "en #3", "the refreshed en variant");
    assert!(status.starts_with("layercake; hit; ttl="), "{status}");
    let (body, _) = in_language(&proxy, "fr").await;
    assert_eq!(body, "fr #2", "fr untouched (stale, served)");
}

#[tokio::test(start_paused = true)]
async fn vary_is_kept_when_a_header_allowlist_would_drop_it() {
    let origin = greeter(Duration::ZERO).await;
    let layer = CacheLayer::builder(Moka::default())
        .header_allowlist([header::CONTENT_TYPE])
        .build()
        .unwrap();
    let proxy = origin.behind(&layer);
    in_language(&proxy, "en").await;
    in_language(&proxy, "fr").await;
    let (parts, body) = fetch(&proxy, get_with("/page", &[("accept-language", "fr")])).await;
    assert_eq!(body, "hello in fr #2");
    assert_eq!(parts.headers[header::VARY], "Accept-Language");
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9110_5_3_whitespace_inside_a_member_is_part_of_its_value() {
    let origin = greeter(Duration::ZERO).await;
    let proxy = origin.behind(&layer());
    assert_eq!(
        in_language(&proxy, "John  Smith").await.0,
        "hello in John  Smith #1"
    );
    assert_eq!(
        in_language(&proxy, "John Smith").await.0,
        "hello in John Smith #2"
    );
    assert_eq!(
        in_language(&proxy, " John  Smith ").await.0,
        "hello in John  Smith #1",
        "whitespace around a member is not"
    );
    assert_eq!(origin.calls(), 2);
}
