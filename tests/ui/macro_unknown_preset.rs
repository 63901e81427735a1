use layercake::cached_handler;

#[cached_handler(preset = forever)]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
