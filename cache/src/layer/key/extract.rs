//! Key extractors beyond the path: path parameters, query parameters, header prefixes, the
//! body, and transforms of other extractors' parts.

use layercake_backends::KeyBuilder;

use super::{KeyExtractor, KeyParts};
use crate::predicate::{
    CacheRequest, NoBody, ReadsBody, decode_component, raw_query_pairs,
    request::{PathPattern, PatternError, paths},
};

/// Keys on the parameters of a path pattern in axum's syntax (`/users/{id}`,
/// `/files/{*path}`): their names and values, in the pattern's order. A request whose path
/// does not match the pattern is not cached (pair it with
/// [`request::path`](crate::predicate::request::path) in `cache_if`, or use a closure for
/// several shapes).
///
/// ```
/// use layercake::{CacheLayer, Moka, layer::key::PathParams};
///
/// let layer = CacheLayer::builder(Moka::default())
///     .key(PathParams::new("/users/{id}/avatar"))
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[derive(Debug, Clone)]
pub struct PathParams(PathPattern);

impl PathParams {
    /// Keys on the parameters of `pattern`.
    ///
    /// # Panics
    ///
    /// When `pattern` is not a valid route; see [`try_new`](Self::try_new).
    ///
    /// ```
    /// let params = layercake::layer::key::PathParams::new("/teams/{team}/users/{id}");
    /// # drop(params);
    /// ```
    pub fn new(pattern: &str) -> Self {
        match Self::try_new(pattern) {
            Ok(params) => params,
            Err(error) => panic!("{error}"),
        }
    }

    /// Keys on the parameters of `pattern`, or says why it is not a valid route.
    ///
    /// ```
    /// use layercake::layer::key::PathParams;
    ///
    /// assert!(PathParams::try_new("/users/{id}").is_ok());
    /// assert!(PathParams::try_new("/users/{id").is_err());
    /// ```
    pub fn try_new(pattern: &str) -> Result<Self, PatternError> {
        paths([pattern]).map(PathParams)
    }
}

impl KeyExtractor for PathParams {
    type Body = NoBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        let Some(params) = self.0.at(request.uri().path()) else {
            return false;
        };
        params.len().push_to(key);
        for (name, value) in params.iter() {
            key.push(name).push(value);
        }
        true
    }
}

/// Which names a [`Query`] keeps.
#[derive(Debug, Clone)]
enum Select {
    All,
    Only(Box<[Name]>),
    Except(Box<[Name]>),
}

/// A name, or with `prefix` the start of names (written `utm_*`).
#[derive(Debug, Clone)]
struct Name {
    bytes: Box<[u8]>,
    prefix: bool,
}

impl Select {
    fn names<T: AsRef<str>>(names: impl IntoIterator<Item = T>) -> Box<[Name]> {
        names
            .into_iter()
            .map(|name| {
                let name = name.as_ref();
                match name.strip_suffix('*') {
                    Some(prefix) => Name {
                        bytes: prefix.as_bytes().into(),
                        prefix: true,
                    },
                    None => Name {
                        bytes: name.as_bytes().into(),
                        prefix: false,
                    },
                }
            })
            .collect()
    }

    fn keeps(&self, name: &[u8]) -> bool {
        let listed = |names: &[Name]| {
            names.iter().any(|n| {
                if n.prefix {
                    name.starts_with(&n.bytes)
                } else {
                    *n.bytes == *name
                }
            })
        };
        match self {
            Select::All => true,
            Select::Only(names) => listed(names),
            Select::Except(names) => !listed(names),
        }
    }
}

/// Keys on query parameters, normalised: percent-decoded (`+` as a space) and ordered by name
/// (the values of a repeated name keep their order), so `?b=2&a=1` and `?a=1&b=%32` share an
/// entry. All of them, [only](Self::only) some, or all [except](Self::except) some; a name
/// ending in `*` is a prefix (`utm_*`). The query is all this adds: pair it with [`Path`](super::Path).
///
/// ```
/// use layercake::{CacheLayer, Moka, layer::{Path, key::Query}};
///
/// // One entry per page, whatever campaign parameters the link carried.
/// let layer = CacheLayer::builder(Moka::default())
///     .key((Path, Query::except(["utm_*", "fbclid", "gclid"])))
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[derive(Debug, Clone)]
pub struct Query(Select);

