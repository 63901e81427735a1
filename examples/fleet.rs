//! Three instances behaving as one cache: a memory tier each, one Redis, one fleet.
//!
//! ```text
//! redis-server --port 6379 &                                  # or REDIS_URL=…
//! PORT=3001 cargo run -p layercake-examples --example fleet &
//! PORT=3002 cargo run -p layercake-examples --example fleet &
//! PORT=3003 cargo run -p layercake-examples --example fleet &
//! curl -X PUT --data 'blue' http://127.0.0.1:3001/items/1     # 204
//! curl http://127.0.0.1:3002/items/1                          # blue (computed, ~100 ms)
//! curl http://127.0.0.1:3003/items/1                          # blue (from Redis, at once)
//! curl -X PUT --data 'green' http://127.0.0.1:3003/items/1    # 204: tag item:1 invalidated
//! curl http://127.0.0.1:3002/items/1                          # green: no instance kept blue
//! redis-cli get fleet:computes:1                              # how many times it was computed
//! ```
//!
//! `GET /items/{id}` is cached by the layer over `Compose<Moka, Redis>` for 300 s and tagged
//! `item:{id}`; its handler reads the item from the Redis key `fleet:db:{id}` (a stand-in for
//! a database; missing is the body `none`), counts the computation in `fleet:computes:{id}`,
//! takes 100 ms and answers the value. `PUT /items/{id}` stores its body in `fleet:db:{id}`
//! and invalidates tag `item:{id}` across the fleet, answering `204`.

use std::{net::SocketAddr, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
    routing::get,
};
use layercake::{fleet::Fleet, prelude::*};
use redis::aio::ConnectionManager;

/// What the handlers share: the database stand-in and the cache to invalidate.
#[derive(Clone)]
pub struct Items {
    db: ConnectionManager,
    cache: CacheLayer<Compose<Moka, Redis>>,
}

/// The routes, cached by a layer over `Compose<Moka, redis>` that joins `fleet`.
pub fn app(redis: Redis, fleet: Fleet) -> Result<Router, Box<dyn std::error::Error>> {
    let db = redis
        .connection()
        .ok_or("the example runs on a single Redis")?;
    let cache = CacheLayer::builder(Compose::<Moka, Redis>::new(Moka::default(), redis))
        .ttl(Duration::from_secs(300))
        .fleet(fleet)
        .build()?;
    let items = Items {
        db,
        cache: cache.clone(),
    };
    Ok(Router::new()
        .route("/items/{id}", get(read).put(write))
        .with_state(items)
        .layer(cache))
}

async fn read(State(items): State<Items>, Path(id): Path<String>) -> impl IntoResponse {
    let mut db = items.db.clone();
    let value: Option<String> = redis::cmd("GET")
        .arg(format!("fleet:db:{id}"))
        .query_async(&mut db)
        .await
        .unwrap_or(None);
    let _: Result<u64, _> = redis::cmd("INCR")
        .arg(format!("fleet:computes:{id}"))
        .query_async(&mut db)
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    (
        [("surrogate-key", format!("item:{id}"))],
        value.unwrap_or_else(|| "none".to_owned()),
    )
}

async fn write(
    State(items): State<Items>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, (StatusCode, String)> {
    let unavailable = |e: &dyn std::fmt::Display| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    let mut db = items.db.clone();
    redis::cmd("SET")
        .arg(format!("fleet:db:{id}"))
        .arg(body.as_ref())
        .query_async::<()>(&mut db)
        .await
        .map_err(|e| unavailable(&e))?;
    items
        .cache
        .invalidate_tag(&format!("item:{id}"))
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[allow(dead_code)] // also compiled into the tests, which drive `app` themselves
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let redis = Redis::builder()
        .url(url)
        .timeout(Duration::from_millis(200))
        .build()?;
    let fleet = Fleet::builder().start(&redis)?;
    let app = app(redis, fleet)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("fleet example on http://{addr}: Moka + Redis, coherent across instances");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
