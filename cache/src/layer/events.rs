//! The structured event log: one event per sampled request, saying what the cache did.

use std::{
    hash::BuildHasher,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Instant,
};

use http::{HeaderMap, HeaderName, HeaderValue, Uri};

/// The event log of a [`CacheLayer`](super::CacheLayer): one `tracing` event per sampled
/// request, target `layercake::events`, level `INFO`, once its response head is ready. Turned
/// on with [`event_log`](super::CacheLayerBuilder::event_log). Invalidations are logged under
/// the same target whether it is on or not (`op = "invalidate"`, `cache`, `entries`): they are
/// rare, and what an operator most often looks for.
///
/// | field | value |
/// |---|---|
/// | `cache` | the layer's name |
/// | `op` | `hit`, `stale`, `miss`, `store`, `collapsed`, `pass` (from the `Cache-Status`) |
/// | `cache_status` | the response's `Cache-Status` |
/// | `status` | the response's status code |
/// | `latency_us` | from the request reaching the layer to its response head, in µs |
/// | `request_id` | the request's `X-Request-ID` (or the header you name), else empty |
/// | `target` | the request's authority, path and query hashed with a keyed hash (SipHash, a random key per process): equal within an instance, meaningless outside it; or the URL itself with [`raw_targets`](Self::raw_targets) |
///
/// Why `tracing`: it reaches whatever the application already collects (a JSON formatter gives
/// one JSON line per event: `tracing_subscriber::fmt().json()`), filters by target without a
/// rebuild (`RUST_LOG=layercake::events=info`), and costs one branch per request when the log
/// is off.
///
/// ```
/// use layercake::{CacheLayer, Moka, layer::EventLog};
///
/// let layer = CacheLayer::builder(Moka::default())
///     .event_log(EventLog::new().sample(0.1).request_id_header("x-correlation-id"))
///     .build()
///     .unwrap();
/// # drop(layer);
/// ```
#[derive(Debug)]
pub struct EventLog {
    every: u64,
    seen: AtomicU64,
    request_id: HeaderName,
    raw_targets: bool,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for EventLog {
    fn clone(&self) -> Self {
        EventLog {
            every: self.every,
            seen: AtomicU64::new(0),
            request_id: self.request_id.clone(),
            raw_targets: self.raw_targets,
            hasher: self.hasher.clone(),
        }
    }
}

/// A request the log samples: when it arrived, its id and target.
pub(crate) struct Sampled {
    started: Instant,
    request_id: Option<HeaderValue>,
    target: String,
}

impl EventLog {
    /// Every request logged, its id from `X-Request-ID`, targets hashed.
    ///
    /// ```
    /// let log = layercake::layer::EventLog::new();
    /// # drop(log);
    /// ```
    pub fn new() -> Self {
        EventLog {
            every: 1,
            seen: AtomicU64::new(0),
            request_id: HeaderName::from_static("x-request-id"),
            raw_targets: false,
            hasher: Default::default(),
        }
    }

    /// Logs about `rate` of the requests (one in `1 / rate`, in turn; `0.0` none, `1.0` all).
    ///
    /// ```
    /// # use layercake::layer::EventLog;
    /// let one_in_a_hundred = EventLog::new().sample(0.01);
    /// # drop(one_in_a_hundred);
    /// ```
    pub fn sample(mut self, rate: f64) -> Self {
        self.every = if rate.is_nan() || rate <= 0.0 {
            0
        } else {
            (1.0 / rate.min(1.0)).round() as u64
        };
        self
    }

    /// The request header that carries the request's id. Default: `X-Request-ID`.
    ///
    /// # Panics
    ///
    /// When `name` is not a valid header name.
    ///
    /// ```
    /// let log = layercake::layer::EventLog::new().request_id_header("x-correlation-id");
    /// # drop(log);
    /// ```
    pub fn request_id_header(
        mut self,
        name: impl TryInto<HeaderName, Error: std::fmt::Debug>,
    ) -> Self {
        self.request_id = crate::predicate::request::header_name(name);
        self
    }

