//! What does a composed hit cost compared to a bare one? What does an L2 (Redis) hit cost
//! compared to a raw redis-rs GET of the same bytes? What do the codecs cost?
//!
//! Starts its own `redis-server` on a free loopback port. Run with
//! `cargo bench -p layercake-benches --bench tiers`.

#![allow(missing_docs)]

use std::{
    hint::black_box,
    sync::Arc,
    task::{Context, Waker},
    time::Duration,
};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use layercake::{
    Backend, CacheLayer, Entry, Key, Moka, Timestamp,
    codec::{Bincode, Codec, Compression, Format, Json, Postcard, Rkyv, Ron},
    compose::Compose,
    layer::CachedResponse,
    redis::Redis,
};
use layercake_benches::{Origin, poll_now};
use layercake_tests::redis_server::RedisServer;
use redis::AsyncCommands;
use tower::{Layer, Service, ServiceExt};

fn get() -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::default());
    *request.uri_mut() = Uri::from_static("/bench");
    request
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn hit<B: Backend<CachedResponse>>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    backend: B,
    rt: &tokio::runtime::Runtime,
) {
    let layer = CacheLayer::builder(backend).build().unwrap();
    let mut svc = layer.layer(Origin::new(1024));
    rt.block_on(async {
        let response = svc.clone().oneshot(get()).await.unwrap();
        response.into_body().collect().await.unwrap();
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    assert_eq!(layer.stats().stores, 1);
    c.bench_function(name, |b| {
        b.iter(|| {
            let mut cx = Context::from_waker(Waker::noop());
            assert!(svc.poll_ready(&mut cx).is_ready());
            black_box(poll_now(svc.call(get())).unwrap())
        })
    });
}

fn composed_hit(c: &mut Criterion) {
    let server = runtime().block_on(RedisServer::start(&[]));
    let rt = runtime();
    let _guard = rt.enter();
    let mut group = c.benchmark_group("l1_hit");
    hit(&mut group, "bare_moka", Moka::default(), &rt);
    let redis = Redis::builder()
        .url(server.url())
        .prefix("bench-l1:")
        .build()
        .unwrap();
    let tiers: Compose<Moka, Redis> = Compose::new(Moka::default(), redis);
    hit(&mut group, "compose_moka_redis", tiers, &rt);
    group.finish();
}

fn response(size: usize) -> CachedResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert("etag", HeaderValue::from_static("\"v1\""));
    CachedResponse::new(StatusCode::OK, headers, Bytes::from(vec![b'y'; size]))
}

/// The bench entry of a byte tier: a response of `size` bytes, fresh for an hour, under `label`.
fn stored(label: &str, size: usize) -> (Key, Arc<Entry<CachedResponse>>) {
    let entry = Entry::new(
        response(size),
        Timestamp::now(),
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    (Key::from_parts([label]), Arc::new(entry))
}

fn l2_hit(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(RedisServer::start(&[]));
    let redis = {
        let _guard = rt.enter();
        Redis::builder()
            .url(server.url())
            .prefix("bench-l2:")
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap()
    };
    let mut group = c.benchmark_group("l2_hit");
    for (label, size) in [("1KiB", 1024), ("128KiB", 128 * 1024)] {
        let (key, entry) = stored(label, size);
        rt.block_on(redis.set(&key, entry)).unwrap();
        group.bench_function(BenchmarkId::new("redis_store_get", label), |b| {
            b.iter(|| {
                let found = rt
                    .block_on(Backend::<CachedResponse>::get(&redis, &key))
                    .unwrap();
                black_box(found.unwrap())
            })
        });
        // The floor: the same bytes with a raw GET on the same connection, no decoding.
        let redis_key = redis.redis_key(&key);
        let mut connection = redis.connection().expect("a single Redis");
        group.bench_function(BenchmarkId::new("raw_redis_get", label), |b| {
            b.iter(|| {
                let bytes: Vec<u8> = rt.block_on(connection.get(&redis_key)).unwrap();
                black_box(bytes)
            })
        });
    }
    group.finish();
}

fn codec_case<F: Format<CachedResponse>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    codec: Codec<F>,
) {
    let key = Key::from_parts(["codec"]);
    let entry = Entry::new(
        response(16 * 1024),
        Timestamp::now(),
        Duration::from_secs(60),
        Duration::ZERO,
    );
    let encoded = Bytes::from(codec.encode(&key, &entry).unwrap());
    group.bench_function(BenchmarkId::new("encode", name), |b| {
        b.iter(|| black_box(codec.encode(&key, &entry).unwrap()))
    });
    group.bench_function(BenchmarkId::new("decode", name), |b| {
        b.iter(|| {
            black_box(
                codec
                    .decode::<CachedResponse>(&key, encoded.clone())
                    .unwrap(),
            )
        })
    });
    println!(
        "codec/{name}: {} bytes stored for a 16 KiB body",
        encoded.len()
    );
}

fn codecs(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec_16KiB");
    let zstd = Compression::Zstd { level: 3 };
    let gzip = Compression::Gzip { level: 6 };
    codec_case(&mut group, "postcard", Codec::new(Postcard));
    codec_case(
        &mut group,
        "postcard+zstd",
        Codec::new(Postcard).compression(zstd),
    );
    codec_case(
        &mut group,
        "postcard+gzip",
        Codec::new(Postcard).compression(gzip),
    );
    codec_case(&mut group, "json", Codec::new(Json));
    codec_case(&mut group, "json+zstd", Codec::new(Json).compression(zstd));
    codec_case(&mut group, "ron", Codec::new(Ron));
    codec_case(&mut group, "rkyv", Codec::new(Rkyv));
    codec_case(&mut group, "rkyv+zstd", Codec::new(Rkyv).compression(zstd));
    codec_case(&mut group, "bincode", Codec::new(Bincode));
    codec_case(
        &mut group,
        "bincode+zstd",
        Codec::new(Bincode).compression(zstd),
    );
    group.finish();
}

/// A hit on the Memcached store next to a raw `get` of the same bytes with the same client on
/// a connection of its own (one connection in the store's pool, so both make one round trip).
fn memcached_hit(c: &mut Criterion) {
    use layercake::Memcached;
    use layercake_tests::memcached_server::MemcachedServer;

    let rt = runtime();
    let server = rt.block_on(MemcachedServer::start());
    let store = Memcached::builder()
        .address(server.address())
        .prefix("bench:")
        .timeout(Duration::from_secs(1))
        .connections(1)
        .build()
        .unwrap();
    let mut raw = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(server.address())
            .await
            .unwrap();
        memcache_async::ascii::Protocol::new(stream)
    });
    let mut group = c.benchmark_group("memcached_hit");
    for (label, size) in [("1KiB", 1024), ("128KiB", 128 * 1024)] {
        let (key, entry) = stored(label, size);
        rt.block_on(store.set(&key, entry)).unwrap();
        group.bench_function(BenchmarkId::new("memcached_store_get", label), |b| {
            b.iter(|| {
                let found = rt
                    .block_on(Backend::<CachedResponse>::get(&store, &key))
                    .unwrap();
                black_box(found.unwrap())
            })
        });
        let name = store.memcached_key(&key);
        group.bench_function(BenchmarkId::new("raw_memcached_get", label), |b| {
            b.iter(|| black_box(rt.block_on(raw.get(&name)).unwrap()))
        });
    }
    group.finish();
}

