use layercake::CacheLayer;

fn main() {
    let _layer = CacheLayer::builder(42u32);
}
