//! `#[cached_handler]` on plain async functions: hits, misses, expiry, single-flight, and each
//! attribute.

use std::{
    sync::atomic::{AtomicUsize, Ordering::SeqCst},
    time::Duration,
};

use layercake::{Moka, cached_handler};
use tokio::{
    task::JoinSet,
    time::{advance, sleep},
};

static PROFILE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq)]
struct Profile {
    id: u64,
    name: String,
}

#[cached_handler(ttl = 60)]
async fn profile(id: u64, name: String) -> Profile {
    PROFILE_CALLS.fetch_add(1, SeqCst);
    sleep(Duration::from_millis(100)).await;
    Profile { id, name }
}

#[tokio::test(start_paused = true)]
async fn hits_misses_and_expires_by_its_arguments() {
    let ada = profile(1, "Ada".into()).await;
    assert_eq!(
        ada,
        Profile {
            id: 1,
            name: "Ada".into()
        }
    );
    assert_eq!(profile(1, "Ada".into()).await, ada);
    assert_eq!(PROFILE_CALLS.load(SeqCst), 1, "the second call is a hit");
    profile(2, "Ada".into()).await;
    profile(1, "Bob".into()).await;
    assert_eq!(
        PROFILE_CALLS.load(SeqCst),
        3,
        "every argument is part of the key"
    );

    advance(Duration::from_secs(61)).await;
    profile(1, "Ada".into()).await;
    assert_eq!(PROFILE_CALLS.load(SeqCst), 4, "expired after the ttl");
    assert_eq!(profile::cache().stats().hits, 1);

    // Sixty-four concurrent calls for a cold key run the body once.
    let mut calls = JoinSet::new();
    for _ in 0..64 {
        calls.spawn(profile(9, "Cold".into()));
    }
    for result in calls.join_all().await {
        assert_eq!(result.id, 9);
    }
    assert_eq!(PROFILE_CALLS.load(SeqCst), 5);
}

static LOAD_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = "5m")]
async fn load(id: u32) -> Result<String, String> {
    let n = LOAD_CALLS.fetch_add(1, SeqCst);
    if n == 0 {
        Err("db down".into())
    } else {
        Ok(format!("row {id}"))
    }
}

#[tokio::test(start_paused = true)]
async fn results_cache_only_ok_and_options_only_some_by_default() {
    assert_eq!(load(7).await, Err("db down".into()));
    assert_eq!(load(7).await, Ok("row 7".into()));
    assert_eq!(load(7).await, Ok("row 7".into()));
    assert_eq!(
        LOAD_CALLS.load(SeqCst),
        2,
        "the error was not cached, the value was"
    );

    assert_eq!(find(0).await, None);
    assert_eq!(find(0).await, None);
    assert_eq!(find(1).await, Some(1));
    assert_eq!(find(1).await, Some(1));
    assert_eq!(FIND_CALLS.load(SeqCst), 3, "None twice computed, Some once");
}

static FIND_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60)]
async fn find(id: u32) -> Option<u32> {
    FIND_CALLS.fetch_add(1, SeqCst);
    (id > 0).then_some(id)
}

static ERR_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60, cache_err)]
async fn always_fails(id: u32) -> Result<u32, String> {
    ERR_CALLS.fetch_add(1, SeqCst);
    Err(format!("no {id}"))
}

static NONE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60, cache_none = true)]
async fn nothing(id: u32) -> Option<u32> {
    NONE_CALLS.fetch_add(1, SeqCst);
    let _ = id;
    None
}

#[tokio::test(start_paused = true)]
async fn cache_err_and_cache_none_store_failures_too() {
    assert_eq!(always_fails(1).await, Err("no 1".into()));
    assert_eq!(always_fails(1).await, Err("no 1".into()));
    assert_eq!(ERR_CALLS.load(SeqCst), 1);
    assert_eq!(nothing(1).await, None);
    assert_eq!(nothing(1).await, None);
    assert_eq!(NONE_CALLS.load(SeqCst), 1);
}

static SKIP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60, skip(request_id))]
async fn price(sku: String, request_id: u64) -> u64 {
    SKIP_CALLS.fetch_add(1, SeqCst);
    let _ = request_id;
    sku.len() as u64
}

static KEY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60, key = email.to_lowercase())]
async fn account(email: String) -> String {
    KEY_CALLS.fetch_add(1, SeqCst);
    email
}

