//! Key extractors: which parts of a request make its cache key.

use http::{HeaderName, request::Parts};
use layercake_backends::KeyBuilder;

/// Adds the parts of a request that identify its response to the cache key.
///
/// The layer always starts the key with its namespace and the request method (`HEAD` counts as
/// `GET`, so a `HEAD` is answered from a stored `GET`), so a key extractor only says what else
/// matters. Built in: [`Path`], [`PathAndQuery`] (the default), [`Headers`], any closure
/// `Fn(&Parts) -> Option<impl AsRef<[u8]>>`, and tuples of extractors, which add their parts
/// in order.
///
/// Return `false` to let the request pass through uncached (no lookup, no store).
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
/// // A closure: cache per tenant, and not at all without one.
/// let layer = CacheLayer::builder(Moka::default())
///     .key(|req: &http::request::Parts| {
///         let tenant = req.headers.get("x-tenant")?.to_str().ok()?;
///         Some(format!("{tenant}{}", req.uri.path()))
///     })
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot build cache keys",
    label = "not a key extractor",
    note = "use `Path`, `PathAndQuery`, `Headers`, a tuple of them, or a closure `Fn(&http::request::Parts) -> Option<impl AsRef<[u8]>>`"
)]
pub trait KeyExtractor: Send + Sync + 'static {
    /// Adds this extractor's parts for `request` to `key`; `false` means "do not cache".
    fn extract(&self, request: &Parts, key: &mut KeyBuilder) -> bool;
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
    pub fn new(names: impl IntoIterator<Item = HeaderName>) -> Self {
        Headers {
            names: names.into_iter().collect(),
        }
    }
}

impl KeyExtractor for Path {
    fn extract(&self, request: &Parts, key: &mut KeyBuilder) -> bool {
        key.push(request.uri.path());
        true
    }
}

impl KeyExtractor for PathAndQuery {
    fn extract(&self, request: &Parts, key: &mut KeyBuilder) -> bool {
        let path = request.uri.path().as_bytes();
        match request.uri.query() {
            Some(query) => key.push_concat([path, b"?", query.as_bytes()]),
            None => key.push(path),
        };
        true
    }
}

impl KeyExtractor for Headers {
    fn extract(&self, request: &Parts, key: &mut KeyBuilder) -> bool {
        for name in &self.names {
            key.push(name.as_str());
            // Each value is marked present; a lone terminator marks the end (or absence).
            for value in request.headers.get_all(name) {
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
    R: AsRef<[u8]>,
{
    fn extract(&self, request: &Parts, key: &mut KeyBuilder) -> bool {
        match self(request) {
            Some(part) => {
                key.push(part);
                true
            }
            None => false,
        }
    }
}

macro_rules! tuple_extractor {
    ($($name:ident),+) => {
        impl<$($name: KeyExtractor),+> KeyExtractor for ($($name,)+) {
            #[allow(non_snake_case)]
            fn extract(&self, request: &Parts, key: &mut KeyBuilder) -> bool {
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
