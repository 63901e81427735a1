//! Metrics through the [`metrics`](https://docs.rs/metrics) crate (feature `metrics`), for
//! Prometheus or any other exporter.
//!
//! Counters are the cache's own (see [`CacheStats`]): they are kept as atomic counters on the
//! request path either way and handed to the recorder, with the tiers' health (up, size,
//! evictions), by [`CacheLayer::publish_metrics`](crate::CacheLayer::publish_metrics) or
//! [`Cache::publish_metrics`](crate::Cache::publish_metrics) — await it where your exporter
//! renders (a `/metrics` handler) or on an interval. So the hit path costs nothing more with the
//! feature on than off. Durations are recorded as they happen, off the hit path: the upstream
//! call of a miss, and reads and writes of tiers that must be awaited.
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `layercake_hits_total` | counter | `cache` | answered from a fresh entry |
//! | `layercake_stale_hits_total` | counter | `cache` | answered from a stale entry |
//! | `layercake_misses_total` | counter | `cache` | lookups that found nothing usable |
//! | `layercake_stores_total` | counter | `cache` | entries written |
//! | `layercake_passes_total` | counter | `cache` | requests passed through without a lookup |
//! | `layercake_uncacheable_total` | counter | `cache` | responses fetched but not stored |
//! | `layercake_errors_total` | counter | `cache` | backend errors, each read as a miss |
//! | `layercake_coalesced_total` | counter | `cache` | callers served another caller's upstream result |
//! | `layercake_refreshes_total` | counter | `cache` | background refreshes |
//! | `layercake_stale_if_error_total` | counter | `cache` | stale entries served because upstream failed |
//! | `layercake_invalidations_total` | counter | `cache` | entries removed by invalidation |
//! | `layercake_tier_hits_total` | counter | `cache`, `tier` | requests each storage tier answered |
//! | `layercake_in_flight` | gauge | `cache` | upstream calls under way |
//! | `layercake_tier_up` | gauge | `cache`, `tier` | 1 when the tier answers its health check, else 0 |
//! | `layercake_stored_entries` | gauge | `cache`, `tier` | entries a memory tier holds |
//! | `layercake_stored_bytes` | gauge | `cache`, `tier` | bytes of its budget they weigh |
//! | `layercake_evictions_total` | counter | `cache`, `tier` | entries a memory tier pushed out to stay within its budget |
//! | `layercake_upstream_duration_seconds` | histogram | `cache` | the upstream call of a miss or refresh |
//! | `layercake_backend_duration_seconds` | histogram | `cache`, `tier`, `op` (`get`, `set`) | reads and writes of tiers that must be awaited (a memory hit is not one) |
//!
//! `cache` is the layer's [`name`](crate::layer::CacheLayerBuilder::name) (`layercake` by
//! default) or a typed cache's namespace.
//!
//! ```
//! use layercake::{CacheLayer, Moka};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let layer = CacheLayer::builder(Moka::default()).name("pages").build().unwrap();
//! // In the `/metrics` handler, before the exporter renders:
//! layer.publish_metrics().await;
//! # }
//! ```

use std::time::Duration;

use crate::CacheStats;

/// Hands `stats`, `tiers` and `health` to the metrics recorder, labelled `cache = name`.
pub(crate) fn publish(
    name: &str,
    stats: &CacheStats,
    tiers: &[crate::TierHits],
    health: &crate::Health,
) {
    let label = [("cache", name.to_owned())];
    let counters = [
        ("layercake_hits_total", stats.hits),
        ("layercake_stale_hits_total", stats.stale_hits),
        ("layercake_misses_total", stats.misses),
        ("layercake_stores_total", stats.stores),
        ("layercake_passes_total", stats.passes),
        ("layercake_uncacheable_total", stats.uncacheable),
        ("layercake_errors_total", stats.errors),
        ("layercake_coalesced_total", stats.coalesced),
        ("layercake_refreshes_total", stats.refreshes),
        ("layercake_stale_if_error_total", stats.stale_if_error),
        ("layercake_invalidations_total", stats.invalidations),
    ];
    for (metric, value) in counters {
        metrics::counter!(metric, &label).absolute(value);
    }
    metrics::gauge!("layercake_in_flight", &label).set(stats.in_flight as f64);
    for tier in tiers {
        let labels = [("cache", name.to_owned()), ("tier", tier.tier.to_owned())];
        metrics::counter!("layercake_tier_hits_total", &labels).absolute(tier.hits);
    }
    for tier in &health.tiers {
        let labels = [("cache", name.to_owned()), ("tier", tier.name.to_owned())];
        metrics::gauge!("layercake_tier_up", &labels).set(if tier.up { 1.0 } else { 0.0 });
        if let Some(entries) = tier.entries {
            metrics::gauge!("layercake_stored_entries", &labels).set(entries as f64);
        }
        if let Some(bytes) = tier.bytes {
            metrics::gauge!("layercake_stored_bytes", &labels).set(bytes as f64);
        }
        if let Some(evictions) = tier.evictions {
            metrics::counter!("layercake_evictions_total", &labels).absolute(evictions);
        }
    }
}

/// Records the duration of an upstream call.
pub(crate) fn upstream(name: &str, took: Duration) {
    metrics::histogram!("layercake_upstream_duration_seconds", "cache" => name.to_owned())
        .record(took.as_secs_f64());
}

/// Records the duration of a read or write of the tiers that must be awaited.
pub(crate) fn backend_io<V, B: layercake_backends::Backend<V>>(
    engine: &crate::engine::Engine<V, B>,
    op: &'static str,
    took: Duration,
) {
    metrics::histogram!(
        "layercake_backend_duration_seconds",
        "cache" => engine.name.to_string(),
        "tier" => engine.backend.name(),
        "op" => op,
    )
    .record(took.as_secs_f64());
}