impl Query {
    /// Every parameter.
    ///
    /// ```
    /// let every = layercake::layer::key::Query::all();
    /// # drop(every);
    /// ```
    pub fn all() -> Self {
        Query(Select::All)
    }

    /// Only the parameters named (or prefixed, `name*`) in `names`.
    ///
    /// ```
    /// use layercake::layer::key::Query;
    /// let paging = Query::only(["page", "per_page"]);
    /// # drop(paging);
    /// ```
    pub fn only<T: AsRef<str>>(names: impl IntoIterator<Item = T>) -> Self {
        Query(Select::Only(Select::names(names)))
    }

    /// Every parameter but those named (or prefixed, `name*`) in `names`.
    ///
    /// ```
    /// use layercake::layer::key::Query;
    /// let no_tracking = Query::except(["utm_*"]);
    /// # drop(no_tracking);
    /// ```
    pub fn except<T: AsRef<str>>(names: impl IntoIterator<Item = T>) -> Self {
        Query(Select::Except(Select::names(names)))
    }
}

impl Query {
    /// The common case in one pass: a query without escapes whose kept parameters come in
    /// order, each pushed as it is written. `false` (with pairs pushed) when it is not that
    /// case.
    fn push_plain(&self, query: &[u8], key: &mut KeyBuilder) -> bool {
        let mut previous: &[u8] = &[];
        let mut rest = query;
        while !rest.is_empty() {
            let (mut end, mut equals) = (rest.len(), None);
            for (i, byte) in rest.iter().enumerate() {
                match byte {
                    b'&' => {
                        end = i;
                        break;
                    }
                    b'=' if equals.is_none() => equals = Some(i),
                    b'%' | b'+' => return false,
                    _ => {}
                }
            }
            let pair = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            if pair.is_empty() {
                continue;
            }
            let name = equals.map_or(pair, |at| &pair[..at]);
            if !self.0.keeps(name) {
                continue;
            }
            if name < previous {
                return false;
            }
            // Without escapes, a name holds neither `%` nor `=`: the pair is its own part.
            match equals {
                Some(_) => key.push(pair),
                None => key.push_concat([pair, b"="]),
            };
            previous = name;
        }
        true
    }
}

/// One parameter as a key part: `name=value`, with `%` and `=` escaped in the name, so that the
/// first `=` ends it (what a query without escapes already is).
fn pair_part(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut part = Vec::with_capacity(name.len() + value.len() + 1);
    for byte in name {
        match byte {
            b'%' => part.extend_from_slice(b"%25"),
            b'=' => part.extend_from_slice(b"%3D"),
            other => part.push(*other),
        }
    }
    part.push(b'=');
    part.extend_from_slice(value);
    part
}

impl KeyExtractor for Query {
    type Body = NoBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        let query = request.uri().query().unwrap_or_default();
        // One part per parameter, `name=value` (never empty), and an empty part to end the
        // list, so the parts that follow can never be read as a parameter.
        let start = key.len();
        if self.push_plain(query.as_bytes(), key) {
            key.push(b"");
            return true;
        }
        // Escapes to decode, or parameters out of order: decoded, then sorted.
        key.truncate(start);
        let mut pairs: Vec<_> = raw_query_pairs(query)
            .map(|(name, value)| (decode_component(name), value))
            .filter(|(name, _)| self.0.keeps(name))
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in pairs {
            key.push(pair_part(&name, &decode_component(value)));
        }
        key.push(b"");
        true
    }
}

/// Keys on every request header whose name starts with a prefix (`x-tenant-`): names and
/// values, ordered by name.
///
/// ```
/// use layercake::{CacheLayer, Moka, layer::{PathAndQuery, key::HeaderPrefix}};
///
/// let layer = CacheLayer::builder(Moka::default())
///     .key((PathAndQuery, HeaderPrefix::new("x-feature-")))
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[derive(Debug, Clone)]
pub struct HeaderPrefix(Box<str>);

