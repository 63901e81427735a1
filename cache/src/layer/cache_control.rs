//! A small reader of `Cache-Control` directives (RFC 9111 §5.2).

use http::{HeaderMap, header::CACHE_CONTROL};

/// The response directives the storage rules look at.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ResponseDirectives {
    pub(crate) no_store: bool,
    pub(crate) private: bool,
    /// `max-age`, in seconds.
    pub(crate) max_age: Option<u64>,
    /// `s-maxage`, in seconds: for shared caches, it wins over `max-age`.
    pub(crate) s_maxage: Option<u64>,
}

impl ResponseDirectives {
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let mut directives = ResponseDirectives::default();
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else {
                // Unreadable Cache-Control: assume the most restrictive reading.
                directives.no_store = true;
                continue;
            };
            for (name, argument) in directives_of(value) {
                if name.eq_ignore_ascii_case("no-store") {
                    directives.no_store = true;
                } else if name.eq_ignore_ascii_case("private") {
                    directives.private = true;
                } else if name.eq_ignore_ascii_case("max-age") {
                    // An invalid value makes the response stale at once (RFC 9111 §4.2.1).
                    directives.max_age = Some(seconds(argument).unwrap_or(0));
                } else if name.eq_ignore_ascii_case("s-maxage") {
                    directives.s_maxage = Some(seconds(argument).unwrap_or(0));
                }
            }
        }
        directives
    }
}

/// Delta-seconds (RFC 9111 §1.2.2): digits, possibly quoted; too large saturates.
fn seconds(argument: Option<&str>) -> Option<u64> {
    let digits = argument?.trim().trim_matches('"');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// The directives in one header value, each a name and its argument, if any (quoted
/// arguments may hold commas).
fn directives_of(value: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let mut rest = value;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                return None;
            }
            let end = rest.find([',', '=']).unwrap_or(rest.len());
            let name = rest[..end].trim();
            rest = &rest[end..];
            let mut argument = None;
            if let Some(arg) = rest.strip_prefix('=') {
                let (value, after) = split_argument(arg);
                argument = Some(value);
                rest = after;
            }
            if !name.is_empty() {
                return Some((name, argument));
            }
        }
    })
}

/// An argument (quoted or not) and what follows it.
fn split_argument(arg: &str) -> (&str, &str) {
    let arg = arg.trim_start();
    if let Some(quoted) = arg.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return (&arg[..i + 2], &quoted[i + 1..]),
                _ => {}
            }
        }
        (arg, "")
    } else {
        let end = arg.find(',').unwrap_or(arg.len());
        (arg[..end].trim(), &arg[end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_keep_quoted_arguments_whole() {
        let found: Vec<(&str, Option<&str>)> =
            directives_of(r#"max-age=60, private="set-cookie, x-a", No-Store"#).collect();
        assert_eq!(
            found,
            [
                ("max-age", Some("60")),
                ("private", Some(r#""set-cookie, x-a""#)),
                ("No-Store", None)
            ]
        );
    }

    #[test]
    fn max_age_and_s_maxage_are_read_and_invalid_values_mean_stale() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CACHE_CONTROL,
            r#"public, max-age="30", s-maxage=120"#.parse().unwrap(),
        );
        let d = ResponseDirectives::parse(&headers);
        assert_eq!((d.max_age, d.s_maxage), (Some(30), Some(120)));
        headers.insert(CACHE_CONTROL, "max-age=soon".parse().unwrap());
        assert_eq!(ResponseDirectives::parse(&headers).max_age, Some(0));
    }

    #[test]
    fn directives_are_case_insensitive_and_span_header_lines() {
        let mut headers = HeaderMap::new();
        headers.append(CACHE_CONTROL, "public, max-age=5".parse().unwrap());
        headers.append(CACHE_CONTROL, "PRIVATE".parse().unwrap());
        let d = ResponseDirectives::parse(&headers);
        assert!(d.private);
        assert!(!d.no_store);
    }
}
