//! Metrics through the `metrics` crate, rendered by the Prometheus exporter: the counters a
//! layer publishes, and the durations recorded as they happen; and `examples/observability.rs`
//! over HTTP. The recorder is global: the tests share one, and their caches have names of their
//! own.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::PrometheusHandle;

fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .expect("the only recorder of this test binary")
        })
        .clone()
}

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
    let handle = recorder();

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
    layer.publish_metrics().await;

    let typed: Cache<u64, layercake::Moka> = Cache::builder(layercake::Moka::default())
        .namespace("prices")
        .build()
        .unwrap();
    typed.get_or_compute("sku", || async { 7 }).await;
    typed.publish_metrics().await;

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

/// `examples/observability.rs`, its routes as its documentation gives them, over HTTP.
mod example {
    use bytes::Bytes;
    use http::{Request, StatusCode};
    use http_body_util::{BodyExt, Full};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    use layercake::Moka;
    use layercake_tests::observability_example;

    use super::*;

    const TOKEN: &str = "observability-token-0123";

    #[tokio::test]
    async fn metrics_health_stats_and_invalidation() {
        let app = observability_example::app(Moka::default(), TOKEN, recorder()).unwrap();
        assert!(observability_example::app(Moka::default(), "short", recorder()).is_err());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let call = |method: &'static str, path: &str, token: bool, body: &'static str| {
            let mut request = Request::builder()
                .method(method)
                .uri(format!("{base}{path}"));
            if token {
                request = request.header("authorization", format!("Bearer {TOKEN}"));
            }
            let request = request
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap();
            let client = client.clone();
            async move {
                let (parts, body) = client.request(request).await.unwrap().into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                (parts.status, String::from_utf8(body.to_vec()).unwrap())
            }
        };

        let (_, first) = call("GET", "/", false, "").await;
        let (_, again) = call("GET", "/", false, "").await;
        assert_eq!(first, again, "the second is a hit");
        let (status, rendered) = call("GET", "/metrics", false, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            sample(&rendered, r#"layercake_hits_total{cache="site"}"#),
            1.0
        );

        assert_eq!(
            call("GET", "/admin/health", false, "").await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, health) = call("GET", "/admin/health", true, "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(health.contains(r#""up":true"#), "{health}");
        let (_, stats) = call("GET", "/admin/stats", true, "").await;
        assert!(stats.contains(r#""hits":1"#), "{stats}");
        let body: &'static str = Box::leak(format!(r#"{{"url": "{base}/"}}"#).into_boxed_str());
        let (status, removed) = call("POST", "/admin/invalidate", true, body).await;
        assert_eq!(
            (status, removed.as_str()),
            (StatusCode::OK, r#"{"entries":1}"#)
        );
        let (_, third) = call("GET", "/", false, "").await;
        assert_ne!(third, first, "computed again after the invalidation");
    }
}
