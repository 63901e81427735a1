use layercake::cached_handler;

#[derive(Clone)]
struct Filter {
    ratio: f64,
}

#[cached_handler(ttl = 60)]
async fn f(filter: Filter) -> u64 {
    filter.ratio as u64
}

fn main() {}
