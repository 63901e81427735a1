//! How much memory a `Moka` store with a byte budget really holds: the peak of the live heap
//! (a counting global allocator) while filling it far past its budget, against the budget.
//!
//! ```sh
//! cargo bench -p layercake-benches --bench memory            # every case, full size
//! cargo bench -p layercake-benches --bench memory -- vary    # the cases whose name has `vary`
//! ```
//!
//! Not a criterion bench: it measures bytes, not time. Each case runs alone (the allocator
//! counts every thread), from a baseline taken before the store is made.

use std::time::Duration;

use layercake::Moka;
use layercake_tests::memory::{LiveHeap, layer, mark_end, measure, typed_bytes, typed_strings};

#[global_allocator]
static GLOBAL: LiveHeap = LiveHeap;

const MIB: usize = 1024 * 1024;

/// What one entry costs a `Moka` store beyond its value: `count` entries of a `u64` under keys
/// like the typed cache's, in a store that evicts nothing, divided by `count`.
fn overhead_per_entry(count: usize) -> usize {
    let (_, live) = measure(|| {
        let store = Moka::builder()
            .max_bytes(u64::MAX / 2)
            .max_entries(u64::MAX / 4)
            .build();
        let now = layercake::Timestamp::now();
        for i in 0..count as u64 {
            let key = layercake::Key::from_parts(["layercake", "value/1", &i.to_string()]);
            let entry = layercake::Entry::new(i, now, Duration::from_secs(3600), Duration::ZERO);
            let stored = layercake::Backend::set(&store, &key, std::sync::Arc::new(entry));
            layercake_benches::poll_now(stored).expect("a memory tier never fails");
        }
        store.run_pending_tasks();
        mark_end();
    });
    live / count
}

/// What one stored HTTP response of `size` bytes costs, through the layer into a `Moka` store
/// that evicts nothing, against a raw `moka::sync::Cache<String, Bytes>` holding the same body
/// under the same URL: live heap per entry, each.
fn per_response(count: usize, size: usize) -> (usize, usize, usize) {
    let (_, layered) = measure(|| layer(count, size, usize::MAX / 4, false, mark_end));
    let (_, raw) = measure(|| {
        let cache: moka::sync::Cache<String, bytes::Bytes> = moka::sync::Cache::new(u64::MAX);
        for i in 0..count {
            cache.insert(format!("/page/{i}"), bytes::Bytes::from(vec![b'x'; size]));
        }
        cache.run_pending_tasks();
        mark_end();
    });
    // The same, each entry expiring at its own time (as every layercake entry does).
    let (_, expiring) = measure(|| {
        let cache: moka::sync::Cache<String, bytes::Bytes> = moka::sync::Cache::builder()
            .expire_after(EachItsOwn)
            .build();
        for i in 0..count {
            cache.insert(format!("/page/{i}"), bytes::Bytes::from(vec![b'x'; size]));
        }
        cache.run_pending_tasks();
        mark_end();
    });
    (layered / count, raw / count, expiring / count)
}

/// A moka expiry that gives each entry a lifetime of its own.
struct EachItsOwn;

impl moka::Expiry<String, bytes::Bytes> for EachItsOwn {
    fn expire_after_create(
        &self,
        key: &String,
        _: &bytes::Bytes,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(3600 + key.len() as u64))
    }
}

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .unwrap_or_default();
    let budget = 64 * MIB;
    type Case = (&'static str, Box<dyn Fn()>);
    let cases: Vec<Case> = vec![
        (
            "typed 1,000,000 × 1 KiB strings",
            Box::new(move || typed_strings(1_000_000, 1024, budget, mark_end)),
        ),
        (
            "typed 2,000 × 1 MiB bytes",
            Box::new(move || typed_bytes(2_000, MIB, budget, mark_end)),
        ),
        (
            "layer 1,000,000 × 1 KiB responses",
            Box::new(move || layer(1_000_000, 1024, budget, false, mark_end)),
        ),
        (
            "layer 2,000 × 1 MiB responses",
            Box::new(move || layer(2_000, MIB, budget, false, mark_end)),
        ),
        (
            "layer vary 200,000 variants × 1 KiB",
            Box::new(move || layer(200_000, 1024, budget, true, mark_end)),
        ),
    ];
    if "overhead".contains(filter.as_str()) {
        println!(
            "one entry costs a Moka store {} bytes beyond its value (keys of ~30 bytes)\n",
            overhead_per_entry(200_000)
        );
    }
    if "per response".contains(filter.as_str()) {
        let (layered, raw, expiring) = per_response(20_000, 1024);
        println!(
            "one stored 1 KiB response: {layered} bytes through the layer, {raw} bytes as a raw \
             moka <String, Bytes> entry ({:.2}×), {expiring} bytes as one expiring at its own \
             time ({:.2}×)\n",
            layered as f64 / raw as f64,
            layered as f64 / expiring as f64
        );
    }
    println!("| case | budget | peak live heap | peak / budget | live at the end |");
    println!("|---|---:|---:|---:|---:|");
    for (name, case) in cases {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let (peak, after) = measure(case);
        println!(
            "| {name} | {} MiB | {:.1} MiB | {:.2}× | {:.1} MiB |",
            budget / MIB,
            peak as f64 / MIB as f64,
            peak as f64 / budget as f64,
            after as f64 / MIB as f64,
        );
    }
}
