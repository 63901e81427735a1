//! Stale-while-revalidate: after expiry, requests are answered at once from the stale entry
//! while one background refresh fetches a new one.
//!
//! ```text
//! cargo run -p layercake-examples --example stale_while_revalidate     # 127.0.0.1:3000 (PORT to change)
//! curl -i http://127.0.0.1:3000/    # ~200 ms, fwd=uri-miss; stored
//! sleep 2
//! curl -i http://127.0.0.1:3000/    # at once, the old time, Cache-Status: …; hit; ttl=-2; fwd=stale
//! curl -i http://127.0.0.1:3000/    # a moment later: the new time, hit; ttl=0
//! ```

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Router, routing::get};
use layercake::prelude::*;

/// Takes about 200 ms and says when it ran.
async fn now() -> String {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("computed at {:.3} s since the epoch\n", at.as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,layercake=debug".into()),
        )
        .init();

    let cache = CacheLayer::builder(Moka::default())
        .ttl(Duration::from_secs(1))
        .stale(Duration::from_secs(30))
        .stale_policy(StalePolicy::OffloadRevalidate)
        .build()?;
    let app = Router::new().route("/", get(now)).layer(cache);

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|e| format!("PORT={port:?}: {e}"))?,
        Err(_) => 3000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("stale-while-revalidate example on http://{addr} (ttl 1 s, stale 30 s)");
    println!("  curl -i http://{addr}/   # then wait 2 s and curl twice more");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
