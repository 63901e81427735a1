use layercake::{Cache, redis::Redis};

/// Not `Serialize`: it cannot be stored as bytes.
#[derive(Clone)]
struct Session {
    _socket: std::sync::Arc<std::net::TcpStream>,
}

fn main() {
    let redis = Redis::builder().build().unwrap();
    let _sessions = Cache::<Session, Redis>::builder(redis).build();
}