/// A disk store hit (a read transaction on tokio's blocking pool, the bytes copied out of
/// redb's page cache, decoded) against redb's own get of the same bytes from a table of the
/// same shape, inline and on the blocking pool.
fn disk_hit(c: &mut Criterion) {
    use layercake::Disk;
    use redb::ReadableDatabase;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = layercake_tests::disk_store::TempDir::new("bench-disk");
    let store = Disk::builder()
        .directory(dir.path().join("store"))
        .open()
        .unwrap();
    let raw = Arc::new(redb::Database::create(dir.path().join("raw.redb")).unwrap());
    let table: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("raw");
    let mut group = c.benchmark_group("disk_hit");
    for (label, size) in [("1KiB", 1024), ("128KiB", 128 * 1024)] {
        let (key, entry) = stored(label, size);
        let bytes = layercake::codec::Codec::new(layercake::codec::Postcard)
            .encode(&key, &entry)
            .unwrap();
        rt.block_on(store.set(&key, entry)).unwrap();
        let tx = raw.begin_write().unwrap();
        tx.open_table(table)
            .unwrap()
            .insert(key.as_bytes(), bytes.as_slice())
            .unwrap();
        tx.commit().unwrap();
        let read = move |db: &redb::Database, key: &[u8]| {
            let tx = db.begin_read().unwrap();
            let t = tx.open_table(table).unwrap();
            let row = t.get(key).unwrap().unwrap();
            bytes::Bytes::copy_from_slice(row.value())
        };
        group.bench_function(BenchmarkId::new("disk_store_get", label), |b| {
            b.iter(|| {
                let found = rt
                    .block_on(Backend::<CachedResponse>::get(&store, &key))
                    .unwrap();
                black_box(found.unwrap())
            })
        });
        group.bench_function(BenchmarkId::new("raw_redb_get", label), |b| {
            b.iter(|| black_box(read(&raw, key.as_bytes())))
        });
        group.bench_function(BenchmarkId::new("raw_redb_get_blocking_pool", label), |b| {
            b.iter(|| {
                let (raw, key) = (Arc::clone(&raw), key.clone());
                let task = async move {
                    tokio::task::spawn_blocking(move || read(&raw, key.as_bytes())).await
                };
                black_box(rt.block_on(task).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    composed_hit,
    l2_hit,
    memcached_hit,
    disk_hit,
    codecs
);
criterion_main!(benches);