    /// Logs the request's URL itself instead of its keyed hash: only where the log may hold
    /// what users asked for.
    ///
    /// ```
    /// let log = layercake::layer::EventLog::new().raw_targets(true);
    /// # drop(log);
    /// ```
    pub fn raw_targets(mut self, raw: bool) -> Self {
        self.raw_targets = raw;
        self
    }

    /// The sample of a request arriving now, when it is one the log takes.
    pub(crate) fn start(&self, uri: &Uri, headers: &HeaderMap) -> Option<Sampled> {
        if self.every == 0 || self.seen.fetch_add(1, Relaxed) % self.every != 0 {
            return None;
        }
        let authority = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(http::header::HOST)?.to_str().ok())
            .unwrap_or_default();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let target = if self.raw_targets {
            format!("{authority}{path}")
        } else {
            format!("{:016x}", self.hasher.hash_one((authority, path)))
        };
        Some(Sampled {
            started: Instant::now(),
            request_id: headers.get(&self.request_id).cloned(),
            target,
        })
    }

    /// The event for a sampled request whose response has `status` and these headers.
    pub(crate) fn emit(
        &self,
        cache: &str,
        sampled: &Sampled,
        status: http::StatusCode,
        headers: &HeaderMap,
    ) {
        let cache_status = headers
            .get(super::status::CACHE_STATUS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let request_id = sampled
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info!(
            target: "layercake::events",
            cache,
            op = operation(cache_status),
            cache_status,
            status = status.as_u16(),
            latency_us = sampled.started.elapsed().as_micros() as u64,
            request_id,
            target = sampled.target.as_str(),
        );
    }
}

/// What the cache did, from the `Cache-Status` it said.
fn operation(cache_status: &str) -> &'static str {
    let has = |param: &str| {
        cache_status
            .split(';')
            .any(|p| p.trim().split('=').next() == Some(param))
    };
    let param = |name: &str| {
        cache_status.split(';').find_map(|p| {
            let (key, value) = p.trim().split_once('=')?;
            (key == name).then_some(value)
        })
    };
    if has("hit") {
        let stale = param("ttl").is_some_and(|ttl| ttl.starts_with('-'));
        return if stale { "stale" } else { "hit" };
    }
    match param("fwd") {
        Some("method" | "bypass") => "pass",
        _ if has("collapsed") => "collapsed",
        _ if has("stored") => "store",
        _ => "miss",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_read_from_cache_status() {
        assert_eq!(operation("layercake; hit; ttl=42; detail=moka"), "hit");
        assert_eq!(operation("layercake; hit; ttl=-3; fwd=stale"), "stale");
        assert_eq!(
            operation("layercake; fwd=uri-miss; fwd-status=200; stored"),
            "store"
        );
        assert_eq!(
            operation("layercake; fwd=uri-miss; fwd-status=200; collapsed"),
            "collapsed"
        );
        assert_eq!(operation("layercake; fwd=method; fwd-status=201"), "pass");
        assert_eq!(
            operation("layercake; fwd=bypass; fwd-status=200; detail=key"),
            "pass"
        );
        assert_eq!(operation("layercake; fwd=uri-miss; fwd-status=500"), "miss");
    }

    #[test]
    fn sampling_takes_one_in_n_and_hashes_targets() {
        let log = EventLog::new().sample(0.25);
        let uri: Uri = "http://example.com/secret?token=1".parse().unwrap();
        let taken = (0..8)
            .filter(|_| log.start(&uri, &HeaderMap::new()).is_some())
            .count();
        assert_eq!(taken, 2);
        let sampled = EventLog::new().start(&uri, &HeaderMap::new()).unwrap();
        assert!(!sampled.target.contains("secret"));
        let raw = EventLog::new().raw_targets(true);
        let sampled = raw.start(&uri, &HeaderMap::new()).unwrap();
        assert_eq!(sampled.target, "example.com/secret?token=1");
        assert!(
            EventLog::new()
                .sample(0.0)
                .start(&uri, &HeaderMap::new())
                .is_none()
        );
    }
}
