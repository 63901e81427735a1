//! A small reader of `Cache-Control` directives (RFC 9111 §5.2).

use http::{
    HeaderMap, HeaderValue,
    header::{CACHE_CONTROL, PRAGMA},
};

/// The response directives the storage and freshness rules look at.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ResponseDirectives {
    pub(crate) no_store: bool,
    pub(crate) private: bool,
    pub(crate) public: bool,
    /// `no-cache` without field names: stored, but never served without revalidation.
    pub(crate) no_cache: bool,
    pub(crate) must_revalidate: bool,
    pub(crate) proxy_revalidate: bool,
    /// `must-understand` (§5.2.2.3): store only a status whose caching rules are understood,
    /// and then whatever `no-store` says.
    pub(crate) must_understand: bool,
    /// `max-age`, in seconds.
    pub(crate) max_age: Option<u64>,
    /// `s-maxage`, in seconds: for shared caches, it wins over `max-age`.
    pub(crate) s_maxage: Option<u64>,
    /// RFC 5861 `stale-while-revalidate`, in seconds.
    pub(crate) stale_while_revalidate: Option<u64>,
    /// RFC 5861 `stale-if-error`, in seconds.
    pub(crate) stale_if_error: Option<u64>,
}

impl ResponseDirectives {
    pub(crate) fn parse(headers: &impl super::response::Fields) -> Self {
        let mut d = ResponseDirectives::default();
        for value in headers.fields(&CACHE_CONTROL) {
            let Ok(value) = value.to_str() else {
                // Unreadable Cache-Control: assume the most restrictive reading.
                d.no_store = true;
                continue;
            };
            for (name, argument) in directives_of(value) {
                let is = |directive: &str| name.eq_ignore_ascii_case(directive);
                if is("no-store") {
                    d.no_store = true;
                } else if is("private") {
                    // `private="field"` only keeps those fields private (RFC 9111 §5.2.2.7);
                    // this cache reads it as the whole response, the safe reading.
                    d.private = true;
                } else if is("public") {
                    d.public = true;
                } else if is("no-cache") {
                    // `no-cache="field"` is read as unqualified `no-cache`, the safe reading.
                    d.no_cache = true;
                } else if is("must-revalidate") {
                    d.must_revalidate = true;
                } else if is("proxy-revalidate") {
                    d.proxy_revalidate = true;
                } else if is("must-understand") {
                    d.must_understand = true;
                } else if is("max-age") {
                    // An invalid value makes the response stale at once (RFC 9111 §4.2.1).
                    first(&mut d.max_age, seconds(argument).unwrap_or(0));
                } else if is("s-maxage") {
                    first(&mut d.s_maxage, seconds(argument).unwrap_or(0));
                } else if is("stale-while-revalidate") {
                    if let Some(secs) = seconds(argument) {
                        first(&mut d.stale_while_revalidate, secs);
                    }
                } else if is("stale-if-error") {
                    if let Some(secs) = seconds(argument) {
                        first(&mut d.stale_if_error, secs);
                    }
                }
            }
        }
        d
    }
}

impl ResponseDirectives {
    /// The directives of a targeted cache-control field (RFC 9213 §2.1), its lines combined:
    /// an RFC 8941 Dictionary whose members have the meanings they have in `Cache-Control`
    /// (`max-age=60`, `no-store`, `no-store=?0` …). `None` when the field is not a valid
    /// Dictionary: a cache then ignores it (§2.2). Members this cache does not know are
    /// skipped; a known one whose value has the wrong type (`max-age="60"`) counts as invalid,
    /// the safe reading (`max-age` stale at once, a flag set).
    pub(crate) fn parse_targeted<'a>(lines: impl Iterator<Item = &'a HeaderValue>) -> Option<Self> {
        let mut d = ResponseDirectives::default();
        let mut any = false;
        for line in lines {
            any = true;
            for (key, value) in sf::dictionary(line.as_bytes())? {
                let flag = || !matches!(value, sf::Item::Boolean(false));
                let seconds = || match value {
                    sf::Item::Integer(n) => u64::try_from(n).unwrap_or(0).min(MAX_DELTA_SECONDS),
                    _ => 0,
                };
                match key {
                    b"no-store" => d.no_store |= flag(),
                    b"private" => d.private |= flag(),
                    b"public" => d.public |= flag(),
                    b"no-cache" => d.no_cache |= flag(),
                    b"must-revalidate" => d.must_revalidate |= flag(),
                    b"proxy-revalidate" => d.proxy_revalidate |= flag(),
                    b"must-understand" => d.must_understand |= flag(),
                    b"max-age" => first(&mut d.max_age, seconds()),
                    b"s-maxage" => first(&mut d.s_maxage, seconds()),
                    b"stale-while-revalidate" => {
                        first(&mut d.stale_while_revalidate, seconds());
                    }
                    b"stale-if-error" => first(&mut d.stale_if_error, seconds()),
                    _ => {}
                }
            }
        }
        any.then_some(d)
    }
}

