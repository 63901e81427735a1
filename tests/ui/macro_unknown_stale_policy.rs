use layercake::cached_handler;

#[cached_handler(ttl = 60, stale = 30, stale_policy = eventually)]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
