//! RFC 9111 §4.3 and RFC 9110 §13: stale entries revalidated with the origin, `304` updating
//! the stored response without its body, and clients' own conditional requests answered from
//! the cache. A real hyper origin behind the example reverse proxy, on tokio's paused clock.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use http::{HeaderMap, StatusCode, header};
use layercake::{CacheLayer, Moka};
use layercake_tests::{
    cache_status, fetch,
    http_origin::{HttpOrigin, Proxy, date_in, get_with, respond, whole_second},
    request,
};
use tokio::time::advance;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn layer() -> CacheLayer<Moka> {
    CacheLayer::builder(Moka::default())
        .ttl(secs(3600))
        .build()
        .unwrap()
}

/// An origin serving one representation with `ETag: "v1"` and `cache_control`; it answers a
/// matching `If-None-Match` with `304` (whose headers are `on_304`), and records the
/// conditional headers of every request it gets.
struct Validating {
    origin: HttpOrigin,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

async fn validating(
    cache_control: &'static str,
    on_304: &'static [(&'static str, &'static str)],
) -> Validating {
    whole_second().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let origin = HttpOrigin::start(move |req, _| {
        record.lock().unwrap().push(req.headers().clone());
        async move {
            if req
                .headers()
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v == "\"v1\"")
            {
                return respond(304, on_304, "");
            }
            respond(
                200,
                &[("cache-control", cache_control), ("etag", "\"v1\"")],
                "the representation",
            )
        }
    })
    .await;
    Validating { origin, seen }
}

impl Validating {
    fn last_if_none_match(&self) -> Option<String> {
        let seen = self.seen.lock().unwrap();
        let last = seen.last()?.get(header::IF_NONE_MATCH)?;
        Some(last.to_str().unwrap().to_owned())
    }
}

