//! Invalidation by tag, and soft purges by tag and pattern: the typed cache, the HTTP layer
//! (fixed tags, a tagging function, the origin's `Surrogate-Key`/`Cache-Tag`), the macro's
//! module; on Moka, on `Compose<Moka, Redis>` against a real `redis-server`, and on the
//! three-node cluster. And the race: a value computed while its tag is invalidated is never
//! stored.

use std::{sync::Arc, time::Duration};

use http::{StatusCode, header::HeaderValue};
use layercake::{Cache, CacheLayer, Moka, cached_handler, compose::Compose, redis::Redis};
use layercake_tests::{Origin, cache_status, eventually, fetch, get, settle, text};
use tokio::sync::Notify;
use tower::Layer;

/// An origin answering `v<n>` with the tags the path asks for: `/t/<tags, comma-separated>/…`
/// in a `Surrogate-Key` header.
fn tagging_origin() -> Origin {
    Origin::new(|req, n| async move {
        let mut response = text(StatusCode::OK, format!("v{n}"));
        let mut segments = req.uri().path().split('/').skip(1);
        if let (Some("t"), Some(tags)) = (segments.next(), segments.next()) {
            let value = tags.replace(',', " ");
            response
                .headers_mut()
                .insert("surrogate-key", HeaderValue::from_str(&value).unwrap());
        }
        Ok(response)
    })
}

fn is_hit(parts: &http::response::Parts) -> bool {
    cache_status(parts).starts_with("layercake; hit")
}

mod typed {
    use super::*;

    /// Starts `get_or_compute(key)` with a computation that answers `value` once released;
    /// returns when the computation has started.
    async fn blocked<V: Clone + Send + Sync + 'static + layercake::GetSize>(
        cache: &Cache<V, Moka>,
        key: &'static str,
        value: V,
    ) -> (tokio::task::JoinHandle<V>, Arc<Notify>) {
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let computing = tokio::spawn({
            let (cache, started, release) =
                (cache.clone(), Arc::clone(&started), Arc::clone(&release));
            async move {
                cache
                    .get_or_compute(key, move || async move {
                        started.notify_one();
                        release.notified().await;
                        value
                    })
                    .await
            }
        });
        started.notified().await;
        (computing, release)
    }

    #[tokio::test]
    async fn builder_and_per_call_tags_select_exactly_their_entries() {
        let cache: Cache<String, Moka> = Cache::builder(Moka::default())
            .tags(["users"])
            .build()
            .unwrap();
        for id in 1..=3 {
            cache
                .with_tags([format!("user:{id}")])
                .insert(format!("profile:{id}"), format!("p{id}"))
                .await;
            cache
                .with_tags([format!("user:{id}")])
                .get_or_compute(format!("posts:{id}"), move || async move {
                    format!("posts of {id}")
                })
                .await;
        }
        let done = cache.invalidate_tag("user:2").await.unwrap();
        assert_eq!(done.entries, Some(2));
        assert_eq!(cache.get("profile:2").await, None);
        assert_eq!(cache.get("posts:2").await, None);
        assert_eq!(cache.get("profile:1").await.as_deref(), Some("p1"));
        // The builder's tag is on every entry; two tags at once count each entry once.
        let done = cache.invalidate_tags(["users", "user:1"]).await.unwrap();
        assert_eq!(done.entries, Some(4));
        assert_eq!(cache.get("posts:3").await, None);
        assert_eq!(cache.stats().invalidations, 6);
        assert_eq!(
            cache.invalidate_tag("users").await.unwrap().entries,
            Some(0)
        );
    }

    #[tokio::test]
    async fn a_soft_purge_by_tag_or_pattern_keeps_entries_for_stale_if_error() {
        let cache: Cache<u32, Moka> = Cache::builder(Moka::default())
            .ttl(Duration::from_secs(60))
            .stale_if_error(Duration::from_secs(600))
            .build()
            .unwrap();
        cache.with_tags(["t"]).insert("a", 1).await;
        cache.insert("users:1", 2).await;
        cache.insert("teams:1", 3).await;
        assert_eq!(
            cache.soft_invalidate_tags(["t"]).await.unwrap().entries,
            Some(1)
        );
        assert_eq!(
            cache
                .soft_invalidate_pattern("users:*")
                .await
                .unwrap()
                .entries,
            Some(1)
        );
        assert_eq!(cache.get("a").await, None, "no longer served as it is");
        assert_eq!(cache.get("users:1").await, None);
        assert_eq!(cache.get("teams:1").await, Some(3), "not selected");
        let down = cache
            .try_get_or_compute("a", || async { Err::<u32, _>("db down") })
            .await;
        assert_eq!(down, Ok(1), "still served when the computation fails");
        let fresh = cache
            .try_get_or_compute("users:1", || async { Ok::<_, &str>(20) })
            .await;
        assert_eq!(fresh, Ok(20), "computed again otherwise");
        assert_eq!(cache.get("users:1").await, Some(20));
    }

    /// A computation that started before its tag was invalidated read the old data: its result
    /// is handed to its caller, and to the callers waiting for it, but never stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_value_computed_across_an_invalidation_of_its_tag_is_not_stored() {
        let cache: Cache<String, Moka> = Cache::builder(Moka::default())
            .tags(["user:42"])
            .build()
            .unwrap();
        let (computing, release) = blocked(&cache, "user:42", "old name".to_owned()).await;
        cache.invalidate_tag("user:42").await.unwrap();
        release.notify_one();
        assert_eq!(computing.await.unwrap(), "old name");
        assert_eq!(cache.get("user:42").await, None, "not stored");
        assert_eq!(cache.stats().stores, 0);
        // A computation that starts after the invalidation is stored as usual.
        cache
            .get_or_compute("user:42", || async { "new name".to_owned() })
            .await;
        assert_eq!(cache.get("user:42").await.as_deref(), Some("new name"));
    }

    /// The same race for a key and for a pattern.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_value_computed_across_an_invalidation_of_its_key_or_pattern_is_not_stored() {
        let cache: Cache<u32, Moka> = Cache::builder(Moka::default()).build().unwrap();
        for by_pattern in [false, true] {
            let (computing, release) = blocked(&cache, "users:7", 7).await;
            if by_pattern {
                cache.invalidate_pattern("users:*").await.unwrap();
            } else {
                cache.invalidate("users:7").await.unwrap();
            }
            release.notify_one();
            assert_eq!(computing.await.unwrap(), 7);
            assert_eq!(cache.get("users:7").await, None, "by pattern: {by_pattern}");
        }
    }
}

