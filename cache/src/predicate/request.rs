//! Built-in request predicates: method, path (by pattern or prefix), header, query parameter,
//! body (size, a JSON pointer, a regex).
//!
//! ```
//! use http::Method;
//! use layercake::predicate::{request, RequestPredicate};
//!
//! // GET anywhere but under /admin, and POST /search with a small body.
//! let cacheable = request::method(Method::GET)
//!     .and(request::path_prefix("/admin").not())
//!     .or(request::method(Method::POST)
//!         .and(request::path("/search"))
//!         .and(request::body_size(..=16 * 1024)));
//! # drop(cacheable);
//! ```

use std::ops::{Bound, RangeBounds};

use http::{HeaderName, Method, request::Parts};

use super::{CacheRequest, Matches, NoBody, ReadsBody, RequestPredicate};

/// A predicate that reads the request head only: its test of the head decides.
macro_rules! head_predicate {
    ($ty:ty, |$self:ident, $head:ident| $test:expr) => {
        impl RequestPredicate for $ty {
            type Body = NoBody;

            fn test_head(&$self, $head: &Parts) -> Option<bool> {
                Some($test)
            }

            fn test(&self, request: &CacheRequest<'_>) -> bool {
                self.test_head(request.parts()) == Some(true)
            }
        }
    };
}

/// A predicate that reads the request body: `false` without one.
macro_rules! body_predicate {
    ($ty:ty, |$self:ident, $body:ident| $test:expr) => {
        impl RequestPredicate for $ty {
            type Body = ReadsBody;

            fn test_head(&self, _: &Parts) -> Option<bool> {
                None
            }

            fn test(&$self, request: &CacheRequest<'_>) -> bool {
                request.body().is_some_and(|$body| $test)
            }
        }
    };
}

/// The request method is one of a list; made by [`method`] and [`methods`].
///
/// ```
/// let reads: layercake::predicate::request::Methods = layercake::predicate::request::method(http::Method::GET);
/// # drop(reads);
/// ```
#[derive(Debug, Clone)]
pub struct Methods(Box<[Method]>);

/// The request method is `method`.
///
/// ```
/// # use layercake::predicate::request;
/// let reads = request::method(http::Method::GET);
/// # drop(reads);
/// ```
pub fn method(method: Method) -> Methods {
    Methods(Box::new([method]))
}

/// The request method is one of `methods`.
///
/// ```
/// # use layercake::predicate::request;
/// use http::Method;
/// let reads = request::methods([Method::GET, Method::HEAD]);
/// # drop(reads);
/// ```
pub fn methods(methods: impl IntoIterator<Item = Method>) -> Methods {
    Methods(methods.into_iter().collect())
}

head_predicate!(Methods, |self, head| self.0.contains(&head.method));

/// The request path matches a pattern in axum's route syntax; made by [`path`] and [`paths`].
///
/// ```
/// let users: layercake::predicate::request::PathPattern = layercake::predicate::request::path("/users/{id}");
/// # drop(users);
/// ```
#[derive(Clone)]
pub struct PathPattern {
    router: matchit::Router<()>,
    patterns: Box<[Box<str>]>,
}

impl std::fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PathPattern").field(&self.patterns).finish()
    }
}

/// The request path matches `pattern`, in axum's route syntax: `/users/{id}` (one segment),
/// `/assets/{*rest}` (the rest of the path), literal otherwise.
///
/// # Panics
///
/// When `pattern` is not a valid route (`/users/{`); see [`paths`] for patterns read at run
/// time.
///
/// ```
/// # use layercake::predicate::{request, CacheRequest, RequestPredicate};
/// let users = request::path("/users/{id}");
/// let (head, ()) = http::Request::get("/users/42?full").body(()).unwrap().into_parts();
/// assert!(users.test(&CacheRequest::new(&head, None)));
/// ```
pub fn path(pattern: &str) -> PathPattern {
    match paths([pattern]) {
        Ok(pattern) => pattern,
        Err(error) => panic!("{error}"),
    }
}

