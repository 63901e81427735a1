//! Key extractors: which parts of a request make its cache key.
//!
//! Built in: the path ([`Path`]), the path and query as sent ([`PathAndQuery`], the default),
//! named headers ([`Headers`]) or those under a prefix ([`HeaderPrefix`]), path parameters
//! ([`PathParams`]), chosen query parameters, normalised ([`Query`]), the body ([`WholeBody`],
//! `JsonPointers` with feature `json`, `BodyCaptures` with `regex`), transforms
//! ([`Lowercase`], `Hashed` with `sha2`), closures, and tuples of them. The method (`HEAD` as `GET`) and the host always start the key.
//!
//! ```
//! use layercake::{CacheLayer, Moka};
//! use layercake::layer::key::{PathParams, Query};
//!
//! // `/products/{id}?page=2&utm_source=x` and `/products/{id}?utm_medium=y&page=2` share an
//! // entry: the product id and the page are all that matter.
//! let layer = CacheLayer::builder(Moka::default())
//!     .key((PathParams::new("/products/{id}"), Query::only(["page"])))
//!     .build()
//!     .unwrap();
//! # drop(layer);
//! ```

mod extract;

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, request::Parts};
use layercake_backends::KeyBuilder;

#[cfg(feature = "regex")]
pub use self::extract::BodyCaptures;
#[cfg(feature = "sha2")]
pub use self::extract::Hashed;
#[cfg(feature = "json")]
pub use self::extract::JsonPointers;
pub use self::extract::{HeaderPrefix, Lowercase, PathParams, Query, WholeBody};
use crate::predicate::{BodyUse, CacheRequest, NoBody};

/// Adds the parts of a request that identify its response to the cache key.
///
/// The layer always starts the key with its namespace, the request method (`HEAD` counts as
/// `GET`, so a `HEAD` is answered from a stored `GET`) and the request's authority (its `Host`;
/// see [`authority_in_key`](super::CacheLayerBuilder::authority_in_key)), so a key extractor
/// only says what else matters. Built in: see the [module](self); any closure
/// `Fn(&Parts) -> Option<impl KeyParts>`; and tuples of extractors, which add their parts in
/// order.
///
/// Every part is length-prefixed in the key, so parts never run into each other: a closure
/// returns its parts as a tuple, `Some((tenant, path))`, never as one formatted string (tenant
/// `a` with path `/b/c` and tenant `a/b` with path `/c` would format alike).
///
/// Return `false` (a closure: `None`) to let the request pass through uncached (no lookup, no
/// store).
///
/// ```
/// use http::header::ACCEPT_LANGUAGE;
/// use layercake::{CacheLayer, Moka};
/// use layercake::layer::{Headers, Path};
///
/// // Path and the Accept-Language header; the query string is ignored.
/// let layer = CacheLayer::builder(Moka::default())
///     .key((Path, Headers::new([ACCEPT_LANGUAGE])))
///     .build()
///     .unwrap();
///
/// // A closure: cache per tenant (one part) and path (another), not at all without a tenant.
/// let layer = CacheLayer::builder(Moka::default())
///     .key(|req: &http::request::Parts| {
///         let tenant = req.headers.get("x-tenant")?.clone();
///         Some((tenant, req.uri.path().to_owned()))
///     })
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot build cache keys",
    label = "not a key extractor",
    note = "key extractors are in `layercake::layer::key` (`Path`, `Query`, `Headers`, `PathParams` …), tuples of them, or a closure `Fn(&http::request::Parts) -> Option<impl KeyParts>`"
)]
pub trait KeyExtractor: Send + Sync + 'static {
    /// Whether this extractor reads the request body: [`NoBody`] or
    /// [`ReadsBody`](crate::predicate::ReadsBody) (then the layer reads it first; see
    /// [reading the body](crate::predicate#reading-the-body)).
    type Body: BodyUse;

    /// Adds this extractor's parts for `request` to `key`; `false` means "do not cache".
    ///
    /// What it adds must say unambiguously what it read: the parts are length-prefixed, but an
    /// extractor that adds a varying number of them adds their count first, so that the parts
    /// of the next extractor in a tuple can never be mistaken for its own.
    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool;
}

/// Keys on the request path, ignoring the query string.
///
/// ```
/// # use layercake::{CacheLayer, Moka, layer::Path};
/// let layer = CacheLayer::builder(Moka::default()).key(Path).build().unwrap();
/// # drop(layer);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Path;

/// Keys on the path and the query string, as sent (the default): `?page=2` and `?page=1` are
/// different entries.
///
/// ```
/// # use layercake::{CacheLayer, Moka, layer::PathAndQuery};
/// let layer = CacheLayer::builder(Moka::default()).key(PathAndQuery).build().unwrap();
/// # drop(layer);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PathAndQuery;

/// Keys on the values of the named request headers (an absent header is a value of its own).
///
/// ```
/// use http::header::{ACCEPT, ACCEPT_LANGUAGE};
/// # use layercake::{CacheLayer, Moka, layer::{Headers, PathAndQuery}};
/// let layer = CacheLayer::builder(Moka::default())
///     .key((PathAndQuery, Headers::new([ACCEPT, ACCEPT_LANGUAGE])))
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Headers {
    names: Vec<HeaderName>,
}

