//! What the layer stores for a response, and the rules for whether it may be stored.

use std::{sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header, response};
use http_body::SizeHint;

use layercake_backends::Timestamp;

use super::{
    cache_control::{RequestDirectives, ResponseDirectives},
    freshness::{Exchange, has_validator, heuristically_cacheable, origin_lifetime},
    status::CACHE_STATUS,
};
use crate::engine::Policy;

/// A response as the layer stores it: status, the stored headers and the whole body.
///
/// The body is `Bytes`: serving it is a reference-count increment, not a copy. Stored headers
/// exclude hop-by-hop headers and, when the layer has a header allowlist, every header not on
/// it; `Content-Length` is always the stored body's length. The upstream's `Age` and
/// `Cache-Status` are not kept: every hit adds its own, to a copy of the map made with room
/// for them (so the stored map needs no slots for them, and the copy never grows).
///
/// ```
/// use bytes::Bytes;
/// use http::{HeaderMap, StatusCode};
/// use layercake::layer::CachedResponse;
///
/// let cached = CachedResponse::new(StatusCode::OK, HeaderMap::new(), Bytes::from_static(b"hi"));
/// assert_eq!(cached.body(), &Bytes::from_static(b"hi"));
/// ```
#[derive(Debug, Clone)]
pub struct CachedResponse {
    status: StatusCode,
    headers: StoredHeaders,
    body: Bytes,
    vary: Option<Arc<Vary>>,
}

/// How the responses stored for one URL vary with the request (RFC 9111 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Vary {
    /// The entry under the URL's own key, when its responses carry `Vary`: the request headers
    /// they vary on (lowercase, sorted, without repeats), and the generation whose keys the
    /// variants are stored under (a new generation makes every older variant unreachable).
    Variants {
        names: Arc<[HeaderName]>,
        generation: u64,
    },
    /// A response stored with `Vary`: the normalized values of the headers it names, as the
    /// request it answered had them.
    Selected { selection: Box<[u8]> },
}

impl CachedResponse {
    /// A stored response.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{HeaderMap, StatusCode};
    /// use layercake::layer::CachedResponse;
    /// let stored = CachedResponse::new(StatusCode::OK, HeaderMap::new(), Bytes::from_static(b"page"));
    /// assert_eq!(stored.body(), "page");
    /// ```
    ///
    /// The header values are copied into one buffer: a value parsed by hyper is a slice of its
    /// connection's read buffer, which a stored copy must not keep alive (the store's budget
    /// would count the value, and the buffer would stay). When nothing else holds the body's
    /// buffer, the values' bytes go after the body in it (the layer leaves room for them);
    /// else into a buffer of their own. The body is kept as it is given (the layer copies a
    /// body read in one piece before it stores it).
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        let needed = value_bytes(&headers);
        let (headers, body) = match body.try_into_mut() {
            Ok(buffer) if buffer.capacity() - buffer.len() >= needed => {
                let len = buffer.len();
                let (headers, mut body) = StoredHeaders::packed(headers, buffer);
                body.truncate(len);
                (headers, body)
            }
            Ok(buffer) => (
                StoredHeaders::packed_apart(headers, needed),
                buffer.freeze(),
            ),
            Err(body) => (StoredHeaders::packed_apart(headers, needed), body),
        };
        CachedResponse {
            status,
            headers,
            body,
            vary: None,
        }
    }

    /// A response decoded from a byte tier's entry: the header values packed into a buffer of
    /// their own, the body kept as it is (never copied again to make room for them).
    #[cfg(feature = "codec")]
    pub(crate) fn from_decoded(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        let needed = value_bytes(&headers);
        CachedResponse {
            status,
            headers: StoredHeaders::packed_apart(headers, needed),
            body,
            vary: None,
        }
    }

    /// With how it varies.
    pub(crate) fn with_vary(mut self, vary: Option<Arc<Vary>>) -> Self {
        self.vary = vary;
        self
    }

    /// How it varies, if it does.
    pub(crate) fn vary(&self) -> Option<&Vary> {
        self.vary.as_deref()
    }

    /// How it varies, shared.
    pub(crate) fn vary_arc(&self) -> Option<Arc<Vary>> {
        self.vary.clone()
    }

    /// The entry that says where a URL's variants are: no response of its own.
    pub(crate) fn variants(names: Arc<[HeaderName]>, generation: u64) -> Self {
        CachedResponse::new(StatusCode::OK, HeaderMap::new(), Bytes::new())
            .with_vary(Some(Arc::new(Vary::Variants { names, generation })))
    }

    /// The status code.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{HeaderMap, StatusCode};
    /// use layercake::layer::CachedResponse;
    /// let stored = CachedResponse::new(StatusCode::OK, HeaderMap::new(), Bytes::from_static(b"page"));
    /// assert_eq!(stored.status(), StatusCode::OK);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stored headers.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{HeaderMap, StatusCode};
    /// use layercake::layer::CachedResponse;
    /// let stored = CachedResponse::new(StatusCode::OK, HeaderMap::new(), Bytes::from_static(b"page"));
    /// assert!(stored.headers().is_empty());
    /// ```
    pub fn headers(&self) -> &StoredHeaders {
        &self.headers
    }

    /// The body.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{HeaderMap, StatusCode};
    /// use layercake::layer::CachedResponse;
    /// let stored = CachedResponse::new(StatusCode::OK, HeaderMap::new(), Bytes::from_static(b"page"));
    /// assert_eq!(stored.body().len(), 4);
    /// ```
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// About how many bytes the response occupies in memory: itself, its header map (every
    /// slot it has room for, and the bytes of the names and values), how it varies, and the
    /// body.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{HeaderMap, StatusCode};
    /// use layercake::layer::CachedResponse;
    /// let stored = CachedResponse::new(StatusCode::OK, HeaderMap::new(), Bytes::from_static(b"page"));
    /// assert!(stored.weight() >= 4);
    /// ```
    pub fn weight(&self) -> usize {
        let vary = self.vary.as_deref().map_or(0, |vary| {
            ARC_HEADER
                + std::mem::size_of::<Vary>()
                + match vary {
                    Vary::Selected { selection } => selection.len(),
                    Vary::Variants { names, .. } => {
                        ARC_HEADER
                            + names
                                .iter()
                                .map(|n| std::mem::size_of::<HeaderName>() + n.as_str().len())
                                .sum::<usize>()
                    }
                }
        });
        std::mem::size_of::<Self>() + self.headers.heap_size() + vary + self.body.len()
    }
}

