use layercake::cached_handler;

#[cached_handler(ttl = 60)]
struct NotAFunction;

fn main() {}
