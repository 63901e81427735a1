//! Built-in response predicates: status (a code, a list, a class), header, content type (with
//! wildcards), body size, a JSON pointer into the body; and [`DefaultStore`], the layer's
//! default, which keeps media and archives out of the cache.
//!
//! ```
//! use layercake::predicate::{response, ResponsePredicate};
//!
//! // Successful JSON or HTML, not over 256 KiB, and never one the origin marked `x-no-cache`.
//! let storable = response::status_class(response::StatusClass::Success)
//!     .and(response::content_types(["application/json", "text/html"]))
//!     .and(response::body_size(..=256 * 1024))
//!     .and(response::header("x-no-cache").not());
//! # drop(storable);
//! ```

use std::ops::RangeBounds;

use http::{HeaderName, StatusCode, header, response::Parts};

use super::{CacheResponse, Matches, ResponsePredicate};
use crate::layer::StatusSet;

/// A predicate that reads the response head only.
macro_rules! head_predicate {
    ($ty:ty, |$self:ident, $head:ident| $test:expr) => {
        impl ResponsePredicate for $ty {
            fn test_head(&$self, $head: &Parts) -> Option<bool> {
                Some($test)
            }

            fn test(&self, response: &CacheResponse<'_>) -> bool {
                self.test_head(response.parts()) == Some(true)
            }
        }
    };
}

/// The response status is in a set; made by [`status`], [`statuses`] and [`status_class`].
///
/// ```
/// let ok: layercake::predicate::response::Status = layercake::predicate::response::status(http::StatusCode::OK);
/// # drop(ok);
/// ```
#[derive(Debug, Clone)]
pub struct Status(StatusSet);

/// The response status is `status`.
///
/// ```
/// # use layercake::predicate::response;
/// let ok = response::status(http::StatusCode::OK);
/// # drop(ok);
/// ```
pub fn status(status: StatusCode) -> Status {
    statuses([status])
}

/// The response status is one of `statuses`.
///
/// ```
/// # use layercake::predicate::response;
/// use http::StatusCode;
/// let found = response::statuses([StatusCode::OK, StatusCode::NOT_MODIFIED]);
/// # drop(found);
/// ```
pub fn statuses(statuses: impl IntoIterator<Item = StatusCode>) -> Status {
    Status(StatusSet::new(statuses))
}

/// A class of statuses (RFC 9110 §15).
///
/// ```
/// use layercake::predicate::response::{self, StatusClass};
/// let errors = response::status_class(StatusClass::ServerError);
/// # drop(errors);
/// ```
#[cfg_attr(
    feature = "config",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 1xx.
    Informational,
    /// 2xx.
    Success,
    /// 3xx.
    Redirection,
    /// 4xx.
    ClientError,
    /// 5xx.
    ServerError,
}

/// The response status is in `class`.
///
/// ```
/// # use layercake::predicate::response::{self, StatusClass};
/// let success = response::status_class(StatusClass::Success);
/// # drop(success);
/// ```
pub fn status_class(class: StatusClass) -> Status {
    let hundreds = match class {
        StatusClass::Informational => 100,
        StatusClass::Success => 200,
        StatusClass::Redirection => 300,
        StatusClass::ClientError => 400,
        StatusClass::ServerError => 500,
    };
    statuses((hundreds..hundreds + 100).filter_map(|code| StatusCode::from_u16(code).ok()))
}

head_predicate!(Status, |self, head| self.0.contains(head.status));

/// Selects a response header (see [`Matches`]).
///
/// ```
/// use layercake::predicate::{Matches, response};
/// let tagged: Matches<response::Header> = response::header("surrogate-key");
/// # drop(tagged);
/// ```
#[derive(Debug, Clone)]
pub struct Header(HeaderName);

/// The response carries header `name`; narrow it with [`Matches::equals`], `one_of`,
/// `contains` or `matches`.
///
/// ```
/// # use layercake::predicate::response;
/// let versioned = response::header(http::header::ETAG);
/// # drop(versioned);
/// ```
pub fn header(name: impl TryInto<HeaderName, Error: std::fmt::Debug>) -> Matches<Header> {
    Matches::present(Header(super::request::header_name(name)))
}

head_predicate!(Matches<Header>, |self, head| self.matching.any(
    head.headers
        .get_all(&self.subject.0)
        .iter()
        .map(|v| v.as_bytes())
));

/// The response's media type is one of a list; made by [`content_type`] and [`content_types`].
///
/// ```
/// let images: layercake::predicate::response::ContentType = layercake::predicate::response::content_type("image/*");
/// # drop(images);
/// ```
#[derive(Debug, Clone)]
pub struct ContentType(Box<[Box<str>]>);

