use layercake::{Cache, Moka};

#[derive(Clone)]
struct Opaque(Vec<u8>);

fn main() {
    let _cache: Cache<Opaque, Moka> = Cache::builder(Moka::default()).build().unwrap();
}
