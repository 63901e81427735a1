use layercake::{Cache, Moka};

struct Filter {
    ratio: f64,
}

#[tokio::main]
async fn main() {
    let cache: Cache<u64, Moka> = Cache::builder(Moka::default()).build().unwrap();
    let filter = Filter { ratio: 0.5 };
    cache.insert(&filter, filter.ratio as u64).await;
}
