//! The typed API, `Cache::get_or_compute`, on the same engine as the HTTP layer.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use layercake::{Cache, GetSize, Moka, StalePolicy};
use tokio::{
    task::JoinSet,
    time::{advance, sleep},
};

#[derive(Debug, Clone, PartialEq, GetSize)]
struct Profile {
    id: u32,
    name: String,
}

/// A computation that counts its calls and returns the call's number (1 for the first).
fn numbered(
    calls: &Arc<AtomicUsize>,
) -> impl FnOnce() -> std::future::Ready<u32> + Clone + Send + Sync + 'static {
    let calls = Arc::clone(calls);
    move || std::future::ready(calls.fetch_add(1, SeqCst) as u32 + 1)
}

fn cache<V: Clone + Send + Sync + GetSize + 'static>(ttl: u64) -> Cache<V, Moka> {
    Cache::builder(Moka::default())
        .ttl(Duration::from_secs(ttl))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn computes_once_then_serves_until_the_ttl_ends() {
    let profiles = cache::<Profile>(60);
    let calls = Arc::new(AtomicUsize::new(0));
    let load = || {
        let n = numbered(&calls);
        move || async move {
            Profile {
                id: 7,
                name: format!("Ada #{}", n().await),
            }
        }
    };

    assert_eq!(profiles.get_or_compute("7", load()).await.name, "Ada #1");
    advance(Duration::from_secs(59)).await;
    assert_eq!(profiles.get_or_compute("7", load()).await.name, "Ada #1");
    advance(Duration::from_secs(2)).await;
    assert_eq!(profiles.get_or_compute("7", load()).await.name, "Ada #2");
    assert_eq!(calls.load(SeqCst), 2);
    let stats = profiles.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 2, 2));
}

