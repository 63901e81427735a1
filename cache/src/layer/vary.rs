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
pub(crate) fn names(headers: &impl super::response::Fields) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in headers.fields(&VARY) {
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
/// an absent field differs from an empty one. The fields in [`UNORDERED`] are normalized
/// further, as their grammar allows.
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
        let members = values.flat_map(|value| value.as_bytes().split(|&b| b == b','));
        if UNORDERED.contains(name) {
            unordered(members, &mut out);
        } else {
            for (i, member) in members.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(member.trim_ascii());
            }
        }
        out.push(0);
    }
    out
}

/// Fields whose members are case-insensitive and whose order carries no meaning beyond their
/// weights: language ranges (RFC 9110 §12.5.4, RFC 4647 §2), content codings (§12.5.3,
/// §8.4.1) and charsets (§12.5.2 of RFC 7231, kept by RFC 9110's registry). `Accept-Language:
/// de, en` and `EN, de` select the same variant. `Accept` is not among them: a media type's
/// parameters may be case-sensitive.
const UNORDERED: [HeaderName; 3] = [
    http::header::ACCEPT_LANGUAGE,
    http::header::ACCEPT_ENCODING,
    http::header::ACCEPT_CHARSET,
];

/// Writes the members of a list field of [`UNORDERED`] to `out`: each lowercased, with
/// whitespace around its parameters removed (`en;q=0.5`), without repeats, sorted.
fn unordered<'a>(members: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    let mut normal: Vec<Vec<u8>> = members
        .map(|member| {
            let mut member_out = Vec::with_capacity(member.len());
            for (i, part) in member.split(|&b| b == b';').enumerate() {
                if i > 0 {
                    member_out.push(b';');
                }
                member_out.extend(part.trim_ascii().iter().map(u8::to_ascii_lowercase));
            }
            member_out
        })
        .filter(|member| !member.is_empty())
        .collect();
    normal.sort_unstable();
    normal.dedup();
    for (i, member) in normal.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(member);
    }
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
    fn rfc9111_4_1_language_codings_and_charsets_select_regardless_of_order_and_case() {
        let select = |name: &'static str, value: &'static str| {
            let mut request = HeaderMap::new();
            request.insert(name, HeaderValue::from_static(value));
            selection(&[HeaderName::from_static(name)], &request)
        };
        assert_eq!(
            select("accept-language", "de, en"),
            select("accept-language", "EN,de")
        );
        assert_eq!(
            select("accept-language", "de;q=0.5, en"),
            select("accept-language", "en, DE ; Q=0.5")
        );
        assert_ne!(
            select("accept-language", "de;q=0.5, en"),
            select("accept-language", "de, en;q=0.5")
        );
        assert_eq!(
            select("accept-encoding", "gzip, br"),
            select("accept-encoding", "BR, gzip")
        );
        // Other fields keep their order and case.
        assert_ne!(select("accept", "a/b, c/d"), select("accept", "c/d, a/b"));
        assert_ne!(select("x-tenant", "A"), select("x-tenant", "a"));
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
