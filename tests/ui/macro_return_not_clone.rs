use layercake::cached_handler;

struct Connection;

#[cached_handler(ttl = 60)]
async fn f(id: u64) -> Connection {
    let _ = id;
    Connection
}

fn main() {}