/// Just enough of RFC 8941 (Structured Field Values) to read a Dictionary strictly: every
/// member's syntax is checked (keys, integers, decimals, strings, tokens, byte sequences,
/// booleans, parameters, inner lists); only what the directives need is kept.
mod sf {
    /// A member's value, as far as directives care.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Item {
        Integer(i64),
        Boolean(bool),
        /// A decimal, string, token, byte sequence or inner list.
        Other,
    }

    /// The members of a Dictionary (RFC 8941 §4.2.2), or `None` when `input` is not one.
    pub(crate) fn dictionary(input: &[u8]) -> Option<Vec<(&[u8], Item)>> {
        let mut p = Parser { rest: input };
        p.skip(|b| b == b' ');
        let mut members = Vec::new();
        while !p.rest.is_empty() {
            let key = p.key()?;
            let value = if p.eat(b'=') {
                if p.rest.first() == Some(&b'(') {
                    p.inner_list()?;
                    Item::Other
                } else {
                    p.bare_item()?
                }
            } else {
                Item::Boolean(true)
            };
            p.parameters()?;
            members.push((key, value));
            p.skip(|b| b == b' ' || b == b'\t');
            if p.rest.is_empty() {
                break;
            }
            if !p.eat(b',') {
                return None;
            }
            p.skip(|b| b == b' ' || b == b'\t');
            if p.rest.is_empty() {
                return None; // a trailing comma
            }
        }
        Some(members)
    }

    struct Parser<'a> {
        rest: &'a [u8],
    }

    impl<'a> Parser<'a> {
        fn eat(&mut self, byte: u8) -> bool {
            let ate = self.rest.first() == Some(&byte);
            if ate {
                self.rest = &self.rest[1..];
            }
            ate
        }

        fn skip(&mut self, while_: impl Fn(u8) -> bool) -> &'a [u8] {
            let n = self.rest.iter().take_while(|&&b| while_(b)).count();
            let (taken, rest) = self.rest.split_at(n);
            self.rest = rest;
            taken
        }

        /// `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`
        fn key(&mut self) -> Option<&'a [u8]> {
            let first = *self.rest.first()?;
            if !(first.is_ascii_lowercase() || first == b'*') {
                return None;
            }
            Some(
                self.skip(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b)),
            )
        }

        fn bare_item(&mut self) -> Option<Item> {
            match *self.rest.first()? {
                b'-' | b'0'..=b'9' => self.number(),
                b'"' => {
                    self.rest = &self.rest[1..];
                    loop {
                        match *self.rest.first()? {
                            b'"' => break,
                            b'\\' if matches!(self.rest.get(1), Some(b'"' | b'\\')) => {
                                self.rest = &self.rest[1..];
                            }
                            b' '..=b'~' if self.rest[0] != b'\\' => {}
                            _ => return None,
                        }
                        self.rest = &self.rest[1..];
                    }
                    self.rest = &self.rest[1..];
                    Some(Item::Other)
                }
                b':' => {
                    self.rest = &self.rest[1..];
                    self.skip(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
                    self.eat(b':').then_some(Item::Other)
                }
                b'?' => match self.rest.get(1) {
                    Some(b'0') | Some(b'1') => {
                        let value = self.rest[1] == b'1';
                        self.rest = &self.rest[2..];
                        Some(Item::Boolean(value))
                    }
                    _ => None,
                },
                b if b.is_ascii_alphabetic() || b == b'*' => {
                    self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b));
                    Some(Item::Other)
                }
                _ => None,
            }
        }

        /// `sf-integer` (at most 15 digits) or `sf-decimal` (12 and 3).
        fn number(&mut self) -> Option<Item> {
            let negative = self.eat(b'-');
            let whole = self.skip(|b| b.is_ascii_digit());
            if whole.is_empty() {
                return None;
            }
            if self.eat(b'.') {
                let fraction = self.skip(|b| b.is_ascii_digit());
                return (whole.len() <= 12 && (1..=3).contains(&fraction.len()))
                    .then_some(Item::Other);
            }
            if whole.len() > 15 {
                return None;
            }
            let n: i64 = std::str::from_utf8(whole).ok()?.parse().ok()?;
            Some(Item::Integer(if negative { -n } else { n }))
        }

        /// `*( ";" *SP key [ "=" bare-item ] )`
        fn parameters(&mut self) -> Option<()> {
            while self.eat(b';') {
                self.skip(|b| b == b' ');
                self.key()?;
                if self.eat(b'=') {
                    self.bare_item()?;
                }
            }
            Some(())
        }

        /// `"(" *SP [ sf-item *( 1*SP sf-item ) *SP ] ")" parameters`
        fn inner_list(&mut self) -> Option<()> {
            self.eat(b'(');
            loop {
                self.skip(|b| b == b' ');
                if self.eat(b')') {
                    return self.parameters();
                }
                self.bare_item()?;
                self.parameters()?;
                if !matches!(self.rest.first(), Some(b' ' | b')')) {
                    return None;
                }
            }
        }
    }
}