/// The counts in front of an `Arc`'s value.
const ARC_HEADER: usize = 2 * std::mem::size_of::<usize>();

/// The shared count `bytes` gives a buffer once it is sliced or cloned.
const BUFFER_HEADER: usize = 3 * std::mem::size_of::<usize>();

impl crate::GetSize for CachedResponse {
    fn get_heap_size_with_tracker<T: get_size2::GetSizeTracker>(&self, tracker: T) -> (usize, T) {
        (self.weight() - std::mem::size_of::<Self>(), tracker)
    }
}

/// A hit's own map of the stored headers, with room for the two every hit adds (`Age`,
/// `Cache-Status`): two allocations, as a clone of a map would take.
pub(crate) fn hit_headers(stored: &StoredHeaders) -> HeaderMap {
    stored.header_map_with_room(2)
}

/// The headers of a stored response: its fields in order, compactly.
///
/// A `HeaderMap` keeps an index and spare room for fields to come; a stored response gets no
/// more fields, and every hit builds a map of its own anyway (with room for `Age` and
/// `Cache-Status`). So the store keeps, per field, its value and the number of its name: the
/// standard names (those `http` defines) by their place in a table, any other by its place in
/// a list of the response's own names. The values' bytes are in one buffer, shared by every
/// value (the stored body's own, when the layer stores it: see [`CachedResponse::new`]), so a
/// hit clones each value as it clones a `HeaderValue` (a reference count) and adds nothing to
/// the store. Lookups scan the fields (a stored response has a handful).
///
/// ```
/// use bytes::Bytes;
/// use http::{HeaderMap, StatusCode, header};
/// use layercake::layer::CachedResponse;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
/// headers.append(header::VARY, "accept".parse().unwrap());
/// headers.append(header::VARY, "accept-language".parse().unwrap());
/// let stored = CachedResponse::new(StatusCode::OK, headers.clone(), Bytes::new());
/// assert_eq!(stored.headers().get(header::CONTENT_TYPE).unwrap(), "text/html");
/// assert_eq!(stored.headers().get_all("vary").count(), 2);
/// assert_eq!(stored.headers().to_header_map(), headers);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredHeaders {
    fields: Box<[Field]>,
    /// The names not in [`STANDARD`], each once, in order of first use.
    custom: Box<[HeaderName]>,
}

/// A stored field: its value, and its name's number (below `STANDARD.len()` a standard name,
/// else `custom[name - STANDARD.len()]`).
#[derive(Clone, PartialEq, Eq)]
struct Field {
    value: HeaderValue,
    name: u32,
}

/// The header names `http` defines, sorted by name: a stored field names one by its place here.
/// (`Cache-Status` and `CDN-Cache-Control` are not here: the oldest `http` this crate supports
/// does not define them; stored, they are names of the response's own.)
static STANDARD: [HeaderName; 79] = [
    header::ACCEPT,
    header::ACCEPT_CHARSET,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::ACCEPT_RANGES,
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
    header::ACCESS_CONTROL_REQUEST_HEADERS,
    header::ACCESS_CONTROL_REQUEST_METHOD,
    header::AGE,
    header::ALLOW,
    header::ALT_SVC,
    header::AUTHORIZATION,
    header::CACHE_CONTROL,
    header::CONNECTION,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LENGTH,
    header::CONTENT_LOCATION,
    header::CONTENT_RANGE,
    header::CONTENT_SECURITY_POLICY,
    header::CONTENT_SECURITY_POLICY_REPORT_ONLY,
    header::CONTENT_TYPE,
    header::COOKIE,
    header::DATE,
    header::DNT,
    header::ETAG,
    header::EXPECT,
    header::EXPIRES,
    header::FORWARDED,
    header::FROM,
    header::HOST,
    header::IF_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_NONE_MATCH,
    header::IF_RANGE,
    header::IF_UNMODIFIED_SINCE,
    header::LAST_MODIFIED,
    header::LINK,
    header::LOCATION,
    header::MAX_FORWARDS,
    header::ORIGIN,
    header::PRAGMA,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::PUBLIC_KEY_PINS,
    header::PUBLIC_KEY_PINS_REPORT_ONLY,
    header::RANGE,
    header::REFERER,
    header::REFERRER_POLICY,
    header::REFRESH,
    header::RETRY_AFTER,
    header::SEC_WEBSOCKET_ACCEPT,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_VERSION,
    header::SERVER,
    header::SET_COOKIE,
    header::STRICT_TRANSPORT_SECURITY,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::UPGRADE_INSECURE_REQUESTS,
    header::USER_AGENT,
    header::VARY,
    header::VIA,
    header::WARNING,
    header::WWW_AUTHENTICATE,
    header::X_CONTENT_TYPE_OPTIONS,
    header::X_DNS_PREFETCH_CONTROL,
    header::X_FRAME_OPTIONS,
    header::X_XSS_PROTECTION,
];

