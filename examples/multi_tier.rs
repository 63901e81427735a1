//! Two tiers: Moka in each instance, Redis shared by all of them.
//!
//! ```text
//! redis-server --port 6379 &                       # or any Redis; REDIS_URL to point elsewhere
//! cargo run -p layercake-examples --example multi_tier                   # 127.0.0.1:3000 (PORT to change)
//! PORT=3001 cargo run -p layercake-examples --example multi_tier         # a second instance, same Redis
//! curl -i http://127.0.0.1:3000/    # ~200 ms, computed and stored in both tiers
//! curl -i http://127.0.0.1:3001/    # at once: the other instance's response, from Redis
//! curl -i http://127.0.0.1:3001/    # at once: now from this instance's Moka
//! ```
//!
//! If Redis is down, both instances keep answering: from Moka and from the handler.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use layercake::prelude::*;

/// Takes about 200 ms and says which instance ran it.
async fn expensive() -> String {
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("computed by the instance on port {}\n", port())
}

fn port() -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,layercake=debug".into()),
        )
        .init();

    // REDIS_URL, a `.env` file (asked for), or redis://127.0.0.1:6379; connected on first use.
    let redis = Redis::builder()
        .dot_env()
        .prefix("layercake-example:")
        .timeout(Duration::from_millis(100))
        .build()?;
    let tiers: Compose<Moka, Redis> = Compose::new(Moka::with_max_bytes(64 << 20), redis);
    let cache = CacheLayer::builder(tiers)
        .ttl(Duration::from_secs(60))
        .build()?;
    let app = Router::new().route("/", get(expensive)).layer(cache);

    let addr = SocketAddr::from(([127, 0, 0, 1], port()));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("multi-tier example on http://{addr}: Moka (L1) + Redis (L2)");
    println!("  curl -i http://{addr}/   # start a second instance with PORT=3001 and curl it too");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
