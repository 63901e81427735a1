use layercake::{cached_handler, redis::Redis};

#[derive(Clone)]
struct Session {
    user: u64,
}

#[cached_handler(ttl = 60, backend = Redis::builder().build().unwrap())]
async fn session(id: u64) -> Session {
    Session { user: id }
}

fn main() {}