/// The request path matches one of `patterns` (see [`path`]); an invalid or conflicting
/// pattern is an error that names it.
///
/// ```
/// # use layercake::predicate::request;
/// let assets = request::paths(["/assets/{*rest}", "/favicon.ico"]).unwrap();
/// assert!(request::paths(["/users/{"]).is_err());
/// # drop(assets);
/// ```
pub fn paths<P: AsRef<str>>(
    patterns: impl IntoIterator<Item = P>,
) -> Result<PathPattern, PatternError> {
    let mut router = matchit::Router::new();
    let mut kept = Vec::new();
    for pattern in patterns {
        let pattern = pattern.as_ref();
        router.insert(pattern, ()).map_err(|error| PatternError {
            pattern: pattern.to_owned(),
            reason: error.to_string(),
        })?;
        kept.push(pattern.into());
    }
    Ok(PathPattern {
        router,
        patterns: kept.into(),
    })
}

/// A path pattern that is not a valid route.
///
/// ```
/// let error = layercake::predicate::request::paths(["/users/{"]).unwrap_err();
/// assert!(error.to_string().contains("/users/{"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pattern: String,
    reason: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid path pattern {:?}: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for PatternError {}

impl PathPattern {
    /// The pattern's parameters in `path` when it matches.
    pub(crate) fn at<'p>(&self, path: &'p str) -> Option<matchit::Params<'_, 'p>> {
        self.router.at(path).ok().map(|found| found.params)
    }
}

head_predicate!(PathPattern, |self, head| self
    .router
    .at(head.uri.path())
    .is_ok());

/// The request path is under a prefix; made by [`path_prefix`].
///
/// ```
/// let api: layercake::predicate::request::PathPrefix = layercake::predicate::request::path_prefix("/api");
/// # drop(api);
/// ```
#[derive(Debug, Clone)]
pub struct PathPrefix(Box<str>);

/// The request path is `prefix` or under it, by whole segments: `/api` selects `/api` and
/// `/api/users`, not `/apiary`. A prefix ending in `/` selects what starts with it.
///
/// ```
/// # use layercake::predicate::{request, CacheRequest, RequestPredicate};
/// let api = request::path_prefix("/api");
/// let test = |uri| {
///     let (head, ()) = http::Request::get(uri).body(()).unwrap().into_parts();
///     api.test(&CacheRequest::new(&head, None))
/// };
/// assert!(test("/api/users") && test("/api") && !test("/apiary"));
/// ```
pub fn path_prefix(prefix: impl Into<String>) -> PathPrefix {
    PathPrefix(prefix.into().into())
}

head_predicate!(PathPrefix, |self, head| {
    let path = head.uri.path();
    let prefix = &*self.0;
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
});

/// Selects a request header (see [`Matches`]).
///
/// ```
/// use layercake::predicate::{Matches, request};
/// let traced: Matches<request::Header> = request::header("traceparent");
/// # drop(traced);
/// ```
#[derive(Debug, Clone)]
pub struct Header(HeaderName);

/// The request carries header `name`; narrow it with [`Matches::equals`], `one_of`,
/// `contains` or `matches`.
///
/// ```
/// # use layercake::predicate::{request, CacheRequest, RequestPredicate};
/// let json = request::header(http::header::ACCEPT).contains("json");
/// let (head, ()) = http::Request::get("/").header("accept", "application/json")
///     .body(()).unwrap().into_parts();
/// assert!(json.test(&CacheRequest::new(&head, None)));
/// ```
pub fn header(name: impl TryInto<HeaderName, Error: std::fmt::Debug>) -> Matches<Header> {
    Matches::present(Header(header_name(name)))
}

/// `name` as a header name; an invalid one is a programming error, said at once.
pub(crate) fn header_name(name: impl TryInto<HeaderName, Error: std::fmt::Debug>) -> HeaderName {
    match name.try_into() {
        Ok(name) => name,
        Err(error) => panic!("invalid header name: {error:?}"),
    }
}

head_predicate!(Matches<Header>, |self, head| self.matching.any(
    head.headers
        .get_all(&self.subject.0)
        .iter()
        .map(|v| v.as_bytes())
));

/// Selects a query parameter (see [`Matches`]).
///
/// ```
/// use layercake::predicate::{Matches, request};
/// let paged: Matches<request::Query> = request::query("page");
/// # drop(paged);
/// ```
#[derive(Debug, Clone)]
pub struct Query(Box<str>);

