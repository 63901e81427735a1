//! Which requests use the cache, and which responses are stored: predicates, composed at the
//! type level.
//!
//! A [`RequestPredicate`] decides whether a request uses the cache at all
//! ([`cache_if`](crate::layer::CacheLayerBuilder::cache_if)); a [`ResponsePredicate`] whether a
//! response may be stored ([`store_if`](crate::layer::CacheLayerBuilder::store_if)). Both come
//! built in ([`request`], [`response`]), from closures, and combined with
//! [`and`](RequestPredicate::and), [`or`](RequestPredicate::or) and
//! [`not`](RequestPredicate::not) into generic types ([`And`], [`Or`], [`Not`]): statically
//! dispatched, zero-sized where their parts are, checked by the compiler (a response predicate
//! where a request predicate goes does not compile).
//!
//! ```
//! use http::Method;
//! use layercake::{CacheLayer, Moka};
//! use layercake::predicate::{request, response, RequestPredicate, ResponsePredicate};
//!
//! let layer = CacheLayer::builder(Moka::default())
//!     // Never `/health`, never a request that asks for debugging output.
//!     .cache_if(
//!         request::path("/health")
//!             .or(request::query("debug"))
//!             .not()
//!             .and(request::method(Method::GET)),
//!     )
//!     // Only successful JSON.
//!     .store_if(response::status_class(response::StatusClass::Success)
//!         .and(response::content_type("application/json")))
//!     .build()
//!     .unwrap();
//! # drop(layer);
//! ```
//!
//! These run besides the layer's HTTP rules, never instead of them: a request a predicate
//! selects is still cached only as RFC 9111 allows (its method among the layer's
//! [`methods`](crate::layer::CacheLayerBuilder::methods), no `no-store`, no credentials a shared
//! cache may not use …), and a response a predicate accepts is stored only when those rules
//! allow it too.
//!
//! # Reading the body
//!
//! Predicates and key extractors that read the request body (`request::body_size`,
//! `request::json`, `request::body_matches`, the body key extractors) make the layer read it
//! first, up to [`max_request_body_size`](crate::layer::CacheLayerBuilder::max_request_body_size),
//! and hand it on to the inner service unchanged. Whether they do is in their types
//! ([`RequestPredicate::Body`]), so a layer whose parts read no body never waits for one, and
//! the layer only reads a body when the request's head leaves the answer open: with
//! `method(POST).and(json("/query"))`, a `GET` is decided at once.

mod body;
pub mod request;
pub mod response;

use std::borrow::Cow;

use bytes::Bytes;
use http::{request::Parts as RequestParts, response::Parts as ResponseParts};

#[doc(hidden)]
pub use self::body::Buffered;
pub use self::body::{BodyUse, BufferBody, NoBody, ReadsBody, ReplayBody, Tail};

/// What request predicates and key extractors see of a request: its head, and its body when
/// a part of the layer reads it (see [`RequestPredicate::Body`]).
///
/// ```
/// use layercake::predicate::CacheRequest;
///
/// let (parts, ()) = http::Request::get("/a?b=1").body(()).unwrap().into_parts();
/// let request = CacheRequest::new(&parts, None);
/// assert_eq!(request.uri().query(), Some("b=1"));
/// assert!(request.body().is_none());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CacheRequest<'a> {
    parts: &'a RequestParts,
    body: Option<&'a Bytes>,
}

impl<'a> CacheRequest<'a> {
    /// A request with head `parts` and, when it was read whole, `body`.
    ///
    /// ```
    /// let (parts, ()) = http::Request::get("/").body(()).unwrap().into_parts();
    /// let request = layercake::predicate::CacheRequest::new(&parts, None);
    /// assert!(request.body().is_none());
    /// ```
    pub fn new(parts: &'a RequestParts, body: Option<&'a Bytes>) -> Self {
        CacheRequest { parts, body }
    }

