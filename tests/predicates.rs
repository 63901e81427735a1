//! Predicates and key extractors: through the tower service, and the example's routes through
//! a real axum server.

use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use layercake::{
    CacheLayer, Moka,
    layer::{ClientDirectives, Headers, Path, key::*},
    predicate::{
        Always, RequestPredicate, ResponsePredicate, request,
        response::{self, StatusClass},
    },
};
use layercake_tests::{Origin, TestBody, cache_status, fetch, full, get, request as make, text};
use tower::{Layer, ServiceExt};

fn json(status: StatusCode, body: &'static str) -> Response<TestBody> {
    let mut response = text(status, body);
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn post(uri: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn with_header(uri: &str, name: &str, value: &str) -> Request<Full<Bytes>> {
    let mut request = get(uri);
    request.headers_mut().insert(
        http::HeaderName::try_from(name).unwrap(),
        value.parse().unwrap(),
    );
    request
}

#[tokio::test]
async fn a_request_the_predicate_refuses_goes_through_untouched() {
    let origin = Origin::ok("fine");
    let layer = CacheLayer::builder(Moka::default())
        .cache_if(request::path("/health").not())
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    for _ in 0..2 {
        let (parts, _) = fetch(&svc, get("/health")).await;
        assert_eq!(
            cache_status(&parts),
            "layercake; fwd=bypass; fwd-status=200; detail=predicate"
        );
    }
    assert_eq!(origin.calls(), 2);
    fetch(&svc, get("/page")).await;
    let (parts, _) = fetch(&svc, get("/page")).await;
    assert!(
        cache_status(&parts).contains("hit"),
        "{}",
        cache_status(&parts)
    );
    assert_eq!(origin.calls(), 3);
    assert_eq!(layer.stats().passes, 2);
}

#[tokio::test]
async fn query_parameters_left_out_of_the_key_share_an_entry() {
    let origin = Origin::new(|request, n| async move {
        Ok(text(StatusCode::OK, format!("{} #{n}", request.uri())))
    });
    let layer = CacheLayer::builder(Moka::default())
        .key((Path, Query::only(["page"])))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    let (_, first) = fetch(&svc, get("/products?page=2&utm_source=mail")).await;
    let (_, second) = fetch(&svc, get("/products?utm_medium=ad&page=2")).await;
    assert_eq!(first, second);
    assert_eq!(origin.calls(), 1);
    fetch(&svc, get("/products?page=3")).await;
    fetch(&svc, get("/other?page=2")).await;
    assert_eq!(origin.calls(), 3, "another page, another path");
}

#[tokio::test]
async fn only_responses_the_predicate_accepts_are_stored() {
    let origin = Origin::new(|request, _| async move {
        Ok(match request.uri().path() {
            "/json" => json(StatusCode::OK, "{}"),
            "/missing" => json(StatusCode::NOT_FOUND, r#"{"error":"no"}"#),
            _ => text(StatusCode::OK, "plain"),
        })
    });
    let layer = CacheLayer::builder(Moka::default())
        .negative_ttl(Duration::from_secs(5))
        .store_if(
            response::status_class(StatusClass::Success)
                .and(response::content_type("application/json")),
        )
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    for path in ["/json", "/text", "/missing"] {
        for _ in 0..2 {
            let (parts, _) = fetch(&svc, get(path)).await;
            if path != "/json" {
                assert!(
                    cache_status(&parts).ends_with("detail=predicate"),
                    "{path}: {}",
                    cache_status(&parts)
                );
            }
        }
    }
    assert_eq!(origin.calls(), 5, "the JSON once, the others twice");
    assert_eq!(layer.stats().stores, 1);
}

#[tokio::test]
async fn a_body_predicate_decides_once_the_response_is_read() {
    let origin = Origin::new(|request, _| async move {
        Ok(match request.uri().path() {
            "/ok" => json(StatusCode::OK, r#"{"data":1}"#),
            _ => json(StatusCode::OK, r#"{"errors":[{"message":"down"}]}"#),
        })
    });
    let layer = CacheLayer::builder(Moka::default())
        .store_if(response::json("/errors").not())
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    for _ in 0..2 {
        let (_, body) = fetch(&svc, get("/ok")).await;
        assert_eq!(body, r#"{"data":1}"#);
        let (_, body) = fetch(&svc, get("/err")).await;
        assert!(body.starts_with(b"{\"errors\""), "passed on whole");
    }
    assert_eq!(origin.calls(), 3, "/ok once, /err twice");
}

#[tokio::test]
async fn media_and_archives_are_not_stored_unless_allowed() {
    let video = || {
        Origin::new(|_, _| async {
            let mut response = text(StatusCode::OK, "frames");
            response
                .headers_mut()
                .insert("content-type", "video/mp4".parse().unwrap());
            Ok(response)
        })
    };
    let origin = video();
    let svc = CacheLayer::builder(Moka::default())
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&svc, get("/clip")).await;
    let (parts, _) = fetch(&svc, get("/clip")).await;
    assert!(cache_status(&parts).ends_with("detail=predicate"));
    assert_eq!(origin.calls(), 2);

    let origin = video();
    let svc = CacheLayer::builder(Moka::default())
        .store_if(Always)
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&svc, get("/clip")).await;
    fetch(&svc, get("/clip")).await;
    assert_eq!(origin.calls(), 1);
}

/// An origin that answers with the request body it received and its call number.
fn echo() -> Origin {
    Origin::new(|request, n| async move {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let mut response = text(
            StatusCode::OK,
            [&body[..], format!(" #{n}").as_bytes()].concat(),
        );
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        Ok(response)
    })
}

#[tokio::test]
async fn post_is_cached_by_its_body_when_selected_and_the_body_is_handed_on() {
    let origin = echo();
    let mutation = regex::Regex::new(r"^\s*mutation\b").unwrap();
    let layer = CacheLayer::builder(Moka::default())
        .methods([Method::GET, Method::HEAD, Method::POST])
        .cache_if(
            request::method(Method::POST)
                .not()
                .or(request::json("/query").matches(mutation).not()),
        )
        .key((Path, JsonPointers::new(["/query", "/variables"])))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());

    let query = r#"{"query":"{ me }","variables":{"a":1,"b":2}}"#;
    let (parts, body) = fetch(&svc, post("/graphql", query)).await;
    assert!(
        cache_status(&parts).ends_with("stored"),
        "{}",
        cache_status(&parts)
    );
    assert_eq!(
        body,
        format!("{query} #1"),
        "the origin got the body unchanged"
    );
    let same = r#"{ "variables": {"b":2, "a":1}, "query": "{ me }" }"#;
    let (parts, body) = fetch(&svc, post("/graphql", same)).await;
    assert!(
        cache_status(&parts).contains("hit"),
        "{}",
        cache_status(&parts)
    );
    assert_eq!(body, format!("{query} #1"));
    assert_eq!(origin.calls(), 1);

    let other = r#"{"query":"{ me }","variables":{"a":2}}"#;
    let (_, body) = fetch(&svc, post("/graphql", other)).await;
    assert_eq!(
        body,
        format!("{other} #2"),
        "other variables, another entry"
    );

    let change = r#"{"query":"mutation { rename }"}"#;
    for n in [3, 4] {
        let (parts, body) = fetch(&svc, post("/graphql", change)).await;
        assert_eq!(
            body,
            format!("{change} #{n}"),
            "a mutation always goes through"
        );
        assert!(cache_status(&parts).contains("detail=predicate"));
    }
    // A GET has an empty body: keyed as such, and cached like any GET.
    fetch(&svc, get("/graphql")).await;
    fetch(&svc, get("/graphql")).await;
    assert_eq!(origin.calls(), 5);
}

#[tokio::test]
async fn a_body_over_the_limit_is_handed_on_whole_and_not_cached() {
    let origin = echo();
    let svc = CacheLayer::builder(Moka::default())
        .methods([Method::GET, Method::POST])
        .max_request_body_size(8)
        .key((Path, WholeBody))
        .build()
        .unwrap()
        .layer(origin.clone());
    let long = "0123456789abcdef";
    for n in [1, 2] {
        let (parts, body) = fetch(&svc, post("/search", long)).await;
        assert_eq!(body, format!("{long} #{n}"));
        assert!(cache_status(&parts).contains("detail=key"));
    }
    let short = "short";
    fetch(&svc, post("/search", short)).await;
    let (_, body) = fetch(&svc, post("/search", short)).await;
    assert_eq!(body, "short #3");
}

#[tokio::test]
async fn the_head_decides_without_waiting_for_a_body_when_it_can() {
    // A body that never ends: reading it would hang the request.
    struct Endless;
    impl http_body::Body for Endless {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            std::task::Poll::Pending
        }
    }
    let endless = || BodyExt::boxed(Endless);
    let inner = tower::service_fn(|_: Request<BoxBody<Bytes, Infallible>>| async {
        Ok::<_, Infallible>(Response::new(full("answer")))
    });
    let svc = CacheLayer::builder(Moka::default())
        .methods([Method::GET, Method::POST])
        .cache_if(request::method(Method::GET).or(request::body_size(..10)))
        .build()
        .unwrap()
        .layer(inner);
    let request = Request::get("/").body(endless()).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), svc.clone().oneshot(request))
        .await
        .expect("a GET is decided by its head")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request = Request::post("/").body(endless()).unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(200), svc.oneshot(request)).await;
    assert!(waited.is_err(), "a POST needs its body read first");
}