/// The request's query string has parameter `name` (compared percent-decoded, `+` as a
/// space); narrow it with [`Matches::equals`], `one_of`, `contains` or `matches`.
///
/// ```
/// # use layercake::predicate::{request, CacheRequest, RequestPredicate};
/// let second = request::query("page").equals("2");
/// let (head, ()) = http::Request::get("/?page=2").body(()).unwrap().into_parts();
/// assert!(second.test(&CacheRequest::new(&head, None)));
/// ```
pub fn query(name: impl Into<String>) -> Matches<Query> {
    Matches::present(Query(name.into().into()))
}

head_predicate!(Matches<Query>, |self, head| {
    let query = head.uri.query().unwrap_or_default();
    super::raw_query_pairs(query).any(|(name, value)| {
        *super::decode_component(name) == *self.subject.0.as_bytes()
            && self.matching.test(&super::decode_component(value))
    })
});

/// The request body's size is in a range; made by [`body_size`].
///
/// ```
/// let small: layercake::predicate::request::BodySize = layercake::predicate::request::body_size(..=1024);
/// # drop(small);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BodySize(Bound<usize>, Bound<usize>);

/// The request body's size is in `range` (`..=16384`, `1..`); reads the body.
///
/// ```
/// # use layercake::predicate::request;
/// let small = request::body_size(..=16 * 1024);
/// # drop(small);
/// ```
pub fn body_size(range: impl RangeBounds<usize>) -> BodySize {
    BodySize(range.start_bound().cloned(), range.end_bound().cloned())
}

impl BodySize {
    pub(crate) fn contains(&self, size: usize) -> bool {
        (self.0, self.1).contains(&size)
    }
}

body_predicate!(BodySize, |self, body| self.contains(body.len()));

/// Selects a value of a JSON body by a JSON pointer (see [`Matches`]).
///
/// ```
/// use layercake::predicate::{Matches, request};
/// let query: Matches<request::Json> = request::json("/query");
/// # drop(query);
/// ```
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
#[derive(Debug, Clone)]
pub struct Json(Box<str>);

/// The request body is JSON with a value at `pointer` (RFC 6901: `/query`,
/// `/variables/id`); narrow it with [`Matches::equals`], `one_of`, `contains` or `matches`,
/// which see a string's content and any other value's JSON text (`42`, `true`). Reads the
/// body (feature `json`).
///
/// ```
/// # use layercake::predicate::{request, CacheRequest, RequestPredicate};
/// let persisted = request::json("/extensions/persistedQuery/sha256Hash");
/// let body = bytes::Bytes::from_static(br#"{"extensions":{"persistedQuery":{"sha256Hash":"ab"}}}"#);
/// let (head, ()) = http::Request::post("/graphql").body(()).unwrap().into_parts();
/// assert!(persisted.test(&CacheRequest::new(&head, Some(&body))));
/// ```
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub fn json(pointer: impl Into<String>) -> Matches<Json> {
    Matches::present(Json(pointer.into().into()))
}

#[cfg(feature = "json")]
body_predicate!(Matches<Json>, |self, body| {
    super::json_value(body, &self.subject.0).is_some_and(|value| self.matching.test(&value))
});

/// The request body matches a regex; made by [`body_matches`].
///
/// ```
/// let form = layercake::predicate::request::body_matches(regex::bytes::Regex::new("^q=").unwrap());
/// # drop(form);
/// ```
#[cfg(feature = "regex")]
#[cfg_attr(docsrs, doc(cfg(feature = "regex")))]
#[derive(Debug, Clone)]
pub struct BodyMatches(regex::bytes::Regex);

/// The request body matches `regex` (feature `regex`); reads the body.
///
/// ```
/// # use layercake::predicate::request;
/// let query = request::body_matches(regex::bytes::Regex::new(r"^\s*(query|\{)").unwrap());
/// # drop(query);
/// ```
#[cfg(feature = "regex")]
#[cfg_attr(docsrs, doc(cfg(feature = "regex")))]
pub fn body_matches(regex: regex::bytes::Regex) -> BodyMatches {
    BodyMatches(regex)
}

