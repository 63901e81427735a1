//! `Vary` (RFC 9111 §4.1): several responses for one URL, each selected by the request
//! headers the origin named.
//!
//! Under the URL's own key the layer keeps a small entry that lists the names and a
//! generation ([`Vary::Variants`](super::response::Vary)); each response is stored under the
//! URL's key extended with the generation and the normalized values of the named headers. A
//! request finds the list first, then its variant: two lookups for a varying URL, one for
//! any other. Invalidating the URL removes the list, and the next list has a new generation,
//! so no variant stored before is reachable again.

use std::{
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicU64, Ordering},
};

use http::{HeaderMap, HeaderName, header::VARY};
use layercake_backends::Key;

/// The request headers a response's `Vary` names: lowercase, sorted, without repeats; empty
/// without `Vary`; `None` for `Vary: *` (or a value that is not a list of names), which no
/// request can be known to match.
pub(crate) fn names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in headers.get_all(VARY) {
        let value = value.to_str().ok()?;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return None;
            }
            names.push(HeaderName::from_bytes(name.as_bytes()).ok()?);
        }
    }
    names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    Some(names)
}

/// The values of `names` in `request`, normalized as RFC 9111 §4.1 allows (RFC 9110 §5.3):
/// the lines of a field combined with commas, optional whitespace around list members
/// removed. Whitespace inside a member is kept as sent (`John  Smith` is not `John Smith`);
/// an absent field differs from an empty one.
pub(crate) fn selection(names: &[HeaderName], request: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for name in names {
        out.extend_from_slice(name.as_str().as_bytes());
        let mut values = request.get_all(name).iter().peekable();
        if values.peek().is_none() {
            out.push(0);
            continue;
        }
        out.push(1);
        let mut first = true;
        for value in values {
            for member in value.as_bytes().split(|&b| b == b',') {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(member.trim_ascii());
            }
        }
        out.push(0);
    }
    out
}

/// The key a variant is stored under.
pub(crate) fn variant_key(primary: &Key, generation: u64, selection: &[u8]) -> Key {
    let mut key = primary.to_builder();
    key.push("vary")
        .push(generation.to_le_bytes())
        .push(selection);
    key.build()
}

/// A generation no other list of variants has, here or on another instance sharing a store.
pub(crate) fn new_generation() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u64(layercake_backends::Timestamp::now().as_millis());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn names_are_normalized_and_star_matches_nothing() {
        let mut headers = HeaderMap::new();
        headers.append(VARY, HeaderValue::from_static("Accept-Language, accept"));
        headers.append(VARY, HeaderValue::from_static("ACCEPT"));
        let names = names(&headers).unwrap();
        assert_eq!(names, ["accept", "accept-language"]);
        headers.append(VARY, HeaderValue::from_static("*"));
        assert_eq!(super::names(&headers), None);
        assert_eq!(super::names(&HeaderMap::new()), Some(vec![]));
    }

    #[test]
    fn selections_ignore_whitespace_and_line_splits_but_not_values_or_absence() {
        let names = [HeaderName::from_static("accept")];
        let select = |lines: &[&'static str]| {
            let mut request = HeaderMap::new();
            for line in lines {
                request.append("accept", HeaderValue::from_static(line));
            }
            selection(&names, &request)
        };
        assert_eq!(select(&["a/b,  c/d"]), select(&["a/b", "c/d"]));
        assert_eq!(select(&[" a/b\t, c/d "]), select(&["a/b,c/d"]));
        // Inside a member, whitespace is part of the value (RFC 9110 §5.3).
        assert_ne!(select(&["John  Smith"]), select(&["John Smith"]));
        assert_ne!(select(&["a/b"]), select(&["c/d"]));
        assert_ne!(select(&[]), select(&[""]));
    }
}