#[tokio::test(start_paused = true)]
async fn stale_values_are_returned_inside_the_window_unless_revalidating() {
    for (policy, expect) in [(StalePolicy::Return, 1), (StalePolicy::Revalidate, 2)] {
        let values: Cache<u32, Moka> = Cache::builder(Moka::default())
            .ttl(Duration::from_secs(10))
            .stale(Duration::from_secs(20))
            .stale_policy(policy)
            .build()
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let compute = || numbered(&calls);
        values.get_or_compute("k", compute()).await;
        advance(Duration::from_secs(15)).await;
        assert_eq!(
            values.get_or_compute("k", compute()).await,
            expect,
            "{policy:?}"
        );
        advance(Duration::from_secs(20)).await;
        assert_eq!(
            values.get_or_compute("k", compute()).await,
            expect + 1,
            "{policy:?}: past the window"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn sixty_four_concurrent_callers_share_one_computation() {
    let values = cache::<Arc<str>>(60);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..64 {
        let (values, calls) = (values.clone(), Arc::clone(&calls));
        set.spawn(async move {
            values
                .get_or_compute("report", || async move {
                    calls.fetch_add(1, SeqCst);
                    sleep(Duration::from_millis(200)).await;
                    Arc::<str>::from("the report")
                })
                .await
        });
    }
    for value in set.join_all().await {
        assert_eq!(&*value, "the report");
    }
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(values.stats().coalesced, 63);
}

/// Starts `n` callers of one key; the first computation fails or panics, per `first`.
async fn race(
    values: &Cache<u32, Moka>,
    calls: &Arc<AtomicUsize>,
    n: usize,
    first: &'static str,
) -> Vec<Result<Result<u32, String>, tokio::task::JoinError>> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (values, calls) = (values.clone(), Arc::clone(calls));
        set.spawn(async move {
            values
                .try_get_or_compute("k", move || async move {
                    let call = calls.fetch_add(1, SeqCst) + 1;
                    if call == 1 {
                        match first {
                            "fail" => {
                                sleep(Duration::from_millis(100)).await;
                                return Err("database down".to_owned());
                            }
                            "panic" => {
                                sleep(Duration::from_millis(100)).await;
                                panic!("computation panicked");
                            }
                            _ => {}
                        }
                    }
                    sleep(Duration::from_millis(100)).await;
                    Ok(call as u32)
                })
                .await
        });
        tokio::task::yield_now().await;
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_failed_computation_is_handed_to_every_waiter_at_once_and_not_cached() {
    let values = cache::<u32>(60);
    let calls = Arc::new(AtomicUsize::new(0));
    let started = tokio::time::Instant::now();
    let results = race(&values, &calls, 8, "fail").await;
    let errors: Vec<&String> = results
        .iter()
        .filter_map(|r| r.as_ref().unwrap().as_ref().err())
        .collect();
    assert_eq!(errors, vec!["database down"; 8]);
    assert_eq!(calls.load(SeqCst), 1);
    // Every caller has its answer when the one computation fails, not one computation later
    // per caller.
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    // The error was not stored: the next caller computes.
    let value = values
        .try_get_or_compute("k", || async { Ok::<u32, String>(9) })
        .await;
    assert_eq!(value, Ok(9));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_computation_leaves_no_waiter_hanging() {
    let values = cache::<u32>(60);
    let calls = Arc::new(AtomicUsize::new(0));
    let results = race(&values, &calls, 8, "panic").await;
    let panics = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.is_panic()))
        .count();
    let ok: Vec<u32> = results
        .iter()
        .filter_map(|r| r.as_ref().ok()?.as_ref().ok().copied())
        .collect();
    assert_eq!(panics, 1);
    assert_eq!(ok, vec![2; 7]);
    assert_eq!(values.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_computation_leaves_no_waiter_hanging() {
    let values = cache::<u32>(60);
    let calls = Arc::new(AtomicUsize::new(0));
    let leader = {
        let (values, calls) = (values.clone(), Arc::clone(&calls));
        tokio::spawn(async move {
            values
                .get_or_compute("k", || async move {
                    calls.fetch_add(1, SeqCst);
                    sleep(Duration::from_secs(3600)).await;
                    0
                })
                .await
        })
    };
    sleep(Duration::from_millis(10)).await;
    let mut waiters = JoinSet::new();
    for _ in 0..7 {
        let (values, calls) = (values.clone(), Arc::clone(&calls));
        waiters.spawn(async move {
            values
                .get_or_compute("k", || async move {
                    sleep(Duration::from_millis(100)).await;
                    calls.fetch_add(1, SeqCst) as u32 + 1
                })
                .await
        });
    }
    sleep(Duration::from_millis(10)).await;
    leader.abort();
    assert_eq!(waiters.join_all().await, vec![2; 7]);
    assert_eq!(calls.load(SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn get_insert_and_invalidate() {
    let values = cache::<String>(60);
    assert_eq!(values.get("k").await, None);
    values.insert("k", "v".to_owned()).await;
    assert_eq!(values.get("k").await.as_deref(), Some("v"));
    values.invalidate("k").await.unwrap();
    assert_eq!(values.get("k").await, None);
}

#[tokio::test(start_paused = true)]
async fn caches_of_different_types_share_one_store_without_mixing() {
    let store = Moka::default();
    let numbers: Cache<u64, Moka> = Cache::builder(store.clone()).build().unwrap();
    let words: Cache<String, Moka> = Cache::builder(store.clone()).build().unwrap();
    numbers.insert("same-key", 42).await;
    // Same namespace and key, other type: a counted miss, never a wrong value.
    assert_eq!(words.get("same-key").await, None);
    assert_eq!(words.stats().errors, 1);
    assert_eq!(numbers.get("same-key").await, Some(42));

    // Different namespaces keep apart.
    let other: Cache<u64, Moka> = Cache::builder(store).namespace("other").build().unwrap();
    assert_eq!(other.get("same-key").await, None);
    assert_eq!(other.stats().errors, 0);
}

#[derive(Clone, GetSize)]
enum Shape {
    Named { label: String, points: Vec<u32> },
    Tuple(Vec<u8>, #[get_size(ignore)] Vec<u8>),
    Empty,
}

#[derive(Clone, GetSize)]
struct Wrapper<T>(T, u64);

#[tokio::test]
async fn values_are_weighed_by_the_heap_they_own() {
    let store = Moka::with_max_bytes(64 * 1024 * 1024);
    let texts: Cache<String, Moka> = Cache::builder(store.clone()).build().unwrap();
    texts.insert("big", "x".repeat(1024 * 1024)).await;
    store.run_pending_tasks();
    let weighed = store.weighted_size();
    assert!(
        (1024 * 1024..1024 * 1024 + 4096).contains(&weighed),
        "a 1 MiB string weighs its bytes, not its 24-byte handle: {weighed}"
    );

    // The derive sums the fields' heap; `ignore` leaves one out.
    let named = Shape::Named {
        label: "abc".to_owned(),
        points: Vec::with_capacity(10),
    };
    assert_eq!(named.get_heap_size(), 3 + 10 * 4);
    assert_eq!(Shape::Tuple(vec![0; 5], vec![0; 100]).get_heap_size(), 5);
    assert_eq!(Shape::Empty.get_heap_size(), 0);
    assert_eq!(Wrapper("hello".to_owned(), 1).get_heap_size(), 5);
}

mod keys {
    use layercake::{Cache, CacheKey, Key, Moka};

    #[derive(CacheKey)]
    struct Page {
        site: String,
        number: u32,
    }

    #[derive(CacheKey)]
    struct Pair(u8, u8);

    #[derive(CacheKey)]
    enum Lookup {
        ById(u64),
        ByName { name: String },
        Everything,
    }

    #[derive(CacheKey)]
    struct Scoped<T> {
        tenant: u16,
        inner: T,
    }

    fn cache() -> Cache<String, Moka> {
        Cache::builder(Moka::default()).build().unwrap()
    }

    #[tokio::test]
    async fn keys_of_any_type_store_and_read_back() {
        let cache = cache();
        cache.insert(42u64, "int".into()).await;
        cache.insert(("users", 7i32), "tuple".into()).await;
        cache.insert(b"raw".as_slice(), "bytes".into()).await;
        cache.insert('x', "char".into()).await;
        cache.insert(true, "bool".into()).await;
        let page = Page {
            site: "docs".into(),
            number: 3,
        };
        cache.insert(&page, "page".into()).await;
        cache.insert(Lookup::ById(9), "by id".into()).await;
        for (key, want) in [
            (cache.key(42u64), "int"),
            (cache.key(("users", 7i32)), "tuple"),
            (cache.key(b"raw".as_slice()), "bytes"),
            (cache.key('x'), "char"),
            (cache.key(true), "bool"),
            (cache.key(&page), "page"),
            (cache.key(Lookup::ById(9)), "by id"),
        ] {
            let found =
                <Moka as layercake::Backend<String>>::peek(cache.backend(), key.as_key_ref());
            let found = found.unwrap().unwrap().unwrap();
            assert_eq!(found.value(), want, "{key}");
        }
        // Integers read as their text: the same entry as the string.
        assert_eq!(cache.get("42").await.as_deref(), Some("int"));
    }

    #[test]
    fn keys_are_stable_and_never_collide() {
        let cache = cache();
        let prefix = ["layercake", "value/1"];
        let parts =
            |rest: &[&str]| Key::from_parts(prefix.iter().copied().chain(rest.iter().copied()));
        // The same parts in every process and build.
        assert_eq!(cache.key(("users", 42u64)), parts(&["users", "42"]));
        let page = Page {
            site: "docs".into(),
            number: 3,
        };
        assert_eq!(cache.key(&page), parts(&["docs", "3"]));
        assert_eq!(
            cache.key(Lookup::ByName { name: "ada".into() }),
            parts(&["ByName", "ada"])
        );
        assert_eq!(cache.key(Lookup::Everything), parts(&["Everything"]));
        assert_eq!(
            cache.key(Scoped {
                tenant: 1,
                inner: Pair(2, 3)
            }),
            parts(&["1", "2", "3"])
        );
        // Different inputs, different keys, even where their text joins the same.
        let distinct = [
            cache.key(("a", "b:c")),
            cache.key(("a:b", "c")),
            cache.key("a:b:c"),
            cache.key(Pair(1, 23)),
            cache.key(Pair(12, 3)),
            cache.key(Lookup::ById(1)),
            cache.key(1u64),
            cache.key(-1i64),
        ];
        for (i, a) in distinct.iter().enumerate() {
            for b in &distinct[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(a.hash128(), b.hash128());
            }
        }
    }
}

#[tokio::test]
async fn stats_serialize_for_dashboards_and_uuid_keys_work() {
    let cache: Cache<u32, Moka> = Cache::builder(Moka::default())
        .preset(layercake::Preset::RealTime)
        .build()
        .unwrap();
    let id = uuid::Uuid::new_v4();
    cache.get_or_compute(id, || async { 7 }).await;
    assert_eq!(
        cache.get(id.to_string()).await,
        Some(7),
        "a UUID keys by its text"
    );
    let json = serde_json::to_value(cache.stats()).unwrap();
    assert_eq!(json["misses"], 1);
    assert_eq!(json["stores"], 1);
    assert_eq!(json["hits"], 1);
}

mod inline {
    //! `InlineCache`: computations that borrow, never run in the background.

    use std::cell::Cell;

    use layercake::{BuildError, InlineCache};

    use super::*;

    /// A source that counts its loads without `Arc` or atomics: the futures borrow it.
    struct Source {
        loads: Cell<u32>,
    }

    impl Source {
        async fn load(&self, id: u32) -> String {
            self.loads.set(self.loads.get() + 1);
            tokio::task::yield_now().await;
            format!("row {id}")
        }
    }

    fn cache() -> InlineCache<String, Moka> {
        Cache::builder(Moka::default())
            .ttl(Duration::from_secs(10))
            .stale(Duration::from_secs(60))
            .stale_policy(StalePolicy::Revalidate)
            .build_inline()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn borrowing_futures_are_computed_once_and_recomputed_inline_when_stale() {
        let source = Source {
            loads: Cell::new(0),
        };
        let cache = cache();
        assert_eq!(cache.get_with(7u32, source.load(7)).await, "row 7");
        assert_eq!(cache.get_with(7u32, source.load(7)).await, "row 7");
        assert_eq!(source.loads.get(), 1, "the second is a hit");
        // Concurrent callers on one task: one computes, the other waits for it.
        let (a, b) = tokio::join!(
            cache.get_with(8u32, source.load(8)),
            cache.get_with(8u32, source.load(8))
        );
        assert_eq!((a.as_str(), b.as_str()), ("row 8", "row 8"));
        assert_eq!(source.loads.get(), 2, "single-flight");
        advance(Duration::from_secs(11)).await;
        assert_eq!(cache.get_with(7u32, source.load(7)).await, "row 7");
        assert_eq!(source.loads.get(), 3, "stale: recomputed inline");
        assert_eq!(cache.stats().hits, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_falls_back_on_the_stale_value() {
        let cache = cache();
        cache.get_with("k", async { "old".to_owned() }).await;
        advance(Duration::from_secs(11)).await;
        let failed = cache
            .try_get_with("k", async { Err::<String, _>("down") })
            .await;
        assert_eq!(failed, Ok("old".to_owned()), "stale-if-error");
        let fresh = cache
            .try_get_with("other", async { Err::<String, _>("down") })
            .await;
        assert_eq!(fresh, Err("down"));
    }

    #[test]
    fn settings_that_recompute_in_the_background_are_refused() {
        let offload = Cache::<u8, Moka>::builder(Moka::default())
            .stale(Duration::from_secs(5))
            .stale_policy(StalePolicy::OffloadRevalidate)
            .build_inline();
        assert_eq!(
            offload.unwrap_err(),
            BuildError::BackgroundRefresh("stale_policy")
        );
        let early = Cache::<u8, Moka>::builder(Moka::default())
            .refresh_before(Duration::from_secs(5))
            .build_inline()
            .unwrap_err();
        assert_eq!(early, BuildError::BackgroundRefresh("refresh_before"));
        assert!(early.to_string().contains("refresh_before"), "{early}");
    }
}