async fn get(proxy: &Proxy, headers: &[(&str, &str)]) -> (http::response::Parts, bytes::Bytes) {
    fetch(proxy, get_with("/doc", headers)).await
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_3_1_a_stale_entry_is_revalidated_and_a_304_makes_it_fresh_again() {
    let v = validating("max-age=10", &[("cache-control", "max-age=30")]).await;
    let proxy = v.origin.behind(&layer());
    get(&proxy, &[]).await;
    assert_eq!(
        v.last_if_none_match(),
        None,
        "the first request is not conditional"
    );
    advance(secs(11)).await;

    let (parts, body) = get(&proxy, &[]).await;
    assert_eq!(v.last_if_none_match().as_deref(), Some("\"v1\""));
    assert_eq!(
        parts.status,
        StatusCode::OK,
        "the client did not ask conditionally"
    );
    assert_eq!(body, "the representation", "the stored body, not re-sent");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=stale; fwd-status=304; stored"
    );
    assert_eq!(parts.headers[header::CONTENT_LENGTH], "18");
    // §4.3.4: the 304's freshness (max-age=30) is the entry's now.
    advance(secs(29)).await;
    let (parts, _) = get(&proxy, &[]).await;
    assert_eq!(cache_status(&parts), "layercake; hit; ttl=1; detail=moka");
    assert_eq!(v.origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_2_a_304_updates_the_stored_headers() {
    let v = validating(
        "max-age=10",
        &[("cache-control", "max-age=60"), ("x-revision", "2")],
    )
    .await;
    let proxy = v.origin.behind(&layer());
    let (first, _) = get(&proxy, &[]).await;
    assert!(!first.headers.contains_key("x-revision"));
    advance(secs(11)).await;
    get(&proxy, &[]).await;
    let (hit, body) = get(&proxy, &[]).await;
    assert!(cache_status(&hit).starts_with("layercake; hit"));
    assert_eq!(hit.headers["x-revision"], "2");
    assert_eq!(hit.headers[header::CACHE_CONTROL], "max-age=60");
    assert_eq!(
        hit.headers[header::ETAG],
        "\"v1\"",
        "kept from the stored response"
    );
    assert_eq!(body, "the representation");
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_3_1_last_modified_alone_is_sent_as_if_modified_since() {
    whole_second().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let modified = date_in(-3600);
    let origin = HttpOrigin::start(move |req, _| {
        let since = req.headers().get(header::IF_MODIFIED_SINCE).cloned();
        record.lock().unwrap().push(since.clone());
        let modified = modified.clone();
        async move {
            if since.is_some_and(|since| since == modified.as_str()) {
                return respond(304, &[("cache-control", "max-age=10")], "");
            }
            respond(
                200,
                &[
                    ("cache-control", "max-age=10"),
                    ("last-modified", &modified),
                ],
                "dated",
            )
        }
    })
    .await;
    let proxy = origin.behind(&layer());
    get(&proxy, &[]).await;
    advance(secs(11)).await;
    let (parts, body) = get(&proxy, &[]).await;
    assert_eq!(body, "dated");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=stale; fwd-status=304; stored"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].is_none());
    assert!(seen[1].is_some());
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_3_1_a_changed_representation_replaces_the_stored_one() {
    whole_second().await;
    let origin = HttpOrigin::start(|_, n| async move {
        let etag = format!("\"v{n}\"");
        respond(
            200,
            &[("cache-control", "max-age=10"), ("etag", &etag)],
            format!("version {n}"),
        )
    })
    .await;
    let proxy = origin.behind(&layer());
    get(&proxy, &[]).await;
    advance(secs(11)).await;
    let (parts, body) = get(&proxy, &[]).await;
    assert_eq!(body, "version 2");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=stale; fwd-status=200; stored"
    );
    let (_, body) = get(&proxy, &[]).await;
    assert_eq!(body, "version 2");
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_5_2_2_4_a_no_cache_response_is_stored_but_revalidated_on_every_use() {
    let v = validating("no-cache", &[]).await;
    let proxy = v.origin.behind(&layer());
    let (first, _) = get(&proxy, &[]).await;
    assert_eq!(
        cache_status(&first),
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
    for _ in 0..3 {
        let (parts, body) = get(&proxy, &[]).await;
        assert_eq!(body, "the representation");
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=stale; fwd-status=304; stored"
        );
        assert_eq!(v.last_if_none_match().as_deref(), Some("\"v1\""));
    }
    assert_eq!(v.origin.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_3_2_a_matching_if_none_match_is_answered_304_from_the_cache() {
    let v = validating("max-age=60", &[]).await;
    let proxy = v.origin.behind(&layer());
    get(&proxy, &[]).await;
    // Weak comparison: W/"v1" matches "v1"; any tag of a list may match.
    for condition in ["\"v1\"", "W/\"v1\"", "\"v0\", \"v1\"", "*"] {
        let (parts, body) = get(&proxy, &[("if-none-match", condition)]).await;
        assert_eq!(parts.status, StatusCode::NOT_MODIFIED, "{condition}");
        assert!(body.is_empty());
        assert_eq!(parts.headers[header::ETAG], "\"v1\"");
        assert!(parts.headers.contains_key(header::AGE));
        assert!(!parts.headers.contains_key(header::CONTENT_LENGTH));
        assert!(cache_status(&parts).starts_with("layercake; hit"));
    }
    let (parts, body) = get(&proxy, &[("if-none-match", "\"v0\"")]).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "the representation");
    assert_eq!(v.origin.calls(), 1, "all answered from the cache");
}

#[tokio::test(start_paused = true)]
async fn rfc9110_8_8_3_entity_tags_with_obs_text_compare_byte_for_byte() {
    // "café" and "cafe\u{301}": bytes above 0x7F, which an entity tag may hold (obs-text).
    let origin = HttpOrigin::start(|_, _| async move {
        respond(
            200,
            &[("cache-control", "max-age=60"), ("etag", "\"café\"")],
            "menu",
        )
    })
    .await;
    let proxy = origin.behind(&layer());
    get(&proxy, &[]).await;
    let (parts, _) = get(&proxy, &[("if-none-match", "\"café\"")]).await;
    assert_eq!(parts.status, StatusCode::NOT_MODIFIED);
    let (parts, body) = get(&proxy, &[("if-none-match", "\"cafe\u{301}\"")]).await;
    assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"menu"[..]));
    let (parts, _) = get(&proxy, &[("range", "bytes=0-1"), ("if-range", "\"café\"")]).await;
    assert_eq!(
        parts.status,
        StatusCode::PARTIAL_CONTENT,
        "a strong match of If-Range"
    );
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_3_2_if_modified_since_is_answered_from_the_cache() {
    whole_second().await;
    let origin = HttpOrigin::start(|_, _| async move {
        let modified = date_in(-100);
        respond(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("last-modified", &modified),
            ],
            "dated",
        )
    })
    .await;
    let proxy = origin.behind(&layer());
    get(&proxy, &[]).await;
    let later = date_in(-50);
    let (parts, _) = get(&proxy, &[("if-modified-since", &later)]).await;
    assert_eq!(parts.status, StatusCode::NOT_MODIFIED);
    let earlier = date_in(-500);
    let (parts, body) = get(&proxy, &[("if-modified-since", &earlier)]).await;
    assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"dated"[..]));
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_3_2_a_client_conditional_on_revalidation_gets_304_after_the_origins_304() {
    let v = validating("max-age=10", &[("cache-control", "max-age=10")]).await;
    let proxy = v.origin.behind(&layer());
    get(&proxy, &[]).await;
    advance(secs(11)).await;
    // The client's own validator is replaced by the cache's for the origin...
    let (parts, body) = get(&proxy, &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(v.last_if_none_match().as_deref(), Some("\"v1\""));
    // ...and the client gets its 304 from the refreshed entry.
    assert_eq!(parts.status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(v.origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_conditional_request_on_a_miss_goes_to_the_origin_as_it_is() {
    let v = validating("max-age=60", &[]).await;
    let proxy = v.origin.behind(&layer());
    let (parts, _) = get(&proxy, &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(parts.status, StatusCode::NOT_MODIFIED, "the origin's 304");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=304; detail=status"
    );
    let (parts, _) = get(&proxy, &[]).await;
    assert!(cache_status(&parts).ends_with("stored"));
    assert_eq!(v.origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn rfc9110_9_3_2_head_is_answered_from_a_stored_get_and_can_be_conditional() {
    let v = validating("max-age=60", &[]).await;
    let proxy = v.origin.behind(&layer());
    get(&proxy, &[]).await;
    let (parts, body) = fetch(&proxy, request("HEAD", "/doc")).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(parts.headers[header::CONTENT_LENGTH], "18");
    let mut head = request("HEAD", "/doc");
    head.headers_mut()
        .insert(header::IF_NONE_MATCH, "\"v1\"".parse().unwrap());
    let (parts, _) = fetch(&proxy, head).await;
    assert_eq!(parts.status, StatusCode::NOT_MODIFIED);
    assert_eq!(v.origin.calls(), 1);
}

/// An origin whose GETs carry `ETag: "v1"` and `max-age=1`, and whose HEADs answer with the
/// `ETag` the request's `x-etag` asks for, `max-age=60` and `x-revised: yes`.
async fn head_aware() -> HttpOrigin {
    HttpOrigin::start(|req, n| async move {
        if req.method() == http::Method::HEAD {
            let etag = req.headers()["x-etag"].to_str().unwrap().to_owned();
            let mut response = respond(
                200,
                &[("cache-control", "max-age=60"), ("x-revised", "yes")],
                "",
            );
            response
                .headers_mut()
                .insert(header::ETAG, etag.parse().unwrap());
            return response;
        }
        respond(
            200,
            &[("cache-control", "max-age=1"), ("etag", "\"v1\"")],
            format!("body {n}"),
        )
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_3_5_a_matching_head_response_updates_the_stored_get() {
    let origin = head_aware().await;
    let proxy = origin.behind(&layer());
    get(&proxy, &[]).await;
    advance(secs(2)).await;
    let mut head = get_with("/doc", &[("x-etag", "\"v1\"")]);
    *head.method_mut() = http::Method::HEAD;
    let (parts, _) = fetch(&proxy, head).await;
    assert_eq!(parts.status, StatusCode::OK);
    // The stored GET took the HEAD's headers and freshness, and kept its body.
    let (parts, body) = get(&proxy, &[]).await;
    assert_eq!(body, "body 1");
    assert_eq!(parts.headers["x-revised"], "yes");
    // Fresh for the HEAD's 60 s (less the part of a second the exchange took), not the GET's 1.
    let status = cache_status(&parts);
    assert!(
        [
            "layercake; hit; ttl=59; detail=moka",
            "layercake; hit; ttl=60; detail=moka"
        ]
        .contains(&status),
        "{status}"
    );
    assert_eq!(origin.calls(), 2, "the GET and the HEAD");
}

#[tokio::test(start_paused = true)]
async fn rfc9111_4_3_5_a_head_response_for_another_representation_removes_the_stored_get() {
    let origin = head_aware().await;
    let proxy = origin.behind(&layer());
    get(&proxy, &[]).await;
    advance(secs(2)).await;
    let mut head = get_with("/doc", &[("x-etag", "\"v2\"")]);
    *head.method_mut() = http::Method::HEAD;
    fetch(&proxy, head).await;
    let (parts, body) = get(&proxy, &[]).await;
    assert_eq!(body, "body 3", "fetched again, not revalidated");
    assert!(
        cache_status(&parts).ends_with("stored"),
        "{}",
        cache_status(&parts)
    );
    assert_eq!(origin.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_soft_purge_makes_the_next_request_revalidate_and_keeps_the_entry_for_errors() {
    let v = validating("max-age=60", &[("cache-control", "max-age=60")]).await;
    let layer = CacheLayer::builder(Moka::default())
        .authority_in_key(false)
        .stale_if_error(secs(600))
        .build()
        .unwrap();
    let proxy = v.origin.behind(&layer);
    get(&proxy, &[]).await;
    let done = layer.soft_invalidate_url("/doc").await.unwrap();
    assert_eq!(done.entries, Some(1));
    // Revalidated: the origin is asked whether it changed, and its 304 keeps the body.
    let (parts, body) = get(&proxy, &[]).await;
    assert_eq!(body, "the representation");
    assert_eq!(v.last_if_none_match().as_deref(), Some("\"v1\""));
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=stale; fwd-status=304; stored"
    );
    assert_eq!(v.origin.calls(), 2);
    assert_eq!(layer.stats().invalidations, 1);
}
