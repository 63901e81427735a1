use layercake::cached_handler;

#[cached_handler(ttl = -5)]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