#[tokio::test]
async fn client_directives_are_obeyed_unless_ignored() {
    for (directives, calls) in [(ClientDirectives::Obey, 2), (ClientDirectives::Ignore, 1)] {
        let origin = Origin::ok("page");
        let svc = CacheLayer::builder(Moka::default())
            .client_directives(directives)
            .build()
            .unwrap()
            .layer(origin.clone());
        fetch(&svc, get("/")).await;
        let (parts, _) = fetch(&svc, with_header("/", "cache-control", "no-cache")).await;
        fetch(&svc, with_header("/", "pragma", "no-cache")).await;
        assert_eq!(
            origin.calls(),
            calls + usize::from(directives == ClientDirectives::Obey),
            "{directives:?}: {}",
            cache_status(&parts)
        );
    }
}

#[tokio::test]
async fn header_and_prefix_extractors_split_entries_by_their_values() {
    let origin = Origin::ok("page");
    let svc = CacheLayer::builder(Moka::default())
        .key((
            Path,
            Headers::new([http::header::ACCEPT_LANGUAGE]),
            HeaderPrefix::new("x-flag-"),
        ))
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&svc, with_header("/", "accept-language", "en")).await;
    fetch(&svc, with_header("/", "accept-language", "en")).await;
    fetch(&svc, with_header("/", "accept-language", "de")).await;
    fetch(&svc, with_header("/", "x-flag-beta", "1")).await;
    fetch(&svc, with_header("/", "x-flag-beta", "1")).await;
    fetch(&svc, with_header("/", "x-flag-beta", "2")).await;
    assert_eq!(origin.calls(), 4);
}

