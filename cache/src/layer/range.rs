//! Range requests (RFC 9110 §14) answered from a stored response.

use std::ops::RangeInclusive;

use http::{HeaderMap, HeaderValue, header::RANGE};

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

/// `Content-Range` of a part, or of an unsatisfiable range (`bytes */len`).
pub(crate) fn content_range(part: Option<&RangeInclusive<u64>>, len: u64) -> HeaderValue {
    let text = match part {
        Some(part) => format!("bytes {}-{}/{len}", part.start(), part.end()),
        None => format!("bytes */{len}"),
    };
    HeaderValue::try_from(text).expect("digits are a valid header value")
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