mod http_layer {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn surrogate_key_tags_are_stored_not_shown_and_invalidated_together() {
        let origin = tagging_origin();
        let layer = CacheLayer::builder(Moka::default()).build().unwrap();
        let svc = layer.layer(origin.clone());
        for uri in [
            "/t/item:1,items/a",
            "/t/item:1,items/b",
            "/t/item:2,items/c",
        ] {
            let (parts, _) = fetch(&svc, get(uri)).await;
            assert!(
                !parts.headers.contains_key("surrogate-key"),
                "the client never sees the cache's tags"
            );
        }
        let (parts, _) = fetch(&svc, get("/t/item:1,items/a")).await;
        assert!(is_hit(&parts));
        assert!(!parts.headers.contains_key("surrogate-key"), "nor on a hit");
        let (parts, _) = fetch(&svc, layercake_tests::request("POST", "/t/item:9/x")).await;
        assert!(
            !parts.headers.contains_key("surrogate-key"),
            "nor on a response the cache only passes on"
        );

        let done = layer.invalidate_tag("item:1").await.unwrap();
        assert_eq!(done.entries, Some(2));
        let (parts, _) = fetch(&svc, get("/t/item:1,items/a")).await;
        assert!(cache_status(&parts).ends_with("stored"), "fetched again");
        let (parts, _) = fetch(&svc, get("/t/item:2,items/c")).await;
        assert!(is_hit(&parts), "another item's page stays");
        // Stored now: `a` again, and `c`.
        assert_eq!(
            layer.invalidate_tags(["items"]).await.unwrap().entries,
            Some(2)
        );
        assert_eq!(layer.stats().invalidations, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn cache_tag_fixed_tags_and_a_tagging_function_all_count() {
        let origin = Origin::new(|req, n| async move {
            let mut response = text(StatusCode::OK, format!("v{n}"));
            if req.uri().path() == "/tagged" {
                response
                    .headers_mut()
                    .insert("cache-tag", HeaderValue::from_static("from-origin"));
            }
            Ok(response)
        });
        let layer = CacheLayer::builder(Moka::default())
            .tags(["site"])
            .tags_with(
                |request: &layercake::layer::TagRequest<'_>, response: &http::response::Parts| {
                    [
                        format!("path:{}", request.uri.path()),
                        format!("status:{}", response.status.as_u16()),
                    ]
                },
            )
            .keep_tag_headers(true)
            .build()
            .unwrap();
        let svc = layer.layer(origin.clone());
        let (parts, _) = fetch(&svc, get("/tagged")).await;
        assert_eq!(parts.headers["cache-tag"], "from-origin", "kept when asked");
        fetch(&svc, get("/plain")).await;
        for (tag, count) in [
            ("from-origin", 1),
            ("path:/plain", 1),
            ("status:200", 0),
            ("site", 0),
        ] {
            let done = layer.invalidate_tag(tag).await.unwrap();
            assert_eq!(done.entries, Some(count), "{tag}");
        }
        // What was left after the first two: nothing carries `status:200` any more.
        assert_eq!(origin.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_soft_purge_by_tag_revalidates_and_serves_stale_while_the_origin_fails() {
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let origin = Origin::new({
            let down = Arc::clone(&down);
            move |_, n| {
                let down = down.load(std::sync::atomic::Ordering::SeqCst);
                async move {
                    if down {
                        return Ok(text(StatusCode::SERVICE_UNAVAILABLE, "down"));
                    }
                    let mut response = text(StatusCode::OK, format!("v{n}"));
                    response
                        .headers_mut()
                        .insert("surrogate-key", HeaderValue::from_static("news"));
                    Ok(response)
                }
            }
        });
        let layer = CacheLayer::builder(Moka::default())
            .ttl(Duration::from_secs(300))
            .stale_if_error(Duration::from_secs(3600))
            .build()
            .unwrap();
        let svc = layer.layer(origin.clone());
        fetch(&svc, get("/news/1")).await;
        fetch(&svc, get("/news/2")).await;
        let done = layer.soft_invalidate_tags(["news"]).await.unwrap();
        assert_eq!(done.entries, Some(2));

        down.store(true, std::sync::atomic::Ordering::SeqCst);
        let (parts, body) = fetch(&svc, get("/news/1")).await;
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(body, "v1", "the origin is down: the purged entry is served");
        assert!(cache_status(&parts).contains("stale-if-error"));

        down.store(false, std::sync::atomic::Ordering::SeqCst);
        let (parts, body) = fetch(&svc, get("/news/2")).await;
        assert_eq!(body, "v4", "the origin is back: fetched again");
        assert!(
            cache_status(&parts).ends_with("stored"),
            "{}",
            cache_status(&parts)
        );

        // By pattern, the same.
        let done = layer.soft_invalidate_pattern("/news/2").await.unwrap();
        assert_eq!(done.entries, Some(1));
        let (_, body) = fetch(&svc, get("/news/2")).await;
        assert_eq!(body, "v5");
    }

    /// A response that arrives already aged (`Age`, from a cache upstream) is stored as usual
    /// right after an invalidation: what keeps old entries out is the fence, not the age.
    #[tokio::test(start_paused = true)]
    async fn an_aged_response_is_stored_right_after_an_invalidation() {
        let origin = Origin::new(|_, n| async move {
            let mut response = text(StatusCode::OK, format!("v{n}"));
            let headers = response.headers_mut();
            headers.insert("age", HeaderValue::from_static("30"));
            headers.insert("cache-control", HeaderValue::from_static("max-age=300"));
            headers.insert("surrogate-key", HeaderValue::from_static("page"));
            Ok(response)
        });
        let layer = CacheLayer::builder(Moka::default()).build().unwrap();
        let svc = layer.layer(origin.clone());
        fetch(&svc, get("/aged")).await;
        assert_eq!(layer.invalidate_tag("page").await.unwrap().entries, Some(1));
        let (parts, body) = fetch(&svc, get("/aged")).await;
        assert_eq!(body, "v2");
        assert!(
            cache_status(&parts).ends_with("stored"),
            "{}",
            cache_status(&parts)
        );
        let (parts, _) = fetch(&svc, get("/aged")).await;
        assert!(is_hit(&parts), "{}", cache_status(&parts));
    }

    /// A response fetched while its tag is invalidated is passed to its client but not stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_response_fetched_across_an_invalidation_of_its_tag_is_not_stored() {
        let release = Arc::new(Notify::new());
        let started = Arc::new(Notify::new());
        let origin = Origin::new({
            let (release, started) = (Arc::clone(&release), Arc::clone(&started));
            move |_, n| {
                let (release, started) = (Arc::clone(&release), Arc::clone(&started));
                async move {
                    if n == 1 {
                        started.notify_one();
                        release.notified().await;
                    }
                    let mut response = text(StatusCode::OK, format!("v{n}"));
                    response
                        .headers_mut()
                        .insert("surrogate-key", HeaderValue::from_static("item:1"));
                    Ok(response)
                }
            }
        });
        let layer = CacheLayer::builder(Moka::default()).build().unwrap();
        let svc = layer.layer(origin.clone());
        let first = tokio::spawn({
            let svc = svc.clone();
            async move { fetch(&svc, get("/items/1")).await }
        });
        started.notified().await;
        layer.invalidate_tag("item:1").await.unwrap();
        release.notify_one();
        let (_, body) = first.await.unwrap();
        assert_eq!(body, "v1");
        settle().await;
        let (parts, body) = fetch(&svc, get("/items/1")).await;
        assert_eq!(body, "v2", "the old response was not stored");
        assert!(cache_status(&parts).ends_with("stored"));
    }
}

#[cached_handler(ttl = 60, tags = ["rates"])]
async fn rate(currency: String) -> u32 {
    currency.len() as u32
}

#[tokio::test]
async fn the_macro_module_invalidates_by_tag() {
    rate("EUR".into()).await;
    rate("USD".into()).await;
    let done = rate::invalidate_tags(["rates"]).await.unwrap();
    assert_eq!(done.entries, Some(2));
    assert_eq!(rate::cache().stats().invalidations, 2);
}

mod on_redis {
    use super::*;
    use layercake_tests::redis_server::RedisServer;

