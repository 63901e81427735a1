//! Which tags a stored response carries, for invalidation by tag.
//!
//! Tags come from three places, all optional and combined: a fixed list on the layer
//! ([`tags`](super::CacheLayerBuilder::tags)), a function of the request and the response
//! ([`tags_with`](super::CacheLayerBuilder::tags_with)), and the origin's own response headers,
//! as CDNs read them: `Surrogate-Key` (Fastly) and `Cache-Tag` (Cloudflare), tags separated by
//! spaces or commas ([`tag_headers`](super::CacheLayerBuilder::tag_headers)). Those headers are
//! meant for the cache: they are taken out of every response before it reaches the client,
//! stored or not, unless the layer [keeps them](super::CacheLayerBuilder::keep_tag_headers).

use std::{fmt, sync::Arc};

use http::{HeaderMap, HeaderName, Method, Uri, response};

/// The request a response is tagged for, as a [`tags_with`](super::CacheLayerBuilder::tags_with)
/// function sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TagRequest<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The request's target.
    pub uri: &'a Uri,
    /// The request's headers.
    pub headers: &'a HeaderMap,
}

/// A function that tags responses.
pub(crate) type TagFn =
    Arc<dyn Fn(&TagRequest<'_>, &response::Parts) -> Vec<Arc<str>> + Send + Sync>;

/// The layer's tagging rules.
#[derive(Clone)]
pub(crate) struct Tagging {
    pub(crate) fixed: Vec<Arc<str>>,
    pub(crate) from: Option<TagFn>,
    pub(crate) headers: Arc<[HeaderName]>,
    pub(crate) keep_headers: bool,
}

/// Fastly's tag header.
pub(crate) const SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");
/// Cloudflare's tag header.
pub(crate) const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");

impl Default for Tagging {
    fn default() -> Self {
        Tagging {
            fixed: Vec::new(),
            from: None,
            headers: Arc::new([SURROGATE_KEY, CACHE_TAG]),
            keep_headers: false,
        }
    }
}

impl fmt::Debug for Tagging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tagging")
            .field("fixed", &self.fixed)
            .field("from", &self.from.as_ref().map(|_| "fn"))
            .field("headers", &self.headers)
            .field("keep_headers", &self.keep_headers)
            .finish()
    }
}

impl Tagging {
    /// Whether tagging needs the request's target (a tagging function is set).
    pub(crate) fn reads_request(&self) -> bool {
        self.from.is_some()
    }

    /// The tags of `response`, a response to `request` (given when
    /// [`reads_request`](Tagging::reads_request)); `None` when it has none.
    pub(crate) fn tags(
        &self,
        request: Option<&TagRequest<'_>>,
        response: &response::Parts,
    ) -> Option<Arc<[Arc<str>]>> {
        let mut tags = self.fixed.clone();
        if let (Some(from), Some(request)) = (&self.from, request) {
            tags.extend(from(request, response));
        }
        for name in self.headers.iter() {
            for value in response.headers.get_all(name) {
                let Ok(value) = value.to_str() else { continue };
                tags.extend(
                    value
                        .split(|c: char| c == ',' || c.is_ascii_whitespace())
                        .filter(|tag| !tag.is_empty())
                        .map(Arc::from),
                );
            }
        }
        if tags.is_empty() {
            return None;
        }
        tags.sort_unstable();
        tags.dedup();
        Some(tags.into())
    }

    /// Whether `name` is a tag header that neither the client nor the stored response gets.
    pub(crate) fn hides(&self, name: &HeaderName) -> bool {
        !self.keep_headers && self.headers.contains(name)
    }

    /// Takes the tag headers out of a response on its way to the client (unless kept).
    pub(crate) fn strip(&self, headers: &mut HeaderMap) {
        if !self.keep_headers {
            strip(&self.headers, headers);
        }
    }

    /// The headers to take out of responses the layer passes through, when there are any.
    pub(crate) fn hidden(&self) -> Option<Arc<[HeaderName]>> {
        (!self.keep_headers && !self.headers.is_empty()).then(|| Arc::clone(&self.headers))
    }
}

/// Takes the headers `names` out of `headers`.
pub(crate) fn strip(names: &[HeaderName], headers: &mut HeaderMap) {
    if headers.is_empty() {
        return;
    }
    for name in names {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(headers: &[(&str, &str)]) -> response::Parts {
        let mut builder = http::Response::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn names(tags: Option<Arc<[Arc<str>]>>) -> Vec<String> {
        tags.map(|t| t.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn header_tags_split_on_spaces_and_commas_and_join_the_fixed_ones() {
        let tagging = Tagging {
            fixed: vec![Arc::from("site")],
            ..Tagging::default()
        };
        let parts = response(&[
            ("surrogate-key", "item:1  items"),
            ("cache-tag", "a,b, items"),
        ]);
        assert_eq!(
            names(tagging.tags(None, &parts)),
            ["a", "b", "item:1", "items", "site"]
        );
        assert!(Tagging::default().tags(None, &response(&[])).is_none());
    }

    #[test]
    fn a_tagging_function_sees_the_request_and_the_response() {
        let tagging = Tagging {
            from: Some(Arc::new(
                |request: &TagRequest<'_>, response: &response::Parts| {
                    vec![Arc::from(format!(
                        "{}:{}",
                        request.uri.path(),
                        response.status.as_u16()
                    ))]
                },
            )),
            ..Tagging::default()
        };
        let uri: Uri = "/users/42".parse().unwrap();
        let request = TagRequest {
            method: &Method::GET,
            uri: &uri,
            headers: &HeaderMap::new(),
        };
        let parts = response(&[]);
        assert_eq!(
            names(tagging.tags(Some(&request), &parts)),
            ["/users/42:200"]
        );
    }

    #[test]
    fn tag_headers_are_stripped_unless_kept() {
        let mut headers =
            response(&[("surrogate-key", "a"), ("content-type", "text/plain")]).headers;
        Tagging::default().strip(&mut headers);
        assert!(!headers.contains_key("surrogate-key"));
        assert!(headers.contains_key("content-type"));
        let keep = Tagging {
            keep_headers: true,
            ..Tagging::default()
        };
        let mut headers = response(&[("surrogate-key", "a")]).headers;
        keep.strip(&mut headers);
        assert!(headers.contains_key("surrogate-key"));
        assert!(!keep.hides(&SURROGATE_KEY));
    }
}
