//! Invalidation you can try with curl: by tag from code, and by tag or pattern over HTTP.
//!
//! ```text
//! cargo run -p layercake-examples --example invalidation                       # Moka, on 127.0.0.1:3000 (PORT to change)
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p layercake-examples --example invalidation   # Moka over Redis
//! curl -i http://127.0.0.1:3000/items/1                  # 1:1, fetched and stored (Cache-Status)
//! curl -i http://127.0.0.1:3000/items/1                  # 1:1, a hit
//! curl -i -X POST http://127.0.0.1:3000/items/1/rename   # 204: version 2, tag item:1 invalidated
//! curl -i http://127.0.0.1:3000/items/1                  # 1:2, fetched again
//! curl -X POST 'http://127.0.0.1:3000/purge?tag=items'   # how many entries went (-1: uncountable)
//! curl -X POST 'http://127.0.0.1:3000/purge?pattern=/items/1*'
//! ```
//!
//! `GET /items/{id}` answers `{id}:{version}` (each item starts at version 1), cached for
//! 300 s; its handler tags the response with `Surrogate-Key: item:{id} items`, which the layer
//! reads and takes out of the response. `POST /items/{id}/rename` bumps the item's version and
//! invalidates tag `item:{id}`; `POST /purge?tag=T` and `POST /purge?pattern=P` invalidate by
//! tag and by a glob over the URL's path and query, and answer the number of entries removed.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use layercake::{Backend, BackendError, Invalidated, layer::CachedResponse, prelude::*};
use serde::Deserialize;

/// The example's state: each item's version, and the cache to invalidate.
pub struct Items<B> {
    versions: Mutex<HashMap<String, u64>>,
    cache: CacheLayer<B>,
}

/// The routes, with `cache` in front of them.
pub fn app<B: Backend<CachedResponse>>(cache: CacheLayer<B>) -> Router {
    let items = Arc::new(Items {
        versions: Mutex::default(),
        cache: cache.clone(),
    });
    Router::new()
        .route("/items/{id}", get(item::<B>))
        .route("/items/{id}/rename", post(rename::<B>))
        .route("/purge", post(purge::<B>))
        .with_state(items)
        .layer(cache)
}

/// The layer the example runs: a ttl of 300 s over `backend`.
pub fn cache<B: Backend<CachedResponse>>(backend: B) -> CacheLayer<B> {
    CacheLayer::builder(backend)
        .ttl(Duration::from_secs(300))
        .build()
        .expect("a valid cache configuration")
}

async fn item<B>(State(items): State<Arc<Items<B>>>, Path(id): Path<String>) -> impl IntoResponse {
    let version = *items
        .versions
        .lock()
        .unwrap()
        .entry(id.clone())
        .or_insert(1);
    let tags = format!("item:{id} items");
    ([("surrogate-key", tags)], format!("{id}:{version}"))
}

async fn rename<B: Backend<CachedResponse>>(
    State(items): State<Arc<Items<B>>>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failed> {
    *items
        .versions
        .lock()
        .unwrap()
        .entry(id.clone())
        .or_insert(1) += 1;
    items.cache.invalidate_tag(&format!("item:{id}")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?tag=T` or `?pattern=P`.
#[derive(Deserialize)]
struct Purge {
    tag: Option<String>,
    pattern: Option<String>,
}

async fn purge<B: Backend<CachedResponse>>(
    State(items): State<Arc<Items<B>>>,
    Query(purge): Query<Purge>,
) -> Result<String, Failed> {
    let done: Invalidated = match (purge.tag, purge.pattern) {
        (Some(tag), None) => items.cache.invalidate_tag(&tag).await?,
        (None, Some(pattern)) => items.cache.invalidate_pattern(&pattern).await?,
        _ => return Err(Failed::Request("give one of `tag` or `pattern`")),
    };
    Ok(done.entries.map_or(-1, |n| n as i64).to_string())
}

/// Why a request failed.
enum Failed {
    Request(&'static str),
    Cache(BackendError),
}

impl From<BackendError> for Failed {
    fn from(error: BackendError) -> Self {
        Failed::Cache(error)
    }
}

impl IntoResponse for Failed {
    fn into_response(self) -> axum::response::Response {
        match self {
            Failed::Request(why) => (StatusCode::BAD_REQUEST, why).into_response(),
            Failed::Cache(error) => {
                (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response()
            }
        }
    }
}

#[allow(dead_code)] // also compiled into the tests, which drive `app` themselves
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let redis = Redis::builder()
                .url(url)
                .prefix("layercake-invalidation:")
                .timeout(Duration::from_millis(100))
                .build()?;
            println!("invalidation example on http://{addr}: Moka over Redis");
            app(cache(Compose::<Moka, Redis>::new(Moka::default(), redis)))
        }
        Err(_) => {
            println!("invalidation example on http://{addr}: Moka");
            app(cache(Moka::default()))
        }
    };
    println!("  curl -i http://{addr}/items/1; curl -i -X POST http://{addr}/items/1/rename");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