    fn redis(server: &RedisServer, prefix: &str) -> Redis {
        server.store(prefix)
    }

    async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
        server.connection().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_stores_list_their_tags_with_counts() {
        let server = RedisServer::start(&[]).await;
        let l2 = redis(&server, "listed:");
        let cache: Cache<String, Compose<Moka, Redis>> =
            Cache::builder(Compose::new(Moka::default(), l2.clone()))
                .build()
                .unwrap();
        for id in 0..3 {
            let tags = [
                format!("item:{id}"),
                "items".to_owned(),
                "50%#off".to_owned(),
            ];
            cache
                .with_tags(tags)
                .insert(format!("k{id}"), "v".into())
                .await;
        }
        let listed = layercake::Backend::<String>::tags(&l2, 3).await.unwrap();
        assert_eq!(
            listed,
            [
                ("50%#off".to_owned(), 3),
                ("items".to_owned(), 3),
                ("item:0".to_owned(), 1)
            ],
            "most listed first, escapes read back"
        );
        let both = layercake::Backend::<String>::tags(cache.backend(), 10)
            .await
            .unwrap();
        assert_eq!(both.len(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tags_reach_every_tier_and_every_instance_through_a_set_per_tag() {
        let server = RedisServer::start(&[]).await;
        let tiers = Compose::new(Moka::default(), redis(&server, "tags:"));
        let cache: Cache<String, Compose<Moka, Redis>> = Cache::builder(tiers)
            .ttl(Duration::from_secs(60))
            .build()
            .unwrap();
        // Another instance: its own memory tier, the same Redis.
        let other: Cache<String, Compose<Moka, Redis>> =
            Cache::builder(Compose::new(Moka::default(), redis(&server, "tags:")))
                .build()
                .unwrap();
        for id in 0..10 {
            cache
                .with_tags([format!("item:{id}"), "items".to_owned()])
                .insert(format!("item:{id}"), format!("v{id}"))
                .await;
        }
        // The set that lists `items`, readable, living as long as its entries.
        let mut conn = raw(&server).await;
        let listed: usize = redis::cmd("SCARD")
            .arg("tags:tag:items")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(listed, 10);
        let ttl: i64 = redis::cmd("PTTL")
            .arg("tags:tag:items")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((55_000..=60_000).contains(&ttl), "{ttl}");

        let done = cache.invalidate_tag("item:3").await.unwrap();
        assert_eq!(done.entries, Some(1), "in both tiers, counted once");
        assert_eq!(cache.get("item:3").await, None);
        assert_eq!(other.get("item:3").await, None, "gone from Redis");
        assert_eq!(other.get("item:4").await.as_deref(), Some("v4"));

        let done = other.invalidate_tags(["items"]).await.unwrap();
        assert_eq!(done.entries, Some(9), "Redis counts what it unlinked");
        let exists: bool = redis::cmd("EXISTS")
            .arg("tags:tag:items")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!exists, "the set went with its entries");
        let left: Vec<String> = redis::cmd("KEYS")
            .arg("tags:*#*")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_tags_and_soft_purges_on_moka_over_redis() {
        let server = RedisServer::start(&[]).await;
        let origin = tagging_origin();
        let layer = CacheLayer::builder(Compose::<Moka, Redis>::new(
            Moka::default(),
            redis(&server, "web:"),
        ))
        .stale_if_error(Duration::from_secs(600))
        .build()
        .unwrap();
        let svc = layer.layer(origin.clone());
        for uri in ["/t/a/1", "/t/a/2", "/t/b/3"] {
            fetch(&svc, get(uri)).await;
        }
        eventually("three stores", || layer.stats().stores == 3).await;
        let done = layer.invalidate_tag("a").await.unwrap();
        assert_eq!(done.entries, Some(2));
        let (parts, _) = fetch(&svc, get("/t/b/3")).await;
        assert!(is_hit(&parts));

        // A soft purge rewrites the stored bytes in Redis: another instance sees them stale.
        let done = layer.soft_invalidate_tags(["b"]).await.unwrap();
        assert_eq!(done.entries, Some(1));
        let other = CacheLayer::builder(Compose::<Moka, Redis>::new(
            Moka::default(),
            redis(&server, "web:"),
        ))
        .build()
        .unwrap()
        .layer(origin.clone());
        let calls = origin.calls();
        let (parts, _) = fetch(&other, get("/t/b/3")).await;
        assert!(!is_hit(&parts), "{}", cache_status(&parts));
        assert_eq!(origin.calls(), calls + 1);

        // By pattern, in Redis too.
        fetch(&svc, get("/t/a/1")).await;
        eventually("the store", || layer.stats().stores == 4).await;
        let done = layer.soft_invalidate_pattern("/t/a/*").await.unwrap();
        assert_eq!(done.entries, Some(1));
    }
}

mod on_cluster {
    use super::*;
    use layercake_tests::redis_cluster::RedisCluster;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tag_reaches_its_entries_on_every_node() {
        let cluster = RedisCluster::start().await;
        let redis = Redis::builder()
            .cluster(cluster.urls())
            .prefix("ctags:")
            .timeout(Duration::from_secs(1))
            .connect()
            .await
            .unwrap();
        let cache: Cache<u64, Compose<Moka, Redis>> =
            Cache::builder(Compose::new(Moka::default(), redis.clone()))
                .stale_if_error(Duration::from_secs(600))
                .build()
                .unwrap();
        let plain: Cache<u64, Redis> = Cache::builder(redis).build().unwrap();
        for i in 0..100u64 {
            let parity = if i % 2 == 0 { "even" } else { "odd" };
            cache.with_tags([parity]).insert(format!("n{i}"), i).await;
        }
        let done = cache.invalidate_tag("even").await.unwrap();
        assert_eq!(done.entries, Some(50));
        assert_eq!(plain.get("n4").await, None);
        assert_eq!(plain.get("n5").await, Some(5));
        let done = cache.soft_invalidate_tags(["odd"]).await.unwrap();
        assert_eq!(done.entries, Some(50));
        assert_eq!(plain.get("n5").await, None, "stale in the cluster too");
        let down = plain
            .try_get_or_compute("n5", || async { Err::<u64, _>("down") })
            .await;
        assert_eq!(down, Ok(5));
    }
}

/// `examples/invalidation.rs`, its routes exactly as its documentation gives them.
mod example {
    use super::*;
    use layercake_tests::{invalidation_example, request};

    async fn post(app: &axum::Router, uri: &str) -> (StatusCode, String) {
        let (parts, body) = fetch(app, request("POST", uri)).await;
        (parts.status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn item(app: &axum::Router, id: u32) -> (String, String) {
        let (parts, body) = fetch(app, get(&format!("/items/{id}"))).await;
        assert!(!parts.headers.contains_key("surrogate-key"));
        (
            String::from_utf8(body.to_vec()).unwrap(),
            cache_status(&parts).to_owned(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn rename_invalidates_its_item_and_purge_answers_counts() {
        let app = invalidation_example::app(invalidation_example::cache(Moka::default()));
        for id in [1, 2, 12] {
            let (body, status) = item(&app, id).await;
            assert_eq!(body, format!("{id}:1"));
            assert!(status.ends_with("stored"), "{status}");
        }
        let (body, status) = item(&app, 1).await;
        assert_eq!(body, "1:1");
        assert!(status.starts_with("layercake; hit"), "{status}");

        let (status, body) = post(&app, "/items/1/rename").await;
        assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""));
        let (body, _) = item(&app, 1).await;
        assert_eq!(body, "1:2", "the renamed item is fetched again");
        let (body, status) = item(&app, 2).await;
        assert_eq!(body, "2:1");
        assert!(status.starts_with("layercake; hit"), "others stay cached");

        assert_eq!(
            post(&app, "/purge?pattern=/items/1*").await,
            (StatusCode::OK, "2".to_owned())
        );
        assert_eq!(
            post(&app, "/purge?tag=items").await,
            (StatusCode::OK, "1".to_owned())
        );
        assert_eq!(
            post(&app, "/purge?tag=items").await,
            (StatusCode::OK, "0".to_owned())
        );
        let (status, _) = post(&app, "/purge").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
