use layercake::{CacheLayer, Moka, predicate::request};

fn main() {
    let _ = CacheLayer::builder(Moka::default())
        .store_if(request::path_prefix("/api"))
        .build();
}