/// The response's media type (its `Content-Type` without parameters, case-insensitive) is
/// `media_type`; `type/*` is any subtype, `*/*` any type. A response without `Content-Type`
/// has none.
///
/// ```
/// # use layercake::predicate::{response, CacheResponse, ResponsePredicate};
/// let json = response::content_type("application/json");
/// let (mut head, ()) = http::Response::new(()).into_parts();
/// head.headers.insert("content-type", "Application/JSON; charset=utf-8".parse().unwrap());
/// assert!(json.test(&CacheResponse::new(&head, b"{}")));
/// ```
pub fn content_type(media_type: &str) -> ContentType {
    content_types([media_type])
}

/// The response's media type is one of `media_types` (see [`content_type`]).
///
/// ```
/// # use layercake::predicate::response;
/// let pages = response::content_types(["text/html", "application/xhtml+xml"]);
/// # drop(pages);
/// ```
pub fn content_types<T: AsRef<str>>(media_types: impl IntoIterator<Item = T>) -> ContentType {
    ContentType(
        media_types
            .into_iter()
            .map(|t| t.as_ref().trim().to_ascii_lowercase().into())
            .collect(),
    )
}

/// The media types [`DefaultStore`] keeps out of the cache: audio, video, PDFs and archives,
/// large files better served by a CDN or from disk than from a cache's memory.
///
/// ```
/// assert!(layercake::predicate::response::MEDIA_AND_ARCHIVES.contains(&"video/*"));
/// ```
pub const MEDIA_AND_ARCHIVES: &[&str] = &[
    "audio/*",
    "video/*",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "application/x-rar-compressed",
    "application/zstd",
];

impl ContentType {
    /// [`MEDIA_AND_ARCHIVES`], as a predicate.
    ///
    /// ```
    /// # use layercake::predicate::{response::ContentType, ResponsePredicate};
    /// let not_media = ContentType::media_and_archives().not();
    /// # drop(not_media);
    /// ```
    pub fn media_and_archives() -> Self {
        content_types(MEDIA_AND_ARCHIVES)
    }
}