/// The place of `name` in [`STANDARD`] (a `match`: a few comparisons of lengths and bytes; a
/// test checks that it agrees with the table).
fn standard(name: &HeaderName) -> Option<u32> {
    Some(match name.as_str() {
        "accept" => 0,
        "accept-charset" => 1,
        "accept-encoding" => 2,
        "accept-language" => 3,
        "accept-ranges" => 4,
        "access-control-allow-credentials" => 5,
        "access-control-allow-headers" => 6,
        "access-control-allow-methods" => 7,
        "access-control-allow-origin" => 8,
        "access-control-expose-headers" => 9,
        "access-control-max-age" => 10,
        "access-control-request-headers" => 11,
        "access-control-request-method" => 12,
        "age" => 13,
        "allow" => 14,
        "alt-svc" => 15,
        "authorization" => 16,
        "cache-control" => 17,
        "connection" => 18,
        "content-disposition" => 19,
        "content-encoding" => 20,
        "content-language" => 21,
        "content-length" => 22,
        "content-location" => 23,
        "content-range" => 24,
        "content-security-policy" => 25,
        "content-security-policy-report-only" => 26,
        "content-type" => 27,
        "cookie" => 28,
        "date" => 29,
        "dnt" => 30,
        "etag" => 31,
        "expect" => 32,
        "expires" => 33,
        "forwarded" => 34,
        "from" => 35,
        "host" => 36,
        "if-match" => 37,
        "if-modified-since" => 38,
        "if-none-match" => 39,
        "if-range" => 40,
        "if-unmodified-since" => 41,
        "last-modified" => 42,
        "link" => 43,
        "location" => 44,
        "max-forwards" => 45,
        "origin" => 46,
        "pragma" => 47,
        "proxy-authenticate" => 48,
        "proxy-authorization" => 49,
        "public-key-pins" => 50,
        "public-key-pins-report-only" => 51,
        "range" => 52,
        "referer" => 53,
        "referrer-policy" => 54,
        "refresh" => 55,
        "retry-after" => 56,
        "sec-websocket-accept" => 57,
        "sec-websocket-extensions" => 58,
        "sec-websocket-key" => 59,
        "sec-websocket-protocol" => 60,
        "sec-websocket-version" => 61,
        "server" => 62,
        "set-cookie" => 63,
        "strict-transport-security" => 64,
        "te" => 65,
        "trailer" => 66,
        "transfer-encoding" => 67,
        "upgrade" => 68,
        "upgrade-insecure-requests" => 69,
        "user-agent" => 70,
        "vary" => 71,
        "via" => 72,
        "warning" => 73,
        "www-authenticate" => 74,
        "x-content-type-options" => 75,
        "x-dns-prefetch-control" => 76,
        "x-frame-options" => 77,
        "x-xss-protection" => 78,
        _ => return None,
    })
}

impl StoredHeaders {
    /// The first value of `name` (any case), if any.
    ///
    /// ```
    /// use layercake::layer::StoredHeaders;
    /// let mut map = http::HeaderMap::new();
    /// map.insert(http::header::ETAG, "\"v1\"".parse().unwrap());
    /// let stored = StoredHeaders::from(&map);
    /// assert_eq!(stored.get("ETag").unwrap(), "\"v1\"");
    /// ```
    pub fn get(&self, name: impl AsRef<str>) -> Option<&HeaderValue> {
        self.get_all(name).next()
    }

    /// Every value of `name` (any case), in order.
    ///
    /// ```
    /// use layercake::layer::StoredHeaders;
    /// let stored = StoredHeaders::from(&http::HeaderMap::new());
    /// assert_eq!(stored.get_all(http::header::VARY).count(), 0);
    /// ```
    pub fn get_all(&self, name: impl AsRef<str>) -> impl Iterator<Item = &HeaderValue> {
        let wanted = HeaderName::from_bytes(name.as_ref().as_bytes()).ok();
        self.iter()
            .filter(move |(name, _)| Some(*name) == wanted.as_ref())
            .map(|(_, value)| value)
    }

    /// Whether `name` (any case) is there.
    ///
    /// ```
    /// use layercake::layer::StoredHeaders;
    /// let stored = StoredHeaders::from(&http::HeaderMap::new());
    /// assert!(!stored.contains_key("etag"));
    /// ```
    pub fn contains_key(&self, name: impl AsRef<str>) -> bool {
        self.get(name).is_some()
    }

    /// The fields, in order.
    ///
    /// ```
    /// use layercake::layer::StoredHeaders;
    /// let stored = StoredHeaders::from(&http::HeaderMap::new());
    /// assert_eq!(stored.iter().count(), 0);
    /// ```
    pub fn iter(&self) -> StoredHeadersIter<'_> {
        StoredHeadersIter {
            fields: self.fields.iter(),
            custom: &self.custom,
        }
    }

    /// The names of the fields, in order (a name repeats for each of its values).
    ///
    /// ```
    /// use layercake::layer::StoredHeaders;
    /// let stored = StoredHeaders::from(&http::HeaderMap::new());
    /// assert_eq!(stored.keys().count(), 0);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &HeaderName> {
        self.iter().map(|(name, _)| name)
    }

    /// How many values there are.
    ///
    /// ```
    /// use layercake::layer::StoredHeaders;
    /// assert_eq!(StoredHeaders::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are none.
    ///
    /// ```
    /// use layercake::layer::StoredHeaders;
    /// assert!(StoredHeaders::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields as a `HeaderMap`.
    ///
    /// ```
    /// use layercake::layer::StoredHeaders;
    /// assert!(StoredHeaders::default().to_header_map().is_empty());
    /// ```
    pub fn to_header_map(&self) -> HeaderMap {
        self.header_map_with_room(0)
    }

    /// The fields as a `HeaderMap` made with room for `extra` more.
    fn header_map_with_room(&self, extra: usize) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.len() + extra);
        for (name, value) in self {
            map.append(name.clone(), value.clone());
        }
        map
    }

    /// About how many bytes the fields occupy on the heap: the fields, the names of the
    /// response's own and the values' bytes (with the shared count of their buffer).
    fn heap_size(&self) -> usize {
        let values: usize = self.fields.iter().map(|field| field.value.len()).sum();
        let custom: usize = self
            .custom
            .iter()
            .map(|name| std::mem::size_of::<HeaderName>() + name.as_str().len())
            .sum();
        let shared = if values > 0 { BUFFER_HEADER } else { 0 };
        self.fields.len() * std::mem::size_of::<Field>() + custom + values + shared
    }

    /// The `count` (or so) `fields`, in order, values as they are.
    fn of(count: usize, fields: impl Iterator<Item = (HeaderName, HeaderValue)>) -> Self {
        let mut custom: Vec<HeaderName> = Vec::new();
        let mut kept = Vec::with_capacity(count);
        kept.extend(fields.map(|(name, value)| {
            let name = standard(&name).unwrap_or_else(|| {
                // A map gives a name's values one after another: a repeated name is the last.
                if custom.last() != Some(&name) {
                    custom.push(name);
                }
                // As many names as fields at most: the number fits (the field has room for 32
                // bits at no cost: it is padding beside the value).
                u32::try_from(STANDARD.len() + custom.len() - 1).unwrap_or(u32::MAX)
            });
            Field { value, name }
        }));
        StoredHeaders {
            fields: kept.into_boxed_slice(),
            custom: custom.into_boxed_slice(),
        }
    }

    /// The fields of `map`, their values' bytes (`needed`: see [`value_bytes`]) copied into a
    /// buffer of their own.
    fn packed_apart(map: HeaderMap, needed: usize) -> Self {
        StoredHeaders::packed(map, BytesMut::with_capacity(needed)).0
    }

    /// The fields of `map`, their values' bytes copied into `buffer` (after what it holds; it
    /// has room for them) and the values made slices of it, as sensitive as they were (see
    /// [`CachedResponse::new`]); and the buffer, frozen.
    fn packed(map: HeaderMap, mut buffer: BytesMut) -> (Self, Bytes) {
        let start = buffer.len();
        for value in map.values() {
            buffer.extend_from_slice(value.as_bytes());
        }
        let buffer = buffer.freeze();
        let mut at = start;
        let headers = StoredHeaders::of(
            map.len(),
            fields(map).map(|(name, value)| {
                let bytes = buffer.slice(at..at + value.len());
                at += value.len();
                // The bytes were a value's: valid; should they not be, the value is kept as it was.
                let packed = match HeaderValue::from_maybe_shared(bytes) {
                    Ok(mut packed) => {
                        packed.set_sensitive(value.is_sensitive());
                        packed
                    }
                    Err(_) => value,
                };
                (name, packed)
            }),
        );
        (headers, buffer)
    }
}

