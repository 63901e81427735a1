//! Range requests (RFC 9110 §14) answered from a stored response, and stored parts (RFC 9111
//! §3.3–3.4): which requests a `206` kept by the cache answers, and how parts combine.

use std::ops::RangeInclusive;

use bytes::{Bytes, BytesMut};
use http::{
    HeaderMap, HeaderValue, Method, StatusCode, header,
    header::{CONTENT_RANGE, ETAG, RANGE},
};
use layercake_backends::{Backend, Entry, Key};

use super::{
    CachedResponse, KeyExtractor,
    response::Fields,
    service::{Asking, Shared},
    validation::if_range_holds,
};

/// How a `Range` request is answered from a stored body of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ranged {
    /// No usable range (none, another unit, several ranges, a syntax error): the whole body,
    /// as a `200` (RFC 9110 §14.2 lets a server ignore `Range`).
    Whole,
    /// One satisfiable range: a `206` with these bytes.
    Part(RangeInclusive<u64>),
    /// A valid range the body cannot satisfy: a `416`.
    Unsatisfiable,
}

/// Reads a single `bytes` range (RFC 9110 §14.1.2): `first-last`, `first-` or `-suffix`.
pub(crate) fn ranged(request: &HeaderMap, len: u64) -> Ranged {
    let Some(spec) = request
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().unwrap_or(u64::MAX))
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `-suffix`: the last `suffix` bytes.
        return match number(last) {
            Some(suffix) if suffix > 0 && len > 0 => {
                Ranged::Part(len.saturating_sub(suffix)..=len - 1)
            }
            Some(_) => Ranged::Unsatisfiable,
            None => Ranged::Whole,
        };
    }
    let Some(first) = number(first) else {
        return Ranged::Whole;
    };
    let last = match (last.is_empty(), number(last)) {
        (true, _) => len.saturating_sub(1),
        (false, Some(last)) if last >= first => last.min(len.saturating_sub(1)),
        _ => return Ranged::Whole,
    };
    if first >= len {
        return Ranged::Unsatisfiable;
    }
    Ranged::Part(first..=last)
}

/// What a stored `206` holds (RFC 9111 §3.3): one part of a representation of `len` bytes,
/// from its `Content-Range` (`bytes first-last/len`; a part of unknown length is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredPart {
    pub(crate) range: RangeInclusive<u64>,
    pub(crate) len: u64,
}

impl StoredPart {
    /// The part a response's headers describe, when it is one single part of a representation
    /// of known length.
    pub(crate) fn of(headers: &impl Fields) -> Option<Self> {
        let spec = headers.field(&CONTENT_RANGE)?.to_str().ok()?;
        let (range, len) = spec.trim().strip_prefix("bytes ")?.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let number = |s: &str| -> Option<u64> {
            let s = s.trim();
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse().ok())
                .flatten()
        };
        let (first, last, len) = (number(first)?, number(last)?, number(len)?);
        (first <= last && last < len).then_some(StoredPart {
            range: first..=last,
            len,
        })
    }

    /// The bytes of `wanted`, when this part (whose bytes are `body`) holds all of them.
    pub(crate) fn slice(&self, body: &Bytes, wanted: &RangeInclusive<u64>) -> Option<Bytes> {
        let covered = self.range.start() <= wanted.start() && wanted.end() <= self.range.end();
        let offset = |at: u64| usize::try_from(at - self.range.start()).ok();
        let (start, end) = (offset(*wanted.start())?, offset(*wanted.end())?);
        (covered && end < body.len()).then(|| body.slice(start..=end))
    }

    /// This part and `other` (of the same representation) as one part, when they overlap or
    /// touch: its range and bytes.
    pub(crate) fn join(
        &self,
        body: &Bytes,
        other: &StoredPart,
        other_body: &Bytes,
    ) -> Option<(StoredPart, Bytes)> {
        if self.len != other.len {
            return None;
        }
        let (first, first_body, second, second_body) = if self.range.start() <= other.range.start()
        {
            (self, body, other, other_body)
        } else {
            (other, other_body, self, body)
        };
        if *second.range.start() > first.range.end().saturating_add(1) {
            return None;
        }
        let end = (*first.range.end()).max(*second.range.end());
        let mut joined = BytesMut::from(&first_body[..]);
        if second.range.end() > first.range.end() {
            let skip = usize::try_from(first.range.end() + 1 - second.range.start()).ok()?;
            joined.extend_from_slice(second_body.get(skip..)?);
        }
        let part = StoredPart {
            range: *first.range.start()..=end,
            len: self.len,
        };
        (joined.len() as u64 == end - first.range.start() + 1).then(|| (part, joined.freeze()))
    }

    /// Whether the part is the whole representation.
    pub(crate) fn is_whole(&self) -> bool {
        *self.range.start() == 0 && *self.range.end() + 1 == self.len
    }
}

