use layercake::cached_handler;

#[cached_handler(ttl = 60, tags = ["users", 42])]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
