use layercake::cached_handler;

#[cached_handler(ttl = 60)]
fn f(id: u64) -> u64 {
    id
}

fn main() {}
