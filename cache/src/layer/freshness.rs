//! Freshness (RFC 9111 §4.2): how long a response is fresh, how old it already is when it
//! arrives, and whether a stored response satisfies a request's own directives.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use layercake_backends::{Entry, Timestamp};

use super::{
    CachedResponse,
    cache_control::{RequestDirectives, ResponseDirectives, seconds},
};

/// Parses an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime
/// forms a recipient must accept), as robustly as §5.6.7 asks: the names of days and months in
/// any case, and a day of the week that does not match the date (the date wins). `httpdate`
/// parses; it is strict about both, so a date it refuses is tried again with its names
/// recapitalized, then with each day of the week in place of the one given.
pub(crate) fn http_date(value: &HeaderValue) -> Option<Timestamp> {
    let text = value.to_str().ok()?.trim();
    if let Ok(time) = httpdate::parse_http_date(text) {
        return Some(Timestamp::from(time));
    }
    lenient_http_date(text).map(Timestamp::from)
}

/// The slow path of [`http_date`]: only for dates `httpdate` refused as sent.
fn lenient_http_date(text: &str) -> Option<std::time::SystemTime> {
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    // Names as httpdate expects them: `Nov`, `Sunday`, `GMT`.
    let mut normal = String::with_capacity(text.len());
    for word in text.split_inclusive(|c: char| !c.is_ascii_alphabetic()) {
        let letters = word.trim_end_matches(|c: char| !c.is_ascii_alphabetic());
        if letters.eq_ignore_ascii_case("gmt") {
            normal.push_str("GMT");
        } else {
            let mut chars = letters.chars();
            if let Some(c) = chars.next() {
                normal.push(c.to_ascii_uppercase());
                normal.extend(chars.map(|c| c.to_ascii_lowercase()));
            }
        }
        normal.push_str(&word[letters.len()..]);
    }
    if let Ok(time) = httpdate::parse_http_date(&normal) {
        return Some(time);
    }
    // The day of the week is redundant: put each in place of the one given.
    let given = normal.split(|c: char| !c.is_ascii_alphabetic()).next()?;
    let long = DAYS.contains(&given);
    let rest = &normal[given.len()..];
    DAYS.iter().find_map(|day| {
        let day = if long { day } else { &day[..3] };
        httpdate::parse_http_date(&format!("{day}{rest}")).ok()
    })
}

/// The date in header `name`, if it is present and valid.
pub(crate) fn date_header(
    headers: &impl super::response::Fields,
    name: header::HeaderName,
) -> Option<Timestamp> {
    headers.field(&name).and_then(http_date)
}

/// When the exchange with the origin happened, for the age calculation of §4.2.3.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange {
    /// When the request was sent.
    pub(crate) request_time: Timestamp,
    /// When the response head arrived.
    pub(crate) response_time: Timestamp,
}

impl Exchange {
    /// The response's age when it arrived (`corrected_initial_age`, §4.2.3): the larger of
    /// the age its `Date` says (`apparent_age`) and its `Age` plus the time the request took.
    pub(crate) fn initial_age(&self, headers: &HeaderMap) -> Duration {
        let apparent_age = date_header(headers, header::DATE)
            .map(|date| self.response_time.saturating_duration_since(date))
            .unwrap_or_default();
        // A list-valued `Age` (`7200, 0`, or lines a proxy combined) counts by its first
        // member (RFC 9111 §5.1).
        let age_value = headers
            .get(header::AGE)
            .and_then(|v| seconds(v.to_str().ok()?.split(',').next()))
            .map(Duration::from_secs)
            .unwrap_or_default();
        let response_delay = self
            .response_time
            .saturating_duration_since(self.request_time);
        apparent_age.max(age_value.saturating_add(response_delay))
    }
}

/// The statuses a cache may give a heuristic freshness lifetime (RFC 9110 §15.1), and the
/// layer's ttl when a response says nothing of its freshness.
pub(crate) fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// The fraction of the time since `Last-Modified` a heuristic lifetime is (§4.2.2).
const HEURISTIC_FRACTION: u32 = 10;

/// The origin's freshness lifetime for a response (§4.2.1): `s-maxage` (shared caches only),
/// `max-age`, or `Expires` minus `Date`; then, for heuristically cacheable statuses or a
/// response marked `public` (§4.2.2), a tenth of the time since `Last-Modified`, at most `cap`.
/// `None`: the origin says nothing a cache may go by. `Expires` is read only with `expires`
/// (a targeted field replaces it, RFC 9213 §2.2).
pub(crate) fn origin_lifetime(
    status: StatusCode,
    headers: &HeaderMap,
    directives: &ResponseDirectives,
    expires: bool,
    shared: bool,
    response_time: Timestamp,
    cap: Duration,
) -> Option<Duration> {
    let explicit = shared
        .then_some(directives.s_maxage)
        .flatten()
        .or(directives.max_age)
        .map(Duration::from_secs);
    if explicit.is_some() {
        return explicit;
    }
    let date = date_header(headers, header::DATE).unwrap_or(response_time);
    if let Some(expires) = headers.get(header::EXPIRES).filter(|_| expires) {
        // An invalid date (e.g. "0") means already expired (RFC 9111 §5.3).
        return Some(
            http_date(expires)
                .map(|expires| expires.saturating_duration_since(date))
                .unwrap_or_default(),
        );
    }
    let last_modified = date_header(headers, header::LAST_MODIFIED)?;
    (heuristically_cacheable(status) || directives.public).then(|| {
        let heuristic = date.saturating_duration_since(last_modified) / HEURISTIC_FRACTION;
        heuristic.min(cap)
    })
}

/// Whether a stored response has a validator to revalidate it with.
pub(crate) fn has_validator(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED)
}