    /// The request's head.
    ///
    /// ```
    /// let (parts, ()) = http::Request::post("/search?q=rust").header("x-a", "1").body(()).unwrap().into_parts();
    /// let body = bytes::Bytes::from_static(b"{}");
    /// let request = layercake::predicate::CacheRequest::new(&parts, Some(&body));
    /// assert_eq!(request.parts().uri.path(), "/search");
    /// ```
    pub fn parts(&self) -> &'a RequestParts {
        self.parts
    }

    /// The request method.
    ///
    /// ```
    /// let (parts, ()) = http::Request::post("/search?q=rust").header("x-a", "1").body(()).unwrap().into_parts();
    /// let body = bytes::Bytes::from_static(b"{}");
    /// let request = layercake::predicate::CacheRequest::new(&parts, Some(&body));
    /// assert_eq!(request.method(), http::Method::POST);
    /// ```
    pub fn method(&self) -> &'a http::Method {
        &self.parts.method
    }

    /// The request target.
    ///
    /// ```
    /// let (parts, ()) = http::Request::post("/search?q=rust").header("x-a", "1").body(()).unwrap().into_parts();
    /// let body = bytes::Bytes::from_static(b"{}");
    /// let request = layercake::predicate::CacheRequest::new(&parts, Some(&body));
    /// assert_eq!(request.uri().query(), Some("q=rust"));
    /// ```
    pub fn uri(&self) -> &'a http::Uri {
        &self.parts.uri
    }

    /// The request headers.
    ///
    /// ```
    /// let (parts, ()) = http::Request::post("/search?q=rust").header("x-a", "1").body(()).unwrap().into_parts();
    /// let body = bytes::Bytes::from_static(b"{}");
    /// let request = layercake::predicate::CacheRequest::new(&parts, Some(&body));
    /// assert_eq!(request.headers()["x-a"], "1");
    /// ```
    pub fn headers(&self) -> &'a http::HeaderMap {
        &self.parts.headers
    }

    /// The whole body, when a part of the layer reads bodies and this one fit the limit.
    ///
    /// ```
    /// let (parts, ()) = http::Request::post("/search?q=rust").header("x-a", "1").body(()).unwrap().into_parts();
    /// let body = bytes::Bytes::from_static(b"{}");
    /// let request = layercake::predicate::CacheRequest::new(&parts, Some(&body));
    /// assert_eq!(request.body().map(|b| &b[..]), Some(&b"{}"[..]));
    /// ```
    pub fn body(&self) -> Option<&'a Bytes> {
        self.body
    }
}

/// What response predicates see of a complete response: its head and its body.
///
/// ```
/// use layercake::predicate::CacheResponse;
///
/// let (parts, ()) = http::Response::new(()).into_parts();
/// let response = CacheResponse::new(&parts, b"{}");
/// assert_eq!(response.body(), b"{}");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CacheResponse<'a> {
    parts: &'a ResponseParts,
    body: &'a [u8],
}

impl<'a> CacheResponse<'a> {
    /// A response with head `parts` and body `body`.
    ///
    /// ```
    /// let (mut parts, ()) = http::Response::new(()).into_parts();
    /// parts.headers.insert("content-type", "application/json".parse().unwrap());
    /// let response = layercake::predicate::CacheResponse::new(&parts, b"[1]");
    /// assert_eq!(response.body(), b"[1]");
    /// ```
    pub fn new(parts: &'a ResponseParts, body: &'a [u8]) -> Self {
        CacheResponse { parts, body }
    }