/// Whether `media_type` (lowercase, no parameters) is matched by one of `patterns`.
fn media_type_in(patterns: &[impl AsRef<str>], media_type: &str) -> bool {
    let (kind, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    patterns.iter().any(|pattern| {
        let pattern = pattern.as_ref();
        pattern == "*/*"
            || pattern == media_type
            || pattern
                .strip_suffix("/*")
                .is_some_and(|wanted| wanted == kind)
    })
}

/// The media type of `head`'s `Content-Type`, lowercase, without parameters.
fn media_type(head: &Parts) -> Option<String> {
    let value = head.headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

head_predicate!(ContentType, |self, head| {
    media_type(head).is_some_and(|media_type| media_type_in(&self.0, &media_type))
});

/// The layer's default response predicate: every response but audio, video, PDFs and
/// archives ([`MEDIA_AND_ARCHIVES`]). Zero-sized. Replaced by
/// [`store_if`](crate::layer::CacheLayerBuilder::store_if); keep it with
/// `.store_if(DefaultStore.and(your_predicate))`, or store everything with
/// `.store_if(Always)`.
///
/// ```
/// # use layercake::predicate::{response::DefaultStore, CacheResponse, ResponsePredicate};
/// let (mut head, ()) = http::Response::new(()).into_parts();
/// head.headers.insert("content-type", "video/mp4".parse().unwrap());
/// assert!(!DefaultStore.test(&CacheResponse::new(&head, b"")));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultStore;

head_predicate!(DefaultStore, |self, head| {
    !media_type(head).is_some_and(|media_type| media_type_in(MEDIA_AND_ARCHIVES, &media_type))
});

/// The response body's size is in a range; made by [`body_size`].
///
/// ```
/// let small: layercake::predicate::response::BodySize = layercake::predicate::response::body_size(..=4096);
/// # drop(small);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BodySize(super::request::BodySize);

/// The response body's size is in `range`: decided from `Content-Length` when the response
/// has one, else once the body is read.
///
/// ```
/// # use layercake::predicate::response;
/// let small = response::body_size(..=64 * 1024);
/// # drop(small);
/// ```
pub fn body_size(range: impl RangeBounds<usize>) -> BodySize {
    BodySize(super::request::body_size(range))
}

impl ResponsePredicate for BodySize {
    fn test_head(&self, head: &Parts) -> Option<bool> {
        let length = head.headers.get(header::CONTENT_LENGTH)?.to_str().ok()?;
        Some(self.0.contains(length.parse().ok()?))
    }

    fn test(&self, response: &CacheResponse<'_>) -> bool {
        self.0.contains(response.body().len())
    }
}

/// Selects a value of a JSON response body by a JSON pointer (see [`Matches`]).
///
/// ```
/// use layercake::predicate::{Matches, response};
/// let errors: Matches<response::Json> = response::json("/errors");
/// # drop(errors);
/// ```
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
#[derive(Debug, Clone)]
pub struct Json(Box<str>);

/// The response body is JSON with a value at `pointer` (RFC 6901); narrow it with
/// [`Matches::equals`], `one_of`, `contains` or `matches`, which see a string's content and any
/// other value's JSON text. Decided once the body is read (feature `json`).
///
/// ```
/// # use layercake::predicate::{response, ResponsePredicate};
/// // A GraphQL response without errors.
/// let clean = response::json("/errors").not();
/// # drop(clean);
/// ```
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub fn json(pointer: impl Into<String>) -> Matches<Json> {
    Matches::present(Json(pointer.into().into()))
}

#[cfg(feature = "json")]
impl ResponsePredicate for Matches<Json> {
    fn test_head(&self, _: &Parts) -> Option<bool> {
        None
    }

    fn test(&self, response: &CacheResponse<'_>) -> bool {
        super::json_value(response.body(), &self.subject.0)
            .is_some_and(|value| self.matching.test(&value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, content_type: Option<&str>) -> Parts {
        let mut builder = http::Response::builder().status(status);
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn test(predicate: &impl ResponsePredicate, head: &Parts, body: &[u8]) -> bool {
        predicate.test(&CacheResponse::new(head, body))
    }

    #[test]
    fn statuses_by_code_list_and_class() {
        assert!(test(&status(StatusCode::OK), &head(200, None), b""));
        assert!(!test(&status(StatusCode::OK), &head(201, None), b""));
        let success = status_class(StatusClass::Success);
        assert!(test(&success, &head(204, None), b""));
        assert!(!test(&success, &head(404, None), b""));
        assert!(test(
            &status_class(StatusClass::ClientError),
            &head(404, None),
            b""
        ));
    }

    #[test]
    fn content_types_with_wildcards_and_parameters() {
        let json = content_type("application/json");
        assert!(test(
            &json,
            &head(200, Some("application/json; charset=utf-8")),
            b""
        ));
        assert!(!test(&json, &head(200, Some("text/plain")), b""));
        assert!(!test(&json, &head(200, None), b""));
        let video = content_type("video/*");
        assert!(test(&video, &head(200, Some("Video/MP4")), b""));
        assert!(!test(&video, &head(200, Some("videos/mp4")), b""));
        assert!(test(&content_type("*/*"), &head(200, Some("a/b")), b""));
    }

    #[test]
    fn the_default_keeps_media_and_archives_out() {
        for media in [
            "video/mp4",
            "audio/ogg",
            "application/zip",
            "application/pdf",
        ] {
            assert!(
                !test(&DefaultStore, &head(200, Some(media)), b""),
                "{media}"
            );
        }
        for other in ["text/html", "application/json", "image/png"] {
            assert!(test(&DefaultStore, &head(200, Some(other)), b""), "{other}");
        }
        assert!(test(&DefaultStore, &head(200, None), b""));
    }

    #[test]
    fn body_size_from_the_length_or_the_body() {
        let small = body_size(..=3);
        let mut with_length = head(200, None);
        with_length
            .headers
            .insert("content-length", "10".parse().unwrap());
        assert_eq!(small.test_head(&with_length), Some(false));
        assert_eq!(small.test_head(&head(200, None)), None);
        assert!(small.test(&CacheResponse::new(&head(200, None), b"abc")));
        assert!(!small.test(&CacheResponse::new(&head(200, None), b"abcd")));
    }

    #[test]
    fn headers_by_presence_and_value() {
        let mut h = head(200, None);
        h.headers.insert("x-kind", "public-page".parse().unwrap());
        assert!(test(&header("x-kind"), &h, b""));
        assert!(test(&header("x-kind").contains("public"), &h, b""));
        assert!(!test(&header("x-kind").equals("public"), &h, b""));
        assert!(!test(&header("x-other"), &h, b""));
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_bodies_by_pointer() {
        let h = head(200, Some("application/json"));
        let errors = json("/errors");
        assert_eq!(errors.test_head(&h), None);
        assert!(test(&errors, &h, br#"{"errors":[{"message":"no"}]}"#));
        assert!(!test(&errors, &h, br#"{"data":{}}"#));
        assert!(test(
            &json("/data/n").equals("3"),
            &h,
            br#"{"data":{"n":3}}"#
        ));
    }
}
