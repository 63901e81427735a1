use layercake::cached_handler;

#[cached_handler(ttl = 60, store_if = layercake::predicate::Always)]
async fn price(sku: String) -> u64 {
    sku.len() as u64
}

fn main() {}