    /// The response's head.
    ///
    /// ```
    /// let (mut parts, ()) = http::Response::new(()).into_parts();
    /// parts.headers.insert("content-type", "application/json".parse().unwrap());
    /// let response = layercake::predicate::CacheResponse::new(&parts, b"[1]");
    /// assert_eq!(response.parts().status, 200);
    /// ```
    pub fn parts(&self) -> &'a ResponseParts {
        self.parts
    }

    /// The response status.
    ///
    /// ```
    /// let (mut parts, ()) = http::Response::new(()).into_parts();
    /// parts.headers.insert("content-type", "application/json".parse().unwrap());
    /// let response = layercake::predicate::CacheResponse::new(&parts, b"[1]");
    /// assert!(response.status().is_success());
    /// ```
    pub fn status(&self) -> http::StatusCode {
        self.parts.status
    }

    /// The response headers.
    ///
    /// ```
    /// let (mut parts, ()) = http::Response::new(()).into_parts();
    /// parts.headers.insert("content-type", "application/json".parse().unwrap());
    /// let response = layercake::predicate::CacheResponse::new(&parts, b"[1]");
    /// assert!(response.headers().contains_key("content-type"));
    /// ```
    pub fn headers(&self) -> &'a http::HeaderMap {
        &self.parts.headers
    }

    /// The whole body.
    ///
    /// ```
    /// let (mut parts, ()) = http::Response::new(()).into_parts();
    /// parts.headers.insert("content-type", "application/json".parse().unwrap());
    /// let response = layercake::predicate::CacheResponse::new(&parts, b"[1]");
    /// assert_eq!(response.body().len(), 3);
    /// ```
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// Decides whether a request uses the cache: when it does not, it goes to the inner service
/// untouched (no key, no lookup, no store).
///
/// Built in: [`request`]'s predicates; any closure `Fn(&http::request::Parts) -> bool`;
/// [`Always`]. Combine them with [`and`](Self::and), [`or`](Self::or), [`not`](Self::not).
///
/// ```
/// use layercake::predicate::{request, CacheRequest, RequestPredicate};
///
/// let not_admin = (|head: &http::request::Parts| !head.uri.path().starts_with("/admin"))
///     .and(request::header("x-no-cache").not());
/// let (head, ()) = http::Request::get("/admin/users").body(()).unwrap().into_parts();
/// assert!(!not_admin.test(&CacheRequest::new(&head, None)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a request predicate",
    label = "expected a request predicate",
    note = "request predicates are in `layercake::predicate::request`, or a closure `Fn(&http::request::Parts) -> bool`; a response predicate goes in `store_if`"
)]
pub trait RequestPredicate: Send + Sync + 'static {
    /// Whether this predicate reads the request body: [`NoBody`] or [`ReadsBody`].
    type Body: BodyUse;

    /// What the request's head alone decides: `None` when the body must be read first.
    fn test_head(&self, head: &RequestParts) -> Option<bool>;

    /// Whether the request uses the cache. Its [body](CacheRequest::body) is there when this
    /// predicate (or another part of the layer) reads bodies and it fit the limit; a predicate
    /// on the body is `false` without one.
    fn test(&self, request: &CacheRequest<'_>) -> bool;

    /// Both this predicate and `other`.
    fn and<P: RequestPredicate>(self, other: P) -> And<Self, P>
    where
        Self: Sized,
    {
        And(self, other)
    }

    /// This predicate or `other`.
    fn or<P: RequestPredicate>(self, other: P) -> Or<Self, P>
    where
        Self: Sized,
    {
        Or(self, other)
    }

    /// The opposite of this predicate.
    fn not(self) -> Not<Self>
    where
        Self: Sized,
    {
        Not(self)
    }
}

/// Decides whether a response may be stored, besides the layer's HTTP rules: a response it
/// refuses is passed on and not stored (`Cache-Status: …; detail=predicate`).
///
/// Built in: [`response`]'s predicates; any closure `Fn(&http::response::Parts) -> bool`;
/// [`Always`]. Combine them with [`and`](Self::and), [`or`](Self::or), [`not`](Self::not).
///
/// ```
/// use layercake::predicate::{response, CacheResponse, ResponsePredicate};
///
/// let small_json = response::content_type("application/json").and(response::body_size(..=1024));
/// let (mut head, ()) = http::Response::new(()).into_parts();
/// head.headers.insert("content-type", "application/json".parse().unwrap());
/// assert!(small_json.test(&CacheResponse::new(&head, b"[]")));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a response predicate",
    label = "expected a response predicate",
    note = "response predicates are in `layercake::predicate::response`, or a closure `Fn(&http::response::Parts) -> bool`; a request predicate goes in `cache_if`"
)]
pub trait ResponsePredicate: Send + Sync + 'static {
    /// What the response's head alone decides: `None` when the body must be read first (it
    /// is read anyway to be stored).
    fn test_head(&self, head: &ResponseParts) -> Option<bool>;

    /// Whether the complete response may be stored.
    fn test(&self, response: &CacheResponse<'_>) -> bool;

    /// Both this predicate and `other`.
    fn and<P: ResponsePredicate>(self, other: P) -> And<Self, P>
    where
        Self: Sized,
    {
        And(self, other)
    }

    /// This predicate or `other`.
    fn or<P: ResponsePredicate>(self, other: P) -> Or<Self, P>
    where
        Self: Sized,
    {
        Or(self, other)
    }

    /// The opposite of this predicate.
    fn not(self) -> Not<Self>
    where
        Self: Sized,
    {
        Not(self)
    }
}