/// The fields of [`StoredHeaders`], in order, as name and value: see [`StoredHeaders::iter`].
///
/// ```
/// use layercake::layer::StoredHeaders;
/// let mut map = http::HeaderMap::new();
/// map.insert("x-served-by", "edge-1".parse().unwrap());
/// let stored = StoredHeaders::from(&map);
/// let (name, value) = stored.iter().next().unwrap();
/// assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-served-by", "edge-1"));
/// ```
#[derive(Clone)]
pub struct StoredHeadersIter<'a> {
    fields: std::slice::Iter<'a, Field>,
    custom: &'a [HeaderName],
}

impl<'a> Iterator for StoredHeadersIter<'a> {
    type Item = (&'a HeaderName, &'a HeaderValue);

    fn next(&mut self) -> Option<Self::Item> {
        let field = self.fields.next()?;
        let at = usize::try_from(field.name).ok()?;
        let name = match STANDARD.get(at) {
            Some(name) => name,
            None => self.custom.get(at - STANDARD.len())?,
        };
        Some((name, &field.value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fields.size_hint()
    }
}

/// The bytes of `map`'s values, all told: the room [`StoredHeaders::packed`] needs.
fn value_bytes(map: &HeaderMap) -> usize {
    map.values().map(HeaderValue::len).sum()
}

/// The fields of `map`, in order, each with its name (a map's `into_iter` names a field only
/// where its name changes).
fn fields(map: HeaderMap) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    let mut name = None;
    map.into_iter().filter_map(move |(next, value)| {
        if next.is_some() {
            name = next;
        }
        Some((name.clone()?, value))
    })
}

impl From<HeaderMap> for StoredHeaders {
    fn from(map: HeaderMap) -> Self {
        StoredHeaders::of(map.len(), fields(map))
    }
}

impl From<&HeaderMap> for StoredHeaders {
    fn from(map: &HeaderMap) -> Self {
        let fields = map
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()));
        StoredHeaders::of(map.len(), fields)
    }
}

impl FromIterator<(HeaderName, HeaderValue)> for StoredHeaders {
    fn from_iter<I: IntoIterator<Item = (HeaderName, HeaderValue)>>(fields: I) -> Self {
        let fields = fields.into_iter();
        StoredHeaders::of(fields.size_hint().0, fields)
    }
}

impl<'a> IntoIterator for &'a StoredHeaders {
    type Item = (&'a HeaderName, &'a HeaderValue);
    type IntoIter = StoredHeadersIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::fmt::Debug for StoredHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Header lookups that the RFC 9111 code makes on arriving requests and responses (a
/// `HeaderMap`) and on stored responses ([`StoredHeaders`]) alike.
pub(crate) trait Fields {
    /// The first value of `name`.
    fn field(&self, name: &HeaderName) -> Option<&HeaderValue>;
    /// Every value of `name`, in order.
    fn fields<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a HeaderValue>;
}

impl Fields for HeaderMap {
    fn field(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.get(name)
    }

    fn fields<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a HeaderValue> {
        self.get_all(name).iter()
    }
}

impl Fields for StoredHeaders {
    fn field(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
    }

    fn fields<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a HeaderValue> {
        self.iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, value)| value)
    }
}

/// A set of status codes, as a bitmap: membership is a shift and a mask.
///
/// `http::StatusCode` holds any code from 100 to 999, so the map has a bit for each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusSet([u64; STATUS_WORDS]);

/// Words of 64 bits enough for a bit per status code up to 999.
const STATUS_WORDS: usize = 1000usize.div_ceil(64);

impl StatusSet {
    pub(crate) fn new(statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        let mut bits = [0u64; STATUS_WORDS];
        for status in statuses {
            let code = usize::from(status.as_u16());
            bits[code / 64] |= 1 << (code % 64);
        }
        StatusSet(bits)
    }

    pub(crate) fn contains(&self, status: StatusCode) -> bool {
        let code = usize::from(status.as_u16());
        self.0[code / 64] & (1 << (code % 64)) != 0
    }
}