impl Headers {
    /// Keys on `names`, in this order.
    ///
    /// ```
    /// use layercake::layer::Headers;
    /// let by_language = Headers::new([http::header::ACCEPT_LANGUAGE]);
    /// # drop(by_language);
    /// ```
    pub fn new(names: impl IntoIterator<Item = HeaderName>) -> Self {
        Headers {
            names: names.into_iter().collect(),
        }
    }
}

impl KeyExtractor for Path {
    type Body = NoBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        key.push(request.uri().path());
        true
    }
}

impl KeyExtractor for PathAndQuery {
    type Body = NoBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        let path = request.uri().path().as_bytes();
        match request.uri().query() {
            Some(query) => key.push_concat([path, b"?", query.as_bytes()]),
            None => key.push(path),
        };
        true
    }
}

impl KeyExtractor for Headers {
    type Body = NoBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        for name in &self.names {
            key.push(name.as_str());
            // Each value is marked present; a lone terminator marks the end (or absence).
            for value in request.headers().get_all(name) {
                key.push_concat([b"\x01", value.as_bytes()]);
            }
            key.push(b"\x00");
        }
        true
    }
}

impl<F, R> KeyExtractor for F
where
    F: Fn(&Parts) -> Option<R> + Send + Sync + 'static,
    R: KeyParts,
{
    type Body = NoBody;

    fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
        match self(request.parts()) {
            Some(parts) => {
                parts.push_to(key);
                true
            }
            None => false,
        }
    }
}

/// What a key extractor closure returns: one key part, or a tuple of parts, each added to the
/// key as a part of its own (length-prefixed), so that different inputs never make one key.
///
/// Implemented for strings, byte strings, `Bytes`, header values, integers (in decimal) and
/// tuples of up to six of them.
///
/// ```
/// use layercake::{Key, layer::KeyParts};
///
/// let mut key = Key::builder();
/// ("a", "/b/secret").push_to(&mut key);
/// let mut other = Key::builder();
/// ("a/b", "/secret").push_to(&mut other);
/// assert_ne!(key.build(), other.build());
///
/// let mut key = Key::builder();
/// (7u64, String::from("x")).push_to(&mut key);
/// assert_eq!(key.build().to_string(), "7:x");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a cache key",
    label = "not a key part",
    note = "return a string, bytes, a header value, an integer, or a tuple of them: `Some((tenant, path))`"
)]
pub trait KeyParts {
    /// Adds this value's parts to `key`.
    fn push_to(&self, key: &mut KeyBuilder);
}

macro_rules! byte_parts {
    ($($ty:ty),+) => {$(
        impl KeyParts for $ty {
            fn push_to(&self, key: &mut KeyBuilder) {
                key.push(AsRef::<[u8]>::as_ref(self));
            }
        }
    )+};
}

byte_parts!(str, String, [u8], Vec<u8>, Bytes, Cow<'_, [u8]>);

impl KeyParts for Cow<'_, str> {
    fn push_to(&self, key: &mut KeyBuilder) {
        key.push(self.as_bytes());
    }
}

impl KeyParts for HeaderValue {
    fn push_to(&self, key: &mut KeyBuilder) {
        key.push(self.as_bytes());
    }
}

impl<T: KeyParts + ?Sized> KeyParts for &T {
    fn push_to(&self, key: &mut KeyBuilder) {
        (**self).push_to(key);
    }
}

macro_rules! integer_parts {
    ($($ty:ty),+) => {$(
        impl KeyParts for $ty {
            fn push_to(&self, key: &mut KeyBuilder) {
                key.push(itoa::Buffer::new().format(*self));
            }
        }
    )+};
}

integer_parts!(u8, u16, u32, u64, usize, i8, i16, i32, i64);

macro_rules! tuple_parts {
    ($($name:ident),+) => {
        impl<$($name: KeyParts),+> KeyParts for ($($name,)+) {
            #[allow(non_snake_case)]
            fn push_to(&self, key: &mut KeyBuilder) {
                let ($($name,)+) = self;
                $($name.push_to(key);)+
            }
        }
    };
}

tuple_parts!(A);
tuple_parts!(A, B);
tuple_parts!(A, B, C);
tuple_parts!(A, B, C, D);
tuple_parts!(A, B, C, D, E);
tuple_parts!(A, B, C, D, E, G);

/// Whether any of the extractors named reads the body.
macro_rules! body_of {
    ($a:ident) => { $a::Body };
    ($a:ident, $($rest:ident),+) => { <$a::Body as BodyUse>::Or<body_of!($($rest),+)> };
}

macro_rules! tuple_extractor {
    ($($name:ident),+) => {
        impl<$($name: KeyExtractor),+> KeyExtractor for ($($name,)+) {
            type Body = body_of!($($name),+);

            #[allow(non_snake_case)]
            fn extract(&self, request: &CacheRequest<'_>, key: &mut KeyBuilder) -> bool {
                let ($($name,)+) = self;
                $($name.extract(request, key))&&+
            }
        }
    };
}

tuple_extractor!(A, B);
tuple_extractor!(A, B, C);
tuple_extractor!(A, B, C, D);
tuple_extractor!(A, B, C, D, E);
tuple_extractor!(A, B, C, D, E, G);
