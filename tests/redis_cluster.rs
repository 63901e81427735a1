//! The Redis store on a real three-node Redis Cluster (feature `redis-cluster`): keys spread
//! over every node, typed values and HTTP responses, several keys written at once.

use std::{sync::Arc, time::Duration};

use http::StatusCode;
use layercake::{
    Backend, Cache, CacheLayer, Entry, Key, Moka, Timestamp, compose::Compose, redis::Redis,
};
use layercake_tests::{
    Origin, cache_status, eventually, fetch, get, redis_cluster::RedisCluster, text,
};
use tower::Layer;

async fn store(cluster: &RedisCluster) -> Redis {
    Redis::builder()
        .cluster(cluster.urls())
        .prefix("cluster:")
        .timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_spread_over_every_node_and_read_back() {
    let cluster = RedisCluster::start().await;
    let redis = store(&cluster).await;
    let cache: Cache<u64, Redis> = Cache::builder(redis.clone()).build().unwrap();
    for i in 0..200u64 {
        cache.insert(format!("n{i}"), i * i).await;
    }
    for i in 0..200u64 {
        assert_eq!(cache.get(format!("n{i}")).await, Some(i * i));
    }
    assert_eq!(cache.stats().errors, 0);

    // Every node holds a share of the keys.
    for url in cluster.urls() {
        let client = redis::Client::open(url).unwrap();
        let mut node = client.get_multiplexed_async_connection().await.unwrap();
        let keys: usize = redis::cmd("DBSIZE").query_async(&mut node).await.unwrap();
        assert!(keys > 20, "a node holds only {keys} of 200 keys");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_keys_at_once_and_http_responses_through_moka_and_the_cluster() {
    let cluster = RedisCluster::start().await;
    let redis = store(&cluster).await;
    let entries: Vec<_> = (0..50)
        .map(|i| {
            let entry = Entry::new(
                format!("v{i}"),
                Timestamp::now(),
                Duration::from_secs(60),
                Duration::ZERO,
            );
            (Key::from_parts([format!("many{i}")]), Arc::new(entry))
        })
        .collect();
    redis.set_many(&entries).await.unwrap();
    for (key, entry) in &entries {
        let found: Option<Arc<Entry<String>>> = redis.get(key).await.unwrap();
        assert_eq!(found.unwrap().value(), entry.value());
    }

    let origin = Origin::new(|_, n| async move { Ok(text(StatusCode::OK, format!("v{n}"))) });
    let tiers: Compose<Moka, Redis> = Compose::new(Moka::default(), redis.clone());
    let layer = CacheLayer::builder(tiers).build().unwrap();
    let svc = layer.layer(origin.clone());
    fetch(&svc, get("/page")).await;
    eventually("the store", || layer.stats().stores == 1).await;
    // Another instance (its own Moka) is served from the cluster.
    let other: Compose<Moka, Redis> = Compose::new(Moka::default(), redis);
    let other = CacheLayer::builder(other)
        .build()
        .unwrap()
        .layer(origin.clone());
    let (parts, body) = fetch(&other, get("/page")).await;
    assert_eq!(body, "v1");
    assert!(cache_status(&parts).starts_with("layercake; hit"));
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_and_clear_reach_every_primary() {
    let cluster = RedisCluster::start().await;
    let redis = store(&cluster).await;
    let cache: Cache<u64, Redis> = Cache::builder(redis.clone()).build().unwrap();
    for i in 0..100u64 {
        cache.insert(format!("users:{i}"), i).await;
        cache.insert(format!("teams:{i}"), i).await;
    }
    let done = cache.invalidate_pattern("users:*").await.unwrap();
    assert_eq!(done.entries, Some(100), "keys on every node");
    assert_eq!(cache.get("users:7").await, None);
    assert_eq!(cache.get("teams:7").await, Some(7));
    assert_eq!(cache.clear().await.unwrap().entries, Some(100));
    assert_eq!(
        redis.clear_prefix().await.unwrap(),
        0,
        "nothing left under the prefix"
    );
    for url in cluster.urls() {
        let client = redis::Client::open(url).unwrap();
        let mut node = client.get_multiplexed_async_connection().await.unwrap();
        let keys: usize = redis::cmd("DBSIZE").query_async(&mut node).await.unwrap();
        assert_eq!(keys, 0);
    }
}
