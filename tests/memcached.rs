//! The Memcached store against a real `memcached` on a loopback port: values and HTTP responses
//! round-trip, a composed stack is shared by two instances, lifetimes expire, keys of any
//! length work, corrupt bytes are a counted miss, and a server that is down or hung degrades to
//! the upstream within the store's bound.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use http::StatusCode;
use layercake::{
    Backend, Cache, CacheLayer, Entry, Key, Memcached, Moka, Timestamp,
    compose::{Compose, Sequential},
    layer::CachedResponse,
};
use layercake_tests::{Origin, cache_status, fetch, get, memcached_server::MemcachedServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::Layer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_values_round_trip() {
    let server = MemcachedServer::start().await;
    let store = server.store("typed:");
    let cache: Cache<String, Memcached> = Cache::builder(store.clone()).build().unwrap();
    for i in 0..50 {
        cache.insert(format!("k{i}"), format!("value {i}")).await;
    }
    for i in 0..50 {
        assert_eq!(cache.get(format!("k{i}")).await, Some(format!("value {i}")));
    }
    // A second handle on the same server sees them: they are in Memcached, not in this process.
    let other: Cache<String, Memcached> = Cache::builder(server.store("typed:")).build().unwrap();
    assert_eq!(other.get("k7").await, Some("value 7".to_owned()));
    cache.invalidate("k7").await.unwrap();
    assert_eq!(other.get("k7").await, None);
    assert_eq!(store.stats().errors, 0);
    assert!(Backend::<String>::health(&store).await[0].up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_responses_are_shared_through_a_composed_stack() {
    let server = MemcachedServer::start().await;
    let origin = Origin::counting();
    let instance = || {
        // Written in turn: the store is done once Memcached has it.
        let tiers: Compose<Moka, Memcached, Sequential, Sequential> =
            Compose::new(Moka::default(), server.store("http:"));
        CacheLayer::builder(tiers).build().unwrap()
    };
    let (first, second) = (instance(), instance());
    let (_, body) = fetch(&first.layer(origin.clone()), get("/page")).await;
    assert_eq!(body, "call 1");
    // The store completes after the response.
    layercake_tests::eventually("stored in both tiers", || first.stats().stores == 1).await;
    // The second instance's memory is empty: Memcached answers.
    let (parts, body) = fetch(&second.layer(origin.clone()), get("/page")).await;
    assert_eq!(body, "call 1");
    assert!(
        cache_status(&parts).contains("detail=memcached"),
        "{parts:?}"
    );
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_and_keys_of_any_length_work() {
    let server = MemcachedServer::start().await;
    let store = server.store("ttl:");
    let long = Key::from_parts(["x".repeat(10_000), "with spaces\r\nand lines".to_owned()]);
    let short = Key::from_parts(["short"]);
    let entry = |ttl| {
        Arc::new(Entry::new(
            "v".to_owned(),
            Timestamp::now(),
            Duration::from_millis(ttl),
            Duration::ZERO,
        ))
    };
    store.set(&long, entry(60_000)).await.unwrap();
    store.set(&short, entry(900)).await.unwrap();
    let found: Option<Arc<Entry<String>>> = store.get(&long).await.unwrap();
    assert_eq!(found.unwrap().value(), "v");
    assert!(
        Backend::<String>::get(&store, &short)
            .await
            .unwrap()
            .is_some()
    );
    // Memcached counts lifetimes in whole seconds: 900 ms is kept one second, then dropped.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(
        Backend::<String>::get(&store, &short)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Backend::<String>::get(&store, &long)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_or_foreign_bytes_read_as_a_counted_miss() {
    let server = MemcachedServer::start().await;
    let store = server.store("corrupt:");
    let cache: Cache<String, Memcached> = Cache::builder(store.clone()).build().unwrap();
    let name = store.memcached_key(&cache.key("k"));
    let mut raw = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    raw.write_all(format!("set {name} 0 60 7\r\ngarbage\r\n").as_bytes())
        .await
        .unwrap();
    let mut reply = [0u8; 8];
    raw.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"STORED\r\n");
    let computed = cache
        .get_or_compute("k", || async { "fresh".to_owned() })
        .await;
    assert_eq!(computed, "fresh");
    assert_eq!(store.stats().corrupt, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_or_hung_degrades_to_the_upstream() {
    // Down: nothing listens; the breaker opens and later calls are not even made.
    let mut server = MemcachedServer::start().await;
    let store = server.store("down:");
    server.stop();
    let cache: Cache<String, Memcached> = Cache::builder(store.clone()).build().unwrap();
    for i in 0..10 {
        let value = cache
            .get_or_compute(format!("k{i}"), || async { "upstream".to_owned() })
            .await;
        assert_eq!(value, "upstream");
    }
    let stats = store.stats();
    assert!(stats.errors >= 1, "{stats:?}");
    assert!(stats.breaker_open, "{stats:?}");
    assert!(stats.rejected >= 1, "{stats:?}");

    // Hung: a listener that accepts and never answers; each call gives up at the timeout.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = hung.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = hung.accept().await {
            open.push(stream);
        }
    });
    let store = Memcached::builder()
        .address(address.to_string())
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = Instant::now();
    let lookup = Backend::<String>::get(&store, &Key::from_parts(["k"])).await;
    assert!(lookup.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(store.stats().timeouts, 1);

    // Ten callers at once on a pool of one: those that wait for the connection give up at the
    // timeout without counting against the server, so the breaker (three failures) stays shut.
    let store = Memcached::builder()
        .address(address.to_string())
        .timeout(Duration::from_millis(100))
        .connections(1)
        .circuit_breaker(3, Duration::from_secs(10))
        .build()
        .unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..10 {
        let store = store.clone();
        calls.spawn(async move {
            Backend::<String>::get(&store, &Key::from_parts([format!("k{i}")])).await
        });
    }
    while let Some(call) = calls.join_next().await {
        assert!(call.unwrap().is_err());
    }
    let stats = store.stats();
    assert_eq!(stats.timeouts + stats.rejected, 10, "{stats:?}");
    assert!(stats.timeouts < 3 && !stats.breaker_open, "{stats:?}");
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_entries_are_refused_and_clear_is_unsupported() {
    let server = MemcachedServer::start().await;
    let store = Memcached::builder()
        .address(server.address())
        .max_item_size(1024)
        .build()
        .unwrap();
    let body = bytes::Bytes::from(vec![b'x'; 4096]);
    let response = CachedResponse::new(StatusCode::OK, http::HeaderMap::new(), body);
    let entry = Arc::new(Entry::new(
        response,
        Timestamp::now(),
        Duration::from_secs(60),
        Duration::ZERO,
    ));
    let key = Key::from_parts(["big"]);
    let error = store.set(&key, entry).await.unwrap_err();
    assert!(error.to_string().contains("item limit"), "{error}");
    assert!(
        !store.stats().breaker_open,
        "a refusal of ours is not a server failure"
    );
    assert!(Backend::<CachedResponse>::clear(&store).await.is_err());
}

/// An item the server refuses (over its own item limit, 1 MiB, when the store was told a larger
/// one): it is not stored, it reads as a miss, and the one connection of the pool goes on
/// serving the calls after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_the_server_refuses_is_a_miss_and_the_pool_stays_usable() {
    let server = MemcachedServer::start().await;
    let store = Memcached::builder()
        .address(server.address())
        .max_item_size(8 << 20)
        .connections(1)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let big = Arc::new(Entry::new(
        vec![7u8; 2 << 20],
        Timestamp::now(),
        Duration::from_secs(60),
        Duration::ZERO,
    ));
    let small = Arc::new(Entry::new(
        b"small".to_vec(),
        Timestamp::now(),
        Duration::from_secs(60),
        Duration::ZERO,
    ));
    let (k1, k2) = (Key::from_parts(["big"]), Key::from_parts(["small"]));
    // Written with `noreply`, a refusal has no answer to report; what matters is what follows.
    let _ = store.set(&k1, big).await;
    store.set(&k2, small).await.unwrap();
    let back: Option<Arc<Entry<Vec<u8>>>> = store.get(&k2).await.unwrap();
    assert_eq!(back.unwrap().value(), b"small");
    let missing: Option<Arc<Entry<Vec<u8>>>> = store.get(&k1).await.unwrap();
    assert!(missing.is_none());
}
