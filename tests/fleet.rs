//! Many instances, one cache: several instances, each with its own memory tier, its own
//! connections and its own fleet membership, over one real `redis-server` (and the three-node
//! cluster). Every kind of change on one instance reaches the others' memory tiers; an instance
//! that cannot hear the fleet (its subscription killed, Redis restarted) stops trusting its
//! memory tier.

use std::time::Duration;

use http::StatusCode;
use layercake::{Backend, Cache, CacheLayer, Moka, compose::Compose, fleet::Fleet, redis::Redis};
use layercake_tests::{
    Origin, cache_status, eventually, fetch, get, redis_cluster::RedisCluster,
    redis_server::RedisServer, text,
};
use tower::Layer;

type Tiers = Compose<Moka, Redis>;

/// One instance: its memory tier, its cache over `Compose<Moka, Redis>`, its fleet.
struct Instance {
    memory: Moka,
    cache: Cache<String, Tiers>,
    fleet: Fleet,
}

impl Instance {
    async fn on(redis: Redis) -> Instance {
        let memory = Moka::default();
        let fleet = Fleet::builder()
            .max_deaf(Duration::from_millis(200))
            .start(&redis)
            .unwrap();
        let cache = Cache::builder(Compose::new(memory.clone(), redis))
            .ttl(Duration::from_secs(300))
            .stale_if_error(Duration::from_secs(600))
            .fleet(fleet.clone())
            .build()
            .unwrap();
        eventually("the instance hears the fleet", || fleet.stats().hearing).await;
        Instance {
            memory,
            cache,
            fleet,
        }
    }

    /// Whether this instance's memory tier holds `key` (without asking Redis).
    fn remembers(&self, key: &str) -> bool {
        let key = self.cache.key(key);
        matches!(
            <Moka as Backend<String>>::peek(&self.memory, &key),
            Some(Ok(Some(_)))
        )
    }

    /// Reads `key` (refilling the memory tier from Redis) and checks it is now remembered.
    async fn load(&self, key: &str) -> Option<String> {
        let value = self.cache.get(key).await;
        if value.is_some() {
            eventually("the memory tier refilled", || self.remembers(key)).await;
        }
        value
    }
}

