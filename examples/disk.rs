//! The quickstart on the disk store: memory in front of a file that outlives the process, so
//! the first request after a restart is a hit.
//!
//! ```text
//! CACHE_DIR=/tmp/layercake-disk cargo run -p layercake-examples --example disk
//! curl -i http://127.0.0.1:3000/          # ~200 ms: computed, stored in memory and on disk
//! # stop it (Ctrl-C), start it again, then:
//! curl -i http://127.0.0.1:3000/          # at once: Cache-Status: layercake; hit; …; detail=disk
//! curl -s http://127.0.0.1:3000/stats     # the cache's counters and the disk store's
//! ```

use std::{net::SocketAddr, path::Path, time::Duration};

use axum::{Router, extract::State, routing::get};
use layercake::{
    CacheLayer, Disk, Moka,
    compose::{Compose, Sequential},
};

/// Memory first, then the disk; a response is on disk before the store is done (written in
/// turn), so a restart right after a miss still finds it.
pub type Tiers = Compose<Moka, Disk, Sequential, Sequential>;

/// The expensive work the cache saves: about 200 ms per call.
async fn expensive() -> String {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("computed at {} ms since the epoch\n", at.as_millis())
}

async fn stats(State(cache): State<CacheLayer<Tiers>>) -> String {
    let disk = cache.backend().l2().stats();
    format!("{:#?}\n{disk:#?}\n", cache.stats())
}

/// The cache: 64 MiB in memory in front of 1 GiB on disk in `directory`.
pub fn cache(directory: &Path) -> Result<CacheLayer<Tiers>, Box<dyn std::error::Error>> {
    let disk = Disk::builder()
        .directory(directory)
        .max_bytes(1 << 30)
        .open()?;
    let memory = Moka::builder().max_bytes(64 << 20).build();
    Ok(CacheLayer::builder(Compose::new(memory, disk))
        .ttl(Duration::from_secs(600))
        .build()?)
}

/// The routes: `/` (cached) and `/stats`.
pub fn app(cache: CacheLayer<Tiers>) -> Router {
    Router::new()
        .route("/", get(expensive).layer(cache.clone()))
        .route("/stats", get(stats))
        .with_state(cache)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    let targets = Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("layercake", tracing::Level::DEBUG);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(targets)
        .init();
    let directory = std::env::var_os("CACHE_DIR").unwrap_or_else(|| "layercake-cache".into());
    let cache = cache(Path::new(&directory))?;
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|e| format!("PORT={port:?}: {e}"))?,
        Err(_) => 3000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "layercake on disk ({}) listening on http://{addr}",
        Path::new(&directory).display()
    );
    println!("  curl -i http://{addr}/   # computed once, then a hit, even after a restart");
    axum::serve(listener, app(cache))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
