//! Validation (RFC 9111 §4.3, RFC 9110 §13): revalidating stored responses with the origin,
//! updating them from a `304` (or a `HEAD`, §4.3.5), and answering clients' own conditional
//! requests.

use http::{
    HeaderMap, HeaderName, HeaderValue,
    header::{self, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, RANGE},
};

use layercake_backends::{Backend, Entry, Key};

use super::{
    CachedResponse, KeyExtractor, StoredHeaders,
    freshness::{Exchange, date_header, http_date},
    response::Fields,
    response::RequestFacts,
    service::Shared,
    status::CACHE_STATUS,
};

/// An entity tag: whether it is weak, and its opaque part. Read as bytes: an entity tag may
/// hold obs-text (bytes 0x80 to 0xFF, RFC 9110 §8.8.3), which `HeaderValue::to_str` refuses.
fn entity_tag(tag: &[u8]) -> Option<(bool, &[u8])> {
    let tag = tag.trim_ascii();
    let (weak, rest) = match tag.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, tag),
    };
    let opaque = rest.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (!opaque.contains(&b'"')).then_some((weak, opaque))
}

/// The entity tags of an `If-None-Match`/`If-Match` list (commas inside tags are not allowed,
/// RFC 9110 §8.8.3, so splitting on them is exact).
fn entity_tags(list: &[u8]) -> impl Iterator<Item = (bool, &[u8])> {
    list.split(|&b| b == b',').filter_map(entity_tag)
}

/// Whether an `If-None-Match`/`If-Match` value is `*`.
fn is_any(list: &HeaderValue) -> bool {
    list.as_bytes().trim_ascii() == b"*"
}

/// Weak comparison (RFC 9110 §8.8.3.2): equal opaque parts, weak or not.
fn matches_weakly(list: &HeaderValue, etag: &HeaderValue) -> bool {
    let Some((_, etag)) = entity_tag(etag.as_bytes()) else {
        return false;
    };
    is_any(list) || entity_tags(list.as_bytes()).any(|(_, tag)| tag == etag)
}

/// Strong comparison (RFC 9110 §8.8.3.2): neither weak, equal opaque parts.
fn matches_strongly(candidate: &[u8], etag: &HeaderValue) -> bool {
    match (entity_tag(candidate), entity_tag(etag.as_bytes())) {
        (Some((false, a)), Some((false, b))) => a == b,
        _ => false,
    }
}

/// Whether a client's conditional GET or HEAD is answered `304 Not Modified` from a stored
/// response with headers `stored` (RFC 9111 §4.3.2, RFC 9110 §13.2.2): `If-None-Match`
/// against its `ETag` (weak comparison), else `If-Modified-Since` against its
/// `Last-Modified` (or `Date` when it has none).
pub(crate) fn not_modified(request: &HeaderMap, stored: &impl Fields) -> bool {
    if let Some(list) = request.get(IF_NONE_MATCH) {
        return match stored.field(&header::ETAG) {
            Some(etag) => matches_weakly(list, etag),
            None => is_any(list),
        };
    }
    let Some(since) = date_header(request, IF_MODIFIED_SINCE) else {
        return false;
    };
    date_header(stored, header::LAST_MODIFIED)
        .or_else(|| date_header(stored, header::DATE))
        .is_some_and(|modified| modified <= since)
}