fn store(server: &RedisServer) -> Redis {
    server.store("fleet:")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_on_one_instance_reaches_the_others_memory_tiers() {
    let server = RedisServer::start(&[]).await;
    let a = Instance::on(store(&server)).await;
    let b = Instance::on(store(&server)).await;
    let c = Instance::on(store(&server)).await;

    // A write replaces: the others let go of their copy and read the new one.
    a.cache.insert("k", "v1".to_owned()).await;
    assert_eq!(b.load("k").await.as_deref(), Some("v1"));
    assert_eq!(c.load("k").await.as_deref(), Some("v1"));
    a.cache.insert("k", "v2".to_owned()).await;
    eventually("B forgets k", || !b.remembers("k")).await;
    eventually("C forgets k", || !c.remembers("k")).await;
    assert_eq!(b.cache.get("k").await.as_deref(), Some("v2"));

    // A key.
    a.cache.invalidate("k").await.unwrap();
    eventually("B forgets k", || !b.remembers("k")).await;
    assert_eq!(b.cache.get("k").await, None);
    assert_eq!(c.cache.get("k").await, None);

    // A tag, from another instance than the one that stored the entries.
    for id in 0..3 {
        a.cache
            .with_tags(["items"])
            .insert(format!("item:{id}"), format!("i{id}"))
            .await;
        b.load(&format!("item:{id}")).await;
    }
    c.cache.invalidate_tag("items").await.unwrap();
    for id in 0..3 {
        let key = format!("item:{id}");
        eventually("A forgets the tag", || !a.remembers(&key)).await;
        eventually("B forgets the tag", || !b.remembers(&key)).await;
        assert_eq!(b.cache.get(&key).await, None);
    }

    // A pattern, and clear.
    for key in ["users:1", "users:2", "teams:1"] {
        a.cache.insert(key, key.to_owned()).await;
        b.load(key).await;
    }
    a.cache.invalidate_pattern("users:*").await.unwrap();
    eventually("B forgets the pattern", || {
        !b.remembers("users:1") && !b.remembers("users:2")
    })
    .await;
    assert!(b.remembers("teams:1"), "outside the pattern");
    a.cache.clear().await.unwrap();
    eventually("B forgets everything", || !b.remembers("teams:1")).await;

    // A soft purge: the others stop serving it as it is, and still have it for errors.
    a.cache.insert("soft", "s1".to_owned()).await;
    b.load("soft").await;
    a.cache.soft_invalidate("soft").await.unwrap();
    eventually("B lets go of the purged entry", || !b.remembers("soft")).await;
    assert_eq!(b.cache.get("soft").await, None, "not served as it is");
    let down = b
        .cache
        .try_get_or_compute("soft", || async { Err::<String, _>("db down".to_owned()) })
        .await;
    assert_eq!(down.as_deref(), Ok("s1"));

    for instance in [&a, &b, &c] {
        let stats = instance.fleet.stats();
        assert!(stats.hearing);
        assert_eq!(stats.announce_errors, 0);
        assert!(stats.heard > 0, "{stats:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_subscription_is_killed_stops_trusting_its_memory() {
    let server = RedisServer::start(&[]).await;
    let a = Instance::on(store(&server)).await;
    let b = Instance::on(store(&server)).await;
    a.cache.insert("k", "v1".to_owned()).await;
    assert_eq!(b.load("k").await.as_deref(), Some("v1"));
    let flushes = b.fleet.stats().flushes;

    // Every subscriber is cut off; A invalidates while nobody hears.
    let mut admin = server.connection().await;
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(killed >= 2, "{killed}");
    a.cache.invalidate("k").await.unwrap();

    eventually("B empties its memory tier", || !b.remembers("k")).await;
    assert_eq!(b.cache.get("k").await, None);
    assert!(b.fleet.stats().flushes > flushes);
    eventually("B hears again", || {
        let stats = b.fleet.stats();
        stats.hearing && stats.resubscriptions >= 1
    })
    .await;

    // Heard again: announcements reach it as before.
    a.cache.insert("j", "w1".to_owned()).await;
    assert_eq!(b.load("j").await.as_deref(), Some("w1"));
    a.cache.invalidate("j").await.unwrap();
    eventually("B forgets j", || !b.remembers("j")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_empties_every_memory_tier() {
    let mut server = RedisServer::start(&[]).await;
    let a = Instance::on(store(&server)).await;
    let b = Instance::on(store(&server)).await;
    a.cache.insert("k", "v1".to_owned()).await;
    assert_eq!(b.load("k").await.as_deref(), Some("v1"));

    server.stop();
    // A changes the value while Redis is away: nobody hears it.
    let _ = a.cache.invalidate("k").await;
    eventually("B stops hearing", || !b.fleet.stats().hearing).await;
    eventually("B empties its memory tier", || !b.remembers("k")).await;
    server.restart().await;
    eventually("B hears again", || b.fleet.stats().hearing).await;
    assert_eq!(b.cache.get("k").await, None, "Redis came back empty");
    assert!(b.fleet.stats().resubscriptions >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_layer_keeps_every_instance_coherent() {
    let server = RedisServer::start(&[]).await;
    let origin = Origin::new(|_, n| async move { Ok(text(StatusCode::OK, format!("v{n}"))) });
    let layer = |fleet: Fleet| {
        CacheLayer::builder(Compose::<Moka, Redis>::new(Moka::default(), store(&server)))
            .ttl(Duration::from_secs(300))
            .fleet(fleet)
            .build()
            .unwrap()
    };
    let fleet_a = Fleet::builder().start(&store(&server)).unwrap();
    let fleet_b = Fleet::builder().start(&store(&server)).unwrap();
    eventually("both hear", || {
        fleet_a.stats().hearing && fleet_b.stats().hearing
    })
    .await;
    let (a, b) = (layer(fleet_a), layer(fleet_b.clone()));
    let (svc_a, svc_b) = (a.layer(origin.clone()), b.layer(origin.clone()));
    fetch(&svc_a, get("/page")).await;
    eventually("A stored", || a.stats().stores == 1).await;
    let (_, body) = fetch(&svc_b, get("/page")).await;
    assert_eq!(body, "v1", "from Redis");
    let (parts, _) = fetch(&svc_b, get("/page")).await;
    assert!(cache_status(&parts).starts_with("layercake; hit"));

    a.invalidate_pattern("/page").await.unwrap();
    eventually("B heard", || fleet_b.stats().heard >= 2).await;
    let (parts, body) = fetch(&svc_b, get("/page")).await;
    assert_eq!(body, "v2", "{}", cache_status(&parts));
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_announcements_reach_every_instance() {
    let cluster = RedisCluster::start().await;
    let connect = || async {
        Redis::builder()
            .cluster(cluster.urls())
            .prefix("cfleet:")
            .timeout(Duration::from_secs(1))
            .connect()
            .await
            .unwrap()
    };
    let a = Instance::on(connect().await).await;
    let b = Instance::on(connect().await).await;
    for i in 0..20 {
        a.cache
            .with_tags(["batch"])
            .insert(format!("n{i}"), i.to_string())
            .await;
        b.load(&format!("n{i}")).await;
    }
    a.cache.invalidate_tag("batch").await.unwrap();
    for i in 0..20 {
        let key = format!("n{i}");
        eventually("B forgets", || !b.remembers(&key)).await;
        assert_eq!(b.cache.get(&key).await, None);
    }
}

/// `examples/fleet.rs`: three instances, its routes exactly as its documentation gives them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_example_serves_one_value_across_three_instances() {
    use layercake_tests::{fleet_example, request};

    let server = RedisServer::start(&[]).await;
    let mut apps = Vec::new();
    for _ in 0..3 {
        let redis = server.store("layercake:");
        let fleet = Fleet::builder().start(&redis).unwrap();
        eventually("the instance hears the fleet", || fleet.stats().hearing).await;
        apps.push(fleet_example::app(redis, fleet).unwrap());
    }
    let put = |body: &'static str| {
        let mut put = request("PUT", "/items/1");
        *put.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes()));
        put
    };
    let (parts, _) = fetch(&apps[0], get("/items/1")).await;
    assert_eq!(parts.status, StatusCode::OK);
    let (_, body) = fetch(&apps[1], get("/items/1")).await;
    assert_eq!(body, "none", "nothing stored yet");

    let (parts, _) = fetch(&apps[0], put("blue")).await;
    assert_eq!(parts.status, StatusCode::NO_CONTENT);
    for app in &apps {
        let (_, body) = fetch(app, get("/items/1")).await;
        assert_eq!(body, "blue");
    }
    let (parts, _) = fetch(&apps[2], put("green")).await;
    assert_eq!(parts.status, StatusCode::NO_CONTENT);
    for app in &apps {
        let (parts, body) = fetch(app, get("/items/1")).await;
        assert_eq!(body, "green", "{}", cache_status(&parts));
    }
    let mut db = server.connection().await;
    let computes: u64 = redis::cmd("GET")
        .arg("fleet:computes:1")
        .query_async(&mut db)
        .await
        .unwrap();
    // One computation per value at least; one per fleet needs leases (not built yet).
    assert!(computes >= 3, "computed {computes} times");
}