/// Whose freshness lifetime a stored response gets: the origin's or the layer's.
///
/// ```
/// use std::time::Duration;
/// use layercake::{CacheLayer, Moka, layer::CacheControl};
///
/// // In front of an origin whose Cache-Control says `max-age=5` for a page you know changes
/// // hourly, and that you want to keep for ten minutes whatever it says:
/// let layer = CacheLayer::builder(Moka::default())
///     .ttl(Duration::from_secs(600))
///     .cache_control(CacheControl::Override)
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[cfg_attr(
    feature = "config",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CacheControl {
    /// The origin's freshness information sets how long a response is fresh (RFC 9111
    /// §4.2.1): `s-maxage` (shared mode), `max-age`, `Expires` minus `Date`, or, for
    /// heuristically cacheable statuses (or `public`), a tenth of the time since
    /// `Last-Modified` (at most the layer's ttl); a response with such information is stored
    /// whatever its final status. The layer's ttl (or negative ttl, for error statuses) applies
    /// to responses that give none, of the heuristically cacheable statuses (RFC 9110 §15.1:
    /// 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501) or those in
    /// [`statuses`](super::CacheLayerBuilder::statuses).
    /// `no-cache` and `must-revalidate`, and RFC 5861's `stale-while-revalidate` and
    /// `stale-if-error`, are honoured. The right choice in front of origins you do not
    /// control, or that know their content best (a CDN-like cache, a reverse proxy). A response
    /// already stale on arrival is stored only if it has a validator to revalidate it with.
    #[default]
    Respect,
    /// The layer's ttl and stale settings apply whatever the origin says about freshness:
    /// `max-age`, `s-maxage`, `Expires`, `Last-Modified`, `Age`, `no-cache`,
    /// `must-revalidate` and RFC 5861's windows are ignored (`no-store`, `private` and the
    /// `Authorization` and `Set-Cookie` rules still hold). For origins you own that send no or
    /// wrong freshness information, when the cache's lifetime is your decision.
    Override,
    /// The origin's freshness information only, as a standards-conforming shared cache in
    /// front of any origin must (RFC 9111 §4.2): explicit lifetimes, and heuristic ones (a tenth
    /// of the time since `Last-Modified`, at most the layer's ttl) for heuristically cacheable
    /// statuses or responses marked `public`; a response without either is not stored, since
    /// nothing says it may be reused. The right choice for a reverse proxy or a CDN-like cache
    /// (`examples/reverse_proxy.rs`); [`Respect`](CacheControl::Respect) is for an
    /// application's own routes, which often say nothing of their freshness and rely on the
    /// layer's ttl.
    OriginOnly,
}

/// Which of RFC 9111's caches the layer is: shared by many users, or private to one.
///
/// ```
/// use layercake::{CacheLayer, Moka, layer::CacheMode};
///
/// // In front of an HTTP client of one user: `private` responses and requests with
/// // `Authorization` are that user's, and may be kept.
/// let layer = CacheLayer::builder(Moka::default())
///     .mode(CacheMode::Private)
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[cfg_attr(
    feature = "config",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CacheMode {
    /// A cache whose responses are served to many users: a reverse proxy, or a layer in front
    /// of a server's handlers. Never stores `Cache-Control: private` responses; stores a
    /// response to a request with `Authorization` only when the response is marked `public`,
    /// `s-maxage` or `must-revalidate` (and serves such a request only from such a response);
    /// reads `s-maxage` before `max-age`, and honours `proxy-revalidate`.
    #[default]
    Shared,
    /// A cache of one user, e.g. in front of an HTTP client: stores `private` responses and
    /// responses to requests with `Authorization`; ignores `s-maxage` and `proxy-revalidate`.
    Private,
}

/// Why a request or response was not stored; the `detail` of its `Cache-Status`.
pub(crate) type NotStored = &'static str;

/// The storage rules of a layer.
/// Whether the layer obeys the cache directives of the client's request; see
/// [`client_directives`](super::CacheLayerBuilder::client_directives).
///
/// ```
/// use layercake::{CacheLayer, Moka, layer::ClientDirectives};
/// let layer = CacheLayer::builder(Moka::default()).client_directives(ClientDirectives::Ignore).build().unwrap();
/// # drop(layer);
/// ```
#[cfg_attr(
    feature = "config",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientDirectives {
    /// Obeyed, as RFC 9111 asks (the default).
    #[default]
    Obey,
    /// Ignored: the request is answered as if it carried none.
    Ignore,
}

#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) methods: Vec<Method>,
    /// The statuses the user allows; `None`: any final status by its freshness (see
    /// [`Rules::response`]).
    pub(crate) statuses: Option<StatusSet>,
    pub(crate) error_statuses: StatusSet,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) min_body_size: usize,
    pub(crate) max_body_size: usize,
    /// The most bytes of a request body read for predicates and key extractors.
    pub(crate) max_request_body_size: usize,
    /// Whether the client's cache directives are obeyed (see [`ClientDirectives`]).
    pub(crate) obey_client: bool,
    pub(crate) header_allowlist: Option<Vec<HeaderName>>,
    pub(crate) allow_authorization: bool,
    pub(crate) allow_cookies: bool,
    pub(crate) ignored_cookies: Vec<Box<str>>,
    pub(crate) allow_set_cookie: bool,
    pub(crate) mode: CacheMode,
    pub(crate) cache_control: CacheControl,
    /// RFC 9213 targeted cache-control fields, most specific first (shared mode only).
    pub(crate) targeted: Vec<HeaderName>,
    /// This cache is the last hop the targeted fields are meant for: hits do not carry them.
    pub(crate) last_targeted_hop: bool,
    /// Which tags a stored response carries.
    pub(crate) tagging: super::tags::Tagging,
}

/// The header that targets CDNs and other shared caches (RFC 9213).
pub(crate) const CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");

/// What the layer reads of a request's headers, once, in one pass over their names.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestFacts {
    /// The request carries `Authorization`.
    pub(crate) authorization: bool,
    /// The request carries a `Cookie` the layer does not disregard (see
    /// [`Rules::ignored_cookies`]).
    pub(crate) cookie: bool,
    /// Its `Cache-Control` (or `Pragma`) directives, when it has any.
    pub(crate) directives: Option<RequestDirectives>,
    /// It has `If-None-Match` or `If-Modified-Since`.
    pub(crate) conditional: bool,
    /// It has `Range`.
    pub(crate) range: bool,
}

impl RequestFacts {
    /// What `rules` need to know of a request with `headers`.
    pub(crate) fn of(headers: &HeaderMap, rules: &Rules) -> Self {
        let mut facts = RequestFacts::default();
        let mut directives = false;
        for name in headers.keys() {
            if name == header::AUTHORIZATION {
                facts.authorization = true;
            } else if name == header::COOKIE {
                facts.cookie = rules.counts_cookies(headers);
            } else if name == header::CACHE_CONTROL || name == header::PRAGMA {
                directives = true;
            } else if name == header::IF_NONE_MATCH || name == header::IF_MODIFIED_SINCE {
                facts.conditional = true;
            } else if name == header::RANGE {
                facts.range = true;
            }
        }
        if directives && rules.obey_client {
            facts.directives = Some(RequestDirectives::parse(headers)).filter(|d| !d.is_empty());
        }
        facts
    }

    /// The request carries credentials: `Authorization`, or a `Cookie` that counts.
    pub(crate) fn credentials(&self) -> bool {
        self.authorization || self.cookie
    }

    /// The request says `no-store`: its response is not stored.
    pub(crate) fn no_store(&self) -> bool {
        self.directives.is_some_and(|d| d.no_store)
    }

    /// The request says `only-if-cached`.
    pub(crate) fn only_if_cached(&self) -> bool {
        self.directives.is_some_and(|d| d.only_if_cached)
    }
}

/// How long a response may be served: fresh for `ttl` from `stored_at` (when it was made,
/// which is its arrival minus its age), then stale for `stale`, and when upstream fails until
/// `stale_if_error` past its ttl; kept until `retention` past its ttl to be revalidated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetime {
    pub(crate) stored_at: Timestamp,
    pub(crate) ttl: Duration,
    pub(crate) retention: Duration,
    pub(crate) stale: Duration,
    pub(crate) stale_if_error: Duration,
}