#[tokio::test]
async fn path_parameters_key_and_other_shapes_pass() {
    let origin = Origin::ok("user");
    let svc = CacheLayer::builder(Moka::default())
        .key(Lowercase(PathParams::new("/users/{id}")))
        .build()
        .unwrap()
        .layer(origin.clone());
    fetch(&svc, get("/users/ADA")).await;
    let (parts, _) = fetch(&svc, get("/users/ada")).await;
    assert!(cache_status(&parts).contains("hit"));
    let (parts, _) = fetch(&svc, get("/teams/1")).await;
    assert!(cache_status(&parts).contains("detail=key"));
    assert_eq!(origin.calls(), 2);
}

#[tokio::test]
async fn an_unsafe_request_the_predicate_refuses_still_invalidates() {
    let origin = Origin::ok("item");
    let layer = CacheLayer::builder(Moka::default())
        .methods([Method::GET, Method::POST])
        .cache_if(request::method(Method::GET))
        .build()
        .unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("http://example.com/items/1")).await;
    fetch(&svc, make("POST", "http://example.com/items/1")).await;
    layercake_tests::eventually("the POST invalidated the item", || {
        layer.stats().invalidations > 0
    })
    .await;
    fetch(&svc, get("http://example.com/items/1")).await;
    assert_eq!(origin.calls(), 3);
}

mod keys {
    //! No two different inputs share a key: a chain of extractors, probed with random input.

    use layercake::{Key, predicate::CacheRequest};
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    struct Input {
        path: String,
        pairs: Vec<(String, String)>,
        language: Vec<String>,
        flags: Vec<(String, String)>,
    }

    impl Input {
        /// What the extractors are meant to see: pairs ordered by name (stably), flags by name.
        fn normalised(&self) -> impl PartialEq + std::fmt::Debug {
            let mut pairs = self.pairs.clone();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            let mut flags: Vec<(String, String)> = Vec::new();
            for flag in &self.flags {
                if !flags.iter().any(|f| f.0 == flag.0) {
                    flags.push(flag.clone());
                }
            }
            flags.sort();
            (self.path.clone(), pairs, self.language.clone(), flags)
        }

