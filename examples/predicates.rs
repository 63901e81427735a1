//! What gets cached, decided by predicates and key extractors: one layer over a whole router.
//!
//! ```text
//! cargo run -p layercake-examples --example predicates        # on 127.0.0.1:3000 (PORT to change)
//! curl -i http://127.0.0.1:3000/health                                  # never cached
//! curl -i 'http://127.0.0.1:3000/products?page=2&utm_source=mail'       # stored
//! curl -i 'http://127.0.0.1:3000/products?utm_medium=ad&page=2'         # a hit: keyed by page only
//! curl -i -X POST http://127.0.0.1:3000/graphql -d '{"query":"{ products { id } }"}'   # stored
//! curl -i -X POST http://127.0.0.1:3000/graphql -d '{ "query": "{ products { id } }" }' # a hit
//! curl -i -X POST http://127.0.0.1:3000/graphql -d '{"query":"mutation { buy(id: 1) }"}' # never cached
//! curl -i http://127.0.0.1:3000/report                                  # text/plain: not stored
//! curl -i http://127.0.0.1:3000/missing                                 # 404: not stored
//! curl http://127.0.0.1:3000/calls                                      # how often each handler ran
//! ```
//!
//! The layer caches `GET` and `HEAD` everywhere but `/health` and `/calls`, and `POST /graphql`
//! when its JSON `query` is not a mutation. Keys are the path, the `page` query parameter
//! (campaign parameters and any others are left out) and, for bodies, the GraphQL `query`,
//! `variables` and `operationName` (compact JSON: spacing and member order do not matter).
//! Only successful JSON responses are stored, though the layer would keep errors for 5 s.
//! `GET /calls` answers how many times each handler has run:
//! `{"health":0,"products":0,"graphql":0,"report":0,"missing":0}`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{Method, StatusCode},
    response::IntoResponse,
    routing::{get, post},
};
use layercake::{
    layer::{
        Path,
        key::{JsonPointers, Query as QueryKey},
    },
    predicate::{
        RequestPredicate, ResponsePredicate, request,
        response::{self, StatusClass},
    },
    prelude::*,
};
use serde::{Deserialize, Serialize};

/// How many times each handler has run.
#[derive(Debug, Default, Serialize)]
pub struct Calls {
    health: AtomicU64,
    products: AtomicU64,
    graphql: AtomicU64,
    report: AtomicU64,
    missing: AtomicU64,
}

/// The routes, with one cache layer in front of them all.
pub fn app() -> Router {
    let mutation = regex::Regex::new(r"^\s*mutation\b").expect("a valid regex");
    let cache = CacheLayer::builder(Moka::default())
        .ttl(Duration::from_secs(60))
        .negative_ttl(Duration::from_secs(5))
        .methods([Method::GET, Method::HEAD, Method::POST])
        // Which requests use the cache: not the probes, and POST only for GraphQL queries.
        .cache_if(
            request::paths(["/health", "/calls"])
                .expect("valid paths")
                .not()
                .and(request::method(Method::POST).not().or(
                    request::path("/graphql").and(request::json("/query").matches(mutation).not()),
                )),
        )
        // What makes a response different: the path, the page, the GraphQL request.
        .key((
            Path,
            QueryKey::only(["page"]),
            JsonPointers::new(["/query", "/variables", "/operationName"]),
        ))
        // What may be stored: successful JSON only.
        .store_if(
            response::status_class(StatusClass::Success)
                .and(response::content_type("application/json")),
        )
        .build()
        .expect("a valid cache configuration");
    Router::new()
        .route("/health", get(health))
        .route("/products", get(products))
        .route("/graphql", post(graphql))
        .route("/report", get(report))
        .route("/missing", get(missing))
        .route("/calls", get(calls))
        .with_state(Arc::new(Calls::default()))
        .layer(cache)
}

async fn health(State(calls): State<Arc<Calls>>) -> &'static str {
    calls.health.fetch_add(1, Relaxed);
    "ok"
}

#[derive(Deserialize)]
struct Page {
    page: Option<u32>,
}

async fn products(State(calls): State<Arc<Calls>>, Query(page): Query<Page>) -> impl IntoResponse {
    calls.products.fetch_add(1, Relaxed);
    let page = page.page.unwrap_or(1);
    let first = (page.max(1) - 1) * 3 + 1;
    Json(serde_json::json!({ "page": page, "items": [first, first + 1, first + 2] }))
}

#[derive(Deserialize)]
struct GraphQl {
    query: String,
    #[serde(default)]
    variables: serde_json::Value,
}

async fn graphql(
    State(calls): State<Arc<Calls>>,
    Json(request): Json<GraphQl>,
) -> impl IntoResponse {
    let n = calls.graphql.fetch_add(1, Relaxed) + 1;
    Json(serde_json::json!({
        "data": { "query": request.query, "variables": request.variables },
        "extensions": { "run": n },
    }))
}

async fn report(State(calls): State<Arc<Calls>>) -> &'static str {
    calls.report.fetch_add(1, Relaxed);
    "quarterly report"
}

async fn missing(State(calls): State<Arc<Calls>>) -> impl IntoResponse {
    calls.missing.fetch_add(1, Relaxed);
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "no such thing" })),
    )
}

async fn calls(State(calls): State<Arc<Calls>>) -> impl IntoResponse {
    let counts = serde_json::to_string(&*calls).unwrap_or_default();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        counts,
    )
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
    println!("predicates example on http://{addr}");
    println!("  curl -i 'http://{addr}/products?page=2&utm_source=mail'; curl http://{addr}/calls");
    axum::serve(listener, app())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
