//! `Cache-Status` (RFC 9211): what the cache did, on every response.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// The `Cache-Status` header name.
pub(crate) const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Builds the layer's `Cache-Status` values; the constant ones are made once.
///
/// Hit values (`hit; ttl=N`) are made once per `N` and then shared (a reference count), up to a
/// bound set by the longest ttl, so a hit formats nothing.
#[derive(Debug)]
pub(crate) struct CacheStatus {
    name: String,
    pub(crate) method: HeaderValue,
    pub(crate) bypass_key: HeaderValue,
    pub(crate) bypass_predicate: HeaderValue,
    pub(crate) only_if_cached: HeaderValue,
    hits: Box<[OnceLock<HeaderValue>]>,
    /// The tier whose hit values are made once.
    peek_tier: &'static str,
}

/// The most `hit; ttl=N` values a layer keeps made (one per second of ttl).
const MAX_SHARED_HITS: u64 = 3600;

impl CacheStatus {
    /// Statuses for a cache named `name` whose entries are fresh for at most `max_ttl_secs`,
    /// whose hits mostly come from `peek_tier` (memory: its hit values are made once).
    pub(crate) fn new(name: String, max_ttl_secs: u64, peek_tier: &'static str) -> Self {
        let shared_hits = max_ttl_secs.min(MAX_SHARED_HITS) as usize + 1;
        let value = |params: &str| {
            HeaderValue::try_from(format!("{name}; {params}"))
                .expect("the cache name is validated as a token")
        };
        CacheStatus {
            method: value("fwd=method"),
            bypass_key: value("fwd=bypass; detail=key"),
            bypass_predicate: value("fwd=bypass; detail=predicate"),
            only_if_cached: value("detail=only-if-cached"),
            hits: (0..shared_hits).map(|_| OnceLock::new()).collect(),
            peek_tier,
            name,
        }
    }

    /// `hit; ttl=N`, N negative for a stale entry (RFC 9211 §2.2), and the tier that answered
    /// as its `detail`.
    pub(crate) fn hit(&self, ttl: i64, tier: Option<&'static str>) -> HeaderValue {
        match tier {
            Some(tier) if tier == self.peek_tier => {
                let make = || self.format(format_args!("hit; ttl={ttl}; detail={tier}"));
                match usize::try_from(ttl).ok().and_then(|i| self.hits.get(i)) {
                    Some(slot) => slot.get_or_init(make).clone(),
                    None => make(),
                }
            }
            Some(tier) => self.format(format_args!("hit; ttl={ttl}; detail={tier}")),
            None => self.format(format_args!("hit; ttl={ttl}")),
        }
    }

    /// A stale entry served at once while it is refreshed in the background:
    /// `hit; ttl=-N; fwd=stale`, and the tier that answered.
    pub(crate) fn stale_revalidating(&self, ttl: i64, tier: Option<&'static str>) -> HeaderValue {
        match tier {
            Some(tier) => self.format(format_args!("hit; ttl={ttl}; fwd=stale; detail={tier}")),
            None => self.format(format_args!("hit; ttl={ttl}; fwd=stale")),
        }
    }

    /// A stale entry served because upstream failed:
    /// `hit; ttl=-N; fwd=stale; fwd-status=503; detail=stale-if-error`.
    pub(crate) fn stale_if_error(&self, ttl: i64, upstream: Option<StatusCode>) -> HeaderValue {
        match upstream {
            Some(status) => self.format(format_args!(
                "hit; ttl={ttl}; fwd=stale; fwd-status={}; detail=stale-if-error",
                status.as_u16()
            )),
            None => self.format(format_args!(
                "hit; ttl={ttl}; fwd=stale; detail=stale-if-error"
            )),
        }
    }

    /// A response that was forwarded upstream and answered `status` there:
    /// `fwd=<why>; fwd-status=<status>`, with `stored`, `collapsed` or a `detail`.
    pub(crate) fn forward(&self, fwd: &str, outcome: Forwarded, status: StatusCode) -> HeaderValue {
        let status = status.as_u16();
        match outcome {
            Forwarded::Stored => {
                self.format(format_args!("fwd={fwd}; fwd-status={status}; stored"))
            }
            Forwarded::Collapsed => {
                self.format(format_args!("fwd={fwd}; fwd-status={status}; collapsed"))
            }
            Forwarded::NotStored(detail) => self.format(format_args!(
                "fwd={fwd}; fwd-status={status}; detail={detail}"
            )),
            Forwarded::Plain => self.format(format_args!("fwd={fwd}; fwd-status={status}")),
        }
    }

    fn format(&self, params: std::fmt::Arguments<'_>) -> HeaderValue {
        HeaderValue::try_from(format!("{}; {params}", self.name))
            .expect("Cache-Status parameters are tokens")
    }
}

/// What became of a forwarded response.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Forwarded {
    /// It is being stored.
    Stored,
    /// This request waited for another one's upstream response and was served it.
    Collapsed,
    /// It was not stored, for this reason.
    NotStored(&'static str),
    /// Nothing more to say (e.g. the size is not known yet).
    Plain,
}

/// The `Age` header value for `secs` seconds: shared values for the first hour, made once.
pub(crate) fn age(secs: u64) -> HeaderValue {
    static AGES: [OnceLock<HeaderValue>; 3600] = [const { OnceLock::new() }; 3600];
    let make = || HeaderValue::from(secs);
    match usize::try_from(secs).ok().and_then(|i| AGES.get(i)) {
        Some(slot) => slot.get_or_init(make).clone(),
        None => make(),
    }
}

/// `value` with `; fwd-status=<status>` added: a pass-through's status, once its response is
/// known.
pub(crate) fn with_fwd_status(value: &HeaderValue, status: StatusCode) -> HeaderValue {
    let value_bytes = value.as_bytes();
    // After `fwd=…`, before any `detail`.
    let at = value_bytes
        .windows(9)
        .position(|w| w == b"; detail=")
        .unwrap_or(value_bytes.len());
    let mut bytes = Vec::with_capacity(value.len() + 16);
    bytes.extend_from_slice(&value_bytes[..at]);
    bytes.extend_from_slice(b"; fwd-status=");
    bytes.extend_from_slice(status.as_str().as_bytes());
    bytes.extend_from_slice(&value_bytes[at..]);
    // `Bytes` from the `Vec` is not a copy, nor is the header value made from it.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(bytes)).unwrap_or_else(|_| value.clone())
}

/// Adds `value` to the response's `Cache-Status`, after the entries of caches nearer the origin.
pub(crate) fn set_cache_status(headers: &mut HeaderMap, value: HeaderValue) {
    match headers.get(&CACHE_STATUS) {
        None => {
            headers.insert(CACHE_STATUS, value);
        }
        Some(existing) => {
            let mut combined = Vec::with_capacity(existing.len() + 2 + value.len());
            combined.extend_from_slice(existing.as_bytes());
            combined.extend_from_slice(b", ");
            combined.extend_from_slice(value.as_bytes());
            if let Ok(combined) = HeaderValue::from_maybe_shared(bytes::Bytes::from(combined)) {
                headers.insert(CACHE_STATUS, combined);
            }
        }
    }
}

/// Whether `name` is a valid cache name: an RFC 8941 token.
pub(crate) fn is_token(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '*')
        && chars.all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:/".contains(c))
}
