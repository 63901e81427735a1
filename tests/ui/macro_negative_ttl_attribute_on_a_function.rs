use layercake::cached_handler;

#[cached_handler(ttl = 60, negative_ttl = 5)]
async fn f(id: u64) -> Option<u64> {
    Some(id)
}

fn main() {}
