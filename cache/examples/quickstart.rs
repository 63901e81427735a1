//! layercake in front of an axum handler, on the embedded Moka store (no server needed).
//!
//! ```text
//! cargo run --example quickstart          # listens on 127.0.0.1:3000 (PORT to change)
//! curl -i http://127.0.0.1:3000/          # ~200 ms: computed, Cache-Status: …; fwd=uri-miss; stored
//! curl -i http://127.0.0.1:3000/          # at once: Cache-Status: layercake; hit; ttl=59; detail=moka
//! curl -s http://127.0.0.1:3000/stats     # the cache's counters
//! ```

use std::{net::SocketAddr, time::Duration};

use axum::{Router, extract::State, routing::get};
use layercake::prelude::*;

/// The expensive work the cache saves: about 200 ms per call.
async fn expensive() -> String {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("computed at {} ms since the epoch\n", at.as_millis())
}

async fn stats(State(cache): State<CacheLayer<Moka>>) -> String {
    format!("{:#?}\n", cache.stats())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // What the cache does, request by request (`layercake` at debug, the rest at info).
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    let targets = Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("layercake", tracing::Level::DEBUG);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(targets)
        .init();

    let cache = CacheLayer::builder(Moka::default())
        .ttl(Duration::from_secs(60))
        .build()?;

    let app = Router::new()
        .route("/", get(expensive).layer(cache.clone()))
        .route("/stats", get(stats))
        .with_state(cache);

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|e| format!("PORT={port:?}: {e}"))?,
        Err(_) => 3000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("layercake quickstart listening on http://{addr}");
    println!("  curl -i http://{addr}/        # first call takes ~200 ms, the next ones are hits");
    println!("  curl -s http://{addr}/stats   # hits, misses, stores …");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