impl HeaderPrefix {
    /// Keys on the headers whose names start with `prefix` (case-insensitive).
    ///
    /// ```
    /// let tenant = layercake::layer::key::HeaderPrefix::new("x-tenant-");
    /// # drop(tenant);
    /// ```
    pub fn new(prefix: &str) -> Self {
        HeaderPrefix(prefix.to_ascii_lowercase().into())
    }
}

impl KeyExtractor for HeaderPrefix {
    type Body = NoBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        let mut found: Vec<_> = request
            .headers()
            .iter()
            .filter(|(name, _)| name.as_str().starts_with(&*self.0))
            .collect();
        found.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        found.len().push_to(key);
        for (name, value) in found {
            key.push(name.as_str()).push(value.as_bytes());
        }
        true
    }
}

/// Keys on the whole request body, byte for byte (`POST` search and query APIs). Reads the
/// body; a request whose body is over the
/// [limit](crate::layer::CacheLayerBuilder::max_request_body_size) is not cached.
///
/// ```
/// use http::Method;
/// use layercake::{CacheLayer, Moka, layer::{Path, key::WholeBody}};
/// use layercake::predicate::{request, RequestPredicate};
///
/// let layer = CacheLayer::builder(Moka::default())
///     .methods([Method::GET, Method::HEAD, Method::POST])
///     .cache_if(request::method(Method::POST).not().or(request::path("/search")))
///     .key((Path, WholeBody))
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct WholeBody;

impl KeyExtractor for WholeBody {
    type Body = ReadsBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        request.body().is_some_and(|body| {
            key.push(body);
            true
        })
    }
}

/// Keys on the values at JSON pointers into a JSON request body (RFC 6901: `/query`,
/// `/variables`), each as compact JSON with object members ordered by name, so whitespace
/// and member order do not split entries (feature `json`). A pointer that finds nothing is a
/// value of its own; an empty body (a `GET`'s) is keyed as empty, so one layer serves both
/// `GET` routes and JSON `POST`s; any other body that is not JSON is not cached.
///
/// ```
/// use layercake::layer::key::JsonPointers;
///
/// let graphql = JsonPointers::new(["/query", "/variables", "/operationName"]);
/// # drop(graphql);
/// ```
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
#[derive(Debug, Clone)]
pub struct JsonPointers(Box<[Box<str>]>);

#[cfg(feature = "json")]
impl JsonPointers {
    /// Keys on the values at `pointers`, in this order.
    ///
    /// ```
    /// let search = layercake::layer::key::JsonPointers::new(["/q", "/filters"]);
    /// # drop(search);
    /// ```
    pub fn new<T: AsRef<str>>(pointers: impl IntoIterator<Item = T>) -> Self {
        JsonPointers(pointers.into_iter().map(|p| p.as_ref().into()).collect())
    }
}

#[cfg(feature = "json")]
impl KeyExtractor for JsonPointers {
    type Body = ReadsBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        let Some(body) = request.body() else {
            return false;
        };
        if body.is_empty() {
            key.push(b"");
            return true;
        }
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
            return false;
        };
        key.push(b"json");
        for pointer in &self.0 {
            // Any JSON text is at least one byte long: an empty part says "nothing there".
            match json.pointer(pointer).map(serde_json::to_vec) {
                Some(Ok(text)) => key.push(text),
                _ => key.push(b""),
            };
        }
        true
    }
}

/// Keys on the capture groups of a regex over the request body (feature `regex`); a body it
/// does not match is not cached. Without groups, the whole match.
///
/// ```
/// use layercake::layer::key::BodyCaptures;
///
/// let sku = BodyCaptures::new(regex::bytes::Regex::new(r#""sku"\s*:\s*"([^"]+)""#).unwrap());
/// # drop(sku);
/// ```
#[cfg(feature = "regex")]
#[cfg_attr(docsrs, doc(cfg(feature = "regex")))]
#[derive(Debug, Clone)]
pub struct BodyCaptures(regex::bytes::Regex);

#[cfg(feature = "regex")]
impl BodyCaptures {
    /// Keys on the captures of `regex`.
    ///
    /// ```
    /// let id = layercake::layer::key::BodyCaptures::new(regex::bytes::Regex::new(r"id=(\d+)").unwrap());
    /// # drop(id);
    /// ```
    pub fn new(regex: regex::bytes::Regex) -> Self {
        BodyCaptures(regex)
    }
}