#[tokio::test(start_paused = true)]
async fn skip_and_key_decide_what_identifies_a_call() {
    price("abc".into(), 1).await;
    price("abc".into(), 2).await;
    assert_eq!(
        SKIP_CALLS.load(SeqCst),
        1,
        "request_id is not part of the key"
    );

    assert_eq!(account("Ada@Example.org".into()).await, "Ada@Example.org");
    assert_eq!(
        account("ada@example.org".into()).await,
        "Ada@Example.org",
        "same key"
    );
    assert_eq!(KEY_CALLS.load(SeqCst), 1);
    assert_eq!(
        account::key_for("ADA@EXAMPLE.ORG".into()),
        account::key_for("ada@example.org".into())
    );
}

static SHARED_CALLS: AtomicUsize = AtomicUsize::new(0);
static STORE: std::sync::LazyLock<Moka> = std::sync::LazyLock::new(Moka::default);

#[cached_handler(ttl = 60, backend = STORE.clone(), namespace = "pricing", version = 2, concurrency = 2)]
async fn rate(currency: String) -> f64 {
    SHARED_CALLS.fetch_add(1, SeqCst);
    sleep(Duration::from_millis(50)).await;
    if currency == "EUR" { 1.0 } else { 1.1 }
}

#[tokio::test(start_paused = true)]
async fn backend_namespace_version_and_concurrency() {
    let mut calls = JoinSet::new();
    for _ in 0..10 {
        calls.spawn(rate("EUR".into()));
    }
    calls.join_all().await;
    assert_eq!(
        SHARED_CALLS.load(SeqCst),
        2,
        "concurrency = 2: two callers compute"
    );
    STORE.run_pending_tasks();
    assert_eq!(STORE.entry_count(), 1, "stored in the shared store");
    let key = rate::key_for("EUR".into()).to_string();
    assert!(key.starts_with("pricing:value/1:"), "{key}");
    assert!(
        key.contains("::rate:2:"),
        "function and version in the key: {key}"
    );

    // invalidate() removes exactly that entry.
    rate::invalidate("EUR".into()).await.unwrap();
    rate("EUR".into()).await;
    assert_eq!(SHARED_CALLS.load(SeqCst), 3);
}

static STALE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 10, stale = 60, stale_policy = offload)]
async fn slow_report(day: u32) -> String {
    let n = STALE_CALLS.fetch_add(1, SeqCst) + 1;
    sleep(Duration::from_millis(500)).await;
    format!("report {day} #{n}")
}

#[tokio::test(start_paused = true)]
async fn stale_policy_offload_serves_stale_and_refreshes_in_the_background() {
    assert_eq!(slow_report(1).await, "report 1 #1");
    advance(Duration::from_secs(15)).await;
    let started = tokio::time::Instant::now();
    assert_eq!(slow_report(1).await, "report 1 #1", "stale, at once");
    assert!(started.elapsed() < Duration::from_millis(100));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        slow_report(1).await,
        "report 1 #2",
        "refreshed in the background"
    );
    assert_eq!(STALE_CALLS.load(SeqCst), 2);
}

static SEARCH_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Not `Hash` (an `f64`), but `Serialize`: keyed by its serde form.
#[derive(Clone, serde::Serialize)]
struct Filter {
    min_ratio: f64,
    words: Vec<String>,
}

#[cached_handler(ttl = 60)]
async fn search(filter: Filter, page: u32) -> usize {
    SEARCH_CALLS.fetch_add(1, SeqCst);
    filter.words.len() + page as usize
}

#[tokio::test(start_paused = true)]
async fn arguments_that_are_serialize_but_not_hash_key_by_their_serde_form() {
    let filter = |ratio: f64| Filter {
        min_ratio: ratio,
        words: vec!["rust".into()],
    };
    search(filter(0.5), 1).await;
    search(filter(0.5), 1).await;
    assert_eq!(SEARCH_CALLS.load(SeqCst), 1);
    search(filter(0.75), 1).await;
    search(filter(0.5), 2).await;
    assert_eq!(SEARCH_CALLS.load(SeqCst), 3);
    assert_ne!(
        search::key_for(filter(0.5), 1),
        search::key_for(filter(0.75), 1)
    );
}

#[cached_handler(ttl = 60, tags = ["users", "profiles"])]
async fn tagged_user(id: u64) -> String {
    format!("user {id}")
}