impl Lifetime {
    /// When the entry may be dropped: past every window.
    pub(crate) fn horizon(&self) -> Timestamp {
        self.stored_at + self.ttl + self.stale.max(self.stale_if_error).max(self.retention)
    }

    /// How long past its ttl the entry may be served in some case (stale, or on error).
    fn servable_past_ttl(&self) -> Duration {
        self.stale.max(self.stale_if_error)
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            methods: vec![Method::GET, Method::HEAD],
            statuses: None,
            error_statuses: StatusSet::new([
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::GATEWAY_TIMEOUT,
            ]),
            negative_ttl: None,
            min_body_size: 0,
            max_body_size: 4 * 1024 * 1024,
            max_request_body_size: 64 * 1024,
            obey_client: true,
            header_allowlist: None,
            allow_authorization: false,
            allow_cookies: false,
            ignored_cookies: Vec::new(),
            allow_set_cookie: false,
            mode: CacheMode::Shared,
            cache_control: CacheControl::Respect,
            targeted: vec![CDN_CACHE_CONTROL],
            last_targeted_hop: false,
            tagging: super::tags::Tagging::default(),
        }
    }
}

impl Rules {
    /// Whether requests with `method` use the cache at all.
    pub(crate) fn caches_method(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }

    /// Whether a request's `Cookie` header names a cookie the layer does not disregard.
    fn counts_cookies(&self, headers: &HeaderMap) -> bool {
        if self.ignored_cookies.is_empty() {
            return true;
        }
        headers
            .get_all(header::COOKIE)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
            .map(|pair| {
                let pair = pair.trim_ascii();
                pair.split(|&b| b == b'=').next().unwrap_or(pair)
            })
            .filter(|name| !name.is_empty())
            .any(|name| {
                !self
                    .ignored_cookies
                    .iter()
                    .any(|ignored| cookie_matches(ignored, name))
            })
    }

    /// The directives a stored or arriving response has for this cache, and whether they come
    /// from a targeted field (RFC 9213 §2.2: in a shared cache, the first valid field of the
    /// target list, in its order, replaces `Cache-Control` and `Expires`).
    pub(crate) fn directives(&self, headers: &impl Fields) -> (ResponseDirectives, bool) {
        if self.mode == CacheMode::Shared {
            for name in &self.targeted {
                if headers.field(name).is_none() {
                    continue;
                }
                if let Some(d) = ResponseDirectives::parse_targeted(headers.fields(name)) {
                    return (d, true);
                }
            }
        }
        (ResponseDirectives::parse(headers), false)
    }

    /// Removes the targeted fields from a response served from the cache, when this cache is
    /// the last hop they are meant for.
    pub(crate) fn hide_targeted(&self, headers: &mut HeaderMap) {
        if self.last_targeted_hop {
            for name in &self.targeted {
                headers.remove(name);
            }
        }
    }

    /// Whether a shared cache may serve `cached` to a request with `facts`' credentials:
    /// RFC 9111 §3.5 for `Authorization`, and the same rule for `Cookie` unless the response
    /// varies on it (unless the layer allows either).
    pub(crate) fn may_serve(&self, cached: &CachedResponse, facts: &RequestFacts) -> bool {
        if self.mode == CacheMode::Private || !facts.credentials() {
            return true;
        }
        let (d, _) = self.directives(cached.headers());
        let (authorization, cookie) = self.credentials_allowed(&d, cached.headers());
        (!facts.authorization || authorization) && (!facts.cookie || cookie)
    }

    /// Whether a response with directives `d` and `headers` may be stored for, and served to,
    /// a request with `Authorization`, and one with `Cookie`, by a shared cache.
    fn credentials_allowed(&self, d: &ResponseDirectives, headers: &impl Fields) -> (bool, bool) {
        let marked = d.public || d.s_maxage.is_some() || d.must_revalidate;
        let authorization = self.allow_authorization || marked;
        let cookie = self.allow_cookies
            || marked
            || super::vary::names(headers).is_some_and(|names| names.contains(&header::COOKIE));
        (authorization, cookie)
    }

    /// Whether an upstream status counts as a failure, for stale-if-error.
    pub(crate) fn is_upstream_failure(&self, status: StatusCode) -> bool {
        self.error_statuses.contains(status)
    }

