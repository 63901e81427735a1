use layercake::{
    CacheLayer, Moka,
    predicate::{RequestPredicate, request, response},
};

fn main() {
    let _ = CacheLayer::builder(Moka::default())
        .cache_if(request::method(http::Method::GET).and(response::content_type("text/html")))
        .build();
}