#[cfg(feature = "regex")]
impl KeyExtractor for BodyCaptures {
    type Body = ReadsBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        let Some(captures) = request.body().and_then(|body| self.0.captures(body)) else {
            return false;
        };
        let groups = captures.len();
        let first = usize::from(groups > 1);
        for group in captures.iter().skip(first) {
            // A group that took part is marked present, so an empty match is not an absence.
            match group {
                Some(found) => key.push_concat([b"\x01", found.as_bytes()]),
                None => key.push(b""),
            };
        }
        true
    }
}

/// Lowercases the parts another extractor adds (Unicode-aware for text, ASCII otherwise): for
/// case-insensitive inputs such as email addresses or product codes.
///
/// ```
/// use layercake::{CacheLayer, Moka, layer::{Path, key::Lowercase}};
///
/// // `/Users/ADA` and `/users/ada` share an entry.
/// let layer = CacheLayer::builder(Moka::default()).key(Lowercase(Path)).build().unwrap();
/// # drop(layer);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Lowercase<E>(pub E);

impl<E: KeyExtractor> KeyExtractor for Lowercase<E> {
    type Body = E::Body;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        let mut inner = KeyBuilder::default();
        if !self.0.extract(request, &mut inner) {
            return false;
        }
        for part in inner.parts() {
            match std::str::from_utf8(part) {
                Ok(text) => key.push(text.to_lowercase()),
                Err(_) => key.push(part.to_ascii_lowercase()),
            };
        }
        true
    }
}

/// Replaces the parts another extractor adds by their SHA-256 digest (feature `sha2`): for
/// inputs that must not appear in readable keys (a store's key names, the admin API), such as
/// an API token, or that are long. Two inputs share an entry only if SHA-256 collides.
///
/// ```
/// use http::header::AUTHORIZATION;
/// use layercake::{CacheLayer, Moka, layer::{Headers, PathAndQuery, key::Hashed}};
///
/// // One entry per caller, without the token in the key.
/// let layer = CacheLayer::builder(Moka::default())
///     .key((PathAndQuery, Hashed(Headers::new([AUTHORIZATION]))))
///     .allow_authorization(true)
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[cfg(feature = "sha2")]
#[cfg_attr(docsrs, doc(cfg(feature = "sha2")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct Hashed<E>(pub E);

#[cfg(feature = "sha2")]
impl<E: KeyExtractor> KeyExtractor for Hashed<E> {
    type Body = E::Body;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        use sha2::Digest;
        let mut inner = KeyBuilder::default();
        if !self.0.extract(request, &mut inner) {
            return false;
        }
        key.push(sha2::Sha256::digest(inner.encoded()));
        true
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use layercake_backends::Key;

    use super::*;

    fn key_of(extractor: &impl KeyExtractor, uri: &str, body: Option<&[u8]>) -> Option<Key> {
        let (head, ()) = http::Request::get(uri)
            .header("x-t-b", "2")
            .header("x-t-a", "1")
            .header("x-other", "3")
            .body(())
            .unwrap()
            .into_parts();
        let body = body.map(Bytes::copy_from_slice);
        let mut key = Key::builder();
        extractor
            .extract(&CacheRequest::new(&head, body.as_ref()), &mut key)
            .then(|| key.build())
    }

    #[test]
    fn path_params_in_pattern_order_or_no_key() {
        let params = PathParams::new("/users/{id}/posts/{post}");
        let key = key_of(&params, "/users/7/posts/9", None).unwrap();
        assert_eq!(key.to_string(), "2:id:7:post:9");
        assert_eq!(key_of(&params, "/users/7", None), None);
        let rest = key_of(&PathParams::new("/f/{*path}"), "/f/a/b.txt", None).unwrap();
        assert_eq!(rest.to_string(), "1:path:a/b.txt");
    }