    /// Whether a response may be stored, and for how long (RFC 9111 §3, §4.2).
    pub(crate) fn response(
        &self,
        response: &response::Parts,
        size: &SizeHint,
        policy: &Policy,
        request: &RequestFacts,
        exchange: Exchange,
    ) -> Result<Lifetime, NotStored> {
        let status = response.status;
        // A `304` holds none of a representation: it is never stored as a response (it updates
        // one, §4.3.4). A `206` is stored as a part (§3.3) when it answers this cache's own range
        // request with one part of a representation of known length, and has a strong validator
        // to be combined with other parts by (§3.4).
        if status == StatusCode::NOT_MODIFIED {
            return Err("status");
        }
        if status == StatusCode::PARTIAL_CONTENT
            && !(request.range
                && super::range::StoredPart::of(&response.headers).is_some()
                && super::range::strong_etag(&response.headers).is_some())
        {
            return Err("partial");
        }
        let listed = match &self.statuses {
            Some(allowed) if !allowed.contains(status) => return Err("status"),
            Some(_) => true,
            None => false,
        };
        let negative = status.as_u16() >= 400;
        if request.no_store() {
            return Err("no-store");
        }
        let headers = &response.headers;
        if !self.allow_set_cookie && headers.contains_key(header::SET_COOKIE) {
            return Err("set-cookie");
        }
        let (d, targeted) = self.directives(headers);
        if d.must_understand {
            // §5.2.2.3: stored only by a cache that knows what the status means for caching,
            // which may then ignore `no-store` (sent alongside for caches that do not).
            if status.canonical_reason().is_none() {
                return Err("must-understand");
            }
        } else if d.no_store {
            return Err("no-store");
        }
        let shared = self.mode == CacheMode::Shared;
        if d.private && shared {
            return Err("private");
        }
        // §3.5: a shared cache stores a response to a request with credentials only when the
        // response says it may; a `Cookie` is read as credentials too (what Varnish's built-in
        // policy does), unless the response varies on it.
        if shared && request.credentials() {
            let (authorization, cookie) = self.credentials_allowed(&d, headers);
            if request.authorization && !authorization {
                return Err("authorization");
            }
            if request.cookie && !cookie {
                return Err("cookie");
            }
        }
        if super::vary::names(headers).is_none() {
            // `Vary: *`: no later request can be known to match (§4.1).
            return Err("vary-star");
        }
        if size.lower() > self.max_body_size as u64 {
            return Err("too-large");
        }
        if size
            .upper()
            .is_some_and(|upper| upper < self.min_body_size as u64)
        {
            return Err("too-small");
        }

        // §3, §4.2: a response with freshness information of the origin's is stored by it,
        // whatever its final status; one without gets the layer's ttl, but only for the
        // statuses that allows (heuristically cacheable ones, or those the user listed; error
        // ones with a negative ttl), and never in `OriginOnly` mode.
        let respect = self.cache_control != CacheControl::Override;
        let layer_ttl = if negative {
            self.negative_ttl
        } else {
            Some(policy.ttl)
        };
        let cap = layer_ttl.unwrap_or(policy.ttl);
        let time = exchange.response_time;
        let origin = respect
            .then(|| origin_lifetime(status, headers, &d, !targeted, shared, time, cap))
            .flatten();
        let mut ttl = match origin {
            Some(lifetime) => lifetime,
            None if self.cache_control == CacheControl::OriginOnly => {
                return Err("no-freshness");
            }
            None if listed || heuristically_cacheable(status) => layer_ttl.ok_or("status")?,
            None => return Err("status"),
        };
        let (mut stale, mut stale_if_error) = if negative {
            (Duration::ZERO, Duration::ZERO)
        } else {
            (policy.stale, policy.stale_if_error)
        };
        if respect {
            if d.no_cache {
                ttl = Duration::ZERO;
            }
            let revalidate = d.no_cache
                || d.must_revalidate
                || (shared && (d.proxy_revalidate || d.s_maxage.is_some()));
            if revalidate {
                (stale, stale_if_error) = (Duration::ZERO, Duration::ZERO);
            } else {
                // RFC 5861: the origin's windows, else the layer's.
                let secs = |s: Option<u64>| s.map(Duration::from_secs);
                stale = secs(d.stale_while_revalidate).unwrap_or(stale);
                stale_if_error = secs(d.stale_if_error).unwrap_or(stale_if_error);
            }
        }
        let age = if respect {
            exchange.initial_age(headers)
        } else {
            Duration::ZERO
        };
        let validators = has_validator(headers);
        let lifetime = Lifetime {
            stored_at: exchange.response_time - age,
            ttl,
            stale,
            stale_if_error,
            // Kept to be revalidated with a conditional request: as long again as it was
            // fresh, at least the layer's ttl.
            retention: if validators {
                ttl.max(cap)
            } else {
                Duration::ZERO
            },
        };
        // Durations saturate: an origin's huge numbers never overflow.
        let usable_for = ttl
            .saturating_add(lifetime.servable_past_ttl())
            .saturating_sub(age);
        if usable_for.is_zero() && !validators {
            return Err("stale-on-arrival");
        }
        Ok(lifetime)
    }

    /// The headers to store from a response whose body is `body_len` bytes long.
    pub(crate) fn stored_headers(&self, headers: &HeaderMap, body_len: usize) -> HeaderMap {
        let mut stored = HeaderMap::with_capacity(headers.len() + 1);
        for (name, value) in headers {
            if is_hop_by_hop(name, headers)
                || name == header::AGE
                || name == CACHE_STATUS
                || name == header::CONTENT_LENGTH
                || self.tagging.hides(name)
            {
                continue;
            }
            // `Vary` is always kept: without it a variant could not be told from another.
            if let Some(allowed) = &self.header_allowlist {
                if !allowed.contains(name) && name != header::VARY {
                    continue;
                }
            }
            stored.append(name.clone(), value.clone());
        }
        stored.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
        stored
    }
}

/// Whether cookie `name` is disregarded by the `ignored` entry: equal, or, for an entry ending
/// in `*`, starting with what precedes it.
fn cookie_matches(ignored: &str, name: &[u8]) -> bool {
    match ignored.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix.as_bytes()),
        None => name == ignored.as_bytes(),
    }
}

