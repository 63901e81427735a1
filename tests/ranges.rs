//! RFC 9110 §14: `Range` requests answered from a fully stored response (`206`, `416`,
//! `If-Range`), and large responses streamed to the client while they are stored. A real
//! hyper origin behind the example reverse proxy.

use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::{BodyExt, channel::Channel};
use layercake::{CacheLayer, Moka};
use layercake_tests::{
    cache_status, fetch,
    http_origin::{HttpOrigin, Proxy, get_with, respond},
};
use tower::ServiceExt;

const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz";

fn layer() -> CacheLayer<Moka> {
    CacheLayer::builder(Moka::default()).build().unwrap()
}

/// An origin serving the alphabet with a strong `ETag`, the cache in front, and the entry
/// stored by a first plain GET.
async fn stored_alphabet() -> (HttpOrigin, Proxy) {
    let origin = HttpOrigin::start(|_, _| async move {
        respond(
            200,
            &[("cache-control", "max-age=60"), ("etag", "\"abc\"")],
            ALPHABET,
        )
    })
    .await;
    let proxy = origin.behind(&layer());
    fetch(&proxy, get_with("/letters", &[])).await;
    (origin, proxy)
}

#[tokio::test(start_paused = true)]
async fn rfc9110_14_2_a_single_range_of_a_stored_response_is_a_206_from_the_cache() {
    let (origin, proxy) = stored_alphabet().await;
    for (range, part, content_range) in [
        ("bytes=0-4", "abcde", "bytes 0-4/26"),
        ("bytes=20-", "uvwxyz", "bytes 20-25/26"),
        ("bytes=-3", "xyz", "bytes 23-25/26"),
        ("bytes=24-100", "yz", "bytes 24-25/26"),
    ] {
        let (parts, body) = fetch(&proxy, get_with("/letters", &[("range", range)])).await;
        assert_eq!(parts.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(body, part, "{range}");
        assert_eq!(parts.headers[header::CONTENT_RANGE], content_range);
        assert_eq!(
            parts.headers[header::CONTENT_LENGTH],
            part.len().to_string()
        );
        assert!(cache_status(&parts).starts_with("layercake; hit"));
    }
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn rfc9110_15_5_17_an_unsatisfiable_range_is_a_416() {
    let (origin, proxy) = stored_alphabet().await;
    for range in ["bytes=26-", "bytes=100-200", "bytes=-0"] {
        let (parts, body) = fetch(&proxy, get_with("/letters", &[("range", range)])).await;
        assert_eq!(parts.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert!(body.is_empty());
        assert_eq!(parts.headers[header::CONTENT_RANGE], "bytes */26");
    }
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn rfc9110_14_2_ranges_the_cache_does_not_serve_get_the_whole_200() {
    let (origin, proxy) = stored_alphabet().await;
    // Several ranges, another unit, invalid syntax: ignoring Range is allowed.
    for range in ["bytes=0-1,5-6", "lines=1-2", "bytes=5-2", "bytes=a-b"] {
        let (parts, body) = fetch(&proxy, get_with("/letters", &[("range", range)])).await;
        assert_eq!(parts.status, StatusCode::OK, "{range}");
        assert_eq!(body, ALPHABET);
    }
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn rfc9110_13_1_5_if_range_must_match_strongly_or_the_whole_body_is_sent() {
    let (origin, proxy) = stored_alphabet().await;
    let ranged = |if_range| {
        get_with(
            "/letters",
            &[("range", "bytes=0-2"), ("if-range", if_range)],
        )
    };
    let (parts, body) = fetch(&proxy, ranged("\"abc\"")).await;
    assert_eq!(
        (parts.status, &body[..]),
        (StatusCode::PARTIAL_CONTENT, &b"abc"[..])
    );
    for stale in ["\"old\"", "W/\"abc\""] {
        let (parts, body) = fetch(&proxy, ranged(stale)).await;
        assert_eq!(parts.status, StatusCode::OK, "{stale}");
        assert_eq!(body, ALPHABET);
    }
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_206_without_a_strong_validator_is_passed_on_and_not_stored() {
    let origin = HttpOrigin::start(|req, _| async move {
        match req.headers().get(header::RANGE) {
            Some(_) => respond(
                206,
                &[
                    ("content-range", "bytes 0-1/26"),
                    ("cache-control", "max-age=60"),
                ],
                "ab",
            ),
            None => respond(200, &[("cache-control", "max-age=60")], ALPHABET),
        }
    })
    .await;
    let proxy = origin.behind(&layer());
    let (parts, body) = fetch(&proxy, get_with("/letters", &[("range", "bytes=0-1")])).await;
    assert_eq!(
        (parts.status, &body[..]),
        (StatusCode::PARTIAL_CONTENT, &b"ab"[..])
    );
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=206; detail=partial"
    );
    let (_, body) = fetch(&proxy, get_with("/letters", &[])).await;
    assert_eq!(
        body, ALPHABET,
        "the partial response was not stored as the whole"
    );
    let (parts, body) = fetch(&proxy, get_with("/letters", &[("range", "bytes=0-1")])).await;
    assert_eq!(
        (parts.status, &body[..]),
        (StatusCode::PARTIAL_CONTENT, &b"ab"[..])
    );
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(origin.calls(), 2);
}

#[tokio::test]
async fn a_large_response_reaches_the_client_as_it_arrives_and_is_stored_at_its_end() {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let receiver = std::sync::Mutex::new(Some(receiver));
    let origin = HttpOrigin::start(move |_, _| {
        let mut chunks: tokio::sync::mpsc::Receiver<Bytes> =
            receiver.lock().unwrap().take().expect("called once");
        async move {
            let (mut tx, body) = Channel::<Bytes, std::convert::Infallible>::new(1);
            tokio::spawn(async move {
                while let Some(chunk) = chunks.recv().await {
                    if tx.send_data(chunk).await.is_err() {
                        return;
                    }
                }
            });
            let mut response = http::Response::new(body.boxed());
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, "max-age=60".parse().unwrap());
            response
        }
    })
    .await;
    let layer = layer();
    let proxy = origin.behind(&layer);
    let response = proxy
        .clone()
        .oneshot(get_with("/big", &[]))
        .await
        .expect("a response");
    // Its length is not known yet: whether it will fit is decided at its end.
    assert_eq!(
        cache_status_of(&response),
        "layercake; fwd=uri-miss; fwd-status=200"
    );
    let mut body = response.into_body();
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    // Each chunk reaches the client before the origin sends the next: nothing is buffered
    // whole.
    for _ in 0..4 {
        sender.send(chunk.clone()).await.unwrap();
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the chunk arrives while the origin holds the rest")
            .expect("a frame")
            .expect("data");
        let mut received = frame.into_data().unwrap().len();
        while received < chunk.len() {
            let more = body.frame().await.unwrap().unwrap().into_data().unwrap();
            received += more.len();
        }
        assert_eq!(received, chunk.len());
    }
    drop(sender);
    while let Some(frame) = body.frame().await {
        frame.unwrap();
    }
    layercake_tests::eventually("the streamed response is stored", || {
        layer.stats().stores == 1
    })
    .await;
    let (parts, body) = fetch(&proxy, get_with("/big", &[])).await;
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(body.len(), 4 * 64 * 1024);
    let (parts, body) = fetch(&proxy, get_with("/big", &[("range", "bytes=-10")])).await;
    assert_eq!(parts.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, vec![b'x'; 10]);
    assert_eq!(origin.calls(), 1);
}

fn cache_status_of<B>(response: &http::Response<B>) -> String {
    response.headers()["cache-status"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// An origin that answers a single `bytes=a-b` range of the alphabet with a `206` (and
/// anything else with the whole `200`), `ETag: "abc"`, `max-age=60`.
async fn ranged_alphabet() -> HttpOrigin {
    HttpOrigin::start(|req, _| async move {
        let headers = [("cache-control", "max-age=60"), ("etag", "\"abc\"")];
        let range = req
            .headers()
            .get(header::RANGE)
            .and_then(|r| r.to_str().ok()?.strip_prefix("bytes=")?.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
        match range {
            Some((first, last)) => {
                let content_range = format!("bytes {first}-{last}/26");
                let mut response = respond(206, &headers, &ALPHABET[first..=last]);
                response
                    .headers_mut()
                    .insert(header::CONTENT_RANGE, content_range.parse().unwrap());
                response
            }
            None => respond(200, &headers, ALPHABET),
        }
    })
    .await
}

async fn letters(proxy: &Proxy, range: Option<&str>) -> (StatusCode, String, String) {
    let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
    let (parts, body) = fetch(proxy, get_with("/letters", &headers)).await;
    let status = cache_status(&parts).to_owned();
    (
        parts.status,
        String::from_utf8(body.to_vec()).unwrap(),
        status,
    )
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_3_a_stored_part_answers_the_ranges_it_holds_and_only_those() {
    let origin = ranged_alphabet().await;
    let proxy = origin.behind(&layer());
    let (status, body, cache) = letters(&proxy, Some("bytes=0-9")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::PARTIAL_CONTENT, "abcdefghij")
    );
    assert!(cache.ends_with("stored"), "{cache}");
    let (parts, body) = fetch(&proxy, get_with("/letters", &[("range", "bytes=2-4")])).await;
    assert_eq!(
        (parts.status, &body[..]),
        (StatusCode::PARTIAL_CONTENT, &b"cde"[..])
    );
    assert_eq!(parts.headers[header::CONTENT_RANGE], "bytes 2-4/26");
    assert_eq!(parts.headers[header::CONTENT_LENGTH], "3");
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(origin.calls(), 1);
    // A range outside the part, or the whole, goes to the origin.
    let (status, body, cache) = letters(&proxy, Some("bytes=20-25")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::PARTIAL_CONTENT, "uvwxyz")
    );
    assert!(cache.starts_with("layercake; fwd=miss"), "{cache}");
    let (status, body, _) = letters(&proxy, None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ALPHABET));
    assert_eq!(origin.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn rfc9111_3_4_parts_of_one_representation_combine_into_the_whole() {
    let origin = ranged_alphabet().await;
    let proxy = origin.behind(&layer());
    letters(&proxy, Some("bytes=0-12")).await;
    letters(&proxy, Some("bytes=10-25")).await;
    // Overlapping parts with the same strong validator are now the whole response.
    let (status, body, cache) = letters(&proxy, None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ALPHABET));
    assert!(cache.starts_with("layercake; hit"), "{cache}");
    let (status, body, cache) = letters(&proxy, Some("bytes=-2")).await;
    assert_eq!((status, body.as_str()), (StatusCode::PARTIAL_CONTENT, "yz"));
    assert!(cache.starts_with("layercake; hit"), "{cache}");
    assert_eq!(origin.calls(), 2);
}