    #[test]
    fn query_parameters_are_normalised_and_selected() {
        let all = Query::all();
        let sorted = key_of(&all, "/?a=1&b=2", None);
        assert_eq!(sorted, key_of(&all, "/?b=%32&a=1", None));
        assert_eq!(sorted.unwrap().to_string(), "a=1:b=2:");
        assert_eq!(key_of(&all, "/?flag", None), key_of(&all, "/?flag=", None));
        assert_ne!(
            key_of(&all, "/?a%3Db=c", None),
            key_of(&all, "/?a=b%3Dc", None),
            "an `=` in a name is not the one that ends it"
        );
        assert_ne!(
            key_of(&all, "/?t=x&t=y", None),
            key_of(&all, "/?t=y&t=x", None),
            "repeated values keep their order"
        );
        assert_eq!(key_of(&all, "/", None), key_of(&all, "/?", None));
        assert_ne!(
            key_of(&all, "/?q=%FF", None),
            key_of(&all, "/?q=%FE", None),
            "bytes that are not UTF-8 stay apart"
        );
        assert_eq!(
            key_of(&all, "/?q=a+b", None),
            key_of(&all, "/?q=a%20b", None)
        );
        let page = Query::only(["page"]);
        assert_eq!(
            key_of(&page, "/?utm_source=a&page=2", None),
            key_of(&page, "/?page=2&utm_medium=b", None)
        );
        let clean = Query::except(["utm_*"]);
        assert_eq!(
            key_of(&clean, "/?q=x&utm_source=a", None),
            key_of(&clean, "/?q=x", None)
        );
        assert_ne!(key_of(&clean, "/?q=x", None), key_of(&clean, "/?q=y", None));
    }

    #[test]
    fn header_prefixes_in_name_order() {
        let key = key_of(&HeaderPrefix::new("X-T-"), "/", None).unwrap();
        assert_eq!(key.to_string(), "2:x-t-a:1:x-t-b:2");
    }

    #[test]
    fn body_extractors_need_the_body() {
        assert_eq!(key_of(&WholeBody, "/", None), None);
        assert_ne!(
            key_of(&WholeBody, "/", Some(b"a")),
            key_of(&WholeBody, "/", Some(b"b"))
        );
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_pointers_ignore_layout_not_values() {
        let graphql = JsonPointers::new(["/query", "/variables"]);
        let a = key_of(
            &graphql,
            "/",
            Some(br#"{"query":"q","variables":{"a":1,"b":2}}"#),
        );
        let b = key_of(
            &graphql,
            "/",
            Some(br#"{ "variables": {"b":2, "a":1}, "query": "q", "extra": 1 }"#),
        );
        assert_eq!(a, b);
        let c = key_of(
            &graphql,
            "/",
            Some(br#"{"query":"q","variables":{"a":"1"}}"#),
        );
        assert_ne!(a, c);
        let absent = key_of(&graphql, "/", Some(br#"{"query":"q"}"#));
        let null = key_of(&graphql, "/", Some(br#"{"query":"q","variables":null}"#));
        assert_ne!(absent, null);
        assert_eq!(key_of(&graphql, "/", Some(b"not json")), None);
        let empty = key_of(&graphql, "/", Some(b"")).expect("an empty body is keyed");
        assert_ne!(Some(empty), key_of(&graphql, "/", Some(b"{}")));
    }

    #[cfg(feature = "regex")]
    #[test]
    fn captures_mark_empty_and_absent_groups_apart() {
        let re = regex::bytes::Regex::new(r"id=(\d*)(;v=(\d+))?").unwrap();
        let captures = BodyCaptures::new(re);
        let empty = key_of(&captures, "/", Some(b"id=;v=1"));
        let absent = key_of(&captures, "/", Some(b"id="));
        assert_ne!(empty, absent);
        assert_eq!(key_of(&captures, "/", Some(b"nothing")), None);
    }

    #[test]
    fn lowercase_transforms_each_part() {
        let lower = Lowercase(super::super::Path);
        assert_eq!(
            key_of(&lower, "/Users/ADA", None),
            key_of(&lower, "/users/ada", None)
        );
    }

    #[cfg(feature = "sha2")]
    #[test]
    fn hashed_parts_hide_the_input() {
        let hashed = Hashed(Query::all());
        let key = key_of(&hashed, "/?token=secret", None).unwrap();
        assert!(!key.readable().contains("secret"));
        assert_ne!(key, key_of(&hashed, "/?token=other", None).unwrap());
    }
}