/// A strong `ETag` (RFC 9110 §8.8.3): what two parts must share to be combined (RFC 9111 §3.4).
pub(crate) fn strong_etag(headers: &impl Fields) -> Option<&HeaderValue> {
    headers
        .field(&ETAG)
        .filter(|etag| etag.as_bytes().trim_ascii_start().starts_with(b"\""))
}

/// `Content-Range` of a part, or of an unsatisfiable range (`bytes */len`).
pub(crate) fn content_range(part: Option<&RangeInclusive<u64>>, len: u64) -> HeaderValue {
    let text = match part {
        Some(part) => format!("bytes {}-{}/{len}", part.start(), part.end()),
        None => format!("bytes */{len}"),
    };
    HeaderValue::try_from(text).expect("digits are a valid header value")
}

/// Whether a stored response is a part of its representation (a `206`, RFC 9111 §3.3).
pub(crate) fn is_partial(entry: &Entry<CachedResponse>) -> bool {
    entry.value().status() == StatusCode::PARTIAL_CONTENT
}

/// Stored parts (RFC 9111 §3.3–3.4): which requests a part answers, and how parts combine.
impl<B, K, Q, R> Shared<B, K, Q, R>
where
    B: Backend<CachedResponse>,
    K: KeyExtractor,
    Q: crate::predicate::RequestPredicate,
    R: crate::predicate::ResponsePredicate,
{
    /// The bytes of a stored part (a `206`, RFC 9111 §3.3) that answer `asking`, and their
    /// range: a GET whose single range the part holds, and whose `If-Range` holds.
    pub(crate) fn part_for(
        &self,
        entry: &Entry<CachedResponse>,
        asking: &Asking<'_>,
    ) -> Option<(std::ops::RangeInclusive<u64>, u64, Bytes)> {
        let cached = entry.value();
        let part = StoredPart::of(cached.headers())?;
        if *asking.method != Method::GET
            || !asking.facts.range
            || !if_range_holds(asking.headers, cached.headers())
        {
            return None;
        }
        let Ranged::Part(wanted) = ranged(asking.headers, part.len) else {
            return None;
        };
        let bytes = part.slice(cached.body(), &wanted)?;
        Some((wanted, part.len, bytes))
    }

    /// A part (a `206`) combined with the part stored under `key` when they are parts of one
    /// representation (the same strong `ETag`, RFC 9111 §3.4) that touch or overlap: the
    /// joined part, or, when it is the whole representation, a `200`. Anything else as it is.
    pub(crate) async fn combined(
        &self,
        key: &Key,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let unchanged = |headers, body| (status, headers, body);
        let Some(part) = StoredPart::of(&headers).filter(|_| status == StatusCode::PARTIAL_CONTENT)
        else {
            return unchanged(headers, body);
        };
        let found = self.engine.lookup(key).await;
        let Some(stored) = found.entry().map(|entry| entry.value()) else {
            return unchanged(headers, body);
        };
        let same = stored.status() == StatusCode::PARTIAL_CONTENT
            && strong_etag(stored.headers()).is_some()
            && strong_etag(stored.headers()) == strong_etag(&headers);
        let joined = StoredPart::of(stored.headers())
            .filter(|_| same)
            .and_then(|stored_part| part.join(&body, &stored_part, stored.body()))
            .filter(|(_, bytes)| bytes.len() <= self.rules.max_body_size);
        let Some((joined, bytes)) = joined else {
            return unchanged(headers, body);
        };
        if joined.is_whole() {
            tracing::debug!(%key, "stored parts combined into the whole representation");
            headers.remove(header::CONTENT_RANGE);
            return (StatusCode::OK, headers, bytes);
        }
        headers.insert(
            header::CONTENT_RANGE,
            content_range(Some(&joined.range), joined.len),
        );
        (status, headers, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(spec: &str, len: u64) -> Ranged {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, spec.parse().unwrap());
        ranged(&headers, len)
    }

    #[test]
    fn single_ranges() {
        assert_eq!(range("bytes=0-4", 10), Ranged::Part(0..=4));
        assert_eq!(range("bytes=5-", 10), Ranged::Part(5..=9));
        assert_eq!(range("bytes=-3", 10), Ranged::Part(7..=9));
        assert_eq!(range("bytes=-30", 10), Ranged::Part(0..=9));
        assert_eq!(range("bytes=8-100", 10), Ranged::Part(8..=9));
    }

    #[test]
    fn rfc9111_3_4_parts_that_touch_or_overlap_join() {
        let part = |spec: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_RANGE, spec.parse().unwrap());
            StoredPart::of(&headers).unwrap()
        };
        let (a, b) = (part("bytes 0-3/10"), part("bytes 4-9/10"));
        let (joined, bytes) = a
            .join(&Bytes::from("0123"), &b, &Bytes::from("456789"))
            .unwrap();
        assert!(joined.is_whole());
        assert_eq!(bytes, "0123456789");
        let (joined, bytes) = part("bytes 2-6/10")
            .join(
                &Bytes::from("23456"),
                &part("bytes 0-3/10"),
                &Bytes::from("0123"),
            )
            .unwrap();
        assert_eq!((joined.range, &bytes[..]), (0..=6, &b"0123456"[..]));
        assert!(
            a.join(
                &Bytes::from("0123"),
                &part("bytes 6-9/10"),
                &Bytes::from("6789")
            )
            .is_none()
        );
        assert_eq!(
            part("bytes 2-6/10").slice(&Bytes::from("23456"), &(3..=5)),
            Some(Bytes::from("345"))
        );
        assert_eq!(
            part("bytes 2-6/10").slice(&Bytes::from("23456"), &(3..=7)),
            None
        );
        let mut headers = HeaderMap::new();
        for invalid in [
            "bytes 0-3/*",
            "bytes 5-3/10",
            "bytes 0-10/10",
            "items 0-1/2",
        ] {
            headers.insert(CONTENT_RANGE, invalid.parse().unwrap());
            assert_eq!(StoredPart::of(&headers), None, "{invalid}");
        }
    }

    #[test]
    fn unsatisfiable_and_ignored_ranges() {
        assert_eq!(range("bytes=10-", 10), Ranged::Unsatisfiable);
        assert_eq!(range("bytes=-0", 10), Ranged::Unsatisfiable);
        assert_eq!(range("bytes=0-1,4-5", 10), Ranged::Whole);
        assert_eq!(range("bytes=5-2", 10), Ranged::Whole);
        assert_eq!(range("items=0-1", 10), Ranged::Whole);
        assert_eq!(range("bytes=x-1", 10), Ranged::Whole);
        assert_eq!(range("bytes=1-x", 10), Ranged::Whole);
        assert_eq!(ranged(&HeaderMap::new(), 10), Ranged::Whole);
    }
}
