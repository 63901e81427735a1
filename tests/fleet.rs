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
        Instance::with_updates(redis, None).await
    }

    /// An instance whose stores are announced with their values up to `updates` bytes.
    async fn with_updates(redis: Redis, updates: Option<usize>) -> Instance {
        let memory = Moka::default();
        let fleet = Fleet::builder()
            .max_deaf(Duration::from_millis(200))
            .start(&redis)
            .unwrap();
        let builder = Cache::builder(Compose::new(memory.clone(), redis))
            .ttl(Duration::from_secs(300))
            .stale_if_error(Duration::from_secs(600))
            .fleet(fleet.clone());
        let cache = match updates {
            Some(max) => builder.fleet_updates(max),
            None => builder,
        }
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
            <Moka as Backend<String>>::peek(&self.memory, key.as_key_ref()),
            Some(Ok(Some(_)))
        )
    }

    /// The value this instance's memory tier holds under `key`.
    fn remembered(&self, key: &str) -> Option<String> {
        let key = self.cache.key(key);
        match <Moka as Backend<String>>::peek(&self.memory, key.as_key_ref()) {
            Some(Ok(Some(entry))) => Some(entry.value().clone()),
            _ => None,
        }
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

/// Runs `change` and waits until each of `others` has heard of it. Stores are announced in the
/// background: an instance that loads a key before it has heard of the store that put it in
/// Redis would (rightly) let go of its copy when the announcement arrives.
async fn told<T>(others: &[&Instance], change: impl std::future::Future<Output = T>) -> T {
    let before: Vec<u64> = others.iter().map(|o| o.fleet.stats().heard).collect();
    let done = change.await;
    for (other, before) in others.iter().zip(before) {
        eventually("the others heard", || other.fleet.stats().heard > before).await;
    }
    done
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
    every_change_reaches_the_others(&a, &b, &c).await;
}

/// Every kind of change on one of three instances reaches the others' memory tiers.
async fn every_change_reaches_the_others(a: &Instance, b: &Instance, c: &Instance) {
    // A write replaces: the others let go of their copy and read the new one.
    told(&[b, c], a.cache.insert("k", "v1".to_owned())).await;
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
        let tagged = a.cache.with_tags(["items"]);
        told(&[b], tagged.insert(format!("item:{id}"), format!("i{id}"))).await;
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
        told(&[b], a.cache.insert(key, key.to_owned())).await;
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
    told(&[b], a.cache.insert("soft", "s1".to_owned())).await;
    b.load("soft").await;
    a.cache.soft_invalidate("soft").await.unwrap();
    eventually("B lets go of the purged entry", || !b.remembers("soft")).await;
    assert_eq!(b.cache.get("soft").await, None, "not served as it is");
    let down = b
        .cache
        .try_get_or_compute("soft", || async { Err::<String, _>("db down".to_owned()) })
        .await;
    assert_eq!(down.as_deref(), Ok("s1"));

    for instance in [a, b, c] {
        let stats = instance.fleet.stats();
        assert!(stats.hearing);
        assert_eq!(stats.announce_errors, 0);
        assert!(stats.heard > 0, "{stats:?}");
    }
}

/// The heartbeat keeps a healthy subscription: no flush, no resubscription, however many
/// heartbeats go by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_fleet_keeps_its_memory() {
    let server = RedisServer::start(&[]).await;
    let fleet = Fleet::builder()
        .heartbeat(Duration::from_millis(20))
        .start(&store(&server))
        .unwrap();
    eventually("the instance hears the fleet", || fleet.stats().hearing).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = fleet.stats();
    assert!(stats.hearing);
    assert_eq!((stats.flushes, stats.resubscriptions), (1, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_subscription_is_killed_stops_trusting_its_memory() {
    let server = RedisServer::start(&[]).await;
    let a = Instance::on(store(&server)).await;
    let b = Instance::on(store(&server)).await;
    told(&[&b], a.cache.insert("k", "v1".to_owned())).await;
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
    told(&[&b], a.cache.insert("j", "w1".to_owned())).await;
    assert_eq!(b.load("j").await.as_deref(), Some("w1"));
    a.cache.invalidate("j").await.unwrap();
    eventually("B forgets j", || !b.remembers("j")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_empties_every_memory_tier() {
    let mut server = RedisServer::start(&[]).await;
    let a = Instance::on(store(&server)).await;
    let b = Instance::on(store(&server)).await;
    told(&[&b], a.cache.insert("k", "v1".to_owned())).await;
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
    // Published when `invalidate_pattern` returns; applied by B a moment later.
    let mut body = bytes::Bytes::new();
    for _ in 0..200 {
        body = fetch(&svc_b, get("/page")).await.1;
        if body != "v1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(body, "v2");
    assert_eq!(origin.calls(), 2);
    assert!(fleet_b.stats().heard >= 2);
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
    let c = Instance::on(connect().await).await;
    every_change_reaches_the_others(&a, &b, &c).await;
    for i in 0..20 {
        let tagged = a.cache.with_tags(["batch"]);
        told(&[&b], tagged.insert(format!("n{i}"), i.to_string())).await;
        b.load(&format!("n{i}")).await;
    }
    a.cache.invalidate_tag("batch").await.unwrap();
    for i in 0..20 {
        let key = format!("n{i}");
        eventually("B forgets", || !b.remembers(&key)).await;
        assert_eq!(b.cache.get(&key).await, None);
    }

    // One fill for the fleet, the lease on the key's own node.
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut callers = tokio::task::JoinSet::new();
    for n in 0..20 {
        let cache = if n % 2 == 0 {
            a.cache.clone()
        } else {
            b.cache.clone()
        };
        let runs = std::sync::Arc::clone(&runs);
        callers.spawn(async move {
            cache
                .get_or_compute("cold", move || async move {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    "once".to_owned()
                })
                .await
        });
    }
    for value in callers.join_all().await {
        assert_eq!(value, "once");
    }
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
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

    // A PUT returns once the fleet has been told; each instance applies it within about a
    // millisecond.
    let eventually_reads = |app: &axum::Router, want: &'static str| {
        let app = app.clone();
        async move {
            for _ in 0..200 {
                let (_, body) = fetch(&app, get("/items/1")).await;
                if body == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("an instance kept serving something else than {want}");
        }
    };
    let (parts, _) = fetch(&apps[0], put("blue")).await;
    assert_eq!(parts.status, StatusCode::NO_CONTENT);
    for app in &apps {
        eventually_reads(app, "blue").await;
    }
    let (parts, _) = fetch(&apps[2], put("green")).await;
    assert_eq!(parts.status, StatusCode::NO_CONTENT);
    for app in &apps {
        eventually_reads(app, "green").await;
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

mod leases {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    };

    use tokio::sync::Notify;

    use super::*;

    /// Three instances, and a computation that counts its runs and takes `delay`.
    async fn three(server: &RedisServer) -> [Instance; 3] {
        [
            Instance::on(store(server)).await,
            Instance::on(store(server)).await,
            Instance::on(store(server)).await,
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn thirty_callers_on_three_instances_make_one_upstream_call() {
        let server = RedisServer::start(&[]).await;
        let instances = Arc::new(three(&server).await);
        let runs = Arc::new(AtomicUsize::new(0));
        let mut callers = tokio::task::JoinSet::new();
        for n in 0..30 {
            let (instances, runs) = (Arc::clone(&instances), Arc::clone(&runs));
            callers.spawn(async move {
                instances[n % 3]
                    .cache
                    .get_or_compute("cold", move || async move {
                        runs.fetch_add(1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        "computed once".to_owned()
                    })
                    .await
            });
        }
        for value in callers.join_all().await {
            assert_eq!(value, "computed once");
        }
        assert_eq!(runs.load(SeqCst), 1, "one upstream call for the fleet");
        let waits: u64 = instances.iter().map(|i| i.fleet.stats().lease_waits).sum();
        assert!(waits >= 2, "the other instances waited: {waits}");
    }

    /// A filler on `filling` that computes `old` once `release` is notified, and a waiter on
    /// `waiting` that would compute `new`; returns once the waiter waits for the filler.
    async fn fill_and_wait(
        filling: &Instance,
        waiting: &Instance,
        key: &'static str,
        (old, new): (&'static str, &'static str),
        release: Arc<Notify>,
    ) -> (
        tokio::task::JoinHandle<String>,
        tokio::task::JoinHandle<String>,
    ) {
        let started = Arc::new(Notify::new());
        let filler = tokio::spawn({
            let (cache, started) = (filling.cache.clone(), Arc::clone(&started));
            async move {
                cache
                    .get_or_compute(key, move || async move {
                        started.notify_one();
                        release.notified().await;
                        old.to_owned()
                    })
                    .await
            }
        });
        started.notified().await;
        let waiter = tokio::spawn({
            let cache = waiting.cache.clone();
            async move {
                cache
                    .get_or_compute(key, move || async move { new.to_owned() })
                    .await
            }
        });
        let waits = waiting.fleet.stats().lease_waits;
        eventually("the waiter waits for the fill", || {
            waiting.fleet.stats().lease_waits > waits
        })
        .await;
        (filler, waiter)
    }

    /// A filler that goes away (cancelled, or its instance gone) gives its lease back; one that
    /// dies silently lets it expire. Either way another instance takes over, within bounds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_filler_that_goes_away_lets_another_instance_take_over() {
        let server = RedisServer::start(&[]).await;
        let [a, b, _c] = three(&server).await;
        let never = Arc::new(Notify::new());
        let (filler, waiter) = fill_and_wait(&a, &b, "k", ("never", "from B"), never).await;
        filler.abort();
        let began = std::time::Instant::now();
        assert_eq!(waiter.await.unwrap(), "from B");
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{:?}",
            began.elapsed()
        );

        // A lease held by an instance that died: it expires, and B fills the key.
        let mut admin = server.connection().await;
        let lease = b.cache.key("dead");
        let name = store(&server).lease_key(&lease);
        let _: () = redis::cmd("SET")
            .arg(&name)
            .arg("someone")
            .arg("PX")
            .arg(400)
            .query_async(&mut admin)
            .await
            .unwrap();
        let began = std::time::Instant::now();
        let value = b
            .cache
            .get_or_compute("dead", || async { "after expiry".to_owned() })
            .await;
        assert_eq!(value, "after expiry");
        let waited = began.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    }

    /// An invalidation while a lease is held voids it: the holder's result, computed from the
    /// old data, is returned to its callers but never stored; the fleet fills the key again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_invalidation_during_a_lease_keeps_the_old_result_out_of_the_cache() {
        let server = RedisServer::start(&[]).await;
        let [a, b, c] = three(&server).await;
        let release = Arc::new(Notify::new());
        let names = ("old name", "new name");
        let (filler, waiter) = fill_and_wait(&a, &b, "user:42", names, Arc::clone(&release)).await;
        c.cache.invalidate("user:42").await.unwrap();
        assert_eq!(waiter.await.unwrap(), "new name", "B filled it again");
        release.notify_one();
        assert_eq!(
            filler.await.unwrap(),
            "old name",
            "A's caller has A's result"
        );
        assert_eq!(a.fleet.stats().leases_voided, 1);
        for instance in [&a, &b, &c] {
            assert_eq!(
                instance.cache.get("user:42").await.as_deref(),
                Some("new name")
            );
        }
    }
}

/// The "update" strategy: a store is announced with its value, and the other instances that
/// hold the key replace their copy and go on serving it from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_values_are_pushed_to_the_other_memory_tiers() {
    let server = RedisServer::start(&[]).await;
    let a = Instance::with_updates(store(&server), Some(512)).await;
    let b = Instance::with_updates(store(&server), Some(512)).await;
    told(&[&b], a.cache.insert("rate", "1.10".to_owned())).await;
    assert_eq!(b.load("rate").await.as_deref(), Some("1.10"));
    a.cache.insert("rate", "1.11".to_owned()).await;
    eventually("B holds the new value in memory", || {
        b.remembered("rate").as_deref() == Some("1.11")
    })
    .await;
    assert_eq!(b.cache.get("rate").await.as_deref(), Some("1.11"));

    // A value over the limit is announced as a plain store: B lets go of its copy.
    a.cache.insert("rate", "x".repeat(1000)).await;
    eventually("B lets go of the large value", || !b.remembers("rate")).await;
    assert_eq!(b.cache.get("rate").await, Some("x".repeat(1000)));
}

/// The HTTP layer fills a cold URL once for the fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_requests_on_three_layers_reach_the_origin_once() {
    let server = RedisServer::start(&[]).await;
    let origin = Origin::new(|_, n| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(text(StatusCode::OK, format!("v{n}")))
    });
    let mut services = Vec::new();
    for _ in 0..3 {
        let fleet = Fleet::builder().start(&store(&server)).unwrap();
        eventually("hears", || fleet.stats().hearing).await;
        let layer =
            CacheLayer::builder(Compose::<Moka, Redis>::new(Moka::default(), store(&server)))
                .ttl(Duration::from_secs(300))
                .fleet(fleet)
                .build()
                .unwrap();
        services.push(layer.layer(origin.clone()));
    }
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..30 {
        let svc = services[n % 3].clone();
        requests.spawn(async move { fetch(&svc, get("/cold")).await.1 });
    }
    for body in requests.join_all().await {
        assert_eq!(body, "v1");
    }
    assert_eq!(origin.calls(), 1);
}