/// What a request's directives make of a stored entry that is not past all its windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Use it as the layer's own rules say.
    AsStored,
    /// The client accepts it as it is, stale or not (`max-stale`).
    Serve,
    /// Revalidate it; it may still be served if the origin fails (stale-if-error).
    Revalidate,
    /// Revalidate it; never serve it without (`no-cache`, `must-revalidate`).
    MustRevalidate,
}

/// How the request's `directives` judge `entry` at `now` (RFC 9111 §5.2.1). Only called when
/// the request has directives.
pub(crate) fn judge(
    directives: &RequestDirectives,
    entry: &Entry<CachedResponse>,
    stored: impl FnOnce() -> ResponseDirectives,
    now: Timestamp,
    shared: bool,
) -> Verdict {
    let age = entry.age(now);
    let fresh_for = entry.fresh_until().saturating_duration_since(now);
    let stale_by = entry.staleness(now);
    let secs = Duration::from_secs;
    if directives.no_cache {
        return Verdict::MustRevalidate;
    }
    if directives.max_age.is_some_and(|max| age > secs(max)) {
        // The client's limit on age is also its limit on staleness: `max-stale` does not
        // lift it.
        return Verdict::MustRevalidate;
    }
    if !fresh_for.is_zero() {
        if directives
            .min_fresh
            .is_some_and(|min| fresh_for < secs(min))
        {
            return Verdict::MustRevalidate;
        }
        return Verdict::AsStored;
    }
    // Stale.
    if let Some(max_stale) = directives.max_stale {
        let d = stored();
        let forbidden = d.no_cache
            || d.must_revalidate
            || (shared && (d.proxy_revalidate || d.s_maxage.is_some()));
        if !forbidden && stale_by <= secs(max_stale) && directives.min_fresh.is_none() {
            return Verdict::Serve;
        }
        if stale_by > secs(max_stale) {
            // Staler than the client accepts, whatever the layer's stale window allows.
            return Verdict::Revalidate;
        }
    }
    if directives.max_age.is_some() || directives.min_fresh.is_some() {
        return Verdict::Revalidate;
    }
    Verdict::AsStored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), value.parse().unwrap()))
            .collect()
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + secs * 1000)
    }

    fn date(time: Timestamp) -> String {
        httpdate::fmt_http_date(time.into())
    }

    #[test]
    fn initial_age_is_the_larger_of_apparent_and_corrected_age() {
        let exchange = Exchange {
            request_time: at(0),
            response_time: at(2),
        };
        // Date 10 s before arrival; Age 3 + 2 s delay = 5: apparent age wins.
        let h = headers(&[(header::DATE, &date(at(2) - Duration::from_secs(10)))]);
        assert_eq!(exchange.initial_age(&h), Duration::from_secs(10));
        let h = headers(&[(header::DATE, &date(at(2))), (header::AGE, "30")]);
        assert_eq!(exchange.initial_age(&h), Duration::from_secs(32));
        // A Date in the future is no negative age.
        let h = headers(&[(header::DATE, &date(at(100)))]);
        assert_eq!(exchange.initial_age(&h), Duration::from_secs(2));
    }

    #[test]
    fn rfc9111_5_1_a_list_valued_age_counts_by_its_first_member() {
        let exchange = Exchange {
            request_time: at(0),
            response_time: at(0),
        };
        let h = headers(&[(header::DATE, &date(at(0))), (header::AGE, "7200, 0")]);
        assert_eq!(exchange.initial_age(&h), Duration::from_secs(7200));
    }

    #[test]
    fn rfc9110_5_6_7_dates_are_read_in_every_form_and_case_whatever_the_weekday() {
        let expected = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "sun, 06 NOV 1994 08:49:37 gmt",
            "SUNDAY, 06-nov-94 08:49:37 GMT",
            "Wed, 06 Nov 1994 08:49:37 GMT",
            "Monday, 06-Nov-94 08:49:37 GMT",
            "Fri Nov  6 08:49:37 1994",
        ] {
            let parsed = http_date(&HeaderValue::from_static(text));
            assert_eq!(parsed, Some(Timestamp::from(expected)), "{text}");
        }
        for junk in ["", "0", "Sun, 32 Nov 1994 08:49:37 GMT", "yesterday"] {
            assert_eq!(http_date(&HeaderValue::from_static(junk)), None, "{junk}");
        }
    }

    #[test]
    fn lifetime_precedence_s_maxage_max_age_expires_heuristic() {
        let default = Duration::from_secs(3600);
        let now = at(1000);
        let life = |h: &HeaderMap, shared| {
            let d = ResponseDirectives::parse(h);
            origin_lifetime(StatusCode::OK, h, &d, true, shared, now, default)
        };
        let h = headers(&[(header::CACHE_CONTROL, "max-age=10, s-maxage=20")]);
        assert_eq!(life(&h, true), Some(Duration::from_secs(20)));
        assert_eq!(life(&h, false), Some(Duration::from_secs(10)));
        let h = headers(&[
            (header::DATE, &date(now)),
            (header::EXPIRES, &date(now + Duration::from_secs(90))),
        ]);
        assert_eq!(life(&h, true), Some(Duration::from_secs(90)));
        let h = headers(&[(header::EXPIRES, "0")]);
        assert_eq!(life(&h, true), Some(Duration::ZERO));
        let h = headers(&[(header::LAST_MODIFIED, &date(now - Duration::from_secs(500)))]);
        assert_eq!(life(&h, true), Some(Duration::from_secs(50)));
        let h = headers(&[(
            header::LAST_MODIFIED,
            &date(at(0) - Duration::from_secs(10_000_000)),
        )]);
        assert_eq!(life(&h, true), Some(default), "capped by the default");
        assert_eq!(life(&HeaderMap::new(), true), None);
    }
}