/// Whether an `If-Range` precondition holds for a stored response (RFC 9110 §13.1.5): a
/// strong match of its `ETag`, or exactly its `Last-Modified`. Without `If-Range`, it holds.
pub(crate) fn if_range_holds(request: &HeaderMap, stored: &impl Fields) -> bool {
    let Some(condition) = request.get(IF_RANGE) else {
        return true;
    };
    let text = condition.as_bytes().trim_ascii_start();
    if text.starts_with(b"\"") || text.starts_with(b"W/") {
        return stored
            .field(&header::ETAG)
            .is_some_and(|etag| matches_strongly(text, etag));
    }
    match (
        http_date(condition),
        date_header(stored, header::LAST_MODIFIED),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Turns `request` into a revalidation of a stored response with headers `stored`: the
/// client's own preconditions and `Range` are replaced by the cache's validators (§4.3.1).
/// Returns whether there was a validator to send.
pub(crate) fn make_conditional(request: &mut HeaderMap, stored: &impl Fields) -> bool {
    for name in [IF_NONE_MATCH, IF_MODIFIED_SINCE, RANGE, IF_RANGE] {
        request.remove(name);
    }
    let mut any = false;
    if let Some(etag) = stored.field(&header::ETAG) {
        request.insert(IF_NONE_MATCH, etag.clone());
        any = true;
    }
    if let Some(modified) = stored.field(&header::LAST_MODIFIED) {
        request.insert(IF_MODIFIED_SINCE, modified.clone());
        any = true;
    }
    any
}

/// Whether a `304` is about the stored response it revalidated (§4.3.4): the same strong
/// `ETag` when it has one, else the same `Last-Modified` when it has one.
pub(crate) fn validates(not_modified: &HeaderMap, stored: &impl Fields) -> bool {
    if let Some(etag) = not_modified.get(header::ETAG) {
        let Some((_, etag)) = entity_tag(etag.as_bytes()) else {
            return false;
        };
        return stored
            .field(&header::ETAG)
            .and_then(|stored| entity_tag(stored.as_bytes()))
            .is_some_and(|(_, stored)| stored == etag);
    }
    match not_modified.get(header::LAST_MODIFIED) {
        Some(modified) => stored.field(&header::LAST_MODIFIED) == Some(modified),
        None => true,
    }
}

/// The headers of a stored response updated by a `304` (RFC 9111 §3.2): every header the
/// `304` carries replaces the stored one of that name, except the stored body's framing.
pub(crate) fn updated_headers(stored: &StoredHeaders, not_modified: &HeaderMap) -> HeaderMap {
    let mut merged = stored.to_header_map();
    let mut replaced: Option<&HeaderName> = None;
    for (name, value) in not_modified {
        if name == header::CONTENT_LENGTH || name == CACHE_STATUS {
            continue;
        }
        if replaced != Some(name) {
            merged.insert(name.clone(), value.clone());
            replaced = Some(name);
        } else {
            merged.append(name.clone(), value.clone());
        }
    }
    merged
}

/// The headers a `304` answer to a client carries (RFC 9110 §15.4.5), from a stored response.
pub(crate) fn not_modified_headers(stored: &impl Fields) -> HeaderMap {
    const KEPT: [HeaderName; 7] = [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        header::ETAG,
        header::EXPIRES,
        header::VARY,
        header::LAST_MODIFIED,
    ];
    let mut headers = HeaderMap::with_capacity(KEPT.len() + 2);
    for name in KEPT {
        for value in stored.fields(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// RFC 9111 §4.3.5: a `HEAD` response updates the stored `GET`.
impl<B, K, Q, R> Shared<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: crate::predicate::RequestPredicate,
    R: crate::predicate::ResponsePredicate,
{
    /// RFC 9111 §4.3.5: a `200` to a `HEAD` whose validators (and `Content-Length`, when it
    /// has one) match the stored GET response updates its headers and freshness as a `304`
    /// would; one that does not match, or may not be stored, removes it.
    pub(crate) async fn update_from_head(
        &self,
        key: &Key,
        stored: &Entry<CachedResponse>,
        head: &HeaderMap,
        facts: &RequestFacts,
        exchange: Exchange,
        since: crate::fence::Epoch,
    ) {
        let length_matches = head.get(header::CONTENT_LENGTH).is_none_or(|length| {
            stored.value().headers().field(&header::CONTENT_LENGTH) == Some(length)
        });
        if length_matches {
            if let (entry, Ok(())) = self.refreshed(stored, head, facts, exchange) {
                tracing::debug!(%key, "a HEAD response updated the stored GET");
                self.engine.store(key, entry, since).await;
                return;
            }
        }
        tracing::debug!(%key, "a HEAD response does not match the stored GET: removed");
        // A failure is counted and logged; the stored response ages out.
        let _ = self.engine.invalidate(key).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (n.clone(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let stored = map(&[(header::ETAG, "W/\"v1\"")]);
        for (list, expected) in [
            ("\"v1\"", true),
            ("W/\"v1\"", true),
            ("\"v0\", W/\"v1\"", true),
            ("*", true),
            ("\"v2\"", false),
            ("v1", false),
        ] {
            let request = map(&[(IF_NONE_MATCH, list)]);
            assert_eq!(not_modified(&request, &stored), expected, "{list}");
        }
    }

    #[test]
    fn if_modified_since_is_ignored_when_if_none_match_is_present() {
        let stored = map(&[
            (header::ETAG, "\"a\""),
            (header::LAST_MODIFIED, "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        let request = map(&[
            (IF_NONE_MATCH, "\"b\""),
            (IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        assert!(!not_modified(&request, &stored));
        let request = map(&[(IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert!(not_modified(&request, &stored));
        let request = map(&[(IF_MODIFIED_SINCE, "Sat, 05 Nov 1994 08:49:37 GMT")]);
        assert!(!not_modified(&request, &stored));
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let stored = map(&[(header::ETAG, "\"a\"")]);
        assert!(if_range_holds(&map(&[(IF_RANGE, "\"a\"")]), &stored));
        assert!(!if_range_holds(&map(&[(IF_RANGE, "W/\"a\"")]), &stored));
        assert!(!if_range_holds(&map(&[(IF_RANGE, "\"b\"")]), &stored));
        assert!(if_range_holds(&HeaderMap::new(), &stored));
    }

    #[test]
    fn a_304_replaces_headers_but_not_the_body_length() {
        let stored = map(&[
            (header::CONTENT_LENGTH, "5"),
            (header::CACHE_CONTROL, "max-age=1"),
            (header::ETAG, "\"a\""),
        ]);
        let fresh = map(&[
            (header::CONTENT_LENGTH, "0"),
            (header::CACHE_CONTROL, "max-age=60"),
        ]);
        let merged = updated_headers(&StoredHeaders::from(&stored), &fresh);
        assert_eq!(merged[header::CONTENT_LENGTH], "5");
        assert_eq!(merged[header::CACHE_CONTROL], "max-age=60");
        assert_eq!(merged[header::ETAG], "\"a\"");
        assert!(validates(&fresh, &stored));
        assert!(!validates(&map(&[(header::ETAG, "\"b\"")]), &stored));
    }
}