/// Removes the headers that concern one connection only (RFC 9110 §7.6.1): `Connection` and
/// the headers it names, `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`, `Trailer` and
/// `Proxy-*`. What a proxy must drop when it forwards a message, and what the layer never
/// stores.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header};
/// use layercake::layer::remove_hop_by_hop;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::CONNECTION, HeaderValue::from_static("x-hop"));
/// headers.insert("x-hop", HeaderValue::from_static("1"));
/// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
/// remove_hop_by_hop(&mut headers);
/// assert_eq!(headers.len(), 1);
/// assert!(headers.contains_key(header::CONTENT_TYPE));
/// ```
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let hops: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name, headers))
        .cloned()
        .collect();
    for name in hops {
        headers.remove(name);
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the `Connection` header names.
fn is_hop_by_hop(name: &HeaderName, headers: &HeaderMap) -> bool {
    const PROXY_PREFIX: &str = "proxy-";
    if name == header::CONNECTION
        || name == header::TE
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::TRAILER
        || name.as_str() == "keep-alive"
        || name.as_str().starts_with(PROXY_PREFIX)
    {
        return true;
    }
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case(name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_set_membership() {
        let set = StatusSet::new([StatusCode::OK, StatusCode::NOT_FOUND]);
        assert!(set.contains(StatusCode::OK));
        assert!(set.contains(StatusCode::NOT_FOUND));
        assert!(!set.contains(StatusCode::CREATED));
        assert!(!set.contains(StatusCode::from_u16(599).unwrap()));
        // `http` allows codes up to 999: every one has its bit.
        let odd = StatusCode::from_u16(999).unwrap();
        let set = StatusSet::new([odd, StatusCode::from_u16(640).unwrap()]);
        assert!(set.contains(odd));
        assert!(!set.contains(StatusCode::from_u16(998).unwrap()));
        assert!(!StatusSet::new([]).contains(odd));
    }

    #[test]
    fn hop_by_hop_headers_and_connection_options_are_not_stored() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "close, x-hop".parse().unwrap());
        headers.insert("x-hop", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("proxy-authenticate", "Basic".parse().unwrap());
        headers.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        let rules = Rules::default();
        let stored = rules.stored_headers(&headers, 3);
        let names: Vec<&str> = stored.keys().map(|n| n.as_str()).collect();
        // `Age` and `Cache-Status` are each hit's own, never stored.
        assert_eq!(names, ["content-type", "content-length"]);
        assert_eq!(stored[header::CONTENT_LENGTH], "3");
    }

    #[test]
    fn the_standard_names_are_sorted_and_standard() {
        for pair in STANDARD.windows(2) {
            assert!(pair[0].as_str() < pair[1].as_str(), "{:?}", pair);
        }
        for (at, name) in STANDARD.iter().enumerate() {
            let parsed = HeaderName::from_bytes(name.as_str().as_bytes()).unwrap();
            assert_eq!(standard(&parsed), Some(at as u32));
        }
        assert_eq!(standard(&HeaderName::from_static("x-request-id")), None);
    }

    #[test]
    fn stored_headers_keep_every_field_in_order() {
        let mut map = HeaderMap::new();
        map.append(header::CONTENT_TYPE, "text/html".parse().unwrap());
        map.append("x-one", "1".parse().unwrap());
        map.append(header::VARY, "accept".parse().unwrap());
        map.append("x-two", "2".parse().unwrap());
        map.append("x-one", "1b".parse().unwrap());
        map.append(header::VARY, "accept-language".parse().unwrap());
        let mut secret = HeaderValue::from_static("s3cr3t");
        secret.set_sensitive(true);
        map.append("x-secret", secret);
        let body = Bytes::from(vec![b'b'; 100]);
        let stored = CachedResponse::new(StatusCode::OK, map.clone(), body);
        let headers = stored.headers();
        assert_eq!(headers.to_header_map(), map);
        assert_eq!(headers.len(), 7);
        // Each name of the response's own is kept once.
        assert_eq!(headers.custom.len(), 3);
        let ones: Vec<_> = headers.get_all("X-One").collect();
        assert_eq!(ones, ["1", "1b"]);
        assert!(headers.get("x-secret").unwrap().is_sensitive());
        assert!(!headers.get("x-two").unwrap().is_sensitive());
        assert_eq!(headers.field(&header::VARY).unwrap(), "accept");
        assert_eq!(stored.body().len(), 100);
        assert_eq!(StoredHeaders::from(&map), StoredHeaders::from(map));
        // Pairs in any order: a name that comes back later is kept again, and read right.
        let pairs = [("x-a", "1"), ("x-b", "2"), ("x-a", "3"), ("etag", "\"e\"")];
        let stored: StoredHeaders = pairs
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect();
        let read: Vec<(&str, &str)> = stored
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(read, pairs);
        assert_eq!(stored.get_all("x-a").collect::<Vec<_>>(), ["1", "3"]);
    }

    #[test]
    fn header_values_share_the_body_buffer_when_it_has_room() {
        let mut map = HeaderMap::new();
        map.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        map.insert(header::ETAG, "\"v1\"".parse().unwrap());
        let mut buffer = BytesMut::with_capacity(64);
        buffer.extend_from_slice(b"the body");
        let stored = CachedResponse::new(StatusCode::OK, map.clone(), buffer.freeze());
        assert_eq!(stored.body(), "the body");
        let body = stored.body().as_ptr() as usize;
        let value = stored
            .headers()
            .get("content-type")
            .unwrap()
            .as_bytes()
            .as_ptr() as usize;
        assert_eq!(value, body + 8, "the values follow the body in its buffer");
        assert_eq!(stored.headers().to_header_map(), map);
        // A body without room, or shared, is kept as it is, the values apart.
        let shared = Bytes::from(vec![b'x'; 16]);
        let stored = CachedResponse::new(StatusCode::OK, map.clone(), shared.clone());
        assert_eq!(stored.body().as_ptr(), shared.as_ptr());
        assert_eq!(stored.headers().to_header_map(), map);
        let stored = CachedResponse::new(StatusCode::OK, map.clone(), Bytes::from_static(b"s"));
        assert_eq!(stored.headers().to_header_map(), map);
    }
}
