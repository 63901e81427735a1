//! Type-level composition: each read, write and refill policy, with tiers that are slow or
//! failing, and compositions nested three deep.

use std::{sync::Arc, time::Duration};

use layercake::{
    Backend, Cache, Entry, Key, Moka, Timestamp,
    compose::{Always, Compose, Never, OptimisticParallel, Parallel, Race, Sequential},
};
use layercake_tests::TestTier;
use tokio::time::{Instant, advance, sleep};

type E = Arc<Entry<String>>;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// An entry stored `age` ago, fresh for `ttl` from then.
fn entry(value: &str, age: Duration, ttl: Duration) -> E {
    let stored = Timestamp::now();
    let stored = Timestamp::from_millis(stored.as_millis() - age.as_millis() as u64);
    Arc::new(Entry::new(value.to_owned(), stored, ttl, Duration::ZERO))
}

fn key() -> Key {
    Key::from_parts(["k"])
}

async fn get<B: Backend<String>>(backend: &B) -> Option<String> {
    backend
        .get(&key())
        .await
        .unwrap()
        .map(|e| e.value().clone())
}

fn peek_l1(store: &Moka) -> Option<E> {
    Backend::<String>::peek(store, key().as_key_ref())
        .unwrap()
        .unwrap()
}

#[test]
fn policies_are_zero_sized_and_a_composition_is_its_tiers() {
    assert_eq!(size_of::<Compose<Moka, Moka>>(), 2 * size_of::<Moka>());
    assert_eq!(
        size_of::<Compose<Moka, Moka, Race, Race, Never>>(),
        2 * size_of::<Moka>()
    );
    assert_eq!(
        size_of::<Sequential>() + size_of::<Parallel>() + size_of::<Always>(),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn sequential_reads_l1_then_l2_and_refills_l1_with_the_remaining_ttl() {
    let (l1, l2) = (Moka::default(), TestTier::new(Duration::from_millis(5)));
    let tiers: Compose<Moka, TestTier> = Compose::new(l1.clone(), l2.clone());
    let stored = entry("from l2", secs(30), secs(60));
    l2.store.set(&key(), Arc::clone(&stored)).await.unwrap();

    assert_eq!(get(&tiers).await.as_deref(), Some("from l2"));
    let refilled = peek_l1(&l1).expect("the L2 hit was written into L1");
    assert_eq!(
        refilled.fresh_until(),
        stored.fresh_until(),
        "remaining ttl, not a fresh one"
    );
    assert_eq!(l2.gets.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Now L1 answers, without waiting and without asking L2.
    let peeked = Backend::<String>::peek(&tiers, key().as_key_ref())
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(peeked.value(), "from l2");
    assert_eq!(get(&tiers).await.as_deref(), Some("from l2"));
    assert_eq!(l2.gets.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn never_refill_leaves_l1_to_writes() {
    let (l1, l2) = (Moka::default(), TestTier::new(Duration::ZERO));
    let tiers: Compose<Moka, TestTier, Sequential, OptimisticParallel, Never> =
        Compose::new(l1.clone(), l2.clone());
    l2.store
        .set(&key(), entry("v", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    assert_eq!(get(&tiers).await.as_deref(), Some("v"));
    assert!(peek_l1(&l1).is_none());
}

#[tokio::test(start_paused = true)]
async fn race_read_takes_the_first_hit_over_a_slow_tier() {
    let (l1, l2) = (
        TestTier::new(secs(1)),
        TestTier::new(Duration::from_millis(10)),
    );
    l1.store
        .set(&key(), entry("slow l1", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    l2.store
        .set(&key(), entry("fast l2", Duration::ZERO, secs(60)))
        .await
        .unwrap();

    let race: Compose<TestTier, TestTier, Race, OptimisticParallel, Never> =
        Compose::new(l1.clone(), l2.clone());
    let started = Instant::now();
    assert_eq!(get(&race).await.as_deref(), Some("fast l2"));
    assert_eq!(started.elapsed(), Duration::from_millis(10));

    let sequential: Compose<TestTier, TestTier, Sequential, OptimisticParallel, Never> =
        Compose::new(l1, l2);
    let started = Instant::now();
    assert_eq!(get(&sequential).await.as_deref(), Some("slow l1"));
    assert_eq!(started.elapsed(), secs(1));
}

#[tokio::test(start_paused = true)]
async fn race_read_waits_for_the_slower_tier_when_the_faster_misses() {
    let (l1, l2) = (
        TestTier::new(Duration::from_millis(1)),
        TestTier::new(secs(1)),
    );
    l2.store
        .set(&key(), entry("only in l2", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    let race: Compose<TestTier, TestTier, Race> = Compose::new(l1.clone(), l2);
    assert_eq!(get(&race).await.as_deref(), Some("only in l2"));
    assert!(
        peek_l1(&l1.store).is_some(),
        "refilled from L2 (default refill: Always)"
    );
}

#[tokio::test(start_paused = true)]
async fn parallel_read_serves_the_fresher_entry() {
    let (l1, l2) = (TestTier::new(Duration::ZERO), TestTier::new(Duration::ZERO));
    let tiers: Compose<TestTier, TestTier, Parallel, OptimisticParallel, Never> =
        Compose::new(l1.clone(), l2.clone());
    l1.store
        .set(&key(), entry("older", secs(50), secs(60)))
        .await
        .unwrap();
    l2.store
        .set(&key(), entry("newer", secs(5), secs(60)))
        .await
        .unwrap();
    assert_eq!(get(&tiers).await.as_deref(), Some("newer"));

    l1.store
        .set(&key(), entry("newest", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    assert_eq!(get(&tiers).await.as_deref(), Some("newest"));
}

#[tokio::test(start_paused = true)]
async fn a_failing_l2_reads_as_an_error_only_when_l1_has_nothing() {
    let (l1, l2) = (Moka::default(), TestTier::new(Duration::ZERO));
    l2.fail(true);
    let tiers: Compose<Moka, TestTier> = Compose::new(l1.clone(), l2.clone());
    assert!(Backend::<String>::get(&tiers, &key()).await.is_err());
    l1.set(&key(), entry("local", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    assert_eq!(get(&tiers).await.as_deref(), Some("local"));
}

#[tokio::test(start_paused = true)]
async fn sequential_write_writes_both_and_reports_a_failure() {
    let (l1, l2) = (TestTier::new(Duration::ZERO), TestTier::new(Duration::ZERO));
    let tiers: Compose<TestTier, TestTier, Sequential, Sequential> =
        Compose::new(l1.clone(), l2.clone());
    tiers
        .set(&key(), entry("v", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    assert!(peek_l1(&l1.store).is_some() && peek_l1(&l2.store).is_some());

    l1.fail(true);
    let failed = tiers
        .set(&key(), entry("w", Duration::ZERO, secs(60)))
        .await;
    assert!(failed.is_err());
    assert_eq!(
        peek_l1(&l2.store).unwrap().value(),
        "w",
        "L2 was still written"
    );
}

#[tokio::test(start_paused = true)]
async fn optimistic_parallel_write_succeeds_when_either_tier_does() {
    let (l1, l2) = (TestTier::new(Duration::ZERO), TestTier::new(secs(1)));
    let tiers: Compose<TestTier, TestTier> = Compose::new(l1.clone(), l2.clone());
    let started = Instant::now();
    tiers
        .set(&key(), entry("v", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    assert_eq!(started.elapsed(), secs(1), "both written, at once");

    l2.fail(true);
    tiers
        .set(&key(), entry("w", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    assert_eq!(peek_l1(&l1.store).unwrap().value(), "w");
    l1.fail(true);
    assert!(
        tiers
            .set(&key(), entry("x", Duration::ZERO, secs(60)))
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn race_write_answers_at_the_first_success_and_finishes_the_other_in_the_background() {
    let (l1, l2) = (
        TestTier::new(Duration::from_millis(1)),
        TestTier::new(secs(2)),
    );
    let tiers: Compose<TestTier, TestTier, Sequential, Race> = Compose::new(l1.clone(), l2.clone());
    let started = Instant::now();
    tiers
        .set(&key(), entry("v", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(1));
    assert!(peek_l1(&l2.store).is_none(), "not yet");
    sleep(secs(3)).await;
    assert_eq!(
        peek_l1(&l2.store).unwrap().value(),
        "v",
        "finished in the background"
    );

    // The first to answer failed: the other one's success counts.
    l1.fail(true);
    tiers
        .set(&key(), entry("w", Duration::ZERO, secs(60)))
        .await
        .unwrap();
    assert_eq!(peek_l1(&l2.store).unwrap().value(), "w");
}

#[tokio::test(start_paused = true)]
async fn compositions_nest_three_tiers_deep() {
    let (l1, l2, l3) = (
        Moka::default(),
        Moka::default(),
        TestTier::new(Duration::from_millis(5)),
    );
    type Tiers = Compose<Moka, Compose<Moka, TestTier>, Race, Sequential>;
    let tiers: Tiers = Compose::new(l1.clone(), Compose::new(l2.clone(), l3.clone()));
    let cache: Cache<String, Tiers> = Cache::builder(tiers).ttl(secs(60)).build().unwrap();

    let value = cache
        .get_or_compute("k", || async { "deep".to_owned() })
        .await;
    assert_eq!(value, "deep");
    let full = cache.key("k");
    for tier in [&l1, &l2, &l3.store] {
        let found: Option<E> = tier.get(&full).await.unwrap();
        assert_eq!(found.unwrap().value(), "deep");
    }

    // Only L3 keeps it: a read refills L2 and then L1, each with the remaining ttl.
    let original: E = l3.store.get(&full).await.unwrap().unwrap();
    Backend::<String>::clear(&l1).await.unwrap();
    Backend::<String>::clear(&l2).await.unwrap();
    advance(secs(20)).await;
    assert_eq!(cache.get("k").await.as_deref(), Some("deep"));
    for tier in [&l1, &l2] {
        let refilled: E = tier.get(&full).await.unwrap().unwrap();
        assert_eq!(
            refilled.fresh_until(),
            original.fresh_until(),
            "remaining ttl, not a new one"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_cache_on_a_composition_counts_a_failing_tier_and_still_computes() {
    let l2 = TestTier::new(Duration::ZERO);
    l2.fail(true);
    let cache: Cache<u32, Compose<Moka, TestTier>> =
        Cache::builder(Compose::new(Moka::default(), l2))
            .build()
            .unwrap();
    assert_eq!(cache.get_or_compute("k", || async { 7 }).await, 7);
    assert_eq!(
        cache.get_or_compute("k", || async { 8 }).await,
        7,
        "served from L1"
    );
    assert_eq!(
        cache.stats().errors,
        1,
        "the failed L2 read of the miss, once"
    );
}

/// L1 keeps an entry past its windows only so that it can be revalidated (an HTTP response
/// with an `ETag`); L2 has a servable one, stored by another instance: L2's is the answer, and
/// the retained one only when L2 has nothing.
async fn retained_l1_entry_gives_way_to_l2<R>()
where
    R: layercake::compose::ReadPolicy,
{
    let (l1, l2) = (Moka::default(), Moka::default());
    let tiers: Compose<Moka, Moka, R, Sequential, Never> = Compose::new(l1.clone(), l2.clone());
    let retained = || {
        let stored = Timestamp::from_millis(Timestamp::now().as_millis() - 20_000);
        let entry = Entry::new("old".to_owned(), stored, secs(10), Duration::ZERO);
        Arc::new(entry.with_retention(secs(60)))
    };
    l1.set(&key(), retained()).await.unwrap();
    l2.set(&key(), entry("new", Duration::ZERO, secs(30)))
        .await
        .unwrap();
    assert_eq!(get(&tiers).await.as_deref(), Some("new"));
    Backend::<String>::remove(&l2, &key()).await.unwrap();
    assert_eq!(get(&tiers).await.as_deref(), Some("old"));
}

#[tokio::test(start_paused = true)]
async fn an_entry_kept_for_revalidation_in_l1_gives_way_to_a_servable_one_in_l2() {
    retained_l1_entry_gives_way_to_l2::<Sequential>().await;
    retained_l1_entry_gives_way_to_l2::<Race>().await;
    retained_l1_entry_gives_way_to_l2::<Parallel>().await;
}

/// `Cache-Status` and the per-tier counts name the tier that answered: two instances with
/// memory tiers of their own over one shared tier.
#[tokio::test(start_paused = true)]
async fn the_tier_that_answered_is_named() {
    use layercake::CacheLayer;
    use layercake_tests::{Origin, cache_status, fetch, get};
    use tower::Layer;

    let shared = TestTier::new(Duration::from_millis(1));
    let instance = || {
        CacheLayer::builder(Compose::<Moka, TestTier>::new(
            Moka::default(),
            shared.clone(),
        ))
        .build()
        .unwrap()
    };
    let (a, b) = (instance(), instance());
    let origin = Origin::ok("page");
    let (svc_a, svc_b) = (a.layer(origin.clone()), b.layer(origin.clone()));
    fetch(&svc_a, get("/")).await;
    layercake_tests::eventually("stored in both tiers", || a.stats().stores == 1).await;

    let (parts, _) = fetch(&svc_b, get("/")).await;
    let l2 = <TestTier as Backend<String>>::name(&shared);
    let status = cache_status(&parts);
    assert!(
        status.starts_with("layercake; hit; ttl=") && status.ends_with(&format!("; detail={l2}")),
        "the other instance's entry, from the shared tier: {status}"
    );
    let (parts, _) = fetch(&svc_b, get("/")).await;
    let status = cache_status(&parts);
    assert!(
        status.ends_with("; detail=moka"),
        "then from its own memory: {status}"
    );
    assert_eq!(origin.calls(), 1);
    let tiers: Vec<_> = b.tier_hits().iter().map(|t| (t.tier, t.hits)).collect();
    assert_eq!(tiers, [("moka", 1), (l2, 1)]);
}
