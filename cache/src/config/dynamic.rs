//! Predicates and key extractors behind one type each, for layers whose rules are read at run
//! time. Each wraps the built-in it was configured as, so a configured rule decides exactly as
//! the same rule written in code.

use std::fmt;

use layercake_backends::KeyBuilder;

use crate::{
    layer::KeyExtractor,
    predicate::{CacheRequest, CacheResponse, NoBody, RequestPredicate, ResponsePredicate},
};

/// Any head-only [`RequestPredicate`], boxed: what a configured layer's `request:` rule becomes.
///
/// ```
/// use layercake::config::DynRequestPredicate;
/// use layercake::predicate::{CacheRequest, RequestPredicate, request};
///
/// let rule = DynRequestPredicate::new(request::path_prefix("/api"));
/// let (head, ()) = http::Request::get("/api/users").body(()).unwrap().into_parts();
/// assert!(rule.test(&CacheRequest::new(&head, None)));
/// ```
pub struct DynRequestPredicate(Box<dyn RequestPredicate<Body = NoBody>>);

impl DynRequestPredicate {
    /// Boxes `predicate`.
    ///
    /// ```
    /// use layercake::{config::DynRequestPredicate, predicate::Always};
    /// let rule = DynRequestPredicate::new(Always);
    /// # drop(rule);
    /// ```
    pub fn new<P: RequestPredicate<Body = NoBody>>(predicate: P) -> Self {
        DynRequestPredicate(Box::new(predicate))
    }
}

impl RequestPredicate for DynRequestPredicate {
    type Body = NoBody;

    fn test_head(&self, head: &http::request::Parts) -> Option<bool> {
        self.0.test_head(head)
    }

    fn test(&self, request: &CacheRequest<'_>) -> bool {
        self.0.test(request)
    }
}

impl fmt::Debug for DynRequestPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynRequestPredicate")
    }
}

/// Any [`ResponsePredicate`], boxed: what a configured layer's `response:` rule becomes.
///
/// ```
/// use layercake::config::DynResponsePredicate;
/// use layercake::predicate::{CacheResponse, ResponsePredicate, response};
///
/// let rule = DynResponsePredicate::new(response::status(http::StatusCode::OK));
/// let (head, ()) = http::Response::new(()).into_parts();
/// assert!(rule.test(&CacheResponse::new(&head, b"")));
/// ```
pub struct DynResponsePredicate(Box<dyn ResponsePredicate>);

impl DynResponsePredicate {
    /// Boxes `predicate`.
    ///
    /// ```
    /// use layercake::{config::DynResponsePredicate, predicate::Always};
    /// let rule = DynResponsePredicate::new(Always);
    /// # drop(rule);
    /// ```
    pub fn new<P: ResponsePredicate>(predicate: P) -> Self {
        DynResponsePredicate(Box::new(predicate))
    }
}

impl ResponsePredicate for DynResponsePredicate {
    fn test_head(&self, head: &http::response::Parts) -> Option<bool> {
        self.0.test_head(head)
    }

    fn test(&self, response: &CacheResponse<'_>) -> bool {
        self.0.test(response)
    }
}

impl fmt::Debug for DynResponsePredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynResponsePredicate")
    }
}

/// Head-only [`KeyExtractor`]s, boxed, applied in order: what a configured layer's `key:`
/// becomes. The parts are those of the same extractors in a tuple, so a configured layer and
/// one built in code with the same key share entries.
///
/// ```
/// use layercake::config::DynKey;
/// use layercake::layer::{Path, key::Query};
/// let key = DynKey::new().then(Path).then(Query::only(["page"]));
/// # drop(key);
/// ```
#[derive(Default)]
pub struct DynKey(Vec<Box<dyn KeyExtractor<Body = NoBody>>>);

impl DynKey {
    /// No parts yet.
    ///
    /// ```
    /// let key = layercake::config::DynKey::new();
    /// # drop(key);
    /// ```
    pub fn new() -> Self {
        DynKey(Vec::new())
    }

    /// Adds `extractor`'s parts after the others.
    ///
    /// ```
    /// use layercake::{config::DynKey, layer::PathAndQuery};
    /// let key = DynKey::new().then(PathAndQuery);
    /// # drop(key);
    /// ```
    pub fn then<E: KeyExtractor<Body = NoBody>>(mut self, extractor: E) -> Self {
        self.0.push(Box::new(extractor));
        self
    }
}

impl KeyExtractor for DynKey {
    type Body = NoBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        self.0.iter().all(|part| part.extract(request, key))
    }
}

impl fmt::Debug for DynKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynKey({} parts)", self.0.len())
    }
}
