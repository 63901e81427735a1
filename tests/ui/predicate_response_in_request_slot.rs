use layercake::{CacheLayer, Moka, predicate::response};

fn main() {
    let _ = CacheLayer::builder(Moka::default())
        .cache_if(response::status(http::StatusCode::OK))
        .build();
}
