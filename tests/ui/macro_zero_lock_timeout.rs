use layercake::cached_handler;

#[cached_handler(ttl = 60, lock_timeout = "0s")]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
