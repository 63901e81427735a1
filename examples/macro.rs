//! `#[cached_handler]` on an axum handler and on a plain async function.
//!
//! ```text
//! cargo run -p layercake-examples --example macro                   # 127.0.0.1:3000 (PORT to change)
//! curl http://127.0.0.1:3000/users/7          # ~200 ms: computed
//! curl http://127.0.0.1:3000/users/7          # at once: cached
//! curl -X DELETE http://127.0.0.1:3000/users/7   # invalidates it
//! curl http://127.0.0.1:3000/stats
//! curl -i http://127.0.0.1:3000/greet/ada     # a cached handler: ~200 ms, then at once
//! ```

use std::{net::SocketAddr, time::Duration};

use axum::{Router, extract::Path, http::StatusCode, response::IntoResponse, routing::get};
use layercake::prelude::*;

#[derive(Clone)]
struct User {
    id: u64,
    name: String,
}

/// A slow lookup (~200 ms), cached for a minute and served stale for five more while it is
/// refreshed in the background. Errors are not cached.
#[cached_handler(ttl = 60, stale = "5m", stale_policy = offload)]
async fn load_user(id: u64) -> Result<User, String> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    if id == 0 {
        return Err("no user 0".into());
    }
    Ok(User {
        id,
        name: format!("user #{id}"),
    })
}

async fn show(Path(id): Path<u64>) -> String {
    match load_user(id).await {
        Ok(user) => format!("{} (id {})\n", user.name, user.id),
        Err(error) => format!("error: {error}\n"),
    }
}

async fn forget(Path(id): Path<u64>) -> String {
    match load_user::invalidate(id).await {
        Ok(_) => "invalidated\n".to_owned(),
        Err(error) => format!("error: {error}\n"),
    }
}

/// A cached axum handler: the response (status, headers, body) is stored, keyed by the path
/// value; it goes into the router as any handler does.
#[cached_handler(ttl = 30, negative_ttl = 5)]
async fn greet(Path(name): Path<String>) -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(200)).await;
    if name.is_empty() {
        return (StatusCode::NOT_FOUND, "who?".to_owned());
    }
    (StatusCode::OK, format!("hello {name}\n"))
}

async fn stats() -> String {
    format!("{:#?}\n", load_user::cache().stats())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = Router::new()
        .route("/users/{id}", get(show).delete(forget))
        .route("/greet/{name}", get(greet))
        .route("/stats", get(stats));
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|e| format!("PORT={port:?}: {e}"))?,
        Err(_) => 3000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("#[cached_handler] example on http://{addr}");
    println!("  curl http://{addr}/users/7    # twice: the second is cached");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
