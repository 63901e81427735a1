//! Nothing an origin or a client sends may panic the task serving a request: status codes up
//! to 999, delta-seconds far past what a `Duration` can add, dates at the ends of the calendar,
//! and arbitrary values in every header the layer reads, on both sides.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use layercake::{CacheLayer, Moka, StalePolicy, layer::CacheMode};
use layercake_tests::{Origin, cache_status, fetch, full, get};
use proptest::prelude::*;
use tower::Layer;

/// The request headers the layer reads.
const REQUEST_HEADERS: &[&str] = &[
    "cache-control",
    "pragma",
    "authorization",
    "cookie",
    "if-none-match",
    "if-modified-since",
    "range",
    "if-range",
    "host",
    "accept",
    "accept-language",
];

/// The response headers the layer reads.
const RESPONSE_HEADERS: &[&str] = &[
    "cache-control",
    "expires",
    "date",
    "age",
    "last-modified",
    "etag",
    "vary",
    "set-cookie",
    "connection",
    "location",
    "content-location",
    "cache-status",
];

/// A header value: printable text with the characters the parsers split on, numbers far past
/// `u64`, dates, or raw bytes (obs-text).
fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        "[ -~]{0,40}".prop_map(|s| HeaderValue::from_str(&s).unwrap()),
        (
            prop::sample::select(
                &[
                    "max-age",
                    "s-maxage",
                    "stale-while-revalidate",
                    "stale-if-error",
                    "max-stale",
                    "min-fresh",
                    "no-cache",
                    "must-revalidate",
                    "public",
                    "private",
                    "no-store",
                ][..]
            ),
            prop::sample::select(
                &[
                    "0",
                    "1",
                    "2147483648",
                    "18446744073709551615",
                    "99999999999999999999",
                    "\"99999999999999999999\"",
                    "-5",
                    "",
                ][..]
            ),
        )
            .prop_map(|(name, n)| HeaderValue::from_str(&format!("{name}={n}")).unwrap()),
        prop::sample::select(
            &[
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "Mon, 01 Jan 0001 00:00:00 GMT",
                "0",
                "99999999999999999999",
                "bytes=0-99999999999999999999",
                "bytes=-99999999999999999999",
                "bytes=99999999999999999998-99999999999999999999",
                "W/\"x\", \"y\", *",
                "*",
            ][..]
        )
        .prop_map(HeaderValue::from_static),
        prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..24)
            .prop_map(|bytes| HeaderValue::from_bytes(&bytes).unwrap()),
    ]
}

fn headers(
    names: &'static [&'static str],
) -> impl Strategy<Value = Vec<(HeaderName, HeaderValue)>> {
    prop::collection::vec(
        (
            prop::sample::select(names).prop_map(HeaderName::from_static),
            header_value(),
        ),
        0..6,
    )
}