/// Both predicates; made by `.and(…)`.
///
/// ```
/// use layercake::predicate::{And, RequestPredicate, request};
/// let both: And<_, _> = request::method(http::Method::GET).and(request::path_prefix("/api"));
/// # drop(both);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct And<A, B>(pub A, pub B);

/// Either predicate; made by `.or(…)`.
///
/// ```
/// use layercake::predicate::{Or, RequestPredicate, request};
/// let either: Or<_, _> = request::path("/a").or(request::path("/b"));
/// # drop(either);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Or<A, B>(pub A, pub B);

/// The opposite of a predicate; made by `.not()`.
///
/// ```
/// use layercake::predicate::{Not, RequestPredicate, request};
/// let not_admin: Not<_> = request::path_prefix("/admin").not();
/// # drop(not_admin);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Not<A>(pub A);

/// Every request, every response: the layer's defaults, its HTTP rules alone deciding.
///
/// ```
/// use layercake::predicate::{Always, CacheRequest, RequestPredicate};
///
/// let (head, ()) = http::Request::get("/").body(()).unwrap().into_parts();
/// assert!(RequestPredicate::test(&Always, &CacheRequest::new(&head, None)));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Always;

/// `a && b` where either may be unknown until the body is read.
fn and3(a: Option<bool>, b: impl FnOnce() -> Option<bool>) -> Option<bool> {
    match a {
        Some(false) => Some(false),
        Some(true) => b(),
        None => match b() {
            Some(false) => Some(false),
            _ => None,
        },
    }
}

/// `a || b` where either may be unknown until the body is read.
fn or3(a: Option<bool>, b: impl FnOnce() -> Option<bool>) -> Option<bool> {
    match a {
        Some(true) => Some(true),
        Some(false) => b(),
        None => match b() {
            Some(true) => Some(true),
            _ => None,
        },
    }
}

impl<A: RequestPredicate, B: RequestPredicate> RequestPredicate for And<A, B> {
    type Body = <A::Body as BodyUse>::Or<B::Body>;

    fn test_head(&self, head: &RequestParts) -> Option<bool> {
        and3(self.0.test_head(head), || self.1.test_head(head))
    }

    fn test(&self, request: &CacheRequest<'_>) -> bool {
        self.0.test(request) && self.1.test(request)
    }
}

impl<A: RequestPredicate, B: RequestPredicate> RequestPredicate for Or<A, B> {
    type Body = <A::Body as BodyUse>::Or<B::Body>;

    fn test_head(&self, head: &RequestParts) -> Option<bool> {
        or3(self.0.test_head(head), || self.1.test_head(head))
    }

    fn test(&self, request: &CacheRequest<'_>) -> bool {
        self.0.test(request) || self.1.test(request)
    }
}

impl<A: RequestPredicate> RequestPredicate for Not<A> {
    type Body = A::Body;

    fn test_head(&self, head: &RequestParts) -> Option<bool> {
        self.0.test_head(head).map(|b| !b)
    }

    fn test(&self, request: &CacheRequest<'_>) -> bool {
        !self.0.test(request)
    }
}

impl<A: ResponsePredicate, B: ResponsePredicate> ResponsePredicate for And<A, B> {
    fn test_head(&self, head: &ResponseParts) -> Option<bool> {
        and3(self.0.test_head(head), || self.1.test_head(head))
    }

    fn test(&self, response: &CacheResponse<'_>) -> bool {
        self.0.test(response) && self.1.test(response)
    }
}

impl<A: ResponsePredicate, B: ResponsePredicate> ResponsePredicate for Or<A, B> {
    fn test_head(&self, head: &ResponseParts) -> Option<bool> {
        or3(self.0.test_head(head), || self.1.test_head(head))
    }

    fn test(&self, response: &CacheResponse<'_>) -> bool {
        self.0.test(response) || self.1.test(response)
    }
}