#[tokio::test(start_paused = true)]
async fn tags_are_stored_with_every_entry() {
    use layercake::{Backend, Entry};
    tagged_user(3).await;
    let cache = tagged_user::cache();
    let entry: std::sync::Arc<Entry<String>> = cache
        .backend()
        .get(&tagged_user::key_for(3))
        .await
        .unwrap()
        .unwrap();
    let tags: Vec<&str> = entry.tags().iter().map(|t| &**t).collect();
    assert_eq!(tags, ["users", "profiles"]);
    assert_eq!(entry.value(), "user 3");
}

static FAILING_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60, lock_timeout = "2s")]
async fn always_down(id: u32) -> Result<u32, String> {
    FAILING_CALLS.fetch_add(1, SeqCst);
    sleep(Duration::from_millis(100)).await;
    Err(format!("{id} is down"))
}

/// An error that cannot be cloned.
#[derive(Debug, PartialEq)]
struct Opaque(u32);

static OPAQUE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached_handler(ttl = 60)]
async fn opaque_failure(id: u32) -> Result<u32, Opaque> {
    OPAQUE_CALLS.fetch_add(1, SeqCst);
    sleep(Duration::from_millis(100)).await;
    Err(Opaque(id))
}

#[tokio::test(start_paused = true)]
async fn eight_callers_of_a_failing_function_all_have_the_error_after_one_call() {
    let started = tokio::time::Instant::now();
    let mut calls = JoinSet::new();
    for _ in 0..8 {
        calls.spawn(always_down(3));
    }
    for result in calls.join_all().await {
        assert_eq!(result, Err("3 is down".to_owned()));
    }
    assert_eq!(FAILING_CALLS.load(SeqCst), 1, "the error was shared");
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(always_down(3).await, Err("3 is down".to_owned()));
    assert_eq!(FAILING_CALLS.load(SeqCst), 2, "the error was not cached");

    // An error that is not `Clone` cannot be shared: the waiters compute at once, together.
    let started = tokio::time::Instant::now();
    let mut calls = JoinSet::new();
    for _ in 0..8 {
        calls.spawn(opaque_failure(4));
    }
    for result in calls.join_all().await {
        assert_eq!(result, Err(Opaque(4)));
    }
    assert_eq!(OPAQUE_CALLS.load(SeqCst), 8);
    assert_eq!(started.elapsed(), Duration::from_millis(200));
}

#[cached_handler(ttl = 60)]
async fn doubled(n: u32) -> u32 {
    n * 2
}

#[tokio::test]
async fn the_generated_invalidate_says_what_it_removed_and_is_counted() {
    assert_eq!(doubled(21).await, 42);
    let done = doubled::invalidate(21).await.unwrap();
    assert_eq!(done.entries, Some(1));
    assert_eq!(doubled::invalidate(21).await.unwrap().entries, Some(0));
    assert_eq!(doubled::cache().stats().invalidations, 1);
}

#[cached_handler(ttl = 60)]
async fn tripled(n: u32) -> u32 {
    n * 3
}

#[cached_handler(ttl = 60)]
async fn halved(n: u32) -> u32 {
    n / 2
}

#[tokio::test]
async fn the_generated_clear_removes_every_result_of_the_function() {
    for n in 0..5 {
        tripled(n).await;
    }
    halved(1).await;
    assert_eq!(tripled::clear().await.unwrap().entries, Some(5));
    assert_eq!(
        halved::invalidate(1).await.unwrap().entries,
        Some(1),
        "another function's results stay"
    );
}

static SHORT_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[cached_handler(preset = short)]
async fn short_lived(n: u32) -> u32 {
    SHORT_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    n
}

/// `preset = short`: fresh for 5 minutes, then served stale for 1 more while it is refreshed in
/// the background, then computed again in the foreground.
#[tokio::test(start_paused = true)]
async fn a_preset_sets_the_ttl_the_stale_window_and_background_refresh() {
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(short_lived(1).await, 1);
    tokio::time::advance(Duration::from_secs(4 * 60)).await;
    short_lived(1).await;
    assert_eq!(SHORT_CALLS.load(SeqCst), 1, "fresh for 5 minutes");
    tokio::time::advance(Duration::from_secs(90)).await;
    short_lived(1).await;
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        SHORT_CALLS.load(SeqCst),
        2,
        "served stale, refreshed in the background"
    );
    let stats = short_lived::cache().stats();
    assert_eq!(stats.stale_hits, 1, "{stats:?}");
}
