//! The offload manager on its own: deduplication, bounds, timeouts, shutdown and counters.

use std::time::Duration;

use layercake::{
    Key,
    offload::{OffloadManager, OffloadTimeout, Offloaded, Shutdown},
};
use tokio::time::sleep;

fn key(name: &str) -> Key {
    Key::from_parts([name])
}

#[tokio::test(start_paused = true)]
async fn one_task_per_key_at_a_time_then_again() {
    let offload = OffloadManager::new();
    let slow = || async {
        sleep(Duration::from_secs(1)).await;
        Ok(())
    };
    assert_eq!(offload.spawn(key("a"), slow()), Offloaded::Started);
    assert_eq!(offload.spawn(key("a"), slow()), Offloaded::Deduplicated);
    assert_eq!(offload.spawn(key("b"), slow()), Offloaded::Started);
    assert_eq!(offload.stats().active, 2);
    sleep(Duration::from_secs(2)).await;
    assert_eq!(
        offload.spawn(key("a"), slow()),
        Offloaded::Started,
        "the first one is done"
    );
    offload.shutdown(Shutdown::Graceful).await;
    let stats = offload.stats();
    assert_eq!(
        (
            stats.spawned,
            stats.completed,
            stats.deduplicated,
            stats.active
        ),
        (3, 3, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn tasks_past_the_bound_are_rejected() {
    let offload = OffloadManager::builder().max_concurrent_tasks(2).build();
    for name in ["a", "b"] {
        let task = async {
            sleep(Duration::from_secs(1)).await;
            Ok(())
        };
        assert_eq!(offload.spawn(key(name), task), Offloaded::Started);
    }
    assert_eq!(
        offload.spawn(key("c"), async { Ok(()) }),
        Offloaded::Rejected
    );
    assert_eq!(offload.stats().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn failures_and_panics_are_counted() {
    let offload = OffloadManager::new();
    offload.spawn(key("err"), async { Err("refresh failed".into()) });
    offload.spawn(key("panic"), async { panic!("refresh panicked") });
    offload.spawn(key("ok"), async { Ok(()) });
    offload.shutdown(Shutdown::Graceful).await;
    let stats = offload.stats();
    assert_eq!((stats.failed, stats.completed, stats.active), (2, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn warn_timeout_counts_but_lets_the_task_finish() {
    let offload = OffloadManager::builder()
        .timeout(OffloadTimeout::Warn(Duration::from_secs(1)))
        .build();
    offload.spawn(key("slow"), async {
        sleep(Duration::from_secs(3)).await;
        Ok(())
    });
    sleep(Duration::from_secs(2)).await;
    let stats = offload.stats();
    assert_eq!((stats.timed_out, stats.active), (1, 1));
    sleep(Duration::from_secs(2)).await;
    assert_eq!(offload.stats().completed, 1);
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_waits_and_cancel_shutdown_does_not() {
    let offload = OffloadManager::new();
    offload.spawn(key("a"), async {
        sleep(Duration::from_secs(5)).await;
        Ok(())
    });
    let started = tokio::time::Instant::now();
    offload.shutdown(Shutdown::Graceful).await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(offload.stats().completed, 1);
    assert_eq!(
        offload.spawn(key("b"), async { Ok(()) }),
        Offloaded::Rejected,
        "closed"
    );

    let offload = OffloadManager::new();
    offload.spawn(key("a"), async {
        sleep(Duration::from_secs(3600)).await;
        Ok(())
    });
    let started = tokio::time::Instant::now();
    offload.shutdown(Shutdown::Cancel).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    let stats = offload.stats();
    assert_eq!((stats.active, stats.completed), (0, 0));

    let offload = OffloadManager::new();
    offload.spawn(key("a"), async {
        sleep(Duration::from_secs(3600)).await;
        Ok(())
    });
    let started = tokio::time::Instant::now();
    offload.shutdown_timeout(Duration::from_secs(2)).await;
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(offload.stats().active, 0);
}