/// Sends `request` through `svc` and checks the answer is well formed: a `Cache-Status`, and a
/// body as long as its `Content-Length` says (when the response has a body).
async fn well_formed<S, B>(svc: &S, request: Request<Full<Bytes>>)
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let head = request.method() == http::Method::HEAD;
    let (parts, body) = fetch(svc, request).await;
    let status = parts.headers.get("cache-status").map(HeaderValue::as_bytes);
    assert!(
        status.is_some_and(|s| s.windows(9).any(|w| w == b"layercake")),
        "every response says what the cache did: {status:?}"
    );
    let length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if let Some(length) = length.filter(|_| !head && parts.status != StatusCode::NOT_MODIFIED) {
        assert_eq!(body.len(), length, "Content-Length matches the body");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn nothing_an_origin_or_a_client_sends_panics_the_layer(
        status in 100u16..1000,
        response_headers in headers(RESPONSE_HEADERS),
        first in headers(REQUEST_HEADERS),
        second in headers(REQUEST_HEADERS),
        private in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async move {
            let status = StatusCode::from_u16(status).unwrap();
            let origin = Origin::new(move |_, _| {
                let response_headers = response_headers.clone();
                async move {
                    let mut response = http::Response::new(full("hostile origin"));
                    *response.status_mut() = status;
                    for (name, value) in response_headers {
                        response.headers_mut().append(name, value);
                    }
                    Ok(response)
                }
            });
            let mode = if private { CacheMode::Private } else { CacheMode::Shared };
            let layer = CacheLayer::builder(Moka::default())
                .ttl(Duration::from_secs(u64::from(u32::MAX)))
                .stale(Duration::MAX)
                .stale_if_error(Duration::MAX)
                .stale_policy(StalePolicy::OffloadRevalidate)
                .refresh_before(Duration::from_secs(1))
                .negative_ttl(Duration::MAX)
                .lock_timeout(Duration::MAX)
                .upstream_timeout(Duration::MAX)
                .statuses((100..1000).map(|code| StatusCode::from_u16(code).unwrap()))
                .mode(mode)
                .build()
                .unwrap();
            let svc = layer.layer(origin);
            let with = |pairs: &[(HeaderName, HeaderValue)]| {
                let mut request = get("http://example.com/page");
                for (name, value) in pairs {
                    request.headers_mut().append(name.clone(), value.clone());
                }
                request
            };
            well_formed(&svc, with(&first)).await;
            well_formed(&svc, with(&second)).await;
            tokio::time::advance(Duration::from_secs(3600)).await;
            well_formed(&svc, with(&second)).await;
            let mut head = with(&first);
            *head.method_mut() = http::Method::HEAD;
            well_formed(&svc, head).await;
        });
    }
}

#[tokio::test]
async fn status_codes_past_599_are_passed_on_and_can_be_configured() {
    let origin = Origin::new(|_, _| async {
        Ok(layercake_tests::text(
            StatusCode::from_u16(999).unwrap(),
            "odd",
        ))
    });
    let default = CacheLayer::builder(Moka::default())
        .build()
        .unwrap()
        .layer(origin.clone());
    let (parts, body) = fetch(&default, get("/odd")).await;
    assert_eq!(parts.status.as_u16(), 999);
    assert_eq!(body, "odd");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=999; detail=status"
    );

    // Statuses from 400 up are stored only with a negative ttl.
    let configured = CacheLayer::builder(Moka::default())
        .statuses([StatusCode::from_u16(999).unwrap()])
        .negative_ttl(Duration::from_secs(5))
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&configured, get("/odd")).await;
    let (parts, body) = fetch(&configured, get("/odd")).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (999, &b"odd"[..]));
    assert!(
        cache_status(&parts).starts_with("layercake; hit"),
        "{}",
        cache_status(&parts)
    );
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn delta_seconds_past_any_duration_saturate_instead_of_overflowing() {
    // The calls the origin sees: the stale-while-revalidate case is revalidated in the
    // background when it is served stale.
    for (cache_control, calls) in [
        ("max-age=1, stale-while-revalidate=99999999999999999999", 2),
        ("max-age=99999999999999999999", 1),
        (
            "s-maxage=99999999999999999999, stale-if-error=99999999999999999999",
            1,
        ),
    ] {
        let origin = Origin::new(move |_, _| async move {
            let mut response = layercake_tests::text(StatusCode::OK, "huge");
            response
                .headers_mut()
                .insert("cache-control", HeaderValue::from_static(cache_control));
            Ok(response)
        });
        let svc = CacheLayer::builder(Moka::default())
            .stale(Duration::from_secs(300))
            .build()
            .unwrap()
            .layer(origin.clone());
        let (first, _) = fetch(&svc, get("/huge")).await;
        assert_eq!(
            cache_status(&first),
            "layercake; fwd=uri-miss; fwd-status=200; stored",
            "{cache_control}"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        let (second, body) = fetch(&svc, get("/huge")).await;
        assert_eq!(&body[..], b"huge");
        assert!(
            cache_status(&second).starts_with("layercake; hit; ttl="),
            "{cache_control}: {}",
            cache_status(&second)
        );
        assert_eq!(origin.calls(), calls, "{cache_control}");
    }
}