/// The request directives (RFC 9111 §5.2.1) and `Pragma: no-cache` (§5.4).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestDirectives {
    /// The client does not want a response older than this many seconds.
    pub(crate) max_age: Option<u64>,
    /// The client accepts a response stale by this many seconds ([`MAX_DELTA_SECONDS`]: any).
    pub(crate) max_stale: Option<u64>,
    /// The client wants a response that stays fresh for at least this many seconds more.
    pub(crate) min_fresh: Option<u64>,
    /// Do not serve a stored response without validating it with the origin.
    pub(crate) no_cache: bool,
    /// Do not store the response.
    pub(crate) no_store: bool,
    /// Serve from the cache or answer 504; never go upstream.
    pub(crate) only_if_cached: bool,
}

impl RequestDirectives {
    /// The directives of `headers`' `Cache-Control` (and, only when there is none,
    /// `Pragma: no-cache`).
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let mut d = RequestDirectives::default();
        let mut any = false;
        for value in headers.get_all(CACHE_CONTROL) {
            any = true;
            let Ok(value) = value.to_str() else {
                continue;
            };
            for (name, argument) in directives_of(value) {
                let is = |directive: &str| name.eq_ignore_ascii_case(directive);
                if is("no-cache") {
                    d.no_cache = true;
                } else if is("no-store") {
                    d.no_store = true;
                } else if is("only-if-cached") {
                    d.only_if_cached = true;
                } else if is("max-age") {
                    first(&mut d.max_age, seconds(argument).unwrap_or(0));
                } else if is("min-fresh") {
                    first(&mut d.min_fresh, seconds(argument).unwrap_or(0));
                } else if is("max-stale") {
                    // Without a value, any staleness; an invalid value reads as none.
                    let secs = match argument {
                        None => MAX_DELTA_SECONDS,
                        Some(_) => seconds(argument).unwrap_or(0),
                    };
                    first(&mut d.max_stale, secs);
                }
            }
        }
        if !any {
            d.no_cache = headers
                .get_all(PRAGMA)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|v| v.trim().eq_ignore_ascii_case("no-cache"));
        }
        d
    }

    /// Whether the client asks for nothing special.
    pub(crate) fn is_empty(&self) -> bool {
        *self == RequestDirectives::default()
    }
}

/// Sets a directive's value unless an earlier occurrence set it: with a directive repeated
/// (`max-age=1, max-age=1800`, on one line or two), the first is used (RFC 9111 §4.2.1).
fn first(slot: &mut Option<u64>, value: u64) {
    slot.get_or_insert(value);
}