        fn key(&self) -> Key {
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.pairs)
                .finish();
            let mut builder = Request::get(format!("{}?{query}", self.path));
            for language in &self.language {
                builder = builder.header("accept-language", language);
            }
            let mut seen = std::collections::HashSet::new();
            for (name, value) in &self.flags {
                // One value per flag header, the first given.
                if seen.insert(name.clone()) {
                    builder = builder.header(format!("x-flag-{name}"), value);
                }
            }
            let (head, ()) = builder.body(()).unwrap().into_parts();
            let extractor = (
                Path,
                Query::all(),
                Headers::new([http::header::ACCEPT_LANGUAGE]),
                HeaderPrefix::new("x-flag-"),
            );
            let mut key = Key::builder();
            assert!(layercake::layer::KeyExtractor::extract(
                &extractor,
                &CacheRequest::new(&head, None),
                &mut key
            ));
            key.build()
        }
    }

    fn input() -> impl Strategy<Value = Input> {
        let text = "[ab=&+%/ ]{0,3}";
        (
            "(/[ab]{0,2}){1,3}",
            proptest::collection::vec((text, text), 0..4),
            proptest::collection::vec("[ab:]{0,2}", 0..3),
            proptest::collection::vec(("[ab]{1,2}", "[ab]{0,2}"), 0..3),
        )
            .prop_map(|(path, pairs, language, flags)| Input {
                path,
                pairs,
                language,
                flags,
            })
    }

    /// The same input with its query pairs in another order (a stable sort keeps same-named
    /// pairs in theirs).
    fn reordered(mut input: Input, descending: bool) -> Input {
        if descending {
            input.pairs.sort_by(|a, b| b.0.cmp(&a.0));
        } else {
            input.pairs.sort_by(|a, b| a.0.cmp(&b.0));
        }
        input
    }

    proptest! {
        #[test]
        fn keys_are_equal_exactly_when_normalised_inputs_are(
            a in input(),
            b in input(),
            descending in any::<bool>(),
        ) {
            prop_assert_eq!(a.key() == b.key(), a.normalised() == b.normalised(), "{:?} {:?}", a, b);
            let again = reordered(a.clone(), descending);
            prop_assert_eq!(a.key(), again.key());
        }
    }
}

/// `examples/predicates.rs`, its routes exactly as its documentation gives them, over HTTP.
mod example {
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    use super::*;

    type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

    async fn call(
        client: &HttpClient,
        base: &str,
        method: &str,
        path: &str,
        body: &'static str,
    ) -> (StatusCode, String, String) {
        let request = Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let (parts, body) = client.request(request).await.unwrap().into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let status = cache_status(&parts).to_owned();
        (
            parts.status,
            String::from_utf8(body.to_vec()).unwrap(),
            status,
        )
    }

    #[tokio::test]
    async fn the_routes_do_what_the_example_says() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = layercake_tests::predicates_example::app();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let get = |path| call(&client, &base, "GET", path, "");
        let post = |body| call(&client, &base, "POST", "/graphql", body);

        assert_eq!(
            get("/calls").await.1,
            r#"{"health":0,"products":0,"graphql":0,"report":0,"missing":0}"#
        );
        for _ in 0..2 {
            let (_, body, status) = get("/health").await;
            assert_eq!(body, "ok");
            assert!(status.contains("detail=predicate"), "{status}");
        }
        let (_, first, _) = get("/products?page=2&utm_source=mail").await;
        let (_, again, status) = get("/products?utm_medium=ad&page=2").await;
        assert_eq!(first, again);
        assert!(first.contains(r#""page":2"#), "{first}");
        assert!(status.contains("hit"), "{status}");

        let (_, first, _) = post(r#"{"query":"{ products { id } }"}"#).await;
        let (_, again, status) = post(r#"{ "query": "{ products { id } }" }"#).await;
        assert_eq!(first, again);
        assert!(status.contains("hit"), "{status}");
        for run in [2, 3] {
            let (_, body, status) = post(r#"{"query":"mutation { buy(id: 1) }"}"#).await;
            assert!(body.contains(&format!(r#""run":{run}"#)), "{body}");
            assert!(status.contains("detail=predicate"), "{status}");
        }
        for _ in 0..2 {
            let (code, body, _) = get("/report").await;
            assert_eq!((code, body.as_str()), (StatusCode::OK, "quarterly report"));
            let (code, _, status) = get("/missing").await;
            assert_eq!(code, StatusCode::NOT_FOUND);
            assert!(status.contains("detail=predicate"), "{status}");
        }
        let expected = r#"{"health":2,"products":1,"graphql":3,"report":2,"missing":2}"#;
        assert_eq!(get("/calls").await.1, expected);
    }
}
