use layercake::cached_handler;

// A `HeaderMap` is neither `Hash` nor `Serialize`: the error says to skip it or give the key.
#[cached_handler(ttl = 60)]
async fn greeting(name: String, headers: http::HeaderMap) -> String {
    format!("{name} ({} headers)", headers.len())
}

fn main() {}
