//! Operating the cache: Prometheus metrics, the admin API, health, and the event log.
//!
//! ```text
//! ADMIN_TOKEN=change-me-0123456789 cargo run -p layercake-examples --example observability
//! ADMIN_TOKEN=… REDIS_URL=redis://127.0.0.1:6379 cargo run -p layercake-examples --example observability
//! curl -i http://127.0.0.1:3000/                       # ~200 ms, then hits
//! curl http://127.0.0.1:3000/metrics                   # layercake_hits_total{cache="site"} …
//! curl -H "Authorization: Bearer $ADMIN_TOKEN" http://127.0.0.1:3000/admin/health
//! curl -H "Authorization: Bearer $ADMIN_TOKEN" http://127.0.0.1:3000/admin/stats
//! curl -H "Authorization: Bearer $ADMIN_TOKEN" -X POST http://127.0.0.1:3000/admin/invalidate \
//!      -d '{"url": "http://127.0.0.1:3000/"}'          # {"entries":1}
//! ```
//!
//! `GET /` takes about 200 ms, as in the quickstart, and is cached by the layer (named `site`)
//! over Moka, or over Moka then Redis when `REDIS_URL` is set. `GET /metrics` answers the
//! Prometheus exposition of the cache's counters and latencies; `/admin` is the admin API
//! (health, readiness, stats, entries, invalidation) behind the token in `ADMIN_TOKEN`
//! (required, 16 bytes or more). Every request's cache decision is a JSON line on stdout
//! (the event log, target `layercake::events`).

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use layercake::{
    Backend,
    admin::{Admin, AdminError},
    layer::{CachedResponse, EventLog},
    prelude::*,
};
use metrics_exporter_prometheus::PrometheusHandle;

/// The expensive work the cache saves: about 200 ms per call.
async fn expensive() -> String {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("computed at {} ms since the epoch\n", at.as_millis())
}

/// The routes: `/` cached by a layer over `backend`, `/metrics` rendered by `metrics`, and
/// the admin API under `/admin` behind `token`.
pub fn app<B: Backend<CachedResponse>>(
    backend: B,
    token: &str,
    metrics: PrometheusHandle,
) -> Result<Router, AdminError> {
    let cache = CacheLayer::builder(backend)
        .name("site")
        .ttl(Duration::from_secs(60))
        .event_log(EventLog::new())
        .build()
        .expect("a valid cache configuration");
    let admin = Admin::builder(cache.clone()).token(token).build()?;
    let published = cache.clone();
    Ok(Router::new()
        .route("/", get(expensive).layer(cache))
        .route(
            "/metrics",
            get(move || async move {
                published.publish_metrics().await;
                metrics.render()
            }),
        )
        .nest("/admin", admin.router()))
}

#[allow(dead_code)] // also compiled into the tests, which drive `app` themselves
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The event log as JSON lines on stdout; everything else at warn.
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json())
        .with(
            Targets::new()
                .with_default(tracing::Level::WARN)
                .with_target("layercake::events", tracing::Level::INFO),
        )
        .init();

    let token = std::env::var("ADMIN_TOKEN")
        .map_err(|_| "set ADMIN_TOKEN (16 bytes or more) to protect the admin API")?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let app = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let redis = Redis::builder()
                .url(url)
                .prefix("layercake-observability:")
                .timeout(Duration::from_millis(100))
                .build()?;
            let tiers = Compose::<Moka, Redis>::new(Moka::default(), redis);
            app(tiers, &token, metrics)?
        }
        Err(_) => app(Moka::default(), &token, metrics)?,
    };
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("observability example on http://{addr} (metrics at /metrics, admin at /admin)");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