impl<A: ResponsePredicate> ResponsePredicate for Not<A> {
    fn test_head(&self, head: &ResponseParts) -> Option<bool> {
        self.0.test_head(head).map(|b| !b)
    }

    fn test(&self, response: &CacheResponse<'_>) -> bool {
        !self.0.test(response)
    }
}

impl RequestPredicate for Always {
    type Body = NoBody;

    fn test_head(&self, _: &RequestParts) -> Option<bool> {
        Some(true)
    }

    fn test(&self, _: &CacheRequest<'_>) -> bool {
        true
    }
}

impl ResponsePredicate for Always {
    fn test_head(&self, _: &ResponseParts) -> Option<bool> {
        Some(true)
    }

    fn test(&self, _: &CacheResponse<'_>) -> bool {
        true
    }
}

impl<F> RequestPredicate for F
where
    F: Fn(&RequestParts) -> bool + Send + Sync + 'static,
{
    type Body = NoBody;

    fn test_head(&self, head: &RequestParts) -> Option<bool> {
        Some(self(head))
    }

    fn test(&self, request: &CacheRequest<'_>) -> bool {
        self(request.parts)
    }
}

impl<F> ResponsePredicate for F
where
    F: Fn(&ResponseParts) -> bool + Send + Sync + 'static,
{
    fn test_head(&self, head: &ResponseParts) -> Option<bool> {
        Some(self(head))
    }

    fn test(&self, response: &CacheResponse<'_>) -> bool {
        self(response.parts)
    }
}

/// How a value (a header's, a query parameter's, a JSON body's) is tested.
#[derive(Debug, Clone)]
pub(crate) enum Matching {
    Present,
    Equals(Box<[u8]>),
    OneOf(Box<[Box<[u8]>]>),
    Contains(Box<[u8]>),
    #[cfg(feature = "regex")]
    Regex(regex::Regex),
}

impl Matching {
    fn test(&self, value: &[u8]) -> bool {
        match self {
            Matching::Present => true,
            Matching::Equals(expected) => value == &**expected,
            Matching::OneOf(expected) => expected.iter().any(|e| value == &**e),
            Matching::Contains(needle) => {
                needle.is_empty() || value.windows(needle.len()).any(|w| w == &**needle)
            }
            #[cfg(feature = "regex")]
            Matching::Regex(regex) => std::str::from_utf8(value).is_ok_and(|v| regex.is_match(v)),
        }
    }

    /// Whether any of `values` passes (none: `false`, even for [`Matching::Present`]).
    fn any<'v>(&self, values: impl IntoIterator<Item = &'v [u8]>) -> bool {
        values.into_iter().any(|value| self.test(value))
    }
}

/// A predicate on one value of a request or response (`S` says which: a header, a query
/// parameter, a JSON pointer into the body): present by default; narrowed with
/// [`equals`](Self::equals), [`one_of`](Self::one_of), [`contains`](Self::contains) or
/// `matches` (a regex, feature `regex`). When the value occurs more than once, one passing is enough.
///
/// ```
/// use layercake::predicate::request;
///
/// let beta = request::header("x-channel").one_of(["beta", "canary"]);
/// let search = request::query("q").contains("rust");
/// # drop((beta, search));
/// ```
#[derive(Debug, Clone)]
pub struct Matches<S> {
    subject: S,
    matching: Matching,
}

impl<S> Matches<S> {
    fn present(subject: S) -> Self {
        Matches {
            subject,
            matching: Matching::Present,
        }
    }

    /// The value equals `value`, byte for byte.
    ///
    /// ```
    /// use layercake::predicate::request;
    /// let debug = request::header("x-debug").equals("1");
    /// # drop(debug);
    /// ```
    pub fn equals(mut self, value: impl AsRef<[u8]>) -> Self {
        self.matching = Matching::Equals(value.as_ref().into());
        self
    }

    /// The value is one of `values`.
    ///
    /// ```
    /// use layercake::predicate::request;
    /// let sorted = request::query("sort").one_of(["name", "date"]);
    /// # drop(sorted);
    /// ```
    pub fn one_of<V: AsRef<[u8]>>(mut self, values: impl IntoIterator<Item = V>) -> Self {
        self.matching = Matching::OneOf(values.into_iter().map(|v| v.as_ref().into()).collect());
        self
    }

