use axum::{extract::Path, response::IntoResponse};
use layercake::{cached_handler, predicate::request};

#[cached_handler(ttl = 60, store_if = request::path_prefix("/api"))]
async fn page(Path(id): Path<u64>) -> impl IntoResponse {
    format!("page {id}")
}

fn main() {}