#[cfg(feature = "regex")]
body_predicate!(BodyMatches, |self, body| self.0.is_match(body));

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn test(predicate: &impl RequestPredicate, request: http::Request<()>) -> bool {
        let (head, ()) = request.into_parts();
        predicate.test(&CacheRequest::new(&head, None))
    }

    fn get(uri: &str) -> http::Request<()> {
        http::Request::get(uri).body(()).unwrap()
    }

    #[test]
    fn method_selects_its_methods() {
        assert!(test(&method(Method::GET), get("/")));
        let post = http::Request::post("/").body(()).unwrap();
        assert!(!test(&method(Method::GET), post));
        let post = http::Request::post("/").body(()).unwrap();
        assert!(test(&methods([Method::GET, Method::POST]), post));
    }

    #[test]
    fn path_patterns_use_axum_syntax() {
        let users = path("/users/{id}");
        assert!(test(&users, get("/users/7")));
        assert!(!test(&users, get("/users/7/posts")));
        assert!(!test(&users, get("/users")));
        let assets = path("/assets/{*rest}");
        assert!(test(&assets, get("/assets/css/site.css")));
        assert!(!test(&assets, get("/other/site.css")));
        let error = paths(["/a/{"]).unwrap_err().to_string();
        assert!(error.contains("/a/{"), "{error}");
    }

    #[test]
    fn path_prefixes_go_by_segments() {
        let api = path_prefix("/api");
        assert!(test(&api, get("/api")));
        assert!(test(&api, get("/api/v1")));
        assert!(!test(&api, get("/apiary")));
        assert!(test(&path_prefix("/ap"), get("/ap/x")));
        assert!(test(&path_prefix("/static/"), get("/static/x.js")));
        assert!(!test(&path_prefix("/static/"), get("/static")));
    }

    #[test]
    fn headers_are_tested_by_presence_and_value() {
        let with = |name: &str, value: &str| {
            http::Request::get("/")
                .header(name, value)
                .body(())
                .unwrap()
        };
        assert!(test(&header("x-a"), with("x-a", "")));
        assert!(!test(&header("x-a"), get("/")));
        assert!(test(&header("x-a").equals("1"), with("x-a", "1")));
        assert!(!test(&header("x-a").equals("1"), with("x-a", "10")));
        assert!(test(&header("x-a").one_of(["1", "2"]), with("x-a", "2")));
        assert!(test(
            &header("x-a").contains("json"),
            with("x-a", "app/json")
        ));
        assert!(!test(
            &header("x-a").contains("xml"),
            with("x-a", "app/json")
        ));
    }

    #[test]
    fn query_parameters_are_compared_decoded() {
        assert!(test(&query("q"), get("/?a=1&q=")));
        assert!(!test(&query("q"), get("/?qq=1")));
        assert!(test(&query("q").equals("a b"), get("/?q=a+b")));
        assert!(test(&query("q").equals("a/b"), get("/?q=a%2Fb")));
        assert!(test(&query("tag").equals("y"), get("/?tag=x&tag=y")));
        assert!(!test(&query("q"), get("/")));
    }

    #[test]
    fn body_predicates_need_the_body() {
        let (head, ()) = http::Request::post("/").body(()).unwrap().into_parts();
        let small = body_size(..=4);
        assert_eq!(small.test_head(&head), None);
        assert!(!small.test(&CacheRequest::new(&head, None)));
        let body = Bytes::from_static(b"1234");
        assert!(small.test(&CacheRequest::new(&head, Some(&body))));
        let body = Bytes::from_static(b"12345");
        assert!(!small.test(&CacheRequest::new(&head, Some(&body))));
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_pointers_see_strings_and_json_text() {
        let (head, ()) = http::Request::post("/").body(()).unwrap().into_parts();
        let body = Bytes::from_static(br#"{"query":"{ me }","n":42,"deep":{"ok":true}}"#);
        let request = CacheRequest::new(&head, Some(&body));
        assert!(json("/query").equals("{ me }").test(&request));
        assert!(json("/n").equals("42").test(&request));
        assert!(json("/deep/ok").equals("true").test(&request));
        assert!(!json("/missing").test(&request));
        let broken = Bytes::from_static(b"{not json");
        assert!(!json("/query").test(&CacheRequest::new(&head, Some(&broken))));
    }

    #[cfg(feature = "regex")]
    #[test]
    fn regexes_test_values_and_bodies() {
        let (head, ()) = http::Request::post("/").body(()).unwrap().into_parts();
        let body = Bytes::from_static(b"  mutation { x }");
        let request = CacheRequest::new(&head, Some(&body));
        assert!(body_matches(regex::bytes::Regex::new(r"^\s*mutation").unwrap()).test(&request));
        let q = query("q").matches(regex::Regex::new("^[0-9]+$").unwrap());
        assert!(test(&q, get("/?q=123")));
        assert!(!test(&q, get("/?q=12a")));
    }
}
