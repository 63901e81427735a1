//! A process that writes to a disk store until it is killed, for the crash test in
//! `tests/disk.rs`: `disk-writer DIR` writes entries from four tasks at once and prints, one
//! per line, the number of each entry whose write was committed (the store's `set` returned).

use std::{io::Write, sync::Arc, time::Duration};

use layercake::{Backend, Disk, Entry, Timestamp};
use layercake_tests::disk_store::{key, value};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let directory = std::env::args().nth(1).expect("usage: disk-writer DIR");
    let store = Disk::builder()
        .directory(directory)
        .max_bytes(1 << 30)
        .timeout(Duration::from_secs(10))
        .open()
        .expect("opening the disk store");
    let (committed, mut numbers) = tokio::sync::mpsc::unbounded_channel();
    for task in 0..4u64 {
        let (store, committed) = (store.clone(), committed.clone());
        tokio::spawn(async move {
            let mut i = task;
            loop {
                let entry = Entry::new(
                    value(i),
                    Timestamp::now(),
                    Duration::from_secs(3600),
                    Duration::ZERO,
                );
                if store.set(&key(i), Arc::new(entry)).await.is_ok() {
                    let _ = committed.send(i);
                }
                i += 4;
            }
        });
    }
    let mut out = std::io::stdout().lock();
    while let Some(i) = numbers.recv().await {
        let _ = writeln!(out, "{i}");
        let _ = out.flush();
    }
}
