//! A small reader of `Cache-Control` directives (RFC 9111 §5.2).

use http::{HeaderMap, header::CACHE_CONTROL};

/// The response directives the storage rules look at.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ResponseDirectives {
    pub(crate) no_store: bool,
    pub(crate) private: bool,
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
            for name in names(value) {
                if name.eq_ignore_ascii_case("no-store") {
                    directives.no_store = true;
                } else if name.eq_ignore_ascii_case("private") {
                    directives.private = true;
                }
            }
        }
        directives
    }
}

/// The directive names in one header value; quoted arguments (which may hold commas) are
/// skipped.
fn names(value: &str) -> impl Iterator<Item = &str> {
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
            if let Some(arg) = rest.strip_prefix('=') {
                rest = skip_argument(arg);
            }
            if !name.is_empty() {
                return Some(name);
            }
        }
    })
}

fn skip_argument(arg: &str) -> &str {
    let arg = arg.trim_start();
    if let Some(quoted) = arg.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return &quoted[i + 1..],
                _ => {}
            }
        }
        ""
    } else {
        &arg[arg.find(',').unwrap_or(arg.len())..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_skip_quoted_arguments() {
        let found: Vec<&str> =
            names(r#"max-age=60, private="set-cookie, x-a", No-Store"#).collect();
        assert_eq!(found, ["max-age", "private", "No-Store"]);
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
