//! The disk store on a real file: entries survive a restart (and a process killed mid-write),
//! lifetimes hold across restarts, the budget is kept by evicting what expires first, torn or
//! foreign bytes read as a counted miss, invalidation by key, tag and pattern, and an HTTP
//! stack whose memory tier is empty after a restart answers from disk.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use http::StatusCode;
use layercake::{
    Backend, BackendErrorKind, Cache, CacheLayer, Disk, Entry, Key, Moka, Selection, Timestamp,
    compose::{Compose, Sequential},
};
use layercake_tests::{
    Origin, cache_status,
    disk_store::{TempDir, key, value},
    eventually, fetch, get,
};
use redb::ReadableTable;
use tower::Layer;

fn entry(value: impl Into<String>, ttl: Duration) -> Arc<Entry<String>> {
    Arc::new(Entry::new(
        value.into(),
        Timestamp::now(),
        ttl,
        Duration::ZERO,
    ))
}

async fn read(store: &Disk, key: &Key) -> Option<String> {
    let found: Option<Arc<Entry<String>>> = store.get(key).await.unwrap();
    found.map(|entry| entry.value().clone())
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_survive_a_restart() {
    let dir = TempDir::new("disk-restart");
    let tags: Arc<[Arc<str>]> = Arc::from([Arc::from("even")]);
    {
        let store = Disk::builder().directory(dir.path()).open().unwrap();
        for i in 0..200u64 {
            let mut e = Entry::new(value(i), Timestamp::now(), HOUR, Duration::ZERO);
            if i % 2 == 0 {
                e = e.with_tags(Arc::clone(&tags));
            }
            store.set(&key(i), Arc::new(e)).await.unwrap();
        }
        assert_eq!(store.stats().entries, 200);
    }
    let store = Disk::builder().directory(dir.path()).open().unwrap();
    assert_eq!(store.stats().entries, 200);
    for i in 0..200u64 {
        assert_eq!(read(&store, &key(i)).await, Some(value(i)), "entry {i}");
    }
    // The tag index was kept too.
    let removed = Backend::<String>::remove_selected(&store, Selection::Tags(&tags)).await;
    assert_eq!(removed.unwrap(), Some(100));
    assert_eq!(read(&store, &key(2)).await, None);
    assert_eq!(read(&store, &key(3)).await, Some(value(3)));
    let stats = store.stats();
    assert_eq!((stats.entries, stats.corrupt, stats.errors), (100, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifetimes_hold_across_a_restart_and_expired_entries_are_reclaimed() {
    let dir = TempDir::new("disk-ttl");
    {
        let store = Disk::builder().directory(dir.path()).open().unwrap();
        store
            .set(&key(1), entry("short", Duration::from_millis(300)))
            .await
            .unwrap();
        store.set(&key(2), entry("long", HOUR)).await.unwrap();
        assert_eq!(read(&store, &key(1)).await.as_deref(), Some("short"));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let store = Disk::builder().directory(dir.path()).open().unwrap();
    // Still in the file until reclaimed, but never served.
    assert_eq!(read(&store, &key(1)).await, None);
    assert_eq!(read(&store, &key(2)).await.as_deref(), Some("long"));
    // The writer reclaims it (within a second when nothing is written).
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.stats().expired == 0 {
        assert!(Instant::now() < deadline, "never reclaimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = store.stats();
    assert_eq!((stats.entries, stats.expired), (1, 1));
    // Setting an entry whose lifetime is over removes what was there.
    let over = Arc::new(Entry::new(
        "old".to_owned(),
        Timestamp::from_millis(Timestamp::now().as_millis() - 10_000),
        Duration::from_secs(1),
        Duration::ZERO,
    ));
    store.set(&key(2), over).await.unwrap();
    assert_eq!(read(&store, &key(2)).await, None);
    assert_eq!(store.stats().entries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_is_kept_by_evicting_what_expires_first() {
    let dir = TempDir::new("disk-budget");
    let budget = 256 * 1024;
    let store = Disk::builder()
        .directory(dir.path())
        .max_bytes(budget)
        .open()
        .unwrap();
    let body = "x".repeat(1024);
    // 4 MiB written into a 256 KiB budget, 64 writes at a time (committed together); later
    // entries live longer.
    for group in 0..64u64 {
        let mut writes = tokio::task::JoinSet::new();
        for i in group * 64..(group + 1) * 64 {
            let (store, body) = (store.clone(), body.clone());
            let ttl = HOUR + Duration::from_secs(i);
            writes.spawn(async move { store.set(&key(i), entry(body, ttl)).await });
        }
        while let Some(written) = writes.join_next().await {
            written.unwrap().unwrap();
        }
        assert!(
            store.stats().bytes <= budget,
            "over budget after group {group}"
        );
    }
    let stats = store.stats();
    assert!(stats.evicted > 3800, "{stats:?}");
    assert!(stats.entries > 150 && stats.entries < 256, "{stats:?}");
    // What expires first went first: the newest (longest-lived) entries are there.
    assert_eq!(read(&store, &key(4095)).await.as_deref(), Some(&*body));
    assert_eq!(read(&store, &key(0)).await, None);
    // The file stops growing: redb reuses the pages of what was evicted.
    let size = std::fs::metadata(dir.path().join("layercake.redb"))
        .unwrap()
        .len();
    assert!(
        size < 8 * budget + (4 << 20),
        "file of {size} bytes for a budget of {budget}"
    );
    // An entry larger than the whole budget is refused, and nothing else is lost.
    let held = store.stats().entries;
    let error = store
        .set(&key(9999), entry("y".repeat(300 * 1024), HOUR))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("over the whole budget"),
        "{error}"
    );
    assert_eq!(store.stats().entries, held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_write_leaves_a_store_that_opens_and_reads_the_rest() {
    let dir = TempDir::new("disk-crash");
    let mut committed = Vec::new();
    // Three rounds: a writer process is killed while writing, the store is opened and read.
    for round in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_disk-writer"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the writer process");
        let stdout = child.stdout.take().unwrap();
        let seen = tokio::task::spawn_blocking(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                seen.push(line.parse::<u64>().expect("a number"));
                if seen.len() >= 400 {
                    break;
                }
            }
            seen
        });
        let seen = tokio::time::timeout(Duration::from_secs(60), seen)
            .await
            .expect("the writer commits within a minute")
            .unwrap();
        // SIGKILL: no destructor, no last commit; the writes in flight are cut.
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            seen.len() >= 400,
            "round {round}: {} commits seen",
            seen.len()
        );
        committed.extend(seen);

        let store = Disk::builder().directory(dir.path()).open().unwrap();
        for &i in &committed {
            assert_eq!(read(&store, &key(i)).await, Some(value(i)), "entry {i}");
        }
        // Written but not reported, or cut: there and whole, or not there.
        let top = committed.iter().max().copied().unwrap_or(0) + 64;
        for i in 0..top {
            if let Some(found) = read(&store, &key(i)).await {
                assert_eq!(found, value(i), "entry {i}");
            }
        }
        let stats = store.stats();
        assert_eq!((stats.corrupt, stats.errors), (0, 0), "round {round}");
        // And it takes writes again.
        store
            .set(&key(1 << 40), entry("after", HOUR))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_or_foreign_bytes_read_as_a_counted_miss() {
    let dir = TempDir::new("disk-torn");
    let cache_key;
    {
        let store = Disk::builder().directory(dir.path()).open().unwrap();
        let cache: Cache<String, Disk> = Cache::builder(store.clone()).build().unwrap();
        cache.insert("torn", "whole".to_owned()).await;
        cache.insert("kept", "kept".to_owned()).await;
        cache_key = cache.key("torn");
    }
    // Cut the stored bytes of one entry short, as a torn write would leave them, through redb
    // itself (the file stays a sound database; the entry does not).
    {
        let db = redb::Database::create(dir.path().join("layercake.redb")).unwrap();
        let table: redb::TableDefinition<'_, &[u8], (u64, u64, &[u8])> =
            redb::TableDefinition::new("entries");
        let tx = db.begin_write().unwrap();
        {
            let mut entries = tx.open_table(table).unwrap();
            let (retain_until, charged, bytes) = {
                let row = entries.get(cache_key.as_bytes()).unwrap().unwrap();
                let (r, c, b) = row.value();
                (r, c, b.to_vec())
            };
            let torn = &bytes[..bytes.len() / 2];
            entries
                .insert(cache_key.as_bytes(), (retain_until, charged, torn))
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Disk::builder().directory(dir.path()).open().unwrap();
    let error = Backend::<String>::get(&store, &cache_key)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), BackendErrorKind::Corrupt);
    assert_eq!(store.stats().corrupt, 1);
    // Through a cache it is a miss: computed again, and stored whole.
    let cache: Cache<String, Disk> = Cache::builder(store.clone()).build().unwrap();
    let computed = cache
        .get_or_compute("torn", || async { "again".to_owned() })
        .await;
    assert_eq!(computed, "again");
    assert_eq!(cache.get("kept").await.as_deref(), Some("kept"));
    eventually("the entry stored whole again", || {
        store.stats().entries == 2
    })
    .await;
    // A file that is not a database at all: opening fails with a clear error, no panic.
    let garbage = TempDir::new("disk-garbage");
    std::fs::write(garbage.path().join("layercake.redb"), vec![0x5a; 64 * 1024]).unwrap();
    let error = Disk::builder()
        .directory(garbage.path())
        .open()
        .unwrap_err();
    assert!(error.to_string().contains("disk store"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_by_key_tag_pattern_and_soft_purge() {
    let dir = TempDir::new("disk-invalidate");
    let store = Disk::builder().directory(dir.path()).open().unwrap();
    let users: Arc<[Arc<str>]> = Arc::from([Arc::from("users")]);
    for (name, tagged) in [("users:1", true), ("users:2", true), ("posts:1", false)] {
        let parts: Vec<&str> = name.split(':').collect();
        let mut e = Entry::new(name.to_owned(), Timestamp::now(), HOUR, HOUR);
        if tagged {
            e = e.with_tags(Arc::clone(&users));
        }
        store
            .set(&Key::from_parts(parts), Arc::new(e))
            .await
            .unwrap();
    }
    let k = |a: &str, b: &str| Key::from_parts([a, b]);
    // Soft purge by pattern: kept, but no longer fresh.
    let pattern = format!("{}*", k("posts", "").readable());
    let marked = Backend::<String>::mark_stale_selected(
        &store,
        Selection::Pattern(&pattern),
        Timestamp::now(),
    )
    .await
    .unwrap();
    assert_eq!(marked, Some(1));
    let found: Option<Arc<Entry<String>>> = store.get(&k("posts", "1")).await.unwrap();
    assert!(!matches!(
        found.unwrap().freshness(Timestamp::now()),
        layercake::Freshness::Fresh(_)
    ));
    // By key, counted.
    let removed = Backend::<String>::remove_counted(&store, &k("users", "1")).await;
    assert_eq!(removed.unwrap(), Some(1));
    let again = Backend::<String>::remove_counted(&store, &k("users", "1")).await;
    assert_eq!(again.unwrap(), Some(0));
    // By tag: what is left of it.
    let removed = Backend::<String>::remove_selected(&store, Selection::Tags(&users)).await;
    assert_eq!(removed.unwrap(), Some(1));
    // By pattern.
    let removed = Backend::<String>::remove_selected(&store, Selection::Pattern(&pattern)).await;
    assert_eq!(removed.unwrap(), Some(1));
    assert_eq!(store.stats().entries, 0);
    assert_eq!(store.stats().bytes, 0, "every charge given back");
    // Clear.
    store.set(&k("a", "b"), entry("v", HOUR)).await.unwrap();
    Backend::<String>::clear(&store).await.unwrap();
    assert_eq!(read(&store, &k("a", "b")).await, None);
    assert!(Backend::<String>::health(&store).await[0].up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_store_per_directory_and_concurrent_calls() {
    let dir = TempDir::new("disk-concurrent");
    let store = Disk::builder().directory(dir.path()).open().unwrap();
    // In this process: the same settings share the store, other ones are refused.
    let same = Disk::builder().directory(dir.path()).open().unwrap();
    same.set(&key(0), entry("shared", HOUR)).await.unwrap();
    assert_eq!(read(&store, &key(0)).await.as_deref(), Some("shared"));
    drop(same);
    let other = Disk::builder()
        .directory(dir.path())
        .max_bytes(1 << 20)
        .open();
    let error = other.unwrap_err();
    assert!(error.to_string().contains("other settings"), "{error}");
    // Another process cannot open it at all.
    let writer = std::process::Command::new(env!("CARGO_BIN_EXE_disk-writer"))
        .arg(dir.path())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!writer.status.success());
    let said = String::from_utf8_lossy(&writer.stderr);
    assert!(said.contains("another process has it open"), "{said}");
    // 8 tasks × 100 writes and reads at once: every write committed, every read whole.
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..100u64 {
                    let i = task * 1000 + n;
                    store.set(&key(i), entry(value(i), HOUR)).await.unwrap();
                    assert_eq!(read(&store, &key(i)).await, Some(value(i)));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.stats().entries, 800);
    // Once every clone is dropped, the directory can be opened again at once.
    drop(store);
    let again = Disk::builder().directory(dir.path()).open().unwrap();
    assert_eq!(again.stats().entries, 800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_stack_answers_from_disk_after_a_restart() {
    let dir = TempDir::new("disk-http");
    let origin = Origin::counting();
    let instance = || async {
        let disk = Disk::builder().directory(dir.path()).open().unwrap();
        let tiers: Compose<Moka, Disk, Sequential, Sequential> =
            Compose::new(Moka::default(), disk);
        CacheLayer::builder(tiers).build().unwrap()
    };
    {
        let first = instance().await;
        let (_, body) = fetch(&first.layer(origin.clone()), get("/page")).await;
        assert_eq!(body, "call 1");
        eventually("stored in both tiers", || first.stats().stores == 1).await;
    }
    // A new process, in effect: empty memory, the same directory.
    let second = instance().await;
    let (parts, body) = fetch(&second.layer(origin.clone()), get("/page")).await;
    assert_eq!(body, "call 1");
    assert!(cache_status(&parts).contains("hit"), "{parts:?}");
    assert!(cache_status(&parts).contains("detail=disk"), "{parts:?}");
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_example_answers_the_first_request_after_a_restart_from_disk() {
    use layercake_tests::disk_example;
    let dir = TempDir::new("disk-example");
    let computed = {
        let cache = disk_example::cache(dir.path()).unwrap();
        let (parts, body) = fetch(&disk_example::app(cache.clone()), get("/")).await;
        assert_eq!(parts.status, StatusCode::OK);
        assert!(cache_status(&parts).contains("fwd=uri-miss"), "{parts:?}");
        eventually("stored", || cache.stats().stores == 1).await;
        body
    };
    // Restarted: memory is empty, the file is not.
    let cache = disk_example::cache(dir.path()).unwrap();
    let app = disk_example::app(cache.clone());
    let (parts, body) = fetch(&app, get("/")).await;
    assert_eq!(body, computed, "the response computed before the restart");
    assert!(cache_status(&parts).contains("hit"), "{parts:?}");
    assert!(cache_status(&parts).contains("detail=disk"), "{parts:?}");
    let (_, stats) = fetch(&app, get("/stats")).await;
    let stats = String::from_utf8_lossy(&stats);
    assert!(stats.contains("DiskStats"), "{stats}");
}
