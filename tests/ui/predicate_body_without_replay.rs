use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use layercake::{CacheLayer, Moka, predicate::request};
use tower::Layer;

fn serves<S: tower::Service<Request<Empty<Bytes>>>>(_: S) {}

fn main() {
    let layer = CacheLayer::builder(Moka::default())
        .cache_if(request::body_size(..1024))
        .build()
        .unwrap();
    let inner = tower::service_fn(|_: Request<Empty<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    });
    serves(layer.layer(inner));
}
