use layercake::cached_handler;

#[cached_handler(stale = 300)]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