/// The largest delta-seconds a cache needs to represent: RFC 9111 §1.2.2 has a larger value
/// (or one whose calculations overflow) read as 2^31 seconds, about 68 years.
pub(crate) const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// Delta-seconds (RFC 9111 §1.2.2): digits, possibly quoted; anything over 2^31 is read as
/// 2^31, so every duration and timestamp computed from it stays far from overflowing.
pub(crate) fn seconds(argument: Option<&str>) -> Option<u64> {
    let digits = argument?.trim().trim_matches('"');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        digits
            .parse::<u64>()
            .map_or(MAX_DELTA_SECONDS, |n| n.min(MAX_DELTA_SECONDS)),
    )
}

/// The directives in one header value, each a name and its argument, if any (quoted
/// arguments may hold commas).
pub(crate) fn directives_of(value: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
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
    fn rfc9111_4_2_1_a_repeated_directive_uses_its_first_value() {
        let mut headers = HeaderMap::new();
        headers.append(CACHE_CONTROL, "max-age=1, max-age=1800".parse().unwrap());
        assert_eq!(ResponseDirectives::parse(&headers).max_age, Some(1));
        headers.append(CACHE_CONTROL, "max-age=3600, s-maxage=5".parse().unwrap());
        headers.append(CACHE_CONTROL, "s-maxage=9".parse().unwrap());
        let d = ResponseDirectives::parse(&headers);
        assert_eq!((d.max_age, d.s_maxage), (Some(1), Some(5)));
        let mut request = HeaderMap::new();
        request.append(CACHE_CONTROL, "max-age=5, max-age=50".parse().unwrap());
        assert_eq!(RequestDirectives::parse(&request).max_age, Some(5));
    }

    #[test]
    fn rfc9213_targeted_fields_are_dictionaries_read_strictly() {
        let parse = |text: &'static str| {
            let value = HeaderValue::from_static(text);
            ResponseDirectives::parse_targeted(std::iter::once(&value))
        };
        let d =
            parse("max-age=60, no-store=?0, private;x=1, x-ext=(a \"b\" 1.5), y=:YWJj:").unwrap();
        assert_eq!((d.max_age, d.no_store, d.private), (Some(60), false, true));
        assert!(parse("no-store").unwrap().no_store);
        // A value of the wrong type: the safe reading.
        assert_eq!(parse("max-age=\"60\"").unwrap().max_age, Some(0));
        for invalid in [
            "MAX-AGE=60",
            "max-age=60,",
            "max-age=6 0",
            "max-age==1",
            "a=\"x",
            "a=?2",
        ] {
            assert!(parse(invalid).is_none(), "{invalid}");
        }
    }

    #[test]
    fn delta_seconds_past_two_to_the_31_read_as_two_to_the_31() {
        assert_eq!(
            seconds(Some("99999999999999999999")),
            Some(MAX_DELTA_SECONDS)
        );
        assert_eq!(seconds(Some("4294967296")), Some(MAX_DELTA_SECONDS));
        assert_eq!(seconds(Some("\"2147483647\"")), Some(MAX_DELTA_SECONDS - 1));
        assert_eq!(seconds(Some("-1")), None);
    }

    #[test]
    fn request_directives_and_pragma() {
        let mut headers = HeaderMap::new();
        headers.insert(PRAGMA, "no-cache".parse().unwrap());
        assert!(RequestDirectives::parse(&headers).no_cache);
        headers.insert(
            CACHE_CONTROL,
            "max-age=5, min-fresh=2, max-stale, only-if-cached"
                .parse()
                .unwrap(),
        );
        let d = RequestDirectives::parse(&headers);
        // With Cache-Control present, Pragma is ignored (RFC 9111 §5.4).
        assert!(!d.no_cache);
        assert_eq!(
            (d.max_age, d.min_fresh, d.max_stale),
            (Some(5), Some(2), Some(MAX_DELTA_SECONDS))
        );
        assert!(d.only_if_cached);
        headers.insert(CACHE_CONTROL, "max-stale=10, no-store".parse().unwrap());
        let d = RequestDirectives::parse(&headers);
        assert_eq!(d.max_stale, Some(10));
        assert!(d.no_store);
        assert!(RequestDirectives::parse(&HeaderMap::new()).is_empty());
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
