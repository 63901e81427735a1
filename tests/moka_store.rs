//! The Moka store: bounded by bytes and by count, entries shared, not copied.

use std::{sync::Arc, time::Duration};

use layercake::{Backend, BackendErrorKind, Entry, Key, Moka, Timestamp};

fn entry(bytes: usize) -> Arc<Entry<Vec<u8>>> {
    let value = vec![0u8; bytes];
    Arc::new(
        Entry::new(
            value,
            Timestamp::now(),
            Duration::from_secs(600),
            Duration::ZERO,
        )
        .with_weight(bytes),
    )
}

#[tokio::test]
async fn byte_budget_evicts_entries() {
    let store = Moka::builder()
        .max_bytes(64 * 1024)
        .max_entries(10_000)
        .build();
    for i in 0..100 {
        store
            .set(&Key::from_parts([format!("k{i}")]), entry(4096))
            .await
            .unwrap();
    }
    store.run_pending_tasks();
    assert!(
        store.weighted_size() <= 64 * 1024,
        "weighted size {}",
        store.weighted_size()
    );
    // 4 KiB values and their keys: at most 15 fit in 64 KiB.
    assert!(store.entry_count() <= 15, "{} entries", store.entry_count());
    assert!(store.entry_count() > 0);
    // Health reports the size and counts what the budget pushed out.
    let health = <Moka as Backend<Vec<u8>>>::health(&store).await;
    assert_eq!(health[0].entries, Some(store.entry_count()));
    assert_eq!(health[0].bytes, Some(store.weighted_size()));
    assert_eq!(
        health[0].evictions,
        Some(100 - store.entry_count()),
        "every entry that is gone was evicted for size"
    );
}

#[tokio::test]
async fn entry_count_is_bounded_too() {
    let store = Moka::builder()
        .max_bytes(1024 * 1024)
        .max_entries(10)
        .build();
    for i in 0..100 {
        store
            .set(&Key::from_parts([format!("k{i}")]), entry(8))
            .await
            .unwrap();
    }
    store.run_pending_tasks();
    assert!(store.entry_count() <= 10, "{} entries", store.entry_count());
    assert!(store.entry_count() > 0);
}

#[tokio::test]
async fn a_hit_shares_the_stored_entry() {
    let store = Moka::default();
    let key = Key::from_parts(["k"]);
    let stored = entry(1024);
    store.set(&key, Arc::clone(&stored)).await.unwrap();
    let found: Arc<Entry<Vec<u8>>> = store.get(&key).await.unwrap().unwrap();
    assert!(
        Arc::ptr_eq(&stored, &found),
        "a hit is a reference count, not a copy"
    );
    let peeked: Arc<Entry<Vec<u8>>> = store.peek(key.as_key_ref()).unwrap().unwrap().unwrap();
    assert!(Arc::ptr_eq(&stored, &peeked));
}

#[tokio::test]
async fn reading_another_type_is_a_type_mismatch_error() {
    let store = Moka::default();
    let key = Key::from_parts(["k"]);
    store.set(&key, entry(1)).await.unwrap();
    let err = <Moka as Backend<String>>::get(&store, &key)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::TypeMismatch);
}

#[tokio::test]
async fn remove_and_clear() {
    let store = Moka::default();
    let (a, b) = (Key::from_parts(["a"]), Key::from_parts(["b"]));
    store.set(&a, entry(1)).await.unwrap();
    store.set(&b, entry(1)).await.unwrap();
    <Moka as Backend<Vec<u8>>>::remove(&store, &a)
        .await
        .unwrap();
    assert!(
        <Moka as Backend<Vec<u8>>>::get(&store, &a)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        <Moka as Backend<Vec<u8>>>::get(&store, &b)
            .await
            .unwrap()
            .is_some()
    );
    <Moka as Backend<Vec<u8>>>::clear(&store).await.unwrap();
    assert!(
        <Moka as Backend<Vec<u8>>>::get(&store, &b)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_entry_already_past_its_stale_window_is_not_kept() {
    let store = Moka::default();
    let key = Key::from_parts(["old"]);
    let old = Entry::new(
        1u8,
        Timestamp::from_millis(0),
        Duration::from_secs(1),
        Duration::ZERO,
    );
    store.set(&key, Arc::new(old)).await.unwrap();
    assert!(
        <Moka as Backend<u8>>::get(&store, &key)
            .await
            .unwrap()
            .is_none()
    );
}
