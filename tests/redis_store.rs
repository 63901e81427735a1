//! The Redis store against a real `redis-server` on a free loopback port: typed values and
//! HTTP responses, formats and compression, corrupt bytes, passwords and databases, pipelined
//! clears, and Redis going away in the middle of traffic.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::StatusCode;
use layercake::{
    Backend, Cache, CacheLayer, Entry, Key, Moka, Timestamp,
    codec::{Bincode, Compression, Json, Postcard, Rkyv, Ron},
    compose::Compose,
    layer::CachedResponse,
    redis::Redis,
};
use layercake_tests::{
    Origin, cache_status, eventually, fetch, get, redis_server::RedisServer, text,
};
use redis::AsyncCommands;
use tower::Layer;

fn redis(server: &RedisServer, prefix: &str) -> Redis {
    server.store(prefix)
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    server.connection().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_values_are_stored_with_set_px_and_read_back() {
    let server = RedisServer::start(&[]).await;
    let store = redis(&server, "typed:");
    let cache: Cache<Vec<String>, Redis> = Cache::builder(store.clone())
        .ttl(Duration::from_secs(60))
        .stale(Duration::from_secs(30))
        .build()
        .unwrap();
    let value = vec!["a".to_owned(), "b".to_owned()];
    let computed = value.clone();
    assert_eq!(
        cache
            .get_or_compute("list", move || async move { computed })
            .await,
        value
    );

    let redis_key = store.redis_key(&cache.key("list"));
    let hash = format!("{:032x}", cache.key("list").hash128());
    assert_eq!(redis_key, format!("typed:layercake:value/1:list#{hash}"));
    let ttl: i64 = raw(&server).await.pttl(&redis_key).await.unwrap();
    assert!(
        (85_000..=90_000).contains(&ttl),
        "ttl + stale window, in ms: {ttl}"
    );
    let again = cache.get_or_compute("list", || async { vec![] }).await;
    assert_eq!(again, value, "read back from Redis");
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_responses_through_redis_and_refill_their_own_l1() {
    let server = RedisServer::start(&[]).await;
    let instance = || {
        let origin = Origin::new(|_, n| async move { Ok(text(StatusCode::OK, format!("v{n}"))) });
        let l1 = Moka::default();
        let tiers: Compose<Moka, Redis> = Compose::new(l1.clone(), redis(&server, "http:"));
        let layer = CacheLayer::builder(tiers).build().unwrap();
        (layer.layer(origin.clone()), origin, l1, layer)
    };
    let (a, origin_a, _, layer_a) = instance();
    let (b, origin_b, l1_b, _) = instance();

    let (parts, body) = fetch(&a, get("/shared")).await;
    eventually("the store", || layer_a.stats().stores == 1).await;
    assert_eq!(body, "v1");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
    let (parts, body) = fetch(&b, get("/shared")).await;
    assert_eq!(body, "v1", "instance b is served what a stored");
    assert!(
        cache_status(&parts).starts_with("layercake; hit"),
        "{}",
        cache_status(&parts)
    );
    assert_eq!((origin_a.calls(), origin_b.calls()), (1, 0));
    l1_b.run_pending_tasks();
    assert_eq!(l1_b.entry_count(), 1, "the L2 hit was refilled into b's L1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_and_compression_round_trips_a_response() {
    let server = RedisServer::start(&[]).await;
    let body = Bytes::from(vec![b'z'; 8 * 1024]);
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "text/plain".parse().unwrap());
    let response = CachedResponse::new(StatusCode::OK, headers, body.clone());
    let entry = Arc::new(Entry::new(
        response,
        Timestamp::now(),
        Duration::from_secs(60),
        Duration::ZERO,
    ));
    let key = Key::from_parts(["response"]);
    let compressions = [
        Compression::None,
        Compression::Zstd { level: 3 },
        Compression::Gzip { level: 6 },
    ];
    for compression in compressions {
        let builder = || {
            Redis::builder()
                .url(server.url())
                .compression(compression, 1024)
        };
        let postcard = builder().prefix("p:").build().unwrap();
        let json = builder().prefix("j:").format(Json).build().unwrap();
        let bincode = builder().prefix("b:").format(Bincode).build().unwrap();
        let rkyv = builder().prefix("r:").format(Rkyv).build().unwrap();
        let ron = builder().prefix("o:").format(Ron).build().unwrap();
        round_trip(&rkyv, &key, &entry).await;
        round_trip(&ron, &key, &entry).await;
        round_trip(&postcard, &key, &entry).await;
        round_trip(&json, &key, &entry).await;
        round_trip(&bincode, &key, &entry).await;
    }
    let _ = Postcard;
}

async fn round_trip<B: Backend<CachedResponse>>(
    store: &B,
    key: &Key,
    entry: &Arc<Entry<CachedResponse>>,
) {
    store.set(key, Arc::clone(entry)).await.unwrap();
    let back = store.get(key).await.unwrap().expect("stored");
    assert_eq!(back.value().body(), entry.value().body());
    assert_eq!(back.value().headers(), entry.value().headers());
    assert_eq!(back.fresh_until(), entry.fresh_until());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_or_foreign_bytes_read_as_a_counted_miss() {
    let server = RedisServer::start(&[]).await;
    let store = redis(&server, "corrupt:");
    let cache: Cache<String, Redis> = Cache::builder(store.clone()).build().unwrap();
    cache.insert("k", "good".to_owned()).await;
    let redis_key = store.redis_key(&cache.key("k"));
    let mut conn = raw(&server).await;
    for garbage in [
        b"not layercake".to_vec(),
        vec![],
        b"LYCK\x01\x01\x00\x00".to_vec(),
    ] {
        let _: () = conn.set(&redis_key, garbage).await.unwrap();
        assert_eq!(cache.get("k").await, None);
    }
    // A valid entry, truncated.
    cache.insert("k", "good".to_owned()).await;
    let stored: Vec<u8> = conn.get(&redis_key).await.unwrap();
    let _: () = conn
        .set(&redis_key, &stored[..stored.len() - 3])
        .await
        .unwrap();
    let value = cache
        .get_or_compute("k", || async { "recomputed".to_owned() })
        .await;
    assert_eq!(value, "recomputed");
    assert_eq!(store.stats().corrupt, 4);
    assert!(cache.stats().errors >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_database_numbers_in_the_url_work() {
    let server = RedisServer::start(&["--requirepass", "s3cret"]).await;
    let url = format!("redis://:s3cret@127.0.0.1:{}/3", server.port());
    let store = Redis::builder()
        .url(url.clone())
        .prefix("db:")
        .build()
        .unwrap();
    let cache: Cache<u32, Redis> = Cache::builder(store.clone()).build().unwrap();
    cache.insert("n", 42).await;
    assert_eq!(cache.get("n").await, Some(42));

    let client = redis::Client::open(url.replace("/3", "/0")).unwrap();
    let mut db0 = client.get_multiplexed_async_connection().await.unwrap();
    let in_db0: bool = db0.exists(store.redis_key(&cache.key("n"))).await.unwrap();
    assert!(!in_db0, "written to database 3, not 0");

    let wrong = Redis::builder()
        .url(format!("redis://:wrong@127.0.0.1:{}/3", server.port()))
        .build()
        .unwrap();
    let denied: Cache<u32, Redis> = Cache::builder(wrong.clone()).build().unwrap();
    assert_eq!(
        denied.get_or_compute("n", || async { 7 }).await,
        7,
        "a bad password degrades to a miss"
    );
    assert!(wrong.stats().errors >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_removes_only_its_own_prefix_in_pipelined_batches() {
    let server = RedisServer::start(&[]).await;
    let (mine, theirs) = (redis(&server, "mine:"), redis(&server, "theirs:"));
    let entries: Vec<_> = (0..1200)
        .map(|i| {
            let entry = Entry::new(i, Timestamp::now(), Duration::from_secs(60), Duration::ZERO);
            (Key::from_parts([format!("k{i}")]), Arc::new(entry))
        })
        .collect();
    mine.set_many(&entries).await.unwrap();
    theirs.set_many(&entries[..10]).await.unwrap();
    assert_eq!(mine.clear_prefix().await.unwrap(), 1200);
    let left: usize = redis::cmd("DBSIZE")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    assert_eq!(left, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_succeeding_while_redis_is_down_and_the_stack_recovers_by_itself() {
    let mut server = RedisServer::start(&[]).await;
    let store = Redis::builder()
        .url(server.url())
        .prefix("faults:")
        .timeout(Duration::from_millis(50))
        .circuit_breaker(2, Duration::from_millis(200))
        .build()
        .unwrap();
    let origin =
        Origin::new(|req, _| async move { Ok(text(StatusCode::OK, req.uri().path().to_owned())) });
    let tiers: Compose<Moka, Redis> = Compose::new(Moka::default(), store.clone());
    let layer = CacheLayer::builder(tiers).build().unwrap();
    let svc = layer.layer(origin.clone());
    assert_eq!(fetch(&svc, get("/before")).await.1, "/before");

    server.stop();
    for i in 0..20 {
        let path = format!("/down/{i}");
        let (parts, body) = fetch(&svc, get(&path)).await;
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(body, path);
    }
    let (parts, _) = fetch(&svc, get("/before")).await;
    assert!(
        cache_status(&parts).starts_with("layercake; hit"),
        "L1 still serves"
    );
    let stats = store.stats();
    assert!(stats.errors + stats.timeouts >= 2, "{stats:?}");
    assert!(
        stats.rejected > 0 && stats.breaker_open,
        "the breaker stopped calling: {stats:?}"
    );
    assert!(layer.stats().errors > 0);

    server.restart().await;
    let mut conn = raw(&server).await;
    let mut recovered = false;
    for i in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let path = format!("/after/{i}");
        fetch(&svc, get(&path)).await;
        let key = layer_key(&path);
        let stored: bool = conn.exists(store.redis_key(&key)).await.unwrap();
        if stored {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "stores reach Redis again after it came back");
    // Reads have a breaker of their own: the next misses probe it and close it.
    let mut closed = false;
    for i in 0..60 {
        if !store.stats().breaker_open {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fetch(&svc, get(&format!("/probe/{i}"))).await;
    }
    assert!(closed, "both breakers close again: {:?}", store.stats());
}

/// The key the layer uses for `GET path` with its default configuration.
fn layer_key(path: &str) -> Key {
    Key::from_parts(["layercake", "http/3", "GET", "", path])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_refused_for_lack_of_memory_do_not_shut_off_reads() {
    let server = RedisServer::start(&["--maxmemory-policy", "noeviction"]).await;
    let store = redis(&server, "oom:");
    let cache: Cache<String, Redis> = Cache::builder(store.clone()).build().unwrap();
    cache.insert("kept", "stored before".to_owned()).await;
    // From now on every write needs memory Redis may not use: `OOM` on each `SET`.
    let mut conn = raw(&server).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();
    for i in 0..10 {
        cache.insert(format!("new {i}"), "refused".to_owned()).await;
    }
    let stats = store.stats();
    assert!(stats.errors >= 5, "the writes failed: {stats:?}");
    assert!(
        stats.write_breaker_open && !stats.read_breaker_open,
        "{stats:?}"
    );
    // Reads go on from Redis.
    for _ in 0..10 {
        assert_eq!(cache.get("kept").await.as_deref(), Some("stored before"));
    }
    assert_eq!(
        store.stats().rejected,
        stats.rejected,
        "no read was refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_whose_caller_gives_up_does_not_leave_the_breaker_half_open() {
    let server = RedisServer::start(&[]).await;
    let store = Redis::builder()
        .url(server.url())
        .prefix("probe:")
        .timeout(Duration::from_millis(100))
        .circuit_breaker(2, Duration::from_millis(200))
        .build()
        .unwrap();
    let key = Key::from_parts(["k"]);
    let get = || <Redis as Backend<String>>::get(&store, &key);
    assert!(get().await.unwrap().is_none(), "connected");
    // Redis stops answering for 1.5 s: two timeouts open the breaker.
    let mut conn = raw(&server).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .unwrap();
    for _ in 0..2 {
        assert!(get().await.is_err());
    }
    assert!(store.stats().read_breaker_open);
    // After the cool-down, one call probes: its caller gives up before Redis answers.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let gave_up = tokio::time::timeout(Duration::from_millis(20), get()).await;
    assert!(gave_up.is_err(), "the probe was still waiting for Redis");
    // Once Redis answers again, the next calls probe and close the breaker.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut recovered = false;
    for _ in 0..50 {
        if get().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "Redis is used again: {:?}", store.stats());
    assert!(!store.stats().breaker_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_value_is_never_read_as_another_type() {
    let server = RedisServer::start(&[]).await;
    let store = redis(&server, "types:");
    let names: Cache<String, Redis> = Cache::builder(store.clone()).build().unwrap();
    let counts: Cache<u64, Redis> = Cache::builder(store.clone()).build().unwrap();
    names.insert("k", "abcdef".to_owned()).await;
    // Same namespace, same key: postcard would read the string's length prefix as `6`.
    assert_eq!(counts.get("k").await, None);
    assert_eq!(store.stats().corrupt, 1, "counted");
    assert_eq!(counts.stats().errors, 1);
    let computed = counts.get_or_compute("k", || async { 7 }).await;
    assert_eq!(computed, 7);
    assert_eq!(counts.get("k").await, Some(7));
    assert_eq!(names.get("k").await, None, "and the other way round");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_replica_refuses_writes_and_still_serves_reads() {
    let primary = RedisServer::start(&[]).await;
    let port = primary.port().to_string();
    let replica = RedisServer::start(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--replica-read-only",
        "yes",
    ])
    .await;
    // Written through the primary, read through the replica once it has synced.
    let writer: Cache<String, Redis> = Cache::builder(redis(&primary, "ro:")).build().unwrap();
    writer.insert("kept", "from the primary".to_owned()).await;
    let store = redis(&replica, "ro:");
    let cache: Cache<String, Redis> = Cache::builder(store.clone()).build().unwrap();
    let mut replicated = false;
    for _ in 0..200 {
        if cache.get("kept").await.is_some() {
            replicated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(replicated, "the replica synced: {:?}", store.stats());
    // Every write answers `READONLY`: the write breaker opens, reads go on.
    for i in 0..10 {
        cache.insert(format!("new {i}"), "refused".to_owned()).await;
    }
    let stats = store.stats();
    assert!(
        stats.write_breaker_open && !stats.read_breaker_open,
        "{stats:?}"
    );
    for _ in 0..10 {
        assert_eq!(cache.get("kept").await.as_deref(), Some("from the primary"));
    }
    assert_eq!(
        store.stats().rejected,
        stats.rejected,
        "no read was refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_reaches_every_tier_of_a_composition() {
    let server = RedisServer::start(&[]).await;
    let tiers = Compose::new(Moka::default(), redis(&server, "inv:"));
    let cache: Cache<String, Compose<Moka, Redis>> = Cache::builder(tiers).build().unwrap();
    // Another instance, sharing the Redis tier only.
    let other: Cache<String, Redis> = Cache::builder(redis(&server, "inv:")).build().unwrap();
    cache.insert("k", "v1".to_owned()).await;
    assert_eq!(other.get("k").await.as_deref(), Some("v1"));
    let done = cache.invalidate("k").await.unwrap();
    assert_eq!(done.entries, Some(1), "held by both tiers, counted once");
    assert_eq!(
        cache.get("k").await,
        None,
        "gone from L1, and L2 does not refill it"
    );
    assert_eq!(other.get("k").await, None, "gone from Redis");
    assert_eq!(cache.stats().invalidations, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_are_readable_and_patterns_reach_every_tier() {
    let server = RedisServer::start(&[]).await;
    let tiers = Compose::new(Moka::default(), redis(&server, "pat:"));
    let cache: Cache<String, Compose<Moka, Redis>> = Cache::builder(tiers).build().unwrap();
    for key in ["users:1", "users:2", "teams:1"] {
        cache.insert(key, key.to_owned()).await;
    }
    // What `redis-cli --scan` shows.
    let mut conn = raw(&server).await;
    let mut names: Vec<String> = redis::cmd("KEYS")
        .arg("pat:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    names.sort();
    let readable: Vec<&str> = names.iter().map(|n| n.split('#').next().unwrap()).collect();
    assert_eq!(
        readable,
        [
            "pat:layercake:value/1:teams:1",
            "pat:layercake:value/1:users:1",
            "pat:layercake:value/1:users:2"
        ]
    );
    let done = cache.invalidate_pattern("users:*").await.unwrap();
    assert_eq!(done.entries, Some(2));
    assert_eq!(cache.get("users:1").await, None, "gone from both tiers");
    let left: Vec<String> = redis::cmd("KEYS")
        .arg("pat:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(cache.clear().await.unwrap().entries, Some(1));
    assert_eq!(cache.get("teams:1").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_purge_marks_the_entry_stale_on_every_tier() {
    let server = RedisServer::start(&[]).await;
    let tiers = Compose::new(Moka::default(), redis(&server, "soft:"));
    let cache: Cache<String, Compose<Moka, Redis>> = Cache::builder(tiers)
        .stale_if_error(Duration::from_secs(600))
        .build()
        .unwrap();
    let other: Cache<String, Redis> = Cache::builder(redis(&server, "soft:"))
        .stale_if_error(Duration::from_secs(600))
        .build()
        .unwrap();
    cache.insert("k", "v1".to_owned()).await;
    assert_eq!(cache.soft_invalidate("k").await.unwrap().entries, Some(1));
    assert_eq!(cache.get("k").await, None, "not served as it is from L1");
    assert_eq!(other.get("k").await, None, "nor from Redis");
    let down = other
        .try_get_or_compute("k", || async { Err::<String, _>("db down") })
        .await;
    assert_eq!(down.as_deref(), Ok("v1"), "still there for stale-if-error");
    let fresh = cache
        .try_get_or_compute("k", || async { Ok::<_, String>("v2".to_owned()) })
        .await;
    assert_eq!(fresh.as_deref(), Ok("v2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_uses_the_applications_own_client_or_connection_manager() {
    let server = RedisServer::start(&[]).await;
    let client = redis::Client::open(format!("{}/3", server.url())).unwrap();
    let from_client = Redis::builder().client(client.clone()).build().unwrap();
    let cache: Cache<String, Redis> = Cache::builder(from_client).build().unwrap();
    cache.insert("k", "via client".to_owned()).await;

    let manager = redis::aio::ConnectionManager::new(client).await.unwrap();
    let shared = Redis::builder()
        .connection_manager(manager.clone())
        .build()
        .unwrap();
    let other: Cache<String, Redis> = Cache::builder(shared).build().unwrap();
    assert_eq!(
        other.get("k").await.as_deref(),
        Some("via client"),
        "database 3, both ways"
    );
    // The application keeps using its connection for commands of its own.
    let mut manager = manager;
    let size: u64 = redis::cmd("DBSIZE")
        .query_async(&mut manager)
        .await
        .unwrap();
    assert_eq!(size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_append_trim_read_the_latest_and_block_for_new_events() {
    let server = RedisServer::start(&[]).await;
    let store = redis(&server, "events:");
    let mut ids = Vec::new();
    for n in 0..300u32 {
        let n = n.to_string();
        let id = store
            .stream_add("audit", &[("n", n.as_bytes()), ("kind", b"login")], 100)
            .await
            .unwrap();
        ids.push(id);
    }
    // Trimmed to about 100 (`~`: Redis trims whole nodes, never below the bound).
    let mut conn = raw(&server).await;
    let len: usize = redis::cmd("XLEN")
        .arg("events:audit")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((100..300).contains(&len), "{len}");

    let latest = store.stream_latest("audit", 3).await.unwrap();
    let got: Vec<&str> = latest.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(got, [&ids[299], &ids[298], &ids[297]], "newest first");
    let n: String = latest[0].get("n").unwrap();
    assert_eq!(n, "299");

    // Nothing new: the read waits its block time and answers nothing.
    let started = std::time::Instant::now();
    let none = store
        .stream_read("audit", &ids[299], 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150));

    // An event added while a reader blocks reaches it at once, and the store's own connection
    // is not held up meanwhile.
    let reader = {
        let store = store.clone();
        let after = ids[299].clone();
        tokio::spawn(async move {
            store
                .stream_read("audit", &after, 10, Duration::from_secs(5))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cache: Cache<String, Redis> = Cache::builder(store.clone()).build().unwrap();
    cache.insert("k", "v".to_owned()).await;
    assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    let id = store
        .stream_add("audit", &[("n", b"300".as_slice())], 100)
        .await
        .unwrap();
    let read = reader.await.unwrap().unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_every_tier_and_a_redis_that_is_down() {
    let mut server = RedisServer::start(&[]).await;
    let tiers = Compose::new(Moka::default(), redis(&server, "health:"));
    let cache: Cache<String, Compose<Moka, Redis>> = Cache::builder(tiers).build().unwrap();
    cache.insert("k", "v".to_owned()).await;
    let health = cache.health().await;
    assert!(health.up, "{health:?}");
    let names: Vec<&str> = health.tiers.iter().map(|t| t.name).collect();
    assert_eq!(names, ["moka", "redis"]);
    assert!(
        health.tiers[0].detail.starts_with("1 entries"),
        "{health:?}"
    );
    assert!(health.tiers[1].latency.is_some());
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["tiers"][1]["name"], "redis");

    server.stop();
    let health = cache.health().await;
    assert!(!health.up, "{health:?}");
    assert!(health.tiers[0].up, "memory is still up");
    assert!(!health.tiers[1].up);
    server.restart().await;
    let mut back = false;
    for _ in 0..100 {
        if cache.health().await.up {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "Redis is up again");
}
