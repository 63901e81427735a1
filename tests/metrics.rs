//! Metrics through the `metrics` crate, rendered by the Prometheus exporter: the counters a
//! layer publishes, and the durations recorded as they happen. One test: the recorder is global.

use std::time::Duration;

use layercake::{Cache, CacheLayer};
use layercake_tests::{Origin, TestTier, fetch, get};
use tower::Layer;

/// The value of the sample line that starts with `prefix`.
fn sample(rendered: &str, prefix: &str) -> f64 {
    rendered
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{rendered}"))
}

#[tokio::test]
async fn counters_are_published_and_durations_recorded() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");

    // A tier that must be awaited, so its reads and writes are timed.
    let tier: TestTier = TestTier::new(Duration::from_millis(1));
    let layer = CacheLayer::builder(tier).name("pages").build().unwrap();
    let origin = Origin::ok("page");
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/a")).await;
    // The store to the slow tier finishes after the response.
    layercake_tests::eventually("stored", || layer.stats().stores == 1).await;
    for _ in 0..2 {
        fetch(&svc, get("/a")).await;
    }
    fetch(&svc, layercake_tests::request("POST", "/a")).await;
    layer.publish_metrics();

    let typed: Cache<u64, layercake::Moka> = Cache::builder(layercake::Moka::default())
        .namespace("prices")
        .build()
        .unwrap();
    typed.get_or_compute("sku", || async { 7 }).await;
    typed.publish_metrics();

    let rendered = handle.render();
    assert_eq!(
        sample(&rendered, r#"layercake_hits_total{cache="pages"}"#),
        2.0
    );
    assert_eq!(
        sample(&rendered, r#"layercake_misses_total{cache="pages"}"#),
        1.0
    );
    assert_eq!(
        sample(&rendered, r#"layercake_stores_total{cache="pages"}"#),
        1.0
    );
    assert_eq!(
        sample(&rendered, r#"layercake_passes_total{cache="pages"}"#),
        1.0
    );
    assert_eq!(
        sample(&rendered, r#"layercake_in_flight{cache="pages"}"#),
        0.0
    );
    assert_eq!(
        sample(&rendered, r#"layercake_misses_total{cache="prices"}"#),
        1.0
    );
    // Two upstream calls: the miss, and the POST passed through is not one of them.
    assert_eq!(
        sample(
            &rendered,
            r#"layercake_upstream_duration_seconds_count{cache="pages"}"#
        ),
        1.0
    );
    let reads = sample(
        &rendered,
        r#"layercake_backend_duration_seconds_count{cache="pages",tier="layercake_tests::TestTier",op="get"}"#,
    );
    assert!(reads >= 3.0, "every lookup read the awaited tier: {reads}");
    let writes = sample(
        &rendered,
        r#"layercake_backend_duration_seconds_count{cache="pages",tier="layercake_tests::TestTier",op="set"}"#,
    );
    assert_eq!(writes, 1.0);
}