    /// The value contains `needle`.
    ///
    /// ```
    /// use layercake::predicate::response;
    /// let html = response::header("content-type").contains("html");
    /// # drop(html);
    /// ```
    pub fn contains(mut self, needle: impl AsRef<[u8]>) -> Self {
        self.matching = Matching::Contains(needle.as_ref().into());
        self
    }

    /// The value (as UTF-8 text) matches `regex` (feature `regex`).
    ///
    /// ```
    /// use layercake::predicate::request;
    ///
    /// let mutation = request::json("/query").matches(regex::Regex::new(r"^\s*mutation\b").unwrap());
    /// # drop(mutation);
    /// ```
    #[cfg(feature = "regex")]
    #[cfg_attr(docsrs, doc(cfg(feature = "regex")))]
    pub fn matches(mut self, regex: regex::Regex) -> Self {
        self.matching = Matching::Regex(regex);
        self
    }
}

/// The parameters of a query string (`a=1&b=x+y`) as they are written: decode each part with
/// [`decode_component`].
pub(crate) fn raw_query_pairs(query: &str) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .as_bytes()
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        })
}

/// One part of a query string, percent-decoded byte for byte, `+` as a space; without a copy
/// unless it holds an escape.
pub(crate) fn decode_component(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.iter().any(|b| *b == b'%' || *b == b'+') {
        return Cow::Borrowed(raw);
    }
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    Cow::Owned(percent_encoding::percent_decode(&spaced).collect())
}

/// The value at a JSON pointer of `body` as bytes: a string's content, anything else's JSON
/// text; `None` when the body is not JSON or the pointer finds nothing.
#[cfg(feature = "json")]
fn json_value(body: &[u8], pointer: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.pointer_mut(pointer).map(serde_json::Value::take)? {
        serde_json::Value::String(s) => Some(s.into_bytes().into()),
        other => serde_json::to_vec(&other).ok().map(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str) -> RequestParts {
        http::Request::get(uri).body(()).unwrap().into_parts().0
    }

    #[test]
    fn combinators_follow_boolean_logic_on_the_head() {
        let yes = |_: &RequestParts| true;
        let no = |_: &RequestParts| false;
        let h = head("/");
        let r = CacheRequest::new(&h, None);
        assert!(yes.and(yes).test(&r));
        assert!(!yes.and(no).test(&r));
        assert!(yes.or(no).test(&r));
        assert!(!no.or(no).test(&r));
        assert!(no.not().test(&r));
        assert_eq!(no.and(yes).test_head(&h), Some(false));
        assert_eq!(no.or(yes).test_head(&h), Some(true));
    }

    #[test]
    fn combinators_of_zero_sized_predicates_are_zero_sized() {
        let both = RequestPredicate::and(Always, Always);
        assert_eq!(
            std::mem::size_of_val(&RequestPredicate::or(both, Always)),
            0
        );
        assert_eq!(std::mem::size_of_val(&RequestPredicate::not(Always)), 0);
    }

    #[test]
    fn unknown_until_the_body_only_where_the_head_cannot_decide() {
        assert_eq!(and3(None, || Some(false)), Some(false));
        assert_eq!(and3(None, || Some(true)), None);
        assert_eq!(and3(Some(true), || None), None);
        assert_eq!(or3(None, || Some(true)), Some(true));
        assert_eq!(or3(None, || Some(false)), None);
        assert_eq!(or3(Some(false), || None), None);
    }

    #[test]
    fn values_match_as_configured() {
        assert!(Matching::Present.test(b""));
        assert!(Matching::Equals(b"a"[..].into()).test(b"a"));
        assert!(!Matching::Equals(b"a"[..].into()).test(b"ab"));
        let one_of = Matching::OneOf([b"a"[..].into(), b"b"[..].into()].into());
        assert!(one_of.test(b"b") && !one_of.test(b"c"));
        assert!(Matching::Contains(b"bc"[..].into()).test(b"abcd"));
        assert!(!Matching::Contains(b"x"[..].into()).test(b"abcd"));
        assert!(!Matching::Present.any([]));
    }
}
